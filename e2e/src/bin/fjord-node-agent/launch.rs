//! The `__launch` step between the agent and a Pod's process.
//!
//! The agent starts `fjord-node-agent __launch <spec.json>` as the container's process (in its
//! own process group). This step, still single-threaded and before any Pod code runs:
//! 1. asks the kernel to SIGKILL it if the agent dies (so no Pod process outlives its agent),
//! 2. enters a private mount namespace and bind-mounts the Pod's files over the paths the Pod
//!    spec names: volumes at their `mountPath`, the Pod's hosts file over `/etc/hosts`, the
//!    service-account files at `/var/run/secrets/kubernetes.io/serviceaccount`, so the process
//!    sees the same paths as in a real container (needs root / CAP_SYS_ADMIN),
//! 3. execs the program with exactly the environment and working directory of the spec.
//!
//! Missing mount points are created on the host as empty directories/files.

use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;

use anyhow::Context as _;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;

/// argv[1] that selects this step.
pub const SUBCOMMAND: &str = "__launch";

/// What to run and how; written by the agent as JSON.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LaunchSpec {
    /// Program path.
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Bind mounts, in order.
    pub binds: Vec<Bind>,
}

/// One bind mount.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Bind {
    /// Existing file or directory on the host.
    pub source: PathBuf,
    /// Where the process sees it.
    pub target: PathBuf,
    /// Remount read-only.
    pub read_only: bool,
}

/// Run the launch step with `args` = `[spec.json]`. Returns only on failure.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let path = args
        .first()
        .context("usage: fjord-node-agent __launch <spec.json>")?;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading launch spec {path}"))?;
    let spec: LaunchSpec =
        serde_json::from_str(&text).with_context(|| format!("parsing launch spec {path}"))?;

    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")?;
    if !spec.binds.is_empty() {
        unshare(CloneFlags::CLONE_NEWNS).context(
            "unshare(CLONE_NEWNS): the node agent needs root (CAP_SYS_ADMIN) to give each Pod its own mounts",
        )?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .context("making / private in the pod's mount namespace")?;
        // Every source is opened before the first mount: a volume mounted over a directory
        // that holds the Pod's own files (an emptyDir at /tmp, where the agent keeps them in
        // tests) must not hide the sources of the binds after it. A real kubelet resolves its
        // host paths outside the container's view, too.
        let sources = spec
            .binds
            .iter()
            .map(|b| {
                std::fs::File::open(&b.source)
                    .or_else(|_| {
                        std::fs::OpenOptions::new()
                            .read(true)
                            .custom_flags(nix::libc::O_PATH)
                            .open(&b.source)
                    })
                    .with_context(|| format!("opening bind source {}", b.source.display()))
                    .map(|f| (f, b.source.is_dir()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (bind, (source, is_dir)) in spec.binds.iter().zip(&sources) {
            bind_mount(bind, source, *is_dir)?;
        }
    }
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let err = cmd.exec();
    Err(anyhow::anyhow!("exec {}: {err}", spec.program.display()))
}

/// Check once, at agent start, that the launch step works here (root / CAP_SYS_ADMIN for mount
/// namespaces), by launching `true` with one bind mount. Fails with the launch step's own message.
pub fn self_test(agent_exe: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let source = dir.join("self-test-source");
    let target = dir.join("self-test-target");
    std::fs::write(&source, b"ok")?;
    let program = ["/usr/bin/true", "/bin/true"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .context("no `true` program on this host")?;
    let spec = LaunchSpec {
        program,
        args: Vec::new(),
        env: Vec::new(),
        cwd: None,
        binds: vec![Bind {
            source,
            target,
            read_only: true,
        }],
    };
    let spec_path = dir.join("self-test.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec)?)?;
    let out = std::process::Command::new(agent_exe)
        .arg(SUBCOMMAND)
        .arg(&spec_path)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the node agent cannot give Pods their own mounts here: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Bind-mounts the already opened `source` (reached through `/proc/self/fd`, so it need not be
/// visible under its path any more) at `bind.target`.
fn bind_mount(bind: &Bind, source: &std::fs::File, is_dir: bool) -> anyhow::Result<()> {
    if !bind.target.exists() {
        if is_dir {
            std::fs::create_dir_all(&bind.target)
        } else {
            if let Some(parent) = bind.target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&bind.target, b"")
        }
        .with_context(|| format!("creating mount point {}", bind.target.display()))?;
    }
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
    mount(
        Some(&fd_path),
        &bind.target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "bind-mounting {} at {}",
            bind.source.display(),
            bind.target.display()
        )
    })?;
    if bind.read_only {
        mount(
            None::<&str>,
            &bind.target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .with_context(|| format!("remounting {} read-only", bind.target.display()))?;
    }
    Ok(())
}
