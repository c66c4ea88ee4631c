//! The data port of a TaskManager: accepts the connections of remote producers and hands
//! their events to local consumers.

use super::codec::BatchCodec;
use super::inbound;
use super::key::ChannelKey;
use super::registry::{Registration, Registry};
use super::tls::Connection;
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CANCEL_POLL, CancelFlag, Event};
use crate::storage::StorageOptions;
use crate::tls::InternalTls;
use crossbeam_channel::Receiver;
use parking_lot::Mutex;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the accepting thread looks for new connections and for shutdown.
const ACCEPT_POLL: Duration = Duration::from_millis(10);

/// What the accepting thread, the connections and the server's handle share.
pub(crate) struct Shared {
    /// Options to re-open the targets of arriving checkpoint barriers.
    pub(crate) storage: StorageOptions,
    pub(crate) registry: Mutex<Registry>,
    pub(crate) bytes_received: AtomicU64,
    /// Set when the server is dropped: every connection ends.
    pub(crate) shutdown: AtomicBool,
    /// How long a connection waits for its consumer's registration.
    pub(crate) registration_timeout: Duration,
    /// Mutual TLS every connection must complete first, when the port uses it.
    tls: Option<InternalTls>,
}

impl Shared {
    /// The error that ends a connection when the server shuts down.
    pub(crate) fn check_shutdown(&self) -> Result<()> {
        if self.shutdown.load(Ordering::Relaxed) {
            return Err(FjordError::Network(
                "the consumer's TaskManager is shutting down its data port".into(),
            ));
        }
        Ok(())
    }
}

/// A TaskManager's data port: accepts connections from remote producers, one per channel, and
/// delivers their events to the local consumers registered with `DataServer::incoming`.
///
/// One thread accepts connections; each connection has its own thread, which ends with the
/// connection, when the consumer is cancelled, when its generation is fenced, or when the
/// server is dropped. Dropping the server closes every connection and registration.
pub struct DataServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

impl DataServer {
    /// Listens on `address` (`"0.0.0.0:6121"`, or `"127.0.0.1:0"` for any free port); barriers
    /// arriving re-open their target with `storage`.
    ///
    /// # Errors
    /// The address cannot be bound (in use, not local, malformed), or the accepting thread
    /// cannot be started.
    ///
    /// With the process-wide TLS setting ([`super::set_process_tls`]) the port requires mutual
    /// TLS; see [`DataServer::bind_tls`].
    pub fn bind(address: &str, storage: StorageOptions) -> Result<DataServer> {
        let tls = super::tls::process_tls();
        Self::bind_with(address, storage, super::REGISTRATION_TIMEOUT, tls.as_ref())
    }

    /// [`DataServer::bind`] with mutual TLS by `tls` (`None`: plain TCP), whatever the
    /// process-wide setting: a producer must present a certificate that chains to the CA of
    /// `tls`, else its connection is refused (and logged) before any frame is read.
    ///
    /// # Errors
    /// As [`DataServer::bind`].
    pub fn bind_tls(
        address: &str,
        storage: StorageOptions,
        tls: Option<&InternalTls>,
    ) -> Result<DataServer> {
        Self::bind_with(address, storage, super::REGISTRATION_TIMEOUT, tls)
    }

    /// [`DataServer::bind`] with another wait for late registrations (tests).
    pub(crate) fn bind_with(
        address: &str,
        storage: StorageOptions,
        registration_timeout: Duration,
        tls: Option<&InternalTls>,
    ) -> Result<DataServer> {
        let context = || format!("binding the data port {address}");
        let listener = TcpListener::bind(address).map_err(|e| FjordError::io(context(), e))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| FjordError::io(context(), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| FjordError::io(context(), e))?;
        let shared = Arc::new(Shared {
            storage,
            registry: Mutex::new(Registry::default()),
            bytes_received: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            registration_timeout,
            tls: tls.cloned(),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("fjord-data-port-{}", local_addr.port()))
            .spawn(move || accept(listener, accepting))
            .map_err(|e| FjordError::io("starting the data port's thread", e))?;
        if tls.is_some() {
            tracing::info!(address = %local_addr, "data port requires mutual TLS");
        }
        tracing::info!(address = %local_addr, "data port listening");
        Ok(DataServer {
            shared,
            local_addr,
            acceptor: Some(acceptor),
        })
    }

    /// The address the server listens on (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Consumer side: the local receiving end of channel `key`, a queue of `capacity` events
    /// fed by the producer's connection. The connection may arrive before this call (it is
    /// held until the registration, at most 30 s, then refused with an error naming the key)
    /// or after it.
    ///
    /// The queue reports `Disconnected` after `EndOfPartition`, and also without it when the
    /// producer's connection ends early (the producer failed), when `cancel` is set, when the
    /// generation is fenced ([`DataServer::fence`]) or when the server is dropped: like a local
    /// channel whose producer went away.
    ///
    /// # Errors
    /// The key's generation is fenced, or the key is registered already.
    pub(crate) fn incoming(
        &self,
        key: ChannelKey,
        codec: Arc<dyn BatchCodec>,
        capacity: usize,
        cancel: &CancelFlag,
    ) -> Result<Receiver<Event>> {
        self.incoming_counted(key, codec, capacity, cancel, None)
    }

    /// [`incoming`](Self::incoming), adding the bytes received on the channel to the
    /// consuming task's `io`.
    pub(crate) fn incoming_counted(
        &self,
        key: ChannelKey,
        codec: Arc<dyn BatchCodec>,
        capacity: usize,
        cancel: &CancelFlag,
        io: Option<crate::exchange::io_metrics::TaskIo>,
    ) -> Result<Receiver<Event>> {
        let capacity = capacity.max(1);
        let (queue, receiver) = crossbeam_channel::bounded(capacity);
        self.shared.registry.lock().register(
            key,
            Registration {
                queue,
                codec,
                capacity,
                cancel: cancel.clone(),
                fenced: Arc::default(),
                io,
            },
        )?;
        Ok(receiver)
    }

    /// Drops the registrations and closes the connections of `job_id` whose generation
    /// `(epoch, attempt)` is older than the given one; later connections and registrations of
    /// older generations are refused with an error naming the channel. Fences only move
    /// forward: fencing at an older generation than before changes nothing. Fencing at
    /// `(u64::MAX, u32::MAX)` releases everything of a job that ended.
    pub fn fence(&self, job_id: &str, epoch: u64, attempt: u32) {
        self.shared.registry.lock().fence(job_id, epoch, attempt);
    }

    /// Bytes received on this port so far (handshakes and frames of all channels).
    pub fn bytes_received(&self) -> u64 {
        self.shared.bytes_received.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn waiting_connections(&self) -> usize {
        self.shared.registry.lock().waiting()
    }
}

impl Drop for DataServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.registry.lock().clear();
        if let Some(acceptor) = self.acceptor.take() {
            // A panic of the acceptor was reported by the panic hook; nothing is left to do.
            let _ = acceptor.join();
        }
    }
}

impl std::fmt::Debug for DataServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Accepts connections until the server shuts down; each gets a thread, which completes the
/// TLS handshake first when the port uses mutual TLS.
fn accept(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.shutdown.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let serving = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("fjord-data-in".into())
                    .spawn(move || {
                        let connection = match &serving.tls {
                            None => Connection::Plain(stream),
                            Some(tls) => {
                                let stop = || serving.shutdown.load(Ordering::Relaxed);
                                match super::tls::accept(stream, peer, tls, stop) {
                                    Some(connection) => connection,
                                    None => return,
                                }
                            }
                        };
                        inbound::serve(connection, peer, serving);
                    });
                if let Err(e) = spawned {
                    tracing::warn!(%peer, error = %e, "cannot start a thread for a data connection; dropping it");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a data connection failed");
                std::thread::sleep(CANCEL_POLL);
            }
        }
    }
}
