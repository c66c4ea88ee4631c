//! What one parallel subtask runs: a source loop, or an input loop feeding a chain head, and
//! what the end of its chain writes to.
//!
//! One concept per module: [`head`] is the first operator of a chain as the input loop sees
//! it; [`input`] the loop of a task fed by channels, which combines watermarks through a
//! [`valve`] per logical input and aligns barriers with [`alignment`]; [`source`] the loop of
//! a source subtask, whose checkpoint and control handling is [`source_control`];
//! [`task_runtime`] the checkpoint side of a running task; [`writer`] the end of a chain,
//! sending batches to the channels [`partitioner`] picks; [`stream_type`] erases record types
//! so the runtime can wire any of them.
//!
//! Above the network (a stream type picks its batch codec) and below the logical graph (whose
//! nodes build chain heads) and the runtime, which re-exports these modules under their old
//! paths (`runtime::task`, `runtime::writer`, ...).

mod alignment;
mod head;
mod input;
mod source;
mod source_control;
mod valve;

pub(crate) mod partitioner;
pub(crate) mod stream_type;
pub(crate) mod task_runtime;
pub(crate) mod writer;

pub(crate) use crate::chain::TwoInputOperator;
pub(crate) use head::{OneInputHead, TaskHead, TwoInputHead};
pub(crate) use input::{InputChannel, run_input_task};
pub(crate) use source::{SourceRunner, SourceTask};
