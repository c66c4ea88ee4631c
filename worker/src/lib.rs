//! The `fjord` worker binary as a library, so users can build their own worker binary with
//! their own jobs:
//!
//! ```no_run
//! use fjord::{JobArgs, JobRegistry, Result, StreamExecutionEnvironment};
//!
//! fn my_job(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
//!     env.from_sequence(1, args.get_parsed("n", 10)?).map(|x: i64| x * x).print();
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let mut jobs = JobRegistry::new();
//!     jobs.register("squares", "squares of 1..=n: [--n N]", my_job);
//!     fjord_worker::main_with(jobs)
//! }
//! ```
//!
//! Modules: [`cli`] parses the command line, [`local`] runs a job on the embedded
//! mini-cluster, [`manifest`] turns a StreamJob manifest into the same local run,
//! [`jobmanager`] is the JobManager role (REST API, metrics, the gRPC control plane and the
//! TaskManager registry), [`taskmanager`] the TaskManager role (registers, offers slots,
//! heartbeats, runs the subtasks the JobManager deploys to it), [`prometheus`] the Prometheus text encoder both roles share
//! (with [`prometheus::render_tasks`] for per-task metrics), [`metrics_server`] a tiny
//! `GET /metrics` server for the TaskManager, [`credentials`] the start-up check of S3 keys,
//! [`tls`] the security settings both roles share and their TLS listeners and connectors,
//! [`control`] converts between the engine's cluster types and the control-plane messages
//! (both roles use it), [`remote`] holds the client commands (`fjord savepoint`, `checkpoint`,
//! `stop`, `cancel`) against a JobManager's REST API, [`sql`] runs SQL scripts (`fjord sql` and
//! the built-in `sql` job), [`state_backend`] applies the configuration file's
//! `state.backend.*` keys to both roles, and [`exit`] defines the documented exit codes. `cli`
//! depends on the others; they do not depend on each other except through [`local`]
//! (`jobmanager` builds its job with it) and the config-file reader `taskmanager` shares with
//! `jobmanager`.
//!
//! Cargo features choose what a worker binary compiles (docs/custom-workers.md): `sql`
//! ([`sql`]), `manifests` ([`manifest`]), `kubernetes-ha` ([`jobmanager::ha`]'s Kubernetes
//! lease), `stock-jobs` (the `fjord` binary's jobs), `s3` and `rocksdb`. A module whose
//! feature is off keeps its functions, which fail with [`WorkerError::NotBuiltIn`] naming the
//! feature: each such module picks between its implementation and an `unavailable` stand-in,
//! so the rest of the crate does not look at these features (`main_with` registers the RocksDB
//! backend under `rocksdb`).

pub mod cli;
pub mod control;
pub mod credentials;
pub mod exit;
pub mod jobmanager;
pub mod local;
pub mod manifest;
pub mod metrics_server;
pub mod prometheus;
pub mod remote;
pub mod sql;
pub mod state_backend;
pub mod taskmanager;
pub mod tls;

pub use cli::main_with;
/// The SQL planner and its user-defined function API (`fjord_worker::fjord_sql::udf`), for a
/// worker binary that registers functions with [`main_with_functions`].
#[cfg(feature = "sql")]
pub use fjord_sql;

/// [`main_with`] for a worker binary with user-defined SQL functions: `functions` are
/// callable from every SQL script the binary plans — `fjord sql -f`, the `sql` job under
/// `run`, and the JobManager and TaskManager roles (so a StreamJob's `spec.job.sql` on an
/// image of this binary). `fjord list` lists them after the jobs. See docs/sql.md,
/// "User-defined functions".
#[cfg(feature = "sql")]
pub fn main_with_functions(
    jobs: fjord::JobRegistry,
    functions: fjord_sql::FunctionRegistry,
) -> std::process::ExitCode {
    sql::install_functions(functions);
    cli::main_with(jobs)
}

/// Whether this build of `fjord-worker` has the optional capability `feature` (`sql`,
/// `manifests`, `kubernetes-ha`, `stock-jobs`, `s3`, `rocksdb`). Cargo unifies features across a
/// build, so a binary of one's own may have more than its manifest asks for (all of them in a
/// `--workspace --all-features` build); tests ask this rather than assume.
pub fn built_in(feature: &str) -> bool {
    const FEATURES: [(&str, bool); 6] = [
        ("sql", cfg!(feature = "sql")),
        ("manifests", cfg!(feature = "manifests")),
        ("kubernetes-ha", cfg!(feature = "kubernetes-ha")),
        ("stock-jobs", cfg!(feature = "stock-jobs")),
        ("s3", cfg!(feature = "s3")),
        ("rocksdb", cfg!(feature = "rocksdb")),
    ];
    FEATURES.iter().any(|(name, on)| *name == feature && *on)
}

/// Everything that can stop the worker binary.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The job failed while building or running.
    #[error(transparent)]
    Job(#[from] fjord::FjordError),
    /// A StreamJob manifest was invalid.
    #[error("{0}")]
    Manifest(#[from] manifest::Error),
    /// A capability this binary was built without (a cargo feature of `fjord-worker` that a
    /// worker binary of one's own left out) was asked for.
    #[error(
        "{what} needs the `{feature}` feature of fjord-worker, which this binary was built \
         without; add it to the features of your fjord-worker dependency (docs/custom-workers.md)"
    )]
    NotBuiltIn {
        /// The cargo feature of `fjord-worker` that provides it.
        feature: &'static str,
        /// What was asked for, e.g. `fjord sql`.
        what: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A SQL script could not be planned (the message names line and column).
    #[error("{path}: {source}")]
    Sql {
        /// The script.
        path: String,
        /// What is wrong and where.
        source: sql::SqlError,
    },
    /// A configuration key, flag or environment variable has a bad value.
    #[error("{0}")]
    Config(String),
    /// A server (JobManager REST or RPC, TaskManager data port) could not listen.
    #[error(
        "cannot listen on {address}: {source}; choose another address or port (--rest-port / jobmanager.rest.port, --rpc-port / jobmanager.rpc.port, --data-port / taskmanager.data.port, --metrics-port / taskmanager.metrics.port)"
    )]
    Serve {
        /// The address.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Registered TaskManagers did not offer the job's slots within `jobmanager.wait-for-slots`.
    #[error(
        "the job needs {required} task slots, but registered TaskManagers offer {available} after \
         waiting {waited_ms} ms (jobmanager.wait-for-slots); start more TaskManagers, give them \
         more slots (taskmanager.slots), lower the job's parallelism, or wait longer"
    )]
    NotEnoughSlots {
        /// Slots the job needs (`JobPlan::required_slots`).
        required: u32,
        /// Slots offered when the wait ended.
        available: u32,
        /// How long the JobManager waited.
        waited_ms: u64,
    },
    /// JobManager high availability: the leader lost its lease (a standby takes over; this
    /// process exits so it restarts as a standby), or the lease storage cannot be used.
    #[error("high availability: {0}")]
    HighAvailability(String),
    /// The TaskManager could not register with the JobManager in time.
    #[error(
        "could not register with the JobManager at {address} within {timeout_ms} ms (last \
         error: {last_error}); check jobmanager.rpc.address and that the JobManager runs, or \
         raise taskmanager.registration.timeout-ms"
    )]
    RegistrationTimeout {
        /// The JobManager's RPC address.
        address: String,
        /// The registration timeout.
        timeout_ms: u64,
        /// Why the last attempt failed.
        last_error: String,
    },
    /// The JobManager refused the TaskManager (an incompatible version).
    #[error("the JobManager refused this TaskManager: {0}")]
    Refused(String),
    /// The manifest asks for a suspended job, so there is nothing to run.
    #[error(
        "the manifest sets spec.job.state: suspended; set it to running to run the job locally"
    )]
    Suspended,
}
