//! JobManager high availability on the project's test cluster (real kube-apiserver, etcd,
//! controller-manager, scheduler; Pods run as real processes by the node agent; the operator
//! installed from the Helm chart): a StreamJob with `jobManager.replicas: 2` and
//! `jobManager.highAvailability`.
//!
//! The JobManagers elect a leader on the Lease `counting-jobmanager-leader` (RBAC from the
//! operator's Role), the leader labels its Pod and the Service routes to it; the leader's
//! process is SIGKILLed; another JobManager (the standby, or the killed one's restarted
//! container) takes the Lease, labels itself, resumes from the latest
//! completed checkpoint, the TaskManagers register with it, and every key's count continues
//! from the checkpointed state (no count lost or repeated in the new attempt). The failover
//! figures are printed, not asserted.
//!
//! Build first: `cargo build -p fjord-operator --bins && cargo build -p fjord-worker --features
//! s3 --bins`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fjord_e2e::poll_until;

mod operator_support;
use operator_support::{OperatorCluster, POLL, WORKER_IMAGE, counts, secs};

const JOB: &str = "counting";
const WAIT: Duration = Duration::from_secs(240);

fn manifest() -> String {
    format!(
        r#"apiVersion: fjord.dev/v1alpha1
kind: StreamJob
metadata:
  name: {JOB}
spec:
  image: {WORKER_IMAGE}
  job:
    name: counting
    args: ["--keys", "20", "--rate", "200"]
    parallelism: 2
    upgradeMode: last-state
  jobManager:
    replicas: 2
    highAvailability: {{leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 1}}
  taskManager:
    slots: 1
  checkpointing:
    interval: 1s
    storage: s3://fjord/checkpoints/counting-ha
  storageCredentials:
    name: minio-credentials
"#
    )
}

/// The JobManager Pods with their leader label (`true`, `false`, or empty).
fn job_managers(op: &OperatorCluster) -> anyhow::Result<Vec<(String, String)>> {
    let listing = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={JOB},app.kubernetes.io/component=jobmanager"),
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.metadata.labels.fjord\.dev/jobmanager-leader}{"\n"}{end}"#,
    ])?;
    Ok(listing
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next().unwrap_or("").to_string()))
        })
        .collect())
}

fn task_managers(op: &OperatorCluster) -> anyhow::Result<Vec<String>> {
    let listing = op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={JOB},app.kubernetes.io/component=taskmanager"),
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}"#,
    ])?;
    Ok(listing.lines().map(str::to_string).collect())
}

fn lease_holder(op: &OperatorCluster) -> String {
    op.kubectl(&[
        "get",
        "lease",
        &format!("{JOB}-jobmanager-leader"),
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
    .unwrap_or_default()
    .trim()
    .to_string()
}

fn lease_transitions(op: &OperatorCluster) -> i64 {
    op.kubectl(&[
        "get",
        "lease",
        &format!("{JOB}-jobmanager-leader"),
        "-o",
        "jsonpath={.spec.leaseTransitions}",
    ])
    .ok()
    .and_then(|t| t.trim().parse().ok())
    .unwrap_or(-1)
}

fn log(op: &OperatorCluster, pod: &str) -> String {
    let path = op
        .cluster
        .run_dir()
        .join(format!("agent/logs/default_{pod}_fjord.log"));
    std::fs::read_to_string(path).unwrap_or_default()
}

fn pid(op: &OperatorCluster, pod: &str) -> anyhow::Result<u32> {
    let id = op.kubectl(&[
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ])?;
    id.strip_prefix("fjord-node-agent://")
        .and_then(|p| p.trim().parse().ok())
        .with_context(|| format!("container id {id:?} names no pid"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_job_manager_is_replaced_by_its_standby() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-ha")?;
    op.apply(&manifest())?;
    op.wait_running(JOB, WAIT).await?;
    let (leader, standby) = poll_until("one leader and one standby", WAIT, POLL, || async {
        let pods = job_managers(&op).ok()?;
        let leader = pods.iter().find(|p| p.1 == "true")?.0.clone();
        let standby = pods.iter().find(|p| p.1 == "false")?.0.clone();
        (pods.len() == 2).then_some((leader, standby))
    })
    .await
    .with_context(|| format!("{:?}", job_managers(&op)))?;
    ensure!(
        lease_holder(&op) == leader,
        "the Lease names the labelled leader"
    );
    ensure!(
        log(&op, &standby).contains("is a standby: waiting for leadership"),
        "{}",
        log(&op, &standby)
    );
    let tms = task_managers(&op)?;
    // Two checkpoints of the leader, so the standby has one to resume from.
    poll_until("two checkpoints of the leader", WAIT, POLL, || async {
        (log(&op, &leader).matches("completed checkpoint=").count() >= 2).then_some(())
    })
    .await
    .with_context(|| log(&op, &leader))?;
    // Counts printed before the kill.
    poll_until("counts printed", WAIT, POLL, || async {
        let n: usize = tms
            .iter()
            .map(|t| counts(&log(&op, t)).values().map(Vec::len).sum::<usize>())
            .sum();
        (n >= 100).then_some(())
    })
    .await?;

    let transitions = lease_transitions(&op);
    // Where each JobManager's log stands at the kill (a restarted container appends to it).
    let offsets: Vec<(String, usize)> = [&leader, &standby]
        .iter()
        .map(|p| (p.to_string(), log(&op, p).len()))
        .collect();
    let tm_offsets: Vec<usize> = tms.iter().map(|t| log(&op, t).len()).collect();
    let pid = pid(&op, &leader)?;
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -9 {pid}");
    eprintln!("leader {leader} (pid {pid}) killed");

    // Usually the standby; the killed leader's restarted container competes as well.
    let new_leader = poll_until(
        "another JobManager to take the Lease",
        WAIT,
        POLL,
        || async { (lease_transitions(&op) > transitions).then(|| lease_holder(&op)) },
    )
    .await?;
    let elected = secs(killed);
    let offset = offsets
        .iter()
        .find(|(p, _)| *p == new_leader)
        .map_or(0, |(_, o)| *o);
    let resumed = poll_until("the new leader to resume", WAIT, POLL, || async {
        let l = log(&op, &new_leader);
        let l = l.get(offset..)?;
        let at = l.find("from its latest completed checkpoint ")?;
        let rest = &l[at..];
        let line = &rest[..rest.find('\n')?];
        line.rsplit("chk-").next()?.trim().parse::<u64>().ok()
    })
    .await
    .with_context(|| log(&op, &new_leader))?;
    // Processing again: the new leader completed a checkpoint after the one it resumed from
    // (read from its log every poll, so within a poll interval; the StreamJob's status would
    // add the operator's refresh interval).
    let processing = poll_until("a checkpoint of the new leader", WAIT, POLL, || async {
        let l = log(&op, &new_leader);
        let l = l.get(offset..)?;
        l.match_indices("completed checkpoint=")
            .filter_map(|(at, m)| {
                let rest = &l[at + m.len()..];
                rest[..rest.find(' ')?].parse::<u64>().ok()
            })
            .any(|id| id > resumed)
            .then(|| secs(killed))
    })
    .await?;
    ensure!(
        job_managers(&op)?
            .iter()
            .any(|(p, l)| *p == new_leader && l == "true"),
        "the new leader labels its Pod: {:?}",
        job_managers(&op)
    );
    // Every key's count in the new attempt continues from the checkpointed state. The new
    // attempt's output on a TaskManager starts after it registered with the new leader.
    // The last registration after the kill (TaskManager `i`'s log `text`), if any.
    let split = |i: usize, text: &str| -> Option<usize> {
        let from = tm_offsets[i].min(text.len());
        text[from..]
            .rfind("registered with the JobManager")
            .map(|at| from + at)
    };
    poll_until("counts of the new attempt", WAIT, POLL, || async {
        let mut n = 0;
        for (i, t) in tms.iter().enumerate() {
            let l = log(&op, t);
            n += counts(&l[split(i, &l)?..])
                .values()
                .map(Vec::len)
                .sum::<usize>();
        }
        (n >= 100).then_some(())
    })
    .await?;
    let (mut before, mut after) = (String::new(), String::new());
    for (i, t) in tms.iter().enumerate() {
        let l = log(&op, t);
        let at = split(i, &l).context("a registration after the kill")?;
        before.push_str(&l[..at]);
        after.push_str(&l[at..]);
    }
    let (old, new) = (counts(&before), counts(&after));
    let mut checked = 0;
    for (key, values) in &new {
        let first = values[0];
        ensure!(
            first == 1 || old.get(key).is_some_and(|o| o.contains(&(first - 1))),
            "{key} resumed at {first}, never counted {} before",
            first - 1
        );
        ensure!(
            values.windows(2).all(|w| w[1] == w[0] + 1),
            "{key} skipped or repeated a count in the new attempt: {values:?}"
        );
        checked += 1;
    }
    ensure!(checked > 0, "no key printed after the failover");
    eprintln!(
        "Kubernetes HA failover (lease 4 s / renew 3 s / retry 1 s): Lease taken {elected:.2} s \
         after the SIGKILL, first checkpoint of the new leader {processing:.2} s after it \
         (resumed from chk-{resumed}; new leader {new_leader}, was {leader}); {checked} keys \
         continued exactly"
    );
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
    op.cluster.stop()?;
    Ok(())
}
