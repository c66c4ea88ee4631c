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
//! [`jobmanager`] is the JobManager role (REST API, metrics) and [`exit`] defines the
//! documented exit codes. `cli` depends on the others; they do not
//! depend on each other except through [`local`] (`jobmanager` builds its job with it).

pub mod cli;
pub mod exit;
pub mod jobmanager;
pub mod local;
pub mod manifest;

pub use cli::main_with;

/// Everything that can stop the worker binary.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The job failed while building or running.
    #[error(transparent)]
    Job(#[from] fjord::FjordError),
    /// A StreamJob manifest was invalid.
    #[error("{0}")]
    Manifest(#[from] fjord_crds::Error),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration key, flag or environment variable has a bad value.
    #[error("{0}")]
    Config(String),
    /// The REST server could not listen.
    #[error(
        "cannot serve the REST API on {address}: {source}; choose another port with --rest-port or jobmanager.rest.port"
    )]
    Serve {
        /// The address.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest asks for a suspended job, so there is nothing to run.
    #[error(
        "the manifest sets spec.job.state: suspended; set it to running to run the job locally"
    )]
    Suspended,
}
