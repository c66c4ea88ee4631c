//! Session clusters end to end, on the real control plane and MinIO, each step from
//! `kubectl apply` / `patch` / `delete` of the examples in `examples/sessions/` applied
//! verbatim:
//!
//! 1. `session-cluster.yaml`: a StreamCluster becomes a session JobManager and two
//!    TaskManagers; its status reports them Ready with 4 free slots;
//! 2. `session-jobs.yaml`: two StreamSessionJobs run at once on the shared JobManager, each
//!    RUNNING with its own job ID; the cluster reports the slots they hold;
//! 3. a `savepoint` upgrade of one (changed args): stopped with a savepoint, a new job (new ID)
//!    restored from it, while the other job keeps running untouched;
//! 4. suspend and resume the same job through its savepoint; over both restores every key's
//!    count continues where it stopped (read from the TaskManagers' logs: no count repeated,
//!    none skipped);
//! 5. deleting the other StreamSessionJob cancels only its job;
//! 5. (b) `session-sql-job.yaml`: a SQL script (`spec.job.sql`) runs as a session job beside
//!    counts-a, prints ids 1..1000 with their squares once each and finishes; the same script
//!    with a misspelt column is never submitted (Failed, line and column);
//! 6. the cluster's JobManager Pod deleted: its Deployment starts another, which knows no job;
//!    the operator submits counts-a again under the same job ID and the new JobManager resumes
//!    it from its latest checkpoint.
//!
//! Along the way, as for StreamJobs: the session job's status carries its restarts, start time
//! and latest checkpoint (of the job submitted last), and every lifecycle step and problem is
//! an Event (Submitted, Running, UpgradeStarted, SavepointCompleted, Suspending, Suspended,
//! InvalidSql, JobLost).
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_sessions -- --nocapture`.

mod operator_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord_client::api::JobState;
use fjord_e2e::poll_until;
use operator_support::{OperatorCluster, POLL, add_counts, repo, secs};
use serde_json::Value;

const CLUSTER: &str = "shared";
const WAIT: Duration = Duration::from_secs(180);

fn example(file: &str) -> anyhow::Result<String> {
    let path = repo().join("examples/sessions").join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn get(op: &OperatorCluster, kind: &str, name: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(
        &op.kubectl(&["get", kind, name, "-o", "json"])?,
    )?)
}

/// Waits until the status of `kind/name` satisfies `check`; returns the object.
async fn wait_status(
    op: &OperatorCluster,
    kind: &str,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let result = poll_until(what, WAIT, POLL, || async {
        let object = get(op, kind, name).ok()?;
        check(&object["status"]).then_some(object)
    })
    .await;
    match result {
        Ok(object) => Ok(object),
        Err(e) => bail!(
            "{e}\nlast status: {}\npods:\n{}\nJobManager log:\n{}\noperator log:\n{}",
            get(op, kind, name)
                .map(|o| o["status"].to_string())
                .unwrap_or_else(|e| e.to_string()),
            op.kubectl(&["get", "pods", "-o", "wide"])
                .unwrap_or_default(),
            op.kubectl(&[
                "logs",
                &format!("deployment/{CLUSTER}-jobmanager"),
                "--tail=30"
            ])
            .unwrap_or_default(),
            op.operator_logs()
        ),
    }
}

async fn wait_running(op: &OperatorCluster, name: &str) -> anyhow::Result<Value> {
    wait_status(
        op,
        "streamsessionjob",
        name,
        &format!("{name} Running"),
        |s| s["lifecycleState"] == "Running" && s["jobState"] == "RUNNING",
    )
    .await
}

/// Per key, every count the counting job printed (`(key-3,17)` lines) in the TaskManagers'
/// logs; the windowed job's `(key,window,count)` lines do not parse and are skipped.
fn counts(op: &OperatorCluster) -> anyhow::Result<BTreeMap<String, Vec<u64>>> {
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for log in taskmanager_logs(op)? {
        add_counts(&log, &mut out);
    }
    Ok(out)
}

/// The logs of the cluster's TaskManager Pods.
fn taskmanager_logs(op: &OperatorCluster) -> anyhow::Result<Vec<String>> {
    let pods = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={CLUSTER},app.kubernetes.io/component=taskmanager"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])?;
    pods.split_whitespace()
        .map(|pod| {
            let path = op
                .cluster
                .run_dir()
                .join(format!("agent/logs/default_{pod}_fjord.log"));
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        })
        .collect()
}

/// Waits until an Event about `name` has `reason` and a note containing every one of
/// `parts`; returns the note. Events are published right after the status that caused them.
async fn wait_event(
    op: &OperatorCluster,
    name: &str,
    reason: &str,
    parts: &[&str],
) -> anyhow::Result<String> {
    poll_until(
        &format!("a {reason} Event about {name} with {parts:?}"),
        WAIT,
        POLL,
        || async {
            op.events(name).ok()?.into_iter().find_map(|(r, note)| {
                (r == reason && parts.iter().all(|p| note.contains(p))).then_some(note)
            })
        },
    )
    .await
    .with_context(|| format!("Events: {:?}", op.events(name).unwrap_or_default()))
}

fn job_id(job: &Value) -> String {
    job["status"]["jobId"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cluster_runs_several_jobs_and_upgrades_one_with_a_savepoint() -> anyhow::Result<()>
{
    let op = OperatorCluster::start("operator-sessions")?;

    // 1. The cluster: a session JobManager and two TaskManagers of two slots.
    let start = Instant::now();
    op.apply(&example("session-cluster.yaml")?)?;
    let cluster = wait_status(&op, "streamcluster", CLUSTER, "cluster Ready", |s| {
        s["lifecycleState"] == "Ready" && s["readyTaskManagers"] == 2 && s["freeSlots"] == 4
    })
    .await?;
    println!(
        "StreamCluster Ready in {:.1} s: {}",
        secs(start),
        cluster["status"]
    );
    let jm = op.jobmanager(CLUSTER)?;
    ensure!(jm.jobs().await?.jobs.is_empty(), "a session starts no job");

    // 2. Two session jobs at once on the shared JobManager.
    let start = Instant::now();
    op.apply(&example("session-jobs.yaml")?)?;
    let a = wait_running(&op, "counts-a").await?;
    let b = wait_running(&op, "windows-b").await?;
    println!("two session jobs RUNNING in {:.1} s", secs(start));
    let (a_id, b_id) = (job_id(&a), job_id(&b));
    ensure!(!a_id.is_empty() && a_id != b_id, "{a_id} / {b_id}");
    let listed = jm.jobs().await?.jobs;
    ensure!(
        listed
            .iter()
            .filter(|j| j.state == JobState::Running)
            .count()
            == 2,
        "{listed:?}"
    );
    wait_status(&op, "streamcluster", CLUSTER, "3 slots in use", |s| {
        s["freeSlots"] == 1 && s["runningJobs"] == 2
    })
    .await?;
    // Per-job figures and lifecycle Events, as a StreamJob has them.
    let figures = wait_status(
        &op,
        "streamsessionjob",
        "counts-a",
        "counts-a's restarts, start time and a checkpoint",
        |s| {
            s["jobRestarts"] == 0
                && s["jobStartTime"].is_string()
                && s["lastCheckpoint"]["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&a_id))
        },
    )
    .await?;
    println!("counts-a figures: {}", figures["status"]);
    wait_event(
        &op,
        "counts-a",
        "Submitted",
        &[&a_id, CLUSTER, "without state"],
    )
    .await?;
    wait_event(&op, "counts-a", "Running", &[&a_id]).await?;

    // 3. A savepoint upgrade of counts-a: a new job from the savepoint; windows-b untouched.
    let start = Instant::now();
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"job":{"args":["--keys","10","--rate","300"]}}}"#,
    )?;
    let upgraded = wait_status(
        &op,
        "streamsessionjob",
        "counts-a",
        "counts-a upgraded",
        |s| {
            s["lifecycleState"] == "Running"
                && s["jobState"] == "RUNNING"
                && s["jobId"].as_str().is_some_and(|id| id != a_id)
        },
    )
    .await?;
    println!("savepoint upgrade of counts-a in {:.1} s", secs(start));
    let savepoint = upgraded["status"]["lastSavepoint"]
        .as_str()
        .context("no savepoint recorded")?
        .to_string();
    ensure!(
        savepoint.starts_with("s3://fjord/savepoints/shared/"),
        "{savepoint}"
    );
    ensure!(
        upgraded["status"]["restoredFrom"] == savepoint.as_str(),
        "{}",
        upgraded["status"]
    );
    ensure!(jm.job(&a_id).await?.state == JobState::Finished);
    ensure!(jm.job(&b_id).await?.state == JobState::Running);
    let new_a = job_id(&upgraded);
    wait_event(&op, "counts-a", "UpgradeStarted", &["savepoint", &a_id]).await?;
    wait_event(&op, "counts-a", "SavepointCompleted", &[&savepoint]).await?;
    wait_event(
        &op,
        "counts-a",
        "Submitted",
        &[&new_a, &format!("restoring from {savepoint}")],
    )
    .await?;
    // The figures follow the new job: its own checkpoints, restarts counted from 0.
    wait_status(
        &op,
        "streamsessionjob",
        "counts-a",
        "the upgraded job's checkpoint",
        |s| {
            s["jobRestarts"] == 0
                && s["lastCheckpoint"]["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(&new_a))
        },
    )
    .await?;
    ensure!(job_id(&get(&op, "streamsessionjob", "windows-b")?) == b_id);

    // 4. Suspend and resume counts-a: stopped with a savepoint, then a new job from it.
    let running_id = job_id(&upgraded);
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"job":{"state":"suspended"}}}"#,
    )?;
    let suspended = wait_status(&op, "streamsessionjob", "counts-a", "suspended", |s| {
        s["lifecycleState"] == "Suspended"
    })
    .await?;
    let suspend_savepoint = suspended["status"]["lastSavepoint"]
        .as_str()
        .unwrap_or_default();
    ensure!(suspend_savepoint != savepoint, "{}", suspended["status"]);
    wait_event(&op, "counts-a", "Suspending", &["savepoint"]).await?;
    wait_event(&op, "counts-a", "Suspended", &[suspend_savepoint]).await?;
    ensure!(jm.job(&running_id).await?.state.is_terminal());
    op.patch_kind(
        "streamsessionjob",
        "counts-a",
        r#"{"spec":{"job":{"state":"running"}}}"#,
    )?;
    let resumed = wait_status(&op, "streamsessionjob", "counts-a", "resumed", |s| {
        s["lifecycleState"] == "Running"
            && s["jobState"] == "RUNNING"
            && s["jobId"].as_str().is_some_and(|id| id != running_id)
    })
    .await?;
    ensure!(
        resumed["status"]["restoredFrom"] == suspend_savepoint,
        "{}",
        resumed["status"]
    );

    // Over the upgrade and the suspend/resume, each key's counts go 1, 2, 3, ... with no
    // count printed twice (a job that lost its state would start again at 1) and none skipped.
    let printed_before: usize = counts(&op)?.values().map(Vec::len).sum();
    poll_until("the resumed job printing counts", WAIT, POLL, || async {
        let now: usize = counts(&op).ok()?.values().map(Vec::len).sum();
        (now >= printed_before + 50).then_some(())
    })
    .await?;
    let all = counts(&op)?;
    ensure!(all.len() == 10, "keys: {:?}", all.keys());
    for (key, values) in &all {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let expected: Vec<u64> = (1..=sorted.len() as u64).collect();
        ensure!(
            sorted == expected,
            "{key}: counts not continued across the restores: {values:?}"
        );
    }
    println!(
        "counts continued over 2 restores: {} counts of 10 keys",
        all.values().map(Vec::len).sum::<usize>()
    );

    // 5. Deleting windows-b cancels its job only.
    op.kubectl(&["delete", "streamsessionjob", "windows-b", "--timeout=120s"])?;
    ensure!(jm.job(&b_id).await?.state == JobState::Canceled);
    ensure!(jm.job(&job_id(&resumed)).await?.state == JobState::Running);
    wait_status(
        &op,
        "streamcluster",
        CLUSTER,
        "windows-b's slots free",
        |s| s["freeSlots"] == 3 && s["runningJobs"] == 1,
    )
    .await?;

    // 5b. A SQL script as a session job (`session-sql-job.yaml`): the built-in `sql` job runs
    //     it beside counts-a and finishes; every id is printed once with its square. A
    //     misspelt column is never submitted: Failed, naming line and column.
    let sql_job = example("session-sql-job.yaml")?;
    op.apply(&sql_job)?;
    wait_status(
        &op,
        "streamsessionjob",
        "squares",
        "squares Finished",
        |s| s["lifecycleState"] == "Finished" && s["jobState"] == "FINISHED",
    )
    .await?;
    let mut squares: Vec<(u64, u64)> = Vec::new();
    for log in taskmanager_logs(&op)? {
        for line in log.lines() {
            let Some(row) = line
                .split_once("squares:")
                .and_then(|(_, rest)| rest.split_once("> +I["))
                .and_then(|(_, rest)| rest.strip_suffix(']'))
            else {
                continue;
            };
            let (id, square) = row.split_once(", ").context(row.to_string())?;
            squares.push((id.parse()?, square.parse()?));
        }
    }
    squares.sort_unstable();
    let want: Vec<(u64, u64)> = (1..=1000).map(|i| (i, i * i)).collect();
    ensure!(
        squares == want,
        "{} rows printed: {:?}…",
        squares.len(),
        &squares[..squares.len().min(5)]
    );
    op.kubectl(&["delete", "streamsessionjob", "squares", "--timeout=120s"])?;
    op.apply(&sql_job.replace("id * id FROM", "id * idd FROM"))?;
    let failed = wait_status(&op, "streamsessionjob", "squares", "squares Failed", |s| {
        s["lifecycleState"] == "Failed"
    })
    .await?;
    let error = failed["status"]["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("spec.job.sql") && error.contains("line ") && error.contains("idd"),
        "{error}"
    );
    ensure!(
        failed["status"]["jobId"].is_null(),
        "nothing submitted: {failed}"
    );
    wait_event(&op, "squares", "InvalidSql", &["idd", "line "]).await?;
    op.kubectl(&["delete", "streamsessionjob", "squares", "--timeout=120s"])?;
    println!("squares: a SQL session job printed ids 1..1000 once each; a bad script: {error}");

    // 6. A new JobManager Pod: the job is submitted again under its ID and resumes from its
    //    latest checkpoint.
    let resumed_id = job_id(&resumed);
    let old_pod = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={CLUSTER},app.kubernetes.io/component=jobmanager"),
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ])?;
    let start = Instant::now();
    op.kubectl(&["delete", "pod", old_pod.trim(), "--wait=false"])?;
    let new_client = poll_until("a new JobManager running counts-a", WAIT, POLL, || async {
        // The new Pod's address (the old one may still be terminating).
        let pods = op
            .kubectl(&[
                "get",
                "pods",
                "-l",
                &format!("fjord.dev/streamjob={CLUSTER},app.kubernetes.io/component=jobmanager"),
                "--field-selector=status.phase=Running",
                "-o",
                r#"jsonpath={range .items[*]}{.metadata.name} {.status.podIP}{"\n"}{end}"#,
            ])
            .ok()?;
        let ip = pods
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(name, ip)| *name != old_pod.trim() && !ip.is_empty())?
            .1
            .to_string();
        let client = fjord_client::Client::new(&format!("http://{ip}:8081/v1")).ok()?;
        let details = client.job(&resumed_id).await.ok()?;
        (details.state == JobState::Running).then_some(client)
    })
    .await
    .with_context(|| op.operator_logs())?;
    println!(
        "counts-a running again on a new JobManager in {:.1} s",
        secs(start)
    );
    ensure!(new_client.jobs().await?.jobs.len() == 1);
    let new_pod = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={CLUSTER},app.kubernetes.io/component=jobmanager"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])?;
    let new_pod = new_pod
        .split_whitespace()
        .find(|p| *p != old_pod.trim())
        .context("no new JobManager Pod")?;
    let jm_log = op.kubectl(&["logs", new_pod])?;
    ensure!(
        jm_log.contains(&format!(
            "Resuming job {resumed_id} from its latest completed checkpoint"
        )),
        "{jm_log}"
    );
    wait_running(&op, "counts-a").await?;
    ensure!(job_id(&get(&op, "streamsessionjob", "counts-a")?) == resumed_id);
    wait_event(&op, "counts-a", "JobLost", &[&resumed_id]).await?;
    op.cluster.stop()?;
    Ok(())
}
