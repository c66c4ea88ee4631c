//! Upgrades: stopping a running job by its upgrade mode (savepoint, last-state, stateless),
//! cancelling, tearing the cluster down and redeploying from the chosen restore path, and
//! rescaling in place where only the autoscaler's parallelism changed. A child of [`super`], so
//! it works on the decision in progress.

use super::*;

impl Machine<'_, '_> {
    /// The parallelism to rescale to in place, if this change can be: an autoscaler decision
    /// (a parallelism written in the spec is deployed anew, as before) on a running job, in a
    /// mode that keeps state and with a savepoint directory for the JobManager's savepoint,
    /// where nothing but the parallelism (and the TaskManager count it implies) changed.
    pub(super) fn in_place_target(&self, reason: UpgradeReason) -> Option<i32> {
        let spec = self.spec();
        let autoscaled = self.status.autoscaler.as_ref().and_then(|a| a.parallelism);
        if reason != UpgradeReason::Rescale
            || !self.job_running()
            || spec.enabled_autoscaler().is_none()
            || autoscaled != Some(spec.job.parallelism)
            || spec.job.upgrade_mode == UpgradeMode::Stateless
            || spec.savepoint_directory().is_none()
        {
            return None;
        }
        let running = self.running_spec()?;
        let (mut a, mut b) = (deployment_shape(spec), deployment_shape(&running));
        a.job.parallelism = 0;
        b.job.parallelism = 0;
        (a == b).then_some(spec.job.parallelism)
    }

    /// TaskManagers while a rescale in place to `target` runs: enough for the old and the new
    /// parallelism (the surplus is removed once the job runs at the new one).
    pub(super) fn rescale_replicas(&self, target: i32) -> i32 {
        let mut at_target = self.spec().clone();
        at_target.job.parallelism = target;
        let now = self.running_spec().map_or(0, |s| s.task_manager_replicas());
        now.max(at_target.task_manager_replicas())
    }

    /// Start a rescale in place: record it, scale the TaskManagers up first.
    pub(super) fn begin_rescale_in_place(&mut self, target: i32) {
        let from = self.status.parallelism.unwrap_or_default();
        let trigger_id = self.trigger_id("rescale");
        let mut upgrade = self.new_upgrade(UpgradeReason::Rescale, UpgradeStep::RescalingInPlace);
        upgrade.savepoint_trigger_id = Some(trigger_id);
        upgrade.parallelism = Some(target);
        self.status.upgrade = Some(upgrade);
        self.set_state(LifecycleState::Upgrading);
        self.actions.retain(|a| *a != Action::ApplyCluster);
        self.actions.push(Action::ScaleTaskManagers {
            replicas: self.rescale_replicas(target),
        });
        self.event(
            false,
            "UpgradeStarted",
            format!(
                "rescale: rescaling the job in place from {from} to {target} (same JobManager and job; TaskManagers scaled up first)"
            ),
        );
        self.fast();
    }

    /// A rescale in place: TaskManagers up, then the JobManager's rescale once they are ready,
    /// then (when it completed) the new parallelism recorded and the surplus removed.
    pub(super) fn rescaling_in_place(&mut self, upgrade: UpgradeStatus) {
        let target = upgrade.parallelism.unwrap_or(self.spec().job.parallelism);
        let trigger_id = upgrade.savepoint_trigger_id.clone().unwrap_or_default();
        match self.input.observed.savepoint.clone() {
            Some(SavepointStatus::Completed { path }) => {
                let from = self.status.parallelism.unwrap_or_default();
                self.status.parallelism = Some(target);
                self.status.upgrade = None;
                self.status.failed_upgrade = None;
                self.set_state(LifecycleState::Running);
                self.event(
                    false,
                    "Rescaled",
                    format!(
                        "rescaled in place from {from} to {target} (savepoint {path}); the job runs on"
                    ),
                );
                // Applies the TaskManager count of the new parallelism: the surplus goes.
                self.actions.push(Action::ApplyCluster);
            }
            Some(SavepointStatus::Failed { message }) => {
                self.abort_upgrade(
                    &upgrade,
                    format!("the JobManager could not rescale the job in place: {message}"),
                );
            }
            other => {
                if self.elapsed_since(&upgrade.step_started_at)
                    > self.input.settings.savepoint_timeout
                {
                    self.abort_upgrade(
                        &upgrade,
                        format!(
                            "the rescale in place did not complete within {}s",
                            self.input.settings.savepoint_timeout.as_secs()
                        ),
                    );
                    return;
                }
                let replicas = self.rescale_replicas(target);
                self.actions.push(Action::ScaleTaskManagers { replicas });
                let ready = self
                    .input
                    .observed
                    .task_managers
                    .is_some_and(|t| t.ready >= replicas);
                if matches!(other, None | Some(SavepointStatus::Unknown))
                    && ready
                    && let Some(job) = self.job().filter(|j| j.state == JobState::Running)
                {
                    // Not sent yet, or sent to a JobManager that since restarted: the same
                    // trigger ID starts nothing twice.
                    self.actions.push(Action::RescaleInPlace {
                        job_id: job.id.clone(),
                        trigger_id,
                        parallelism: target,
                    });
                }
            }
        }
    }

    pub(super) fn new_upgrade(&self, reason: UpgradeReason, step: UpgradeStep) -> UpgradeStatus {
        UpgradeStatus {
            reason,
            mode: self.spec().job.upgrade_mode,
            step,
            target_generation: self.input.generation,
            savepoint_trigger_id: None,
            parallelism: None,
            restore_path: None,
            started_at: self.now_time(),
            step_started_at: self.now_time(),
        }
    }

    /// Start stopping a running job according to the upgrade mode.
    pub(super) fn begin_upgrade(&mut self, reason: UpgradeReason) {
        let mode = self.spec().job.upgrade_mode;
        match mode {
            UpgradeMode::Savepoint => {
                let Some(directory) = self.spec().savepoint_directory() else {
                    self.degrade(
                        "InvalidSpec",
                        "upgradeMode savepoint needs spec.savepoints.directory or spec.checkpointing.storage",
                    );
                    return;
                };
                if !self.job_running() {
                    self.degrade(
                        "WaitingForRunningJob",
                        format!(
                            "the {} waits for the job to run so it can be stopped with a savepoint; to go ahead without one, set spec.job.upgradeMode to last-state or stateless",
                            reason_name(reason)
                        ),
                    );
                    self.fast();
                    return;
                }
                let job_id = self.job_id().expect("a running job has an ID");
                let trigger_id = self.trigger_id("upgrade");
                let mut upgrade = self.new_upgrade(reason, UpgradeStep::StoppingWithSavepoint);
                upgrade.savepoint_trigger_id = Some(trigger_id.clone());
                self.status.upgrade = Some(upgrade);
                self.set_state(LifecycleState::Upgrading);
                self.actions.retain(|a| *a != Action::ApplyCluster);
                self.actions.push(Action::StopWithSavepoint {
                    job_id,
                    trigger_id: trigger_id.clone(),
                    directory,
                });
                self.event(
                    false,
                    "UpgradeStarted",
                    format!(
                        "{}: stopping the job with savepoint {trigger_id}",
                        reason_name(reason)
                    ),
                );
            }
            UpgradeMode::LastState | UpgradeMode::Stateless => {
                if mode == UpgradeMode::LastState && self.latest_checkpoint_path().is_none() {
                    self.degrade(
                        "NoCheckpoint",
                        format!(
                            "the {} in last-state mode waits for a completed checkpoint; none exists yet",
                            reason_name(reason)
                        ),
                    );
                    self.fast();
                    return;
                }
                self.status.upgrade = Some(self.new_upgrade(reason, UpgradeStep::Cancelling));
                self.set_state(LifecycleState::Upgrading);
                self.actions.retain(|a| *a != Action::ApplyCluster);
                if let Some(job_id) = self.job_id() {
                    self.actions.push(Action::CancelJob { job_id });
                }
                self.event(
                    false,
                    "UpgradeStarted",
                    format!(
                        "{}: cancelling the job ({})",
                        reason_name(reason),
                        mode.as_str()
                    ),
                );
            }
        }
        self.fast();
    }

    pub(super) fn latest_checkpoint_path(&self) -> Option<String> {
        self.input
            .observed
            .latest_checkpoint
            .as_ref()
            .or(self.status.last_checkpoint.as_ref())
            .map(|c| c.path.clone())
    }

    /// Record the restore point, then tear the old pods down.
    pub(super) fn begin_teardown(&mut self, reason: UpgradeReason, restore: Option<String>) {
        let mut upgrade = self
            .status
            .upgrade
            .clone()
            .unwrap_or_else(|| self.new_upgrade(reason, UpgradeStep::TearingDown));
        upgrade.step = UpgradeStep::TearingDown;
        upgrade.step_started_at = self.now_time();
        upgrade.restore_path = restore;
        self.status.upgrade = Some(upgrade);
        self.set_state(LifecycleState::Upgrading);
        self.actions.retain(|a| *a != Action::ApplyCluster);
        self.actions.push(self.teardown_action());
        self.fast();
    }

    pub(super) fn upgrading(&mut self) {
        let Some(upgrade) = self.status.upgrade.clone() else {
            // Upgrading without a recorded upgrade: nothing was torn down yet, so the old job
            // is still the deployed one.
            self.set_state(LifecycleState::Running);
            return;
        };
        self.fast();
        match upgrade.step {
            UpgradeStep::StoppingWithSavepoint => self.stopping_with_savepoint(upgrade),
            UpgradeStep::Cancelling => self.cancelling(upgrade),
            UpgradeStep::TearingDown => self.tearing_down(upgrade),
            UpgradeStep::RescalingInPlace => self.rescaling_in_place(upgrade),
        }
    }

    pub(super) fn stopping_with_savepoint(&mut self, upgrade: UpgradeStatus) {
        let trigger_id = upgrade.savepoint_trigger_id.clone().unwrap_or_default();
        match self.input.observed.savepoint.clone() {
            Some(SavepointStatus::Completed { .. })
                if self.job().is_some_and(|j| !j.state.is_terminal())
                    && self.elapsed_since(&upgrade.step_started_at)
                        < self.input.settings.cancel_timeout =>
            {
                // The savepoint is written but the job is still finishing (committing the
                // sinks' transactions of that savepoint): the old Pods go only once it ended,
                // so nothing it was about to commit is cut off.
            }
            Some(SavepointStatus::Completed { path }) => {
                self.add_savepoint(path.clone(), SavepointTrigger::Upgrade, &trigger_id);
                self.begin_teardown(upgrade.reason, Some(path));
            }
            Some(SavepointStatus::Failed { message }) => {
                self.snapshot_note(
                    &trigger_id,
                    SavepointTrigger::Upgrade,
                    None,
                    Some(message.clone()),
                );
                self.abort_upgrade(&upgrade, format!("the savepoint failed: {message}"));
            }
            other => {
                if self.elapsed_since(&upgrade.step_started_at)
                    > self.input.settings.savepoint_timeout
                {
                    self.abort_upgrade(
                        &upgrade,
                        format!(
                            "the savepoint did not complete within {}s",
                            self.input.settings.savepoint_timeout.as_secs()
                        ),
                    );
                    return;
                }
                if other == Some(SavepointStatus::Unknown)
                    && let (Some(job_id), Some(directory)) =
                        (self.job_id(), self.spec().savepoint_directory())
                {
                    // Recorded but never received: send again with the same trigger ID.
                    self.actions.push(Action::StopWithSavepoint {
                        job_id,
                        trigger_id,
                        directory,
                    });
                }
            }
        }
    }

    /// A stateful upgrade could not take its savepoint: keep the old job, say why, and do not
    /// retry this generation on its own. Never fall back to stateless.
    pub(super) fn abort_upgrade(&mut self, upgrade: &UpgradeStatus, why: String) {
        let message = format!(
            "{} of generation {} was not carried out: {why}. The job keeps running with the previous spec. Fix the cause and change the spec again or bump spec.job.restartNonce to retry; changing spec.job.upgradeMode is the only way to upgrade without a savepoint",
            reason_name(upgrade.reason),
            upgrade.target_generation
        );
        self.status.failed_upgrade = Some(FailedUpgrade {
            generation: upgrade.target_generation,
            restart_nonce: self.spec().job.restart_nonce,
            message: message.clone(),
        });
        self.status.upgrade = None;
        self.set_state(LifecycleState::Running);
        self.event(true, "UpgradeFailed", message.clone());
        self.degrade("UpgradeFailed", message);
        self.actions.push(Action::ApplyCluster);
    }

    pub(super) fn cancelling(&mut self, upgrade: UpgradeStatus) {
        let stopped = match &self.input.observed.job_manager {
            JobManagerView::Job(j) => j.state.is_terminal(),
            _ => true,
        };
        let timed_out =
            self.elapsed_since(&upgrade.step_started_at) > self.input.settings.cancel_timeout;
        if !stopped && !timed_out {
            if let Some(job_id) = self.job_id() {
                self.actions.push(Action::CancelJob { job_id });
            }
            return;
        }
        let restore = match upgrade.mode {
            UpgradeMode::LastState => {
                let Some(path) = self.latest_checkpoint_path() else {
                    // Checked before cancelling; only reachable if the status was edited.
                    self.degrade(
                        "NoCheckpoint",
                        "last-state upgrade has no checkpoint to restore from; set spec.job.upgradeMode to stateless to start empty",
                    );
                    return;
                };
                Some(path)
            }
            UpgradeMode::Stateless => None,
            // A savepoint-mode upgrade never cancels; keep the recorded restore path if any.
            UpgradeMode::Savepoint => upgrade.restore_path.clone(),
        };
        self.begin_teardown(upgrade.reason, restore);
    }

    /// How to remove the old cluster: at once when the next one may start beside its
    /// terminating Pods ([`Action::ReleaseCluster`]: the old job ended as the upgrade made it
    /// end, the next cluster has another `cluster.id`, and it is deployed right away), else
    /// waiting until its Pods are gone.
    fn teardown_action(&self) -> Action {
        let ended = self.job().is_some_and(|j| {
            matches!(
                j.state,
                JobState::Finished | JobState::Cancelled | JobState::Suspended
            )
        });
        let next_cluster = self.status.last_reconciled_generation != Some(self.input.generation);
        let redeploys = self.spec().job.state != DesiredJobState::Suspended;
        if ended && next_cluster && redeploys {
            Action::ReleaseCluster
        } else {
            Action::DeleteCluster
        }
    }

    pub(super) fn tearing_down(&mut self, upgrade: UpgradeStatus) {
        if self.input.observed.cluster_present {
            self.actions.push(self.teardown_action());
            return;
        }
        let restore = upgrade.restore_path.clone();
        if self.spec().job.state == DesiredJobState::Suspended {
            self.status.restore_path = restore;
            self.status.upgrade = None;
            self.status.job_id = None;
            self.status.job_state = None;
            self.set_state(LifecycleState::Suspended);
            self.event(
                false,
                "Suspended",
                match &self.status.restore_path {
                    Some(p) => format!("the job is suspended; it resumes from {p}"),
                    None => "the job is suspended; it resumes with empty state (stateless)".into(),
                },
            );
            self.requeue = self.input.settings.steady_poll;
            return;
        }
        if self.spec_invalid() {
            return;
        }
        self.deploy(restore);
    }
}
