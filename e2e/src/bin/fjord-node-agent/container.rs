//! One container of a Pod: which binary stands in for it, its process, probe trackers and
//! restart bookkeeping.

use std::net::IpAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::images::ImageMap;
use crate::probe::{Outcome, Timing, timing};

/// Sent by the waiter task when a container's process exits.
#[derive(Debug)]
pub struct ExitEvent {
    /// Index into the pod's container list (init containers first, as the Pod runner numbers them).
    pub index: usize,
    /// Which start of the container this was.
    pub generation: u64,
    /// How it ended.
    pub status: std::io::Result<ExitStatus>,
}

/// The state a container status reports.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Not running (yet or again).
    Waiting {
        /// `ContainerCreating`, `CrashLoopBackOff`, `CreateContainerConfigError`, ...
        reason: String,
        /// Details for the user.
        message: Option<String>,
    },
    /// Running since.
    Running {
        /// Start time.
        started_at: Time,
    },
    /// Exited.
    Terminated {
        /// Exit code (128 + signal for signals).
        exit_code: i32,
        /// Signal number, if killed by one.
        signal: Option<i32>,
        /// `Completed` or `Error`.
        reason: String,
        /// Start time.
        started_at: Time,
        /// End time.
        finished_at: Time,
    },
}

/// Threshold bookkeeping of one probe.
#[derive(Debug)]
pub struct ProbeTracker {
    /// The probe.
    pub probe: Probe,
    timing: Timing,
    next_at: Instant,
    successes: u32,
    failures: u32,
}

impl ProbeTracker {
    /// A tracker whose first run is `initialDelaySeconds` after `started`.
    pub fn new(probe: &Probe, started: Instant) -> Self {
        let timing = timing(probe);
        Self {
            probe: probe.clone(),
            timing,
            next_at: started + timing.initial_delay,
            successes: 0,
            failures: 0,
        }
    }

    /// Whether the probe should run now.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    /// Record an outcome; returns `Some(true)` when the success threshold is reached, `Some(false)`
    /// when the failure threshold is reached, `None` otherwise.
    pub fn record(&mut self, outcome: &Outcome, now: Instant) -> Option<bool> {
        self.next_at = now + self.timing.period;
        match outcome {
            Outcome::Success => {
                self.failures = 0;
                self.successes += 1;
                (self.successes >= self.timing.success_threshold).then_some(true)
            }
            Outcome::Failure(_) => {
                self.successes = 0;
                self.failures += 1;
                (self.failures >= self.timing.failure_threshold).then_some(false)
            }
        }
    }
}

/// A container and its current process.
#[derive(Debug)]
pub struct ContainerRun {
    /// The container spec.
    pub spec: Container,
    /// Process group id of the running process.
    pub pid: Option<i32>,
    /// Incremented on every start.
    pub generation: u64,
    /// Restarts so far.
    pub restart_count: i32,
    /// Current state.
    pub state: State,
    /// The previous termination, after a restart.
    pub last_state: Option<State>,
    /// Readiness as last determined.
    pub ready: bool,
    /// Whether the startup probe (if any) has passed.
    pub started: bool,
    /// When the current process started.
    pub started_instant: Option<Instant>,
    /// When to start again after a crash.
    pub restart_at: Option<Instant>,
    /// Current crash back-off.
    pub backoff: Duration,
    /// When to SIGKILL after a SIGTERM (liveness failure or deletion).
    pub kill_at: Option<Instant>,
    /// Environment used for the current start (and exec probes).
    pub env: Vec<(String, String)>,
    /// `fjord-node-agent` and the launch spec of the current start (for exec probes).
    pub launch: Option<(PathBuf, PathBuf)>,
    /// Probe trackers of the current start.
    pub readiness: Option<ProbeTracker>,
    /// See `readiness`.
    pub liveness: Option<ProbeTracker>,
    /// See `readiness`.
    pub startup: Option<ProbeTracker>,
}

/// Back-off after the first crash; doubles up to [`MAX_BACKOFF`] (the kubelet uses 10 s → 5 min).
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Largest crash back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn find_on_path(name: &str, path_var: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Path::new(name).is_file().then(|| PathBuf::from(name));
    }
    path_var
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The program and arguments for `container`, given the image table and the environment used for
/// `$(VAR)` expansion.
///
/// Without `command`, the image's binary runs with `args`. With `command`, `command[0]` names the
/// image's binary if its file name matches the binary's (`/usr/local/bin/fjord` → the mapped
/// `fjord`); otherwise it is looked up on the host (`sh`, `/bin/true`, ...), and if the host has
/// no such program, the image's binary runs.
pub fn resolve_command(
    container: &Container,
    images: &ImageMap,
    env: &[(String, String)],
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let image = container.image.clone().unwrap_or_default();
    let entry = images.lookup(&image);
    let expand = |v: &Vec<String>| {
        v.iter()
            .map(|s| crate::env::expand(s, env))
            .collect::<Vec<_>>()
    };
    let args = container.args.as_ref().map(expand).unwrap_or_default();
    let command = container.command.as_ref().map(expand).unwrap_or_default();
    let Some((first, rest)) = command.split_first() else {
        let entry = entry.with_context(|| {
            format!("image {image:?} is not in the node agent's image map and the container has no command")
        })?;
        return Ok((entry.to_path_buf(), args));
    };
    let mut all_args: Vec<String> = rest.to_vec();
    all_args.extend(args);
    if let Some(entry) = entry
        && entry.file_name().and_then(|n| n.to_str()) == Some(basename(first))
    {
        return Ok((entry.to_path_buf(), all_args));
    }
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    match (find_on_path(first, path_var), entry) {
        (Some(p), _) => Ok((p, all_args)),
        // The image holds only its mapped binary, so a command that names no host program
        // means that binary under another name or path.
        (None, Some(entry)) => Ok((entry.to_path_buf(), all_args)),
        (None, None) => bail!(
            "command {first:?} of image {image:?} not found: the image is not in the node agent's \
             image map and the host has no such program"
        ),
    }
}

impl ContainerRun {
    /// A container that has not started yet.
    pub fn new(spec: Container, init: bool) -> Self {
        Self {
            spec,
            pid: None,
            generation: 0,
            restart_count: 0,
            state: State::Waiting {
                reason: if init {
                    "PodInitializing".into()
                } else {
                    "ContainerCreating".into()
                },
                message: None,
            },
            last_state: None,
            ready: false,
            started: false,
            started_instant: None,
            restart_at: None,
            backoff: INITIAL_BACKOFF,
            kill_at: None,
            env: Vec::new(),
            launch: None,
            readiness: None,
            liveness: None,
            startup: None,
        }
    }

    /// Whether a process is running.
    pub fn running(&self) -> bool {
        self.pid.is_some()
    }

    /// Start the process through the launch step; its exit is reported on `exits` as `index`.
    pub fn start(
        &mut self,
        index: usize,
        agent_exe: &Path,
        spec_path: &Path,
        log_path: &Path,
        exits: &mpsc::UnboundedSender<ExitEvent>,
    ) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut child = tokio::process::Command::new(agent_exe)
            .arg(crate::launch::SUBCOMMAND)
            .arg(spec_path)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", agent_exe.display()))?;
        let pid = child.id().context("child has no pid")?;
        self.launch = Some((agent_exe.to_path_buf(), spec_path.to_path_buf()));
        self.generation += 1;
        let generation = self.generation;
        let tx = exits.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let _ = tx.send(ExitEvent {
                index,
                generation,
                status,
            });
        });
        let now = Instant::now();
        self.pid = Some(i32::try_from(pid)?);
        self.state = State::Running {
            started_at: now_time(),
        };
        self.started_instant = Some(now);
        self.restart_at = None;
        self.kill_at = None;
        self.ready = false;
        self.started = self.spec.startup_probe.is_none();
        self.readiness = self
            .spec
            .readiness_probe
            .as_ref()
            .map(|p| ProbeTracker::new(p, now));
        self.liveness = self
            .spec
            .liveness_probe
            .as_ref()
            .map(|p| ProbeTracker::new(p, now));
        self.startup = self
            .spec
            .startup_probe
            .as_ref()
            .map(|p| ProbeTracker::new(p, now));
        Ok(())
    }

    /// Send `signal` to the process group.
    pub fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid
            && let Err(e) = killpg(Pid::from_raw(pid), signal)
        {
            tracing::debug!(pid, %signal, error = %e, "signal failed");
        }
    }

    /// Record the exit of the current process.
    pub fn exited(&mut self, status: &std::io::Result<ExitStatus>) {
        let (exit_code, signal) = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(c), _) => (c, None),
                (None, Some(sig)) => (128 + sig, Some(sig)),
                (None, None) => (255, None),
            },
            Err(_) => (255, None),
        };
        let started_at = match &self.state {
            State::Running { started_at } => started_at.clone(),
            _ => now_time(),
        };
        self.pid = None;
        self.ready = false;
        self.kill_at = None;
        // A process that ran for a while resets the back-off, as the kubelet does.
        if self
            .started_instant
            .is_some_and(|t| t.elapsed() > Duration::from_secs(10))
        {
            self.backoff = INITIAL_BACKOFF;
        }
        self.state = State::Terminated {
            exit_code,
            signal,
            reason: if exit_code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            started_at,
            finished_at: now_time(),
        };
    }

    /// The exit code of the last termination, if terminated.
    pub fn exit_code(&self) -> Option<i32> {
        match &self.state {
            State::Terminated { exit_code, .. } => Some(*exit_code),
            _ => None,
        }
    }

    /// Schedule a restart after the current back-off; the state shows `CrashLoopBackOff` meanwhile
    /// for failed runs (the terminated state moves to `last_state`).
    pub fn schedule_restart(&mut self) {
        let failed = self.exit_code().is_some_and(|c| c != 0);
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.last_state = Some(self.state.clone());
        self.restart_count += 1;
        self.state = State::Waiting {
            reason: if failed {
                "CrashLoopBackOff".into()
            } else {
                "ContainerCreating".into()
            },
            message: None,
        };
    }
}

/// Run the due probes of a running container and apply their thresholds.
pub async fn run_probes(c: &mut ContainerRun, ip: IpAddr, now: Instant) {
    if !c.started {
        if let Some(t) = c.startup.as_mut()
            && t.due(now)
        {
            let outcome =
                crate::probe::run(&t.probe, &c.spec, ip, &exec_context(&c.env, &c.launch)).await;
            match t.record(&outcome, now) {
                Some(true) => c.started = true,
                Some(false) => kill_for_probe(c, "startup", &outcome),
                None => {}
            }
        }
        return;
    }
    if let Some(t) = c.liveness.as_mut()
        && t.due(now)
    {
        let outcome =
            crate::probe::run(&t.probe, &c.spec, ip, &exec_context(&c.env, &c.launch)).await;
        if t.record(&outcome, now) == Some(false) {
            kill_for_probe(c, "liveness", &outcome);
            return;
        }
    }
    match c.readiness.as_mut() {
        None => c.ready = true,
        Some(t) if t.due(now) => {
            let outcome =
                crate::probe::run(&t.probe, &c.spec, ip, &exec_context(&c.env, &c.launch)).await;
            if let Some(ready) = t.record(&outcome, now) {
                if ready != c.ready {
                    tracing::info!(container = %c.spec.name, ready, ?outcome, "readiness changed");
                }
                c.ready = ready;
            }
        }
        Some(_) => {}
    }
}

fn kill_for_probe(c: &mut ContainerRun, which: &str, outcome: &Outcome) {
    tracing::info!(container = %c.spec.name, ?outcome, "{which} probe failed; restarting container");
    c.signal(Signal::SIGTERM);
    c.kill_at = Some(Instant::now() + Duration::from_secs(2));
    c.liveness = None;
    c.startup = None;
}

fn exec_context<'a>(
    env: &'a [(String, String)],
    launch: &'a Option<(PathBuf, PathBuf)>,
) -> crate::probe::ExecContext<'a> {
    crate::probe::ExecContext {
        env,
        launch: launch.as_ref().map(|(a, s)| (a.as_path(), s.as_path())),
    }
}

/// Now as a Kubernetes `Time`.
pub fn now_time() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, command: Option<Vec<&str>>, args: Vec<&str>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            command: command.map(|c| c.into_iter().map(String::from).collect()),
            args: Some(args.into_iter().map(String::from).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn commands_map_to_the_image_binary_or_the_host() {
        let images =
            ImageMap::from_pairs([("fjord/worker".to_string(), PathBuf::from("/opt/bin/fjord"))]);
        let env = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("ROLE".to_string(), "jm".to_string()),
        ];
        let (p, a) = resolve_command(
            &container("fjord/worker:1", None, vec!["$(ROLE)"]),
            &images,
            &env,
        )
        .unwrap();
        assert_eq!(
            (p, a),
            (PathBuf::from("/opt/bin/fjord"), vec!["jm".to_string()])
        );
        let (p, a) = resolve_command(
            &container(
                "fjord/worker:1",
                Some(vec!["/usr/local/bin/fjord", "run"]),
                vec!["x"],
            ),
            &images,
            &env,
        )
        .unwrap();
        assert_eq!(
            (p, a),
            (
                PathBuf::from("/opt/bin/fjord"),
                vec!["run".to_string(), "x".to_string()]
            )
        );
        let (p, _) = resolve_command(
            &container("fjord/worker:1", Some(vec!["sh", "-c", "true"]), vec![]),
            &images,
            &env,
        )
        .unwrap();
        assert!(p.ends_with("sh"));
        assert!(resolve_command(&container("nginx", None, vec![]), &images, &env).is_err());
        let (p, _) = resolve_command(
            &container("fjord/worker:1", Some(vec!["/app/fjord-worker"]), vec![]),
            &images,
            &env,
        )
        .unwrap();
        assert_eq!(p, PathBuf::from("/opt/bin/fjord"));
        let missing = container("nginx", Some(vec!["/no/such/program"]), vec![]);
        assert!(resolve_command(&missing, &images, &env).is_err());
    }

    #[test]
    fn probe_thresholds() {
        let probe = Probe {
            failure_threshold: Some(2),
            period_seconds: Some(1),
            ..Default::default()
        };
        let now = Instant::now();
        let mut t = ProbeTracker::new(&probe, now);
        assert!(t.due(now));
        assert_eq!(t.record(&Outcome::Success, now), Some(true));
        assert!(!t.due(now));
        assert_eq!(t.record(&Outcome::Failure("x".into()), now), None);
        assert_eq!(t.record(&Outcome::Failure("x".into()), now), Some(false));
    }
}
