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
use operator_support::{OPERATOR_NS, OperatorCluster, POLL, RELEASE, secs};

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
    let manifest = op.example("counting-basic.yaml")?;
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
    op.wait_for(
        JOB,
        "status.taskManagers to show every TaskManager ready",
        Duration::from_secs(30),
        |s| {
            s["taskManagers"]["desired"] == TM_REPLICAS as u64
                && s["taskManagers"]["ready"] == TM_REPLICAS as u64
        },
    )
    .await?;
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

    // (f) `helm upgrade` rolls the operator: the old Pod releases the Lease on SIGTERM and the
    // new one leads at once instead of after the 15 s lease; text logs carry no colour codes.
    // The upgrade also turns the chart's NetworkPolicies on: the real API server must accept
    // them (this cluster's network does not enforce them; operator/tests/helm.rs checks what
    // they allow against the ports the operator generates).
    let old_pod = operator_pod(&op)?;
    op.cluster.helm(&[
        "upgrade",
        RELEASE,
        operator_support::repo()
            .join("helm/fjord-operator")
            .to_str()
            .expect("utf-8 path"),
        "--namespace",
        OPERATOR_NS,
        "--reuse-values",
        "--set",
        "podAnnotations.rolled=yes",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "networkPolicy.namespaces={default}",
    ])?;
    for ns in [OPERATOR_NS, "default"] {
        let policies = op.kubectl(&[
            "get",
            "networkpolicy",
            "-n",
            ns,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])?;
        ensure!(
            policies.split(' ').any(|p| p.ends_with("-streamjobs")),
            "no StreamJob NetworkPolicy in {ns}: {policies:?}"
        );
    }
    let terminating = poll_until(
        "the old operator Pod to terminate",
        Duration::from_secs(120),
        POLL,
        || async {
            let ts = op
                .kubectl(&[
                    "get",
                    "pod",
                    "-n",
                    OPERATOR_NS,
                    &old_pod,
                    "--ignore-not-found",
                    "-o",
                    "jsonpath={.metadata.deletionTimestamp}",
                ])
                .ok()?;
            (!ts.is_empty()
                || op
                    .kubectl(&["get", "pod", "-n", OPERATOR_NS, &old_pod])
                    .is_err())
            .then(Instant::now)
        },
    )
    .await?;
    let new_leader = poll_until(
        "a new operator Pod to hold the Lease",
        Duration::from_secs(60),
        POLL,
        || async {
            let holder = op
                .kubectl(&[
                    "get",
                    "lease",
                    "-n",
                    OPERATOR_NS,
                    "fjord-operator",
                    "-o",
                    "jsonpath={.spec.holderIdentity}",
                ])
                .ok()?;
            (!holder.is_empty() && holder != old_pod).then_some(holder)
        },
    )
    .await?;
    eprintln!(
        "FIGURE helm upgrade: {new_leader} leads {:.2}s after {old_pod} began terminating",
        terminating.elapsed().as_secs_f64()
    );
    let old_log = std::fs::read_to_string(
        op.cluster
            .run_dir()
            .join(format!("agent/logs/{OPERATOR_NS}_{old_pod}_operator.log")),
    )?;
    ensure!(
        old_log.contains("released the leader Lease"),
        "the old operator did not release the Lease:\n{}",
        &old_log[old_log.len().saturating_sub(2000)..]
    );
    ensure!(
        !old_log.contains('\u{1b}'),
        "logFormat=text wrote ANSI escape codes"
    );

    op.cluster.stop()?;
    Ok(())
}

/// The operator's current Pod (not terminating).
fn operator_pod(op: &OperatorCluster) -> anyhow::Result<String> {
    let out = op.kubectl(&[
        "get",
        "pods",
        "-n",
        OPERATOR_NS,
        "-l",
        &format!("app.kubernetes.io/instance={RELEASE}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ])?;
    out.lines()
        .find(|l| l.split_whitespace().count() == 1)
        .map(|l| l.trim().to_string())
        .context("no running operator Pod")
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

/// `fjord run` of a manifest that must be refused: exit code 2, and stderr.
fn fjord_run_refuses(yaml: &str, file: &str) -> anyhow::Result<String> {
    let fjord = fjord_e2e::target_binary("fjord")
        .context("the fjord binary (cargo build -p fjord-worker --features s3 --bins)")?;
    let dir = std::env::temp_dir().join(format!("fjord-e2e-admission-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(file);
    std::fs::write(&path, yaml)?;
    let out = std::process::Command::new(fjord)
        .arg("run")
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        out.status.code() == Some(2),
        "fjord run {file} exited with {:?}: {stderr}",
        out.status
    );
    Ok(stderr)
}

/// Every example manifest applied verbatim (no endpoint, key or bucket rewritten: the cluster
/// has the quick start's Secret and `minio` Service), admission refusing what the operator
/// would refuse (with the words `fjord run` uses), run-time failures reported within seconds
/// from Pod status, one Event per occurrence, and a clean delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn examples_verbatim_admission_pod_failures_and_events() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-examples")?;

    // Admission: refused by the API server before anything is stored, and by `fjord run` with
    // the same message.
    let base = op.example("counting-basic.yaml")?;
    let refused = [
        (
            "parallelism.yaml",
            base.replace(
                "parallelism: 2\n    maxParallelism: 128\n",
                "parallelism: 1000\n",
            ),
            "spec.job.parallelism must be at most spec.job.maxParallelism (128 when unset)",
        ),
        (
            "credential.yaml",
            base.replace(
                "  storageCredentials:",
                "  configuration:\n    s3.secret-key: hunter2\n  storageCredentials:",
            ),
            "spec.configuration.s3.secret-key looks like a credential",
        ),
    ];
    for (file, yaml, message) in &refused {
        ensure!(yaml != &base, "{file}: the replacement did not apply");
        let err = op
            .apply(yaml)
            .expect_err("the API server must refuse it")
            .to_string();
        ensure!(err.contains(message), "{file}: API server said {err}");
        ensure!(!err.contains("hunter2"), "the value was echoed: {err}");
        ensure!(
            op.kubectl(&["get", "streamjob", JOB, "--ignore-not-found", "-o", "name"])?
                .is_empty(),
            "{file} was stored"
        );
        let stderr = fjord_run_refuses(yaml, file)?;
        ensure!(stderr.contains(message), "{file}: fjord run said {stderr}");
    }

    // The quick start and every cluster example, verbatim.
    let applied = Instant::now();
    op.apply(&base)?;
    op.wait_running(JOB, Duration::from_secs(120)).await?;
    eprintln!(
        "FIGURE examples: counting-basic.yaml -> Running: {:.2}s",
        secs(applied)
    );
    op.wait_for(
        JOB,
        "a completed checkpoint",
        Duration::from_secs(60),
        |s| s["lastCheckpoint"]["path"].is_string(),
    )
    .await?;

    op.apply(&op.example("counting-suspended.yaml")?)?;
    let sj = op
        .wait_for(JOB, "Suspended", Duration::from_secs(120), |s| {
            s["lifecycleState"] == "Suspended"
        })
        .await?;
    let resume_from = sj["status"]["restorePath"]
        .as_str()
        .context("a suspend in savepoint mode records where it resumes from")?
        .to_string();
    ensure!(
        resume_from.starts_with("s3://fjord/savepoints/counting/"),
        "{resume_from}"
    );
    op.wait_no_pods(JOB, Duration::from_secs(60)).await?;

    op.apply(&base)?;
    op.wait_running(JOB, Duration::from_secs(120)).await?;
    let config = op.jobmanager(JOB)?.config().await?;
    ensure!(
        config.restore_path.as_deref() == Some(resume_from.as_str()),
        "resumed from {:?}, not {resume_from}",
        config.restore_path
    );

    for (file, parallelism, rate) in [
        ("counting-rescale.yaml", 4, "1000"),
        ("counting-savepoint-upgrade.yaml", 2, "2000"),
    ] {
        op.apply(&op.example(file)?)?;
        let gen_now = op.streamjob(JOB)?["metadata"]["generation"].clone();
        op.wait_for(
            JOB,
            &format!("{file} running"),
            Duration::from_secs(180),
            |s| {
                s["lifecycleState"] == "Running"
                    && s["jobState"] == "RUNNING"
                    && s["lastReconciledGeneration"] == gen_now
            },
        )
        .await?;
        let config = op.jobmanager(JOB)?.config().await?;
        ensure!(
            config.parallelism == Some(parallelism) && config.job_args.contains(&rate.to_string()),
            "{file}: {config:?}"
        );
        eprintln!("{file}: running at parallelism {parallelism}");
    }

    // One Event per savepoint, each with its own path (not folded into the first message), all
    // within the API's 1 kB.
    let evs = op.events(JOB)?;
    let completed: Vec<&String> = evs
        .iter()
        .filter(|(r, _)| r == "SavepointCompleted")
        .map(|(_, m)| m)
        .collect();
    let distinct: std::collections::BTreeSet<&String> = completed.iter().copied().collect();
    ensure!(
        completed.len() >= 3 && distinct.len() == completed.len(),
        "expected a distinct SavepointCompleted Event per savepoint (suspend, rescale, upgrade): {evs:?}"
    );
    ensure!(
        evs.iter().all(|(_, m)| m.len() <= 1024),
        "an Event note exceeds 1 kB: {evs:?}"
    );

    // Run-time failures, within seconds, in the Pods' own words: a job the image does not have
    // (the JobManager crash-loops; its last log lines are in the message) and a missing Secret.
    let broken = [
        (
            "no-such-job",
            base.replace(
                "    name: counting\n    args",
                "    name: no-such-job\n    args",
            )
            .replace("  name: counting\nspec:", "  name: broken-job\nspec:"),
            "broken-job",
            "ContainerCrashing",
            "no-such-job",
        ),
        (
            "missing Secret",
            base.replace("name: minio-credentials", "name: no-such-secret")
                .replace("  name: counting\nspec:", "  name: broken-secret\nspec:"),
            "broken-secret",
            "ContainerConfigError",
            "no-such-secret",
        ),
    ];
    for (what, yaml, name, reason, text) in &broken {
        ensure!(
            yaml.contains(&format!("  name: {name}\nspec:")) && yaml.contains(text),
            "{what}: the replacement did not apply"
        );
        let t = Instant::now();
        op.apply(yaml)?;
        let sj = op
            .wait_degraded(name, reason, Duration::from_secs(60), |m| m.contains(text))
            .await
            .with_context(|| what.to_string())?;
        eprintln!(
            "FIGURE {what}: Degraded {reason} {:.1}s after apply: {}",
            secs(t),
            sj["status"]["error"]
        );
        poll_until(
            &format!("{what}: a {reason} Event"),
            Duration::from_secs(30),
            POLL,
            || async {
                op.events(name)
                    .ok()?
                    .iter()
                    .any(|(r, m)| r == reason && m.contains(text))
                    .then_some(())
            },
        )
        .await?;
        op.kubectl(&["delete", "streamjob", name, "--wait=true", "--timeout=120s"])?;
    }

    // A clean delete: no ReconcileError on the way.
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=180s"])?;
    op.wait_no_pods(JOB, Duration::from_secs(60)).await?;
    let evs = op.events(JOB)?;
    ensure!(
        !evs.iter().any(|(r, _)| r == "ReconcileError"),
        "a ReconcileError on delete: {evs:?}"
    );
    op.cluster.stop()?;
    Ok(())
}
