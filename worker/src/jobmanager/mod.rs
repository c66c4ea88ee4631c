//! `fjord jobmanager`: the JobManager role in application mode — one JobManager runs one job —
//! or, with `--session` ([`session`]), a session JobManager that runs the jobs submitted to it
//! over REST side by side, sharing its TaskManagers' slots ([`slots`]).
//!
//! It builds the named job from the binary's registry with its arguments and checkpoint
//! settings (optionally restoring a savepoint), runs it, and serves the REST API and `/metrics`.
//! With `jobmanager.scheduler: embedded` (the default) every subtask runs inside the
//! JobManager process on the embedded mini-cluster. With `jobmanager.scheduler: taskmanagers`
//! (what the operator configures) the JobManager keeps the engine's restart loop and
//! checkpoint coordinator and deploys every subtask to the slots TaskManagers offered over gRPC
//! ([`rpc`], [`registry`], [`deployer`]); it waits for enough slots before it starts
//! (`jobmanager.wait-for-slots`) and reports the TaskManagers under `GET /v1/taskmanagers`.
//!
//! After the job ends the JobManager keeps serving its final state (so the operator can read
//! it) until SIGTERM or SIGINT, unless `jobmanager.exit-on-finish` is set. SIGTERM or SIGINT
//! suspends a running job (its tasks stop, its completed checkpoints stay, so the next
//! JobManager of the same job ID resumes from the latest: a Pod eviction is not the end of the
//! job), waits for its tasks to stop, stops the REST server and exits; a second signal exits
//! at once. Only an explicit cancel (REST) deletes checkpoints, and only without
//! `checkpointing.retain-on-cancellation`. Exit codes are in [`crate::exit`].
//!
//! Modules: [`config`] merges flags, environment and config file; [`job`] is the job's
//! lifecycle and what the API reports about it; [`rest`] is the HTTP API; [`metrics`] the
//! Prometheus exposition; [`registry`] the TaskManagers and their slots; [`rpc`] the gRPC
//! control plane over the registry. `rest` and `metrics` read `job` and `registry`; nothing
//! depends on `rest`. [`dashboard`] serves the web dashboard's files at `/`, and
//! [`rest_dashboard`] the REST endpoints only the dashboard needed (part of `rest`'s API).
//! [`ha`] is leader election for standby JobManagers: with `high-availability.type` set, [`run`]
//! first waits for the lease, then binds its ports and recovers the job; losing the lease
//! exits the process with [`exit::LEADERSHIP_LOST`]. [`deployer`] places an attempt's subtasks
//! on TaskManager slots and routes checkpoint commands and task reports; [`task_metrics`] keeps
//! the metrics TaskManagers report; [`rest_auth`] and [`rest_limits`] are the REST API's bearer
//! token check and request-size limit; [`session`] is session mode (`--session`), whose jobs
//! share TaskManager slots through [`slots`].

pub mod config;
pub mod dashboard;
pub mod deployer;
pub mod ha;
pub mod job;
pub mod metrics;
pub mod registry;
pub mod rest;
pub mod rest_auth;
pub mod rest_dashboard;
pub mod rest_limits;
pub mod rpc;
pub mod session;
pub mod session_store;
pub mod slots;
pub mod task_metrics;

use crate::{WorkerError, exit};
use config::JobManagerConfig;
use fjord::JobRegistry;
use fjord::storage::StorageOptions;
use fjord_client::api::{ClusterConfig, JobState};
use job::JobManager;
use registry::TaskManagerRegistry;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// What the REST API serves: the configuration, and the job once it is built.
#[derive(Debug)]
pub struct JobManagerState {
    config: ClusterConfig,
    storage_options: StorageOptions,
    job: OnceLock<Arc<JobManager>>,
    /// In session mode: the submitted jobs.
    session: OnceLock<Arc<session::Session>>,
    task_managers: Arc<TaskManagerRegistry>,
    router: Arc<deployer::AttemptRouter>,
}

impl JobManagerState {
    /// A JobManager with no job yet (not ready).
    pub fn new(config: &JobManagerConfig, rest_port: u16) -> Arc<Self> {
        // The fencing epoch: the start time, so a restarted JobManager's is higher.
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        Self::with_epoch(config, rest_port, epoch)
    }

    /// [`new`](Self::new) with the fencing epoch TaskManagers see (a leader's, see
    /// [`ha::Leadership::task_manager_epoch`]).
    pub fn with_epoch(config: &JobManagerConfig, rest_port: u16, epoch: u64) -> Arc<Self> {
        Arc::new(JobManagerState {
            config: config.to_api(rest_port),
            storage_options: StorageOptions::from_pairs(config.storage_options.clone()),
            job: OnceLock::new(),
            session: OnceLock::new(),
            task_managers: Arc::new(
                TaskManagerRegistry::new(epoch, config.heartbeat)
                    .for_cluster(config.cluster_id.as_deref()),
            ),
            router: Arc::default(),
        })
    }

    /// Routes TaskManagers' task reports to the running attempt.
    pub fn router(&self) -> &Arc<deployer::AttemptRouter> {
        &self.router
    }

    /// The TaskManagers registered over the RPC port.
    pub fn task_managers(&self) -> &Arc<TaskManagerRegistry> {
        &self.task_managers
    }

    /// Storage settings for disposing of savepoints.
    pub fn storage_options(&self) -> StorageOptions {
        self.storage_options.clone()
    }

    /// The job, once built.
    pub fn job(&self) -> Option<Arc<JobManager>> {
        self.job.get().cloned()
    }

    /// Sets the job (the JobManager becomes ready). A second call is ignored.
    pub fn set_job(&self, job: Arc<JobManager>) {
        let _ = self.job.set(job);
    }

    /// The session, when the JobManager runs in session mode.
    pub fn session(&self) -> Option<Arc<session::Session>> {
        self.session.get().cloned()
    }

    /// Makes this a session JobManager (it becomes ready). A second call is ignored.
    pub fn set_session(&self, session: Arc<session::Session>) {
        let _ = self.session.set(session);
    }

    /// The job with ID `id`: the application's job, or one of the session's.
    pub fn job_by_id(&self, id: &str) -> Option<Arc<JobManager>> {
        match self.session() {
            Some(session) => session.job(id),
            None => self.job().filter(|j| j.id() == id),
        }
    }

    /// Every job: the application's (once built), or the session's.
    pub fn all_jobs(&self) -> Vec<Arc<JobManager>> {
        match self.session() {
            Some(session) => session.jobs(),
            None => self.job().into_iter().collect(),
        }
    }

    /// The effective configuration.
    pub fn config(&self) -> ClusterConfig {
        self.config.clone()
    }
}

/// How the REST API is served.
#[derive(Debug, Clone)]
pub struct RestOptions {
    /// TLS (`None`: plain HTTP).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The bearer-token rule; requests without the token are answered 401 (`None`: no
    /// authentication).
    pub auth: Option<Arc<rest_auth::RestAuth>>,
    /// Largest request body in bytes (see [`rest_limits`]).
    pub max_content_length: u64,
}

impl Default for RestOptions {
    fn default() -> Self {
        RestOptions {
            tls: None,
            auth: None,
            max_content_length: config::DEFAULT_REST_MAX_CONTENT_LENGTH,
        }
    }
}

/// A running REST server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `address:port` and serves the REST API over `state` in the background.
    ///
    /// # Errors
    /// [`WorkerError::Serve`] when the address cannot be bound (port in use, bad address).
    pub async fn start(
        address: &str,
        port: u16,
        state: Arc<JobManagerState>,
    ) -> Result<Server, WorkerError> {
        Self::start_secured(address, port, state, RestOptions::default()).await
    }

    /// [`Server::start`] with the TLS, authentication and request limits of `options`.
    ///
    /// # Errors
    /// [`WorkerError::Serve`] when the address cannot be bound (port in use, bad address).
    pub async fn start_secured(
        address: &str,
        port: u16,
        state: Arc<JobManagerState>,
        options: RestOptions,
    ) -> Result<Server, WorkerError> {
        let RestOptions {
            tls,
            auth,
            max_content_length,
        } = options;
        let listener = tokio::net::TcpListener::bind((address, port))
            .await
            .map_err(|source| WorkerError::Serve {
                address: format!("{address}:{port}"),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| WorkerError::Serve {
            address: format!("{address}:{port}"),
            source,
        })?;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let mut app = rest_limits::limit_bodies(
            rest::router(state).merge(dashboard::router()),
            max_content_length,
        );
        if let Some(auth) = auth {
            app = app.layer(axum::middleware::from_fn_with_state(auth, rest_auth::check));
        }
        let stop = async {
            // A dropped sender (the server dropped without `stop`) stops it as well.
            let _ = stop.await;
        };
        let task = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            }),
            Some(tls) => {
                let listener =
                    crate::tls::TlsIncoming::new(listener, tls, "REST").map_err(|source| {
                        WorkerError::Serve {
                            address: format!("{address}:{port}"),
                            source,
                        }
                    })?;
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop)
                        .await
                })
            }
        };
        Ok(Server {
            addr,
            shutdown,
            task,
        })
    }

    /// Stops accepting connections, lets requests in flight finish, and returns.
    pub async fn stop(self) {
        // The server may have ended already (receiver gone); how it ended changes nothing
        // now that it is being stopped (a panic was reported by the panic hook).
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Why the JobManager's main loop ended.
enum Ended {
    /// The job ended (and `exit-on-finish` is set).
    Job(JobState),
    /// SIGTERM or SIGINT.
    Signal,
}

/// The two-thread tokio runtime a role (JobManager, TaskManager) serves on.
pub(crate) fn runtime(thread_name: &str) -> Result<tokio::runtime::Runtime, WorkerError> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(thread_name)
        .enable_all()
        .build()
        .map_err(|e| fjord::FjordError::io("cannot start the tokio runtime", e))?)
}

/// Waits for SIGTERM or SIGINT (also used by the TaskManager role).
///
/// A signal that cannot be listened for is logged and never arrives: the process keeps
/// running (it is stopped by the other signal or by SIGKILL), rather than stopping at once as
/// if it had been asked to.
pub(crate) async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    () = interrupt() => {}
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot listen for SIGTERM; only SIGINT stops this process"
                );
                interrupt().await;
            }
        }
    }
    #[cfg(not(unix))]
    interrupt().await;
}

/// Waits for SIGINT (Ctrl-C); waits forever when it cannot be listened for.
async fn interrupt() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for SIGINT (Ctrl-C); it will not stop this process");
        std::future::pending::<()>().await;
    }
}

/// The exit code for a job that reached `state`.
pub fn exit_code_for(state: JobState) -> u8 {
    match state {
        JobState::Finished => exit::SUCCESS,
        JobState::Failed => exit::JOB_FAILED,
        _ => exit::CANCELLED,
    }
}

/// Runs the JobManager until its job ends (with `exit-on-finish`) or a signal arrives, and
/// returns the exit code (see [`crate::exit`]).
///
/// # Errors
/// Configuration and job-building errors (exit code 2), a REST or RPC port that cannot be
/// bound (exit code 3), and too few slots within `jobmanager.wait-for-slots` (exit code 4);
/// nothing runs then.
pub fn run(registry: &JobRegistry, config: JobManagerConfig) -> Result<u8, WorkerError> {
    let s3 = [&config.storage_url, &config.savepoint_dir]
        .iter()
        .any(|u| u.as_deref().is_some_and(|u| u.starts_with("s3://")));
    crate::credentials::check_env(Some(s3), &config.storage_options)?;
    let runtime = runtime("fjord-jm")?;
    let leadership = match &config.ha {
        None => None,
        Some(ha) => match lead(&runtime, ha, &config)? {
            Some(leadership) => Some(leadership),
            // A signal while standing by: nothing ran.
            None => return Ok(exit::CANCELLED),
        },
    };
    let state = match &leadership {
        Some(l) => JobManagerState::with_epoch(&config, config.rest_port, l.task_manager_epoch()),
        None => JobManagerState::new(&config, config.rest_port),
    };
    let rest_tls = config.security.rest_tls()?;
    let rest_auth = rest_auth::RestAuth::load(&config.security.rest_auth)?;
    let internal_tls = config.security.internal_tls()?;
    let scheme = if rest_tls.is_some() { "https" } else { "http" };
    // Serve first, so health checks answer and a busy port fails fast.
    let server = runtime.block_on(Server::start_secured(
        &config.rest_address,
        config.rest_port,
        state.clone(),
        RestOptions {
            tls: rest_tls,
            auth: rest_auth.clone(),
            max_content_length: config.rest_max_content_length,
        },
    ))?;
    eprintln!(
        "JobManager REST API listening on {scheme}://{} ({}; subtasks run {})",
        server.addr,
        if rest_auth.is_some() {
            "bearer token required"
        } else {
            "no authentication"
        },
        if config.on_task_managers {
            "on TaskManagers"
        } else {
            "in this process"
        }
    );
    let rpc = match runtime.block_on(rpc::RpcServer::start_tls(
        &config.rpc_address,
        config.rpc_port,
        state.task_managers().clone(),
        state.router().clone(),
        internal_tls.as_ref(),
    )) {
        Ok(rpc) => rpc,
        Err(e) => {
            runtime.block_on(server.stop());
            return Err(e);
        }
    };
    eprintln!(
        "JobManager RPC (TaskManager registration) listening on {}",
        rpc.addr
    );
    if internal_tls.is_some() {
        eprintln!("Control plane and data plane use mutual TLS (security.ssl.internal)");
    }
    if config.session {
        return run_session(
            registry,
            &config,
            &runtime,
            &state,
            (server, rpc),
            internal_tls,
            leadership,
        );
    }
    let wait_for_slots = |_: &str, plan: &fjord::JobPlan| {
        if config.wait_for_slots.is_zero() {
            return Ok(());
        }
        let required = plan.required_slots() as u32;
        eprintln!(
            "Waiting up to {:?} for TaskManagers to offer {required} slots...",
            config.wait_for_slots
        );
        runtime
            .block_on(
                state
                    .task_managers()
                    .wait_for_slots(required, config.wait_for_slots),
            )
            .map_err(|e| WorkerError::NotEnoughSlots {
                required: e.required,
                available: e.available,
                waited_ms: e.waited.as_millis() as u64,
            })
    };
    if config.on_task_managers {
        state.task_managers().set_deploys_to_task_managers();
    }
    let cluster = config.on_task_managers.then(|| job::ClusterParts {
        registry: state.task_managers().clone(),
        router: state.router().clone(),
        runtime: runtime.handle().clone(),
        tls: internal_tls.clone(),
    });
    let job = match JobManager::start_when(registry, &config, wait_for_slots, cluster) {
        Ok(job) => job,
        Err(e) => {
            runtime.block_on(async {
                rpc.stop().await;
                server.stop().await;
            });
            return Err(e);
        }
    };
    state.set_job(job.clone());
    if !job.state().is_terminal() {
        eprintln!("Job '{}' ({}) is running.", job.name(), job.id());
    }

    let ended = runtime.block_on(async {
        let finished = async {
            let state = job.terminated().await;
            if config.exit_on_finish {
                state
            } else {
                // Keep serving the final state until a signal arrives.
                std::future::pending().await
            }
        };
        tokio::select! {
            state = finished => Ended::Job(state),
            _ = signal() => Ended::Signal,
        }
    });
    let code = match ended {
        Ended::Job(state) => exit_code_for(state),
        Ended::Signal => {
            eprintln!("Signal received: stopping (send it again to exit at once)...");
            runtime.spawn(async {
                signal().await;
                std::process::exit(exit::CANCELLED as i32);
            });
            let was_running = !job.state().is_terminal();
            job.suspend();
            let state = runtime.block_on(job.terminated());
            if was_running && state == JobState::Canceled {
                exit::CANCELLED
            } else {
                exit_code_for(state)
            }
        }
    };
    runtime.block_on(async {
        rpc.stop().await;
        server.stop().await;
    });
    // The job is suspended or ended: a standby may take over at once.
    if let Some(l) = leadership {
        l.release();
    }
    match job.state() {
        JobState::Failed => eprintln!(
            "Job '{}' failed: {}",
            job.name(),
            job.failure().unwrap_or_default()
        ),
        state => eprintln!("Job '{}' is {state}; JobManager stopped.", job.name()),
    }
    Ok(code)
}

/// Stands by until this JobManager holds the lease of `ha`, then makes it the leader: the
/// checkpoint fence is set and losing leadership exits the process with
/// [`exit::LEADERSHIP_LOST`] (its Pod restarts as a standby). `None` when SIGTERM or SIGINT
/// arrived while standing by.
fn lead(
    runtime: &tokio::runtime::Runtime,
    ha: &ha::HaConfig,
    config: &JobManagerConfig,
) -> Result<Option<ha::Leadership>, WorkerError> {
    eprintln!(
        "JobManager '{}' is a standby: waiting for leadership ({}; lease duration {:?}, renew \
         deadline {:?}, retry period {:?})",
        ha.holder,
        ha.describe(),
        ha.lease_duration,
        ha.renew_deadline,
        ha.retry_period
    );
    let address = format!("{}:{}", config.rpc_address, config.rpc_port);
    let (ha_config, holder) = (ha.clone(), ha.holder.clone());
    // A plain thread (the Kubernetes backend runs its own runtime), answering on a channel.
    let (tx, contend) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ha-contend".into())
        .spawn(move || {
            // The receiver is gone only when a signal stopped the standby: it exits anyway.
            let _ = tx.send(ha::acquire(&ha_config, &address, move |why| {
                eprintln!(
                    "JobManager '{holder}' lost leadership ({why}); exiting so a standby takes \
                     over"
                );
                std::process::exit(exit::LEADERSHIP_LOST as i32);
            }));
        })
        .map_err(|e| WorkerError::HighAvailability(format!("cannot start a thread: {e}")))?;
    let leadership = runtime.block_on(async {
        tokio::select! {
            result = contend => Some(result),
            _ = signal() => None,
        }
    });
    let Some(result) = leadership else {
        eprintln!("Signal received while standing by: JobManager stopped.");
        return Ok(None);
    };
    let leadership = result
        .map_err(|e| WorkerError::HighAvailability(format!("leader election ended: {e}")))??;
    ha::set_process_fence(leadership.fence());
    eprintln!(
        "JobManager '{}' is the leader (epoch {}): recovering the job",
        ha.holder,
        leadership.epoch()
    );
    Ok(Some(leadership))
}

/// How long a new session leader keeps trying to resubmit a recorded job for which too few
/// slots are free (unless `jobmanager.wait-for-slots` is longer).
const SESSION_RECOVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The session JobManager's main loop: serves submissions until SIGTERM or SIGINT, then
/// suspends every running job (their checkpoints stay) and exits with [`exit::SUCCESS`].
fn run_session(
    registry: &JobRegistry,
    config: &JobManagerConfig,
    runtime: &tokio::runtime::Runtime,
    state: &Arc<JobManagerState>,
    (server, rpc): (Server, rpc::RpcServer),
    tls: Option<fjord::tls::InternalTls>,
    leadership: Option<ha::Leadership>,
) -> Result<u8, WorkerError> {
    if config.on_task_managers {
        state.task_managers().set_deploys_to_task_managers();
    }
    let session = session::Session::new(
        registry,
        config,
        config
            .on_task_managers
            .then(|| state.task_managers().clone()),
        state.router().clone(),
        runtime.handle().clone(),
        tls,
    );
    state.set_session(session.clone());
    if config.ha.is_some()
        && let Some(storage) = &config.storage_url
    {
        let options = fjord::storage::StorageOptions::from_pairs(config.storage_options.clone());
        session.keep_submissions(session_store::SubmissionStore::open(storage, &options)?);
        let (recovering, wait) = (
            session.clone(),
            SESSION_RECOVERY_WAIT.max(config.wait_for_slots),
        );
        std::thread::Builder::new()
            .name("session-recovery".into())
            .spawn(move || {
                let n = recovering.recover(wait);
                eprintln!("Session recovery done: {n} job(s) running again.");
            })
            .map_err(|e| WorkerError::HighAvailability(format!("cannot start a thread: {e}")))?;
    }
    eprintln!("Session JobManager ready: submit jobs with POST /v1/jobs.");
    runtime.block_on(signal());
    eprintln!("Signal received: suspending the session's jobs (send it again to exit at once)...");
    runtime.spawn(async {
        signal().await;
        std::process::exit(exit::CANCELLED as i32);
    });
    runtime.block_on(async {
        session.suspend_all().await;
        rpc.stop().await;
        server.stop().await;
    });
    // The jobs are suspended (their records stay): a standby may take over at once.
    if let Some(l) = leadership {
        l.release();
    }
    eprintln!("Session JobManager stopped.");
    Ok(exit::SUCCESS)
}

#[cfg(test)]
mod tests;
