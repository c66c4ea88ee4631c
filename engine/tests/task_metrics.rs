//! Task metrics of a running event-time job: the input watermark a task's operators see (the
//! minimum over its input channels), the output watermark of its sources, and idle time of a
//! source waiting for data. The test waits on the metrics themselves, never on a sleep.

mod event_support;

use event_support::FeedSource;
use fjord::StreamExecutionEnvironment;
use fjord::runtime::io_metrics::{IoMetrics, OperatorIo};
use fjord::time::WatermarkStrategy;
use fjord::types::MAX_WATERMARK;
use fjord::windows::TumblingEventTimeWindows;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `(event time, value)`; a watermark of `ts - 1` follows every record.
type Event = (i64, i64);

fn feed(
    env: &StreamExecutionEnvironment,
    name: &str,
) -> (fjord::DataStream<Event>, mpsc::Sender<Event>) {
    let (source, tx) = FeedSource::<Event>::new();
    let strategy = WatermarkStrategy::for_punctuated(|_: &Event, ts| Some(ts - 1))
        .with_timestamp_assigner(|e: &Event, _| e.0);
    let stream = env
        .from_source(source, name)
        .assign_timestamps_and_watermarks(strategy)
        .stream();
    (stream, tx)
}

fn task(io: &IoMetrics, name: &str) -> Option<OperatorIo> {
    io.snapshot().into_iter().find(|o| o.operator == name)
}

/// Polls the metrics of task `name` until `check` holds, failing after 20 s.
fn until(
    io: &IoMetrics,
    name: &str,
    what: &str,
    check: impl Fn(&OperatorIo) -> bool,
) -> OperatorIo {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = task(io, name).filter(|t| check(t)) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: never {what}: {:?}",
            io.snapshot()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_input_watermark_gauge_is_the_minimum_over_the_inputs() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let (a, feed_a) = feed(&env, "a");
    let (b, feed_b) = feed(&env, "b");
    let sums = a
        .union(&[&b])
        .key_by(|_: &Event| 0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .reduce(|x: Event, y: Event| (x.0.max(y.0), x.1 + y.1))
        .name("Window")
        .collect();
    let job = env.execute_async("watermarks").unwrap();
    let io = job.io_metrics();

    let window = until(&io, "Window", "deployed", |_| true);
    assert_eq!(window.input_watermark, None, "no watermark yet");
    feed_a.send((100, 1)).unwrap();
    let a = until(&io, "a", "sent watermark 99", |t| {
        t.output_watermark == Some(99)
    });
    assert_eq!(a.input_watermark, None, "a source has no input");
    feed_b.send((50, 2)).unwrap();
    until(&io, "Window", "at the minimum 49", |t| {
        t.input_watermark == Some(49)
    });
    feed_b.send((200, 3)).unwrap();
    let window = until(&io, "Window", "at 99 (a is now the slowest)", |t| {
        t.input_watermark == Some(99)
    });
    assert_eq!(window.records_in, 3);
    assert_eq!(window.output_watermark, None, "the chain ends in a sink");
    // The sources wait for the test most of the time: that is idle, not busy.
    until(&io, "a", "idle", |t| t.idle_ms > 0);

    drop((feed_a, feed_b));
    job.wait().unwrap();
    let window = task(&io, "Window").unwrap();
    assert_eq!(
        window.input_watermark,
        Some(MAX_WATERMARK),
        "bounded sources end event time"
    );
    assert_eq!(sums.values().len(), 3);
}
