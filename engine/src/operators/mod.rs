//! Operators: what runs inside a task. One file per operator family.

pub(crate) mod assigner;
pub(crate) mod basic;
pub(crate) mod broadcast;
pub(crate) mod checkpointed;
pub(crate) mod co;
pub(crate) mod co_process;
pub(crate) mod key_selector;
pub(crate) mod keyed_process;
pub(crate) mod output;
pub(crate) mod process;
pub(crate) mod rolling;
pub(crate) mod shared;
