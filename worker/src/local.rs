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
    check_memory(&env, available_memory())?;
    Ok(env)
}

/// The smallest a record is in a channel's buffer (a value and its timestamp).
const MIN_RECORD_BYTES: u64 = 16;

/// Bytes of memory available to new allocations (`MemAvailable` of `/proc/meminfo`), if the
/// system tells.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a job whose channels between subtasks would need more than half of the memory
/// `available` when their buffers fill (as backpressure makes them): every channel holds up
/// to `channel_capacity` batches plus the one its producer fills. All-to-all connections
/// (hash, rebalance, broadcast) have `p × p` channels, so memory grows with the square of the
/// parallelism, and a `-p` too high for the machine would otherwise run it out of memory.
///
/// # Errors
/// [`FjordError::BadArguments`] naming the estimate, the memory available and a parallelism
/// that fits.
fn check_memory(
    env: &StreamExecutionEnvironment,
    available: Option<u64>,
) -> Result<(), WorkerError> {
    let Some(available) = available else {
        return Ok(());
    };
    let plan = env.get_execution_plan()?;
    let config = env.config();
    let parallelism = |v: usize| {
        plan.vertices
            .iter()
            .find(|x| x.id == v)
            .map_or(1, |x| x.parallelism as u64)
    };
    let channels: u64 = plan
        .edges
        .iter()
        .map(|e| {
            let (from, to) = (parallelism(e.source), parallelism(e.target));
            match e.partitioner.as_str() {
                "FORWARD" | "RESCALE" => from.max(to),
                _ => from.saturating_mul(to),
            }
        })
        .fold(0u64, u64::saturating_add);
    let per_channel =
        (config.channel_capacity as u64 + 1) * config.batch_size as u64 * MIN_RECORD_BYTES;
    let needed = channels.saturating_mul(per_channel);
    let limit = available / 2;
    if needed <= limit {
        return Ok(());
    }
    let widest = plan
        .vertices
        .iter()
        .map(|v| v.parallelism)
        .max()
        .unwrap_or(1);
    let fits = ((widest as f64) * (limit as f64 / needed as f64).sqrt())
        .floor()
        .max(1.0);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    Err(fjord::FjordError::BadArguments(format!(
        "parallelism {widest} gives {channels} channels between subtasks; with their buffers full \
         ({} batches of {} records each) they need about {:.1} GiB, more than half of the {:.1} GiB \
         this machine has available. Use a lower -p (about {fits} fits here), or run the job on \
         TaskManagers (fjord jobmanager --scheduler taskmanagers)",
        config.channel_capacity + 1,
        config.batch_size,
        gib(needed),
        gib(available),
    ))
    .into())
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
    fn a_parallelism_whose_channels_exceed_the_memory_is_refused() {
        let request = |p| LocalRun {
            job: "windowed-counts".into(),
            args: vec!["--count".into(), "10".into()],
            parallelism: Some(p),
            max_parallelism: Some(4096),
        };
        let registry = fjord_examples::registry();
        let env = |p| {
            let env = StreamExecutionEnvironment::new();
            env.set_parallelism(p);
            env.set_max_parallelism(4096);
            let args = JobArgs::parse(request(p).args).unwrap();
            registry.build("windowed-counts", &env, &args).unwrap();
            env
        };
        let gib = 1u64 << 30;
        let err = check_memory(&env(1000), Some(16 * gib))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("parallelism 1000 gives") && err.contains("Use a lower -p"),
            "{err}"
        );
        check_memory(&env(8), Some(16 * gib)).unwrap();
        check_memory(&env(1000), None).unwrap();
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
