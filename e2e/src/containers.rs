//! Fjord's images as real containers: the images built by `scripts/images/build.sh` from the
//! binaries of the running test's target directory, and a containerd of the test's own
//! (`scripts/infra/containerd.sh`, Debian's containerd 1.6 and runc) that runs them.
//!
//! ```no_run
//! use fjord_e2e::containers::{Containerd, ContainerSpec, test_images};
//! let images = test_images()?;
//! let containerd = Containerd::start("my-test")?;
//! containerd.import(&images.worker)?;
//! let spec = ContainerSpec::new(&images.worker_name, "wc")
//!     .command(["/usr/local/bin/fjord", "run", "wordcount"]);
//! let out = containerd.run(&spec)?;
//! # Ok::<(), fjord_e2e::Error>(())
//! ```
//!
//! Every container runs the way the operator's Pods are meant to: as the image's user (65532),
//! with a read-only root filesystem, no capabilities, `no_new_privs`, on the host's network (so
//! it reaches servers the tests start on loopback). containerd 1.6's `ctr` cannot override the
//! user, so the image's `USER` is what is tested.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cluster::{infra_dir, script_output, tail, target_binary};
use crate::error::{Error, Result};

/// Every Linux capability (as of 6.x): all are dropped from each container.
const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The two image tarballs and the names they are imported under.
#[derive(Clone, Debug)]
pub struct TestImages {
    /// OCI layout tarball of the worker image.
    pub worker: PathBuf,
    /// The worker image's name in containerd (`docker.io/fjord/fjord:<version>`).
    pub worker_name: String,
    /// OCI layout tarball of the operator image.
    pub operator: PathBuf,
    /// The operator image's name in containerd.
    pub operator_name: String,
}

fn repo_root() -> PathBuf {
    infra_dir().join("../..")
}

fn cache_dir() -> PathBuf {
    std::env::var_os("FJORD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/fjord")
        })
}

/// Build the worker and operator images from the `fjord` and `fjord-operator` binaries in the
/// running test's target directory (the test profile: debug info stripped, otherwise the test
/// build; see `docs/test-infrastructure.md`) into `$FJORD_CACHE/images/test/`.
///
/// # Errors
/// [`Error::ImageBinaryMissing`] if a binary has not been built, [`Error::ImageBuild`] if the
/// script fails (for example a `fjord` built without the `rocksdb` feature).
///
/// `FJORD_E2E_IMAGE_WORKER_BIN` and `FJORD_E2E_IMAGE_OPERATOR_BIN` name other binaries (copies
/// safe from other builds into a shared target directory, which may rebuild `fjord` with other
/// features while the tests run); they are hard-linked (or copied) into
/// `$FJORD_CACHE/images/bin-<pid>/` for the script.
pub fn test_images() -> Result<TestImages> {
    let worker_override = std::env::var_os("FJORD_E2E_IMAGE_WORKER_BIN").map(PathBuf::from);
    let operator_override = std::env::var_os("FJORD_E2E_IMAGE_OPERATOR_BIN").map(PathBuf::from);
    let worker_bin = match worker_override {
        Some(path) => path,
        None => target_binary("fjord").ok_or(Error::ImageBinaryMissing { name: "fjord" })?,
    };
    let operator_bin = match operator_override {
        Some(path) => path,
        None => target_binary("fjord-operator").ok_or(Error::ImageBinaryMissing {
            name: "fjord-operator",
        })?,
    };
    let mut linked = None;
    let bin_dir = if worker_bin.file_name() == Some("fjord".as_ref())
        && operator_bin.file_name() == Some("fjord-operator".as_ref())
        && worker_bin.parent() == operator_bin.parent()
    {
        worker_bin.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        let dir = cache_dir().join(format!("images/bin-{}", std::process::id()));
        let io = |action, path: &Path, source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        for (from, name) in [(&worker_bin, "fjord"), (&operator_bin, "fjord-operator")] {
            let to = dir.join(name);
            let _ = std::fs::remove_file(&to);
            if std::fs::hard_link(from, &to).is_err() {
                std::fs::copy(from, &to).map_err(|e| io("copy", from, e))?;
            }
        }
        linked = Some(dir.clone());
        dir
    };
    let out = cache_dir().join("images/test");
    let script = repo_root().join("scripts/images/build.sh");
    std::fs::create_dir_all(&out).map_err(|source| Error::Io {
        action: "create",
        path: out.clone(),
        source,
    })?;
    // Test binaries that build the images at the same time (images.rs, real_nodes.rs) write
    // the same files: one build at a time, the next one finds them up to date.
    let output = script_output(
        Command::new("flock")
            .arg(out.join(".build.lock"))
            .arg(&script)
            .arg("--profile")
            .arg("test")
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--out")
            .arg(&out),
        &script,
    )?;
    if let Some(dir) = linked {
        let _ = std::fs::remove_dir_all(dir);
    }
    if !output.status.success() {
        return Err(Error::ImageBuild {
            code: output.status.code(),
            output: tail(&String::from_utf8_lossy(&output.stderr), 30),
        });
    }
    // One line per image: name TAB path TAB sizes.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let find = |file: &str| -> Result<(String, PathBuf)> {
        stdout
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                Some((f.next()?.to_string(), PathBuf::from(f.next()?)))
            })
            .find(|(_, p)| p.ends_with(file))
            .map(|(name, path)| (format!("docker.io/{name}"), path))
            .ok_or_else(|| Error::ImageBuild {
                code: output.status.code(),
                output: format!("no {file} in the script's output:\n{stdout}"),
            })
    };
    let (worker_name, worker) = find("worker.oci.tar")?;
    let (operator_name, operator) = find("operator.oci.tar")?;
    Ok(TestImages {
        worker,
        worker_name,
        operator,
        operator_name,
    })
}

/// A containerd of the test's own, started by `scripts/infra/containerd.sh` in a directory under
/// `$FJORD_CACHE/ctd/`; stopped and removed on [`Containerd::stop`] or drop, and by the script's
/// watchdog when the test process is gone.
#[derive(Debug)]
pub struct Containerd {
    dir: PathBuf,
    down: bool,
}

/// One container to run: image, id, command line, environment and
/// mounts. The security settings are fixed (see the module documentation).
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    image: String,
    id: String,
    command: Vec<String>,
    env: Vec<(String, String)>,
    mounts: Vec<String>,
}

impl ContainerSpec {
    /// A container `id` (unique in this containerd) of `image` (its containerd name).
    pub fn new(image: &str, id: &str) -> Self {
        Self {
            image: image.to_string(),
            id: id.to_string(),
            command: Vec::new(),
            env: Vec::new(),
            mounts: Vec::new(),
        }
    }

    /// The container's whole command line (`ctr` replaces the image's `ENTRYPOINT` and `CMD`
    /// with it); without one the image's `ENTRYPOINT` and `CMD` run.
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.command.extend(argv.into_iter().map(Into::into));
        self
    }

    /// An environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Bind-mount the host's `src` at `dst`, writable.
    pub fn bind(mut self, src: &Path, dst: &str) -> Self {
        self.mounts.push(format!(
            "type=bind,src={},dst={dst},options=rbind:rw",
            src.display()
        ));
        self
    }

    /// A tmpfs at `dst` any user may write to (Kubernetes' `emptyDir` with `medium: Memory`).
    pub fn tmpfs(mut self, dst: &str) -> Self {
        self.mounts.push(format!(
            "type=tmpfs,src=tmpfs,dst={dst},options=rw:nosuid:nodev:mode=1777"
        ));
        self
    }

    /// `ctr run` arguments; runc's state and the I/O fifos go under the instance's `dir`, so
    /// two instances never share them (the defaults are under /run/containerd).
    fn ctr_args(&self, dir: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--rm".into(), "--net-host".into()];
        a.push(format!("--runc-root={}", dir.join("runc").display()));
        a.push(format!("--fifo-dir={}", dir.join("fifo").display()));
        a.push("--read-only".into());
        for cap in CAPABILITIES {
            a.push("--cap-drop".into());
            a.push(format!("CAP_{cap}"));
        }
        for (k, v) in &self.env {
            a.push("--env".into());
            a.push(format!("{k}={v}"));
        }
        for m in &self.mounts {
            a.push("--mount".into());
            a.push(m.clone());
        }
        a.push(self.image.clone());
        a.push(self.id.clone());
        a.extend(self.command.iter().cloned());
        a
    }
}

impl Containerd {
    /// Start a containerd for `name`; the test process is its owner (`FJORD_E2E_OWNER_PID`).
    ///
    /// # Errors
    /// [`Error::Containerd`] with the script's message: containerd or runc not installed (exit
    /// 3; `scripts/install-deps.sh` installs them), not root (exit 4), or the daemon did not
    /// come up.
    pub fn start(name: &str) -> Result<Self> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        // Short: the socket path must fit a unix socket address.
        let dir = cache_dir().join("ctd").join(format!(
            "{}-{}-{}",
            name.chars().take(16).collect::<String>(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let containerd = Self { dir, down: false };
        containerd.script("start", &[])?;
        Ok(containerd)
    }

    /// The instance's directory (logs in `logs/containerd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn script(&self, action: &'static str, args: &[&str]) -> Result<String> {
        let script = infra_dir().join("containerd.sh");
        let output = script_output(
            Command::new(&script)
                .arg(action)
                .arg(&self.dir)
                .args(args)
                .env("FJORD_E2E_OWNER_PID", std::process::id().to_string()),
            &script,
        )?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(Error::Containerd {
                action: format!("{action} {}", args.join(" ")),
                dir: self.dir.clone(),
                code: output.status.code(),
                output: tail(&String::from_utf8_lossy(&output.stderr), 30),
            })
        }
    }

    /// `ctr ARGS` on this instance; its stdout.
    ///
    /// # Errors
    /// [`Error::Containerd`] if `ctr` fails, with its stderr.
    pub fn ctr(&self, args: &[&str]) -> Result<String> {
        self.script("ctr", args)
    }

    /// A `ctr` command on this instance with `args`, for the caller to run or spawn.
    pub fn ctr_command(&self, args: &[String]) -> Command {
        let mut c = Command::new(infra_dir().join("containerd.sh"));
        c.arg("ctr").arg(&self.dir).args(args);
        c
    }

    /// Import an image tarball (OCI layout or docker-archive) and unpack it.
    ///
    /// # Errors
    /// [`Error::Containerd`] if `ctr images import` refuses it.
    pub fn import(&self, tarball: &Path) -> Result<()> {
        self.ctr(&["images", "import", &tarball.display().to_string()])
            .map(drop)
    }

    /// Run `spec` to completion; its exit status, stdout and stderr (those of `ctr run`, which
    /// are the container's).
    ///
    /// # Errors
    /// [`Error::Spawn`] if `ctr` cannot be started.
    pub fn run(&self, spec: &ContainerSpec) -> Result<Output> {
        let program = "ctr run".to_string();
        self.ctr_command(&spec.ctr_args(&self.dir))
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn { program, source })
    }

    /// Start `spec` and return at once; stdout and stderr go to `log`. Stop it with
    /// [`Containerd::kill`] and wait for the child.
    ///
    /// # Errors
    /// [`Error::Spawn`] if `ctr` cannot be started, [`Error::Io`] if `log` cannot be created.
    pub fn spawn(&self, spec: &ContainerSpec, log: &Path) -> Result<Child> {
        let file = std::fs::File::create(log).map_err(|source| Error::Io {
            action: "create",
            path: log.to_path_buf(),
            source,
        })?;
        let err = file.try_clone().map_err(|source| Error::Io {
            action: "open",
            path: log.to_path_buf(),
            source,
        })?;
        let program = "ctr run".to_string();
        self.ctr_command(&spec.ctr_args(&self.dir))
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|source| Error::Spawn { program, source })
    }

    /// The host pid of a running container's process, `None` while it has no running task.
    ///
    /// # Errors
    /// [`Error::Containerd`] if `ctr tasks ls` fails.
    pub fn task_pid(&self, id: &str) -> Result<Option<u32>> {
        let list = self.ctr(&["tasks", "ls"])?;
        Ok(list.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id) && f.get(2) == Some(&"RUNNING"))
                .then(|| f.get(1)?.parse().ok())
                .flatten()
        }))
    }

    /// The OCI runtime spec containerd gave a container (`ctr containers info`), as JSON.
    ///
    /// # Errors
    /// [`Error::Containerd`] if the container does not exist.
    pub fn spec(&self, id: &str) -> Result<serde_json::Value> {
        let info = self.ctr(&["containers", "info", id])?;
        let value: serde_json::Value =
            serde_json::from_str(&info).map_err(|e| Error::Containerd {
                action: format!("containers info {id}"),
                dir: self.dir.clone(),
                code: None,
                output: format!("not JSON ({e}):\n{info}"),
            })?;
        Ok(value["Spec"].clone())
    }

    /// Send SIGKILL to every process of a container.
    ///
    /// # Errors
    /// [`Error::Containerd`] if the task does not exist.
    pub fn kill(&self, id: &str) -> Result<()> {
        self.ctr(&["tasks", "kill", "-a", "-s", "SIGKILL", id])
            .map(drop)
    }

    /// Stop every container and the daemon, and remove the directory.
    ///
    /// # Errors
    /// [`Error::Containerd`] if the script fails.
    pub fn stop(mut self) -> Result<()> {
        self.down = true;
        self.script("down", &["--purge"]).map(drop)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if !self.down {
            let keep = std::thread::panicking();
            let args: &[&str] = if keep { &[] } else { &["--purge"] };
            if let Err(e) = self.script("down", args) {
                eprintln!("{e}");
            }
            if keep {
                eprintln!("containerd of a failed test kept in {}", self.dir.display());
            }
        }
    }
}
