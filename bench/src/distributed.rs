//! The distributed runtime across processes: throughput, latency and recovery of a keyed job
//! on a JobManager with two TaskManagers, against the same job on the embedded mini-cluster.
//!
//! ```text
//! cargo build --release -p fjord-bench --bin fjord-bench-distributed
//! target/release/fjord-bench-distributed bench [--records N] [--keys K] [--runs R]
//!     [--latency-seconds S] [--recovery-runs R]
//! ```
//!
//! The binary is also a worker binary (`fjord_worker::main_with`) whose registry holds the
//! examples' jobs plus `bench-keyed`, so the driver (`bench`) starts copies of itself as
//! `run` (embedded), `jobmanager --scheduler taskmanagers` and `taskmanager` processes on
//! loopback, all running the same job:
//!
//! `bench-keyed`: a generator at parallelism p emits `(key, created_ns, 1)` (key `i % K`,
//! `created_ns` the wall clock when the record was made), `key_by(key)`, a rolling `reduce`
//! summing the counts (one output per input, carrying the newest creation time), and a sink
//! that counts records, notes first and last arrival, samples `arrival - created` (1 in 16,
//! after a 2 s warm-up), and writes its figures to `--stats <dir>` when it closes. On its
//! first record each sink instance also appends the wall clock to `<dir>/first-records`.
//!
//! Measured:
//! 1. Throughput (unlimited rate, `--records`): total records / (last arrival - first
//!    arrival) over all sink instances, embedded (`run -p 2`) and across processes (JM +
//!    2 TaskManagers with 1 slot each, p = 2); median of `--runs`, and the ratio.
//! 2. Latency at half the distributed throughput for `--latency-seconds`: p50/p99/max of the
//!    samples, across processes and embedded.
//! 3. Recovery: the job at a fixed rate with checkpoints every 500 ms and a 2 s heartbeat
//!    timeout; after a completed checkpoint TaskManager 2 is SIGKILLed and a third one
//!    started; reported are the times from the kill to the JobManager's restart (REST
//!    `restarts` ≥ 1), to the first record a new sink instance receives, and to the first
//!    checkpoint completed after the restart.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use fjord::sinks::{Sink, SinkWriter};
use fjord::sources::GeneratorSource;
use fjord::{BoxError, FjordError, JobArgs, RuntimeContext, StreamExecutionEnvironment, Timestamp};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

type Rec = (u64, u64, u64);

/// Builds `bench-keyed`: `--count N` (unset: unbounded), `--rate R` (0: unlimited), `--keys K`,
/// `--stats DIR`.
fn build_keyed(env: &StreamExecutionEnvironment, args: &JobArgs) -> fjord::Result<()> {
    let keys: u64 = args.get_parsed("keys", 1000)?;
    let rate: f64 = args.get_parsed("rate", 0.0)?;
    let stats = args
        .get("stats")
        .ok_or_else(|| FjordError::BadArguments("--stats <dir> is required".into()))?
        .to_string();
    let count = match args.get("count") {
        None => None,
        Some(_) => Some(args.get_parsed("count", 0u64)?),
    };
    let mut source = GeneratorSource::new(count, move |i| (i % keys.max(1), now_ns(), 1u64));
    if rate > 0.0 {
        source = source.with_rate(rate);
    }
    env.from_source(source, "Source: generator")
        .uid("generator")
        .key_by(|r: &Rec| r.0)
        .reduce(|a: Rec, b: Rec| (a.0, a.1.max(b.1), a.2 + b.2))
        .uid("sum")
        .sink_to(StatsSink { dir: stats.into() }, "Sink: stats")
        .uid("stats");
    Ok(())
}

/// Counts, arrival times and latency samples per sink instance, written on close.
struct StatsSink {
    dir: PathBuf,
}

struct StatsWriter {
    dir: PathBuf,
    name: String,
    count: u64,
    first_ns: u64,
    last_ns: u64,
    samples: Vec<u32>,
}

impl Sink<Rec> for StatsSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<Rec>>, BoxError> {
        Ok(Box::new(StatsWriter {
            dir: self.dir.clone(),
            name: format!(
                "{}-{}-{}-{}.stats",
                std::process::id(),
                ctx.attempt_number,
                ctx.subtask_index,
                now_ns()
            ),
            count: 0,
            first_ns: 0,
            last_ns: 0,
            samples: Vec::new(),
        }))
    }
}

/// Warm-up excluded from latency samples.
const WARM_UP_NS: u64 = 2_000_000_000;

impl SinkWriter<Rec> for StatsWriter {
    fn write(&mut self, value: Rec, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let now = now_ns();
        if self.count == 0 {
            self.first_ns = now;
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("first-records"))?;
            writeln!(f, "{}", now / 1_000_000)?;
        }
        self.count += 1;
        self.last_ns = now;
        if self.count.is_multiple_of(16) && now - self.first_ns > WARM_UP_NS {
            let micros = now.saturating_sub(value.1) / 1000;
            self.samples.push(micros.min(u32::MAX as u64) as u32);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        let mut text = format!("{} {} {}\n", self.count, self.first_ns, self.last_ns);
        for s in &self.samples {
            text.push_str(&s.to_string());
            text.push('\n');
        }
        std::fs::write(self.dir.join(&self.name), text)?;
        Ok(())
    }
}

/// The worker registry: the examples' jobs plus `bench-keyed`.
fn registry() -> fjord::JobRegistry {
    let mut r = fjord_examples::registry();
    r.register(
        "bench-keyed",
        "generator -> key_by -> rolling sum -> stats sink (fjord-bench-distributed): \
         --stats <dir> [--count N] [--rate R] [--keys K]",
        build_keyed,
    );
    r
}

#[derive(Parser)]
#[command(about = "Benchmarks of the distributed runtime (see the module docs)")]
struct Args {
    /// Records per throughput run.
    #[arg(long, default_value_t = 20_000_000)]
    records: u64,
    /// Distinct keys.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// Throughput runs per mode; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Length of the latency runs.
    #[arg(long, default_value_t = 20)]
    latency_seconds: u64,
    /// Recovery runs.
    #[arg(long, default_value_t = 3)]
    recovery_runs: usize,
    /// Rate of the recovery runs (records/s).
    #[arg(long, default_value_t = 100_000)]
    recovery_rate: u64,
}

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) != Some("bench") {
        return fjord_worker::main_with(registry());
    }
    argv.remove(1);
    match bench(Args::parse_from(argv)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A child process (a copy of this binary) logging to a file; killed on drop.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, dir: &Path, args: &[String]) -> Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log)?;
        let child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("start {name}"))?;
        Ok(Proc {
            name: name.into(),
            child,
            log,
        })
    }

    fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The text after `needle` on its line, waiting (bounded) for it.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if let Some(at) = log.find(needle) {
                let rest = log[at + needle.len()..].lines().next().unwrap_or_default();
                return Ok(rest.trim().to_string());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited ({status}) before {needle:?}:\n{log}", self.name);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not print {needle:?} within {timeout:?}:\n{log}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for the exit; fails unless it is 0.
    fn wait_success(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("{} failed ({status}):\n{}", self.name, self.log());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A JobManager (with `--scheduler taskmanagers`, p = 2) and its REST and RPC addresses.
struct Cluster {
    jm: Proc,
    rest: String,
    rpc: String,
    tms: Vec<Proc>,
}

impl Cluster {
    fn start(dir: &Path, jm_flags: &[&str], job: &[String]) -> Result<Cluster> {
        let mut args: Vec<String> = [
            "jobmanager",
            "--scheduler",
            "taskmanagers",
            "--rest-address",
            "127.0.0.1",
            "--rest-port",
            "0",
            "--rpc-port",
            "0",
            "-p",
            "2",
            "--exit-on-finish",
            "--wait-for-slots",
            "60s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(jm_flags.iter().map(|s| s.to_string()));
        args.extend(job.iter().cloned());
        let mut jm = Proc::spawn("jobmanager", dir, &args)?;
        let rest = jm.wait_for("REST API listening on http://", Duration::from_secs(60))?;
        let rest = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let rpc = jm.wait_for(
            "(TaskManager registration) listening on ",
            Duration::from_secs(60),
        )?;
        let mut cluster = Cluster {
            jm,
            rest,
            rpc,
            tms: Vec::new(),
        };
        cluster.add_task_manager(dir, "tm1")?;
        cluster.add_task_manager(dir, "tm2")?;
        Ok(cluster)
    }

    fn add_task_manager(&mut self, dir: &Path, id: &str) -> Result<()> {
        let args: Vec<String> = [
            "taskmanager",
            "--jobmanager-address",
            &self.rpc,
            "--id",
            id,
            "--slots",
            "1",
            "--data-port",
            "0",
            "--rpc-port",
            "0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.tms.push(Proc::spawn(id, dir, &args)?);
        Ok(())
    }

    /// `GET path` on the REST API as JSON.
    fn get(&self, path: &str) -> Result<serde_json::Value> {
        let mut stream = std::net::TcpStream::connect(&self.rest)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.rest
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .context("HTTP response without a body")?;
        Ok(serde_json::from_str(body)?)
    }

    fn job_id(&self) -> Result<String> {
        poll(Duration::from_secs(60), || {
            let jobs = self.get("/v1/jobs").ok()?;
            jobs["jobs"][0]["id"].as_str().map(str::to_string)
        })
        .context("the job was not listed")
    }

    /// Completed checkpoints, newest first: (id, completed_at_ms).
    fn checkpoints(&self, job: &str) -> Vec<(i64, i64)> {
        self.get(&format!("/v1/jobs/{job}/checkpoints"))
            .ok()
            .and_then(|h| {
                h["completed"].as_array().map(|a| {
                    a.iter()
                        .filter(|c| c["savepoint"] != true)
                        .filter_map(|c| Some((c["id"].as_i64()?, c["completed_at_ms"].as_i64()?)))
                        .collect()
                })
            })
            .unwrap_or_default()
    }
}

/// Polls every 20 ms until `f` yields, for at most `timeout`.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the sinks of one run measured.
struct Figures {
    records: u64,
    seconds: f64,
    samples: Vec<u32>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let i = ((self.samples.len() - 1) as f64 * p).round() as usize;
        self.samples[i] as f64 / 1000.0
    }
}

fn read_figures(dir: &Path) -> Result<Figures> {
    let (mut records, mut first, mut last, mut samples) = (0, u64::MAX, 0, Vec::new());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "stats") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let mut lines = text.lines();
        let head: Vec<u64> = lines
            .next()
            .unwrap_or_default()
            .split(' ')
            .filter_map(|x| x.parse().ok())
            .collect();
        if let [n, f, l] = head[..]
            && n > 0
        {
            records += n;
            first = first.min(f);
            last = last.max(l);
        }
        samples.extend(lines.filter_map(|l| l.parse::<u32>().ok()));
    }
    if records == 0 {
        bail!("no sink wrote figures into {}", dir.display());
    }
    samples.sort_unstable();
    Ok(Figures {
        records,
        seconds: (last - first) as f64 / 1e9,
        samples,
    })
}

fn keyed_job(stats: &Path, keys: u64, count: Option<u64>, rate: u64) -> Vec<String> {
    let mut job = vec![
        "bench-keyed".to_string(),
        "--keys".into(),
        keys.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--stats".into(),
        stats.display().to_string(),
    ];
    if let Some(n) = count {
        job.extend(["--count".to_string(), n.to_string()]);
    }
    job
}

/// One run of `bench-keyed` embedded (`run -p 2`) or across processes.
fn run_once(distributed: bool, keys: u64, count: u64, rate: u64) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let stats = dir.path().join("stats");
    std::fs::create_dir_all(&stats)?;
    let job = keyed_job(&stats, keys, Some(count), rate);
    let timeout = Duration::from_secs(600);
    if distributed {
        let mut cluster = Cluster::start(dir.path(), &[], &job)?;
        cluster.jm.wait_success(timeout)?;
    } else {
        let mut args = vec!["run".to_string(), "-p".into(), "2".into()];
        args.extend(job);
        Proc::spawn("embedded", dir.path(), &args)?.wait_success(timeout)?;
    }
    read_figures(&stats)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(args: Args) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "fjord-bench-distributed: {} records/run, {} keys, p = 2, {cores} cores",
        args.records, args.keys
    );

    // 1. Throughput.
    let mut rates = [Vec::new(), Vec::new()];
    for run in 0..args.runs {
        for (i, distributed) in [false, true].into_iter().enumerate() {
            let f = run_once(distributed, args.keys, args.records, 0)?;
            println!(
                "  throughput run {run} {:<12} {:>12.0} records/s ({:.1} s)",
                if distributed {
                    "distributed"
                } else {
                    "embedded"
                },
                f.rate(),
                f.seconds
            );
            rates[i].push(f.rate());
        }
    }
    let embedded = median(rates[0].clone());
    let distributed = median(rates[1].clone());
    println!(
        "throughput  embedded {embedded:>12.0} records/s ({:.0}/core)   distributed {distributed:>12.0} \
         records/s ({:.0}/core)   ratio {:.0} %",
        embedded / cores as f64,
        distributed / cores as f64,
        100.0 * distributed / embedded
    );

    // 2. Latency at half the distributed throughput.
    let rate = (distributed / 2.0) as u64;
    let count = rate * args.latency_seconds;
    for distributed in [true, false] {
        let f = run_once(distributed, args.keys, count, rate)?;
        println!(
            "latency at {rate} records/s {:<12} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  \
             ({} samples, achieved {:.0} records/s)",
            if distributed {
                "distributed"
            } else {
                "embedded"
            },
            f.percentile(0.5),
            f.percentile(0.99),
            f.percentile(1.0),
            f.samples.len(),
            f.rate()
        );
    }

    // 3. Recovery from a TaskManager SIGKILL.
    for run in 0..args.recovery_runs {
        let (restart, first_record, checkpoint) = recovery_once(args.keys, args.recovery_rate)?;
        println!(
            "recovery run {run}: kill -> restart {:.2} s, -> first record {:.2} s, -> first \
             checkpoint {:.2} s",
            restart, first_record, checkpoint
        );
    }
    Ok(())
}

/// Seconds from a TaskManager SIGKILL to the restart, the first record a new sink instance
/// receives, and the first checkpoint completed after the restart.
fn recovery_once(keys: u64, rate: u64) -> Result<(f64, f64, f64)> {
    let dir = tempfile::tempdir()?;
    let stats = dir.path().join("stats");
    std::fs::create_dir_all(&stats)?;
    let storage = format!("file://{}", dir.path().join("chk").display());
    let job = keyed_job(&stats, keys, None, rate);
    let mut cluster = Cluster::start(
        dir.path(),
        &[
            "--storage-url",
            &storage,
            "--checkpoint-interval-ms",
            "500",
            "--heartbeat-interval-ms",
            "500",
            "--heartbeat-timeout-ms",
            "2000",
        ],
        &job,
    )?;
    let id = cluster.job_id()?;
    poll(Duration::from_secs(60), || {
        (!cluster.checkpoints(&id).is_empty()).then_some(())
    })
    .context("no checkpoint completed")?;
    let wall_ms = || now_ns() / 1_000_000;
    let killed_ms = wall_ms();
    let killed = Instant::now();
    cluster.tms[1].kill();
    cluster.add_task_manager(dir.path(), "tm3")?;
    let timeout = Duration::from_secs(120);
    poll(timeout, || {
        let details = cluster.get(&format!("/v1/jobs/{id}")).ok()?;
        (details["restarts"].as_u64()? >= 1).then_some(())
    })
    .with_context(|| format!("no restart:\n{}", cluster.jm.log()))?;
    let restart = killed.elapsed().as_secs_f64();
    let first_record = poll(timeout, || {
        let text = std::fs::read_to_string(stats.join("first-records")).ok()?;
        text.lines()
            .filter_map(|l| l.parse::<u64>().ok())
            .filter(|t| *t > killed_ms)
            .min()
    })
    .context("no record after the restart")?;
    let checkpoint = poll(timeout, || {
        cluster
            .checkpoints(&id)
            .iter()
            .map(|c| c.1 as u64)
            .filter(|t| *t as f64 > killed_ms as f64 + restart * 1000.0)
            .min()
    })
    .context("no checkpoint after the restart")?;
    cluster.jm.kill();
    Ok((
        restart,
        (first_record - killed_ms) as f64 / 1000.0,
        (checkpoint - killed_ms) as f64 / 1000.0,
    ))
}
