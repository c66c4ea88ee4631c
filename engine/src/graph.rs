//! The logical graph a program builds: one node per operator, edges with their partitioning.
//!
//! Nodes keep their typed pieces behind small factories, so the runtime can wire and run them
//! without knowing record types. [`crate::runtime::jobgraph`] turns this graph into chains.

use crate::context::RuntimeContext;
use crate::error::Result;
use crate::operators::output::{AnyOutput, SideOutputs};
use crate::task::partitioner::PartitionSpec;
use crate::task::stream_type::StreamType;
use crate::task::{SourceRunner, TaskHead};
use std::sync::Arc;

/// Index of a node in the graph.
pub(crate) type NodeId = usize;

/// Creates a source's runner for one subtask, given its outputs.
/// The last argument is the job's buffer timeout.
pub(crate) type SourceFactory = Arc<
    dyn Fn(
            &RuntimeContext,
            AnyOutput,
            SideOutputs,
            std::time::Duration,
        ) -> Result<Box<dyn SourceRunner>>
        + Send
        + Sync,
>;
/// Creates a one-input operator (as a `Box<dyn Output<In>>`, erased) for one subtask.
pub(crate) type OneInputFactory =
    Arc<dyn Fn(&RuntimeContext, AnyOutput, SideOutputs) -> Result<AnyOutput> + Send + Sync>;
/// Creates a two-input operator's task head for one subtask.
pub(crate) type TwoInputFactory =
    Arc<dyn Fn(&RuntimeContext, AnyOutput, SideOutputs) -> Result<Box<dyn TaskHead>> + Send + Sync>;

/// What a node does.
#[derive(Clone)]
pub(crate) enum NodeKind {
    Source {
        factory: SourceFactory,
        parallel: bool,
    },
    OneInput {
        factory: OneInputFactory,
        input_type: Arc<dyn StreamType>,
    },
    TwoInput {
        factory: TwoInputFactory,
    },
}

/// Flink's chaining strategy of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainingStrategy {
    /// Chain with the predecessor and successors when possible.
    Always,
    /// Start a new chain here (`start_new_chain`), successors may chain to it.
    Head,
    /// Never chain (`disable_chaining`).
    Never,
}

/// An input edge of a node.
#[derive(Clone)]
pub(crate) struct InEdge {
    pub(crate) from: NodeId,
    /// The side output of `from` this edge reads, or `None` for the main output.
    pub(crate) side: Option<String>,
    pub(crate) partition: PartitionSpec,
    /// 0 for one-input operators; 0 or 1 for two-input operators.
    pub(crate) input: usize,
}

/// One operator of the logical graph.
#[derive(Clone)]
pub(crate) struct StreamNode {
    pub(crate) id: NodeId,
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
    pub(crate) parallelism: Option<usize>,
    pub(crate) max_parallelism: Option<usize>,
    pub(crate) kind: NodeKind,
    pub(crate) inputs: Vec<InEdge>,
    pub(crate) chaining: ChainingStrategy,
    pub(crate) slot_sharing_group: Option<String>,
    /// Type operations of the main output.
    pub(crate) out_type: Arc<dyn StreamType>,
    /// Type operations of each side output consumed downstream, by tag id.
    pub(crate) side_types: Vec<(String, Arc<dyn StreamType>)>,
}

/// All nodes of a program, in creation order (which is a topological order).
#[derive(Clone, Default)]
pub(crate) struct StreamGraph {
    pub(crate) nodes: Vec<StreamNode>,
}
