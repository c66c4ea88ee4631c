//! The checkpoints a job finds in its own directory when it starts (Flink's recovery of the
//! completed checkpoint store after a JobManager failover).
//!
//! A job with a stable id owns `<base>/<job id>/`: a JobManager that restarted (killed, or
//! stopped without cleaning up) left its completed checkpoints there, and the new one resumes
//! from the latest of them. Those checkpoints become the new execution's retained
//! checkpoints, oldest first, so that
//! - a shared file one of them references is deleted only when no retained checkpoint
//!   references it any more: the restored instance references the files of the checkpoint it
//!   came from, and without that checkpoint in the history, dropping the new checkpoints
//!   (retention, or a cancellation) deleted files the old one still needed, leaving a
//!   completed checkpoint that could not be restored;
//! - retention and cancellation remove them like the job's other checkpoints;
//! - new checkpoint ids continue after every `chk-<n>` directory there, so a new checkpoint
//!   never writes into an old directory.
//!
//! Directories without `_metadata` (checkpoints the old JobManager never completed) are
//! deleted, with the shared files only they reference.

use crate::checkpoint::coordinator::SharedHistory;
use crate::checkpoint::shared;
use crate::error::Result;
use crate::storage::SnapshotStore;
use crate::storage::layout::{METADATA_FILE, checkpoint_dir, parse_checkpoint_dir};
use std::collections::BTreeMap;

/// The `chk-<n>` directories of a job: id -> whether it holds `_metadata` (completed).
fn checkpoint_dirs(base: &SnapshotStore, job_id: &str) -> Result<BTreeMap<u64, bool>> {
    let prefix = format!("{}/", job_id.trim_end_matches('/'));
    let mut dirs = BTreeMap::new();
    for path in base.list(job_id)? {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let mut parts = rest.splitn(2, '/');
        let (Some(dir), Some(file)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Some(id) = parse_checkpoint_dir(dir) {
            *dirs.entry(id).or_insert(false) |= file == METADATA_FILE;
        }
    }
    Ok(dirs)
}

/// Adds the completed checkpoints in `<base>/<job_id>/` to `history` (see the module docs),
/// makes later checkpoint ids follow every directory found, and deletes the incomplete ones.
/// Returns the ids of the checkpoints added.
///
/// # Errors
/// Storage errors listing the job's directory; nothing is changed then.
pub(crate) fn recover(
    history: &SharedHistory,
    base: &SnapshotStore,
    job_id: &str,
) -> Result<Vec<u64>> {
    let dirs = checkpoint_dirs(base, job_id)?;
    let dir = |id: u64| base.child(&checkpoint_dir(job_id, id));
    let completed: Vec<u64> = dirs
        .iter()
        .filter(|(_, c)| **c)
        .map(|(id, _)| *id)
        .collect();
    let added = {
        let mut h = history.lock();
        if let Some(max) = dirs.keys().next_back() {
            h.last_id = h.last_id.max(*max);
        }
        let mut retained: BTreeMap<u64, SnapshotStore> = h.retained.drain(..).collect();
        let mut added = Vec::new();
        for id in &completed {
            if !retained.contains_key(id) {
                retained.insert(*id, dir(*id));
                added.push(*id);
            }
        }
        h.retained = retained.into_iter().collect();
        added
    };
    if !added.is_empty() {
        tracing::info!(job = job_id, checkpoints = ?added, "recovered the job's completed checkpoints from storage");
    }
    let retained: Vec<SnapshotStore> = completed.iter().map(|id| dir(*id)).collect();
    for (id, _) in dirs.iter().filter(|(_, c)| !**c) {
        let incomplete = dir(*id);
        shared::release_logged(*id, &incomplete, &retained);
        match incomplete.delete_prefix("") {
            Ok(n) => tracing::debug!(
                checkpoint = id,
                files = n,
                "deleted an incomplete checkpoint of an earlier run"
            ),
            Err(e) => {
                tracing::warn!(checkpoint = id, error = %e, "could not delete an incomplete checkpoint of an earlier run")
            }
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;
    use crate::storage::layout::{SHARED_DIR, SHARED_REFS_DIR};

    fn refs(dir: &SnapshotStore, files: &[&str]) {
        let listing: String = files.iter().map(|f| format!("{f}\n")).collect();
        dir.put(&format!("{SHARED_REFS_DIR}/op"), listing.into_bytes())
            .unwrap();
    }

    #[test]
    fn completed_checkpoints_join_the_history_and_incomplete_ones_go() {
        let base =
            SnapshotStore::open("memory://recovery/base", &StorageOptions::default()).unwrap();
        let job = base.child("job");
        let shared = job.child(SHARED_DIR);
        for f in ["old.sst", "kept.sst", "orphan.sst"] {
            shared.put(f, b"x".to_vec()).unwrap();
        }
        // chk-3 and chk-4 completed; chk-5 was in progress when the old JobManager died.
        for (id, files) in [(3, &["old.sst", "kept.sst"][..]), (4, &["kept.sst"][..])] {
            let chk = job.child(&format!("chk-{id}"));
            refs(&chk, files);
            chk.put(METADATA_FILE, b"{}".to_vec()).unwrap();
        }
        let chk5 = job.child("chk-5");
        refs(&chk5, &["kept.sst", "orphan.sst"]);
        chk5.put("op/0.state", b"s".to_vec()).unwrap();
        // Another job's directory whose name starts the same is not this job's.
        base.child("job-2/chk-9")
            .put(METADATA_FILE, b"{}".to_vec())
            .unwrap();

        let history = SharedHistory::default();
        history.lock().last_id = 4; // restored from chk-4
        assert_eq!(recover(&history, &base, "job").unwrap(), vec![3, 4]);
        {
            let h = history.lock();
            assert_eq!(
                h.last_id, 5,
                "the next checkpoint is chk-6, not the old chk-5"
            );
            let ids: Vec<u64> = h.retained.iter().map(|(id, _)| *id).collect();
            assert_eq!(ids, vec![3, 4]);
            assert_eq!(h.retained[1].1.url(), job.child("chk-4").url());
        }
        assert!(job.child("chk-5").list("").unwrap().is_empty());
        assert_eq!(shared.list("").unwrap(), vec!["kept.sst", "old.sst"]);
        // Recovering again adds nothing twice.
        assert!(recover(&history, &base, "job").unwrap().is_empty());
        assert_eq!(history.lock().retained.len(), 2);
    }

    #[test]
    fn a_job_without_a_directory_recovers_nothing() {
        let base =
            SnapshotStore::open("memory://recovery/empty", &StorageOptions::default()).unwrap();
        let history = SharedHistory::default();
        assert!(recover(&history, &base, "job").unwrap().is_empty());
        let h = history.lock();
        assert_eq!(h.last_id, 0);
        assert!(h.retained.is_empty());
    }
}
