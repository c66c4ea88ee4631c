//! The on-storage layout of checkpoints and savepoints (format version 3; see
//! [`FORMAT_VERSION`] for what each version changed).
//!
//! ```text
//! <checkpoint base>/<job id>/chk-<n>/<operator>/<subtask>.state   state of one subtask
//! <checkpoint base>/<job id>/chk-<n>/_metadata                    written LAST
//! <checkpoint base>/<job id>/shared/...                           files shared by several checkpoints
//! <checkpoint base>/<job id>/chk-<n>/_shared_refs/<name>          shared files chk-<n> uses
//! <savepoint dir>/savepoint-<job id prefix>-<random>/...          same shape as one chk-<n>
//! ```
//!
//! A checkpoint counts only once its `_metadata` exists; a crash halfway leaves a directory
//! without metadata, which restore ignores and cleanup removes. Paths inside `_metadata` are
//! relative to the checkpoint's own directory, so a savepoint directory can be copied or moved
//! and restored from its new place.

/// Name of the file that completes a checkpoint or savepoint.
pub const METADATA_FILE: &str = "_metadata";

/// Version of the layout and metadata format written by this Fjord. Version 2 added
/// checksums of `_metadata` and of every state file (version 1 snapshots have none and are
/// still read). Version 3 computes key groups from the key's serialized bytes
/// ([`crate::keygroup`]); versions 1 and 2 used the key's `std::hash::Hash`, and their keyed
/// state is re-bucketed when restored.
pub const FORMAT_VERSION: u32 = 3;

/// The first format version whose key groups are the key groups of the keys' serialized
/// bytes; older snapshots are re-bucketed on restore.
pub const FIRST_VERSION_WITH_BYTE_KEY_GROUPS: u32 = 3;

/// Directory of checkpoint `n` of a job, relative to the checkpoint base.
pub fn checkpoint_dir(job_id: &str, checkpoint_id: u64) -> String {
    format!("{job_id}/chk-{checkpoint_id}")
}

/// Directory, inside a job's directory, of files shared between its checkpoints (incremental
/// snapshots).
pub const SHARED_DIR: &str = "shared";

/// Directory inside a checkpoint whose objects list, one per line, the paths (relative to the
/// job's [`SHARED_DIR`]) of shared files the checkpoint references. Retention deletes a shared
/// file once no retained checkpoint lists it.
pub const SHARED_REFS_DIR: &str = "_shared_refs";

/// The checkpoint id of a `chk-<n>` directory name.
pub fn parse_checkpoint_dir(name: &str) -> Option<u64> {
    name.strip_prefix("chk-")?.parse().ok()
}

/// Directory name of a new savepoint (Flink's `savepoint-<job id prefix>-<random>` shape).
pub fn savepoint_dir_name(job_id: &str, random: u64) -> String {
    let prefix: String = job_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(6)
        .collect();
    format!("savepoint-{prefix}-{:012x}", random & 0xffff_ffff_ffff)
}

/// File of one subtask's state inside a checkpoint or savepoint directory.
pub fn state_file(operator: &str, subtask: usize) -> String {
    format!("{operator}/{subtask}.state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(checkpoint_dir("job", 7), "job/chk-7");
        assert_eq!(parse_checkpoint_dir("chk-7"), Some(7));
        assert_eq!(parse_checkpoint_dir("chk-x"), None);
        assert_eq!(parse_checkpoint_dir("shared"), None);
        assert_eq!(
            savepoint_dir_name("ab-cd-ef-gh", 0xabc),
            "savepoint-abcdef-000000000abc"
        );
        assert_eq!(state_file("counter", 2), "counter/2.state");
    }
}
