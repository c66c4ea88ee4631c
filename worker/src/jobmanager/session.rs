//! Session mode (`fjord jobmanager --session`, Flink's session cluster): the JobManager starts
//! no job of its own; jobs are submitted over REST (`POST /v1/jobs`) and run side by side on
//! the TaskManagers that registered with it, sharing their slots.
//!
//! Every submitted job is a [`JobManager`] of its own, exactly as in application mode: its
//! state machine, savepoints, stop-with-savepoint, rescale and cancel work per job ID, and its
//! checkpoints go to `<checkpointing.storage>/<job id>/`, so jobs never share a checkpoint
//! directory. What the jobs share is the process, the RPC port and the TaskManagers: each job
//! gets its own [`AttemptRouter`] (registered with the JobManager-wide one, which routes
//! TaskManager reports by job ID), and the [`SlotLedger`](super::slots::SlotLedger) keeps two
//! jobs off the same slot. A submission that needs more slots than are free is refused
//! (HTTP 409), so a caller can retry once another job ended or more TaskManagers came.

use super::config::JobManagerConfig;
use super::deployer::AttemptRouter;
use super::job::{ClusterParts, JobManager};
use super::registry::TaskManagerRegistry;
use super::session_store::SubmissionStore;
use crate::WorkerError;
use crate::local::LocalRun;
use fjord::JobRegistry;
use fjord_client::api::{JobState, SubmitJobRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Why a submission was refused.
#[derive(Debug)]
pub enum SubmitError {
    /// A job with this ID is running (or being deployed) in the session.
    Exists {
        /// The job ID.
        id: String,
        /// Its state.
        state: JobState,
    },
    /// The TaskManagers have too few free slots for the job.
    NotEnoughSlots {
        /// Slots the job needs.
        required: usize,
        /// Slots free now.
        free: usize,
    },
    /// The request or the job is invalid (unknown job, bad arguments, bad job ID, the job's
    /// own error).
    Invalid(WorkerError),
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Exists { id, state } => write!(
                f,
                "job {id} is already {state} in this session; cancel or stop it first, or \
                 submit it under another job_id"
            ),
            SubmitError::NotEnoughSlots { required, free } => write!(
                f,
                "the job needs {required} task slots, but the session's TaskManagers have \
                 {free} free; wait for another job to end, add TaskManagers, or lower the \
                 job's parallelism. Nothing was started"
            ),
            SubmitError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

/// The jobs of a session JobManager and what it needs to start more.
pub struct Session {
    registry: JobRegistry,
    config: JobManagerConfig,
    /// The registered TaskManagers (with the taskmanagers scheduler).
    task_managers: Option<Arc<TaskManagerRegistry>>,
    /// The JobManager-wide router the RPC service reports to.
    router: Arc<AttemptRouter>,
    runtime: tokio::runtime::Handle,
    /// Mutual TLS to the TaskManagers, when the cluster uses it.
    tls: Option<fjord::tls::InternalTls>,
    /// Every job submitted, oldest first; a job submitted again under its ID replaces its
    /// ended predecessor. Held while a submission is built, so submissions are serialized.
    jobs: Mutex<Vec<Arc<JobManager>>>,
    /// With high availability: where accepted submissions are recorded for the next leader.
    submissions: OnceLock<SubmissionStore>,
    /// Set once this process suspends its jobs (it is going away): their records stay.
    suspending: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("jobs", &self.jobs().len())
            .finish_non_exhaustive()
    }
}

fn valid_job_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

impl Session {
    /// A session without jobs. With `task_managers`, jobs are deployed to the TaskManagers
    /// registered there; without, every job runs in this process (the embedded scheduler).
    pub fn new(
        registry: &JobRegistry,
        config: &JobManagerConfig,
        task_managers: Option<Arc<TaskManagerRegistry>>,
        router: Arc<AttemptRouter>,
        runtime: tokio::runtime::Handle,
        tls: Option<fjord::tls::InternalTls>,
    ) -> Arc<Self> {
        Arc::new(Session {
            tls,
            registry: registry.clone(),
            config: config.clone(),
            task_managers,
            router,
            runtime,
            jobs: Mutex::new(Vec::new()),
            submissions: OnceLock::new(),
            suspending: AtomicBool::new(false),
        })
    }

    /// Records every accepted submission in `store` from now on (high availability), so the
    /// next leader can run the session's jobs again ([`recover`](Self::recover)). A second
    /// call is ignored.
    pub fn keep_submissions(&self, store: SubmissionStore) {
        let _ = self.submissions.set(store);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<JobManager>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every job submitted (ended ones included), oldest first.
    pub fn jobs(&self) -> Vec<Arc<JobManager>> {
        self.lock().clone()
    }

    /// The job with ID `id`.
    pub fn job(&self, id: &str) -> Option<Arc<JobManager>> {
        self.lock().iter().find(|j| j.id() == id).cloned()
    }

    /// The job's configuration: the session's, with the request's job, arguments,
    /// parallelism, job ID and restore path.
    fn job_config(&self, request: &SubmitJobRequest) -> Result<JobManagerConfig, SubmitError> {
        let invalid = |m: String| SubmitError::Invalid(WorkerError::Config(m));
        if request.job.trim().is_empty() {
            return Err(invalid(
                "the request names no job: pass \"job\" (see `fjord list`)".into(),
            ));
        }
        if request.parallelism == Some(0) || request.max_parallelism == Some(0) {
            return Err(invalid(
                "parallelism and max_parallelism must be at least 1".into(),
            ));
        }
        let job_id = match &request.job_id {
            Some(id) if valid_job_id(id) => Some(id.to_ascii_lowercase()),
            Some(id) => return Err(invalid(format!("job_id {id:?} is not 32 hex digits"))),
            None => None,
        };
        let mut config = self.config.clone();
        config.job = LocalRun {
            job: request.job.clone(),
            args: request.args.clone(),
            parallelism: request.parallelism.or(self.config.job.parallelism),
            max_parallelism: request.max_parallelism.or(self.config.job.max_parallelism),
        };
        config.job_id = job_id;
        config.restore_path = request.restore_path.clone();
        config.allow_non_restored_state = request.allow_non_restored_state;
        Ok(config)
    }

    /// Builds the requested job and starts it next to the session's other jobs. Returns once
    /// its deployment started (it is `CREATED` until its tasks run). Blocking: call it off
    /// the async runtime.
    ///
    /// A job submitted under the ID of a job that ended resumes from that job's latest
    /// completed checkpoint if one is left (see [`JobManager::start_when`]); one that
    /// finished or failed before is reported as ended and not run again.
    ///
    /// # Errors
    /// [`SubmitError::Exists`] when a job with the same ID has not ended,
    /// [`SubmitError::NotEnoughSlots`] when the TaskManagers' free slots are too few, and
    /// [`SubmitError::Invalid`] for an unknown job, bad arguments or the job's own error;
    /// nothing runs then.
    pub fn submit(
        self: &Arc<Self>,
        request: &SubmitJobRequest,
    ) -> Result<Arc<JobManager>, SubmitError> {
        let config = self.job_config(request)?;
        let mut jobs = self.lock();
        let refusal: Mutex<Option<SubmitError>> = Mutex::new(None);
        let claimed: Mutex<Option<String>> = Mutex::new(None);
        let refuse = |e: SubmitError| {
            let message = e.to_string();
            *refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            Err(WorkerError::Config(message))
        };
        let job_router = Arc::new(AttemptRouter::default());
        let parts = self.task_managers.as_ref().map(|registry| ClusterParts {
            registry: registry.clone(),
            router: job_router.clone(),
            runtime: self.runtime.clone(),
            tls: self.tls.clone(),
        });
        let ready = |id: &str, plan: &fjord::JobPlan| {
            if let Some(existing) = jobs
                .iter()
                .find(|j| j.id() == id && !j.state().is_terminal())
            {
                return refuse(SubmitError::Exists {
                    id: id.to_string(),
                    state: existing.state(),
                });
            }
            if let Some(registry) = &self.task_managers {
                // Claimed now for the first attempt (the deployer's claim for it replaces
                // this one), so two submissions cannot both count the same free slots.
                let required = plan.required_slots();
                if let Err(free) = registry.ledger().claim(id, 0, &registry.live(), required) {
                    return refuse(SubmitError::NotEnoughSlots { required, free });
                }
                *claimed.lock().unwrap_or_else(|p| p.into_inner()) = Some(id.to_string());
                // From here on the TaskManagers' reports of this job reach its own router.
                self.router.add_job(id, job_router.clone());
            }
            Ok(())
        };
        let started = JobManager::start_when(&self.registry, &config, ready, parts);
        let job = match started {
            Ok(job) => job,
            Err(e) => {
                if let (Some(id), Some(registry)) = (
                    claimed.lock().unwrap_or_else(|p| p.into_inner()).take(),
                    &self.task_managers,
                ) {
                    registry.ledger().release(&id, 0);
                }
                let refused = refusal.lock().unwrap_or_else(|p| p.into_inner()).take();
                return Err(refused.unwrap_or(SubmitError::Invalid(e)));
            }
        };
        if let Some(existing) = jobs.iter().find(|j| j.id() == job.id())
            && !existing.state().is_terminal()
        {
            // A job that had ended before (its result recorded) comes back ended; one
            // running is refused above, so this is only a defensive check.
            return Err(SubmitError::Exists {
                id: job.id().to_string(),
                state: existing.state(),
            });
        }
        if let Some(store) = self.submissions.get()
            && !job.state().is_terminal()
            && let Err(e) = store.record(job.id(), request)
        {
            // Without its record the job would not survive a failover: refuse it whole.
            job.cancel();
            return Err(SubmitError::Invalid(WorkerError::HighAvailability(
                format!(
                    "job {} was not started: cannot record it for the next leader ({e}); check the \
                 checkpoint storage and submit it again",
                    job.id()
                ),
            )));
        }
        jobs.retain(|j| j.id() != job.id());
        jobs.push(job.clone());
        tracing::info!(job = %job.name(), id = %job.id(), "session job submitted");
        if self.submissions.get().is_some() {
            self.forget_when_ended(&job);
        }
        Ok(job)
    }

    /// Once `job` ends other than by this process going away, its record goes (a finished,
    /// failed or cancelled job is not run again by the next leader).
    fn forget_when_ended(self: &Arc<Self>, job: &Arc<JobManager>) {
        let (session, job) = (self.clone(), job.clone());
        self.runtime.spawn(async move {
            job.terminated().await;
            if session.suspending.load(Ordering::SeqCst) {
                return;
            }
            let forget = tokio::task::spawn_blocking(move || session.forget(&job));
            if let Err(e) = forget.await {
                tracing::warn!(error = %e, "forgetting an ended session job panicked");
            }
        });
    }

    /// Removes `job`'s record, unless the session now holds another job under its ID (a
    /// resubmission, whose record it is).
    fn forget(&self, job: &Arc<JobManager>) {
        let jobs = self.lock();
        let current = jobs.iter().any(|j| Arc::ptr_eq(j, job));
        if let (true, Some(store)) = (current, self.submissions.get())
            && let Err(e) = store.remove(job.id())
        {
            tracing::warn!(
                id = %job.id(),
                error = %e,
                "cannot remove an ended job's record; the next leader will find it ended"
            );
        }
    }

    /// Submits every recorded job again (this JobManager just became the leader), oldest
    /// first, each under its job ID so it resumes from its latest completed checkpoint. A job
    /// that needs slots not yet offered is tried again until `wait` has passed (the
    /// TaskManagers register with a new leader within seconds); a job that is running already
    /// (submitted meanwhile, e.g. by the operator) is left as it is; a job that ended before
    /// comes back ended and its record goes. Blocking: call it off the async runtime.
    /// Returns how many jobs run again.
    pub fn recover(self: &Arc<Self>, wait: Duration) -> usize {
        let Some(store) = self.submissions.get() else {
            return 0;
        };
        let records = match store.list() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the session's recorded jobs; none is recovered");
                eprintln!("Cannot recover the session's jobs: {e}");
                return 0;
            }
        };
        let deadline = Instant::now() + wait;
        let mut running = 0;
        for record in records {
            let id = record.request.job_id.clone().unwrap_or_default();
            self.await_slots(record.request.parallelism.unwrap_or(1), deadline);
            loop {
                match self.submit(&record.request) {
                    Ok(job) if job.state().is_terminal() => {
                        if let Err(e) = store.remove(job.id()) {
                            tracing::warn!(%id, error = %e, "cannot remove an ended job's record");
                        }
                        break;
                    }
                    Ok(job) => {
                        eprintln!("Recovered session job '{}' ({id})", job.name());
                        running += 1;
                        break;
                    }
                    Err(SubmitError::Exists { .. }) => break,
                    Err(SubmitError::NotEnoughSlots { .. }) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Err(e) => {
                        // Kept: the next leader tries again (the job may be back in its image).
                        eprintln!(
                            "Cannot recover session job '{}' ({id}): {e}",
                            record.request.job
                        );
                        break;
                    }
                }
            }
        }
        running
    }

    /// Waits (until `deadline`) for the registered TaskManagers to offer at least `slots`
    /// slots in all, so a recovered job is not built again and again while they register.
    fn await_slots(&self, slots: usize, deadline: Instant) {
        let Some(registry) = &self.task_managers else {
            return;
        };
        while Instant::now() < deadline
            && registry
                .live()
                .iter()
                .map(|t| t.slots as usize)
                .sum::<usize>()
                < slots
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Suspends every running job (SIGTERM: the process goes, the jobs' checkpoints stay) and
    /// waits until they stopped.
    pub async fn suspend_all(&self) {
        self.suspending.store(true, Ordering::SeqCst);
        let jobs = self.jobs();
        for job in &jobs {
            job.suspend();
        }
        for job in &jobs {
            job.terminated().await;
        }
    }
}
