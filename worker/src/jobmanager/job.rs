//! The job a JobManager runs: its lifecycle as an explicit state machine, its savepoints by
//! trigger ID, and what the REST API and `/metrics` read about it.
//!
//! Subtasks run in this process on the embedded mini-cluster, or on TaskManagers through the
//! [`ClusterDeployer`](super::deployer::ClusterDeployer); the state machine and what the API
//! reports are the same for both.

use super::config::JobManagerConfig;
use super::deployer::{AttemptRouter, ClusterDeployer, JobDescription};
use super::registry::TaskManagerRegistry;
use crate::WorkerError;
use crate::local::LocalRun;
use fjord::checkpoint::job_result::{JOB_RESULT_FILE, JobResult, TerminalState, read_job_result};
use fjord::checkpoint::{CheckpointingMode, CompletedCheckpoint};
use fjord::metrics::MetricSample;
use fjord::runtime::io_metrics::{IoMetrics, OperatorIo};
use fjord::storage::StorageOptions;
use fjord::{FjordError, JobArgs, JobClient, JobPlan, JobRegistry, StreamExecutionEnvironment};
use fjord_client::api::{
    CheckpointHistory, CheckpointInfo, Edge, FailedCheckpointInfo, JobDetails, JobState,
    JobSummary, PendingCheckpointInfo, RescaleStatus, SavepointState, SavepointStatus,
    SubtaskMetrics, Vertex, VertexAcknowledgements,
};
use fjord_proto::v1::JobSettings;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

mod insight;
mod manual_checkpoints;

/// What happens to a job; [`transition`] decides the next state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// Its tasks were deployed.
    Deployed,
    /// Someone asked to cancel it (REST or signal).
    CancelRequested,
    /// Every task ended successfully.
    Finished,
    /// A task failed; the message is the root cause.
    Failed(String),
    /// The tasks stopped after a cancel request.
    Cancelled,
}

/// The job lifecycle in one place: the state after `event` in state `from`, or `None` when the
/// event does not apply (for example a cancel request after the job finished).
pub fn transition(from: JobState, event: &JobEvent) -> Option<JobState> {
    use JobEvent as E;
    use JobState as S;
    match (from, event) {
        (S::Created, E::Deployed) => Some(S::Running),
        (S::Created | S::Running, E::CancelRequested) => Some(S::Cancelling),
        (S::Created | S::Running | S::Cancelling, E::Finished) => Some(S::Finished),
        (S::Created | S::Running | S::Cancelling, E::Failed(_)) => Some(S::Failed),
        (S::Created | S::Running | S::Cancelling, E::Cancelled) => Some(S::Canceled),
        _ => None,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A job ID that is the same every time the same job runs with the same arguments (FNV-1a
/// over name and canonically spelled arguments, twice with different seeds): `--rate 10000`
/// and `--rate 10000.0` name the same job.
fn derived_job_id(name: &str, args: &[String]) -> String {
    fjord_client::job_id::derive(
        std::iter::once(name)
            .chain(args.iter().map(String::as_str))
            .flat_map(|s| s.bytes().chain(std::iter::once(0))),
    )
}

/// The job of `config` built with its checkpoint settings and restore path applied first (the
/// job's own code may override them, as in Flink), at `parallelism` when set.
fn build_env(
    registry: &JobRegistry,
    config: &JobManagerConfig,
    parallelism: Option<usize>,
) -> Result<StreamExecutionEnvironment, WorkerError> {
    build_env_with_args(registry, config, parallelism).map(|(env, _)| env)
}

/// [`build_env`], also returning the job's arguments spelled canonically (see
/// [`JobArgs::canonical`]).
fn build_env_with_args(
    registry: &JobRegistry,
    config: &JobManagerConfig,
    parallelism: Option<usize>,
) -> Result<(StreamExecutionEnvironment, Vec<String>), WorkerError> {
    let run = &config.job;
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = parallelism {
        env.set_parallelism(p);
    }
    if let Some(m) = run.max_parallelism {
        env.set_max_parallelism(m);
    }
    if let Some(ms) = config.checkpoint_interval_ms.filter(|ms| *ms > 0) {
        env.enable_checkpointing(Duration::from_millis(ms));
    }
    env.checkpoint_config(|c| {
        if let Some(url) = &config.storage_url {
            c.storage = url.clone();
        }
        if config.at_least_once {
            c.mode = CheckpointingMode::AtLeastOnce;
        }
        if let Some(n) = config.retained {
            c.retained = n.max(1);
        }
        c.retain_on_cancellation = config.retain_on_cancellation;
        c.storage_options = StorageOptions::from_pairs(config.storage_options.clone());
        // A highly available JobManager completes checkpoints only while it leads.
        c.fence = super::ha::process_fence();
    });
    if let Some(path) = &config.restore_path {
        env.restore_from(path, config.allow_non_restored_state);
    }
    let args = JobArgs::parse(run.args.iter().cloned())?;
    registry.build(&run.job, &env, &args)?;
    Ok((env, args.canonical()))
}

/// Starts the built job: on the embedded mini-cluster, or with `cluster` on TaskManagers.
fn execute(
    env: &StreamExecutionEnvironment,
    config: &JobManagerConfig,
    cluster: Option<&ClusterParts>,
) -> Result<JobClient, WorkerError> {
    let run = &config.job;
    let effective = env.config();
    Ok(match cluster {
        None => env.execute_async(&run.job)?,
        Some(parts) => {
            let description = JobDescription {
                name: run.job.clone(),
                args: run.args.clone(),
                settings: JobSettings {
                    parallelism: effective.parallelism as u32,
                    max_parallelism: effective.max_parallelism.unwrap_or(0) as u32,
                    checkpoint_storage: effective.checkpoints.storage.clone(),
                    at_least_once: effective.checkpoints.mode == CheckpointingMode::AtLeastOnce,
                    checkpoint_interval_ms: effective
                        .checkpoints
                        .interval
                        .map_or(0, |d| d.as_millis() as u64),
                },
            };
            let slot_wait = if config.wait_for_slots.is_zero() {
                DEFAULT_SLOT_WAIT
            } else {
                config.wait_for_slots
            };
            let deployer = ClusterDeployer::new(
                parts.registry.clone(),
                parts.router.clone(),
                parts.runtime.clone(),
                description,
                slot_wait,
            )
            .with_tls(parts.tls.clone());
            env.execute_async_on(&run.job, Arc::new(deployer))?
        }
    })
}

/// How long an attempt waits for slots when `jobmanager.wait-for-slots` is not set (Flink's
/// `slot.request.timeout` default).
const DEFAULT_SLOT_WAIT: Duration = Duration::from_secs(300);

/// What deploying onto TaskManagers needs from the JobManager process.
#[derive(Clone)]
pub struct ClusterParts {
    /// The registered TaskManagers.
    pub registry: Arc<TaskManagerRegistry>,
    /// Routes their reports to the running attempt.
    pub router: Arc<AttemptRouter>,
    /// Where control-plane calls run.
    pub runtime: tokio::runtime::Handle,
    /// Mutual TLS to the TaskManagers, when the cluster uses it.
    pub tls: Option<fjord::tls::InternalTls>,
}

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

/// Why a savepoint or rescale request was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavepointRefusal {
    /// The job is not running.
    NotRunning(JobState),
    /// No directory in the request and none configured.
    NoDirectory,
    /// A rescale or savepoint is in progress; the message says which.
    Busy(String),
    /// TaskManagers offer too few slots for the new parallelism.
    NotEnoughSlots {
        /// Slots the job needs at the new parallelism.
        required: usize,
        /// Slots offered now.
        available: usize,
    },
    /// The job cannot be built at the new parallelism (the job's error).
    Invalid(String),
}

/// What a rescale in progress means for the end of the execution it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rescaling {
    /// The stop-with-savepoint is under way.
    Pending,
    /// A new execution replaced the one that ended.
    Replaced,
    /// The job was cancelled during the rescale.
    Cancelled,
    /// The new execution could not start; the job fails with this message.
    StartFailed(String),
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

impl JobManager {
    /// Builds the job from `registry` with the configuration's checkpoint settings and restore
    /// path applied first (the job's own code may override them, as in Flink), and starts it on
    /// the embedded mini-cluster (every subtask in this process). Returns once the job is
    /// started; it runs in the background.
    ///
    /// # Errors
    /// An unknown job name (listing the registered ones), malformed arguments, a bad storage
    /// URL, or an error the job's build function returns; nothing runs then.
    pub fn start(
        registry: &JobRegistry,
        config: &JobManagerConfig,
    ) -> Result<Arc<Self>, WorkerError> {
        Self::start_when(registry, config, |_, _| Ok(()), None)
    }

    /// [`start`](Self::start), but calls `ready` with the job ID and the built job's plan
    /// before executing it; an error from `ready` (not enough slots) is returned and nothing
    /// runs. With
    /// `cluster`, subtasks are deployed to the registered TaskManagers instead of running in
    /// this process, the job ID is stable (configured, or derived from the job name and
    /// arguments), and the job resumes from the latest completed checkpoint found under
    /// `<storage>/<job id>/` (a restarted JobManager carries on where the old one stopped).
    ///
    /// # Errors
    /// Those of [`start`](Self::start), and `ready`'s.
    pub fn start_when(
        registry: &JobRegistry,
        config: &JobManagerConfig,
        ready: impl FnOnce(&str, &JobPlan) -> Result<(), WorkerError>,
        cluster: Option<ClusterParts>,
    ) -> Result<Arc<Self>, WorkerError> {
        let run = &config.job;
        let (env, canonical_args) = build_env_with_args(registry, config, run.parallelism)?;
        let job_id = match (&config.job_id, &cluster) {
            (Some(id), _) => id.clone(),
            (None, Some(_)) => derived_job_id(&run.job, &canonical_args),
            (None, None) => new_job_id(),
        };
        env.set_job_id(&job_id);
        if (config.job_id.is_some() || cluster.is_some())
            && let Some(storage) = &config.storage_url
        {
            let options = StorageOptions::from_pairs(config.storage_options.clone());
            // A job that ended is not run again (Flink's JobResultStore): its checkpoints are
            // gone, so running it would write its whole output a second time.
            if let Some(result) = read_job_result(storage, &options, &job_id)? {
                eprintln!(
                    "Job {job_id} already ended {} (recorded in {storage}/{job_id}/{JOB_RESULT_FILE}); \
                     not running it again. To run it again, give it another job ID or delete that record.",
                    result.state
                );
                return Self::ended(env, config, job_id, cluster, &result);
            }
            if let Some(latest) =
                fjord::checkpoint::latest_completed_checkpoint(storage, &options, &job_id)?
            {
                eprintln!("Resuming job {job_id} from its latest completed checkpoint {latest}");
                if let Some(ignored) = config
                    .restore_path
                    .as_deref()
                    .map(super::config::redact_url)
                {
                    eprintln!(
                        "The restore path {ignored} is not used: job {job_id} has completed checkpoints, and a JobManager carries on from its job's latest one. To start from that savepoint (for example after a stop-with-savepoint), give the job a new ID (--job-id / job.id)"
                    );
                }
                env.restore_from(&latest, config.allow_non_restored_state);
            }
        }
        let plan = env.get_execution_plan()?;
        ready(&job_id, &plan)?;
        let effective = env.config();
        let (state_tx, _) = watch::channel(JobState::Created);
        let remote_io = cluster
            .as_ref()
            .map(|parts| (parts.router.clone(), parts.registry.clone()));
        let client = execute(&env, config, cluster.as_ref())?;
        let job = Arc::new(JobManager {
            id: job_id,
            run: run.clone(),
            execution: Mutex::new(Execution {
                plan: Arc::new(plan),
                io: client.io_metrics(),
                metrics: client.metrics(),
                cancel: Arc::new(client.canceller()),
                suspend: Arc::new(client.suspender()),
            }),
            launcher: Launcher {
                registry: registry.clone(),
                config: config.clone(),
                cluster,
            },
            rescaling: Mutex::new(None),
            rescales: Mutex::new(BTreeMap::new()),
            remote_io,
            final_io: Mutex::new(None),
            final_operator_metrics: Mutex::new(None),
            client: Mutex::new(Some(Arc::new(client))),
            final_checkpoints: Mutex::new(FinalCheckpoints::default()),
            savepoints: Mutex::new(BTreeMap::new()),
            manual_checkpoints: Mutex::new(BTreeMap::new()),
            savepoint_dir: config.savepoint_dir.clone(),
            checkpoint_storage: config.storage_url.clone(),
            checkpoint_interval_ms: effective.checkpoints.interval.map(|d| d.as_millis() as u64),
            start_time_ms: now_ms(),
            started: Instant::now(),
            status: Mutex::new(Status {
                state: JobState::Created,
                failure: None,
                end_time_ms: None,
                ended: None,
            }),
            state_tx,
        });
        match job.remote_io.as_ref().map(|(router, _)| router.clone()) {
            // Subtasks on TaskManagers: RUNNING once they accepted their tasks, not while the
            // JobManager still waits for slots (the operator reports Ready from RUNNING).
            Some(router) => {
                let deployed = job.clone();
                std::thread::Builder::new()
                    .name("job deployed".into())
                    .spawn(move || {
                        while deployed.state() == JobState::Created {
                            if router.tasks_deployed() {
                                deployed.apply(JobEvent::Deployed);
                                break;
                            }
                            std::thread::park_timeout(Duration::from_millis(20));
                        }
                    })
                    .map_err(|e| FjordError::io("cannot start the job watcher thread", e))?;
            }
            None => {
                job.apply(JobEvent::Deployed);
            }
        }
        let waiter = job.clone();
        std::thread::Builder::new()
            .name("job waiter".into())
            .spawn(move || waiter.wait_for_the_end())
            .map_err(|e| FjordError::io("cannot start the job waiter thread", e))?;
        tracing::info!(job = %run.job, id = %job.id, "job started");
        Ok(job)
    }

    /// The JobManager of a job that ended before (in an earlier JobManager): it reports the
    /// recorded result and runs nothing.
    fn ended(
        env: StreamExecutionEnvironment,
        config: &JobManagerConfig,
        job_id: String,
        cluster: Option<ClusterParts>,
        result: &JobResult,
    ) -> Result<Arc<Self>, WorkerError> {
        let plan = env.get_execution_plan()?;
        let effective = env.config();
        let state = match result.state {
            TerminalState::Finished => JobState::Finished,
            TerminalState::Failed => JobState::Failed,
        };
        let (state_tx, _) = watch::channel(state);
        let remote_io = cluster
            .as_ref()
            .map(|parts| (parts.router.clone(), parts.registry.clone()));
        Ok(Arc::new(JobManager {
            id: job_id,
            run: config.job.clone(),
            execution: Mutex::new(Execution {
                plan: Arc::new(plan),
                io: IoMetrics::default(),
                metrics: Default::default(),
                cancel: Arc::new(|| {}),
                suspend: Arc::new(|| {}),
            }),
            launcher: Launcher {
                registry: JobRegistry::new(),
                config: config.clone(),
                cluster,
            },
            rescaling: Mutex::new(None),
            rescales: Mutex::new(BTreeMap::new()),
            remote_io,
            final_io: Mutex::new(Some(Vec::new())),
            final_operator_metrics: Mutex::new(Some(Vec::new())),
            client: Mutex::new(None),
            final_checkpoints: Mutex::new(FinalCheckpoints::default()),
            savepoints: Mutex::new(BTreeMap::new()),
            manual_checkpoints: Mutex::new(BTreeMap::new()),
            savepoint_dir: config.savepoint_dir.clone(),
            checkpoint_storage: config.storage_url.clone(),
            checkpoint_interval_ms: effective.checkpoints.interval.map(|d| d.as_millis() as u64),
            start_time_ms: result.end_time_ms,
            started: Instant::now(),
            status: Mutex::new(Status {
                state,
                failure: result.failure.clone(),
                end_time_ms: Some(result.end_time_ms),
                ended: Some(Instant::now()),
            }),
            state_tx,
        }))
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        lock(&self.status)
    }

    /// The engine's client while the job runs.
    fn client(&self) -> Option<Arc<JobClient>> {
        lock(&self.client).clone()
    }

    /// The waiter thread: waits for each execution to end and applies the outcome, unless a
    /// rescale replaced the execution (then it waits for the new one).
    fn wait_for_the_end(&self) {
        loop {
            let outcome = self.wait_for_end();
            // A rescale in progress decides what the end of the execution means.
            let rescaling = loop {
                let mut r = lock(&self.rescaling);
                match r.as_ref() {
                    Some(Rescaling::Pending) => {}
                    _ => break r.take(),
                }
                drop(r);
                std::thread::park_timeout(Duration::from_millis(20));
            };
            let event = match (rescaling, outcome) {
                (Some(Rescaling::Replaced), _) => continue,
                (Some(Rescaling::Cancelled), _) | (_, Err(FjordError::Cancelled)) => {
                    JobEvent::Cancelled
                }
                (Some(Rescaling::StartFailed(message)), _) => JobEvent::Failed(message),
                (_, Ok(())) => JobEvent::Finished,
                (_, Err(e)) => JobEvent::Failed(e.to_string()),
            };
            self.apply(event);
            return;
        }
    }

    /// Waits (polling every 20 ms, the engine offers no notification) until the job ended,
    /// keeps its checkpoint history, and returns its outcome.
    fn wait_for_end(&self) -> fjord::Result<()> {
        while self.client().is_some_and(|c| !c.is_finished()) {
            std::thread::park_timeout(Duration::from_millis(20));
        }
        // Keep the final history before the client goes, so readers always find one of the two.
        if let Some(shared) = self.client() {
            *lock(&self.final_io) = Some(self.io());
            *lock(&self.final_operator_metrics) = Some(self.operator_metrics());
            let (recent, failed) = shared.checkpoint_history();
            *lock(&self.final_checkpoints) = FinalCheckpoints {
                recent,
                failed,
                failed_recent: shared.failed_checkpoints(),
                latest: shared.latest_checkpoint(),
                counts: shared.checkpoint_counts(),
                restarts: shared.restarts(),
                failures: shared.failures(),
            };
        }
        let Some(mut shared) = lock(&self.client).take() else {
            return Err(FjordError::Internal("the job client vanished".into()));
        };
        // Requests in flight (a savepoint that is failing because the job ended) hold clones
        // for a moment; `wait` needs the only one.
        let client = loop {
            match Arc::try_unwrap(shared) {
                Ok(client) => break client,
                Err(again) => {
                    shared = again;
                    std::thread::park_timeout(Duration::from_millis(10));
                }
            }
        };
        client.wait().map(|_| ())
    }

    /// Applies `event`; returns the new state, or `None` if the event did not apply.
    fn apply(&self, event: JobEvent) -> Option<JobState> {
        let mut s = self.status();
        let next = transition(s.state, &event)?;
        s.state = next;
        if let JobEvent::Failed(message) = &event {
            tracing::error!(job = %self.run.job, error = %message, "job failed");
            s.failure = Some(message.clone());
        }
        if next.is_terminal() {
            s.end_time_ms = Some(now_ms());
            s.ended = Some(Instant::now());
            tracing::info!(job = %self.run.job, state = %next, "job ended");
        }
        drop(s);
        self.state_tx.send_replace(next);
        Some(next)
    }

    /// The job ID (32 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current state.
    pub fn state(&self) -> JobState {
        self.status().state
    }

    /// The failure cause when the job failed.
    pub fn failure(&self) -> Option<String> {
        self.status().failure.clone()
    }

    /// Asks the job to stop without a savepoint; returns the state after the request. A job that
    /// already ended keeps its terminal state.
    pub fn cancel(&self) -> JobState {
        match self.apply(JobEvent::CancelRequested) {
            Some(state) => {
                tracing::info!(job = %self.run.job, "cancelling the job");
                let cancel = lock(&self.execution).cancel.clone();
                cancel();
                state
            }
            None => self.state(),
        }
    }

    /// Suspends the job because this process is going away (SIGTERM, a Pod eviction or node
    /// drain): its tasks stop as on [`cancel`](Self::cancel), but its completed checkpoints
    /// are kept whatever `checkpointing.retain-on-cancellation` says and no job result is
    /// recorded, so the next JobManager of this job ID resumes from the latest checkpoint
    /// (Flink's SUSPENDED). The state reported until the process exits is `CANCELED`.
    pub fn suspend(&self) -> JobState {
        match self.apply(JobEvent::CancelRequested) {
            Some(state) => {
                tracing::info!(job = %self.run.job, "suspending the job (its checkpoints stay)");
                let suspend = lock(&self.execution).suspend.clone();
                suspend();
                state
            }
            None => self.state(),
        }
    }

    /// Starts a savepoint (or, with `stop`, a stop-with-savepoint) under `trigger_id`. A trigger
    /// ID seen before returns its status without starting anything, so retries are safe.
    ///
    /// # Errors
    /// [`SavepointRefusal`] when the job is not running or no directory is known.
    pub fn savepoint(
        self: &Arc<Self>,
        trigger_id: &str,
        directory: Option<&str>,
        stop: Option<bool>,
    ) -> Result<SavepointStatus, SavepointRefusal> {
        let mut savepoints = lock(&self.savepoints);
        if let Some(existing) = savepoints.get(trigger_id) {
            return Ok(existing.clone());
        }
        if lock(&self.rescaling).is_some() {
            return Err(SavepointRefusal::Busy(
                "a rescale is in progress; take the savepoint once it completed (GET \
                 /v1/jobs/{job_id}/rescale/{trigger_id})"
                    .into(),
            ));
        }
        let state = self.state();
        let client = match (state, self.client()) {
            (JobState::Running, Some(client)) => client,
            _ => return Err(SavepointRefusal::NotRunning(state)),
        };
        let directory = directory
            .map(str::to_string)
            .or_else(|| self.savepoint_dir.clone())
            .ok_or(SavepointRefusal::NoDirectory)?;
        let status = SavepointStatus {
            trigger_id: trigger_id.into(),
            state: SavepointState::InProgress,
            path: None,
            failure: None,
        };
        savepoints.insert(trigger_id.into(), status.clone());
        drop(savepoints);
        let job = self.clone();
        let trigger = trigger_id.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("savepoint {trigger}"))
            .spawn(move || {
                let result = match stop {
                    None => client.trigger_savepoint(&directory),
                    Some(drain) => client.trigger_stop_with_savepoint(&directory, drain),
                };
                drop(client);
                job.savepoint_done(&trigger, result);
            });
        if let Err(e) = spawned {
            self.savepoint_done(
                trigger_id,
                Err(FjordError::io("cannot start the savepoint thread", e)),
            );
        }
        Ok(status)
    }

    /// Rescales in place, as Flink's adaptive scheduler does: takes a stop-with-savepoint
    /// (into `savepoints.directory`, else `<checkpoint storage>/rescale`), then starts the job
    /// again in this JobManager from that savepoint at default parallelism `parallelism`, with
    /// the same job ID (keyed state moves by key group, operator state is redistributed). The
    /// job stays `RUNNING`; the returned status (also under `trigger_id`, see
    /// [`rescale_status`](Self::rescale_status)) tells how it goes. A trigger ID seen before
    /// returns its status without starting anything.
    ///
    /// # Errors
    /// [`SavepointRefusal`] when the job is not running, a savepoint or rescale is in
    /// progress, no savepoint location is known, the job cannot be built at `parallelism`, or
    /// TaskManagers offer too few slots for it. Nothing was stopped then.
    pub fn rescale(
        self: &Arc<Self>,
        trigger_id: &str,
        parallelism: usize,
    ) -> Result<RescaleStatus, SavepointRefusal> {
        let mut rescales = lock(&self.rescales);
        if let Some(existing) = rescales.get(trigger_id) {
            return Ok(existing.clone());
        }
        let state = self.state();
        let client = match (state, self.client()) {
            (JobState::Running, Some(client)) => client,
            _ => return Err(SavepointRefusal::NotRunning(state)),
        };
        let directory = self
            .savepoint_dir
            .clone()
            .or_else(|| {
                self.checkpoint_storage
                    .as_ref()
                    .map(|s| format!("{}/rescale", s.trim_end_matches('/')))
            })
            .ok_or(SavepointRefusal::NoDirectory)?;
        // Savepoints, then the rescale flag: the order `savepoint` takes them in.
        let savepoints = lock(&self.savepoints);
        if let Some(busy) = savepoints
            .values()
            .find(|s| s.state == SavepointState::InProgress)
        {
            return Err(SavepointRefusal::Busy(format!(
                "savepoint '{}' is in progress; rescale once it completed",
                busy.trigger_id
            )));
        }
        let mut rescaling = lock(&self.rescaling);
        if rescaling.is_some() {
            let other = rescales
                .values()
                .find(|r| r.state == SavepointState::InProgress)
                .map_or_else(String::new, |r| format!(" ('{}')", r.trigger_id));
            return Err(SavepointRefusal::Busy(format!(
                "another rescale{other} is in progress; poll it and try again once it ended"
            )));
        }
        // Check the job at the new parallelism (and its slots) before stopping anything.
        let plan = build_env(
            &self.launcher.registry,
            &self.launcher.config,
            Some(parallelism),
        )
        .and_then(|env| Ok(env.get_execution_plan()?))
        .map_err(|e| SavepointRefusal::Invalid(e.to_string()))?;
        if let Some(parts) = &self.launcher.cluster {
            let required = plan.required_slots();
            let available = parts.registry.slots_available() as usize;
            if available < required {
                return Err(SavepointRefusal::NotEnoughSlots {
                    required,
                    available,
                });
            }
        }
        *rescaling = Some(Rescaling::Pending);
        drop(rescaling);
        drop(savepoints);
        let status = RescaleStatus {
            trigger_id: trigger_id.into(),
            state: SavepointState::InProgress,
            parallelism,
            savepoint_path: None,
            failure: None,
        };
        rescales.insert(trigger_id.into(), status.clone());
        drop(rescales);
        tracing::info!(job = %self.run.job, trigger_id, parallelism, %directory, "rescaling: stopping with a savepoint");
        let job = self.clone();
        let trigger = trigger_id.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("rescale {trigger}"))
            .spawn(move || job.run_rescale(client, &trigger, parallelism, &directory));
        if let Err(e) = spawned {
            self.update_rescale(trigger_id, |s| {
                s.state = SavepointState::Failed;
                s.failure = Some(format!("cannot start the rescale thread: {e}"));
            });
            *lock(&self.rescaling) = None;
        }
        Ok(status)
    }

    /// The rescale thread: stop with a savepoint, then start the job again from it.
    fn run_rescale(&self, client: Arc<JobClient>, trigger: &str, parallelism: usize, dir: &str) {
        let result = client.trigger_stop_with_savepoint(dir, false);
        drop(client);
        let path = match result {
            Ok(path) => path,
            Err(e) => {
                tracing::warn!(job = %self.run.job, trigger, error = %e, "rescale: the savepoint failed");
                self.update_rescale(trigger, |s| {
                    s.state = SavepointState::Failed;
                    s.failure = Some(format!(
                        "the stop-with-savepoint failed, so nothing changed (the job keeps \
                         running at its parallelism): {e}"
                    ));
                });
                *lock(&self.rescaling) = None;
                return;
            }
        };
        self.update_rescale(trigger, |s| s.savepoint_path = Some(path.clone()));
        // The old execution ends after the savepoint; the waiter takes its client.
        while self.client().is_some() {
            std::thread::park_timeout(Duration::from_millis(20));
        }
        if self.state() == JobState::Cancelling {
            self.update_rescale(trigger, |s| {
                s.state = SavepointState::Failed;
                s.failure = Some(format!(
                    "the job was cancelled during the rescale; savepoint {path} holds its state"
                ));
            });
            *lock(&self.rescaling) = Some(Rescaling::Cancelled);
            return;
        }
        match self.launch(parallelism, &path) {
            Ok(()) => {
                tracing::info!(job = %self.run.job, trigger, parallelism, savepoint = %path, "rescaled");
                self.update_rescale(trigger, |s| s.state = SavepointState::Completed);
                *lock(&self.rescaling) = Some(Rescaling::Replaced);
                // A cancel that came while the new execution started.
                if self.state() == JobState::Cancelling {
                    let cancel = lock(&self.execution).cancel.clone();
                    cancel();
                }
            }
            Err(e) => {
                let message = format!(
                    "rescaling to parallelism {parallelism} failed: the job stopped with \
                     savepoint {path} but cannot start from it: {e}; start it with \
                     restore.path={path}"
                );
                self.update_rescale(trigger, |s| {
                    s.state = SavepointState::Failed;
                    s.failure = Some(message.clone());
                });
                *lock(&self.rescaling) = Some(Rescaling::StartFailed(message));
            }
        }
    }

    /// Starts a new execution of the job from `savepoint` at `parallelism` and makes it the
    /// current one.
    fn launch(&self, parallelism: usize, savepoint: &str) -> Result<(), WorkerError> {
        let config = &self.launcher.config;
        let env = build_env(&self.launcher.registry, config, Some(parallelism))?;
        env.set_job_id(&self.id);
        env.restore_from(savepoint, false);
        let plan = env.get_execution_plan()?;
        let client = execute(&env, config, self.launcher.cluster.as_ref())?;
        *lock(&self.execution) = Execution {
            plan: Arc::new(plan),
            io: client.io_metrics(),
            metrics: client.metrics(),
            cancel: Arc::new(client.canceller()),
            suspend: Arc::new(client.suspender()),
        };
        *lock(&self.final_io) = None;
        *lock(&self.final_operator_metrics) = None;
        *lock(&self.client) = Some(Arc::new(client));
        Ok(())
    }

    fn update_rescale(&self, trigger_id: &str, f: impl FnOnce(&mut RescaleStatus)) {
        if let Some(s) = lock(&self.rescales).get_mut(trigger_id) {
            f(s);
        }
    }

    /// The status of the rescale started under `trigger_id`, if any.
    pub fn rescale_status(&self, trigger_id: &str) -> Option<RescaleStatus> {
        lock(&self.rescales).get(trigger_id).cloned()
    }

    /// The number of rescales requested so far (to name those without a trigger ID).
    pub fn rescale_count(&self) -> usize {
        lock(&self.rescales).len()
    }

    fn savepoint_done(&self, trigger_id: &str, result: fjord::Result<String>) {
        let status = match &result {
            Ok(path) => {
                tracing::info!(job = %self.run.job, trigger_id, path, "savepoint completed");
                SavepointStatus {
                    trigger_id: trigger_id.into(),
                    state: SavepointState::Completed,
                    path: Some(path.clone()),
                    failure: None,
                }
            }
            Err(e) => {
                tracing::warn!(job = %self.run.job, trigger_id, error = %e, "savepoint failed");
                SavepointStatus {
                    trigger_id: trigger_id.into(),
                    state: SavepointState::Failed,
                    path: None,
                    failure: Some(e.to_string()),
                }
            }
        };
        lock(&self.savepoints).insert(trigger_id.into(), status);
    }

    /// Savepoints requested through the API by outcome: in_progress, completed, failed.
    pub fn savepoint_counts(&self) -> [(&'static str, usize); 3] {
        let savepoints = lock(&self.savepoints);
        let count = |s: SavepointState| savepoints.values().filter(|v| v.state == s).count();
        [
            ("in_progress", count(SavepointState::InProgress)),
            ("completed", count(SavepointState::Completed)),
            ("failed", count(SavepointState::Failed)),
        ]
    }

    /// The status of the savepoint started under `trigger_id`, if any.
    pub fn savepoint_status(&self, trigger_id: &str) -> Option<SavepointStatus> {
        lock(&self.savepoints).get(trigger_id).cloned()
    }

    /// Completed and failed checkpoints and savepoints (newest first), the failed count and
    /// those in flight.
    pub fn checkpoints(&self) -> CheckpointHistory {
        let (recent, failed, failed_recent, in_flight) = match self.client() {
            Some(client) => {
                let (recent, failed) = client.checkpoint_history();
                (
                    recent,
                    failed,
                    client.failed_checkpoints(),
                    client.in_flight_checkpoints(),
                )
            }
            None => {
                let f = lock(&self.final_checkpoints);
                (
                    f.recent.clone(),
                    f.failed,
                    f.failed_recent.clone(),
                    Vec::new(),
                )
            }
        };
        CheckpointHistory {
            interval_ms: self.checkpoint_interval_ms,
            completed: recent.iter().rev().map(info).collect(),
            failed,
            failed_history: failed_recent
                .iter()
                .rev()
                .map(|c| FailedCheckpointInfo {
                    id: c.id as i64,
                    savepoint: c.savepoint,
                    triggered_at_ms: c.triggered_at_ms,
                    failed_at_ms: c.failed_at_ms,
                    reason: c.reason.clone(),
                })
                .collect(),
            in_progress: in_flight
                .iter()
                .map(|c| PendingCheckpointInfo {
                    id: c.id as i64,
                    savepoint: c.savepoint,
                    triggered_at_ms: c.triggered_at_ms,
                    vertices: c
                        .vertices
                        .iter()
                        .enumerate()
                        .map(|(vertex, (acked, parallelism))| VertexAcknowledgements {
                            vertex,
                            acknowledged: *acked as u32,
                            parallelism: *parallelism as u32,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The latest completed checkpoint (not savepoint).
    pub fn latest_checkpoint(&self) -> Option<CheckpointInfo> {
        let (recent, latest) = match self.client() {
            Some(client) => (client.checkpoint_history().0, client.latest_checkpoint()),
            None => {
                let f = lock(&self.final_checkpoints);
                (f.recent.clone(), f.latest.clone())
            }
        };
        let latest = latest?;
        Some(
            recent
                .iter()
                .rev()
                .find(|c| c.path == latest)
                .map(info)
                .unwrap_or(CheckpointInfo {
                    // Restored from, not taken by, this JobManager: only the path is known.
                    id: latest
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .and_then(fjord::storage::layout::parse_checkpoint_dir)
                        .map_or(0, |id| id as i64),
                    path: latest,
                    completed_at_ms: 0,
                    size_bytes: 0,
                    duration_ms: 0,
                    savepoint: false,
                }),
        )
    }

    /// Waits until the job reached a terminal state and returns it.
    pub async fn terminated(&self) -> JobState {
        let mut rx = self.state_tx.subscribe();
        match rx.wait_for(|s| s.is_terminal()).await {
            Ok(state) => *state,
            Err(_) => self.state(),
        }
    }

    /// Seconds the job has been running (until it ended).
    pub fn uptime_seconds(&self) -> f64 {
        let end = self.status().ended.unwrap_or_else(Instant::now);
        end.duration_since(self.started).as_secs_f64()
    }

    /// The metrics of every task subtask (records and bytes in and out, time, watermarks).
    /// With TaskManagers: what the live TaskManagers last reported for the attempt deployed
    /// last (see [`super::task_metrics`]), as fresh as their heartbeats; after the job ended,
    /// the values at its end.
    pub fn io(&self) -> Vec<OperatorIo> {
        if let Some(io) = lock(&self.final_io).clone() {
            return io;
        }
        match &self.remote_io {
            None => lock(&self.execution).io.snapshot(),
            Some((router, registry)) => {
                let Some(attempt) = router.deployed() else {
                    return Vec::new();
                };
                let live: Vec<String> = registry
                    .list()
                    .task_managers
                    .into_iter()
                    .filter(|t| t.state == fjord_client::api::TaskManagerState::Registered)
                    .map(|t| t.id)
                    .collect();
                router
                    .task_metrics()
                    .merged(&attempt, |id| live.iter().any(|l| l == id))
            }
        }
    }

    /// The operators' own counters and gauges (user functions', connectors'): live from this
    /// process's scheduler, or as the TaskManagers of the deployed attempt reported them last
    /// (as fresh as their heartbeats); after the job ended, the values at its end.
    pub fn operator_metrics(&self) -> Vec<MetricSample> {
        if let Some(samples) = lock(&self.final_operator_metrics).clone() {
            return samples;
        }
        match &self.remote_io {
            None => lock(&self.execution).metrics.samples(),
            Some((router, registry)) => {
                let Some(attempt) = router.deployed() else {
                    return Vec::new();
                };
                let live: Vec<String> = registry
                    .list()
                    .task_managers
                    .into_iter()
                    .filter(|t| t.state == fjord_client::api::TaskManagerState::Registered)
                    .map(|t| t.id)
                    .collect();
                router
                    .task_metrics()
                    .merged_operators(&attempt, |id| live.iter().any(|l| l == id))
            }
        }
    }

    /// Restarts after failures so far (execution attempts - 1), also after the job ended.
    pub fn restarts(&self) -> u32 {
        match self.client() {
            Some(client) => client.restarts(),
            None => lock(&self.final_checkpoints).restarts,
        }
    }

    /// Checkpoints (not savepoints) completed, and checkpoints and savepoints failed, in total
    /// over the job's life (the history keeps only the last 100).
    pub fn checkpoint_counts(&self) -> (u64, u64) {
        match self.client() {
            Some(client) => client.checkpoint_counts(),
            None => lock(&self.final_checkpoints).counts,
        }
    }

    /// The job's plan (vertices and edges) of the current execution.
    pub fn plan(&self) -> Arc<JobPlan> {
        lock(&self.execution).plan.clone()
    }

    /// The registered job name.
    pub fn name(&self) -> &str {
        &self.run.job
    }

    /// The job in `GET /v1/jobs`.
    pub fn summary(&self) -> JobSummary {
        JobSummary {
            id: self.id.clone(),
            name: self.run.job.clone(),
            state: self.state(),
        }
    }

    /// The job in `GET /v1/jobs/{job_id}`.
    pub fn details(&self) -> JobDetails {
        let (state, failure, end_time_ms) = {
            let s = self.status();
            (s.state, s.failure.clone(), s.end_time_ms)
        };
        let io = self.io();
        let plan = self.plan();
        let vertices = plan.vertices.iter().map(|v| vertex(v, &io)).collect();
        JobDetails {
            id: self.id.clone(),
            name: self.run.job.clone(),
            args: self.run.args.clone(),
            state,
            failure,
            start_time_ms: self.start_time_ms,
            end_time_ms,
            duration_ms: (self.uptime_seconds() * 1000.0) as i64,
            restarts: self.restarts(),
            vertices,
            edges: plan
                .edges
                .iter()
                .map(|e| Edge {
                    source: e.source,
                    target: e.target,
                    partitioner: e.partitioner.clone(),
                    side_output: e.side_output.clone(),
                })
                .collect(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn info(c: &CompletedCheckpoint) -> CheckpointInfo {
    CheckpointInfo {
        id: c.id as i64,
        path: c.path.clone(),
        completed_at_ms: c.completed_at_ms,
        size_bytes: c.size_bytes,
        duration_ms: c.duration_ms,
        savepoint: c.savepoint,
    }
}

/// A vertex with the metrics of its subtasks (Flink's task-level numRecordsIn/Out, ...). A
/// subtask not deployed yet reports zeros.
fn vertex(v: &fjord::graph_plan::VertexPlan, io: &[OperatorIo]) -> Vertex {
    let subtasks: Vec<SubtaskMetrics> = (0..v.parallelism)
        .map(|subtask| {
            let mut m = SubtaskMetrics {
                subtask,
                records_in: 0,
                records_out: 0,
                bytes_in: 0,
                bytes_out: 0,
                backpressured_ms: 0,
                idle_ms: 0,
                busy_ms: 0,
                input_watermark: None,
                output_watermark: None,
            };
            // One entry per task subtask today; sums should that ever change.
            for o in io
                .iter()
                .filter(|o| o.vertex == v.id && o.subtask == subtask)
            {
                m.records_in += o.records_in;
                m.records_out += o.records_out;
                m.bytes_in += o.bytes_in;
                m.bytes_out += o.bytes_out;
                m.backpressured_ms += o.backpressured_ms;
                m.idle_ms += o.idle_ms;
                m.busy_ms += o.busy_ms;
                m.input_watermark = m.input_watermark.max(o.input_watermark);
                m.output_watermark = m.output_watermark.max(o.output_watermark);
            }
            m
        })
        .collect();
    Vertex {
        id: v.id,
        name: v.name.clone(),
        parallelism: v.parallelism,
        max_parallelism: v.max_parallelism,
        records_in: subtasks.iter().map(|s| s.records_in).sum(),
        records_out: subtasks.iter().map(|s| s.records_out).sum(),
        subtasks,
        operators: v.operators.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_table() {
        use JobEvent as E;
        use JobState as S;
        let failed = E::Failed("boom".into());
        let cases: &[(S, &JobEvent, Option<S>)] = &[
            (S::Created, &E::Deployed, Some(S::Running)),
            (S::Running, &E::Finished, Some(S::Finished)),
            (S::Running, &failed, Some(S::Failed)),
            (S::Running, &E::CancelRequested, Some(S::Cancelling)),
            (S::Cancelling, &E::Cancelled, Some(S::Canceled)),
            // A job that finished while a cancel was under way finished.
            (S::Cancelling, &E::Finished, Some(S::Finished)),
            (S::Finished, &E::CancelRequested, None),
            (S::Failed, &E::Cancelled, None),
            (S::Canceled, &E::Deployed, None),
            (S::Running, &E::Deployed, None),
        ];
        for (from, event, to) in cases {
            assert_eq!(transition(*from, event), *to, "{from} + {event:?}");
        }
    }
}
