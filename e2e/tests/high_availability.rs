//! JobManager high availability outside Kubernetes, with real processes on loopback: two
//! `fjord jobmanager --ha file` processes share a leader-election directory and a `file://`
//! checkpoint storage, two `fjord taskmanager` processes know both RPC addresses, and the
//! built-in `windowed-counts` job writes through the exactly-once file sink.
//!
//! - The leader is SIGKILLed mid-stream: the standby takes the lease once it expired, resumes
//!   from the latest completed checkpoint, the TaskManagers register with it, and the committed
//!   output equals a failure-free run's (0 lost, 0 duplicated). The failover time (kill → the
//!   standby leads; kill → its first completed checkpoint, i.e. processing again) is printed
//!   for BENCHMARKS.md, never asserted.
//! - The leader is paused (SIGSTOP) past its lease: the standby takes over; the old leader,
//!   continued, completes no checkpoint and exits with code 6 (leadership lost); the output is
//!   still exactly once.
//!
//! Build the binary first: `cargo build -p fjord-worker --features s3 --bins`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord::sinks::ExactlyOnceFileSink;
use fjord::storage::StorageOptions;
use fjord_client::Client;
use fjord_e2e::poll_until;

mod process_support;
use process_support::{POLL, Proc, STARTUP, cluster_jm_args, file_url, task_manager, with_args};

/// Bound on a whole job (input plus a failover) on a loaded machine.
const JOB: Duration = Duration::from_secs(240);
const KEYS: u64 = 5;
const WINDOW_MS: u64 = 1000;
/// Lease timing of these tests: a standby takes over 3 s after the leader's last renewal.
const LEASE: [&str; 6] = [
    "--ha-lease-duration",
    "3s",
    "--ha-renew-deadline",
    "2s",
    "--ha-retry-period",
    "200ms",
];

/// `windowed-counts` with `count` records at `rate` per second written to `out`.
fn job(count: u64, rate: u64, out: &Path) -> Vec<String> {
    [
        "windowed-counts".to_string(),
        "--count".into(),
        count.to_string(),
        "--rate".into(),
        rate.to_string(),
        "--keys".into(),
        KEYS.to_string(),
        "--window-ms".into(),
        WINDOW_MS.to_string(),
        "--output".into(),
        file_url(out),
    ]
    .to_vec()
}

/// What a failure-free run of `windowed-counts --count n` commits, sorted.
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

/// Compares the committed output with [`expected`]; returns (lost, duplicated or wrong).
async fn compare(out: &Path, count: u64) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let url = file_url(out);
    let mut got = tokio::task::spawn_blocking(move || {
        ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default())
    })
    .await??;
    got.sort();
    let mut missing = expected(count);
    let mut extra = Vec::new();
    for line in &got {
        match missing.iter().position(|l| l == line) {
            Some(at) => {
                missing.remove(at);
            }
            None => extra.push(line.clone()),
        }
    }
    Ok((missing, extra))
}

/// An HA cluster: the JobManagers' shared settings and the TaskManagers' address list.
struct Cluster {
    dir: tempfile::TempDir,
    ports: [u16; 2],
    count: u64,
}

impl Cluster {
    fn new(count: u64) -> anyhow::Result<Self> {
        Ok(Cluster {
            dir: tempfile::tempdir()?,
            ports: [fjord_e2e::free_port()?, fjord_e2e::free_port()?],
            count,
        })
    }

    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out")
    }

    fn chk(&self) -> std::path::PathBuf {
        self.dir.path().join("chk")
    }

    /// The TaskManagers' `--jobmanager-address`: both JobManagers.
    fn addresses(&self) -> String {
        format!("127.0.0.1:{},127.0.0.1:{}", self.ports[0], self.ports[1])
    }

    /// Starts JobManager `i` (0 or 1) as a contender.
    fn job_manager(&self, name: &str, i: usize) -> anyhow::Result<Proc> {
        let ha = self.dir.path().join("ha").display().to_string();
        let mut args = with_args(
            cluster_jm_args(self.ports[i], 2, &self.chk(), 300),
            &[
                "--exit-on-finish",
                "--wait-for-slots",
                "60s",
                "--ha",
                "file",
                "--ha-storage-dir",
                &ha,
            ],
        );
        args.extend(LEASE.iter().map(|s| s.to_string()));
        args.extend(job(self.count, 5_000, &self.out()));
        Proc::spawn(name, self.dir.path(), &args, &[])
    }
}

/// The REST client of a JobManager that leads (its REST port opens once it leads).
async fn rest(jm: &mut Proc) -> anyhow::Result<Client> {
    let rest = jm
        .wait_for_line("REST API listening on http://", STARTUP)
        .await?;
    let rest = rest.split_whitespace().next().context("REST address")?;
    Ok(Client::new(&format!("http://{rest}"))?)
}

/// The job's ID and the highest completed checkpoint id it lists above `above`, waiting
/// (bounded) for one.
async fn checkpoint_above(client: &Client, above: i64, jm: &Proc) -> anyhow::Result<(String, i64)> {
    let found = poll_until("a completed checkpoint", JOB, POLL, || {
        let client = client.clone();
        async move {
            let id = client.jobs().await.ok()?.jobs.first()?.id.clone();
            let history = client.checkpoints(&id).await.ok()?;
            let max = history
                .completed
                .iter()
                .filter(|c| !c.savepoint)
                .map(|c| c.id)
                .max()?;
            (max > above).then_some((id, max))
        }
    })
    .await
    .with_context(|| jm.tail())?;
    Ok(found)
}

/// The checkpoint id in a "Resuming job ... from its latest completed checkpoint <url>" line.
fn resumed_id(line: &str) -> anyhow::Result<i64> {
    line.trim_end_matches('/')
        .rsplit("chk-")
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no checkpoint id in {line:?}"))
}

/// The `leader_epoch` recorded in checkpoint `id`'s `_metadata`.
fn leader_epoch(chk: &Path, job_id: &str, id: i64) -> anyhow::Result<Option<u64>> {
    let path = chk.join(job_id).join(format!("chk-{id}")).join("_metadata");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let meta: serde_json::Value = serde_json::from_str(&text)?;
    Ok(meta["leader_epoch"].as_u64())
}

/// The leader is SIGKILLed after a completed checkpoint; the standby takes over and the output
/// is exactly once. Prints the failover figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_a_killed_leader_and_output_stays_exactly_once() -> anyhow::Result<()>
{
    let cluster = Cluster::new(50_000)?;
    let mut a = cluster.job_manager("jobmanager-a", 0)?;
    a.wait_for_line("is the leader (epoch 1)", STARTUP).await?;
    let mut b = cluster.job_manager("jobmanager-b", 1)?;
    b.wait_for_line("is a standby: waiting for leadership", STARTUP)
        .await?;
    let tm1 = task_manager("tm1", cluster.dir.path(), &cluster.addresses(), 1)?;
    let tm2 = task_manager("tm2", cluster.dir.path(), &cluster.addresses(), 1)?;
    let a_rest = rest(&mut a).await?;
    let (job_id, before) = checkpoint_above(&a_rest, 1, &a).await?;
    ensure!(
        leader_epoch(&cluster.chk(), &job_id, before)? == Some(1),
        "the leader records its epoch in _metadata"
    );
    ensure!(
        !b.log().contains("is the leader"),
        "the standby stays a standby while the leader renews\n{}",
        b.tail()
    );

    a.sigkill();
    let killed = Instant::now();
    eprintln!("checkpoint {before} completed; leader SIGKILLed");
    b.wait_for_line("is the leader (epoch 2)", JOB).await?;
    let elected = killed.elapsed();
    let b_rest = rest(&mut b).await?;
    let resumed = b
        .wait_for_line(
            &format!("Resuming job {job_id} from its latest completed checkpoint "),
            STARTUP,
        )
        .await?;
    let adopted = resumed_id(&resumed)?;
    ensure!(
        adopted >= before,
        "b resumes from {adopted}, not older than {before}"
    );
    let (_, after) = checkpoint_above(&b_rest, adopted, &b).await?;
    let processing = killed.elapsed();
    ensure!(
        leader_epoch(&cluster.chk(), &job_id, after)? == Some(2),
        "the new leader's checkpoints carry its epoch"
    );
    // The old leader's Pod would restart as a standby: it waits while b leads.
    let mut a2 = cluster.job_manager("jobmanager-a2", 0)?;
    a2.wait_for_line("is a standby: waiting for leadership", STARTUP)
        .await?;

    let code = b.wait_exit(JOB).await?;
    let tails = || [&a, &b, &tm1, &tm2].map(Proc::tail).join("\n");
    ensure!(code == 0, "jobmanager-b exit code {code}\n{}", tails());
    let (lost, extra) = compare(&cluster.out(), cluster.count).await?;
    eprintln!(
        "HA failover (file mode, lease 3 s / renew deadline 2 s / retry 200 ms): leader \
         elected {elected:?} after the SIGKILL, first checkpoint of the new leader {processing:?} \
         after it (resumed from {resumed}); output: {} lost, {} duplicated or wrong of {} lines",
        lost.len(),
        extra.len(),
        expected(cluster.count).len()
    );
    if !lost.is_empty() || !extra.is_empty() {
        bail!(
            "not exactly once: missing {:?}, extra {:?}\n{}",
            &lost[..lost.len().min(10)],
            &extra[..extra.len().min(10)],
            tails()
        );
    }
    // b released the lease when it ended; a2 takes it and finds the job's result.
    a2.wait_for_line("is the leader (epoch 3)", STARTUP).await?;
    let code = a2.wait_exit(STARTUP).await?;
    ensure!(
        code == 0 && a2.log().contains("not running it again"),
        "the next leader does not run the finished job again (exit {code})\n{}",
        a2.tail()
    );
    Ok(())
}

/// The last lines of every process, for failure messages.
fn tails(procs: &[&Proc]) -> String {
    procs
        .iter()
        .map(|p| p.tail())
        .collect::<Vec<_>>()
        .join("\n")
}

fn signal(proc: &Proc, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(proc.pid() as i32), signal)
        .with_context(|| format!("{signal} {}", proc.name()))
}

/// A leader paused (SIGSTOP) past its lease loses it to the standby; continued, it completes no
/// checkpoint, exits with code 6, and the output is exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_fenced_and_exits_when_it_continues() -> anyhow::Result<()> {
    let cluster = Cluster::new(50_000)?;
    let mut a = cluster.job_manager("jobmanager-a", 0)?;
    a.wait_for_line("is the leader (epoch 1)", STARTUP).await?;
    let mut b = cluster.job_manager("jobmanager-b", 1)?;
    b.wait_for_line("is a standby: waiting for leadership", STARTUP)
        .await?;
    let tm1 = task_manager("tm1", cluster.dir.path(), &cluster.addresses(), 1)?;
    let tm2 = task_manager("tm2", cluster.dir.path(), &cluster.addresses(), 1)?;
    let a_rest = rest(&mut a).await?;
    let (job_id, before) = checkpoint_above(&a_rest, 1, &a).await?;

    signal(&a, nix::sys::signal::Signal::SIGSTOP)?;
    eprintln!("checkpoint {before} completed; leader paused");
    b.wait_for_line("is the leader (epoch 2)", JOB).await?;
    let b_rest = rest(&mut b).await?;
    let resumed = b
        .wait_for_line(
            &format!("Resuming job {job_id} from its latest completed checkpoint "),
            STARTUP,
        )
        .await?;
    let adopted = resumed_id(&resumed)?;
    let (_, after) = checkpoint_above(&b_rest, adopted, &b).await?;
    signal(&a, nix::sys::signal::Signal::SIGCONT)?;
    let code = a.wait_exit(STARTUP).await?;
    ensure!(
        code == 6 && a.log().contains("lost leadership"),
        "the continued old leader exits with 6 (exit {code})\n{}",
        tails(&[&a, &b, &tm1, &tm2])
    );
    // Every checkpoint in storage after the one b resumed from was completed by b, also those
    // the old leader had in flight when it continued.
    let job_dir = cluster.chk().join(&job_id);
    for entry in std::fs::read_dir(&job_dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name
            .strip_prefix("chk-")
            .and_then(|n| n.parse::<i64>().ok())
            && id > adopted
            && entry.path().join("_metadata").is_file()
        {
            ensure!(
                leader_epoch(&cluster.chk(), &job_id, id)? == Some(2),
                "checkpoint {id} after the pause was completed by the new leader\n{}",
                tails(&[&a, &b, &tm1, &tm2])
            );
        }
    }
    let code = b.wait_exit(JOB).await?;
    ensure!(
        code == 0,
        "jobmanager-b exit code {code}\n{}",
        tails(&[&a, &b, &tm1, &tm2])
    );
    let (lost, extra) = compare(&cluster.out(), cluster.count).await?;
    eprintln!(
        "paused leader: new leader's checkpoint {after}; output: {} lost, {} duplicated or wrong",
        lost.len(),
        extra.len()
    );
    ensure!(
        lost.is_empty() && extra.is_empty(),
        "not exactly once: missing {:?}, extra {:?}\n{}",
        &lost[..lost.len().min(10)],
        &extra[..extra.len().min(10)],
        tails(&[&a, &b, &tm1, &tm2])
    );
    Ok(())
}

/// The highest completed checkpoint of job `id` above `above`, waiting (bounded) for one.
async fn job_checkpoint_above(
    client: &Client,
    id: &str,
    above: i64,
    jm: &Proc,
) -> anyhow::Result<i64> {
    poll_until("a completed checkpoint of the job", JOB, POLL, || {
        let client = client.clone();
        let id = id.to_string();
        async move {
            let history = client.checkpoints(&id).await.ok()?;
            let max = history
                .completed
                .iter()
                .filter(|c| !c.savepoint)
                .map(|c| c.id)
                .max()?;
            (max > above).then_some(max)
        }
    })
    .await
    .with_context(|| jm.tail())
}

/// Session mode with high availability (`--session --ha file`): two session JobManagers, two
/// TaskManagers with two slots each. Two jobs are submitted to the leader; one is cancelled. The
/// leader is SIGKILLed: the standby leads, submits the recorded job again under its ID, it
/// resumes from its latest completed checkpoint and runs to the end with exactly-once output;
/// the cancelled job (its checkpoints gone) is not started again, and the finished job's record
/// goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_standby_runs_the_sessions_jobs_again() -> anyhow::Result<()> {
    use fjord_client::api::{JobState, SubmitJobRequest};
    let cluster = Cluster::new(50_000)?;
    let session = |name: &str, i: usize| -> anyhow::Result<Proc> {
        let ha = cluster.dir.path().join("ha").display().to_string();
        let mut args = with_args(
            cluster_jm_args(cluster.ports[i], 2, &cluster.chk(), 300),
            &["--session", "--ha", "file", "--ha-storage-dir", &ha],
        );
        args.extend(LEASE.iter().map(|s| s.to_string()));
        Proc::spawn(name, cluster.dir.path(), &args, &[])
    };
    let mut a = session("jobmanager-a", 0)?;
    a.wait_for_line("is the leader (epoch 1)", STARTUP).await?;
    let mut b = session("jobmanager-b", 1)?;
    b.wait_for_line("is a standby: waiting for leadership", STARTUP)
        .await?;
    let tm1 = task_manager("tm1", cluster.dir.path(), &cluster.addresses(), 2)?;
    let tm2 = task_manager("tm2", cluster.dir.path(), &cluster.addresses(), 2)?;
    let a_rest = rest(&mut a).await?;
    let (kept, cancelled) = ("a".repeat(32), "b".repeat(32));
    let out_cancelled = cluster.dir.path().join("out-cancelled");
    let submit = |id: &str, args: Vec<String>| SubmitJobRequest {
        job: args[0].clone(),
        args: args[1..].to_vec(),
        job_id: Some(id.to_string()),
        ..SubmitJobRequest::default()
    };
    poll_until("both jobs submitted", STARTUP, POLL, || {
        let (client, kept, cancelled) = (a_rest.clone(), kept.clone(), cancelled.clone());
        let (first, second) = (
            submit(&kept, job(cluster.count, 5_000, &cluster.out())),
            submit(&cancelled, job(100_000_000, 1_000, &out_cancelled)),
        );
        async move {
            // Until both TaskManagers registered, a submission is refused for slots.
            if client.job(&kept).await.is_err() {
                client.submit_job(&first).await.ok()?;
            }
            client.submit_job(&second).await.ok()?;
            Some(())
        }
    })
    .await
    .with_context(|| a.tail())?;
    job_checkpoint_above(&a_rest, &cancelled, 0, &a).await?;
    a_rest.cancel(&cancelled).await?;
    poll_until(
        "the cancelled job's record to go",
        STARTUP,
        POLL,
        || async {
            (!cluster
                .chk()
                .join(format!("_session/jobs/{cancelled}.json"))
                .exists())
            .then_some(())
        },
    )
    .await?;
    ensure!(
        cluster
            .chk()
            .join(format!("_session/jobs/{kept}.json"))
            .exists(),
        "the running job is recorded"
    );
    let before = job_checkpoint_above(&a_rest, &kept, 1, &a).await?;

    a.sigkill();
    eprintln!("checkpoint {before} of the session job completed; session leader SIGKILLed");
    b.wait_for_line("is the leader (epoch 2)", JOB).await?;
    let b_rest = rest(&mut b).await?;
    let resumed = b
        .wait_for_line(
            &format!("Resuming job {kept} from its latest completed checkpoint "),
            JOB,
        )
        .await?;
    ensure!(
        resumed_id(&resumed)? >= before,
        "the recovered job resumes from a checkpoint not older than {before}: {resumed}"
    );
    b.wait_for_line("Session recovery done: 1 job(s) running again.", JOB)
        .await?;
    ensure!(
        b_rest.job(&cancelled).await.is_err(),
        "the cancelled job is not started again\n{}",
        b.tail()
    );
    let state = poll_until("the recovered job to finish", JOB, POLL, || {
        let (client, kept) = (b_rest.clone(), kept.clone());
        async move {
            let s = client.job(&kept).await.ok()?.state;
            s.is_terminal().then_some(s)
        }
    })
    .await
    .with_context(|| b.tail())?;
    ensure!(
        state == JobState::Finished,
        "the recovered job ended {state}\n{}",
        b.tail()
    );
    let (lost, extra) = compare(&cluster.out(), cluster.count).await?;
    eprintln!(
        "session failover: resumed from {resumed}; output {} lost, {} duplicated or wrong of {} lines",
        lost.len(),
        extra.len(),
        expected(cluster.count).len()
    );
    ensure!(
        lost.is_empty() && extra.is_empty(),
        "not exactly once: missing {:?}, extra {:?}\n{}",
        &lost[..lost.len().min(10)],
        &extra[..extra.len().min(10)],
        tails(&[&a, &b, &tm1, &tm2])
    );
    poll_until("the finished job's record to go", STARTUP, POLL, || async {
        (!cluster
            .chk()
            .join(format!("_session/jobs/{kept}.json"))
            .exists())
        .then_some(())
    })
    .await?;
    b.sigterm()?;
    ensure!(b.wait_exit(STARTUP).await? == 0, "{}", b.tail());
    Ok(())
}
