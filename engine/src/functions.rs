//! User function traits: Flink's `MapFunction`, `FlatMapFunction`, ... and their "Rich" variants.
//!
//! Every trait is implemented for plain closures, so `stream.map(|x| x + 1)` works. A struct
//! that implements a trait gets the rich lifecycle: `open` is called with the
//! [`RuntimeContext`] before the first record and `close` after the last, on every parallel
//! instance. Functions are cloned once per parallel instance (Flink serializes them; `Clone` is
//! our equivalent), so per-instance fields start from the value the job was built with.
//!
//! A function that keeps operator state also implements [`CheckpointedFunction`]: it creates
//! its state in an [`OperatorStateStore`] when initialized and moves its fields into it at
//! every snapshot.

use crate::chain::Collector;
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::state::OperatorStateStore;

/// Declares the `open`/`close` lifecycle hooks shared by all rich function traits, and the
/// checkpoint notifications (Flink's `CheckpointListener`).
macro_rules! lifecycle_hooks {
    () => {
        /// Called once per parallel instance before the first record (Flink's `open`).
        fn open(&mut self, _ctx: &RuntimeContext) -> Result<(), BoxError> {
            Ok(())
        }

        /// Called once per parallel instance after the last record, also when the job fails
        /// or is cancelled (Flink's `close`).
        fn close(&mut self) -> Result<(), BoxError> {
            Ok(())
        }

        /// Checkpoint `checkpoint_id` completed on every task: its `_metadata` is written
        /// (Flink's `CheckpointListener::notifyCheckpointComplete`). Called on the task's
        /// thread between records, with increasing ids; a completion older than one already
        /// notified is skipped (a later checkpoint subsumes it). Never called for a checkpoint
        /// that did not complete. Not called for window functions yet.
        fn notify_checkpoint_complete(&mut self, _checkpoint_id: u64) -> Result<(), BoxError> {
            Ok(())
        }

        /// Checkpoint `checkpoint_id` was given up (Flink's
        /// `CheckpointListener::notifyCheckpointAborted`). Best effort: today only functions
        /// chained to a source hear of aborted stop-with-savepoints; declined or expired
        /// checkpoints are simply never notified as complete.
        fn notify_checkpoint_aborted(&mut self, _checkpoint_id: u64) -> Result<(), BoxError> {
            Ok(())
        }
    };
}
pub(crate) use lifecycle_hooks;

/// One record in, one record out.
pub trait MapFunction<T, U>: Send + 'static {
    /// Transforms one record.
    fn map(&mut self, value: T) -> Result<U, BoxError>;
    lifecycle_hooks!();
}

impl<T, U, F: FnMut(T) -> U + Send + 'static> MapFunction<T, U> for F {
    #[inline]
    fn map(&mut self, value: T) -> Result<U, BoxError> {
        Ok(self(value))
    }
}

/// One record in, zero or more records out.
///
/// Closures return anything iterable: `stream.flat_map(|line: String| line.split(' ').map(str::to_owned).collect::<Vec<_>>())`.
pub trait FlatMapFunction<T, U>: Send + 'static {
    /// Emits any number of records for one input record.
    fn flat_map(&mut self, value: T, out: &mut Collector<'_, U>) -> Result<(), BoxError>;
    lifecycle_hooks!();
}

impl<T, U, I, F> FlatMapFunction<T, U> for F
where
    F: FnMut(T) -> I + Send + 'static,
    I: IntoIterator<Item = U>,
{
    #[inline]
    fn flat_map(&mut self, value: T, out: &mut Collector<'_, U>) -> Result<(), BoxError> {
        for v in self(value) {
            out.collect(v);
        }
        Ok(())
    }
}

/// Keeps the records for which it returns `true`.
pub trait FilterFunction<T>: Send + 'static {
    /// Decides whether to keep a record.
    fn filter(&mut self, value: &T) -> Result<bool, BoxError>;
    lifecycle_hooks!();
}

impl<T, F: FnMut(&T) -> bool + Send + 'static> FilterFunction<T> for F {
    #[inline]
    fn filter(&mut self, value: &T) -> Result<bool, BoxError> {
        Ok(self(value))
    }
}

/// Combines two values of the same type into one (for rolling and window reductions).
pub trait ReduceFunction<T>: Send + 'static {
    /// Combines the accumulated value with a new one.
    fn reduce(&mut self, accumulated: T, value: T) -> Result<T, BoxError>;
    lifecycle_hooks!();
}

impl<T, F: FnMut(T, T) -> T + Send + 'static> ReduceFunction<T> for F {
    #[inline]
    fn reduce(&mut self, accumulated: T, value: T) -> Result<T, BoxError> {
        Ok(self(accumulated, value))
    }
}

/// A map over two connected streams: one method per input (Flink's `CoMapFunction`).
pub trait CoMapFunction<A, B, U>: Send + 'static {
    /// Maps a record of the first input.
    fn map1(&mut self, value: A) -> Result<U, BoxError>;
    /// Maps a record of the second input.
    fn map2(&mut self, value: B) -> Result<U, BoxError>;
    lifecycle_hooks!();
}

/// A flat map over two connected streams (Flink's `CoFlatMapFunction`).
pub trait CoFlatMapFunction<A, B, U>: Send + 'static {
    /// Emits records for a record of the first input.
    fn flat_map1(&mut self, value: A, out: &mut Collector<'_, U>) -> Result<(), BoxError>;
    /// Emits records for a record of the second input.
    fn flat_map2(&mut self, value: B, out: &mut Collector<'_, U>) -> Result<(), BoxError>;
    lifecycle_hooks!();
}

/// Two closures used as a [`CoMapFunction`] or [`CoFlatMapFunction`].
#[derive(Clone)]
pub struct CoFns<F1, F2>(pub F1, pub F2);

impl<A, B, U, F1, F2> CoMapFunction<A, B, U> for CoFns<F1, F2>
where
    F1: FnMut(A) -> U + Send + 'static,
    F2: FnMut(B) -> U + Send + 'static,
{
    #[inline]
    fn map1(&mut self, value: A) -> Result<U, BoxError> {
        Ok((self.0)(value))
    }
    #[inline]
    fn map2(&mut self, value: B) -> Result<U, BoxError> {
        Ok((self.1)(value))
    }
}

impl<A, B, U, I1, I2, F1, F2> CoFlatMapFunction<A, B, U> for CoFns<F1, F2>
where
    F1: FnMut(A) -> I1 + Send + 'static,
    F2: FnMut(B) -> I2 + Send + 'static,
    I1: IntoIterator<Item = U>,
    I2: IntoIterator<Item = U>,
{
    fn flat_map1(&mut self, value: A, out: &mut Collector<'_, U>) -> Result<(), BoxError> {
        for v in (self.0)(value) {
            out.collect(v);
        }
        Ok(())
    }
    fn flat_map2(&mut self, value: B, out: &mut Collector<'_, U>) -> Result<(), BoxError> {
        for v in (self.1)(value) {
            out.collect(v);
        }
        Ok(())
    }
}

/// Incremental aggregation with an accumulator; defined beside the keyed state that holds its
/// accumulators ([`AggregatingState`](crate::state::AggregatingState)).
pub use crate::state::keyed::AggregateFunction;

/// What a function sees when it is asked to snapshot its state.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSnapshotContext {
    /// The checkpoint's id.
    pub checkpoint_id: u64,
    /// When the checkpoint was triggered (processing time).
    pub checkpoint_timestamp: i64,
}

/// What a function sees when its state is created or restored.
pub struct FunctionInitializationContext<'a> {
    /// The operator state of this instance.
    pub operator_state: &'a mut OperatorStateStore,
    /// The runtime context (keyed state is available through it on keyed streams).
    pub runtime: &'a RuntimeContext,
}

impl FunctionInitializationContext<'_> {
    /// True when the instance is restored from a checkpoint or savepoint.
    pub fn is_restored(&self) -> bool {
        self.operator_state.is_restored()
    }
}

/// Implemented by functions that keep operator state or need a hook at snapshots (Flink's
/// `CheckpointedFunction`). `initialize_state` runs before `open`; `snapshot_state` runs when a
/// checkpoint is taken, before the store is serialized. The checkpoint coordinator (a later
/// issue) drives both; tests can drive them through [`OperatorStateStore`].
pub trait CheckpointedFunction {
    /// Creates (or restores) the function's state handles.
    fn initialize_state(
        &mut self,
        ctx: &mut FunctionInitializationContext<'_>,
    ) -> std::result::Result<(), BoxError>;
    /// Moves what the function keeps in fields into its state handles.
    fn snapshot_state(
        &mut self,
        ctx: &FunctionSnapshotContext,
    ) -> std::result::Result<(), BoxError>;
}
