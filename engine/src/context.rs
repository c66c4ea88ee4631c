//! The runtime context user functions see (Flink's `RuntimeContext`).

use crate::error::TaskLocation;

/// Facts about the parallel instance a user function runs in.
///
/// Passed to `open` of every rich function, source reader and sink writer.
#[derive(Debug, Clone)]
pub struct RuntimeContext {
    /// Name of the job, as passed to `execute`.
    pub job_name: String,
    /// Name of the operator (its `.name(..)` or default name).
    pub task_name: String,
    /// Zero-based index of this parallel instance.
    pub subtask_index: usize,
    /// Number of parallel instances of this operator.
    pub parallelism: usize,
    /// Maximum parallelism (the number of key groups) of this operator.
    pub max_parallelism: usize,
    /// How many times the job has been restarted before this attempt (0 for the first run).
    pub attempt_number: u32,
}

impl RuntimeContext {
    /// The location used in error messages.
    pub fn location(&self) -> TaskLocation {
        TaskLocation {
            operator: self.task_name.clone(),
            subtask: self.subtask_index,
            parallelism: self.parallelism,
        }
    }

    /// Flink's "task name with subtasks": `name (2/4)`.
    pub fn task_name_with_subtasks(&self) -> String {
        format!("{} ({}/{})", self.task_name, self.subtask_index + 1, self.parallelism)
    }
}
