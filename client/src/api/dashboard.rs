//! Bodies of the endpoints added for the web dashboard (`docs/dashboard.md`): the exception
//! history, the checkpoint overview (counts, configuration, restore point) and one
//! TaskManager with the subtasks it runs. Kept apart from the older bodies in [`super`] so the
//! two grow independently.

use super::{SubtaskMetrics, TaskManagerInfo};
use serde::{Deserialize, Serialize};

/// Paths of the dashboard's endpoints (`{name}` is a path parameter).
pub mod paths {
    /// `GET`: the job's failures (root cause and history).
    pub const EXCEPTIONS: &str = "/v1/jobs/{job_id}/exceptions";
    /// `GET`: checkpoint counts, configuration and restore point.
    pub const CHECKPOINT_OVERVIEW: &str = "/v1/jobs/{job_id}/checkpoints/overview";
    /// `GET`: one TaskManager and the subtasks it runs.
    pub const TASK_MANAGER: &str = "/v1/taskmanagers/{task_manager_id}";
}

/// One failure of the job (Flink's exception history entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobException {
    /// When it happened (ms since the epoch).
    pub timestamp_ms: i64,
    /// The error as it prints: the root cause, naming the operator and subtask when known.
    pub message: String,
    /// The failing operator, when the error names one.
    pub operator: Option<String>,
    /// The failing subtask (zero-based), when the error names one.
    pub subtask: Option<usize>,
    /// The execution attempt that failed (0 is the first).
    pub attempt: u32,
    /// `true` when the job failed for good; `false` when it restarted after this failure.
    pub terminal: bool,
}

/// `GET /v1/jobs/{job_id}/exceptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionHistory {
    /// Why the job failed, when it is `FAILED` (the last entry of `history`, or the
    /// JobManager's own reason, such as a rescale that could not start the job again).
    pub root_cause: Option<JobException>,
    /// Every failure of an execution attempt, newest first (at most 100): the causes of the
    /// restarts, then of the final failure.
    pub history: Vec<JobException>,
}

/// How the job takes checkpoints (Flink's checkpoint configuration tab).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSettings {
    /// `EXACTLY_ONCE` (aligned barriers) or `AT_LEAST_ONCE`.
    pub mode: String,
    /// The interval, `null` when periodic checkpoints are off.
    pub interval_ms: Option<u64>,
    /// Where checkpoints go (a URL without credentials), `null` for the engine's default.
    pub storage: Option<String>,
    /// Completed checkpoints retained.
    pub retained: Option<usize>,
    /// Where savepoints go when a request names no directory.
    pub savepoint_dir: Option<String>,
}

/// `GET /v1/jobs/{job_id}/checkpoints/overview`: counts, configuration and restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointOverview {
    /// Checkpoints (not savepoints) completed over the job's life.
    pub completed: u64,
    /// Checkpoints and savepoints that failed over the job's life.
    pub failed: u64,
    /// Savepoints requested through the API and still being written.
    pub savepoints_in_progress: usize,
    /// Savepoints requested through the API that completed.
    pub savepoints_completed: usize,
    /// Restarts after failures (each restores the latest completed checkpoint).
    pub restarts: u32,
    /// The savepoint or checkpoint the job was started from, if any.
    pub restored_from: Option<String>,
    /// The checkpoint a restart would restore now (the latest completed one).
    pub latest: Option<String>,
    /// The configuration.
    pub settings: CheckpointSettings,
}

/// A subtask running on a TaskManager, with its metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerSubtask {
    /// The vertex index in the job.
    pub vertex: usize,
    /// The vertex's name (its chain of operators).
    pub vertex_name: String,
    /// The subtask's metrics, as the TaskManager last reported them.
    pub metrics: SubtaskMetrics,
}

/// `GET /v1/taskmanagers/{task_manager_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerDetails {
    /// The TaskManager as listed under `GET /v1/taskmanagers`.
    #[serde(flatten)]
    pub info: TaskManagerInfo,
    /// Milliseconds since its last heartbeat, measured by the JobManager.
    pub heartbeat_age_ms: i64,
    /// The process's resident memory (RSS) in bytes as of its last heartbeat; `null` when
    /// it does not report it (a TaskManager before protocol 1.4).
    pub memory_rss_bytes: Option<u64>,
    /// The subtasks of the job's current attempt it runs (from its last heartbeat).
    pub subtasks: Vec<TaskManagerSubtask>,
}
