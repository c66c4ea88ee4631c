//! Multi-process end-to-end tests of the distributed runtime: a `fjord jobmanager --scheduler
//! taskmanagers` and `fjord taskmanager` processes on loopback, checkpoints in a `file://`
//! temporary directory, the built-in `windowed-counts` job writing through the exactly-once
//! file sink. No Kubernetes and no MinIO.
//!
//! The scenarios kill processes the way a machine failure does (SIGKILL) or the way Kubernetes
//! stops a Pod (SIGTERM), and check what must survive: the committed output holds every
//! window's count exactly once, a restarted JobManager resumes from the latest completed
//! checkpoint, too few slots fail with the documented exit code, and a stopped JobManager
//! cancels the tasks on its TaskManagers while they stay up for the next one.
//!
//! The `fjord` binary must be built first, into this test's target directory:
//! `cargo build -p fjord-worker --features s3 --bins` (or point `FJORD_E2E_WORKER_BIN` at a
//! private copy, safer when other builds write into a shared target directory). Every child
//! process is killed when its handle drops, also while a test panics; every wait is bounded;
//! nothing asserts on timing. Each process's stdout and stderr go to `<tempdir>/<name>.log`,
//! printed when an assertion fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use fjord::sinks::ExactlyOnceFileSink;
use fjord::storage::StorageOptions;
use fjord_e2e::poll_until;

mod process_support;
use process_support::{
    JobManager, Proc, STARTUP, cluster_jm_args, file_url, task_manager, task_manager_with,
    with_args,
};

/// Bound on waiting for a whole job (seconds of input plus a restart) on a loaded machine.
const JOB: Duration = Duration::from_secs(240);

/// Keys and window of the `windowed-counts` runs.
const KEYS: u64 = 5;
const WINDOW_MS: u64 = 1000;

/// The flags every JobManager of these tests gets: TaskManagers scheduler, loopback, free REST
/// port, p = 2, checkpoints every 300 ms into `storage`, heartbeat timeout 2 s.
fn jm_args(rpc_port: u16, storage: &Path, extra: &[&str], job: &[String]) -> Vec<String> {
    let mut args = with_args(cluster_jm_args(rpc_port, 2, storage, 300), extra);
    args.extend(job.iter().cloned());
    args
}

/// `windowed-counts` with `count` records at `rate` per second written to `out`.
fn job(count: u64, rate: u64, out: &Path) -> Vec<String> {
    let mut args = vec![
        "windowed-counts".to_string(),
        "--count".into(),
        count.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--keys".into(),
        KEYS.to_string(),
        "--window-ms".into(),
        WINDOW_MS.to_string(),
    ];
    args.extend(["--output".to_string(), file_url(out)]);
    args
}

/// What `windowed-counts --count n --keys KEYS --window-ms WINDOW_MS` must commit, sorted.
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

/// The committed output under `out`, sorted (read off the async runtime: the reader blocks on
/// its own).
async fn committed(out: &Path) -> anyhow::Result<Vec<String>> {
    let url = file_url(out);
    let mut lines = tokio::task::spawn_blocking(move || {
        ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default())
    })
    .await??;
    lines.sort();
    Ok(lines)
}

/// Asserts the committed output is exactly the expected multiset; on a mismatch names the
/// missing and the duplicated or wrong lines (not the whole output).
async fn assert_exactly_once(out: &Path, count: u64, logs: &[&Proc]) -> anyhow::Result<()> {
    let got = committed(out).await?;
    let want = expected(count);
    if got != want {
        let mut missing = want.clone();
        let mut extra = Vec::new();
        for line in &got {
            match missing.iter().position(|l| l == line) {
                Some(at) => {
                    missing.remove(at);
                }
                None => extra.push(line.clone()),
            }
        }
        let tails: Vec<String> = logs.iter().map(|p| p.tail()).collect();
        bail!(
            "committed output is not exactly once: {} lines, {} expected; missing {:?}; \
             duplicated or wrong {:?}\n{}",
            got.len(),
            want.len(),
            &missing[..missing.len().min(10)],
            &extra[..extra.len().min(10)],
            tails.join("\n")
        );
    }
    Ok(())
}

/// A TaskManager killed with SIGKILL mid-job is detected by the heartbeat timeout, the attempt
/// restarts from the latest completed checkpoint on the surviving TaskManager plus a new one,
/// and the committed output still holds every count exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_task_manager_is_replaced_and_output_stays_exactly_once() -> anyhow::Result<()> {
    killed_task_manager_is_replaced(Backend::Heap).await
}

/// The same with the RocksDB state backend on every TaskManager (incremental checkpoints; the
/// restarted attempt downloads its instances).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_a_killed_task_manager_is_replaced_and_output_stays_exactly_once()
-> anyhow::Result<()> {
    killed_task_manager_is_replaced(Backend::RocksDb).await
}

/// The keyed state backend of the TaskManagers of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Heap,
    /// Needs the `fjord` binary built with `--features s3,rocksdb`.
    RocksDb,
}

/// A TaskManager with one slot and the state backend `backend` (RocksDB in `<dir>/<id>-state`,
/// chosen as a Flink user chooses it: `state.backend.type` in the configuration file, which a
/// StreamJob's `spec.configuration` becomes).
fn tm(backend: Backend, id: &str, dir: &Path, jm_rpc: &str) -> anyhow::Result<Proc> {
    match backend {
        Backend::Heap => task_manager(id, dir, jm_rpc, 1),
        Backend::RocksDb => {
            let state = dir.join(format!("{id}-state"));
            let config = dir.join(format!("{id}-conf.yaml"));
            std::fs::write(
                &config,
                format!(
                    "state.backend.type: rocksdb\nstate.backend.rocksdb.localdir: {}\nstate.backend.rocksdb.memory.fixed-per-instance: 64mb\n",
                    state.display()
                ),
            )?;
            let config = config.display().to_string();
            task_manager_with(id, dir, jm_rpc, 1, &[("FJORD_CONFIG", config.as_str())])
        }
    }
}

async fn killed_task_manager_is_replaced(backend: Backend) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    // ~10 s of input.
    let count = 50_000;
    let mut jm = JobManager::start(
        "jobmanager",
        dir.path(),
        jm_args(
            0,
            &chk,
            &["--exit-on-finish", "--wait-for-slots", "60s"],
            &job(count, 5_000, &out),
        ),
    )
    .await?;
    let tm1 = tm(backend, "tm1", dir.path(), &jm.rpc)?;
    let mut tm2 = tm(backend, "tm2", dir.path(), &jm.rpc)?;
    let job_id = jm.job_id().await?;
    let checkpoint = jm.first_checkpoint(&job_id).await?;
    eprintln!("checkpoint {checkpoint} completed ({backend:?}); killing tm2");

    tm2.sigkill();
    let tm3 = tm(backend, "tm3", dir.path(), &jm.rpc)?;

    // Watch the restart counter while the job runs (the REST API goes away with the process).
    let mut restarts = 0;
    let client = jm.client.clone();
    let deadline = std::time::Instant::now() + JOB;
    let code = loop {
        if let Some(status) = jm.proc.exited() {
            break status.code();
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "the job did not end within {JOB:?}\n{}",
            jm.proc.tail()
        );
        if let Ok(details) = client.job(&job_id).await {
            restarts = restarts.max(details.restarts);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tails = || [&jm.proc, &tm1, &tm2, &tm3].map(Proc::tail).join("\n");
    ensure!(
        code == Some(0),
        "JobManager exit code {code:?}\n{}",
        tails()
    );
    let log = jm.proc.log();
    eprintln!("restarts seen through the REST API: {restarts}");
    // The survivor tm1 loses its data connections to tm2 at once and its task fails first;
    // the cause reported must still be the TaskManager that was killed.
    let cause = log
        .lines()
        .find(|l| l.contains("job failed; restarting"))
        .unwrap_or_default();
    eprintln!("restart cause: {cause}");
    ensure!(
        cause.contains("TaskManager 'tm2' was lost"),
        "the restart blames the killed tm2, not the survivor: {cause}\n{}",
        tails()
    );
    ensure!(
        restarts >= 1 || log.contains("restarting"),
        "the job did not restart after tm2 was killed (restarts {restarts})\n{}",
        tails()
    );
    ensure!(
        tm3.log().contains("tasks deployed"),
        "the restarted attempt used the new TaskManager tm3\n{}",
        tails()
    );
    assert_exactly_once(&out, count, &[&jm.proc, &tm1, &tm3]).await?;
    if backend == Backend::RocksDb {
        ensure!(
            dir.path().join("tm1-state").is_dir(),
            "tm1 kept its keyed state in RocksDB (is the fjord binary built with --features rocksdb?)"
        );
    }
    Ok(())
}

/// A JobManager killed with SIGKILL mid-job is replaced by one with the same job ID and RPC
/// port: the TaskManagers register with it (their old tasks are cancelled), it resumes from the
/// latest completed checkpoint, and the output is exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_job_manager_resumes_from_the_latest_checkpoint() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let count = 40_000;
    let job_id = "0123456789abcdef0123456789abcdef";
    let extra = [
        "--exit-on-finish",
        "--wait-for-slots",
        "60s",
        "--job-id",
        job_id,
    ];
    let mut jm1 = JobManager::start(
        "jobmanager-1",
        dir.path(),
        jm_args(0, &chk, &extra, &job(count, 5_000, &out)),
    )
    .await?;
    let rpc_port = jm1.rpc_port()?;
    let mut tm1 = task_manager("tm1", dir.path(), &jm1.rpc, 1)?;
    let mut tm2 = task_manager("tm2", dir.path(), &jm1.rpc, 1)?;
    ensure!(jm1.job_id().await? == job_id, "the configured job ID");
    jm1.first_checkpoint(job_id).await?;
    ensure!(
        !jm1.proc.log().contains("Resuming job"),
        "a fresh job does not resume\n{}",
        jm1.proc.tail()
    );
    jm1.proc.sigkill();

    let mut jm2 = JobManager::start(
        "jobmanager-2",
        dir.path(),
        jm_args(rpc_port, &chk, &extra, &job(count, 5_000, &out)),
    )
    .await?;
    let resumed = jm2
        .proc
        .wait_for_line(
            &format!("Resuming job {job_id} from its latest completed checkpoint "),
            STARTUP,
        )
        .await?;
    eprintln!("jobmanager-2 resumes from {resumed}");
    ensure!(
        resumed.contains(&format!("/{job_id}/")),
        "the checkpoint is the job's own: {resumed}"
    );
    for tm in [&mut tm1, &mut tm2] {
        tm.wait_for_line("cancelling tasks of an older JobManager", STARTUP)
            .await?;
    }
    let code = jm2.proc.wait_exit(JOB).await?;
    let tails = || {
        [&jm1.proc, &jm2.proc, &tm1, &tm2]
            .map(Proc::tail)
            .join("\n")
    };
    ensure!(code == 0, "jobmanager-2 exit code {code}\n{}", tails());
    assert_exactly_once(&out, count, &[&jm1.proc, &jm2.proc, &tm1, &tm2]).await?;
    Ok(())
}

/// A job needing 2 slots while TaskManagers offer only 1 fails after `--wait-for-slots` with
/// the documented exit code 4 and a message that says what is missing and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_slots_fail_after_wait_for_slots_with_a_clear_message() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let mut jm = JobManager::start(
        "jobmanager",
        dir.path(),
        jm_args(
            0,
            &chk,
            &["--exit-on-finish", "--wait-for-slots", "3s"],
            &job(1_000, 1_000, &out),
        ),
    )
    .await?;
    let mut tm1 = task_manager("tm1", dir.path(), &jm.rpc, 1)?;
    tm1.wait_for_line("registered with the JobManager", STARTUP)
        .await?;
    let code = jm.proc.wait_exit(STARTUP).await?;
    let log = jm.proc.log();
    ensure!(
        code == 4,
        "exit code {code} (4 = NO_SLOTS)\n{}",
        jm.proc.tail()
    );
    ensure!(
        log.contains("needs 2 task slots")
            && log.contains("offer 1")
            && log.contains("start more TaskManagers"),
        "the message names the slots and the fix\n{}",
        jm.proc.tail()
    );
    ensure!(tm1.exited().is_none(), "the TaskManager keeps running");
    Ok(())
}

/// Two clusters side by side, as while an upgrade's new cluster starts beside the old one's
/// terminating Pods: a TaskManager of cluster `old` is refused by the JobManager of cluster
/// `new` (it keeps running and retrying, the JobManager lists only its own TaskManager), and
/// registers once a JobManager of its own cluster listens at that address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_manager_of_another_cluster_is_refused_until_its_own_job_manager_answers()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let jm_of = |cluster: &'static str, rpc_port: u16| {
        jm_args(
            rpc_port,
            &chk,
            &["--cluster-id", cluster, "--wait-for-slots", "60s"],
            &job(1_000_000, 1_000, &out),
        )
    };
    let mut new_jm = JobManager::start("jobmanager-new", dir.path(), jm_of("new", 0)).await?;
    let mut old_tm = task_manager_with(
        "tm-old",
        dir.path(),
        &new_jm.rpc,
        2,
        &[("FJORD_CLUSTER_ID", "old")],
    )?;
    old_tm
        .wait_for_line("belongs to cluster 'old'", STARTUP)
        .await?;
    let mut new_tm = task_manager_with(
        "tm-new",
        dir.path(),
        &new_jm.rpc,
        2,
        &[("FJORD_CLUSTER_ID", "new")],
    )?;
    new_tm
        .wait_for_line("registered with the JobManager", STARTUP)
        .await?;
    let listed: Vec<String> = new_jm
        .client
        .task_managers()
        .await?
        .task_managers
        .into_iter()
        .map(|t| t.id)
        .collect();
    ensure!(
        listed == ["tm-new"],
        "only the TaskManager of cluster 'new' is registered: {listed:?}"
    );
    ensure!(
        old_tm.count("registered with the JobManager") == 0 && old_tm.exited().is_none(),
        "the old TaskManager keeps trying, unregistered\n{}",
        old_tm.tail()
    );
    // Its own cluster's JobManager comes at the same address: it registers there.
    let rpc_port = new_jm.rpc_port()?;
    new_jm.proc.sigkill();
    new_tm.sigkill();
    let old_jm = JobManager::start("jobmanager-old", dir.path(), jm_of("old", rpc_port)).await?;
    old_tm
        .wait_for_line("registered with the JobManager", STARTUP)
        .await?;
    let listed = old_jm.client.task_managers().await?.task_managers;
    ensure!(
        listed.iter().any(|t| t.id == "tm-old"),
        "the old TaskManager joined its own cluster: {:?}",
        listed.iter().map(|t| &t.id).collect::<Vec<_>>()
    );
    Ok(())
}

/// Starts TaskManagers `tm1` and `tm2` (one slot each) for `jm`, and waits until its job
/// completed a checkpoint and both run their tasks; returns them and the job's ID.
async fn two_task_managers_running(
    jm: &mut JobManager,
    dir: &Path,
) -> anyhow::Result<([Proc; 2], String)> {
    let mut tms = [
        task_manager("tm1", dir, &jm.rpc, 1)?,
        task_manager("tm2", dir, &jm.rpc, 1)?,
    ];
    let job_id = jm.job_id().await?;
    jm.first_checkpoint(&job_id).await?;
    for tm in &mut tms {
        tm.wait_for_line("tasks deployed", STARTUP).await?;
    }
    Ok((tms, job_id))
}

/// How many checkpoint directories (`chk-N`) job `job_id` has under the storage `chk`.
fn checkpoints_kept(chk: &Path, job_id: &str) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(chk.join(job_id))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("chk-"))
        .count())
}

/// SIGTERM on the JobManager while tasks run on TaskManagers: it suspends the job (its
/// checkpoints stay), its TaskManagers' tasks end cancelled, it exits with 130, and the TaskManagers keep running
/// (registering again, for the next JobManager) until their own SIGTERM, which exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_job_manager_cancels_the_tasks_and_exits_130() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    // Runs far longer than the test: it must be the signal that ends it.
    let mut jm = JobManager::start(
        "jobmanager",
        dir.path(),
        jm_args(
            0,
            &chk,
            &["--exit-on-finish", "--wait-for-slots", "60s"],
            &job(100_000_000, 2_000, &out),
        ),
    )
    .await?;
    let (mut tms, job_id) = two_task_managers_running(&mut jm, dir.path()).await?;

    jm.proc.sigterm()?;
    let code = jm.proc.wait_exit(STARTUP).await?;
    let tails = |jm: &Proc, tms: &[Proc]| {
        std::iter::once(jm)
            .chain(tms)
            .map(Proc::tail)
            .collect::<Vec<_>>()
            .join("\n")
    };
    ensure!(
        code == 130,
        "JobManager exit code {code}\n{}",
        tails(&jm.proc, &tms)
    );
    ensure!(
        jm.proc.log().contains("is CANCELED"),
        "the JobManager reports the job cancelled\n{}",
        jm.proc.tail()
    );
    // A stopped JobManager is not the end of the job: its checkpoints stay for the next one.
    ensure!(
        checkpoints_kept(&chk, &job_id)? > 0,
        "SIGTERM deleted the job's checkpoints"
    );
    for tm in &mut tms {
        let ended = tm.wait_for_line("tasks ended", STARTUP).await?;
        ensure!(
            ended.contains("Canceled"),
            "{}'s tasks ended cancelled: {ended}",
            tm.name()
        );
        tm.wait_for_line("registering again", STARTUP).await?;
        ensure!(
            tm.exited().is_none(),
            "{} keeps running\n{}",
            tm.name(),
            tm.tail()
        );
    }
    for tm in &mut tms {
        tm.sigterm()?;
        let code = tm.wait_exit(STARTUP).await?;
        ensure!(
            code == 0,
            "{} exit code {code} after SIGTERM\n{}",
            tm.name(),
            tm.tail()
        );
    }
    Ok(())
}

/// SIGTERM on the JobManager right after one of its TaskManagers died (a node drain evicts a
/// JobManager and a TaskManager of the same node at once): the dead TaskManager cannot be asked
/// to cancel, and the JobManager does not wait for it to confirm (it would wait until the
/// cancellation's deadline or the TaskManager's heartbeat timeout) before it suspends the job,
/// keeps its checkpoints and exits with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_the_job_manager_does_not_wait_for_a_dead_task_manager() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let mut args = jm_args(
        0,
        &chk,
        &["--exit-on-finish", "--wait-for-slots", "60s"],
        &job(100_000_000, 2_000, &out),
    );
    // No heartbeat timeout within the test: only the refused cancel may end the wait.
    let at = args
        .iter()
        .position(|a| a == "--heartbeat-timeout-ms")
        .context("jm_args sets a heartbeat timeout")?;
    args[at + 1] = "600000".into();
    let mut jm =
        JobManager::start_with("jobmanager", dir.path(), args, &[("FJORD_LOG", "info")]).await?;
    let (mut tms, job_id) = two_task_managers_running(&mut jm, dir.path()).await?;
    tms[1].sigkill();
    jm.proc.sigterm()?;
    let code = jm.proc.wait_exit(STARTUP).await?;
    let log = jm.proc.log();
    ensure!(
        code == 130,
        "JobManager exit code {code}\n{}",
        jm.proc.tail()
    );
    ensure!(
        log.lines()
            .any(|l| l.contains("cancel failed") && l.contains("tm2")),
        "the cancel to the dead TaskManager failed\n{}",
        jm.proc.tail()
    );
    ensure!(
        !log.contains("did not confirm the cancellation in time"),
        "the JobManager waited for the dead TaskManager\n{}",
        jm.proc.tail()
    );
    ensure!(
        checkpoints_kept(&chk, &job_id)? > 0,
        "SIGTERM deleted the job's checkpoints"
    );
    // The live TaskManager's tasks ended: cancelled by the JobManager, or, when the dead
    // TaskManager's connections reached them first, failed on that: the server closed the
    // connection, or a write to it broke (races the full suite lost twice; either way the
    // JobManager did not wait for tm2).
    let ended = tms[0].wait_for_line("tasks ended", STARTUP).await?;
    ensure!(
        ended.contains("Canceled")
            || (ended.contains("state=Failed")
                && ended.contains("data exchange failed: connection to")
                && ended.contains(" lost: ")),
        "tm1's tasks ended neither cancelled nor on the dead TaskManager's connection: {ended}"
    );
    tms[0].sigterm()?;
    tms[0].wait_exit(STARTUP).await?;
    Ok(())
}

/// The JobManager's checkpoint coordinator logs at info, so the tests can time kills at the
/// end of input ("triggering the final checkpoint") and after the final checkpoint.
const COORDINATOR_LOG: (&str, &str) = ("FJORD_LOG", "warn,fjord::checkpoint=info");

/// The line the coordinator logs when every task finished its input.
const FINAL_TRIGGER: &str = "every task finished its input; triggering the final checkpoint";

/// Kills timed at the end of input: a TaskManager (SIGKILL) while the final checkpoint is
/// being taken, then the JobManager (SIGKILL) once that checkpoint completed but before it
/// recorded the job's result. Both restarts resume, nothing is written twice or lost — before
/// the final checkpoint (FLIP-147) each sink committed its last transaction on its own and a
/// process lost then made the job write that data again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_timed_at_the_end_of_input_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let count = 8_000;
    let job_id = "0123456789abcdef0123456789abcde1";
    let extra = [
        "--exit-on-finish",
        "--wait-for-slots",
        "60s",
        "--job-id",
        job_id,
    ];
    let mut jm1 = JobManager::start_with(
        "jobmanager-1",
        dir.path(),
        jm_args(0, &chk, &extra, &job(count, 4_000, &out)),
        &[COORDINATOR_LOG],
    )
    .await?;
    let rpc_port = jm1.rpc_port()?;
    let tm1 = task_manager("tm1", dir.path(), &jm1.rpc, 1)?;
    let mut tm2 = task_manager("tm2", dir.path(), &jm1.rpc, 1)?;
    // Polled every 5 ms: the final checkpoint takes a few hundred milliseconds.
    let fast = Duration::from_millis(5);
    poll_until("the end of input", JOB, fast, || {
        let reached = jm1.proc.log().contains(FINAL_TRIGGER).then_some(());
        async move { reached }
    })
    .await
    .with_context(|| jm1.proc.tail())?;
    tm2.sigkill();
    eprintln!("end of input reached; tm2 killed");
    let tm3 = task_manager("tm3", dir.path(), &jm1.rpc, 1)?;
    // The restarted attempt reaches the end of input again (from the last checkpoint) and
    // takes the final checkpoint: the JobManager is killed the moment it completed. Should
    // the first final checkpoint have completed before tm2 went, the job ends without a
    // restart; the output must be exactly once all the same.
    let phase = poll_until("the final checkpoint after the restart", JOB, fast, || {
        let log = jm1.proc.log();
        let again = log.matches(FINAL_TRIGGER).count() >= 2
            && log
                .rfind(FINAL_TRIGGER)
                .is_some_and(|at| log[at..].contains(" completed"));
        let done = if again {
            Some("restarted")
        } else {
            jm1.proc.exited().map(|_| "ended")
        };
        async move { done }
    })
    .await;
    let tails = |procs: &[&Proc]| {
        procs
            .iter()
            .map(|p| p.tail())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let phase = phase.with_context(|| tails(&[&jm1.proc, &tm1, &tm2, &tm3]))?;
    if phase == "ended" {
        eprintln!("the first final checkpoint completed before tm2 was lost; the job ended");
        let code = jm1.proc.wait_exit(STARTUP).await?;
        ensure!(
            code == 0,
            "jobmanager-1 exit code {code}\n{}",
            jm1.proc.tail()
        );
        return assert_exactly_once(&out, count, &[&jm1.proc, &tm1, &tm2, &tm3]).await;
    }
    jm1.proc.sigkill();
    eprintln!("final checkpoint of the restarted attempt completed; JobManager killed");

    let mut jm2 = JobManager::start_with(
        "jobmanager-2",
        dir.path(),
        jm_args(rpc_port, &chk, &extra, &job(count, 4_000, &out)),
        &[COORDINATOR_LOG],
    )
    .await?;
    let code = jm2.proc.wait_exit(JOB).await?;
    let all = [&jm1.proc, &jm2.proc, &tm1, &tm2, &tm3];
    ensure!(code == 0, "jobmanager-2 exit code {code}\n{}", tails(&all));
    assert_exactly_once(&out, count, &all).await?;
    Ok(())
}

/// A JobManager started again with the ID of a job that finished reports the job FINISHED
/// from the job result record in checkpoint storage, and runs nothing: the committed output
/// stays exactly once (before the record, it ran the whole job again into the same output).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_manager_restarted_after_the_job_finished_does_not_run_it_again() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let count = 4_000;
    let job_id = "0123456789abcdef0123456789abcde2";
    let extra = [
        "--exit-on-finish",
        "--wait-for-slots",
        "60s",
        "--job-id",
        job_id,
    ];
    let mut jm1 = JobManager::start(
        "jobmanager-1",
        dir.path(),
        jm_args(0, &chk, &extra, &job(count, 4_000, &out)),
    )
    .await?;
    let rpc_port = jm1.rpc_port()?;
    let tm1 = task_manager("tm1", dir.path(), &jm1.rpc, 1)?;
    let tm2 = task_manager("tm2", dir.path(), &jm1.rpc, 1)?;
    let code = jm1.proc.wait_exit(JOB).await?;
    ensure!(
        code == 0,
        "jobmanager-1 exit code {code}\n{}",
        jm1.proc.tail()
    );
    assert_exactly_once(&out, count, &[&jm1.proc, &tm1, &tm2]).await?;
    let record = chk.join(job_id).join("_job_result");
    let text = std::fs::read_to_string(&record)
        .with_context(|| format!("the job result record {}", record.display()))?;
    ensure!(
        text.contains("\"FINISHED\""),
        "the record says FINISHED: {text}"
    );

    let mut jm2 = JobManager::start(
        "jobmanager-2",
        dir.path(),
        jm_args(rpc_port, &chk, &extra, &job(count, 4_000, &out)),
    )
    .await?;
    let code = jm2.proc.wait_exit(STARTUP).await?;
    let log = jm2.proc.log();
    ensure!(
        code == 0,
        "jobmanager-2 exit code {code}\n{}",
        jm2.proc.tail()
    );
    ensure!(
        log.contains(&format!("Job {job_id} already ended FINISHED"))
            && !log.contains("Resuming job"),
        "jobmanager-2 reports the recorded result and runs nothing\n{}",
        jm2.proc.tail()
    );
    assert_exactly_once(&out, count, &[&jm1.proc, &jm2.proc, &tm1, &tm2]).await?;
    Ok(())
}

/// Kills timed while a checkpoint is being taken: a TaskManager gets SIGKILL the moment the
/// coordinator triggered the third checkpoint (its barriers are in flight, its snapshots being
/// uploaded). The job restarts from the checkpoint before and the output equals a failure-free
/// run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_manager_killed_while_a_checkpoint_is_taken_loses_and_duplicates_nothing()
-> anyhow::Result<()> {
    killed_while_a_checkpoint_is_taken(Backend::Heap).await
}

/// The same with the RocksDB state backend (a kill during an incremental upload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rocksdb_a_task_manager_killed_while_a_checkpoint_is_taken_loses_and_duplicates_nothing()
-> anyhow::Result<()> {
    killed_while_a_checkpoint_is_taken(Backend::RocksDb).await
}

async fn killed_while_a_checkpoint_is_taken(backend: Backend) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let count = 12_000;
    let jm = JobManager::start_with(
        "jobmanager",
        dir.path(),
        jm_args(
            0,
            &chk,
            &["--exit-on-finish", "--wait-for-slots", "60s"],
            &job(count, 4_000, &out),
        ),
        &[("FJORD_LOG", "warn,fjord::checkpoint=debug")],
    )
    .await?;
    let tm1 = tm(backend, "tm1", dir.path(), &jm.rpc)?;
    let mut tm2 = tm(backend, "tm2", dir.path(), &jm.rpc)?;
    let mut jm = jm;
    poll_until(
        "the third checkpoint to be triggered",
        JOB,
        Duration::from_millis(5),
        || {
            let third = jm.proc.log().matches("triggering").count() >= 3;
            async move { third.then_some(()) }
        },
    )
    .await
    .with_context(|| jm.proc.tail())?;
    tm2.sigkill();
    let tm3 = tm(backend, "tm3", dir.path(), &jm.rpc)?;
    let code = jm.proc.wait_exit(JOB).await?;
    let all = [&jm.proc, &tm1, &tm2, &tm3];
    let tails = || all.iter().map(|p| p.tail()).collect::<Vec<_>>().join("\n");
    ensure!(code == 0, "JobManager exit code {code}\n{}", tails());
    ensure!(
        jm.proc.log().contains("restarting"),
        "the job restarted after tm2 was killed\n{}",
        tails()
    );
    assert_exactly_once(&out, count, &all).await?;
    if backend == Backend::RocksDb {
        ensure!(
            dir.path().join("tm1-state").is_dir(),
            "tm1 kept its keyed state in RocksDB (is the fjord binary built with --features rocksdb?)"
        );
    }
    Ok(())
}

/// Two TaskManager processes with one ID: a second `tm-a` process starts while the first
/// runs half of the job. The JobManager takes the second for the ID (a new incarnation), the
/// first learns at its next heartbeat that it was superseded, cancels its tasks and exits with
/// the refusal exit code 5, the attempt restarts on the second, and the job finishes with
/// every count exactly once. (Before TaskManager incarnations the old twin kept the ID alive
/// and the job hung.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_task_manager_with_the_same_id_supersedes_the_first_exactly_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (out, chk) = (dir.path().join("out"), dir.path().join("chk"));
    let count = 30_000;
    let mut jm = JobManager::start(
        "jobmanager",
        dir.path(),
        jm_args(
            0,
            &chk,
            &["--exit-on-finish", "--wait-for-slots", "60s"],
            &job(count, 5_000, &out),
        ),
    )
    .await?;
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir)?;
    let mut first = task_manager("tm-a", &first_dir, &jm.rpc, 1)?;
    let tm_b = task_manager("tm-b", dir.path(), &jm.rpc, 1)?;
    let job_id = jm.job_id().await?;
    let checkpoint = jm.first_checkpoint(&job_id).await?;
    first.wait_for_line("tasks deployed", STARTUP).await?;
    eprintln!("checkpoint {checkpoint} completed; starting a second tm-a");

    let second = task_manager("tm-a", dir.path(), &jm.rpc, 1)?;
    let code = first.wait_exit(JOB).await?;
    let all = |jm: &JobManager| {
        [&jm.proc, &first, &tm_b, &second]
            .map(Proc::tail)
            .join("\n")
    };
    ensure!(
        code == 5,
        "the superseded tm-a exits with 5 (refused), not {code}\n{}",
        all(&jm)
    );
    ensure!(
        first
            .log()
            .contains("another TaskManager process registered"),
        "the superseded tm-a says why it stops\n{}",
        first.tail()
    );
    let code = jm.proc.wait_exit(JOB).await?;
    ensure!(code == 0, "JobManager exit code {code}\n{}", all(&jm));
    ensure!(
        second.log().contains("tasks deployed"),
        "the second tm-a ran the restarted attempt\n{}",
        all(&jm)
    );
    assert_exactly_once(&out, count, &[&jm.proc, &first, &tm_b, &second]).await?;
    Ok(())
}
