//! Shared steps of the operator end-to-end scenarios (`tests/operator_*.rs`): a test cluster
//! with the operator installed from its Helm chart and what `docs/operator.md`'s quick start
//! asks of a cluster — the Secret `minio-credentials` created with the documented
//! `kubectl create secret` command and an S3 endpoint `http://minio:9000` with the bucket
//! `fjord` (a MinIO Pod and Service from `minio.yaml`) — so StreamJob manifests from
//! `examples/streamjobs/` are applied verbatim; and bounded waits on the StreamJob's status and
//! on the JobManager's REST API.
//!
//! The operator and worker run as Pod processes from images mapped to this workspace's
//! binaries, which must be built first (the worker with S3 support, as its image is):
//! `cargo build -p fjord-operator --bins && cargo build -p fjord-worker --features s3 --bins`.
//! `FJORD_E2E_OPERATOR_BIN` / `FJORD_E2E_WORKER_BIN` name other binaries (a private copy is
//! safer when other builds write into the same shared target directory).

#![allow(dead_code)] // each scenario file uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fjord_e2e::{ClusterOptions, S3Settings, TestCluster, poll_until, target_binary};
use serde_json::Value;

/// The operator image the chart is installed with (mapped to the `fjord-operator` binary).
pub const OPERATOR_IMAGE: &str = "fjord/fjord-operator:e2e";
/// The worker image; the example manifests' `fjord/fjord:<tag>` maps to it by repository.
pub const WORKER_IMAGE: &str = "fjord/fjord:e2e";
/// The MinIO image of `minio.yaml`, mapped to the MinIO binary of the infrastructure cache.
pub const MINIO_IMAGE: &str = "quay.io/minio/minio:latest";
/// The Secret the examples name in `spec.storageCredentials` (created as the docs say).
pub const CREDENTIALS_SECRET: &str = "minio-credentials";
/// The bucket of the examples' `s3://fjord/...` URLs.
pub const BUCKET: &str = "fjord";
/// Namespace and release of the operator.
pub const OPERATOR_NS: &str = "fjord-system";
/// The Helm release (and so the operator Deployment's name).
pub const RELEASE: &str = "fjord-operator";

/// How often waits poll.
pub const POLL: Duration = Duration::from_millis(200);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The binary an image maps to: `$<env>` if set (a private copy, safe from other builds into
/// a shared target directory), else `name` in this test's target directory.
fn binary(name: &str, env: &str, build: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Ok(PathBuf::from(path));
    }
    target_binary(name).with_context(|| {
        format!(
            "the {name} binary is not built in this target directory; build it first with \
             `{build}` (or point {env} at one)"
        )
    })
}

/// The MinIO binary `scripts/infra/install.sh` built (the version of `versions.env`).
fn minio_binary() -> anyhow::Result<PathBuf> {
    let versions = std::fs::read_to_string(repo().join("scripts/infra/versions.env"))?;
    let version = versions
        .lines()
        .find_map(|l| l.strip_prefix("MINIO_VERSION="))
        .context("MINIO_VERSION in scripts/infra/versions.env")?
        .trim()
        .trim_matches('"');
    let cache = std::env::var_os("FJORD_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/fjord")))
        .context("neither FJORD_CACHE nor HOME is set")?;
    let path = cache.join(format!("bin/minio-{version}/minio"));
    if !path.exists() {
        bail!(
            "{} is missing; run scripts/infra/install.sh",
            path.display()
        );
    }
    Ok(path)
}

/// A test cluster with the operator installed from `helm/fjord-operator` by `helm install`
/// (CRD included) and running, and the quick start's storage: the Secret
/// [`CREDENTIALS_SECRET`] and a MinIO Service `minio` with the bucket [`BUCKET`].
pub struct OperatorCluster {
    /// The cluster.
    pub cluster: TestCluster,
    /// The in-cluster MinIO the examples write to, as the test process reaches it (its
    /// ClusterIP), with the keys of the Secret.
    pub s3: S3Settings,
}

impl OperatorCluster {
    /// Start a cluster, `helm install` the chart with the operator image and wait (bounded) for
    /// the operator Deployment to be rolled out.
    pub fn start(name: &str) -> anyhow::Result<Self> {
        Self::start_with(name, &[])
    }

    /// [`OperatorCluster::start`] with more chart values (`--set` each of `values`).
    pub fn start_with(name: &str, values: &[&str]) -> anyhow::Result<Self> {
        let cluster = TestCluster::start(
            ClusterOptions::new(name)
                .nodes(2)
                .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent"))
                .image(
                    OPERATOR_IMAGE,
                    binary(
                        "fjord-operator",
                        "FJORD_E2E_OPERATOR_BIN",
                        "cargo build -p fjord-operator --bins",
                    )?,
                )
                .image(
                    WORKER_IMAGE,
                    binary(
                        "fjord",
                        "FJORD_E2E_WORKER_BIN",
                        "cargo build -p fjord-worker --features s3 --bins",
                    )?,
                )
                .image(MINIO_IMAGE, minio_binary()?),
        )?;
        let (repository, tag) = OPERATOR_IMAGE.split_once(':').expect("image has a tag");
        let chart = repo().join("helm/fjord-operator");
        let (image_repository, image_tag) = (
            format!("image.repository={repository}"),
            format!("image.tag={tag}"),
        );
        let mut args = vec![
            "install",
            RELEASE,
            chart.to_str().expect("utf-8 path"),
            "--namespace",
            OPERATOR_NS,
            "--create-namespace",
            "--set",
            &image_repository,
            "--set",
            &image_tag,
            "--set",
            "logFormat=text",
            "--set",
            "logLevel=info,fjord_operator=debug",
        ];
        for value in values {
            args.extend(["--set", value]);
        }
        cluster.helm(&args)?;
        // The quick start's Secret, created with the command docs/operator.md gives (the keys
        // are this run's own; AWS_ENDPOINT is the documented default).
        let access_key = format!("fjord-{}", std::process::id());
        let secret_key = format!("{:032x}", rand_u128());
        cluster.kubectl(
            &[
                "create",
                "secret",
                "generic",
                CREDENTIALS_SECRET,
                &format!("--from-literal=AWS_ACCESS_KEY_ID={access_key}"),
                &format!("--from-literal=AWS_SECRET_ACCESS_KEY={secret_key}"),
                "--from-literal=AWS_REGION=us-east-1",
                "--from-literal=AWS_ENDPOINT=http://minio:9000",
            ],
            None,
        )?;
        let minio = std::fs::read_to_string(repo().join("e2e/tests/operator_support/minio.yaml"))?;
        cluster.kubectl(&["apply", "-f", "-"], Some(&minio))?;
        let cluster_ip = cluster.kubectl(
            &[
                "get",
                "service",
                "minio",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
            None,
        )?;
        let s3 = S3Settings {
            endpoint: format!("http://{}:9000", cluster_ip.trim()),
            bucket: BUCKET.into(),
            access_key_id: access_key,
            secret_access_key: secret_key,
            region: "us-east-1".into(),
        };
        let this = Self { cluster, s3 };
        this.kubectl(&["rollout", "status", "deployment/minio", "--timeout=120s"])
            .context("the in-cluster MinIO did not become ready")?;
        this.s3.create_bucket(BUCKET)?;
        this.kubectl(&[
            "rollout",
            "status",
            &format!("deployment/{RELEASE}"),
            "-n",
            OPERATOR_NS,
            "--timeout=120s",
        ])
        .with_context(|| format!("operator did not roll out; logs:\n{}", this.operator_logs()))?;
        Ok(this)
    }

    /// The Events (reason, message) about one object, oldest first.
    pub fn events(&self, name: &str) -> anyhow::Result<Vec<(String, String)>> {
        let text = self.kubectl(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={name}"),
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&text)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["message"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }

    /// kubectl with this cluster's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> anyhow::Result<String> {
        Ok(self.cluster.kubectl(args, None)?)
    }

    /// `kubectl apply -f -` of `yaml`.
    pub fn apply(&self, yaml: &str) -> anyhow::Result<String> {
        Ok(self.cluster.kubectl(&["apply", "-f", "-"], Some(yaml))?)
    }

    /// `kubectl patch streamjob <name> --type=merge -p <patch>`.
    pub fn patch(&self, name: &str, patch: &str) -> anyhow::Result<String> {
        self.patch_kind("streamjob", name, patch)
    }

    /// `kubectl patch <kind> <name> --type=merge -p <patch>`.
    pub fn patch_kind(&self, kind: &str, name: &str, patch: &str) -> anyhow::Result<String> {
        self.kubectl(&["patch", kind, name, "--type=merge", "-p", patch])
    }

    /// The operator's log (for failure messages).
    pub fn operator_logs(&self) -> String {
        self.kubectl(&[
            "logs",
            "-n",
            OPERATOR_NS,
            &format!("deployment/{RELEASE}"),
            "--tail=80",
        ])
        .unwrap_or_else(|e| format!("(no operator logs: {e})"))
    }

    /// An example manifest from `examples/streamjobs/`, exactly as it is in the repository.
    pub fn example(&self, file: &str) -> anyhow::Result<String> {
        let path = repo().join("examples/streamjobs").join(file);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// The StreamJob as JSON.
    pub fn streamjob(&self, name: &str) -> anyhow::Result<Value> {
        let text = self.kubectl(&["get", "streamjob", name, "-o", "json"])?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Wait (bounded) until the StreamJob's status has the condition Degraded (True) for
    /// `reason` with a message that satisfies `message`; returns the StreamJob.
    pub async fn wait_degraded(
        &self,
        name: &str,
        reason: &str,
        timeout: Duration,
        message: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Value> {
        let what = format!("Degraded {reason}");
        self.wait_for(name, &what, timeout, |s| {
            s["conditions"].as_array().into_iter().flatten().any(|c| {
                c["type"] == "Degraded"
                    && c["status"] == "True"
                    && c["reason"] == reason
                    && c["message"].as_str().is_some_and(&message)
            })
        })
        .await
    }

    /// Wait (bounded) until the StreamJob's status satisfies `check`; returns the StreamJob.
    /// On timeout the error carries the last status and the operator's log.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let result = poll_until(what, timeout, POLL, || async {
            let sj = self.streamjob(name).ok()?;
            check(&sj["status"]).then_some(sj)
        })
        .await;
        match result {
            Ok(sj) => Ok(sj),
            Err(e) => {
                let status = self
                    .streamjob(name)
                    .map(|sj| serde_json::to_string_pretty(&sj["status"]).unwrap_or_default())
                    .unwrap_or_else(|e| e.to_string());
                let jm_log = self
                    .kubectl(&[
                        "logs",
                        &format!("deployment/{name}-jobmanager"),
                        "--tail=20",
                    ])
                    .unwrap_or_else(|e| format!("(none: {e})"));
                bail!(
                    "{e}\nlast status: {status}\npods:\n{}\nJobManager log:\n{jm_log}\n\
                     operator log:\n{}",
                    self.kubectl(&["get", "pods", "-o", "wide"])
                        .unwrap_or_default(),
                    self.operator_logs()
                )
            }
        }
    }

    /// Wait until the StreamJob is `Running` with job state `RUNNING`; returns it.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> anyhow::Result<Value> {
        self.wait_for(name, &format!("{name} Running/RUNNING"), timeout, |s| {
            s["lifecycleState"] == "Running" && s["jobState"] == "RUNNING"
        })
        .await
    }

    /// The Pod IP of the StreamJob's JobManager (the test process resolves no Service names).
    pub fn jobmanager_ip(&self, name: &str) -> anyhow::Result<String> {
        let ip = self.kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("fjord.dev/streamjob={name},app.kubernetes.io/component=jobmanager"),
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[0].status.podIP}",
        ])?;
        if ip.trim().is_empty() {
            bail!("no running JobManager Pod for {name}");
        }
        Ok(ip.trim().to_string())
    }

    /// A REST client for the StreamJob's current JobManager.
    pub fn jobmanager(&self, name: &str) -> anyhow::Result<fjord_client::Client> {
        let ip = self.jobmanager_ip(name)?;
        Ok(fjord_client::Client::new(&format!("http://{ip}:8081/v1"))?)
    }

    /// Names of the StreamJob's child objects of `kind` that exist.
    pub fn children(&self, name: &str, kind: &str) -> anyhow::Result<Vec<String>> {
        let out = self.kubectl(&[
            "get",
            kind,
            "-l",
            &format!("fjord.dev/streamjob={name}"),
            "-o",
            "name",
        ])?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// Wait until the StreamJob has no pods left.
    pub async fn wait_no_pods(&self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        poll_until(
            &format!("{name}'s pods to be gone"),
            timeout,
            POLL,
            || async {
                self.children(name, "pods")
                    .ok()
                    .filter(|p| p.is_empty())
                    .map(drop)
            },
        )
        .await?;
        Ok(())
    }
}

/// A random number for this run's MinIO secret key (no extra dependency: the std hasher's
/// per-process random keys).
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut out = 0u128;
    for i in 0..2u8 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(i);
        out = (out << 64) | u128::from(h.finish());
    }
    out
}

/// Seconds since `start`, for the figures the scenarios print.
pub fn secs(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

/// Per key, the counts a counting job printed (`n> (key-3,17)` lines) in `log`, in order,
/// appended to `out`; other lines (a windowed job's `(key,window,count)`) are skipped.
#[allow(dead_code)] // not every test binary reads counts
pub fn add_counts(log: &str, out: &mut BTreeMap<String, Vec<u64>>) {
    for line in log.lines() {
        let Some(start) = line.find("(key-") else {
            continue;
        };
        let Some((key, rest)) = line[start + 1..].split_once(',') else {
            continue;
        };
        if let Some(n) = rest.strip_suffix(')').and_then(|n| n.parse().ok()) {
            out.entry(key.to_string()).or_default().push(n);
        }
    }
}

/// Per key, the counts a counting job printed in `log`, in order (see [`add_counts`]).
#[allow(dead_code)] // not every test binary reads counts
pub fn counts(log: &str) -> BTreeMap<String, Vec<u64>> {
    let mut out = BTreeMap::new();
    add_counts(log, &mut out);
    out
}
