//! `fjord sql -f job.sql`: plans a SQL script and runs it on the embedded mini-cluster, or
//! prints its plan with `--explain` (nothing runs then). Also the built-in registered job
//! [`SQL_JOB`] (`sql --script <text>` or `sql --file <path>`), which is how a SQL script runs
//! on a JobManager and TaskManagers (a StreamJob's `spec.job.sql`, a session job).
//!
//! The planner is the `sql` feature (`planner`, on `fjord-sql`); without it the same functions
//! fail with [`WorkerError::NotBuiltIn`](crate::WorkerError::NotBuiltIn) (`unavailable`), so
//! `fjord sql` and a StreamJob's `spec.job.sql` name the feature to enable.

use crate::local::FaultTolerance;

#[cfg(feature = "sql")]
mod planner;
#[cfg(feature = "sql")]
pub use planner::{
    SqlError, describe_functions, explain, functions, install_functions, job, prepare, run,
};

#[cfg(not(feature = "sql"))]
mod unavailable;
#[cfg(not(feature = "sql"))]
pub use unavailable::{SqlError, describe_functions, job, run};

/// The name of the built-in job that runs a SQL script (every worker binary has it; without
/// the `sql` feature it fails naming the feature). The operator names it in a StreamJob's
/// pods as `fjord_crds::SQL_JOB_NAME`; a test keeps the two equal.
pub const SQL_JOB: &str = "sql";

/// What `sql` says about its arguments in `fjord list`.
pub const SQL_JOB_DESCRIPTION: &str = if cfg!(feature = "sql") {
    "runs a Flink SQL script (docs/sql.md): --script=<text> | --file <path>; a StreamJob's spec.job.sql runs it"
} else {
    "runs a Flink SQL script: not built into this binary (fjord-worker's `sql` feature)"
};

/// What `fjord sql` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct SqlRun {
    /// Print the plan instead of running.
    pub explain: bool,
    /// `-p`: wins over the script's `SET 'parallelism.default'`.
    pub parallelism: Option<usize>,
    /// `--max-parallelism`.
    pub max_parallelism: Option<usize>,
    /// Checkpointing and restore flags (a flag's interval wins over the script's `SET`).
    pub fault_tolerance: FaultTolerance,
}

#[cfg(all(test, feature = "manifests"))]
mod tests {
    #[test]
    fn the_sql_job_has_the_name_the_operator_gives_it() {
        assert_eq!(super::SQL_JOB, fjord_crds::SQL_JOB_NAME);
    }
}
