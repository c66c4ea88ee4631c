//! The file lease: leader election through a directory every JobManager of a job shares (one
//! machine, or a shared mount), for runs outside Kubernetes.
//!
//! Every leadership term is one file, `leader-<epoch>` (20 digits), holding a JSON record of
//! its holder, its RPC address, a renewal counter and whether it was released. The term with
//! the highest epoch is the current one.
//!
//! - **Taking a term** is creating the next file with `link(2)` from a private temporary file:
//!   the link fails if the name exists, so of two contenders for epoch `n + 1` exactly one
//!   wins, and nobody ever reads a half-written record.
//! - **Renewing** rewrites the holder's own file (a temporary file renamed over it) with the
//!   counter incremented, after checking that no higher term exists (then leadership is lost).
//! - **Expiry** is observed, not computed from timestamps: a contender remembers when it first
//!   saw the current record (epoch and counter) and takes the next term only after seeing it
//!   unchanged for the lease duration on its own monotonic clock, so clocks of different
//!   machines need not agree (only run at the same rate). A released record is taken at once.
//!
//! Assumptions: the directory is shared with close-to-open consistency and atomic `link` and
//! `rename` (a local file system, NFSv4); a change one process makes is visible to the others
//! well within the lease duration minus the renew deadline.

use super::LeaseStore;
use crate::WorkerError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name prefix of a leadership term.
pub const PREFIX: &str = "leader-";

/// One leadership term's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderRecord {
    /// The holder's identity (unique per process).
    pub holder: String,
    /// The term.
    pub epoch: u64,
    /// The holder's RPC address (where TaskManagers register).
    pub address: String,
    /// Renewals so far; a change tells contenders the holder is alive.
    pub renewals: u64,
    /// The holder gave the term up: a contender may take the next one at once.
    pub released: bool,
}

/// A lease in a shared directory.
#[derive(Debug)]
pub struct FileLease {
    dir: PathBuf,
    holder: String,
    address: String,
    lease_duration: Duration,
    /// The term held, with its record.
    held: Option<LeaderRecord>,
    /// The current record as this contender last saw it (epoch, renewals) and since when.
    observed: Option<((u64, u64), Instant)>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> String {
    format!("cannot {what} {}: {e}", path.display())
}

impl FileLease {
    /// A contender named `holder` (at `address`) for the lease in `dir`, created if missing.
    ///
    /// # Errors
    /// [`WorkerError::HighAvailability`] when the directory cannot be created.
    pub fn new(
        dir: &Path,
        holder: &str,
        address: &str,
        lease_duration: Duration,
    ) -> Result<Self, WorkerError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            WorkerError::HighAvailability(io("create the leader-election directory", dir, e))
        })?;
        Ok(FileLease {
            dir: dir.to_path_buf(),
            holder: holder.to_string(),
            address: address.to_string(),
            lease_duration,
            held: None,
            observed: None,
        })
    }

    fn path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{epoch:020}"))
    }

    /// The epochs of the terms in the directory, ascending.
    fn epochs(&self) -> Result<Vec<u64>, String> {
        // An entry that cannot be read fails the listing: skipping it could miss the newest
        // term, and a second leader would start one beside it.
        let entries = std::fs::read_dir(&self.dir)
            .and_then(|entries| entries.collect::<std::io::Result<Vec<_>>>())
            .map_err(|e| io("list", &self.dir, e))?;
        let mut epochs: Vec<u64> = entries
            .into_iter()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix(PREFIX))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    /// The record of term `epoch`.
    fn read(&self, epoch: u64) -> Result<LeaderRecord, String> {
        let path = self.path(epoch);
        let bytes = std::fs::read(&path).map_err(|e| io("read", &path, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a leader record: {e}", path.display()))
    }

    /// The current term's record, if any.
    pub fn current(&self) -> Result<Option<LeaderRecord>, String> {
        match self.epochs()?.last() {
            Some(&e) => self.read(e).map(Some),
            None => Ok(None),
        }
    }

    /// Writes `record` to a private temporary file and returns its path.
    fn temp(&self, record: &LeaderRecord) -> Result<PathBuf, String> {
        let path = self.dir.join(format!(
            ".tmp-{}-{:016x}",
            self.holder,
            rand::random::<u64>()
        ));
        let bytes = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        std::fs::write(&path, bytes).map_err(|e| io("write", &path, e))?;
        Ok(path)
    }

    /// Rewrites the held term's record (renewal or release), unless a newer term exists.
    fn rewrite(&mut self, released: bool) -> Result<bool, String> {
        let Some(mut record) = self.held.clone() else {
            return Ok(false);
        };
        if self.epochs()?.last().is_some_and(|&e| e > record.epoch) {
            self.held = None;
            return Ok(false);
        }
        record.renewals += 1;
        record.released = released;
        let temp = self.temp(&record)?;
        let target = self.path(record.epoch);
        if let Err(e) = std::fs::rename(&temp, &target) {
            remove_leftover(&temp, "temporary leader record");
            return Err(io("rename over", &target, e));
        }
        self.held = Some(record);
        Ok(true)
    }
}

/// Removes a file that is no longer needed; a failure leaves it in the HA directory, so it
/// is logged (the lease itself does not depend on it).
fn remove_leftover(path: &Path, what: &str) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(
            path = %path.display(),
            error = %e,
            "could not remove {what}; it is left behind"
        );
    }
}

impl LeaseStore for FileLease {
    fn try_acquire(&mut self) -> Result<Option<u64>, String> {
        let next = match self.current()? {
            None => 1,
            Some(r) if r.released => r.epoch + 1,
            Some(r) => {
                let seen = (r.epoch, r.renewals);
                match self.observed {
                    Some((s, since)) if s == seen => {
                        if since.elapsed() < self.lease_duration {
                            return Ok(None);
                        }
                        r.epoch + 1
                    }
                    _ => {
                        self.observed = Some((seen, Instant::now()));
                        return Ok(None);
                    }
                }
            }
        };
        let record = LeaderRecord {
            holder: self.holder.clone(),
            epoch: next,
            address: self.address.clone(),
            renewals: 0,
            released: false,
        };
        let temp = self.temp(&record)?;
        let target = self.path(next);
        let linked = std::fs::hard_link(&temp, &target);
        remove_leftover(&temp, "temporary leader record");
        match linked {
            Ok(()) => {
                // Terms before the previous one are history.
                for e in self.epochs()? {
                    if e + 1 < next {
                        remove_leftover(&self.path(e), "old leader record");
                    }
                }
                self.held = Some(record);
                Ok(Some(next))
            }
            // Another contender took this term first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                self.observed = None;
                Ok(None)
            }
            Err(e) => Err(io("create", &target, e)),
        }
    }

    fn renew(&mut self) -> Result<bool, String> {
        self.rewrite(false)
    }

    fn release(&mut self) -> Result<(), String> {
        self.rewrite(true).map(|_| ())
    }
}
