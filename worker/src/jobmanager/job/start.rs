//! Starting the JobManager's job: building it, resuming it from its latest completed
//! checkpoint (or reporting the recorded result of a job that already ended), executing it,
//! and starting the threads that mark it deployed and wait for its end.

use super::build::{ClusterParts, build_env_with_args, derived_job_id, execute, new_job_id};
use super::lifecycle::JobEvent;
use super::{Execution, FinalCheckpoints, JobManager, Launcher, Status, now_ms};
use crate::WorkerError;
use crate::jobmanager::config::JobManagerConfig;
use fjord::checkpoint::job_result::{JOB_RESULT_FILE, JobResult, TerminalState, read_job_result};
use fjord::runtime::io_metrics::IoMetrics;
use fjord::storage::StorageOptions;
use fjord::{FjordError, JobPlan, JobRegistry, StreamExecutionEnvironment};
use fjord_client::api::JobState;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

impl JobManager {
    /// Builds the job from `registry` with the configuration's checkpoint settings and restore
    /// path applied first (the job's own code may override them, as in Flink), and starts it on
    /// the embedded mini-cluster (every subtask in this process). Returns once the job is
    /// started; it runs in the background.
    ///
    /// # Errors
    /// An unknown job name (listing the registered ones), malformed arguments, a bad storage
    /// URL, or an error the job's build function returns; nothing runs then.
    pub fn start(
        registry: &JobRegistry,
        config: &JobManagerConfig,
    ) -> Result<Arc<Self>, WorkerError> {
        Self::start_when(registry, config, |_, _| Ok(()), None)
    }

    /// [`start`](Self::start), but calls `ready` with the job ID and the built job's plan
    /// before executing it; an error from `ready` (not enough slots) is returned and nothing
    /// runs. With
    /// `cluster`, subtasks are deployed to the registered TaskManagers instead of running in
    /// this process, the job ID is stable (configured, or derived from the job name and
    /// arguments), and the job resumes from the latest completed checkpoint found under
    /// `<storage>/<job id>/` (a restarted JobManager carries on where the old one stopped).
    ///
    /// # Errors
    /// Those of [`start`](Self::start), and `ready`'s.
    pub fn start_when(
        registry: &JobRegistry,
        config: &JobManagerConfig,
        ready: impl FnOnce(&str, &JobPlan) -> Result<(), WorkerError>,
        cluster: Option<ClusterParts>,
    ) -> Result<Arc<Self>, WorkerError> {
        let run = &config.job;
        let (env, canonical_args) = build_env_with_args(registry, config, run.parallelism)?;
        let job_id = match (&config.job_id, &cluster) {
            (Some(id), _) => id.clone(),
            (None, Some(_)) => derived_job_id(&run.job, &canonical_args),
            (None, None) => new_job_id(),
        };
        env.set_job_id(&job_id);
        if (config.job_id.is_some() || cluster.is_some())
            && let Some(storage) = &config.storage_url
        {
            let options = StorageOptions::from_pairs(config.storage_options.clone());
            // A job that ended is not run again (Flink's JobResultStore): its checkpoints are
            // gone, so running it would write its whole output a second time.
            if let Some(result) = read_job_result(storage, &options, &job_id)? {
                eprintln!(
                    "Job {job_id} already ended {} (recorded in {storage}/{job_id}/{JOB_RESULT_FILE}); \
                     not running it again. To run it again, give it another job ID or delete that record.",
                    result.state
                );
                return Self::ended(env, config, job_id, cluster, &result);
            }
            if let Some(latest) =
                fjord::checkpoint::latest_completed_checkpoint(storage, &options, &job_id)?
            {
                eprintln!("Resuming job {job_id} from its latest completed checkpoint {latest}");
                if let Some(ignored) = config
                    .restore_path
                    .as_deref()
                    .map(crate::jobmanager::config::redact_url)
                {
                    eprintln!(
                        "The restore path {ignored} is not used: job {job_id} has completed checkpoints, and a JobManager carries on from its job's latest one. To start from that savepoint (for example after a stop-with-savepoint), give the job a new ID (--job-id / job.id)"
                    );
                }
                env.restore_from(&latest, config.allow_non_restored_state);
            }
        }
        let plan = env.get_execution_plan()?;
        ready(&job_id, &plan)?;
        let effective = env.config();
        let (state_tx, _) = watch::channel(JobState::Created);
        let remote_io = cluster
            .as_ref()
            .map(|parts| (parts.router.clone(), parts.registry.clone()));
        let client = execute(&env, config, cluster.as_ref())?;
        let job = Arc::new(JobManager {
            id: job_id,
            run: run.clone(),
            execution: Mutex::new(Execution {
                plan: Arc::new(plan),
                io: client.io_metrics(),
                metrics: client.metrics(),
                cancel: Arc::new(client.canceller()),
                suspend: Arc::new(client.suspender()),
            }),
            launcher: Launcher {
                registry: registry.clone(),
                config: config.clone(),
                cluster,
            },
            rescaling: Mutex::new(None),
            rescales: Mutex::new(BTreeMap::new()),
            remote_io,
            final_io: Mutex::new(None),
            final_operator_metrics: Mutex::new(None),
            client: Mutex::new(Some(Arc::new(client))),
            final_checkpoints: Mutex::new(FinalCheckpoints::default()),
            savepoints: Mutex::new(BTreeMap::new()),
            manual_checkpoints: Mutex::new(BTreeMap::new()),
            savepoint_dir: config.savepoint_dir.clone(),
            checkpoint_storage: config.storage_url.clone(),
            checkpoint_interval_ms: effective.checkpoints.interval.map(|d| d.as_millis() as u64),
            start_time_ms: now_ms(),
            started: Instant::now(),
            status: Mutex::new(Status {
                state: JobState::Created,
                failure: None,
                end_time_ms: None,
                ended: None,
            }),
            state_tx,
        });
        match job.remote_io.as_ref().map(|(router, _)| router.clone()) {
            // Subtasks on TaskManagers: RUNNING once they accepted their tasks, not while the
            // JobManager still waits for slots (the operator reports Ready from RUNNING).
            Some(router) => {
                let deployed = job.clone();
                std::thread::Builder::new()
                    .name("job deployed".into())
                    .spawn(move || {
                        while deployed.state() == JobState::Created {
                            if router.tasks_deployed() {
                                deployed.apply(JobEvent::Deployed);
                                break;
                            }
                            std::thread::park_timeout(Duration::from_millis(20));
                        }
                    })
                    .map_err(|e| FjordError::io("cannot start the job watcher thread", e))?;
            }
            None => {
                job.apply(JobEvent::Deployed);
            }
        }
        let waiter = job.clone();
        std::thread::Builder::new()
            .name("job waiter".into())
            .spawn(move || waiter.wait_for_the_end())
            .map_err(|e| FjordError::io("cannot start the job waiter thread", e))?;
        tracing::info!(job = %run.job, id = %job.id, "job started");
        Ok(job)
    }

    /// The JobManager of a job that ended before (in an earlier JobManager): it reports the
    /// recorded result and runs nothing.
    fn ended(
        env: StreamExecutionEnvironment,
        config: &JobManagerConfig,
        job_id: String,
        cluster: Option<ClusterParts>,
        result: &JobResult,
    ) -> Result<Arc<Self>, WorkerError> {
        let plan = env.get_execution_plan()?;
        let effective = env.config();
        let state = match result.state {
            TerminalState::Finished => JobState::Finished,
            TerminalState::Failed => JobState::Failed,
        };
        let (state_tx, _) = watch::channel(state);
        let remote_io = cluster
            .as_ref()
            .map(|parts| (parts.router.clone(), parts.registry.clone()));
        Ok(Arc::new(JobManager {
            id: job_id,
            run: config.job.clone(),
            execution: Mutex::new(Execution {
                plan: Arc::new(plan),
                io: IoMetrics::default(),
                metrics: Default::default(),
                cancel: Arc::new(|| {}),
                suspend: Arc::new(|| {}),
            }),
            launcher: Launcher {
                registry: JobRegistry::new(),
                config: config.clone(),
                cluster,
            },
            rescaling: Mutex::new(None),
            rescales: Mutex::new(BTreeMap::new()),
            remote_io,
            final_io: Mutex::new(Some(Vec::new())),
            final_operator_metrics: Mutex::new(Some(Vec::new())),
            client: Mutex::new(None),
            final_checkpoints: Mutex::new(FinalCheckpoints::default()),
            savepoints: Mutex::new(BTreeMap::new()),
            manual_checkpoints: Mutex::new(BTreeMap::new()),
            savepoint_dir: config.savepoint_dir.clone(),
            checkpoint_storage: config.storage_url.clone(),
            checkpoint_interval_ms: effective.checkpoints.interval.map(|d| d.as_millis() as u64),
            start_time_ms: result.end_time_ms,
            started: Instant::now(),
            status: Mutex::new(Status {
                state,
                failure: result.failure.clone(),
                end_time_ms: Some(result.end_time_ms),
                ended: Some(Instant::now()),
            }),
            state_tx,
        }))
    }
}
