//! Side outputs: extra typed outputs of an operator, selected downstream by tag (Flink's
//! `OutputTag`, which replaced `split`/`select`).
//!
//! [`OutputTag`] itself is defined in [`crate::types`], below the operators that emit to it.

pub use crate::types::OutputTag;
