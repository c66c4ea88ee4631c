//! What the state machine reads and what it decides: its settings, the observation of the
//! cluster and the JobManager, the actions the controller performs and the events it records.

use super::*;

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
    /// The thresholds of certificate renewal and CA rotation (`--ca-propagation-seconds`).
    pub ca_rotation: crate::ca_rotation::Timing,
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
            ca_rotation: crate::ca_rotation::Timing::default(),
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
    pub(super) fn job(&self) -> Option<&JobInfo> {
        match self {
            Self::Job(j) => Some(j),
            _ => None,
        }
    }

    pub(super) fn reachable(&self) -> bool {
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
    /// A JobManager or TaskManager container that crash-loops under the running job
    /// ([`crate::pods::crash_loop`]: an `OOMKilled` TaskManager the kubelet keeps restarting
    /// while the JobManager reports `RUNNING`). Read only while the job runs, from the Pods the
    /// controller's watch holds.
    pub crash_loop: Option<PodProblem>,
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
    /// Delete the JobManager and TaskManager workloads without waiting for their Pods
    /// (background): the next cluster starts while they terminate. Only once the old job has
    /// ended (finished or cancelled) and for a next cluster of another `cluster.id` (another
    /// generation), so neither cluster's Pods can join the other.
    ReleaseCluster,
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

    /// `SavepointCompleted`: a manual or periodic savepoint completed at `path` (a StreamJob's
    /// and a StreamSessionJob's alike).
    pub fn savepoint_completed(trigger: SavepointTrigger, path: &str) -> Self {
        Self::normal(
            "SavepointCompleted",
            format!("{} savepoint completed: {path}", trigger_name(trigger)),
        )
    }

    /// `SavepointFailed`: the savepoint under `trigger_id` failed with `message`.
    pub fn savepoint_failed(trigger: SavepointTrigger, trigger_id: &str, message: &str) -> Self {
        Self::warning(
            "SavepointFailed",
            format!(
                "{} savepoint {trigger_id} failed: {message}",
                trigger_name(trigger)
            ),
        )
    }

    /// `SavepointTimedOut`: the savepoint under `trigger_id` did not complete within `limit`.
    pub fn savepoint_timed_out(
        trigger: SavepointTrigger,
        trigger_id: &str,
        limit: Duration,
    ) -> Self {
        Self::warning(
            "SavepointTimedOut",
            format!(
                "{} savepoint {trigger_id} did not complete within {}s",
                trigger_name(trigger),
                limit.as_secs()
            ),
        )
    }

    /// `CheckpointCompleted`: manual checkpoint `id` completed at `path`.
    pub fn checkpoint_completed(id: u64, path: &str) -> Self {
        Self::normal(
            "CheckpointCompleted",
            format!("manual checkpoint {id} completed: {path}"),
        )
    }

    /// `CheckpointFailed`: the manual checkpoint under `trigger_id` failed with `message`.
    pub fn checkpoint_failed(trigger_id: &str, message: &str) -> Self {
        Self::warning(
            "CheckpointFailed",
            format!("manual checkpoint {trigger_id} failed: {message}"),
        )
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
