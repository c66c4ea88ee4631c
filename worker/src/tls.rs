//! Transport security of the worker's roles: the settings `fjord jobmanager` and
//! `fjord taskmanager` share (`security.ssl.*`, `security.rest.*`), and the TLS plumbing of
//! their servers and clients.
//!
//! - [`SecurityArgs`] / [`SecurityConfig`]: flags over the config file over defaults.
//!   Plain text is the default (local runs); the operator turns TLS on.
//! - [`TlsIncoming`]: a TLS listener whose handshakes run off the accept loop, serving
//!   both the REST API (as an `axum::serve::Listener`) and the gRPC servers (as a stream of
//!   connections for tonic).
//! - [`grpc_channel`]: a tonic channel to a peer over mutual TLS (or plain text).
//!
//! The REST token check itself is [`crate::jobmanager::rest_auth`]. Nothing here logs or
//! shows key material or tokens: paths only.

use crate::WorkerError;
use crate::jobmanager::config::parse;
use clap::Args;
use fjord::tls::{InternalTls, TlsFiles};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Security flags shared by `fjord jobmanager` and `fjord taskmanager`. Every flag also reads
/// the environment variable named in its help; unset flags fall back to the config file.
#[derive(Args, Debug, Clone, Default)]
pub struct SecurityArgs {
    /// Mutual TLS on the control plane (gRPC) and the data plane [key
    /// security.ssl.internal.enabled, default false].
    #[arg(long, env = "FJORD_SSL_INTERNAL")]
    pub ssl_internal: bool,
    /// Directory with tls.crt, tls.key and ca.crt (a mounted cert-manager style Secret) for
    /// internal TLS [key security.ssl.internal.dir].
    #[arg(long, env = "FJORD_SSL_INTERNAL_DIR")]
    pub ssl_internal_dir: Option<PathBuf>,
    /// Internal TLS certificate chain (PEM) [key security.ssl.internal.cert; default
    /// <dir>/tls.crt].
    #[arg(long, env = "FJORD_SSL_INTERNAL_CERT")]
    pub ssl_internal_cert: Option<PathBuf>,
    /// Internal TLS private key (PEM) [key security.ssl.internal.key; default <dir>/tls.key].
    #[arg(long, env = "FJORD_SSL_INTERNAL_KEY")]
    pub ssl_internal_key: Option<PathBuf>,
    /// CA that internal peers' certificates must chain to (PEM) [key security.ssl.internal.ca;
    /// default <dir>/ca.crt].
    #[arg(long, env = "FJORD_SSL_INTERNAL_CA")]
    pub ssl_internal_ca: Option<PathBuf>,
    /// TLS on the REST API [key security.ssl.rest.enabled, default false].
    #[arg(long, env = "FJORD_SSL_REST")]
    pub ssl_rest: bool,
    /// Directory with tls.crt and tls.key for the REST API [key security.ssl.rest.dir].
    #[arg(long, env = "FJORD_SSL_REST_DIR")]
    pub ssl_rest_dir: Option<PathBuf>,
    /// REST certificate chain (PEM) [key security.ssl.rest.cert; default <dir>/tls.crt].
    #[arg(long, env = "FJORD_SSL_REST_CERT")]
    pub ssl_rest_cert: Option<PathBuf>,
    /// REST private key (PEM) [key security.ssl.rest.key; default <dir>/tls.key].
    #[arg(long, env = "FJORD_SSL_REST_KEY")]
    pub ssl_rest_key: Option<PathBuf>,
    /// File holding the bearer token REST callers must send (`Authorization: Bearer
    /// <token>`); unset: no authentication [key security.rest.token-file].
    #[arg(long, env = "FJORD_REST_TOKEN_FILE")]
    pub rest_token_file: Option<PathBuf>,
    /// With a token: let GET requests (status, checkpoints, dashboard) through without it
    /// [key security.rest.open-read-only, default false].
    #[arg(long, env = "FJORD_REST_OPEN_READ_ONLY")]
    pub rest_open_read_only: bool,
    /// With a token: serve /metrics without it [key security.rest.open-metrics, default
    /// false].
    #[arg(long, env = "FJORD_REST_OPEN_METRICS")]
    pub rest_open_metrics: bool,
    /// With a token: require it on /v1/healthz and /v1/readyz too (probes then need it)
    /// [key security.rest.open-health: false; default: health is open].
    #[arg(long, env = "FJORD_REST_CLOSE_HEALTH")]
    pub rest_close_health: bool,
}

/// The REST API's authentication settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RestAuthConfig {
    /// File with the bearer token (`None`: no authentication).
    pub token_file: Option<PathBuf>,
    /// GET requests need no token.
    pub open_read_only: bool,
    /// `/metrics` needs no token.
    pub open_metrics: bool,
    /// `/v1/healthz` and `/v1/readyz` need no token.
    pub open_health: bool,
}

/// The effective security settings of a role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityConfig {
    /// Mutual TLS between JobManager and TaskManagers (gRPC and data), when enabled.
    pub internal: Option<TlsFiles>,
    /// REST certificate and key, when the REST API uses TLS.
    pub rest: Option<(PathBuf, PathBuf)>,
    /// REST authentication.
    pub rest_auth: RestAuthConfig,
}

impl SecurityConfig {
    /// Merges `args` over the config file's `security.*` keys.
    ///
    /// # Errors
    /// [`WorkerError::Config`] for a malformed boolean, or TLS enabled without its files.
    pub fn resolve(
        args: &SecurityArgs,
        file: &BTreeMap<String, String>,
    ) -> Result<SecurityConfig, WorkerError> {
        let flag = |set: bool, key: &str| -> Result<bool, WorkerError> {
            Ok(set || parse(file, key, "true or false")?.unwrap_or(false))
        };
        let path = |arg: &Option<PathBuf>, key: &str| {
            arg.clone().or_else(|| file.get(key).map(PathBuf::from))
        };
        let internal = if flag(args.ssl_internal, "security.ssl.internal.enabled")? {
            let dir = path(&args.ssl_internal_dir, "security.ssl.internal.dir");
            let from_dir = |name: &str| dir.as_ref().map(|d| d.join(name));
            let need = |p: Option<PathBuf>, key: &str| {
                p.ok_or_else(|| {
                    WorkerError::Config(format!(
                        "security.ssl.internal.enabled is true but {key} is not set: give \
                         security.ssl.internal.dir (with tls.crt, tls.key, ca.crt) or the file"
                    ))
                })
            };
            Some(TlsFiles {
                cert: need(
                    path(&args.ssl_internal_cert, "security.ssl.internal.cert")
                        .or_else(|| from_dir("tls.crt")),
                    "security.ssl.internal.cert",
                )?,
                key: need(
                    path(&args.ssl_internal_key, "security.ssl.internal.key")
                        .or_else(|| from_dir("tls.key")),
                    "security.ssl.internal.key",
                )?,
                ca: need(
                    path(&args.ssl_internal_ca, "security.ssl.internal.ca")
                        .or_else(|| from_dir("ca.crt")),
                    "security.ssl.internal.ca",
                )?,
            })
        } else {
            None
        };
        let rest = if flag(args.ssl_rest, "security.ssl.rest.enabled")? {
            let dir = path(&args.ssl_rest_dir, "security.ssl.rest.dir");
            let pick = |arg: &Option<PathBuf>, key: &str, name: &str| {
                path(arg, key)
                    .or_else(|| dir.as_ref().map(|d| d.join(name)))
                    .ok_or_else(|| {
                        WorkerError::Config(format!(
                            "security.ssl.rest.enabled is true but {key} is not set: give \
                             security.ssl.rest.dir (with tls.crt, tls.key) or the file"
                        ))
                    })
            };
            Some((
                pick(&args.ssl_rest_cert, "security.ssl.rest.cert", "tls.crt")?,
                pick(&args.ssl_rest_key, "security.ssl.rest.key", "tls.key")?,
            ))
        } else {
            None
        };
        let open_health = !args.rest_close_health
            && parse(file, "security.rest.open-health", "true or false")?.unwrap_or(true);
        Ok(SecurityConfig {
            internal,
            rest,
            rest_auth: RestAuthConfig {
                token_file: path(&args.rest_token_file, "security.rest.token-file"),
                open_read_only: flag(args.rest_open_read_only, "security.rest.open-read-only")?,
                open_metrics: flag(args.rest_open_metrics, "security.rest.open-metrics")?,
                open_health,
            },
        })
    }

    /// Loads the internal TLS files, when internal TLS is on; the result follows them
    /// ([`fjord::tls::reload`]): new handshakes use what the files hold now.
    ///
    /// # Errors
    /// [`WorkerError::Job`] with [`fjord::FjordError::Tls`] naming the unusable file.
    pub fn internal_tls(&self) -> Result<Option<InternalTls>, WorkerError> {
        Ok(self.internal.as_ref().map(InternalTls::load).transpose()?)
    }

    /// The REST API's TLS configuration, when REST TLS is on; new connections get the
    /// certificate the files hold now ([`fjord::tls::reload`]).
    ///
    /// # Errors
    /// [`WorkerError::Job`] with [`fjord::FjordError::Tls`] naming the unusable file.
    pub fn rest_tls(&self) -> Result<Option<Arc<rustls::ServerConfig>>, WorkerError> {
        Ok(self
            .rest
            .as_ref()
            .map(|(cert, key)| {
                let mut config = fjord::tls::rest_server_config(cert, key)?;
                Arc::make_mut(&mut config).alpn_protocols = vec![b"http/1.1".to_vec()];
                Ok::<_, fjord::FjordError>(config)
            })
            .transpose()?)
    }
}

/// One accepted, authenticated TLS connection (for tonic: with the TCP peer's address).
#[derive(Debug)]
pub struct TlsConnection(TlsStream<TcpStream>);

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.connect_info()
    }
}

/// A TLS listener: a task accepts TCP connections and completes each handshake in its own
/// task (a slow or hostile client cannot stall the others); connections that fail the
/// handshake are logged with the peer's address and dropped.
#[derive(Debug)]
pub struct TlsIncoming {
    local_addr: SocketAddr,
    connections: tokio::sync::mpsc::Receiver<(TlsConnection, SocketAddr)>,
    acceptor: tokio::task::JoinHandle<()>,
}

/// How long a client may take for its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl TlsIncoming {
    /// Serves TLS with `config` on `listener`; `what` names the server in logs.
    pub fn new(
        listener: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
        what: &'static str,
    ) -> std::io::Result<TlsIncoming> {
        let local_addr = listener.local_addr()?;
        let (send, connections) = tokio::sync::mpsc::channel(64);
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let acceptor = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(server = what, error = %e, "accepting a connection failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let send = send.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            // Fails only once the server stopped taking connections.
                            let _ = send.send((TlsConnection(tls), peer)).await;
                        }
                        // Closed before a handshake: a TCP readiness probe or a port
                        // check (the operator's JobManager Pods are probed every second), not
                        // a refused peer.
                        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            tracing::debug!(
                                server = what, %peer,
                                "a connection closed before its TLS handshake (a probe)"
                            )
                        }
                        Ok(Err(e)) => tracing::warn!(
                            server = what, %peer, error = %e,
                            "refused a connection: TLS handshake failed"
                        ),
                        Err(_) => tracing::warn!(
                            server = what, %peer,
                            "refused a connection: TLS handshake timed out"
                        ),
                    }
                });
            }
        });
        Ok(TlsIncoming {
            local_addr,
            connections,
            acceptor,
        })
    }

    /// The connections as a stream, for tonic's `serve_with_incoming_shutdown`.
    pub fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<TlsConnection, std::io::Error>> + Send + 'static {
        futures::stream::unfold(self, |mut me| async move {
            let (connection, _) = me.connections.recv().await?;
            Some((Ok(connection), me))
        })
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsConnection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(c) => c,
            // The accepting task never ends on its own; when aborted, serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// A lazily connecting tonic channel to `address` (`host:port`): over mutual TLS with `tls`
/// (the peer's certificate must chain to the cluster's CA; this process presents its own),
/// else plain text.
///
/// # Errors
/// [`WorkerError::Config`] when `address` is not a valid URI authority.
pub fn grpc_channel(
    address: &str,
    tls: Option<&InternalTls>,
    configure: impl FnOnce(tonic::transport::Endpoint) -> tonic::transport::Endpoint,
) -> Result<tonic::transport::Channel, WorkerError> {
    // Several JobManagers (high availability): a connection goes to the first that accepts
    // one, and only the leader listens.
    let addresses: Vec<String> = address
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let first = addresses.first().cloned().unwrap_or_default();
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{first}"))
        .map_err(|e| WorkerError::Config(format!("bad RPC address {address}: {e}")))?;
    let endpoint = configure(endpoint);
    let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let Some(tls) = tls else {
        if addresses.len() == 1 {
            return Ok(endpoint.connect_lazy());
        }
        let connect = tower::service_fn(move |_: tonic::transport::Uri| {
            let (addresses, turn) = (addresses.clone(), turn.clone());
            async move {
                let (tcp, _) = connect_first(&addresses, &turn).await?;
                tcp.set_nodelay(true)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tcp))
            }
        });
        return Ok(endpoint.connect_with_connector_lazy(connect));
    };
    let connector = tokio_rustls::TlsConnector::from(tls.client_config());
    let connect = tower::service_fn(move |_: tonic::transport::Uri| {
        let connector = connector.clone();
        let (addresses, turn) = (addresses.clone(), turn.clone());
        async move {
            let (tcp, address) = connect_first(&addresses, &turn).await?;
            tcp.set_nodelay(true)?;
            let tls = connector
                .connect(InternalTls::server_name(), tcp)
                .await
                .map_err(|e| {
                    std::io::Error::other(format!(
                        "TLS handshake with {address} failed: {e}; check that both sides use \
                         certificates of the same cluster CA"
                    ))
                })?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    Ok(endpoint.connect_with_connector_lazy(connect))
}

/// A TCP connection to the first of `addresses` that accepts one within 2 s, starting one
/// further along the list at every call (so a JobManager that accepts connections but does not
/// answer, a paused old leader, cannot hold every reconnection).
async fn connect_first(
    addresses: &[String],
    turn: &std::sync::atomic::AtomicUsize,
) -> std::io::Result<(TcpStream, String)> {
    let start = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut errors = Vec::new();
    for i in 0..addresses.len() {
        let address = &addresses[(start + i) % addresses.len()];
        match tokio::time::timeout(
            std::time::Duration::from_secs(2),
            TcpStream::connect(address.as_str()),
        )
        .await
        {
            Ok(Ok(tcp)) => return Ok((tcp, address.clone())),
            Ok(Err(e)) => errors.push(format!("{address}: {e}")),
            Err(_) => errors.push(format!("{address}: no connection within 2 s")),
        }
    }
    Err(std::io::Error::other(format!(
        "no JobManager accepted a connection ({})",
        errors.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plain_text_and_no_token_are_the_default() {
        let c = SecurityConfig::resolve(&SecurityArgs::default(), &BTreeMap::new()).unwrap();
        assert_eq!(c.internal, None);
        assert_eq!(c.rest, None);
        assert_eq!(c.rest_auth.token_file, None);
        assert!(c.rest_auth.open_health && !c.rest_auth.open_metrics);
    }

    #[test]
    fn a_secret_directory_gives_the_cert_manager_file_names() {
        let c = SecurityConfig::resolve(
            &SecurityArgs::default(),
            &file(&[
                ("security.ssl.internal.enabled", "true"),
                ("security.ssl.internal.dir", "/etc/fjord/internal"),
                ("security.ssl.rest.enabled", "true"),
                ("security.ssl.rest.dir", "/etc/fjord/rest"),
                ("security.ssl.rest.key", "/other/rest.key"),
                ("security.rest.token-file", "/etc/fjord/token/token"),
                ("security.rest.open-metrics", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.internal,
            Some(TlsFiles::in_dir(Path::new("/etc/fjord/internal")))
        );
        assert_eq!(
            c.rest,
            Some((
                PathBuf::from("/etc/fjord/rest/tls.crt"),
                PathBuf::from("/other/rest.key")
            )),
            "a file key wins over the directory"
        );
        assert_eq!(
            c.rest_auth.token_file.as_deref(),
            Some(Path::new("/etc/fjord/token/token"))
        );
        assert!(c.rest_auth.open_metrics);
    }

    #[test]
    fn tls_without_files_names_the_missing_key() {
        let args = SecurityArgs {
            ssl_internal: true,
            ..Default::default()
        };
        let e = SecurityConfig::resolve(&args, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("security.ssl.internal.cert") && e.contains("security.ssl.internal.dir"),
            "{e}"
        );
    }
}
