//! Manual and periodic savepoints of a running StreamJob: starting one when its nonce changed or
//! its interval passed, following it to its end under the trigger ID recorded first, recording
//! it (and a StreamJobSnapshot note), and disposing of savepoints the history no longer keeps.
//! A child of [`super`], so it works on the decision in progress.

use super::*;

impl Machine<'_, '_> {
    /// Follow a manual or periodic savepoint to its end.
    pub(super) fn pending_savepoint(&mut self) {
        let Some(p) = self.status.pending_savepoint.clone() else {
            return;
        };
        match self.input.observed.savepoint.clone() {
            Some(SavepointStatus::Completed { path }) => {
                self.status.pending_savepoint = None;
                if p.nonce.is_some() {
                    self.status.last_savepoint_trigger_nonce = p.nonce;
                }
                self.add_savepoint(path, p.trigger, &p.trigger_id);
            }
            Some(SavepointStatus::Failed { message }) => {
                self.status.pending_savepoint = None;
                if p.nonce.is_some() {
                    self.status.last_savepoint_trigger_nonce = p.nonce;
                }
                self.snapshot_note(&p.trigger_id, p.trigger, None, Some(message.clone()));
                self.events.push(EventNote::savepoint_failed(
                    p.trigger,
                    &p.trigger_id,
                    &message,
                ));
                self.degrade(
                    "SavepointFailed",
                    format!(
                        "the last {} savepoint failed: {message}",
                        trigger_name(p.trigger)
                    ),
                );
            }
            other => {
                if self.elapsed_since(&p.started_at) > self.input.settings.savepoint_timeout {
                    self.status.pending_savepoint = None;
                    if p.nonce.is_some() {
                        self.status.last_savepoint_trigger_nonce = p.nonce;
                    }
                    self.events.push(EventNote::savepoint_timed_out(
                        p.trigger,
                        &p.trigger_id,
                        self.input.settings.savepoint_timeout,
                    ));
                    return;
                }
                // The JobManager never saw the trigger (the operator stopped between recording
                // and sending it, or the JobManager was replaced): send it again, same ID.
                if other == Some(SavepointStatus::Unknown)
                    && let (Some(job_id), Some(directory)) =
                        (self.job_id(), self.spec().savepoint_directory())
                {
                    self.actions.push(Action::TriggerSavepoint {
                        job_id,
                        trigger_id: p.trigger_id.clone(),
                        directory,
                    });
                }
                self.fast();
            }
        }
    }

    /// Start a manual (nonce) or periodic savepoint if one is due.
    pub(super) fn maybe_start_savepoint(&mut self) {
        if !self.job_running() {
            return;
        }
        let spec = self.spec();
        let nonce = spec.job.savepoint_trigger_nonce;
        let manual = nonce.is_some() && nonce != self.status.last_savepoint_trigger_nonce;
        let periodic = !manual
            && savepoints::periodic_due(
                spec.periodic_savepoint_interval(),
                self.status
                    .savepoint_history
                    .iter()
                    .map(|s| s.time.clone())
                    .chain(self.status.lifecycle_state_since.clone())
                    .chain(self.status.last_periodic_savepoint_attempt.clone()),
                self.input.now,
            );
        if !manual && !periodic {
            return;
        }
        let Some(directory) = spec.savepoint_directory() else {
            self.status.last_savepoint_trigger_nonce = nonce;
            self.event(
                true,
                "SavepointFailed",
                "cannot take a savepoint: set spec.savepoints.directory or spec.checkpointing.storage",
            );
            return;
        };
        let trigger = if manual {
            SavepointTrigger::Manual
        } else {
            SavepointTrigger::Periodic
        };
        let trigger_id = self.trigger_id(trigger_name(trigger));
        let job_id = self.job_id().expect("a running job has an ID");
        if trigger == SavepointTrigger::Periodic {
            self.status.last_periodic_savepoint_attempt = Some(self.now_time());
        }
        self.status.pending_savepoint = Some(PendingSavepoint {
            trigger_id: trigger_id.clone(),
            trigger,
            nonce: if manual { nonce } else { None },
            started_at: self.now_time(),
        });
        self.actions.push(Action::TriggerSavepoint {
            job_id,
            trigger_id,
            directory,
        });
        self.fast();
    }

    pub(super) fn dispose_dropped(&mut self) {
        if !self.status.savepoints_pending_disposal.is_empty()
            && self.input.observed.job_manager.reachable()
        {
            self.actions.push(Action::DisposeSavepoints {
                paths: self.status.savepoints_pending_disposal.clone(),
            });
        }
    }

    /// Record a savepoint outcome as a StreamJobSnapshot (after the status is written).
    pub(super) fn snapshot_note(
        &mut self,
        trigger_id: &str,
        trigger: SavepointTrigger,
        path: Option<String>,
        error: Option<String>,
    ) {
        self.actions.push(Action::RecordSnapshot(SnapshotNote {
            trigger_id: trigger_id.to_string(),
            trigger,
            job_id: self.job_id(),
            path,
            error,
            checkpoint: false,
            checkpoint_id: None,
        }));
    }

    pub(super) fn add_savepoint(
        &mut self,
        path: String,
        trigger: SavepointTrigger,
        trigger_id: &str,
    ) {
        self.snapshot_note(trigger_id, trigger, Some(path.clone()), None);
        self.events
            .push(EventNote::savepoint_completed(trigger, &path));
        let time = self.now_time();
        savepoints::record(
            &mut self.status,
            SavepointRecord {
                path,
                time,
                trigger,
            },
            self.input.spec,
            self.input.now,
        );
    }
}
