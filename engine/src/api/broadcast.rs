//! The broadcast state pattern in the API: `broadcast_with` turns a stream into a
//! [`BroadcastStream`] that declares broadcast state; `connect_broadcast` connects a keyed or
//! non-keyed stream with it; `process` runs a (keyed) broadcast process function.

use crate::api::Template;
use crate::api::connected::ConnectedStreams;
use crate::api::datastream::{DataStream, SingleOutputStreamOperator};
use crate::api::keyed::KeyedStream;
use crate::operators::broadcast::{
    BroadcastProcessFunction, BroadcastProcessOp, BroadcastStateDescriptor,
    KeyedBroadcastProcessFunction, KeyedBroadcastProcessOp,
};
use crate::operators::key_selector::KeySelector;
use crate::operators::shared::Shared;
use crate::types::{Data, Key};
use std::sync::Arc;

type Descriptors = Arc<Vec<Arc<dyn BroadcastStateDescriptor>>>;

/// A stream whose elements go to every parallel instance of the operator it is connected
/// to, with the broadcast states that operator keeps (Flink's `BroadcastStream`).
pub struct BroadcastStream<T> {
    stream: DataStream<T>,
    descriptors: Descriptors,
}

impl<T> Clone for BroadcastStream<T> {
    fn clone(&self) -> Self {
        BroadcastStream {
            stream: self.stream.clone(),
            descriptors: self.descriptors.clone(),
        }
    }
}

impl<T: Data> DataStream<T> {
    /// A broadcast stream declaring the broadcast states (maps) of the operators it is
    /// connected to (Flink's `broadcast(MapStateDescriptor...)`; the argument-less
    /// [`broadcast`](DataStream::broadcast) is the partitioning).
    pub fn broadcast_with(
        &self,
        descriptors: &[&dyn BroadcastStateDescriptor],
    ) -> BroadcastStream<T> {
        BroadcastStream {
            stream: self.broadcast(),
            descriptors: Arc::new(descriptors.iter().map(|d| d.to_shared()).collect()),
        }
    }

    /// Connects this (non-keyed) stream with a broadcast stream; process the result with a
    /// [`BroadcastProcessFunction`].
    pub fn connect_broadcast<B: Data>(
        &self,
        broadcast: &BroadcastStream<B>,
    ) -> BroadcastConnectedStream<T, B> {
        BroadcastConnectedStream {
            streams: ConnectedStreams {
                first: self.clone(),
                second: broadcast.stream.clone(),
            },
            descriptors: broadcast.descriptors.clone(),
        }
    }
}

impl<T: Data, K: Key> KeyedStream<T, K> {
    /// Connects this keyed stream with a broadcast stream; process the result with a
    /// [`KeyedBroadcastProcessFunction`].
    pub fn connect_broadcast<B: Data>(
        &self,
        broadcast: &BroadcastStream<B>,
    ) -> KeyedBroadcastConnectedStream<T, B, K> {
        KeyedBroadcastConnectedStream {
            streams: ConnectedStreams {
                first: self.stream(),
                second: broadcast.stream.clone(),
            },
            key: self.selector(),
            descriptors: broadcast.descriptors.clone(),
        }
    }
}

/// A non-keyed stream connected with a broadcast stream (Flink's
/// `BroadcastConnectedStream`).
pub struct BroadcastConnectedStream<A, B> {
    streams: ConnectedStreams<A, B>,
    descriptors: Descriptors,
}

impl<A: Data, B: Data> BroadcastConnectedStream<A, B> {
    /// Runs a [`BroadcastProcessFunction`]. Its broadcast state goes into checkpoints and is
    /// restored on every instance at any parallelism; give the operator a `uid` for
    /// savepoints.
    pub fn process<U: Data, F: BroadcastProcessFunction<A, B, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        let descriptors = self.descriptors.clone();
        self.streams.two_input(
            "Broadcast-Process",
            Box::new(move |ctx, out, sides| {
                let op =
                    BroadcastProcessOp::new(ctx, template.instance(), &descriptors, out, sides)?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        )
    }
}

/// A keyed stream connected with a broadcast stream.
pub struct KeyedBroadcastConnectedStream<A, B, K> {
    streams: ConnectedStreams<A, B>,
    key: KeySelector<A, K>,
    descriptors: Descriptors,
}

impl<A: Data, B: Data, K: Key> KeyedBroadcastConnectedStream<A, B, K> {
    /// Runs a [`KeyedBroadcastProcessFunction`]. Keyed state, timers and broadcast state go
    /// into checkpoints; give the operator a `uid` for savepoints.
    pub fn process<U: Data, F: KeyedBroadcastProcessFunction<K, A, B, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        let descriptors = self.descriptors.clone();
        let key = self.key.clone();
        self.streams.two_input(
            "Keyed-Broadcast-Process",
            Box::new(move |ctx, out, sides| {
                let op = KeyedBroadcastProcessOp::new(
                    ctx,
                    template.instance(),
                    key.clone(),
                    &descriptors,
                    out,
                    sides,
                )?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        )
    }
}
