//! The error type of the test-infrastructure library.

use std::path::PathBuf;

/// What went wrong while starting, using or stopping a test cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cached infrastructure binaries are not there yet.
    #[error(
        "test infrastructure is not installed: {detail}\n\
         Run `scripts/infra/install.sh` once (it builds Kubernetes, etcd, Helm and MinIO from their \
         Go modules into ~/.cache/fjord, and for real nodes the kubelet, kube-proxy, CoreDNS, the \
         CNI plugins and the pause image; later runs take seconds); real nodes also need the \
         Debian packages of `scripts/install-deps.sh` (containerd, runc, nftables, socat, ...)"
    )]
    NotInstalled {
        /// The message of the start script naming what is missing.
        detail: String,
    },
    /// `up.sh` failed for another reason.
    #[error(
        "scripts/infra/up.sh failed for {run_dir} (exit {code:?}); logs are in {run_dir}/logs:\n{output}"
    )]
    StartFailed {
        /// The run directory that holds the logs.
        run_dir: PathBuf,
        /// Exit code of the script, if it exited.
        code: Option<i32>,
        /// The last lines of the script's output.
        output: String,
    },
    /// `down.sh` failed.
    #[error("scripts/infra/down.sh failed for {run_dir}: {output}")]
    StopFailed {
        /// The run directory.
        run_dir: PathBuf,
        /// The script's output.
        output: String,
    },
    /// A script or tool could not be run at all.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program that failed to start.
        program: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A file of the run directory could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The env file written by `up.sh` lacks a setting.
    #[error("{path} does not set {key}; was it written by scripts/infra/up.sh?")]
    MissingSetting {
        /// The env file.
        path: PathBuf,
        /// The missing variable.
        key: String,
    },
    /// The kubeconfig of the run could not be turned into a client.
    #[error("could not build a Kubernetes client from {path}: {message}")]
    KubeClient {
        /// The kubeconfig file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The S3 client could not be built.
    #[error("could not build an S3 client for {endpoint}: {source}")]
    ObjectStore {
        /// The S3 endpoint.
        endpoint: String,
        /// The underlying error.
        source: object_store::Error,
    },
    /// The bucket does not exist on the S3 endpoint.
    #[error(
        "bucket {bucket:?} does not exist on {endpoint}; the test cluster creates only {expected:?} \
         (FJORD_S3_BUCKET in the run's env file)"
    )]
    BucketMissing {
        /// The bucket asked for.
        bucket: String,
        /// The S3 endpoint.
        endpoint: String,
        /// The bucket the cluster has.
        expected: String,
    },
    /// A request to the S3 endpoint failed for another reason.
    #[error("S3 request to {endpoint} for bucket {bucket:?} failed: {source}")]
    S3Request {
        /// The bucket.
        bucket: String,
        /// The S3 endpoint.
        endpoint: String,
        /// The underlying error.
        source: object_store::Error,
    },
    /// A `kubectl` or `helm` invocation failed.
    #[error("`{command}` failed (exit {code:?}):\n{stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Exit code, if it exited.
        code: Option<i32>,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Kafka's jars (or the project's Kafka test tool) are not cached yet.
    #[error(
        "Apache Kafka is not installed for the tests: {detail}\n\
         Run `scripts/infra/install-kafka.sh` (or `scripts/infra/install.sh`) once; it resolves \
         the broker and tools jars from Maven Central into ~/.cache/fjord"
    )]
    KafkaNotInstalled {
        /// The message of `kafka.sh` naming what is missing.
        detail: String,
    },
    /// `scripts/infra/kafka.sh` failed.
    #[error(
        "scripts/infra/kafka.sh {action} failed for {dir} (exit {code:?}); the broker log is \
         {dir}/logs/kafka.log:\n{output}"
    )]
    Kafka {
        /// The subcommand (`start`, `stop`, `down`).
        action: &'static str,
        /// The broker's directory.
        dir: PathBuf,
        /// Exit code of the script, if it exited.
        code: Option<i32>,
        /// The last lines of its output.
        output: String,
    },
    /// A binary an image is built from has not been built.
    #[error(
        "{name} is not in this test's Cargo target directory; build it first: \
         `cargo build -p fjord-worker --features s3,rocksdb --bins && cargo build -p fjord-operator --bins` \
         (`cargo test --workspace --all-features` builds both)"
    )]
    ImageBinaryMissing {
        /// The binary.
        name: &'static str,
    },
    /// `scripts/images/build.sh` failed.
    #[error("scripts/images/build.sh failed (exit {code:?}):\n{output}")]
    ImageBuild {
        /// Exit code of the script, if it exited.
        code: Option<i32>,
        /// The last lines of its output.
        output: String,
    },
    /// `scripts/infra/containerd.sh` (or `ctr` through it) failed.
    #[error(
        "scripts/infra/containerd.sh {action} failed for {dir} (exit {code:?}; 3: containerd or \
         runc not installed, run scripts/install-deps.sh; 4: not root); the daemon's log is \
         {dir}/logs/containerd.log:\n{output}"
    )]
    Containerd {
        /// The subcommand and its arguments.
        action: String,
        /// The instance's directory.
        dir: PathBuf,
        /// Exit code of the script, if it exited.
        code: Option<i32>,
        /// The last lines of its output.
        output: String,
    },
    /// A `scripts/infra/<name>.sh` subcommand of a test server failed.
    #[error(
        "scripts/infra/{script} {action} failed for {dir} (exit {code:?}; 3: the server is not \
         installed, run scripts/infra/install.sh or scripts/install-deps.sh); its logs are under \
         {dir}:\n{output}"
    )]
    Script {
        /// The script (`redis.sh`).
        script: String,
        /// The subcommand.
        action: String,
        /// The server's directory.
        dir: PathBuf,
        /// Exit code of the script, if it exited.
        code: Option<i32>,
        /// The last lines of its error output.
        output: String,
    },
    /// A bounded wait ran out.
    #[error("timed out after {seconds} s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        seconds: u64,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
