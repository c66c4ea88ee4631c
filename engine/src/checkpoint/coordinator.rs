//! The checkpoint coordinator: triggers, collects acknowledgements, completes, notifies,
//! retains, and takes savepoints. One per job execution attempt; the history of completed
//! checkpoints outlives attempts so a restart resumes from the latest one.

use crate::checkpoint::CheckpointBarrier;
use crate::checkpoint::config::CheckpointConfig;
use crate::checkpoint::metadata::{CheckpointMetadata, OperatorMetadata, SubtaskStateHandle};
use crate::checkpoint::participant::OperatorKey;
use crate::error::{FjordError, Result};
use crate::storage::SnapshotStore;
use crate::storage::layout::{checkpoint_dir, savepoint_dir_name};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the coordinator tells a task.
#[derive(Debug, Clone)]
pub(crate) enum TaskControl {
    /// (Sources only) inject this barrier now.
    Trigger(CheckpointBarrier),
    /// The checkpoint completed everywhere.
    Complete(u64),
    /// The checkpoint was given up (sources waiting to stop after it carry on).
    Abort(u64),
}

/// One state file a task wrote for a checkpoint.
#[derive(Debug, Clone)]
pub(crate) struct WrittenState {
    pub(crate) key: OperatorKey,
    pub(crate) file: String,
    pub(crate) size: u64,
    /// Its checksum (see [`checksum`](crate::storage::checksum::checksum)).
    pub(crate) checksum: String,
}

/// What tasks and clients tell the coordinator.
pub(crate) enum CoordinatorEvent {
    /// A task's snapshot is uploaded.
    Ack {
        checkpoint_id: u64,
        task: usize,
        states: Vec<WrittenState>,
    },
    /// A task could not take or upload its snapshot.
    Decline {
        checkpoint_id: u64,
        task: usize,
        reason: String,
    },
    /// A task finished its input (sources: before finishing their chain; other tasks: after
    /// it). No periodic checkpoint can complete any more; once every task finished, the
    /// final checkpoint is taken.
    TaskFinished {
        /// The task.
        task: usize,
    },
    /// Take a savepoint into a directory under `target` and reply with it once complete.
    Savepoint {
        target: SnapshotStore,
        reply: Reply,
        /// Stop the job after the savepoint (`Some(drain)`).
        stop: Option<bool>,
    },
    /// Take a checkpoint now (Flink's manual checkpoint, `POST /jobs/:jobid/checkpoints`),
    /// whether periodic checkpoints are on or off, and reply once it completed or failed. It
    /// waits in a queue while `max_concurrent` checkpoints are in flight, as Flink's do.
    Checkpoint { kind: CheckpointType, reply: Reply },
    /// Every task of the attempt is deployed and running: periodic checkpoints may start
    /// (tasks in other processes cannot take a barrier before they run).
    TasksRunning,
    /// The execution ended; stop.
    Shutdown,
}

/// Where the coordinator answers a savepoint or a manual checkpoint: the completed snapshot,
/// or why it failed.
pub(crate) type Reply = Sender<Result<CompletedCheckpoint>>;

/// The kind of a checkpoint triggered on demand (Flink's `CheckpointType` in
/// `POST /jobs/:jobid/checkpoints`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointType {
    /// What periodic checkpoints take: incremental when the state backend takes incremental
    /// snapshots (RocksDB by default), else full.
    #[default]
    Configured,
    /// A self-contained checkpoint: a backend with incremental snapshots writes all of its
    /// state into the checkpoint's directory, and the next incremental checkpoint reuses
    /// nothing from before it.
    Full,
    /// Incremental where the backend supports it, else full (as Flink: the backend decides).
    Incremental,
}

/// Manual checkpoints that may wait for a free slot (Flink's `maxQueuedRequests`).
const MAX_QUEUED_CHECKPOINTS: usize = 1000;

/// Completed checkpoints of a job, shared by its execution attempts.
#[derive(Debug, Default)]
pub(crate) struct CheckpointHistory {
    /// URL of the latest completed checkpoint.
    pub(crate) latest: Option<String>,
    /// Id of the last checkpoint triggered.
    pub(crate) last_id: u64,
    /// Completed checkpoints still retained, oldest first: (id, directory store).
    pub(crate) retained: VecDeque<(u64, SnapshotStore)>,
    /// Completed checkpoints in this execution (for results and tests).
    pub(crate) completed_count: u64,
    /// Failed or aborted checkpoints.
    pub(crate) failed_count: u64,
    /// Execution attempts started (one coordinator runs per attempt): 1 plus the restarts.
    pub(crate) attempts: u32,
    /// The most recent completed checkpoints and savepoints, oldest first (at most 100).
    pub(crate) recent: VecDeque<CompletedCheckpoint>,
    /// A stop-with-savepoint completed: the job ends because it was stopped, not because its
    /// input ended.
    pub(crate) stopped: bool,
    /// The failures of execution attempts, oldest first (at most 100): what made the job
    /// restart, and what made it fail for good.
    pub(crate) failures: VecDeque<JobFailure>,
    /// The most recent failed or aborted checkpoints and savepoints, oldest first (at most
    /// [`RECENT_FAILED_CHECKPOINTS`]).
    pub(crate) failed_recent: VecDeque<FailedCheckpoint>,
    /// The checkpoints and savepoints of the running attempt still waiting for
    /// acknowledgements, oldest first (updated as they arrive).
    pub(crate) in_flight: Vec<InFlightCheckpoint>,
}

/// A checkpoint or savepoint that failed or was aborted, as reported to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedCheckpoint {
    /// Checkpoint id.
    pub id: u64,
    /// True for savepoints.
    pub savepoint: bool,
    /// When it was triggered (ms since the epoch).
    pub triggered_at_ms: i64,
    /// When it failed (ms since the epoch).
    pub failed_at_ms: i64,
    /// Why: a task declined it, it timed out, writing its metadata failed, the job ended or a
    /// task finished before it completed.
    pub reason: String,
}

/// A checkpoint or savepoint in flight: which tasks acknowledged it so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightCheckpoint {
    /// Checkpoint id.
    pub id: u64,
    /// True for savepoints.
    pub savepoint: bool,
    /// When it was triggered (ms since the epoch).
    pub triggered_at_ms: i64,
    /// Per vertex of the job graph (in vertex order): subtasks that acknowledged it, and the
    /// vertex's parallelism.
    pub vertices: Vec<(usize, usize)>,
}

/// Failed checkpoints kept in [`CheckpointHistory::failed_recent`].
pub(crate) const RECENT_FAILED_CHECKPOINTS: usize = 100;

/// A failure of an execution attempt (Flink's exception history entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFailure {
    /// When the attempt failed (ms since the epoch).
    pub at_ms: i64,
    /// The root cause, as the error prints.
    pub message: String,
    /// The failing operator's name, when the error names one.
    pub operator: Option<String>,
    /// The failing subtask (zero-based), when the error names one.
    pub subtask: Option<usize>,
    /// The attempt that failed (0 is the first).
    pub attempt: u32,
    /// False when the job restarted after it; true when the job failed for good.
    pub terminal: bool,
}

/// Failures kept in [`CheckpointHistory::failures`].
pub(crate) const RECENT_FAILURES: usize = 100;

impl CheckpointHistory {
    /// Records that attempt `attempt` failed with `error`.
    pub(crate) fn record_failure(
        &mut self,
        error: &crate::FjordError,
        attempt: u32,
        terminal: bool,
    ) {
        let location = error.location();
        if self.failures.len() == RECENT_FAILURES {
            self.failures.pop_front();
        }
        self.failures.push_back(JobFailure {
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            message: error.to_string(),
            operator: location.map(|l| l.operator.clone()),
            subtask: location.map(|l| l.subtask),
            attempt,
            terminal,
        });
    }
}

/// A completed checkpoint or savepoint, as reported to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    /// Checkpoint id.
    pub id: u64,
    /// URL of its directory.
    pub path: String,
    /// When it completed (ms since the epoch).
    pub completed_at_ms: i64,
    /// Bytes of state files.
    pub size_bytes: u64,
    /// Time from trigger to completion.
    pub duration_ms: u64,
    /// True for savepoints.
    pub savepoint: bool,
}

const RECENT_CHECKPOINTS: usize = 100;

/// Aborted checkpoints of an attempt whose directories are deleted again when a late
/// acknowledgement arrives and when the attempt ends (at most this many, the newest).
const ABORTED_REMEMBERED: usize = 100;

/// Shared handle on the history.
pub(crate) type SharedHistory = Arc<Mutex<CheckpointHistory>>;

struct Pending {
    barrier: CheckpointBarrier,
    started: Instant,
    acked: BTreeSet<usize>,
    states: Vec<WrittenState>,
    reply: Option<Reply>,
}

/// How the coordinator reaches the tasks of an execution attempt: channels to threads of this
/// process, or the control plane to tasks in TaskManagers.
pub(crate) struct TaskControls {
    /// Number of tasks in the attempt (all of them acknowledge a checkpoint).
    pub(crate) count: usize,
    send: Box<dyn Fn(usize, TaskControl) + Send>,
}

impl TaskControls {
    /// Controls of tasks running as threads of this process.
    pub(crate) fn local(senders: Vec<Sender<TaskControl>>) -> Self {
        TaskControls {
            count: senders.len(),
            send: Box::new(move |task, control| {
                if let Some(s) = senders.get(task) {
                    // An ended task dropped its receiver; a lost command fails at most its
                    // checkpoint, which then times out.
                    let _ = s.send(control);
                }
            }),
        }
    }

    /// Controls that hand each message to `send` (for tasks in other processes).
    pub(crate) fn remote(count: usize, send: impl Fn(usize, TaskControl) + Send + 'static) -> Self {
        TaskControls {
            count,
            send: Box::new(send),
        }
    }

    /// Sends `control` to task `task`; a task that is gone is skipped.
    fn send(&self, task: usize, control: TaskControl) {
        (self.send)(task, control);
    }
}

/// Everything the coordinator needs from the execution.
pub(crate) struct CoordinatorSetup {
    pub(crate) config: CheckpointConfig,
    pub(crate) job_name: String,
    pub(crate) job_id: String,
    pub(crate) base: Option<SnapshotStore>,
    pub(crate) controls: TaskControls,
    pub(crate) sources: Vec<usize>,
    pub(crate) history: SharedHistory,
    /// Called when tolerable checkpoint failures are exceeded.
    pub(crate) fail_job: Box<dyn Fn(FjordError) + Send>,
    /// Whether the tasks already run. Threads of this process read their control channels
    /// as soon as they start, so nothing sent early is lost; tasks in other processes can only
    /// take commands once deployed, so the deployer sends `TasksRunning` first.
    pub(crate) tasks_running: bool,
    /// The vertex of each task (tasks are numbered vertex by vertex, subtask by subtask), for
    /// the per-vertex acknowledgements of checkpoints in flight.
    pub(crate) task_vertices: Vec<usize>,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Per vertex (in vertex order): how many of the `acked` tasks belong to it, and its task count;
/// `task_vertices` holds each task's vertex.
fn acks_per_vertex(task_vertices: &[usize], acked: &BTreeSet<usize>) -> Vec<(usize, usize)> {
    let vertices = task_vertices.iter().max().map_or(0, |v| v + 1);
    let mut counts = vec![(0usize, 0usize); vertices];
    for (task, v) in task_vertices.iter().enumerate() {
        counts[*v].1 += 1;
        if acked.contains(&task) {
            counts[*v].0 += 1;
        }
    }
    counts
}

/// Runs the coordinator until `Shutdown`.
pub(crate) fn run(setup: CoordinatorSetup, events: Receiver<CoordinatorEvent>) {
    setup.history.lock().attempts += 1;
    let running = setup.tasks_running;
    let mut c = Coordinator {
        setup,
        pending: BTreeMap::new(),
        finished: BTreeSet::new(),
        final_state: FinalCheckpoint::NotYet,
        running,
        consecutive_failures: 0,
        last_end: Instant::now(),
        aborted: BTreeMap::new(),
        queued: VecDeque::new(),
    };
    loop {
        let wait = c
            .next_trigger_in()
            .unwrap_or(Duration::from_millis(200))
            .min(Duration::from_millis(200));
        match events.recv_timeout(wait) {
            Ok(CoordinatorEvent::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
            Ok(event) => c.handle(event),
            Err(RecvTimeoutError::Timeout) => {}
        }
        c.expire();
        c.start_queued();
        if c.final_checkpoint_due() {
            c.trigger_final();
        }
        c.publish_in_flight();
        if c.next_trigger_in() == Some(Duration::ZERO) {
            let target = c.setup.base.as_ref().map(|b| {
                b.child(&checkpoint_dir(
                    &c.setup.job_id,
                    c.setup.history.lock().last_id + 1,
                ))
            });
            if let Some(target) = target {
                c.trigger(target, false, None, None, false);
            }
        }
    }
    // Every task (and its uploads) ended: what is still pending never completes. Removing it
    // here, with the shared files only it uploaded, leaves exactly the retained checkpoints.
    // (During the job a concurrent checkpoint may have uploaded the same new file, so
    // shared files of checkpoints aborted then stay until the job's cleanup.)
    let retained: Vec<SnapshotStore> = {
        let h = c.setup.history.lock();
        h.retained.iter().map(|(_, d)| d.clone()).collect()
    };
    for (id, p) in std::mem::take(&mut c.pending) {
        let what = if p.barrier.savepoint {
            "savepoint"
        } else {
            crate::checkpoint::shared::release_logged(id, &p.barrier.target, &retained);
            "checkpoint"
        };
        c.abort(p, format!("the job ended before the {what} completed"));
    }
    // A task may have written into an aborted checkpoint's directory after the abort deleted
    // it (it took its snapshot before it heard of the abort, or the trigger reached it after
    // its input ended); now that every task ended, nothing writes there any more.
    for (id, dir) in std::mem::take(&mut c.aborted) {
        delete_aborted(id, &dir);
    }
    c.publish_in_flight();
}

/// Deletes what is in the directory of aborted checkpoint `id`.
fn delete_aborted(id: u64, dir: &SnapshotStore) {
    match dir.delete_prefix("") {
        Ok(0) => {}
        Ok(n) => tracing::debug!(
            checkpoint = id,
            files = n,
            "deleted files written after the checkpoint was aborted"
        ),
        Err(e) => {
            tracing::warn!(checkpoint = id, error = %e, "could not delete an aborted checkpoint's files")
        }
    }
}

/// Where the attempt stands with its final checkpoint (Flink's FLIP-147).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FinalCheckpoint {
    /// Not every task finished its input yet (or one was never asked to take it).
    NotYet,
    /// A stop-with-savepoint completed: the savepoint is the last snapshot, none follows.
    Stopped,
    /// The final checkpoint with this id is pending.
    Pending(u64),
    /// It completed: the tasks commit and end.
    Completed,
}

struct Coordinator {
    setup: CoordinatorSetup,
    pending: BTreeMap<u64, Pending>,
    /// Tasks whose input ended.
    finished: BTreeSet<usize>,
    final_state: FinalCheckpoint,
    /// False until every task runs (a trigger sent earlier would be lost).
    running: bool,
    consecutive_failures: u32,
    last_end: Instant,
    /// Directories of the checkpoints aborted in this attempt, by id: tasks still writing
    /// into one when it was aborted leave files behind, deleted on a late acknowledgement
    /// and when the attempt ends.
    aborted: BTreeMap<u64, SnapshotStore>,
    /// Manual checkpoints waiting for fewer than `max_concurrent` in flight, oldest first.
    queued: VecDeque<(CheckpointType, Reply)>,
}

impl Coordinator {
    /// Time until the next periodic checkpoint is due, `None` when none will be.
    fn next_trigger_in(&self) -> Option<Duration> {
        let interval = self.setup.config.interval?;
        if !self.finished.is_empty()
            || !self.running
            || self.setup.base.is_none()
            || self.pending.len() >= self.setup.config.max_concurrent
        {
            return None;
        }
        // An interval too long for the clock means no periodic checkpoint.
        let due = self
            .last_end
            .checked_add(interval.max(self.setup.config.min_pause))?;
        Some(due.saturating_duration_since(Instant::now()))
    }

    fn trigger(
        &mut self,
        target: SnapshotStore,
        savepoint: bool,
        reply: Option<Reply>,
        stop: Option<bool>,
        full: bool,
    ) {
        let id = {
            let mut h = self.setup.history.lock();
            h.last_id += 1;
            h.last_id
        };
        let barrier = CheckpointBarrier {
            id,
            timestamp: now_millis(),
            target,
            savepoint,
            stop,
            full,
        };
        tracing::debug!(checkpoint = id, savepoint, full, "triggering");
        // The final checkpoint goes to every task (their inputs ended, no barrier flows);
        // any other to the sources, whose barriers flow through the job.
        let targets: Vec<usize> = match self.final_state {
            FinalCheckpoint::Pending(f) if f == id => (0..self.setup.controls.count).collect(),
            _ => self.setup.sources.clone(),
        };
        for t in targets {
            self.setup
                .controls
                .send(t, TaskControl::Trigger(barrier.clone()));
        }
        self.pending.insert(
            id,
            Pending {
                barrier,
                started: Instant::now(),
                acked: BTreeSet::new(),
                states: Vec::new(),
                reply,
            },
        );
        self.last_end = Instant::now();
    }

    /// Whether the final checkpoint is to be triggered now: every task finished its input,
    /// none is pending, the job takes periodic checkpoints, and the minimum pause after the
    /// last one (or the last failed final one) passed.
    fn final_checkpoint_due(&self) -> bool {
        self.final_state == FinalCheckpoint::NotYet
            && self.setup.config.interval.is_some()
            && self.setup.base.is_some()
            && self.finished.len() == self.setup.controls.count
            && self.pending.is_empty()
            && self.last_end.elapsed() >= self.setup.config.min_pause
    }

    /// Triggers the final checkpoint at every task.
    fn trigger_final(&mut self) {
        let Some(base) = &self.setup.base else {
            return;
        };
        let id = self.setup.history.lock().last_id + 1;
        let target = base.child(&checkpoint_dir(&self.setup.job_id, id));
        self.final_state = FinalCheckpoint::Pending(id);
        tracing::info!(
            checkpoint = id,
            "every task finished its input; triggering the final checkpoint"
        );
        self.trigger(target, false, None, None, false);
    }

    /// Why no checkpoint or savepoint can start now, if so.
    fn refusal(&self, what: &str) -> Option<FjordError> {
        if !self.running {
            return Some(FjordError::CheckpointFailed(
                "the job's tasks are not running yet (waiting for slots or being deployed); \
                 try again in a moment"
                    .into(),
            ));
        }
        (!self.finished.is_empty()).then(|| {
            FjordError::CheckpointFailed(format!("the job is finishing; no {what} can be taken"))
        })
    }

    /// Queues a manual checkpoint; it starts once fewer than `max_concurrent` are in flight.
    fn request_checkpoint(&mut self, kind: CheckpointType, reply: Reply) {
        if let Some(refusal) = self.refusal("checkpoint") {
            // Here and below: a requester that stopped waiting needs no answer.
            let _ = reply.send(Err(refusal));
            return;
        }
        if self.queued.len() >= MAX_QUEUED_CHECKPOINTS {
            let _ = reply.send(Err(FjordError::CheckpointFailed(format!(
                "{MAX_QUEUED_CHECKPOINTS} manual checkpoints are already waiting; try again \
                 once they completed"
            ))));
            return;
        }
        self.queued.push_back((kind, reply));
        self.start_queued();
    }

    /// Starts queued manual checkpoints while fewer than `max_concurrent` are in flight.
    fn start_queued(&mut self) {
        while !self.queued.is_empty() && self.pending.len() < self.setup.config.max_concurrent {
            let (kind, reply) = self.queued.pop_front().expect("queued");
            if let Some(refusal) = self.refusal("checkpoint") {
                let _ = reply.send(Err(refusal));
                continue;
            }
            // With periodic checkpoints off there is no base yet: the configured storage.
            let base = match &self.setup.base {
                Some(base) => Ok(base.clone()),
                None => SnapshotStore::open(
                    &self.setup.config.storage,
                    &self.setup.config.storage_options,
                ),
            };
            let base = match base {
                Ok(base) => base,
                Err(e) => {
                    let _ = reply.send(Err(e));
                    continue;
                }
            };
            let id = self.setup.history.lock().last_id + 1;
            let target = base.child(&checkpoint_dir(&self.setup.job_id, id));
            let full = kind == CheckpointType::Full;
            self.trigger(target, false, Some(reply), None, full);
        }
    }

    fn handle(&mut self, event: CoordinatorEvent) {
        match event {
            CoordinatorEvent::Ack {
                checkpoint_id,
                task,
                states,
            } => {
                let Some(p) = self.pending.get_mut(&checkpoint_id) else {
                    // The acknowledging task wrote its files: if the checkpoint was aborted,
                    // they must not stay.
                    if let Some(dir) = self.aborted.get(&checkpoint_id) {
                        delete_aborted(checkpoint_id, dir);
                    }
                    return;
                };
                p.acked.insert(task);
                p.states.extend(states);
                if p.acked.len() == self.setup.controls.count {
                    let p = self.pending.remove(&checkpoint_id).expect("pending");
                    self.complete(p);
                }
            }
            CoordinatorEvent::Decline {
                checkpoint_id,
                task,
                reason,
            } => {
                if let Some(p) = self.pending.remove(&checkpoint_id) {
                    self.fail(p, format!("task {task} declined: {reason}"));
                }
            }
            CoordinatorEvent::TaskFinished { task } => {
                if !self.finished.insert(task) || self.finished.len() > 1 {
                    return;
                }
                // A finished source injects no more barriers: periodic checkpoints pending
                // now cannot complete.
                for (_, p) in std::mem::take(&mut self.pending) {
                    self.abort(p, "a task finished before the checkpoint completed".into());
                }
            }
            CoordinatorEvent::TasksRunning => {
                self.running = true;
                // The first periodic checkpoint comes one interval after the tasks run.
                self.last_end = Instant::now();
            }
            CoordinatorEvent::Savepoint {
                target,
                reply,
                stop,
            } => {
                if let Some(refusal) = self.refusal("savepoint") {
                    let _ = reply.send(Err(refusal));
                    return;
                }
                let dir = target.child(&savepoint_dir_name(&self.setup.job_id, rand::random()));
                self.trigger(dir, true, Some(reply), stop, false);
            }
            CoordinatorEvent::Checkpoint { kind, reply } => self.request_checkpoint(kind, reply),
            CoordinatorEvent::Shutdown => {}
        }
    }

    fn expire(&mut self) {
        let timeout = self.setup.config.timeout;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.started.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let p = self.pending.remove(&id).expect("pending");
            self.fail(p, format!("not complete after {timeout:?}"));
        }
    }

    fn metadata(&self, p: &Pending) -> Result<CheckpointMetadata> {
        let mut operators: BTreeMap<String, OperatorMetadata> = BTreeMap::new();
        for s in &p.states {
            let op = operators
                .entry(s.key.id.clone())
                .or_insert_with(|| OperatorMetadata {
                    name: s.key.name.clone(),
                    has_uid: s.key.has_uid,
                    parallelism: s.key.parallelism,
                    max_parallelism: s.key.max_parallelism,
                    subtasks: Vec::new(),
                });
            op.subtasks.push(SubtaskStateHandle {
                subtask: s.key.subtask,
                file: s.file.clone(),
                key_groups: s.key.key_groups(),
                size: s.size,
                // A TaskManager of an older version sends none.
                checksum: (!s.checksum.is_empty()).then(|| s.checksum.clone()),
            });
        }
        for op in operators.values_mut() {
            op.subtasks.sort_by_key(|s| s.subtask);
        }
        if p.barrier.savepoint
            && let Some((_, op)) = operators
                .iter()
                .find(|(_, op)| !op.has_uid && op.subtasks.iter().any(|s| s.size > 0))
        {
            return Err(FjordError::CheckpointFailed(format!(
                "operator '{}' has state but no uid; give it `.uid(\"...\")` so a savepoint can map its state after the job changes",
                op.name
            )));
        }
        Ok(CheckpointMetadata {
            version: crate::storage::layout::FORMAT_VERSION,
            job_name: self.setup.job_name.clone(),
            job_id: self.setup.job_id.clone(),
            checkpoint_id: p.barrier.id,
            timestamp: p.barrier.timestamp,
            savepoint: p.barrier.savepoint,
            operators,
            checksum: None,
            leader_epoch: None,
        })
    }

    fn complete(&mut self, p: Pending) {
        // Last look at leadership before the write that makes the checkpoint count. A
        // JobManager that lost it aborts (not a failure of the job: it goes away, and must not
        // record anything that would stop the new leader).
        let leader_epoch = match self.setup.config.fence.as_ref().map(|f| f.check()) {
            None => None,
            Some(Ok(epoch)) => Some(epoch),
            Some(Err(reason)) => return self.abort(p, reason),
        };
        let result = self.metadata(&p).and_then(|mut m| {
            m.leader_epoch = leader_epoch;
            m.write(&p.barrier.target).map(|_| m)
        });
        let meta = match result {
            Ok(m) => m,
            Err(e) => return self.fail(p, e.to_string()),
        };
        tracing::info!(
            checkpoint = meta.checkpoint_id,
            bytes = meta.state_size(),
            savepoint = meta.savepoint,
            "completed"
        );
        self.consecutive_failures = 0;
        self.last_end = Instant::now();
        if self.final_state == FinalCheckpoint::Pending(p.barrier.id) {
            self.final_state = FinalCheckpoint::Completed;
        }
        if p.barrier.stop.is_some() {
            self.final_state = FinalCheckpoint::Stopped;
            self.setup.history.lock().stopped = true;
        }
        let url = p.barrier.target.url().to_string();
        let record = CompletedCheckpoint {
            id: meta.checkpoint_id,
            path: url.clone(),
            completed_at_ms: now_millis(),
            size_bytes: meta.state_size(),
            duration_ms: p.started.elapsed().as_millis() as u64,
            savepoint: meta.savepoint,
        };
        {
            let mut h = self.setup.history.lock();
            h.recent.push_back(record.clone());
            while h.recent.len() > RECENT_CHECKPOINTS {
                h.recent.pop_front();
            }
        }
        if !p.barrier.savepoint {
            self.retain(p.barrier.id, &p.barrier.target, url);
        }
        // Tasks hear of the completion only now, once the checkpoint is the one a restart
        // starts from (as Flink adds it to the completed checkpoint store first): a sink that
        // commits and a source that acknowledges on this notice must never be ahead of the
        // checkpoint a failure right after it restores. Sent before `retain`, a restart in
        // between would restore the previous checkpoint while a message-acknowledging source
        // had acknowledged (and forgotten the ids of) this one's messages: a broker that had
        // not yet processed the acknowledgement redelivers them, and they are committed twice.
        self.notify_complete(p.barrier.id);
        // A manual checkpoint (or savepoint) answers once it is the latest one.
        if let Some(reply) = p.reply {
            // The caller may have stopped waiting; the checkpoint is recorded either way.
            let _ = reply.send(Ok(record));
        }
    }

    /// Tells every task that checkpoint `id` completed.
    fn notify_complete(&self, id: u64) {
        for task in 0..self.setup.controls.count {
            self.setup.controls.send(task, TaskControl::Complete(id));
        }
    }

    /// Makes completed checkpoint `id` the latest and deletes those beyond the retained count.
    fn retain(&mut self, id: u64, dir: &SnapshotStore, url: String) {
        let mut h = self.setup.history.lock();
        h.latest = Some(url);
        h.completed_count += 1;
        h.retained.push_back((id, dir.clone()));
        while h.retained.len() > self.setup.config.retained.max(1) {
            let (id, dir) = h.retained.pop_front().expect("retained");
            let still: Vec<SnapshotStore> = h.retained.iter().map(|(_, d)| d.clone()).collect();
            crate::checkpoint::shared::release_logged(id, &dir, &still);
            if let Err(e) = dir.delete_prefix("") {
                tracing::warn!(checkpoint = id, error = %e, "could not delete a checkpoint beyond the retained count");
            }
        }
    }

    /// Shares the checkpoints in flight and their acknowledgements with clients.
    fn publish_in_flight(&self) {
        if self.pending.is_empty() {
            let mut h = self.setup.history.lock();
            if !h.in_flight.is_empty() {
                h.in_flight.clear();
            }
            return;
        }
        let in_flight: Vec<InFlightCheckpoint> = self
            .pending
            .values()
            .map(|p| InFlightCheckpoint {
                id: p.barrier.id,
                savepoint: p.barrier.savepoint,
                triggered_at_ms: p.barrier.timestamp,
                vertices: acks_per_vertex(&self.setup.task_vertices, &p.acked),
            })
            .collect();
        let mut h = self.setup.history.lock();
        if h.in_flight != in_flight {
            h.in_flight = in_flight;
        }
    }

    fn abort(&mut self, p: Pending, reason: String) {
        tracing::info!(checkpoint = p.barrier.id, %reason, "aborted");
        if self.final_state == FinalCheckpoint::Pending(p.barrier.id) {
            // Triggered again after the minimum pause, unless the job fails for it.
            self.final_state = FinalCheckpoint::NotYet;
        }
        // Every task hears it (Flink's notifyCheckpointAborted, best effort): functions learn
        // that the checkpoint will not complete, and sources paused for a stop-with-savepoint
        // carry on.
        for task in 0..self.setup.controls.count {
            self.setup
                .controls
                .send(task, TaskControl::Abort(p.barrier.id));
        }
        if let Err(e) = p.barrier.target.delete_prefix("") {
            tracing::warn!(checkpoint = p.barrier.id, dir = p.barrier.target.url(), error = %e, "could not delete the files of an aborted checkpoint");
        }
        self.aborted.insert(p.barrier.id, p.barrier.target.clone());
        while self.aborted.len() > ABORTED_REMEMBERED {
            self.aborted.pop_first();
        }
        {
            let mut h = self.setup.history.lock();
            h.failed_count += 1;
            if h.failed_recent.len() == RECENT_FAILED_CHECKPOINTS {
                h.failed_recent.pop_front();
            }
            h.failed_recent.push_back(FailedCheckpoint {
                id: p.barrier.id,
                savepoint: p.barrier.savepoint,
                triggered_at_ms: p.barrier.timestamp,
                failed_at_ms: now_millis(),
                reason: reason.clone(),
            });
        }
        if let Some(reply) = p.reply {
            let _ = reply.send(Err(FjordError::CheckpointFailed(reason)));
        }
    }

    fn fail(&mut self, p: Pending, reason: String) {
        let savepoint = p.barrier.savepoint;
        let id = p.barrier.id;
        self.abort(p, reason.clone());
        self.last_end = Instant::now();
        if savepoint {
            return; // A failed savepoint is reported to its caller; the job goes on.
        }
        self.consecutive_failures += 1;
        tracing::warn!(checkpoint = id, %reason, failures = self.consecutive_failures, "checkpoint failed");
        if self.consecutive_failures > self.setup.config.tolerable_failures {
            (self.setup.fail_job)(FjordError::CheckpointFailed(format!(
                "checkpoint {id} failed ({reason}) and {} failed in a row exceeds the tolerable {}",
                self.consecutive_failures, self.setup.config.tolerable_failures
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_counted_per_vertex() {
        // Vertex 0 with 1 task, vertex 1 with 3, vertex 2 with 2 (numbered vertex by vertex).
        let task_vertices = [0, 1, 1, 1, 2, 2];
        let acked: BTreeSet<usize> = [0, 2, 3, 5].into();
        assert_eq!(
            acks_per_vertex(&task_vertices, &acked),
            [(1, 1), (2, 3), (1, 2)]
        );
        assert_eq!(
            acks_per_vertex(&task_vertices, &BTreeSet::new()),
            [(0, 1), (0, 3), (0, 2)]
        );
        assert!(acks_per_vertex(&[], &acked).is_empty());
    }
}
