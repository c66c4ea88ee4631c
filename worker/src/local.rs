//! Running a registered job on the embedded mini-cluster.

use crate::WorkerError;
use fjord::checkpoint::CheckpointingMode;
use fjord::storage::StorageOptions;
use fjord::{JobArgs, JobExecutionResult, JobRegistry, StreamExecutionEnvironment};
use std::time::Duration;

/// Checkpointing and restore settings of a local run (from flags or a manifest's
/// `spec.checkpointing`, `spec.job.initialSavepointPath` and `allowNonRestoredState`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultTolerance {
    /// Checkpoint interval; `None` disables checkpoints.
    pub checkpoint_interval: Option<Duration>,
    /// Checkpoint storage URL (`file://`, `s3://`, `memory://`); `None` keeps the default.
    pub checkpoint_storage: Option<String>,
    /// At-least-once instead of exactly-once checkpoints.
    pub at_least_once: bool,
    /// Completed checkpoints to keep.
    pub retained: Option<usize>,
    /// A savepoint or checkpoint to start from.
    pub restore_from: Option<String>,
    /// Drop state of operators the job no longer has instead of failing.
    pub allow_non_restored_state: bool,
}

impl FaultTolerance {
    /// Applies the settings to an environment. S3 settings come from the `AWS_*`
    /// environment variables (endpoint, keys, region), as in a pod with the storage Secret.
    pub fn apply(&self, env: &StreamExecutionEnvironment) {
        if let Some(interval) = self.checkpoint_interval {
            env.enable_checkpointing(interval);
        }
        env.checkpoint_config(|c| {
            if let Some(storage) = &self.checkpoint_storage {
                c.storage = storage.clone();
            }
            if self.at_least_once {
                c.mode = CheckpointingMode::AtLeastOnce;
            }
            if let Some(r) = self.retained {
                c.retained = r;
            }
            c.storage_options = StorageOptions::default();
        });
        if let Some(path) = &self.restore_from {
            env.restore_from(path, self.allow_non_restored_state);
        }
    }
}

/// Everything needed to run a job locally; built from the command line or from a StreamJob
/// manifest, so both paths run the same code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRun {
    /// The registered job name.
    pub job: String,
    /// The job's arguments (`--key value` pairs).
    pub args: Vec<String>,
    /// Default parallelism; `None` uses the number of cores.
    pub parallelism: Option<usize>,
    /// Max parallelism (key groups); `None` uses the default.
    pub max_parallelism: Option<usize>,
}

/// Builds the job on a fresh environment and returns the environment ready to execute.
///
/// # Errors
/// An unknown job name (listing the registered ones), malformed arguments, or an error the
/// job's build function returns.
pub fn prepare(
    registry: &JobRegistry,
    run: &LocalRun,
) -> Result<StreamExecutionEnvironment, WorkerError> {
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = run.parallelism {
        env.set_parallelism(p);
    }
    if let Some(m) = run.max_parallelism {
        env.set_max_parallelism(m);
    }
    let args = JobArgs::parse(run.args.iter().cloned())?;
    registry.build(&run.job, &env, &args)?;
    Ok(env)
}

/// Runs the job to completion. `on_start` receives a function that cancels the job (for a
/// signal handler). Returns when the job finished, failed or was cancelled.
pub fn run(
    registry: &JobRegistry,
    run: &LocalRun,
    on_start: impl FnOnce(Box<dyn Fn() + Send + Sync>),
) -> Result<JobExecutionResult, WorkerError> {
    run_with(registry, run, &FaultTolerance::default(), on_start)
}

/// [`run`] with checkpointing and restore settings.
pub fn run_with(
    registry: &JobRegistry,
    run: &LocalRun,
    fault_tolerance: &FaultTolerance,
    on_start: impl FnOnce(Box<dyn Fn() + Send + Sync>),
) -> Result<JobExecutionResult, WorkerError> {
    let env = prepare(registry, run)?;
    fault_tolerance.apply(&env);
    let client = env.execute_async(&run.job)?;
    on_start(Box::new(client.canceller()));
    Ok(client.wait()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_a_registered_example_to_completion() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        let request = LocalRun {
            job: "transformations".into(),
            args: vec![
                "--count".into(),
                "4".into(),
                "--output".into(),
                out.display().to_string(),
            ],
            parallelism: Some(1),
            max_parallelism: None,
        };
        let result = run(&fjord_examples::registry(), &request, |_| {}).unwrap();
        assert_eq!(result.job_name, "transformations");
        assert_eq!(std::fs::read_to_string(out).unwrap(), "4\n-4\n16\n-16\n");
    }

    #[test]
    fn unknown_job_names_the_registered_ones() {
        let request = LocalRun {
            job: "nope".into(),
            args: vec![],
            parallelism: None,
            max_parallelism: None,
        };
        let err = run(&fjord_examples::registry(), &request, |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no job named 'nope'") && err.contains("wordcount"),
            "{err}"
        );
    }
}
