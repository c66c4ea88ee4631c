//! The desired state of a StreamJob: what the user writes.
//!
//! `///` comments in this module are the user-facing schema descriptions that `kubectl explain`
//! shows; internal notes use `//`. CEL rules (`x_kube(validation = ...)`) are evaluated by the API
//! server on `kubectl apply` and by [`crate::manifest`] when a manifest is loaded locally, so the
//! same manifest is rejected with the same message on a laptop and in a cluster.

// The CustomResource derive repeats `type_` once per printer column.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::StreamJobStatus;

/// The message of the rule bounding spec.job.parallelism by spec.job.maxParallelism.
pub const PARALLELISM_MESSAGE: &str = "spec.job.parallelism must be at most spec.job.maxParallelism (128 when unset): raise spec.job.maxParallelism (at most 32768; it cannot change later without losing keyed state) or lower spec.job.parallelism";

/// The message of the rule asking for exactly one of spec.job.name and spec.job.sql.
pub const JOB_SQL_MESSAGE: &str = "set one of spec.job.name (a job registered in the image), spec.job.sql (a SQL script run by the image's built-in `sql` job) and spec.job.sqlFrom (the script in a ConfigMap); spec.job.args does not go with a SQL script";

/// CEL rule: a registered job by name, or one SQL script (inline or from a ConfigMap) without
/// name and arguments.
pub(crate) const JOB_SQL_RULE: &str = "(has(self.sql) || has(self.sqlFrom)) ? (!(has(self.sql) && has(self.sqlFrom)) && (!has(self.name) || self.name == '' || self.name == 'sql') && (!has(self.args) || size(self.args) == 0)) : (has(self.name) && self.name != '')";

/// The job name under which every worker image runs a SQL script (`spec.job.sql`).
pub const SQL_JOB_NAME: &str = "sql";

/// The message of the rule allowing one initial restore point.
pub const INITIAL_SAVEPOINT_MESSAGE: &str = "spec.job.initialSavepointPath and spec.job.initialSavepointSnapshot are two ways to name the first restore point; set only one";

/// The message of the rule refusing `memory://` storage with a stateful upgrade mode.
pub const MEMORY_STORAGE_MESSAGE: &str = "spec.checkpointing.storage: memory:// storage does not outlive the pods, so a savepoint or last-state upgrade would lose state; use s3:// (or file:// on a laptop), or spec.job.upgradeMode stateless";

/// Words that mark a configuration key as a credential (in any case).
pub const CREDENTIAL_KEY_MARKERS: [&str; 5] =
    ["secret", "password", "token", "access-key", "credential"];

/// CEL rule on spec.configuration: no credential-looking keys.
const CREDENTIAL_KEYS_RULE: &str =
    "self.all(k, !k.matches('(?i)(secret|password|token|access-key|credential)'))";

/// CEL message expression naming the first offending key, in the words of
/// [`crate::manifest::credential_key_message`].
const CREDENTIAL_KEYS_MESSAGE: &str = "'spec.configuration.' + self.filter(k, k.matches('(?i)(secret|password|token|access-key|credential)'))[0] + ' looks like a credential; spec.configuration goes into a ConfigMap, so put credentials in the Secret named by spec.storageCredentials instead'";

/// A StreamJob runs one Fjord streaming job on Kubernetes: a JobManager, TaskManagers and the
/// configuration they share, kept running and upgraded without losing state.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fjord.dev",
    version = "v1alpha1",
    kind = "StreamJob",
    plural = "streamjobs",
    shortname = "sj",
    category = "fjord",
    namespaced,
    status = "StreamJobStatus",
    derive = "PartialEq",
    doc = "A StreamJob runs one Fjord streaming job (JobManager, TaskManagers, configuration) and \
           upgrades, rescales, suspends and deletes it without losing state.",
    scale(
        spec_replicas_path = ".spec.job.parallelism",
        status_replicas_path = ".status.parallelism",
        label_selector_path = ".status.selector"
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
        name = "Parallelism",
        type_ = "integer",
        json_path = ".spec.job.parallelism",
        description = "Desired parallelism"
    ),
    printcolumn(
        name = "Restarts",
        type_ = "integer",
        json_path = ".status.jobRestarts",
        description = "Restarts of the deployed job after failures"
    ),
    printcolumn(
        name = "Last Checkpoint",
        type_ = "date",
        json_path = ".status.lastCheckpoint.completedAt",
        description = "When the latest checkpoint completed"
    ),
    printcolumn(
        name = "Last Savepoint",
        type_ = "string",
        json_path = ".status.lastSavepoint",
        description = "Path of the most recent completed savepoint"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Dashboard",
        type_ = "string",
        json_path = ".status.dashboardUrl",
        description = "The web dashboard's URL (kubectl get -o wide)",
        priority = 1
    )
)]
#[x_kube(
    validation = Rule::new(
        "self.job.upgradeMode != 'savepoint' || (has(self.savepoints) && has(self.savepoints.directory)) || (has(self.checkpointing) && has(self.checkpointing.storage))"
    ).message("spec.job.upgradeMode savepoint needs spec.savepoints.directory or spec.checkpointing.storage to write savepoints to").field_path(".job.upgradeMode"),
    validation = Rule::new(
        "self.job.upgradeMode != 'last-state' || (has(self.checkpointing) && has(self.checkpointing.storage))"
    ).message("spec.job.upgradeMode last-state needs spec.checkpointing.storage so checkpoints outlive the pods").field_path(".job.upgradeMode"),
    validation = Rule::new(
        "!has(self.savepoints) || ((!has(self.savepoints.onDelete) || !self.savepoints.onDelete) && !has(self.savepoints.periodicInterval)) || has(self.savepoints.directory) || (has(self.checkpointing) && has(self.checkpointing.storage))"
    ).message("spec.savepoints.onDelete and spec.savepoints.periodicInterval need spec.savepoints.directory or spec.checkpointing.storage").field_path(".savepoints"),
    validation = Rule::new(
        "!has(self.taskManager) || !has(self.taskManager.replicas) || self.taskManager.replicas * (has(self.taskManager.slots) ? self.taskManager.slots : 1) >= self.job.parallelism"
    ).message("spec.taskManager.replicas * spec.taskManager.slots must be at least spec.job.parallelism").field_path(".taskManager.replicas"),
    validation = Rule::new(
        "self.job.upgradeMode == 'stateless' || !((has(self.checkpointing) && has(self.checkpointing.storage) && self.checkpointing.storage.startsWith('memory://')) || (has(self.savepoints) && has(self.savepoints.directory) && self.savepoints.directory.startsWith('memory://')))"
    ).message(MEMORY_STORAGE_MESSAGE).field_path(".checkpointing.storage"),
    validation = Rule::new(AUTOSCALER_MAX_RULE).message(AUTOSCALER_MAX_MESSAGE).field_path(".autoscaler.maxParallelism"),
    validation = Rule::new(AUTOSCALER_MIN_RULE).message(AUTOSCALER_MIN_MESSAGE).field_path(".autoscaler.minParallelism"),
    validation = Rule::new(AUTOSCALER_SLOTS_RULE).message(AUTOSCALER_SLOTS_MESSAGE).field_path(".taskManager.replicas"),
    validation = Rule::new(HA_STORAGE_RULE).message(HA_STORAGE_MESSAGE).field_path(".jobManager.highAvailability")
)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobSpec {
    /// Container image holding the Fjord worker and the registry of jobs it can run.
    #[schemars(length(min = 1))]
    pub image: String,

    /// When the kubelet pulls the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,

    /// The job to run and how to upgrade it.
    pub job: JobSpec,

    /// The JobManager: one pod that coordinates the job, its checkpoints and savepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_manager: Option<JobManagerSpec>,

    /// The TaskManagers: pods whose task slots run the job's parallel subtasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_manager: Option<TaskManagerSpec>,

    /// Periodic checkpoints: how often, with which guarantee, and where they are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpointing: Option<CheckpointingSpec>,

    /// Savepoints: where they go, periodic savepoints, history retention and savepoint on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoints: Option<SavepointsSpec>,

    /// Secret holding the object-store credentials. Every key of the Secret becomes an environment
    /// variable of the JobManager and TaskManager containers (for S3: AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, and optionally AWS_REGION and AWS_ENDPOINT). The operator never
    /// reads the values and never copies them into a ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_credentials: Option<SecretReference>,

    /// ServiceAccount the JobManager and TaskManager Pods run as (it wins over a
    /// serviceAccountName in the pod templates). Unset: the namespace's `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account: Option<String>,

    /// Expose the JobManager's REST API (and its /metrics) through an Ingress named
    /// `<name>-rest`. Changing it changes no Pod: the job keeps running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// Restart a job stuck in a restart loop: when the job restarted more than
    /// restartsThreshold times within restartsWindow, the operator redeploys it from its
    /// latest checkpoint (or the savepoint it started from) and publishes a RestartLoop Event.
    /// Unset: no such check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,

    /// Reactive autoscaling (the Flink Kubernetes Operator's autoscaler): while enabled, the
    /// operator samples every vertex's busy, idle and backpressured time from the JobManager and
    /// rescales the job so its busiest vertex runs at targetUtilization, within
    /// minParallelism..maxParallelism. Its choice is recorded in status.autoscaler.parallelism
    /// and overrides spec.job.parallelism (which stays as written, for GitOps tools) until the
    /// autoscaler is disabled or spec.job.parallelism is changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerSpec>,

    /// Transport security of the job's cluster (Flink's `security.ssl.*` and REST
    /// authentication). `tls.enabled`: mutual TLS between the JobManager and the TaskManagers
    /// (gRPC control plane and data plane) with certificates the operator issues from a CA of
    /// this StreamJob (or from `tls.secretName`). `restAuth.enabled`: the JobManager's REST API
    /// wants a bearer token the operator generates, keeps in a Secret and sends itself.
    /// Unset: plain text and no REST authentication. Changing it redeploys the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySpec>,

    /// Fjord configuration entries passed to the JobManager and TaskManagers through a ConfigMap.
    /// Entries the operator manages itself (parallelism, storage locations, restore path) are set
    /// from the typed fields above and win over entries with the same key here.
    /// Keys that look like credentials (containing secret, password, token, access-key or
    /// credential, in any case) are refused: a ConfigMap is no place for them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 256))]
    #[x_kube(validation = Rule::new(CREDENTIAL_KEYS_RULE).message(Message::Expression(CREDENTIAL_KEYS_MESSAGE.into())))]
    pub configuration: BTreeMap<String, String>,

    /// Pod template merged into both the JobManager and the TaskManager pods (for example
    /// serviceAccountName, nodeSelector, tolerations, extra volumes or sidecars). Lists of named
    /// items (containers, volumes, env, ports, volumeMounts) merge by name; the container named
    /// `fjord` is the main container. Checked against the Kubernetes Pod schema by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub pod_template: Option<serde_json::Value>,
}

/// When the kubelet pulls the image (the Kubernetes imagePullPolicy).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ImagePullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the image is not on the node.
    IfNotPresent,
    /// Never pull; the image must be on the node.
    Never,
}

impl ImagePullPolicy {
    /// The Kubernetes spelling of the policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// The job to run and how to upgrade it: a StreamJob's `spec.job`, and (the same type, the
/// same schema) a StreamSessionJob's.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("self.parallelism <= (has(self.maxParallelism) ? self.maxParallelism : 128)")
        .message(PARALLELISM_MESSAGE)
        .field_path(".parallelism"),
    validation = Rule::new("!has(self.initialSavepointPath) || !has(self.initialSavepointSnapshot)")
        .message(INITIAL_SAVEPOINT_MESSAGE)
        .field_path(".initialSavepointSnapshot"),
    validation = Rule::new(JOB_SQL_RULE).message(JOB_SQL_MESSAGE).field_path(".name")
)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Name of the job in the image's job registry. Leave it out with spec.job.sql.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,

    /// Arguments passed to the job's builder function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,

    /// A Flink SQL script (CREATE TABLE ... WITH (...), CREATE VIEW, SET, INSERT INTO ...
    /// SELECT) run by the image's (a session job's: its cluster image's) built-in `sql` job
    /// instead of a registered job: no image to build for a new query. Parallelism and checkpointing come from this spec (the script
    /// must not SET parallelism.default or execution.checkpointing.interval). See docs/sql.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,

    /// Where to read the SQL script instead of spec.job.sql: a key of a ConfigMap in the same
    /// namespace. The operator reads it on every pass (the script is planned before anything
    /// is deployed, as spec.job.sql is), and editing the ConfigMap upgrades the job through
    /// spec.job.upgradeMode like a spec change. See docs/sql.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_from: Option<SqlSource>,

    /// Number of parallel subtasks of each operator (for a StreamSessionJob: the task slots of
    /// its cluster it holds). Changing it rescales the job through the upgrade mode (a
    /// savepoint and a redeploy at the new parallelism for `savepoint`). For a StreamJob,
    /// `kubectl scale streamjob NAME --replicas N` sets this field.
    /// At most spec.job.maxParallelism (128 when unset).
    #[serde(default = "default_parallelism")]
    #[schemars(range(min = 1, max = 32768))]
    pub parallelism: i32,

    /// Maximum parallelism: the number of key groups keyed state is split into. It bounds how far
    /// the job can be rescaled and cannot change without losing keyed state. Defaults to 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub max_parallelism: Option<i32>,

    /// How a running job is stopped and restarted when the spec changes: `savepoint` (stop with a
    /// savepoint and restore from it; the default), `last-state` (restore from the latest completed
    /// checkpoint) or `stateless` (start with empty state). The operator never falls back from
    /// one mode to another on its own.
    #[serde(default)]
    pub upgrade_mode: UpgradeMode,

    /// Desired state: `running`, or `suspended` to stop the job (through the upgrade mode; a
    /// StreamJob's pods are removed) until it is set back to `running`, when it resumes from
    /// where it stopped.
    #[serde(default)]
    pub state: DesiredJobState,

    /// Savepoint or checkpoint to restore from on the first deployment (a session job's: its
    /// first submission) only. Later ones restore from what the operator recorded in status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('^(s3|hdfs|file|memory)://.+')").message("spec.job.initialSavepointPath must be a URL with scheme s3://, hdfs://, file:// or memory://"))]
    pub initial_savepoint_path: Option<String>,

    /// Name of a StreamJobSnapshot in the same namespace to restore from on the first
    /// deployment (submission), instead of spec.job.initialSavepointPath. The deployment
    /// waits until the snapshot is COMPLETED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub initial_savepoint_snapshot: Option<String>,

    /// Allow restoring from a snapshot that contains state for operators the job no longer has.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_non_restored_state: bool,

    /// Change this value to take a manual savepoint of the running job (recorded as a
    /// StreamJobSnapshot; a StreamSessionJob's is the StreamJobSnapshot
    /// `<name>-savepoint-<nonce>-<job id prefix>` the operator creates). A value present when
    /// the object is
    /// created takes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,

    /// Change this value to take a manual checkpoint of the running job (the Flink operator's
    /// checkpointTriggerNonce); a StreamJob's status.manualCheckpoint reports it and a
    /// StreamJobSnapshot with spec.checkpoint records it (a StreamSessionJob's is the
    /// StreamJobSnapshot `<name>-checkpoint-<nonce>-<job id prefix>` the operator creates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_trigger_nonce: Option<i64>,

    /// Change this value to restart the job through its upgrade mode without other spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_nonce: Option<i64>,
}

fn default_parallelism() -> i32 {
    1
}

/// How a running job is stopped and restarted when its spec changes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UpgradeMode {
    /// Start the new job with empty state.
    Stateless,
    /// Stop the job with a savepoint and restore the new job from it. A failed savepoint leaves
    /// the old job running.
    #[default]
    Savepoint,
    /// Cancel the job and restore the new job from its latest completed checkpoint.
    LastState,
}

impl UpgradeMode {
    /// The manifest spelling of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stateless => "stateless",
            Self::Savepoint => "savepoint",
            Self::LastState => "last-state",
        }
    }
}

/// Desired state of the job.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredJobState {
    /// The job runs.
    #[default]
    Running,
    /// The job is stopped (through the upgrade mode) and its pods are removed.
    Suspended,
}

/// CEL: JobManager high availability needs durable checkpoint storage (a standby recovers the
/// job from its latest checkpoint).
pub const HA_STORAGE_RULE: &str = "!has(self.jobManager) || !has(self.jobManager.highAvailability) || (has(self.checkpointing) && has(self.checkpointing.storage) && !self.checkpointing.storage.startsWith('memory://'))";
/// The message of [`HA_STORAGE_RULE`].
pub const HA_STORAGE_MESSAGE: &str = "spec.jobManager.highAvailability needs spec.checkpointing.storage (s3://, not memory://): a standby JobManager recovers the job from its latest checkpoint";
/// CEL: more than one JobManager needs leader election.
pub const HA_REPLICAS_RULE: &str =
    "!has(self.replicas) || self.replicas == 1 || has(self.highAvailability)";
/// The message of [`HA_REPLICAS_RULE`].
pub const HA_REPLICAS_MESSAGE: &str = "spec.jobManager.replicas above 1 needs spec.jobManager.highAvailability: standby JobManagers take over only through leader election";

/// The JobManager pod.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(HA_REPLICAS_RULE).message(HA_REPLICAS_MESSAGE).field_path(".replicas"))]
pub struct JobManagerSpec {
    /// CPU and memory requests and limits of the JobManager container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Number of JobManager pods (default 1). Above 1 needs spec.jobManager.highAvailability: one
    /// pod leads, the others stand by and take over when it dies. With 1, a restarted JobManager
    /// recovers the job from the latest completed checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5))]
    pub replicas: Option<i32>,

    /// Leader election between the JobManager pods on a coordination.k8s.io Lease (Flink's
    /// Kubernetes HA). The leader recovers the job from the latest completed checkpoint and
    /// runs it; the JobManager Service routes to the leader only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_availability: Option<HighAvailabilitySpec>,

    /// Log level and format of the JobManager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingSpec>,

    /// Pod template merged into the JobManager pod after spec.podTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub pod_template: Option<serde_json::Value>,
}

/// Why a renew deadline not below the lease duration is rejected.
pub const HA_RENEW_MESSAGE: &str = "spec.jobManager.highAvailability.renewDeadlineSeconds must be less than leaseDurationSeconds: a leader stops acting before a standby may take over";
/// Why a retry period not below the renew deadline is rejected.
pub const HA_RETRY_MESSAGE: &str = "spec.jobManager.highAvailability.retryPeriodSeconds must be less than renewDeadlineSeconds: a leader tries to renew more than once before it gives up";

/// Leader election timing of the JobManager pods (client-go's defaults).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("(has(self.renewDeadlineSeconds) ? self.renewDeadlineSeconds : 10) < (has(self.leaseDurationSeconds) ? self.leaseDurationSeconds : 15)").message(HA_RENEW_MESSAGE),
    validation = Rule::new("(has(self.retryPeriodSeconds) ? self.retryPeriodSeconds : 2) < (has(self.renewDeadlineSeconds) ? self.renewDeadlineSeconds : 10)").message(HA_RETRY_MESSAGE)
)]
pub struct HighAvailabilitySpec {
    /// A standby takes the lease over once the leader has not renewed it for this long (default
    /// 15). Most of the failover time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 300))]
    pub lease_duration_seconds: Option<i32>,
    /// A leader that could not renew for this long stops acting and restarts as a standby
    /// (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub renew_deadline_seconds: Option<i32>,
    /// How often the leader renews and standbys try (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60))]
    pub retry_period_seconds: Option<i32>,
}

/// The TaskManager pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerSpec {
    /// CPU and memory requests and limits of each TaskManager container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Number of TaskManager pods. Defaults to ceil(parallelism / slots), which follows rescaling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub replicas: Option<i32>,

    /// Task slots per TaskManager. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1024))]
    pub slots: Option<i32>,

    /// Log level and format of the TaskManagers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<LoggingSpec>,

    /// Pod template merged into the TaskManager pods after spec.podTemplate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub pod_template: Option<serde_json::Value>,
}

/// Periodic checkpoints.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointingSpec {
    /// Time between the start of two checkpoints, as a duration such as `10s`, `1m` or `1h30m`.
    /// Defaults to 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("spec.checkpointing.interval must be a positive duration such as 10s, 1m or 1h30m"))]
    pub interval: Option<Duration>,

    /// Processing guarantee: `exactly-once` (aligned barriers; the default) or `at-least-once`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CheckpointMode>,

    /// Where checkpoints are written: `s3://bucket/prefix`, `file:///path` or `memory://`
    /// (memory only makes sense on a laptop). Required for `last-state` upgrades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('^(s3|hdfs|file|memory)://.+')").message("spec.checkpointing.storage must be a URL with scheme s3://, hdfs://, file:// or memory://"))]
    pub storage: Option<String>,

    /// Number of completed checkpoints kept in storage. Defaults to 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub retained: Option<i32>,
}

/// The processing guarantee of checkpoints.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckpointMode {
    /// Aligned barriers: each record affects state exactly once.
    #[default]
    ExactlyOnce,
    /// Barriers are not aligned (Flink's AT_LEAST_ONCE, not its unaligned checkpoints):
    /// records may affect state more than once after a failure.
    AtLeastOnce,
}

impl CheckpointMode {
    /// The manifest spelling of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ExactlyOnce => "exactly-once",
            Self::AtLeastOnce => "at-least-once",
        }
    }
}

/// CEL on `spec.savepoints.periodicInterval` (of a StreamJob and of a StreamSessionJob).
pub const PERIODIC_INTERVAL_RULE: &str = "duration(self) >= duration('1m')";
/// The message of [`PERIODIC_INTERVAL_RULE`].
pub const PERIODIC_INTERVAL_MESSAGE: &str =
    "spec.savepoints.periodicInterval must be a duration of at least 1m";

/// Savepoints.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SavepointsSpec {
    /// Where savepoints are written. Defaults to `<spec.checkpointing.storage>/savepoints`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('^(s3|hdfs|file|memory)://.+')").message("spec.savepoints.directory must be a URL with scheme s3://, hdfs://, file:// or memory://"))]
    pub directory: Option<String>,

    /// Take a savepoint this often while the job runs, as a duration such as `1h`. Unset means no
    /// periodic savepoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new(PERIODIC_INTERVAL_RULE).message(PERIODIC_INTERVAL_MESSAGE))]
    pub periodic_interval: Option<Duration>,

    /// Savepoints the operator keeps in its history. Older ones are removed from the history and
    /// their files are disposed of. Defaults to 5. The savepoint the current deployment restored
    /// from is never disposed of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub history_max_count: Option<i32>,

    /// Savepoints older than this are removed from the history and disposed of, as a duration
    /// such as `168h`; the most recent savepoint is always kept. Unset means no age limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("spec.savepoints.historyMaxAge must be a positive duration such as 168h"))]
    pub history_max_age: Option<Duration>,

    /// Take a savepoint before the StreamJob is deleted. If the JobManager does not answer, the
    /// deletion goes on without a savepoint after spec.savepoints.onDeleteTimeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_delete: Option<bool>,

    /// How long deletion waits for the savepoint on delete before going on without it. Defaults
    /// to 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("spec.savepoints.onDeleteTimeout must be a positive duration such as 5m"))]
    pub on_delete_timeout: Option<Duration>,
}

/// Log level and format of a JobManager or TaskManager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingSpec {
    /// Log filter in tracing's EnvFilter syntax, such as `info`, `debug` or
    /// `info,fjord::checkpoint=debug` (the FJORD_LOG variable). Defaults to the worker's: info
    /// for its lifecycle, warnings from libraries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub level: Option<String>,

    /// `text` (the default) or `json`, one JSON object per line for log collectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
}

/// Log format of a worker process.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Plain text lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The manifest spelling (and the value of FJORD_LOG_FORMAT).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// An Ingress for the JobManager's REST API.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host name the Ingress answers for. Unset: every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub host: Option<String>,

    /// HTTP path prefix routed to the REST API. Defaults to `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub path: Option<String>,

    /// The IngressClass (ingressClassName). Unset: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,

    /// Annotations of the Ingress (for the ingress controller: rewrites, auth, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// A TLS Secret (in the StreamJob's namespace) for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub tls_secret_name: Option<String>,
}

/// The restart-loop check.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckSpec {
    /// More restarts than this within restartsWindow count as a restart loop. Defaults to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub restarts_threshold: Option<i32>,

    /// The window restarts are counted in, as a duration such as `10m`. Defaults to 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s')").message("spec.healthCheck.restartsWindow must be a duration of at least 10s"))]
    pub restarts_window: Option<Duration>,
}

impl HealthCheckSpec {
    /// The threshold (default 5).
    pub fn threshold(&self) -> i64 {
        i64::from(self.restarts_threshold.unwrap_or(5).max(1))
    }

    /// The window (default 10 minutes).
    pub fn window(&self) -> std::time::Duration {
        self.restarts_window
            .map(std::time::Duration::from)
            .unwrap_or(std::time::Duration::from_secs(600))
    }
}

/// CEL rule: the autoscaler's maximum fits in the key groups.
const AUTOSCALER_MAX_RULE: &str = "!has(self.autoscaler) || !has(self.autoscaler.maxParallelism) || self.autoscaler.maxParallelism <= (has(self.job.maxParallelism) ? self.job.maxParallelism : 128)";

/// The message of the rule bounding spec.autoscaler.maxParallelism by spec.job.maxParallelism.
pub const AUTOSCALER_MAX_MESSAGE: &str = "spec.autoscaler.maxParallelism must be at most spec.job.maxParallelism (128 when unset): the job cannot run more subtasks than it has key groups";

/// CEL rule: the autoscaler's minimum fits in the key groups.
const AUTOSCALER_MIN_RULE: &str = "!has(self.autoscaler) || !has(self.autoscaler.minParallelism) || self.autoscaler.minParallelism <= (has(self.job.maxParallelism) ? self.job.maxParallelism : 128)";

/// The message of the rule bounding spec.autoscaler.minParallelism by spec.job.maxParallelism.
pub const AUTOSCALER_MIN_MESSAGE: &str =
    "spec.autoscaler.minParallelism must be at most spec.job.maxParallelism (128 when unset)";

/// CEL rule: with a fixed TaskManager count, the autoscaler's maximum fits in its slots.
const AUTOSCALER_SLOTS_RULE: &str = "!has(self.autoscaler) || !has(self.autoscaler.enabled) || !self.autoscaler.enabled || !has(self.taskManager) || !has(self.taskManager.replicas) || self.taskManager.replicas * (has(self.taskManager.slots) ? self.taskManager.slots : 1) >= (has(self.autoscaler.maxParallelism) ? self.autoscaler.maxParallelism : (has(self.job.maxParallelism) ? self.job.maxParallelism : 128))";

/// The message of the rule asking for enough slots for the autoscaler's maximum.
pub const AUTOSCALER_SLOTS_MESSAGE: &str = "spec.taskManager.replicas * spec.taskManager.slots must be at least spec.autoscaler.maxParallelism (spec.job.maxParallelism when unset) while the autoscaler is enabled; leave spec.taskManager.replicas unset so the TaskManagers follow the parallelism, or lower spec.autoscaler.maxParallelism";

/// The message of the rule ordering the autoscaler's bounds.
pub const AUTOSCALER_BOUNDS_MESSAGE: &str =
    "spec.autoscaler.minParallelism must be at most spec.autoscaler.maxParallelism";

/// Reactive autoscaling, after the Flink Kubernetes Operator's `job.autoscaler.*` options.
///
/// Every metricsWindow the operator compares two samples of each vertex's cumulative busy,
/// idle and backpressured milliseconds and records in. A vertex's busy ratio is its busy time
/// over its wall time (Flink's busyTimeMsPerSecond / 1000), the highest over its subtasks; the
/// parallelism it needs is ceil(parallelism * busyRatio / targetUtilization). A vertex that is
/// backpressured by a slower downstream vertex is not judged by its own busy time. The job's
/// new parallelism is the largest any vertex needs, within minParallelism..maxParallelism;
/// nothing changes while every vertex is within targetUtilization ± targetUtilizationBoundary.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(
    validation = Rule::new("!has(self.minParallelism) || !has(self.maxParallelism) || self.minParallelism <= self.maxParallelism")
        .message(AUTOSCALER_BOUNDS_MESSAGE)
        .field_path(".minParallelism")
)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerSpec {
    /// Whether the autoscaler acts (Flink's job.autoscaler.enabled). Disabling it drops its
    /// parallelism: the job is rescaled back to spec.job.parallelism.
    #[serde(default)]
    pub enabled: bool,

    /// The lowest parallelism the autoscaler chooses (Flink's vertex.min-parallelism).
    /// Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub min_parallelism: Option<i32>,

    /// The highest parallelism the autoscaler chooses (Flink's vertex.max-parallelism), at
    /// most spec.job.maxParallelism. Defaults to spec.job.maxParallelism.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 32768))]
    pub max_parallelism: Option<i32>,

    /// The busy ratio each vertex should run at after scaling, above 0 and at most 1 (Flink's
    /// target.utilization). Defaults to 0.7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.01, max = 1.0))]
    pub target_utilization: Option<f64>,

    /// How far a vertex's busy ratio may stray from targetUtilization, either way, before the
    /// job is rescaled (Flink's target.utilization.boundary). Defaults to 0.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub target_utilization_boundary: Option<f64>,

    /// The time between the two metric samples a decision compares, as a duration such as
    /// `60s` (Flink's metrics.window). At least 1s. Defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("spec.autoscaler.metricsWindow must be a duration of at least 1s, such as 10s or 1m"))]
    pub metrics_window: Option<Duration>,

    /// How long after the job (re)starts or is rescaled no metrics are collected, so start-up
    /// catch-up does not count (Flink's stabilization.interval). Defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s')").message("spec.autoscaler.stabilizationInterval must be a duration such as 0s, 30s or 5m"))]
    pub stabilization_interval: Option<Duration>,

    /// The least time between the last scaling decision and a scale-up. Defaults to 60s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s')").message("spec.autoscaler.scaleUpCooldown must be a duration such as 0s, 30s or 5m"))]
    pub scale_up_cooldown: Option<Duration>,

    /// The least time between the last scaling decision and a scale-down (Flink's
    /// scale-down.interval): scale-downs wait longer, so a short lull does not cost two
    /// rescales. Defaults to 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s')").message("spec.autoscaler.scaleDownCooldown must be a duration such as 0s, 30s or 5m"))]
    pub scale_down_cooldown: Option<Duration>,
}

impl AutoscalerSpec {
    /// Default target utilisation.
    pub const DEFAULT_TARGET_UTILIZATION: f64 = 0.7;
    /// Default boundary around the target.
    pub const DEFAULT_TARGET_UTILIZATION_BOUNDARY: f64 = 0.3;
    /// Default metrics window.
    pub const DEFAULT_METRICS_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
    /// Default stabilization interval.
    pub const DEFAULT_STABILIZATION_INTERVAL: std::time::Duration =
        std::time::Duration::from_secs(60);
    /// Default scale-up cooldown.
    pub const DEFAULT_SCALE_UP_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(60);
    /// Default scale-down cooldown.
    pub const DEFAULT_SCALE_DOWN_COOLDOWN: std::time::Duration =
        std::time::Duration::from_secs(300);

    /// The target utilisation (default 0.7).
    pub fn target_utilization(&self) -> f64 {
        self.target_utilization
            .unwrap_or(Self::DEFAULT_TARGET_UTILIZATION)
    }

    /// The boundary (default 0.3).
    pub fn boundary(&self) -> f64 {
        self.target_utilization_boundary
            .unwrap_or(Self::DEFAULT_TARGET_UTILIZATION_BOUNDARY)
    }

    /// The metrics window (default 60s).
    pub fn metrics_window(&self) -> std::time::Duration {
        duration_or(self.metrics_window, Self::DEFAULT_METRICS_WINDOW)
    }

    /// The stabilization interval (default 60s).
    pub fn stabilization_interval(&self) -> std::time::Duration {
        duration_or(
            self.stabilization_interval,
            Self::DEFAULT_STABILIZATION_INTERVAL,
        )
    }

    /// The scale-up cooldown (default 60s).
    pub fn scale_up_cooldown(&self) -> std::time::Duration {
        duration_or(self.scale_up_cooldown, Self::DEFAULT_SCALE_UP_COOLDOWN)
    }

    /// The scale-down cooldown (default 5m).
    pub fn scale_down_cooldown(&self) -> std::time::Duration {
        duration_or(self.scale_down_cooldown, Self::DEFAULT_SCALE_DOWN_COOLDOWN)
    }
}

fn duration_or(d: Option<Duration>, default: std::time::Duration) -> std::time::Duration {
    match d {
        Some(d) if !d.is_negative() => std::time::Duration::from(d),
        Some(_) => std::time::Duration::ZERO,
        None => default,
    }
}

/// Transport security of a StreamJob's cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecuritySpec {
    /// Mutual TLS between the JobManager and the TaskManagers (Flink's `security.ssl.internal.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// A bearer token on the JobManager's REST API (`security.rest.token-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_auth: Option<RestAuthSpec>,
}

/// Mutual TLS between the JobManager and the TaskManagers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Whether the control plane (gRPC) and the data plane use mutual TLS.
    #[serde(default)]
    pub enabled: bool,

    /// A Secret of type kubernetes.io/tls with the keys tls.crt, tls.key and ca.crt (the layout
    /// cert-manager writes), mounted into every JobManager and TaskManager Pod. Its certificate
    /// must be valid for client and server authentication. Unset: the operator keeps a CA for
    /// this StreamJob in the Secret `<name>-ca` and issues the certificate into `<name>-tls`,
    /// re-issuing it before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,

    /// Also serve the JobManager's REST API over HTTPS with the same certificate (Flink's
    /// `security.ssl.rest.enabled`). The operator then calls it at
    /// `https://<name>-jobmanager.<namespace>.svc:8081` and trusts the Secret's ca.crt; a
    /// certificate from `secretName` must name that host. An Ingress (spec.ingress) must then
    /// speak HTTPS to its backend.
    #[serde(default)]
    pub rest: bool,
}

/// A bearer token on the JobManager's REST API.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestAuthSpec {
    /// Whether every REST request (except the health endpoints the kubelet probes) must carry
    /// `Authorization: Bearer <token>`. The operator generates the token into the Secret
    /// `<name>-rest-token` (key `token`), mounts it into the JobManager and sends it itself.
    #[serde(default)]
    pub enabled: bool,
}

impl SecuritySpec {
    /// Whether mutual TLS is on.
    pub fn tls_enabled(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.enabled)
    }

    /// Whether the REST API is served over HTTPS (needs `tls.enabled`).
    pub fn rest_tls_enabled(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.enabled && t.rest)
    }

    /// Whether the REST API wants a token.
    pub fn rest_auth_enabled(&self) -> bool {
        self.rest_auth.as_ref().is_some_and(|r| r.enabled)
    }
}

/// Where a SQL script comes from when it is not inline (spec.job.sqlFrom).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SqlSource {
    /// The ConfigMap key holding the script, as in a container's env valueFrom.
    pub config_map_key_ref: ConfigMapKeyReference,
}

/// A key of a ConfigMap in the object's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyReference {
    /// Name of the ConfigMap.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key whose value is the script (e.g. `job.sql`).
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Reference to a Secret in the StreamJob's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
}

impl JobSpec {
    /// Whether `other` runs the same job the same way, for a StreamSessionJob: everything but
    /// `state`, the savepoint and checkpoint trigger nonces (they take a snapshot, not a new
    /// job) and the first submission's restore point (`initialSavepointPath`,
    /// `initialSavepointSnapshot`: read once, as for a StreamJob). A running session job whose
    /// deployed spec differs must be stopped and submitted again.
    pub fn same_deployment(&self, other: &JobSpec) -> bool {
        fn deployment(s: &JobSpec) -> JobSpec {
            JobSpec {
                state: DesiredJobState::default(),
                savepoint_trigger_nonce: None,
                checkpoint_trigger_nonce: None,
                initial_savepoint_path: None,
                initial_savepoint_snapshot: None,
                ..s.clone()
            }
        }
        deployment(self) == deployment(other)
    }

    /// The registered job the workers run and its arguments: `spec.job.name` and
    /// `spec.job.args`, or the built-in `sql` job with `--script=<spec.job.sql>` (one word, so
    /// a script that starts with a `--` comment is not taken for a flag).
    pub fn registered_job(&self) -> (String, Vec<String>) {
        registered_job(&self.name, &self.args, self.sql.as_deref())
    }
}

/// `name` and `args`, or the built-in `sql` job running `sql` (a StreamJob's or a session
/// job's `job` spec).
pub(crate) fn registered_job(
    name: &str,
    args: &[String],
    sql: Option<&str>,
) -> (String, Vec<String>) {
    match sql {
        Some(script) => (SQL_JOB_NAME.to_string(), vec![format!("--script={script}")]),
        None => (name.to_string(), args.to_vec()),
    }
}

impl StreamJobSpec {
    /// Default checkpoint interval when `spec.checkpointing.interval` is unset.
    pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
    /// Default maximum parallelism when `spec.job.maxParallelism` is unset.
    pub const DEFAULT_MAX_PARALLELISM: i32 = 128;
    /// Default number of savepoints kept in the history.
    pub const DEFAULT_HISTORY_MAX_COUNT: i32 = 5;
    /// Default bound on the savepoint-on-delete wait.
    pub const DEFAULT_ON_DELETE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

    /// Task slots per TaskManager (default 1).
    pub fn slots(&self) -> i32 {
        self.task_manager
            .as_ref()
            .and_then(|t| t.slots)
            .unwrap_or(1)
            .max(1)
    }

    /// Number of TaskManager pods: the explicit `spec.taskManager.replicas`, or just enough pods
    /// for `parallelism` subtasks.
    pub fn task_manager_replicas(&self) -> i32 {
        if let Some(r) = self.task_manager.as_ref().and_then(|t| t.replicas) {
            return r;
        }
        let slots = self.slots();
        let p = self.job.parallelism.max(1);
        (p + slots - 1) / slots
    }

    /// Maximum parallelism (default [`Self::DEFAULT_MAX_PARALLELISM`]); a valid spec's
    /// parallelism never exceeds it.
    pub fn max_parallelism(&self) -> i32 {
        self.job
            .max_parallelism
            .unwrap_or(Self::DEFAULT_MAX_PARALLELISM)
    }

    /// Checkpoint storage URL, if any.
    pub fn checkpoint_storage(&self) -> Option<&str> {
        self.checkpointing.as_ref()?.storage.as_deref()
    }

    /// Where savepoints are written: `spec.savepoints.directory`, else
    /// `<spec.checkpointing.storage>/savepoints`, else `None`.
    pub fn savepoint_directory(&self) -> Option<String> {
        if let Some(d) = self.savepoints.as_ref().and_then(|s| s.directory.clone()) {
            return Some(d);
        }
        self.checkpoint_storage()
            .map(|s| format!("{}/savepoints", s.trim_end_matches('/')))
    }

    /// Whether a savepoint is taken before deletion.
    pub fn savepoint_on_delete(&self) -> bool {
        self.savepoints
            .as_ref()
            .and_then(|s| s.on_delete)
            .unwrap_or(false)
    }

    /// Bound on the savepoint-on-delete wait.
    pub fn on_delete_timeout(&self) -> std::time::Duration {
        self.savepoints
            .as_ref()
            .and_then(|s| s.on_delete_timeout)
            .map(std::time::Duration::from)
            .unwrap_or(Self::DEFAULT_ON_DELETE_TIMEOUT)
    }

    /// Interval of periodic savepoints, if enabled.
    pub fn periodic_savepoint_interval(&self) -> Option<std::time::Duration> {
        self.savepoints
            .as_ref()?
            .periodic_interval
            .map(std::time::Duration::from)
    }

    /// Maximum number of savepoints kept in the history.
    pub fn history_max_count(&self) -> usize {
        self.savepoints
            .as_ref()
            .and_then(|s| s.history_max_count)
            .unwrap_or(Self::DEFAULT_HISTORY_MAX_COUNT)
            .max(1) as usize
    }

    /// The autoscaler's settings, when it is enabled.
    pub fn enabled_autoscaler(&self) -> Option<&AutoscalerSpec> {
        self.autoscaler.as_ref().filter(|a| a.enabled)
    }

    /// The range the autoscaler chooses parallelism from: spec.autoscaler.minParallelism (1)
    /// to spec.autoscaler.maxParallelism (spec.job.maxParallelism), also bounded by the slots
    /// of a fixed spec.taskManager.replicas. Never empty: a maximum below the minimum (which
    /// validation refuses) wins, since it is a hard limit of key groups or slots.
    pub fn autoscaler_bounds(&self) -> (i32, i32) {
        let a = self.autoscaler.clone().unwrap_or_default();
        let mut max = a
            .max_parallelism
            .unwrap_or_else(|| self.max_parallelism())
            .min(self.max_parallelism());
        if let Some(r) = self.task_manager.as_ref().and_then(|t| t.replicas) {
            max = max.min(r.saturating_mul(self.slots()));
        }
        let max = max.max(1);
        let min = a.min_parallelism.unwrap_or(1).clamp(1, max);
        (min, max)
    }

    /// Maximum age of savepoints kept in the history, if limited.
    pub fn history_max_age(&self) -> Option<std::time::Duration> {
        self.savepoints
            .as_ref()?
            .history_max_age
            .map(std::time::Duration::from)
    }
}
