//! The embedded mini-cluster: runs every subtask of a job graph as a thread of this process,
//! connected by bounded channels.

use crate::checkpoint::config::RestartTracker;
use crate::checkpoint::coordinator::{self, CoordinatorEvent, CoordinatorSetup, SharedHistory};
use crate::checkpoint::participant::TaskCheckpointing;
use crate::checkpoint::restore::RestoredJob;
use crate::checkpoint::{CheckpointConfig, RestartStrategy};
use crate::context::{RuntimeContext, TaskServices};
use crate::error::{FjordError, Result, panic_message};
use crate::graph::{NodeId, NodeKind};
use crate::metrics::MetricRegistry;
use crate::operators::output::{AnyOutput, SideOutputs};
use crate::runtime::channel::{CancelFlag, ChannelSender, channel};
use crate::runtime::io_metrics::{IoCounter, IoMetrics};
use crate::runtime::jobgraph::JobGraph;
use crate::runtime::partitioner::pointwise_targets;
use crate::runtime::task::{InputChannel, SourceRunner, TaskHead, run_input_task};
use crate::runtime::task_runtime::TaskRuntime;
use crate::storage::{SnapshotStore, StorageOptions};
use crate::time::clock::{Clock, WakeupSchedule};
use crossbeam_channel::Sender;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

enum Runnable {
    Source(Box<dyn SourceRunner>),
    Input(Box<dyn TaskHead>, Vec<InputChannel>, TaskServices),
}

struct Wiring<'a> {
    job: &'a JobGraph,
    settings: &'a RunSettings,
    senders: HashMap<(usize, usize), Vec<ChannelSender>>,
    /// The services of the task being wired (one wake-up schedule per task).
    services: TaskServices,
    /// Clones of every channel the task being wired writes to (barriers go out on them).
    task_outputs: Vec<ChannelSender>,
    restored: Option<Arc<RestoredJob>>,
}

impl Wiring<'_> {
    fn context(&self, node: NodeId, subtask: usize) -> RuntimeContext {
        RuntimeContext {
            job_name: self.settings.job_name.clone(),
            task_name: self.job.stream.nodes[node].name.clone(),
            subtask_index: subtask,
            parallelism: self.job.parallelism[node],
            max_parallelism: self.job.max_parallelism[node],
            attempt_number: self.settings.attempt,
            services: self.services.clone(),
            keyed: None,
            operator_id: operator_id(self.job, node),
            has_uid: self.job.stream.nodes[node].uid.is_some(),
        }
    }

    /// The (records in, records out) counters of the task subtask `node` runs in.
    fn io(&self, node: NodeId, subtask: usize) -> (IoCounter, IoCounter) {
        let (vertex, head) = self
            .job
            .vertices
            .iter()
            .enumerate()
            .find(|(_, vx)| vx.nodes.contains(&node))
            .map_or((usize::MAX, node), |(v, vx)| (v, vx.head));
        let name = &self.job.stream.nodes[head].name;
        self.settings.io.counters(vertex, 0, name, subtask)
    }

    /// The output of `node` (its main output, or one side output) for one subtask: chained
    /// operators and network writers, fanned out.
    fn output(&mut self, node: NodeId, side: Option<&str>, subtask: usize) -> Result<AnyOutput> {
        let job = self.job;
        let stream_node = &job.stream.nodes[node];
        let ty = match side {
            None => stream_node.out_type.clone(),
            Some(tag) => stream_node
                .side_types
                .iter()
                .find(|(t, _)| t == tag)
                .map(|(_, ty)| ty.clone())
                .ok_or_else(|| FjordError::Internal(format!("unknown side output {tag}")))?,
        };
        let mut outputs = Vec::new();
        for (target, target_side) in &job.chained[node] {
            if target_side.as_deref() == side {
                outputs.push(self.operator(*target, subtask)?);
            }
        }
        for &e in &job.network_out[node] {
            let edge = &job.edges[e];
            if edge.side.as_deref() == side {
                let channels = self.senders.remove(&(e, subtask)).unwrap_or_default();
                self.task_outputs.extend(channels.iter().cloned());
                let max = job.max_parallelism[edge.to];
                let (_, records_out) = self.io(node, subtask);
                outputs.push(ty.writer(
                    channels,
                    &edge.partition,
                    max,
                    subtask,
                    self.settings.batch_size,
                    records_out,
                )?);
            }
        }
        ty.fan_out(outputs)
    }

    fn side_outputs(&mut self, node: NodeId, subtask: usize) -> Result<SideOutputs> {
        let mut sides = SideOutputs::default();
        for (tag, ty) in self.job.stream.nodes[node].side_types.clone() {
            let out = self.output(node, Some(&tag), subtask)?;
            sides.outputs.push((tag.clone(), ty.side(out)?));
        }
        Ok(sides)
    }

    /// A one-input operator with everything after it in the chain.
    fn operator(&mut self, node: NodeId, subtask: usize) -> Result<AnyOutput> {
        let NodeKind::OneInput { factory, .. } = self.job.stream.nodes[node].kind.clone() else {
            return Err(FjordError::Internal(
                "only one-input operators can be chained".into(),
            ));
        };
        let main = self.output(node, None, subtask)?;
        let sides = self.side_outputs(node, subtask)?;
        factory(&self.context(node, subtask), main, sides)
    }

    fn task(
        &mut self,
        head: NodeId,
        subtask: usize,
        inputs: Vec<InputChannel>,
    ) -> Result<Runnable> {
        self.services = TaskServices {
            clock: self.settings.clock.clone(),
            wakeups: WakeupSchedule::default(),
            metrics: self.settings.metrics.clone(),
            watermark_interval: self.settings.watermark_interval,
            checkpointing: TaskCheckpointing::new(self.restored.clone()),
            state_backend: self.settings.state_backend.clone(),
        };
        self.task_outputs.clear();
        let ctx = self.context(head, subtask);
        Ok(match self.job.stream.nodes[head].kind.clone() {
            NodeKind::Source { factory, .. } => {
                let main = self.output(head, None, subtask)?;
                let sides = self.side_outputs(head, subtask)?;
                Runnable::Source(factory(&ctx, main, sides, self.settings.buffer_timeout)?)
            }
            NodeKind::OneInput { input_type, .. } => {
                let op = self.operator(head, subtask)?;
                let mut task_head = input_type.head(op)?;
                task_head.count_records_in(self.io(head, subtask).0);
                Runnable::Input(task_head, inputs, self.services.clone())
            }
            NodeKind::TwoInput { factory } => {
                let main = self.output(head, None, subtask)?;
                let sides = self.side_outputs(head, subtask)?;
                let (records_in, _) = self.io(head, subtask);
                let mut task_head = factory(&ctx, main, sides)?;
                task_head.count_records_in(records_in);
                Runnable::Input(task_head, inputs, self.services.clone())
            }
        })
    }
}

/// The id operator state is stored under: the uid, or one derived from the operator's
/// position in the graph (stable only while the job's code does not change).
fn operator_id(job: &JobGraph, node: NodeId) -> String {
    job.stream.nodes[node]
        .uid
        .clone()
        .unwrap_or_else(|| format!("auto-{node}"))
}

fn random_job_id() -> String {
    format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    )
}

fn load_restore(job: &JobGraph, restore: &RestoreSettings) -> Result<Arc<RestoredJob>> {
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
) -> Result<JobExecutionResult> {
    let started = Instant::now();
    // A backend that is chosen but not linked in fails the job before it starts.
    settings.state_backend.kind.factory()?;
    let job_id = random_job_id();
    let mut restored = match &settings.restore {
        Some(r) => Some(load_restore(job, r)?),
        None => None,
    };
    if let Some(r) = &restored {
        control.history.lock().last_id = r.metadata.checkpoint_id;
    }
    let base = match settings.checkpoints.interval {
        Some(_) => Some(SnapshotStore::open(
            &settings.checkpoints.storage,
            &settings.checkpoints.storage_options,
        )?),
        None => None,
    };
    let mut tracker = RestartTracker::new(settings.restart.clone());
    let mut attempt = 0u32;
    loop {
        let attempt_cancel = CancelFlag::child(cancel);
        let mut attempt_settings = settings.clone();
        attempt_settings.attempt = attempt;
        let result = run_attempt(
            job,
            &attempt_settings,
            &attempt_cancel,
            restored.clone(),
            &job_id,
            base.clone(),
            control,
        );
        match result {
            Ok(tasks) => {
                finish_history(&control.history, false);
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
                finish_history(
                    &control.history,
                    settings.checkpoints.retain_on_cancellation,
                );
                return Err(if e.is_cancellation() {
                    e
                } else {
                    FjordError::Cancelled
                });
            }
            Err(e) => {
                let Some(delay) = tracker.on_failure(Instant::now()) else {
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
                let latest = control.history.lock().latest.clone();
                if let Some(url) = latest {
                    restored = Some(load_restore(
                        job,
                        &RestoreSettings {
                            path: url,
                            options: settings.checkpoints.storage_options.clone(),
                            allow_non_restored_state: false,
                        },
                    )?);
                }
            }
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
        let _ = dir.delete_prefix("");
    }
}

/// One execution attempt: deploys every task, runs the checkpoint coordinator, and waits for
/// all tasks to end. Returns the number of tasks.
fn run_attempt(
    job: &JobGraph,
    settings: &RunSettings,
    cancel: &CancelFlag,
    restored: Option<Arc<RestoredJob>>,
    job_id: &str,
    base: Option<SnapshotStore>,
    control: &JobControl,
) -> Result<usize> {
    let mut senders: HashMap<(usize, usize), Vec<ChannelSender>> = HashMap::new();
    let mut receivers: Vec<Vec<Vec<InputChannel>>> = job
        .vertices
        .iter()
        .map(|v| (0..v.parallelism).map(|_| Vec::new()).collect())
        .collect();
    for (e, edge) in job.edges.iter().enumerate() {
        let p = job.vertices[edge.from_vertex].parallelism;
        let q = job.vertices[edge.to_vertex].parallelism;
        for i in 0..p {
            let targets = if edge.partition.is_pointwise() {
                pointwise_targets(p, q, i)
            } else {
                (0..q).collect()
            };
            for j in targets {
                let (tx, rx) = channel(settings.channel_capacity, cancel);
                senders.entry((e, i)).or_default().push(tx);
                receivers[edge.to_vertex][j].push(InputChannel {
                    input: edge.input,
                    receiver: rx,
                });
            }
        }
    }

    let services = TaskServices {
        clock: settings.clock.clone(),
        ..TaskServices::default()
    };
    let mut wiring = Wiring {
        job,
        settings,
        senders,
        services,
        task_outputs: Vec::new(),
        restored,
    };
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let mut tasks = Vec::new();
    let mut controls = Vec::new();
    let mut sources = Vec::new();
    for (v, vertex) in job.vertices.iter().enumerate() {
        for (s, subtask_inputs) in receivers[v].iter_mut().enumerate() {
            let inputs = std::mem::take(subtask_inputs);
            let name = wiring.context(vertex.head, s).task_name_with_subtasks();
            let runnable = wiring.task(vertex.head, s, inputs)?;
            let (control_tx, control_rx) = crossbeam_channel::unbounded();
            if matches!(runnable, Runnable::Source(_)) {
                sources.push(tasks.len());
            }
            let rt = TaskRuntime {
                index: tasks.len(),
                control: control_rx,
                coordinator: events_tx.clone(),
                outputs: std::mem::take(&mut wiring.task_outputs),
                checkpointing: wiring.services.checkpointing.clone(),
                mode: settings.checkpoints.mode,
            };
            controls.push(control_tx);
            tasks.push((name, runnable, rt));
        }
    }
    drop(wiring);

    let failure: Arc<Mutex<Option<FjordError>>> = Arc::new(Mutex::new(None));
    let setup = CoordinatorSetup {
        config: settings.checkpoints.clone(),
        job_name: settings.job_name.clone(),
        job_id: job_id.to_string(),
        base,
        controls,
        sources,
        history: control.history.clone(),
        fail_job: {
            let (failure, cancel) = (failure.clone(), cancel.clone());
            Box::new(move |e| {
                failure.lock().get_or_insert(e);
                cancel.cancel();
            })
        },
    };
    let coordinator_thread = std::thread::Builder::new()
        .name("checkpoint coordinator".into())
        .spawn(move || coordinator::run(setup, events_rx))
        .map_err(|e| FjordError::io("cannot start the checkpoint coordinator", e))?;
    *control.coordinator.lock() = Some(events_tx.clone());

    let task_count = tasks.len();
    let mut handles = Vec::with_capacity(task_count);
    for (name, runnable, rt) in tasks {
        let cancel = cancel.clone();
        let failure = failure.clone();
        let thread_name = name.chars().take(60).collect::<String>();
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let result = run_task(runnable, &cancel, &name, &rt);
                if let Err(e) = result {
                    let mut slot = failure.lock();
                    if !e.is_cancellation() && slot.is_none() {
                        tracing::error!(task = %name, error = %e, "task failed; cancelling the job");
                        *slot = Some(e);
                    }
                    cancel.cancel();
                }
            })
            .map_err(|e| FjordError::io("cannot start a task thread", e))?;
        handles.push(handle);
    }
    for h in handles {
        let _ = h.join();
    }
    *control.coordinator.lock() = None;
    let _ = events_tx.send(CoordinatorEvent::Shutdown);
    let _ = coordinator_thread.join();
    if let Some(e) = failure.lock().take() {
        return Err(e);
    }
    if cancel.is_cancelled() {
        return Err(FjordError::Cancelled);
    }
    Ok(task_count)
}

fn run_task(runnable: Runnable, cancel: &CancelFlag, name: &str, rt: &TaskRuntime) -> Result<()> {
    // The operators guard user code; this catches what escapes anyway (a bug in Fjord).
    let outcome = catch_unwind(AssertUnwindSafe(move || match runnable {
        Runnable::Source(mut source) => {
            let result = source.run(cancel, rt);
            let closed = source.close();
            result.and(closed)
        }
        Runnable::Input(mut head, inputs, services) => {
            let result = run_input_task(head.as_mut(), &inputs, cancel, &services, rt);
            let closed = head.lifecycle().close();
            result.and(closed)
        }
    }));
    outcome.unwrap_or_else(|payload| {
        Err(FjordError::Internal(format!(
            "task {name} panicked: {}",
            panic_message(payload.as_ref())
        )))
    })
}
