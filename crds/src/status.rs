//! The observed state of a StreamJob: what the operator writes.
//!
//! The status is the operator's write-ahead log. Before the operator acts (triggers a savepoint,
//! tears pods down, deploys a new job) it records here what it is about to do, so an operator that
//! restarts at any point continues from the status without losing a savepoint or running two jobs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::UpgradeMode;

/// Observed state of a StreamJob, written by the operator on every reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobStatus {
    /// The metadata.generation the operator last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Lifecycle state: Created, Deploying, Running, Upgrading, Suspended, Failed or Deleting.
    #[serde(default)]
    pub lifecycle_state: LifecycleState,

    /// When the StreamJob entered its current lifecycle state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state_since: Option<Time>,

    /// Job state reported by the JobManager, or UNKNOWN when it cannot be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<JobState>,

    /// ID of the job currently deployed, as reported by the JobManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,

    /// How often the deployed job restarted after a failure, as its JobManager counts (a new
    /// deployment starts again at 0; a restarted JobManager Pod too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_restarts: Option<i64>,

    /// When the deployed job started, as its JobManager reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_start_time: Option<Time>,

    /// The restart count at the start of the current health-check window
    /// (spec.healthCheck).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_baseline: Option<RestartBaseline>,

    /// Parallelism of the deployed job (the scale subresource's status replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,

    /// The TaskManager Pods: how many the Deployment wants and how many are Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_managers: Option<TaskManagersStatus>,

    /// Label selector of the job's TaskManager pods (the scale subresource's selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// Where the job's web dashboard (and REST API) is: the Ingress URL when spec.ingress sets
    /// a host (`https://` with tlsSecretName), else the JobManager Service's in-cluster URL
    /// (`https://` when spec.security.tls.rest is deployed). It answers while the JobManager
    /// runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,

    /// Ready, Progressing and Degraded conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The latest completed checkpoint reported by the JobManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<CheckpointRecord>,

    /// Path of the most recent completed savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<String>,

    /// Completed savepoints, oldest first, bounded by spec.savepoints.historyMaxCount and
    /// historyMaxAge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub savepoint_history: Vec<SavepointRecord>,

    /// Savepoints dropped from the history whose files are still to be disposed of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub savepoints_pending_disposal: Vec<String>,

    /// A manual or periodic savepoint the operator has asked for and not yet seen complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_savepoint: Option<PendingSavepoint>,

    /// When the operator last started a periodic savepoint, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_periodic_savepoint_attempt: Option<Time>,

    /// The spec.job.savepointTriggerNonce the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint_trigger_nonce: Option<i64>,

    /// The spec.job.checkpointTriggerNonce the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint_trigger_nonce: Option<i64>,

    /// The last manual checkpoint (spec.job.checkpointTriggerNonce): in flight, or its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_checkpoint: Option<ManualCheckpoint>,

    /// The upgrade in progress (recorded before each of its steps is acted on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<UpgradeStatus>,

    /// The last upgrade that could not be carried out; it is not retried until the spec changes
    /// again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_upgrade: Option<FailedUpgrade>,

    /// Savepoint or checkpoint the current deployment restored from (or the next one will).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,

    /// The deletion in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionStatus>,

    /// Since when the JobManager has not answered, if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager_unreachable_since: Option<Time>,

    /// The spec the running (or last) deployment was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub last_reconciled_spec: Option<serde_json::Value>,

    /// The metadata.generation of last reconciled spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled_generation: Option<i64>,

    /// The resourceVersion of the spec.job.sqlFrom ConfigMap whose script was last
    /// reconciled: an edit of the script is a new deployment within the same generation, and
    /// this is part of its job ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_revision: Option<String>,

    /// The autoscaler's parallelism, its last decision and the vertex metrics it was based on
    /// (spec.autoscaler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerStatus>,

    /// The last error, with what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Lifecycle state of a StreamJob.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum LifecycleState {
    /// Accepted, nothing deployed yet.
    #[default]
    Created,
    /// Pods applied, waiting for the job to run.
    Deploying,
    /// The job runs (or finished, see jobState).
    Running,
    /// The job is being stopped and redeployed; see status.upgrade.
    Upgrading,
    /// The job is stopped and its pods removed; see status.restorePath for where it resumes from.
    Suspended,
    /// The job failed; see status.error.
    Failed,
    /// The StreamJob is being deleted; see status.deletion.
    Deleting,
}

impl LifecycleState {
    /// All states, for metrics.
    pub const ALL: [LifecycleState; 7] = [
        Self::Created,
        Self::Deploying,
        Self::Running,
        Self::Upgrading,
        Self::Suspended,
        Self::Failed,
        Self::Deleting,
    ];

    /// Name as written in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "Created",
            Self::Deploying => "Deploying",
            Self::Running => "Running",
            Self::Upgrading => "Upgrading",
            Self::Suspended => "Suspended",
            Self::Failed => "Failed",
            Self::Deleting => "Deleting",
        }
    }
}

/// Job state as reported by the JobManager.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Submitted, not yet scheduled.
    Created,
    /// Running.
    Running,
    /// Failing; it will restart or fail.
    Failing,
    /// Restarting after a failure.
    Restarting,
    /// Failed for good.
    Failed,
    /// Being cancelled.
    Cancelling,
    /// Cancelled.
    Cancelled,
    /// Finished (all sources ended).
    Finished,
    /// Stopped with a savepoint.
    Suspended,
    /// The JobManager could not be reached.
    Unknown,
}

impl JobState {
    /// Whether the job will not run again in this JobManager.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Cancelled | Self::Finished | Self::Suspended
        )
    }
}

/// The TaskManager Deployment's Pods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagersStatus {
    /// Pods the TaskManager Deployment wants.
    pub desired: i32,
    /// TaskManager Pods that are Ready.
    pub ready: i32,
}

/// The job's restart count when a health-check window started.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartBaseline {
    /// Restarts counted then.
    pub restarts: i64,
    /// When the window started.
    pub since: Time,
}

/// A completed checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointRecord {
    /// Checkpoint ID.
    pub id: i64,
    /// Location of the checkpoint.
    pub path: String,
    /// When it completed, as reported by the JobManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Time>,
}

/// A completed savepoint in the history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavepointRecord {
    /// Location of the savepoint.
    pub path: String,
    /// When the operator saw it complete.
    pub time: Time,
    /// Why it was taken.
    pub trigger: SavepointTrigger,
}

/// Why a savepoint was taken.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SavepointTrigger {
    /// spec.job.savepointTriggerNonce changed.
    Manual,
    /// spec.savepoints.periodicInterval elapsed.
    Periodic,
    /// An upgrade, rescale, restart or suspend in savepoint mode.
    Upgrade,
    /// spec.savepoints.onDelete on deletion.
    Delete,
}

/// A manual or periodic savepoint in flight.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingSavepoint {
    /// Trigger ID chosen by the operator; the JobManager deduplicates on it. A
    /// StreamSessionJob's: the name of the StreamJobSnapshot that takes the savepoint.
    pub trigger_id: String,
    /// Why it was asked for.
    pub trigger: SavepointTrigger,
    /// The spec.job.savepointTriggerNonce it answers, for manual savepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<i64>,
    /// When it was asked for.
    pub started_at: Time,
}

/// A manual checkpoint asked for with spec.job.checkpointTriggerNonce (recorded before the
/// JobManager hears of it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualCheckpoint {
    /// The spec.job.checkpointTriggerNonce it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<i64>,
    /// Trigger ID chosen by the operator; the JobManager deduplicates on it. A
    /// StreamSessionJob's: the name of the StreamJobSnapshot that takes the checkpoint.
    pub trigger_id: String,
    /// IN_PROGRESS, COMPLETED or FAILED.
    pub state: crate::snapshot::SnapshotState,
    /// When it was asked for.
    pub triggered_at: Time,
    /// When it completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_at: Option<Time>,
    /// The completed checkpoint's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<u64>,
    /// Where the completed checkpoint is (kept until checkpoint retention removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ManualCheckpoint {
    /// A manual checkpoint for `nonce` just asked for under `trigger_id` at `triggered_at`.
    pub fn in_progress(nonce: Option<i64>, trigger_id: String, triggered_at: Time) -> Self {
        ManualCheckpoint {
            nonce,
            trigger_id,
            state: crate::snapshot::SnapshotState::InProgress,
            triggered_at,
            result_at: None,
            checkpoint_id: None,
            path: None,
            error: None,
        }
    }

    /// Record its completion: checkpoint `checkpoint_id` at `path`, seen at `at`.
    pub fn complete(&mut self, checkpoint_id: Option<u64>, path: String, at: Time) {
        self.state = crate::snapshot::SnapshotState::Completed;
        self.checkpoint_id = checkpoint_id;
        self.path = Some(path);
        self.result_at = Some(at);
    }

    /// Record its failure with `error`, seen at `at`.
    pub fn fail(&mut self, error: String, at: Time) {
        self.state = crate::snapshot::SnapshotState::Failed;
        self.error = Some(error);
        self.result_at = Some(at);
    }
}

/// An upgrade in progress. Each step is recorded here before the operator acts on it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStatus {
    /// Why the job is being stopped.
    pub reason: UpgradeReason,
    /// Upgrade mode this upgrade follows.
    pub mode: UpgradeMode,
    /// The current step.
    pub step: UpgradeStep,
    /// The metadata.generation this upgrade deploys.
    pub target_generation: i64,
    /// Trigger ID of the stop-with-savepoint, in savepoint mode, or of the JobManager's
    /// rescale in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_id: Option<String>,
    /// The parallelism a rescale in place goes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,
    /// The savepoint or checkpoint the new deployment restores from, recorded before the old
    /// pods are torn down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,
    /// When the upgrade started.
    pub started_at: Time,
    /// When the current step started.
    pub step_started_at: Time,
}

/// Why a job is being stopped.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeReason {
    /// The spec changed.
    SpecChange,
    /// Only spec.job.parallelism (or TaskManager sizing) changed.
    Rescale,
    /// spec.job.restartNonce changed.
    Restart,
    /// spec.job.state became suspended.
    Suspend,
    /// The job restarted more often than spec.healthCheck allows.
    RestartLoop,
}

/// Steps of an upgrade.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum UpgradeStep {
    /// Savepoint mode: stopping the job with a savepoint.
    StoppingWithSavepoint,
    /// Last-state and stateless modes: cancelling the job.
    Cancelling,
    /// The restore point is recorded; removing the old JobManager and TaskManagers.
    TearingDown,
    /// An autoscaler decision applied in place: the TaskManagers are scaled up to what the
    /// new parallelism needs (never down yet), the running JobManager rescales the job (a
    /// savepoint and a restart of its tasks at the new parallelism, same job), then surplus
    /// TaskManagers are removed.
    RescalingInPlace,
}

/// An upgrade that could not be carried out.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedUpgrade {
    /// The metadata.generation whose upgrade failed.
    pub generation: i64,
    /// The spec.job.restartNonce at the time, so a new nonce retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
    /// What went wrong and what to do.
    pub message: String,
}

/// A deletion in progress.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletionStatus {
    /// When the operator started handling the deletion.
    pub started_at: Time,
    /// Trigger ID of the savepoint on delete, if one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_id: Option<String>,
}

/// What the autoscaler chose and why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// The parallelism the autoscaler chose. While spec.autoscaler.enabled it overrides
    /// spec.job.parallelism (like the Flink operator's parallelism overrides); unset until
    /// its first rescale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,

    /// The spec.job.parallelism the override was chosen under: changing spec.job.parallelism
    /// drops the override (the user's choice wins, and the autoscaler starts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_parallelism: Option<i32>,

    /// The last decision, in words: scaled up or down and why, or why nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_decision: Option<String>,

    /// When the metrics of the last decision were evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,

    /// When the autoscaler last changed the parallelism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,

    /// Each vertex as the last evaluation saw it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vertices: Vec<VertexScaling>,
}

/// One vertex in an autoscaler evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertexScaling {
    /// The vertex (chain) name.
    pub name: String,
    /// Its parallelism during the window.
    pub parallelism: i32,
    /// Busy time over wall time, the highest over its subtasks (0 to 1).
    pub busy_ratio: f64,
    /// Busy time over wall time, averaged over its subtasks (0 to 1).
    pub average_busy_ratio: f64,
    /// Backpressured time over wall time, the highest over its subtasks (0 to 1).
    pub backpressured_ratio: f64,
    /// Records per second it processed (received, or emitted for a source).
    pub records_per_second: f64,
    /// Records per second it could process if fully busy (Flink's true processing rate);
    /// unset when it was not busy at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_processing_rate: Option<f64>,
    /// The parallelism it needs to run at the target utilisation; unset when it does not
    /// count (backpressured by a slower vertex, or with a fixed parallelism of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_parallelism: Option<i32>,
    /// Why it does not count, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}
