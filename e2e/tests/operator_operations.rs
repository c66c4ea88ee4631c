//! What operations teams configure, end to end on the real control plane and MinIO:
//!
//! 0. the namespace enforces Pod Security `restricted` (a root Pod is refused), and the job's
//!    Pods are admitted all the same;
//! 1. `examples/streamjobs/counting-operations.yaml`, applied verbatim after the
//!    `kubectl create serviceaccount counting` its comment asks for: the Pods run as that
//!    ServiceAccount, the JobManager logs JSON lines and the TaskManagers get their own log
//!    filter, the Ingress `counting-rest` exists on the API server routing to the JobManager's
//!    REST port, and the job runs; `status.jobRestarts`, `status.jobStartTime` and a fresh
//!    `status.lastCheckpoint` are reported, and `status.dashboardUrl` is the Ingress's URL;
//!    changing `spec.ingress` (path, class, annotations, TLS Secret) changes the Ingress and
//!    the URL (`https://` with the TLS Secret), not the job;
//! 2. removing `spec.ingress` deletes the Ingress and leaves the job running (no redeploy);
//!    `status.dashboardUrl` is then the JobManager Service's URL, which serves the dashboard;
//! 3. a credentials Secret without `AWS_SECRET_ACCESS_KEY`: the StreamJob says
//!    `Degraded StorageCredentialsIncomplete` naming the Secret and the key, with an Event.
//!
//! Build first (see `tests/operator_support/mod.rs`), then
//! `cargo test -p fjord-e2e --test operator_operations -- --nocapture`.

mod operator_support;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::jiff::Timestamp;
use operator_support::{OperatorCluster, secs};
use serde_json::Value;

const JOB: &str = "counting";
const WAIT: Duration = Duration::from_secs(180);

fn degraded(status: &Value) -> Option<(String, String)> {
    status["conditions"].as_array()?.iter().find_map(|c| {
        (c["type"] == "Degraded" && c["status"] == "True").then(|| {
            (
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_logging_ingress_status_and_storage_keys() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-operations")?;

    // 0. The namespace enforces Pod Security `restricted`: the API server refuses a Pod that
    //    runs as root, so the job's Pods below are admitted only because they meet it.
    op.kubectl(&[
        "label",
        "namespace",
        "default",
        "pod-security.kubernetes.io/enforce=restricted",
    ])?;
    let refused = op
        .apply(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: root-pod}\nspec:\n  containers: [{name: c, image: fjord/worker:e2e}]\n",
        )
        .expect_err("a Pod that does not meet `restricted` is refused");
    ensure!(
        refused.to_string().contains("violates PodSecurity"),
        "{refused:#}"
    );

    // 1. The example, verbatim, after the command its comment gives.
    op.kubectl(&["create", "serviceaccount", "counting"])?;
    op.apply(&op.example("counting-operations.yaml")?)?;
    let sj = op.wait_running(JOB, WAIT).await?;
    let pods: Value = serde_json::from_str(&op.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("fjord.dev/streamjob={JOB}"),
        "-o",
        "json",
    ])?)?;
    let pods = pods["items"].as_array().context("pods")?.clone();
    ensure!(
        pods.len() >= 3,
        "a JobManager and two TaskManagers: {}",
        pods.len()
    );
    for p in &pods {
        ensure!(
            p["spec"]["serviceAccountName"] == "counting",
            "{} runs as {}",
            p["metadata"]["name"],
            p["spec"]["serviceAccountName"]
        );
    }
    let jm = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "jobmanager")
        .context("JobManager pod")?;
    let jm_name = jm["metadata"]["name"].as_str().unwrap_or_default();
    let log = std::fs::read_to_string(
        op.cluster
            .run_dir()
            .join(format!("agent/logs/default_{jm_name}_fjord.log")),
    )?;
    let json_lines = log
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"].is_string()))
        .count();
    ensure!(
        json_lines > 0,
        "no JSON log line from the JobManager:\n{log}"
    );
    let tm = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["app.kubernetes.io/component"] == "taskmanager")
        .context("TaskManager pod")?;
    let tm_env = &tm["spec"]["containers"][0]["env"];
    ensure!(
        tm_env.as_array().is_some_and(|e| e
            .iter()
            .any(|v| v["name"] == "FJORD_LOG" && v["value"] == "info,fjord=debug")),
        "TaskManager env: {tm_env}"
    );

    let ingress: Value =
        serde_json::from_str(&op.kubectl(&["get", "ingress", "counting-rest", "-o", "json"])?)?;
    let rule = &ingress["spec"]["rules"][0];
    ensure!(rule["host"] == "counting.fjord.example.com", "{ingress}");
    let backend = &rule["http"]["paths"][0]["backend"]["service"];
    ensure!(
        backend["name"] == "counting-jobmanager" && backend["port"]["name"] == "rest",
        "{ingress}"
    );
    ensure!(
        ingress["metadata"]["ownerReferences"][0]["name"] == JOB,
        "the Ingress goes with the StreamJob: {ingress}"
    );
    ensure!(
        sj["status"]["dashboardUrl"] == "http://counting.fjord.example.com/",
        "status.dashboardUrl: {}",
        sj["status"]
    );

    // The Ingress follows spec.ingress: a path, a class, annotations and a TLS Secret.
    let job_id = sj["status"]["jobId"].clone();
    op.patch(
        JOB,
        r#"{"spec":{"ingress":{"path":"/counting","className":"nginx","tlsSecretName":"counting-dashboard-tls","annotations":{"nginx.ingress.kubernetes.io/backend-protocol":"HTTP"}}}}"#,
    )?;
    let ingress: Value = fjord_e2e::poll_until(
        "the Ingress to get the TLS Secret",
        WAIT,
        operator_support::POLL,
        || async {
            let text = op
                .kubectl(&["get", "ingress", "counting-rest", "-o", "json"])
                .ok()?;
            let ingress: Value = serde_json::from_str(&text).ok()?;
            (ingress["spec"]["tls"][0]["secretName"] == "counting-dashboard-tls").then_some(ingress)
        },
    )
    .await?;
    let spec = &ingress["spec"];
    ensure!(
        spec["ingressClassName"] == "nginx"
            && spec["tls"][0]["hosts"][0] == "counting.fjord.example.com"
            && spec["rules"][0]["host"] == "counting.fjord.example.com"
            && spec["rules"][0]["http"]["paths"][0]["path"] == "/counting"
            && spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
                == "counting-jobmanager"
            && ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"]
                == "HTTP",
        "{ingress}"
    );
    let sj = op
        .wait_for(JOB, "the Ingress's https URL in status", WAIT, |s| {
            s["dashboardUrl"] == "https://counting.fjord.example.com/counting/"
        })
        .await?;
    ensure!(
        sj["status"]["jobId"] == job_id,
        "changing the Ingress redeployed the job: {}",
        sj["status"]
    );

    // Status a person and a GitOps tool can trust.
    ensure!(sj["status"]["jobRestarts"] == 0, "{}", sj["status"]);
    let started = sj["status"]["jobStartTime"]
        .as_str()
        .context("status.jobStartTime")?;
    let started: Timestamp = started.parse()?;
    ensure!(
        started <= Timestamp::now(),
        "start time in the future: {started}"
    );
    let first = op
        .wait_for(JOB, "a checkpoint", WAIT, |s| {
            s["lastCheckpoint"]["id"].is_i64()
        })
        .await?;
    let first_id = first["status"]["lastCheckpoint"]["id"]
        .as_i64()
        .unwrap_or(0);
    // The checkpoint interval is 5 s; the next checkpoint reaches the status soon after.
    let t = Instant::now();
    let next = op
        .wait_for(JOB, "the next checkpoint", WAIT, |s| {
            s["lastCheckpoint"]["id"]
                .as_i64()
                .is_some_and(|id| id > first_id)
        })
        .await?;
    let completed: Timestamp = next["status"]["lastCheckpoint"]["completedAt"]
        .as_str()
        .context("completedAt")?
        .parse()?;
    let lag = Timestamp::now().as_millisecond() - completed.as_millisecond();
    eprintln!(
        "FIGURE checkpoint {} in status {:.2}s after the previous one; seen {lag} ms after it completed",
        next["status"]["lastCheckpoint"]["id"],
        secs(t)
    );

    // 2. Removing the Ingress deletes it; the job is not redeployed.
    op.patch(JOB, r#"{"spec":{"ingress":null}}"#)?;
    fjord_e2e::poll_until(
        "the Ingress to go",
        WAIT,
        operator_support::POLL,
        || async {
            op.kubectl(&["get", "ingress", "-o", "name"])
                .ok()
                .filter(|o| !o.contains("counting-rest"))
        },
    )
    .await?;
    // The URL is then the JobManager Service's, and the dashboard answers there (this process
    // resolves no Service names: the name is pinned to the JobManager Pod's IP).
    let service_url = "http://counting-jobmanager.default.svc:8081/";
    let sj = op
        .wait_for(JOB, "the Service URL in status", WAIT, |s| {
            s["dashboardUrl"] == service_url
        })
        .await?;
    ensure!(
        sj["status"]["jobId"] == job_id && sj["status"]["lifecycleState"] == "Running",
        "removing the Ingress redeployed the job: {}",
        sj["status"]
    );
    let ip: std::net::IpAddr = op.jobmanager_ip(JOB)?.parse()?;
    let page = reqwest::Client::builder()
        .resolve(
            "counting-jobmanager.default.svc",
            std::net::SocketAddr::new(ip, 8081),
        )
        .build()?
        .get(service_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    ensure!(
        page.contains("dashboard/app.js"),
        "{service_url} is not the dashboard:\n{page}"
    );
    op.kubectl(&["delete", "streamjob", JOB, "--wait=true", "--timeout=120s"])?;

    // 3. A Secret that exists but lacks the secret key.
    op.kubectl(&[
        "create",
        "secret",
        "generic",
        "half-credentials",
        "--from-literal=AWS_ACCESS_KEY_ID=someone",
        "--from-literal=AWS_ENDPOINT=http://minio:9000",
    ])?;
    let manifest = op
        .example("counting-basic.yaml")?
        .replace("name: minio-credentials", "name: half-credentials");
    ensure!(
        manifest.contains("half-credentials"),
        "manifest not changed"
    );
    let t = Instant::now();
    op.apply(&manifest)?;
    let sj = op
        .wait_for(JOB, "Degraded StorageCredentialsIncomplete", WAIT, |s| {
            degraded(s).is_some_and(|(r, _)| r == "StorageCredentialsIncomplete")
        })
        .await?;
    let (_, message) = degraded(&sj["status"]).context("degraded")?;
    ensure!(
        message.contains("half-credentials") && message.contains("AWS_SECRET_ACCESS_KEY"),
        "the message names neither the Secret nor the key: {message}"
    );
    eprintln!(
        "FIGURE Secret without AWS_SECRET_ACCESS_KEY -> Degraded StorageCredentialsIncomplete: {:.2}s",
        secs(t)
    );
    let events = op.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={JOB}"),
        "-o",
        "jsonpath={.items[*].reason}",
    ])?;
    ensure!(
        events.contains("StorageCredentialsIncomplete"),
        "events: {events}"
    );

    op.cluster.stop()?;
    Ok(())
}
