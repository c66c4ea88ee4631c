//! The autoscaler end to end, on the real control plane and MinIO:
//! `examples/streamjobs/counting-autoscaler.yaml`, applied verbatim, runs the counting job with
//! an input that steps from 50 to 800 records/s and back to 50, at 2 ms of work per record.
//! The operator must scale it up from 1 while the input is high (a `ScaledUp` Event naming
//! the busy vertex, `status.autoscaler` with the parallelism and the vertices it judged), then
//! back down once the input drops (`ScaledDown`), never beyond `spec.autoscaler.maxParallelism`,
//! while `spec.job.parallelism` stays as written; then disabling the autoscaler returns the job
//! to `spec.job.parallelism`. Admission refuses an autoscaler maximum above the key groups.
//!
//! Nothing here asserts on timing: every wait is bounded, and the figures are printed.
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_autoscaler -- --nocapture`.

mod operator_support;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use operator_support::{OperatorCluster, secs};
use serde_json::Value;

const JOB: &str = "counting-autoscaler";
const EXAMPLE: &str = "counting-autoscaler.yaml";
/// Bound on each phase (a rescale is a savepoint and a redeploy on a shared machine).
const PHASE: Duration = Duration::from_secs(300);

fn deployed_parallelism(status: &Value) -> Option<i64> {
    (status["lifecycleState"] == "Running" && status["jobState"] == "RUNNING")
        .then(|| status["parallelism"].as_i64())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scales_up_with_the_input_and_back_down() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-autoscaler")?;
    let example = op.example(EXAMPLE)?;

    // Admission: an autoscaler maximum above the job's key groups is refused before it is
    // stored, with the operator's words.
    let refused = example.replace("maxParallelism: 4", "maxParallelism: 200");
    ensure!(refused != example, "the replacement did not apply");
    let err = op
        .apply(&refused)
        .expect_err("the API server must refuse it")
        .to_string();
    ensure!(
        err.contains("spec.autoscaler.maxParallelism must be at most spec.job.maxParallelism"),
        "API server said {err}"
    );

    let applied = Instant::now();
    op.apply(&example)?;
    op.wait_running(JOB, PHASE).await?;
    eprintln!(
        "FIGURE autoscaler: Running at parallelism 1 after {:.1}s",
        secs(applied)
    );

    // Up: the input steps to 800 records/s, more than one subtask handles.
    let max_seen = std::sync::atomic::AtomicI64::new(1);
    let watch = |s: &Value| {
        if let Some(p) = s["parallelism"].as_i64() {
            max_seen.fetch_max(p, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(p) = s["autoscaler"]["parallelism"].as_i64() {
            max_seen.fetch_max(p, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let sj = op
        .wait_for(JOB, "a scale-up, deployed and running", PHASE, |s| {
            watch(s);
            deployed_parallelism(s).is_some_and(|p| p >= 2)
        })
        .await?;
    let up_at = secs(applied);
    let status = &sj["status"];
    let autoscaler = &status["autoscaler"];
    eprintln!(
        "FIGURE autoscaler: scaled up to {} at {up_at:.1}s: {}",
        status["parallelism"], autoscaler["lastDecision"]
    );
    ensure!(
        sj["spec"]["job"]["parallelism"] == 1,
        "spec.job.parallelism must stay as written: {}",
        sj["spec"]["job"]
    );
    ensure!(
        autoscaler["parallelism"].as_i64() >= Some(2)
            && autoscaler["specParallelism"] == 1
            && autoscaler["lastScaleTime"].is_string(),
        "status.autoscaler: {autoscaler}"
    );
    let vertices = autoscaler["vertices"].as_array().context("vertices")?;
    ensure!(
        vertices
            .iter()
            .any(|v| v["name"].as_str().is_some_and(|n| n.contains("work"))
                && v["busyRatio"].as_f64().is_some()),
        "the vertices the autoscaler judged name the working vertex: {autoscaler}"
    );
    let evs = op.events(JOB)?;
    let scaled_up: Vec<&(String, String)> = evs.iter().filter(|(r, _)| r == "ScaledUp").collect();
    ensure!(
        !scaled_up.is_empty()
            && scaled_up
                .iter()
                .all(|(_, m)| m.starts_with("scaled up from ") && m.contains("busy")),
        "a ScaledUp Event with its reason: {evs:?}"
    );

    // Down: the input drops to 50 records/s; one subtask is enough again.
    let sj = op
        .wait_for(JOB, "a scale-down to 1, deployed and running", PHASE, |s| {
            watch(s);
            deployed_parallelism(s) == Some(1) && s["autoscaler"]["parallelism"] == 1
        })
        .await?;
    eprintln!(
        "FIGURE autoscaler: back to 1 at {:.1}s: {}",
        secs(applied),
        sj["status"]["autoscaler"]["lastDecision"]
    );
    let evs = op.events(JOB)?;
    ensure!(
        evs.iter().any(|(r, m)| r == "ScaledDown"
            && m.starts_with("scaled down from ")
            && m.contains(" to 1")),
        "a ScaledDown Event to 1: {evs:?}"
    );
    ensure!(
        evs.iter().all(|(_, m)| m.len() <= 1024),
        "an Event note exceeds 1 kB: {evs:?}"
    );
    let max = max_seen.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("FIGURE autoscaler: highest parallelism seen {max}");
    ensure!(
        (2..=4).contains(&max),
        "the parallelism must stay within spec.autoscaler 1..4: saw {max}"
    );
    // The job ran throughout: every rescale was a savepoint, not a failure.
    ensure!(
        evs.iter()
            .all(|(r, _)| r != "JobFailed" && r != "UpgradeFailed"),
        "{evs:?}"
    );

    // Disabling the autoscaler drops its parallelism: the job runs at spec.job.parallelism
    // (here already 1) and status.autoscaler is gone.
    op.patch(JOB, r#"{"spec":{"autoscaler":{"enabled":false}}}"#)?;
    op.wait_for(JOB, "no status.autoscaler", Duration::from_secs(60), |s| {
        s["autoscaler"].is_null() && deployed_parallelism(s) == Some(1)
    })
    .await?;

    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
    op.cluster.stop()?;
    Ok(())
}
