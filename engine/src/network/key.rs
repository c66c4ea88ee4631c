//! The name and generation of one channel.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies one channel of one execution: the edge of the job graph, the producing and the
/// consuming subtask, fenced by the generation `(epoch, attempt)` of the job's execution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChannelKey {
    /// The job's id.
    pub job_id: String,
    /// The JobManager's epoch (leadership generation) that deployed the execution.
    pub epoch: u64,
    /// The execution attempt within the epoch (restarts increase it).
    pub attempt: u32,
    /// The edge of the job graph the channel belongs to.
    pub edge: u32,
    /// The producing subtask's index.
    pub producer: u32,
    /// The consuming subtask's index.
    pub consumer: u32,
}

impl ChannelKey {
    /// The generation `(epoch, attempt)`; generations compare in this order.
    pub fn generation(&self) -> (u64, u32) {
        (self.epoch, self.attempt)
    }
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job '{}' epoch {} attempt {} edge {} subtask {} -> {}",
            self.job_id, self.epoch, self.attempt, self.edge, self.producer, self.consumer
        )
    }
}
