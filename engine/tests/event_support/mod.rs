//! Shared helpers for event-time tests: streams of records and explicit watermarks, and a
//! source the test feeds while the job runs.
#![allow(dead_code)]

use fjord::time::WatermarkStrategy;
use fjord::{DataStream, SourceOutput, SourceReader, SourceStatus, StreamExecutionEnvironment};
use serde::{Deserialize, Serialize};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An input event: a record `(key, timestamp, value)` or a watermark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Ev {
    R(String, i64, i64),
    W(i64),
}

pub fn r(key: &str, ts: i64, value: i64) -> Ev {
    Ev::R(key.to_string(), ts, value)
}

pub fn w(ts: i64) -> Ev {
    Ev::W(ts)
}

/// The records of `events` with their timestamps, and a watermark exactly where the list has
/// one (a punctuated generator), from a parallelism-1 source.
pub fn timed(env: &StreamExecutionEnvironment, events: Vec<Ev>) -> DataStream<(String, i64, i64)> {
    punctuated(env.from_collection(events).stream())
}

/// The records of a stream of events, timestamped, with a watermark where the events have one.
fn punctuated(events: DataStream<Ev>) -> DataStream<(String, i64, i64)> {
    let strategy = WatermarkStrategy::for_punctuated(|e: &Ev, _| match e {
        Ev::W(w) => Some(*w),
        Ev::R(..) => None,
    })
    .with_timestamp_assigner(|e: &Ev, _| match e {
        Ev::R(_, ts, _) => *ts,
        Ev::W(w) => *w,
    });
    events
        .assign_timestamps_and_watermarks(strategy)
        .set_parallelism(1)
        .flat_map(|e: Ev| match e {
            Ev::R(k, ts, v) => Some((k, ts, v)),
            Ev::W(_) => None,
        })
        .set_parallelism(1)
        .stream()
}

/// Like [`timed`], from a source the test feeds while the job runs (records and watermarks
/// in the order sent; the source ends when the sender is dropped).
pub fn fed(
    env: &StreamExecutionEnvironment,
    name: &str,
) -> (DataStream<(String, i64, i64)>, mpsc::Sender<Ev>) {
    let (source, feed) = FeedSource::<Ev>::new();
    (punctuated(env.from_source(source, name).stream()), feed)
}

/// Every record of `s` with its event-time timestamp.
pub fn with_ts<T: fjord::Data>(s: &DataStream<T>) -> DataStream<(T, Option<i64>)> {
    s.process(
        |v: T, ctx: &mut fjord::ProcessContext<'_, (T, Option<i64>)>| {
            let ts = ctx.timestamp();
            ctx.collect((v, ts))
        },
    )
    .stream()
}

/// A source fed by the test through a channel; it ends when the sender is dropped.
pub struct FeedSource<T> {
    rx: Arc<Mutex<Option<mpsc::Receiver<T>>>>,
}

impl<T: Send + 'static> FeedSource<T> {
    pub fn new() -> (Self, mpsc::Sender<T>) {
        let (tx, rx) = mpsc::channel();
        (
            FeedSource {
                rx: Arc::new(Mutex::new(Some(rx))),
            },
            tx,
        )
    }
}

struct FeedReader<T>(mpsc::Receiver<T>);

impl<T: Send + 'static> fjord::Source<T> for FeedSource<T> {
    fn is_parallel(&self) -> bool {
        false
    }
    fn create_reader(
        &self,
        _ctx: &fjord::RuntimeContext,
    ) -> Result<Box<dyn SourceReader<T>>, fjord::BoxError> {
        let rx = self
            .rx
            .lock()
            .unwrap()
            .take()
            .ok_or("feed source runs once")?;
        Ok(Box::new(FeedReader(rx)))
    }
}

impl<T: Send> SourceReader<T> for FeedReader<T> {
    fn poll_next(
        &mut self,
        output: &mut SourceOutput<'_, T>,
    ) -> Result<SourceStatus, fjord::BoxError> {
        match self.0.recv_timeout(Duration::from_millis(2)) {
            Ok(v) => {
                output.collect(v);
                Ok(SourceStatus::MoreAvailable)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(SourceStatus::NothingAvailable),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(SourceStatus::Finished),
        }
    }
}

/// Sends every record of `stream` to a channel the test reads while the job runs.
pub fn channel_sink<T: fjord::Data>(stream: &DataStream<T>) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    stream.for_each(move |v: T| {
        let _ = tx.send(v);
    });
    rx
}

/// The next record from a channel sink, waiting at most 20 s for it.
pub fn next<T>(rx: &mpsc::Receiver<T>) -> T {
    rx.recv_timeout(Duration::from_secs(20))
        .expect("the job produced the expected record in time")
}

pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
