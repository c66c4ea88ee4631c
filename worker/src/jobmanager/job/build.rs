//! Building and executing the job: its ID (random, or derived from name and arguments), the
//! environment with the configuration's checkpoint settings and restore path applied, and
//! starting it on the embedded mini-cluster or on TaskManagers ([`ClusterParts`]).

use crate::WorkerError;
use crate::jobmanager::config::JobManagerConfig;
use crate::jobmanager::deployer::{AttemptRouter, ClusterDeployer, JobDescription};
use crate::jobmanager::registry::TaskManagerRegistry;
use fjord::checkpoint::CheckpointingMode;
use fjord::storage::StorageOptions;
use fjord::{JobArgs, JobClient, JobRegistry, StreamExecutionEnvironment};
use fjord_proto::v1::JobSettings;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn new_job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A job ID that is the same every time the same job runs with the same arguments (FNV-1a
/// over name and canonically spelled arguments, twice with different seeds): `--rate 10000`
/// and `--rate 10000.0` name the same job.
pub(super) fn derived_job_id(name: &str, args: &[String]) -> String {
    fjord_client::job_id::derive(
        std::iter::once(name)
            .chain(args.iter().map(String::as_str))
            .flat_map(|s| s.bytes().chain(std::iter::once(0))),
    )
}

/// The job of `config` built with its checkpoint settings and restore path applied first (the
/// job's own code may override them, as in Flink), at `parallelism` when set.
pub(super) fn build_env(
    registry: &JobRegistry,
    config: &JobManagerConfig,
    parallelism: Option<usize>,
) -> Result<StreamExecutionEnvironment, WorkerError> {
    build_env_with_args(registry, config, parallelism).map(|(env, _)| env)
}

/// [`build_env`], also returning the job's arguments spelled canonically (see
/// [`JobArgs::canonical`]).
pub(super) fn build_env_with_args(
    registry: &JobRegistry,
    config: &JobManagerConfig,
    parallelism: Option<usize>,
) -> Result<(StreamExecutionEnvironment, Vec<String>), WorkerError> {
    let run = &config.job;
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = parallelism {
        env.set_parallelism(p);
    }
    if let Some(m) = run.max_parallelism {
        env.set_max_parallelism(m);
    }
    if let Some(ms) = config.checkpoint_interval_ms.filter(|ms| *ms > 0) {
        env.enable_checkpointing(Duration::from_millis(ms));
    }
    env.checkpoint_config(|c| {
        if let Some(url) = &config.storage_url {
            c.storage = url.clone();
        }
        if config.at_least_once {
            c.mode = CheckpointingMode::AtLeastOnce;
        }
        if let Some(n) = config.retained {
            c.retained = n.max(1);
        }
        c.retain_on_cancellation = config.retain_on_cancellation;
        c.storage_options = StorageOptions::from_pairs(config.storage_options.clone());
        // A highly available JobManager completes checkpoints only while it leads.
        c.fence = crate::jobmanager::ha::process_fence();
    });
    if let Some(path) = &config.restore_path {
        env.restore_from(path, config.allow_non_restored_state);
    }
    let args = JobArgs::parse(run.args.iter().cloned())?;
    registry.build(&run.job, &env, &args)?;
    Ok((env, args.canonical()))
}

/// Starts the built job: on the embedded mini-cluster, or with `cluster` on TaskManagers.
pub(super) fn execute(
    env: &StreamExecutionEnvironment,
    config: &JobManagerConfig,
    cluster: Option<&ClusterParts>,
) -> Result<JobClient, WorkerError> {
    let run = &config.job;
    let effective = env.config();
    Ok(match cluster {
        None => env.execute_async(&run.job)?,
        Some(parts) => {
            let description = JobDescription {
                name: run.job.clone(),
                args: run.args.clone(),
                settings: JobSettings {
                    parallelism: effective.parallelism as u32,
                    max_parallelism: effective.max_parallelism.unwrap_or(0) as u32,
                    checkpoint_storage: effective.checkpoints.storage.clone(),
                    at_least_once: effective.checkpoints.mode == CheckpointingMode::AtLeastOnce,
                    checkpoint_interval_ms: effective
                        .checkpoints
                        .interval
                        .map_or(0, |d| d.as_millis() as u64),
                },
            };
            let slot_wait = if config.wait_for_slots.is_zero() {
                DEFAULT_SLOT_WAIT
            } else {
                config.wait_for_slots
            };
            let deployer = ClusterDeployer::new(
                parts.registry.clone(),
                parts.router.clone(),
                parts.runtime.clone(),
                description,
                slot_wait,
            )
            .with_tls(parts.tls.clone());
            env.execute_async_on(&run.job, Arc::new(deployer))?
        }
    })
}

/// How long an attempt waits for slots when `jobmanager.wait-for-slots` is not set (Flink's
/// `slot.request.timeout` default).
const DEFAULT_SLOT_WAIT: Duration = Duration::from_secs(300);

/// What deploying onto TaskManagers needs from the JobManager process.
#[derive(Clone)]
pub struct ClusterParts {
    /// The registered TaskManagers.
    pub registry: Arc<TaskManagerRegistry>,
    /// Routes their reports to the running attempt.
    pub router: Arc<AttemptRouter>,
    /// Where control-plane calls run.
    pub runtime: tokio::runtime::Handle,
    /// Mutual TLS to the TaskManagers, when the cluster uses it.
    pub tls: Option<fjord::tls::InternalTls>,
}
