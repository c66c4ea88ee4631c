//! Window join and co-group.

#![allow(clippy::type_complexity)] // closures and nested maps read clearer inline here

use crate::api::datastream::{DataStream, SingleOutputStreamOperator};
use crate::api::windowed::WindowedStream;
use crate::types::{Data, Key};
use crate::windows::{Evictor, Trigger, Window, WindowAssigner, WindowContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// An element of either input of a window join (Flink's `TaggedUnion`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum TaggedUnion<A, B> {
    /// From the first input.
    One(A),
    /// From the second input.
    Two(B),
}

/// Two streams to be joined over windows: `a.join(&b).where_key(..).equal_to(..).window(..)`.
pub struct JoinedStreams<A, B> {
    pub(crate) first: DataStream<A>,
    pub(crate) second: DataStream<B>,
}

/// The joined streams with both key selectors and the window, optionally with a trigger, an
/// evictor and allowed lateness (Flink's `JoinedStreams.WithWindow`).
pub struct JoinedWindows<A, B, K, W> {
    union: DataStream<TaggedUnion<A, B>>,
    key: Arc<dyn Fn(&TaggedUnion<A, B>) -> K + Send + Sync>,
    assigner: Arc<dyn WindowAssigner<TaggedUnion<A, B>, W>>,
    /// Settings applied to the windowed union, in the order they were given.
    settings: Vec<Setting<A, B, K, W>>,
}

/// One setting of the windowed union (a trigger, an evictor, allowed lateness).
type Setting<A, B, K, W> = Arc<
    dyn Fn(WindowedStream<TaggedUnion<A, B>, K, W>) -> WindowedStream<TaggedUnion<A, B>, K, W>
        + Send
        + Sync,
>;

/// Flink's `CoGroupedStreams`: the same builder, applied with a co-group function.
pub type CoGroupedStreams<A, B> = JoinedStreams<A, B>;

/// The joined streams after `where_key`.
pub struct JoinWhere<A, B, K> {
    streams: JoinedStreams<A, B>,
    first_key: Arc<dyn Fn(&A) -> K + Send + Sync>,
}

/// The joined streams after `equal_to`.
pub struct JoinEqual<A, B, K> {
    union: DataStream<TaggedUnion<A, B>>,
    key: Arc<dyn Fn(&TaggedUnion<A, B>) -> K + Send + Sync>,
}

impl<A: Data, B: Data> JoinedStreams<A, B> {
    /// The key of the first input.
    pub fn where_key<K: Key>(
        self,
        key: impl Fn(&A) -> K + Send + Sync + 'static,
    ) -> JoinWhere<A, B, K> {
        JoinWhere {
            streams: self,
            first_key: Arc::new(key),
        }
    }
}

impl<A: Data, B: Data, K: Key> JoinWhere<A, B, K> {
    /// The key of the second input; elements join when the keys are equal.
    pub fn equal_to(self, key: impl Fn(&B) -> K + Send + Sync + 'static) -> JoinEqual<A, B, K> {
        let one = self.streams.first.map(TaggedUnion::<A, B>::One);
        let two = self.streams.second.map(TaggedUnion::<A, B>::Two);
        let union = one.union(&[&two]);
        let first = self.first_key;
        let key: Arc<dyn Fn(&TaggedUnion<A, B>) -> K + Send + Sync> = Arc::new(move |t| match t {
            TaggedUnion::One(a) => first(a),
            TaggedUnion::Two(b) => key(b),
        });
        JoinEqual { union, key }
    }
}

impl<A: Data, B: Data, K: Key> JoinEqual<A, B, K> {
    /// The windows both inputs are cut into (any assigner, merging ones included).
    pub fn window<W: Window>(
        self,
        assigner: impl WindowAssigner<TaggedUnion<A, B>, W>,
    ) -> JoinedWindows<A, B, K, W> {
        JoinedWindows {
            union: self.union,
            key: self.key,
            assigner: Arc::new(assigner),
            settings: Vec::new(),
        }
    }
}

struct SharedAssigner<T, W>(Arc<dyn WindowAssigner<T, W>>);

impl<T: 'static, W: Window> WindowAssigner<T, W> for SharedAssigner<T, W> {
    fn assign_windows(&self, e: &T, ts: i64, out: &mut Vec<W>) {
        self.0.assign_windows(e, ts, out)
    }
    fn default_trigger(&self) -> Box<dyn crate::windows::Trigger<T, W>> {
        self.0.default_trigger()
    }
    fn is_event_time(&self) -> bool {
        self.0.is_event_time()
    }
    fn is_merging(&self) -> bool {
        self.0.is_merging()
    }
}

fn split<A, B>(elements: Vec<TaggedUnion<A, B>>) -> (Vec<A>, Vec<B>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for e in elements {
        match e {
            TaggedUnion::One(a) => xs.push(a),
            TaggedUnion::Two(b) => ys.push(b),
        }
    }
    (xs, ys)
}

impl<A: Data, B: Data, K: Key, W: Window> JoinedWindows<A, B, K, W> {
    /// Replaces the assigner's default trigger (Flink's `trigger`). The trigger sees the
    /// elements of both inputs; a firing joins every pair in the window so far.
    pub fn trigger<X: Trigger<TaggedUnion<A, B>, W> + Clone + Sync>(mut self, trigger: X) -> Self {
        self.settings
            .push(Arc::new(move |w: WindowedStream<_, K, W>| {
                w.trigger(trigger.clone())
            }));
        self
    }

    /// Adds an evictor over the elements of both inputs (Flink's `evictor`).
    pub fn evictor<E: Evictor<TaggedUnion<A, B>, W> + Clone + Sync>(mut self, evictor: E) -> Self {
        self.settings
            .push(Arc::new(move |w: WindowedStream<_, K, W>| {
                w.evictor(evictor.clone())
            }));
        self
    }

    /// Keeps windows `lateness` past their end, so late elements of either input fire them
    /// again with every pair so far (Flink's `allowedLateness`; default 0).
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.settings
            .push(Arc::new(move |w: WindowedStream<_, K, W>| {
                w.allowed_lateness(lateness)
            }));
        self
    }

    /// The keyed, windowed union of both inputs with every setting applied.
    fn windowed(&self) -> WindowedStream<TaggedUnion<A, B>, K, W> {
        let key = self.key.clone();
        let windowed = self
            .union
            .key_by(move |t: &TaggedUnion<A, B>| key(t))
            .window(SharedAssigner(self.assigner.clone()));
        self.settings.iter().fold(windowed, |w, set| set(w))
    }

    /// Inner join: calls `f` for every pair of elements of the two inputs in the same window
    /// and key (Flink's `JoinFunction`); results carry timestamp window end − 1.
    pub fn apply<O: Data>(
        &self,
        f: impl Fn(A, B) -> O + Clone + Send + Sync + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.flat_apply(move |a, b, out: &mut Vec<O>| out.push(f(a, b)))
    }

    /// Inner join with a function that emits any number of results per pair (Flink's
    /// `FlatJoinFunction`): `f` pushes them into the vector. Results carry timestamp window
    /// end − 1.
    pub fn flat_apply<O: Data>(
        &self,
        f: impl Fn(A, B, &mut Vec<O>) + Clone + Send + Sync + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.windowed()
            .process(
                move |_: &K,
                      ctx: &mut WindowContext<'_, W, O>,
                      elements: Vec<TaggedUnion<A, B>>| {
                    let (xs, ys) = split(elements);
                    let mut out = Vec::new();
                    for x in &xs {
                        for y in &ys {
                            f(x.clone(), y.clone(), &mut out);
                            for o in out.drain(..) {
                                ctx.collect(o);
                            }
                        }
                    }
                },
            )
            .name("Window Join")
    }

    /// Co-group: calls `f` once per key and window with all elements of both inputs (either
    /// side may be empty); `f` pushes results into the vector.
    pub fn co_group<O: Data>(
        &self,
        f: impl Fn(&K, Vec<A>, Vec<B>, &mut Vec<O>) + Clone + Send + Sync + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.windowed()
            .process(
                move |k: &K,
                      ctx: &mut WindowContext<'_, W, O>,
                      elements: Vec<TaggedUnion<A, B>>| {
                    let (xs, ys) = split(elements);
                    let mut out = Vec::new();
                    f(k, xs, ys, &mut out);
                    for o in out {
                        ctx.collect(o);
                    }
                },
            )
            .name("Window CoGroup")
    }
}

impl<A: Data> DataStream<A> {
    /// Starts a window join with another stream (Flink's `join`).
    pub fn join<B: Data>(&self, other: &DataStream<B>) -> JoinedStreams<A, B> {
        JoinedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }

    /// Starts a window co-group with another stream (Flink's `coGroup`).
    pub fn co_group<B: Data>(&self, other: &DataStream<B>) -> CoGroupedStreams<A, B> {
        JoinedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }
}
