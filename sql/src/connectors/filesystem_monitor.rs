//! Where the `filesystem` source finds its files: a local path or a URL (`file:///dir`,
//! `s3://bucket/prefix`, `hdfs://namenode:8020/dir`, read through the engine's object stores,
//! as the exactly-once file sink writes them), listed once (bounded) or again every
//! `source.monitor-interval` (continuous, Flink's `source.monitor-interval`).
//!
//! Continuous reading: each subtask takes the new files whose path hashes to it, so every
//! file has exactly one reader whatever the listing order. The files a subtask has taken are
//! kept in union state: after a restore (at any parallelism) every subtask knows every file
//! taken before, so none is read twice; the files not finished are splits, dealt out again
//! with the rows already read. A file is taken when a listing first shows it: write files
//! elsewhere (or under a name starting with `.` or `_`, which is skipped) and move them in
//! when complete, as with Flink.

use fjord::storage::{SnapshotStore, StorageOptions};
use fjord::{BoxError, SourceError};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `source.monitor-interval`, if set.
///
/// # Errors
/// A value that is not a positive duration.
pub(crate) fn interval(o: &BTreeMap<String, String>) -> Result<Option<Duration>, String> {
    let Some(v) = o.get("source.monitor-interval") else {
        return Ok(None);
    };
    crate::planner::parse_duration(v)
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| {
            format!("option 'source.monitor-interval' = '{v}' is not a positive duration such as '1s' or '10 s'")
        })
}

/// A `file:///abs` URL's local path, a local path unchanged, `None` for other URLs.
pub(crate) fn local(path: &Path) -> Option<PathBuf> {
    match path.to_str() {
        Some(p) if p.starts_with("file://") => Some(PathBuf::from(&p["file://".len()..])),
        _ if super::filesystem::is_url(path) => None,
        _ => Some(path.to_path_buf()),
    }
}

fn hidden(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('_')
}

fn source_error(path: &Path, e: impl std::fmt::Display) -> BoxError {
    SourceError::boxed(path.display().to_string(), e.to_string())
}

/// The files to read: the path itself, or the visible files of the directory (or of the
/// URL's prefix, not its sub-directories), sorted.
///
/// # Errors
/// The directory or store cannot be listed.
pub(crate) fn list(path: &Path) -> Result<Vec<PathBuf>, BoxError> {
    let Some(dir) = local(path) else {
        let url = path.display().to_string();
        let store = SnapshotStore::open(&url, &StorageOptions::default())
            .map_err(|e| source_error(path, e))?;
        let names = store.list("").map_err(|e| source_error(path, e))?;
        return Ok(names
            .into_iter()
            .filter(|n| !n.contains('/') && !hidden(n))
            .map(|n| PathBuf::from(format!("{}/{n}", url.trim_end_matches('/'))))
            .collect());
    };
    if dir.is_file() {
        return Ok(vec![dir]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| source_error(path, e))? {
        let p = entry.map_err(|e| source_error(path, e))?.path();
        let visible = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| !hidden(n));
        if p.is_file() && visible {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// The whole content of a file (local or in a store).
///
/// # Errors
/// The file cannot be read.
pub(crate) fn read_all(file: &Path) -> Result<Vec<u8>, BoxError> {
    match local(file) {
        Some(p) => std::fs::read(&p).map_err(|e| source_error(file, e)),
        None => {
            let url = file.display().to_string();
            let (dir, name) = url.rsplit_once('/').unwrap_or((&url, ""));
            SnapshotStore::open(dir, &StorageOptions::default())
                .and_then(|s| s.get(name))
                .map_err(|e| source_error(file, e))
        }
    }
}

/// A buffered reader of a file: streamed from a local file, or the object read whole.
///
/// # Errors
/// The file cannot be opened.
pub(crate) fn open(file: &Path) -> Result<Box<dyn BufRead + Send>, BoxError> {
    match local(file) {
        Some(p) => Ok(Box::new(BufReader::new(
            std::fs::File::open(&p).map_err(|e| source_error(file, e))?,
        ))),
        None => Ok(Box::new(std::io::Cursor::new(read_all(file)?))),
    }
}

/// The continuous listing of one source subtask.
pub(crate) struct Monitor {
    interval: Duration,
    next_scan: Instant,
    /// Every file taken by any subtask (restored from the union state) or by this one.
    known: BTreeSet<PathBuf>,
    subtask: usize,
    parallelism: usize,
}

impl Monitor {
    /// A monitor listing every `interval`, the first time right away.
    pub(crate) fn new(interval: Duration, subtask: usize, parallelism: usize) -> Self {
        Monitor {
            interval,
            next_scan: Instant::now(),
            known: BTreeSet::new(),
            subtask,
            parallelism: parallelism.max(1),
        }
    }

    /// The files of `path` new since the last listing that this subtask reads (it takes
    /// them), or nothing when the next listing is not due; waits a little then, so an idle
    /// reader does not spin.
    ///
    /// # Errors
    /// The listing failed.
    pub(crate) fn poll(&mut self, path: &Path) -> Result<Vec<PathBuf>, BoxError> {
        let now = Instant::now();
        if now < self.next_scan {
            std::thread::sleep((self.next_scan - now).min(Duration::from_millis(20)));
            return Ok(Vec::new());
        }
        self.next_scan = now + self.interval;
        let mut new = Vec::new();
        for file in list(path)? {
            let owner =
                crate::plan::stable_hash(&file.display().to_string()) % self.parallelism as u64;
            if owner == self.subtask as u64 && !self.known.contains(&file) {
                self.known.insert(file.clone());
                new.push(file);
            }
        }
        Ok(new)
    }

    /// The files taken, for the union state.
    ///
    /// # Errors
    /// Never in practice (paths serialize as JSON strings).
    pub(crate) fn snapshot(&self) -> Result<Vec<Vec<u8>>, BoxError> {
        self.known
            .iter()
            .map(|f| serde_json::to_vec(f).map_err(Into::into))
            .collect()
    }

    /// Adds the files every old subtask had taken.
    ///
    /// # Errors
    /// An item that is not a path.
    pub(crate) fn restore(&mut self, items: Vec<Vec<u8>>) -> Result<(), BoxError> {
        for item in items {
            self.known.insert(serde_json::from_slice(&item)?);
        }
        Ok(())
    }
}
