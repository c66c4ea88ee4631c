//! Storage faults on a real MinIO (the binary `scripts/infra/install.sh` builds into
//! `$FJORD_CACHE/bin`), started by this test on loopback, with `fjord run` checkpointing into
//! it: an outage (MinIO killed, then started again on the same data; or paused with SIGSTOP,
//! so requests hang, then resumed) is ridden out and the committed output stays exactly once; misconfiguration that no retry fixes (refused
//! credentials, a missing bucket) fails the run at once with the cause instead of restarting
//! forever.
//!
//! The `fjord` binary must be built first: `cargo build -p fjord-worker --features s3 --bins`
//! (or point `FJORD_E2E_WORKER_BIN` at one). Every wait is bounded; children are killed on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord::sinks::ExactlyOnceFileSink;
use fjord::storage::StorageOptions;

const USER: &str = "fjord-fault";
const SECRET: &str = "fjord-fault-secret";
const BUCKET: &str = "faults";
const KEYS: u64 = 5;
const WINDOW_MS: u64 = 1000;
/// Bound on a whole run, a restart included, on a loaded machine.
const RUN: Duration = Duration::from_secs(240);

fn fjord_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("FJORD_E2E_WORKER_BIN") {
        return Ok(PathBuf::from(path));
    }
    fjord_e2e::target_binary("fjord")
        .context("build the fjord binary first: cargo build -p fjord-worker --features s3 --bins")
}

fn minio_binary() -> anyhow::Result<PathBuf> {
    let cache = std::env::var_os("FJORD_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fjord")))
        .context("neither FJORD_CACHE nor HOME is set")?;
    let bin = cache.join("bin");
    std::fs::read_dir(&bin)
        .with_context(|| format!("{} (run scripts/infra/install.sh)", bin.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("minio-"))
        })
        .map(|dir| dir.join("minio"))
        .filter(|p| p.is_file())
        .with_context(|| {
            format!(
                "no minio-*/minio in {} (run scripts/infra/install.sh)",
                bin.display()
            )
        })
}

/// A MinIO server on loopback; killed on drop.
struct Minio {
    port: u16,
    data: PathBuf,
    child: Option<Child>,
}

impl Minio {
    fn start(data: &Path) -> anyhow::Result<Self> {
        let mut m = Minio {
            port: fjord_e2e::free_port()?,
            data: data.to_path_buf(),
            child: None,
        };
        m.restart()?;
        let bucket = format!("http://127.0.0.1:{}/{BUCKET}", m.port);
        wait("the bucket to be created", Duration::from_secs(60), || {
            Command::new("curl")
                .args([
                    "-fsS",
                    "-X",
                    "PUT",
                    "--aws-sigv4",
                    "aws:amz:us-east-1:s3",
                    "--user",
                ])
                .arg(format!("{USER}:{SECRET}"))
                .arg(&bucket)
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
        Ok(m)
    }

    /// Starts it (again) on the same port and data, and waits until it is ready.
    fn restart(&mut self) -> anyhow::Result<()> {
        let log = std::fs::File::create(self.data.with_extension("log"))?;
        let child = Command::new(minio_binary()?)
            .args(["server", "--quiet", "--address"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--console-address")
            .arg(format!("127.0.0.1:{}", fjord_e2e::free_port()?))
            .arg(&self.data)
            .env("MINIO_ROOT_USER", USER)
            .env("MINIO_ROOT_PASSWORD", SECRET)
            .env("MINIO_UPDATE", "off")
            .env("MINIO_BROWSER", "off")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("start minio")?;
        self.child = Some(child);
        let ready = format!("http://127.0.0.1:{}/minio/health/ready", self.port);
        wait("MinIO to be ready", Duration::from_secs(60), || {
            Command::new("curl")
                .args(["-fsS", &ready])
                .output()
                .is_ok_and(|o| o.status.success())
        })
    }

    /// SIGSTOP: the server stays up with its connections open but answers nothing, like a
    /// storage node stalled by a long pause or an overloaded host (requests hang instead of
    /// being refused).
    fn pause(&self) -> anyhow::Result<()> {
        self.signal(nix::sys::signal::Signal::SIGSTOP)
    }

    /// SIGCONT after [`pause`](Self::pause).
    fn resume(&self) -> anyhow::Result<()> {
        self.signal(nix::sys::signal::Signal::SIGCONT)
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("MinIO is not running")?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).with_context(|| format!("{signal} MinIO"))
    }

    /// SIGKILL, like a crashed storage server.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn env(&self, secret: &str) -> Vec<(String, String)> {
        vec![
            (
                "AWS_ENDPOINT".into(),
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID".into(), USER.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("FJORD_LOG".into(), "warn,fjord::checkpoint=info".into()),
        ]
    }
}

impl Drop for Minio {
    fn drop(&mut self) {
        // A paused process does not die of SIGKILL until it runs again.
        let _ = self.resume();
        self.kill();
    }
}

/// Polls `done` every 100 ms until it holds or `timeout` passes.
fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// `fjord run` of `windowed-counts` checkpointing into `storage`, output to `out`, its stderr
/// in `log`.
fn run(
    storage: &str,
    out: &Path,
    count: u64,
    rate: u64,
    env: &[(String, String)],
    log: &Path,
) -> anyhow::Result<Child> {
    let err = std::fs::File::create(log)?;
    Command::new(fjord_binary()?)
        .args([
            "run",
            "-p",
            "1",
            "--checkpoint-interval",
            "300ms",
            "--checkpoint-storage",
        ])
        .arg(storage)
        .args(["windowed-counts", "--count", &count.to_string(), "--rate"])
        .arg(rate.to_string())
        .args([
            "--keys",
            &KEYS.to_string(),
            "--window-ms",
            &WINDOW_MS.to_string(),
        ])
        .arg("--output")
        .arg(format!("file://{}", out.display()))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .context("start fjord run")
}

/// Waits (bounded) for the child to exit; its exit code.
fn exit_code(child: &mut Child, timeout: Duration, log: &Path) -> anyhow::Result<i32> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return status.code().context("ended by a signal");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "fjord run did not end within {timeout:?}\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn expected(count: u64) -> Vec<String> {
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for i in 0..count {
        *counts
            .entry((i % KEYS, (i / WINDOW_MS) * WINDOW_MS))
            .or_default() += 1;
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|((k, w), n)| format!("(key-{k},{w},{n})"))
        .collect();
    lines.sort();
    lines
}

/// (lost, duplicated) lines of the committed output against a failure-free run's.
fn compare(out: &Path, count: u64) -> anyhow::Result<(usize, usize)> {
    let mut got = ExactlyOnceFileSink::read_committed(
        &format!("file://{}", out.display()),
        &StorageOptions::default(),
    )?;
    got.sort();
    let mut missing = expected(count);
    let mut extra = 0;
    for line in &got {
        match missing.iter().position(|l| l == line) {
            Some(at) => {
                missing.remove(at);
            }
            None => extra += 1,
        }
    }
    Ok((missing.len(), extra))
}

/// How the storage fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outage {
    /// SIGKILL, started again later on the same data (requests are refused).
    Killed,
    /// SIGSTOP, SIGCONT later (requests hang).
    Paused,
}

/// A `fjord run` of 12,000 records; once it has a completed checkpoint the storage fails
/// (`outage`) until the run has failed and restarted at least once (or 20 s passed), then
/// comes back on the same data: the run finishes, and its output equals a failure-free run's
/// (0 lost, 0 duplicated).
fn outage_run(outage: Outage) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut minio = Minio::start(&dir.path().join("minio"))?;
    let (out, log) = (dir.path().join("out"), dir.path().join("run.log"));
    let count = 12_000;
    let storage = format!("s3://{BUCKET}/outage");
    let mut child = run(&storage, &out, count, 3_000, &minio.env(SECRET), &log)?;
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait("a completed checkpoint", RUN, || {
        text().contains("completed")
    })
    .with_context(text)?;
    match outage {
        Outage::Killed => minio.kill(),
        Outage::Paused => minio.pause()?,
    }
    let down = Instant::now();
    let restarted = wait(
        "a restart while storage is down",
        Duration::from_secs(20),
        || text().contains("restarting"),
    )
    .is_ok();
    match outage {
        Outage::Killed => minio.restart()?,
        Outage::Paused => minio.resume()?,
    }
    eprintln!(
        "storage {outage:?} for {:.1} s; the run restarted meanwhile: {restarted}",
        down.elapsed().as_secs_f64()
    );
    let code = exit_code(&mut child, RUN, &log)?;
    ensure!(code == 0, "fjord run exit code {code}\n{}", text());
    let (lost, duplicated) = compare(&out, count)?;
    eprintln!("outage ({outage:?}): {lost} lost, {duplicated} duplicated");
    ensure!(
        (lost, duplicated) == (0, 0),
        "{lost} lost, {duplicated} duplicated\n{}",
        text()
    );
    Ok(())
}

/// MinIO killed mid-run and started again: retried, exactly once.
#[test]
fn a_storage_outage_is_retried_and_the_output_stays_exactly_once() -> anyhow::Result<()> {
    outage_run(Outage::Killed)
}

/// MinIO paused (SIGSTOP) mid-run, so requests hang rather than fail, then resumed: the hung
/// checkpoint times out or the run restarts, and the output stays exactly once.
#[test]
fn a_paused_storage_is_ridden_out_and_the_output_stays_exactly_once() -> anyhow::Result<()> {
    outage_run(Outage::Paused)
}

/// Refused credentials and a missing bucket end `fjord run` at once with exit code 1 and a
/// message naming the cause and the fix; nothing restarts.
#[test]
fn misconfigured_storage_fails_at_once_with_the_cause() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let minio = Minio::start(&dir.path().join("minio"))?;
    let cases = [
        (
            format!("s3://{BUCKET}/wrong-secret"),
            minio.env("not-the-secret"),
            "the credentials were refused",
        ),
        (
            "s3://no-such-bucket/cp".to_string(),
            minio.env(SECRET),
            "the bucket does not exist",
        ),
    ];
    for (i, (storage, env, cause)) in cases.iter().enumerate() {
        let (out, log) = (
            dir.path().join(format!("out-{i}")),
            dir.path().join(format!("run-{i}.log")),
        );
        let mut child = run(storage, &out, 1_000_000, 1_000, env, &log)?;
        let code = exit_code(&mut child, Duration::from_secs(120), &log)?;
        let text = std::fs::read_to_string(&log)?;
        ensure!(code == 1, "{storage}: exit code {code}\n{text}");
        ensure!(
            text.contains(cause),
            "{storage}: the cause is named\n{text}"
        );
        ensure!(
            !text.contains("restarting"),
            "{storage}: nothing restarts\n{text}"
        );
    }
    Ok(())
}
