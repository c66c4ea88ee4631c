//! `spec.security` end to end on the real control plane: `examples/streamjobs/counting-secured.yaml`
//! applied verbatim (mutual TLS with operator-issued certificates, a REST token):
//!
//! (a) the operator creates the StreamJob's CA, certificate and token Secrets (cert-manager
//!     layout for the certificate) and the job reaches `Running`/`RUNNING` with its two
//!     TaskManagers registered and records flowing — over mutual TLS, since the ConfigMap turns
//!     it on for both roles (and both roles' start-up lines say so);
//! (b) the JobManager's REST API is served over HTTPS with the issued certificate (verified
//!     against the Secret's ca.crt and the Service name), refuses a call without the token
//!     (401) and answers with it,
//!     the job running as counting-basic.yaml's does (same parallelism and arguments);
//!     `status.dashboardUrl` is that HTTPS Service URL, where the dashboard's page is served
//!     without the token;
//! (c) the operator still drives the job through the token: a suspend in savepoint mode stops
//!     it with a savepoint (recorded as the restore path) and removes the Pods.
//!
//!
//! A second test applies `examples/sessions/session-cluster-secured.yaml` verbatim: a
//! StreamCluster with the same `spec.security` (and standby JobManagers) and a StreamSessionJob
//! the operator submits and follows over HTTPS with the token.
//!
//! A third test rotates the CA of that secured StreamJob while it runs
//! ([`a_requested_ca_rotation_reaches_the_running_pods_and_the_job_keeps_running`]): the
//! annotation command of docs/security.md, run verbatim, starts the operator's three steps
//! (with the chart's `caRotation.propagationSeconds` lowered to 6), the node agent carries each
//! step's Secret into the running Pods as a kubelet does (a `..data` swap), the processes
//! reload it; afterwards the JobManager serves REST with a certificate of the new CA only, a
//! replaced TaskManager with only the new files registers and the job checkpoints again.
//!
//! Build first: `cargo build -p fjord-operator --bins && cargo build -p fjord-worker --features s3 --bins`,
//! then `cargo test -p fjord-e2e --test operator_security -- --nocapture`.

mod operator_support;

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use fjord_client::api::JobState;
use fjord_client::{Client, ClientError};
use fjord_e2e::poll_until;
use operator_support::{OperatorCluster, POLL, secs};

const JOB: &str = "counting-secured";

/// How long each step of a CA rotation waits in the rotation tests (the chart's
/// `caRotation.propagationSeconds`; 600 by default).
const ROTATION_WAIT_SECS: u64 = 6;

/// The chart value that sets [`ROTATION_WAIT_SECS`].
fn rotation_wait() -> String {
    format!("caRotation.propagationSeconds={ROTATION_WAIT_SECS}")
}

/// A REST client of the JobManager Service `host` (pinned to `ip`), trusting the CA `ca`,
/// sending `token` when given.
fn https_client(
    host: &str,
    ip: std::net::IpAddr,
    ca: &[u8],
    token: Option<&str>,
) -> anyhow::Result<Client> {
    let mut builder = reqwest::Client::builder()
        .resolve(host, std::net::SocketAddr::new(ip, 8081))
        .add_root_certificate(reqwest::Certificate::from_pem(ca)?);
    if let Some(t) = token {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {t}").parse()?,
        );
        builder = builder.default_headers(headers);
    }
    Ok(Client::with_http(
        &format!("https://{host}:8081/v1"),
        builder.build()?,
    )?)
}

/// The value of `key` in Secret `secret`, decoded.
fn secret_value(op: &OperatorCluster, secret: &str, key: &str) -> anyhow::Result<Vec<u8>> {
    let b64 = op.kubectl(&[
        "get",
        "secret",
        secret,
        "-o",
        &format!("jsonpath={{.data.{}}}", key.replace('.', "\\.")),
    ])?;
    Ok(base64::engine::general_purpose::STANDARD.decode(b64.trim())?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_streamjob_runs_refuses_anonymous_rest_and_is_still_driven() -> anyhow::Result<()> {
    let op = OperatorCluster::start("operator-security")?;
    let applied = Instant::now();
    op.apply(&op.example("counting-secured.yaml")?)?;
    let sj = op.wait_running(JOB, Duration::from_secs(180)).await?;
    eprintln!(
        "FIGURE kubectl apply -> Running/RUNNING (secured): {:.2}s",
        secs(applied)
    );
    let job_id = sj["status"]["jobId"]
        .as_str()
        .context("status.jobId")?
        .to_string();

    // (a) the Secrets, owned by the StreamJob.
    let tls_type = op.kubectl(&[
        "get",
        "secret",
        &format!("{JOB}-tls"),
        "-o",
        "jsonpath={.type}",
    ])?;
    ensure!(tls_type.trim() == "kubernetes.io/tls", "{tls_type}");
    for (secret, keys) in [
        (format!("{JOB}-tls"), &["tls.crt", "tls.key", "ca.crt"][..]),
        (format!("{JOB}-ca"), &["ca.crt", "ca.key"][..]),
        (format!("{JOB}-rest-token"), &["token"][..]),
    ] {
        let json = op.kubectl(&["get", "secret", &secret, "-o", "json"])?;
        let v: serde_json::Value = serde_json::from_str(&json)?;
        for k in keys {
            ensure!(v["data"][k].is_string(), "{secret} lacks {k}");
        }
        ensure!(
            v["metadata"]["ownerReferences"][0]["name"] == JOB,
            "{secret} is not owned by the StreamJob"
        );
    }
    let cm = op.kubectl(&["get", "configmap", &format!("{JOB}-config"), "-o", "json"])?;
    ensure!(
        cm.contains("security.ssl.internal.enabled") && cm.contains("security.rest.token-file"),
        "the ConfigMap does not turn security on: {cm}"
    );
    ensure!(
        !cm.contains("BEGIN"),
        "a certificate or key leaked into the ConfigMap"
    );

    // (b) HTTPS with the CA of the StreamJob's Secret; no token: 401; the token: the job as
    // counting-basic.yaml runs it. The certificate names the Service, which this process cannot
    // resolve: that name is pinned to the JobManager Pod's IP.
    let ns = sj["metadata"]["namespace"].as_str().context("namespace")?;
    let ip: std::net::IpAddr = op.jobmanager_ip(JOB)?.parse()?;
    let host = format!("{JOB}-jobmanager.{ns}.svc");
    let secret_value = |secret: &str, key: &str| secret_value(&op, secret, key);
    let ca = secret_value(&format!("{JOB}-tls"), "ca.crt")?;
    let https = |token: Option<&str>| https_client(&host, ip, &ca, token);
    match https(None)?.jobs().await {
        Err(ClientError::Api { status: 401, .. }) => {}
        other => anyhow::bail!("a call without the token must get 401, got {other:?}"),
    }
    // The status names the dashboard at that HTTPS URL; its page is served without the
    // token (the page asks for it), the API under it is not.
    ensure!(
        sj["status"]["dashboardUrl"] == format!("https://{host}:8081/"),
        "status.dashboardUrl: {}",
        sj["status"]
    );
    let page = reqwest::Client::builder()
        .resolve(&host, std::net::SocketAddr::new(ip, 8081))
        .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
        .build()?
        .get(format!("https://{host}:8081/"))
        .send()
        .await?;
    ensure!(
        page.status() == 200,
        "the dashboard page: {}",
        page.status()
    );
    ensure!(
        page.text().await?.contains("dashboard/app.js"),
        "not the dashboard page"
    );
    ensure!(
        Client::new(&format!("http://{ip}:8081/v1"))?
            .jobs()
            .await
            .is_err(),
        "the REST API still answers plain HTTP"
    );
    let token = String::from_utf8(secret_value(&format!("{JOB}-rest-token"), "token")?)?;
    let jm = https(Some(token.trim()))?;
    let jobs = jm.jobs().await?;
    ensure!(
        jobs.jobs.len() == 1 && jobs.jobs[0].id == job_id,
        "{jobs:?}"
    );
    ensure!(jobs.jobs[0].state == JobState::Running, "{jobs:?}");
    let config = jm.config().await?;
    ensure!(config.parallelism == Some(2), "{config:?}");
    ensure!(
        config.job_args == ["--keys", "100", "--rate", "1000"],
        "{config:?}"
    );
    poll_until("records to flow", Duration::from_secs(60), POLL, || async {
        let details = jm.job(&job_id).await.ok()?;
        let counted: u64 = details.vertices.iter().map(|v| v.records_in).sum();
        (counted > 0).then_some(())
    })
    .await?;
    let tms = poll_until(
        "two TaskManagers registered over mTLS",
        Duration::from_secs(60),
        POLL,
        || async {
            let list = jm.task_managers().await.ok()?;
            (list.task_managers.len() == 2).then_some(list)
        },
    )
    .await?;
    eprintln!(
        "TaskManagers: {:?}",
        tms.task_managers.iter().map(|t| &t.id).collect::<Vec<_>>()
    );
    op.wait_for(
        JOB,
        "a completed checkpoint",
        Duration::from_secs(60),
        |s| s["lastCheckpoint"]["path"].is_string(),
    )
    .await?;

    // (c) the operator drives it with the token: suspend stops with a savepoint.
    op.patch(JOB, r#"{"spec":{"job":{"state":"suspended"}}}"#)?;
    let sj = op
        .wait_for(JOB, "Suspended", Duration::from_secs(120), |s| {
            s["lifecycleState"] == "Suspended"
        })
        .await?;
    let resume_from = sj["status"]["restorePath"]
        .as_str()
        .context("a suspend in savepoint mode records where it resumes from")?;
    ensure!(
        resume_from.starts_with("s3://fjord/savepoints/counting-secured/"),
        "{resume_from}"
    );
    op.wait_no_pods(JOB, Duration::from_secs(60)).await?;
    let logs = op.operator_logs();
    ensure!(
        !logs.contains(token.trim()),
        "the token appears in the operator's log"
    );
    Ok(())
}

/// `examples/sessions/session-cluster-secured.yaml` applied verbatim: a StreamCluster with
/// `spec.security` (mutual TLS, HTTPS REST, a token) and standby JobManagers, and a
/// StreamSessionJob on it. The operator issues the cluster's Secrets (owned by the
/// StreamCluster), submits and follows the job through HTTPS with the token (it reaches
/// `RUNNING`), the cluster reports its TaskManagers registered over mutual TLS, and the REST
/// API refuses a call without the token (401) and plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secured_session_cluster_runs_its_jobs_over_tls_with_a_token() -> anyhow::Result<()> {
    const CLUSTER: &str = "secured-session";
    // Rotation steps 6 s apart (the end of the test rotates the cluster's CA on request).
    let op = OperatorCluster::start_with("operator-session-security", &[&rotation_wait()])?;
    let manifest = std::fs::read_to_string(
        operator_support::repo().join("examples/sessions/session-cluster-secured.yaml"),
    )?;
    op.apply(&manifest)?;
    let job_id = poll_until(
        "the session job RUNNING",
        Duration::from_secs(180),
        POLL,
        || async {
            let s = op
                .kubectl(&[
                    "get",
                    "ssj",
                    "secured-counts",
                    "-o",
                    "jsonpath={.status.jobState} {.status.jobId}",
                ])
                .ok()?;
            let (state, id) = s.trim().split_once(' ')?;
            (state == "RUNNING").then(|| id.to_string())
        },
    )
    .await
    .with_context(|| op.operator_logs())?;
    for secret in ["tls", "ca", "rest-token"].map(|s| format!("{CLUSTER}-{s}")) {
        let owner = op.kubectl(&[
            "get",
            "secret",
            &secret,
            "-o",
            "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
        ])?;
        ensure!(
            owner.trim() == format!("StreamCluster/{CLUSTER}"),
            "{secret} is owned by {owner}"
        );
    }
    let ready = poll_until(
        "the cluster Ready with both TaskManagers",
        Duration::from_secs(60),
        POLL,
        || async {
            let s = op
                .kubectl(&[
                    "get",
                    "streamcluster",
                    CLUSTER,
                    "-o",
                    "jsonpath={.status.lifecycleState} {.status.readyTaskManagers}",
                ])
                .ok()?;
            (s.trim() == "Ready 2").then_some(s)
        },
    )
    .await?;
    eprintln!("StreamCluster {CLUSTER}: {ready}");
    let ns = "default";
    let host = format!("{CLUSTER}-jobmanager.{ns}.svc");
    // The leader's address (a standby binds no REST port; the Service selects the leader).
    let ip: std::net::IpAddr = poll_until(
        "a leading JobManager",
        Duration::from_secs(60),
        POLL,
        || async {
            let ip = op
                .kubectl(&[
                    "get",
                    "pods",
                    "-l",
                    &format!("fjord.dev/streamjob={CLUSTER},fjord.dev/jobmanager-leader=true"),
                    "-o",
                    "jsonpath={.items[0].status.podIP}",
                ])
                .ok()?;
            ip.trim().parse().ok()
        },
    )
    .await?;
    let ca = secret_value(&op, &format!("{CLUSTER}-tls"), "ca.crt")?;
    match https_client(&host, ip, &ca, None)?.jobs().await {
        Err(ClientError::Api { status: 401, .. }) => {}
        other => anyhow::bail!("a call without the token must get 401, got {other:?}"),
    }
    ensure!(
        Client::new(&format!("http://{ip}:8081/v1"))?
            .jobs()
            .await
            .is_err(),
        "the REST API still answers plain HTTP"
    );
    let token = String::from_utf8(secret_value(
        &op,
        &format!("{CLUSTER}-rest-token"),
        "token",
    )?)?;
    let jm = https_client(&host, ip, &ca, Some(token.trim()))?;
    let jobs = jm.jobs().await?;
    ensure!(
        jobs.jobs
            .iter()
            .any(|j| j.id == job_id && j.state == JobState::Running),
        "{jobs:?}"
    );
    ensure!(
        jm.task_managers().await?.task_managers.len() == 2,
        "both TaskManagers registered over mutual TLS"
    );
    ensure!(
        !op.operator_logs().contains(token.trim()),
        "the token appears in the operator's log"
    );

    // A CA rotation asked for on the StreamCluster: its three steps reach the cluster's
    // Secret, its running JobManager then serves REST with the new CA's certificate only, and
    // the session job runs on.
    op.kubectl(&[
        "annotate",
        "streamcluster",
        CLUSTER,
        "fjord.dev/rotate-ca=session-rotation-1",
    ])?;
    let requested = Instant::now();
    let (new_ca, [trusting, switched, stable]) =
        follow_rotation(&op, &format!("{CLUSTER}-tls"), &ca, requested).await?;
    eprintln!(
        "FIGURE StreamCluster CA rotation steps after the request (propagation {ROTATION_WAIT_SECS} s): \
         trusting {trusting:.1}s, switched {switched:.1}s, stable {stable:.1}s"
    );
    let client = |ca: &[u8]| https_client(&host, ip, ca, Some(token.trim()));
    served_with_the_new_ca_only(client, &new_ca, &ca, &job_id).await?;
    op.kubectl(&[
        "delete",
        "ssj",
        "secured-counts",
        "--wait=true",
        "--timeout=120s",
    ])?;
    op.kubectl(&[
        "delete",
        "streamcluster",
        CLUSTER,
        "--wait=true",
        "--timeout=120s",
    ])?;
    op.cluster.stop()?;
    Ok(())
}

/// The `kubectl annotate` command docs/security.md gives to rotate a CA ("Rotating the CA").
fn rotation_command() -> anyhow::Result<String> {
    let doc = std::fs::read_to_string(operator_support::repo().join("docs/security.md"))?;
    doc.lines()
        .find(|l| l.starts_with("kubectl annotate streamjob counting-secured fjord.dev/rotate-ca="))
        .map(str::to_string)
        .context("docs/security.md shows no `kubectl annotate ... fjord.dev/rotate-ca` command")
}

/// Follows a CA rotation through the certificate Secret `tls_secret` (whose CA was `old_ca`):
/// the bundle of both CAs with the old leaf, a leaf of the new CA, the new CA alone. Returns
/// the new CA and the seconds after `requested` at which each step was seen.
async fn follow_rotation(
    op: &OperatorCluster,
    tls_secret: &str,
    old_ca: &[u8],
    requested: Instant,
) -> anyhow::Result<(Vec<u8>, [f64; 3])> {
    let tls_now = || -> anyhow::Result<(Vec<u8>, String)> {
        let ca = secret_value(op, tls_secret, "ca.crt")?;
        let issuer = op.kubectl(&[
            "get",
            "secret",
            tls_secret,
            "-o",
            "jsonpath={.metadata.annotations.fjord\\.dev/issuer}",
        ])?;
        Ok((ca, issuer.trim().to_string()))
    };
    let (_, old_issuer) = tls_now()?;
    let step_timeout = Duration::from_secs(90);
    poll_until("1. the bundle of both CAs", step_timeout, POLL, || async {
        let (ca, issuer) = tls_now().ok()?;
        (pem_count(&ca) == 2 && issuer == old_issuer).then_some(())
    })
    .await?;
    let trusting = secs(requested);
    poll_until(
        "2. a certificate of the new CA",
        step_timeout,
        POLL,
        || async {
            let (ca, issuer) = tls_now().ok()?;
            (pem_count(&ca) == 2 && issuer != old_issuer).then_some(())
        },
    )
    .await?;
    let switched = secs(requested);
    let new_ca = poll_until("3. the new CA alone", step_timeout, POLL, || async {
        let (ca, _) = tls_now().ok()?;
        (pem_count(&ca) == 1 && ca != old_ca).then_some(ca)
    })
    .await?;
    Ok((new_ca, [trusting, switched, secs(requested)]))
}

/// Waits until a REST client trusting only `new_ca` (from `client`) is served, with job
/// `job_id` running, then checks that one trusting only `old_ca` is refused: the running
/// JobManager presents a certificate of the new CA.
async fn served_with_the_new_ca_only(
    client: impl Fn(&[u8]) -> anyhow::Result<Client>,
    new_ca: &[u8],
    old_ca: &[u8],
    job_id: &str,
) -> anyhow::Result<()> {
    let served = poll_until(
        "the JobManager's REST API served with the new CA's certificate",
        Duration::from_secs(60),
        POLL,
        || async { client(new_ca).ok()?.jobs().await.ok() },
    )
    .await?;
    ensure!(
        served
            .jobs
            .iter()
            .any(|j| j.id == job_id && j.state == JobState::Running),
        "{served:?}"
    );
    ensure!(
        client(old_ca)?.jobs().await.is_err(),
        "a client trusting only the dropped CA is still served"
    );
    Ok(())
}

/// The certificates in a PEM bundle.
fn pem_count(pem: &[u8]) -> usize {
    String::from_utf8_lossy(pem)
        .matches("BEGIN CERTIFICATE")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requested_ca_rotation_reaches_the_running_pods_and_the_job_keeps_running()
-> anyhow::Result<()> {
    let op = OperatorCluster::start_with("operator-ca-rotation-pods", &[&rotation_wait()])?;
    op.apply(&op.example("counting-secured.yaml")?)?;
    let sj = op.wait_running(JOB, Duration::from_secs(180)).await?;
    let job_id = sj["status"]["jobId"]
        .as_str()
        .context("status.jobId")?
        .to_string();
    let ns = sj["metadata"]["namespace"]
        .as_str()
        .context("namespace")?
        .to_string();
    let host = format!("{JOB}-jobmanager.{ns}.svc");
    let tls_secret = format!("{JOB}-tls");
    let old_ca = secret_value(&op, &tls_secret, "ca.crt")?;
    ensure!(pem_count(&old_ca) == 1, "one CA before the rotation");
    let token = String::from_utf8(secret_value(&op, &format!("{JOB}-rest-token"), "token")?)?;
    let token = token.trim().to_string();
    let https = |ca: &[u8]| -> anyhow::Result<Client> {
        let ip: std::net::IpAddr = op.jobmanager_ip(JOB)?.parse()?;
        https_client(&host, ip, ca, Some(&token))
    };
    let old_tms: Vec<String> = poll_until(
        "two TaskManagers registered over mTLS",
        Duration::from_secs(60),
        POLL,
        || async {
            let list = https(&old_ca).ok()?.task_managers().await.ok()?;
            (list.task_managers.len() == 2)
                .then(|| list.task_managers.into_iter().map(|t| t.id).collect())
        },
    )
    .await?;
    let before = op
        .wait_for(
            JOB,
            "a completed checkpoint",
            Duration::from_secs(60),
            |s| s["lastCheckpoint"]["id"].is_i64(),
        )
        .await?;
    let restarts_before = before["status"]["jobRestarts"].as_i64().unwrap_or(0);

    // The documented command, verbatim, with the test cluster's kubectl and kubeconfig.
    let command = rotation_command()?;
    let kubectl = op.cluster.kubectl_command();
    let kubectl_dir = std::path::Path::new(kubectl.get_program())
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        kubectl_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &command])
        .env("PATH", path)
        .env("KUBECONFIG", op.cluster.kubeconfig())
        .output()?;
    ensure!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requested = Instant::now();

    // The three steps, as the Pods see them in the certificate Secret.
    let (new_ca, [trusting, switched, stable]) =
        follow_rotation(&op, &tls_secret, &old_ca, requested).await?;
    eprintln!(
        "FIGURE CA rotation steps after the request (propagation {ROTATION_WAIT_SECS} s): \
         trusting {trusting:.1}s, switched {switched:.1}s, stable {stable:.1}s"
    );
    let ca_secret = op.kubectl(&["get", "secret", &format!("{JOB}-ca"), "-o", "json"])?;
    let ca_secret: serde_json::Value = serde_json::from_str(&ca_secret)?;
    let recorded = &ca_secret["metadata"]["annotations"]["fjord.dev/ca-rotation-request"];
    // The value the command set on the StreamJob (as the shell expanded it).
    let sj = op.streamjob(JOB)?;
    let expanded = sj["metadata"]["annotations"]["fjord.dev/rotate-ca"]
        .as_str()
        .context("the StreamJob carries the annotation")?
        .to_string();
    ensure!(
        !expanded.is_empty() && recorded.as_str() == Some(expanded.as_str()),
        "the CA Secret records the request {expanded:?}: {recorded}"
    );
    ensure!(
        ca_secret["metadata"]["annotations"]["fjord.dev/ca-rotation"].is_null(),
        "no rotation under way after the last step: {}",
        ca_secret["metadata"]["annotations"]
    );

    // The running JobManager took the new files: its REST certificate is of the new CA (a
    // client trusting only that CA is served; one trusting only the old CA no longer is).
    served_with_the_new_ca_only(https, &new_ca, &old_ca, &job_id).await?;
    let during = op.streamjob(JOB)?;
    ensure!(
        during["status"]["jobRestarts"].as_i64().unwrap_or(0) == restarts_before,
        "the rotation restarted the job: {}",
        during["status"]
    );

    // A TaskManager replaced now starts with the new files only (a certificate of the new CA,
    // trusting it alone): it registers with the JobManager and exchanges data with the
    // TaskManager that reloaded, and the job checkpoints again.
    let victim = &old_tms[0];
    op.kubectl(&["delete", "pod", victim, "--wait=false"])?;
    let replaced = Instant::now();
    let tms = poll_until(
        "a new TaskManager registered beside the reloaded one",
        Duration::from_secs(120),
        POLL,
        || async {
            let list = https(&new_ca).ok()?.task_managers().await.ok()?;
            let ids: Vec<String> = list
                .task_managers
                .iter()
                .filter(|t| t.state == fjord_client::api::TaskManagerState::Registered)
                .map(|t| t.id.clone())
                .collect();
            (ids.len() == 2 && !ids.contains(victim) && ids.iter().any(|i| !old_tms.contains(i)))
                .then_some(ids)
        },
    )
    .await?;
    let last_id = op.streamjob(JOB)?["status"]["lastCheckpoint"]["id"]
        .as_i64()
        .unwrap_or(0);
    op.wait_for(
        JOB,
        "RUNNING with a checkpoint after the replacement",
        Duration::from_secs(120),
        |s| {
            s["jobState"] == "RUNNING"
                && s["lastCheckpoint"]["id"].as_i64().unwrap_or(0) > last_id + 1
        },
    )
    .await?;
    eprintln!(
        "FIGURE TaskManager replaced after the rotation: registered {tms:?}, checkpointing again {:.1}s after the delete",
        secs(replaced)
    );
    let logs = op.operator_logs();
    ensure!(
        logs.contains("CA rotation requested"),
        "the operator's log does not say the rotation was requested"
    );
    ensure!(
        !logs.contains(&token),
        "the token appears in the operator's log"
    );
    Ok(())
}
