//! The StreamJob lifecycle as an explicit state machine: given the spec, the status (the
//! write-ahead log) and what was just observed, decide the next status and the actions to take.
//!
//! [`decide`] is a pure function and holds every transition. The caller (the controller) writes
//! the returned status *before* it performs the returned actions, so an operator that dies between
//! the two finds in the status what it was about to do, and does it again. Every action is
//! idempotent for that reason: applying objects, deleting them, and JobManager calls carrying a
//! trigger ID chosen here and recorded in the status first.
//!
//! States (status.lifecycleState) and their transitions:
//!
//! ```text
//! Created ──deploy──▶ Deploying ──job runs──▶ Running ──spec change / restart nonce / rescale / suspend──▶ Upgrading
//!    │                   │  ▲                    │  ▲                                                         │
//!    │ suspended         │  └─────── TearingDown done (not suspended) ◀── StoppingWithSavepoint | Cancelling ◀┘
//!    ▼                   ▼                       │  └── savepoint failed: old job keeps running, Degraded
//! Suspended ◀── TearingDown done (suspended)     ▼
//!    └──resume──▶ Deploying               Failed ──(last-state / stateless / new initialSavepointPath)──▶ Upgrading
//! any state ──deletionTimestamp──▶ Deleting ──(savepoint on delete, bounded wait)──▶ finalizer removed
//! ```

use std::time::Duration;

use fjord_crds::{
    DeletionStatus, DesiredJobState, FailedUpgrade, FieldError, JobState, LifecycleState,
    PendingSavepoint, RestartBaseline, SavepointRecord, SavepointTrigger, StreamJobSpec,
    StreamJobStatus, UpgradeMode, UpgradeReason, UpgradeStatus, UpgradeStep,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::conditions;
use crate::jobmanager::{CheckpointStatus, JobInfo, SavepointStatus};
use crate::pods::PodProblem;
use crate::savepoints;

/// Decide the next status and actions. Pure: same input, same decision.
pub fn decide(input: &Input<'_>) -> Decision {
    let mut m = Machine {
        input,
        status: input.status.clone(),
        actions: Vec::new(),
        events: Vec::new(),
        requeue: input.settings.steady_poll,
        degraded: None,
    };
    m.record_observation();
    if input.deleting {
        m.deleting();
    } else {
        match input.status.lifecycle_state {
            LifecycleState::Created => m.created(),
            LifecycleState::Deploying => m.deploying(),
            LifecycleState::Running => m.running(),
            LifecycleState::Upgrading => m.upgrading(),
            LifecycleState::Suspended => m.suspended(),
            LifecycleState::Failed => m.failed(),
            // Deleting without a deletionTimestamp cannot happen (the finalizer is removed in
            // the same pass); treat it as a fresh look.
            LifecycleState::Deleting => m.deleting(),
        }
    }
    m.finish()
}

struct Machine<'a, 'b> {
    input: &'a Input<'b>,
    status: StreamJobStatus,
    actions: Vec<Action>,
    events: Vec<EventNote>,
    requeue: Duration,
    degraded: Option<(&'static str, String)>,
}

/// What about the spec differs from what is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Upgrade(UpgradeReason),
}

impl Machine<'_, '_> {
    fn spec(&self) -> &StreamJobSpec {
        self.input.spec
    }

    fn now_time(&self) -> Time {
        Time(self.input.now)
    }

    fn elapsed_since(&self, t: &Time) -> Duration {
        let ms = self.input.now.as_millisecond() - t.0.as_millisecond();
        Duration::from_millis(ms.max(0) as u64)
    }

    fn trigger_id(&self, kind: &str) -> String {
        format!(
            "{kind}-{}-{}",
            self.input.generation,
            self.input.now.as_millisecond()
        )
    }

    fn set_state(&mut self, state: LifecycleState) {
        if self.status.lifecycle_state != state || self.status.lifecycle_state_since.is_none() {
            self.status.lifecycle_state = state;
            self.status.lifecycle_state_since = Some(self.now_time());
        }
    }

    fn event(&mut self, warning: bool, reason: &'static str, message: impl Into<String>) {
        self.events.push(EventNote {
            warning,
            reason,
            message: message.into(),
        });
    }

    fn degrade(&mut self, reason: &'static str, message: impl Into<String>) {
        self.degraded = Some((reason, message.into()));
    }

    /// Requeue soon: every [`Settings::eager_poll`] while the current step (or state) is
    /// young, every [`Settings::fast_poll`] after.
    fn fast(&mut self) {
        let settings = self.input.settings;
        let since = self
            .status
            .upgrade
            .as_ref()
            .map(|u| &u.step_started_at)
            .or(self.status.lifecycle_state_since.as_ref());
        let young = since.is_none_or(|t| self.elapsed_since(t) < settings.eager_window);
        self.requeue = if young {
            settings.eager_poll.min(settings.fast_poll)
        } else {
            settings.fast_poll
        };
    }

    fn job(&self) -> Option<&JobInfo> {
        self.input.observed.job_manager.job()
    }

    fn job_running(&self) -> bool {
        self.job().is_some_and(|j| j.state == JobState::Running)
    }

    fn job_id(&self) -> Option<String> {
        self.job()
            .map(|j| j.id.clone())
            .or_else(|| self.status.job_id.clone())
    }

    /// Copy this pass's observations into the status.
    fn record_observation(&mut self) {
        let input = self.input;
        self.status.observed_generation = Some(input.generation);
        match &input.observed.job_manager {
            JobManagerView::Job(j) => {
                self.status.job_state = Some(j.state);
                self.status.job_id = Some(j.id.clone());
                if let Some(r) = j.restarts {
                    self.status.job_restarts = Some(i64::from(r));
                }
                if j.start_time.is_some() {
                    self.status.job_start_time = j.start_time.clone();
                }
                self.status.job_manager_unreachable_since = None;
            }
            JobManagerView::NoJob => {
                self.status.job_state = None;
                self.status.job_manager_unreachable_since = None;
            }
            JobManagerView::Unreachable(_) => {
                self.status.job_state = if input.observed.cluster_present {
                    Some(JobState::Unknown)
                } else {
                    None
                };
                if self.status.job_manager_unreachable_since.is_none()
                    && input.observed.cluster_present
                {
                    self.status.job_manager_unreachable_since = Some(Time(input.now));
                }
            }
        }
        self.status.task_managers = input.observed.task_managers;
        if let Some(cp) = &input.observed.latest_checkpoint {
            // Checkpoint IDs count per job: a new deployment (a new job ID) starts again at 1,
            // and its checkpoints are newer than any of the previous job's.
            let newer = self.status.last_checkpoint.as_ref().is_none_or(|old| {
                checkpoint_job_dir(&old.path) != checkpoint_job_dir(&cp.path) || cp.id >= old.id
            });
            if newer {
                self.status.last_checkpoint = Some(cp.clone());
            }
        }
        // Retention follows the spec even when nothing new was added (limits may have changed).
        savepoints::apply_retention(&mut self.status, input.spec, input.now);
    }

    /// Record the spec as deployed and apply the cluster (write-ahead: the status names what is
    /// about to be deployed before the objects exist).
    fn deploy(&mut self, restore_path: Option<String>) {
        let spec = self.spec().clone();
        self.status.last_reconciled_spec =
            Some(serde_json::to_value(&spec).expect("a spec serializes to JSON"));
        self.status.last_reconciled_generation = Some(self.input.generation);
        self.status.restore_path = restore_path;
        self.status.upgrade = None;
        self.status.failed_upgrade = None;
        self.status.job_id = None;
        self.status.job_state = None;
        self.status.job_restarts = None;
        self.status.job_start_time = None;
        self.status.restart_baseline = None;
        self.status.parallelism = Some(spec.job.parallelism);
        if self.status.last_savepoint_trigger_nonce.is_none() {
            // A nonce present at creation is not a request for a savepoint.
            self.status.last_savepoint_trigger_nonce = spec.job.savepoint_trigger_nonce;
        }
        if self.status.last_checkpoint_trigger_nonce.is_none() {
            // Nor for a checkpoint.
            self.status.last_checkpoint_trigger_nonce = spec.job.checkpoint_trigger_nonce;
        }
        self.set_state(LifecycleState::Deploying);
        self.actions.push(Action::ApplyCluster);
        self.event(
            false,
            "Deploying",
            match &self.status.restore_path {
                Some(p) => format!(
                    "deploying generation {} restoring from {p}",
                    self.input.generation
                ),
                None => format!(
                    "deploying generation {} with empty state",
                    self.input.generation
                ),
            },
        );
        self.fast();
    }

    fn spec_invalid(&mut self) -> bool {
        if self.input.spec_errors.is_empty() {
            return false;
        }
        let msg = self
            .input
            .spec_errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        self.degrade(
            "InvalidSpec",
            format!("the spec is not acted on until fixed: {msg}"),
        );
        true
    }

    fn last_reconciled(&self) -> Option<StreamJobSpec> {
        self.status
            .last_reconciled_spec
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// What runs: the spec last deployed, at the parallelism the job runs at
    /// (status.parallelism, which a rescale in place changes without a redeploy).
    fn running_spec(&self) -> Option<StreamJobSpec> {
        let mut deployed = self.last_reconciled()?;
        if let Some(p) = self.status.parallelism {
            deployed.job.parallelism = p;
        }
        Some(deployed)
    }

    /// Compare the spec with what is deployed.
    fn change(&self) -> Change {
        let spec = self.spec();
        if spec.job.state == DesiredJobState::Suspended {
            return Change::Upgrade(UpgradeReason::Suspend);
        }
        let Some(deployed) = self.running_spec() else {
            return Change::Upgrade(UpgradeReason::SpecChange);
        };
        if spec.job.restart_nonce != deployed.job.restart_nonce {
            return Change::Upgrade(UpgradeReason::Restart);
        }
        let (a, b) = (deployment_shape(spec), deployment_shape(&deployed));
        if a == b {
            return Change::None;
        }
        let (mut a2, mut b2) = (a.clone(), b.clone());
        for s in [&mut a2, &mut b2] {
            s.job.parallelism = 0;
            if let Some(tm) = s.task_manager.as_mut() {
                tm.replicas = None;
                tm.slots = None;
            }
        }
        if a2 == b2 {
            Change::Upgrade(UpgradeReason::Rescale)
        } else {
            Change::Upgrade(UpgradeReason::SpecChange)
        }
    }

    /// Whether this change already failed for the current generation and nonce (it is not
    /// retried until the user changes something).
    fn already_failed(&self) -> bool {
        self.status.failed_upgrade.as_ref().is_some_and(|f| {
            f.generation == self.input.generation
                && f.restart_nonce == self.spec().job.restart_nonce
        })
    }

    fn created(&mut self) {
        if self.spec_invalid() {
            return;
        }
        let restore = self.spec().job.initial_savepoint_path.clone();
        if self.spec().job.state == DesiredJobState::Suspended {
            // Nothing to stop; remember where a later resume starts from.
            self.status.last_reconciled_spec =
                Some(serde_json::to_value(self.spec()).expect("a spec serializes to JSON"));
            self.status.last_reconciled_generation = Some(self.input.generation);
            self.status.restore_path = restore;
            self.set_state(LifecycleState::Suspended);
            return;
        }
        self.deploy(restore);
    }

    fn deploying(&mut self) {
        let observed = self.input.observed;
        match self.job().map(|j| (j.state, j.failure.clone())) {
            Some((JobState::Running, _)) => {
                self.set_state(LifecycleState::Running);
                self.status.error = None;
                self.event(false, "JobRunning", "the job is running");
                self.actions.push(Action::ApplyCluster);
                return;
            }
            Some((JobState::Failed, failure)) => {
                self.set_state(LifecycleState::Failed);
                self.event(
                    true,
                    "JobFailed",
                    format!(
                        "the job failed while starting: {}",
                        failure.unwrap_or_else(|| "no cause reported".into())
                    ),
                );
                return;
            }
            _ => {}
        }
        // Nothing has run since the restore point, so any change is safe to redeploy at once in
        // every upgrade mode, from the same restore point.
        if let Change::Upgrade(reason) = self.change()
            && !self.spec_invalid()
        {
            let restore = self.status.restore_path.clone();
            self.begin_teardown(reason, restore);
            return;
        }
        self.actions.push(Action::ApplyCluster);
        self.fast();
        if let Some(since) = self.status.lifecycle_state_since.clone()
            && self.elapsed_since(&since) > self.input.settings.deploy_timeout
        {
            let why = match &observed.job_manager {
                JobManagerView::Unreachable(m) => format!("the JobManager does not answer: {m}"),
                JobManagerView::NoJob => "the JobManager has no job".into(),
                JobManagerView::Job(j) => format!("the job is {:?}", j.state),
            };
            self.degrade(
                "DeploymentStuck",
                format!(
                    "the job is not running {}s after deployment ({why}); check the JobManager and TaskManager pods and their events",
                    self.input.settings.deploy_timeout.as_secs()
                ),
            );
        }
    }

    fn running(&mut self) {
        if let Some(job) = self.job()
            && job.state == JobState::Failed
        {
            let failure = job
                .failure
                .clone()
                .unwrap_or_else(|| "no cause reported".into());
            self.set_state(LifecycleState::Failed);
            self.event(true, "JobFailed", format!("the job failed: {failure}"));
            return;
        }
        if self.restart_loop() {
            return;
        }
        self.actions.push(Action::ApplyCluster);
        self.manual_checkpoint();

        if self.status.pending_savepoint.is_some() {
            self.pending_savepoint();
            // One savepoint at a time: an upgrade waits for a manual or periodic savepoint.
            if self.status.pending_savepoint.is_some() {
                return;
            }
        }

        if let Change::Upgrade(reason) = self.change() {
            if self.spec_invalid() {
                return;
            }
            if self.already_failed() {
                let msg = self
                    .status
                    .failed_upgrade
                    .as_ref()
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                self.degrade("UpgradeFailed", msg);
                return;
            }
            if let Some(target) = self.in_place_target(reason) {
                self.begin_rescale_in_place(target);
                return;
            }
            self.begin_upgrade(reason);
            return;
        }
        self.status.failed_upgrade = None;

        self.maybe_start_savepoint();
        self.dispose_dropped();
    }

    /// spec.healthCheck: a job that restarted more than the threshold within the window is
    /// redeployed (new JobManager and TaskManagers) from its latest checkpoint, or the restore
    /// point it started from. Windows are consecutive: a window starts with the restart count
    /// then, recorded in status.restartBaseline. Returns whether it redeploys.
    fn restart_loop(&mut self) -> bool {
        let Some(hc) = self.spec().health_check.clone() else {
            self.status.restart_baseline = None;
            return false;
        };
        let Some(restarts) = self.job().and_then(|j| j.restarts).map(i64::from) else {
            return false;
        };
        let window = hc.window();
        let baseline = match &self.status.restart_baseline {
            Some(b) if self.elapsed_since(&b.since) < window && restarts >= b.restarts => b.clone(),
            _ => {
                let b = RestartBaseline {
                    restarts,
                    since: self.now_time(),
                };
                self.status.restart_baseline = Some(b.clone());
                b
            }
        };
        let count = restarts - baseline.restarts;
        if count <= hc.threshold() {
            return false;
        }
        let restore = self
            .latest_checkpoint_path()
            .or_else(|| self.status.restore_path.clone());
        self.event(
            true,
            "RestartLoop",
            format!(
                "the job restarted {count} times within {}s (more than spec.healthCheck.restartsThreshold {}); redeploying it from {}",
                window.as_secs(),
                hc.threshold(),
                restore.as_deref().unwrap_or("empty state (no checkpoint yet)")
            ),
        );
        // A savepoint of a job in a restart loop will not complete.
        self.status.pending_savepoint = None;
        self.status.upgrade =
            Some(self.new_upgrade(UpgradeReason::RestartLoop, UpgradeStep::TearingDown));
        self.begin_teardown(UpgradeReason::RestartLoop, restore);
        true
    }

    fn suspended(&mut self) {
        if self.spec().job.state == DesiredJobState::Suspended {
            return;
        }
        if self.spec_invalid() {
            return;
        }
        let restore = self.status.restore_path.clone();
        self.deploy(restore);
    }

    fn failed(&mut self) {
        if self.job_running() {
            self.set_state(LifecycleState::Running);
            return;
        }
        let failure = self
            .job()
            .and_then(|j| j.failure.clone())
            .unwrap_or_else(|| "no cause reported".into());
        let Change::Upgrade(reason) = self.change() else {
            self.degrade(
                "JobFailed",
                format!("the job failed: {failure}. Change the spec or bump spec.job.restartNonce to redeploy"),
            );
            return;
        };
        if self.spec_invalid() {
            return;
        }
        // A failed job cannot be stopped with a savepoint. The user chooses the restore point.
        let deployed_initial = self
            .last_reconciled()
            .and_then(|s| s.job.initial_savepoint_path);
        let new_initial = self.spec().job.initial_savepoint_path.clone();
        let restore = if new_initial.is_some() && new_initial != deployed_initial {
            new_initial
        } else {
            match self.spec().job.upgrade_mode {
                UpgradeMode::Stateless => None,
                UpgradeMode::LastState => match self.latest_checkpoint_path() {
                    Some(p) => Some(p),
                    None => {
                        self.degrade(
                            "NoCheckpoint",
                            "the job failed and has no completed checkpoint to restore from; set spec.job.upgradeMode to stateless to start empty, or spec.job.initialSavepointPath",
                        );
                        return;
                    }
                },
                UpgradeMode::Savepoint => {
                    let hint = match (
                        self.latest_checkpoint_path(),
                        self.status.last_savepoint.clone(),
                    ) {
                        (Some(cp), _) => {
                            format!("last-state to restore from the latest checkpoint {cp}")
                        }
                        (None, Some(sp)) => {
                            format!("last-state, or spec.job.initialSavepointPath to {sp}")
                        }
                        (None, None) => "last-state".to_string(),
                    };
                    self.degrade(
                        "CannotSavepointFailedJob",
                        format!(
                            "the job failed ({failure}) and cannot be stopped with a savepoint, so the {} is not carried out; set spec.job.upgradeMode to {hint}, or to stateless to start empty",
                            reason_name(reason)
                        ),
                    );
                    return;
                }
            }
        };
        self.status.upgrade = Some(self.new_upgrade(reason, UpgradeStep::TearingDown));
        self.begin_teardown(reason, restore);
    }

    fn finish(mut self) -> Decision {
        // A Pod that cannot run explains a job that does not, within seconds and in the Pod's
        // own words; it says more than a generic timeout.
        if let Some(p) = &self.input.observed.pod_problem
            && !self.job_running()
            && !matches!(
                self.status.lifecycle_state,
                LifecycleState::Suspended | LifecycleState::Deleting
            )
            && self
                .degraded
                .as_ref()
                .is_none_or(|(reason, _)| *reason == "DeploymentStuck")
        {
            self.degraded = Some((p.reason, p.message.clone()));
        }
        if self.degraded.is_none() {
            if let Some(f) = &self.status.failed_upgrade
                && f.generation == self.input.generation
            {
                self.degraded = Some(("UpgradeFailed", f.message.clone()));
            } else if self.status.lifecycle_state == LifecycleState::Failed {
                self.degraded = Some((
                    "JobFailed",
                    "the job failed; change the spec or bump spec.job.restartNonce to redeploy"
                        .into(),
                ));
            }
        }
        // A job can run while its containers crash under it (a TaskManager OOM-killed by its
        // memory limit, restarted by the kubelet, its tasks restarted by the JobManager): the
        // Pods say so when the JobManager does not. Nothing else needs attention first. Ready
        // keeps following the job; the rule that keeps this from flapping (repeated crashes,
        // a window since the last one) is crate::pods::crash_loop's.
        if self.degraded.is_none()
            && self.job_running()
            && !matches!(
                self.status.lifecycle_state,
                LifecycleState::Suspended | LifecycleState::Deleting
            )
            && let Some(p) = &self.input.observed.crash_loop
        {
            self.degraded = Some((p.reason, p.message.clone()));
        }
        // A running job is watched closely (its checkpoints and restarts live outside
        // Kubernetes); the watch covers everything else.
        if self.status.lifecycle_state == LifecycleState::Running && self.job_running() {
            self.requeue = self.requeue.min(self.input.settings.running_poll);
        }
        self.status.error = self.degraded.as_ref().map(|(_, m)| m.clone());
        conditions::update(&mut self.status, self.degraded.as_ref(), self.input.now);
        Decision {
            status: self.status,
            actions: self.actions,
            requeue: self.requeue,
            events: self.events,
        }
    }
}

/// The part of the spec that requires a redeploy when it changes. Savepoint settings, the
/// upgrade mode, the initial savepoint, nonces and the desired state are acted on without
/// redeploying (or handled on their own).
fn deployment_shape(spec: &StreamJobSpec) -> StreamJobSpec {
    let mut s = spec.clone();
    s.job.savepoint_trigger_nonce = None;
    s.job.checkpoint_trigger_nonce = None;
    s.job.restart_nonce = None;
    s.job.state = DesiredJobState::Running;
    s.job.initial_savepoint_path = None;
    s.job.initial_savepoint_snapshot = None;
    s.job.upgrade_mode = UpgradeMode::Savepoint;
    s.job.allow_non_restored_state = false;
    s.savepoints = None;
    s.health_check = None;
    // Autoscaler settings change no Pod; the parallelism it chooses arrives in
    // spec.job.parallelism (see crate::autoscaler::effective_spec).
    s.autoscaler = None;
    // The Ingress is applied from the current spec on every apply; it changes no Pod.
    s.ingress = None;
    s
}

/// The job's directory of a checkpoint path (`<storage>/<job id>` of `<storage>/<job id>/chk-<n>`).
fn checkpoint_job_dir(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit_once("/chk-")
        .map_or(path, |(dir, _)| dir)
}

fn trigger_name(t: SavepointTrigger) -> &'static str {
    match t {
        SavepointTrigger::Manual => "manual",
        SavepointTrigger::Periodic => "periodic",
        SavepointTrigger::Upgrade => "upgrade",
        SavepointTrigger::Delete => "delete",
    }
}

fn reason_name(r: UpgradeReason) -> &'static str {
    match r {
        UpgradeReason::SpecChange => "upgrade",
        UpgradeReason::Rescale => "rescale",
        UpgradeReason::Restart => "restart",
        UpgradeReason::Suspend => "suspend",
        UpgradeReason::RestartLoop => "restart-loop redeploy",
    }
}

mod checkpoints;
mod deletion;
mod model;
mod savepoint_requests;
mod upgrade;
pub use checkpoints::{checkpoint_timed_out, watched_checkpoint};
pub use model::{
    Action, Decision, EventNote, Input, JobManagerView, Observed, Settings, SnapshotNote,
    watched_rescale, watched_trigger,
};

#[cfg(test)]
mod tests;
