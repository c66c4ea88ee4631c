//! The process harness of the multi-process e2e tests: a `fjord` child process with its output in
//! a log file (killed on drop), a JobManager with its REST client, TaskManagers. Shared by
//! `distributed.rs` and `kafka_exactly_once.rs`.

#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use fjord_client::Client;
use fjord_e2e::{poll_until, target_binary};

/// How often waits poll.
pub const POLL: Duration = Duration::from_millis(100);
/// Bound on waiting for a process to start serving or log a line.
pub const STARTUP: Duration = Duration::from_secs(60);

/// The `fjord` binary under test.
pub fn fjord_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FJORD_E2E_WORKER_BIN") {
        return Ok(PathBuf::from(path));
    }
    target_binary("fjord").context(
        "the fjord binary is not built in this target directory; build it first with \
         `cargo build -p fjord-worker --features s3 --bins` (or point FJORD_E2E_WORKER_BIN at one)",
    )
}

/// A child process whose output goes to a log file; killed (SIGKILL) and reaped on drop.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `fjord <args>` with its output in `<dir>/<name>.log`.
    pub fn spawn(
        name: &str,
        dir: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(fjord_binary()?);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .with_context(|| format!("start {name}: fjord {}", args.join(" ")))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
            status: None,
        })
    }

    /// The name it was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process ID (to read `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How often its output contains `needle` so far.
    pub fn count(&self, needle: &str) -> usize {
        self.log().matches(needle).count()
    }

    /// Waits (bounded) until its output contains `needle` at least `n` times. Fails early
    /// when the process exits first.
    pub async fn wait_for_count(
        &mut self,
        needle: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let what = format!("{} to print {needle:?} {n} times", self.name);
        let mut exited = None;
        let reached = poll_until(&what, timeout, POLL, || {
            let reached = self.count(needle) >= n;
            if !reached {
                exited = self.exited();
            }
            let done = if reached {
                Some(true)
            } else {
                exited.map(|_| false)
            };
            async move { done }
        })
        .await
        .with_context(|| self.tail())?;
        ensure!(
            reached,
            "{} exited ({:?}) before printing {needle:?} {n} times\n{}",
            self.name,
            exited,
            self.tail()
        );
        Ok(())
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last lines it printed, for failure messages.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }

    /// Its exit status if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// SIGKILL, like a machine failure, and reap it.
    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.status = Some(status);
        }
    }

    /// SIGTERM, like Kubernetes stopping a Pod.
    pub fn sigterm(&self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)
            .with_context(|| format!("SIGTERM {}", self.name))
    }

    /// Waits (bounded) for it to exit and returns its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<i32> {
        let what = format!("{} to exit", self.name);
        let status = poll_until(&what, timeout, POLL, || {
            let s = self.exited();
            async move { s }
        })
        .await
        .with_context(|| self.tail())?;
        status
            .code()
            .with_context(|| format!("{} ended by a signal: {status}\n{}", self.name, self.tail()))
    }

    /// Waits (bounded) until its output contains `needle`; returns the text after it up to the
    /// end of that line. Fails early when the process exits first.
    pub async fn wait_for_line(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let what = format!("{} to print {needle:?}", self.name);
        let mut exited = None;
        let found = poll_until(&what, timeout, POLL, || {
            let log = self.log();
            // Only a whole line: the process may have written part of it so far.
            let found = log.find(needle).and_then(|at| {
                let rest = &log[at + needle.len()..];
                rest.find('\n').map(|end| rest[..end].trim().to_string())
            });
            if found.is_none() {
                exited = self.exited();
            }
            let done = found.map(Some).or(exited.map(|_| None));
            async move { done }
        })
        .await
        .with_context(|| self.tail())?;
        found.with_context(|| {
            format!(
                "{} exited ({:?}) before printing {needle:?}\n{}",
                self.name,
                exited,
                self.tail()
            )
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A JobManager process with its REST client.
pub struct JobManager {
    pub proc: Proc,
    pub client: Client,
    /// The RPC address TaskManagers register with (`127.0.0.1:port`).
    pub rpc: String,
    /// The REST address (`127.0.0.1:port`; the dashboard is at `http://<rest>/`).
    pub rest: String,
}

/// `file://` URL of a local path.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The `fjord jobmanager` flags the multi-process tests share: the TaskManagers scheduler,
/// loopback with a free REST port, RPC port `rpc_port` (0: any free one), parallelism `p`,
/// checkpoints every `checkpoint_ms` into `storage`, heartbeats every 300 ms with a 2 s
/// timeout. Tests append their own flags and then the job with its arguments.
pub fn cluster_jm_args(rpc_port: u16, p: u32, storage: &Path, checkpoint_ms: u64) -> Vec<String> {
    [
        "jobmanager",
        "--scheduler",
        "taskmanagers",
        "--rest-address",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--rpc-port",
        &rpc_port.to_string(),
        "-p",
        &p.to_string(),
        "--storage-url",
        &file_url(storage),
        "--checkpoint-interval-ms",
        &checkpoint_ms.to_string(),
        "--heartbeat-interval-ms",
        "300",
        "--heartbeat-timeout-ms",
        "2000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `args` followed by `more`, as owned strings (for appending flags to [`cluster_jm_args`]).
pub fn with_args(mut args: Vec<String>, more: &[&str]) -> Vec<String> {
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

impl JobManager {
    /// Starts a JobManager and waits (bounded) until its REST and RPC ports are bound.
    pub async fn start(name: &str, dir: &Path, args: Vec<String>) -> anyhow::Result<Self> {
        Self::start_with(name, dir, args, &[]).await
    }

    /// [`start`](Self::start) with extra environment variables.
    pub async fn start_with(
        name: &str,
        dir: &Path,
        args: Vec<String>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut proc = Proc::spawn(name, dir, &args, env)?;
        let rest = proc
            .wait_for_line("REST API listening on http://", STARTUP)
            .await?;
        let rest = rest
            .split_whitespace()
            .next()
            .context("REST address")?
            .to_string();
        let rpc = proc
            .wait_for_line("(TaskManager registration) listening on ", STARTUP)
            .await?;
        Ok(JobManager {
            client: Client::new(&format!("http://{rest}"))?,
            rpc,
            rest,
            proc,
        })
    }

    /// The RPC port (to start a replacement on the same one).
    pub fn rpc_port(&self) -> anyhow::Result<u16> {
        Ok(self
            .rpc
            .rsplit(':')
            .next()
            .context("RPC address")?
            .parse()?)
    }

    /// Waits (bounded) until the REST API lists the job; returns its ID.
    pub async fn job_id(&mut self) -> anyhow::Result<String> {
        let client = self.client.clone();
        let id = poll_until("the job to be listed", STARTUP, POLL, || {
            let client = client.clone();
            async move { client.jobs().await.ok()?.jobs.first().map(|j| j.id.clone()) }
        })
        .await
        .with_context(|| self.proc.tail())?;
        Ok(id)
    }

    /// The newest completed checkpoint's ID of `job_id` (0 before the first, or when the REST
    /// API does not answer: a JobManager restarting).
    pub async fn latest_checkpoint(&self, job_id: &str) -> i64 {
        match self.client.checkpoints(job_id).await {
            Ok(h) => h
                .completed
                .iter()
                .filter(|c| !c.savepoint)
                .map(|c| c.id)
                .max()
                .unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Waits (bounded by `timeout`) until a checkpoint of `job_id` newer than `after` completed:
    /// the job runs and makes progress (after a restart: it recovered). Returns the newest ID.
    pub async fn checkpoint_after(
        &self,
        job_id: &str,
        after: i64,
        timeout: Duration,
    ) -> anyhow::Result<i64> {
        poll_until(
            &format!("a checkpoint after {after}"),
            timeout,
            POLL,
            || async move {
                Some(self.latest_checkpoint(job_id).await).filter(|latest| *latest > after)
            },
        )
        .await
        .with_context(|| self.proc.tail())
    }

    /// Waits (bounded) until the job has a completed checkpoint; returns its ID.
    pub async fn first_checkpoint(&self, job_id: &str) -> anyhow::Result<i64> {
        let client = self.client.clone();
        poll_until("a completed checkpoint", STARTUP, POLL, || {
            let client = client.clone();
            async move {
                let history = client.checkpoints(job_id).await.ok()?;
                history
                    .completed
                    .iter()
                    .find(|c| !c.savepoint)
                    .map(|c| c.id)
            }
        })
        .await
        .with_context(|| self.proc.tail())
    }
}

/// A TaskManager with `slots` slots registering with `jm_rpc`; worker logs at info level so
/// task deployment and cancellation show.
pub fn task_manager(id: &str, dir: &Path, jm_rpc: &str, slots: u32) -> anyhow::Result<Proc> {
    task_manager_with(id, dir, jm_rpc, slots, &[])
}

/// [`task_manager`] with extra environment variables (a state backend, say).
pub fn task_manager_with(
    id: &str,
    dir: &Path,
    jm_rpc: &str,
    slots: u32,
    env: &[(&str, &str)],
) -> anyhow::Result<Proc> {
    let args: Vec<String> = [
        "taskmanager",
        "--jobmanager-address",
        jm_rpc,
        "--id",
        id,
        "--slots",
        &slots.to_string(),
        "--data-port",
        "0",
        "--rpc-port",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The caller's variables come last, so they win.
    let mut all = vec![("FJORD_LOG", "warn,fjord_worker=info")];
    all.extend_from_slice(env);
    Proc::spawn(id, dir, &args, &all)
}
