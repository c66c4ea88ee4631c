//! Pods as real containers: a test cluster (the real API server, etcd, controllers and
//! scheduler) whose two nodes are real kubelets (`scripts/infra/kubelet-node.sh`: containerd
//! with runc, CNI bridge networking, kube-proxy, CoreDNS) running the worker and operator images
//! that `scripts/images/build.sh` builds from this build's binaries. The operator is installed
//! from its Helm chart with its image and deploys StreamJobs whose JobManager and TaskManager
//! Pods run from the worker image in namespaces where Pod Security Admission enforces
//! `restricted`.
//!
//! Needs root, Debian's containerd, runc, nftables, iptables, conntrack and socat
//! (`scripts/install-deps.sh`) and the kubelet, kube-proxy, CoreDNS, CNI plugins and pause
//! image of `scripts/infra/install.sh`; without them every test fails saying which is missing.
//! The tests share one cluster (only one cluster with real nodes runs on a machine at a time)
//! and run one after another (its two nodes are one 2-core machine), each in namespaces of its
//! own. The figures they print (`real-nodes:` lines) are what
//! BENCHMARKS.md reports.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fjord_e2e::containers::{TestImages, test_images};
use fjord_e2e::{ClusterOptions, TestCluster, poll_until};
use serde_json::Value;

const POLL: Duration = Duration::from_millis(250);
/// The Helm release (and Deployment) of the operator, in its own namespace.
const OPERATOR_NS: &str = "fjord-system";
const RELEASE: &str = "fjord-operator";
/// The Secret the example manifests name in `spec.storageCredentials`.
const CREDENTIALS_SECRET: &str = "minio-credentials";
/// The bucket of the examples' `s3://fjord/...` URLs, on the cluster's MinIO.
const BUCKET: &str = "fjord";
const FJORD: &str = "/usr/local/bin/fjord";

/// One test at a time on the shared cluster.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Shared {
    cluster: TestCluster,
    images: TestImages,
}

/// The images built once, one cluster with two real nodes and the operator installed from its
/// chart, for the whole test binary. The cluster is never dropped: up.sh's watchdog takes it
/// down (nodes, containers, bridges) when the test process is gone.
fn shared() -> anyhow::Result<&'static Shared> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| start_shared().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn start_shared() -> anyhow::Result<Shared> {
    let t0 = Instant::now();
    let images = test_images().context("building the test images")?;
    let images_dir = images
        .worker
        .parent()
        .context("the worker image has no directory")?
        .to_path_buf();
    println!(
        "real-nodes: images ready in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let t1 = Instant::now();
    let cluster = TestCluster::start(
        ClusterOptions::new("real-nodes")
            .real_nodes(2)
            .node_images(&images_dir),
    )
    .context("starting a test cluster with two real kubelet nodes")?;
    println!(
        "real-nodes: cluster with 2 real nodes up (images imported, nodes Ready) in {:.1} s",
        t1.elapsed().as_secs_f64()
    );
    let (repository, tag) = image_parts(&images.operator_name)?;
    let chart = repo().join("helm/fjord-operator");
    // The operator's own namespace enforces `restricted` too: the chart's Pod must meet it.
    cluster.kubectl(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {OPERATOR_NS}\n  labels:\n    \
             pod-security.kubernetes.io/enforce: restricted\n"
        )),
    )?;
    let t2 = Instant::now();
    cluster.helm(&[
        "install",
        RELEASE,
        chart.to_str().context("utf-8 path")?,
        "--namespace",
        OPERATOR_NS,
        "--set",
        &format!("image.repository={repository}"),
        "--set",
        &format!("image.tag={tag}"),
        "--set",
        "image.pullPolicy=Never",
        "--set",
        "logFormat=text",
        "--wait",
        "--timeout=180s",
    ])?;
    println!(
        "real-nodes: operator (its image, in a Pod) rolled out by helm install --wait in {:.1} s",
        t2.elapsed().as_secs_f64()
    );
    cluster.s3()?.create_bucket(BUCKET)?;
    Ok(Shared { cluster, images })
}

/// The number of tests in this file: when all of them have passed, the last one stops the
/// shared cluster and removes its run directory (a failed or filtered-out test leaves it, logs
/// included, and up.sh's watchdog stops its processes when the test process exits).
const TESTS: usize = 6;

/// The end of a passing test.
fn passed(shared: &Shared) -> anyhow::Result<()> {
    static PASSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    if PASSED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == TESTS
        && std::env::var_os("FJORD_E2E_KEEP").is_none()
    {
        let dir = shared.cluster.run_dir();
        let down = std::process::Command::new(repo().join("scripts/infra/down.sh"))
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .output()
            .context("running scripts/infra/down.sh")?;
        if !down.status.success() {
            bail!("down.sh failed: {}", String::from_utf8_lossy(&down.stderr));
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    Ok(())
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `docker.io/fjord/fjord:0.1.0` → (`fjord/fjord`, `0.1.0`).
fn image_parts(name: &str) -> anyhow::Result<(String, String)> {
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    let (repository, tag) = name.rsplit_once(':').context("image name without a tag")?;
    Ok((repository.to_string(), tag.to_string()))
}

/// The worker image as the example manifests name it (`fjord/fjord:<version>`).
fn worker_image(shared: &Shared) -> anyhow::Result<String> {
    let (repository, tag) = image_parts(&shared.images.worker_name)?;
    Ok(format!("{repository}:{tag}"))
}

fn kubectl(shared: &Shared, args: &[&str]) -> anyhow::Result<String> {
    Ok(shared.cluster.kubectl(args, None)?)
}

fn apply(shared: &Shared, namespace: &str, yaml: &str) -> anyhow::Result<String> {
    Ok(shared
        .cluster
        .kubectl(&["apply", "-n", namespace, "-f", "-"], Some(yaml))?)
}

/// A namespace where Pod Security Admission enforces `restricted`.
fn restricted_namespace(shared: &Shared, name: &str) -> anyhow::Result<()> {
    apply(
        shared,
        name,
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    \
             pod-security.kubernetes.io/enforce: restricted\n    \
             pod-security.kubernetes.io/enforce-version: latest\n"
        ),
    )?;
    Ok(())
}

/// What docs/operator.md's quick start asks of a namespace: the Secret with the S3 keys and
/// endpoint `http://minio:9000`, here a Service `minio` without selector whose EndpointSlice
/// is the address the nodes forward the cluster's MinIO to (`MINIO_POD_ENDPOINT`).
fn storage(shared: &Shared, namespace: &str) -> anyhow::Result<()> {
    let s3 = shared.cluster.s3()?;
    let endpoint = shared.cluster.setting("MINIO_POD_ENDPOINT")?;
    let (ip, port) = endpoint
        .rsplit_once(':')
        .context("MINIO_POD_ENDPOINT is not ip:port")?;
    apply(
        shared,
        namespace,
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata:
  name: {CREDENTIALS_SECRET}
stringData:
  AWS_ACCESS_KEY_ID: "{key}"
  AWS_SECRET_ACCESS_KEY: "{secret}"
  AWS_REGION: us-east-1
  AWS_ENDPOINT: http://minio:9000
---
apiVersion: v1
kind: Service
metadata:
  name: minio
spec:
  ports: [{{name: s3, port: 9000, protocol: TCP, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: minio-node
  labels: {{kubernetes.io/service-name: minio}}
addressType: IPv4
endpoints: [{{addresses: ["{ip}"], conditions: {{ready: true}}}}]
ports: [{{name: s3, port: {port}, protocol: TCP}}]
"#,
            key = s3.access_key_id,
            secret = s3.secret_access_key,
        ),
    )?;
    Ok(())
}

/// An example StreamJob from `examples/streamjobs/`, with the test build's worker image and
/// its checkpoints and savepoints under `s3://fjord/<namespace>/` (the tests share one MinIO).
fn example(shared: &Shared, ns: &str, file: &str) -> anyhow::Result<String> {
    let path = repo().join("examples/streamjobs").join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let image = worker_image(shared)?;
    Ok(text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("image: fjord/fjord:") {
                format!("  image: {image}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("s3://fjord/", &format!("s3://fjord/{ns}/")))
}

fn streamjob(shared: &Shared, namespace: &str, name: &str) -> anyhow::Result<Value> {
    let text = kubectl(
        shared,
        &["get", "streamjob", name, "-n", namespace, "-o", "json"],
    )?;
    Ok(serde_json::from_str(&text)?)
}

/// Wait (bounded) until the StreamJob's status satisfies `check`; on timeout the error carries
/// the status, the Pods and the operator's log.
async fn wait_status(
    shared: &Shared,
    namespace: &str,
    name: &str,
    what: &str,
    timeout: Duration,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let result = poll_until(what, timeout, POLL, || async {
        let sj = streamjob(shared, namespace, name).ok()?;
        check(&sj["status"]).then_some(sj)
    })
    .await;
    match result {
        Ok(sj) => Ok(sj),
        Err(e) => {
            let status = streamjob(shared, namespace, name)
                .map(|sj| serde_json::to_string_pretty(&sj["status"]).unwrap_or_default())
                .unwrap_or_else(|e| e.to_string());
            bail!(
                "{e}\nlast status: {status}\npods:\n{}\nevents:\n{}\noperator log:\n{}",
                kubectl(shared, &["get", "pods", "-n", namespace, "-o", "wide"])
                    .unwrap_or_default(),
                kubectl(shared, &["get", "events", "-n", namespace]).unwrap_or_default(),
                kubectl(
                    shared,
                    &[
                        "logs",
                        "-n",
                        OPERATOR_NS,
                        &format!("deployment/{RELEASE}"),
                        "--tail=40"
                    ]
                )
                .unwrap_or_default()
            )
        }
    }
}

/// Poll (bounded) until `kubectl args` succeeds with output satisfying `check`.
async fn wait_kubectl(
    shared: &Shared,
    what: &str,
    timeout: Duration,
    args: &[&str],
    check: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let result = poll_until(what, timeout, POLL, || async {
        kubectl(shared, args).ok().filter(|out| check(out))
    })
    .await;
    result.with_context(|| {
        format!(
            "last output of kubectl {}: {}",
            args.join(" "),
            kubectl(shared, args).unwrap_or_else(|e| e.to_string())
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_image_pod_runs_as_a_real_container_with_logs_and_exec() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let shared = shared()?;
    let ns = "pods";
    restricted_namespace(shared, ns)?;
    let image = worker_image(shared)?;

    // Pod Security Admission is enforced: a Pod without the restricted securityContext is refused.
    let bare = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bare\nspec:\n  containers:\n  - name: \
         c\n    image: {image}\n    args: [list]\n"
    );
    let refused = shared
        .cluster
        .kubectl(&["apply", "-n", ns, "-f", "-"], Some(&bare))
        .expect_err("a Pod without a securityContext must be refused under `restricted`");
    assert!(
        refused
            .to_string()
            .contains("violates PodSecurity \"restricted"),
        "{refused}"
    );

    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: counting
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {{type: RuntimeDefault}}
  containers:
  - name: fjord
    image: {image}
    imagePullPolicy: Never
    args: [run, counting, --keys, "3", --rate, "20"]
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {{drop: [ALL]}}
"#
    );
    let t0 = Instant::now();
    apply(shared, ns, &pod)?;
    wait_kubectl(
        shared,
        "the Pod Ready",
        Duration::from_secs(120),
        &[
            "get",
            "pod",
            "counting",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
        |s| s == "True",
    )
    .await?;
    println!(
        "real-nodes: kubectl apply → Pod Ready (one container, worker image) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let status: Value = serde_json::from_str(&kubectl(
        shared,
        &["get", "pod", "counting", "-n", ns, "-o", "json"],
    )?)?;
    let container = &status["status"]["containerStatuses"][0];
    assert!(
        container["containerID"]
            .as_str()
            .is_some_and(|id| id.starts_with("containerd://")),
        "not a containerd container: {container}"
    );
    assert!(
        status["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| n.starts_with("real-node-")),
        "{}",
        status["spec"]
    );

    // kubectl logs goes API server → kubelet → containerd's log file.
    wait_kubectl(
        shared,
        "counts in the Pod's log",
        Duration::from_secs(60),
        &["logs", "counting", "-n", ns],
        |log| log.contains("(key-"),
    )
    .await?;
    // kubectl exec goes API server → kubelet → containerd's streaming server → runc exec.
    let listed = kubectl(shared, &["exec", "counting", "-n", ns, "--", FJORD, "list"])?;
    assert!(listed.contains("counting"), "{listed}");
    let failed = shared
        .cluster
        .kubectl(
            &["exec", "counting", "-n", ns, "--", "/bin/sh", "-c", "id"],
            None,
        )
        .expect_err("the worker image has no shell");
    assert!(
        failed.to_string().contains("/bin/sh"),
        "exec of a missing program should name it: {failed}"
    );

    kubectl(
        shared,
        &[
            "delete",
            "pod",
            "counting",
            "-n",
            ns,
            "--grace-period=2",
            "--wait=true",
            "--timeout=60s",
        ],
    )?;
    passed(shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_a_streamjob_on_real_containers_under_restricted() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let shared = shared()?;
    let ns = "jobs";
    restricted_namespace(shared, ns)?;
    storage(shared, ns)?;
    let manifest = example(shared, ns, "counting-basic.yaml")?;
    let t0 = Instant::now();
    apply(shared, ns, &manifest)?;
    wait_status(
        shared,
        ns,
        "counting",
        "counting Running/RUNNING",
        Duration::from_secs(240),
        |s| s["lifecycleState"] == "Running" && s["jobState"] == "RUNNING",
    )
    .await?;
    println!(
        "real-nodes: kubectl apply → StreamJob Running/RUNNING (JobManager + 2 TaskManagers as containers) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // Checkpoints reach MinIO through the Service name `minio` (CoreDNS, kube-proxy).
    let sj = wait_status(
        shared,
        ns,
        "counting",
        "a completed checkpoint",
        Duration::from_secs(120),
        |s| {
            s["lastCheckpoint"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("s3://fjord/jobs/checkpoints/counting/"))
        },
    )
    .await?;
    println!(
        "real-nodes: first checkpoint on MinIO {:.1} s after apply ({})",
        t0.elapsed().as_secs_f64(),
        sj["status"]["lastCheckpoint"]["path"]
    );

    // Every Pod of the job is a real container on a real node, admitted under `restricted`.
    let pods: Value = serde_json::from_str(&kubectl(
        shared,
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "fjord.dev/streamjob=counting",
            "-o",
            "json",
        ],
    )?)?;
    let pods = pods["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(pods.len(), 3, "a JobManager and two TaskManagers: {pods:?}");
    for pod in &pods {
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .unwrap_or_default();
        assert!(id.starts_with("containerd://"), "{}", pod["status"]);
        assert!(
            pod["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| n.starts_with("real-node-")),
            "{}",
            pod["spec"]
        );
    }

    // The TaskManagers count (their log through kubectl logs).
    wait_kubectl(
        shared,
        "counts in a TaskManager's log",
        Duration::from_secs(60),
        &[
            "logs",
            "-n",
            ns,
            "deployment/counting-taskmanager",
            "--tail=20",
        ],
        |log| log.contains("(key-"),
    )
    .await?;
    // kubectl logs and exec into the JobManager.
    let jm_log = kubectl(
        shared,
        &["logs", "-n", ns, "deployment/counting-jobmanager"],
    )?;
    assert!(!jm_log.trim().is_empty(), "the JobManager logged nothing");
    let listed = kubectl(
        shared,
        &[
            "exec",
            "-n",
            ns,
            "deployment/counting-jobmanager",
            "--",
            FJORD,
            "list",
        ],
    )?;
    assert!(listed.contains("counting"), "{listed}");
    // From a TaskManager's container, the JobManager's Service name: a checkpoint on request
    // through its REST API (cluster DNS, kube-proxy, Pod to Pod across the nodes' bridges).
    let path = kubectl(
        shared,
        &[
            "exec",
            "-n",
            ns,
            "deployment/counting-taskmanager",
            "--",
            FJORD,
            "checkpoint",
            "--jobmanager",
            "http://counting-jobmanager:8081",
            "--timeout",
            "60s",
        ],
    )?;
    assert!(
        path.trim()
            .starts_with("s3://fjord/jobs/checkpoints/counting/"),
        "{path}"
    );

    delete_counting(shared, ns, 120)?;
    passed(shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_does_not_exist_shows_in_the_streamjob_status() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let shared = shared()?;
    let ns = "missing-image";
    restricted_namespace(shared, ns)?;
    storage(shared, ns)?;
    let manifest = example(shared, ns, "counting-basic.yaml")?.replace(
        &format!("image: {}", worker_image(shared)?),
        "image: fjord/fjord:does-not-exist",
    );
    assert!(manifest.contains("does-not-exist"), "{manifest}");
    apply(shared, ns, &manifest)?;
    let sj = wait_status(
        shared,
        ns,
        "counting",
        "Degraded ImagePullError",
        Duration::from_secs(180),
        |s| {
            s["conditions"].as_array().into_iter().flatten().any(|c| {
                c["type"] == "Degraded" && c["status"] == "True" && c["reason"] == "ImagePullError"
            })
        },
    )
    .await?;
    let message = sj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Degraded")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("fjord/fjord:does-not-exist"),
        "the status should name the image: {message}"
    );
    delete_counting(shared, ns, 120)?;
    passed(shared)
}

/// The StreamJob's TaskManagers' logs (every Pod of the current generation, whole).
fn taskmanager_logs(shared: &Shared, ns: &str) -> anyhow::Result<String> {
    kubectl(
        shared,
        &[
            "logs",
            "-n",
            ns,
            "-l",
            "fjord.dev/streamjob=counting,app.kubernetes.io/component=taskmanager",
            "--tail=-1",
            "--max-log-requests=8",
        ],
    )
}

/// The first count printed for each key (`n> (key-3,17)` lines) in `log`.
fn first_counts(log: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for line in log.lines() {
        let Some(start) = line.find("(key-") else {
            continue;
        };
        let Some((key, rest)) = line[start + 1..].split_once(',') else {
            continue;
        };
        if let Some(n) = rest.strip_suffix(')').and_then(|n| n.parse().ok()) {
            out.entry(key.to_string()).or_insert(n);
        }
    }
    out
}

/// The JobManager's REST API at its Pod IP (the test process reaches the Pods' bridge): the
/// running JobManager Pod that is not being deleted.
fn jobmanager(shared: &Shared, ns: &str) -> anyhow::Result<(String, fjord_client::Client)> {
    let pods: Value = serde_json::from_str(&kubectl(
        shared,
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "fjord.dev/streamjob=counting,app.kubernetes.io/component=jobmanager",
            "-o",
            "json",
        ],
    )?)?;
    let pod = pods["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| {
            p["metadata"]["deletionTimestamp"].is_null()
                && p["status"]["phase"] == "Running"
                && p["status"]["podIP"].is_string()
        })
        .with_context(|| format!("no running JobManager Pod in {ns}"))?;
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let ip = pod["status"]["podIP"].as_str().unwrap_or_default();
    Ok((
        name.to_string(),
        fjord_client::Client::new(&format!("http://{ip}:8081/v1"))?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_upgrade_on_real_containers_continues_every_count() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let shared = shared()?;
    let ns = "upgrade";
    restricted_namespace(shared, ns)?;
    storage(shared, ns)?;
    apply(shared, ns, &example(shared, ns, "counting-basic.yaml")?)?;
    wait_status(
        shared,
        ns,
        "counting",
        "counting Running/RUNNING",
        Duration::from_secs(240),
        |s| s["lifecycleState"] == "Running" && s["jobState"] == "RUNNING",
    )
    .await?;
    // Every key has counted for a while before the upgrade.
    poll_until(
        "every key counted past 5",
        Duration::from_secs(120),
        POLL,
        || async {
            let log = taskmanager_logs(shared, ns).ok()?;
            let mut last = std::collections::BTreeMap::new();
            for line in log.lines().rev() {
                if let Some(start) = line.find("(key-")
                    && let Some((key, rest)) = line[start + 1..].split_once(',')
                    && let Some(n) = rest.strip_suffix(')').and_then(|n| n.parse::<u64>().ok())
                {
                    last.entry(key.to_string()).or_insert(n);
                }
            }
            (last.len() == 100 && last.values().all(|&n| n > 5)).then_some(())
        },
    )
    .await?;
    let (old_pod, old) = jobmanager(shared, ns)?;
    let old_job = old.jobs().await?.jobs[0].id.clone();

    // counting-savepoint-upgrade.yaml: changed args, upgradeMode savepoint.
    apply(
        shared,
        ns,
        &example(shared, ns, "counting-savepoint-upgrade.yaml")?,
    )?;
    let mut last_growth = Instant::now();
    let mut last_count = 0u64;
    let deadline = Instant::now() + Duration::from_secs(240);
    while let Ok(d) = old.job(&old_job).await {
        if d.state != fjord_client::api::JobState::Running {
            break;
        }
        let n: u64 = d.vertices.iter().map(|v| v.records_in).sum();
        if n > last_count {
            last_count = n;
            last_growth = Instant::now();
        }
        anyhow::ensure!(Instant::now() < deadline, "the old job never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let downtime = poll_until(
        "the upgraded job to process records",
        Duration::from_secs(240),
        Duration::from_millis(50),
        || async {
            let (pod, new) = jobmanager(shared, ns).ok()?;
            let job = new.jobs().await.ok()?.jobs.into_iter().next()?;
            let d = new.job(&job.id).await.ok()?;
            (pod != old_pod
                && job.id != old_job
                && d.state == fjord_client::api::JobState::Running
                && d.vertices.iter().map(|v| v.records_in).sum::<u64>() > 0)
                .then(|| last_growth.elapsed())
        },
    )
    .await?;
    println!(
        "real-nodes: savepoint upgrade downtime on real containers (last record before → first after): {:.2} s",
        downtime.as_secs_f64()
    );
    let generation = streamjob(shared, ns, "counting")?["metadata"]["generation"].clone();
    let sj = wait_status(
        shared,
        ns,
        "counting",
        "the upgrade reconciled",
        Duration::from_secs(120),
        |s| {
            s["lifecycleState"] == "Running"
                && s["jobState"] == "RUNNING"
                && s["lastReconciledGeneration"] == generation
        },
    )
    .await?;
    let upgrade: Vec<&str> = sj["status"]["savepointHistory"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["trigger"] == "upgrade")
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(upgrade.len(), 1, "{}", sj["status"]);
    let (_, new) = jobmanager(shared, ns)?;
    let config = new.config().await?;
    assert_eq!(
        config.restore_path.as_deref(),
        Some(upgrade[0]),
        "{config:?}"
    );
    assert!(config.job_args.contains(&"2000".to_string()), "{config:?}");
    // The new TaskManagers continue each key's count from the savepoint, not from one.
    let firsts = poll_until(
        "every key counted by the upgraded job",
        Duration::from_secs(120),
        POLL,
        || async {
            let firsts = first_counts(&taskmanager_logs(shared, ns).ok()?);
            (firsts.len() == 100).then_some(firsts)
        },
    )
    .await?;
    let restarted: Vec<_> = firsts.iter().filter(|(_, n)| **n <= 5).collect();
    assert!(
        restarted.is_empty(),
        "keys that started counting again instead of continuing: {restarted:?}"
    );
    delete_counting(shared, ns, 180)?;
    passed(shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taskmanager_over_its_memory_limit_is_oom_killed() -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let shared = shared()?;
    let ns = "oom";
    restricted_namespace(shared, ns)?;
    storage(shared, ns)?;
    // A hundred million keys as fast as it goes: the TaskManagers' keyed state outgrows a
    // 64 MiB limit within seconds; the JobManager keeps its 256 MiB.
    let manifest = example(shared, ns, "counting-basic.yaml")?
        .replace(
            r#"args: ["--keys", "100", "--rate", "1000"]"#,
            r#"args: ["--keys", "100000000", "--rate", "1000000"]"#,
        )
        .replace(
            "  taskManager:\n    slots: 1\n    resources:\n      requests: {cpu: 250m, memory: 256Mi}\n      limits: {memory: 256Mi}",
            "  taskManager:\n    slots: 1\n    resources:\n      requests: {cpu: 250m, memory: 64Mi}\n      limits: {memory: 64Mi}",
        );
    assert!(
        manifest.contains("100000000") && manifest.contains("memory: 64Mi"),
        "{manifest}"
    );
    let t0 = Instant::now();
    apply(shared, ns, &manifest)?;
    let terminated = wait_kubectl(
        shared,
        "a TaskManager container OOMKilled",
        Duration::from_secs(180),
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "fjord.dev/streamjob=counting,app.kubernetes.io/component=taskmanager",
            "-o",
            "jsonpath={range .items[*]}{.status.containerStatuses[0].lastState.terminated.reason}/{.status.containerStatuses[0].lastState.terminated.exitCode} {end}",
        ],
        |s| s.contains("OOMKilled/137"),
    )
    .await?;
    println!(
        "real-nodes: TaskManager OOMKilled by its 64 MiB limit {:.1} s after apply ({})",
        t0.elapsed().as_secs_f64(),
        terminated.trim()
    );
    // The JobManager lost the TaskManager and restarts the job.
    wait_status(
        shared,
        ns,
        "counting",
        "a job restart after the OOM kill",
        Duration::from_secs(120),
        |s| s["jobRestarts"].as_u64().is_some_and(|n| n >= 1),
    )
    .await?;
    // The StreamJob says why, whether or not the JobManager reports the job RUNNING meanwhile.
    let sj = wait_status(
        shared,
        ns,
        "counting",
        "Degraded ContainerCrashing naming OOMKilled",
        Duration::from_secs(180),
        |s| {
            s["conditions"].as_array().into_iter().flatten().any(|c| {
                c["type"] == "Degraded"
                    && c["status"] == "True"
                    && c["reason"] == "ContainerCrashing"
                    && c["message"].as_str().is_some_and(|m| {
                        m.contains("OOMKilled (exit code 137) by its memory limit 64Mi")
                            && m.contains("spec.taskManager.resources.limits.memory")
                    })
            })
        },
    )
    .await?;
    println!(
        "real-nodes: Degraded ContainerCrashing {:.1} s after apply (job {}): {}",
        t0.elapsed().as_secs_f64(),
        sj["status"]["jobState"],
        sj["status"]["error"]
    );
    kubectl(
        shared,
        &["delete", "streamjob", "counting", "-n", ns, "--wait=false"],
    )?;
    passed(shared)
}

/// The savepoint directories under `s3://fjord/<ns>/savepoints/counting/` on the cluster's
/// MinIO, read by the test process.
async fn savepoint_dirs(
    shared: &Shared,
    ns: &str,
) -> anyhow::Result<std::collections::BTreeSet<String>> {
    use futures::TryStreamExt as _;
    use object_store::ObjectStore as _;
    let store = shared.cluster.s3()?.object_store_for(BUCKET)?;
    let root = format!("{ns}/savepoints/counting/");
    let prefix = object_store::path::Path::from(root.trim_end_matches('/'));
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await?;
    Ok(objects
        .iter()
        .filter_map(|o| {
            o.location
                .as_ref()
                .strip_prefix(root.as_str())?
                .split('/')
                .next()
                .map(str::to_string)
        })
        .collect())
}

/// Wait until the StreamJob runs its current generation (Running/RUNNING, reconciled).
async fn wait_reconciled(shared: &Shared, ns: &str, what: &str) -> anyhow::Result<Value> {
    let generation = streamjob(shared, ns, "counting")?["metadata"]["generation"].clone();
    wait_status(
        shared,
        ns,
        "counting",
        what,
        Duration::from_secs(240),
        |s| {
            s["lifecycleState"] == "Running"
                && s["jobState"] == "RUNNING"
                && s["lastReconciledGeneration"] == generation
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_suspend_resume_a_killed_operator_and_delete_with_a_savepoint() -> anyhow::Result<()>
{
    let _serial = SERIAL.lock().await;
    let shared = shared()?;
    let ns = "lifecycle";
    restricted_namespace(shared, ns)?;
    storage(shared, ns)?;
    // counting-savepoint-upgrade.yaml: upgradeMode savepoint, a savepoint on delete.
    apply(
        shared,
        ns,
        &example(shared, ns, "counting-savepoint-upgrade.yaml")?,
    )?;
    wait_reconciled(shared, ns, "counting Running/RUNNING").await?;

    // Rescale 2 → 3 through the scale subresource: three TaskManager containers.
    kubectl(
        shared,
        &["scale", "streamjob", "counting", "-n", ns, "--replicas=3"],
    )?;
    let sj = wait_reconciled(shared, ns, "the rescale to 3").await?;
    assert_eq!(sj["status"]["parallelism"], 3, "{}", sj["status"]);
    wait_kubectl(
        shared,
        "three TaskManager Pods Ready",
        Duration::from_secs(120),
        &[
            "get",
            "deployment",
            "counting-taskmanager",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        |s| s == "3",
    )
    .await?;
    let (_, jm) = jobmanager(shared, ns)?;
    assert!(
        jm.config().await?.restore_path.is_some(),
        "the rescaled job did not start from a savepoint"
    );

    // Suspend (with a savepoint: upgradeMode savepoint), every Pod gone; resume from it.
    patch_counting(shared, ns, r#"{"spec":{"job":{"state":"suspended"}}}"#)?;
    wait_status(
        shared,
        ns,
        "counting",
        "Suspended",
        Duration::from_secs(120),
        |s| s["lifecycleState"] == "Suspended",
    )
    .await?;
    wait_kubectl(
        shared,
        "the job's Pods gone while suspended",
        Duration::from_secs(120),
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "fjord.dev/streamjob=counting",
            "-o",
            "name",
        ],
        |s| s.trim().is_empty(),
    )
    .await?;
    patch_counting(shared, ns, r#"{"spec":{"job":{"state":"running"}}}"#)?;
    wait_reconciled(shared, ns, "resumed").await?;
    let (_, jm) = jobmanager(shared, ns)?;
    assert!(
        jm.config().await?.restore_path.is_some(),
        "the resumed job did not start from the suspend's savepoint"
    );

    // The operator's container killed mid-upgrade (a restart through the nonce); its
    // Deployment starts a new one, which finishes the upgrade: one JobManager, running.
    patch_counting(shared, ns, r#"{"spec":{"job":{"restartNonce":1}}}"#)?;
    kubectl(
        shared,
        &[
            "delete",
            "pod",
            "-n",
            OPERATOR_NS,
            "-l",
            &format!("app.kubernetes.io/instance={RELEASE}"),
            "--grace-period=0",
            "--force",
        ],
    )?;
    wait_reconciled(shared, ns, "the restart after the operator was killed").await?;
    wait_kubectl(
        shared,
        "one JobManager Pod",
        Duration::from_secs(120),
        &[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            "fjord.dev/streamjob=counting,app.kubernetes.io/component=jobmanager",
            "-o",
            "name",
        ],
        |s| s.lines().count() == 1,
    )
    .await?;
    wait_kubectl(
        shared,
        "the operator rolled out again",
        Duration::from_secs(120),
        &[
            "get",
            "deployment",
            RELEASE,
            "-n",
            OPERATOR_NS,
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        |s| s == "1",
    )
    .await?;

    // Delete: savepoints.onDelete takes a last savepoint before the Pods go.
    let before = savepoint_dirs(shared, ns).await?;
    delete_counting(shared, ns, 180)?;
    let after = savepoint_dirs(shared, ns).await?;
    let new: Vec<_> = after.difference(&before).collect();
    assert_eq!(new.len(), 1, "one savepoint on delete expected: {new:?}");
    passed(shared)
}

/// Deletes the StreamJob `counting` of `ns`, waiting up to `timeout_s` seconds for it to go.
fn delete_counting(shared: &Shared, ns: &str, timeout_s: u32) -> anyhow::Result<()> {
    kubectl(
        shared,
        &[
            "delete",
            "streamjob",
            "counting",
            "-n",
            ns,
            &format!("--timeout={timeout_s}s"),
        ],
    )?;
    Ok(())
}

/// Applies a merge patch to the StreamJob `counting` of `ns`.
fn patch_counting(shared: &Shared, ns: &str, patch: &str) -> anyhow::Result<String> {
    kubectl(
        shared,
        &[
            "patch",
            "streamjob",
            "counting",
            "-n",
            ns,
            "--type=merge",
            "-p",
            patch,
        ],
    )
}
