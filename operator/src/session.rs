//! Session clusters: the controllers of StreamClusters and StreamSessionJobs (the Flink
//! operator's FlinkDeployment in session mode and FlinkSessionJob).
//!
//! A StreamCluster becomes the same ConfigMap, JobManager Deployment and Service and
//! TaskManager Deployment a StreamJob gets (built by [`resources::desired_with_config`], with
//! the same Pod Security baseline), but its JobManager runs in session mode
//! (`jobmanager.mode: session`): no job of its own; jobs are submitted over its REST API. Its
//! status shows the TaskManagers registered and the slots free, read from the JobManager.
//!
//! A StreamSessionJob is one job submitted to a StreamCluster. [`decide`] is its lifecycle, a
//! pure function of the spec, the recorded status and what the JobManager reports; the
//! controller writes the status it returns (a stop is recorded before it is asked for) and
//! then performs the action. Each submission gets a new job ID (from the object's UID and
//! its submission count), so its checkpoints go to their own directory; a JobManager that
//! lost the job (its Pod restarted) gets it again under the same ID and resumes it from its
//! latest checkpoint.
//!
//! Snapshots of session jobs are StreamJobSnapshots with `spec.jobReference.kind:
//! StreamSessionJob`, taken by the snapshot controller ([`crate::snapshots`]) through the
//! cluster's JobManager. A changed `spec.job.savepointTriggerNonce` or
//! `checkpointTriggerNonce` asks for one ([`nonce_snapshots`]), and so does
//! `spec.savepoints.periodicInterval` ([`periodic_savepoint`], trigger type periodic); the
//! status records the savepoint and the manual checkpoint in flight (`pendingSavepoint`,
//! `manualCheckpoint`, as a StreamJob's) and [`follow_snapshots`] follows them to their
//! snapshots' outcome, one savepoint at a time. The stop-with-savepoints of upgrades, suspends
//! and deletion are recorded as one each ([`stop_note`]); and
//! `spec.job.initialSavepointSnapshot` starts the first submission from one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fjord_client::api::{self, SubmitJobRequest};
use fjord_crds::{
    DesiredJobState, JobReference, ManualCheckpoint, PendingSavepoint, SavepointTrigger,
    SessionJobSpec, SessionJobStop, SnapshotState, StopReason, StreamCluster, StreamJobSnapshot,
    StreamJobSpec, StreamSessionJob, StreamSessionJobSpec, StreamSessionJobStatus, UpgradeMode,
};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{debug, info, warn};

use crate::apply::{apply, apply_jobmanager_rbac, write_status};
use crate::events::Publisher;
use crate::jobmanager::JobManagerEndpoint;
use crate::jobmanager::rest::{checkpoint_record, map_error};
use crate::lifecycle::{EventNote, SnapshotNote};
use crate::resources;
use crate::{Error, FINALIZER, finalizers};
use events::Cause;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What the session controllers share.
pub struct SessionContext {
    /// Kubernetes client.
    pub client: Client,
    http: reqwest::Client,
    events: Publisher,
    /// Certificate renewal and CA rotation thresholds.
    ca_rotation: crate::ca_rotation::Timing,
}

impl SessionContext {
    /// A context over `client`, publishing Events from `instance` (the operator's Pod name).
    ///
    /// # Errors
    /// [`Error::JobManagerUnreachable`] if the HTTP client cannot be built.
    pub fn new(client: Client, instance: &str) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| Error::JobManagerUnreachable {
                endpoint: "(none)".into(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        let events = Publisher::new(client.clone(), crate::FIELD_MANAGER, instance);
        Ok(SessionContext {
            client,
            http,
            events,
            ca_rotation: crate::ca_rotation::Timing::default(),
        })
    }

    /// The same context with the CA rotation thresholds `timing` (`--ca-propagation-seconds`).
    pub fn with_ca_rotation(mut self, timing: crate::ca_rotation::Timing) -> Self {
        self.ca_rotation = timing;
        self
    }

    fn jobmanager(&self, endpoint: &JobManagerEndpoint) -> Result<fjord_client::Client, Error> {
        crate::jobmanager::rest::client_for(&self.http, endpoint)
    }
}

/// The plain JobManager endpoint of StreamCluster `name` in `namespace` (HTTP, no token): how
/// a cluster without `spec.security` is reached, and the placeholder for one that does not
/// exist.
pub fn cluster_endpoint(name: &str, namespace: &str) -> JobManagerEndpoint {
    JobManagerEndpoint {
        base_url: resources::rest_base_url(name, namespace),
        token: None,
        ca_pem: None,
    }
}

/// How the operator reaches `cluster`'s JobManager: with its `spec.security`, HTTPS trusting
/// the cluster's CA and the REST token from its Secret (see [`crate::security::endpoint_of`]).
///
/// # Errors
/// [`Error::Kube`] when reading a Secret fails, [`Error::Serde`] if the spec does not convert.
pub async fn secured_cluster_endpoint(
    client: &kube::Client,
    cluster: &StreamCluster,
) -> Result<JobManagerEndpoint, Error> {
    let ns = cluster
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    crate::security::endpoint_of(
        client,
        &cluster.name_any(),
        &ns,
        &cluster_pod_spec(cluster)?,
    )
    .await
}

/// The StreamJob spec a StreamCluster's pods are built from: its cluster fields, a
/// placeholder job, and as many task slots as spec.taskManager asks for (one TaskManager
/// unless spec.taskManager.replicas says otherwise).
///
/// # Errors
/// [`Error::Serde`] if the spec does not convert (it does for every valid StreamCluster).
pub fn cluster_pod_spec(cluster: &StreamCluster) -> Result<StreamJobSpec, Error> {
    let serde = |source| Error::Serde {
        what: "the StreamCluster's spec".into(),
        source,
    };
    let mut value = serde_json::to_value(&cluster.spec).map_err(serde)?;
    let object = value
        .as_object_mut()
        .expect("a struct serializes to an object");
    if let Some(dir) = object.remove("savepointDirectory") {
        object.insert("savepoints".into(), json!({ "directory": dir }));
    }
    let tm = cluster.spec.task_manager.clone().unwrap_or_default();
    let slots = tm.slots.unwrap_or(1).max(1);
    let replicas = tm.replicas.unwrap_or(1).max(1);
    object
        .entry("taskManager")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("taskManager is an object")
        .insert("replicas".into(), json!(replicas));
    object.insert(
        "job".into(),
        json!({ "name": "session", "parallelism": (replicas * slots).min(128) }),
    );
    serde_json::from_value(value).map_err(serde)
}

/// The configuration of a StreamCluster's pods: a StreamJob's, in session mode and without
/// the job keys.
pub fn cluster_configuration(name: &str, spec: &StreamJobSpec) -> BTreeMap<String, String> {
    let mut config = resources::configuration(name, spec, None);
    for key in [
        "job.name",
        "job.args",
        "job.parallelism",
        "job.max-parallelism",
    ] {
        config.remove(key);
    }
    config.insert("jobmanager.mode".into(), "session".into());
    config
}

/// The desired children of a StreamCluster, owned by it.
///
/// # Errors
/// [`Error::MissingMetadata`] without name, namespace or uid; [`Error::Build`] for a broken pod
/// template.
pub fn cluster_desired(cluster: &StreamCluster) -> Result<resources::Desired, Error> {
    let name = cluster
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("metadata.name"))?;
    let namespace = cluster
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let owner = cluster
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata("metadata.uid"))?;
    let spec = cluster_pod_spec(cluster)?;
    let config = cluster_configuration(&name, &spec);
    resources::desired_with_config(&name, &namespace, &owner, &spec, config, None)
}

/// Reconciles a StreamCluster: applies its children and reports its TaskManagers and slots.
async fn reconcile_cluster(
    cluster: Arc<StreamCluster>,
    ctx: Arc<SessionContext>,
) -> Result<Action, Error> {
    if cluster.metadata.deletion_timestamp.is_some() {
        // Its children are garbage-collected through their owner references.
        return Ok(Action::await_change());
    }
    let name = cluster.name_any();
    let ns = cluster.namespace().unwrap_or_default();
    let desired = cluster_desired(&cluster)?;
    // The Secrets the Pods mount exist before the Pods do. A rotation's next step needs no
    // requeue of its own: a cluster is looked at every few seconds (below).
    crate::security::ensure(
        &ctx.client,
        cluster.as_ref(),
        &cluster_pod_spec(&cluster)?,
        &ctx.ca_rotation,
    )
    .await?;
    apply(&ctx.client, &ns, &desired.config_map).await?;
    apply(&ctx.client, &ns, &desired.jobmanager_service).await?;
    apply_jobmanager_rbac(&ctx.client, &ns, &desired).await?;
    apply(&ctx.client, &ns, &desired.jobmanager).await?;
    apply(&ctx.client, &ns, &desired.taskmanager).await?;
    let endpoint = secured_cluster_endpoint(&ctx.client, &cluster).await?;
    let mut status = fjord_crds::StreamClusterStatus {
        rest_url: Some(endpoint.base_url.clone()),
        observed_generation: cluster.metadata.generation,
        lifecycle_state: Some("Deploying".into()),
        ..Default::default()
    };
    let observed = async {
        let jm = ctx.jobmanager(&endpoint)?;
        let tms = jm
            .task_managers()
            .await
            .map_err(|e| map_error(&endpoint, "list TaskManagers", e))?;
        let jobs = jm
            .jobs()
            .await
            .map_err(|e| map_error(&endpoint, "list jobs", e))?;
        Ok::<_, Error>((tms, jobs))
    }
    .await;
    match observed {
        Ok((tms, jobs)) => {
            let ready = tms
                .task_managers
                .iter()
                .filter(|t| t.state == api::TaskManagerState::Registered)
                .count() as i32;
            status.ready_task_managers = ready;
            status.total_slots = tms.slots_available as i32;
            status.free_slots = tms.slots_available.saturating_sub(tms.slots_in_use) as i32;
            status.running_jobs =
                jobs.jobs.iter().filter(|j| !j.state.is_terminal()).count() as i32;
            if ready > 0 {
                status.lifecycle_state = Some("Ready".into());
            }
        }
        Err(e) => status.error = Some(e.to_string()),
    }
    let api: Api<StreamCluster> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(
        &api,
        &name,
        "StreamCluster",
        serde_json::to_value(&status).map_err(|source| Error::Serde {
            what: "StreamCluster status".into(),
            source,
        })?,
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(
        if status.lifecycle_state.as_deref() == Some("Ready") {
            5
        } else {
            1
        },
    )))
}

/// What the JobManager says about the job the status records.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// The cluster's JobManager does not answer (or the StreamCluster does not exist).
    Unreachable(String),
    /// No job recorded yet.
    NoJob,
    /// The JobManager does not know the recorded job (it restarted).
    Lost,
    /// The job in this state.
    Job(api::JobState),
}

/// What the StreamSessionJob controller does next.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionAction {
    /// Nothing; look again later.
    Wait,
    /// Submit the job under `job_id`, restoring from `restore_path`.
    Submit {
        /// The job ID.
        job_id: String,
        /// The savepoint or checkpoint to start from.
        restore_path: Option<String>,
    },
    /// Stop the job with a savepoint under `trigger_id`.
    StopWithSavepoint {
        /// The job.
        job_id: String,
        /// Its trigger ID.
        trigger_id: String,
    },
    /// Poll the stop-with-savepoint under `trigger_id`.
    PollSavepoint {
        /// The job.
        job_id: String,
        /// Its trigger ID.
        trigger_id: String,
    },
    /// Cancel the job; with `keep_checkpoint`, record its latest checkpoint first as the
    /// next restore point (last-state).
    Cancel {
        /// The job.
        job_id: String,
        /// Record the latest checkpoint first.
        keep_checkpoint: bool,
    },
    /// The job is gone (deletion): remove the finalizer.
    Release,
}

/// The ID of submission `n` of the StreamSessionJob with `uid`.
pub fn submission_job_id(uid: &str, n: i64) -> String {
    resources::job_id(&format!("session-job/{uid}"), n, None)
}

fn stop_action(
    spec: &SessionJobSpec,
    status: &mut StreamSessionJobStatus,
    job_id: &str,
    reason: StopReason,
    savepoint: bool,
) -> SessionAction {
    status.lifecycle_state = Some("Stopping".into());
    if savepoint {
        let trigger_id = format!("stop-{}-{}", status.submissions, reason_name(reason));
        status.stopping = Some(SessionJobStop {
            job_id: job_id.into(),
            reason,
            trigger_id: Some(trigger_id.clone()),
        });
        return SessionAction::StopWithSavepoint {
            job_id: job_id.into(),
            trigger_id,
        };
    }
    status.stopping = Some(SessionJobStop {
        job_id: job_id.into(),
        reason,
        trigger_id: None,
    });
    SessionAction::Cancel {
        job_id: job_id.into(),
        keep_checkpoint: spec.upgrade_mode == UpgradeMode::LastState,
    }
}

fn reason_name(reason: StopReason) -> &'static str {
    match reason {
        StopReason::Upgrade => "upgrade",
        StopReason::Suspend => "suspend",
        StopReason::Delete => "delete",
    }
}

/// The StreamSessionJob lifecycle: from its spec, whether it is being deleted, its recorded
/// status and what the JobManager reports, the next status and the action. Pure.
///
/// - No job yet (or the last one was stopped by the operator, or ended on its own and the
///   spec changed since): submit one when `running` is wanted, restoring from the recorded
///   restore point (the first submission from spec.job.initialSavepointPath).
/// - A job running whose deployed spec differs, or that should be suspended or deleted: stop
///   it through the upgrade mode (`savepoint`: stop-with-savepoint, its path becomes the next
///   restore point; `last-state`: cancel after recording its latest checkpoint; `stateless`:
///   cancel), recorded in `status.stopping` before the JobManager is asked.
/// - A job the JobManager lost (its Pod restarted): submitted again under the same ID; the
///   JobManager resumes it from its latest checkpoint.
pub fn decide(
    uid: &str,
    spec: &SessionJobSpec,
    deleting: bool,
    savepoint_on_delete: bool,
    status: &StreamSessionJobStatus,
    observed: &Observed,
) -> (StreamSessionJobStatus, SessionAction) {
    let mut next = status.clone();
    let want_running = spec.state == DesiredJobState::Running && !deleting;
    if let Observed::Job(state) = observed {
        next.job_state = Some(state.as_str().to_string());
    }
    // A stop in progress goes first.
    if let Some(stop) = &status.stopping {
        match observed {
            Observed::Unreachable(e) if deleting => {
                // The cluster is gone: nothing is left to stop.
                next.error = Some(e.clone());
                next.stopping = None;
                return (next, SessionAction::Release);
            }
            Observed::Unreachable(e) => {
                next.error = Some(e.clone());
                return (next, SessionAction::Wait);
            }
            Observed::Job(state) if !state.is_terminal() => {
                return (
                    next,
                    match &stop.trigger_id {
                        Some(trigger_id) => SessionAction::PollSavepoint {
                            job_id: stop.job_id.clone(),
                            trigger_id: trigger_id.clone(),
                        },
                        None => SessionAction::Cancel {
                            job_id: stop.job_id.clone(),
                            keep_checkpoint: false,
                        },
                    },
                );
            }
            // The JobManager lost the job mid-stop (its Pod restarted): the job is submitted
            // again under its ID below (it resumes from its latest checkpoint) and stopped
            // again once it runs, rather than started from nothing.
            Observed::Lost if !deleting => {
                next.stopping = None;
            }
            _ => {
                // It ended (or is gone). A savepoint stop still needs its path.
                if let Some(trigger_id) = &stop.trigger_id
                    && next.restore_path.is_none()
                    && !matches!(observed, Observed::Lost)
                {
                    return (
                        next,
                        SessionAction::PollSavepoint {
                            job_id: stop.job_id.clone(),
                            trigger_id: trigger_id.clone(),
                        },
                    );
                }
                next.stopping = None;
                next.stopped = true;
            }
        }
    }
    if deleting {
        return match (next.job_id.clone(), observed) {
            (Some(id), Observed::Job(state)) if !state.is_terminal() && !next.stopped => {
                let action = stop_action(
                    spec,
                    &mut next,
                    &id,
                    StopReason::Delete,
                    savepoint_on_delete,
                );
                (next, action)
            }
            _ => (next, SessionAction::Release),
        };
    }
    match observed {
        Observed::Unreachable(e) => {
            next.error = Some(e.clone());
            if next.lifecycle_state.is_none() {
                next.lifecycle_state = Some("Pending".into());
            }
            (next, SessionAction::Wait)
        }
        Observed::Job(state) if !state.is_terminal() => {
            let deployed_same = next
                .deployed_spec
                .as_ref()
                .is_some_and(|d| d.same_deployment(spec));
            let id = next.job_id.clone().unwrap_or_default();
            // One savepoint at a time: an upgrade or a suspend waits for the manual or
            // periodic savepoint in flight (as a StreamJob's does).
            if (!want_running || !deployed_same) && next.pending_savepoint.is_some() {
                return (next, SessionAction::Wait);
            }
            if !want_running {
                let savepoint = spec.upgrade_mode == UpgradeMode::Savepoint;
                let action = stop_action(spec, &mut next, &id, StopReason::Suspend, savepoint);
                return (next, action);
            }
            if !deployed_same {
                let savepoint = spec.upgrade_mode == UpgradeMode::Savepoint;
                let action = stop_action(spec, &mut next, &id, StopReason::Upgrade, savepoint);
                return (next, action);
            }
            next.lifecycle_state = Some(
                if *state == api::JobState::Running {
                    next.error = None;
                    "Running"
                } else {
                    "Submitted"
                }
                .into(),
            );
            (next, SessionAction::Wait)
        }
        Observed::Lost if !next.stopped => {
            // The session's JobManager restarted: the same job again, resuming from its
            // latest checkpoint (the JobManager finds it under the job ID). Also when it is to
            // be suspended: the stop then goes through the upgrade mode once it runs, so its
            // state is kept.
            let job_id = next.job_id.clone().unwrap_or_default();
            next.lifecycle_state = Some("Submitted".into());
            let restore_path = next.restored_from.clone();
            (
                next,
                SessionAction::Submit {
                    job_id,
                    restore_path,
                },
            )
        }
        _ => {
            // No job, a stopped one, or one that ended on its own.
            let ended_on_its_own = matches!(observed, Observed::Job(_)) && !next.stopped;
            let changed = next
                .deployed_spec
                .as_ref()
                .is_none_or(|d| !d.same_deployment(spec));
            if !want_running {
                next.lifecycle_state = Some("Suspended".into());
                return (next, SessionAction::Wait);
            }
            if ended_on_its_own && !changed {
                next.lifecycle_state = Some(
                    match observed {
                        Observed::Job(api::JobState::Failed) => "Failed",
                        _ => "Finished",
                    }
                    .into(),
                );
                return (next, SessionAction::Wait);
            }
            let restore_path = if next.submissions == 0 {
                spec.initial_savepoint_path.clone()
            } else if spec.upgrade_mode == UpgradeMode::Stateless {
                None
            } else {
                next.restore_path.clone()
            };
            if next.submissions == 0 {
                // Nonces present at creation are not requests (as for a StreamJob).
                next.last_savepoint_trigger_nonce = spec.savepoint_trigger_nonce;
                next.last_checkpoint_trigger_nonce = spec.checkpoint_trigger_nonce;
            }
            next.submissions += 1;
            let job_id = submission_job_id(uid, next.submissions);
            next.job_id = Some(job_id.clone());
            next.job_state = None;
            next.deployed_spec = Some(spec.clone());
            next.restored_from = restore_path.clone();
            next.restore_path = None;
            next.stopped = false;
            next.lifecycle_state = Some("Submitted".into());
            (
                next,
                SessionAction::Submit {
                    job_id,
                    restore_path,
                },
            )
        }
    }
}

/// A StreamJobSnapshot the StreamSessionJob controller asks the snapshot controller to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRequest {
    /// Its name: `<session job>-savepoint-<nonce>-<job id prefix>`,
    /// `<session job>-checkpoint-<nonce>-<job id prefix>` or
    /// `<session job>-periodic-<unix ms>-<job id prefix>` (a negative nonce is spelt
    /// `m<digits>`; the first 8 characters of the job ID tell apart StreamSessionJobs of the
    /// same name that followed each other with the same nonces).
    pub name: String,
    /// A checkpoint (spec.checkpoint), not a savepoint.
    pub checkpoint: bool,
    /// Manual (a trigger nonce) or periodic.
    pub trigger: SavepointTrigger,
}

fn nonce_name(name: &str, what: &str, nonce: i64, job_id: &str) -> String {
    let n = if nonce < 0 {
        format!("m{}", nonce.unsigned_abs())
    } else {
        nonce.to_string()
    };
    let job: String = job_id.chars().take(8).collect();
    crate::snapshots::snapshot_name(name, &format!("{what}-{n}-{job}"))
}

/// The ID of the job `status` records, while it runs (lifecycle `Running`, job state
/// `RUNNING`): snapshots are asked for only then.
fn running_job(status: &StreamSessionJobStatus) -> Option<String> {
    let running = status.lifecycle_state.as_deref() == Some("Running")
        && status.job_state.as_deref() == Some(api::JobState::Running.as_str())
        && status.stopping.is_none();
    status.job_id.clone().filter(|_| running)
}

/// The snapshots the savepoint and checkpoint trigger nonces of `spec` ask for at `now`, with
/// `status` (the status this pass writes) updated to record that they were asked for. Pure.
///
/// - Nonces present at the first submission ask for nothing (as for a StreamJob): [`decide`]
///   records them as already seen when it submits the first job.
/// - A changed nonce asks for one snapshot once the job runs (lifecycle `Running`, job state
///   `RUNNING`); until then it waits, and the latest value wins.
/// - One savepoint at a time: a changed savepoint nonce also waits while a manual or periodic
///   savepoint is in flight (`status.pendingSavepoint`), and a changed checkpoint nonce while
///   the manual checkpoint is (`status.manualCheckpoint` `IN_PROGRESS`).
///
/// The status names the snapshot before it is created ([`follow_snapshots`] creates it again
/// if the operator stopped in between); its name depends on the nonce and the job ID only, so
/// creating it twice is a no-op.
pub fn nonce_snapshots(
    name: &str,
    spec: &SessionJobSpec,
    status: &mut StreamSessionJobStatus,
    now: Timestamp,
) -> Vec<SnapshotRequest> {
    let Some(job_id) = running_job(status) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(nonce) = spec.savepoint_trigger_nonce
        && Some(nonce) != status.last_savepoint_trigger_nonce
        && status.pending_savepoint.is_none()
    {
        let request = SnapshotRequest {
            name: nonce_name(name, "savepoint", nonce, &job_id),
            checkpoint: false,
            trigger: SavepointTrigger::Manual,
        };
        status.last_savepoint_trigger_nonce = Some(nonce);
        status.pending_savepoint = Some(PendingSavepoint {
            trigger_id: request.name.clone(),
            trigger: SavepointTrigger::Manual,
            nonce: Some(nonce),
            started_at: Time(now),
        });
        out.push(request);
    }
    if let Some(nonce) = spec.checkpoint_trigger_nonce
        && Some(nonce) != status.last_checkpoint_trigger_nonce
        && checkpoint_in_flight(status).is_none()
    {
        let request = SnapshotRequest {
            name: nonce_name(name, "checkpoint", nonce, &job_id),
            checkpoint: true,
            trigger: SavepointTrigger::Manual,
        };
        status.last_checkpoint_trigger_nonce = Some(nonce);
        status.manual_checkpoint = Some(ManualCheckpoint::in_progress(
            Some(nonce),
            request.name.clone(),
            Time(now),
        ));
        out.push(request);
    }
    if let Some(last) = out.last() {
        status.last_triggered_snapshot = Some(last.name.clone());
    }
    out
}

/// The periodic savepoint `interval` (spec.savepoints.periodicInterval) asks for at `now`, if
/// one is due, with `status` updated to record it. Pure.
///
/// The StreamJob rule ([`crate::savepoints::periodic_due`]): due once the interval has passed
/// since the job started (`status.jobStartTime`) and since the last periodic attempt
/// (`status.lastPeriodicSavepointAttempt`, set when it is asked for, so a failed one also
/// waits a full interval). Only while the job runs, and one savepoint at a time: not while a
/// manual or periodic savepoint is in flight (`status.pendingSavepoint`) nor while the job is
/// being stopped (an upgrade's, suspend's or deletion's savepoint).
pub fn periodic_savepoint(
    name: &str,
    interval: Option<Duration>,
    status: &mut StreamSessionJobStatus,
    now: Timestamp,
) -> Option<SnapshotRequest> {
    let job_id = running_job(status)?;
    if status.pending_savepoint.is_some() {
        return None;
    }
    let marks = status
        .job_start_time
        .clone()
        .into_iter()
        .chain(status.last_periodic_savepoint_attempt.clone());
    if !crate::savepoints::periodic_due(interval, marks, now) {
        return None;
    }
    let request = SnapshotRequest {
        name: nonce_name(name, "periodic", now.as_millisecond(), &job_id),
        checkpoint: false,
        trigger: SavepointTrigger::Periodic,
    };
    status.last_periodic_savepoint_attempt = Some(Time(now));
    status.pending_savepoint = Some(PendingSavepoint {
        trigger_id: request.name.clone(),
        trigger: SavepointTrigger::Periodic,
        nonce: None,
        started_at: Time(now),
    });
    status.last_triggered_snapshot = Some(request.name.clone());
    Some(request)
}

/// The snapshots a running session job asks for at `now`: its trigger nonces' first (a
/// manual savepoint goes before a periodic one, as for a StreamJob), then a periodic
/// savepoint. Pure; see [`nonce_snapshots`] and [`periodic_savepoint`].
pub fn snapshot_requests(
    name: &str,
    spec: &StreamSessionJobSpec,
    status: &mut StreamSessionJobStatus,
    now: Timestamp,
) -> Vec<SnapshotRequest> {
    let mut out = nonce_snapshots(name, &spec.job, status, now);
    out.extend(periodic_savepoint(
        name,
        spec.periodic_savepoint_interval(),
        status,
        now,
    ));
    out
}

/// The name of the manual checkpoint's snapshot while it is in flight.
pub fn checkpoint_in_flight(status: &StreamSessionJobStatus) -> Option<&str> {
    status
        .manual_checkpoint
        .as_ref()
        .filter(|c| c.state == SnapshotState::InProgress)
        .map(|c| c.trigger_id.as_str())
}

/// How long the session job waits for a snapshot it asked for: the snapshot controller fails
/// one after [`crate::snapshots::SAVEPOINT_TIMEOUT`]; a minute more covers a snapshot it never
/// started.
pub const FOLLOW_LIMIT: Duration =
    Duration::from_secs(crate::snapshots::SAVEPOINT_TIMEOUT.as_secs() + 60);

/// What the StreamSessionJob controller sees of a StreamJobSnapshot its status waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The object does not exist (yet: the status names it before it is created).
    Missing,
    /// Not started yet, or in progress.
    Taking,
    /// COMPLETED at `path` (a checkpoint with its id).
    Completed {
        /// Where it is.
        path: String,
        /// A checkpoint's id.
        checkpoint_id: Option<u64>,
    },
    /// FAILED, with why.
    Failed(String),
}

impl Seen {
    /// What `snapshot` (`None`: it does not exist) says.
    pub fn of(snapshot: Option<&StreamJobSnapshot>) -> Self {
        let Some(snapshot) = snapshot else {
            return Seen::Missing;
        };
        let status = snapshot.status.clone().unwrap_or_default();
        match status.state {
            Some(SnapshotState::Completed) => Seen::Completed {
                path: status.path.unwrap_or_default(),
                checkpoint_id: status.checkpoint_id,
            },
            Some(SnapshotState::Failed) => {
                Seen::Failed(status.error.unwrap_or_else(|| "no reason reported".into()))
            }
            _ => Seen::Taking,
        }
    }
}

/// Follow the manual or periodic savepoint (`status.pendingSavepoint`) and the manual
/// checkpoint (`status.manualCheckpoint`) in flight from what their snapshots say
/// (`savepoint`, `checkpoint`) at `now`. Pure. Returns the Events of their outcomes (as a
/// StreamJob's: `SavepointCompleted`, `SavepointFailed`, `SavepointTimedOut`,
/// `CheckpointCompleted`, `CheckpointFailed`) and the snapshots to create again (named in the
/// status, missing: the operator stopped before it created them).
///
/// A completed savepoint becomes `status.lastSavepoint`; the manual checkpoint's outcome is
/// recorded in `status.manualCheckpoint`. One not seen to end within [`FOLLOW_LIMIT`] is given
/// up.
pub fn follow_snapshots(
    status: &mut StreamSessionJobStatus,
    savepoint: &Seen,
    checkpoint: &Seen,
    now: Timestamp,
) -> (Vec<EventNote>, Vec<SnapshotRequest>) {
    let mut events = Vec::new();
    let mut again = Vec::new();
    let overdue = |since: &Time| {
        let ms = now.as_millisecond() - since.0.as_millisecond();
        ms.max(0) as u128 > FOLLOW_LIMIT.as_millis()
    };
    if let Some(p) = status.pending_savepoint.clone() {
        match savepoint {
            Seen::Completed { path, .. } => {
                status.pending_savepoint = None;
                status.last_savepoint = Some(path.clone());
                events.push(EventNote::savepoint_completed(p.trigger, path));
            }
            Seen::Failed(message) => {
                status.pending_savepoint = None;
                events.push(EventNote::savepoint_failed(
                    p.trigger,
                    &p.trigger_id,
                    message,
                ));
            }
            _ if overdue(&p.started_at) => {
                status.pending_savepoint = None;
                events.push(EventNote::savepoint_timed_out(
                    p.trigger,
                    &p.trigger_id,
                    FOLLOW_LIMIT,
                ));
            }
            Seen::Missing => again.push(SnapshotRequest {
                name: p.trigger_id.clone(),
                checkpoint: false,
                trigger: p.trigger,
            }),
            Seen::Taking => {}
        }
    }
    if let Some(mut c) = status
        .manual_checkpoint
        .clone()
        .filter(|c| c.state == SnapshotState::InProgress)
    {
        match checkpoint {
            Seen::Completed {
                path,
                checkpoint_id,
            } => {
                c.complete(*checkpoint_id, path.clone(), Time(now));
                events.push(EventNote::checkpoint_completed(
                    checkpoint_id.unwrap_or_default(),
                    path,
                ));
            }
            Seen::Failed(message) => {
                c.fail(message.clone(), Time(now));
                events.push(EventNote::checkpoint_failed(&c.trigger_id, message));
            }
            _ if overdue(&c.triggered_at) => {
                let message = crate::lifecycle::checkpoint_timed_out(FOLLOW_LIMIT);
                c.fail(message.clone(), Time(now));
                events.push(EventNote::checkpoint_failed(&c.trigger_id, &message));
            }
            Seen::Missing => again.push(SnapshotRequest {
                name: c.trigger_id.clone(),
                checkpoint: true,
                trigger: SavepointTrigger::Manual,
            }),
            Seen::Taking => {}
        }
        status.manual_checkpoint = Some(c);
    }
    (events, again)
}

/// The name of the StreamJobSnapshot recording the stop-with-savepoint `stop` of session job
/// `name`: `<name>-<trigger id>-<job id prefix>` (the job ID tells apart the StreamSessionJobs
/// of the same name that followed each other).
pub fn stop_snapshot_name(name: &str, stop: &SessionJobStop) -> String {
    let trigger = stop.trigger_id.as_deref().unwrap_or("stop");
    let job: String = stop.job_id.chars().take(8).collect();
    crate::snapshots::snapshot_name(name, &format!("{trigger}-{job}"))
}

/// The snapshot record of the stop-with-savepoint `stop`: COMPLETED at `path`, or FAILED with
/// `error`. A suspend's savepoint is an `upgrade` one (as for a StreamJob), a deletion's a
/// `delete` one.
pub fn stop_note(
    stop: &SessionJobStop,
    path: Option<String>,
    error: Option<String>,
) -> SnapshotNote {
    SnapshotNote {
        trigger_id: stop.trigger_id.clone().unwrap_or_default(),
        trigger: match stop.reason {
            StopReason::Upgrade | StopReason::Suspend => SavepointTrigger::Upgrade,
            StopReason::Delete => SavepointTrigger::Delete,
        },
        job_id: Some(stop.job_id.clone()),
        path,
        error,
        checkpoint: false,
        checkpoint_id: None,
    }
}

async fn observe(
    ctx: &SessionContext,
    endpoint: &JobManagerEndpoint,
    cluster_exists: bool,
    job_id: Option<&str>,
) -> (Observed, Option<api::JobDetails>) {
    if !cluster_exists {
        return (
            Observed::Unreachable("the StreamCluster does not exist".into()),
            None,
        );
    }
    let Some(job_id) = job_id else {
        let observed = match ctx.jobmanager(endpoint) {
            Ok(jm) => match jm.ready().await {
                Ok(_) => Observed::NoJob,
                Err(e) => Observed::Unreachable(map_error(endpoint, "readiness", e).to_string()),
            },
            Err(e) => Observed::Unreachable(e.to_string()),
        };
        return (observed, None);
    };
    let jm = match ctx.jobmanager(endpoint) {
        Ok(jm) => jm,
        Err(e) => return (Observed::Unreachable(e.to_string()), None),
    };
    match jm.job(job_id).await {
        Ok(job) => (Observed::Job(job.state), Some(job)),
        Err(fjord_client::ClientError::Api { status: 404, .. }) => (Observed::Lost, None),
        Err(e) => (
            Observed::Unreachable(map_error(endpoint, "get job", e).to_string()),
            None,
        ),
    }
}

/// The JobManager's figures of the job `next` records (restarts, start time, the latest
/// checkpoint while it runs) into `next`; cleared when `next` names a new submission.
async fn record_figures(
    jm: &fjord_client::Client,
    details: Option<&api::JobDetails>,
    previous_job: Option<&str>,
    next: &mut StreamSessionJobStatus,
) {
    match details {
        Some(d) if next.job_id.as_deref() == Some(d.id.as_str()) => {
            next.job_restarts = Some(i64::from(d.restarts));
            next.job_start_time = (d.start_time_ms > 0)
                .then(|| Timestamp::from_millisecond(d.start_time_ms).ok().map(Time))
                .flatten();
            if d.state == api::JobState::Running {
                match jm.latest_checkpoint(&d.id).await {
                    Ok(latest) => {
                        if let Some(c) = latest.checkpoint {
                            next.last_checkpoint = Some(checkpoint_record(c));
                        }
                    }
                    Err(e) => debug!(error = %e, "could not read the latest checkpoint"),
                }
            }
        }
        _ if next.job_id.as_deref() != previous_job => {
            next.job_restarts = None;
            next.job_start_time = None;
            next.last_checkpoint = None;
        }
        _ => {}
    }
}

/// What the StreamJobSnapshot `name` (none: nothing is in flight) says.
async fn seen(api: &Api<StreamJobSnapshot>, name: Option<&str>) -> Result<Seen, Error> {
    let Some(name) = name else {
        return Ok(Seen::Missing);
    };
    let snapshot = api
        .get_opt(name)
        .await
        .map_err(Error::kube(format!("reading StreamJobSnapshot {name}")))?;
    Ok(Seen::of(snapshot.as_ref()))
}

/// Reconciles a StreamSessionJob: observe, decide, record, act.
async fn reconcile_job(
    job: Arc<StreamSessionJob>,
    ctx: Arc<SessionContext>,
) -> Result<Action, Error> {
    let name = job.name_any();
    let ns = job.namespace().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let api: Api<StreamSessionJob> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = job.metadata.deletion_timestamp.is_some();
    let has_finalizer = job.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        return Ok(Action::await_change());
    }
    if !deleting && !has_finalizer {
        finalizers::set(&api, &job, FINALIZER, true).await?;
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let clusters: Api<StreamCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster = clusters
        .get_opt(&job.spec.cluster_name)
        .await
        .map_err(Error::kube(format!(
            "reading StreamCluster {}",
            job.spec.cluster_name
        )))?;
    let cluster_exists = cluster
        .as_ref()
        .is_some_and(|c| c.metadata.deletion_timestamp.is_none());
    let endpoint = match &cluster {
        Some(cluster) => secured_cluster_endpoint(&ctx.client, cluster).await?,
        None => cluster_endpoint(&job.spec.cluster_name, &ns),
    };
    // The status written last, and the one this pass starts from: the savepoint and manual
    // checkpoint in flight followed to their snapshots' outcome.
    let recorded = job.status.clone().unwrap_or_default();
    let mut status = recorded.clone();
    let snapshots: Api<StreamJobSnapshot> = Api::namespaced(ctx.client.clone(), &ns);
    let pending = status
        .pending_savepoint
        .as_ref()
        .map(|p| p.trigger_id.as_str());
    let savepoint_seen = seen(&snapshots, pending).await?;
    let checkpoint_seen = seen(&snapshots, checkpoint_in_flight(&status)).await?;
    let (snapshot_events, mut requests) = follow_snapshots(
        &mut status,
        &savepoint_seen,
        &checkpoint_seen,
        Timestamp::now(),
    );
    let (observed, details) =
        observe(&ctx, &endpoint, cluster_exists, status.job_id.as_deref()).await;
    // Warnings of this pass, where it learns their cause; the lifecycle's Normal Events are
    // derived from the status it wrote last (see `events`).
    let mut warnings: Vec<EventNote> = snapshot_events;
    if let Observed::Unreachable(e) = &observed {
        if !cluster_exists {
            warnings.push(Cause::ClusterNotFound.event(e));
        } else if !matches!(status.lifecycle_state.as_deref(), None | Some("Pending")) {
            // Only a cluster that stopped answering: one starting is just Pending.
            warnings.push(Cause::ClusterUnreachable.event(e));
        }
    }
    // A first submission from a StreamJobSnapshot restores from the savepoint it names.
    let mut spec = job.spec.job.clone();
    let mut initial_error = None;
    // spec.job.sqlFrom: submitted, recorded and compared with the script inline.
    let mut sql_error = None;
    if !deleting {
        match crate::sql_source::resolve_sql(&ctx.client, &ns, &spec).await? {
            // Each submission has a job ID of its own: the revision is not needed.
            Ok((resolved, _)) => spec = resolved,
            Err(e) => {
                // What runs keeps running as it is until the reference is fixed.
                if let Some(deployed) = &status.deployed_spec {
                    spec = deployed.clone();
                }
                sql_error = Some(e);
            }
        }
    }
    if let Some(snapshot) = &job.spec.job.initial_savepoint_snapshot
        && status.submissions == 0
        && !deleting
    {
        match crate::snapshots::resolve_initial(&ctx.client, &ns, snapshot).await {
            // The resolved path only: status.deployedSpec has the CEL rule that allows one
            // of the two (and `same_deployment` ignores both).
            Ok(path) => {
                spec.initial_savepoint_path = Some(path);
                spec.initial_savepoint_snapshot = None;
            }
            Err(e) => initial_error = Some(e),
        }
    }
    let (mut next, mut action) = decide(
        &uid,
        &spec,
        deleting,
        job.spec.savepoint_on_delete,
        &status,
        &observed,
    );
    // Not submitted until the snapshot it starts from is COMPLETED.
    if matches!(action, SessionAction::Submit { .. })
        && let Some(e) = initial_error
    {
        next = status.clone();
        next.lifecycle_state = Some("Pending".into());
        next.error = Some(e.to_string());
        action = SessionAction::Wait;
        if status.error.as_deref() != next.error.as_deref() {
            warnings.push(Cause::InitialSnapshotNotReady.event(&e.to_string()));
        }
    }
    // A SQL script that does not plan (or a ConfigMap script that cannot be read) is never
    // submitted: Failed, with line and column.
    let field = match job.spec.job.sql_from {
        Some(_) => "spec.job.sqlFrom",
        None => "spec.job.sql",
    };
    if matches!(action, SessionAction::Submit { .. })
        && let Some(e) = sql_error.clone().or_else(|| {
            let script = spec.sql.as_deref()?;
            crate::validation::sql_errors_of(script, field)
                .into_iter()
                .next()
        })
    {
        next = status.clone();
        next.lifecycle_state = Some("Failed".into());
        next.error = Some(e.to_string());
        action = SessionAction::Wait;
        warnings.push(Cause::InvalidSql.event(&e.to_string()));
    } else if let Some(e) = &sql_error {
        // Running on: the error is reported, nothing is stopped.
        next.error = Some(e.to_string());
        if status.error.as_deref() != next.error.as_deref() {
            warnings.push(Cause::InvalidSql.event(&e.to_string()));
        }
    } else if next
        .error
        .as_deref()
        .is_some_and(|e| e.starts_with(fjord_crds::sql_source::FIELD))
    {
        // The reference was fixed.
        next.error = None;
    }
    // A job that failed on its own: its root cause, from the JobManager.
    if next.lifecycle_state.as_deref() == Some("Failed")
        && status.lifecycle_state.as_deref() != Some("Failed")
        && let Some(d) = &details
        && d.state == api::JobState::Failed
    {
        let failure = d
            .failure
            .clone()
            .unwrap_or_else(|| "no cause reported".into());
        next.error = Some(format!("job {} failed: {failure}", d.id));
        warnings.push(Cause::JobFailed.event(next.error.as_deref().unwrap_or_default()));
    }
    next.observed_generation = job.metadata.generation;
    let jm = ctx.jobmanager(&endpoint)?;
    record_figures(&jm, details.as_ref(), status.job_id.as_deref(), &mut next).await;
    // Trigger nonces and periodic savepoints (only while the job runs): recorded in the status
    // first, then their snapshots are created (a missing one again on the next pass).
    if deleting {
        requests.clear();
    } else {
        requests.extend(snapshot_requests(
            &name,
            &job.spec,
            &mut next,
            Timestamp::now(),
        ));
    }
    debug!(name, ?observed, ?action, "session job");
    // The status first: a stop or a submission is on record before the JobManager hears of it.
    if next != recorded {
        write_status(&api, &name, "StreamSessionJob", status_json(&next)?).await?;
    }
    let reference = JobReference::session_job(&name);
    for r in &requests {
        crate::snapshots::request(
            &ctx.client,
            &ns,
            &reference,
            &r.name,
            r.checkpoint,
            r.trigger,
        )
        .await?;
        info!(name, snapshot = %r.name, checkpoint = r.checkpoint, trigger = ?r.trigger, "snapshot requested");
    }
    let outcome: Result<Option<StreamSessionJobStatus>, Error> = match &action {
        SessionAction::Wait => Ok(None),
        SessionAction::Release => {
            publish(&ctx, &job, &recorded, &next, warnings).await;
            finalizers::set(&api, &job, FINALIZER, false).await?;
            ctx.events.forget(&uid);
            return Ok(Action::await_change());
        }
        SessionAction::Submit {
            job_id,
            restore_path,
        } => {
            let spec = &spec;
            let (job_name, args) = spec.registered_job();
            let request = SubmitJobRequest {
                job: job_name,
                args,
                parallelism: Some(spec.parallelism.max(1) as usize),
                max_parallelism: Some(spec.max_parallelism.unwrap_or(128).max(1) as usize),
                job_id: Some(job_id.clone()),
                restore_path: restore_path.clone(),
                allow_non_restored_state: spec.allow_non_restored_state,
            };
            match jm.submit_job(&request).await {
                Ok(answer) => {
                    info!(name, job_id = %answer.id, ?restore_path, "session job submitted");
                    Ok(None)
                }
                // Submitted before (the answer was lost): it runs.
                Err(fjord_client::ClientError::Api {
                    status: 409, code, ..
                }) if code == api::codes::JOB_EXISTS => Ok(None),
                // Not enough free slots yet: the status goes back to what it was (nothing was
                // submitted), Pending, and the same submission is made again shortly.
                Err(fjord_client::ClientError::Api {
                    status: 409,
                    message,
                    code,
                    ..
                }) if code == api::codes::NOT_ENOUGH_SLOTS => {
                    let mut pending = status.clone();
                    pending.observed_generation = next.observed_generation;
                    pending.lifecycle_state = Some("Pending".into());
                    warnings.push(Cause::NotEnoughSlots.event(&message));
                    pending.error = Some(message);
                    Ok(Some(pending))
                }
                Err(e) => {
                    let e = map_error(&endpoint, "submit job", e);
                    let mut failed = next.clone();
                    failed.lifecycle_state = Some("Failed".into());
                    failed.error = Some(e.to_string());
                    warnings.push(Cause::SubmitFailed.event(&e.to_string()));
                    Ok(Some(failed))
                }
            }
        }
        SessionAction::StopWithSavepoint { job_id, trigger_id } => jm
            .stop_with_savepoint(
                job_id,
                &api::SavepointRequest {
                    trigger_id: trigger_id.clone(),
                    directory: None,
                    drain: false,
                },
            )
            .await
            .map(|_| None)
            .map_err(|e| map_error(&endpoint, "stop with savepoint", e)),
        SessionAction::PollSavepoint { job_id, trigger_id } => {
            match jm.savepoint_status(job_id, trigger_id).await {
                Ok(s) => match s.state {
                    api::SavepointState::Completed => {
                        if let Some(stop) = &next.stopping
                            && next.last_savepoint != s.path
                        {
                            record_stop(
                                &ctx,
                                &ns,
                                &name,
                                &job.spec.cluster_name,
                                stop,
                                s.path.clone(),
                                None,
                            )
                            .await?;
                        }
                        let mut done = next.clone();
                        done.restore_path = s.path.clone();
                        done.last_savepoint = s.path.clone();
                        info!(name, path = ?s.path, "session job stopped with a savepoint");
                        Ok(Some(done))
                    }
                    api::SavepointState::Failed => {
                        if let Some(stop) = &next.stopping {
                            let error = s.failure.clone().unwrap_or_default();
                            record_stop(
                                &ctx,
                                &ns,
                                &name,
                                &job.spec.cluster_name,
                                stop,
                                None,
                                Some(error),
                            )
                            .await?;
                        }
                        // The job keeps running; the stop is dropped and tried again next pass
                        // only if still wanted.
                        let mut failed = next.clone();
                        failed.stopping = None;
                        failed.error = Some(format!(
                            "the stop-with-savepoint failed, the job keeps running: {}",
                            s.failure.unwrap_or_default()
                        ));
                        warnings.push(
                            Cause::SavepointFailed.event(failed.error.as_deref().unwrap_or("")),
                        );
                        Ok(Some(failed))
                    }
                    _ => Ok(None),
                },
                Err(e) => Err(map_error(&endpoint, "savepoint status", e)),
            }
        }
        SessionAction::Cancel {
            job_id,
            keep_checkpoint,
        } => {
            if *keep_checkpoint && next.restore_path.is_none() {
                let latest = jm
                    .latest_checkpoint(job_id)
                    .await
                    .map_err(|e| map_error(&endpoint, "latest checkpoint", e))?;
                let mut kept = next.clone();
                kept.restore_path = latest.checkpoint.map(|c| c.path);
                write_status(&api, &name, "StreamSessionJob", status_json(&kept)?).await?;
            }
            jm.cancel(job_id)
                .await
                .map(|_| None)
                .map_err(|e| map_error(&endpoint, "cancel", e))
        }
    };
    let written = match outcome {
        Ok(Some(updated)) if updated != next => {
            write_status(&api, &name, "StreamSessionJob", status_json(&updated)?).await?;
            updated
        }
        Ok(_) => next.clone(),
        Err(e) => {
            warn!(name, error = %e, "session job action failed; retrying");
            let mut failed = next.clone();
            failed.error = Some(e.to_string());
            warnings.push(Cause::JobManagerActionFailed.event(&e.to_string()));
            write_status(&api, &name, "StreamSessionJob", status_json(&failed)?).await?;
            failed
        }
    };
    publish(&ctx, &job, &recorded, &written, warnings).await;
    Ok(Action::requeue(
        match (&action, next.lifecycle_state.as_deref()) {
            (SessionAction::Wait, Some("Running" | "Suspended" | "Finished" | "Failed")) => {
                Duration::from_secs(5)
            }
            _ => Duration::from_millis(500),
        },
    ))
}

/// Records the stop-with-savepoint `stop` of session job `name` as a StreamJobSnapshot.
async fn record_stop(
    ctx: &SessionContext,
    ns: &str,
    name: &str,
    cluster: &str,
    stop: &SessionJobStop,
    path: Option<String>,
    error: Option<String>,
) -> Result<(), Error> {
    let snapshot = stop_snapshot_name(name, stop);
    let note = stop_note(stop, path, error);
    crate::snapshots::record_for(
        &ctx.client,
        ns,
        &JobReference::session_job(name),
        &snapshot,
        Some(cluster),
        &note,
    )
    .await?;
    info!(name, snapshot, "stop savepoint recorded");
    Ok(())
}

/// Publishes the lifecycle Events of the step `old` → `new` and the pass's `warnings`
/// (best effort: a refused Event is logged, and tried again by a later pass's repeat).
async fn publish(
    ctx: &SessionContext,
    job: &StreamSessionJob,
    old: &StreamSessionJobStatus,
    new: &StreamSessionJobStatus,
    warnings: Vec<EventNote>,
) {
    let regarding = job.object_ref(&());
    let steps = events::lifecycle_events(old, new, &job.spec.cluster_name);
    for e in steps.iter().chain(&warnings) {
        ctx.events
            .publish_reconcile(&regarding, e.warning, e.reason, &e.message)
            .await;
    }
}

fn status_json(status: &StreamSessionJobStatus) -> Result<serde_json::Value, Error> {
    serde_json::to_value(status).map_err(|source| Error::Serde {
        what: "StreamSessionJob status".into(),
        source,
    })
}

fn error_policy<K>(_obj: Arc<K>, error: &Error, _ctx: Arc<SessionContext>) -> Action {
    warn!(error = %error, "session reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the StreamCluster and StreamSessionJob controllers for `namespaces` (all if empty)
/// until a shutdown signal.
pub async fn run(ctx: Arc<SessionContext>, namespaces: Vec<String>) {
    let apis: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let controllers = apis.into_iter().map(|ns| {
        let ctx = ctx.clone();
        async move {
            let client = ctx.client.clone();
            let api = |client: &Client| -> (Api<StreamCluster>, Api<StreamSessionJob>) {
                match &ns {
                    Some(ns) => (
                        Api::namespaced(client.clone(), ns),
                        Api::namespaced(client.clone(), ns),
                    ),
                    None => (Api::all(client.clone()), Api::all(client.clone())),
                }
            };
            let (clusters, jobs) = api(&client);
            let (deployments, services, config_maps): (
                Api<Deployment>,
                Api<Service>,
                Api<ConfigMap>,
            ) = match &ns {
                Some(ns) => (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
            };
            let children =
                watcher::Config::default().labels("app.kubernetes.io/managed-by=fjord-operator");
            let cluster_controller = Controller::new(clusters, watcher::Config::default())
                .owns(deployments, children.clone())
                .owns(services, children.clone())
                .owns(config_maps, children)
                .shutdown_on_signal()
                .run(reconcile_cluster, error_policy, ctx.clone())
                .for_each(|r| async move {
                    if let Err(e) = r {
                        debug!(error = %e, "StreamCluster controller");
                    }
                });
            let job_controller = Controller::new(jobs, watcher::Config::default())
                .shutdown_on_signal()
                .run(reconcile_job, error_policy, ctx.clone())
                .for_each(|r| async move {
                    if let Err(e) = r {
                        debug!(error = %e, "StreamSessionJob controller");
                    }
                });
            tokio::join!(cluster_controller, job_controller);
        }
    });
    futures::future::join_all(controllers).await;
}

mod events;

#[cfg(test)]
mod tests;
