//! The operator end to end on the real control plane, without savepoints:
//!
//! (a) the Helm chart installed with `helm install`, the operator running from it and the CRD
//!     coming from the chart;
//! (b) `kubectl apply` of `examples/streamjobs/counting-basic.yaml` (storage on the cluster's
//!     MinIO through its Secret) reaching `Running` with job state `RUNNING`, confirmed on the
//!     JobManager's REST API with records flowing; the TaskManager pods become Ready and
//!     `GET /v1/taskmanagers` lists each as `REGISTERED` with its slots offered;
//! (c) `examples/streamjobs/bad-parallelism.yaml` rejected by the API server naming the fields;
//! (d) suspend and resume through `spec.job.state` (upgrade mode `stateless`: cancel, pods gone,
//!     a new job on resume);
//! (e) `kubectl delete` going through the finalizer, children gone.
//!
//! Build first: `cargo build -p fjord-operator -p fjord-worker --bins`, then
//! `cargo test -p fjord-e2e --test operator_lifecycle -- --nocapture`.

mod operator_support;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use fjord_client::api::{JobState, TaskManagerState};
use fjord_e2e::poll_until;
use operator_support::{OperatorCluster, POLL, secs};

const JOB: &str = "counting";
/// `spec.taskManager.slots` in counting-basic.yaml.
const TM_SLOTS: u32 = 1;
/// `parallelism / slots` TaskManagers.
const TM_REPLICAS: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamjob_lifecycle_from_helm_install_to_delete() -> anyhow::Result<()> {
    // (a) helm install; the chart carries the CRD.
    let t = Instant::now();
    let op = OperatorCluster::start("operator-lifecycle")?;
    eprintln!("cluster up and operator rolled out in {:.1}s", secs(t));
    let crd = op.kubectl(&[
        "get",
        "crd",
        "streamjobs.fjord.dev",
        "-o",
        "jsonpath={.metadata.labels.app\\.kubernetes\\.io/managed-by}",
    ])?;
    ensure!(
        crd == "Helm",
        "the CRD is not the chart's: managed-by={crd:?}"
    );

    // (c) a bad manifest is rejected by the API server, naming the fields.
    let bad = std::fs::read_to_string(
        operator_support::repo().join("examples/streamjobs/bad-parallelism.yaml"),
    )?;
    let err = op
        .apply(&bad)
        .expect_err("the API server must reject bad-parallelism.yaml")
        .to_string();
    for field in ["spec.job.maxParallelism", "spec.checkpointing.storage"] {
        ensure!(
            err.contains(field),
            "rejection does not name {field}: {err}"
        );
    }
    ensure!(
        op.kubectl(&[
            "get",
            "streamjob",
            "counting-bad",
            "--ignore-not-found",
            "-o",
            "name"
        ])?
        .is_empty(),
        "a rejected StreamJob was stored"
    );

    // (b) deploy and reach Running / RUNNING.
    let manifest = op.example("counting-basic.yaml", "lifecycle")?;
    let applied = Instant::now();
    op.apply(&manifest)?;
    let sj = op.wait_running(JOB, Duration::from_secs(120)).await?;
    let to_running = secs(applied);
    eprintln!("FIGURE kubectl apply -> Running/RUNNING: {to_running:.2}s");
    let finalizers = sj["metadata"]["finalizers"].to_string();
    ensure!(
        finalizers.contains("fjord.dev/finalizer"),
        "no finalizer: {finalizers}"
    );
    let status = &sj["status"];
    let job_id = status["jobId"]
        .as_str()
        .context("status.jobId")?
        .to_string();
    ensure!(
        status["observedGeneration"] == sj["metadata"]["generation"],
        "{status}"
    );
    let ready = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    ensure!(ready, "Ready condition not True: {status}");

    // The JobManager's REST API says the same, and the counts flow.
    let jm = op.jobmanager(JOB)?;
    let jobs = jm.jobs().await?;
    ensure!(jobs.jobs.len() == 1, "{jobs:?}");
    ensure!(
        jobs.jobs[0].id == job_id,
        "status.jobId {job_id} vs {jobs:?}"
    );
    ensure!(jobs.jobs[0].state == JobState::Running, "{jobs:?}");
    ensure!(jobs.jobs[0].name == JOB, "{jobs:?}");
    let config = jm.config().await?;
    ensure!(config.parallelism == Some(2), "{config:?}");
    ensure!(
        config.job_args == ["--keys", "100", "--rate", "1000"],
        "{config:?}"
    );
    poll_until("records to flow", Duration::from_secs(30), POLL, || async {
        let details = jm.job(&job_id).await.ok()?;
        let counted: u64 = details.vertices.iter().map(|v| v.records_in).sum();
        (counted > 0).then_some(())
    })
    .await?;
    // The TaskManager pods become Ready (their data port listens once registered) and the
    // JobManager lists each as REGISTERED with the slots of spec.taskManager.slots offered.
    let tms = wait_taskmanagers_ready(&op, Duration::from_secs(60)).await?;
    eprintln!(
        "FIGURE kubectl apply -> TaskManager pods Ready: {:.2}s ({})",
        secs(applied),
        tms.join(", ")
    );
    let list = poll_until(
        "the JobManager to list the TaskManagers as REGISTERED",
        Duration::from_secs(30),
        POLL,
        || async {
            let list = jm.task_managers().await.ok()?;
            let all = tms.iter().all(|pod| {
                list.task_managers.iter().any(|t| {
                    &t.id == pod
                        && t.state == TaskManagerState::Registered
                        && t.slots == TM_SLOTS
                        && t.slots_offered == TM_SLOTS
                })
            });
            all.then_some(list)
        },
    )
    .await
    .with_context(|| format!("TaskManager pods {tms:?}"))?;
    ensure!(
        list.slots_available >= TM_SLOTS * tms.len() as u32,
        "{list:?}"
    );

    // (d) suspend and resume through spec.job.state, stateless: cancel, pods gone, new job.
    op.patch(
        JOB,
        r#"{"spec":{"job":{"upgradeMode":"stateless","state":"suspended"}}}"#,
    )?;
    op.wait_for(JOB, "Suspended", Duration::from_secs(120), |s| {
        s["lifecycleState"] == "Suspended"
    })
    .await?;
    op.wait_no_pods(JOB, Duration::from_secs(60)).await?;
    ensure!(
        op.children(JOB, "deployments")?.is_empty(),
        "deployments left while suspended"
    );
    op.patch(JOB, r#"{"spec":{"job":{"state":"running"}}}"#)?;
    let resumed = op.wait_running(JOB, Duration::from_secs(120)).await?;
    let new_id = resumed["status"]["jobId"].as_str().unwrap_or_default();
    ensure!(new_id != job_id, "resume kept the old job id {job_id}");
    let jobs = op.jobmanager(JOB)?.jobs().await?;
    ensure!(
        jobs.jobs.len() == 1 && jobs.jobs[0].state == JobState::Running,
        "{jobs:?}"
    );

    // (e) delete: through the finalizer, then the children are garbage-collected.
    let deleted = Instant::now();
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;
    eprintln!("deleted through the finalizer in {:.1}s", secs(deleted));
    op.wait_no_pods(JOB, Duration::from_secs(60)).await?;
    poll_until(
        "children to be collected",
        Duration::from_secs(60),
        POLL,
        || async {
            let left: usize = ["deployments", "services", "configmaps"]
                .iter()
                .map(|k| op.children(JOB, k).map(|c| c.len()).unwrap_or(1))
                .sum();
            (left == 0).then_some(())
        },
    )
    .await?;

    op.cluster.stop()?;
    Ok(())
}

/// Waits (bounded) until the StreamJob's `TM_REPLICAS` TaskManager pods are all Ready; returns
/// their names. On timeout the error carries the pods and their logs.
async fn wait_taskmanagers_ready(
    op: &OperatorCluster,
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let selector = format!("fjord.dev/streamjob={JOB},app.kubernetes.io/component=taskmanager");
    let ready = poll_until("TaskManager pods to be Ready", timeout, POLL, || async {
        let out = op
            .kubectl(&[
                "get",
                "pods",
                "-l",
                &selector,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp} \
                 {.status.containerStatuses[0].ready}{\"\\n\"}{end}",
            ])
            .ok()?;
        let pods: Vec<(String, bool)> = out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // name, ready (no deletionTimestamp): a live pod.
                (f.len() == 2).then(|| (f[0].to_string(), f[1] == "true"))
            })
            .collect();
        (pods.len() == TM_REPLICAS && pods.iter().all(|(_, r)| *r))
            .then(|| pods.into_iter().map(|(n, _)| n).collect::<Vec<_>>())
    })
    .await;
    match ready {
        Ok(pods) => Ok(pods),
        Err(e) => {
            let pods = op
                .kubectl(&["get", "pods", "-l", &selector, "-o", "wide"])
                .unwrap_or_default();
            let logs = op
                .kubectl(&["logs", "-l", &selector, "--tail=20", "--prefix"])
                .unwrap_or_else(|e| format!("(none: {e})"));
            anyhow::bail!("{e}\npods:\n{pods}\nTaskManager logs:\n{logs}")
        }
    }
}
