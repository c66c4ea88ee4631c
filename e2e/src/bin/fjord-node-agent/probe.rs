//! Readiness/liveness/startup probes: `httpGet` (HTTP only), `tcpSocket` and `exec`.
//!
//! `exec` probes run like the container, through the launch step (same environment, mounts and
//! working directory). `grpc` probes are not supported and always fail with a message.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Outcome of one probe run.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The probe passed.
    Success,
    /// The probe failed, with why.
    Failure(String),
}

/// Probe timing, with Kubernetes' defaults.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// `initialDelaySeconds` (default 0).
    pub initial_delay: Duration,
    /// `periodSeconds` (default 10).
    pub period: Duration,
    /// `timeoutSeconds` (default 1).
    pub timeout: Duration,
    /// `successThreshold` (default 1).
    pub success_threshold: u32,
    /// `failureThreshold` (default 3).
    pub failure_threshold: u32,
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default).max(0)).unwrap_or(0))
}

/// The timing of `probe`.
pub fn timing(probe: &Probe) -> Timing {
    Timing {
        initial_delay: secs(probe.initial_delay_seconds, 0),
        period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
        timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
        success_threshold: u32::try_from(probe.success_threshold.unwrap_or(1).max(1)).unwrap_or(1),
        failure_threshold: u32::try_from(probe.failure_threshold.unwrap_or(3).max(1)).unwrap_or(3),
    }
}

/// A port given as number or as the name of one of the container's ports.
pub fn resolve_port(container: &Container, port: &IntOrString) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("port {n} out of range")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("container has no port named {name}")),
    }
}

/// Where an `exec` probe runs: like the container, through the launch step with the container's
/// launch spec (same environment, mounts and working directory), or — without a spec — directly
/// on the host with `env`.
pub struct ExecContext<'a> {
    /// The container's environment.
    pub env: &'a [(String, String)],
    /// `fjord-node-agent` itself and the container's launch spec file.
    pub launch: Option<(&'a Path, &'a Path)>,
}

/// Run `probe` once against the container at `pod_ip`.
pub async fn run(
    probe: &Probe,
    container: &Container,
    pod_ip: IpAddr,
    exec: &ExecContext<'_>,
) -> Outcome {
    let t = timing(probe);
    match tokio::time::timeout(t.timeout, run_inner(probe, container, pod_ip, exec)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failure(format!("probe timed out after {:?}", t.timeout)),
    }
}

async fn run_inner(
    probe: &Probe,
    container: &Container,
    pod_ip: IpAddr,
    ctx: &ExecContext<'_>,
) -> Outcome {
    if let Some(http) = &probe.http_get {
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| !s.eq_ignore_ascii_case("HTTP"))
        {
            return Outcome::Failure(
                "only HTTP httpGet probes are supported by the test node agent".into(),
            );
        }
        let port = match resolve_port(container, &http.port) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host = http.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        let headers: String = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| format!("{}: {}\r\n", h.name, h.value))
            .collect();
        return http_get(&host, port, &path, &headers).await;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = match resolve_port(container, &tcp.port) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let host = tcp.host.clone().unwrap_or_else(|| pod_ip.to_string());
        return match TcpStream::connect((host.as_str(), port)).await {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure(format!("tcp {host}:{port}: {e}")),
        };
    }
    if let Some(exec) = &probe.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        let Some((program, args)) = cmd.split_first() else {
            return Outcome::Failure("exec probe without command".into());
        };
        let mut command = match ctx.launch {
            Some((agent, spec)) => match probe_spec(spec, program, args) {
                Ok(probe_spec) => {
                    let mut c = tokio::process::Command::new(agent);
                    c.arg(crate::launch::SUBCOMMAND).arg(probe_spec);
                    c
                }
                Err(e) => return Outcome::Failure(format!("exec probe: {e:#}")),
            },
            None => {
                let mut c = tokio::process::Command::new(program);
                c.args(args)
                    .env_clear()
                    .envs(ctx.env.iter().map(|(k, v)| (k, v)));
                c
            }
        };
        let status = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await;
        return match status {
            Ok(s) if s.success() => Outcome::Success,
            Ok(s) => Outcome::Failure(format!("exec probe exited with {s}")),
            Err(e) => Outcome::Failure(format!("exec probe {program}: {e}")),
        };
    }
    Outcome::Failure("probe type not supported by the test node agent (grpc?)".into())
}

/// The container's launch spec with `program args` as the command, written beside it.
fn probe_spec(container_spec: &Path, program: &str, args: &[String]) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(container_spec)?;
    let mut spec: crate::launch::LaunchSpec = serde_json::from_str(&text)?;
    spec.program = PathBuf::from(program);
    spec.args = args.to_vec();
    let path = container_spec.with_extension("probe.json");
    std::fs::write(&path, serde_json::to_vec(&spec)?)?;
    Ok(path)
}

/// A minimal HTTP/1.1 GET; 200–399 is success, as for the kubelet.
pub async fn http_get(host: &str, port: u16, path: &str, headers: &str) -> Outcome {
    let mut stream = match TcpStream::connect((host, port)).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failure(format!("GET http://{host}:{port}{path}: {e}")),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.35\r\nAccept: */*\r\n{headers}Connection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return Outcome::Failure(format!("GET http://{host}:{port}{path}: {e}"));
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Outcome::Failure(format!("GET http://{host}:{port}{path}: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let code: Option<u16> = line.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    match code {
        Some(c) if (200..400).contains(&c) => Outcome::Success,
        Some(c) => Outcome::Failure(format!("GET http://{host}:{port}{path}: HTTP {c}")),
        None => Outcome::Failure(format!(
            "GET http://{host}:{port}{path}: malformed response"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn named_ports_resolve_through_the_container() {
        let c = Container {
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            resolve_port(&c, &IntOrString::String("http".into())),
            Ok(8080)
        );
        assert_eq!(resolve_port(&c, &IntOrString::Int(9)), Ok(9));
        assert!(resolve_port(&c, &IntOrString::String("x".into())).is_err());
    }

    #[tokio::test]
    async fn http_probe_reads_the_status_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for body in [
                "HTTP/1.1 204 No Content\r\n\r\n",
                "HTTP/1.1 503 Nope\r\n\r\n",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(body.as_bytes()).await.unwrap();
            }
        });
        assert_eq!(
            http_get("127.0.0.1", port, "/ready", "").await,
            Outcome::Success
        );
        assert!(
            matches!(http_get("127.0.0.1", port, "/ready", "").await, Outcome::Failure(m) if m.contains("503"))
        );
        server.await.unwrap();
    }
}
