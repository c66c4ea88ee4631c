//! An exactly-once file sink on the two-phase-commit framework (Flink's `FileSink`), for
//! `file://`, `s3://` and `hdfs://` locations, in any [file format](super::bulk).
//!
//! [`ExactlyOnceFileSink`] writes text lines (a record's [`Printable`] form, Flink's row format
//! with `SimpleStringEncoder`); [`ExactlyOnceFileSink::for_format`] writes parts through any
//! [`BulkFormat`] (Parquet, CSV with a header, JSON lines, ...). Both share one writer.
//!
//! Part files are named `<prefix>-<subtask>-<writer>-<counter><suffix>`, where `<writer>` is
//! random for every writer (every execution attempt of every subtask, like the UUID in Flink's
//! part names), so a restarted or rescaled job never reuses a name. A part goes through three
//! states:
//! - *in progress*: records in the format's writer, in memory, until the part rolls (at every
//!   checkpoint barrier, and earlier as the [`RollingPolicy`] says);
//! - *pending*: the finished file written to `.pending/<name>`; durable, but not part of the
//!   output;
//! - *committed*: moved to `<name>` when the checkpoint that pre-committed it completes.
//!
//! Readers of the output ignore `.pending/`. After a failure, pending parts of the restored
//! checkpoint are committed and parts written after it are deleted and rewritten from the
//! replayed input, so every record appears in exactly one committed part.

use super::bulk::{BulkFormat, BulkWriter, LineEncoder, RowFormat};
use super::rolling::RollingPolicy;
use super::two_phase::{TransactionalSink, TransactionalWriter};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::printable::Printable;
use crate::storage::{SnapshotStore, StorageOptions};
use crate::types::Timestamp;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PENDING: &str = ".pending";

/// Where and how parts are written, whatever their format.
#[derive(Debug, Clone)]
struct PartConfig {
    url: String,
    options: StorageOptions,
    rolling: RollingPolicy,
    /// How often an open part's age and inactivity are checked without records (Flink's
    /// bucket check interval).
    check_interval: Duration,
    prefix: String,
    suffix: String,
}

/// Flink's default bucket check interval (`sink.rolling-policy.check-interval`): one minute.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(60);

impl PartConfig {
    fn writer<T: Send + 'static>(
        &self,
        ctx: &RuntimeContext,
        format: Arc<dyn BulkFormat<T>>,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError> {
        let store = SnapshotStore::open(&self.url, &self.options)?;
        Ok(Box::new(PartWriter {
            store,
            subtask: ctx.subtask_index,
            writer: format!("{}-{:08x}", ctx.subtask_index, rand::random::<u32>()),
            rolling: self.rolling,
            check_interval: self.check_interval,
            prefix: self.prefix.clone(),
            suffix: self.suffix.clone(),
            format,
            counter: 0,
            in_progress: None,
            staged: Vec::new(),
        }))
    }
}

/// The builder settings both exactly-once file sinks share, all on their `config`
/// ([`PartConfig`]); `$size` and `$suffix` are the defaults their docs name.
macro_rules! part_config_setters {
    ($size:literal, $suffix:literal) => {
        /// S3 or HDFS settings (`s3.endpoint`, `s3.access-key`, ...).
        pub fn with_options(mut self, options: StorageOptions) -> Self {
            self.config.options = options;
            self
        }

        #[doc = concat!(
            "Replaces the rolling policy; parts roll at every checkpoint whatever it says (the ",
            "default also rolls at ", $size, ")."
        )]
        pub fn with_rolling_policy(mut self, policy: RollingPolicy) -> Self {
            self.config.rolling = policy;
            self
        }

        /// How often an open part's age and inactivity are checked against the rolling policy
        /// when no record arrives (Flink's `withBucketCheckInterval`, SQL's
        /// `sink.rolling-policy.check-interval`; default one minute, at least 1 ms). A part
        /// rolled on time is committed with the next checkpoint.
        pub fn with_bucket_check_interval(mut self, interval: Duration) -> Self {
            self.config.check_interval = interval.max(Duration::from_millis(1));
            self
        }

        #[doc = concat!(
            "Sets the part file name prefix (default `part`) and suffix (default ", $suffix, ")."
        )]
        pub fn with_part_names(mut self, prefix: &str, suffix: &str) -> Self {
            self.config.prefix = prefix.to_string();
            self.config.suffix = suffix.to_string();
            self
        }
    };
}

/// Writes text lines to part files in a directory, exactly once.
#[derive(Debug, Clone)]
pub struct ExactlyOnceFileSink {
    config: PartConfig,
}

impl ExactlyOnceFileSink {
    /// A sink writing into the directory at `url` (`file:///...`, `s3://bucket/prefix` or
    /// `hdfs://namenode:port/path`).
    pub fn new(url: impl Into<String>) -> Self {
        ExactlyOnceFileSink {
            config: PartConfig {
                url: url.into(),
                options: StorageOptions::default(),
                rolling: RollingPolicy::on_checkpoint().with_part_size(16 << 20),
                check_interval: DEFAULT_CHECK_INTERVAL,
                prefix: "part".into(),
                suffix: String::new(),
            },
        }
    }

    /// A sink writing parts of `format` into the directory at `url` (Flink's
    /// `FileSink.forBulkFormat`, and `forRowFormat` with a [`RowFormat`]). Parts roll at
    /// every checkpoint, and by size or time as [`FormatFileSink::with_rolling_policy`]
    /// says (default: also at 128 MiB); their names end in the format's suffix.
    pub fn for_format<T, F: BulkFormat<T>>(url: impl Into<String>, format: F) -> FormatFileSink<T> {
        let suffix = format.suffix().to_string();
        FormatFileSink {
            config: PartConfig {
                url: url.into(),
                options: StorageOptions::default(),
                rolling: RollingPolicy::on_checkpoint()
                    .with_part_size(super::rolling::DEFAULT_PART_SIZE),
                check_interval: DEFAULT_CHECK_INTERVAL,
                prefix: "part".into(),
                suffix,
            },
            format: Arc::new(format),
        }
    }

    part_config_setters!("16 MiB", "none");

    /// Rolls to a new part file once this many bytes are buffered (default 16 MiB); parts
    /// also roll at every checkpoint.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.config.rolling = self.config.rolling.with_part_size(bytes as u64);
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
        let mut lines = Vec::new();
        for (_, bytes) in Self::committed_parts(url, options)? {
            lines.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
        }
        Ok(lines)
    }

    /// The committed part files under `url` (name and bytes) in name order, for formats that
    /// are not text lines (for tests and tools). Pending parts and names starting with `_`
    /// are left out.
    ///
    /// # Errors
    /// Storage errors.
    pub fn committed_parts(
        url: &str,
        options: &StorageOptions,
    ) -> crate::error::Result<Vec<(String, Vec<u8>)>> {
        let store = SnapshotStore::open(url, options)?;
        let mut parts = Vec::new();
        for name in store.list("")? {
            if name.starts_with(PENDING) || name.starts_with('_') {
                continue;
            }
            let bytes = store.get(&name)?;
            parts.push((name, bytes));
        }
        Ok(parts)
    }
}

impl<T: Printable + Send + 'static> TransactionalSink<T> for ExactlyOnceFileSink {
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError> {
        self.config
            .writer(ctx, Arc::new(RowFormat::new(LineEncoder)))
    }
}

/// Writes part files of a [`BulkFormat`] into a directory, exactly once; made by
/// [`ExactlyOnceFileSink::for_format`].
pub struct FormatFileSink<T> {
    config: PartConfig,
    format: Arc<dyn BulkFormat<T>>,
}

impl<T> Clone for FormatFileSink<T> {
    fn clone(&self) -> Self {
        FormatFileSink {
            config: self.config.clone(),
            format: self.format.clone(),
        }
    }
}

impl<T> std::fmt::Debug for FormatFileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatFileSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T> FormatFileSink<T> {
    part_config_setters!("128 MiB", "the format's");
}

impl<T: Send + 'static> TransactionalSink<T> for FormatFileSink<T> {
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError> {
        self.config.writer(ctx, self.format.clone())
    }
}

/// What a part writer keeps in a checkpoint: its name and how many parts it had started.
#[derive(serde::Serialize, serde::Deserialize)]
struct WriterState {
    writer: String,
    counter: u64,
}

/// The part being written: its format's writer and when it opened and last took a record.
struct InProgress<T> {
    writer: Box<dyn BulkWriter<T>>,
    opened: Instant,
    last_write: Instant,
}

struct PartWriter<T> {
    store: SnapshotStore,
    subtask: usize,
    /// `<subtask>-<random>`: this writer's part of every part name.
    writer: String,
    rolling: RollingPolicy,
    check_interval: Duration,
    prefix: String,
    suffix: String,
    format: Arc<dyn BulkFormat<T>>,
    /// Number of the next part file of this subtask.
    counter: u64,
    /// The in-progress part, opened by its first record.
    in_progress: Option<InProgress<T>>,
    /// Pending parts of the open transaction.
    staged: Vec<String>,
}

impl<T> PartWriter<T> {
    fn part_name(&self, counter: u64) -> String {
        format!("{}-{}-{}{}", self.prefix, self.writer, counter, self.suffix)
    }

    /// Rolls the in-progress part, if any: finishes it and writes it as a pending part.
    fn stage(&mut self) -> Result<(), BoxError> {
        let Some(part) = self.in_progress.take() else {
            return Ok(());
        };
        let bytes = part.writer.finish()?;
        let name = self.part_name(self.counter);
        self.counter += 1;
        self.store.put(&format!("{PENDING}/{name}"), bytes)?;
        self.staged.push(name);
        Ok(())
    }

    /// The counter of a part name of this subtask, if it is one.
    fn counter_of(&self, name: &str, writer: &str) -> Option<u64> {
        let rest = name.strip_prefix(&format!("{}-{writer}-", self.prefix))?;
        rest.strip_suffix(self.suffix.as_str())?.parse().ok()
    }
}

impl<T: Send + 'static> TransactionalWriter<T> for PartWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let now = Instant::now();
        if self.in_progress.as_ref().is_some_and(|p| {
            self.rolling
                .should_roll_on_event(p.opened, p.last_write, now)
        }) {
            self.stage()?;
        }
        if self.in_progress.is_none() {
            self.in_progress = Some(InProgress {
                writer: self.format.create()?,
                opened: now,
                last_write: now,
            });
        }
        let part = self.in_progress.as_mut().expect("opened above");
        part.writer.add_element(value)?;
        part.last_write = now;
        if self
            .rolling
            .should_roll_on_size(part.writer.size_estimate())
        {
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

    /// The bucket check interval, when the policy rolls on time at all.
    fn processing_time_interval(&self) -> Option<Duration> {
        let on_time =
            self.rolling.rollover_interval.is_some() || self.rolling.inactivity_interval.is_some();
        on_time.then_some(self.check_interval)
    }

    /// Rolls the open part when it is too old or was inactive too long, though no record
    /// arrived (Flink's `shouldRollOnProcessingTime`): it becomes pending and is committed
    /// with the next checkpoint.
    fn on_processing_time(&mut self) -> Result<(), BoxError> {
        let now = Instant::now();
        if self.in_progress.as_ref().is_some_and(|p| {
            self.rolling
                .should_roll_on_event(p.opened, p.last_write, now)
        }) {
            self.stage()?;
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), BoxError> {
        self.in_progress = None;
        for name in std::mem::take(&mut self.staged) {
            self.store.delete(&format!("{PENDING}/{name}"))?;
        }
        Ok(())
    }
}
