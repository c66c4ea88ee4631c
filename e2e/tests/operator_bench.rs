//! Benchmark (ignored by default): the two figures of issue 21 on the test cluster, repeated
//! `FJORD_BENCH_RUNS` times (default 3), each round on the verbatim examples:
//!
//! - `kubectl apply -f counting-basic.yaml` → `Running` with job state `RUNNING` (the JobManager
//!   reports RUNNING only once every TaskManager accepted its tasks);
//! - savepoint upgrade downtime (`counting-savepoint-upgrade.yaml`): the last time the old job's
//!   record count was seen to grow → the first time the new job's was seen above zero, both
//!   on the JobManagers' REST APIs polled every 50 ms. Task metrics reach that API with the
//!   TaskManagers' heartbeats (every 1 s), so both ends are seen up to a second late; the same
//!   downtime is also measured at the sink: the TaskManagers' print sinks write every counted
//!   record to their Pods' logs (files of the node agent, read here every 10 ms), from the last
//!   record line an old TaskManager wrote to the first one a new TaskManager wrote.
//! - the apply is split into `kubectl apply` returning (the object stored) and the rest.
//!
//! Figures are printed (`FIGURE ...`), never asserted; BENCHMARKS.md records them.
//! `cargo test -p fjord-e2e --test operator_bench -- --ignored --nocapture`

mod operator_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::ensure;
use fjord_client::api::JobState;
use operator_support::{OperatorCluster, secs};

const JOB: &str = "counting";
const WAIT: Duration = Duration::from_secs(180);

/// From the last growth of the old job's record count to the first record of the new job.
async fn downtime(
    op: &OperatorCluster,
    old: &fjord_client::Client,
    old_job: &str,
) -> anyhow::Result<Duration> {
    let mut last_growth = Instant::now();
    let mut last_count = 0u64;
    let deadline = Instant::now() + WAIT;
    loop {
        match old.job(old_job).await {
            Ok(d) if d.state == JobState::Running => {
                let n: u64 = d.vertices.iter().map(|v| v.records_in).sum();
                if n > last_count {
                    last_count = n;
                    last_growth = Instant::now();
                }
            }
            _ => break,
        }
        ensure!(Instant::now() < deadline, "the old job never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        if let Ok(new) = op.jobmanager(JOB)
            && let Ok(jobs) = new.jobs().await
            && let Some(job) = jobs.jobs.first()
            && job.id != old_job
            && job.state == JobState::Running
            && let Ok(d) = new.job(&job.id).await
            && d.vertices.iter().map(|v| v.records_in).sum::<u64>() > 0
        {
            return Ok(last_growth.elapsed());
        }
        ensure!(
            Instant::now() < deadline,
            "the new job never processed a record"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The TaskManager logs of the StreamJob and their sizes.
fn taskmanager_logs(dir: &Path) -> HashMap<PathBuf, u64> {
    let prefix = format!("default_{JOB}-taskmanager-");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
        .collect()
}

/// Whether `path` holds a counted record (`n> (key-..,..)`) from byte `from` on.
fn records_after(path: &Path, from: u64) -> bool {
    use std::io::{Read as _, Seek as _};
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut text = String::new();
    f.seek(std::io::SeekFrom::Start(from)).is_ok()
        && f.read_to_string(&mut text).is_ok()
        && text.contains("(key-")
}

/// Downtime at the sink: from the last record line an old TaskManager (one whose log exists
/// now) wrote to the first record line of a new TaskManager, the logs read every 10 ms.
fn sink_downtime(dir: PathBuf) -> anyhow::Result<Duration> {
    let mut old = taskmanager_logs(&dir);
    let mut last_old = Instant::now();
    let mut new_sizes: HashMap<PathBuf, u64> = HashMap::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let now_logs = taskmanager_logs(&dir);
        for (path, size) in &now_logs {
            match old.get_mut(path) {
                Some(seen) => {
                    if *size > *seen {
                        if records_after(path, *seen) {
                            last_old = Instant::now();
                        }
                        *seen = *size;
                    }
                }
                None => {
                    let seen = new_sizes.entry(path.clone()).or_insert(0);
                    if *size > *seen {
                        if records_after(path, *seen) {
                            return Ok(last_old.elapsed());
                        }
                        *seen = *size;
                    }
                }
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no new TaskManager wrote a record"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored"]
async fn apply_to_running_and_upgrade_downtime() -> anyhow::Result<()> {
    let runs: usize = std::env::var("FJORD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let op = OperatorCluster::start("operator-bench")?;
    let (mut starts, mut downs, mut sink_downs) = (Vec::new(), Vec::new(), Vec::new());
    let logs = op.cluster.run_dir().join("agent/logs");
    for run in 1..=runs {
        let t = Instant::now();
        op.apply(&op.example("counting-basic.yaml")?)?;
        let stored = secs(t);
        op.wait_running(JOB, WAIT).await?;
        let start = secs(t);
        let old = op.jobmanager(JOB)?;
        let old_job = old.jobs().await?.jobs[0].id.clone();
        // Let records flow a moment so the downtime has a last growth to start from.
        op.wait_for(JOB, "a checkpoint", WAIT, |s| {
            s["lastCheckpoint"]["id"].is_i64()
        })
        .await?;
        let sink = {
            let logs = logs.clone();
            tokio::task::spawn_blocking(move || sink_downtime(logs))
        };
        op.apply(&op.example("counting-savepoint-upgrade.yaml")?)?;
        let down = downtime(&op, &old, &old_job).await?.as_secs_f64();
        let sink_down = sink.await??.as_secs_f64();
        eprintln!(
            "FIGURE run {run}: kubectl apply -> Running/RUNNING {start:.2}s (kubectl apply returned after {stored:.2}s); \
             savepoint upgrade downtime {down:.2}s on the REST API, {sink_down:.2}s at the sink"
        );
        starts.push(start);
        downs.push(down);
        sink_downs.push(sink_down);
        op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
        op.wait_no_pods(JOB, WAIT).await?;
    }
    eprintln!(
        "FIGURE apply->running runs: {starts:.2?}; upgrade downtime runs: {downs:.2?} (REST), {sink_downs:.2?} (sink)"
    );
    op.cluster.stop()?;
    Ok(())
}
