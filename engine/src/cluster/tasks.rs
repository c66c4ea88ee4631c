//! The TaskManager's side of a distributed execution: the subtasks of one attempt placed on
//! this process, running as threads.

use super::{AttemptPlan, TaskCommand, TaskReport};
use crate::checkpoint::coordinator::TaskControl;
use crate::error::{FjordError, Result};
use crate::network::DataServer;
use crate::runtime::channel::CancelFlag;
use crate::runtime::deploy::{FailureSlot, Placement, build_tasks, spawn_tasks};
use crate::runtime::io_metrics::IoMetrics;
use crate::runtime::jobgraph::JobGraph;
use crate::runtime::minicluster::{RestoreSettings, RunSettings, load_restore};
use crate::storage::StorageOptions;
use crossbeam_channel::Sender;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Receives what this process's tasks report to the checkpoint coordinator.
pub type ReportFn = Arc<dyn Fn(TaskReport) + Send + Sync>;

/// The running subtasks of one attempt in this process.
pub struct DeployedTasks {
    epoch: u64,
    attempt: u32,
    controls: BTreeMap<usize, Sender<TaskControl>>,
    cancel: CancelFlag,
    storage_options: StorageOptions,
    supervisor: parking_lot::Mutex<Option<JoinHandle<Result<()>>>>,
    io: IoMetrics,
    metrics: crate::metrics::MetricRegistry,
}

impl std::fmt::Debug for DeployedTasks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployedTasks")
            .field("epoch", &self.epoch)
            .field("attempt", &self.attempt)
            .field("tasks", &self.controls.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DeployedTasks {
    /// Builds and starts the subtasks `plan` places on worker `me`.
    pub(crate) fn start(
        job: &JobGraph,
        settings: &RunSettings,
        plan: &AttemptPlan,
        me: usize,
        server: &DataServer,
        reports: ReportFn,
    ) -> Result<Self> {
        settings.state_backend.kind.factory()?;
        if plan.placement.len() != job.vertices.len()
            || plan
                .placement
                .iter()
                .zip(&job.vertices)
                .any(|(p, v)| p.len() != v.parallelism)
        {
            return Err(FjordError::InvalidGraph(format!(
                "the JobManager's plan has parallelism {:?} per vertex, but this process built {:?} from the same job; \
                 run the same fjord image (and job arguments) on the JobManager and every TaskManager",
                plan.placement.iter().map(Vec::len).collect::<Vec<_>>(),
                job.vertices
                    .iter()
                    .map(|v| v.parallelism)
                    .collect::<Vec<_>>()
            )));
        }
        let storage_options = settings.checkpoints.storage_options.clone();
        let restored = match &plan.restore {
            Some(path) => Some(load_restore(
                job,
                &RestoreSettings {
                    path: path.clone(),
                    options: storage_options.clone(),
                    allow_non_restored_state: plan.allow_non_restored_state,
                },
            )?),
            None => None,
        };
        let mut settings = settings.clone();
        settings.attempt = plan.attempt;
        let cancel = CancelFlag::default();
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let placement = Placement { plan, me, server };
        let tasks = build_tasks(
            job,
            &settings,
            &cancel,
            restored,
            Some(&placement),
            &events_tx,
        )?;
        drop(events_tx);
        let controls = tasks.iter().map(|t| (t.index, t.control.clone())).collect();
        let forwarder = std::thread::Builder::new()
            .name("task reports".into())
            .spawn(move || {
                for event in events_rx {
                    if let Some(report) = TaskReport::from_event(event) {
                        reports(report);
                    }
                }
            })
            .map_err(|e| FjordError::io("cannot start a thread", e))?;
        let failure: FailureSlot = Arc::default();
        let handles = spawn_tasks(tasks, &cancel, &failure)?;
        let supervisor = {
            let cancel = cancel.clone();
            std::thread::Builder::new()
                .name(format!("attempt {}", plan.attempt))
                .spawn(move || {
                    for h in handles {
                        // Task threads catch their panics and report through `failure`.
                        let _ = h.join();
                    }
                    if let Err(payload) = forwarder.join() {
                        // Reports (checkpoint acks, declines) after the panic never reached
                        // the JobManager.
                        tracing::warn!(
                            error = %crate::error::panic_message(payload.as_ref()),
                            "the task report forwarder panicked; later task reports were lost"
                        );
                    }
                    if let Some(e) = failure.lock().take() {
                        return Err(e);
                    }
                    if cancel.is_cancelled() {
                        return Err(FjordError::Cancelled);
                    }
                    Ok(())
                })
                .map_err(|e| FjordError::io("cannot start a thread", e))?
        };
        Ok(DeployedTasks {
            epoch: plan.epoch,
            attempt: plan.attempt,
            controls,
            cancel,
            storage_options,
            supervisor: parking_lot::Mutex::new(Some(supervisor)),
            io: settings.io.clone(),
            metrics: settings.metrics.clone(),
        })
    }

    /// The JobManager epoch and attempt these tasks belong to.
    pub fn generation(&self) -> (u64, u32) {
        (self.epoch, self.attempt)
    }

    /// The task numbers running here.
    pub fn tasks(&self) -> Vec<usize> {
        self.controls.keys().copied().collect()
    }

    /// Hands a coordinator command to task `task`. Returns false when the task does not run
    /// here.
    ///
    /// # Errors
    /// A trigger's target URL cannot be opened.
    pub fn command(&self, task: usize, command: TaskCommand) -> Result<bool> {
        let Some(control) = self.controls.get(&task) else {
            return Ok(false);
        };
        // A task that already ended has dropped its receiver; a lost command fails at most
        // its checkpoint (see `Deployer::send`).
        let _ = control.send(command.into_control(&self.storage_options)?);
        Ok(true)
    }

    /// Asks every task here to stop.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// True once every task here ended.
    pub fn is_finished(&self) -> bool {
        self.supervisor
            .lock()
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }

    /// Records in and out of the tasks here.
    pub fn io_metrics(&self) -> IoMetrics {
        self.io.clone()
    }

    /// The counters and gauges of the operators of the tasks here (user and connector
    /// metrics), live while they run.
    pub fn metrics(&self) -> crate::metrics::MetricRegistry {
        self.metrics.clone()
    }

    /// Waits until every task here ended: `Ok` when all finished, the first failure
    /// otherwise, `Err(FjordError::Cancelled)` after [`cancel`](Self::cancel). Only the first
    /// call waits and reports the outcome; later calls return `Ok` at once.
    ///
    /// # Errors
    /// The first task failure, or cancellation.
    pub fn wait(&self) -> Result<()> {
        let handle = self.supervisor.lock().take();
        match handle {
            Some(handle) => handle.join().unwrap_or_else(|_| {
                Err(FjordError::Internal(
                    "the attempt supervisor panicked".into(),
                ))
            }),
            None => Ok(()),
        }
    }
}

impl Drop for DeployedTasks {
    /// Tasks nobody waits for any more are cancelled.
    fn drop(&mut self) {
        if self.supervisor.lock().is_some() {
            self.cancel.cancel();
        }
    }
}
