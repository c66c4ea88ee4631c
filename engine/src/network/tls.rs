//! Mutual TLS for data connections, as a tunnel: the protocol code (`inbound`, `outbound`)
//! keeps reading and writing a plain loopback socket, and a small tokio runtime moves the bytes
//! between that socket and the TLS connection to the peer.
//!
//! - Producer side ([`connect`]): connect to the consumer's data port, complete the TLS
//!   handshake (this process's certificate; the server's chain must end at the cluster's CA),
//!   then hand back one end of a fresh loopback socket pair whose other end is pumped to the
//!   TLS stream. A refused handshake is a failed connection attempt like a refused port.
//! - Consumer side ([`Acceptor`]): the data port is the TLS listener; each connection's client
//!   certificate must chain to the CA, then it is pumped to the plain listener that
//!   `server::accept` serves on a loopback port. Connections without a valid certificate are
//!   refused before any byte reaches the protocol code, and logged with the peer's address.
//!
//! The process-wide setting ([`set_process_tls`]) is what a TaskManager configures once at
//! start; [`super::DataServer::bind`] and the producers of its tasks follow it.

use crate::error::{FjordError, Result};
use crate::tls::InternalTls;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{OnceLock, RwLock};
use std::time::Duration;
use tokio_rustls::{TlsAcceptor, TlsConnector};

static PROCESS_TLS: RwLock<Option<InternalTls>> = RwLock::new(None);

/// Makes this process's data connections (its data port and the channels its tasks open) use
/// mutual TLS with `tls`, or plain TCP with `None` (the default). Set it before binding the
/// data port; connections made earlier keep what they had.
pub fn set_process_tls(tls: Option<InternalTls>) {
    *PROCESS_TLS.write().unwrap_or_else(|e| e.into_inner()) = tls;
}

/// The process-wide setting of [`set_process_tls`].
pub(crate) fn process_tls() -> Option<InternalTls> {
    PROCESS_TLS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The runtime that pumps TLS tunnels (two threads, started on first use).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fjord-data-tls")
        .enable_all()
        .build()
        .map_err(|e| FjordError::io("starting the data plane's TLS runtime", e))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// A loopback socket pair: the std end for the protocol code, the tokio end for the pump.
fn loopback_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let near = TcpStream::connect(listener.local_addr()?)?;
    let (far, _) = listener.accept()?;
    // Only this pair may use the listener; it closes when dropped here.
    near.set_nodelay(true)?;
    far.set_nodelay(true)?;
    far.set_nonblocking(true)?;
    Ok((near, far))
}

/// Why a producer's TLS connection attempt failed.
pub(crate) enum ConnectError {
    /// The port is not up (yet): worth another attempt.
    Retry(String),
    /// The TLS handshake failed: the certificates do not fit, another attempt cannot help.
    Refused(String),
}

/// Producer side: a plain socket whose bytes travel over mutual TLS to `addr`.
///
/// # Errors
/// [`ConnectError::Retry`] when the connection fails or times out, [`ConnectError::Refused`]
/// when the handshake fails (the server's chain does not end at the CA, or the server refused
/// this process's certificate).
pub(crate) fn connect(
    addr: &SocketAddr,
    timeout: Duration,
    tls: &InternalTls,
) -> std::result::Result<TcpStream, ConnectError> {
    let rt = runtime().map_err(|e| ConnectError::Refused(e.to_string()))?;
    let connector = TlsConnector::from(tls.client_config());
    let addr = *addr;
    let stream = rt.block_on(async move {
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| ConnectError::Retry(format!("{addr}: connection timed out")))?
            .map_err(|e| ConnectError::Retry(format!("{addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        tokio::time::timeout(timeout, connector.connect(InternalTls::server_name(), tcp))
            .await
            .map_err(|_| ConnectError::Retry(format!("{addr}: TLS handshake timed out")))?
            .map_err(|e| {
                ConnectError::Refused(format!(
                    "{addr}: TLS handshake failed: {e}; check that both TaskManagers use \
                     certificates of the same cluster CA"
                ))
            })
    })?;
    let (near, far) = loopback_pair()
        .map_err(|e| ConnectError::Refused(format!("loopback pair for {addr}: {e}")))?;
    rt.spawn(async move {
        let Ok(mut far) = tokio::net::TcpStream::from_std(far) else {
            return;
        };
        let mut stream = stream;
        if let Err(e) = tokio::io::copy_bidirectional(&mut far, &mut stream).await {
            tracing::debug!(peer = %addr, error = %e, "TLS data tunnel ended");
        }
    });
    Ok(near)
}

/// Consumer side: the TLS listener of a data port, forwarding to its plain loopback port.
pub(crate) struct Acceptor {
    task: tokio::task::JoinHandle<()>,
    /// The public (TLS) address.
    pub(crate) local_addr: SocketAddr,
}

impl Acceptor {
    /// Binds `address` for TLS connections and forwards each authenticated one to `plain`.
    ///
    /// # Errors
    /// The address cannot be bound.
    pub(crate) fn bind(address: &str, plain: SocketAddr, tls: &InternalTls) -> Result<Acceptor> {
        let context = || format!("binding the data port {address}");
        let rt = runtime()?;
        let std_listener = TcpListener::bind(address).map_err(|e| FjordError::io(context(), e))?;
        std_listener
            .set_nonblocking(true)
            .map_err(|e| FjordError::io(context(), e))?;
        let local_addr = std_listener
            .local_addr()
            .map_err(|e| FjordError::io(context(), e))?;
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)
                .map_err(|e| FjordError::io(context(), e))?
        };
        let acceptor = TlsAcceptor::from(tls.server_config());
        let task = rt.spawn(accept(listener, acceptor, plain));
        tracing::info!(address = %local_addr, "data port requires mutual TLS");
        Ok(Acceptor { task, local_addr })
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: tokio::net::TcpListener, acceptor: TlsAcceptor, plain: SocketAddr) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a data connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let handshake =
                tokio::time::timeout(super::HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            let mut tls = match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::warn!(%peer, error = %e, "refused a data connection: TLS handshake failed (no valid client certificate of this cluster)");
                    return;
                }
                Err(_) => {
                    tracing::warn!(%peer, "refused a data connection: TLS handshake timed out");
                    return;
                }
            };
            let mut inner = match tokio::net::TcpStream::connect(plain).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "the data port's inner listener is gone");
                    return;
                }
            };
            let _ = inner.set_nodelay(true);
            if let Err(e) = tokio::io::copy_bidirectional(&mut tls, &mut inner).await {
                tracing::debug!(%peer, error = %e, "TLS data tunnel ended");
            }
        });
    }
}
