//! The kube-rs wiring: watch StreamJobs and their children, and on each pass observe, decide,
//! write the status, then act.
//!
//! [`reconcile`] is a free function `(Arc<StreamJob>, Arc<Context>) -> Result<Action>`. The order
//! inside a pass is what makes the status a write-ahead log: the decided status is written (server
//! side apply on the status subresource) *before* any action is carried out. Children are applied
//! with server-side apply under [`crate::FIELD_MANAGER`]. Failures never crash the process: they
//! are logged, counted, written as a `Degraded` condition and retried with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_crds::{StreamJob, StreamJobSpec, StreamJobStatus};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::controller::{Action as ControllerAction, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::apply::{apply, apply_jobmanager_rbac, write_status};
use crate::events::Publisher;
use crate::jobmanager::{JobManagerApi, JobManagerEndpoint, SavepointStatus};
use crate::lifecycle::{self, Action, Decision, Input, JobManagerView, Observed, Settings};
use crate::metrics::Metrics;
use crate::resources::{self, Component};
use crate::{Error, FIELD_MANAGER, FINALIZER, validation};
use crate::{autoscaler, pods};

/// Shared state of the controller.
pub struct Context<J> {
    /// Kubernetes client.
    pub client: Client,
    /// The JobManager client.
    pub jobmanager: J,
    /// Publishes Events.
    pub events: Publisher,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Timeouts of the lifecycle.
    pub settings: Settings,
    /// What was last applied per StreamJob UID (a hash of the desired children) and when, so
    /// a running job polled every few seconds does not re-apply unchanged children each time.
    applied: std::sync::Mutex<std::collections::HashMap<String, (u64, Instant)>>,
    /// The sample that opened each StreamJob's autoscaler metrics window, per UID. Kept in
    /// memory: an operator that restarts opens a new window.
    windows: std::sync::Mutex<std::collections::HashMap<String, autoscaler::Sample>>,
    /// When each StreamJob's Secrets need looking at again between applies, per UID: a
    /// rotation step that comes due, or a new rotation request.
    security: std::sync::Mutex<std::collections::HashMap<String, SecurityCheck>>,
    /// The JobManager and TaskManager Pods as the Pod watch of each watched namespace (or of
    /// all) last delivered them: a running job's Pods are looked at on every pass without an
    /// API call (see [`Context::watched_pods`]).
    pods: std::sync::Mutex<Vec<Store<Pod>>>,
}

/// What the last look at a StreamJob's Secrets left to do.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecurityCheck {
    /// The rotation request (`fjord.dev/rotate-ca`) it saw.
    request: Option<String>,
    /// When a rotation under way may take its next step.
    due: Option<Instant>,
}

/// How long unchanged children go without being re-applied (a child deleted by hand comes
/// back sooner: its deletion is a watch event, and a missing Deployment forces the apply).
const REAPPLY_AFTER: Duration = Duration::from_secs(300);

impl<J> Context<J> {
    /// A context publishing Events as `fjord-operator` from `instance` (the pod name).
    pub fn new(
        client: Client,
        jobmanager: J,
        metrics: Arc<Metrics>,
        settings: Settings,
        instance: Option<String>,
    ) -> Self {
        let instance = instance.unwrap_or_else(|| FIELD_MANAGER.into());
        Self {
            events: Publisher::new(client.clone(), FIELD_MANAGER, &instance),
            client,
            jobmanager,
            metrics,
            settings,
            applied: Default::default(),
            windows: Default::default(),
            security: Default::default(),
            pods: Default::default(),
        }
    }

    /// The Pods of StreamJob `name` in `ns` that the Pod watch holds: no API call. Empty until
    /// the watch has listed them (and without RBAC on Pods); Pods being deleted included.
    fn watched_pods(&self, ns: &str, name: &str) -> Vec<Arc<Pod>> {
        let stores = self.pods.lock().unwrap_or_else(|e| e.into_inner());
        stores
            .iter()
            .flat_map(|store| {
                store.state_filter(|p| {
                    p.metadata.namespace.as_deref() == Some(ns)
                        && p.labels()
                            .get(resources::STREAMJOB_LABEL)
                            .map(String::as_str)
                            == Some(name)
                })
            })
            .collect()
    }

    fn window_start(&self, uid: &str) -> Option<autoscaler::Sample> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.get(uid).cloned()
    }

    fn set_window(&self, uid: &str, window: autoscaler::Window) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match window {
            autoscaler::Window::Keep => {}
            autoscaler::Window::Start(sample) => {
                windows.insert(uid.to_string(), sample);
            }
            autoscaler::Window::Clear => {
                windows.remove(uid);
            }
        }
    }

    /// Whether children with this hash were applied for `uid` recently (and so need no apply).
    fn recently_applied(&self, uid: &str, hash: u64) -> bool {
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        applied
            .get(uid)
            .is_some_and(|(h, at)| *h == hash && at.elapsed() < REAPPLY_AFTER)
    }

    /// Whether the StreamJob's Secrets need a look although its children need no apply: a
    /// rotation request it has not seen, a rotation step that is due, or no look yet.
    fn security_due(&self, uid: &str, request: Option<&str>) -> bool {
        let checks = self.security.lock().unwrap_or_else(|e| e.into_inner());
        checks.get(uid).is_none_or(|c| {
            c.request.as_deref() != request || c.due.is_some_and(|t| Instant::now() >= t)
        })
    }

    fn record_security(&self, uid: &str, request: Option<String>, next_step: Option<Duration>) {
        let mut checks = self.security.lock().unwrap_or_else(|e| e.into_inner());
        let due = next_step.map(|d| Instant::now() + d);
        checks.insert(uid.to_string(), SecurityCheck { request, due });
    }

    fn record_applied(&self, uid: &str, hash: Option<u64>) {
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        match hash {
            Some(h) => applied.insert(uid.to_string(), (h, Instant::now())),
            None => applied.remove(uid),
        };
    }
}

/// Run the controller for the given namespaces (all namespaces if empty) until a shutdown
/// signal.
pub async fn run<J: JobManagerApi>(ctx: Arc<Context<J>>, namespaces: Vec<String>) {
    let apis: Vec<Option<String>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.into_iter().map(Some).collect()
    };
    let controllers = apis.into_iter().map(|ns| {
        let client = ctx.client.clone();
        let ctx = ctx.clone();
        async move {
            let (jobs, deployments, services, config_maps, pods) = match &ns {
                Some(ns) => (
                    Api::<StreamJob>::namespaced(client.clone(), ns),
                    Api::<Deployment>::namespaced(client.clone(), ns),
                    Api::<Service>::namespaced(client.clone(), ns),
                    Api::<ConfigMap>::namespaced(client.clone(), ns),
                    Api::<Pod>::namespaced(client.clone(), ns),
                ),
                None => (
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                    Api::all(client.clone()),
                ),
            };
            let children =
                watcher::Config::default().labels("app.kubernetes.io/managed-by=fjord-operator");
            let controller = Controller::new(jobs, watcher::Config::default());
            let streamjobs = controller.store();
            // The Pod watch triggers passes (below) and keeps its Pods in a store, where a
            // running job's pass looks for crash-looping containers without listing them.
            let (pod_store, pod_writer) = reflector::store();
            ctx.pods
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(pod_store);
            let pod_events = watcher(pods, children.clone())
                .default_backoff()
                // Only status, spec and labels are read; managed fields are the bulk of a Pod.
                .modify(|p: &mut Pod| p.metadata.managed_fields = None)
                .reflect(pod_writer)
                .touched_objects();
            controller
                .owns(deployments, children.clone())
                .owns(services, children.clone())
                .owns(config_maps.clone(), children.clone())
                // The users' ConfigMaps a spec.job.sqlFrom names: an edited script is acted on
                // at once (a savepoint upgrade), a created one ends the wait for it.
                .watches(
                    config_maps,
                    watcher::Config::default(),
                    move |cm: ConfigMap| streamjobs_reading(&streamjobs.state(), &cm),
                )
                // Pods belong to ReplicaSets, not to the StreamJob: they are mapped by their
                // StreamJob label. A Pod that becomes Ready (the JobManager answers), starts,
                // crashes or is gone (a teardown finished) is acted on at once instead of at
                // the next requeue.
                .watches_stream(pod_events, streamjob_of_pod)
                .shutdown_on_signal()
                .run(reconcile, error_policy, ctx)
                .for_each(|result| async move {
                    match result {
                        Ok(_) => {}
                        // A child changed after its StreamJob was deleted: nothing to do.
                        Err(kube::runtime::controller::Error::ObjectNotFound(obj)) => {
                            debug!(object = %obj, "owner already deleted");
                        }
                        // The reconcile error itself was logged and reported by `reconcile`.
                        Err(e) => debug!(error = %e, "controller"),
                    }
                })
                .await;
        }
    });
    futures::future::join_all(controllers).await;
}

/// The StreamJobs among `jobs` whose spec.job.sqlFrom names the ConfigMap `cm`.
fn streamjobs_reading(jobs: &[Arc<StreamJob>], cm: &ConfigMap) -> Vec<ObjectRef<StreamJob>> {
    let (Some(ns), name) = (cm.namespace(), cm.name_any()) else {
        return Vec::new();
    };
    jobs.iter()
        .filter(|j| j.namespace().as_deref() == Some(ns.as_str()))
        .filter(|j| {
            j.spec
                .job
                .sql_from
                .as_ref()
                .is_some_and(|f| f.config_map_key_ref.name == name)
        })
        .map(|j| ObjectRef::from_obj(j.as_ref()))
        .collect()
}

/// The StreamJob a JobManager or TaskManager Pod belongs to, from its StreamJob label.
fn streamjob_of_pod(pod: Pod) -> Option<ObjectRef<StreamJob>> {
    let job = pod.labels().get(resources::STREAMJOB_LABEL)?;
    Some(ObjectRef::new(job).within(&pod.namespace()?))
}

/// Reconcile one StreamJob: observe, decide, write status, act.
///
/// # Errors
/// Kubernetes API failures; the StreamJob then gets a `Degraded` condition and is retried by
/// [`error_policy`].
pub async fn reconcile<J: JobManagerApi>(
    job: Arc<StreamJob>,
    ctx: Arc<Context<J>>,
) -> Result<ControllerAction, Error> {
    let started = Instant::now();
    let key = format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any());
    let span = info_span!("reconcile", streamjob = %key, generation = job.metadata.generation);
    let mut result = reconcile_pass(&job, &ctx, started).instrument(span).await;
    if job.metadata.deletion_timestamp.is_some() && result.as_ref().is_err_and(Error::is_not_found)
    {
        // The finalizer was removed by an earlier pass and the StreamJob is gone; this pass
        // worked on a stale copy. Nothing failed.
        debug!(streamjob = %key, "already deleted");
        if let Some(uid) = &job.metadata.uid {
            ctx.events.forget(uid);
        }
        result = Ok(ControllerAction::await_change());
    }
    let failure = result.as_ref().err().map(Error::metric_label);
    ctx.metrics.reconciled(started.elapsed(), failure);
    if let Err(e) = &result {
        report_failure(&job, &ctx, e).await;
    }
    result
}

/// Requeue with a bounded backoff after a failed pass.
pub fn error_policy<J: JobManagerApi>(
    _job: Arc<StreamJob>,
    error: &Error,
    _ctx: Arc<Context<J>>,
) -> ControllerAction {
    let delay = match error {
        Error::InvalidSpec { .. } | Error::Build { .. } => Duration::from_secs(60),
        _ => Duration::from_secs(10),
    };
    ControllerAction::requeue(delay)
}

async fn reconcile_pass<J: JobManagerApi>(
    job: &StreamJob,
    ctx: &Context<J>,
    started: Instant,
) -> Result<ControllerAction, Error> {
    let ns = job
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let name = job.name_any();
    let api: Api<StreamJob> = Api::namespaced(ctx.client.clone(), &ns);
    let deleting = job.metadata.deletion_timestamp.is_some();
    let has_finalizer = job.finalizers().iter().any(|f| f == FINALIZER);
    if deleting && !has_finalizer {
        ctx.metrics.job_state(&format!("{ns}/{name}"), None);
        return Ok(ControllerAction::await_change());
    }
    if !deleting && !has_finalizer {
        // Before anything exists, so deletion always passes through the operator.
        crate::finalizers::set(&api, job, FINALIZER, true).await?;
    }

    let status = job.status.clone().unwrap_or_default();
    let (observed, complete) = observe(job, &status, ctx).await?;
    let mut spec_errors = validation::validate(&job.spec);
    let mut spec = job.spec.clone();
    // spec.job.sqlFrom: the pass works on the script inline, planned like spec.job.sql. A
    // deletion needs no script (it stops what runs).
    let mut sql_revision = None;
    if !deleting {
        match crate::sql_source::resolve_sql(&ctx.client, &ns, &job.spec.job).await? {
            Ok((resolved, revision)) => {
                sql_revision = revision;
                if job.spec.job.sql_from.is_some()
                    && let Some(script) = &resolved.sql
                {
                    // Planned here: validation::validate saw the reference only.
                    spec_errors.extend(validation::sql_errors_of(script, "spec.job.sqlFrom"));
                }
                spec.job = resolved;
            }
            Err(e) => spec_errors.push(e),
        }
    }
    // A first deployment from a StreamJobSnapshot restores from the savepoint it names.
    if let Some(snapshot) = &job.spec.job.initial_savepoint_snapshot
        && status.lifecycle_state == fjord_crds::LifecycleState::Created
        && !deleting
    {
        match crate::snapshots::resolve_initial(&ctx.client, &ns, snapshot).await {
            Ok(path) => spec.job.initial_savepoint_path = Some(path),
            Err(e) => spec_errors.push(e),
        }
    }
    let now = Timestamp::now();
    // The autoscaler decides first: its parallelism overrides spec.job.parallelism, and the
    // lifecycle rescales to it like to any other parallelism.
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let window_start = ctx.window_start(&uid);
    let scaling = autoscaler::step(&autoscaler::Input {
        spec: &job.spec,
        status: &status,
        job: match &observed.job_manager {
            JobManagerView::Job(j) if !deleting => Some(j),
            _ => None,
        },
        window_start: window_start.as_ref(),
        now,
    });
    ctx.set_window(&uid, scaling.window.clone());
    let mut status = status;
    status.autoscaler = scaling.status.clone();
    let spec = autoscaler::effective_spec(&spec, scaling.status.as_ref());
    let mut decision = lifecycle::decide(&Input {
        spec: &spec,
        generation: job.metadata.generation.unwrap_or(0),
        deleting,
        status: &status,
        observed: &observed,
        spec_errors: &spec_errors,
        now,
        settings: &ctx.settings,
    });
    decision.events.extend(scaling.event.clone());
    if let Some(wait) = scaling.requeue {
        // The end of the metrics window (or of the stabilization interval) is a time-based
        // need like a savepoint in flight.
        decision.requeue = decision.requeue.min(wait.max(Duration::from_millis(500)));
    }
    let mut new_status = decision.status.clone();
    if new_status.last_reconciled_spec != status.last_reconciled_spec {
        // A deployment recorded: of the ConfigMap script read in this pass (part of its job ID).
        new_status.sql_revision = sql_revision;
    }
    new_status.selector = Some(resources::selector_string(&name));
    let deployed = new_status
        .last_reconciled_spec
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| job.spec.clone());
    new_status.dashboard_url = Some(resources::dashboard_url(&name, &ns, &job.spec, &deployed));

    // Write-ahead: the status says what is about to happen before it happens. A pass that
    // changes nothing writes nothing (idle objects cost no API server or etcd writes).
    let changed = job.status.as_ref() != Some(&new_status);
    let observed_ms = started.elapsed().as_millis();
    if changed {
        write_status(&api, &name, "StreamJob", &new_status).await?;
        ctx.metrics.status_written();
    }
    // How long this pass took to observe and to write its status (the reaction to a change
    // is the watch's delivery plus these; operator_idle reads them from the log).
    let written_ms = started.elapsed().as_millis();
    ctx.metrics
        .job_state(&format!("{ns}/{name}"), Some(new_status.lifecycle_state));
    let actions: Vec<&str> = decision.actions.iter().map(action_name).collect();
    if changed || !decision.events.is_empty() || actions.iter().any(|a| *a != "ApplyCluster") {
        info!(
            state = new_status.lifecycle_state.as_str(),
            job_state = ?new_status.job_state,
            actions = ?actions,
            observed_ms,
            written_ms,
            "reconciled"
        );
    } else {
        debug!(state = new_status.lifecycle_state.as_str(), "unchanged");
    }
    // The Events go out while the actions run: each is an API call, and an upgrade's next
    // step (deleting the old Pods, say) should not wait behind them. Both always complete.
    let events = async {
        publish_events(job, ctx, &decision).await;
        publish_degraded(job, ctx, &status, &new_status).await;
    };
    let actions = async {
        for action in &decision.actions {
            if let Err(e) = execute(job, ctx, &api, &new_status, action, complete).await {
                match e {
                    // The JobManager being away is an expected state; the next pass observes it.
                    Error::JobManagerUnreachable { .. } | Error::JobManagerApi { .. } => {
                        warn!(action = action_name(action), error = %e, "JobManager action failed; will retry");
                        publish(job, ctx, true, "JobManagerActionFailed", e.to_string()).await;
                    }
                    other => return Err(other),
                }
            }
        }
        Ok(())
    };
    let ((), executed) = futures::join!(events, actions);
    executed?;
    if decision.actions.contains(&Action::RemoveFinalizer) {
        ctx.metrics.job_state(&format!("{ns}/{name}"), None);
        return Ok(ControllerAction::await_change());
    }
    if await_savepoint(ctx, job, &new_status).await {
        // What the savepoint waited for happened: look again at once.
        return Ok(ControllerAction::requeue(Duration::ZERO));
    }
    // Nothing runs and nothing waits on time: only a change of the StreamJob (or of an object
    // it owns) needs another look, and the watch delivers that.
    if new_status.lifecycle_state == fjord_crds::LifecycleState::Suspended
        && decision.actions.is_empty()
        && !observed.cluster_present
    {
        return Ok(ControllerAction::await_change());
    }
    // A job that ended (a bounded job finished) changes no more by itself; a restarted
    // JobManager Pod or a spec change arrives through the watches.
    if idle_finished(&new_status, &decision) {
        return Ok(ControllerAction::await_change());
    }
    Ok(ControllerAction::requeue(decision.requeue))
}

/// How long a pass waits for the savepoint it watches to end before it leaves the rest to the
/// requeue.
const SAVEPOINT_WAIT: Duration = Duration::from_secs(3);

/// How often the JobManager is asked meanwhile.
const SAVEPOINT_POLL: Duration = Duration::from_millis(50);

/// Waits (at most [`SAVEPOINT_WAIT`]) for the savepoint (or rescale in place) `status` watches
/// to complete or fail and, for a savepoint that stops the job (an upgrade's, a deletion's), for the job to end;
/// returns whether that happened. Only the JobManager knows when a savepoint completes, and
/// it usually does within a second or two: asking it closely here, instead of at the next
/// requeue, takes up to a requeue interval off every upgrade's downtime. Returns `false`
/// at once when no savepoint is watched or the JobManager does not answer.
async fn await_savepoint<J: JobManagerApi>(
    ctx: &Context<J>,
    job: &StreamJob,
    status: &StreamJobStatus,
) -> bool {
    let rescale = lifecycle::watched_rescale(status);
    let (Some(trigger), Some(job_id)) = (
        lifecycle::watched_trigger(status).or(rescale),
        &status.job_id,
    ) else {
        return false;
    };
    let stops = status.deletion.is_some()
        || status
            .upgrade
            .as_ref()
            .is_some_and(|u| u.step == fjord_crds::UpgradeStep::StoppingWithSavepoint);
    let Ok(endpoint) = crate::security::endpoint(&ctx.client, job).await else {
        return false;
    };
    let deadline = Instant::now() + SAVEPOINT_WAIT;
    let mut completed = false;
    while Instant::now() < deadline {
        if !completed {
            let answer = match rescale {
                Some(_) => {
                    ctx.jobmanager
                        .rescale_status(&endpoint, job_id, trigger)
                        .await
                }
                None => {
                    ctx.jobmanager
                        .savepoint_status(&endpoint, job_id, trigger)
                        .await
                }
            };
            match answer {
                Ok(SavepointStatus::Completed { .. }) if stops => completed = true,
                Ok(SavepointStatus::Completed { .. } | SavepointStatus::Failed { .. }) => {
                    return true;
                }
                Ok(SavepointStatus::InProgress) => {}
                Ok(SavepointStatus::Unknown) | Err(_) => return false,
            }
        }
        if completed {
            match ctx.jobmanager.job(&endpoint).await {
                Ok(Some(j)) if !j.state.is_terminal() => {}
                _ => return true,
            }
        }
        tokio::time::sleep(SAVEPOINT_POLL).await;
    }
    false
}

/// Whether a pass left a job that ended for good (FINISHED or CANCELLED in `Running`) with
/// nothing in flight and nothing to do but re-apply the children.
fn idle_finished(status: &StreamJobStatus, decision: &Decision) -> bool {
    status.lifecycle_state == fjord_crds::LifecycleState::Running
        && matches!(
            status.job_state,
            Some(fjord_crds::JobState::Finished | fjord_crds::JobState::Cancelled)
        )
        && status.pending_savepoint.is_none()
        && status.upgrade.is_none()
        && status.savepoints_pending_disposal.is_empty()
        && decision.actions.iter().all(|a| *a == Action::ApplyCluster)
}

/// The generation the deployed cluster runs: the one last reconciled, else the object's own.
/// Its job ID (`resources::job_id`) is the ConfigMap's `job.id` and `cluster.id`.
fn deployed_generation(job: &StreamJob, status: &StreamJobStatus) -> i64 {
    status
        .last_reconciled_generation
        .or(job.metadata.generation)
        .unwrap_or(0)
}

/// Gather this pass's observations, and whether both Deployments exist.
async fn observe<J: JobManagerApi>(
    job: &StreamJob,
    status: &StreamJobStatus,
    ctx: &Context<J>,
) -> Result<(Observed, bool), Error> {
    let ns = job
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let name = job.name_any();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    // Both Deployments at once: a pass's reaction time is a chain of API calls.
    let (jm_name, tm_name) = (
        resources::workload_name(&name, Component::JobManager),
        resources::workload_name(&name, Component::TaskManager),
    );
    let (jm, tm) = futures::try_join!(deployments.get_opt(&jm_name), deployments.get_opt(&tm_name))
        .map_err(Error::kube(
            "reading the JobManager and TaskManager Deployments",
        ))?;
    let task_managers = tm.as_ref().map(|d| fjord_crds::TaskManagersStatus {
        desired: d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        ready: d
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
    });
    let cluster_present = jm.is_some() || tm.is_some();
    let complete = jm.is_some() && tm.is_some();
    // Without a cluster there is no JobManager to reach: the endpoint (Secrets read for its
    // token and CA) is resolved only when one is deployed.
    let endpoint = if cluster_present {
        Some(crate::security::endpoint(&ctx.client, job).await?)
    } else {
        None
    };
    // The job ID the deployed generation runs (the ConfigMap's `job.id`): while an upgrade's
    // next cluster starts beside the previous one's terminating Pods, the JobManager Service
    // can still reach the previous JobManager, whose job is not this deployment's.
    let expected_job = resources::job_id(
        job.metadata.uid.as_deref().unwrap_or(&name),
        deployed_generation(job, status),
        status.sql_revision.as_deref(),
    );
    let job_manager = match &endpoint {
        None => JobManagerView::Unreachable("no JobManager is deployed".into()),
        Some(endpoint) => match ctx.jobmanager.job(endpoint).await {
            Ok(Some(info)) if info.id != expected_job => JobManagerView::Unreachable(format!(
                "the JobManager that answered runs job {} of an earlier deployment (its Pods are still terminating), not {expected_job}",
                info.id
            )),
            Ok(Some(info)) => JobManagerView::Job(info),
            Ok(None) => JobManagerView::NoJob,
            Err(e) => JobManagerView::Unreachable(e.to_string()),
        },
    };
    let job_id = match &job_manager {
        JobManagerView::Job(j) => Some(j.id.clone()),
        _ => status.job_id.clone(),
    };
    let mut savepoint = None;
    let mut checkpoint = None;
    let mut latest_checkpoint = None;
    if let (JobManagerView::Job(_), Some(job_id), Some(endpoint)) =
        (&job_manager, &job_id, &endpoint)
    {
        if let Some(trigger) = lifecycle::watched_trigger(status) {
            savepoint = ctx
                .jobmanager
                .savepoint_status(endpoint, job_id, trigger)
                .await
                .map_err(|e| warn!(error = %e, "could not read the savepoint status"))
                .ok();
        }
        if let Some(trigger) = lifecycle::watched_rescale(status) {
            savepoint = ctx
                .jobmanager
                .rescale_status(endpoint, job_id, trigger)
                .await
                .map_err(|e| warn!(error = %e, "could not read the rescale status"))
                .ok();
        }
        if let Some(trigger) = lifecycle::watched_checkpoint(status) {
            checkpoint = ctx
                .jobmanager
                .checkpoint_status(endpoint, job_id, trigger)
                .await
                .map_err(|e| warn!(error = %e, "could not read the checkpoint status"))
                .ok();
        }
        latest_checkpoint = ctx
            .jobmanager
            .latest_checkpoint(endpoint, job_id)
            .await
            .map_err(|e| warn!(error = %e, "could not read the latest checkpoint"))
            .ok()
            .flatten();
    }
    let job_running =
        matches!(&job_manager, JobManagerView::Job(j) if j.state == fjord_crds::JobState::Running);
    let pod_problem = if cluster_present && !job_running {
        pod_problem(ctx, &ns, &name).await
    } else {
        None
    };
    // A running job's containers can crash under it (OOMKilled TaskManagers the kubelet
    // restarts while the JobManager keeps the job RUNNING): looked for on every pass in the
    // Pods the watch holds; the API is asked only for a crash's last log lines.
    let crash_loop = if cluster_present && job_running {
        let pods = ctx.watched_pods(&ns, &name);
        match pods::crash_loop(pods.iter().map(AsRef::as_ref), Timestamp::now()) {
            Some(problem) => Some(with_logs(ctx, &ns, problem).await),
            None => None,
        }
    } else {
        None
    };
    let observed = Observed {
        job_manager,
        cluster_present,
        savepoint,
        checkpoint,
        latest_checkpoint,
        task_managers,
        pod_problem,
        crash_loop,
    };
    Ok((observed, complete))
}

/// Why the StreamJob's Pods do not run, if they do not; with a crashing container's last log
/// lines. Best effort: without RBAC on Pods (an older chart) it says nothing.
async fn pod_problem<J>(ctx: &Context<J>, ns: &str, name: &str) -> Option<pods::PodProblem> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{}={name}", resources::STREAMJOB_LABEL);
    let list = match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list,
        Err(e) => {
            debug!(error = %e, "cannot list the StreamJob's Pods");
            return None;
        }
    };
    let problem = pods::diagnose(&list.items, Timestamp::now())?;
    Some(with_logs(ctx, ns, problem).await)
}

/// `problem` with the crashed container's last log lines (of its previous run, else of this
/// one), if it wants them and they can be read.
async fn with_logs<J>(ctx: &Context<J>, ns: &str, problem: pods::PodProblem) -> pods::PodProblem {
    if !problem.wants_logs {
        return problem;
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let params = |previous| LogParams {
        container: problem.container.clone(),
        tail_lines: Some(10),
        limit_bytes: Some(4096),
        previous,
        ..Default::default()
    };
    let logs = match api.logs(&problem.pod, &params(true)).await {
        Ok(logs) => Some(logs),
        Err(_) => api.logs(&problem.pod, &params(false)).await.ok(),
    };
    match logs {
        Some(logs) => problem.with_logs(&logs),
        None => problem,
    }
}

async fn execute<J: JobManagerApi>(
    job: &StreamJob,
    ctx: &Context<J>,
    api: &Api<StreamJob>,
    status: &StreamJobStatus,
    action: &Action,
    complete: bool,
) -> Result<(), Error> {
    let ns = job
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let name = job.name_any();
    let endpoint = crate::security::endpoint(&ctx.client, job).await?;
    let jm = &ctx.jobmanager;
    match action {
        Action::ApplyCluster => {
            let deployed: StreamJobSpec = match &status.last_reconciled_spec {
                Some(v) => serde_json::from_value(v.clone()).map_err(|source| Error::Serde {
                    what: "status.lastReconciledSpec".into(),
                    source,
                })?,
                None => job.spec.clone(),
            };
            let generation = deployed_generation(job, status);
            let mut desired = resources::desired_at(
                job,
                &deployed,
                status.restore_path.as_deref(),
                (generation, status.sql_revision.as_deref()),
                status.parallelism,
            )?;
            let uid = job.metadata.uid.clone().unwrap_or_default();
            let ingress = resources::ingress(job)?;
            let hash = desired_hash(&desired, ingress.as_ref());
            let request = crate::security::rotation_request(job);
            let timing = &ctx.settings.ca_rotation;
            if complete && ctx.recently_applied(&uid, hash) {
                if ctx.security_due(&uid, request.as_deref()) {
                    // The children stay; the Secrets move on (a rotation step or request).
                    let next = crate::security::ensure(&ctx.client, job, &deployed, timing).await?;
                    ctx.record_security(&uid, request, next);
                }
                return Ok(());
            }
            ctx.record_applied(&uid, None);
            let keep =
                protect_busy_task_managers(ctx, &ns, &name, &endpoint, &desired.taskmanager).await;
            if let Some(replicas) = keep
                && let Some(spec) = desired.taskmanager.spec.as_mut()
            {
                // Not yet safe to shrink: keep the TaskManagers and look again next pass.
                spec.replicas = Some(replicas);
            }
            // The Secrets the Pods mount exist before the Pods do.
            let next = crate::security::ensure(&ctx.client, job, &deployed, timing).await?;
            ctx.record_security(&uid, request, next);
            apply(&ctx.client, &ns, &desired.config_map).await?;
            apply(&ctx.client, &ns, &desired.jobmanager_service).await?;
            apply_jobmanager_rbac(&ctx.client, &ns, &desired).await?;
            apply(&ctx.client, &ns, &desired.jobmanager).await?;
            apply(&ctx.client, &ns, &desired.taskmanager).await?;
            match &ingress {
                Some(ingress) => apply(&ctx.client, &ns, ingress).await?,
                None => {
                    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ns);
                    match api
                        .delete(&resources::ingress_name(&name), &DeleteParams::default())
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => return Err(Error::kube("deleting the REST Ingress")(e)),
                    }
                }
            }
            if keep.is_none() {
                ctx.record_applied(&uid, Some(hash));
            }
        }
        Action::DeleteCluster | Action::ReleaseCluster => {
            ctx.record_applied(&job.metadata.uid.clone().unwrap_or_default(), None);
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
            // Both at once. DeleteCluster: each is a foreground deletion the API server and
            // the garbage collector work through, and the upgrade waits for both to be gone
            // (Pods included). ReleaseCluster: background deletions, the Deployments go at
            // once and the garbage collector removes their Pods while the next cluster starts.
            let (tm_name, jm_name) = (
                resources::workload_name(&name, Component::TaskManager),
                resources::workload_name(&name, Component::JobManager),
            );
            let params = if *action == Action::ReleaseCluster {
                DeleteParams::background()
            } else {
                DeleteParams::foreground()
            };
            let (tm, jm) = futures::join!(
                deployments.delete(&tm_name, &params),
                deployments.delete(&jm_name, &params),
            );
            for result in [tm.map(drop), jm.map(drop)] {
                match result {
                    Ok(()) => {}
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(e) => {
                        return Err(Error::kube("deleting the old JobManager and TaskManagers")(
                            e,
                        ));
                    }
                }
            }
        }
        Action::StopWithSavepoint {
            job_id,
            trigger_id,
            directory,
        } => {
            jm.stop_with_savepoint(&endpoint, job_id, trigger_id, directory)
                .await?
        }
        Action::TriggerSavepoint {
            job_id,
            trigger_id,
            directory,
        } => {
            jm.trigger_savepoint(&endpoint, job_id, trigger_id, directory)
                .await?
        }
        Action::TriggerCheckpoint { job_id, trigger_id } => {
            jm.trigger_checkpoint(
                &endpoint,
                job_id,
                trigger_id,
                fjord_crds::CheckpointType::Configured,
            )
            .await?
        }
        Action::CancelJob { job_id } => jm.cancel(&endpoint, job_id).await?,
        Action::DisposeSavepoints { paths } => {
            let mut remaining = Vec::new();
            for path in paths {
                if let Err(e) = jm.dispose_savepoint(&endpoint, path).await {
                    warn!(path, error = %e, "could not dispose of a savepoint; will retry");
                    remaining.push(path.clone());
                }
            }
            if remaining.len() != paths.len() {
                let disposed: Vec<String> = paths
                    .iter()
                    .filter(|p| !remaining.contains(p))
                    .cloned()
                    .collect();
                crate::snapshots::forget_disposed(&ctx.client, &ns, &name, &disposed).await?;
                let mut s = status.clone();
                s.savepoints_pending_disposal
                    .retain(|p| remaining.contains(p) || !paths.contains(p));
                write_status(api, &name, "StreamJob", &s).await?;
            }
        }
        Action::RecordSnapshot(note) => {
            let snapshot = crate::snapshots::record(&ctx.client, job, note).await?;
            debug!(snapshot, "recorded the savepoint as a StreamJobSnapshot");
        }
        Action::RemoveFinalizer => {
            crate::finalizers::set(api, job, FINALIZER, false).await?;
        }
        Action::ScaleTaskManagers { replicas } => {
            // Only the replicas, with a merge patch: a server-side apply of this field alone
            // would drop the rest of what the operator applied. The next ApplyCluster owns
            // the field again.
            ctx.record_applied(&job.metadata.uid.clone().unwrap_or_default(), None);
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
            deployments
                .patch(
                    &resources::workload_name(&name, Component::TaskManager),
                    &PatchParams {
                        field_manager: Some(FIELD_MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await
                .map_err(Error::kube("scaling the TaskManagers"))?;
        }
        Action::RescaleInPlace {
            job_id,
            trigger_id,
            parallelism,
        } => {
            jm.rescale(&endpoint, job_id, trigger_id, *parallelism)
                .await?
        }
    }
    Ok(())
}

/// The annotation by which a ReplicaSet picks the Pods it removes first (lower cost first).
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// How long a pass waits for the job to run on no more TaskManagers than a shrunk Deployment
/// keeps (the JobManager reports a rescale complete a moment before it placed the new attempt).
const SHRINK_WAIT: Duration = Duration::from_secs(5);

/// Before the TaskManager Deployment shrinks: wait (at most [`SHRINK_WAIT`]) until the job
/// runs on no more TaskManagers than will stay, then mark the TaskManager Pods it runs on with
/// a higher deletion cost than the idle ones, so the ReplicaSet removes idle TaskManagers and
/// the job (just rescaled in place to fewer subtasks) is not restarted by the loss of one of
/// its own. Returns the replicas to keep instead when that could not be made sure yet (the
/// next pass tries again). Without an answer about the TaskManagers at all (an older
/// JobManager, no right to patch Pods) the ReplicaSet chooses as it would anyway.
async fn protect_busy_task_managers<J: JobManagerApi>(
    ctx: &Context<J>,
    ns: &str,
    name: &str,
    endpoint: &JobManagerEndpoint,
    desired: &Deployment,
) -> Option<i32> {
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let wanted = desired.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let current = match deployments
        .get_opt(&resources::workload_name(name, Component::TaskManager))
        .await
    {
        Ok(Some(d)) => d.spec.and_then(|s| s.replicas).unwrap_or(1),
        _ => return None,
    };
    if wanted >= current {
        return None;
    }
    let deadline = Instant::now() + SHRINK_WAIT;
    let busy = loop {
        let running = matches!(
            ctx.jobmanager.job(endpoint).await,
            Ok(Some(j)) if j.state == fjord_crds::JobState::Running
        );
        match ctx.jobmanager.busy_task_managers(endpoint).await {
            Ok(busy) if running && !busy.is_empty() && busy.len() <= wanted as usize => {
                break busy;
            }
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            // No TaskManager in use at all: a JobManager that does not report it (an older
            // image); shrink as the ReplicaSet chooses.
            Ok(busy) if busy.is_empty() => return None,
            Ok(busy) => {
                debug!(
                    ?busy,
                    wanted, "the job does not run on the TaskManagers that stay yet"
                );
                return Some(current);
            }
            Err(e) => {
                warn!(error = %e, "cannot tell which TaskManagers run the job; scaling down without a preference");
                return None;
            }
        }
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = resources::selector(name, Component::TaskManager)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else {
        return None;
    };
    for pod in list.items {
        let pod_name = pod.name_any();
        let cost = if busy.contains(&pod_name) { "1" } else { "0" };
        if pod.annotations().get(POD_DELETION_COST).map(String::as_str) == Some(cost) {
            continue;
        }
        let patch = json!({"metadata": {"annotations": {POD_DELETION_COST: cost}}});
        if let Err(e) = pods
            .patch(
                &pod_name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Merge(&patch),
            )
            .await
        {
            warn!(pod = pod_name, error = %e, "cannot set the Pod's deletion cost");
        }
    }
    None
}

/// A hash of the desired children, to tell whether they changed since the last apply.
fn desired_hash(desired: &resources::Desired, ingress: Option<&Ingress>) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for v in [
        serde_json::to_string(&desired.config_map),
        serde_json::to_string(&desired.jobmanager_service),
        serde_json::to_string(&desired.jobmanager),
        serde_json::to_string(&desired.taskmanager),
        serde_json::to_string(&ingress),
    ] {
        v.unwrap_or_default().hash(&mut h);
    }
    h.finish()
}

async fn publish_events<J>(job: &StreamJob, ctx: &Context<J>, decision: &Decision) {
    let regarding = job.object_ref(&());
    for e in &decision.events {
        ctx.events
            .publish_reconcile(&regarding, e.warning, e.reason, &e.message)
            .await;
    }
}

async fn publish<J>(job: &StreamJob, ctx: &Context<J>, warning: bool, reason: &str, note: String) {
    ctx.events
        .publish_reconcile(&job.object_ref(&()), warning, reason, &note)
        .await;
}

/// A Warning Event for every new `Degraded` reason or message, so `kubectl describe` and
/// `kubectl get events` show each problem the status reports (InvalidSpec, DeploymentStuck, ...).
async fn publish_degraded<J>(
    job: &StreamJob,
    ctx: &Context<J>,
    old: &StreamJobStatus,
    new: &StreamJobStatus,
) {
    let degraded = |s: &StreamJobStatus| {
        s.conditions
            .iter()
            .find(|c| c.type_ == crate::conditions::DEGRADED && c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    if let Some((reason, message)) = degraded(new)
        && degraded(old).as_ref() != Some(&(reason.clone(), message.clone()))
    {
        publish(job, ctx, true, &reason, message).await;
    }
}

/// Best effort: put the failure on the StreamJob as `Degraded` and an Event, so users see it
/// with kubectl instead of in the operator's logs only. Only `error` and `conditions` are
/// patched: the rest of the status may hold a write-ahead record newer than `job`.
async fn report_failure<J>(job: &StreamJob, ctx: &Context<J>, error: &Error) {
    let Some(ns) = job.namespace() else { return };
    let name = job.name_any();
    warn!(streamjob = %format!("{ns}/{name}"), error = %error, "reconcile failed");
    let api: Api<StreamJob> = Api::namespaced(ctx.client.clone(), &ns);
    let mut status = job.status.clone().unwrap_or_default();
    let message = error.to_string();
    crate::conditions::update(
        &mut status,
        Some(&("ReconcileError", message.clone())),
        Timestamp::now(),
    );
    let patch = json!({"status": {"error": message, "conditions": status.conditions}});
    if let Err(e) = api
        .patch_status(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await
    {
        warn!(error = %e, "could not write the Degraded condition");
    }
    publish(job, ctx, true, "ReconcileError", message).await;
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::ApplyCluster => "ApplyCluster",
        Action::DeleteCluster => "DeleteCluster",
        Action::ReleaseCluster => "ReleaseCluster",
        Action::StopWithSavepoint { .. } => "StopWithSavepoint",
        Action::TriggerSavepoint { .. } => "TriggerSavepoint",
        Action::TriggerCheckpoint { .. } => "TriggerCheckpoint",
        Action::CancelJob { .. } => "CancelJob",
        Action::DisposeSavepoints { .. } => "DisposeSavepoints",
        Action::RemoveFinalizer => "RemoveFinalizer",
        Action::RecordSnapshot(_) => "RecordSnapshot",
        Action::ScaleTaskManagers { .. } => "ScaleTaskManagers",
        Action::RescaleInPlace { .. } => "RescaleInPlace",
    }
}
