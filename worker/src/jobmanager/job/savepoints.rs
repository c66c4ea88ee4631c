//! Savepoints by trigger ID: starting one (or a stop-with-savepoint) on its own thread,
//! recording its outcome, and what the API reads about them; [`SavepointRefusal`] says why a
//! savepoint, rescale or manual checkpoint request was not started.

use super::{JobManager, lock};
use fjord::FjordError;
use fjord_client::api::{JobState, SavepointState, SavepointStatus};
use std::sync::Arc;

/// Why a savepoint or rescale request was not started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavepointRefusal {
    /// The job is not running.
    NotRunning(JobState),
    /// No directory in the request and none configured.
    NoDirectory,
    /// A rescale or savepoint is in progress; the message says which.
    Busy(String),
    /// TaskManagers offer too few slots for the new parallelism.
    NotEnoughSlots {
        /// Slots the job needs at the new parallelism.
        required: usize,
        /// Slots offered now.
        available: usize,
    },
    /// The job cannot be built at the new parallelism (the job's error).
    Invalid(String),
}

impl JobManager {
    /// Starts a savepoint (or, with `stop`, a stop-with-savepoint) under `trigger_id`. A trigger
    /// ID seen before returns its status without starting anything, so retries are safe.
    ///
    /// # Errors
    /// [`SavepointRefusal`] when the job is not running or no directory is known.
    pub fn savepoint(
        self: &Arc<Self>,
        trigger_id: &str,
        directory: Option<&str>,
        stop: Option<bool>,
    ) -> Result<SavepointStatus, SavepointRefusal> {
        let mut savepoints = lock(&self.savepoints);
        if let Some(existing) = savepoints.get(trigger_id) {
            return Ok(existing.clone());
        }
        let client = self.client_for_snapshot("take the savepoint")?;
        let directory = directory
            .map(str::to_string)
            .or_else(|| self.savepoint_dir.clone())
            .ok_or(SavepointRefusal::NoDirectory)?;
        let status = SavepointStatus {
            trigger_id: trigger_id.into(),
            state: SavepointState::InProgress,
            path: None,
            failure: None,
        };
        savepoints.insert(trigger_id.into(), status.clone());
        drop(savepoints);
        let job = self.clone();
        let trigger = trigger_id.to_string();
        let spawned = std::thread::Builder::new()
            .name(format!("savepoint {trigger}"))
            .spawn(move || {
                let result = match stop {
                    None => client.trigger_savepoint(&directory),
                    Some(drain) => client.trigger_stop_with_savepoint(&directory, drain),
                };
                drop(client);
                job.savepoint_done(&trigger, result);
            });
        if let Err(e) = spawned {
            self.savepoint_done(
                trigger_id,
                Err(FjordError::io("cannot start the savepoint thread", e)),
            );
        }
        Ok(status)
    }

    fn savepoint_done(&self, trigger_id: &str, result: fjord::Result<String>) {
        let status = match &result {
            Ok(path) => {
                tracing::info!(job = %self.run.job, trigger_id, path, "savepoint completed");
                SavepointStatus {
                    trigger_id: trigger_id.into(),
                    state: SavepointState::Completed,
                    path: Some(path.clone()),
                    failure: None,
                }
            }
            Err(e) => {
                tracing::warn!(job = %self.run.job, trigger_id, error = %e, "savepoint failed");
                SavepointStatus {
                    trigger_id: trigger_id.into(),
                    state: SavepointState::Failed,
                    path: None,
                    failure: Some(e.to_string()),
                }
            }
        };
        lock(&self.savepoints).insert(trigger_id.into(), status);
    }

    /// Savepoints requested through the API by outcome: in_progress, completed, failed.
    pub fn savepoint_counts(&self) -> [(&'static str, usize); 3] {
        let savepoints = lock(&self.savepoints);
        let count = |s: SavepointState| savepoints.values().filter(|v| v.state == s).count();
        [
            ("in_progress", count(SavepointState::InProgress)),
            ("completed", count(SavepointState::Completed)),
            ("failed", count(SavepointState::Failed)),
        ]
    }

    /// The status of the savepoint started under `trigger_id`, if any.
    pub fn savepoint_status(&self, trigger_id: &str) -> Option<SavepointStatus> {
        lock(&self.savepoints).get(trigger_id).cloned()
    }
}
