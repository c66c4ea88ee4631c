//! Session clusters, as the Flink Kubernetes Operator has them (a `FlinkDeployment` without a
//! job, plus `FlinkSessionJob`s):
//!
//! - `StreamCluster` (`fjord.dev/v1alpha1`, short name `sc`): a JobManager in session mode and
//!   TaskManagers, with no job of their own. Many small jobs share its pods.
//! - `StreamSessionJob` (short name `ssj`): one registered job submitted to a StreamCluster of
//!   the same namespace, stopped, upgraded and suspended through its upgrade mode like a
//!   StreamJob's job.
//!
//! `///` comments here are the user-facing schema text of `kubectl explain`.

// The CustomResource derive repeats `type_` once per printer column.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use kube::core::Duration;

use crate::spec::{
    CheckpointingSpec, HA_STORAGE_MESSAGE, HA_STORAGE_RULE, ImagePullPolicy, JobManagerSpec,
    JobSpec, PERIODIC_INTERVAL_MESSAGE, PERIODIC_INTERVAL_RULE, SecretReference, SecuritySpec,
    TaskManagerSpec,
};
use crate::status::{ManualCheckpoint, PendingSavepoint};

/// A StreamCluster runs a Fjord session cluster: a JobManager in session mode and TaskManagers
/// whose task slots the StreamSessionJobs submitted to it share (the Flink operator's
/// FlinkDeployment in session mode).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fjord.dev",
    version = "v1alpha1",
    kind = "StreamCluster",
    plural = "streamclusters",
    shortname = "sc",
    category = "fjord",
    namespaced,
    status = "StreamClusterStatus",
    derive = "PartialEq",
    doc = "A StreamCluster runs a Fjord session cluster (a JobManager in session mode and \
           TaskManagers) to which StreamSessionJobs are submitted; its jobs share its pods.",
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.lifecycleState",
        description = "Deploying or Ready"
    ),
    printcolumn(
        name = "TaskManagers",
        type_ = "integer",
        json_path = ".status.readyTaskManagers",
        description = "TaskManagers registered with the JobManager"
    ),
    printcolumn(
        name = "Free Slots",
        type_ = "integer",
        json_path = ".status.freeSlots",
        description = "Task slots no job holds"
    ),
    printcolumn(
        name = "Jobs",
        type_ = "integer",
        json_path = ".status.runningJobs",
        description = "Jobs running in the session"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new(
        "!has(self.checkpointing) || !has(self.checkpointing.storage) || !self.checkpointing.storage.startsWith('memory://')"
    ).message("spec.checkpointing.storage: memory:// storage does not outlive the pods, so the session's jobs could not keep their state; use s3:// (or file:// on a laptop)").field_path(".checkpointing.storage"),
    validation = Rule::new(HA_STORAGE_RULE).message(HA_STORAGE_MESSAGE).field_path(".jobManager.highAvailability")
)]
#[serde(rename_all = "camelCase")]
pub struct StreamClusterSpec {
    /// Container image holding the Fjord worker and the registry of jobs the session's jobs
    /// name.
    #[schemars(length(min = 1))]
    pub image: String,

    /// When the kubelet pulls the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// The JobManager: the pod that runs every submitted job's coordination, checkpoints and
    /// savepoints. With spec.jobManager.highAvailability and replicas above 1, standbys take
    /// over a failed leader and run the session's jobs again from their latest checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager: Option<JobManagerSpec>,

    /// The TaskManagers: spec.taskManager.replicas pods (default 1) of spec.taskManager.slots
    /// task slots each (default 1). The jobs' subtasks share these slots; a job is started only
    /// when enough of them are free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerSpec>,

    /// Periodic checkpoints of every job: interval, guarantee, and the storage under which each
    /// job's checkpoints go to `<storage>/<job id>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointing: Option<CheckpointingSpec>,

    /// Where the jobs' savepoints are written (a URL). Default:
    /// `<spec.checkpointing.storage>/savepoints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('^(s3|hdfs|file|memory)://.+')").message("spec.savepointDirectory must be a URL with scheme s3://, hdfs://, file:// or memory://"))]
    pub savepoint_directory: Option<String>,

    /// Secret holding the object-store credentials (every key becomes an environment variable
    /// of the JobManager and TaskManager containers, as for a StreamJob).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_credentials: Option<SecretReference>,

    /// ServiceAccount the JobManager and TaskManager Pods run as. Unset: the namespace's
    /// `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account: Option<String>,

    /// Transport security of the session cluster, as a StreamJob's spec.security:
    /// `tls.enabled` for mutual TLS between the JobManager and the TaskManagers (certificates
    /// from a CA of this StreamCluster, or `tls.secretName`), `tls.rest` for HTTPS on the REST
    /// API, `restAuth.enabled` for a bearer token the operator generates, keeps in a Secret and
    /// sends itself (to submit and follow the StreamSessionJobs). Unset: plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,

    /// Fjord configuration entries for the JobManager and TaskManagers (as a StreamJob's
    /// spec.configuration; keys the operator manages win, credential-looking keys are refused).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 256))]
    pub configuration: BTreeMap<String, String>,

    /// Pod template merged into both the JobManager and the TaskManager pods (as a
    /// StreamJob's spec.podTemplate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub pod_template: Option<serde_json::Value>,
}

/// What the operator observes of a StreamCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamClusterStatus {
    /// `Deploying` until the JobManager answers and a TaskManager registered, then `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<String>,
    /// TaskManagers registered with the JobManager and alive.
    #[serde(default)]
    pub ready_task_managers: i32,
    /// Task slots the TaskManagers offer.
    #[serde(default)]
    pub total_slots: i32,
    /// Task slots no job holds.
    #[serde(default)]
    pub free_slots: i32,
    /// Jobs running in the session (of any StreamSessionJob, or submitted by hand).
    #[serde(default)]
    pub running_jobs: i32,
    /// The JobManager's REST API inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_url: Option<String>,
    /// Why the cluster is not ready, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The generation whose children were applied last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A StreamSessionJob runs one registered job on a StreamCluster of the same namespace (the
/// Flink operator's FlinkSessionJob): submitted when the cluster has free slots, stopped and
/// restarted through its upgrade mode when its spec changes, and cancelled (after a savepoint
/// with spec.savepointOnDelete) when it is deleted.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fjord.dev",
    version = "v1alpha1",
    kind = "StreamSessionJob",
    plural = "streamsessionjobs",
    shortname = "ssj",
    category = "fjord",
    namespaced,
    status = "StreamSessionJobStatus",
    derive = "PartialEq",
    doc = "A StreamSessionJob runs one registered job on a StreamCluster (the Flink operator's \
           FlinkSessionJob), upgraded and suspended through its upgrade mode.",
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.clusterName",
        description = "The StreamCluster the job runs on"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.lifecycleState",
        description = "Lifecycle state managed by the operator"
    ),
    printcolumn(
        name = "Job State",
        type_ = "string",
        json_path = ".status.jobState",
        description = "Job state reported by the JobManager"
    ),
    printcolumn(
        name = "Job ID",
        type_ = "string",
        json_path = ".status.jobId",
        description = "The job's ID in the session"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StreamSessionJobSpec {
    /// Name of the StreamCluster (same namespace) the job runs on.
    #[schemars(length(min = 1, max = 253))]
    pub cluster_name: String,

    /// The job and how it is upgraded.
    pub job: SessionJobSpec,

    /// Take a savepoint (stop-with-savepoint) before the job is cancelled when the
    /// StreamSessionJob is deleted; it is recorded as a StreamJobSnapshot (trigger type
    /// delete), which outlives the StreamSessionJob.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub savepoint_on_delete: bool,

    /// Savepoints of the running job the operator takes on its own (periodic savepoints); each
    /// is recorded as a StreamJobSnapshot (trigger type periodic) in the StreamCluster's
    /// savepoint directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoints: Option<SessionSavepointsSpec>,
}

impl StreamSessionJobSpec {
    /// Interval of periodic savepoints, if enabled.
    pub fn periodic_savepoint_interval(&self) -> Option<std::time::Duration> {
        self.savepoints
            .as_ref()?
            .periodic_interval
            .map(std::time::Duration::from)
    }
}

/// A StreamSessionJob's savepoints: the field of a StreamJob's spec.savepoints that applies to
/// a job of a session (its directory is the StreamCluster's, and spec.savepointOnDelete is its
/// savepoint on delete).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SessionSavepointsSpec {
    /// Take a savepoint this often while the job runs, as a duration such as `1h`. Unset means no
    /// periodic savepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(PERIODIC_INTERVAL_RULE).message(PERIODIC_INTERVAL_MESSAGE))]
    pub periodic_interval: Option<Duration>,
}

/// A session job: the registered job, its arguments and parallelism, and how it is upgraded.
/// The same type as a StreamJob's `spec.job` (same fields, same CEL rules, same meaning), so the
/// two cannot drift apart; [`JobSpec::same_deployment`] is its upgrade test.
pub type SessionJobSpec = JobSpec;

/// Why the operator stopped the job it records.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    /// The spec changed: a new job follows.
    Upgrade,
    /// spec.job.state is `suspended`.
    Suspend,
    /// The StreamSessionJob is being deleted.
    Delete,
}

/// A stop the operator started, recorded before it calls the JobManager (a write-ahead log
/// entry: a restarted operator polls the same trigger instead of starting another).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionJobStop {
    /// The job being stopped.
    pub job_id: String,
    /// Why.
    pub reason: StopReason,
    /// The stop-with-savepoint's trigger ID (none for a cancel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
}

/// What the operator observes and records of a StreamSessionJob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamSessionJobStatus {
    /// `Pending` (waiting for the cluster or free slots), `Submitted`, `Running`, `Stopping`,
    /// `Suspended`, `Finished` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<String>,
    /// The ID of the job submitted last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Its state as the JobManager reports it (`RUNNING`, `FINISHED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
    /// The spec the job submitted last runs with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_spec: Option<SessionJobSpec>,
    /// A stop in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping: Option<SessionJobStop>,
    /// The job submitted last was stopped by the operator (so a new one may follow).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
    /// Where the next job restores from (the savepoint or checkpoint the last stop left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_path: Option<String>,
    /// The savepoint or checkpoint the running job started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// The latest savepoint the operator took of this job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<String>,
    /// The spec.job.savepointTriggerNonce whose savepoint was asked for last (its
    /// StreamJobSnapshot exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint_trigger_nonce: Option<i64>,
    /// The spec.job.checkpointTriggerNonce whose checkpoint was asked for last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint_trigger_nonce: Option<i64>,
    /// The StreamJobSnapshot the operator created last for a trigger nonce or a periodic
    /// savepoint (`kubectl get sjs NAME` shows its progress and path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered_snapshot: Option<String>,
    /// A manual or periodic savepoint the operator has asked for and not yet seen complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_savepoint: Option<PendingSavepoint>,
    /// When the operator last started a periodic savepoint, successful or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_periodic_savepoint_attempt:
        Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// The last manual checkpoint (spec.job.checkpointTriggerNonce): in flight, or its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_checkpoint: Option<ManualCheckpoint>,
    /// Submissions so far (each gets a new job ID).
    #[serde(default)]
    pub submissions: i64,
    /// What went wrong last, if anything (cleared once the job runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How often the job submitted last restarted after a failure, as the JobManager counts
    /// (a new submission starts again at 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_restarts: Option<i64>,
    /// When the job submitted last started, as the JobManager reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_start_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// The latest completed checkpoint of the job submitted last, as the JobManager reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<crate::CheckpointRecord>,
    /// The generation the status reflects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
