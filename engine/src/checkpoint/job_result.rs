//! The job result store (Flink's `JobResultStore`): a record, next to a job's checkpoints,
//! that the job with this ID reached a terminal state.
//!
//! ```text
//! <checkpoint base>/<job id>/_job_result      JSON, written before the checkpoints are deleted
//! ```
//!
//! A finished job deletes its checkpoints; without this record a JobManager restarted with
//! the same job ID would find none and run the whole job again into the same exactly-once
//! output. With it, the JobManager reports the recorded result instead. The record is written
//! before the checkpoints are deleted, so a crash in between leaves the final checkpoint, from
//! which a rerun replays nothing.

use crate::error::{FjordError, Result};
use crate::storage::{SnapshotStore, StorageOptions};
use serde::{Deserialize, Serialize};

/// Name of the record inside the job's directory.
pub const JOB_RESULT_FILE: &str = "_job_result";

/// A terminal state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TerminalState {
    /// Every task finished its input and the final checkpoint committed the output.
    Finished,
    /// The job failed and its restart strategy allowed no more restarts.
    Failed,
}

impl std::fmt::Display for TerminalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TerminalState::Finished => "FINISHED",
            TerminalState::Failed => "FAILED",
        })
    }
}

/// What a job recorded when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobResult {
    /// Format version (1).
    pub version: u32,
    /// The job ID.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// How it ended.
    pub state: TerminalState,
    /// The root cause, for a failed job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// When it ended (ms since the epoch).
    pub end_time_ms: i64,
}

impl JobResult {
    /// A result of job `job_id` ending now.
    pub(crate) fn now(
        job_id: &str,
        job_name: &str,
        state: TerminalState,
        failure: Option<String>,
    ) -> Self {
        JobResult {
            version: 1,
            job_id: job_id.to_string(),
            job_name: job_name.to_string(),
            state,
            failure,
            end_time_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// Writes the record under the checkpoint base `base`.
    ///
    /// # Errors
    /// Storage fails.
    pub(crate) fn write(&self, base: &SnapshotStore) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| FjordError::Serialization {
            context: "job result".into(),
            message: e.to_string(),
        })?;
        base.child(&self.job_id).put(JOB_RESULT_FILE, bytes)
    }
}

/// The recorded result of job `job_id` under the checkpoint base `storage`, or `None` when the
/// job never ended (or never ran).
///
/// # Errors
/// The storage URL is malformed, storage cannot be read, or the record is not valid JSON.
pub fn read_job_result(
    storage: &str,
    options: &StorageOptions,
    job_id: &str,
) -> Result<Option<JobResult>> {
    let dir = SnapshotStore::open(storage, options)?.child(job_id);
    if !dir.exists(JOB_RESULT_FILE)? {
        return Ok(None);
    }
    let bytes = dir.get(JOB_RESULT_FILE)?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| FjordError::Serialization {
            context: format!("{}/{JOB_RESULT_FILE}", dir.url()),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_result_is_read_back_and_none_before() {
        let url = format!("memory://job-result-{}", rand::random::<u64>());
        let options = StorageOptions::default();
        assert_eq!(read_job_result(&url, &options, "j1").unwrap(), None);
        let result = JobResult::now("j1", "counting", TerminalState::Finished, None);
        result
            .write(&SnapshotStore::open(&url, &options).unwrap())
            .unwrap();
        assert_eq!(read_job_result(&url, &options, "j1").unwrap(), Some(result));
        assert_eq!(read_job_result(&url, &options, "j2").unwrap(), None);
    }
}
