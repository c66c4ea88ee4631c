//! Incremental checkpoints of the RocksDB backend, and their restore.
//!
//! # Snapshot
//! Synchronously, before the task snapshots, the backend takes a RocksDB checkpoint (hard
//! links of the live SST files plus MANIFEST, OPTIONS and CURRENT, after a memtable flush)
//! into a local directory and decides what goes where. Asynchronously, on the task's upload
//! thread while processing continues ([`Upload`]), it uploads:
//! - each SST file not referenced by the last *completed* checkpoint into
//!   `<job>/shared/<instance>-<file>.sst` (an SST file never changes, and the name is stable for
//!   as long as the file lives, so later checkpoints reference it again without upload);
//! - the small private files into `chk-<n>/_rocksdb/<instance>/`;
//! - a manifest `chk-<n>/_rocksdb/<instance>.manifest` naming every file and where it went;
//! - the list of shared files it uses into `chk-<n>/_shared_refs/<instance>`, which the
//!   engine's retention reads to delete shared files no retained checkpoint uses.
//!
//! Every key group of the subtask is then snapshotted as the same small *reference*
//! (a marker, the manifest's location and the instance's key groups) instead of its entries.
//! Savepoints are always canonical.
//!
//! # Restore
//! A reference whose instance covered exactly the key groups of the restoring backend (same
//! parallelism) downloads the instance and opens it in place of the empty one: no entry is
//! rewritten. Otherwise (rescaling) the old instance is downloaded into a temporary directory
//! and the restoring key groups are copied out of it by range scans.

use crate::backend::{LocalDb, RocksDbKeyedStateBackend, SnapshotStats};
use crate::error::{Result, RocksDbStateError};
use fjord::keygroup::KeyGroupRange;
use fjord::state::CheckpointTarget;
use fjord::storage::SnapshotStore;
use fjord::storage::layout::SHARED_REFS_DIR;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Marks a key group snapshot that references an incremental checkpoint.
const MAGIC: &[u8] = b"FJORD-ROCKSDB-INCREMENTAL/1\0";
/// Directory of the backend's private files inside a checkpoint.
const PRIVATE_DIR: &str = "_rocksdb";

/// What every key group of an incremental snapshot holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Reference {
    /// URL of the checkpoint directory that holds the manifest.
    pub(crate) checkpoint_url: String,
    /// The manifest's path in that directory.
    pub(crate) manifest: String,
    /// The key groups the instance held.
    pub(crate) key_groups: KeyGroupRange,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Location {
    /// A path in the job's shared directory.
    Shared(String),
    /// A path in the checkpoint's directory.
    Private(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// URL of the job's shared directory.
    shared_url: String,
    /// The key groups the instance held.
    key_groups: KeyGroupRange,
    /// Local file name -> where it was uploaded.
    files: Vec<(String, Location)>,
}

/// Which SST files are safely in shared storage.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// URL of the shared directory the maps below refer to.
    shared_url: Option<String>,
    /// Local SST name -> shared name, of the last completed checkpoint (or the one restored).
    confirmed: HashMap<String, String>,
    /// The same for checkpoints taken but not yet completed.
    pending: BTreeMap<u64, HashMap<String, String>>,
    /// Figures of the last snapshot.
    pub(crate) last: SnapshotStats,
}

impl Tracker {
    /// Checkpoint `id` completed: its files are the ones to reuse.
    pub(crate) fn complete(&mut self, id: u64) {
        if let Some(files) = self.pending.remove(&id) {
            self.confirmed = files;
        }
        self.pending.retain(|k, _| *k > id);
    }

    /// Checkpoint `id` is full (nothing shared): once it completes, retention may delete
    /// the shared files of the checkpoints before it, so the next incremental one reuses
    /// none of them.
    pub(crate) fn full(&mut self, id: u64) {
        self.pending.insert(id, HashMap::new());
    }
}

/// A prepared incremental snapshot.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The encoded [`Reference`], the answer for every key group.
    pub(crate) reference: Vec<u8>,
}

fn io(context: String) -> impl FnOnce(std::io::Error) -> RocksDbStateError {
    move |source| RocksDbStateError::Io { context, source }
}

fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    fjord::encoding::to_vec(value).map_err(|e| RocksDbStateError::Format {
        what: what.to_string(),
        message: e.to_string(),
    })
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    fjord::encoding::from_slice(bytes).map_err(|e| RocksDbStateError::Format {
        what: what.to_string(),
        message: e.to_string(),
    })
}

/// The reference in a key group snapshot, or `None` for a canonical snapshot.
pub(crate) fn parse_reference(bytes: &[u8]) -> Result<Option<Reference>> {
    match bytes.strip_prefix(MAGIC) {
        Some(rest) => decode(rest, "an incremental snapshot reference").map(Some),
        None => Ok(None),
    }
}

/// Takes an incremental snapshot for `target`: the synchronous part. It takes the RocksDB
/// checkpoint (a memtable flush and hard links) and decides every file's destination, the
/// manifest, the reference list and the figures; the returned [`Upload`] writes them.
pub(crate) fn snapshot(
    backend: &mut RocksDbKeyedStateBackend,
    target: &CheckpointTarget,
    shared: &SnapshotStore,
) -> Result<(Prepared, Upload)> {
    let instance = backend.instance().to_string();
    {
        let tracker = &mut backend.incremental;
        if tracker.shared_url.as_deref() != Some(shared.url()) {
            // Another job's shared directory (or the first checkpoint): nothing is reusable.
            tracker.confirmed.clear();
            tracker.shared_url = Some(shared.url().to_string());
        }
    }
    let local_dir = backend
        .root()
        .join(format!("chk-{instance}-{}", target.checkpoint_id));
    if local_dir.exists() {
        std::fs::remove_dir_all(&local_dir).map_err(io(format!(
            "cannot remove the old local checkpoint {}",
            local_dir.display()
        )))?;
    }
    {
        let checkpoint = rocksdb::checkpoint::Checkpoint::new(backend.local().db())
            .map_err(|e| backend.local().err("start checkpoint", e))?;
        checkpoint
            .create_checkpoint(&local_dir)
            .map_err(|e| backend.local().err("create checkpoint", e))?;
    }
    let mut upload = Upload {
        local_dir: LocalCheckpoint(local_dir),
        dir: target.dir.clone(),
        shared: shared.clone(),
        files: Vec::new(),
        objects: Vec::new(),
    };
    let (files, mut stats, sst_names) = plan(backend, &mut upload, &instance)?;
    let manifest = Manifest {
        version: 1,
        shared_url: shared.url().to_string(),
        key_groups: backend.range(),
        files,
    };
    let manifest_path = format!("{PRIVATE_DIR}/{instance}.manifest");
    let manifest_bytes = encode(&manifest, "manifest")?;
    stats.private_bytes += manifest_bytes.len() as u64;
    let mut refs: Vec<&String> = sst_names.values().collect();
    refs.sort();
    let listing: String = refs.iter().map(|r| format!("{r}\n")).collect();
    // The manifest goes after the files it names.
    upload.objects.push((manifest_path.clone(), manifest_bytes));
    upload.objects.push((
        format!("{SHARED_REFS_DIR}/{instance}"),
        listing.into_bytes(),
    ));
    backend
        .incremental
        .pending
        .insert(target.checkpoint_id, sst_names);
    backend.incremental.last = stats;
    let reference = Reference {
        checkpoint_url: target.dir.url().to_string(),
        manifest: manifest_path,
        key_groups: backend.range(),
    };
    let mut bytes = MAGIC.to_vec();
    bytes.extend(encode(&reference, "reference")?);
    Ok((Prepared { reference: bytes }, upload))
}

/// A local RocksDB checkpoint directory, removed when dropped.
#[derive(Debug)]
struct LocalCheckpoint(PathBuf);

impl Drop for LocalCheckpoint {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            // A full copy (hard links) of the database would stay on the local disk unseen.
            tracing::warn!(
                path = %self.0.display(),
                error = %e,
                "could not remove a local RocksDB checkpoint directory; it is left behind"
            );
        }
    }
}

/// Where one file of the local checkpoint goes.
#[derive(Debug)]
enum Destination {
    /// A new SST file: into the shared directory under this name.
    Shared(String),
    /// A private file: into the checkpoint directory at this path.
    Private(String),
}

/// The asynchronous part of an incremental snapshot: copies the new SST files into the
/// shared directory and the private files, manifest and reference list into the checkpoint
/// directory. It reads only the local checkpoint (hard links that compactions do not touch),
/// so the task goes on writing to its instance meanwhile. The local checkpoint is removed
/// when the upload is dropped, run or not.
#[derive(Debug)]
pub(crate) struct Upload {
    local_dir: LocalCheckpoint,
    dir: SnapshotStore,
    shared: SnapshotStore,
    /// Local file name and where it goes.
    files: Vec<(String, Destination)>,
    /// Objects written into the checkpoint directory after the files.
    objects: Vec<(String, Vec<u8>)>,
}

impl Upload {
    /// Uploads everything; an error declines the checkpoint.
    pub(crate) fn run(self) -> Result<()> {
        for (name, destination) in &self.files {
            let path = self.local_dir.0.join(name);
            let bytes =
                std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
            match destination {
                Destination::Shared(to) => self.shared.put(to, bytes),
                Destination::Private(to) => self.dir.put(to, bytes),
            }
            .map_err(RocksDbStateError::Storage)?;
        }
        for (path, bytes) in &self.objects {
            self.dir
                .put(path, bytes.clone())
                .map_err(RocksDbStateError::Storage)?;
        }
        Ok(())
    }
}

type Planned = (
    Vec<(String, Location)>,
    SnapshotStats,
    HashMap<String, String>,
);

/// Decides where every file of the local checkpoint goes (new SST files into `shared/`,
/// known ones referenced, private files into the checkpoint) and adds the copies to
/// `upload`; reads only file sizes.
fn plan(
    backend: &RocksDbKeyedStateBackend,
    upload: &mut Upload,
    instance: &str,
) -> Result<Planned> {
    let local_dir = &upload.local_dir.0;
    // An entry that cannot be read fails the listing: skipping it would upload a checkpoint
    // without one of its files.
    let mut names: Vec<String> = std::fs::read_dir(local_dir)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<_>>()
        })
        .map_err(io(format!("cannot list {}", local_dir.display())))?;
    names.sort();
    let mut files = Vec::with_capacity(names.len());
    let mut stats = SnapshotStats::default();
    let mut sst_names = HashMap::new();
    for name in names {
        let path = local_dir.join(&name);
        let size = std::fs::metadata(&path)
            .map_err(io(format!("cannot stat {}", path.display())))?
            .len();
        if name.ends_with(".sst") {
            let shared_name = match backend.incremental.confirmed.get(&name) {
                Some(s) => {
                    stats.reused_shared_files += 1;
                    stats.reused_shared_bytes += size;
                    s.clone()
                }
                None => {
                    let s = format!("{instance}-{name}");
                    stats.uploaded_shared_files += 1;
                    stats.uploaded_shared_bytes += size;
                    upload
                        .files
                        .push((name.clone(), Destination::Shared(s.clone())));
                    s
                }
            };
            sst_names.insert(name.clone(), shared_name.clone());
            files.push((name, Location::Shared(shared_name)));
        } else {
            let private = format!("{PRIVATE_DIR}/{instance}/{name}");
            stats.private_bytes += size;
            upload
                .files
                .push((name.clone(), Destination::Private(private.clone())));
            files.push((name, Location::Private(private)));
        }
    }
    Ok((files, stats, sst_names))
}

/// Instances downloaded while restoring, by manifest.
#[derive(Default)]
pub(crate) struct RestoreSource {
    /// Manifests whose instance became the backend's own (same key groups).
    adopted: Vec<String>,
    /// The last downloaded instance (rescaling), by manifest URL.
    copy: Option<(String, LocalDb)>,
}

fn manifest_key(reference: &Reference) -> String {
    format!("{}/{}", reference.checkpoint_url, reference.manifest)
}

impl RestoreSource {
    /// Restores `key_group` from the incremental snapshot `reference` points to.
    pub(crate) fn restore_group(
        &mut self,
        backend: &mut RocksDbKeyedStateBackend,
        key_group: usize,
        reference: &Reference,
    ) -> Result<()> {
        let key = manifest_key(reference);
        if self.adopted.contains(&key) {
            return Ok(());
        }
        if self.copy.as_ref().map(|(k, _)| k) != Some(&key) {
            self.copy = None;
            let (local, manifest) = download(backend, reference)?;
            if reference.key_groups == backend.range()
                && self.adopted.is_empty()
                && backend.db_is_empty()?
            {
                // Same key groups: the downloaded instance becomes this backend's, and its
                // shared files are reusable by the next checkpoint into the same directory.
                backend.adopt(local);
                let tracker = &mut backend.incremental;
                tracker.shared_url = Some(manifest.shared_url.clone());
                tracker.confirmed = manifest
                    .files
                    .iter()
                    .filter_map(|(name, loc)| match loc {
                        Location::Shared(s) => Some((name.clone(), s.clone())),
                        Location::Private(_) => None,
                    })
                    .collect();
                self.adopted.push(key);
                return Ok(());
            }
            self.copy = Some((key, local));
        }
        let (_, local) = self.copy.as_ref().expect("downloaded above");
        backend.copy_group_from(local, key_group)
    }
}

fn open_store(url: &str, backend: &RocksDbKeyedStateBackend) -> Result<SnapshotStore> {
    SnapshotStore::open(url, &backend.storage_options).map_err(RocksDbStateError::Storage)
}

/// Downloads the instance a reference points to into a new local directory and opens it.
fn download(
    backend: &RocksDbKeyedStateBackend,
    reference: &Reference,
) -> Result<(LocalDb, Manifest)> {
    let checkpoint = open_store(&reference.checkpoint_url, backend)?;
    let manifest: Manifest = decode(
        &checkpoint
            .get(&reference.manifest)
            .map_err(RocksDbStateError::Storage)?,
        &format!("{}/{}", reference.checkpoint_url, reference.manifest),
    )?;
    let shared = open_store(&manifest.shared_url, backend)?;
    let dir = backend
        .root()
        .join(format!("restore-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
    for (name, location) in &manifest.files {
        let bytes = match location {
            Location::Shared(p) => shared.get(p),
            Location::Private(p) => checkpoint.get(p),
        }
        .map_err(RocksDbStateError::Storage)?;
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(format!("cannot write {}", path.display())))?;
    }
    Ok((LocalDb::open(&dir, &backend.options.memory)?, manifest))
}
