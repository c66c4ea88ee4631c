//! The embedded mini-cluster: runs every subtask of a job graph as a thread of this process,
//! connected by bounded channels.

use crate::checkpoint::config::RestartTracker;
use crate::checkpoint::coordinator::{
    self, CoordinatorEvent, CoordinatorSetup, SharedHistory, TaskControls,
};
use crate::checkpoint::job_result::{JobResult, TerminalState};
use crate::checkpoint::restore::RestoredJob;
use crate::checkpoint::{CheckpointConfig, RestartStrategy};
use crate::error::{FjordError, Result};
use crate::metrics::MetricRegistry;
use crate::runtime::channel::CancelFlag;
use crate::runtime::deploy::{FailureSlot, build_tasks, operator_id, spawn_tasks};
use crate::runtime::deployer::{CancelToken, Deployer, ReportSink};
use crate::runtime::io_metrics::IoMetrics;
use crate::runtime::jobgraph::JobGraph;
use crate::runtime::messages::TaskCommand;
use crate::runtime::plan::AttemptSpec;
use crate::storage::{SnapshotStore, StorageOptions};
use crate::time::clock::Clock;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the tasks of an execution run.
#[derive(Clone, Default)]
pub(crate) enum Execution {
    /// Every task as a thread of this process.
    #[default]
    Local,
    /// In other processes, through a deployer (the JobManager's TaskManagers).
    Remote(Arc<dyn Deployer>),
}

/// Runtime settings of one execution.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub(crate) job_name: String,
    pub(crate) batch_size: usize,
    pub(crate) channel_capacity: usize,
    pub(crate) buffer_timeout: Duration,
    pub(crate) attempt: u32,
    /// Where tasks read processing time.
    pub(crate) clock: Arc<dyn Clock>,
    /// The counters of this execution.
    pub(crate) metrics: MetricRegistry,
    /// Milliseconds between periodic watermarks; 0 disables them.
    pub(crate) watermark_interval: i64,
    /// Records in and out per task subtask, readable while the job runs.
    pub(crate) io: IoMetrics,
    /// Checkpoint settings.
    pub(crate) checkpoints: CheckpointConfig,
    /// What to do when a task fails.
    pub(crate) restart: RestartStrategy,
    /// A checkpoint or savepoint to start from.
    pub(crate) restore: Option<RestoreSettings>,
    /// The keyed state backend of the job.
    pub(crate) state_backend: crate::state::factory::StateBackendSettings,
    /// The job ID; `None` draws a random one. A stable ID lets a restarted JobManager find
    /// the job's checkpoints.
    pub(crate) job_id: Option<String>,
}

/// Where a job starts from.
#[derive(Debug, Clone)]
pub(crate) struct RestoreSettings {
    /// URL of a checkpoint or savepoint directory (the one holding `_metadata`).
    pub(crate) path: String,
    /// S3 settings for the URL.
    pub(crate) options: StorageOptions,
    /// Drop state of operators the job no longer has instead of failing.
    pub(crate) allow_non_restored_state: bool,
}

/// Lets a client reach the coordinator of the running attempt (for savepoints).
#[derive(Clone, Default)]
pub(crate) struct JobControl {
    pub(crate) coordinator: Arc<Mutex<Option<Sender<CoordinatorEvent>>>>,
    pub(crate) history: SharedHistory,
    /// Set before a cancellation that suspends the job (its process is going away, the job
    /// is not): its checkpoints stay whatever `retain_on_cancellation` says.
    pub(crate) suspended: Arc<std::sync::atomic::AtomicBool>,
}

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobExecutionResult {
    /// The job's name.
    pub job_name: String,
    /// Wall-clock time from deployment to the end of the last task.
    pub net_runtime: Duration,
    /// Number of parallel tasks (subtasks of all chains) that ran.
    pub tasks: usize,
    /// The operators' counters at the end of the job.
    pub metrics: MetricRegistry,
    /// Execution attempts: 1 plus the number of restarts.
    pub attempts: u32,
    /// Checkpoints completed during the run.
    pub completed_checkpoints: u64,
}

impl JobExecutionResult {
    /// The sum of counter `name` over all subtasks of operator `operator` (for example
    /// `result.counter("Window", "numLateRecordsDropped")`).
    pub fn counter(&self, operator: &str, name: &str) -> u64 {
        self.metrics.total(operator, name)
    }
}

fn random_job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

pub(crate) fn load_restore(job: &JobGraph, restore: &RestoreSettings) -> Result<Arc<RestoredJob>> {
    let dir = SnapshotStore::open(&restore.path, &restore.options)?;
    let restored = RestoredJob::load(&dir)?;
    let operators: Vec<(String, String, usize)> = job
        .stream
        .nodes
        .iter()
        .map(|n| {
            (
                operator_id(job, n.id),
                n.name.clone(),
                job.max_parallelism[n.id],
            )
        })
        .collect();
    restored.validate(&operators, restore.allow_non_restored_state)?;
    Ok(Arc::new(restored))
}

/// What an attempt starts from.
#[derive(Clone)]
struct Restore {
    settings: RestoreSettings,
    job: Arc<RestoredJob>,
}

/// Deploys and runs a job graph to completion (or failure, or cancellation), restarting it
/// from the latest completed checkpoint after a failure as the restart strategy allows.
///
/// Returns the root cause when the job fails: the first error that is not a consequence of
/// cancellation.
pub(crate) fn execute(
    job: &JobGraph,
    settings: &RunSettings,
    cancel: &CancelFlag,
    control: &JobControl,
    execution: &Execution,
) -> Result<JobExecutionResult> {
    let started = Instant::now();
    // A backend that is chosen but not linked in fails the job before it starts.
    settings.state_backend.kind.factory()?;
    let job_id = settings.job_id.clone().unwrap_or_else(random_job_id);
    let mut restored = match &settings.restore {
        Some(r) => Some(Restore {
            settings: r.clone(),
            job: load_restore(job, r)?,
        }),
        None => None,
    };
    if let Some(r) = &restored {
        control.history.lock().last_id = r.job.metadata.checkpoint_id;
    }
    let base = match settings.checkpoints.interval {
        Some(_) => Some(SnapshotStore::open(
            &settings.checkpoints.storage,
            &settings.checkpoints.storage_options,
        )?),
        None => None,
    };
    if let Some(base) = &base
        && let Err(e) = base.check_access()
    {
        // Wrong credentials or a missing bucket fail the job now, with the cause; anything
        // else (an outage) is for the restart strategy once a checkpoint fails.
        if e.is_misconfiguration() {
            return Err(e);
        }
        tracing::warn!(error = %e, "checkpoint storage cannot be reached yet");
    }
    let mut tracker = RestartTracker::new(settings.restart.clone());
    let mut attempt = 0u32;
    // A job with a stable ID owns the checkpoints an earlier JobManager left in its directory
    // (the one it may resume from among them): they join its history before the first attempt.
    let mut recovered = settings.job_id.is_none() || base.is_none();
    loop {
        // A restart starts from the latest completed checkpoint.
        let latest = if attempt > 0 {
            control.history.lock().latest.clone()
        } else {
            None
        };
        // Storage that cannot be read now (an outage) fails the attempt before it starts: the
        // restart strategy decides whether and when to try again.
        let recovery = match (&base, recovered) {
            (Some(base), false) => {
                crate::checkpoint::recovery::recover(&control.history, base, &job_id).map(|_| ())
            }
            _ => Ok(()),
        };
        recovered |= recovery.is_ok();
        let loaded = match (recovery, latest) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(url)) => {
                let settings = RestoreSettings {
                    path: url,
                    options: settings.checkpoints.storage_options.clone(),
                    allow_non_restored_state: false,
                };
                load_restore(job, &settings).map(|job| Some(Restore { settings, job }))
            }
            (Ok(()), None) => Ok(None),
        };
        let result = match loaded {
            Ok(loaded) => {
                if loaded.is_some() {
                    restored = loaded;
                }
                run_attempt(
                    job, settings, cancel, control, execution, &job_id, &base, attempt, &restored,
                )
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(tasks) => {
                let stopped = control.history.lock().stopped;
                let recorded = stopped
                    || record_result(
                        settings,
                        base.as_ref(),
                        &job_id,
                        TerminalState::Finished,
                        None,
                    );
                // Without a record of the result the checkpoints stay: the last one is the
                // final checkpoint, from which a rerun replays nothing.
                if recorded {
                    finish_history(&control.history, false);
                }
                return Ok(JobExecutionResult {
                    job_name: settings.job_name.clone(),
                    net_runtime: started.elapsed(),
                    tasks,
                    metrics: settings.metrics.clone(),
                    attempts: attempt + 1,
                    completed_checkpoints: control.history.lock().completed_count,
                });
            }
            Err(e) if cancel.is_cancelled() => {
                let suspended = control.suspended.load(std::sync::atomic::Ordering::SeqCst);
                finish_history(
                    &control.history,
                    settings.checkpoints.retain_on_cancellation || suspended,
                );
                return Err(if e.is_cancellation() {
                    e
                } else {
                    FjordError::Cancelled
                });
            }
            Err(e) => {
                let give_up = e.is_misconfiguration();
                if give_up {
                    tracing::error!(error = %e, "storage is misconfigured; no restart can fix that");
                }
                let delay = if give_up {
                    None
                } else {
                    tracker.on_failure(Instant::now())
                };
                control
                    .history
                    .lock()
                    .record_failure(&e, attempt, delay.is_none());
                let Some(delay) = delay else {
                    let failure = Some(e.to_string());
                    record_result(
                        settings,
                        base.as_ref(),
                        &job_id,
                        TerminalState::Failed,
                        failure,
                    );
                    return Err(e);
                };
                tracing::warn!(error = %e, attempt, ?delay, "job failed; restarting");
                let deadline = Instant::now() + delay;
                while Instant::now() < deadline {
                    if cancel.is_cancelled() {
                        return Err(FjordError::Cancelled);
                    }
                    std::thread::sleep(
                        deadline
                            .saturating_duration_since(Instant::now())
                            .min(Duration::from_millis(20)),
                    );
                }
                attempt += 1;
            }
        }
    }
}

/// Runs attempt `attempt` of the job from `restored` (or from scratch).
#[allow(clippy::too_many_arguments)]
fn run_attempt(
    job: &JobGraph,
    settings: &RunSettings,
    cancel: &CancelFlag,
    control: &JobControl,
    execution: &Execution,
    job_id: &str,
    base: &Option<SnapshotStore>,
    attempt: u32,
    restored: &Option<Restore>,
) -> Result<usize> {
    let attempt_cancel = CancelFlag::child(cancel);
    let mut attempt_settings = settings.clone();
    attempt_settings.attempt = attempt;
    let attempt_run = AttemptRun {
        job,
        settings: &attempt_settings,
        cancel: &attempt_cancel,
        job_id,
        base: base.clone(),
        control,
    };
    match execution {
        Execution::Local => attempt_run.local(restored.clone().map(|r| r.job)),
        Execution::Remote(deployer) => attempt_run.remote(
            restored
                .as_ref()
                .map(|r| (r.settings.path.clone(), r.settings.allow_non_restored_state)),
            deployer,
        ),
    }
}

/// Records that a job with a stable ID (one a restarted JobManager would run again) ended in
/// `state`, in its checkpoint storage; returns whether the record was written (or none was
/// needed: no stable ID or no checkpoint storage).
fn record_result(
    settings: &RunSettings,
    base: Option<&SnapshotStore>,
    job_id: &str,
    state: TerminalState,
    failure: Option<String>,
) -> bool {
    let (Some(base), Some(_)) = (base, &settings.job_id) else {
        return true;
    };
    let result = JobResult::now(job_id, &settings.job_name, state, failure);
    match result.write(base) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(job = job_id, %state, error = %e, "cannot record the job's result; keeping its checkpoints");
            false
        }
    }
}

/// Deletes the retained checkpoints when a job ends, unless asked to keep them.
fn finish_history(history: &SharedHistory, keep: bool) {
    if keep {
        return;
    }
    let retained: Vec<_> = history.lock().retained.drain(..).collect();
    for (i, (id, dir)) in retained.iter().enumerate() {
        let later: Vec<SnapshotStore> = retained[i + 1..].iter().map(|(_, d)| d.clone()).collect();
        crate::checkpoint::shared::release_logged(*id, dir, &later);
        if let Err(e) = dir.delete_prefix("") {
            tracing::warn!(checkpoint = id, dir = dir.url(), error = %e, "could not delete a checkpoint of the ended job; delete it by hand");
        }
    }
}

/// One execution attempt.
struct AttemptRun<'a> {
    job: &'a JobGraph,
    settings: &'a RunSettings,
    cancel: &'a CancelFlag,
    job_id: &'a str,
    base: Option<SnapshotStore>,
    control: &'a JobControl,
}

impl AttemptRun<'_> {
    /// Starts the checkpoint coordinator of the attempt; a coordinator giving up (tolerable
    /// failed checkpoints exceeded) records the failure and cancels the attempt.
    fn coordinator(
        &self,
        controls: TaskControls,
        sources: Vec<usize>,
        failure: &FailureSlot,
        (events_tx, events_rx): (Sender<CoordinatorEvent>, Receiver<CoordinatorEvent>),
        tasks_running: bool,
    ) -> Result<(Sender<CoordinatorEvent>, std::thread::JoinHandle<()>)> {
        let setup = CoordinatorSetup {
            config: self.settings.checkpoints.clone(),
            job_name: self.settings.job_name.clone(),
            job_id: self.job_id.to_string(),
            base: self.base.clone(),
            controls,
            sources,
            history: self.control.history.clone(),
            tasks_running,
            task_vertices: self
                .job
                .vertices
                .iter()
                .enumerate()
                .flat_map(|(v, vx)| std::iter::repeat_n(v, vx.parallelism))
                .collect(),
            fail_job: {
                let (failure, cancel) = (failure.clone(), self.cancel.clone());
                Box::new(move |e| {
                    failure.lock().get_or_insert(e);
                    cancel.cancel();
                })
            },
        };
        let thread = std::thread::Builder::new()
            .name("checkpoint coordinator".into())
            .spawn(move || coordinator::run(setup, events_rx))
            .map_err(|e| FjordError::io("cannot start the checkpoint coordinator", e))?;
        *self.control.coordinator.lock() = Some(events_tx.clone());
        Ok((events_tx, thread))
    }

    /// Stops the coordinator and returns the attempt's outcome.
    fn end(
        &self,
        events: Sender<CoordinatorEvent>,
        thread: std::thread::JoinHandle<()>,
        failure: &FailureSlot,
        tasks: usize,
    ) -> Result<usize> {
        *self.control.coordinator.lock() = None;
        // The coordinator ends when every sender is gone too: a failed send changes nothing.
        let _ = events.send(CoordinatorEvent::Shutdown);
        if let Err(payload) = thread.join() {
            // A panicked coordinator completed no further checkpoint (the final one may be
            // missing, and with it the last commit of transactional sinks): the attempt failed.
            let e = FjordError::Internal(format!(
                "the checkpoint coordinator panicked: {}",
                crate::error::panic_message(payload.as_ref())
            ));
            tracing::error!(error = %e, "checkpoint coordinator failed");
            failure.lock().get_or_insert(e);
        }
        if let Some(e) = failure.lock().take() {
            return Err(e);
        }
        if self.cancel.is_cancelled() {
            return Err(FjordError::Cancelled);
        }
        Ok(tasks)
    }

    /// Runs every task as a thread of this process, waits for all of them to end, and returns
    /// the number of tasks.
    fn local(&self, restored: Option<Arc<RestoredJob>>) -> Result<usize> {
        let failure: FailureSlot = Arc::default();
        let events = crossbeam_channel::unbounded();
        let tasks = build_tasks(
            self.job,
            self.settings,
            self.cancel,
            restored,
            None,
            &events.0,
        )?;
        let sources = tasks.iter().filter(|t| t.source).map(|t| t.index).collect();
        let controls = TaskControls::local(tasks.iter().map(|t| t.control.clone()).collect());
        let (events, thread) = self.coordinator(controls, sources, &failure, events, true)?;
        let count = tasks.len();
        let handles = spawn_tasks(tasks, self.cancel, &failure)?;
        for h in handles {
            // Task threads catch their panics and report failures through `failure`.
            let _ = h.join();
        }
        self.end(events, thread, &failure, count)
    }

    /// Runs the tasks through `deployer` and returns the number of tasks.
    fn remote(
        &self,
        restore: Option<(String, bool)>,
        deployer: &Arc<dyn Deployer>,
    ) -> Result<usize> {
        let failure: FailureSlot = Arc::default();
        let spec = AttemptSpec::new(self.job, self.job_id, self.settings.attempt, restore);
        let sources = self
            .job
            .vertices
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                matches!(
                    self.job.stream.nodes[v.head].kind,
                    crate::graph::NodeKind::Source { .. }
                )
            })
            .flat_map(|(v, vx)| (0..vx.parallelism).map(move |s| (v, s)))
            .map(|(v, s)| spec.task_index(v, s))
            .collect();
        let controls = {
            let deployer = deployer.clone();
            let attempt = self.settings.attempt;
            TaskControls::remote(spec.task_count(), move |task, control| {
                deployer.send(attempt, task, TaskCommand::from_control(&control));
            })
        };
        let (events, thread) = self.coordinator(
            controls,
            sources,
            &failure,
            crossbeam_channel::unbounded(),
            false,
        )?;
        let result = deployer.run_attempt(
            &spec,
            ReportSink(events.clone()),
            &CancelToken(self.cancel.clone()),
        );
        if let Err(e) = result
            && !e.is_cancellation()
        {
            failure.lock().get_or_insert(e);
        }
        self.end(events, thread, &failure, spec.task_count())
    }
}
