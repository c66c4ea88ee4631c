//! The TaskManager's control-plane service (`fjord.v1.TaskManagerService`): the JobManager
//! deploys this TaskManager's subtasks of an attempt, cancels them, and sends checkpoint
//! commands to them. Tasks report back (acknowledgements, declines, finished inputs, the end
//! of this TaskManager's part) over the JobManager's service.
//!
//! Several jobs may run here at once (a session JobManager shares its TaskManagers' slots
//! between jobs): attempts are kept per job ID, and fencing applies within one job.
//!
//! Fencing: a deployment from an older JobManager epoch, or of an attempt older than the one
//! of the same job running, is refused; a newer one cancels what runs first (its tasks end before the new ones
//! start, bounded by [`CANCEL_WAIT`]) and fences the data server, so a zombie of an older
//! attempt can neither exchange data with the new one nor be told to commit.

use crate::control;
use fjord::checkpoint::CheckpointingMode;
use fjord::cluster::{DeployedTasks, TaskReport};
use fjord::network::DataServer;
use fjord::storage::StorageOptions;
use fjord::{FjordError, JobArgs, JobRegistry, StreamExecutionEnvironment};
use fjord_proto::v1::job_manager_service_client::JobManagerServiceClient;
use fjord_proto::v1::task_manager_service_server::TaskManagerService;
use fjord_proto::v1::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// How long a newer deployment waits for the tasks of the one it replaces to end.
pub const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// An attempt running here (one per job).
struct Current {
    job: JobAttempt,
    epoch: u64,
    tasks: Arc<DeployedTasks>,
}

/// What the service shares with the TaskManager's registration loop.
pub struct TaskService {
    id: String,
    jobs: JobRegistry,
    server: Arc<DataServer>,
    storage_options: StorageOptions,
    jm: JobManagerServiceClient<Channel>,
    runtime: tokio::runtime::Handle,
    /// The attempt of each job deployed here, by job ID.
    current: Mutex<BTreeMap<String, Current>>,
    /// The newest JobManager epoch seen; older ones are fenced.
    epoch: Mutex<u64>,
}

impl std::fmt::Debug for TaskService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskService").field("id", &self.id).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Builds the job as the JobManager did: its settings first, then the job's own code.
fn build_env(
    jobs: &JobRegistry,
    name: &str,
    args: &[String],
    settings: &JobSettings,
    storage_options: &StorageOptions,
) -> fjord::Result<StreamExecutionEnvironment> {
    let env = StreamExecutionEnvironment::new();
    if settings.parallelism > 0 {
        env.set_parallelism(settings.parallelism as usize);
    }
    if settings.max_parallelism > 0 {
        env.set_max_parallelism(settings.max_parallelism as usize);
    }
    if settings.checkpoint_interval_ms > 0 {
        env.enable_checkpointing(Duration::from_millis(settings.checkpoint_interval_ms));
    }
    env.checkpoint_config(|c| {
        if !settings.checkpoint_storage.is_empty() {
            c.storage = settings.checkpoint_storage.clone();
        }
        if settings.at_least_once {
            c.mode = CheckpointingMode::AtLeastOnce;
        }
        c.storage_options = storage_options.clone();
    });
    let args = JobArgs::parse(args.iter().cloned())?;
    jobs.build(name, &env, &args)?;
    Ok(env)
}

impl TaskService {
    /// A service for TaskManager `id` running jobs of `jobs`, exchanging data through
    /// `server` and reporting to the JobManager through `jm`.
    pub fn new(
        id: String,
        jobs: JobRegistry,
        server: Arc<DataServer>,
        storage_options: StorageOptions,
        jm: JobManagerServiceClient<Channel>,
        runtime: tokio::runtime::Handle,
    ) -> Arc<Self> {
        Arc::new(TaskService {
            id,
            jobs,
            server,
            storage_options,
            jm,
            runtime,
            current: Mutex::new(BTreeMap::new()),
            epoch: Mutex::new(0),
        })
    }

    /// Cancels whatever runs (when this TaskManager registers with a new JobManager epoch,
    /// the old JobManager's tasks must not go on) and waits for it to end.
    pub fn cancel_all(&self) {
        let current = std::mem::take(&mut *lock(&self.current));
        for c in current.into_values() {
            tracing::info!(
                attempt = c.job.attempt,
                "cancelling tasks of an older JobManager"
            );
            c.tasks.cancel();
            wait_ended(&c.tasks);
        }
    }

    /// Records `epoch` as seen; returns false when it is older than one seen before.
    fn accept_epoch(&self, epoch: u64) -> bool {
        let mut seen = lock(&self.epoch);
        if epoch < *seen {
            return false;
        }
        *seen = epoch;
        true
    }

    /// How tasks' reports reach the JobManager.
    fn reporter(&self, job: JobAttempt) -> Arc<dyn Fn(TaskReport) + Send + Sync> {
        let (jm, runtime, id) = (self.jm.clone(), self.runtime.clone(), self.id.clone());
        Arc::new(move |report| {
            let mut jm = jm.clone();
            let message = control::report_message(&job, &id, report);
            runtime.spawn(async move {
                let result = match message {
                    control::ReportMessage::Ack(r) => {
                        jm.acknowledge_checkpoint(r).await.map(|_| ())
                    }
                    control::ReportMessage::Decline(r) => {
                        jm.decline_checkpoint(r).await.map(|_| ())
                    }
                    control::ReportMessage::Finished(r) => {
                        jm.update_task_state(r).await.map(|_| ())
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e.message(), "cannot report to the JobManager");
                }
            });
        })
    }

    /// Deploys (blocking: builds the job and starts threads).
    fn deploy(self: &Arc<Self>, r: DeployAttemptRequest) -> Result<Vec<u32>, String> {
        let job = r.job.clone().unwrap_or_default();
        if !self.accept_epoch(r.job_manager_epoch) {
            return Err(format!(
                "fenced: the deployment comes from an older JobManager (epoch {} < {})",
                r.job_manager_epoch,
                lock(&self.epoch)
            ));
        }
        let plan = control::plan_from_request(&r)?;
        {
            let previous = lock(&self.current).remove(&job.job_id);
            if let Some(p) = previous {
                if (p.epoch, p.job.attempt) > (r.job_manager_epoch, job.attempt) {
                    let message = format!(
                        "fenced: attempt {} is older than attempt {} running here",
                        job.attempt, p.job.attempt
                    );
                    lock(&self.current).insert(job.job_id.clone(), p);
                    return Err(message);
                }
                p.tasks.cancel();
                wait_ended(&p.tasks);
            }
        }
        self.server
            .fence(&job.job_id, r.job_manager_epoch, job.attempt as u32);
        let settings = r.settings.clone().unwrap_or_default();
        let env = build_env(
            &self.jobs,
            &r.job_name,
            &r.job_args,
            &settings,
            &self.storage_options,
        )
        .map_err(|e| format!("cannot build job '{}': {e}", r.job_name))?;
        let tasks = env
            .start_tasks(
                &r.job_name,
                &plan,
                &self.id,
                &self.server,
                self.reporter(job.clone()),
            )
            .map_err(|e| format!("cannot start the tasks of job '{}': {e}", r.job_name))?;
        let numbers: Vec<u32> = tasks.tasks().iter().map(|t| *t as u32).collect();
        let tasks = Arc::new(tasks);
        lock(&self.current).insert(
            job.job_id.clone(),
            Current {
                job: job.clone(),
                epoch: r.job_manager_epoch,
                tasks: tasks.clone(),
            },
        );
        tracing::info!(attempt = job.attempt, tasks = ?numbers, "tasks deployed");
        self.watch(job, r.job_manager_epoch, tasks)?;
        Ok(numbers)
    }

    /// Waits (on its own thread) for the tasks to end and tells the JobManager.
    fn watch(
        self: &Arc<Self>,
        job: JobAttempt,
        epoch: u64,
        tasks: Arc<DeployedTasks>,
    ) -> Result<(), String> {
        let service = self.clone();
        std::thread::Builder::new()
            .name(format!("attempt {} watcher", job.attempt))
            .spawn(move || {
                let outcome = tasks.wait();
                let (state, failure) = match &outcome {
                    Ok(()) => (TaskState::Finished, String::new()),
                    Err(FjordError::Cancelled) => (TaskState::Canceled, String::new()),
                    Err(e) => (TaskState::Failed, e.to_string()),
                };
                tracing::info!(attempt = job.attempt, ?state, %failure, "tasks ended");
                // The final counts, so the JobManager reports them exactly once the job ended.
                let task_metrics = tasks
                    .io_metrics()
                    .snapshot()
                    .iter()
                    .map(|io| control::task_metrics(&job, io))
                    .collect();
                let operator_metrics = control::operator_metrics(&job, &tasks.metrics());
                let request = AttemptEndedRequest {
                    task_manager_id: service.id.clone(),
                    job: Some(job),
                    job_manager_epoch: epoch,
                    state: state as i32,
                    failure,
                    task_metrics,
                    operator_metrics,
                };
                let mut jm = service.jm.clone();
                // A few tries: the JobManager may be briefly unreachable; if it is gone, the
                // next one redeploys anyway.
                for _ in 0..5 {
                    let sent = service
                        .runtime
                        .block_on(jm.attempt_ended(request.clone()))
                        .is_ok();
                    if sent {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
            .map(|_| ())
            .map_err(|e| format!("cannot start a thread: {e}"))
    }

    /// This TaskManager's metrics in the Prometheus text format: per task of the running
    /// attempt its records, bytes, busy/idle/backpressured time and watermarks, and its
    /// operators' own counters and gauges.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let current: Vec<_> = lock(&self.current)
            .values()
            .map(|c| (c.job.clone(), c.tasks.io_metrics(), c.tasks.metrics()))
            .collect();
        out.push_str("# HELP fjord_taskmanager_info This TaskManager (always 1).\n");
        out.push_str("# TYPE fjord_taskmanager_info gauge\n");
        out.push_str(&format!(
            "fjord_taskmanager_info{{taskmanager_id=\"{}\"}} 1\n",
            crate::prometheus::escape(&self.id)
        ));
        for (job, io, metrics) in current {
            let attempt = job.attempt.to_string();
            let common = [
                ("taskmanager_id", self.id.as_str()),
                ("job_id", job.job_id.as_str()),
                ("attempt", attempt.as_str()),
            ];
            crate::prometheus::render_tasks(&mut out, &io.snapshot(), &common, &|o| {
                o.operator.clone()
            });
            crate::prometheus::render_operator_metrics(&mut out, &metrics.samples(), &common);
        }
        out
    }

    /// The metrics of the tasks of the attempt deployed here by the JobManager of `epoch`
    /// (running, or ended and not yet replaced), for the next heartbeat; empty when nothing of
    /// that JobManager was deployed.
    pub fn task_metrics(&self, epoch: u64) -> Vec<TaskMetrics> {
        let current: Vec<_> = lock(&self.current)
            .values()
            .filter(|c| c.epoch == epoch)
            .map(|c| (c.job.clone(), c.tasks.io_metrics()))
            .collect();
        current
            .into_iter()
            .flat_map(|(job, io)| {
                io.snapshot()
                    .iter()
                    .map(|o| control::task_metrics(&job, o))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The operator metrics of the attempt deployed here by the JobManager of `epoch`, for
    /// the next heartbeat (empty as [`task_metrics`](Self::task_metrics) is).
    pub fn operator_metrics(&self, epoch: u64) -> Vec<fjord_proto::v1::OperatorMetric> {
        let current: Vec<_> = lock(&self.current)
            .values()
            .filter(|c| c.epoch == epoch)
            .map(|c| (c.job.clone(), c.tasks.metrics()))
            .collect();
        current
            .into_iter()
            .flat_map(|(job, metrics)| control::operator_metrics(&job, &metrics))
            .collect()
    }

    fn current_if(&self, job: Option<&JobAttempt>, epoch: u64) -> Option<Arc<DeployedTasks>> {
        let job = job?;
        let current = lock(&self.current);
        let c = current.get(&job.job_id)?;
        (&c.job == job && c.epoch == epoch).then(|| c.tasks.clone())
    }
}

/// Waits until `tasks` ended, at most [`CANCEL_WAIT`].
fn wait_ended(tasks: &DeployedTasks) {
    let deadline = Instant::now() + CANCEL_WAIT;
    while !tasks.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn per_task_rpc(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what}: this TaskManager deploys and commands whole attempts (DeployAttempt, \
         CancelAttempt, SendTaskCommand)"
    ))
}

/// The gRPC face of a [`TaskService`].
#[derive(Debug, Clone)]
pub struct TaskManagerRpc(pub Arc<TaskService>);

#[tonic::async_trait]
impl TaskManagerService for TaskManagerRpc {
    async fn deploy_task(
        &self,
        _: Request<DeployTaskRequest>,
    ) -> Result<Response<DeployTaskResponse>, Status> {
        Err(per_task_rpc("DeployTask"))
    }

    async fn cancel_task(
        &self,
        _: Request<CancelTaskRequest>,
    ) -> Result<Response<CancelTaskResponse>, Status> {
        Err(per_task_rpc("CancelTask"))
    }

    async fn trigger_checkpoint(
        &self,
        _: Request<TriggerCheckpointRequest>,
    ) -> Result<Response<TriggerCheckpointResponse>, Status> {
        Err(per_task_rpc("TriggerCheckpoint"))
    }

    async fn notify_checkpoint_complete(
        &self,
        _: Request<CheckpointCompleteRequest>,
    ) -> Result<Response<CheckpointCompleteResponse>, Status> {
        Err(per_task_rpc("NotifyCheckpointComplete"))
    }

    async fn deploy_attempt(
        &self,
        request: Request<DeployAttemptRequest>,
    ) -> Result<Response<DeployAttemptResponse>, Status> {
        let service = self.0.clone();
        let r = request.into_inner();
        let outcome = tokio::task::spawn_blocking(move || service.deploy(r))
            .await
            .map_err(|e| Status::internal(format!("deployment panicked: {e}")))?;
        Ok(Response::new(match outcome {
            Ok(tasks) => DeployAttemptResponse {
                accepted: true,
                refusal: String::new(),
                tasks,
            },
            Err(refusal) => {
                tracing::warn!(%refusal, "deployment refused");
                DeployAttemptResponse {
                    accepted: false,
                    refusal,
                    tasks: Vec::new(),
                }
            }
        }))
    }

    async fn cancel_attempt(
        &self,
        request: Request<CancelAttemptRequest>,
    ) -> Result<Response<CancelAttemptResponse>, Status> {
        let r = request.into_inner();
        let tasks = self.0.current_if(r.job.as_ref(), r.job_manager_epoch);
        if let Some(t) = &tasks {
            t.cancel();
        }
        Ok(Response::new(CancelAttemptResponse {
            was_running: tasks.is_some_and(|t| !t.is_finished()),
        }))
    }

    async fn send_task_command(
        &self,
        request: Request<TaskCommandRequest>,
    ) -> Result<Response<TaskCommandResponse>, Status> {
        let r = request.into_inner();
        let Some(tasks) = self.0.current_if(r.job.as_ref(), r.job_manager_epoch) else {
            return Ok(Response::new(TaskCommandResponse { fenced: true }));
        };
        let command = control::command_from_request(&r).map_err(Status::invalid_argument)?;
        tasks
            .command(r.task_index as usize, command)
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(TaskCommandResponse { fenced: false }))
    }
}
