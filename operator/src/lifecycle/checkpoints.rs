//! Manual checkpoints of a running StreamJob (`spec.job.checkpointTriggerNonce`, the Flink
//! operator's `checkpointTriggerNonce`): a changed nonce asks the JobManager for one
//! checkpoint under a trigger ID recorded in `status.manualCheckpoint` first; the checkpoint is
//! followed to COMPLETED (id and path) or FAILED and recorded as a StreamJobSnapshot with
//! `spec.checkpoint`. A child of [`super`], so it works on the decision in progress.

use fjord_crds::{ManualCheckpoint, SavepointTrigger, SnapshotState};

use super::{Action, EventNote, Machine, SnapshotNote};
use crate::jobmanager::CheckpointStatus;

impl Machine<'_, '_> {
    /// The trigger ID of the manual checkpoint in flight, if one is.
    pub(super) fn checkpoint_in_flight(&self) -> Option<&str> {
        watched_checkpoint(&self.status)
    }

    /// Follow the manual checkpoint in flight, or start one when the nonce changed and the
    /// job runs. Runs alongside savepoints: the JobManager queues one behind the other.
    pub(super) fn manual_checkpoint(&mut self) {
        if self.checkpoint_in_flight().is_some() {
            self.follow_checkpoint();
            return;
        }
        let nonce = self.spec().job.checkpoint_trigger_nonce;
        if nonce.is_none() || nonce == self.status.last_checkpoint_trigger_nonce {
            return;
        }
        if !self.job_running() {
            return; // Taken once the job runs.
        }
        let Some(job_id) = self.job_id() else {
            return;
        };
        let trigger_id = self.trigger_id("checkpoint");
        self.status.last_checkpoint_trigger_nonce = nonce;
        self.status.manual_checkpoint = Some(ManualCheckpoint::in_progress(
            nonce,
            trigger_id.clone(),
            self.now_time(),
        ));
        self.actions
            .push(Action::TriggerCheckpoint { job_id, trigger_id });
        self.fast();
    }

    fn follow_checkpoint(&mut self) {
        let Some(mut c) = self.status.manual_checkpoint.clone() else {
            return;
        };
        match self.input.observed.checkpoint.clone() {
            Some(CheckpointStatus::Completed { id, path }) => {
                c.complete(Some(id), path.clone(), self.now_time());
                self.events.push(EventNote::checkpoint_completed(id, &path));
                self.record_checkpoint(&c);
            }
            Some(CheckpointStatus::Failed { message }) => {
                self.checkpoint_failed(&mut c, message);
            }
            other => {
                if self.elapsed_since(&c.triggered_at) > self.input.settings.savepoint_timeout {
                    let message = checkpoint_timed_out(self.input.settings.savepoint_timeout);
                    self.checkpoint_failed(&mut c, message);
                } else {
                    // Never received (operator restart, JobManager replaced): send it again
                    // under the same ID, once the job runs.
                    if other == Some(CheckpointStatus::Unknown)
                        && self.job_running()
                        && let Some(job_id) = self.job_id()
                    {
                        self.actions.push(Action::TriggerCheckpoint {
                            job_id,
                            trigger_id: c.trigger_id.clone(),
                        });
                    }
                    self.fast();
                    return;
                }
            }
        }
        self.status.manual_checkpoint = Some(c);
    }

    fn checkpoint_failed(&mut self, c: &mut ManualCheckpoint, message: String) {
        c.fail(message.clone(), self.now_time());
        self.events
            .push(EventNote::checkpoint_failed(&c.trigger_id, &message));
        self.record_checkpoint(c);
    }

    fn record_checkpoint(&mut self, c: &ManualCheckpoint) {
        self.actions.push(Action::RecordSnapshot(SnapshotNote {
            trigger_id: c.trigger_id.clone(),
            trigger: SavepointTrigger::Manual,
            job_id: self.job_id(),
            path: c.path.clone(),
            error: c.error.clone(),
            checkpoint: true,
            checkpoint_id: c.checkpoint_id,
        }));
    }
}

/// The trigger ID of the manual checkpoint the controller should ask about, if one is in
/// flight.
pub fn watched_checkpoint(status: &fjord_crds::StreamJobStatus) -> Option<&str> {
    status
        .manual_checkpoint
        .as_ref()
        .filter(|c| c.state == SnapshotState::InProgress)
        .map(|c| c.trigger_id.as_str())
}

/// Why a manual checkpoint that did not complete within `limit` failed (a StreamJob's and a
/// StreamSessionJob's alike).
pub fn checkpoint_timed_out(limit: std::time::Duration) -> String {
    format!(
        "the manual checkpoint did not complete within {}s; change \
         spec.job.checkpointTriggerNonce to try again",
        limit.as_secs()
    )
}
