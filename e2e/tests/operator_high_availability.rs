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
//! A second test drains (`kubectl drain`) the node of the leading JobManager: its Pods are
//! evicted, the leader's SIGTERM keeps the job's checkpoints, and the job continues on the other
//! node from its latest checkpoint.
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

/// After a failover: waits (bounded) until the TaskManagers `tms` printed 100 counts after
/// their last registration past `tm_offsets` (where each log stood at the kill), then checks
/// that every key's counts there continue from a count printed before (no count lost or
/// repeated in state) and run without gaps. A key counted first after the failover may start
/// at 1 only with `fresh_keys`. Returns how many keys were checked (at least one).
///
/// A TaskManager ends the old attempt's tasks before it offers its slots to a new leader and
/// prints its registration after that, so a line after its last registration is the new
/// attempt's (the old attempt's last counts, printed after the checkpoint it resumes from,
/// come before it).
async fn counts_continue(
    op: &OperatorCluster,
    tms: &[String],
    tm_offsets: &[usize],
    fresh_keys: bool,
) -> anyhow::Result<usize> {
    // The last registration after the kill (TaskManager `i`'s log `text`), if any: the new
    // attempt's output on a TaskManager starts after it registered with the new leader.
    let split = |i: usize, text: &str| -> Option<usize> {
        let from = tm_offsets[i].min(text.len());
        text[from..]
            .rfind("registered with the JobManager")
            .map(|at| from + at)
    };
    poll_until("counts of the new attempt", WAIT, POLL, || async {
        let mut n = 0;
        for (i, t) in tms.iter().enumerate() {
            let l = log(op, t);
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
        let l = log(op, t);
        let at = split(i, &l).context("a registration after the kill")?;
        before.push_str(&l[..at]);
        after.push_str(&l[at..]);
    }
    let (old, new) = (counts(&before), counts(&after));
    let mut checked = 0;
    for (key, values) in &new {
        let first = values[0];
        let continues = first > 1 && old.get(key).is_some_and(|o| o.contains(&(first - 1)));
        ensure!(
            continues || (fresh_keys && first == 1),
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
    Ok(checked)
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
    let checked = counts_continue(&op, &tms, &tm_offsets, true).await?;
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

/// The node a Pod runs on.
fn node_of(op: &OperatorCluster, pod: &str) -> anyhow::Result<String> {
    Ok(op
        .kubectl(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"])?
        .trim()
        .to_string())
}

/// Every TaskManager log the node agent wrote for this job, by Pod name (Pods deleted by the
/// drain included: the agent keeps their logs).
fn task_manager_logs(op: &OperatorCluster) -> anyhow::Result<Vec<(String, String)>> {
    let dir = op.cluster.run_dir().join("agent/logs");
    let prefix = format!("default_{JOB}-taskmanager-");
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(pod) = name
            .strip_prefix(&prefix)
            .and_then(|p| p.strip_suffix("_fjord.log"))
        {
            let pod = format!("{JOB}-taskmanager-{pod}");
            logs.push((pod.clone(), log(op, &pod)));
        }
    }
    Ok(logs)
}

/// A TaskManager's log cut into the outputs of the attempts deployed on it: each piece starts
/// at a `tasks deployed` line (what came before the first one is dropped).
fn attempts(log: &str) -> Vec<(usize, &str)> {
    let starts: Vec<usize> = log
        .match_indices("tasks deployed")
        .map(|(at, _)| at)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &at)| {
            (
                at,
                &log[at..starts.get(i + 1).copied().unwrap_or(log.len())],
            )
        })
        .collect()
}

/// `kubectl drain` of the node that runs the leading JobManager (Flink's "node drain" case):
/// every Pod on it is evicted (SIGTERM, grace period), the node is cordoned, so the Deployments
/// replace them on the other node. The leader's SIGTERM must not destroy the job: it keeps its
/// checkpoints and releases the Lease, the standby (or a replacement) takes over, resumes from
/// the latest completed checkpoint, and every key's count continues from checkpointed state on
/// the replacement TaskManagers (no count skipped, none restarted from 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_moves_the_job_to_the_other_node_with_its_state() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-drain")?;
    op.apply(&manifest())?;
    op.wait_running(JOB, WAIT).await?;
    let leader = poll_until("one leader and one standby", WAIT, POLL, || async {
        let pods = job_managers(&op).ok()?;
        let leader = pods.iter().find(|p| p.1 == "true")?.0.clone();
        (pods.len() == 2 && pods.iter().any(|p| p.1 == "false")).then_some(leader)
    })
    .await
    .with_context(|| format!("{:?}", job_managers(&op)))?;
    let node = node_of(&op, &leader)?;
    poll_until("two checkpoints of the leader", WAIT, POLL, || async {
        (log(&op, &leader).matches("completed checkpoint=").count() >= 2).then_some(())
    })
    .await
    .with_context(|| log(&op, &leader))?;
    // Every key counted before the drain (20 keys at 200 records/s), so each must continue.
    poll_until("every key counted", WAIT, POLL, || async {
        let mut all = std::collections::BTreeMap::new();
        for t in task_managers(&op).ok()? {
            operator_support::add_counts(&log(&op, &t), &mut all);
        }
        (all.len() == 20 && all.values().map(Vec::len).sum::<usize>() >= 100).then_some(())
    })
    .await?;
    let on_node: Vec<String> = job_managers(&op)?
        .into_iter()
        .map(|(p, _)| p)
        .chain(task_managers(&op)?)
        .filter(|p| node_of(&op, p).is_ok_and(|n| n == node))
        .collect();
    let transitions = lease_transitions(&op);
    // Where every TaskManager log stands at the drain: output after it is the new attempts'.
    let before: Vec<(String, usize)> = task_manager_logs(&op)?
        .into_iter()
        .map(|(p, l)| (p, l.len()))
        .collect();
    let drained = Instant::now();
    let out = op.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        // The test's MinIO keeps its data in an emptyDir: evicted, the job's storage would be
        // gone. In a cluster the storage outlives any node; here it stays where it is.
        "--pod-selector=app!=minio",
        "--timeout=180s",
    ])?;
    eprintln!(
        "drained {node} in {:.2} s (leader {leader}; Pods there: {on_node:?}):\n{out}",
        secs(drained)
    );
    for pod in &on_node {
        ensure!(
            op.kubectl(&["get", "pod", pod, "--ignore-not-found", "-o", "name"])?
                .trim()
                .is_empty(),
            "{pod} was evicted from {node}"
        );
    }
    let new_leader = poll_until(
        "another JobManager to take the Lease",
        WAIT,
        POLL,
        || async {
            (lease_transitions(&op) > transitions)
                .then(|| lease_holder(&op))
                .filter(|h| !h.is_empty() && *h != leader)
        },
    )
    .await?;
    let elected = secs(drained);
    ensure!(
        node_of(&op, &new_leader)? != node,
        "the new leader {new_leader} runs on the cordoned node {node}"
    );
    let resumed = poll_until("the new leader to resume", WAIT, POLL, || async {
        let l = log(&op, &new_leader);
        let at = l.rfind("from its latest completed checkpoint ")?;
        let rest = &l[at..];
        let line = &rest[..rest.find('\n')?];
        line.rsplit("chk-").next()?.trim().parse::<u64>().ok()
    })
    .await
    .with_context(|| log(&op, &new_leader))?;
    let processing = poll_until("a checkpoint of the new leader", WAIT, POLL, || async {
        let l = log(&op, &new_leader);
        l.match_indices("completed checkpoint=")
            .filter_map(|(at, m)| {
                let rest = &l[at + m.len()..];
                rest[..rest.find(' ')?].parse::<u64>().ok()
            })
            .any(|id| id > resumed)
            .then(|| secs(drained))
    })
    .await?;
    ensure!(resumed > 0, "the new leader resumed from chk-{resumed}");
    for pod in job_managers(&op)?
        .into_iter()
        .map(|(p, _)| p)
        .chain(task_managers(&op)?)
    {
        ensure!(
            node_of(&op, &pod)? != node,
            "{pod} was placed on the cordoned node {node}"
        );
    }

    // Counts: everything printed before the drain, and the attempts deployed after it.
    poll_until("counts of the new attempt", WAIT, POLL, || async {
        let n: usize = task_manager_logs(&op)
            .ok()?
            .iter()
            .map(|(p, l)| {
                let from = before.iter().find(|b| b.0 == *p).map_or(0, |b| b.1);
                attempts(l.get(from..).unwrap_or_default())
                    .iter()
                    .map(|(_, a)| counts(a).values().map(Vec::len).sum::<usize>())
                    .sum::<usize>()
            })
            .sum();
        (n >= 100).then_some(())
    })
    .await?;
    let mut old = std::collections::BTreeMap::<String, Vec<u64>>::new();
    let mut new = Vec::new();
    for (pod, l) in task_manager_logs(&op)? {
        let from = before
            .iter()
            .find(|b| b.0 == pod)
            .map_or(0, |b| b.1)
            .min(l.len());
        // The old attempt printed on until its TaskManager was evicted or its tasks were
        // cancelled, after the drain began: all of it up to the first deployment after the
        // drain is the old attempt's (a checkpoint may hold those counts, so the new attempt
        // rightly continues after them).
        let split = l[from..]
            .find("tasks deployed")
            .map_or(l.len(), |at| from + at);
        operator_support::add_counts(&l[..split], &mut old);
        for (_, attempt) in attempts(&l[split..]) {
            new.push((pod.clone(), counts(attempt)));
        }
    }
    ensure!(!old.is_empty(), "no counts before the drain");
    let mut checked = 0;
    for (pod, attempt) in &new {
        for (key, values) in attempt {
            let first = values[0];
            ensure!(
                old.get(key)
                    .is_some_and(|o| first > 1 && o.contains(&(first - 1))),
                "{key} resumed at {first} on {pod} after the drain; it was never counted to {} \
                 before (state lost or skipped)",
                first - 1
            );
            ensure!(
                values.windows(2).all(|w| w[1] == w[0] + 1),
                "{key} skipped or repeated a count in an attempt after the drain: {values:?}"
            );
            checked += 1;
        }
    }
    ensure!(checked > 0, "no key printed after the drain");
    eprintln!(
        "node drain: Lease taken {elected:.2} s after the drain began, first checkpoint of the \
         new leader {processing:.2} s after it (resumed from chk-{resumed}; new leader \
         {new_leader}, was {leader}); {checked} key runs continued from checkpointed counts"
    );
    op.kubectl(&["uncordon", &node])?;
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
    op.cluster.stop()?;
    Ok(())
}

/// A StreamCluster named like the StreamJob above (so the Pod, Lease and log helpers apply)
/// with standby JobManagers, and one StreamSessionJob on it.
fn session_manifests() -> String {
    format!(
        r#"apiVersion: fjord.dev/v1alpha1
kind: StreamCluster
metadata:
  name: {JOB}
spec:
  image: {WORKER_IMAGE}
  jobManager:
    replicas: 2
    highAvailability: {{leaseDurationSeconds: 4, renewDeadlineSeconds: 3, retryPeriodSeconds: 1}}
  taskManager:
    replicas: 2
    slots: 1
  checkpointing:
    interval: 1s
    storage: s3://fjord/checkpoints/counting-session-ha
  storageCredentials:
    name: minio-credentials
---
apiVersion: fjord.dev/v1alpha1
kind: StreamSessionJob
metadata:
  name: counts
spec:
  clusterName: {JOB}
  job:
    name: counting
    args: ["--keys", "20", "--rate", "200"]
    parallelism: 2
    upgradeMode: last-state
"#
    )
}

/// A session cluster with `jobManager.replicas: 2` and `highAvailability`: the session
/// JobManagers elect a leader, the StreamSessionJob's job runs on the leader, the leader's
/// process is SIGKILLed, another JobManager takes the Lease, runs the session's job again under
/// its job ID from its latest completed checkpoint (recorded by the session, or submitted again
/// by the operator, whichever comes first), and every key's count continues from the
/// checkpointed state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_clusters_standby_runs_its_jobs_again() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-session-ha")?;
    // Standbys need durable storage to recover from: refused at admission without it.
    let without_storage = session_manifests()
        .split("---")
        .next()
        .unwrap_or_default()
        .replace(
            "s3://fjord/checkpoints/counting-session-ha",
            "memory://session",
        );
    let refused = op
        .apply(&without_storage)
        .err()
        .context("a session cluster with standbys and memory:// storage is refused")?;
    ensure!(
        format!("{refused:#}").contains("highAvailability needs spec.checkpointing.storage"),
        "{refused:#}"
    );
    op.apply(&session_manifests())?;
    let job_id = poll_until("the session job running", WAIT, POLL, || async {
        let state = op
            .kubectl(&[
                "get",
                "ssj",
                "counts",
                "-o",
                "jsonpath={.status.jobState} {.status.jobId}",
            ])
            .ok()?;
        let (state, id) = state.trim().split_once(' ')?;
        (state == "RUNNING").then(|| id.to_string())
    })
    .await
    .with_context(|| op.operator_logs())?;
    let leader = poll_until("one leader and one standby", WAIT, POLL, || async {
        let pods = job_managers(&op).ok()?;
        let leader = pods.iter().find(|p| p.1 == "true")?.0.clone();
        (pods.len() == 2 && pods.iter().any(|p| p.1 == "false")).then_some(leader)
    })
    .await
    .with_context(|| format!("{:?}", job_managers(&op)))?;
    let tms = task_managers(&op)?;
    poll_until("two checkpoints of the session job", WAIT, POLL, || async {
        (log(&op, &leader).matches("completed checkpoint=").count() >= 2).then_some(())
    })
    .await
    .with_context(|| log(&op, &leader))?;
    poll_until("counts printed", WAIT, POLL, || async {
        let n: usize = tms
            .iter()
            .map(|t| counts(&log(&op, t)).values().map(Vec::len).sum::<usize>())
            .sum();
        (n >= 100).then_some(())
    })
    .await?;

    let transitions = lease_transitions(&op);
    let offsets: Vec<(String, usize)> = job_managers(&op)?
        .into_iter()
        .map(|(p, _)| {
            let len = log(&op, &p).len();
            (p, len)
        })
        .collect();
    let tm_offsets: Vec<usize> = tms.iter().map(|t| log(&op, t).len()).collect();
    let pid = pid(&op, &leader)?;
    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -9 {pid}");
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
    let resumed = poll_until("the session job to resume", WAIT, POLL, || async {
        let l = log(&op, &new_leader);
        let l = l.get(offset..)?;
        let at = l.find(&format!(
            "Resuming job {job_id} from its latest completed checkpoint "
        ))?;
        let rest = &l[at..];
        let line = &rest[..rest.find('\n')?];
        line.rsplit("chk-").next()?.trim().parse::<u64>().ok()
    })
    .await
    .with_context(|| log(&op, &new_leader))?;
    let checked = counts_continue(&op, &tms, &tm_offsets, false).await?;
    let processing = secs(killed);
    let by = if log(&op, &new_leader)[offset..].contains("Recovered session job") {
        "the new leader's recovery"
    } else {
        "the operator"
    };
    eprintln!(
        "session cluster HA failover (lease 4 s / renew 3 s / retry 1 s): Lease taken \
         {elected:.2} s after the SIGKILL, 100 counts of the resumed job {processing:.2} s after \
         it (job {job_id} resumed from chk-{resumed}, submitted again by {by}); {checked} keys \
         continued exactly"
    );
    op.kubectl(&["delete", "ssj", "counts", "--wait=true", "--timeout=120s"])?;
    op.kubectl(&[
        "delete",
        "streamcluster",
        JOB,
        "--wait=true",
        "--timeout=120s",
    ])?;
    op.cluster.stop()?;
    Ok(())
}
