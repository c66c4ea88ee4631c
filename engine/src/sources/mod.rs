//! Sources: the `Source` trait for custom (possibly parallel) sources and the built-in ones.
//!
//! A [`Source`] is a factory shared by all parallel instances; each instance gets its own
//! [`SourceReader`], which the runtime polls (Flink's FLIP-27 model, the successor of
//! `SourceFunction`, `ParallelSourceFunction` and `RichParallelSourceFunction`). Polling lets
//! the runtime interleave control work (cancellation, and later checkpoint barriers) with
//! reading.

pub mod acknowledging;
mod collection;
mod generator;
mod lines;
mod socket;
mod split_watermarks;
mod text_file;

pub use collection::{CollectionSource, IterSource};
pub use generator::{GeneratorSource, RateStep, SequenceSource};
pub use socket::SocketTextSource;
pub use split_watermarks::{SplitWatermarks, WatermarkUpdate};
pub use text_file::{LineDecoder, TextFileSource};

use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError};
use crate::operators::output::{Output, guard};
use crate::state::operator::{RedistributionMode, StoreSnapshot};
use crate::types::{StreamRecord, Timestamp};

/// What a reader reports after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// More records can be read right away; poll again.
    MoreAvailable,
    /// Nothing to read now (the reader may have waited a little); poll again later.
    NothingAvailable,
    /// The input is exhausted; this reader is done.
    Finished,
}

/// A factory of source readers, one per parallel instance.
pub trait Source<T>: Send + Sync + 'static {
    /// Whether the source may run with parallelism above 1. Non-parallel sources (like
    /// `from_collection`) always run with parallelism 1.
    fn is_parallel(&self) -> bool {
        true
    }

    /// Creates the reader of one parallel instance. `ctx.subtask_index` and `ctx.parallelism`
    /// tell it which share of the input to read.
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError>;
}

/// Reads the records of one parallel instance of a source.
pub trait SourceReader<T>: Send {
    /// Called once before the first poll.
    fn open(&mut self, _ctx: &RuntimeContext) -> Result<(), BoxError> {
        Ok(())
    }

    /// Emits the next records, if any. Emit a reasonable batch (say up to a thousand records)
    /// per call, and do not block for more than a few tens of milliseconds.
    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError>;

    /// The read position to store in a checkpoint, taken between two polls. `None` (the
    /// default) means the reader keeps no position, so after a failure it starts over (the
    /// socket source does this: what was read is gone).
    fn snapshot_state(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(None)
    }

    /// Continues from a position written by [`snapshot_state`](Self::snapshot_state);
    /// called before `open` when the job is restored.
    fn restore_state(&mut self, _state: &[u8]) -> Result<(), BoxError> {
        Ok(())
    }

    /// The remaining input as *splits* (Flink's split-based sources): one entry per piece of
    /// input still to read, each saying where in it to continue (a number range, a file and
    /// byte offset). Taken between two polls; when it returns `Some`,
    /// [`snapshot_state`](Self::snapshot_state) is not called. The splits are stored as operator
    /// list state, so when the job is restored at another parallelism the splits of all old
    /// instances are redistributed evenly over the new ones (contiguous shares, old instance
    /// order) and every record is still read exactly once. A reader that returns `Some` must
    /// implement [`restore_splits`](Self::restore_splits).
    fn snapshot_splits(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(None)
    }

    /// Continues with exactly these splits (written by
    /// [`snapshot_splits`](Self::snapshot_splits), possibly by other instances), instead of the
    /// input this instance would read in a fresh run; an empty list means nothing is left to
    /// read. Called before `open` when the job is restored.
    fn restore_splits(&mut self, _splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        Err("this source stored splits in the snapshot but cannot restore them (restore_splits is not implemented)".into())
    }

    /// Extra state of a split-based reader that every instance gets *all* of on restore,
    /// whatever the parallelism (Flink's union list state): taken with
    /// [`snapshot_splits`](Self::snapshot_splits) when that returns `Some`, ignored otherwise.
    /// A reader that assigns itself input (Kafka partitions it discovers) keeps here what was
    /// already assigned to some instance, so that after a restore at another parallelism no
    /// instance takes a piece of input another one already holds. The default keeps nothing.
    fn snapshot_union_state(&mut self, _checkpoint_id: u64) -> Result<Vec<Vec<u8>>, BoxError> {
        Ok(Vec::new())
    }

    /// The union of what every old instance returned from
    /// [`snapshot_union_state`](Self::snapshot_union_state) (in old instance order; empty if
    /// nothing was stored). Called before [`restore_splits`](Self::restore_splits) when the job
    /// is restored from splits.
    fn restore_union_state(&mut self, _items: Vec<Vec<u8>>) -> Result<(), BoxError> {
        Ok(())
    }

    /// A checkpoint that included this reader's position completed.
    fn notify_checkpoint_complete(&mut self, _checkpoint_id: u64) -> Result<(), BoxError> {
        Ok(())
    }

    /// A checkpoint whose barrier this reader emitted was given up (today: a stop-with-savepoint
    /// that failed).
    fn notify_checkpoint_aborted(&mut self, _checkpoint_id: u64) -> Result<(), BoxError> {
        Ok(())
    }

    /// Called once after the last poll, also on failure and cancellation.
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// An error of a source at a known position in its input; the runtime reports it with the
/// source's name and subtask.
#[derive(Debug, thiserror::Error)]
#[error("{message} (at {position})")]
pub struct SourceError {
    /// Where in the input: "file.txt line 7", "localhost:9999", ...
    pub position: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl SourceError {
    /// A boxed source error, ready to return from `poll_next`.
    pub fn boxed(position: impl Into<String>, message: impl Into<String>) -> BoxError {
        Box::new(SourceError {
            position: position.into(),
            message: message.into(),
        })
    }
}

/// The name of the operator list state under which split-based sources keep their splits.
const SPLITS_STATE: &str = "source-splits";

/// The name of the union list state of split-based sources
/// ([`SourceReader::snapshot_union_state`]).
const UNION_STATE: &str = "source-union";

/// The read position of a source reader for a snapshot: its splits as operator list state
/// (redistributable), or else its opaque position (same parallelism only), or nothing.
pub(crate) fn snapshot_position<T>(
    ctx: &RuntimeContext,
    reader: &mut dyn SourceReader<T>,
    checkpoint_id: u64,
) -> Result<Option<Vec<u8>>, FjordError> {
    let splits = guard(ctx, || reader.snapshot_splits(checkpoint_id)).map_err(source_failure)?;
    match splits {
        Some(splits) => {
            let union = guard(ctx, || reader.snapshot_union_state(checkpoint_id))
                .map_err(source_failure)?;
            let mut states = vec![(
                SPLITS_STATE.to_string(),
                RedistributionMode::EvenSplit,
                splits,
            )];
            if !union.is_empty() {
                states.push((UNION_STATE.to_string(), RedistributionMode::Union, union));
            }
            StoreSnapshot { states }.encode().map(Some)
        }
        None => guard(ctx, || reader.snapshot_state(checkpoint_id)).map_err(source_failure),
    }
}

/// Restores a reader from what [`snapshot_position`] wrote (already redistributed for this
/// instance when the parallelism changed).
pub(crate) fn restore_position<T>(
    ctx: &RuntimeContext,
    reader: &mut dyn SourceReader<T>,
    position: &[u8],
) -> Result<(), FjordError> {
    match StoreSnapshot::decode(position) {
        Some(store) => {
            let mut splits = Vec::new();
            let mut union = Vec::new();
            for (name, _, items) in store?.states {
                match name.as_str() {
                    SPLITS_STATE => splits.extend(items),
                    UNION_STATE => union.extend(items),
                    _ => {}
                }
            }
            guard(ctx, || reader.restore_union_state(union)).map_err(source_failure)?;
            guard(ctx, || reader.restore_splits(splits)).map_err(source_failure)
        }
        None => guard(ctx, || reader.restore_state(position)).map_err(source_failure),
    }
}

/// Turns a reader's error (already wrapped by the runtime) into the engine error naming the
/// source and the position in its input.
pub(crate) fn source_failure(error: FjordError) -> FjordError {
    match error {
        FjordError::UserFunction { location, source } => match source.downcast::<SourceError>() {
            Ok(e) => FjordError::Source {
                location,
                position: e.position,
                message: e.message,
            },
            Err(source) => FjordError::UserFunction { location, source },
        },
        other => other,
    }
}

/// Where a source reader emits its records.
pub struct SourceOutput<'a, T> {
    out: &'a mut dyn Output<T>,
    emitted: u64,
    error: Option<FjordError>,
}

impl<'a, T> SourceOutput<'a, T> {
    pub(crate) fn new(out: &'a mut dyn Output<T>) -> Self {
        SourceOutput {
            out,
            emitted: 0,
            error: None,
        }
    }

    /// Emits a record without timestamp.
    #[inline]
    pub fn collect(&mut self, value: T) {
        self.push(StreamRecord::new(value));
    }

    /// Emits a record with an event-time timestamp.
    #[inline]
    pub fn collect_with_timestamp(&mut self, value: T, timestamp: Timestamp) {
        self.push(StreamRecord::with_timestamp(value, timestamp));
    }

    /// Emits an event-time watermark: no more records with timestamp `<=` it will follow.
    /// For readers that generate watermarks themselves (per split, like Flink's Kafka source);
    /// only advancing watermarks should be emitted. A downstream
    /// `assign_timestamps_and_watermarks` replaces them.
    pub fn emit_watermark(&mut self, watermark: Timestamp) {
        if self.error.is_none()
            && let Err(e) = self.out.emit_watermark(watermark)
        {
            self.error = Some(e);
        }
    }

    /// Marks this reader's stream idle (`true`, downstream stops waiting for its watermark) or
    /// active again (`false`; do this before emitting records after being idle). Flink's
    /// `WatermarkStatus`, for readers that have nothing to read (no splits, idle splits).
    pub fn emit_watermark_status(&mut self, idle: bool) {
        if self.error.is_none()
            && let Err(e) = self.out.emit_watermark_status(idle)
        {
            self.error = Some(e);
        }
    }

    /// True once downstream failed; the reader should stop emitting and return.
    pub fn is_failed(&self) -> bool {
        self.error.is_some()
    }

    #[inline]
    fn push(&mut self, record: StreamRecord<T>) {
        if self.error.is_none() {
            self.emitted += 1;
            if let Err(e) = self.out.emit(record) {
                self.error = Some(e);
            }
        }
    }

    pub(crate) fn take_error(&mut self) -> Option<FjordError> {
        self.error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::TaskServices;

    /// A reader with fixed splits and union items that records what it was restored with.
    #[derive(Default)]
    struct Splits {
        splits: Vec<Vec<u8>>,
        union: Vec<Vec<u8>>,
        restored_union: Option<Vec<Vec<u8>>>,
    }

    impl SourceReader<u8> for Splits {
        fn poll_next(&mut self, _: &mut SourceOutput<'_, u8>) -> Result<SourceStatus, BoxError> {
            Ok(SourceStatus::Finished)
        }
        fn snapshot_splits(&mut self, _: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
            Ok(Some(self.splits.clone()))
        }
        fn snapshot_union_state(&mut self, _: u64) -> Result<Vec<Vec<u8>>, BoxError> {
            Ok(self.union.clone())
        }
        fn restore_union_state(&mut self, items: Vec<Vec<u8>>) -> Result<(), BoxError> {
            assert!(
                self.splits.is_empty(),
                "union state comes before the splits"
            );
            self.restored_union = Some(items);
            Ok(())
        }
        fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
            self.splits = splits;
            Ok(())
        }
    }

    fn ctx(subtask: usize, parallelism: usize) -> RuntimeContext {
        RuntimeContext {
            job_name: "job".into(),
            task_name: "source".into(),
            subtask_index: subtask,
            parallelism,
            max_parallelism: 128,
            attempt_number: 0,
            services: TaskServices::default(),
            keyed: None,
            operator_id: "source".into(),
            has_uid: false,
        }
    }

    fn bytes(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    /// What a restored reader got: its splits and its union state.
    type Restored = (Vec<Vec<u8>>, Option<Vec<Vec<u8>>>);

    /// Snapshots readers at 2, restores them at `parallelism`: (splits, union) per new reader.
    fn rescale(old: Vec<Splits>, parallelism: usize) -> Vec<Restored> {
        let stores: Vec<StoreSnapshot> = old
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                let bytes = snapshot_position(&ctx(i, 2), &mut r, 1).unwrap().unwrap();
                StoreSnapshot::decode(&bytes).unwrap().unwrap()
            })
            .collect();
        (0..parallelism)
            .map(|i| {
                let mine = StoreSnapshot::redistribute(&stores, i, parallelism);
                let mut reader = Splits::default();
                restore_position(&ctx(i, parallelism), &mut reader, &mine.encode().unwrap())
                    .unwrap();
                (reader.splits, reader.restored_union)
            })
            .collect()
    }

    #[test]
    fn union_state_reaches_every_reader_and_splits_are_split_evenly() {
        let old = || {
            vec![
                Splits {
                    splits: bytes(&["a", "b"]),
                    union: bytes(&["a", "b", "x"]),
                    ..Splits::default()
                },
                Splits {
                    splits: bytes(&["c"]),
                    union: bytes(&["c"]),
                    ..Splits::default()
                },
            ]
        };
        let all = bytes(&["a", "b", "x", "c"]);
        let three = rescale(old(), 3);
        let splits: Vec<_> = three.iter().map(|(s, _)| s.clone()).collect();
        assert_eq!(splits, vec![bytes(&["a"]), bytes(&["b"]), bytes(&["c"])]);
        assert!(three.iter().all(|(_, u)| u.as_ref() == Some(&all)));
        // Same parallelism: own splits, but still the union of all.
        let two = rescale(old(), 2);
        assert_eq!(two[0].0, bytes(&["a", "b"]));
        assert_eq!(two[1].0, bytes(&["c"]));
        assert!(two.iter().all(|(_, u)| u.as_ref() == Some(&all)));
    }

    #[test]
    fn readers_without_union_state_store_none_and_restore_empty() {
        let old = vec![
            Splits {
                splits: bytes(&["a"]),
                ..Splits::default()
            },
            Splits::default(),
        ];
        let restored = rescale(old, 1);
        assert_eq!(restored, vec![(bytes(&["a"]), Some(Vec::new()))]);
    }
}
