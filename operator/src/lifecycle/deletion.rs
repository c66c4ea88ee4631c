//! Deleting a StreamJob: the savepoint on delete (bounded wait), disposing of its files when
//! asked, then removing the finalizer. A child of [`super`], so it works on the decision in
//! progress.

use super::*;

impl Machine<'_, '_> {
    pub(super) fn deleting(&mut self) {
        self.set_state(LifecycleState::Deleting);
        self.fast();
        let Some(deletion) = self.status.deletion.clone() else {
            let want_savepoint = self.spec().savepoint_on_delete()
                && self.input.observed.cluster_present
                && !self.job().is_some_and(|j| j.state.is_terminal());
            let trigger_id = want_savepoint.then(|| self.trigger_id("delete"));
            self.status.deletion = Some(DeletionStatus {
                started_at: self.now_time(),
                savepoint_trigger_id: trigger_id.clone(),
            });
            match (trigger_id, self.job_id(), self.spec().savepoint_directory()) {
                (Some(trigger_id), Some(job_id), Some(directory)) if self.job_running() => {
                    self.actions.push(Action::StopWithSavepoint {
                        job_id,
                        trigger_id,
                        directory,
                    });
                }
                (Some(_), ..) => {
                    // Not running right now: wait (bounded) for it to come back.
                }
                (None, ..) => self.actions.push(Action::RemoveFinalizer),
            }
            return;
        };
        let Some(trigger_id) = deletion.savepoint_trigger_id.clone() else {
            self.actions.push(Action::RemoveFinalizer);
            return;
        };
        let timeout = self.spec().on_delete_timeout();
        match self.input.observed.savepoint.clone() {
            Some(SavepointStatus::Completed { path }) => {
                self.add_savepoint(path, SavepointTrigger::Delete, &trigger_id);
                self.actions.push(Action::RemoveFinalizer);
            }
            Some(SavepointStatus::Failed { message }) => {
                self.event(
                    true,
                    "SavepointFailed",
                    format!("savepoint on delete failed: {message}; deleting without it"),
                );
                self.actions.push(Action::RemoveFinalizer);
            }
            other => {
                if self.elapsed_since(&deletion.started_at) > timeout {
                    self.event(
                        true,
                        "SavepointOnDeleteSkipped",
                        format!(
                            "no savepoint within spec.savepoints.onDeleteTimeout ({}s): {}; deleting without it",
                            timeout.as_secs(),
                            match &self.input.observed.job_manager {
                                JobManagerView::Unreachable(m) => format!("the JobManager does not answer ({m})"),
                                _ => "the savepoint did not complete".into(),
                            }
                        ),
                    );
                    self.actions.push(Action::RemoveFinalizer);
                    return;
                }
                let resend = other.is_none() || other == Some(SavepointStatus::Unknown);
                if resend
                    && self.job_running()
                    && let (Some(job_id), Some(directory)) =
                        (self.job_id(), self.spec().savepoint_directory())
                {
                    self.actions.push(Action::StopWithSavepoint {
                        job_id,
                        trigger_id,
                        directory,
                    });
                }
            }
        }
    }
}
