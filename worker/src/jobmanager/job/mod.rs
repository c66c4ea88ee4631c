//! The job a JobManager runs: its lifecycle as an explicit state machine, its savepoints by
//! trigger ID, and what the REST API and `/metrics` read about it.
//!
//! Subtasks run in this process on the embedded mini-cluster, or on TaskManagers through the
//! [`ClusterDeployer`](super::deployer::ClusterDeployer); the state machine and what the API
//! reports are the same for both.
//!
//! This module holds the [`JobManager`] and its state; each child module is one concept:
//! `build` builds and executes the job, `start` starts the JobManager's job (or reports
//! one that already ended), `lifecycle` is the state machine, `waiter` handles the end of
//! an execution, `savepoints` and `rescale` are the savepoint and rescale requests,
//! `manual_checkpoints` the manual checkpoint requests, `checkpoint_history` and
//! `report` what the API reads about checkpoints and about the job, and `insight` what
//! only the dashboard reads.
//!
//! # Locks
//!
//! Each mutex of [`JobManager`] guards one thing (all are taken through `lock`, which
//! ignores poisoning):
//!
//! | mutex | guards | written by |
//! | --- | --- | --- |
//! | `status` | state, failure and end time | `lifecycle` (`apply`) |
//! | `client` | the engine's handle of the running execution | `waiter` takes it, `rescale` sets the new one |
//! | `execution` | the current execution's plan, metrics and cancel/suspend functions | `start`, `rescale` |
//! | `rescaling` | whether a rescale runs, and what it means for the end of the execution | `rescale`, read by `waiter` |
//! | `rescales` | rescale statuses by trigger ID | `rescale` |
//! | `savepoints` | savepoint statuses by trigger ID | `savepoints` |
//! | `manual_checkpoints` | manual checkpoint statuses by trigger ID | `manual_checkpoints` |
//! | `final_checkpoints` | the checkpoint history and restarts kept when an execution ended | `waiter` |
//! | `final_io`, `final_operator_metrics` | the metrics kept when an execution ended | `waiter`, cleared by `rescale` |
//!
//! Most locks are held only for one read or write. The ones held while others are taken, in
//! the order they are taken: `rescales` → `savepoints` → `rescaling` (a rescale request
//! holds all three); a savepoint request holds `savepoints` and a manual checkpoint request
//! `manual_checkpoints` while they briefly take `rescaling`; all three request maps are held
//! while `status` and `client` are briefly taken (`state()`, `client()`), and a rescale
//! request builds the job at the new parallelism and counts the TaskManagers' free slots
//! while it holds its three. No lock is held while another thread is waited for.

use super::config::JobManagerConfig;
use super::deployer::AttemptRouter;
use super::registry::TaskManagerRegistry;
use crate::local::LocalRun;
use fjord::checkpoint::CompletedCheckpoint;
use fjord::metrics::MetricSample;
use fjord::runtime::io_metrics::{IoMetrics, OperatorIo};
use fjord::{JobClient, JobPlan, JobRegistry};
use fjord_client::api::{JobState, RescaleStatus, SavepointStatus};
use rescale::Rescaling;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

mod build;
mod checkpoint_history;
mod insight;
mod lifecycle;
mod manual_checkpoints;
mod report;
mod rescale;
mod savepoints;
mod start;
mod waiter;

pub use build::ClusterParts;
pub use lifecycle::{JobEvent, transition};
pub use savepoints::SavepointRefusal;

/// The job's state as the lifecycle moved it, and when it ended.
struct Status {
    state: JobState,
    failure: Option<String>,
    end_time_ms: Option<i64>,
    ended: Option<Instant>,
}

/// Checkpoint history and restarts captured when the job ended (the client is gone then).
#[derive(Default)]
struct FinalCheckpoints {
    recent: Vec<CompletedCheckpoint>,
    failed: u64,
    /// The most recent failed checkpoints, oldest first.
    failed_recent: Vec<fjord::checkpoint::FailedCheckpoint>,
    latest: Option<String>,
    /// Checkpoints completed and failed, in total.
    counts: (u64, u64),
    restarts: u32,
    /// The attempts' failures (see [`insight`]).
    failures: Vec<fjord::checkpoint::JobFailure>,
}

/// The job's current execution (a rescale replaces it).
struct Execution {
    plan: Arc<JobPlan>,
    io: IoMetrics,
    /// The operators' own counters and gauges (in this process's scheduler).
    metrics: fjord::metrics::MetricRegistry,
    cancel: Arc<dyn Fn() + Send + Sync>,
    /// Cancels but keeps the checkpoints (SIGTERM: the process goes, the job does not).
    suspend: Arc<dyn Fn() + Send + Sync>,
}

/// Everything needed to start the job again (for a rescale).
struct Launcher {
    registry: JobRegistry,
    config: JobManagerConfig,
    cluster: Option<ClusterParts>,
}

/// The JobManager's one job.
pub struct JobManager {
    id: String,
    run: LocalRun,
    execution: Mutex<Execution>,
    launcher: Launcher,
    /// Set while a rescale runs; read by the waiter when an execution ends.
    rescaling: Mutex<Option<Rescaling>>,
    rescales: Mutex<BTreeMap<String, RescaleStatus>>,
    /// With TaskManagers: where their reported task metrics are, and who is alive.
    remote_io: Option<(Arc<AttemptRouter>, Arc<TaskManagerRegistry>)>,
    /// The task metrics when the job ended (TaskManagers may go away after).
    final_io: Mutex<Option<Vec<OperatorIo>>>,
    /// The operator metrics when the job ended.
    final_operator_metrics: Mutex<Option<Vec<MetricSample>>>,
    /// The engine's handle while the job runs; taken by the waiter when it ends.
    client: Mutex<Option<Arc<JobClient>>>,
    final_checkpoints: Mutex<FinalCheckpoints>,
    savepoints: Mutex<BTreeMap<String, SavepointStatus>>,
    /// Manual checkpoints by trigger ID (see [`manual_checkpoints`]).
    manual_checkpoints: Mutex<BTreeMap<String, fjord_client::api::CheckpointTriggerStatus>>,
    savepoint_dir: Option<String>,
    /// Where a rescale's savepoint goes when no savepoint directory is set.
    checkpoint_storage: Option<String>,
    checkpoint_interval_ms: Option<u64>,
    start_time_ms: i64,
    started: Instant,
    status: Mutex<Status>,
    state_tx: watch::Sender<JobState>,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager")
            .field("id", &self.id)
            .field("job", &self.run.job)
            .field("state", &self.state())
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl JobManager {
    /// The engine's client while the job runs.
    fn client(&self) -> Option<Arc<JobClient>> {
        lock(&self.client).clone()
    }

    /// The engine's client for a savepoint or a manual checkpoint (`what`, in the refusal):
    /// refused while a rescale runs or when the job is not running.
    fn client_for_snapshot(&self, what: &str) -> Result<Arc<JobClient>, SavepointRefusal> {
        if lock(&self.rescaling).is_some() {
            return Err(SavepointRefusal::Busy(format!(
                "a rescale is in progress; {what} once it completed (GET \
                 /v1/jobs/{{job_id}}/rescale/{{trigger_id}})"
            )));
        }
        let state = self.state();
        match (state, self.client()) {
            (fjord_client::api::JobState::Running, Some(client)) => Ok(client),
            _ => Err(SavepointRefusal::NotRunning(state)),
        }
    }

    /// The job ID (32 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }
}
