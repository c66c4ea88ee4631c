//! What the API reports about checkpoints: the history (completed, failed, in flight), the
//! latest completed checkpoint, the totals and the restarts, from the engine's client while
//! the job runs and from what the waiter kept once it ended.

use super::{JobManager, lock};
use fjord::checkpoint::CompletedCheckpoint;
use fjord_client::api::{
    CheckpointHistory, CheckpointInfo, FailedCheckpointInfo, PendingCheckpointInfo,
    VertexAcknowledgements,
};

impl JobManager {
    /// Completed and failed checkpoints and savepoints (newest first), the failed count and
    /// those in flight.
    pub fn checkpoints(&self) -> CheckpointHistory {
        let (recent, failed, failed_recent, in_flight) = match self.client() {
            Some(client) => {
                let (recent, failed) = client.checkpoint_history();
                (
                    recent,
                    failed,
                    client.failed_checkpoints(),
                    client.in_flight_checkpoints(),
                )
            }
            None => {
                let f = lock(&self.final_checkpoints);
                (
                    f.recent.clone(),
                    f.failed,
                    f.failed_recent.clone(),
                    Vec::new(),
                )
            }
        };
        CheckpointHistory {
            interval_ms: self.checkpoint_interval_ms,
            completed: recent.iter().rev().map(info).collect(),
            failed,
            failed_history: failed_recent
                .iter()
                .rev()
                .map(|c| FailedCheckpointInfo {
                    id: c.id as i64,
                    savepoint: c.savepoint,
                    triggered_at_ms: c.triggered_at_ms,
                    failed_at_ms: c.failed_at_ms,
                    reason: c.reason.clone(),
                })
                .collect(),
            in_progress: in_flight
                .iter()
                .map(|c| PendingCheckpointInfo {
                    id: c.id as i64,
                    savepoint: c.savepoint,
                    triggered_at_ms: c.triggered_at_ms,
                    vertices: c
                        .vertices
                        .iter()
                        .enumerate()
                        .map(|(vertex, (acked, parallelism))| VertexAcknowledgements {
                            vertex,
                            acknowledged: *acked as u32,
                            parallelism: *parallelism as u32,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The latest completed checkpoint (not savepoint).
    pub fn latest_checkpoint(&self) -> Option<CheckpointInfo> {
        let (recent, latest) = match self.client() {
            Some(client) => (client.checkpoint_history().0, client.latest_checkpoint()),
            None => {
                let f = lock(&self.final_checkpoints);
                (f.recent.clone(), f.latest.clone())
            }
        };
        let latest = latest?;
        Some(
            recent
                .iter()
                .rev()
                .find(|c| c.path == latest)
                .map(info)
                .unwrap_or(CheckpointInfo {
                    // Restored from, not taken by, this JobManager: only the path is known.
                    id: latest
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .and_then(fjord::storage::layout::parse_checkpoint_dir)
                        .map_or(0, |id| id as i64),
                    path: latest,
                    completed_at_ms: 0,
                    size_bytes: 0,
                    duration_ms: 0,
                    savepoint: false,
                }),
        )
    }

    /// Restarts after failures so far (execution attempts - 1), also after the job ended.
    pub fn restarts(&self) -> u32 {
        match self.client() {
            Some(client) => client.restarts(),
            None => lock(&self.final_checkpoints).restarts,
        }
    }

    /// Checkpoints (not savepoints) completed, and checkpoints and savepoints failed, in total
    /// over the job's life (the history keeps only the last 100).
    pub fn checkpoint_counts(&self) -> (u64, u64) {
        match self.client() {
            Some(client) => client.checkpoint_counts(),
            None => lock(&self.final_checkpoints).counts,
        }
    }
}

fn info(c: &CompletedCheckpoint) -> CheckpointInfo {
    CheckpointInfo {
        id: c.id as i64,
        path: c.path.clone(),
        completed_at_ms: c.completed_at_ms,
        size_bytes: c.size_bytes,
        duration_ms: c.duration_ms,
        savepoint: c.savepoint,
    }
}
