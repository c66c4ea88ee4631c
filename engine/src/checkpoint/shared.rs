//! Files shared between checkpoints (incremental snapshots): which ones a checkpoint
//! references, and deleting those no retained checkpoint references any more.
//!
//! A backend that uploads files into the job's `shared/` directory lists, in objects under
//! `chk-<n>/_shared_refs/`, every shared path checkpoint `n` uses (one per line, relative to
//! `shared/`). When retention drops a checkpoint, the shared files it listed that no retained
//! checkpoint lists are deleted — reference counting over the retained checkpoints. A
//! checkpoint in progress only reuses files of a completed one that is newer than or equal to
//! the latest it knows, and a file live in a running RocksDB instance at two checkpoints is
//! live (and listed) at every completed checkpoint between them, so a file still needed by a
//! checkpoint in progress is listed by the latest completed one, which is never dropped.
//! Files uploaded by a checkpoint that then failed are not referenced by anything and stay
//! until the job's checkpoints are cleaned up at its end.

use crate::error::Result;
use crate::storage::SnapshotStore;
use crate::storage::layout::{SHARED_DIR as SHARED, SHARED_REFS_DIR};
use std::collections::BTreeSet;

/// Every shared path a checkpoint directory references.
///
/// # Errors
/// Storage errors listing or reading the reference lists.
pub(crate) fn references(dir: &SnapshotStore) -> Result<BTreeSet<String>> {
    let mut refs = BTreeSet::new();
    for object in dir.list(SHARED_REFS_DIR)? {
        let bytes = dir.get(&object)?;
        refs.extend(
            String::from_utf8_lossy(&bytes)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    Ok(refs)
}

/// Deletes the shared files `dropped` references that none of `retained` references; returns
/// how many. Call before deleting `dropped` itself.
///
/// # Errors
/// Storage errors; nothing is deleted when a reference list cannot be read.
pub(crate) fn release(dropped: &SnapshotStore, retained: &[SnapshotStore]) -> Result<usize> {
    let mut unused = references(dropped)?;
    if unused.is_empty() {
        return Ok(0);
    }
    for dir in retained {
        for r in references(dir)? {
            unused.remove(&r);
        }
    }
    let Some(shared) = dropped.parent().map(|p| p.child(SHARED)) else {
        return Ok(0);
    };
    for path in &unused {
        shared.delete(path)?;
    }
    Ok(unused.len())
}

/// [`release`], logging instead of failing: retention goes on when cleanup fails, and the
/// files stay (a leak, never a loss).
pub(crate) fn release_logged(id: u64, dropped: &SnapshotStore, retained: &[SnapshotStore]) {
    match release(dropped, retained) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(
            checkpoint = id,
            files = n,
            "deleted unreferenced shared files"
        ),
        Err(e) => {
            tracing::warn!(checkpoint = id, error = %e, "could not delete shared files of a dropped checkpoint")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageOptions;

    #[test]
    fn only_files_no_retained_checkpoint_lists_are_deleted() {
        let job =
            SnapshotStore::open("memory://shared-release/job", &StorageOptions::default()).unwrap();
        let shared = job.child(SHARED);
        for f in ["a.sst", "b.sst", "c.sst"] {
            shared.put(f, b"x".to_vec()).unwrap();
        }
        let chk1 = job.child("chk-1");
        let chk2 = job.child("chk-2");
        chk1.put(
            &format!("{SHARED_REFS_DIR}/op-0"),
            b"a.sst\nb.sst\n".to_vec(),
        )
        .unwrap();
        chk2.put(&format!("{SHARED_REFS_DIR}/op-0"), b"b.sst\n".to_vec())
            .unwrap();
        chk2.put(&format!("{SHARED_REFS_DIR}/op-1"), b"c.sst\n".to_vec())
            .unwrap();
        assert_eq!(release(&chk1, std::slice::from_ref(&chk2)).unwrap(), 1);
        assert_eq!(shared.list("").unwrap(), vec!["b.sst", "c.sst"]);
        assert_eq!(release(&chk2, &[]).unwrap(), 2);
        assert!(shared.list("").unwrap().is_empty());
    }
}
