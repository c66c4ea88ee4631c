//! `ConnectedStreams`: two streams of possibly different types processed by one function with
//! a method per input (Flink's `connect`, `CoMap`, `CoFlatMap`).

use crate::api::Template;
use crate::api::datastream::{DataStream, SingleOutputStreamOperator};
use crate::context::RuntimeContext;
use crate::error::Result;
use crate::functions::{CoFlatMapFunction, CoFns, CoMapFunction};
use crate::graph::NodeKind;
use crate::operators::co::{CoFlatMapOp, CoMapOp};
use crate::operators::co_process::{
    CoProcessFunction, CoProcessOp, KeyedCoProcessFunction, KeyedCoProcessOp,
};
use crate::operators::key_selector::KeySelector;
use crate::operators::output::{Output, SideOutputs, unerase};
use crate::operators::shared::Shared;
use crate::runtime::stream_type::TypeOps;
use crate::runtime::task::{TaskHead, TwoInputHead, TwoInputOperator};
use crate::types::{Data, Key, MIN_WATERMARK};
use std::marker::PhantomData;
use std::sync::Arc;

/// Two connected streams (Flink's `ConnectedStreams`).
pub struct ConnectedStreams<A, B> {
    pub(crate) first: DataStream<A>,
    pub(crate) second: DataStream<B>,
}

/// Builds a two-input operator for one subtask from its typed output and side outputs.
pub(crate) type BuildTwoInput<A, B, U> = dyn Fn(&RuntimeContext, Box<dyn Output<U>>, SideOutputs) -> Result<Box<dyn TwoInputOperator<A, B>>>
    + Send
    + Sync;

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    /// Partitions both inputs by key, so records of both sides with the same key meet in the
    /// same parallel instance. The result dereferences to `ConnectedStreams` (so `map` and
    /// `flat_map` apply) and adds [`KeyedConnectedStreams::process`] with keyed state and
    /// timers.
    pub fn key_by<K: Key>(
        &self,
        key1: impl Fn(&A) -> K + Send + Sync + 'static,
        key2: impl Fn(&B) -> K + Send + Sync + 'static,
    ) -> KeyedConnectedStreams<A, B, K> {
        let (first, second) = (self.first.key_by(key1), self.second.key_by(key2));
        KeyedConnectedStreams {
            keys: (first.selector(), second.selector()),
            streams: ConnectedStreams {
                first: first.stream(),
                second: second.stream(),
            },
        }
    }

    /// Processes both inputs with a [`CoProcessFunction`] (Flink's `ConnectedStreams.process`):
    /// records in, any number of records and side-output records out.
    pub fn process<U: Data, F: CoProcessFunction<A, B, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.two_input(
            "Co-Process",
            Box::new(move |ctx, out, sides| {
                Ok(Box::new(CoProcessOp {
                    ctx: ctx.clone(),
                    f: template.instance(),
                    out,
                    sides,
                    watermark: MIN_WATERMARK,
                    _in: PhantomData,
                }))
            }),
        )
    }

    pub(crate) fn two_input<U: Data>(
        &self,
        name: &str,
        build: Box<BuildTwoInput<A, B, U>>,
    ) -> SingleOutputStreamOperator<U> {
        let factory: crate::graph::TwoInputFactory = Arc::new(move |ctx, main, sides| {
            let out = unerase::<U>(main, "two-input operator")?;
            Ok(Box::new(TwoInputHead::new(build(ctx, out, sides)?)) as Box<dyn TaskHead>)
        });
        let mut edges = self.first.edges(0);
        edges.extend(self.second.edges(1));
        let env = self.first.env.clone();
        let id = env.add_node(
            name.to_string(),
            NodeKind::TwoInput { factory },
            edges,
            Arc::new(TypeOps::<U>::new()),
        );
        SingleOutputStreamOperator::new(env, id)
    }

    /// Maps each input with its own closure (Flink's `CoMapFunction`).
    pub fn map<U: Data, F1, F2>(&self, f1: F1, f2: F2) -> SingleOutputStreamOperator<U>
    where
        F1: FnMut(A) -> U + Clone + Send + 'static,
        F2: FnMut(B) -> U + Clone + Send + 'static,
    {
        self.map_with(CoFns(f1, f2))
    }

    /// Maps with a [`CoMapFunction`] (which may use `open`/`close`).
    pub fn map_with<U: Data, F: CoMapFunction<A, B, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.two_input(
            "Co-Map",
            Box::new(move |ctx, out, _| {
                Ok(Box::new(CoMapOp {
                    ctx: ctx.clone(),
                    f: template.instance(),
                    out,
                    _in: PhantomData,
                }))
            }),
        )
    }

    /// Flat-maps each input with its own closure (Flink's `CoFlatMapFunction`).
    pub fn flat_map<U: Data, F1, F2, I1, I2>(&self, f1: F1, f2: F2) -> SingleOutputStreamOperator<U>
    where
        F1: FnMut(A) -> I1 + Clone + Send + 'static,
        F2: FnMut(B) -> I2 + Clone + Send + 'static,
        I1: IntoIterator<Item = U>,
        I2: IntoIterator<Item = U>,
    {
        self.flat_map_with(CoFns(f1, f2))
    }

    /// Flat-maps with a [`CoFlatMapFunction`].
    pub fn flat_map_with<U: Data, F: CoFlatMapFunction<A, B, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.two_input(
            "Co-Flat Map",
            Box::new(move |ctx, out, _| {
                Ok(Box::new(CoFlatMapOp {
                    ctx: ctx.clone(),
                    f: template.instance(),
                    out,
                    _in: PhantomData,
                }))
            }),
        )
    }
}

/// Two connected streams partitioned by the same key type (Flink's `ConnectedStreams` after
/// `keyBy`). Dereferences to [`ConnectedStreams`].
pub struct KeyedConnectedStreams<A, B, K> {
    streams: ConnectedStreams<A, B>,
    keys: (KeySelector<A, K>, KeySelector<B, K>),
}

impl<A, B, K> std::ops::Deref for KeyedConnectedStreams<A, B, K> {
    type Target = ConnectedStreams<A, B>;
    fn deref(&self) -> &ConnectedStreams<A, B> {
        &self.streams
    }
}

impl<A: Data, B: Data, K: Key> KeyedConnectedStreams<A, B, K> {
    /// Processes both inputs with a [`KeyedCoProcessFunction`]: keyed state shared by both
    /// inputs, timers, side outputs (Flink's `KeyedCoProcessFunction`). Its keyed state and
    /// timers go into checkpoints; give it a `uid` for savepoints.
    pub fn process<U: Data, F: KeyedCoProcessFunction<K, A, B, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        let keys = self.keys.clone();
        self.streams.two_input(
            "KeyedCo-Process",
            Box::new(move |ctx, out, sides| {
                let op = KeyedCoProcessOp::new(ctx, template.instance(), keys.clone(), out, sides)?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        )
    }
}
