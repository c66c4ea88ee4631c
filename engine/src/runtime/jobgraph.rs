//! From the logical graph to the job graph: parallelism, slot sharing groups, partitioners
//! and operator chains, following Flink's rules.
//!
//! An edge is chained (its operators run in one task, passing records by direct call) when:
//! the downstream operator has exactly this one input, the edge partitions `FORWARD`
//! (explicitly, or by default because both sides have the same parallelism), both operators
//! have the same parallelism and slot sharing group, chaining is enabled for the job, the
//! downstream operator did not `start_new_chain` or `disable_chaining`, and the upstream one
//! did not `disable_chaining`.

use crate::error::{FjordError, Result};
use crate::graph::{ChainingStrategy, NodeId, NodeKind, StreamGraph};
use crate::keygroup::{UPPER_BOUND_MAX_PARALLELISM, default_max_parallelism};
use crate::runtime::partitioner::PartitionSpec;
use serde::Serialize;
use std::collections::BTreeMap;

/// Job-wide settings that influence the job graph.
#[derive(Debug, Clone)]
pub(crate) struct GraphSettings {
    pub(crate) default_parallelism: usize,
    pub(crate) max_parallelism: Option<usize>,
    pub(crate) chaining: bool,
}

/// The name of the slot sharing group operators are in unless told otherwise.
pub const DEFAULT_SLOT_SHARING_GROUP: &str = "default";

/// A chain of operators that runs as one task per parallel instance.
#[derive(Debug, Clone)]
pub(crate) struct JobVertex {
    pub(crate) head: NodeId,
    pub(crate) nodes: Vec<NodeId>,
    pub(crate) parallelism: usize,
}

/// An edge between two chains, carried by channels.
#[derive(Clone)]
pub(crate) struct JobEdge {
    pub(crate) side: Option<String>,
    pub(crate) to: NodeId,
    pub(crate) input: usize,
    pub(crate) partition: PartitionSpec,
    pub(crate) from_vertex: usize,
    pub(crate) to_vertex: usize,
}

/// The compiled job graph.
pub(crate) struct JobGraph {
    pub(crate) stream: StreamGraph,
    pub(crate) parallelism: Vec<usize>,
    pub(crate) max_parallelism: Vec<usize>,
    pub(crate) slot_group: Vec<String>,
    pub(crate) vertices: Vec<JobVertex>,
    pub(crate) edges: Vec<JobEdge>,
    /// Per node: chained successors with the side output they read.
    pub(crate) chained: Vec<Vec<(NodeId, Option<String>)>>,
    /// Per node: indices into `edges` leaving it.
    pub(crate) network_out: Vec<Vec<usize>>,
}

/// A printable, comparable description of how a job will run (Flink's execution plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobPlan {
    /// The tasks: chains of operators.
    pub vertices: Vec<VertexPlan>,
    /// The network edges between tasks.
    pub edges: Vec<EdgePlan>,
}

/// One chain in a [`JobPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VertexPlan {
    /// Index of the vertex.
    pub id: usize,
    /// Flink-style chain name: operator names joined by ` -> `.
    pub name: String,
    /// The chained operators, head first.
    pub operators: Vec<String>,
    /// Number of parallel tasks.
    pub parallelism: usize,
    /// Number of key groups.
    pub max_parallelism: usize,
    /// Slot sharing group of the chain.
    pub slot_sharing_group: String,
}

/// One network edge in a [`JobPlan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgePlan {
    /// Producing vertex.
    pub source: usize,
    /// Consuming vertex.
    pub target: usize,
    /// Flink's partitioner name: FORWARD, REBALANCE, HASH, ...
    pub partitioner: String,
    /// The side output the edge carries, if any.
    pub side_output: Option<String>,
}

impl JobPlan {
    /// Task slots the job needs: per slot sharing group, the highest parallelism in it
    /// (Flink's rule), summed over groups.
    pub fn required_slots(&self) -> usize {
        let mut groups: BTreeMap<&str, usize> = BTreeMap::new();
        for v in &self.vertices {
            let e = groups.entry(&v.slot_sharing_group).or_default();
            *e = (*e).max(v.parallelism);
        }
        groups.values().sum()
    }

    /// The chains as lists of operator names, for quick assertions and logs.
    pub fn chains(&self) -> Vec<Vec<String>> {
        self.vertices.iter().map(|v| v.operators.clone()).collect()
    }
}

impl JobGraph {
    /// Compiles the logical graph.
    pub(crate) fn build(stream: StreamGraph, settings: &GraphSettings) -> Result<Self> {
        let n = stream.nodes.len();
        if !stream
            .nodes
            .iter()
            .any(|node| matches!(node.kind, NodeKind::Source { .. }))
        {
            return Err(FjordError::InvalidGraph("the job has no sources; add one with env.from_collection(..), env.read_text_file(..), ...".into()));
        }
        let mut parallelism = vec![0; n];
        let mut max_parallelism = vec![0; n];
        let mut slot_group = vec![String::new(); n];
        for node in &stream.nodes {
            let p = match (&node.kind, node.parallelism) {
                (
                    NodeKind::Source {
                        parallel: false, ..
                    },
                    Some(p),
                ) if p != 1 => {
                    return Err(FjordError::InvalidGraph(format!(
                        "source '{}' is not parallel; its parallelism must be 1, not {p}",
                        node.name
                    )));
                }
                (
                    NodeKind::Source {
                        parallel: false, ..
                    },
                    _,
                ) => 1,
                (_, Some(p)) => p,
                (_, None) => settings.default_parallelism,
            };
            if p == 0 {
                return Err(FjordError::InvalidGraph(format!(
                    "operator '{}' has parallelism 0; use 1 or more",
                    node.name
                )));
            }
            let max = node
                .max_parallelism
                .or(settings.max_parallelism)
                .unwrap_or_else(|| default_max_parallelism(p));
            if max < p || max > UPPER_BOUND_MAX_PARALLELISM {
                return Err(FjordError::InvalidGraph(format!(
                    "operator '{}': max parallelism {max} must be between its parallelism {p} and {UPPER_BOUND_MAX_PARALLELISM}",
                    node.name
                )));
            }
            parallelism[node.id] = p;
            max_parallelism[node.id] = max;
            slot_group[node.id] = match &node.slot_sharing_group {
                Some(g) => g.clone(),
                None => {
                    // Flink: inherit the inputs' group when they all agree, else "default".
                    let groups: Vec<&String> =
                        node.inputs.iter().map(|e| &slot_group[e.from]).collect();
                    match groups.first() {
                        Some(first) if groups.iter().all(|g| g == first) => (*first).clone(),
                        _ => DEFAULT_SLOT_SHARING_GROUP.to_string(),
                    }
                }
            };
        }

        // Resolve partitioners and decide chaining.
        let mut chained = vec![Vec::new(); n];
        let mut vertex_of = vec![usize::MAX; n];
        let mut vertices: Vec<JobVertex> = Vec::new();
        let mut pending_edges = Vec::new();
        for node in &stream.nodes {
            let mut chained_into = None;
            for edge in &node.inputs {
                let (pf, pt) = (parallelism[edge.from], parallelism[node.id]);
                let partition = match &edge.partition {
                    PartitionSpec::Default if pf == pt => PartitionSpec::Forward,
                    PartitionSpec::Default => PartitionSpec::Rebalance,
                    PartitionSpec::Forward if pf != pt => {
                        return Err(FjordError::InvalidGraph(format!(
                            "forward partitioning does not allow a change of parallelism: '{}' has {pf}, '{}' has {pt}; use rebalance() or rescale(), or give both the same parallelism",
                            stream.nodes[edge.from].name, node.name
                        )));
                    }
                    other => other.clone(),
                };
                let from = &stream.nodes[edge.from];
                let chainable = settings.chaining
                    && node.inputs.len() == 1
                    && matches!(node.kind, NodeKind::OneInput { .. })
                    && matches!(partition, PartitionSpec::Forward)
                    && pf == pt
                    && slot_group[edge.from] == slot_group[node.id]
                    && node.chaining == ChainingStrategy::Always
                    && from.chaining != ChainingStrategy::Never;
                if chainable {
                    chained[edge.from].push((node.id, edge.side.clone()));
                    chained_into = Some(vertex_of[edge.from]);
                } else {
                    pending_edges.push((
                        edge.from,
                        edge.side.clone(),
                        node.id,
                        edge.input,
                        partition,
                    ));
                }
            }
            match chained_into {
                Some(v) => {
                    vertex_of[node.id] = v;
                    vertices[v].nodes.push(node.id);
                }
                None => {
                    vertex_of[node.id] = vertices.len();
                    vertices.push(JobVertex {
                        head: node.id,
                        nodes: vec![node.id],
                        parallelism: parallelism[node.id],
                    });
                }
            }
        }
        let mut network_out = vec![Vec::new(); n];
        let edges = pending_edges
            .into_iter()
            .enumerate()
            .map(|(i, (from, side, to, input, partition))| {
                network_out[from].push(i);
                JobEdge {
                    side,
                    to,
                    input,
                    partition,
                    from_vertex: vertex_of[from],
                    to_vertex: vertex_of[to],
                }
            })
            .collect();
        Ok(JobGraph {
            stream,
            parallelism,
            max_parallelism,
            slot_group,
            vertices,
            edges,
            chained,
            network_out,
        })
    }

    /// The public description of this job graph.
    pub(crate) fn plan(&self) -> JobPlan {
        let vertices = self
            .vertices
            .iter()
            .enumerate()
            .map(|(id, v)| {
                let operators: Vec<String> = v
                    .nodes
                    .iter()
                    .map(|&n| self.stream.nodes[n].name.clone())
                    .collect();
                VertexPlan {
                    id,
                    name: operators.join(" -> "),
                    operators,
                    parallelism: v.parallelism,
                    max_parallelism: self.max_parallelism[v.head],
                    slot_sharing_group: self.slot_group[v.head].clone(),
                }
            })
            .collect();
        let edges = self
            .edges
            .iter()
            .map(|e| EdgePlan {
                source: e.from_vertex,
                target: e.to_vertex,
                partitioner: e.partition.name().to_string(),
                side_output: e.side.clone(),
            })
            .collect();
        JobPlan { vertices, edges }
    }
}
