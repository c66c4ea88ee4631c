//! The operator's stateful paths end to end, on the real control plane, MinIO and the worker's
//! real checkpoints and savepoints, each step from `kubectl apply` (or `kubectl scale` /
//! `kubectl patch`) of the examples in `examples/streamjobs/`:
//!
//! 1. `counting-basic.yaml` reaches Running and completes a checkpoint that is in MinIO;
//! 2. a manual savepoint through `savepointTriggerNonce` lands in the history and in MinIO;
//! 3. `counting-savepoint-upgrade.yaml` (changed args, `upgradeMode: savepoint`): stop with a
//!    savepoint, redeploy from it; every key's count continues exactly where the old job
//!    stopped (read from both JobManagers' logs); the downtime is measured;
//! 4. rescale 2 → 4 (`kubectl scale sj`) and 4 → 1 (`kubectl patch`), counts continuing;
//! 5. the operator killed (SIGKILL) mid-upgrade, restarted by its Deployment, ending with one
//!    JobManager, one job and continued counts;
//! 6. delete with `savepoints.onDelete`: a final savepoint appears in MinIO before the
//!    StreamJob is gone.
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_savepoints -- --nocapture`.

mod operator_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord_client::api::JobState;
use fjord_e2e::poll_until;
use futures::TryStreamExt as _;
use object_store::ObjectStore as _;
use object_store::path::Path as ObjectPath;
use operator_support::{OPERATOR_NS, OperatorCluster, POLL, RELEASE, counts, secs};
use serde_json::Value;

const JOB: &str = "counting";
const WAIT: Duration = Duration::from_secs(180);

/// The Pods of one deployment of the job: its JobManager and its TaskManagers (the subtasks,
/// and so the printed counts, run on the TaskManagers).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Deployment {
    jobmanager: String,
    taskmanagers: Vec<String>,
}

/// The running deployment: the one JobManager Pod and the TaskManager Pods started from the
/// same configuration (the `fjord.dev/config-hash` annotation the operator puts on both).
fn deployment(op: &OperatorCluster) -> anyhow::Result<Deployment> {
    let listing = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={JOB}"),
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.app\.kubernetes\.io/component} {.metadata.annotations.fjord\.dev/config-hash}{"\n"}{end}"#,
    ])?;
    let pods: Vec<(&str, &str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?, f.next().unwrap_or("")))
        })
        .collect();
    let jms: Vec<&(&str, &str, &str)> = pods.iter().filter(|p| p.1 == "jobmanager").collect();
    ensure!(
        jms.len() == 1,
        "expected one JobManager pod, found {pods:?}"
    );
    let (jm, _, hash) = jms[0];
    Ok(Deployment {
        jobmanager: jm.to_string(),
        taskmanagers: pods
            .iter()
            .filter(|p| p.1 == "taskmanager" && p.2 == *hash)
            .map(|p| p.0.to_string())
            .collect(),
    })
}

/// The whole output of a deployment's Pods (JobManager, then TaskManagers), also after the
/// Pods are gone (the node agent keeps their log files in the run directory). Each key is
/// counted by one subtask, so its counts stay in order.
fn pod_log(op: &OperatorCluster, deployment: &Deployment) -> anyhow::Result<String> {
    let mut all = String::new();
    for pod in std::iter::once(&deployment.jobmanager).chain(&deployment.taskmanagers) {
        let path = op
            .cluster
            .run_dir()
            .join(format!("agent/logs/default_{pod}_fjord.log"));
        all.push_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        );
    }
    Ok(all)
}

/// Every key printed by both jobs continues exactly: the new job's first count is the old job's
/// last count plus one (no record lost, none counted twice). Returns how many keys were checked.
fn assert_counts_continue(before: &str, after: &str, what: &str) -> anyhow::Result<usize> {
    let old = counts(before);
    let new = counts(after);
    let mut checked = 0;
    for (key, new_counts) in &new {
        let Some(old_last) = old.get(key).and_then(|c| c.iter().max()) else {
            continue;
        };
        let first = new_counts[0];
        ensure!(
            first == old_last + 1,
            "{what}: {key} continued at {first}, the old job had counted {old_last}"
        );
        checked += 1;
    }
    ensure!(checked > 0, "{what}: no key printed by both jobs");
    Ok(checked)
}

/// The paths in a StreamJob status's savepoint history taken for `trigger`.
fn history(status: &Value, trigger: &str) -> Vec<String> {
    status["savepointHistory"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["trigger"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(trigger))
        })
        .filter_map(|r| r["path"].as_str().map(str::to_string))
        .collect()
}

/// Object keys under an `s3://bucket/prefix` URL of the cluster's bucket.
async fn objects(op: &OperatorCluster, url: &str) -> anyhow::Result<Vec<String>> {
    let s3 = &op.s3;
    let prefix = url
        .strip_prefix(&format!("s3://{}/", s3.bucket))
        .with_context(|| format!("{url} is not in the cluster's bucket {}", s3.bucket))?;
    let store = s3.object_store()?;
    let listed: Vec<_> = store
        .list(Some(&ObjectPath::from(prefix)))
        .try_collect()
        .await?;
    Ok(listed.into_iter().map(|m| m.location.to_string()).collect())
}

/// Distinct savepoint directories under the job's savepoint directory.
async fn savepoint_dirs(op: &OperatorCluster) -> anyhow::Result<BTreeSet<String>> {
    let root = format!("s3://{}/savepoints/counting/", op.s3.bucket);
    let keys = objects(op, &root).await?;
    let base = root
        .split_once(&format!("{}/", op.s3.bucket))
        .map(|(_, p)| p.to_string())
        .unwrap_or_default();
    Ok(keys
        .iter()
        .filter_map(|k| k.strip_prefix(&base)?.split('/').next().map(str::to_string))
        .collect())
}

/// Wait until the StreamJob runs the generation it has now, with `parallelism`, on a JobManager
/// other than `old_pod`; returns the new JobManager pod.
async fn wait_redeployed(
    op: &OperatorCluster,
    old: &Deployment,
    parallelism: u64,
) -> anyhow::Result<Deployment> {
    let generation = op.streamjob(JOB)?["metadata"]["generation"].clone();
    op.wait_for(JOB, "the new deployment to run", WAIT, |s| {
        s["lifecycleState"] == "Running"
            && s["jobState"] == "RUNNING"
            && s["lastReconciledGeneration"] == generation
            && s["parallelism"] == parallelism
    })
    .await?;
    let pod = deployment(op)?;
    ensure!(
        pod.jobmanager != old.jobmanager,
        "the JobManager was not replaced"
    );
    let config = op.jobmanager(JOB)?.config().await?;
    ensure!(
        config.parallelism == Some(parallelism as usize),
        "{config:?}"
    );
    ensure!(config.restore_path.is_some(), "not restored: {config:?}");
    Ok(pod)
}

/// Wait until a deployment's Pods have printed at least `lines` counts.
async fn wait_printed(op: &OperatorCluster, pod: &Deployment, lines: usize) -> anyhow::Result<()> {
    poll_until(&format!("{pod:?} to print counts"), WAIT, POLL, || async {
        let log = pod_log(op, pod).ok()?;
        (counts(&log).values().map(Vec::len).sum::<usize>() >= lines).then_some(())
    })
    .await?;
    Ok(())
}

/// Upgrade downtime, observed on the REST APIs: from the last time the old job's record count
/// was seen to grow to the first time the new job's was seen above zero.
async fn measure_downtime(
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
            _ => break, // stopped, or its pod is gone
        }
        ensure!(Instant::now() < deadline, "the old job never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        // A new job ID, not a new address: the new JobManager Pod may get the old one's IP.
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

fn operator_pid(op: &OperatorCluster) -> anyhow::Result<u32> {
    let id = op.kubectl(&[
        "get",
        "pods",
        "-n",
        OPERATOR_NS,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].containerID}",
    ])?;
    id.strip_prefix("fjord-node-agent://")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("container id {id:?} names no pid"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn savepoint_upgrade_rescale_restart_and_delete() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-savepoints")?;

    // 1. Deploy; a checkpoint completes and is in MinIO.
    op.apply(&op.example("counting-basic.yaml")?)?;
    op.wait_running(JOB, WAIT).await?;
    let sj = op
        .wait_for(JOB, "a completed checkpoint", WAIT, |s| {
            s["lastCheckpoint"]["path"].is_string()
        })
        .await?;
    let checkpoint = sj["status"]["lastCheckpoint"]["path"]
        .as_str()
        .unwrap_or_default();
    ensure!(
        !objects(&op, checkpoint).await?.is_empty(),
        "checkpoint {checkpoint} has no objects in MinIO"
    );
    eprintln!("checkpoint in MinIO: {checkpoint}");

    // 2. Manual savepoint through the trigger nonce.
    op.patch(JOB, r#"{"spec":{"job":{"savepointTriggerNonce":1}}}"#)?;
    let sj = op
        .wait_for(JOB, "a manual savepoint", WAIT, |s| {
            !history(s, "manual").is_empty()
        })
        .await?;
    let manual = history(&sj["status"], "manual");
    ensure!(manual.len() == 1, "{manual:?}");
    ensure!(
        !objects(&op, &manual[0]).await?.is_empty(),
        "manual savepoint {} has no objects in MinIO",
        manual[0]
    );
    ensure!(
        sj["status"]["lifecycleState"] == "Running",
        "a manual savepoint stopped the job"
    );
    eprintln!("manual savepoint: {}", manual[0]);

    // 3. Savepoint upgrade with changed arguments; counts continue; downtime measured.
    let old_pod = deployment(&op)?;
    wait_printed(&op, &old_pod, 200).await?;
    let old = op.jobmanager(JOB)?;
    let old_job = old.jobs().await?.jobs[0].id.clone();
    op.apply(&op.example("counting-savepoint-upgrade.yaml")?)?;
    let downtime = measure_downtime(&op, &old, &old_job).await?;
    eprintln!(
        "FIGURE savepoint upgrade downtime (last record before -> first after): {:.2}s",
        downtime.as_secs_f64()
    );
    let new_pod = wait_redeployed(&op, &old_pod, 2).await?;
    let config = op.jobmanager(JOB)?.config().await?;
    ensure!(config.job_args.contains(&"2000".to_string()), "{config:?}");
    let sj = op.streamjob(JOB)?;
    let upgrade = history(&sj["status"], "upgrade");
    ensure!(upgrade.len() == 1, "{upgrade:?}");
    ensure!(
        config.restore_path.as_deref() == Some(upgrade[0].as_str()),
        "{config:?} vs {upgrade:?}"
    );
    wait_printed(&op, &new_pod, 200).await?;
    let keys = assert_counts_continue(
        &pod_log(&op, &old_pod)?,
        &pod_log(&op, &new_pod)?,
        "upgrade",
    )?;
    eprintln!("upgrade: {keys} keys continued exactly");

    // 4. Rescale 2 -> 4 through the scale subresource, then 4 -> 1.
    let mut pod = new_pod;
    for (n, how) in [(4u64, "scale"), (1, "patch")] {
        let before = pod.clone();
        if how == "scale" {
            op.kubectl(&["scale", "streamjob", JOB, &format!("--replicas={n}")])?;
        } else {
            op.patch(
                JOB,
                &format!(r#"{{"spec":{{"job":{{"parallelism":{n}}}}}}}"#),
            )?;
        }
        pod = wait_redeployed(&op, &before, n).await?;
        wait_printed(&op, &pod, 200).await?;
        let keys = assert_counts_continue(
            &pod_log(&op, &before)?,
            &pod_log(&op, &pod)?,
            &format!("rescale to {n}"),
        )?;
        let tms = op.kubectl(&[
            "get",
            "deployment",
            &format!("{JOB}-taskmanager"),
            "-o",
            "jsonpath={.spec.replicas}",
        ])?;
        ensure!(
            tms == n.to_string(),
            "TaskManager replicas {tms} for parallelism {n}"
        );
        eprintln!("rescale to {n}: {keys} keys continued exactly");
    }

    // 5. The operator killed mid-upgrade (restart through the nonce), restarted by its
    // Deployment: one JobManager, one job, counts continue.
    let before = pod.clone();
    let pid = operator_pid(&op)?;
    op.patch(JOB, r#"{"spec":{"job":{"restartNonce":1}}}"#)?;
    // Each poll is a `kubectl get`; on a loaded machine (three test binaries at a time) one
    // run saw none of the ~30 s upgrade (its polls failing or too slow), so an upgrade already
    // reconciled also ends the wait: the operator is then killed right after it, and what
    // follows (one JobManager, one job, counts continuing) is checked all the same.
    let sj = op
        .wait_for(JOB, "the restart upgrade to start", WAIT, |s| {
            s["upgrade"].is_object() || s["lastReconciledSpec"]["job"]["restartNonce"] == 1
        })
        .await?;
    if !sj["status"]["upgrade"].is_object() {
        eprintln!("the restart upgrade had ended before a poll saw it");
    }
    let step = sj["status"]["upgrade"]["step"].clone();
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    ensure!(killed.success(), "kill -9 {pid} failed");
    let after_kill = op.streamjob(JOB)?;
    eprintln!(
        "operator (pid {pid}) killed at upgrade step {step}; right after the kill: state {} upgrade {}",
        after_kill["status"]["lifecycleState"], after_kill["status"]["upgrade"]
    );
    poll_until("the operator to restart", WAIT, POLL, || async {
        operator_pid(&op).ok().filter(|p| *p != pid)
    })
    .await?;
    pod = wait_redeployed(&op, &before, 1).await?;
    let jobs = op.jobmanager(JOB)?.jobs().await?;
    ensure!(
        jobs.jobs.len() == 1 && jobs.jobs[0].state == JobState::Running,
        "{jobs:?}"
    );
    ensure!(
        op.children(JOB, "deployments")?.len() == 2,
        "{:?}",
        op.children(JOB, "deployments")?
    );
    ensure!(
        op.kubectl(&[
            "get",
            "deployment",
            &format!("{JOB}-jobmanager"),
            "-o",
            "jsonpath={.status.replicas}"
        ])? == "1"
    );
    let upgrades = history(&op.streamjob(JOB)?["status"], "upgrade");
    ensure!(
        upgrades.len() == 4,
        "one upgrade savepoint per upgrade expected: {upgrades:?}"
    );
    wait_printed(&op, &pod, 100).await?;
    assert_counts_continue(
        &pod_log(&op, &before)?,
        &pod_log(&op, &pod)?,
        "operator restart",
    )?;

    // 6. Delete with a savepoint on delete (onDelete is set by counting-savepoint-upgrade.yaml).
    ensure!(
        op.streamjob(JOB)?["spec"]["savepoints"]["onDelete"] == true,
        "onDelete not set"
    );
    let dirs_before = savepoint_dirs(&op).await?;
    let deleted = Instant::now();
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=180s"])?;
    eprintln!("deleted with a savepoint in {:.1}s", secs(deleted));
    let dirs_after = savepoint_dirs(&op).await?;
    let new_dirs: Vec<_> = dirs_after.difference(&dirs_before).collect();
    if new_dirs.len() != 1 {
        bail!("expected one savepoint taken on delete, found {new_dirs:?}");
    }
    op.wait_no_pods(JOB, Duration::from_secs(60)).await?;
    op.cluster.stop()?;
    Ok(())
}

/// After a `last-state` redeploy the new job restores a checkpoint of the old one: for every
/// key printed by both, the new job's first count minus one is a count the old job printed (the
/// checkpointed state; a reset to empty state would restart at 1), and the new job's counts
/// then go up by one at a time. Returns how many keys were checked.
fn assert_counts_resume(before: &str, after: &str, what: &str) -> anyhow::Result<usize> {
    let old = counts(before);
    let new = counts(after);
    let mut checked = 0;
    for (key, new_counts) in &new {
        let Some(old_counts) = old.get(key) else {
            continue;
        };
        let first = new_counts[0];
        ensure!(
            old_counts.contains(&(first - 1)),
            "{what}: {key} resumed at {first}, but the old job never counted {} (it counted up to {:?})",
            first - 1,
            old_counts.iter().max()
        );
        ensure!(
            new_counts.windows(2).all(|w| w[1] == w[0] + 1),
            "{what}: {key} skipped or repeated a count after resuming: {new_counts:?}"
        );
        checked += 1;
    }
    ensure!(checked > 0, "{what}: no key printed by both jobs");
    Ok(checked)
}

/// The process of the StreamJob's current JobManager container.
fn jobmanager_pid(op: &OperatorCluster) -> anyhow::Result<u32> {
    let id = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={JOB},app.kubernetes.io/component=jobmanager"),
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].containerID}",
    ])?;
    id.strip_prefix("fjord-node-agent://")
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("container id {id:?} names no pid"))
}

/// `last-state` upgrades on a real JobManager: the operator cancels the job, which keeps its
/// retained checkpoints (the ConfigMap's `checkpointing.retain-on-cancellation`), and the new
/// deployment restores the latest one — after a plain upgrade, and after a JobManager SIGKILL
/// immediately followed by an upgrade (the operator then cannot cancel and restores the
/// checkpoint recorded in status). Counts resume from the checkpointed state every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_state_upgrades_restore_the_latest_checkpoint() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-last-state")?;
    op.apply(&op.example("counting-basic.yaml")?)?;
    op.wait_running(JOB, WAIT).await?;
    // The upgrade mode changes nothing running.
    op.patch(JOB, r#"{"spec":{"job":{"upgradeMode":"last-state"}}}"#)?;
    let mut pod = deployment(&op)?;
    for (nonce, kill_first) in [(1, false), (2, true)] {
        // A checkpoint of the running job (not the one its deployment restored from).
        let sj = op
            .wait_for(JOB, "a checkpoint of the running job", WAIT, |s| {
                s["lifecycleState"] == "Running"
                    && s["jobId"].as_str().is_some_and(|id| {
                        s["lastCheckpoint"]["path"]
                            .as_str()
                            .is_some_and(|p| p.contains(&format!("/{id}/chk-")))
                    })
            })
            .await?;
        let job_id = sj["status"]["jobId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        wait_printed(&op, &pod, 200).await?;
        let before = pod.clone();
        if kill_first {
            let pid = jobmanager_pid(&op)?;
            let killed = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()?;
            ensure!(killed.success(), "kill -9 {pid} failed");
            eprintln!("JobManager (pid {pid}) killed; upgrading at once");
        }
        op.patch(
            JOB,
            &format!(r#"{{"spec":{{"job":{{"restartNonce":{nonce}}}}}}}"#),
        )?;
        pod = wait_redeployed(&op, &before, 2).await?;
        let sj = op.streamjob(JOB)?;
        let restored = sj["status"]["restorePath"]
            .as_str()
            .context("status.restorePath")?
            .to_string();
        ensure!(
            restored.starts_with(&format!("s3://fjord/checkpoints/counting/{job_id}/chk-")),
            "a last-state upgrade restored {restored}, not a checkpoint of job {job_id}"
        );
        let config = op.jobmanager(JOB)?.config().await?;
        ensure!(
            config.restore_path.as_deref() == Some(restored.as_str()),
            "{config:?} vs {restored}"
        );
        ensure!(
            history(&sj["status"], "upgrade").is_empty(),
            "a last-state upgrade took a savepoint"
        );
        wait_printed(&op, &pod, 200).await?;
        let what = if kill_first {
            "JobManager killed, then last-state upgrade"
        } else {
            "last-state upgrade"
        };
        let keys = assert_counts_resume(&pod_log(&op, &before)?, &pod_log(&op, &pod)?, what)?;
        eprintln!("{what}: restored {restored}; {keys} keys resumed from it exactly");
    }
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
    op.cluster.stop()?;
    Ok(())
}
