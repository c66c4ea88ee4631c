//! StreamJobSnapshots: savepoints and checkpoints as Kubernetes objects (the Flink operator's
//! `FlinkStateSnapshot`).
//!
//! - [`record`]: the StreamJob controller records every savepoint the lifecycle took (manual,
//!   periodic, upgrade, delete) as a snapshot named `<streamjob>-<trigger id>`, COMPLETED with
//!   its path or FAILED with the JobManager's message. Snapshots carry no owner reference, so
//!   they outlive the StreamJob; [`forget_disposed`] deletes the ones whose savepoint the
//!   StreamJob's history retention disposed of.
//! - [`reconcile`]: the snapshot controller. A snapshot a user creates takes a savepoint of the
//!   running StreamJob (trigger ID recorded in its status before it is sent, as the StreamJob's
//!   write-ahead status does), or registers an existing one (`spec.path`). Deleting a snapshot
//!   with `spec.disposeOnDelete` disposes of its files through the StreamJob's JobManager
//!   (finalizer `fjord.dev/dispose-on-delete`); if no JobManager answers within
//!   [`DISPOSE_GRACE`], the deletion goes on and a Warning Event names the files kept.
//! - [`resolve_initial`]: `spec.job.initialSavepointSnapshot` to a savepoint path.
//! - [`request`]: the StreamSessionJob controller asks for a snapshot of a session job when a
//!   trigger nonce changes or a periodic savepoint is due (a user-style snapshot the controller
//!   here then takes, trigger type from [`TRIGGER_ANNOTATION`]); it records the session job's
//!   upgrade and delete savepoints through [`record_for`].
//!
//! `spec.jobReference.kind` says whose snapshot it is: a StreamJob's is taken and disposed of
//! through the StreamJob's JobManager; a StreamSessionJob's through its StreamCluster's
//! JobManager, for the job ID the session job's status records (`Target`).
//!
//! A snapshot with `spec.checkpoint` (created by a user, or recorded for a
//! `spec.job.checkpointTriggerNonce` checkpoint) is a manual checkpoint instead: taken through
//! the JobManager's checkpoint trigger, COMPLETED with the checkpoint's id and path.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fjord_crds::{
    FieldError, JobKind, JobReference, JobState, LifecycleState, SavepointTrigger, SnapshotState,
    StreamCluster, StreamJob, StreamJobSnapshot, StreamJobSnapshotSpec, StreamJobSnapshotStatus,
    StreamSessionJob,
};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action as ControllerAction, Controller};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::apply::write_status;
use crate::controller::Context;
use crate::events;
use crate::jobmanager::{CheckpointStatus, JobManagerApi, JobManagerEndpoint, SavepointStatus};
use crate::lifecycle::SnapshotNote;
use crate::resources;
use crate::{Error, FIELD_MANAGER};

/// The finalizer on snapshots whose files are disposed of on deletion.
pub const DISPOSE_FINALIZER: &str = "fjord.dev/dispose-on-delete";

/// The annotation on snapshots the operator recorded itself (their status is written right
/// after they are created; the snapshot controller never takes a savepoint for them).
pub const RECORDED_ANNOTATION: &str = "fjord.dev/recorded-by-operator";

/// The annotation on snapshots the operator asks the snapshot controller to take for a
/// periodic savepoint of a StreamSessionJob (value `periodic`): their trigger type. Without it a
/// snapshot to take is a manual one.
pub const TRIGGER_ANNOTATION: &str = "fjord.dev/trigger";

/// The label naming the StreamSessionJob of the snapshots the operator creates for it.
pub const SESSION_JOB_LABEL: &str = "fjord.dev/streamsessionjob";

/// How long the deletion of a snapshot waits for a JobManager to dispose of its files.
pub const DISPOSE_GRACE: Duration = Duration::from_secs(120);

/// How long a user's savepoint may take (JobManager unreachable included) before it is FAILED.
pub const SAVEPOINT_TIMEOUT: Duration = Duration::from_secs(600);

/// Requeue interval while a savepoint is in flight or files wait to be disposed of.
const POLL: Duration = Duration::from_secs(2);

/// The name of the snapshot the operator records for a savepoint of `streamjob` taken under
/// `trigger_id` (trigger IDs are lowercase letters, digits and `-`, so the name is valid).
pub fn snapshot_name(streamjob: &str, trigger_id: &str) -> String {
    let room = 253usize.saturating_sub(trigger_id.len() + 1);
    let base: String = streamjob.chars().take(room).collect();
    format!("{}-{trigger_id}", base.trim_end_matches('-'))
}

/// The trigger ID of a savepoint a user asked for by creating `snapshot`: unique per object.
pub fn user_trigger_id(snapshot: &StreamJobSnapshot) -> String {
    let uid: String = snapshot
        .metadata
        .uid
        .as_deref()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect();
    format!("snapshot-{uid}")
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn elapsed(since: &Time) -> Duration {
    let ms = Timestamp::now().as_millisecond() - since.0.as_millisecond();
    Duration::from_millis(ms.max(0) as u64)
}

/// The label that names the job of the snapshots the operator creates for a job of `kind`.
pub fn job_label(kind: JobKind) -> &'static str {
    match kind {
        JobKind::StreamJob => resources::STREAMJOB_LABEL,
        JobKind::StreamSessionJob => SESSION_JOB_LABEL,
    }
}

/// A snapshot object of `job` named `name`, labelled with its job, without status.
fn snapshot_object(
    ns: &str,
    name: &str,
    job: &JobReference,
    checkpoint: bool,
    recorded: bool,
) -> StreamJobSnapshot {
    StreamJobSnapshot {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(ns.to_string()),
            labels: Some(BTreeMap::from([
                (job_label(job.kind).to_string(), job.name.clone()),
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    FIELD_MANAGER.to_string(),
                ),
            ])),
            annotations: recorded
                .then(|| BTreeMap::from([(RECORDED_ANNOTATION.to_string(), "true".to_string())])),
            ..Default::default()
        },
        spec: StreamJobSnapshotSpec {
            job_reference: job.clone(),
            path: None,
            directory: None,
            dispose_on_delete: false,
            checkpoint: checkpoint.then(Default::default),
        },
        status: None,
    }
}

/// Create `object` unless it exists (idempotent).
async fn create(api: &Api<StreamJobSnapshot>, object: &StreamJobSnapshot) -> Result<(), Error> {
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(format!(
            "creating StreamJobSnapshot {}",
            object.name_any()
        ))(e)),
    }
}

/// Record a savepoint the operator took of `streamjob` as a StreamJobSnapshot (see
/// [`record_for`]).
///
/// # Errors
/// [`Error::Kube`] if the object cannot be created or its status written.
pub async fn record(
    client: &kube::Client,
    streamjob: &StreamJob,
    note: &SnapshotNote,
) -> Result<String, Error> {
    let ns = streamjob
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let job = JobReference::stream_job(streamjob.name_any());
    let name = snapshot_name(&job.name, &note.trigger_id);
    record_for(client, &ns, &job, &name, None, note).await?;
    Ok(name)
}

/// Record a savepoint (or checkpoint) the operator took of `job` in `ns` as the
/// StreamJobSnapshot `name`: created if missing (no owner reference: it outlives the job),
/// then its status set, COMPLETED with `note.path` or FAILED with `note.error`, with the
/// StreamCluster `cluster` of a session job. Idempotent.
///
/// # Errors
/// [`Error::Kube`] if the object cannot be created or its status written.
pub async fn record_for(
    client: &kube::Client,
    ns: &str,
    job: &JobReference,
    name: &str,
    cluster: Option<&str>,
    note: &SnapshotNote,
) -> Result<(), Error> {
    let api: Api<StreamJobSnapshot> = Api::namespaced(client.clone(), ns);
    create(&api, &snapshot_object(ns, name, job, note.checkpoint, true)).await?;
    let status = StreamJobSnapshotStatus {
        state: Some(if note.path.is_some() {
            SnapshotState::Completed
        } else {
            SnapshotState::Failed
        }),
        trigger_type: Some(note.trigger),
        trigger_id: Some(note.trigger_id.clone()),
        checkpoint_id: note.checkpoint_id,
        job_id: note.job_id.clone(),
        cluster_name: cluster.map(str::to_string),
        path: note.path.clone(),
        triggered_at: None,
        result_at: Some(now()),
        error: note.error.clone(),
    };
    write_status(&api, name, "StreamJobSnapshot", &status).await
}

/// The object [`request`] creates: a snapshot to take, annotated with its `trigger` unless it
/// is a manual one.
fn requested_object(
    ns: &str,
    name: &str,
    job: &JobReference,
    checkpoint: bool,
    trigger: SavepointTrigger,
) -> StreamJobSnapshot {
    let mut object = snapshot_object(ns, name, job, checkpoint, false);
    if trigger == SavepointTrigger::Periodic {
        object.metadata.annotations = Some(BTreeMap::from([(
            TRIGGER_ANNOTATION.to_string(),
            "periodic".to_string(),
        )]));
    }
    object
}

/// Why the snapshot controller takes `snapshot`: periodic when the operator asked for it so
/// ([`TRIGGER_ANNOTATION`]), else manual (a user's, or a trigger nonce's).
pub fn trigger_of(snapshot: &StreamJobSnapshot) -> SavepointTrigger {
    match snapshot
        .annotations()
        .get(TRIGGER_ANNOTATION)
        .map(String::as_str)
    {
        Some("periodic") => SavepointTrigger::Periodic,
        _ => SavepointTrigger::Manual,
    }
}

/// Ask for a savepoint (or, with `checkpoint`, a checkpoint) of `job` in `ns` by creating the
/// StreamJobSnapshot `name` without status, as a user would, with trigger type `trigger`
/// (manual or periodic): the snapshot controller takes it and reports it in the object's
/// status. Idempotent: an existing `name` is left as it is.
///
/// # Errors
/// [`Error::Kube`] if the object cannot be created.
pub async fn request(
    client: &kube::Client,
    ns: &str,
    job: &JobReference,
    name: &str,
    checkpoint: bool,
    trigger: SavepointTrigger,
) -> Result<(), Error> {
    let api: Api<StreamJobSnapshot> = Api::namespaced(client.clone(), ns);
    create(&api, &requested_object(ns, name, job, checkpoint, trigger)).await
}

/// Delete the snapshots the operator recorded for `streamjob` whose savepoint is one of
/// `paths` (disposed of by the history retention, so they would point at nothing).
///
/// # Errors
/// [`Error::Kube`] if the snapshots cannot be listed or deleted.
pub async fn forget_disposed(
    client: &kube::Client,
    ns: &str,
    streamjob: &str,
    paths: &[String],
) -> Result<(), Error> {
    let api: Api<StreamJobSnapshot> = Api::namespaced(client.clone(), ns);
    let list = api
        .list(&ListParams::default().labels(&format!("{}={streamjob}", resources::STREAMJOB_LABEL)))
        .await
        .map_err(Error::kube("listing the StreamJob's snapshots"))?;
    for s in list.items {
        let recorded = s.annotations().contains_key(RECORDED_ANNOTATION);
        if recorded
            && s.completed_path()
                .is_some_and(|p| paths.iter().any(|d| d == p))
        {
            match api.delete(&s.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::kube("deleting a disposed snapshot")(e)),
            }
        }
    }
    Ok(())
}

/// The savepoint path of the StreamJobSnapshot `name` in `ns`, for
/// `spec.job.initialSavepointSnapshot`.
///
/// # Errors
/// A [`FieldError`] on `spec.job.initialSavepointSnapshot` saying why it cannot be used yet
/// (missing, in progress, failed); the StreamJob is then not deployed until it can.
pub async fn resolve_initial(
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Result<String, FieldError> {
    let field = "spec.job.initialSavepointSnapshot".to_string();
    let api: Api<StreamJobSnapshot> = Api::namespaced(client.clone(), ns);
    let snapshot = api.get_opt(name).await.map_err(|e| FieldError {
        field: field.clone(),
        message: format!("cannot read StreamJobSnapshot {name}: {e}"),
    })?;
    let Some(snapshot) = snapshot else {
        return Err(FieldError {
            field,
            message: format!(
                "StreamJobSnapshot {name} does not exist in namespace {ns}; create it or name another (kubectl get sjs)"
            ),
        });
    };
    if let Some(path) = snapshot.completed_path() {
        return Ok(path.to_string());
    }
    let status = snapshot.status.unwrap_or_default();
    Err(FieldError {
        field,
        message: match status.state {
            Some(SnapshotState::Failed) => format!(
                "StreamJobSnapshot {name} FAILED ({}); name a COMPLETED snapshot",
                status.error.unwrap_or_default()
            ),
            _ => format!(
                "StreamJobSnapshot {name} is not COMPLETED yet; the deployment waits for it"
            ),
        },
    })
}

async fn set_finalizer(
    api: &Api<StreamJobSnapshot>,
    snapshot: &StreamJobSnapshot,
    present: bool,
) -> Result<(), Error> {
    crate::finalizers::set(api, snapshot, DISPOSE_FINALIZER, present).await
}

/// Run the StreamJobSnapshot controller for the given namespaces (all if empty) until a
/// shutdown signal.
pub async fn run<J: JobManagerApi>(ctx: Arc<Context<J>>, namespaces: Vec<String>) {
    let apis: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let controllers = apis.into_iter().map(|ns| {
        let ctx = ctx.clone();
        async move {
            let api: Api<StreamJobSnapshot> = match &ns {
                Some(ns) => Api::namespaced(ctx.client.clone(), ns),
                None => Api::all(ctx.client.clone()),
            };
            Controller::new(api, watcher::Config::default())
                .shutdown_on_signal()
                .run(reconcile, error_policy, ctx)
                .for_each(|r| async move {
                    if let Err(e) = r {
                        debug!(error = %e, "snapshot controller");
                    }
                })
                .await;
        }
    });
    futures::future::join_all(controllers).await;
}

/// Retry a failed pass after a short delay.
pub fn error_policy<J: JobManagerApi>(
    _s: Arc<StreamJobSnapshot>,
    error: &Error,
    _ctx: Arc<Context<J>>,
) -> ControllerAction {
    warn!(error = %error, "snapshot reconcile failed");
    ControllerAction::requeue(Duration::from_secs(5))
}

/// The job a snapshot refers to, as the snapshot controller reaches it: a StreamJob through
/// its own JobManager, a StreamSessionJob through its StreamCluster's.
struct Target {
    /// The JobManager that takes, follows and disposes of the snapshot.
    endpoint: JobManagerEndpoint,
    /// The ID of the running job, or why the job is not running.
    running: Result<String, String>,
    /// Where a savepoint goes unless spec.directory says otherwise.
    savepoint_directory: Option<String>,
    /// What to set when there is no savepoint directory.
    directory_hint: String,
    /// A session job's StreamCluster (recorded in the snapshot's status).
    cluster: Option<String>,
}

/// The job `snapshot` refers to, or why it cannot be reached (it, or a session job's
/// StreamCluster, does not exist).
///
/// # Errors
/// [`Error::Kube`] if the objects cannot be read.
async fn target<J>(
    ctx: &Context<J>,
    ns: &str,
    snapshot: &StreamJobSnapshot,
) -> Result<Result<Target, String>, Error> {
    let job = &snapshot.spec.job_reference;
    match job.kind {
        JobKind::StreamJob => {
            let api: Api<StreamJob> = Api::namespaced(ctx.client.clone(), ns);
            let sj = api
                .get_opt(&job.name)
                .await
                .map_err(Error::kube("reading the snapshot's StreamJob"))?;
            let Some(sj) = sj else {
                return Ok(Err(format!(
                    "StreamJob {} does not exist in namespace {ns}",
                    job.name
                )));
            };
            let endpoint = crate::security::endpoint(&ctx.client, &sj).await?;
            let status = sj.status.clone().unwrap_or_default();
            let running = match &status.job_id {
                Some(id)
                    if status.lifecycle_state == LifecycleState::Running
                        && status.job_state == Some(JobState::Running) =>
                {
                    Ok(id.clone())
                }
                _ => Err(format!(
                    "StreamJob {} is not running (lifecycle state {})",
                    job.name,
                    status.lifecycle_state.as_str()
                )),
            };
            Ok(Ok(Target {
                endpoint,
                running,
                savepoint_directory: sj.spec.savepoint_directory(),
                directory_hint: format!(
                    "StreamJob {} has no savepoint directory; set spec.directory here or spec.savepoints.directory on the StreamJob",
                    job.name
                ),
                cluster: None,
            }))
        }
        JobKind::StreamSessionJob => {
            let api: Api<StreamSessionJob> = Api::namespaced(ctx.client.clone(), ns);
            let ssj = api
                .get_opt(&job.name)
                .await
                .map_err(Error::kube("reading the snapshot's StreamSessionJob"))?;
            // The cluster that took the snapshot, if it was taken; else the job's.
            let recorded = snapshot
                .status
                .as_ref()
                .and_then(|s| s.cluster_name.clone());
            let Some(cluster_name) =
                recorded.or_else(|| ssj.as_ref().map(|j| j.spec.cluster_name.clone()))
            else {
                return Ok(Err(format!(
                    "StreamSessionJob {} does not exist in namespace {ns}",
                    job.name
                )));
            };
            let clusters: Api<StreamCluster> = Api::namespaced(ctx.client.clone(), ns);
            let cluster = clusters
                .get_opt(&cluster_name)
                .await
                .map_err(Error::kube("reading the session job's StreamCluster"))?;
            let Some(cluster) = cluster else {
                return Ok(Err(format!(
                    "StreamCluster {cluster_name} of StreamSessionJob {} does not exist in namespace {ns}",
                    job.name
                )));
            };
            let endpoint = crate::session::secured_cluster_endpoint(&ctx.client, &cluster).await?;
            Ok(Ok(session_target(
                &job.name,
                ssj.as_ref(),
                &cluster,
                ns,
                endpoint,
            )))
        }
    }
}

/// A StreamSessionJob's [`Target`]: the JobManager of `cluster` (its StreamCluster, or the
/// one that took the snapshot), the job ID the session job's status records (while it runs
/// on that cluster) and the cluster's savepoint directory. `ssj` is `None` once the session
/// job is gone: files can still be disposed of through the cluster.
fn session_target(
    name: &str,
    ssj: Option<&StreamSessionJob>,
    cluster: &StreamCluster,
    ns: &str,
    endpoint: JobManagerEndpoint,
) -> Target {
    let cluster_name = cluster.name_any();
    let running = match ssj {
        None => Err(format!(
            "StreamSessionJob {name} does not exist in namespace {ns}"
        )),
        Some(ssj) if ssj.spec.cluster_name != cluster_name => Err(format!(
            "StreamSessionJob {name} runs on StreamCluster {}, not on {cluster_name}",
            ssj.spec.cluster_name
        )),
        Some(ssj) => {
            let status = ssj.status.clone().unwrap_or_default();
            match &status.job_id {
                Some(id)
                    if status.lifecycle_state.as_deref() == Some("Running")
                        && status.job_state.as_deref()
                            == Some(fjord_client::api::JobState::Running.as_str()) =>
                {
                    Ok(id.clone())
                }
                _ => Err(format!(
                    "StreamSessionJob {name} is not running (lifecycle state {})",
                    status.lifecycle_state.as_deref().unwrap_or("Pending")
                )),
            }
        }
    };
    Target {
        endpoint,
        running,
        savepoint_directory: crate::session::cluster_pod_spec(cluster)
            .ok()
            .and_then(|spec| spec.savepoint_directory()),
        directory_hint: format!(
            "StreamCluster {cluster_name} has no savepoint directory; set spec.directory here or spec.savepointDirectory (or spec.checkpointing.storage) on the StreamCluster"
        ),
        cluster: Some(cluster_name),
    }
}

/// Ends a snapshot: writes its terminal `status` and publishes the Event that goes with it
/// (`SnapshotCompleted`, or a `SnapshotFailed` Warning), then waits for the next change.
async fn conclude<J>(
    ctx: &Context<J>,
    api: &Api<StreamJobSnapshot>,
    snapshot: &StreamJobSnapshot,
    status: &StreamJobSnapshotStatus,
    note: String,
) -> Result<ControllerAction, Error> {
    write_status(api, &snapshot.name_any(), "StreamJobSnapshot", status).await?;
    let failed = status.state == Some(SnapshotState::Failed);
    let reason = if failed {
        "SnapshotFailed"
    } else {
        "SnapshotCompleted"
    };
    publish(ctx, snapshot, failed, reason, note).await;
    Ok(ControllerAction::await_change())
}

async fn publish<J>(
    ctx: &Context<J>,
    s: &StreamJobSnapshot,
    warning: bool,
    reason: &str,
    note: String,
) {
    let kind = if warning {
        events::Kind::Warning
    } else {
        events::Kind::Normal
    };
    if let Err(e) = ctx
        .events
        .publish(&s.object_ref(&()), kind, reason, "Snapshot", &note)
        .await
    {
        warn!(error = %e, reason, "could not publish an Event");
    }
}

/// Reconcile one StreamJobSnapshot: take the savepoint a user asked for, follow it, and
/// dispose of the files on deletion when asked to.
///
/// # Errors
/// Kubernetes API failures; the pass is retried.
pub async fn reconcile<J: JobManagerApi>(
    snapshot: Arc<StreamJobSnapshot>,
    ctx: Arc<Context<J>>,
) -> Result<ControllerAction, Error> {
    let ns = snapshot
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let api: Api<StreamJobSnapshot> = Api::namespaced(ctx.client.clone(), &ns);
    let has_finalizer = snapshot.finalizers().iter().any(|f| f == DISPOSE_FINALIZER);
    if snapshot.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(ControllerAction::await_change());
        }
        return deleting(&snapshot, &ctx, &api, &ns).await;
    }
    if snapshot.spec.dispose_on_delete != has_finalizer {
        set_finalizer(&api, &snapshot, snapshot.spec.dispose_on_delete).await?;
    }
    let status = snapshot.status.clone().unwrap_or_default();
    match status.state {
        Some(SnapshotState::Completed | SnapshotState::Failed) => {
            Ok(ControllerAction::await_change())
        }
        // Recorded by the StreamJob controller, whose status write follows the create.
        None if snapshot.annotations().contains_key(RECORDED_ANNOTATION) => {
            Ok(ControllerAction::requeue(POLL))
        }
        None => start(&snapshot, &ctx, &api, &ns).await,
        Some(SnapshotState::InProgress) => follow(&snapshot, &ctx, &api, &ns, status).await,
    }
}

fn failed(trigger: SavepointTrigger, message: String) -> StreamJobSnapshotStatus {
    StreamJobSnapshotStatus {
        state: Some(SnapshotState::Failed),
        trigger_type: Some(trigger),
        result_at: Some(now()),
        error: Some(message),
        ..Default::default()
    }
}

/// A new snapshot: register `spec.path`, or take a savepoint of the running StreamJob.
async fn start<J: JobManagerApi>(
    snapshot: &StreamJobSnapshot,
    ctx: &Context<J>,
    api: &Api<StreamJobSnapshot>,
    ns: &str,
) -> Result<ControllerAction, Error> {
    let name = snapshot.name_any();
    if let Some(path) = &snapshot.spec.path {
        let status = StreamJobSnapshotStatus {
            state: Some(SnapshotState::Completed),
            trigger_type: Some(SavepointTrigger::Manual),
            path: Some(path.clone()),
            result_at: Some(now()),
            ..Default::default()
        };
        write_status(api, &name, "StreamJobSnapshot", &status).await?;
        return Ok(ControllerAction::await_change());
    }
    let found = target(ctx, ns, snapshot).await?;
    let ready = found.and_then(|t| t.running.clone().map(|job_id| (t, job_id)));
    let (target, job_id) = match ready {
        Ok(ready) => ready,
        Err(why) => {
            let message = format!(
                "{why}; a {} needs a running job. Delete this StreamJobSnapshot and create it again once the job runs",
                what(snapshot)
            );
            let status = failed(trigger_of(snapshot), message.clone());
            return conclude(ctx, api, snapshot, &status, message).await;
        }
    };
    let directory = snapshot
        .spec
        .directory
        .clone()
        .or_else(|| target.savepoint_directory.clone());
    if directory.is_none() && snapshot.spec.checkpoint.is_none() {
        let message = target.directory_hint.clone();
        let status = failed(trigger_of(snapshot), message.clone());
        return conclude(ctx, api, snapshot, &status, message).await;
    }
    let trigger_id = user_trigger_id(snapshot);
    // Write-ahead: the trigger ID is recorded before the JobManager hears of it.
    let status = StreamJobSnapshotStatus {
        state: Some(SnapshotState::InProgress),
        trigger_type: Some(trigger_of(snapshot)),
        trigger_id: Some(trigger_id.clone()),
        job_id: Some(job_id.clone()),
        cluster_name: target.cluster.clone(),
        triggered_at: Some(now()),
        ..Default::default()
    };
    write_status(api, &name, "StreamJobSnapshot", &status).await?;
    send(
        snapshot,
        ctx,
        api,
        &target.endpoint,
        &job_id,
        &trigger_id,
        directory.as_deref(),
        status,
    )
    .await
}

/// What the snapshot takes: "checkpoint" or "savepoint".
fn what(snapshot: &StreamJobSnapshot) -> &'static str {
    if snapshot.spec.checkpoint.is_some() {
        "checkpoint"
    } else {
        "savepoint"
    }
}

/// Send the savepoint (or checkpoint) trigger; a refusal (a savepoint or rescale already in
/// progress, the job stopped) fails the snapshot with the JobManager's words.
#[allow(clippy::too_many_arguments)]
async fn send<J: JobManagerApi>(
    snapshot: &StreamJobSnapshot,
    ctx: &Context<J>,
    api: &Api<StreamJobSnapshot>,
    endpoint: &JobManagerEndpoint,
    job_id: &str,
    trigger_id: &str,
    directory: Option<&str>,
    status: StreamJobSnapshotStatus,
) -> Result<ControllerAction, Error> {
    let what = what(snapshot);
    let sent = match (&snapshot.spec.checkpoint, directory) {
        (Some(c), _) => {
            ctx.jobmanager
                .trigger_checkpoint(
                    endpoint,
                    job_id,
                    trigger_id,
                    c.checkpoint_type.unwrap_or_default(),
                )
                .await
        }
        (None, Some(directory)) => {
            ctx.jobmanager
                .trigger_savepoint(endpoint, job_id, trigger_id, directory)
                .await
        }
        // The caller resolved the directory of a savepoint.
        (None, None) => return Ok(ControllerAction::requeue(POLL)),
    };
    match sent {
        Ok(()) => {
            info!(snapshot = %snapshot.name_any(), trigger_id, what, "triggered");
            Ok(ControllerAction::requeue(POLL))
        }
        Err(e @ Error::JobManagerApi { .. }) => {
            let message = format!("the JobManager refused the {what}: {e}");
            let mut s = failed(trigger_of(snapshot), message.clone());
            s.trigger_id = status.trigger_id;
            s.job_id = status.job_id;
            s.cluster_name = status.cluster_name;
            s.triggered_at = status.triggered_at;
            conclude(ctx, api, snapshot, &s, message).await
        }
        // Unreachable: the next pass asks for the trigger's status and sends it again.
        Err(e) => {
            debug!(error = %e, what, "trigger not delivered; will retry");
            Ok(ControllerAction::requeue(POLL))
        }
    }
}

/// What the JobManager says about a snapshot's trigger, savepoint or checkpoint alike.
enum Outcome {
    Unknown,
    InProgress,
    Completed { path: String, id: Option<u64> },
    Failed { message: String },
}

impl From<SavepointStatus> for Outcome {
    fn from(s: SavepointStatus) -> Self {
        match s {
            SavepointStatus::Unknown => Outcome::Unknown,
            SavepointStatus::InProgress => Outcome::InProgress,
            SavepointStatus::Completed { path } => Outcome::Completed { path, id: None },
            SavepointStatus::Failed { message } => Outcome::Failed { message },
        }
    }
}

impl From<CheckpointStatus> for Outcome {
    fn from(s: CheckpointStatus) -> Self {
        match s {
            CheckpointStatus::Unknown => Outcome::Unknown,
            CheckpointStatus::InProgress => Outcome::InProgress,
            CheckpointStatus::Completed { id, path } => Outcome::Completed { path, id: Some(id) },
            CheckpointStatus::Failed { message } => Outcome::Failed { message },
        }
    }
}

/// A savepoint or checkpoint in flight: follow it to COMPLETED or FAILED.
async fn follow<J: JobManagerApi>(
    snapshot: &StreamJobSnapshot,
    ctx: &Context<J>,
    api: &Api<StreamJobSnapshot>,
    ns: &str,
    status: StreamJobSnapshotStatus,
) -> Result<ControllerAction, Error> {
    let name = snapshot.name_any();
    let (Some(trigger_id), Some(job_id)) = (status.trigger_id.clone(), status.job_id.clone())
    else {
        let s = failed(
            trigger_of(snapshot),
            "the status lost its trigger ID; create a new StreamJobSnapshot".into(),
        );
        write_status(api, &name, "StreamJobSnapshot", &s).await?;
        return Ok(ControllerAction::await_change());
    };
    let timed_out = status
        .triggered_at
        .as_ref()
        .is_none_or(|t| elapsed(t) > SAVEPOINT_TIMEOUT);
    let found = target(ctx, ns, snapshot).await?.ok();
    let what = what(snapshot);
    let answer = match &found {
        Some(t) if snapshot.spec.checkpoint.is_some() => Some(
            ctx.jobmanager
                .checkpoint_status(&t.endpoint, &job_id, &trigger_id)
                .await
                .map(Outcome::from),
        ),
        Some(t) => Some(
            ctx.jobmanager
                .savepoint_status(&t.endpoint, &job_id, &trigger_id)
                .await
                .map(Outcome::from),
        ),
        None => None,
    };
    let mut next = status.clone();
    match answer {
        Some(Ok(Outcome::Completed { path, id })) => {
            next.state = Some(SnapshotState::Completed);
            next.path = Some(path.clone());
            next.checkpoint_id = id;
            next.result_at = Some(now());
            conclude(
                ctx,
                api,
                snapshot,
                &next,
                format!("{what} completed: {path}"),
            )
            .await
        }
        Some(Ok(Outcome::Failed { message })) => {
            next.state = Some(SnapshotState::Failed);
            next.error = Some(message.clone());
            next.result_at = Some(now());
            conclude(
                ctx,
                api,
                snapshot,
                &next,
                format!("{what} failed: {message}"),
            )
            .await
        }
        _ if timed_out => {
            let message = format!(
                "the {what} did not complete within {}s (the job's JobManager did not report it); create a new StreamJobSnapshot to try again",
                SAVEPOINT_TIMEOUT.as_secs()
            );
            next.state = Some(SnapshotState::Failed);
            next.error = Some(message.clone());
            next.result_at = Some(now());
            conclude(ctx, api, snapshot, &next, message).await
        }
        // Recorded but never received (operator restart, JobManager replaced): send again.
        Some(Ok(Outcome::Unknown)) => {
            let Some(target) = found else {
                return Ok(ControllerAction::requeue(POLL));
            };
            let directory = snapshot
                .spec
                .directory
                .clone()
                .or(target.savepoint_directory);
            send(
                snapshot,
                ctx,
                api,
                &target.endpoint,
                &job_id,
                &trigger_id,
                directory.as_deref(),
                status,
            )
            .await
        }
        _ => Ok(ControllerAction::requeue(POLL)),
    }
}

/// A snapshot being deleted with the dispose finalizer: dispose of its files, bounded.
async fn deleting<J: JobManagerApi>(
    snapshot: &StreamJobSnapshot,
    ctx: &Context<J>,
    api: &Api<StreamJobSnapshot>,
    ns: &str,
) -> Result<ControllerAction, Error> {
    let Some(path) = snapshot.completed_path().map(str::to_string) else {
        set_finalizer(api, snapshot, false).await?;
        return Ok(ControllerAction::await_change());
    };
    let failure = match target(ctx, ns, snapshot).await? {
        Ok(t) => match ctx.jobmanager.dispose_savepoint(&t.endpoint, &path).await {
            Ok(()) => None,
            Err(e) => Some(e.to_string()),
        },
        Err(why) => Some(format!("{why}, so no JobManager can reach the storage")),
    };
    match failure {
        None => {
            publish(
                ctx,
                snapshot,
                false,
                "SnapshotDisposed",
                format!("disposed of savepoint {path}"),
            )
            .await;
            set_finalizer(api, snapshot, false).await?;
            Ok(ControllerAction::await_change())
        }
        Some(why) => {
            let since = snapshot
                .metadata
                .deletion_timestamp
                .clone()
                .unwrap_or_else(now);
            if elapsed(&since) < DISPOSE_GRACE {
                return Ok(ControllerAction::requeue(POLL));
            }
            publish(
                ctx,
                snapshot,
                true,
                "SnapshotNotDisposed",
                format!(
                    "the files of savepoint {path} were kept: {why}; delete them from the storage yourself"
                ),
            )
            .await;
            set_finalizer(api, snapshot, false).await?;
            Ok(ControllerAction::await_change())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_stable() {
        assert_eq!(
            snapshot_name("counting", "upgrade-2-1733150000000"),
            "counting-upgrade-2-1733150000000"
        );
        let long = "a".repeat(253);
        let n = snapshot_name(&long, "manual-1-1");
        assert!(n.len() <= 253, "{}", n.len());
        assert!(n.ends_with("-manual-1-1"));
    }

    #[test]
    fn user_trigger_ids_are_unique_per_object_and_accepted_by_the_jobmanager() {
        let mut s = StreamJobSnapshot::new(
            "mine",
            StreamJobSnapshotSpec {
                job_reference: JobReference::stream_job("counting"),
                path: None,
                directory: None,
                dispose_on_delete: false,
                checkpoint: None,
            },
        );
        s.metadata.uid = Some("0f8e2c1a-9b7d-4e3f-8a6b-5c4d3e2f1a0b".into());
        let id = user_trigger_id(&s);
        assert_eq!(id, "snapshot-0f8e2c1a9b7d4e3f");
        fjord_client::api::validate_trigger_id(&id).unwrap();
    }

    fn session(yaml: &str) -> (StreamSessionJob, StreamCluster) {
        let ssj: StreamSessionJob = serde_yaml::from_str(
            "apiVersion: fjord.dev/v1alpha1\nkind: StreamSessionJob\nmetadata: {name: counts-a, namespace: ns}\nspec: {clusterName: shared, job: {name: counting}}\n",
        )
        .unwrap();
        let cluster: StreamCluster = serde_yaml::from_str(yaml).unwrap();
        (ssj, cluster)
    }

    /// The endpoint of a cluster without `spec.security`.
    fn plain() -> JobManagerEndpoint {
        crate::session::cluster_endpoint("shared", "ns")
    }

    const CLUSTER: &str = "apiVersion: fjord.dev/v1alpha1\nkind: StreamCluster\nmetadata: {name: shared, namespace: ns}\nspec:\n  image: fjord/fjord:e2e\n  checkpointing: {storage: 's3://fjord/checkpoints/shared'}\n";

    #[test]
    fn a_session_job_is_reached_through_its_clusters_jobmanager_while_it_runs() {
        let (mut ssj, cluster) = session(CLUSTER);
        let t = session_target("counts-a", Some(&ssj), &cluster, "ns", plain());
        assert_eq!(t.endpoint, crate::session::cluster_endpoint("shared", "ns"));
        assert_eq!(
            t.running,
            Err("StreamSessionJob counts-a is not running (lifecycle state Pending)".into())
        );
        // Without spec.savepointDirectory: <checkpointing.storage>/savepoints, as for the
        // cluster's own stop-with-savepoints.
        assert_eq!(
            t.savepoint_directory.as_deref(),
            Some("s3://fjord/checkpoints/shared/savepoints")
        );
        ssj.status = Some(fjord_crds::StreamSessionJobStatus {
            lifecycle_state: Some("Running".into()),
            job_state: Some("RUNNING".into()),
            job_id: Some("abc".into()),
            ..Default::default()
        });
        let t = session_target("counts-a", Some(&ssj), &cluster, "ns", plain());
        assert_eq!(t.running, Ok("abc".into()));
        // Stopping (a savepoint upgrade in flight): not a job to snapshot.
        ssj.status.as_mut().unwrap().lifecycle_state = Some("Stopping".into());
        let t = session_target("counts-a", Some(&ssj), &cluster, "ns", plain());
        assert!(t.running.is_err());
        // Gone (or moved to another cluster): the cluster that took a snapshot still reaches
        // its files, but there is no job to snapshot.
        let t = session_target("counts-a", None, &cluster, "ns", plain());
        assert_eq!(t.endpoint, crate::session::cluster_endpoint("shared", "ns"));
        assert_eq!(t.cluster.as_deref(), Some("shared"));
        assert!(t.running.unwrap_err().contains("does not exist"));
        ssj.spec.cluster_name = "other".into();
        let t = session_target("counts-a", Some(&ssj), &cluster, "ns", plain());
        assert!(
            t.running
                .unwrap_err()
                .contains("runs on StreamCluster other")
        );
    }

    #[test]
    fn a_session_jobs_savepoints_go_to_its_clusters_savepoint_directory() {
        let (ssj, cluster) = session(&format!(
            "{CLUSTER}  savepointDirectory: s3://fjord/savepoints/shared\n"
        ));
        let t = session_target("counts-a", Some(&ssj), &cluster, "ns", plain());
        assert_eq!(
            t.savepoint_directory.as_deref(),
            Some("s3://fjord/savepoints/shared")
        );
        let (ssj, cluster) = session(
            "apiVersion: fjord.dev/v1alpha1\nkind: StreamCluster\nmetadata: {name: shared, namespace: ns}\nspec: {image: x}\n",
        );
        let t = session_target("counts-a", Some(&ssj), &cluster, "ns", plain());
        assert_eq!(t.savepoint_directory, None);
        assert!(
            t.directory_hint.contains("spec.savepointDirectory"),
            "{}",
            t.directory_hint
        );
    }

    #[test]
    fn snapshots_the_operator_creates_are_labelled_with_their_job() {
        let s = snapshot_object(
            "ns",
            "counts-a-savepoint-2",
            &JobReference::session_job("counts-a"),
            false,
            false,
        );
        assert_eq!(
            s.labels().get(SESSION_JOB_LABEL).map(String::as_str),
            Some("counts-a")
        );
        // Asked for, not recorded: the controller takes it.
        assert!(!s.annotations().contains_key(RECORDED_ANNOTATION));
        let r = snapshot_object("ns", "c-1", &JobReference::stream_job("c"), true, true);
        assert_eq!(
            r.labels()
                .get(resources::STREAMJOB_LABEL)
                .map(String::as_str),
            Some("c")
        );
        assert!(r.annotations().contains_key(RECORDED_ANNOTATION));
        assert!(r.spec.checkpoint.is_some());
    }

    #[test]
    fn a_periodic_request_is_taken_as_a_periodic_savepoint() {
        let job = JobReference::session_job("counts-a");
        let p = requested_object("ns", "p", &job, false, SavepointTrigger::Periodic);
        assert_eq!(trigger_of(&p), SavepointTrigger::Periodic);
        assert!(!p.annotations().contains_key(RECORDED_ANNOTATION));
        let m = requested_object("ns", "m", &job, false, SavepointTrigger::Manual);
        assert_eq!(trigger_of(&m), SavepointTrigger::Manual);
        assert!(m.metadata.annotations.is_none());
    }
}
