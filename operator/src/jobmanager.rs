//! The operator's view of a JobManager: the [`JobManagerApi`] trait and its data types.
//!
//! The real implementation is [`rest::RestJobManager`], a client for the JobManager's JSON API
//! under `/v1` on the JobManager Service (through `fjord-client`); unit tests use
//! `fake::FakeJobManager`. Every call that starts something takes a
//! trigger ID chosen by the operator and recorded in the StreamJob status first, so a repeated call
//! (after an operator restart) is deduplicated by the JobManager instead of starting a second
//! savepoint.

use std::future::Future;

use fjord_crds::{CheckpointRecord, CheckpointType, JobState};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::Error;

/// Where a StreamJob's JobManager REST API lives, and how to authenticate to it.
#[derive(Clone, PartialEq, Eq)]
pub struct JobManagerEndpoint {
    /// Base URL including the API version, e.g. `http://counting-jobmanager.ns.svc:8081/v1`.
    pub base_url: String,
    /// The bearer token the JobManager wants (`spec.security.restAuth`), if any.
    pub token: Option<String>,
    /// PEM CA to trust for an `https://` base URL (`spec.security.tls.rest`), if any.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for JobManagerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("JobManagerEndpoint")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// The job as the JobManager reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Job ID.
    pub id: String,
    /// Current job state.
    pub state: JobState,
    /// Failure cause, when the job failed.
    pub failure: Option<String>,
    /// How often the job restarted after a failure (in this JobManager), if reported.
    pub restarts: Option<u32>,
    /// When the job started (in this JobManager), if reported.
    pub start_time: Option<Time>,
    /// Its vertices with their cumulative per-subtask metrics (for the autoscaler).
    pub vertices: Vec<VertexMetrics>,
}

/// One vertex (a chain of operators with one parallelism) and the cumulative metrics of its
/// subtasks since the job's current execution started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VertexMetrics {
    /// The chain's name.
    pub name: String,
    /// Its parallelism.
    pub parallelism: u32,
    /// Whether it is a source (no edge leads into it).
    pub source: bool,
    /// Per subtask, in subtask order.
    pub subtasks: Vec<SubtaskCounters>,
}

/// One subtask's cumulative counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubtaskCounters {
    /// Milliseconds working.
    pub busy_ms: u64,
    /// Milliseconds waiting for input.
    pub idle_ms: u64,
    /// Milliseconds blocked on a full output channel.
    pub backpressured_ms: u64,
    /// Records received from other vertices.
    pub records_in: u64,
    /// Records sent to other vertices.
    pub records_out: u64,
}

/// What the JobManager knows about a savepoint trigger ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavepointStatus {
    /// The JobManager has never seen this trigger ID (it was never sent, or the JobManager was
    /// replaced). Sending it again is safe.
    Unknown,
    /// The savepoint is being written.
    InProgress,
    /// The savepoint completed at this path.
    Completed {
        /// Location of the savepoint.
        path: String,
    },
    /// The savepoint failed; for stop-with-savepoint the job keeps running.
    Failed {
        /// Why, as the JobManager says.
        message: String,
    },
}

/// What the JobManager knows about a manual checkpoint's trigger ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointStatus {
    /// The JobManager has never seen this trigger ID (never sent, or the JobManager was
    /// replaced). Sending it again is safe.
    Unknown,
    /// Queued or being taken.
    InProgress,
    /// Completed.
    Completed {
        /// The checkpoint's id.
        id: u64,
        /// Where it is.
        path: String,
    },
    /// Failed; the job keeps running.
    Failed {
        /// Why, as the JobManager says.
        message: String,
    },
}

/// The JobManager REST API as the operator uses it.
///
/// Errors: [`Error::JobManagerUnreachable`] when the JobManager does not answer, and
/// [`Error::JobManagerApi`] when it answers with an error.
pub trait JobManagerApi: Send + Sync + 'static {
    /// The job running in this JobManager, or `None` if it has none (yet).
    fn job(
        &self,
        jm: &JobManagerEndpoint,
    ) -> impl Future<Output = Result<Option<JobInfo>, Error>> + Send;

    /// Start a savepoint of a running job into `directory`. Idempotent per `trigger_id`.
    fn trigger_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Stop the job with a final savepoint into `directory`. If the savepoint fails the job keeps
    /// running. Idempotent per `trigger_id`.
    fn stop_with_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// What became of the savepoint started with `trigger_id`.
    fn savepoint_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> impl Future<Output = Result<SavepointStatus, Error>> + Send;

    /// Take a checkpoint of a running job now (Flink's manual checkpoint). Idempotent per
    /// `trigger_id`.
    fn trigger_checkpoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        kind: CheckpointType,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// What became of the manual checkpoint started with `trigger_id`.
    fn checkpoint_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> impl Future<Output = Result<CheckpointStatus, Error>> + Send;

    /// Cancel the job without a savepoint. Cancelling a job that is not running succeeds.
    fn cancel(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// The latest completed checkpoint of the job, if any.
    fn latest_checkpoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
    ) -> impl Future<Output = Result<Option<CheckpointRecord>, Error>> + Send;

    /// Rescale the running job in place to `parallelism` (the JobManager takes a savepoint and
    /// restarts the job's tasks from it at the new parallelism; same job). Idempotent per
    /// `trigger_id`. Refused while TaskManagers offer too few slots.
    fn rescale(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        parallelism: i32,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// What became of the rescale in place started with `trigger_id` (`Completed` once the job
    /// runs at the new parallelism, with the savepoint it restarted from).
    fn rescale_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> impl Future<Output = Result<SavepointStatus, Error>> + Send;

    /// The IDs (Pod names) of the TaskManagers the job's current attempt runs on.
    fn busy_task_managers(
        &self,
        jm: &JobManagerEndpoint,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// Delete a savepoint's files. Disposing of a savepoint that no longer exists succeeds.
    fn dispose_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        path: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

#[cfg(test)]
pub mod fake;
pub mod rest;
