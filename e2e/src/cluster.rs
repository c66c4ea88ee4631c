//! [`TestCluster`]: one private control plane + MinIO + node agent (or real kubelet nodes) per
//! test, started through `scripts/infra/up.sh` and always stopped through `scripts/infra/down.sh`.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::s3::S3Settings;

/// Exit code `up.sh` uses when the cached binaries are missing.
const EXIT_NOT_INSTALLED: i32 = 3;

/// How to start a [`TestCluster`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    name: String,
    nodes: u32,
    images: Vec<(String, PathBuf)>,
    node_agent: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    real_nodes: u32,
    node_images: Option<PathBuf>,
}

impl ClusterOptions {
    /// Options for a cluster whose run directory is named after `name` (usually the test's name),
    /// with two nodes and no images.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            nodes: 2,
            images: Vec::new(),
            node_agent: None,
            cache_dir: None,
            real_nodes: 0,
            node_images: None,
        }
    }

    /// Number of Nodes the agent registers (default 2).
    pub fn nodes(mut self, nodes: u32) -> Self {
        self.nodes = nodes;
        self
    }

    /// Run Pods whose container image is `image` (exactly, or the same repository with any tag)
    /// as the local binary `binary`.
    pub fn image(mut self, image: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        self.images.push((image.into(), binary.into()));
        self
    }

    /// Run Pods as real containers on `nodes` (1 to 4) real kubelet nodes instead of the node
    /// agent (`scripts/infra/kubelet-node.sh`: containerd with runc, CNI bridge networking,
    /// kube-proxy, CoreDNS). Services then get ClusterIPs in `10.96.N.0/24` and Pods addresses
    /// in `10.244.N.0/24`; the image map and [`ClusterOptions::nodes`] are not used. Needs root,
    /// and only one such cluster runs on a machine at a time (a second start fails, naming the
    /// first). The images come from [`ClusterOptions::node_images`].
    pub fn real_nodes(mut self, nodes: u32) -> Self {
        self.real_nodes = nodes;
        self
    }

    /// The directory whose `*.oci.tar` images real nodes import (default
    /// `$FJORD_CACHE/images/test`, where [`crate::containers::test_images`] writes them).
    pub fn node_images(mut self, dir: impl Into<PathBuf>) -> Self {
        self.node_images = Some(dir.into());
        self
    }

    /// The infrastructure cache to use instead of `$FJORD_CACHE` / `~/.cache/fjord`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// The `fjord-node-agent` binary to run. Default: the one beside the running test executable
    /// in Cargo's target directory; if there is none, `up.sh` builds it with cargo.
    pub fn node_agent(mut self, path: impl Into<PathBuf>) -> Self {
        self.node_agent = Some(path.into());
        self
    }
}

/// A running test cluster. Dropping it stops every process it started (also during a panic or
/// an early `?` return); [`TestCluster::stop`] does the same and reports errors.
///
/// The run directory keeps the logs of every component under `logs/`. [`TestCluster::stop`]
/// deletes it (unless `FJORD_E2E_KEEP=1` is set); a drop without `stop()` keeps it and prints
/// where, since that is how a failing test ends. End a passing test with `cluster.stop()?`.
#[derive(Debug)]
pub struct TestCluster {
    run_dir: PathBuf,
    env: HashMap<String, String>,
    stopped: bool,
}

/// `scripts/infra` of the checkout being tested: `$FJORD_INFRA_DIR`, else found from the
/// runtime `CARGO_MANIFEST_DIR` (cargo sets it for every test; all crates sit one level below
/// the root) or the working directory, else the checkout this crate was compiled from. The
/// runtime lookups come first because a shared target directory can hold this library compiled
/// from another checkout.
pub(crate) fn infra_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FJORD_INFRA_DIR") {
        return PathBuf::from(dir);
    }
    let mut starts: Vec<PathBuf> = Vec::new();
    starts.extend(std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from));
    starts.extend(std::env::current_dir().ok());
    for start in &starts {
        for dir in start.ancestors() {
            let candidate = dir.join("scripts").join("infra");
            if candidate.join("up.sh").is_file() {
                return candidate;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("infra")
}

pub(crate) fn unique_run_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = std::env::var_os("FJORD_E2E_RUN_BASE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("fjord-e2e"));
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    base.join(format!(
        "{safe}-{}-{millis}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A loopback port free at the moment of asking (bound and released; another process may
/// take it before the caller binds it, so tests that lose that race fail with "address in
/// use").
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A binary of this workspace built into the same Cargo target directory as the running test
/// (`target/<profile>/<name>`), for tests in crates that cannot use `env!("CARGO_BIN_EXE_<name>")`
/// for another crate's binary. `None` if it has not been built (build it with
/// `cargo build -p <crate> --bin <name>`, or let `cargo test --workspace` build it).
pub fn target_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let candidate = exe.parent()?.parent()?.join(name);
    candidate.is_file().then_some(candidate)
}

fn default_node_agent() -> Option<PathBuf> {
    target_binary("fjord-node-agent")
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl TestCluster {
    /// Start a cluster: control plane, MinIO with a bucket, and the node agent with `options`'
    /// nodes and images. Blocks until everything is ready (typically 4–8 s).
    ///
    /// A start that fails (say, another program grabbed a chosen port between the check and the
    /// bind) is retried once in a fresh run directory; the first failure is printed to stderr.
    ///
    /// # Errors
    /// [`Error::NotInstalled`] when `scripts/infra/install.sh` has not been run on this machine,
    /// [`Error::StartFailed`] when a component did not come up twice (everything started is
    /// stopped again; the logs stay in the run directories).
    pub fn start(options: ClusterOptions) -> Result<Self> {
        match Self::start_once(&options) {
            Err(first @ Error::StartFailed { .. }) => {
                eprintln!("fjord-e2e: first start failed, retrying once: {first}");
                Self::start_once(&options)
            }
            other => other,
        }
    }

    fn start_once(options: &ClusterOptions) -> Result<Self> {
        let run_dir = unique_run_dir(&options.name);
        std::fs::create_dir_all(&run_dir).map_err(|source| Error::Io {
            action: "create",
            path: run_dir.clone(),
            source,
        })?;
        let images_path = run_dir.join("images.in.yaml");
        let mut images = String::from("images:\n");
        for (image, binary) in &options.images {
            images.push_str(&format!(
                "  {:?}: {:?}\n",
                image,
                binary.display().to_string()
            ));
        }
        if options.images.is_empty() {
            images = String::from("images: {}\n");
        }
        std::fs::write(&images_path, images).map_err(|source| Error::Io {
            action: "write",
            path: images_path.clone(),
            source,
        })?;

        let up = infra_dir().join("up.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&up)
            .arg(&run_dir)
            .env("FJORD_IMAGE_MAP", &images_path)
            .env("FJORD_NODES", options.nodes.to_string())
            .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::null());
        if let Some(cache) = &options.cache_dir {
            cmd.env("FJORD_CACHE", cache);
        }
        if options.real_nodes > 0 {
            cmd.env("FJORD_REAL_NODES", options.real_nodes.to_string());
        }
        if let Some(dir) = &options.node_images {
            cmd.env("FJORD_NODE_IMAGES", dir);
        }
        if let Some(agent) = options.node_agent.clone().or_else(default_node_agent) {
            cmd.env("FJORD_NODE_AGENT", agent);
        }
        let output = cmd.output().map_err(|source| Error::Spawn {
            program: up.display().to_string(),
            source,
        })?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.code() == Some(EXIT_NOT_INSTALLED) {
            let _ = std::fs::remove_dir_all(&run_dir);
            return Err(Error::NotInstalled {
                detail: tail(&text, 5),
            });
        }
        if !output.status.success() {
            return Err(Error::StartFailed {
                run_dir,
                code: output.status.code(),
                output: tail(&text, 40),
            });
        }
        let env_path = run_dir.join("env");
        let env_text = std::fs::read_to_string(&env_path).map_err(|source| Error::Io {
            action: "read",
            path: env_path.clone(),
            source,
        })?;
        let env = parse_env_file(&env_text);
        let cluster = Self {
            run_dir,
            env,
            stopped: false,
        };
        // Fail early (and tear down through Drop) if the env file is incomplete.
        for key in [
            "KUBECONFIG",
            "FJORD_KUBECTL",
            "FJORD_HELM",
            "FJORD_S3_ENDPOINT",
            "FJORD_S3_BUCKET",
        ] {
            cluster.setting(key)?;
        }
        Ok(cluster)
    }

    /// A value from the run's env file.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] if `up.sh` did not write it.
    pub fn setting(&self, key: &str) -> Result<&str> {
        self.env
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::MissingSetting {
                path: self.run_dir.join("env"),
                key: key.to_string(),
            })
    }

    /// Every setting of the run's env file (`KUBECONFIG`, `FJORD_S3_*`, `AWS_*`, ...).
    pub fn env(&self) -> &HashMap<String, String> {
        &self.env
    }

    /// The run directory: `kubeconfig`, `env`, `logs/`, `pki/`, `agent/pods/`.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The admin kubeconfig, usable unchanged by kubectl and kube-rs.
    pub fn kubeconfig(&self) -> PathBuf {
        self.run_dir.join("kubeconfig")
    }

    /// The pod address block of this run, e.g. `127.42.17` (pods get `.2` … `.254`).
    pub fn pod_ip_block(&self) -> Option<&str> {
        self.env.get("FJORD_POD_IP_BLOCK").map(String::as_str)
    }

    /// A kube-rs client for the cluster, authenticated as cluster admin.
    ///
    /// # Errors
    /// [`Error::KubeClient`] if the kubeconfig cannot be read or used.
    pub async fn client(&self) -> Result<kube::Client> {
        let path = self.kubeconfig();
        let err = |message: String| Error::KubeClient {
            path: path.clone(),
            message,
        };
        let kubeconfig =
            kube::config::Kubeconfig::read_from(&path).map_err(|e| err(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .map_err(|e| err(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| err(e.to_string()))
    }

    /// A `kubectl` command (the pinned build) with `KUBECONFIG` set to this cluster.
    pub fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new(
            self.env
                .get("FJORD_KUBECTL")
                .map(String::as_str)
                .unwrap_or("kubectl"),
        );
        cmd.env("KUBECONFIG", self.kubeconfig());
        cmd
    }

    /// A `helm` command (the pinned build) with `KUBECONFIG` set to this cluster and Helm's
    /// caches inside the run directory.
    pub fn helm_command(&self) -> Command {
        let mut cmd = Command::new(
            self.env
                .get("FJORD_HELM")
                .map(String::as_str)
                .unwrap_or("helm"),
        );
        let home = self.run_dir.join("helm");
        cmd.env("KUBECONFIG", self.kubeconfig())
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"));
        cmd
    }

    /// Run kubectl with `args` (and `stdin`, if given); return its stdout.
    ///
    /// # Errors
    /// [`Error::Command`] with kubectl's stderr if it exits non-zero.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        run_command(self.kubectl_command(), "kubectl", args, stdin)
    }

    /// Run helm with `args`; return its stdout.
    ///
    /// # Errors
    /// [`Error::Command`] with helm's stderr if it exits non-zero.
    pub fn helm(&self, args: &[&str]) -> Result<String> {
        run_command(self.helm_command(), "helm", args, None)
    }

    /// MinIO's endpoint, credentials and bucket.
    ///
    /// # Errors
    /// [`Error::MissingSetting`] if the env file lacks one of them.
    pub fn s3(&self) -> Result<S3Settings> {
        Ok(S3Settings {
            endpoint: self.setting("FJORD_S3_ENDPOINT")?.to_string(),
            bucket: self.setting("FJORD_S3_BUCKET")?.to_string(),
            access_key_id: self.setting("AWS_ACCESS_KEY_ID")?.to_string(),
            secret_access_key: self.setting("AWS_SECRET_ACCESS_KEY")?.to_string(),
            region: self.setting("AWS_REGION")?.to_string(),
        })
    }

    /// Stop every process of the cluster and report failures (dropping does the same silently).
    ///
    /// # Errors
    /// [`Error::StopFailed`] if `down.sh` fails.
    pub fn stop(mut self) -> Result<()> {
        self.stopped = true;
        let result = down(&self.run_dir);
        if result.is_ok() {
            self.remove_run_dir();
        }
        result
    }

    fn remove_run_dir(&self) {
        if std::env::var_os("FJORD_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // Dropped without `stop()`: a panic or an early `?` return, i.e. most likely a failing
        // test, so the logs stay.
        if let Err(e) = down(&self.run_dir) {
            eprintln!("fjord-e2e: {e}");
        }
        eprintln!(
            "fjord-e2e: cluster stopped without TestCluster::stop() (test failed?); logs kept in {}/logs",
            self.run_dir.display()
        );
    }
}

/// Runs `cmd` (a project script, named `script` in errors) with no input and waits for its
/// output; a failure to start it is [`Error::Spawn`].
pub(crate) fn script_output(cmd: &mut Command, script: &Path) -> Result<std::process::Output> {
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|source| Error::Spawn {
            program: script.display().to_string(),
            source,
        })
}

fn down(run_dir: &Path) -> Result<()> {
    let script = infra_dir().join("down.sh");
    let output = script_output(Command::new("bash").arg(&script).arg(run_dir), &script)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::StopFailed {
            run_dir: run_dir.to_path_buf(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

fn run_command(mut cmd: Command, name: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let line = format!("{name} {}", args.join(" "));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        program: name.to_string(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|source| Error::Spawn {
                program: name.to_string(),
                source,
            })?;
    }
    let output = child.wait_with_output().map_err(|source| Error::Spawn {
        program: name.to_string(),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: line,
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Parse the `export KEY='value'` lines of an env file written by `up.sh`.
pub fn parse_env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('\'').to_string(),
            )
        })
        .collect()
}

/// Poll `check` every `interval` until it yields `Some`, for at most `timeout`.
///
/// The bounded way to wait for an event in e2e tests (never sleep as synchronization).
///
/// # Errors
/// [`Error::Timeout`] naming `what` when the time runs out.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_file() {
        let env = parse_env_file("# c\nexport KUBECONFIG='/tmp/x/kubeconfig'\nexport A='b=c'\n");
        assert_eq!(env["KUBECONFIG"], "/tmp/x/kubeconfig");
        assert_eq!(env["A"], "b=c");
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn run_dirs_are_unique() {
        assert_ne!(unique_run_dir("a b"), unique_run_dir("a b"));
        assert!(
            unique_run_dir("a/b")
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("a-b-")
        );
    }
}
