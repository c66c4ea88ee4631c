//! StreamJobSnapshots end to end, on the real control plane, MinIO and the worker's real
//! savepoints:
//!
//! 1. `examples/snapshots/counting-snapshot.yaml` applied verbatim to a running
//!    `counting-basic.yaml` takes a savepoint: the snapshot goes COMPLETED with a path whose
//!    files are in MinIO, and the job keeps running;
//! 2. suspending the job (`counting-suspended.yaml`, a stop-with-savepoint) makes the operator
//!    record an `upgrade` snapshot whose path is the StreamJob's restore path;
//! 3. `kubectl delete sj counting`: both snapshots stay (no owner reference);
//! 4. a new StreamJob `counting` with `spec.job.initialSavepointSnapshot` naming the upgrade
//!    snapshot restores exactly: for every key, its first count is the suspended job's last
//!    count + 1;
//! 5. `kubectl delete sjs counting-manual` (disposeOnDelete) deletes the savepoint's files.
//!
//! And of a session job (`session_job_snapshots_...`), on `examples/sessions/`:
//!
//! 1. bumping `spec.job.savepointTriggerNonce` of the StreamSessionJob `counts-a` makes the
//!    operator create the StreamJobSnapshot `counts-a-savepoint-1-<job id prefix>`, taken through the
//!    StreamCluster's JobManager: COMPLETED with a path whose files are in MinIO (and the same
//!    for `checkpointTriggerNonce`, a checkpoint snapshot, followed in
//!    `status.manualCheckpoint`); `spec.savepoints.periodicInterval: 1m` takes a `periodic`
//!    snapshot of the running job;
//! 2. `session-snapshot.yaml` applied verbatim (`jobReference.kind: StreamSessionJob`) goes
//!    COMPLETED; deleting it (disposeOnDelete) deletes its files;
//! 3. suspending `counts-a` records its stop-with-savepoint as an `upgrade` snapshot whose path
//!    is the job's last savepoint;
//! 4. a new StreamSessionJob with `spec.job.initialSavepointSnapshot` naming that snapshot
//!    starts from its savepoint (and a nonce it is created with takes no savepoint);
//! 5. deleting it with `spec.savepointOnDelete` records a `delete` snapshot that outlives it;
//! 6. a user's snapshot of it (disposeOnDelete) deleted after it is gone still removes its
//!    files, through the StreamCluster the snapshot's status names.
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_snapshots -- --nocapture`.

mod operator_support;

use std::time::Duration;

use anyhow::{Context as _, ensure};
use fjord_e2e::poll_until;
use futures::TryStreamExt as _;
use object_store::ObjectStore as _;
use object_store::path::Path as ObjectPath;
use operator_support::{OperatorCluster, POLL, counts, repo};
use serde_json::Value;

const JOB: &str = "counting";
/// The StreamCluster of `examples/sessions/session-cluster.yaml`.
const CLUSTER: &str = "shared";
const WAIT: Duration = Duration::from_secs(180);

/// Names of the StreamJob's TaskManager Pods now (they print the counts).
fn taskmanagers(op: &OperatorCluster) -> anyhow::Result<Vec<String>> {
    let out = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={JOB},app.kubernetes.io/component=taskmanager"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// The output of Pods, also after they are gone (the node agent keeps their log files).
fn pod_log(op: &OperatorCluster, pods: &[String]) -> anyhow::Result<String> {
    let mut all = String::new();
    for pod in pods {
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

fn snapshot(op: &OperatorCluster, name: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&op.kubectl(&[
        "get",
        "streamjobsnapshot",
        name,
        "-o",
        "json",
    ])?)?)
}

/// The StreamJob's snapshots, as JSON.
fn snapshots(op: &OperatorCluster) -> anyhow::Result<Vec<Value>> {
    let list: Value = serde_json::from_str(&op.kubectl(&[
        "get",
        "streamjobsnapshots",
        "-l",
        &format!("fjord.dev/streamjob={JOB}"),
        "-o",
        "json",
    ])?)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

async fn wait_snapshot(op: &OperatorCluster, name: &str, state: &str) -> anyhow::Result<Value> {
    poll_until(&format!("snapshot {name} {state}"), WAIT, POLL, || async {
        let s = snapshot(op, name).ok()?;
        (s["status"]["state"] == state).then_some(s)
    })
    .await
    .with_context(|| {
        format!(
            "snapshot {name}: {:?}\noperator log:\n{}",
            snapshot(op, name).map(|s| s["status"].clone()),
            op.operator_logs()
        )
    })
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

async fn wait_printed(op: &OperatorCluster, pods: &[String], lines: usize) -> anyhow::Result<()> {
    poll_until("counts printed", WAIT, POLL, || async {
        let log = pod_log(op, pods).ok()?;
        (counts(&log).values().map(Vec::len).sum::<usize>() >= lines).then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_trigger_record_outlive_restore_and_dispose() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-snapshots")?;
    op.apply(&op.example("counting-basic.yaml")?)?;
    op.wait_running(JOB, WAIT).await?;
    let first_tms = taskmanagers(&op)?;
    wait_printed(&op, &first_tms, 100).await?;

    // 1. A user's snapshot, applied verbatim, takes a savepoint of the running job.
    let manifest =
        std::fs::read_to_string(repo().join("examples/snapshots/counting-snapshot.yaml"))?;
    op.apply(&manifest)?;
    let manual = wait_snapshot(&op, "counting-manual", "COMPLETED").await?;
    let manual_path = manual["status"]["path"]
        .as_str()
        .context("a COMPLETED snapshot has a path")?
        .to_string();
    ensure!(manual["status"]["triggerType"] == "manual", "{manual}");
    ensure!(
        !objects(&op, &manual_path).await?.is_empty(),
        "snapshot savepoint {manual_path} has no objects in MinIO"
    );
    ensure!(
        manual["metadata"]["ownerReferences"].is_null(),
        "a snapshot must not be owned (it outlives the StreamJob): {manual}"
    );
    let sj = op.streamjob(JOB)?;
    ensure!(
        sj["status"]["lifecycleState"] == "Running" && sj["status"]["jobState"] == "RUNNING",
        "taking a snapshot stopped the job: {}",
        sj["status"]
    );
    eprintln!("user snapshot: {manual_path}");

    // 2. Suspending stops the job with a savepoint, which the operator records.
    op.apply(&op.example("counting-suspended.yaml")?)?;
    let sj = op
        .wait_for(JOB, "Suspended", WAIT, |s| {
            s["lifecycleState"] == "Suspended"
        })
        .await?;
    let restore = sj["status"]["restorePath"]
        .as_str()
        .context("a suspended savepoint-mode job has a restore path")?
        .to_string();
    let recorded = poll_until("the upgrade snapshot", WAIT, POLL, || async {
        snapshots(&op).ok()?.into_iter().find(|s| {
            s["status"]["triggerType"] == "upgrade" && s["status"]["state"] == "COMPLETED"
        })
    })
    .await?;
    ensure!(
        recorded["status"]["path"] == restore.as_str(),
        "the upgrade snapshot {} is not the restore path {restore}",
        recorded["status"]["path"]
    );
    let recorded_name = recorded["metadata"]["name"]
        .as_str()
        .context("name")?
        .to_string();
    let suspended_log = pod_log(&op, &first_tms)?;
    eprintln!("operator snapshot {recorded_name}: {restore}");

    // 3. The snapshots outlive the StreamJob.
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
    for name in ["counting-manual", recorded_name.as_str()] {
        let s = snapshot(&op, name).with_context(|| format!("{name} went with its StreamJob"))?;
        ensure!(s["status"]["state"] == "COMPLETED", "{s}");
    }

    // 4. A new StreamJob starts from the recorded snapshot, with exactly its state.
    let from_snapshot = op.example("counting-basic.yaml")?.replace(
        "    upgradeMode: savepoint\n",
        &format!("    upgradeMode: savepoint\n    initialSavepointSnapshot: {recorded_name}\n"),
    );
    ensure!(
        from_snapshot.contains("initialSavepointSnapshot"),
        "manifest not changed"
    );
    op.apply(&from_snapshot)?;
    let sj = op.wait_running(JOB, WAIT).await?;
    ensure!(
        sj["status"]["restorePath"] == restore.as_str(),
        "restored from {} instead of {restore}",
        sj["status"]["restorePath"]
    );
    let new_tms = taskmanagers(&op)?;
    wait_printed(&op, &new_tms, 200).await?;
    let old = counts(&suspended_log);
    let new = counts(&pod_log(&op, &new_tms)?);
    let mut checked = 0;
    for (key, new_counts) in &new {
        let Some(last) = old.get(key).and_then(|c| c.iter().max()) else {
            continue;
        };
        ensure!(
            new_counts[0] == last + 1,
            "{key} continued at {}, the suspended job had counted {last}",
            new_counts[0]
        );
        checked += 1;
    }
    ensure!(checked > 0, "no key printed by both jobs");
    eprintln!("restored from snapshot {recorded_name}: {checked} keys continue exactly");

    // 5. Deleting the user's snapshot (disposeOnDelete) deletes the savepoint's files.
    op.kubectl(&[
        "delete",
        "streamjobsnapshot",
        "counting-manual",
        "--wait=true",
        "--timeout=120s",
    ])?;
    ensure!(
        objects(&op, &manual_path).await?.is_empty(),
        "the files of {manual_path} are still in MinIO after the snapshot was deleted"
    );
    let events = op.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=counting-manual",
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    ensure!(events.contains("SnapshotDisposed"), "events: {events}");
    // The operator-recorded snapshot (disposeOnDelete unset) keeps its files.
    ensure!(
        !objects(&op, &restore).await?.is_empty(),
        "{restore} vanished"
    );

    op.cluster.stop()?;
    Ok(())
}

/// The first document of `examples/sessions/session-jobs.yaml`: the StreamSessionJob
/// `counts-a`, verbatim (the second job is left out to spare the loaded machine).
fn counts_a() -> anyhow::Result<String> {
    let all = std::fs::read_to_string(repo().join("examples/sessions/session-jobs.yaml"))?;
    let doc = all
        .split("\n---\n")
        .find(|d| d.contains("name: counts-a"))
        .context("counts-a in session-jobs.yaml")?;
    Ok(format!("{}\n", doc.trim_end()))
}

async fn wait_session_job(
    op: &OperatorCluster,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let get = || -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&op.kubectl(&[
            "get",
            "streamsessionjob",
            name,
            "-o",
            "json",
        ])?)?)
    };
    poll_until(what, WAIT, POLL, || async {
        let o = get().ok()?;
        check(&o["status"]).then_some(o)
    })
    .await
    .with_context(|| {
        format!(
            "{name}: {:?}\noperator log:\n{}",
            get().map(|o| o["status"].clone()),
            op.operator_logs()
        )
    })
}

fn session_running(s: &Value) -> bool {
    s["lifecycleState"] == "Running" && s["jobState"] == "RUNNING"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_job_snapshots_by_nonce_and_by_hand_record_stops_and_start_a_new_job()
-> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-session-snapshots")?;
    let cluster = std::fs::read_to_string(repo().join("examples/sessions/session-cluster.yaml"))?;
    op.apply(&cluster)?;
    op.apply(&counts_a()?)?;
    let running = wait_session_job(&op, "counts-a", "counts-a Running", session_running).await?;
    let job_id = running["status"]["jobId"]
        .as_str()
        .context("job id")?
        .to_string();

    // 1. A savepoint nonce: the operator creates a snapshot, taken through the cluster's
    //    JobManager; the job keeps running.
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"job":{"savepointTriggerNonce":1}}}"#,
    )?;
    let prefix: String = job_id.chars().take(8).collect();
    let nonce_snapshot = format!("counts-a-savepoint-1-{prefix}");
    let by_nonce = wait_snapshot(&op, &nonce_snapshot, "COMPLETED").await?;
    let nonce_path = by_nonce["status"]["path"]
        .as_str()
        .context("a COMPLETED snapshot has a path")?
        .to_string();
    ensure!(
        by_nonce["spec"]["jobReference"]["kind"] == "StreamSessionJob",
        "{by_nonce}"
    );
    ensure!(by_nonce["status"]["triggerType"] == "manual", "{by_nonce}");
    ensure!(by_nonce["status"]["jobId"] == job_id.as_str(), "{by_nonce}");
    ensure!(
        nonce_path.starts_with("s3://fjord/savepoints/shared/"),
        "not in the cluster's savepoint directory: {nonce_path}"
    );
    ensure!(
        !objects(&op, &nonce_path).await?.is_empty(),
        "savepoint {nonce_path} has no objects in MinIO"
    );
    let ssj = wait_session_job(&op, "counts-a", "nonce recorded", |s| {
        s["lastSavepointTriggerNonce"] == 1 && s["lastTriggeredSnapshot"] == nonce_snapshot.as_str()
    })
    .await?;
    ensure!(
        session_running(&ssj["status"]) && ssj["status"]["jobId"] == job_id.as_str(),
        "the savepoint stopped or replaced the job: {}",
        ssj["status"]
    );
    eprintln!("nonce snapshot: {nonce_path}");

    // ... and a checkpoint nonce, a checkpoint snapshot.
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"job":{"checkpointTriggerNonce":1}}}"#,
    )?;
    let checkpoint =
        wait_snapshot(&op, &format!("counts-a-checkpoint-1-{prefix}"), "COMPLETED").await?;
    ensure!(
        checkpoint["status"]["checkpointId"].is_u64(),
        "{checkpoint}"
    );
    let checkpoint_path = checkpoint["status"]["path"].as_str().context("path")?;
    ensure!(checkpoint_path.contains(&job_id), "{checkpoint_path}");
    // The session job's status follows it, as a StreamJob's does.
    wait_session_job(&op, "counts-a", "status.manualCheckpoint COMPLETED", |s| {
        s["manualCheckpoint"]["state"] == "COMPLETED"
            && s["manualCheckpoint"]["path"] == checkpoint_path
            && s["manualCheckpoint"]["nonce"] == 1
    })
    .await?;
    eprintln!("nonce checkpoint: {checkpoint_path}");

    // 1 (b). Periodic savepoints (spec.savepoints.periodicInterval, at least 1m): one a minute
    //    after the job started, a `periodic` snapshot in the cluster's savepoint directory,
    //    recorded in status.lastSavepoint; then switched off again.
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"savepoints":{"periodicInterval":"1m"}}}"#,
    )?;
    let periodic = poll_until(
        "a COMPLETED periodic snapshot of counts-a",
        WAIT,
        POLL,
        || async {
            let list: Value = serde_json::from_str(
                &op.kubectl(&[
                    "get",
                    "streamjobsnapshots",
                    "-l",
                    "fjord.dev/streamsessionjob=counts-a",
                    "-o",
                    "json",
                ])
                .ok()?,
            )
            .ok()?;
            list["items"].as_array()?.iter().find_map(|s| {
                (s["status"]["triggerType"] == "periodic" && s["status"]["state"] == "COMPLETED")
                    .then(|| s.clone())
            })
        },
    )
    .await
    .with_context(|| format!("operator log:\n{}", op.operator_logs()))?;
    let periodic_path = periodic["status"]["path"]
        .as_str()
        .context("path")?
        .to_string();
    ensure!(
        periodic["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("counts-a-periodic-") && n.ends_with(&prefix)),
        "{periodic}"
    );
    ensure!(
        periodic_path.starts_with("s3://fjord/savepoints/shared/"),
        "not in the cluster's savepoint directory: {periodic_path}"
    );
    let ssj = wait_session_job(&op, "counts-a", "periodic savepoint recorded", |s| {
        s["lastSavepoint"] == periodic_path.as_str()
            && s["lastPeriodicSavepointAttempt"].is_string()
            && s["pendingSavepoint"].is_null()
    })
    .await?;
    ensure!(
        session_running(&ssj["status"]) && ssj["status"]["jobId"] == job_id.as_str(),
        "the periodic savepoint stopped or replaced the job: {}",
        ssj["status"]
    );
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"savepoints":null}}"#,
    )?;
    eprintln!("periodic snapshot: {periodic_path}");

    // 2. A user's snapshot of the session job, applied verbatim; deleted, its files go.
    let manifest = std::fs::read_to_string(repo().join("examples/sessions/session-snapshot.yaml"))?;
    op.apply(&manifest)?;
    let manual = wait_snapshot(&op, "counts-a-manual", "COMPLETED").await?;
    let manual_path = manual["status"]["path"]
        .as_str()
        .context("path")?
        .to_string();
    ensure!(
        !objects(&op, &manual_path).await?.is_empty(),
        "savepoint {manual_path} has no objects in MinIO"
    );
    op.kubectl(&[
        "delete",
        "streamjobsnapshot",
        "counts-a-manual",
        "--wait=true",
        "--timeout=120s",
    ])?;
    ensure!(
        objects(&op, &manual_path).await?.is_empty(),
        "the files of {manual_path} are still in MinIO after the snapshot was deleted"
    );
    ensure!(
        !objects(&op, &nonce_path).await?.is_empty(),
        "disposing of one savepoint removed another ({nonce_path})"
    );
    eprintln!("user snapshot {manual_path} taken and disposed of");

    // 3. Suspending stops the job with a savepoint, recorded as an upgrade snapshot.
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"job":{"state":"suspended"}}}"#,
    )?;
    let suspended = wait_session_job(&op, "counts-a", "counts-a Suspended", |s| {
        s["lifecycleState"] == "Suspended"
    })
    .await?;
    let last = suspended["status"]["lastSavepoint"]
        .as_str()
        .context("a savepoint-mode suspend leaves a savepoint")?
        .to_string();
    let list: Value = serde_json::from_str(&op.kubectl(&[
        "get",
        "streamjobsnapshots",
        "-l",
        "fjord.dev/streamsessionjob=counts-a",
        "-o",
        "json",
    ])?)?;
    let recorded = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["status"]["triggerType"] == "upgrade")
        .with_context(|| format!("no upgrade snapshot of counts-a: {list}"))?;
    ensure!(
        recorded["status"]["state"] == "COMPLETED" && recorded["status"]["path"] == last.as_str(),
        "the upgrade snapshot is not the suspend's savepoint {last}: {recorded}"
    );
    eprintln!(
        "suspend recorded as {}: {last}",
        recorded["metadata"]["name"]
    );

    // 4. A new session job starts from the nonce's snapshot.
    let from_snapshot = counts_a()?
        .replace("name: counts-a", "name: counts-c")
        .replace(
            "    upgradeMode: savepoint\n",
            &format!(
                "    upgradeMode: savepoint\n    initialSavepointSnapshot: {nonce_snapshot}\n    savepointTriggerNonce: 7\n"
            ),
        );
    ensure!(
        from_snapshot.contains("initialSavepointSnapshot"),
        "manifest not changed: {from_snapshot}"
    );
    op.apply(&from_snapshot)?;
    let c = wait_session_job(&op, "counts-c", "counts-c Running", session_running).await?;
    ensure!(
        c["status"]["restoredFrom"] == nonce_path.as_str(),
        "counts-c restored from {} instead of {nonce_path}",
        c["status"]["restoredFrom"]
    );
    ensure!(
        c["status"]["lastSavepointTriggerNonce"] == 7,
        "the nonce counts-c was created with is not recorded as seen: {}",
        c["status"]
    );
    eprintln!("counts-c started from {nonce_path}");

    // A user's snapshot of counts-c, to dispose of after counts-c is gone (step 5).
    let keep = manifest.replace("counts-a", "counts-c");
    op.apply(&keep)?;
    let kept = wait_snapshot(&op, "counts-c-manual", "COMPLETED").await?;
    ensure!(kept["status"]["clusterName"] == CLUSTER, "{kept}");
    let kept_path = kept["status"]["path"].as_str().context("path")?.to_string();

    // 5. Deleted with savepointOnDelete, its last savepoint is recorded as a delete snapshot,
    //    which outlives it.
    op.patch_kind(
        "streamsessionjob",
        "counts-c",
        r#"{"spec":{"savepointOnDelete":true}}"#,
    )?;
    op.kubectl(&[
        "delete",
        "streamsessionjob",
        "counts-c",
        "--wait=true",
        "--timeout=120s",
    ])?;
    let list: Value = serde_json::from_str(&op.kubectl(&[
        "get",
        "streamjobsnapshots",
        "-l",
        "fjord.dev/streamsessionjob=counts-c",
        "-o",
        "json",
    ])?)?;
    let deleted = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["status"]["triggerType"] == "delete")
        .with_context(|| format!("no delete snapshot of counts-c: {list}"))?;
    let delete_path = deleted["status"]["path"]
        .as_str()
        .with_context(|| format!("the delete snapshot has no path: {deleted}"))?;
    ensure!(deleted["status"]["state"] == "COMPLETED", "{deleted}");
    ensure!(
        !objects(&op, delete_path).await?.is_empty(),
        "delete savepoint {delete_path} has no objects in MinIO"
    );
    eprintln!(
        "delete recorded as {}: {delete_path}",
        deleted["metadata"]["name"]
    );
    // Many passes of counts-c later: the nonce it was created with took no savepoint.
    let manual: Vec<&Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"]["triggerType"] == "manual")
        .collect();
    ensure!(
        manual.is_empty(),
        "the nonce counts-c was created with took a snapshot: {manual:?}"
    );

    // 6. With counts-c gone, its snapshot's files are still disposed of, through the
    //    StreamCluster recorded in the snapshot's status.
    ensure!(
        !objects(&op, &kept_path).await?.is_empty(),
        "savepoint {kept_path} has no objects in MinIO"
    );
    op.kubectl(&[
        "delete",
        "streamjobsnapshot",
        "counts-c-manual",
        "--wait=true",
        "--timeout=120s",
    ])?;
    ensure!(
        objects(&op, &kept_path).await?.is_empty(),
        "the files of {kept_path} are still in MinIO after the snapshot of the deleted counts-c was deleted"
    );
    eprintln!("snapshot of the deleted counts-c disposed of: {kept_path}");

    op.cluster.stop()?;
    Ok(())
}
