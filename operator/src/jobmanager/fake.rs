//! An in-memory JobManager for tests: records every call and lets the test decide when a
//! savepoint completes or fails.

use std::collections::BTreeMap;
use std::sync::Mutex;

use fjord_crds::{CheckpointRecord, CheckpointType, JobState};

use super::{CheckpointStatus, JobInfo, JobManagerApi, JobManagerEndpoint, SavepointStatus};
use crate::Error;

/// The fake's state, public so tests can set it up and inspect it.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Whether calls succeed at all.
    pub unreachable: bool,
    /// The job, if one runs.
    pub job: Option<JobInfo>,
    /// Savepoints by trigger ID.
    pub savepoints: BTreeMap<String, SavepointStatus>,
    /// Manual checkpoints by trigger ID.
    pub checkpoints: BTreeMap<String, CheckpointStatus>,
    /// Trigger IDs that were stop-with-savepoint (the job stops when they complete).
    pub stopping: Vec<String>,
    /// The latest completed checkpoint.
    pub checkpoint: Option<CheckpointRecord>,
    /// Every call, in order, as `name(args)`.
    pub calls: Vec<String>,
    /// Disposed savepoint paths.
    pub disposed: Vec<String>,
    /// The TaskManagers the job's attempt runs on.
    pub busy: Vec<String>,
}

/// The fake JobManager.
#[derive(Debug, Default)]
pub struct FakeJobManager {
    /// Its state.
    pub state: Mutex<FakeState>,
}

impl FakeJobManager {
    /// A JobManager running one job in the given state.
    pub fn running(job_id: &str) -> Self {
        let fake = Self::default();
        fake.state.lock().unwrap().job = Some(JobInfo {
            id: job_id.into(),
            state: JobState::Running,
            failure: None,
            restarts: Some(0),
            start_time: None,
            vertices: Vec::new(),
        });
        fake
    }

    /// Complete a savepoint; a stop-with-savepoint also stops the job.
    pub fn complete_savepoint(&self, trigger_id: &str, path: &str) {
        let mut s = self.state.lock().unwrap();
        s.savepoints.insert(
            trigger_id.into(),
            SavepointStatus::Completed { path: path.into() },
        );
        if s.stopping.iter().any(|t| t == trigger_id)
            && let Some(job) = s.job.as_mut()
        {
            job.state = JobState::Suspended;
        }
    }

    /// Fail a savepoint; the job keeps running.
    pub fn fail_savepoint(&self, trigger_id: &str, message: &str) {
        self.state.lock().unwrap().savepoints.insert(
            trigger_id.into(),
            SavepointStatus::Failed {
                message: message.into(),
            },
        );
    }

    /// End a manual checkpoint with `status`.
    pub fn end_checkpoint(&self, trigger_id: &str, status: CheckpointStatus) {
        self.state
            .lock()
            .unwrap()
            .checkpoints
            .insert(trigger_id.into(), status);
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().unwrap().calls.clone()
    }

    fn enter(&self, jm: &JobManagerEndpoint, call: String) -> Result<(), Error> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(call);
        if s.unreachable {
            return Err(Error::JobManagerUnreachable {
                endpoint: jm.base_url.clone(),
                message: "connection refused".into(),
            });
        }
        Ok(())
    }
}

impl JobManagerApi for FakeJobManager {
    async fn job(&self, jm: &JobManagerEndpoint) -> Result<Option<JobInfo>, Error> {
        self.enter(jm, "job()".into())?;
        Ok(self.state.lock().unwrap().job.clone())
    }

    async fn trigger_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
    ) -> Result<(), Error> {
        self.enter(
            jm,
            format!("trigger_savepoint({job_id}, {trigger_id}, {directory})"),
        )?;
        let mut s = self.state.lock().unwrap();
        s.savepoints
            .entry(trigger_id.into())
            .or_insert(SavepointStatus::InProgress);
        Ok(())
    }

    async fn stop_with_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
    ) -> Result<(), Error> {
        self.enter(
            jm,
            format!("stop_with_savepoint({job_id}, {trigger_id}, {directory})"),
        )?;
        let mut s = self.state.lock().unwrap();
        s.stopping.push(trigger_id.into());
        s.savepoints
            .entry(trigger_id.into())
            .or_insert(SavepointStatus::InProgress);
        Ok(())
    }

    async fn rescale(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        parallelism: i32,
    ) -> Result<(), Error> {
        self.enter(
            jm,
            format!("rescale({job_id}, {trigger_id}, {parallelism})"),
        )?;
        self.state
            .lock()
            .unwrap()
            .savepoints
            .entry(trigger_id.into())
            .or_insert(SavepointStatus::InProgress);
        Ok(())
    }

    async fn rescale_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<SavepointStatus, Error> {
        self.enter(jm, format!("rescale_status({job_id}, {trigger_id})"))?;
        let s = self.state.lock().unwrap();
        Ok(s.savepoints
            .get(trigger_id)
            .cloned()
            .unwrap_or(SavepointStatus::Unknown))
    }

    async fn busy_task_managers(&self, jm: &JobManagerEndpoint) -> Result<Vec<String>, Error> {
        self.enter(jm, "busy_task_managers()".into())?;
        Ok(self.state.lock().unwrap().busy.clone())
    }

    async fn savepoint_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<SavepointStatus, Error> {
        self.enter(jm, format!("savepoint_status({job_id}, {trigger_id})"))?;
        let s = self.state.lock().unwrap();
        Ok(s.savepoints
            .get(trigger_id)
            .cloned()
            .unwrap_or(SavepointStatus::Unknown))
    }

    async fn trigger_checkpoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        kind: CheckpointType,
    ) -> Result<(), Error> {
        self.enter(
            jm,
            format!("trigger_checkpoint({job_id}, {trigger_id}, {kind:?})"),
        )?;
        self.state
            .lock()
            .unwrap()
            .checkpoints
            .entry(trigger_id.into())
            .or_insert(CheckpointStatus::InProgress);
        Ok(())
    }

    async fn checkpoint_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<CheckpointStatus, Error> {
        self.enter(jm, format!("checkpoint_status({job_id}, {trigger_id})"))?;
        let s = self.state.lock().unwrap();
        Ok(s.checkpoints
            .get(trigger_id)
            .cloned()
            .unwrap_or(CheckpointStatus::Unknown))
    }

    async fn cancel(&self, jm: &JobManagerEndpoint, job_id: &str) -> Result<(), Error> {
        self.enter(jm, format!("cancel({job_id})"))?;
        if let Some(job) = self.state.lock().unwrap().job.as_mut() {
            job.state = JobState::Cancelled;
        }
        Ok(())
    }

    async fn latest_checkpoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
    ) -> Result<Option<CheckpointRecord>, Error> {
        self.enter(jm, format!("latest_checkpoint({job_id})"))?;
        Ok(self.state.lock().unwrap().checkpoint.clone())
    }

    async fn dispose_savepoint(&self, jm: &JobManagerEndpoint, path: &str) -> Result<(), Error> {
        self.enter(jm, format!("dispose_savepoint({path})"))?;
        self.state.lock().unwrap().disposed.push(path.into());
        Ok(())
    }
}
