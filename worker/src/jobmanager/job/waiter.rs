//! The end of an execution: the waiter thread waits for it, keeps the final checkpoint
//! history and metrics before the engine's client goes, and applies the outcome (unless a
//! rescale replaced the execution).

use super::lifecycle::JobEvent;
use super::rescale::Rescaling;
use super::{FinalCheckpoints, JobManager, lock};
use fjord::FjordError;
use std::sync::Arc;
use std::time::Duration;

impl JobManager {
    /// The waiter thread: waits for each execution to end and applies the outcome, unless a
    /// rescale replaced the execution (then it waits for the new one).
    pub(super) fn wait_for_the_end(&self) {
        loop {
            let outcome = self.wait_for_end();
            // A rescale in progress decides what the end of the execution means.
            let rescaling = loop {
                let mut r = lock(&self.rescaling);
                match r.as_ref() {
                    Some(Rescaling::Pending) => {}
                    _ => break r.take(),
                }
                drop(r);
                std::thread::park_timeout(Duration::from_millis(20));
            };
            let event = match (rescaling, outcome) {
                (Some(Rescaling::Replaced), _) => continue,
                (Some(Rescaling::Cancelled), _) | (_, Err(FjordError::Cancelled)) => {
                    JobEvent::Cancelled
                }
                (Some(Rescaling::StartFailed(message)), _) => JobEvent::Failed(message),
                (_, Ok(())) => JobEvent::Finished,
                (_, Err(e)) => JobEvent::Failed(e.to_string()),
            };
            self.apply(event);
            return;
        }
    }

    /// Waits (polling every 20 ms, the engine offers no notification) until the job ended,
    /// keeps its checkpoint history, and returns its outcome.
    fn wait_for_end(&self) -> fjord::Result<()> {
        while self.client().is_some_and(|c| !c.is_finished()) {
            std::thread::park_timeout(Duration::from_millis(20));
        }
        // Keep the final history before the client goes, so readers always find one of the two.
        if let Some(shared) = self.client() {
            *lock(&self.final_io) = Some(self.io());
            *lock(&self.final_operator_metrics) = Some(self.operator_metrics());
            let (recent, failed) = shared.checkpoint_history();
            *lock(&self.final_checkpoints) = FinalCheckpoints {
                recent,
                failed,
                failed_recent: shared.failed_checkpoints(),
                latest: shared.latest_checkpoint(),
                counts: shared.checkpoint_counts(),
                restarts: shared.restarts(),
                failures: shared.failures(),
            };
        }
        let Some(mut shared) = lock(&self.client).take() else {
            return Err(FjordError::Internal("the job client vanished".into()));
        };
        // Requests in flight (a savepoint that is failing because the job ended) hold clones
        // for a moment; `wait` needs the only one.
        let client = loop {
            match Arc::try_unwrap(shared) {
                Ok(client) => break client,
                Err(again) => {
                    shared = again;
                    std::thread::park_timeout(Duration::from_millis(10));
                }
            }
        };
        client.wait().map(|_| ())
    }
}
