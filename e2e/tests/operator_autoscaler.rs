//! The autoscaler end to end, on the real control plane and MinIO:
//! `examples/streamjobs/counting-autoscaler.yaml`, applied verbatim, runs the counting job with
//! an input that steps from 50 to 800 records/s and back to 50, at 2 ms of work per record.
//! The operator must scale it up from 1 while the input is high (a `ScaledUp` Event naming
//! the busy vertex, `status.autoscaler` with the parallelism and the vertices it judged), then
//! back down once the input drops (`ScaledDown`), never beyond `spec.autoscaler.maxParallelism`,
//! while `spec.job.parallelism` stays as written; then disabling the autoscaler returns the job
//! to `spec.job.parallelism`. Admission refuses an autoscaler maximum above the key groups.
//!
//! Every decision is applied in place (issue 21): the TaskManagers scale up first, the running
//! JobManager rescales the job (its own savepoint, same JobManager Pod, same job ID: no
//! stop-with-savepoint and no redeploy by the operator), and surplus TaskManagers go after it,
//! idle ones first. Counts stay exact: per key, the counts all TaskManagers printed are
//! 1, 2, 3, ... with none missing and none twice.
//!
//! Nothing here asserts on timing: every wait is bounded, and the figures (including the
//! longest stall of the record counts around each rescale) are printed.
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_autoscaler -- --nocapture`.

mod operator_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use operator_support::{OperatorCluster, add_counts, secs};
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

/// Each growth of the job's record count seen on its JobManager's REST API: when, which job.
#[derive(Default)]
struct Counts {
    client: Option<fjord_client::Client>,
    last: Option<(String, u64)>,
    growth: Vec<(Instant, String)>,
}

impl Counts {
    /// Polls the JobManager's record counts every 100 ms, forever (raced against a wait).
    async fn watch(&mut self, op: &OperatorCluster) {
        loop {
            if self.client.is_none() {
                self.client = op.jobmanager(JOB).ok();
            }
            let mut seen = None;
            if let Some(c) = &self.client {
                match c.jobs().await {
                    Ok(jobs) => {
                        if let Some(job) = jobs.jobs.first()
                            && let Ok(d) = c.job(&job.id).await
                        {
                            let n: u64 = d.vertices.iter().map(|v| v.records_in).sum();
                            seen = Some((job.id.clone(), n));
                        }
                    }
                    Err(_) => self.client = None,
                }
            }
            if let Some((id, n)) = seen {
                // A new job (a redeploy) or a new attempt of the same job (a rescale in place)
                // counts from zero again: any change is news, a rise is a record.
                let (changed, grew) = match &self.last {
                    Some((last_id, last_n)) if *last_id == id => {
                        (n != *last_n, n > *last_n || n < *last_n && n > 0)
                    }
                    _ => (true, n > 0),
                };
                if grew {
                    self.growth.push((Instant::now(), id.clone()));
                }
                if changed {
                    self.last = Some((id, n));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The longest time between two growths after `since`.
    fn longest_stall(&self, since: Instant) -> f64 {
        self.growth
            .windows(2)
            .filter(|w| w[0].0 >= since)
            .map(|w| (w[1].0 - w[0].0).as_secs_f64())
            .fold(0.0, f64::max)
    }
}

/// The JobManager Pod's name.
fn jobmanager_pod(op: &OperatorCluster) -> anyhow::Result<String> {
    Ok(op
        .kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("fjord.dev/streamjob={JOB},app.kubernetes.io/component=jobmanager"),
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])?
        .trim()
        .to_string())
}

/// The rescale was applied in place: the same JobManager Pod and job, no stop-with-savepoint
/// and no savepoint in the StreamJob's history, and the `Rescaled` Event.
fn ensure_in_place(
    op: &OperatorCluster,
    jm_pod: &str,
    job_id: &Value,
    status: &Value,
    what: &str,
) -> anyhow::Result<()> {
    ensure!(
        jobmanager_pod(op)? == jm_pod,
        "{what}: the JobManager Pod changed (was {jm_pod})"
    );
    ensure!(
        &status["jobId"] == job_id,
        "{what}: the job changed: {} (was {job_id})",
        status["jobId"]
    );
    ensure!(
        status["savepointHistory"]
            .as_array()
            .is_none_or(Vec::is_empty)
            && status["lastSavepoint"].is_null(),
        "{what}: no savepoint of the operator's: {} {}",
        status["lastSavepoint"],
        status["savepointHistory"]
    );
    let evs = op.events(JOB)?;
    ensure!(
        evs.iter().any(|(r, _)| r == "Rescaled")
            && !evs
                .iter()
                .any(|(_, m)| m.contains("stopping the job with savepoint")),
        "{what}: rescaled in place, never stopped: {evs:?}"
    );
    Ok(())
}

/// Per key, every count the job's Pods printed (`n> (key-3,17)`), from the node agent's log
/// files of every Pod the StreamJob had.
fn printed_counts(op: &OperatorCluster) -> anyhow::Result<BTreeMap<String, Vec<u64>>> {
    let dir = op.cluster.run_dir().join("agent/logs");
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.starts_with(&format!("default_{JOB}-")) {
            continue;
        }
        add_counts(&std::fs::read_to_string(&path)?, &mut out);
    }
    Ok(out)
}

/// Per key, the printed counts are exactly 1..=n: none lost, none counted twice.
fn ensure_exact_counts(op: &OperatorCluster) -> anyhow::Result<usize> {
    let counts = printed_counts(op)?;
    ensure!(!counts.is_empty(), "no counts printed");
    let mut total = 0;
    for (key, mut seen) in counts {
        seen.sort_unstable();
        let expected: Vec<u64> = (1..=seen.len() as u64).collect();
        ensure!(
            seen == expected,
            "{key}: counts are not 1..={}: {:?}",
            seen.len(),
            seen.iter().zip(&expected).find(|(a, b)| a != b)
        );
        total += seen.len();
    }
    Ok(total)
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
    let running = op.wait_running(JOB, PHASE).await?;
    eprintln!(
        "FIGURE autoscaler: Running at parallelism 1 after {:.1}s",
        secs(applied)
    );
    let jm_pod = jobmanager_pod(&op)?;
    let job_id = running["status"]["jobId"].clone();
    ensure!(job_id.is_string(), "status.jobId: {}", running["status"]);
    let mut counts = Counts::default();
    let watching_from = Instant::now();

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
    let sj = tokio::select! {
        sj = op.wait_for(JOB, "a scale-up, deployed and running", PHASE, |s| {
            watch(s);
            deployed_parallelism(s).is_some_and(|p| p >= 2)
        }) => sj?,
        () = counts.watch(&op) => unreachable!("watching never ends"),
    };
    let up_at = secs(applied);
    // Let the counts grow again after the rescale before the stall is read.
    let settled = Instant::now() + Duration::from_secs(3);
    tokio::select! {
        () = tokio::time::sleep_until(settled.into()) => {}
        () = counts.watch(&op) => unreachable!("watching never ends"),
    }
    eprintln!(
        "FIGURE autoscaler: longest stall of the record counts up to the scale-up: {:.2}s",
        counts.longest_stall(watching_from)
    );
    let after_up = Instant::now();
    ensure_in_place(&op, &jm_pod, &job_id, &sj["status"], "scale-up")?;
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
    let sj = tokio::select! {
        sj = op.wait_for(JOB, "a scale-down to 1, deployed and running", PHASE, |s| {
            watch(s);
            deployed_parallelism(s) == Some(1) && s["autoscaler"]["parallelism"] == 1
        }) => sj?,
        () = counts.watch(&op) => unreachable!("watching never ends"),
    };
    let settled = Instant::now() + Duration::from_secs(3);
    tokio::select! {
        () = tokio::time::sleep_until(settled.into()) => {}
        () = counts.watch(&op) => unreachable!("watching never ends"),
    }
    eprintln!(
        "FIGURE autoscaler: longest stall of the record counts from the scale-up to the scale-down to 1: {:.2}s",
        counts.longest_stall(after_up)
    );
    ensure_in_place(&op, &jm_pod, &job_id, &sj["status"], "scale-down")?;
    // The surplus TaskManagers went; the one the job runs on stayed (the counts go on).
    op.wait_for(JOB, "one TaskManager", PHASE, |s| {
        s["taskManagers"]["desired"] == 1 && s["taskManagers"]["ready"] == 1
    })
    .await?;
    let printed = ensure_exact_counts(&op)?;
    eprintln!("autoscaler: {printed} counts printed, every key's exactly 1..=n");
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
