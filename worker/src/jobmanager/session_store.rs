//! The submissions a highly available session JobManager keeps in checkpoint storage, so the
//! next leader runs the session's jobs again (Flink's job graph store of a session cluster).
//!
//! Each job the session accepted is one JSON record, `<checkpointing.storage>/_session/jobs/<job
//! id>.json`: the submission as it was made (with the job ID it got) and when. A new leader
//! submits every record again under its job ID, so each job resumes from its latest completed
//! checkpoint (or comes back ended, when its result was recorded). A record goes when its job
//! ends by anything other than this process going away (finished, failed, cancelled, stopped
//! with a savepoint), so a cancelled job, whose checkpoints are gone, is not started afresh.

use crate::WorkerError;
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord_client::api::SubmitJobRequest;
use serde::{Deserialize, Serialize};

/// Where the records live, under the checkpoint storage (not a 32-hex-digit job ID, so it
/// never meets a job's own directory).
const PREFIX: &str = "_session/jobs";

/// One accepted submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    /// Format version (1).
    pub version: u32,
    /// The submission, with `job_id` set to the ID the job got.
    pub request: SubmitJobRequest,
    /// When it was accepted, ms since the epoch (the order jobs are submitted again).
    pub submitted_at_ms: i64,
}

/// The records of one session's checkpoint storage.
#[derive(Debug, Clone)]
pub struct SubmissionStore {
    store: SnapshotStore,
}

fn error(what: &str, e: impl std::fmt::Display) -> WorkerError {
    WorkerError::HighAvailability(format!("session job store: {what}: {e}"))
}

impl SubmissionStore {
    /// The store under the checkpoint base `storage`.
    ///
    /// # Errors
    /// The URL is malformed or names an unsupported scheme.
    pub fn open(storage: &str, options: &StorageOptions) -> Result<Self, WorkerError> {
        Ok(SubmissionStore {
            store: SnapshotStore::open(storage, options)?.child(PREFIX),
        })
    }

    fn path(job_id: &str) -> String {
        format!("{job_id}.json")
    }

    /// Records that job `job_id` was accepted as `request`.
    ///
    /// # Errors
    /// Storage fails.
    pub fn record(&self, job_id: &str, request: &SubmitJobRequest) -> Result<(), WorkerError> {
        let record = SubmissionRecord {
            version: 1,
            request: SubmitJobRequest {
                job_id: Some(job_id.to_string()),
                ..request.clone()
            },
            submitted_at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        let bytes = serde_json::to_vec_pretty(&record).map_err(|e| error("encode", e))?;
        Ok(self.store.put(&Self::path(job_id), bytes)?)
    }

    /// Forgets job `job_id` (a missing record is fine).
    ///
    /// # Errors
    /// Storage fails.
    pub fn remove(&self, job_id: &str) -> Result<(), WorkerError> {
        Ok(self.store.delete(&Self::path(job_id))?)
    }

    /// Every record, oldest submission first.
    ///
    /// # Errors
    /// Storage fails, or a record is not valid JSON (named in the error: delete it, or fix it).
    pub fn list(&self) -> Result<Vec<SubmissionRecord>, WorkerError> {
        let mut records = Vec::new();
        for path in self.store.list("")? {
            if !path.ends_with(".json") {
                continue;
            }
            let bytes = self.store.get(&path)?;
            let record: SubmissionRecord = serde_json::from_slice(&bytes)
                .map_err(|e| error(&format!("{}/{path} is not a record", self.store.url()), e))?;
            records.push(record);
        }
        records.sort_by_key(|r| r.submitted_at_ms);
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SubmissionStore {
        let url = format!("memory://session-store-{}", rand::random::<u64>());
        SubmissionStore::open(&url, &StorageOptions::default()).unwrap()
    }

    fn request(job: &str) -> SubmitJobRequest {
        SubmitJobRequest {
            job: job.into(),
            args: vec!["--keys".into(), "3".into()],
            parallelism: Some(2),
            ..SubmitJobRequest::default()
        }
    }

    #[test]
    fn records_come_back_oldest_first_with_their_job_id_and_go_when_removed() {
        let s = store();
        assert!(s.list().unwrap().is_empty());
        s.record(&"b".repeat(32), &request("second")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.record(&"a".repeat(32), &request("third")).unwrap();
        // Recorded again (a resubmission): replaces, keeps one record per job ID.
        std::thread::sleep(std::time::Duration::from_millis(2));
        s.record(&"b".repeat(32), &request("second")).unwrap();
        let listed = s.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].request.job, "third");
        assert_eq!(listed[1].request.job, "second");
        assert_eq!(
            listed[1].request.job_id.as_deref(),
            Some("b".repeat(32).as_str())
        );
        assert_eq!(listed[1].request.args, request("second").args);
        s.remove(&"a".repeat(32)).unwrap();
        s.remove(&"a".repeat(32)).unwrap();
        let left: Vec<_> = s
            .list()
            .unwrap()
            .into_iter()
            .map(|r| r.request.job)
            .collect();
        assert_eq!(left, ["second"]);
    }

    /// A record as this release writes it: later releases must keep reading it (a standby of a
    /// newer version recovers the jobs an older leader recorded).
    #[test]
    fn a_version_1_record_reads_back() {
        let s = store();
        let golden = br#"{
  "version": 1,
  "request": {
    "job": "counting",
    "args": ["--keys", "20"],
    "parallelism": 2,
    "job_id": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "restore_path": "s3://fjord/savepoints/savepoint-1",
    "allow_non_restored_state": true
  },
  "submitted_at_ms": 1796350000000
}"#;
        s.store
            .put(&format!("{}.json", "a".repeat(32)), golden.to_vec())
            .unwrap();
        let listed = s.list().unwrap();
        assert_eq!(
            listed,
            [SubmissionRecord {
                version: 1,
                request: SubmitJobRequest {
                    job: "counting".into(),
                    args: vec!["--keys".into(), "20".into()],
                    parallelism: Some(2),
                    max_parallelism: None,
                    job_id: Some("a".repeat(32)),
                    restore_path: Some("s3://fjord/savepoints/savepoint-1".into()),
                    allow_non_restored_state: true,
                },
                submitted_at_ms: 1_796_350_000_000,
            }]
        );
    }

    #[test]
    fn a_broken_record_is_named() {
        let s = store();
        s.store.put("x.json", b"{not json".to_vec()).unwrap();
        let e = s.list().unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("not a record"), "{e}");
    }
}
