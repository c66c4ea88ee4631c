//! What one parallel subtask runs: a source loop, or an input loop feeding a chain head.
//!
//! One concept per module: [`head`] is the first operator of a chain as the input loop sees
//! it; [`input`] the loop of a task fed by channels, which combines watermarks through a
//! [`valve`] per logical input and aligns barriers with [`alignment`]; [`source`] the loop of
//! a source subtask, whose checkpoint and control handling is [`source_control`].

mod alignment;
mod head;
mod input;
mod source;
mod source_control;
mod valve;

pub(crate) use crate::chain::TwoInputOperator;
pub(crate) use head::{OneInputHead, TaskHead, TwoInputHead};
pub(crate) use input::{InputChannel, run_input_task};
pub(crate) use source::{SourceRunner, SourceTask};
