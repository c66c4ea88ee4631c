//! The `_metadata` document of a checkpoint or savepoint (JSON, format version 3: version 1
//! plus checksums (2) and key groups of the keys' serialized bytes (3); version 1 and 2
//! documents still restore, their keyed state re-bucketed, see
//! [`FORMAT_VERSION`](crate::storage::layout::FORMAT_VERSION)).

use crate::error::{FjordError, Result};
use crate::keygroup::KeyGroupRange;
use crate::storage::SnapshotStore;
use crate::storage::layout::{FORMAT_VERSION, METADATA_FILE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Describes a completed checkpoint or savepoint: which files hold which operator's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// Layout and format version.
    pub version: u32,
    /// Name of the job that took it.
    pub job_name: String,
    /// Id of the job execution that took it.
    pub job_id: String,
    /// Checkpoint id.
    pub checkpoint_id: u64,
    /// When it was triggered (ms since the epoch).
    pub timestamp: i64,
    /// True for savepoints.
    pub savepoint: bool,
    /// State per operator id (the operator's uid, or an id derived from its position).
    pub operators: BTreeMap<String, OperatorMetadata>,
    /// Checksum of this document written without it (format version 2 on; see
    /// [`checksum`](crate::storage::checksum::checksum)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The epoch of the highly available JobManager that completed it (its leadership term,
    /// see [`CheckpointFence`](crate::checkpoint::CheckpointFence)); absent without HA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_epoch: Option<u64>,
}

/// The state of one operator in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorMetadata {
    /// The operator's name when the snapshot was taken.
    pub name: String,
    /// True when the id is the user's `uid` (stable across code changes).
    pub has_uid: bool,
    /// Parallelism when the snapshot was taken.
    pub parallelism: usize,
    /// Max parallelism (number of key groups); a restore must use the same.
    pub max_parallelism: usize,
    /// One entry per subtask that had state.
    pub subtasks: Vec<SubtaskStateHandle>,
}

/// One subtask's state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskStateHandle {
    /// Subtask index.
    pub subtask: usize,
    /// Path relative to the snapshot directory.
    pub file: String,
    /// The key groups this file holds.
    pub key_groups: KeyGroupRange,
    /// Size in bytes.
    pub size: u64,
    /// Checksum of the file (format version 2 on), verified on restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl CheckpointMetadata {
    /// Writes the metadata into `dir` (the last write of a snapshot).
    pub(crate) fn write(&self, dir: &SnapshotStore) -> Result<()> {
        let mut sealed = self.clone();
        sealed.checksum = Some(sealed.own_checksum()?);
        let bytes = serde_json::to_vec_pretty(&sealed).map_err(|e| FjordError::Serialization {
            context: "checkpoint metadata".into(),
            message: e.to_string(),
        })?;
        dir.put(METADATA_FILE, bytes)
    }

    /// The checksum of this document serialized without its checksum.
    fn own_checksum(&self) -> Result<String> {
        let mut bare = self.clone();
        bare.checksum = None;
        let bytes = serde_json::to_vec(&bare).map_err(|e| FjordError::Serialization {
            context: "checkpoint metadata".into(),
            message: e.to_string(),
        })?;
        Ok(crate::storage::checksum::checksum(&bytes))
    }

    /// Reads the metadata of the snapshot in `dir`.
    ///
    /// # Errors
    /// A missing `_metadata` (an incomplete or absent snapshot), a newer format version, or
    /// unreadable JSON.
    pub fn read(dir: &SnapshotStore) -> Result<Self> {
        if !dir.exists(METADATA_FILE)? {
            return Err(FjordError::Restore(format!(
                "{} holds no completed checkpoint or savepoint ({METADATA_FILE} is missing)",
                dir.url()
            )));
        }
        let bytes = dir.get(METADATA_FILE)?;
        let meta: CheckpointMetadata =
            serde_json::from_slice(&bytes).map_err(|e| FjordError::Serialization {
                context: format!("{}/{METADATA_FILE}", dir.url()),
                message: e.to_string(),
            })?;
        let corrupt = |what: String| {
            FjordError::Restore(format!(
                "{}/{METADATA_FILE} is corrupt ({what}); restore from another checkpoint or savepoint",
                dir.url()
            ))
        };
        // Checked first, so a flipped bit in the version reads as corruption.
        if let Some(found) = &meta.checksum {
            let expected = meta.own_checksum()?;
            if *found != expected {
                return Err(corrupt(format!(
                    "checksum {found} recorded, {expected} computed"
                )));
            }
        }
        if meta.version > FORMAT_VERSION {
            return Err(FjordError::Restore(format!(
                "{}/{METADATA_FILE} was written in format version {}, this Fjord reads up to {FORMAT_VERSION}; use a newer Fjord",
                dir.url(),
                meta.version
            )));
        }
        // Version 1 had no checksums; every later version must carry one.
        if meta.version != 1 && meta.checksum.is_none() {
            return Err(corrupt("its checksum is missing".into()));
        }
        Ok(meta)
    }

    /// Total bytes of state files.
    pub fn state_size(&self) -> u64 {
        self.operators
            .values()
            .flat_map(|o| &o.subtasks)
            .map(|s| s.size)
            .sum()
    }
}
