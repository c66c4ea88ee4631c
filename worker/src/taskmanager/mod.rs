//! `fjord taskmanager`: the TaskManager role. It registers with the JobManager's gRPC control
//! plane (`jobmanager.rpc.address`), offers all its slots, and sends heartbeats at the interval
//! the JobManager hands out. When the JobManager answers that it does not know this TaskManager
//! (it restarted, or marked it lost) or cannot be reached, the TaskManager registers again,
//! for at most `taskmanager.registration.timeout-ms`.
//!
//! **It runs no tasks yet**: the JobManager runs every subtask in its own process, and task
//! deployment and the data exchange between TaskManagers come later (issue 5). The data port
//! starts listening once the first registration succeeded, so the operator's TCP readiness
//! probe on it means "registered"; connections to it are closed at once for now.
//!
//! Exit codes ([`crate::exit`]): 0 after SIGTERM or SIGINT, 2 for bad configuration, 3 when
//! the data port cannot be bound, 4 when no JobManager accepted the registration in time, 5
//! when the JobManager refused it (incompatible version).
//!
//! Modules: [`config`] merges flags, environment and config file.

pub mod config;

use crate::WorkerError;
use config::TaskManagerConfig;
use fjord_proto::v1::job_manager_service_client::JobManagerServiceClient;
use fjord_proto::v1::{HeartbeatRequest, OfferSlotsRequest, RegisterTaskManagerRequest, SlotOffer};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// What one registration gave: the JobManager's epoch and the heartbeat interval to use.
#[derive(Debug, Clone, Copy)]
struct Session {
    epoch: u64,
    interval: Duration,
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
    client: JobManagerServiceClient<Channel>,
}

impl TaskManager {
    fn registration(&self) -> RegisterTaskManagerRequest {
        RegisterTaskManagerRequest {
            task_manager_id: self.id.clone(),
            protocol_version: Some(fjord_proto::PROTOCOL_VERSION),
            binary_version: env!("CARGO_PKG_VERSION").into(),
            data_address: self.data_address.clone(),
            // No TaskManagerService is served yet: the JobManager has nothing to call.
            rpc_address: String::new(),
            slots: self.config.slots,
            memory_bytes: 0,
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
            return Err(Attempt::Refused(answer.refusal));
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
        eprintln!(
            "TaskManager '{}' registered with the JobManager at {} (epoch {}): {} of {} slots \
             accepted, heartbeat every {interval:?}; no tasks are deployed to TaskManagers yet",
            self.id,
            self.config.jobmanager_address,
            answer.job_manager_epoch,
            accepted.len(),
            self.config.slots
        );
        Ok(Session {
            epoch: answer.job_manager_epoch,
            interval,
        })
    }

    /// Registers, retrying with backoff (100 ms doubling to 2 s) until the registration
    /// timeout passes.
    async fn register(&mut self) -> Result<Session, WorkerError> {
        let deadline = Instant::now() + self.config.registration_timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
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
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Registers, starts the data port, then heartbeats forever, registering again whenever
    /// the JobManager does not know this TaskManager or cannot be reached.
    async fn serve(mut self, data: tokio::net::TcpSocket) -> Result<(), WorkerError> {
        let mut session = self.register().await?;
        let listener = data.listen(128).map_err(|source| WorkerError::Serve {
            address: self.data_address.clone(),
            source,
        })?;
        tokio::spawn(async move {
            // Bounded by the process: nothing is exchanged yet, so close every connection.
            while let Ok((stream, peer)) = listener.accept().await {
                tracing::debug!(%peer, "data connection closed: no data exchange yet");
                drop(stream);
            }
        });
        loop {
            tokio::time::sleep(session.interval).await;
            let beat = HeartbeatRequest {
                task_manager_id: self.id.clone(),
                job_manager_epoch: session.epoch,
                tasks: Vec::new(),
            };
            let why = match self.client.heartbeat(beat).await {
                Ok(answer) if answer.get_ref().known => continue,
                Ok(_) => "the JobManager does not know this TaskManager (it restarted or marked \
                          it lost)"
                    .to_string(),
                Err(e) => format!("heartbeat failed: {}", e.message()),
            };
            eprintln!("TaskManager '{}': {why}; registering again", self.id);
            session = self.register().await?;
        }
    }
}

/// Runs the TaskManager until SIGTERM or SIGINT (`Ok`), or until it cannot (the error says
/// why; [`crate::exit::code_for`] maps it to the documented exit code).
///
/// # Errors
/// [`WorkerError::Serve`] when the data port cannot be bound, [`WorkerError::Refused`] when the
/// JobManager refuses this TaskManager, [`WorkerError::RegistrationTimeout`] when no JobManager
/// accepts it in time, [`WorkerError::Config`] for a malformed JobManager address.
pub fn run(config: TaskManagerConfig) -> Result<(), WorkerError> {
    crate::jobmanager::runtime("fjord-tm")?.block_on(async {
        // Bind now (a busy port fails fast), listen once registered (readiness).
        let data = bind(&config.host, config.data_port).await?;
        let port = data
            .local_addr()
            .map_err(|source| WorkerError::Serve {
                address: format!("{}:{}", config.host, config.data_port),
                source,
            })?
            .port();
        let data_address = format!("{}:{port}", config.host);
        let id = config
            .id
            .clone()
            .unwrap_or_else(|| format!("taskmanager-{}-{port}", config.host));
        let endpoint = tonic::transport::Endpoint::from_shared(format!(
            "http://{}",
            config.jobmanager_address
        ))
        .map_err(|e| {
            WorkerError::Config(format!(
                "jobmanager.rpc.address = {:?} is not a valid address: {e}",
                config.jobmanager_address
            ))
        })?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5));
        let tm = TaskManager {
            client: JobManagerServiceClient::new(endpoint.connect_lazy()),
            config,
            id,
            data_address,
        };
        eprintln!(
            "TaskManager '{}' with {} slots (data address {}) registering with the JobManager \
             at {}",
            tm.id, tm.config.slots, tm.data_address, tm.config.jobmanager_address
        );
        tokio::select! {
            result = tm.serve(data) => result,
            _ = crate::jobmanager::signal() => {
                eprintln!("Signal received: TaskManager stopped.");
                Ok(())
            }
        }
    })
}

/// Binds (without listening) `host:port`.
async fn bind(host: &str, port: u16) -> Result<tokio::net::TcpSocket, WorkerError> {
    let serve_error = |source| WorkerError::Serve {
        address: format!("{host}:{port} (data port)"),
        source,
    };
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(serve_error)?
        .next()
        .ok_or_else(|| serve_error(std::io::Error::other("the host resolves to no address")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(serve_error)?;
    socket.set_reuseaddr(true).map_err(serve_error)?;
    socket.bind(addr).map_err(serve_error)?;
    Ok(socket)
}
