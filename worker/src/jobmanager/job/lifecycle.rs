//! The job's lifecycle as an explicit state machine: the events ([`JobEvent`]), the table of
//! transitions ([`transition`]), and the JobManager's calls that move it (applying an event,
//! cancel, suspend) or read it (state, failure, waiting for the end).

use super::{JobManager, Status, lock, now_ms};
use fjord_client::api::JobState;
use std::sync::MutexGuard;
use std::time::Instant;

/// What happens to a job; [`transition`] decides the next state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// Its tasks were deployed.
    Deployed,
    /// Someone asked to cancel it (REST or signal).
    CancelRequested,
    /// Every task ended successfully.
    Finished,
    /// A task failed; the message is the root cause.
    Failed(String),
    /// The tasks stopped after a cancel request.
    Cancelled,
}

/// The job lifecycle in one place: the state after `event` in state `from`, or `None` when the
/// event does not apply (for example a cancel request after the job finished).
pub fn transition(from: JobState, event: &JobEvent) -> Option<JobState> {
    use JobEvent as E;
    use JobState as S;
    match (from, event) {
        (S::Created, E::Deployed) => Some(S::Running),
        (S::Created | S::Running, E::CancelRequested) => Some(S::Cancelling),
        (S::Created | S::Running | S::Cancelling, E::Finished) => Some(S::Finished),
        (S::Created | S::Running | S::Cancelling, E::Failed(_)) => Some(S::Failed),
        (S::Created | S::Running | S::Cancelling, E::Cancelled) => Some(S::Canceled),
        _ => None,
    }
}

impl JobManager {
    pub(super) fn status(&self) -> MutexGuard<'_, Status> {
        lock(&self.status)
    }

    /// Applies `event`; returns the new state, or `None` if the event did not apply.
    pub(super) fn apply(&self, event: JobEvent) -> Option<JobState> {
        let mut s = self.status();
        let next = transition(s.state, &event)?;
        s.state = next;
        if let JobEvent::Failed(message) = &event {
            tracing::error!(job = %self.run.job, error = %message, "job failed");
            s.failure = Some(message.clone());
        }
        if next.is_terminal() {
            s.end_time_ms = Some(now_ms());
            s.ended = Some(Instant::now());
            tracing::info!(job = %self.run.job, state = %next, "job ended");
        }
        drop(s);
        self.state_tx.send_replace(next);
        Some(next)
    }

    /// The current state.
    pub fn state(&self) -> JobState {
        self.status().state
    }

    /// The failure cause when the job failed.
    pub fn failure(&self) -> Option<String> {
        self.status().failure.clone()
    }

    /// Asks the job to stop without a savepoint; returns the state after the request. A job that
    /// already ended keeps its terminal state.
    pub fn cancel(&self) -> JobState {
        match self.apply(JobEvent::CancelRequested) {
            Some(state) => {
                tracing::info!(job = %self.run.job, "cancelling the job");
                let cancel = lock(&self.execution).cancel.clone();
                cancel();
                state
            }
            None => self.state(),
        }
    }

    /// Suspends the job because this process is going away (SIGTERM, a Pod eviction or node
    /// drain): its tasks stop as on [`cancel`](Self::cancel), but its completed checkpoints
    /// are kept whatever `checkpointing.retain-on-cancellation` says and no job result is
    /// recorded, so the next JobManager of this job ID resumes from the latest checkpoint
    /// (Flink's SUSPENDED). The state reported until the process exits is `CANCELED`.
    pub fn suspend(&self) -> JobState {
        match self.apply(JobEvent::CancelRequested) {
            Some(state) => {
                tracing::info!(job = %self.run.job, "suspending the job (its checkpoints stay)");
                let suspend = lock(&self.execution).suspend.clone();
                suspend();
                state
            }
            None => self.state(),
        }
    }

    /// Waits until the job reached a terminal state and returns it.
    pub async fn terminated(&self) -> JobState {
        let mut rx = self.state_tx.subscribe();
        match rx.wait_for(|s| s.is_terminal()).await {
            Ok(state) => *state,
            Err(_) => self.state(),
        }
    }

    /// Seconds the job has been running (until it ended).
    pub fn uptime_seconds(&self) -> f64 {
        let end = self.status().ended.unwrap_or_else(Instant::now);
        end.duration_since(self.started).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_table() {
        use JobEvent as E;
        use JobState as S;
        let failed = E::Failed("boom".into());
        let cases: &[(S, &JobEvent, Option<S>)] = &[
            (S::Created, &E::Deployed, Some(S::Running)),
            (S::Running, &E::Finished, Some(S::Finished)),
            (S::Running, &failed, Some(S::Failed)),
            (S::Running, &E::CancelRequested, Some(S::Cancelling)),
            (S::Cancelling, &E::Cancelled, Some(S::Canceled)),
            // A job that finished while a cancel was under way finished.
            (S::Cancelling, &E::Finished, Some(S::Finished)),
            (S::Finished, &E::CancelRequested, None),
            (S::Failed, &E::Cancelled, None),
            (S::Canceled, &E::Deployed, None),
            (S::Running, &E::Deployed, None),
        ];
        for (from, event, to) in cases {
            assert_eq!(transition(*from, event), *to, "{from} + {event:?}");
        }
    }
}
