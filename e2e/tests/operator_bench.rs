//! Benchmark (ignored by default): the two figures of issue 21 on the test cluster, repeated
//! `FJORD_BENCH_RUNS` times (default 3), each round on the verbatim examples:
//!
//! - `kubectl apply -f counting-basic.yaml` → `Running` with job state `RUNNING` (the JobManager
//!   reports RUNNING only once every TaskManager accepted its tasks);
//! - savepoint upgrade downtime (`counting-savepoint-upgrade.yaml`): the last time the old job's
//!   record count was seen to grow → the first time the new job's was seen above zero, both
//!   on the JobManagers' REST APIs polled every 50 ms.
//!
//! Figures are printed (`FIGURE ...`), never asserted; BENCHMARKS.md records them.
//! `cargo test -p fjord-e2e --test operator_bench -- --ignored --nocapture`

mod operator_support;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored"]
async fn apply_to_running_and_upgrade_downtime() -> anyhow::Result<()> {
    let runs: usize = std::env::var("FJORD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let op = OperatorCluster::start("operator-bench")?;
    let (mut starts, mut downs) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let t = Instant::now();
        op.apply(&op.example("counting-basic.yaml")?)?;
        op.wait_running(JOB, WAIT).await?;
        let start = secs(t);
        let old = op.jobmanager(JOB)?;
        let old_job = old.jobs().await?.jobs[0].id.clone();
        // Let records flow a moment so the downtime has a last growth to start from.
        op.wait_for(JOB, "a checkpoint", WAIT, |s| {
            s["lastCheckpoint"]["id"].is_i64()
        })
        .await?;
        op.apply(&op.example("counting-savepoint-upgrade.yaml")?)?;
        let down = downtime(&op, &old, &old_job).await?.as_secs_f64();
        eprintln!(
            "FIGURE run {run}: kubectl apply -> Running/RUNNING {start:.2}s; savepoint upgrade downtime {down:.2}s"
        );
        starts.push(start);
        downs.push(down);
        op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
        op.wait_no_pods(JOB, WAIT).await?;
    }
    eprintln!("FIGURE apply->running runs: {starts:.2?}; upgrade downtime runs: {downs:.2?}");
    op.cluster.stop()?;
    Ok(())
}
