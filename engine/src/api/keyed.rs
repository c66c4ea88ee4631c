//! `KeyedStream`: a stream partitioned by key, with rolling aggregations per key.
//!
//! # `min` versus `min_by` (as in Flink)
//!
//! `min::<1>()` keeps, per key, the **first** record it saw and only replaces field 1 with the
//! smallest value seen so far, so the other fields may come from a different record than the
//! minimum. `min_by::<1>()` emits the **whole record** that holds the smallest field 1 (the
//! earliest such record on ties). The same holds for `max` and `max_by`. `sum::<1>()` keeps
//! the first record's other fields and sums field 1.

use crate::api::Template;
use crate::api::datastream::{DataStream, SingleOutputStreamOperator};
use crate::api::field_aggregations::field_aggregations;
use crate::api::tuple::Field;
use crate::api::windowed::WindowedStream;
use crate::functions::ReduceFunction;
use crate::operators::key_selector::KeySelector;
use crate::operators::keyed_process::{KeyedProcessFunction, KeyedProcessOp};
use crate::operators::rolling::RollingReduceOp;
use crate::operators::shared::Shared;
use crate::types::{Data, Key};
use crate::windows::{
    CountEvictor, CountTrigger, GlobalWindow, GlobalWindows, PurgingTrigger, Window, WindowAssigner,
};
use std::ops::Deref;
use std::sync::Arc;

/// A stream partitioned by key (Flink's `KeyedStream`). Dereferences to [`DataStream`], so
/// stateless transformations apply too (they run on the hash-partitioned stream).
pub struct KeyedStream<T, K> {
    stream: DataStream<T>,
    key: KeySelector<T, K>,
}

impl<T, K> Clone for KeyedStream<T, K> {
    fn clone(&self) -> Self {
        KeyedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
        }
    }
}

impl<T, K> Deref for KeyedStream<T, K> {
    type Target = DataStream<T>;
    fn deref(&self) -> &DataStream<T> {
        &self.stream
    }
}

impl<T: Data, K: Key> KeyedStream<T, K> {
    pub(crate) fn new(stream: DataStream<T>, key: KeySelector<T, K>) -> Self {
        KeyedStream { stream, key }
    }

    /// The underlying hash-partitioned stream.
    pub fn stream(&self) -> DataStream<T> {
        self.stream.clone()
    }

    /// The key selector (one that copies the key out of the record, also for
    /// [`key_by_ref`](DataStream::key_by_ref)).
    pub fn key_selector(&self) -> Arc<dyn Fn(&T) -> K + Send + Sync> {
        let key = self.key.clone();
        Arc::new(move |v: &T| key(v).into_owned())
    }

    /// The key selector as operators use it: the key borrowed when it can be.
    pub(crate) fn selector(&self) -> KeySelector<T, K> {
        self.key.clone()
    }

    /// Processes each record with a [`KeyedProcessFunction`], which has keyed state and
    /// timers (Flink's `KeyedStream.process`).
    pub fn process<U: Data, F: KeyedProcessFunction<K, T, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        let key = self.key.clone();
        self.stream.one_input(
            "KeyedProcess",
            Box::new(move |ctx, out, sides| {
                let op = KeyedProcessOp::new(ctx, template.instance(), key.clone(), out, sides)?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        )
    }

    /// Cuts each key's records into windows (Flink's `KeyedStream.window`).
    pub fn window<W: Window, A: WindowAssigner<T, W>>(
        &self,
        assigner: A,
    ) -> WindowedStream<T, K, W> {
        WindowedStream::new(self.clone(), Arc::new(assigner), false)
    }

    /// Tumbling count windows: fires and purges every `n` elements of a key (Flink's
    /// `countWindow(n)`: global windows with a purging count trigger).
    pub fn count_window(&self, n: u64) -> WindowedStream<T, K, GlobalWindow> {
        self.window(GlobalWindows)
            .trigger(PurgingTrigger::of(CountTrigger::of(n)))
    }

    /// Sliding count windows: every `slide` elements, evaluates the last `n` elements of a key
    /// (Flink's `countWindow(n, slide)`: a count evictor and a count trigger).
    pub fn count_window_sliding(&self, n: u64, slide: u64) -> WindowedStream<T, K, GlobalWindow> {
        self.window(GlobalWindows)
            .evictor(CountEvictor::of(n as usize))
            .trigger(CountTrigger::of(slide))
    }

    /// Combines each record with its key's previous aggregate and emits the new aggregate
    /// (Flink's rolling `reduce`).
    pub fn reduce<F: ReduceFunction<T> + Clone>(&self, f: F) -> SingleOutputStreamOperator<T> {
        self.rolling("Keyed Reduce", f)
    }

    fn rolling<F: ReduceFunction<T> + Clone>(
        &self,
        name: &str,
        f: F,
    ) -> SingleOutputStreamOperator<T> {
        let template = Template::new(f);
        let key = self.key.clone();
        self.stream.one_input(
            name,
            Box::new(move |ctx, out, _| {
                Ok(Box::new(RollingReduceOp::new(
                    ctx,
                    template.instance(),
                    key.clone(),
                    out,
                )?))
            }),
        )
    }

    field_aggregations!(
        "of the key so far, emitted for every record",
        "the key's first record"
    );

    fn field_aggregate<F: ReduceFunction<T> + Clone>(&self, f: F) -> SingleOutputStreamOperator<T> {
        self.rolling("Keyed Aggregation", f)
    }
}
