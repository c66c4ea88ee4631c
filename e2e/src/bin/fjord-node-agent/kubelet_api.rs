//! The one kubelet endpoint the agent serves: container logs, so `kubectl logs` works.
//!
//! The API server proxies `kubectl logs` to `https://<node InternalIP>:<kubeletEndpoint port>
//! /containerLogs/<ns>/<pod>/<container>`. All Nodes of an agent share one address and port, and
//! this server answers for every Pod the agent runs from its log files. Supported query
//! parameters: `tailLines` and `follow` (the file is polled every 200 ms until the container has
//! stopped and its output is sent, or the client goes away). `previous` is ignored: a container's restarts append to one file. Other kubelet endpoints
//! (`exec`, `attach`, `portForward`, metrics) answer 404.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::pod::LiveLogs;

/// A parsed `/containerLogs` request.
#[derive(Debug, PartialEq, Eq)]
pub struct LogRequest {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// `tailLines`.
    pub tail_lines: Option<usize>,
    /// `follow=true`.
    pub follow: bool,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && s != ".."
}

/// Parse the request target of `GET /containerLogs/ns/pod/container?...`.
pub fn parse_target(target: &str) -> Option<LogRequest> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut parts = path.strip_prefix("/containerLogs/")?.split('/');
    let (namespace, pod, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || ![namespace, pod, container].into_iter().all(valid_name) {
        return None;
    }
    let mut req = LogRequest {
        namespace: namespace.into(),
        pod: pod.into(),
        container: container.into(),
        tail_lines: None,
        follow: false,
    };
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("tailLines", v)) => req.tail_lines = v.parse().ok(),
            Some(("follow", v)) => req.follow = v == "true" || v == "1",
            _ => {}
        }
    }
    Some(req)
}

/// The last `n` lines of `text` (all of it for `None`).
pub fn tail(text: &[u8], n: Option<usize>) -> &[u8] {
    let Some(n) = n else { return text };
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let mut newlines = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            newlines += 1;
            if newlines == n {
                return &text[i + 1..];
            }
        }
    }
    if n == 0 { &[] } else { text }
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Serve container logs from `log_dir` on `addr` with the given serving certificate, forever.
/// A followed log ends once its file is no longer in `live` (the container stopped).
pub async fn serve(
    addr: SocketAddr,
    cert: PathBuf,
    key: PathBuf,
    log_dir: PathBuf,
    live: LiveLogs,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls_config(&cert, &key)?);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding kubelet API on {addr}"))?;
    tracing::info!(%addr, "serving container logs for kubectl logs");
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "kubelet API accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let log_dir = log_dir.clone();
        let live = live.clone();
        tokio::spawn(async move {
            match acceptor.accept(tcp).await {
                Ok(tls) => {
                    if let Err(e) = handle(tls, &log_dir, &live).await {
                        tracing::debug!(error = %e, "kubelet API request ended");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "kubelet API TLS handshake failed"),
            }
        });
    }
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    log_dir: &Path,
    live: &LiveLogs,
) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await?;
    let mut header_bytes = 0usize;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).await?;
        header_bytes += n;
        if n == 0 || line == "\r\n" || line == "\n" || header_bytes > 64 * 1024 {
            break;
        }
    }
    let mut stream = reader.into_inner();
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let request = parse_target(target);
    let path = request
        .as_ref()
        .map(|r| log_dir.join(format!("{}_{}_{}.log", r.namespace, r.pod, r.container)));
    let (Some(request), Some(path)) = (request, path.filter(|p| p.is_file())) else {
        let body = format!(
            "the test node agent serves only /containerLogs of its pods; no logs for {target}\n"
        );
        let head = format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        return Ok(stream.shutdown().await?);
    };
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        .await?;
    let content = tokio::fs::read(&path).await?;
    stream.write_all(tail(&content, request.tail_lines)).await?;
    stream.flush().await?;
    if !request.follow {
        return Ok(stream.shutdown().await?);
    }
    // Follow: poll the file, and stop when the client hangs up (its read side reaches EOF).
    let mut offset = content.len();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut scratch = [0u8; 256];
    loop {
        tokio::select! {
            read = rd.read(&mut scratch) => {
                if matches!(read, Ok(0) | Err(_)) {
                    break;
                }
            }
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                let running = live.lock().unwrap_or_else(|e| e.into_inner()).contains(&path);
                let Ok(content) = tokio::fs::read(&path).await else { break };
                if content.len() > offset {
                    wr.write_all(&content[offset..]).await?;
                    wr.flush().await?;
                    offset = content.len();
                } else if !running {
                    break;
                }
            }
        }
    }
    wr.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_log_requests_and_rejects_traversal() {
        let r = parse_target("/containerLogs/default/echo-1/echo?tailLines=5&follow=true").unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.pod.as_str(), r.container.as_str()),
            ("default", "echo-1", "echo")
        );
        assert_eq!((r.tail_lines, r.follow), (Some(5), true));
        assert!(parse_target("/containerLogs/default/../x").is_none());
        assert!(parse_target("/containerLogs/a/b").is_none());
        assert!(parse_target("/exec/a/b/c").is_none());
        assert!(parse_target("/containerLogs/a/b/c%2F..").is_none());
    }

    #[test]
    fn tails_lines() {
        assert_eq!(tail(b"a\nb\nc\n", Some(2)), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", Some(1)), b"c");
        assert_eq!(tail(b"a\nb\n", Some(5)), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", None), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", Some(0)), b"");
    }
}
