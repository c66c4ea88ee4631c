//! Manual checkpoints end to end, on the real control plane, MinIO and the worker's real
//! checkpoint coordinator (the Flink operator's `checkpoint: {}` snapshots and
//! `checkpointTriggerNonce`):
//!
//! 1. `examples/snapshots/counting-checkpoint.yaml` applied verbatim to a running
//!    `counting-basic.yaml` takes a FULL checkpoint: the snapshot goes COMPLETED with the
//!    checkpoint's id and a path under the StreamJob's checkpoint storage, which the
//!    JobManager's checkpoint history lists as a completed checkpoint (not a savepoint), with
//!    its `_metadata` in MinIO (unless retention already removed it, which the history then
//!    shows); the job keeps running in the same JobManager;
//! 2. bumping `spec.job.checkpointTriggerNonce` takes one more checkpoint without a redeploy:
//!    `status.manualCheckpoint` COMPLETED with the nonce, id and path, recorded as a
//!    StreamJobSnapshot with `spec.checkpoint`.
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_checkpoints -- --nocapture`.

mod operator_support;

use std::time::Duration;

use anyhow::{Context as _, ensure};
use fjord_e2e::poll_until;
use futures::TryStreamExt as _;
use object_store::ObjectStore as _;
use object_store::path::Path as ObjectPath;
use operator_support::{OperatorCluster, POLL, repo};
use serde_json::Value;

const JOB: &str = "counting";
const WAIT: Duration = Duration::from_secs(180);
/// `spec.checkpointing.storage` of `counting-basic.yaml`.
const STORAGE: &str = "s3://fjord/checkpoints/counting";
/// `spec.checkpointing.retained` of `counting-basic.yaml`.
const RETAINED: u64 = 3;

fn snapshot(op: &OperatorCluster, name: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&op.kubectl(&[
        "get",
        "streamjobsnapshot",
        name,
        "-o",
        "json",
    ])?)?)
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

/// Checks that checkpoint `id` at `path` is a real completed checkpoint of the running job:
/// listed by its JobManager as a checkpoint (not a savepoint) at that path, and its
/// `_metadata` in MinIO, or, if gone, removed by retention after newer checkpoints.
async fn check_checkpoint(op: &OperatorCluster, id: u64, path: &str) -> anyhow::Result<()> {
    ensure!(
        path.starts_with(&format!("{STORAGE}/")) && path.ends_with(&format!("/chk-{id}")),
        "checkpoint {id} is at {path}, not under {STORAGE}"
    );
    let files = objects(op, path).await?;
    let jm = op.jobmanager(JOB)?;
    let job = jm.jobs().await?.jobs.into_iter().next().context("no job")?;
    let history = jm.checkpoints(&job.id).await?;
    let listed = history
        .completed
        .iter()
        .find(|c| u64::try_from(c.id) == Ok(id))
        .with_context(|| format!("the JobManager does not list checkpoint {id}: {history:?}"))?;
    ensure!(
        listed.path == path && !listed.savepoint,
        "the JobManager lists {listed:?}"
    );
    if files.is_empty() {
        let latest = history
            .completed
            .iter()
            .map(|c| c.id)
            .max()
            .unwrap_or(0)
            .max(0) as u64;
        ensure!(
            latest >= id + RETAINED,
            "checkpoint {id} has no objects in MinIO although only {latest} followed it"
        );
    } else {
        ensure!(
            files.iter().any(|f| f.ends_with("/_metadata")),
            "checkpoint {id} has no _metadata: {files:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_snapshots_and_the_nonce_take_real_checkpoints() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-checkpoints")?;
    op.apply(&op.example("counting-basic.yaml")?)?;
    let sj = op.wait_running(JOB, WAIT).await?;
    let job_id = sj["status"]["jobId"].as_str().context("jobId")?.to_string();

    // 1. The example snapshot, verbatim.
    let manifest =
        std::fs::read_to_string(repo().join("examples/snapshots/counting-checkpoint.yaml"))?;
    op.apply(&manifest)?;
    let done = poll_until("counting-checkpoint COMPLETED", WAIT, POLL, || async {
        let s = snapshot(&op, "counting-checkpoint").ok()?;
        (s["status"]["state"] != "IN_PROGRESS" && !s["status"]["state"].is_null()).then_some(s)
    })
    .await
    .with_context(|| op.operator_logs())?;
    ensure!(done["status"]["state"] == "COMPLETED", "{}", done["status"]);
    ensure!(
        done["status"]["triggerType"] == "manual",
        "{}",
        done["status"]
    );
    let id = done["status"]["checkpointId"]
        .as_u64()
        .context("a COMPLETED checkpoint snapshot has its id")?;
    let path = done["status"]["path"].as_str().context("path")?.to_string();
    check_checkpoint(&op, id, &path).await?;
    let sj = op.streamjob(JOB)?;
    ensure!(
        sj["status"]["jobId"] == job_id.as_str() && sj["status"]["lifecycleState"] == "Running",
        "the checkpoint redeployed or stopped the job: {}",
        sj["status"]
    );
    eprintln!("checkpoint snapshot: {id} at {path}");

    // 2. The nonce: one checkpoint, recorded in status and as a snapshot, no redeploy.
    op.patch(JOB, r#"{"spec":{"job":{"checkpointTriggerNonce":1}}}"#)?;
    let sj = op
        .wait_for(JOB, "manualCheckpoint COMPLETED", WAIT, |s| {
            s["manualCheckpoint"]["nonce"] == 1 && s["manualCheckpoint"]["state"] != "IN_PROGRESS"
        })
        .await?;
    let manual = &sj["status"]["manualCheckpoint"];
    ensure!(manual["state"] == "COMPLETED", "{manual}");
    ensure!(
        sj["status"]["lastCheckpointTriggerNonce"] == 1,
        "{}",
        sj["status"]
    );
    let nonce_id = manual["checkpointId"].as_u64().context("checkpointId")?;
    let nonce_path = manual["path"].as_str().context("path")?.to_string();
    ensure!(
        nonce_id > id,
        "checkpoint {nonce_id} is not newer than {id}"
    );
    check_checkpoint(&op, nonce_id, &nonce_path).await?;
    ensure!(
        sj["status"]["jobId"] == job_id.as_str() && sj["status"]["lifecycleState"] == "Running",
        "the nonce redeployed the job: {}",
        sj["status"]
    );
    let trigger = manual["triggerId"].as_str().context("triggerId")?;
    let recorded_name = format!("{JOB}-{trigger}");
    let recorded = poll_until("the recorded checkpoint snapshot", WAIT, POLL, || async {
        let s = snapshot(&op, &recorded_name).ok()?;
        (s["status"]["state"] == "COMPLETED").then_some(s)
    })
    .await?;
    ensure!(
        recorded["spec"]["checkpoint"].is_object()
            && recorded["status"]["path"] == nonce_path.as_str()
            && recorded["status"]["checkpointId"] == nonce_id,
        "{recorded}"
    );
    eprintln!("nonce checkpoint: {nonce_id} at {nonce_path}, recorded as {recorded_name}");

    op.cluster.stop()?;
    Ok(())
}
