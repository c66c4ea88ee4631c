//! Rescaling in place: a stop-with-savepoint, then a new execution from it at the new
//! parallelism with the same job ID; the rescales by trigger ID and what a rescale in
//! progress ([`Rescaling`]) means for the end of the execution it stops.

use super::build::{build_env, execute};
use super::savepoints::SavepointRefusal;
use super::{Execution, JobManager, lock};
use crate::WorkerError;
use fjord::JobClient;
use fjord_client::api::{JobState, RescaleStatus, SavepointState};
use std::sync::Arc;
use std::time::Duration;

/// What a rescale in progress means for the end of the execution it stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rescaling {
    /// The stop-with-savepoint is under way.
    Pending,
    /// A new execution replaced the one that ended.
    Replaced,
    /// The job was cancelled during the rescale.
    Cancelled,
    /// The new execution could not start; the job fails with this message.
    StartFailed(String),
}

impl JobManager {
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
}
