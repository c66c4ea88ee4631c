//! Checkpoints triggered through the API (Flink's manual checkpoints): started under a
//! trigger ID, taken by the engine's checkpoint coordinator on a thread of their own, their
//! outcome kept for `GET /v1/jobs/{job_id}/checkpoints/{trigger_id}`. A child of [`super`] so
//! it reads the job's state directly.

use super::{JobManager, SavepointRefusal, lock};
use fjord::FjordError;
use fjord::checkpoint::CheckpointType as EngineType;
use fjord_client::api::{CheckpointTriggerStatus, CheckpointType, OperationState};
use std::sync::Arc;

/// Outcomes kept; beyond it the oldest ended ones (by trigger ID order) are forgotten.
const KEPT: usize = 10_000;

/// Manual checkpoints in progress at once (each waits on a thread of its own); more are
/// refused until one ends.
const IN_PROGRESS_MAX: usize = 100;

fn engine_type(kind: CheckpointType) -> EngineType {
    match kind {
        CheckpointType::Configured => EngineType::Configured,
        CheckpointType::Full => EngineType::Full,
        CheckpointType::Incremental => EngineType::Incremental,
    }
}

impl JobManager {
    /// Starts a checkpoint of kind `kind` under `trigger_id` (a random one when `None`) and
    /// returns the trigger ID. A trigger ID seen before starts nothing, so retries are safe.
    ///
    /// # Errors
    /// [`SavepointRefusal`] when the job is not running or a rescale is in progress.
    pub fn trigger_checkpoint(
        self: &Arc<Self>,
        trigger_id: Option<&str>,
        kind: CheckpointType,
    ) -> Result<String, SavepointRefusal> {
        let trigger = trigger_id
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
        let mut requests = lock(&self.manual_checkpoints);
        if requests.contains_key(&trigger) {
            return Ok(trigger);
        }
        let client = self.client_for_snapshot("trigger the checkpoint")?;
        let in_progress = requests
            .values()
            .filter(|s| s.status.id == OperationState::InProgress)
            .count();
        if in_progress >= IN_PROGRESS_MAX {
            return Err(SavepointRefusal::Busy(format!(
                "{in_progress} manual checkpoints are in progress; trigger more once they \
                 completed"
            )));
        }
        if requests.len() >= KEPT
            && let Some(old) = requests
                .iter()
                .find(|(_, s)| s.status.id == OperationState::Completed)
                .map(|(id, _)| id.clone())
        {
            requests.remove(&old);
        }
        requests.insert(trigger.clone(), CheckpointTriggerStatus::in_progress());
        drop(requests);
        tracing::info!(job = %self.run.job, trigger_id = %trigger, ?kind, "manual checkpoint triggered");
        let job = self.clone();
        let id = trigger.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("checkpoint {trigger}"))
            .spawn(move || {
                let result = client.trigger_checkpoint(engine_type(kind));
                drop(client);
                job.checkpoint_done(&id, result);
            });
        if let Err(e) = spawned {
            self.checkpoint_done(
                &trigger,
                Err(FjordError::io("cannot start the checkpoint thread", e)),
            );
        }
        Ok(trigger)
    }

    fn checkpoint_done(
        &self,
        trigger_id: &str,
        result: fjord::Result<fjord::checkpoint::CompletedCheckpoint>,
    ) {
        let status = match result {
            Ok(c) => {
                tracing::info!(job = %self.run.job, trigger_id, checkpoint = c.id, path = %c.path, "manual checkpoint completed");
                CheckpointTriggerStatus::completed(c.id, c.path)
            }
            Err(e) => {
                tracing::warn!(job = %self.run.job, trigger_id, error = %e, "manual checkpoint failed");
                CheckpointTriggerStatus::failed(e.to_string())
            }
        };
        lock(&self.manual_checkpoints).insert(trigger_id.into(), status);
    }

    /// The status of the manual checkpoint started under `trigger_id`, if any.
    pub fn checkpoint_trigger_status(&self, trigger_id: &str) -> Option<CheckpointTriggerStatus> {
        lock(&self.manual_checkpoints).get(trigger_id).cloned()
    }
}
