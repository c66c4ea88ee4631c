//! `fjord taskmanager`: the TaskManager role. It registers with the JobManager's gRPC control
//! plane (`jobmanager.rpc.address`), offers all its slots, and sends heartbeats at the interval
//! the JobManager hands out; every heartbeat carries the metrics of its tasks of the current
//! attempt ([`service::TaskService::task_metrics`]), which the JobManager's REST API and
//! `/metrics` report. When the JobManager answers that it does not know this TaskManager
//! (it restarted, or marked it lost) or cannot be reached, the TaskManager registers again,
//! for at most `taskmanager.registration.timeout-ms`.
//!
//! The JobManager deploys subtasks to it over its own control-plane service
//! (`taskmanager.rpc.port`, [`service`]); the subtasks exchange data with subtasks on other
//! TaskManagers through the data server on `taskmanager.data.port`
//! ([`fjord::network::DataServer`]). When this TaskManager registers under a new JobManager
//! epoch (the JobManager restarted), tasks of the old one are cancelled first; so are they when
//! the JobManager answers that it does not know this TaskManager, or cannot be reached for
//! longer than its heartbeat timeout (it has given the attempt up by then). An attempt's
//! tasks release their state (heap values, RocksDB instances and their directories), threads
//! and files when they end, so a long-lived TaskManager returns to the same footprint after
//! every attempt.
//!
//! Exit codes ([`crate::exit`]): 0 after SIGTERM or SIGINT (its tasks cancelled first), 2 for
//! bad configuration, 3 when the data or RPC port cannot be bound, 4 when no JobManager
//! accepted the registration in time, 5 when the JobManager refused it (incompatible version)
//! or another process registered under its ID.
//!
//! Modules: [`config`] merges flags, environment and config file; [`service`] runs the tasks;
//! [`memory`] reads the process's memory for the heartbeat.

pub mod config;
pub mod memory;
pub mod service;

use crate::WorkerError;
use config::TaskManagerConfig;
use fjord::JobRegistry;
use fjord::network::DataServer;
use fjord::storage::StorageOptions;
use fjord_proto::v1::job_manager_service_client::JobManagerServiceClient;
use fjord_proto::v1::task_manager_service_server::TaskManagerServiceServer;
use fjord_proto::v1::{HeartbeatRequest, OfferSlotsRequest, RegisterTaskManagerRequest, SlotOffer};
use service::{TaskManagerRpc, TaskService};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// First wait before registering again after a failed attempt. A TaskManager usually starts
/// beside its JobManager (same rollout), so the JobManager's RPC port opens within moments:
/// retrying soon lets the TaskManager offer its slots as soon as it does.
pub const REGISTRATION_BACKOFF: Duration = Duration::from_millis(50);

/// Longest wait between registration attempts. Kept short (an attempt is one connection to a
/// port that refuses at once), so a TaskManager is registered at most this long after its
/// JobManager can take it; a long backoff was up to 2 s of an upgrade's downtime.
pub const REGISTRATION_BACKOFF_MAX: Duration = Duration::from_millis(250);

/// What one registration gave: the JobManager's epoch, the heartbeat interval to use and the
/// JobManager's heartbeat timeout.
#[derive(Debug, Clone, Copy)]
struct Session {
    epoch: u64,
    interval: Duration,
    /// After this long without contact the JobManager has marked this TaskManager lost (and
    /// restarted the attempt elsewhere), so this side gives the attempt up as well.
    timeout: Duration,
}

/// The JobManager could not be reached since `since`; after `timeout` the tasks of its attempt
/// are cancelled (Flink's TaskExecutor does the same when the JobManager's heartbeat times
/// out), so an attempt nobody coordinates releases its state, threads and files.
#[derive(Debug, Clone, Copy)]
struct Lost {
    since: Instant,
    timeout: Duration,
}

/// Why one registration attempt did not succeed.
enum Attempt {
    /// The JobManager said no (incompatible version): retrying cannot help.
    Refused(String),
    /// No answer or an error: retry.
    Failed(String),
}

/// A TaskManager with its control-plane client.
struct TaskManager {
    config: TaskManagerConfig,
    id: String,
    data_address: String,
    rpc_address: String,
    client: JobManagerServiceClient<Channel>,
    service: Arc<TaskService>,
    /// The epoch of the JobManager registered with last.
    epoch: Option<u64>,
    /// Random ID of this process, so the JobManager tells it from another process started
    /// with the same `--id`.
    incarnation: String,
}

impl TaskManager {
    fn registration(&self) -> RegisterTaskManagerRequest {
        RegisterTaskManagerRequest {
            task_manager_id: self.id.clone(),
            protocol_version: Some(fjord_proto::PROTOCOL_VERSION),
            binary_version: env!("CARGO_PKG_VERSION").into(),
            data_address: self.data_address.clone(),
            rpc_address: self.rpc_address.clone(),
            slots: self.config.slots,
            memory_bytes: 0,
            incarnation: self.incarnation.clone(),
            cluster_id: self.config.cluster_id.clone().unwrap_or_default(),
        }
    }

    /// One registration and slot offer.
    async fn register_once(&mut self) -> Result<Session, Attempt> {
        let failed = |e: tonic::Status| Attempt::Failed(e.message().to_string());
        let answer = self
            .client
            .register_task_manager(self.registration())
            .await
            .map_err(failed)?
            .into_inner();
        if !answer.accepted {
            // A JobManager of another cluster (the previous one, still terminating): keep
            // trying until this cluster's own answers.
            return Err(if answer.retry {
                Attempt::Failed(answer.refusal)
            } else {
                Attempt::Refused(answer.refusal)
            });
        }
        if self.epoch.is_some_and(|e| e != answer.job_manager_epoch) {
            // A new JobManager: the old one's tasks must not go on (or commit). They end
            // before the slots are offered, so the new JobManager cannot deploy here while
            // they still run (nor could this cancel catch its new attempt).
            self.cancel_tasks().await;
        }
        let offer = OfferSlotsRequest {
            task_manager_id: self.id.clone(),
            job_manager_epoch: answer.job_manager_epoch,
            slots: (0..self.config.slots)
                .map(|slot_index| SlotOffer {
                    slot_index,
                    memory_bytes: 0,
                })
                .collect(),
        };
        let accepted = self
            .client
            .offer_slots(offer)
            .await
            .map_err(failed)?
            .into_inner()
            .accepted_slots;
        let interval = self
            .config
            .heartbeat_interval
            .unwrap_or(Duration::from_millis(answer.heartbeat_interval_ms.max(10)));
        self.epoch = Some(answer.job_manager_epoch);
        eprintln!(
            "TaskManager '{}' registered with the JobManager at {} (epoch {}): {} of {} slots \
             accepted, heartbeat every {interval:?}",
            self.id,
            self.config.jobmanager_address,
            answer.job_manager_epoch,
            accepted.len(),
            self.config.slots
        );
        Ok(Session {
            epoch: answer.job_manager_epoch,
            interval,
            timeout: Duration::from_millis(answer.heartbeat_timeout_ms.max(1)),
        })
    }

    /// Cancels what runs here (and waits for it to end), off the async runtime.
    async fn cancel_tasks(&self) {
        let service = self.service.clone();
        // A panic of `cancel_all` was reported by the panic hook; there is nothing left to do.
        let _ = tokio::task::spawn_blocking(move || service.cancel_all()).await;
    }

    /// Registers, retrying with backoff ([`REGISTRATION_BACKOFF`] doubling to
    /// [`REGISTRATION_BACKOFF_MAX`]) until the registration timeout passes. While the JobManager stays unreachable (`lost`), the tasks of its
    /// attempt are cancelled once its heartbeat timeout has passed.
    async fn register(&mut self, mut lost: Option<Lost>) -> Result<Session, WorkerError> {
        let deadline = Instant::now() + self.config.registration_timeout;
        let mut backoff = REGISTRATION_BACKOFF;
        loop {
            if let Some(l) = lost.filter(|l| l.since.elapsed() >= l.timeout) {
                eprintln!(
                    "TaskManager '{}': no contact with the JobManager for {:?} (its heartbeat \
                     timeout is {:?}); cancelling the tasks of its attempt",
                    self.id,
                    l.since.elapsed(),
                    l.timeout
                );
                self.cancel_tasks().await;
                lost = None;
            }
            let last_error = match self.register_once().await {
                Ok(session) => return Ok(session),
                Err(Attempt::Refused(message)) => return Err(WorkerError::Refused(message)),
                Err(Attempt::Failed(message)) => message,
            };
            tracing::info!(error = %last_error, "registration failed; retrying");
            if Instant::now() + backoff > deadline {
                return Err(WorkerError::RegistrationTimeout {
                    address: self.config.jobmanager_address.clone(),
                    timeout_ms: self.config.registration_timeout.as_millis() as u64,
                    last_error,
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(REGISTRATION_BACKOFF_MAX);
        }
    }

    /// Registers, then heartbeats forever, registering again whenever the JobManager does
    /// not know this TaskManager or cannot be reached.
    async fn serve(mut self) -> Result<(), WorkerError> {
        let mut session = self.register(None).await?;
        let mut last_contact = Instant::now();
        loop {
            tokio::time::sleep(session.interval).await;
            let beat = HeartbeatRequest {
                task_manager_id: self.id.clone(),
                job_manager_epoch: session.epoch,
                tasks: Vec::new(),
                task_metrics: self.service.task_metrics(session.epoch),
                operator_metrics: self.service.operator_metrics(session.epoch),
                incarnation: self.incarnation.clone(),
                memory_rss_bytes: memory::rss_bytes().unwrap_or(0),
            };
            let why = match self.client.heartbeat(beat).await {
                Ok(answer) if answer.get_ref().known => {
                    last_contact = Instant::now();
                    continue;
                }
                Ok(answer) if answer.get_ref().superseded => {
                    self.cancel_tasks().await;
                    return Err(WorkerError::Refused(format!(
                        "another TaskManager process registered with the JobManager under the ID \
                         '{}', so this one stops (its tasks are cancelled); give every TaskManager \
                         its own --id",
                        self.id
                    )));
                }
                Ok(_) => {
                    // It restarted or marked this TaskManager lost: either way the attempt
                    // running here is over for it, and a new one will be deployed.
                    eprintln!(
                        "TaskManager '{}': the JobManager does not know this TaskManager (it \
                         restarted or marked it lost); cancelling the tasks of its attempt and \
                         registering again",
                        self.id
                    );
                    self.cancel_tasks().await;
                    session = self.register(None).await?;
                    last_contact = Instant::now();
                    continue;
                }
                Err(e) => format!("heartbeat failed: {}", e.message()),
            };
            eprintln!("TaskManager '{}': {why}; registering again", self.id);
            let lost = Lost {
                since: last_contact,
                timeout: session.timeout,
            };
            session = self.register(Some(lost)).await?;
            last_contact = Instant::now();
        }
    }
}

/// Runs the TaskManager until SIGTERM or SIGINT (`Ok`), or until it cannot (the error says
/// why; [`crate::exit::code_for`] maps it to the documented exit code). It runs the jobs of
/// `jobs` (the JobManager names the job; both run the same image).
///
/// # Errors
/// [`WorkerError::Serve`] when the data or RPC port cannot be bound, [`WorkerError::Refused`]
/// when the JobManager refuses this TaskManager, [`WorkerError::RegistrationTimeout`] when no
/// JobManager accepts it in time, [`WorkerError::Config`] for a malformed JobManager address.
pub fn run(jobs: &JobRegistry, config: TaskManagerConfig) -> Result<(), WorkerError> {
    crate::credentials::check_env(None, &config.storage_options)?;
    let runtime = crate::jobmanager::runtime("fjord-tm")?;
    let storage_options = StorageOptions::from_pairs(config.storage_options.clone());
    let tls = config.security.internal_tls()?;
    // The data port and the channels this TaskManager's tasks open follow this setting.
    fjord::network::set_process_tls(tls.clone());
    let data_bind = format!("{}:{}", config.bind_address, config.data_port);
    let server =
        DataServer::bind(&data_bind, storage_options.clone()).map_err(|e| WorkerError::Serve {
            address: format!("{data_bind} (data port)"),
            source: std::io::Error::other(e.to_string()),
        })?;
    let data_address = format!("{}:{}", config.host, server.local_addr().port());
    let server = Arc::new(server);
    runtime.block_on(async {
        let rpc_listener =
            tokio::net::TcpListener::bind((config.bind_address.as_str(), config.rpc_port))
                .await
                .map_err(|source| WorkerError::Serve {
                    address: format!("{}:{} (TaskManager RPC)", config.host, config.rpc_port),
                    source,
                })?;
        let rpc_port = rpc_listener
            .local_addr()
            .map_err(|source| WorkerError::Serve {
                address: format!("{}:{} (TaskManager RPC)", config.host, config.rpc_port),
                source,
            })?
            .port();
        let rpc_address = format!("{}:{rpc_port}", config.host);
        let id = config.id.clone().unwrap_or_else(|| {
            format!("taskmanager-{}-{}", config.host, server.local_addr().port())
        });
        let channel = crate::tls::grpc_channel(&config.jobmanager_address, tls.as_ref(), |e| {
            e.connect_timeout(Duration::from_secs(2))
                .timeout(Duration::from_secs(5))
                // A JobManager that stops answering without closing its connections (a paused
                // old leader) loses them within 3 s, so the next request connects afresh (to
                // the new leader).
                .http2_keep_alive_interval(Duration::from_secs(1))
                .keep_alive_timeout(Duration::from_secs(2))
                .keep_alive_while_idle(true)
        })
        .map_err(|e| {
            WorkerError::Config(format!(
                "jobmanager.rpc.address = {:?} is not a valid address: {e}",
                config.jobmanager_address
            ))
        })?;
        let client = JobManagerServiceClient::new(channel);
        let service = TaskService::new(
            id.clone(),
            jobs.clone(),
            server.clone(),
            storage_options,
            client.clone(),
            tokio::runtime::Handle::current(),
        );
        let metrics = {
            let service = service.clone();
            let source: crate::metrics_server::MetricsSource =
                Arc::new(move || service.render_metrics());
            match crate::metrics_server::MetricsServer::start(
                &config.host,
                config.metrics_port,
                source,
            )
            .await
            {
                Ok(server) => {
                    eprintln!("TaskManager metrics on http://{}/metrics", server.addr);
                    Some(server)
                }
                // Like Flink's Prometheus reporter: a busy metrics port costs the metrics,
                // not the TaskManager.
                Err(e) => {
                    eprintln!("TaskManager metrics disabled: {e}");
                    None
                }
            }
        };
        let rpc_server = tonic::transport::Server::builder().add_service(
            TaskManagerServiceServer::new(TaskManagerRpc(service.clone())),
        );
        let rpc = match &tls {
            None => tokio::spawn(
                rpc_server
                    .serve_with_incoming(tonic::transport::server::TcpIncoming::from(rpc_listener)),
            ),
            Some(tls) => {
                let incoming = crate::tls::TlsIncoming::new(
                    rpc_listener,
                    tls.server_config(),
                    "TaskManager RPC",
                )
                .map_err(|source| WorkerError::Serve {
                    address: format!("{} (TaskManager RPC)", rpc_address),
                    source,
                })?;
                tokio::spawn(rpc_server.serve_with_incoming(incoming.into_stream()))
            }
        };
        let tm = TaskManager {
            client,
            config,
            id,
            data_address,
            rpc_address,
            service: service.clone(),
            epoch: None,
            incarnation: format!("{:032x}", rand::random::<u128>()),
        };
        eprintln!(
            "TaskManager '{}' with {} slots (data address {}, RPC address {}; {}) registering \
             with the JobManager at {}",
            tm.id,
            tm.config.slots,
            tm.data_address,
            tm.rpc_address,
            if tm.config.security.internal.is_some() {
                "mutual TLS"
            } else {
                "plain text"
            },
            tm.config.jobmanager_address
        );
        let result = tokio::select! {
            result = tm.serve() => result,
            _ = crate::jobmanager::signal() => {
                eprintln!("Signal received: TaskManager stopped.");
                Ok(())
            }
        };
        rpc.abort();
        if let Some(m) = metrics {
            m.stop().await;
        }
        // A panic of `cancel_all` was reported by the panic hook; there is nothing left to do.
        let _ = tokio::task::spawn_blocking(move || service.cancel_all()).await;
        result
    })
}
