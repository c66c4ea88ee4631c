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

/// Timeouts and polling intervals of the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a savepoint (upgrade, manual, periodic) may take before it is given up.
    pub savepoint_timeout: Duration,
    /// How long a cancel may take before the pods are torn down anyway.
    pub cancel_timeout: Duration,
    /// How long a deployment may take to reach a running job before Degraded is set.
    pub deploy_timeout: Duration,
    /// Requeue interval while something is in flight.
    pub fast_poll: Duration,
    /// Requeue interval during the first [`Settings::eager_window`] of a step: what the
    /// operator waits for then (a savepoint completing, a new job starting) usually arrives
    /// within seconds and is only seen by asking the JobManager, so it is asked often.
    pub eager_poll: Duration,
    /// How long after a step or state began it is polled every [`Settings::eager_poll`]
    /// (then every [`Settings::fast_poll`], so a stuck step costs little).
    pub eager_window: Duration,
    /// Requeue interval in steady state (status is refreshed this often).
    pub steady_poll: Duration,
    /// Requeue interval of a job that runs: its restarts and latest checkpoint reach the status
    /// this often. Suspended and finished jobs are not polled at all.
    pub running_poll: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            savepoint_timeout: Duration::from_secs(600),
            cancel_timeout: Duration::from_secs(120),
            deploy_timeout: Duration::from_secs(300),
            fast_poll: Duration::from_secs(1),
            eager_poll: Duration::from_millis(200),
            eager_window: Duration::from_secs(15),
            steady_poll: Duration::from_secs(15),
            running_poll: Duration::from_secs(3),
        }
    }
}

/// What the JobManager said when asked for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobManagerView {
    /// It did not answer (not deployed, starting, crashed).
    Unreachable(String),
    /// It answered and has no job.
    NoJob,
    /// It answered with the job.
    Job(JobInfo),
}

impl JobManagerView {
    fn job(&self) -> Option<&JobInfo> {
        match self {
            Self::Job(j) => Some(j),
            _ => None,
        }
    }

    fn reachable(&self) -> bool {
        !matches!(self, Self::Unreachable(_))
    }
}

/// Everything observed in this pass, gathered by the controller before [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The JobManager's answer about the job.
    pub job_manager: JobManagerView,
    /// Whether a JobManager or TaskManager workload object exists.
    pub cluster_present: bool,
    /// The status of the savepoint whose trigger ID [`watched_trigger`] returned, or of the
    /// rescale in place [`watched_rescale`] returned, if any.
    pub savepoint: Option<SavepointStatus>,
    /// The status of the manual checkpoint [`watched_checkpoint`] names, if any.
    pub checkpoint: Option<CheckpointStatus>,
    /// The job's latest completed checkpoint, if the JobManager reported one.
    pub latest_checkpoint: Option<fjord_crds::CheckpointRecord>,
    /// The TaskManager Deployment's desired and ready Pods, if it exists.
    pub task_managers: Option<fjord_crds::TaskManagersStatus>,
    /// Why a JobManager or TaskManager Pod does not run, if one does not (read only while the
    /// job is not running).
    pub pod_problem: Option<PodProblem>,
}

/// Everything [`decide`] looks at.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The StreamJob's current spec.
    pub spec: &'a StreamJobSpec,
    /// metadata.generation.
    pub generation: i64,
    /// Whether metadata.deletionTimestamp is set.
    pub deleting: bool,
    /// The status as last written (the write-ahead log).
    pub status: &'a StreamJobStatus,
    /// This pass's observations.
    pub observed: &'a Observed,
    /// Problems with the current spec found by the operator's deeper checks.
    pub spec_errors: &'a [FieldError],
    /// The current time.
    pub now: Timestamp,
    /// Timeouts.
    pub settings: &'a Settings,
}

/// A side effect for the controller to carry out after writing the decided status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Server-side apply the ConfigMap, JobManager Deployment and Service and TaskManager
    /// Deployment built from status.lastReconciledSpec and status.restorePath.
    ApplyCluster,
    /// Delete the JobManager and TaskManager workloads (foreground, so pods go first).
    DeleteCluster,
    /// Stop the job with a savepoint.
    StopWithSavepoint {
        /// Job ID.
        job_id: String,
        /// Trigger ID recorded in status.
        trigger_id: String,
        /// Savepoint directory.
        directory: String,
    },
    /// Take a savepoint of the running job.
    TriggerSavepoint {
        /// Job ID.
        job_id: String,
        /// Trigger ID recorded in status.
        trigger_id: String,
        /// Savepoint directory.
        directory: String,
    },
    /// Take a manual checkpoint of the running job.
    TriggerCheckpoint {
        /// Job ID.
        job_id: String,
        /// Trigger ID recorded in status.manualCheckpoint.
        trigger_id: String,
    },
    /// Cancel the job.
    CancelJob {
        /// Job ID.
        job_id: String,
    },
    /// Dispose of savepoints dropped from the history; on success the controller removes them
    /// from status.savepointsPendingDisposal.
    DisposeSavepoints {
        /// Their paths.
        paths: Vec<String>,
    },
    /// Remove the operator's finalizer so Kubernetes deletes the StreamJob and its children.
    RemoveFinalizer,
    /// Set the TaskManager Deployment's replicas (a rescale in place scales up before the
    /// JobManager rescales; the surplus goes with the next [`Action::ApplyCluster`]).
    ScaleTaskManagers {
        /// Replicas.
        replicas: i32,
    },
    /// Ask the running JobManager to rescale the job in place (savepoint, restart of its
    /// tasks at the new parallelism; same JobManager, same job).
    RescaleInPlace {
        /// Job ID.
        job_id: String,
        /// Trigger ID recorded in status.upgrade.
        trigger_id: String,
        /// The new parallelism.
        parallelism: i32,
    },
    /// Record a savepoint the operator took as a StreamJobSnapshot (created if missing, its
    /// status set; named after the trigger ID, so repeating it changes nothing).
    RecordSnapshot(SnapshotNote),
}

/// A savepoint or manual checkpoint the operator took (or failed to take), for its
/// StreamJobSnapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotNote {
    /// The trigger ID the savepoint was taken under.
    pub trigger_id: String,
    /// Why it was taken.
    pub trigger: SavepointTrigger,
    /// ID of the job it was taken of.
    pub job_id: Option<String>,
    /// Where it is, if it completed.
    pub path: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// A manual checkpoint (the snapshot gets spec.checkpoint), not a savepoint.
    pub checkpoint: bool,
    /// The checkpoint's id, if it completed.
    pub checkpoint_id: Option<u64>,
}

/// A Kubernetes Event to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNote {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl EventNote {
    /// A Normal Event.
    pub fn normal(reason: &'static str, message: String) -> Self {
        EventNote {
            warning: false,
            reason,
            message,
        }
    }

    /// A Warning Event.
    pub fn warning(reason: &'static str, message: String) -> Self {
        EventNote {
            warning: true,
            reason,
            message,
        }
    }
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The status to write before acting.
    pub status: StreamJobStatus,
    /// Actions to carry out, in order, after the status is written.
    pub actions: Vec<Action>,
    /// When to look again.
    pub requeue: Duration,
    /// Events to publish.
    pub events: Vec<EventNote>,
}

/// The trigger ID of the rescale in place whose status the controller should fetch (into
/// [`Observed::savepoint`]) for this pass.
pub fn watched_rescale(status: &StreamJobStatus) -> Option<&str> {
    status
        .upgrade
        .as_ref()
        .filter(|u| u.step == UpgradeStep::RescalingInPlace)
        .and_then(|u| u.savepoint_trigger_id.as_deref())
}

/// The savepoint trigger ID whose status the controller should fetch for this pass.
pub fn watched_trigger(status: &StreamJobStatus) -> Option<&str> {
    if let Some(d) = &status.deletion {
        return d.savepoint_trigger_id.as_deref();
    }
    if let Some(u) = &status.upgrade
        && u.step == UpgradeStep::StoppingWithSavepoint
    {
        return u.savepoint_trigger_id.as_deref();
    }
    status
        .pending_savepoint
        .as_ref()
        .map(|p| p.trigger_id.as_str())
}

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

    /// The parallelism to rescale to in place, if this change can be: an autoscaler decision
    /// (a parallelism written in the spec is deployed anew, as before) on a running job, in a
    /// mode that keeps state and with a savepoint directory for the JobManager's savepoint,
    /// where nothing but the parallelism (and the TaskManager count it implies) changed.
    fn in_place_target(&self, reason: UpgradeReason) -> Option<i32> {
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
    fn rescale_replicas(&self, target: i32) -> i32 {
        let mut at_target = self.spec().clone();
        at_target.job.parallelism = target;
        let now = self.running_spec().map_or(0, |s| s.task_manager_replicas());
        now.max(at_target.task_manager_replicas())
    }

    /// Start a rescale in place: record it, scale the TaskManagers up first.
    fn begin_rescale_in_place(&mut self, target: i32) {
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
    fn rescaling_in_place(&mut self, upgrade: UpgradeStatus) {
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

    /// Follow a manual or periodic savepoint to its end.
    fn pending_savepoint(&mut self) {
        let Some(p) = self.status.pending_savepoint.clone() else {
            return;
        };
        match self.input.observed.savepoint.clone() {
            Some(SavepointStatus::Completed { path }) => {
                self.status.pending_savepoint = None;
                if p.nonce.is_some() {
                    self.status.last_savepoint_trigger_nonce = p.nonce;
                }
                self.add_savepoint(path, p.trigger, &p.trigger_id);
            }
            Some(SavepointStatus::Failed { message }) => {
                self.status.pending_savepoint = None;
                if p.nonce.is_some() {
                    self.status.last_savepoint_trigger_nonce = p.nonce;
                }
                self.snapshot_note(&p.trigger_id, p.trigger, None, Some(message.clone()));
                self.event(
                    true,
                    "SavepointFailed",
                    format!(
                        "{} savepoint {} failed: {message}",
                        trigger_name(p.trigger),
                        p.trigger_id
                    ),
                );
                self.degrade(
                    "SavepointFailed",
                    format!(
                        "the last {} savepoint failed: {message}",
                        trigger_name(p.trigger)
                    ),
                );
            }
            other => {
                if self.elapsed_since(&p.started_at) > self.input.settings.savepoint_timeout {
                    self.status.pending_savepoint = None;
                    if p.nonce.is_some() {
                        self.status.last_savepoint_trigger_nonce = p.nonce;
                    }
                    self.event(
                        true,
                        "SavepointTimedOut",
                        format!(
                            "{} savepoint {} did not complete within {}s",
                            trigger_name(p.trigger),
                            p.trigger_id,
                            self.input.settings.savepoint_timeout.as_secs()
                        ),
                    );
                    return;
                }
                // The JobManager never saw the trigger (the operator stopped between recording
                // and sending it, or the JobManager was replaced): send it again, same ID.
                if other == Some(SavepointStatus::Unknown)
                    && let (Some(job_id), Some(directory)) =
                        (self.job_id(), self.spec().savepoint_directory())
                {
                    self.actions.push(Action::TriggerSavepoint {
                        job_id,
                        trigger_id: p.trigger_id.clone(),
                        directory,
                    });
                }
                self.fast();
            }
        }
    }

    /// Start a manual (nonce) or periodic savepoint if one is due.
    fn maybe_start_savepoint(&mut self) {
        if !self.job_running() {
            return;
        }
        let spec = self.spec();
        let nonce = spec.job.savepoint_trigger_nonce;
        let manual = nonce.is_some() && nonce != self.status.last_savepoint_trigger_nonce;
        let periodic = !manual
            && spec.periodic_savepoint_interval().is_some_and(|interval| {
                let last = self
                    .status
                    .savepoint_history
                    .iter()
                    .map(|s| s.time.clone())
                    .chain(self.status.lifecycle_state_since.clone())
                    // A failed attempt also waits a full interval before the next one.
                    .chain(self.status.last_periodic_savepoint_attempt.clone())
                    .max();
                last.is_none_or(|t| self.elapsed_since(&t) >= interval)
            });
        if !manual && !periodic {
            return;
        }
        let Some(directory) = spec.savepoint_directory() else {
            self.status.last_savepoint_trigger_nonce = nonce;
            self.event(
                true,
                "SavepointFailed",
                "cannot take a savepoint: set spec.savepoints.directory or spec.checkpointing.storage",
            );
            return;
        };
        let trigger = if manual {
            SavepointTrigger::Manual
        } else {
            SavepointTrigger::Periodic
        };
        let trigger_id = self.trigger_id(trigger_name(trigger));
        let job_id = self.job_id().expect("a running job has an ID");
        if trigger == SavepointTrigger::Periodic {
            self.status.last_periodic_savepoint_attempt = Some(self.now_time());
        }
        self.status.pending_savepoint = Some(PendingSavepoint {
            trigger_id: trigger_id.clone(),
            trigger,
            nonce: if manual { nonce } else { None },
            started_at: self.now_time(),
        });
        self.actions.push(Action::TriggerSavepoint {
            job_id,
            trigger_id,
            directory,
        });
        self.fast();
    }

    fn dispose_dropped(&mut self) {
        if !self.status.savepoints_pending_disposal.is_empty()
            && self.input.observed.job_manager.reachable()
        {
            self.actions.push(Action::DisposeSavepoints {
                paths: self.status.savepoints_pending_disposal.clone(),
            });
        }
    }

    /// Record a savepoint outcome as a StreamJobSnapshot (after the status is written).
    fn snapshot_note(
        &mut self,
        trigger_id: &str,
        trigger: SavepointTrigger,
        path: Option<String>,
        error: Option<String>,
    ) {
        self.actions.push(Action::RecordSnapshot(SnapshotNote {
            trigger_id: trigger_id.to_string(),
            trigger,
            job_id: self.job_id(),
            path,
            error,
            checkpoint: false,
            checkpoint_id: None,
        }));
    }

    fn add_savepoint(&mut self, path: String, trigger: SavepointTrigger, trigger_id: &str) {
        self.snapshot_note(trigger_id, trigger, Some(path.clone()), None);
        self.event(
            false,
            "SavepointCompleted",
            format!("{} savepoint completed: {path}", trigger_name(trigger)),
        );
        let time = self.now_time();
        savepoints::record(
            &mut self.status,
            SavepointRecord {
                path,
                time,
                trigger,
            },
            self.input.spec,
            self.input.now,
        );
    }

    fn new_upgrade(&self, reason: UpgradeReason, step: UpgradeStep) -> UpgradeStatus {
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
    fn begin_upgrade(&mut self, reason: UpgradeReason) {
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

    fn latest_checkpoint_path(&self) -> Option<String> {
        self.input
            .observed
            .latest_checkpoint
            .as_ref()
            .or(self.status.last_checkpoint.as_ref())
            .map(|c| c.path.clone())
    }

    /// Record the restore point, then tear the old pods down.
    fn begin_teardown(&mut self, reason: UpgradeReason, restore: Option<String>) {
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
        self.actions.push(Action::DeleteCluster);
        self.fast();
    }

    fn upgrading(&mut self) {
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

    fn stopping_with_savepoint(&mut self, upgrade: UpgradeStatus) {
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
    fn abort_upgrade(&mut self, upgrade: &UpgradeStatus, why: String) {
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

    fn cancelling(&mut self, upgrade: UpgradeStatus) {
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

    fn tearing_down(&mut self, upgrade: UpgradeStatus) {
        if self.input.observed.cluster_present {
            self.actions.push(Action::DeleteCluster);
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

    fn deleting(&mut self) {
        self.set_state(LifecycleState::Deleting);
        self.fast();
        let Some(deletion) = self.status.deletion.clone() else {
            let want_savepoint = self.spec().savepoint_on_delete()
                && self.input.observed.cluster_present
                && !self.job().is_some_and(|j| j.state.is_terminal());
            let trigger_id = want_savepoint.then(|| self.trigger_id("delete"));
            self.status.deletion = Some(DeletionStatus {
                started_at: self.now_time(),
                savepoint_trigger_id: trigger_id.clone(),
            });
            match (trigger_id, self.job_id(), self.spec().savepoint_directory()) {
                (Some(trigger_id), Some(job_id), Some(directory)) if self.job_running() => {
                    self.actions.push(Action::StopWithSavepoint {
                        job_id,
                        trigger_id,
                        directory,
                    });
                }
                (Some(_), ..) => {
                    // Not running right now: wait (bounded) for it to come back.
                }
                (None, ..) => self.actions.push(Action::RemoveFinalizer),
            }
            return;
        };
        let Some(trigger_id) = deletion.savepoint_trigger_id.clone() else {
            self.actions.push(Action::RemoveFinalizer);
            return;
        };
        let timeout = self.spec().on_delete_timeout();
        match self.input.observed.savepoint.clone() {
            Some(SavepointStatus::Completed { path }) => {
                self.add_savepoint(path, SavepointTrigger::Delete, &trigger_id);
                self.actions.push(Action::RemoveFinalizer);
            }
            Some(SavepointStatus::Failed { message }) => {
                self.event(
                    true,
                    "SavepointFailed",
                    format!("savepoint on delete failed: {message}; deleting without it"),
                );
                self.actions.push(Action::RemoveFinalizer);
            }
            other => {
                if self.elapsed_since(&deletion.started_at) > timeout {
                    self.event(
                        true,
                        "SavepointOnDeleteSkipped",
                        format!(
                            "no savepoint within spec.savepoints.onDeleteTimeout ({}s): {}; deleting without it",
                            timeout.as_secs(),
                            match &self.input.observed.job_manager {
                                JobManagerView::Unreachable(m) => format!("the JobManager does not answer ({m})"),
                                _ => "the savepoint did not complete".into(),
                            }
                        ),
                    );
                    self.actions.push(Action::RemoveFinalizer);
                    return;
                }
                let resend = other.is_none() || other == Some(SavepointStatus::Unknown);
                if resend
                    && self.job_running()
                    && let (Some(job_id), Some(directory)) =
                        (self.job_id(), self.spec().savepoint_directory())
                {
                    self.actions.push(Action::StopWithSavepoint {
                        job_id,
                        trigger_id,
                        directory,
                    });
                }
            }
        }
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
pub use checkpoints::watched_checkpoint;

#[cfg(test)]
mod tests;
