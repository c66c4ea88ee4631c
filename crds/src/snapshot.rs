//! The StreamJobSnapshot API (`fjord.dev/v1alpha1`, kind `StreamJobSnapshot`, short name `sjs`):
//! one savepoint (or, with `spec.checkpoint`, one checkpoint) of a StreamJob or (with
//! `spec.jobReference.kind: StreamSessionJob`) of a StreamSessionJob as a Kubernetes object, like
//! the Flink Kubernetes Operator's `FlinkStateSnapshot`.
//!
//! With `spec.checkpoint` the operator takes a manual checkpoint instead (Flink's
//! `spec.checkpoint: {}`); its path stays valid only until checkpoint retention removes it,
//! and `spec.path`, `spec.directory` and `spec.disposeOnDelete` are for savepoints only.
//!
//! The operator creates one for every savepoint it takes (manual, periodic, upgrade, delete); a
//! user creates one to take a savepoint of a running StreamJob, or, with `spec.path`, to
//! register a savepoint that already exists. A new StreamJob or StreamSessionJob starts from one
//! through `spec.job.initialSavepointSnapshot`. Snapshots have no owner: they outlive the job.
//! Deleting one deletes the savepoint's files when `spec.disposeOnDelete` is true.
//!
//! `///` comments here are the user-facing schema text of `kubectl explain`.

// The CustomResource derive repeats `type_` once per printer column.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::SavepointTrigger;

/// A StreamJobSnapshot is one savepoint of a StreamJob or StreamSessionJob (or, with
/// spec.checkpoint, one checkpoint): created by the operator for every savepoint and manual
/// checkpoint it takes, or by a user to take one (or to register an existing savepoint with
/// spec.path). It outlives the job.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "fjord.dev",
    version = "v1alpha1",
    kind = "StreamJobSnapshot",
    plural = "streamjobsnapshots",
    shortname = "sjs",
    category = "fjord",
    namespaced,
    status = "StreamJobSnapshotStatus",
    derive = "PartialEq",
    doc = "A StreamJobSnapshot is one savepoint (or, with spec.checkpoint, one checkpoint) of a \
           StreamJob or StreamSessionJob, created by the operator or by a user to take one; it \
           outlives the job and can start a new one.",
    printcolumn(
        name = "Job",
        type_ = "string",
        json_path = ".spec.jobReference.name",
        description = "The StreamJob or StreamSessionJob the snapshot is of"
    ),
    printcolumn(
        name = "Kind",
        type_ = "string",
        json_path = ".spec.jobReference.kind",
        description = "StreamJob or StreamSessionJob"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "IN_PROGRESS, COMPLETED or FAILED"
    ),
    printcolumn(
        name = "Trigger",
        type_ = "string",
        json_path = ".status.triggerType",
        description = "manual, periodic, upgrade or delete"
    ),
    printcolumn(
        name = "Path",
        type_ = "string",
        json_path = ".status.path",
        description = "Location of the savepoint or checkpoint"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(
    validation = Rule::new("self.jobReference == oldSelf.jobReference && (has(self.path) == has(oldSelf.path)) && (!has(self.path) || self.path == oldSelf.path) && (has(self.directory) == has(oldSelf.directory)) && (!has(self.directory) || self.directory == oldSelf.directory) && (has(self.checkpoint) == has(oldSelf.checkpoint)) && (!has(self.checkpoint) || self.checkpoint == oldSelf.checkpoint)")
        .message("spec.jobReference, spec.path, spec.directory and spec.checkpoint of a StreamJobSnapshot cannot change; create a new StreamJobSnapshot instead (only spec.disposeOnDelete can change)")
)]
#[x_kube(
    validation = Rule::new("!has(self.checkpoint) || (!has(self.path) && !has(self.directory) && !(has(self.disposeOnDelete) && self.disposeOnDelete))")
        .message("spec.checkpoint takes a checkpoint, which lives in the job's checkpoint storage and is removed by its retention: spec.path, spec.directory and spec.disposeOnDelete are for savepoints; remove them or remove spec.checkpoint")
)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobSnapshotSpec {
    /// The StreamJob or StreamSessionJob (in the same namespace) the snapshot is of.
    pub job_reference: JobReference,

    /// A savepoint that already exists, to register instead of taking a new one. Unset: the
    /// operator takes a savepoint of the running job when this object is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('^(s3|hdfs|file|memory)://.+')").message("spec.path must be a URL with scheme s3://, hdfs://, file:// or memory://"))]
    pub path: Option<String>,

    /// Where a new savepoint is written. Defaults to the StreamJob's savepoint directory (a
    /// session job's: its StreamCluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("self.matches('^(s3|hdfs|file|memory)://.+')").message("spec.directory must be a URL with scheme s3://, hdfs://, file:// or memory://"))]
    pub directory: Option<String>,

    /// Delete the savepoint's files when this object is deleted (through the StreamJob's
    /// JobManager, or a session job's StreamCluster's, which must be running then; otherwise
    /// the files are kept and a Warning Event names them). Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dispose_on_delete: bool,

    /// Take a checkpoint instead of a savepoint (the Flink operator's `checkpoint: {}`): the
    /// job's JobManager takes a manual checkpoint into its checkpoint storage, and
    /// status.path names it until checkpoint retention removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointSnapshotSpec>,
}

/// A checkpoint snapshot (`spec.checkpoint`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointSnapshotSpec {
    /// CONFIGURED (default: what periodic checkpoints take), FULL (self-contained, even with
    /// an incremental state backend) or INCREMENTAL (where the state backend supports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_type: Option<CheckpointType>,
}

/// The kind of a manual checkpoint (Flink's `checkpointType`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointType {
    /// What periodic checkpoints take.
    #[default]
    Configured,
    /// A self-contained checkpoint.
    Full,
    /// Incremental where the state backend supports it, else full.
    Incremental,
}

/// Reference to the job a snapshot is of: a StreamJob (the default) or a StreamSessionJob, in
/// the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobReference {
    /// `StreamJob` (the default) or `StreamSessionJob` (the Flink operator's
    /// `jobReference.kind`). A session job's snapshot is taken and disposed of through its
    /// StreamCluster's JobManager.
    #[serde(default)]
    pub kind: JobKind,

    /// Name of the StreamJob or StreamSessionJob.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

impl JobReference {
    /// A reference to the StreamJob `name`.
    pub fn stream_job(name: impl Into<String>) -> Self {
        JobReference {
            kind: JobKind::StreamJob,
            name: name.into(),
        }
    }

    /// A reference to the StreamSessionJob `name`.
    pub fn session_job(name: impl Into<String>) -> Self {
        JobReference {
            kind: JobKind::StreamSessionJob,
            name: name.into(),
        }
    }
}

/// The kind of job a snapshot refers to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum JobKind {
    /// A StreamJob (its own JobManager).
    #[default]
    StreamJob,
    /// A StreamSessionJob (its StreamCluster's JobManager).
    StreamSessionJob,
}

impl JobKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StreamJob => "StreamJob",
            Self::StreamSessionJob => "StreamSessionJob",
        }
    }
}

/// Observed state of a StreamJobSnapshot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamJobSnapshotStatus {
    /// IN_PROGRESS, COMPLETED or FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<SnapshotState>,

    /// Why the savepoint was taken: manual (a user created this object, or
    /// spec.job.savepointTriggerNonce changed), periodic, upgrade or delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_type: Option<SavepointTrigger>,

    /// The savepoint trigger ID sent to the JobManager (recorded before it is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,

    /// The checkpoint's id, for a checkpoint snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<u64>,

    /// ID of the job the savepoint was taken of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,

    /// For a StreamSessionJob's snapshot: the StreamCluster whose JobManager took it. Deleting
    /// the snapshot with spec.disposeOnDelete disposes of the files through that cluster, also
    /// after the StreamSessionJob is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,

    /// Location of the completed savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// When the savepoint was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<Time>,

    /// When the savepoint completed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_at: Option<Time>,

    /// Why it failed, with what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// State of a snapshot.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SnapshotState {
    /// The savepoint is being taken.
    InProgress,
    /// The savepoint completed; status.path holds it.
    Completed,
    /// The savepoint failed; status.error says why.
    Failed,
}

impl StreamJobSnapshot {
    /// The completed savepoint's path, if it completed.
    pub fn completed_path(&self) -> Option<&str> {
        let status = self.status.as_ref()?;
        (status.state == Some(SnapshotState::Completed))
            .then_some(status.path.as_deref())
            .flatten()
    }
}
