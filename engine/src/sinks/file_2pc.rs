//! An exactly-once file sink on the two-phase-commit framework (Flink's `FileSink` with a row
//! format), for `file://` and `s3://` locations.
//!
//! Records are written as text lines (their [`Printable`] form) into part files named
//! `<prefix>-<subtask>-<writer>-<counter><suffix>`, where `<writer>` is random for every
//! writer (every execution attempt of every subtask, like the UUID in Flink's part names), so a
//! restarted or rescaled job never reuses a name. A part goes through three states:
//! - *in progress*: lines buffered in memory, up to the part size;
//! - *pending*: written to `.pending/<name>` when the part is full or at a checkpoint
//!   barrier; durable, but not part of the output;
//! - *committed*: moved to `<name>` when the checkpoint that pre-committed it completes.
//!
//! Readers of the output ignore `.pending/`. After a failure, pending parts of the restored
//! checkpoint are committed and parts written after it are deleted and rewritten from the
//! replayed input, so every record appears in exactly one committed line.

use super::two_phase::{TransactionalSink, TransactionalWriter};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::printable::Printable;
use crate::storage::{SnapshotStore, StorageOptions};
use crate::types::Timestamp;
use std::marker::PhantomData;

const PENDING: &str = ".pending";

/// Writes text lines to part files in a directory, exactly once.
#[derive(Debug, Clone)]
pub struct ExactlyOnceFileSink {
    url: String,
    options: StorageOptions,
    part_size: usize,
    prefix: String,
    suffix: String,
}

impl ExactlyOnceFileSink {
    /// A sink writing into the directory at `url` (`file:///...` or `s3://bucket/prefix`).
    pub fn new(url: impl Into<String>) -> Self {
        ExactlyOnceFileSink {
            url: url.into(),
            options: StorageOptions::default(),
            part_size: 16 << 20,
            prefix: "part".into(),
            suffix: String::new(),
        }
    }

    /// S3 settings (`s3.endpoint`, `s3.access-key`, ...).
    pub fn with_options(mut self, options: StorageOptions) -> Self {
        self.options = options;
        self
    }

    /// Rolls to a new part file once this many bytes are buffered (default 16 MiB); parts
    /// also roll at every checkpoint.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Sets the part file name prefix (default `part`) and suffix (default none).
    pub fn with_part_names(mut self, prefix: &str, suffix: &str) -> Self {
        self.prefix = prefix.to_string();
        self.suffix = suffix.to_string();
        self
    }

    /// The committed lines under `url`, file by file in name order (for tests and tools).
    ///
    /// # Errors
    /// Storage errors.
    pub fn read_committed(
        url: &str,
        options: &StorageOptions,
    ) -> crate::error::Result<Vec<String>> {
        let store = SnapshotStore::open(url, options)?;
        let mut lines = Vec::new();
        for name in store.list("")? {
            if name.starts_with(PENDING) || name.starts_with('_') {
                continue;
            }
            let bytes = store.get(&name)?;
            lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
        }
        Ok(lines)
    }
}

impl<T: Printable + Send + 'static> TransactionalSink<T> for ExactlyOnceFileSink {
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError> {
        let store = SnapshotStore::open(&self.url, &self.options)?;
        Ok(Box::new(PartWriter {
            store,
            subtask: ctx.subtask_index,
            writer: format!("{}-{:08x}", ctx.subtask_index, rand::random::<u32>()),
            part_size: self.part_size,
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            counter: 0,
            buffer: String::new(),
            staged: Vec::new(),
            _t: PhantomData,
        }))
    }
}

/// What a part writer keeps in a checkpoint: its name and how many parts it had started.
#[derive(serde::Serialize, serde::Deserialize)]
struct WriterState {
    writer: String,
    counter: u64,
}

struct PartWriter<T> {
    store: SnapshotStore,
    subtask: usize,
    /// `<subtask>-<random>`: this writer's part of every part name.
    writer: String,
    part_size: usize,
    prefix: String,
    suffix: String,
    /// Number of the next part file of this subtask.
    counter: u64,
    /// The in-progress part.
    buffer: String,
    /// Pending parts of the open transaction.
    staged: Vec<String>,
    _t: PhantomData<fn(T)>,
}

impl<T> PartWriter<T> {
    fn part_name(&self, counter: u64) -> String {
        format!("{}-{}-{}{}", self.prefix, self.writer, counter, self.suffix)
    }

    fn stage(&mut self) -> Result<(), BoxError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let name = self.part_name(self.counter);
        self.counter += 1;
        self.store.put(
            &format!("{PENDING}/{name}"),
            std::mem::take(&mut self.buffer).into_bytes(),
        )?;
        self.staged.push(name);
        Ok(())
    }

    /// The counter of a part name of this subtask, if it is one.
    fn counter_of(&self, name: &str, writer: &str) -> Option<u64> {
        let rest = name.strip_prefix(&format!("{}-{writer}-", self.prefix))?;
        rest.strip_suffix(self.suffix.as_str())?.parse().ok()
    }
}

impl<T: Printable + Send> TransactionalWriter<T> for PartWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        value.print_to(&mut self.buffer);
        self.buffer.push('\n');
        if self.buffer.len() >= self.part_size {
            self.stage()?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, BoxError> {
        self.stage()?;
        Ok(crate::encoding::to_vec(&std::mem::take(&mut self.staged))?)
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), BoxError> {
        for c in committables {
            let names: Vec<String> = crate::encoding::from_slice(c)?;
            for name in names {
                let pending = format!("{PENDING}/{name}");
                if self.store.exists(&pending)? {
                    self.store.rename(&pending, &name)?;
                } else if !self.store.exists(&name)? {
                    return Err(format!(
                        "part {name} is neither pending nor committed in {}; its records are lost — was the output directory changed by hand?",
                        self.store.url()
                    )
                    .into());
                }
            }
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, BoxError> {
        Ok(crate::encoding::to_vec(&WriterState {
            writer: self.writer.clone(),
            counter: self.counter,
        })?)
    }

    /// Deletes what the restored writer wrote after its checkpoint. This writer goes on under
    /// its own fresh name, so it never collides with what any earlier writer wrote.
    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let restored: WriterState = match <[u8; 8]>::try_from(state) {
            // Written before writers had names: the subtask's own counter.
            Ok(counter) => WriterState {
                writer: self.subtask.to_string(),
                counter: u64::from_le_bytes(counter),
            },
            Err(_) => crate::encoding::from_slice(state)?,
        };
        // Parts that writer pre-committed after the restored checkpoint belong to no
        // checkpoint: delete them; the replayed input writes them again.
        for path in self.store.list(PENDING)? {
            let name = path
                .trim_start_matches(PENDING)
                .trim_start_matches('/')
                .to_string();
            if self
                .counter_of(&name, &restored.writer)
                .is_some_and(|n| n >= restored.counter)
            {
                self.store.delete(&path)?;
            }
        }
        Ok(())
    }

    /// Deletes every pending part of this subtask index (what earlier writers of it
    /// pre-committed after the restored checkpoint, or before a first checkpoint).
    fn discard_uncommitted(&mut self) -> Result<(), BoxError> {
        let mine = format!("{}-{}-", self.prefix, self.subtask);
        for path in self.store.list(PENDING)? {
            let name = path.trim_start_matches(PENDING).trim_start_matches('/');
            if name.starts_with(&mine) {
                self.store.delete(&path)?;
            }
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), BoxError> {
        self.buffer.clear();
        for name in std::mem::take(&mut self.staged) {
            self.store.delete(&format!("{PENDING}/{name}"))?;
        }
        Ok(())
    }
}
