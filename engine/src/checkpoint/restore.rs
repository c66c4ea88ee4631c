//! Restoring from a completed checkpoint or savepoint, moving keyed state by key group.
//!
//! Snapshots of format versions 1 and 2 bucketed keys by their `std::hash::Hash`; a subtask
//! restoring one is given every key group and re-buckets the entries by the key group of
//! their key bytes ([`OperatorState::rehash_keys`]).

use crate::checkpoint::metadata::CheckpointMetadata;
use crate::checkpoint::participant::{OperatorKey, OperatorState};
use crate::error::{FjordError, Result};
use crate::state::operator::StoreSnapshot;
use crate::storage::SnapshotStore;
use crate::storage::layout::FIRST_VERSION_WITH_BYTE_KEY_GROUPS;
use std::collections::{BTreeMap, BTreeSet};

/// A snapshot loaded for restore: its metadata and every state file.
#[derive(Debug)]
pub(crate) struct RestoredJob {
    pub(crate) metadata: CheckpointMetadata,
    pub(crate) location: String,
    /// (operator id, old subtask) -> state.
    files: BTreeMap<(String, usize), OperatorState>,
}

impl RestoredJob {
    /// Reads the snapshot in `dir`.
    pub(crate) fn load(dir: &SnapshotStore) -> Result<Self> {
        let metadata = CheckpointMetadata::read(dir)?;
        let mut files = BTreeMap::new();
        for (id, op) in &metadata.operators {
            for s in &op.subtasks {
                let bytes = dir.get(&s.file)?;
                if let Some(expected) = &s.checksum {
                    let found = crate::storage::checksum::checksum(&bytes);
                    if found != *expected {
                        return Err(FjordError::Restore(format!(
                            "state file {}/{} is corrupt (checksum {found}, the metadata records \
                             {expected}); restore from another checkpoint or savepoint",
                            dir.url(),
                            s.file
                        )));
                    }
                }
                let state: OperatorState =
                    crate::encoding::from_slice(&bytes).map_err(|e| FjordError::Serialization {
                        context: format!("{}/{}", dir.url(), s.file),
                        message: e.to_string(),
                    })?;
                files.insert((id.clone(), s.subtask), state);
            }
        }
        Ok(RestoredJob {
            metadata,
            location: dir.url().to_string(),
            files,
        })
    }

    /// Checks that every operator with state in the snapshot exists in the new job (unless
    /// `allow_non_restored`), and that no operator changed its max parallelism.
    pub(crate) fn validate(
        &self,
        operators: &[(String, String, usize)],
        allow_non_restored: bool,
    ) -> Result<()> {
        let present: BTreeSet<&str> = operators.iter().map(|(id, _, _)| id.as_str()).collect();
        for (id, op) in &self.metadata.operators {
            if !present.contains(id.as_str()) && !allow_non_restored {
                return Err(FjordError::Restore(format!(
                    "{} has state for operator '{}' (id '{id}') that the job does not have; restore with allow_non_restored_state to drop it, or give the operator that should own it `.uid(\"{id}\")`",
                    self.location, op.name
                )));
            }
        }
        for (id, name, max) in operators {
            if let Some(op) = self.metadata.operators.get(id)
                && op.max_parallelism != *max
            {
                return Err(FjordError::Restore(format!(
                    "operator '{name}' (id '{id}') had max parallelism {} and now has {max}; changing max parallelism is not supported because key groups would move between keys. Set it back to {} with set_max_parallelism",
                    op.max_parallelism, op.max_parallelism
                )));
            }
        }
        Ok(())
    }

    /// The state of a new operator subtask: keyed state of every key group in its range,
    /// from whichever old subtasks held them; operator state kept in an operator state store
    /// (list, union and broadcast state, and the splits of split-based sources) redistributed
    /// to the new parallelism; other operator state (opaque positions of sources that cannot be
    /// rescaled) from the old subtask with the same index, which needs the same parallelism.
    pub(crate) fn state_for(&self, key: &OperatorKey) -> Result<Option<OperatorState>> {
        let Some(op) = self.metadata.operators.get(&key.id) else {
            return Ok(None);
        };
        let range = key.key_groups();
        let mut state = OperatorState {
            rehash_keys: self.metadata.version < FIRST_VERSION_WITH_BYTE_KEY_GROUPS,
            ..OperatorState::default()
        };
        for s in &op.subtasks {
            // Key groups by the old hash say nothing about where a key now belongs: every
            // subtask reads all of them and keeps its own keys.
            let overlaps = s.key_groups.end >= range.start && s.key_groups.start <= range.end;
            if !(overlaps || state.rehash_keys) {
                continue;
            }
            if let Some(file) = self.files.get(&(key.id.clone(), s.subtask)) {
                state.keyed.extend(
                    file.keyed
                        .iter()
                        .filter(|(kg, _)| state.rehash_keys || range.contains(*kg))
                        .cloned(),
                );
            }
        }
        let has_operator_state = op.subtasks.iter().any(|s| {
            self.files
                .get(&(key.id.clone(), s.subtask))
                .is_some_and(|f| f.operator.is_some())
        });
        if has_operator_state {
            let old: Vec<&[u8]> = op
                .subtasks
                .iter()
                .filter_map(|s| self.files.get(&(key.id.clone(), s.subtask)))
                .filter_map(|f| f.operator.as_deref())
                .collect();
            let stores: Option<Vec<StoreSnapshot>> = old
                .iter()
                .map(|b| StoreSnapshot::decode(b).transpose())
                .collect::<Result<Vec<Option<_>>>>()?
                .into_iter()
                .collect();
            match stores {
                // List, union and broadcast state: redistributed to any parallelism.
                Some(stores) if !stores.is_empty() => {
                    let mine = StoreSnapshot::redistribute(&stores, key.subtask, key.parallelism);
                    state.operator = Some(mine.encode()?);
                }
                _ => {
                    if op.parallelism != key.parallelism {
                        return Err(FjordError::Restore(format!(
                            "operator '{}' (id '{}') keeps a read position that cannot be rescaled: it ran at parallelism {} and the job now runs it at {}. Restore it with `.set_parallelism({})` on that operator, or give it a new uid and restore with allow_non_restored_state to start it from the beginning of its input",
                            key.name, key.id, op.parallelism, key.parallelism, op.parallelism
                        )));
                    }
                    state.operator = self
                        .files
                        .get(&(key.id.clone(), key.subtask))
                        .and_then(|f| f.operator.clone());
                }
            }
        }
        Ok(Some(state))
    }
}
