//! `DataStream`: a stream of typed records and its transformations.

use crate::api::Template;
use crate::api::connected::ConnectedStreams;
use crate::api::env::StreamExecutionEnvironment;
use crate::api::keyed::KeyedStream;
use crate::api::side_output::OutputTag;
use crate::api::tuple::Field;
use crate::api::windowed::WindowedStream;
use crate::context::RuntimeContext;
use crate::error::Result;
use crate::functions::{FilterFunction, FlatMapFunction, MapFunction};
use crate::graph::{ChainingStrategy, InEdge, NodeId, NodeKind};
use crate::keygroup::key_hash;
use crate::operators::assigner::TimestampsAndWatermarksOp;
use crate::operators::basic::{FilterOp, FlatMapOp, MapOp};
use crate::operators::key_selector::{KeyRef, KeySelector};
use crate::operators::output::{Output, SideOutputs, erase, unerase};
use crate::operators::process::{ProcessFunction, ProcessOp};
use crate::printable::Printable;
use crate::runtime::partitioner::{CustomFn, KeyHashFn, PartitionSpec};
use crate::runtime::stream_type::TypeOps;
use crate::sinks::{
    CollectSink, CollectedOutput, CsvFileSink, FnSink, PrintSink, PrintTarget, Sink, SinkOp,
    SocketSink, TextFileSink, WriteMode,
};
use crate::time::WatermarkStrategy;
use crate::types::{Data, Key, MIN_WATERMARK};
use crate::windows::{
    CountTrigger, GlobalWindow, GlobalWindows, PurgingTrigger, Window, WindowAssigner,
};
use std::any::Any;
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

/// One input of a stream: a node's output (or side output) and how it is partitioned.
#[derive(Clone)]
pub(crate) struct StreamInput {
    pub(crate) node: NodeId,
    pub(crate) side: Option<String>,
    pub(crate) partition: PartitionSpec,
}

/// A stream of records of type `T` (Flink's `DataStream`).
///
/// Streams are cheap handles: transformations take `&self`, so a stream can feed several
/// operators. A stream made by `union` reads several inputs.
pub struct DataStream<T> {
    pub(crate) env: StreamExecutionEnvironment,
    pub(crate) inputs: Vec<StreamInput>,
    pub(crate) _t: PhantomData<fn() -> T>,
}

impl<T> Clone for DataStream<T> {
    fn clone(&self) -> Self {
        DataStream {
            env: self.env.clone(),
            inputs: self.inputs.clone(),
            _t: PhantomData,
        }
    }
}

/// Builds a one-input operator for one subtask from its typed output and side outputs.
pub(crate) type BuildOneInput<T, U> = dyn Fn(&RuntimeContext, Box<dyn Output<U>>, SideOutputs) -> Result<Box<dyn Output<T>>>
    + Send
    + Sync;

impl<T: Data> DataStream<T> {
    pub(crate) fn from_node(env: StreamExecutionEnvironment, node: NodeId) -> Self {
        DataStream {
            env,
            inputs: vec![StreamInput {
                node,
                side: None,
                partition: PartitionSpec::Default,
            }],
            _t: PhantomData,
        }
    }

    /// The environment this stream belongs to.
    pub fn env(&self) -> &StreamExecutionEnvironment {
        &self.env
    }

    pub(crate) fn edges(&self, input: usize) -> Vec<InEdge> {
        self.inputs
            .iter()
            .map(|i| InEdge {
                from: i.node,
                side: i.side.clone(),
                partition: i.partition.clone(),
                input,
            })
            .collect()
    }

    /// Adds a one-input operator reading this stream.
    pub(crate) fn one_input<U: Data>(
        &self,
        name: &str,
        build: Box<BuildOneInput<T, U>>,
    ) -> SingleOutputStreamOperator<U> {
        let factory: crate::graph::OneInputFactory = Arc::new(move |ctx, main, sides| {
            let out = unerase::<U>(main, name_of::<U>())?;
            Ok(erase::<T>(build(ctx, out, sides)?))
        });
        let id = self.env.add_node(
            name.to_string(),
            NodeKind::OneInput {
                factory,
                input_type: Arc::new(TypeOps::<T>::new()),
            },
            self.edges(0),
            Arc::new(TypeOps::<U>::new()),
        );
        SingleOutputStreamOperator::new(self.env.clone(), id)
    }

    fn partitioned(&self, partition: PartitionSpec) -> DataStream<T> {
        let mut s = self.clone();
        for i in &mut s.inputs {
            i.partition = partition.clone();
        }
        s
    }

    // ----- transformations -----

    /// Applies a function to every record (Flink's `map`).
    pub fn map<U: Data, F: MapFunction<T, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.one_input(
            "Map",
            Box::new(move |ctx, out, _| {
                Ok(Box::new(MapOp {
                    ctx: ctx.clone(),
                    f: template.instance(),
                    out,
                    _in: PhantomData,
                }))
            }),
        )
    }

    /// Applies a function that returns any number of records (Flink's `flatMap`).
    pub fn flat_map<U: Data, F: FlatMapFunction<T, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.one_input(
            "Flat Map",
            Box::new(move |ctx, out, _| {
                Ok(Box::new(FlatMapOp {
                    ctx: ctx.clone(),
                    f: template.instance(),
                    out,
                    _in: PhantomData,
                }))
            }),
        )
    }

    /// Keeps the records for which the function returns `true` (Flink's `filter`).
    pub fn filter<F: FilterFunction<T> + Clone>(&self, f: F) -> SingleOutputStreamOperator<T> {
        let template = Template::new(f);
        self.one_input(
            "Filter",
            Box::new(move |ctx, out, _| {
                Ok(Box::new(FilterOp {
                    ctx: ctx.clone(),
                    f: template.instance(),
                    out,
                }))
            }),
        )
    }

    /// Applies a [`ProcessFunction`], which may also emit to side outputs.
    pub fn process<U: Data, F: ProcessFunction<T, U> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.one_input(
            "Process",
            Box::new(move |ctx, out, sides| {
                Ok(Box::new(ProcessOp {
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

    /// Assigns event timestamps and generates watermarks with a strategy (Flink's
    /// `assignTimestampsAndWatermarks`). Watermarks arriving from upstream are dropped, except
    /// the final one of bounded input; best placed right after the source.
    pub fn assign_timestamps_and_watermarks(
        &self,
        strategy: WatermarkStrategy<T>,
    ) -> SingleOutputStreamOperator<T> {
        self.one_input(
            "Timestamps/Watermarks",
            Box::new(move |ctx, out, _| {
                Ok(Box::new(TimestampsAndWatermarksOp::new(
                    ctx,
                    strategy.clone(),
                    out,
                )))
            }),
        )
    }

    /// Cuts the whole stream into windows, evaluated by one parallel instance (Flink's
    /// `windowAll`).
    pub fn window_all<W: Window, A: WindowAssigner<T, W>>(
        &self,
        assigner: A,
    ) -> WindowedStream<T, (), W> {
        WindowedStream::new(self.key_by(|_: &T| ()), Arc::new(assigner), true)
    }

    /// Tumbling count windows over the whole stream (Flink's `countWindowAll(n)`).
    pub fn count_window_all(&self, n: u64) -> WindowedStream<T, (), GlobalWindow> {
        self.window_all(GlobalWindows)
            .trigger(PurgingTrigger::of(CountTrigger::of(n)))
    }

    /// Partitions by key: records with the same key go to the same parallel instance, which
    /// keeps state per key (Flink's `keyBy`).
    ///
    /// The selector makes the key: for a key that owns heap memory (a `String`), it copies
    /// it out of the record, on both sides of the exchange. [`key_by_ref`](Self::key_by_ref)
    /// borrows it instead.
    pub fn key_by<K: Key, F>(&self, key_selector: F) -> KeyedStream<T, K>
    where
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        self.keyed(Arc::new(move |v: &T| KeyRef::Owned(key_selector(v))))
    }

    /// Partitions by a key borrowed from the record, like [`key_by`](Self::key_by) with the
    /// same key: `key_by_ref(|(word, _): &(String, u64)| word)` partitions and keeps state as
    /// `key_by(|(word, _): &(String, u64)| word.clone())` does, without copying the word for
    /// each record (operators copy a key only when they keep it: the first record of a key
    /// for rolling aggregations).
    pub fn key_by_ref<K: Key, F>(&self, key_selector: F) -> KeyedStream<T, K>
    where
        F: for<'a> Fn(&'a T) -> &'a K + Send + Sync + 'static,
    {
        self.keyed(Arc::new(move |v: &T| KeyRef::Borrowed(key_selector(v))))
    }

    fn keyed<K: Key>(&self, selector: KeySelector<T, K>) -> KeyedStream<T, K> {
        let s = selector.clone();
        let hash: KeyHashFn<T> = Arc::new(move |v: &T| key_hash(&*s(v)));
        let stream = self.partitioned(PartitionSpec::Hash(
            Arc::new(hash) as Arc<dyn Any + Send + Sync>
        ));
        KeyedStream::new(stream, selector)
    }

    /// Merges streams of the same type into one (Flink's `union`).
    pub fn union(&self, others: &[&DataStream<T>]) -> DataStream<T> {
        let mut s = self.clone();
        for o in others {
            s.inputs.extend(o.inputs.iter().cloned());
        }
        s
    }

    /// Connects a stream of another type, to be processed by one function with a method per
    /// input (Flink's `connect`).
    pub fn connect<B: Data>(&self, other: &DataStream<B>) -> ConnectedStreams<T, B> {
        ConnectedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }

    /// Selects tuple fields by position (Flink's `project(0)`).
    pub fn project1<const A: usize>(&self) -> SingleOutputStreamOperator<(<T as Field<A>>::Type,)>
    where
        T: Field<A>,
        <T as Field<A>>::Type: Data,
    {
        self.map(|t: T| (Field::<A>::field(&t).clone(),))
            .name("Projection")
    }

    /// Selects two tuple fields by position (Flink's `project(0, 2)`).
    #[allow(clippy::type_complexity)]
    pub fn project2<const A: usize, const B: usize>(
        &self,
    ) -> SingleOutputStreamOperator<(<T as Field<A>>::Type, <T as Field<B>>::Type)>
    where
        T: Field<A> + Field<B>,
        <T as Field<A>>::Type: Data,
        <T as Field<B>>::Type: Data,
    {
        self.map(|t: T| (Field::<A>::field(&t).clone(), Field::<B>::field(&t).clone()))
            .name("Projection")
    }

    /// Selects three tuple fields by position (Flink's `project(2, 0, 1)`).
    #[allow(clippy::type_complexity)]
    pub fn project3<const A: usize, const B: usize, const C: usize>(
        &self,
    ) -> SingleOutputStreamOperator<(
        <T as Field<A>>::Type,
        <T as Field<B>>::Type,
        <T as Field<C>>::Type,
    )>
    where
        T: Field<A> + Field<B> + Field<C>,
        <T as Field<A>>::Type: Data,
        <T as Field<B>>::Type: Data,
        <T as Field<C>>::Type: Data,
    {
        self.map(|t: T| {
            (
                Field::<A>::field(&t).clone(),
                Field::<B>::field(&t).clone(),
                Field::<C>::field(&t).clone(),
            )
        })
        .name("Projection")
    }

    // ----- physical partitioning -----

    /// One-to-one to the next operator's instance with the same index; requires equal
    /// parallelism (Flink's `forward`).
    pub fn forward(&self) -> DataStream<T> {
        self.partitioned(PartitionSpec::Forward)
    }

    /// Uniformly random distribution (Flink's `shuffle`).
    pub fn shuffle(&self) -> DataStream<T> {
        self.partitioned(PartitionSpec::Shuffle)
    }

    /// Round-robin over all downstream instances (Flink's `rebalance`).
    pub fn rebalance(&self) -> DataStream<T> {
        self.partitioned(PartitionSpec::Rebalance)
    }

    /// Round-robin over a local subset of downstream instances, so each producer talks to a
    /// few consumers only (Flink's `rescale`).
    pub fn rescale(&self) -> DataStream<T> {
        self.partitioned(PartitionSpec::Rescale)
    }

    /// Every record to every downstream instance (Flink's `broadcast()`).
    pub fn broadcast(&self) -> DataStream<T> {
        self.partitioned(PartitionSpec::Broadcast)
    }

    /// Chooses the downstream instance with a user partitioner over a key (Flink's
    /// `partitionCustom`). `partitioner(key, n)` must return a value in `0..n`; anything else
    /// fails the job with a clear error.
    pub fn partition_custom<K, P, S>(&self, partitioner: P, key_selector: S) -> DataStream<T>
    where
        P: Fn(&K, usize) -> usize + Send + Sync + 'static,
        S: Fn(&T) -> K + Send + Sync + 'static,
        K: Hash,
    {
        let f: CustomFn<T> = Arc::new(move |v: &T, n| partitioner(&key_selector(v), n));
        self.partitioned(PartitionSpec::Custom(
            Arc::new(f) as Arc<dyn Any + Send + Sync>
        ))
    }

    // ----- sinks -----

    /// Sends the stream to a sink (Flink's `sinkTo` / `addSink`).
    pub fn sink_to<S: Sink<T>>(&self, sink: S, name: &str) -> DataStreamSink<T> {
        let sink: Arc<dyn Sink<T>> = Arc::new(sink);
        let factory: crate::graph::OneInputFactory = Arc::new(move |ctx, _main, _sides| {
            Ok(erase::<T>(Box::new(SinkOp {
                ctx: ctx.clone(),
                sink: sink.clone(),
                writer: None,
                unflushed: false,
            })))
        });
        let id = self.env.add_node(
            name.to_string(),
            NodeKind::OneInput {
                factory,
                input_type: Arc::new(TypeOps::<T>::new()),
            },
            self.edges(0),
            Arc::new(TypeOps::<()>::new()),
        );
        DataStreamSink {
            env: self.env.clone(),
            node: id,
            _t: PhantomData,
        }
    }

    /// Sends the stream to a transactional sink with exactly-once output: what it writes
    /// becomes visible when the checkpoint after it completes (or at the end of input). Give
    /// the sink a `.uid(..)` so its pending output survives savepoints.
    pub fn sink_to_transactional<S: crate::sinks::TransactionalSink<T>>(
        &self,
        sink: S,
        name: &str,
    ) -> DataStreamSink<T> {
        let sink: Arc<dyn crate::sinks::TransactionalSink<T>> = Arc::new(sink);
        let factory: crate::graph::OneInputFactory = Arc::new(move |ctx, _main, _sides| {
            Ok(erase::<T>(Box::new(crate::sinks::TwoPhaseSinkOp::new(
                ctx,
                sink.as_ref(),
            )?)))
        });
        let id = self.env.add_node(
            name.to_string(),
            NodeKind::OneInput {
                factory,
                input_type: Arc::new(TypeOps::<T>::new()),
            },
            self.edges(0),
            Arc::new(TypeOps::<()>::new()),
        );
        DataStreamSink {
            env: self.env.clone(),
            node: id,
            _t: PhantomData,
        }
    }

    /// Writes text lines into part files under `url` (`file:///dir` or `s3://bucket/dir`)
    /// exactly once (Flink's `FileSink`); see [`ExactlyOnceFileSink`](crate::sinks::ExactlyOnceFileSink).
    pub fn sink_to_files(&self, url: &str) -> DataStreamSink<T>
    where
        T: Printable,
    {
        self.sink_to_transactional(
            crate::sinks::ExactlyOnceFileSink::new(url),
            "Sink: File Sink",
        )
    }

    /// Flink's `addSink`, the same as [`sink_to`](Self::sink_to).
    pub fn add_sink<S: Sink<T>>(&self, sink: S, name: &str) -> DataStreamSink<T> {
        self.sink_to(sink, name)
    }

    /// Calls a closure for every record (cloned per parallel instance).
    pub fn for_each<F: FnMut(T) + Clone + Send + 'static>(&self, f: F) -> DataStreamSink<T> {
        self.sink_to(FnSink::new(f), "Sink: For Each")
    }

    /// Collects the records in memory; read them from the returned handle after `execute`.
    pub fn collect(&self) -> CollectedOutput<T> {
        let (sink, output) = CollectSink::new();
        self.sink_to(sink, "Sink: Collect");
        output
    }

    /// Prints every record to stdout, prefixed with `n> ` at parallelism above 1.
    pub fn print(&self) -> DataStreamSink<T>
    where
        T: Printable,
    {
        self.sink_to(
            PrintSink::new(PrintTarget::Stdout),
            "Sink: Print to Std. Out",
        )
    }

    /// Prints every record to stdout with an identifier in the prefix (Flink's
    /// `print(sinkIdentifier)`).
    pub fn print_with_identifier(&self, identifier: &str) -> DataStreamSink<T>
    where
        T: Printable,
    {
        self.sink_to(
            PrintSink::new(PrintTarget::Stdout).with_identifier(identifier),
            "Sink: Print to Std. Out",
        )
    }

    /// Prints every record to stderr.
    pub fn print_to_err(&self) -> DataStreamSink<T>
    where
        T: Printable,
    {
        self.sink_to(
            PrintSink::new(PrintTarget::Stderr),
            "Sink: Print to Std. Err",
        )
    }

    /// Writes records as text lines to a file (parallelism 1) or to files `1`, `2`, ... in a
    /// directory; fails if the output exists.
    pub fn write_as_text(&self, path: impl Into<PathBuf>) -> DataStreamSink<T>
    where
        T: Printable,
    {
        self.write_as_text_with_mode(path, WriteMode::NoOverwrite)
    }

    /// [`write_as_text`](Self::write_as_text) with an explicit [`WriteMode`].
    pub fn write_as_text_with_mode(
        &self,
        path: impl Into<PathBuf>,
        mode: WriteMode,
    ) -> DataStreamSink<T>
    where
        T: Printable,
    {
        self.sink_to(TextFileSink::new(path, mode), "Sink: Text File")
    }

    /// Writes records as CSV rows (tuples and structs through serde).
    pub fn write_as_csv(&self, path: impl Into<PathBuf>) -> DataStreamSink<T> {
        self.write_as_csv_with_mode(path, WriteMode::NoOverwrite)
    }

    /// [`write_as_csv`](Self::write_as_csv) with an explicit [`WriteMode`].
    pub fn write_as_csv_with_mode(
        &self,
        path: impl Into<PathBuf>,
        mode: WriteMode,
    ) -> DataStreamSink<T> {
        self.sink_to(CsvFileSink::new(path, mode), "Sink: CSV File")
    }

    /// Writes each record as a text line to a TCP socket (Flink's `writeToSocket`).
    pub fn write_to_socket(&self, host: &str, port: u16) -> DataStreamSink<T>
    where
        T: Printable,
    {
        let serialize = Arc::new(|v: &T, buf: &mut Vec<u8>| {
            let mut line = v.to_text();
            line.push('\n');
            buf.extend_from_slice(line.as_bytes());
        });
        self.sink_to(SocketSink::new(host, port, serialize), "Sink: Socket")
    }
}

fn name_of<U>() -> &'static str {
    std::any::type_name::<U>()
}

/// The settings every node of the graph has (name, uid, parallelism, chaining, slot sharing
/// group), for the types that still let a program change them. `$what` names the node in
/// messages and docs ("operator", "sink").
macro_rules! node_settings {
    ($what:literal) => {
        fn set(self, f: impl FnOnce(&mut crate::graph::StreamNode)) -> Self {
            let (env, node) = self.env_and_node();
            env.with_node(node, f);
            self
        }

        #[doc = concat!("Names the ", $what, " (shown in plans, logs, metrics and errors).")]
        pub fn name(self, name: &str) -> Self {
            self.set(|n| n.name = name.to_string())
        }

        #[doc = concat!("Gives the ", $what, " a stable id, used to map its state in savepoints.")]
        pub fn uid(self, uid: &str) -> Self {
            self.set(|n| n.uid = Some(uid.to_string()))
        }

        #[doc = concat!("Sets the ", $what, "'s parallelism (at least 1).")]
        pub fn set_parallelism(self, parallelism: usize) -> Self {
            if parallelism == 0 {
                self.env_and_node().0.record_error(concat!($what, " parallelism must be at least 1").into());
                return self;
            }
            self.set(|n| n.parallelism = Some(parallelism))
        }

        #[doc = concat!("Starts a new chain at this ", $what, "; later operators may chain to it.")]
        pub fn start_new_chain(self) -> Self {
            self.set(|n| n.chaining = ChainingStrategy::Head)
        }

        #[doc = concat!("Never chains this ", $what, " with its predecessor or successors.")]
        pub fn disable_chaining(self) -> Self {
            self.set(|n| n.chaining = ChainingStrategy::Never)
        }

        #[doc = concat!("Puts the ", $what, " in a slot sharing group. Without a group it inherits the group")]
        /// of its inputs when all inputs agree, else `"default"` (Flink's rule).
        pub fn slot_sharing_group(self, group: &str) -> Self {
            self.set(|n| n.slot_sharing_group = Some(group.to_string()))
        }
    };
}

/// The stream produced by one operator, whose settings can still be changed (Flink's
/// `SingleOutputStreamOperator`). Dereferences to [`DataStream`].
pub struct SingleOutputStreamOperator<T> {
    stream: DataStream<T>,
    node: NodeId,
}

impl<T> Deref for SingleOutputStreamOperator<T> {
    type Target = DataStream<T>;
    fn deref(&self) -> &DataStream<T> {
        &self.stream
    }
}

impl<T> Clone for SingleOutputStreamOperator<T> {
    fn clone(&self) -> Self {
        SingleOutputStreamOperator {
            stream: self.stream.clone(),
            node: self.node,
        }
    }
}

impl<T: Data> SingleOutputStreamOperator<T> {
    pub(crate) fn new(env: StreamExecutionEnvironment, node: NodeId) -> Self {
        SingleOutputStreamOperator {
            stream: DataStream::from_node(env, node),
            node,
        }
    }

    fn env_and_node(&self) -> (&StreamExecutionEnvironment, NodeId) {
        (&self.stream.env, self.node)
    }

    /// The plain stream.
    pub fn stream(&self) -> DataStream<T> {
        self.stream.clone()
    }

    node_settings!("operator");

    /// Sets the operator's max parallelism (number of key groups).
    pub fn set_max_parallelism(self, max_parallelism: usize) -> Self {
        self.set(|n| n.max_parallelism = Some(max_parallelism))
    }

    /// The records this operator emitted to a side output.
    pub fn get_side_output<X: Data>(&self, tag: &OutputTag<X>) -> DataStream<X> {
        let id = tag.id().to_string();
        let env = &self.stream.env;
        let conflict = env.with_node(self.node, |n| {
            match n.side_types.iter().find(|(t, _)| *t == id) {
                Some((_, ty)) if ty.type_name() != std::any::type_name::<X>() => {
                    Some(ty.type_name())
                }
                Some(_) => None,
                None => {
                    n.side_types
                        .push((id.clone(), Arc::new(TypeOps::<X>::new())));
                    None
                }
            }
        });
        if let Some(existing) = conflict {
            env.record_error(format!(
                "side output '{id}' is used with two types: {existing} and {}; use distinct tag ids",
                std::any::type_name::<X>()
            ));
        }
        DataStream {
            env: env.clone(),
            inputs: vec![StreamInput {
                node: self.node,
                side: Some(id),
                partition: PartitionSpec::Default,
            }],
            _t: PhantomData,
        }
    }
}

/// A sink added to the job, whose settings can still be changed (Flink's `DataStreamSink`).
pub struct DataStreamSink<T> {
    env: StreamExecutionEnvironment,
    node: NodeId,
    _t: PhantomData<fn(T)>,
}

impl<T> DataStreamSink<T> {
    fn env_and_node(&self) -> (&StreamExecutionEnvironment, NodeId) {
        (&self.env, self.node)
    }

    node_settings!("sink");
}
