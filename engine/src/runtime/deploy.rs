//! Turning a job graph into running tasks: channels between subtasks (in-process queues, or
//! network connections when producer and consumer run in different processes), the operator
//! chain of every subtask, and a thread per task.
//!
//! The mini-cluster builds every task of an attempt; a TaskManager builds only the tasks
//! placed on it ([`Placement`]), connecting to the others through its data server.

use crate::checkpoint::coordinator::{CoordinatorEvent, TaskControl};
use crate::checkpoint::participant::TaskCheckpointing;
use crate::checkpoint::restore::RestoredJob;
use crate::context::{RuntimeContext, TaskServices};
use crate::error::{FjordError, Result, panic_message};
use crate::graph::{NodeId, NodeKind};
use crate::network::{ChannelKey, DataServer};
use crate::operators::output::{AnyOutput, SideOutputs};
use crate::runtime::channel::{CancelFlag, ChannelSender, channel};
use crate::runtime::io_metrics::{IoCounter, TaskIo};
use crate::runtime::jobgraph::JobGraph;
use crate::runtime::minicluster::RunSettings;
use crate::runtime::partitioner::pointwise_targets;
use crate::runtime::plan::AttemptPlan;
use crate::runtime::stream_type::StreamType;
use crate::runtime::task::{InputChannel, SourceRunner, TaskHead, run_input_task};
use crate::runtime::task_runtime::TaskRuntime;
use crate::time::clock::WakeupSchedule;
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The part of an attempt this process runs, when it does not run all of it.
pub(crate) struct Placement<'a> {
    /// Where every subtask runs.
    pub(crate) plan: &'a AttemptPlan,
    /// This process's index in `plan.workers`.
    pub(crate) me: usize,
    /// This process's data server (remote producers connect to it).
    pub(crate) server: &'a DataServer,
}

impl Placement<'_> {
    fn is_local(&self, vertex: usize, subtask: usize) -> bool {
        self.plan.placement[vertex][subtask] == self.me
    }

    fn address(&self, vertex: usize, subtask: usize) -> &str {
        &self.plan.workers[self.plan.placement[vertex][subtask]].data_address
    }

    fn key(&self, edge: usize, producer: usize, consumer: usize) -> ChannelKey {
        ChannelKey {
            job_id: self.plan.job_id.clone(),
            epoch: self.plan.epoch,
            attempt: self.plan.attempt,
            edge: edge as u32,
            producer: producer as u32,
            consumer: consumer as u32,
        }
    }
}

/// A task ready to start.
pub(crate) struct BuiltTask {
    /// Its number in the attempt.
    pub(crate) index: usize,
    /// Name with subtask, for threads, logs and errors.
    pub(crate) name: String,
    runnable: Runnable,
    runtime: TaskRuntime,
    /// Where the coordinator's messages to this task go.
    pub(crate) control: Sender<TaskControl>,
    /// True for source tasks.
    pub(crate) source: bool,
}

/// The record type of network edge `edge` (the producing node's main or side output type).
fn edge_type(job: &JobGraph, edge: usize) -> Result<Arc<dyn StreamType>> {
    let node = job
        .network_out
        .iter()
        .position(|edges| edges.contains(&edge))
        .ok_or_else(|| FjordError::Internal(format!("edge {edge} has no producer")))?;
    let stream_node = &job.stream.nodes[node];
    match &job.edges[edge].side {
        None => Ok(stream_node.out_type.clone()),
        Some(tag) => stream_node
            .side_types
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, ty)| ty.clone())
            .ok_or_else(|| FjordError::Internal(format!("unknown side output {tag}"))),
    }
}

/// The metrics of subtask `subtask` of vertex `vertex` (the ones its counters use).
fn task_io(job: &JobGraph, settings: &RunSettings, vertex: usize, subtask: usize) -> TaskIo {
    let head = job.vertices[vertex].head;
    settings
        .io
        .task(vertex, 0, &job.stream.nodes[head].name, subtask)
}

type Senders = HashMap<(usize, usize), Vec<ChannelSender>>;
type Receivers = Vec<Vec<Vec<InputChannel>>>;

/// Creates the channels of every edge that touches a local subtask: in-process queues between
/// local subtasks, network senders to remote consumers, network receivers from remote
/// producers. Returns the senders per (edge, producer subtask) in consumer order and the
/// receivers per (vertex, subtask).
fn channels(
    job: &JobGraph,
    settings: &RunSettings,
    cancel: &CancelFlag,
    placement: Option<&Placement<'_>>,
) -> Result<(Senders, Receivers)> {
    let local = |v: usize, s: usize| placement.is_none_or(|p| p.is_local(v, s));
    let mut senders: Senders = HashMap::new();
    let mut receivers: Receivers = job
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
                let (producer_here, consumer_here) =
                    (local(edge.from_vertex, i), local(edge.to_vertex, j));
                let capacity = settings.channel_capacity;
                let (tx, rx): (Option<ChannelSender>, Option<Receiver<_>>) =
                    match (placement, producer_here, consumer_here) {
                        (_, true, true) => {
                            let codec = edge_type(job, e)?.codec();
                            let (tx, rx) = channel(capacity, cancel, Some(codec));
                            (Some(tx), Some(rx))
                        }
                        (Some(pl), true, false) => {
                            let tx = crate::network::connect_counted(
                                pl.address(edge.to_vertex, j),
                                pl.key(e, i, j),
                                edge_type(job, e)?.codec(),
                                capacity,
                                cancel,
                                Some(task_io(job, settings, edge.from_vertex, i)),
                            )?;
                            (Some(tx), None)
                        }
                        (Some(pl), false, true) => {
                            let rx = pl.server.incoming_counted(
                                pl.key(e, i, j),
                                edge_type(job, e)?.codec(),
                                capacity,
                                cancel,
                                Some(task_io(job, settings, edge.to_vertex, j)),
                            )?;
                            (None, Some(rx))
                        }
                        _ => (None, None),
                    };
                if let Some(tx) = tx {
                    senders.entry((e, i)).or_default().push(tx);
                }
                if let Some(rx) = rx {
                    receivers[edge.to_vertex][j].push(InputChannel {
                        input: edge.input,
                        receiver: rx,
                    });
                }
            }
        }
    }
    Ok((senders, receivers))
}

/// Builds the tasks of an attempt that run in this process (all of them without a
/// placement), numbered through the whole attempt. Their acknowledgements go to `events`.
pub(crate) fn build_tasks(
    job: &JobGraph,
    settings: &RunSettings,
    cancel: &CancelFlag,
    restored: Option<Arc<RestoredJob>>,
    placement: Option<&Placement<'_>>,
    events: &Sender<CoordinatorEvent>,
) -> Result<Vec<BuiltTask>> {
    let (senders, mut receivers) = channels(job, settings, cancel, placement)?;
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
    let mut tasks = Vec::new();
    let mut index = 0;
    for (v, vertex) in job.vertices.iter().enumerate() {
        for (s, subtask_inputs) in receivers[v].iter_mut().enumerate() {
            let this = index;
            index += 1;
            if placement.is_some_and(|p| !p.is_local(v, s)) {
                continue;
            }
            let inputs = std::mem::take(subtask_inputs);
            let name = wiring.context(vertex.head, s).task_name_with_subtasks();
            let runnable = wiring.task(vertex.head, s, inputs)?;
            let (control_tx, control_rx) = crossbeam_channel::unbounded();
            let runtime = TaskRuntime {
                index: this,
                control: control_rx,
                coordinator: events.clone(),
                outputs: std::mem::take(&mut wiring.task_outputs),
                checkpointing: wiring.services.checkpointing.clone(),
                mode: settings.checkpoints.mode,
            };
            tasks.push(BuiltTask {
                index: this,
                name,
                source: matches!(runnable, Runnable::Source(_)),
                runnable,
                runtime,
                control: control_tx,
            });
        }
    }
    Ok(tasks)
}

/// The first failure of an attempt's tasks (not a consequence of cancellation).
pub(crate) type FailureSlot = Arc<Mutex<Option<FjordError>>>;

/// Starts a thread per task. A failing task records the first failure in `failure` and
/// cancels the attempt.
pub(crate) fn spawn_tasks(
    tasks: Vec<BuiltTask>,
    cancel: &CancelFlag,
    failure: &FailureSlot,
) -> Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(tasks.len());
    for task in tasks {
        let cancel = cancel.clone();
        let failure = failure.clone();
        let thread_name = task.name.chars().take(60).collect::<String>();
        let BuiltTask {
            name,
            runnable,
            runtime,
            ..
        } = task;
        let handle = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let result = run_task(runnable, &cancel, &name, &runtime);
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
    Ok(handles)
}

pub(crate) enum Runnable {
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
            checkpointing: TaskCheckpointing::new(
                self.restored.clone(),
                self.settings.checkpoints.interval.is_some(),
            ),
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
pub(crate) fn operator_id(job: &JobGraph, node: NodeId) -> String {
    job.stream.nodes[node]
        .uid
        .clone()
        .unwrap_or_else(|| format!("auto-{node}"))
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
