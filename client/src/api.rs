//! The request and response bodies of the JobManager REST API, shared by the server (in
//! `fjord-worker`) and the [`Client`](crate::Client), so both stay in step.
//!
//! Every body is JSON with `snake_case` field names. Times are milliseconds since the Unix
//! epoch. The OpenAPI document (`openapi.json` in this crate, served at `/v1/openapi.json`)
//! describes the same shapes for other languages.

use serde::{Deserialize, Serialize};

pub mod checkpoint_trigger;
pub mod dashboard;
pub use checkpoint_trigger::{
    CheckpointTriggerAccepted, CheckpointTriggerRequest, CheckpointTriggerStatus, CheckpointType,
    OperationState, validate_checkpoint_trigger_id,
};
pub use dashboard::{
    CheckpointOverview, CheckpointSettings, ExceptionHistory, JobException, TaskManagerDetails,
    TaskManagerSubtask,
};

/// The version prefix of every API path.
pub const API_PREFIX: &str = "/v1";

/// Paths of the API, relative to the server root, as the router declares them (`{name}` is a
/// path parameter). The server's router is built from these and the OpenAPI test checks that
/// each appears in the document.
pub mod paths {
    /// `GET`: liveness.
    pub const HEALTHZ: &str = "/v1/healthz";
    /// `GET`: readiness.
    pub const READYZ: &str = "/v1/readyz";
    /// `GET`: the effective configuration.
    pub const CONFIG: &str = "/v1/config";
    /// `GET`: this document.
    pub const OPENAPI: &str = "/v1/openapi.json";
    /// `GET`: the jobs of this JobManager.
    pub const JOBS: &str = "/v1/jobs";
    // `POST` on JOBS (session JobManagers): submit a job, see `SubmitJobRequest`.
    /// `GET`: one job with its vertices.
    pub const JOB: &str = "/v1/jobs/{job_id}";
    /// `POST`: cancel the job.
    pub const CANCEL: &str = "/v1/jobs/{job_id}/cancel";
    /// `GET`: checkpoint history. `POST`: trigger a checkpoint now (Flink's manual checkpoint).
    pub const CHECKPOINTS: &str = "/v1/jobs/{job_id}/checkpoints";
    /// `GET`: status of a manual checkpoint trigger.
    pub const CHECKPOINT_TRIGGER: &str = "/v1/jobs/{job_id}/checkpoints/{trigger_id}";
    /// `GET`: the latest completed checkpoint.
    pub const LATEST_CHECKPOINT: &str = "/v1/jobs/{job_id}/checkpoints/latest";
    /// `POST`: trigger a savepoint.
    pub const SAVEPOINTS: &str = "/v1/jobs/{job_id}/savepoints";
    /// `GET`: status of a savepoint trigger.
    pub const SAVEPOINT: &str = "/v1/jobs/{job_id}/savepoints/{trigger_id}";
    /// `POST`: stop the job with a savepoint.
    pub const STOP: &str = "/v1/jobs/{job_id}/stop";
    /// `POST`: rescale the job.
    pub const RESCALE: &str = "/v1/jobs/{job_id}/rescale";
    /// `GET`: the status of a rescale.
    pub const RESCALE_STATUS: &str = "/v1/jobs/{job_id}/rescale/{trigger_id}";
    /// `POST`: delete a savepoint's files.
    pub const DISPOSE_SAVEPOINT: &str = "/v1/savepoints/dispose";
    /// `GET`: the TaskManagers registered with this JobManager.
    pub const TASK_MANAGERS: &str = "/v1/taskmanagers";
    /// `GET`: Prometheus metrics (text format), outside the versioned prefix by convention.
    pub const METRICS: &str = "/metrics";
}

/// Error codes in [`ErrorBody::error`]: stable, machine-readable names.
pub mod codes {
    /// No route or no such job.
    pub const NOT_FOUND: &str = "not_found";
    /// No job with the given ID.
    pub const JOB_NOT_FOUND: &str = "job_not_found";
    /// No savepoint was ever triggered with this trigger ID on this JobManager.
    pub const UNKNOWN_TRIGGER: &str = "unknown_trigger";
    /// The request body or a parameter is malformed.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The request body is larger than the server accepts (`rest.server.max-content-length`).
    pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
    /// The HTTP method is not allowed on this path.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The JobManager has no job yet.
    pub const NOT_READY: &str = "not_ready";
    /// The request needs a running job, and the job is not running (HTTP 409).
    pub const JOB_NOT_RUNNING: &str = "job_not_running";
    /// A job with this ID is already running on this JobManager (HTTP 409).
    pub const JOB_EXISTS: &str = "job_exists";
    /// The JobManager runs in application mode and takes no submissions (HTTP 409).
    pub const NOT_A_SESSION: &str = "not_a_session";
    /// TaskManagers offer too few slots for the requested parallelism (HTTP 409).
    pub const NOT_ENOUGH_SLOTS: &str = "not_enough_slots";
    /// The feature is defined in the API but not available in the server's version (HTTP
    /// 501). This version's JobManager serves every route of the API and never answers it.
    pub const NOT_IMPLEMENTED: &str = "not_implemented";
    /// The server failed unexpectedly.
    pub const INTERNAL: &str = "internal";
    /// The request carries no valid `Authorization: Bearer` token (HTTP 401).
    pub const UNAUTHORIZED: &str = "unauthorized";
}

/// The body of every error response (4xx and 5xx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code from [`codes`].
    pub error: String,
    /// What went wrong and what to do about it, for a person.
    pub message: String,
}

/// `GET /v1/healthz` and `GET /v1/readyz` when the answer is yes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `"ok"` for health, `"ready"` for readiness.
    pub status: String,
}

/// The state of a job (Flink's job status names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Built and about to be deployed.
    Created,
    /// Deployed and processing.
    Running,
    /// Cancel was requested; tasks are stopping.
    Cancelling,
    /// Cancelled (by the API or a signal); will not run again in this JobManager.
    Canceled,
    /// Every source ended and all records were processed.
    Finished,
    /// Failed; [`JobDetails::failure`] says why.
    Failed,
}

impl JobState {
    /// True when the job will not run again in this JobManager.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Canceled | Self::Finished | Self::Failed)
    }

    /// The state's name as in JSON (`RUNNING`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Running => "RUNNING",
            Self::Cancelling => "CANCELLING",
            Self::Canceled => "CANCELED",
            Self::Finished => "FINISHED",
            Self::Failed => "FAILED",
        }
    }

    /// Every state, in lifecycle order (for metrics that export one series per state).
    pub const ALL: [JobState; 6] = [
        Self::Created,
        Self::Running,
        Self::Cancelling,
        Self::Canceled,
        Self::Finished,
        Self::Failed,
    ];
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One job in `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Job ID (a 32-digit hex string, stable for the life of the JobManager).
    pub id: String,
    /// Registered job name.
    pub name: String,
    /// Current state.
    pub state: JobState,
}

/// `GET /v1/jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs; in application mode at most one.
    pub jobs: Vec<JobSummary>,
}

/// `POST /v1/jobs` (session JobManagers only): run a registered job on the session's
/// TaskManagers, sharing their slots with the session's other jobs (Flink's `/jars/:id/run`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SubmitJobRequest {
    /// The registered job to run (see `fjord list`).
    pub job: String,
    /// Its arguments (`--key value` pairs).
    #[serde(default)]
    pub args: Vec<String>,
    /// Its parallelism; default: the session's `job.parallelism`, else the number of cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<usize>,
    /// Its max parallelism (key groups); default: the session's, else Flink's rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallelism: Option<usize>,
    /// The job ID (32 hex digits): its checkpoints go to `<storage>/<job id>/`, and a job
    /// submitted again under the same ID resumes from its latest completed checkpoint.
    /// Default: derived from the job name and arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Start from this savepoint or checkpoint (a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,
    /// With `restore_path`: drop state of operators the job no longer has.
    #[serde(default)]
    pub allow_non_restored_state: bool,
}

/// The answer to `POST /v1/jobs`: the job was built and is being deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitJobResponse {
    /// Job ID.
    pub id: String,
    /// The registered job name.
    pub name: String,
    /// State after the submission (`CREATED` until its tasks run).
    pub state: JobState,
}

/// `GET /v1/jobs/{job_id}`: the job with its vertices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDetails {
    /// Job ID.
    pub id: String,
    /// Registered job name.
    pub name: String,
    /// The job's arguments.
    pub args: Vec<String>,
    /// Current state.
    pub state: JobState,
    /// Why the job failed (the root cause naming the operator and subtask), when `FAILED`.
    pub failure: Option<String>,
    /// When the job was submitted (ms since the epoch).
    pub start_time_ms: i64,
    /// When the job reached a terminal state (ms since the epoch).
    pub end_time_ms: Option<i64>,
    /// Milliseconds from start to end, or to now while running.
    pub duration_ms: i64,
    /// How many times the job restarted after a failure (execution attempts - 1).
    pub restarts: u32,
    /// The chains of operators that run as tasks.
    pub vertices: Vec<Vertex>,
    /// The network edges between vertices.
    pub edges: Vec<Edge>,
}

/// A vertex (task): a chain of operators with one parallelism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// Index of the vertex in the job.
    pub id: usize,
    /// Flink-style chain name: operator names joined by ` -> `.
    pub name: String,
    /// Number of parallel subtasks.
    pub parallelism: usize,
    /// Number of key groups.
    pub max_parallelism: usize,
    /// Records the vertex received from other vertices, summed over subtasks (0 for sources).
    pub records_in: u64,
    /// Records the vertex sent to other vertices, summed over subtasks (0 for a chain that ends
    /// in sinks; a record sent on two edges, or broadcast, counts once per receiving channel).
    pub records_out: u64,
    /// The vertex's subtasks with their counts.
    pub subtasks: Vec<SubtaskMetrics>,
    /// The chained operators' names, head first.
    pub operators: Vec<String>,
}

/// The metrics of one subtask of a vertex: records in and out (Flink's task-level
/// `numRecordsIn/Out`), bytes, where its time went and its watermarks. Fields after
/// `records_out` were added later and default when absent (an older server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskMetrics {
    /// Zero-based subtask index.
    pub subtask: usize,
    /// Records this subtask received from other vertices.
    pub records_in: u64,
    /// Records this subtask sent to other vertices.
    pub records_out: u64,
    /// Bytes received over the network (0 between subtasks of one process: they pass objects).
    #[serde(default)]
    pub bytes_in: u64,
    /// Bytes sent over the network (0 between subtasks of one process).
    #[serde(default)]
    pub bytes_out: u64,
    /// Cumulative milliseconds blocked on a full output channel (backpressure).
    #[serde(default)]
    pub backpressured_ms: u64,
    /// Cumulative milliseconds waiting for input with nothing to do.
    #[serde(default)]
    pub idle_ms: u64,
    /// Cumulative milliseconds working: wall time minus idle and backpressured time.
    #[serde(default)]
    pub busy_ms: u64,
    /// The subtask's current input watermark (minimum over its inputs, ms of event time);
    /// `None` before the first watermark and for sources.
    #[serde(default)]
    pub input_watermark: Option<i64>,
    /// The last watermark the subtask sent to other vertices; `None` before the first one and
    /// for chains that end in sinks.
    #[serde(default)]
    pub output_watermark: Option<i64>,
}

/// A network edge between two vertices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Producing vertex.
    pub source: usize,
    /// Consuming vertex.
    pub target: usize,
    /// Partitioner: FORWARD, REBALANCE, HASH, BROADCAST, ...
    pub partitioner: String,
    /// The side output the edge carries, if any.
    pub side_output: Option<String>,
}

/// `POST /v1/jobs/{job_id}/cancel`: the state after the request (`CANCELLING` while tasks stop,
/// or the terminal state if the job had already ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelResponse {
    /// Job ID.
    pub id: String,
    /// State after the request.
    pub state: JobState,
}

/// A completed checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// Checkpoint ID, increasing per job.
    pub id: i64,
    /// Where it is stored (a URL under the storage URL).
    pub path: String,
    /// When it completed (ms since the epoch).
    pub completed_at_ms: i64,
    /// Bytes written.
    pub size_bytes: u64,
    /// Milliseconds from trigger to completion.
    pub duration_ms: u64,
    /// True for a savepoint.
    pub savepoint: bool,
}

/// `GET /v1/jobs/{job_id}/checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointHistory {
    /// The checkpoint interval, `null` when periodic checkpoints are off (savepoints still work).
    pub interval_ms: Option<u64>,
    /// The most recent completed checkpoints and savepoints (at most 100), newest first.
    pub completed: Vec<CheckpointInfo>,
    /// Number of failed checkpoints.
    pub failed: u64,
    /// The most recent failed or aborted checkpoints and savepoints (at most 100), newest
    /// first, each with the reason.
    #[serde(default)]
    pub failed_history: Vec<FailedCheckpointInfo>,
    /// The checkpoints and savepoints waiting for acknowledgements, oldest first, with the
    /// acknowledgements per vertex so far. Empty once the job ended.
    #[serde(default)]
    pub in_progress: Vec<PendingCheckpointInfo>,
}

/// A failed or aborted checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCheckpointInfo {
    /// Checkpoint ID.
    pub id: i64,
    /// True for a savepoint.
    pub savepoint: bool,
    /// When it was triggered (ms since the epoch).
    pub triggered_at_ms: i64,
    /// When it failed (ms since the epoch).
    pub failed_at_ms: i64,
    /// Why: a task declined it, it timed out, writing it failed, or the job (attempt) ended
    /// before it completed.
    pub reason: String,
}

/// A checkpoint or savepoint in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCheckpointInfo {
    /// Checkpoint ID.
    pub id: i64,
    /// True for a savepoint.
    pub savepoint: bool,
    /// When it was triggered (ms since the epoch).
    pub triggered_at_ms: i64,
    /// Per vertex of the job graph, in the order of `GET /v1/jobs/{job_id}`'s `vertices`.
    pub vertices: Vec<VertexAcknowledgements>,
}

/// How many subtasks of a vertex acknowledged a checkpoint in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexAcknowledgements {
    /// The vertex's `id`.
    pub vertex: usize,
    /// Subtasks that acknowledged it.
    pub acknowledged: u32,
    /// The vertex's parallelism.
    pub parallelism: u32,
}

/// `GET /v1/jobs/{job_id}/checkpoints/latest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestCheckpoint {
    /// The latest completed checkpoint, `null` if none completed yet.
    pub checkpoint: Option<CheckpointInfo>,
}

/// `POST /v1/jobs/{job_id}/savepoints` and `POST /v1/jobs/{job_id}/stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointRequest {
    /// Chosen by the caller (1 to 128 characters of `[A-Za-z0-9._-]`). Sending the same trigger
    /// ID again returns the first request's savepoint instead of starting another, so a retry
    /// after a lost answer is safe.
    pub trigger_id: String,
    /// Where to write the savepoint (a URL); `null` uses the configured savepoint directory.
    #[serde(default)]
    pub directory: Option<String>,
    /// Stop only: emit the final watermark first so event-time windows fire (Flink's
    /// `--drain`, for jobs that will not resume). Ignored by plain savepoints.
    #[serde(default)]
    pub drain: bool,
}

/// `POST /v1/jobs/{job_id}/savepoints` and `/stop` when accepted (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointAccepted {
    /// The trigger ID to poll with.
    pub trigger_id: String,
}

/// Progress of a savepoint trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SavepointState {
    /// Being written.
    InProgress,
    /// Written; `path` is set.
    Completed,
    /// Failed; `failure` is set. For stop-with-savepoint the job keeps running.
    Failed,
}

/// `GET /v1/jobs/{job_id}/savepoints/{trigger_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointStatus {
    /// The trigger ID.
    pub trigger_id: String,
    /// Progress.
    pub state: SavepointState,
    /// Location of the completed savepoint.
    pub path: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// `POST /v1/jobs/{job_id}/rescale`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescaleRequest {
    /// The new default parallelism (at least 1, at most the max parallelism).
    pub parallelism: usize,
    /// The caller's ID for this rescale (like a savepoint's trigger ID): a repeated request
    /// with the same ID starts nothing. The JobManager picks one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
}

/// `GET /v1/jobs/{job_id}/rescale/{trigger_id}`: how a rescale in place went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescaleStatus {
    /// The trigger ID.
    pub trigger_id: String,
    /// `IN_PROGRESS` while the savepoint is taken and the job restarted from it; `COMPLETED`
    /// once it runs at the new parallelism; `FAILED` with `failure`.
    pub state: SavepointState,
    /// The requested parallelism.
    pub parallelism: usize,
    /// The savepoint the job restarted from, once taken.
    pub savepoint_path: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// `POST /v1/savepoints/dispose`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisposeSavepointRequest {
    /// The savepoint's path as reported when it completed.
    pub path: String,
}

/// `GET /v1/config`: the JobManager's effective configuration (after flags, environment and
/// config file), with credentials removed from URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Version of the `fjord` binary.
    pub version: String,
    /// How the JobManager runs its job's subtasks: `"embedded"` (all in this process) for now.
    pub execution: String,
    /// REST port.
    pub rest_port: u16,
    /// RPC port: the gRPC control plane TaskManagers register with.
    pub rpc_port: u16,
    /// Registered job name.
    pub job_name: String,
    /// The job's arguments.
    pub job_args: Vec<String>,
    /// Default parallelism, if set.
    pub parallelism: Option<usize>,
    /// Max parallelism, if set.
    pub max_parallelism: Option<usize>,
    /// Checkpoint storage URL, without credentials (`null`: the engine's default).
    pub storage_url: Option<String>,
    /// Checkpoint interval in ms (`null`: no periodic checkpoints).
    pub checkpoint_interval_ms: Option<u64>,
    /// Default savepoint directory, without credentials.
    pub savepoint_dir: Option<String>,
    /// The savepoint or checkpoint the job started from, without credentials.
    pub restore_path: Option<String>,
}

/// Whether a registered TaskManager is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskManagerState {
    /// Registered and heartbeating within the timeout.
    Registered,
    /// No heartbeat within the timeout: its slots no longer count. It becomes `REGISTERED`
    /// again when it registers anew.
    Lost,
}

impl TaskManagerState {
    /// The name as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "REGISTERED",
            Self::Lost => "LOST",
        }
    }
}

/// One TaskManager in `GET /v1/taskmanagers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerInfo {
    /// The TaskManager's ID (its Pod name under the operator).
    pub id: String,
    /// Where other TaskManagers reach it for data exchange (`host:port`).
    pub data_address: String,
    /// Its `fjord` binary version.
    pub version: String,
    /// `REGISTERED` or `LOST`.
    pub state: TaskManagerState,
    /// Task slots it has.
    pub slots: u32,
    /// Slots it offered and the JobManager accepted.
    pub slots_offered: u32,
    /// Slots the job's current attempt uses on it (0: it runs nothing, so it can go without
    /// disturbing the job; the operator removes such TaskManagers first when it scales down).
    #[serde(default)]
    pub slots_in_use: u32,
    /// When it (last) registered, ms since the epoch.
    pub registered_at_ms: i64,
    /// Its last heartbeat (or registration), ms since the epoch.
    pub last_heartbeat_ms: i64,
}

/// `GET /v1/taskmanagers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerList {
    /// Every TaskManager that registered since the JobManager started, by ID.
    pub task_managers: Vec<TaskManagerInfo>,
    /// Slots offered by `REGISTERED` TaskManagers.
    pub slots_available: u32,
    /// Slots the running attempts of this JobManager's jobs hold (a session JobManager shares
    /// the offered slots between its jobs; the free ones are `slots_available - slots_in_use`).
    #[serde(default)]
    pub slots_in_use: u32,
    /// Where the job's subtasks run: `"taskmanagers"` when the JobManager deploys them to
    /// TaskManager slots (`jobmanager.scheduler: taskmanagers`), `"jobmanager"` when they run
    /// inside the JobManager process (the embedded scheduler).
    pub subtasks_run_in: String,
    /// The heartbeat timeout after which a TaskManager is marked `LOST`, in ms.
    pub heartbeat_timeout_ms: u64,
}

/// Checks a caller-chosen trigger ID: 1 to 128 characters of `[A-Za-z0-9._-]`.
///
/// # Errors
/// A message naming the rule the ID breaks.
pub fn validate_trigger_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err(format!(
            "trigger_id must be 1 to 128 characters long, got {}",
            id.len()
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "trigger_id may contain only letters, digits, '.', '_' and '-', found {c:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_serialize_as_flink_names() {
        for state in JobState::ALL {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(serde_json::from_str::<JobState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn savepoint_request_directory_is_optional() {
        let r: SavepointRequest = serde_json::from_str(r#"{"trigger_id":"a"}"#).unwrap();
        assert_eq!(r.directory, None);
    }

    #[test]
    fn trigger_ids_are_checked() {
        assert!(validate_trigger_id("upgrade-7.gen_2").is_ok());
        assert!(validate_trigger_id("").unwrap_err().contains("1 to 128"));
        assert!(validate_trigger_id(&"x".repeat(129)).is_err());
        assert!(validate_trigger_id("a/b").unwrap_err().contains("'/'"));
    }
}
