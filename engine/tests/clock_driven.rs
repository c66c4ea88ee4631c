//! Jobs driven by processing time from a `ManualClock`: processing-time windows, idleness of
//! one input through a whole job, and periodic watermark emission. Time only moves when the
//! test says so; the test waits on the job's own signals (acknowledged elements, outputs,
//! late records), never on a sleep.

mod event_support;

use event_support::{FeedSource, channel_sink, next, with_ts};
use fjord::time::{ManualClock, WatermarkStrategy};
use fjord::types::MAX_WATERMARK;
use fjord::windows::{
    SlidingProcessingTimeWindows, TimeWindow, Trigger, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows, WindowAssigner,
};
use fjord::{
    BoxError, DataStream, KeyedProcessContext, KeyedProcessFunction, OutputTag,
    StreamExecutionEnvironment,
};
use std::sync::mpsc;
use std::time::Duration;

type Rec = (String, i64);

const START: i64 = 1_000;

fn env(clock: &ManualClock, interval: Duration) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.set_clock(clock.clone());
    env.set_auto_watermark_interval(interval);
    env
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Wraps an assigner and reports every element it assigns, with the processing time it saw:
/// the test knows the window operator has taken an element before it moves the clock.
struct Acked<A> {
    inner: A,
    tx: mpsc::Sender<(i64, i64)>,
}

impl<A: WindowAssigner<Rec, TimeWindow>> WindowAssigner<Rec, TimeWindow> for Acked<A> {
    fn assign_windows(&self, element: &Rec, timestamp: i64, out: &mut Vec<TimeWindow>) {
        self.inner.assign_windows(element, timestamp, out);
        let _ = self.tx.send((element.1, timestamp));
    }
    fn default_trigger(&self) -> Box<dyn Trigger<Rec, TimeWindow>> {
        self.inner.default_trigger()
    }
    fn is_event_time(&self) -> bool {
        self.inner.is_event_time()
    }
}

/// Runs processing-time windows over values sent at the given clock times (none at a
/// window's last millisecond, where firing and assignment would race), moves the clock past
/// every window and returns the `(sum, result timestamp)` of each firing in order.
fn processing_time_windows<A>(assigner: A, sends: &[(i64, i64)], firings: usize) -> Vec<(i64, i64)>
where
    A: WindowAssigner<Rec, TimeWindow>,
{
    let clock = ManualClock::new(START);
    let env = env(&clock, ms(0));
    let (source, feed) = FeedSource::<Rec>::new();
    let (tx, acks) = mpsc::channel();
    let sums = env
        .from_source(source, "feed")
        .key_by(|e: &Rec| e.0.clone())
        .window(Acked {
            inner: assigner,
            tx,
        })
        .reduce(|a: Rec, b: Rec| (a.0, a.1 + b.1));
    let results = channel_sink(&with_ts(&sums.stream()));
    let job = env.execute_async("processing-time windows").unwrap();
    for &(at, value) in sends {
        clock.set(at);
        feed.send(("k".into(), value)).unwrap();
        assert_eq!(next(&acks), (value, at), "assigned at the clock's time");
    }
    clock.advance(1_000);
    let out: Vec<(i64, i64)> = (0..firings)
        .map(|_| {
            let ((_, sum), ts) = next(&results);
            (sum, ts.expect("window results carry end - 1"))
        })
        .collect();
    drop(feed);
    job.wait().unwrap();
    assert!(
        results.try_recv().is_err(),
        "nothing fired beyond the windows"
    );
    out
}

#[test]
fn processing_time_windows_with_offset_follow_the_manual_clock() {
    // (clock time, value); 1030 and 1130 start tumbling windows, 1070 starts a sliding one.
    let sends = [
        (1000, 1),
        (1028, 2),
        (1030, 4),
        (1070, 8),
        (1099, 16),
        (1130, 32),
    ];
    type Case = (&'static str, Vec<(i64, i64)>);
    let cases: Vec<Case> = vec![
        (
            // Windows [930, 1030), [1030, 1130), [1130, 1230).
            "tumbling 100 ms, offset 30 ms",
            processing_time_windows(
                TumblingProcessingTimeWindows::of_with_offset(ms(100), ms(30)),
                &sends,
                3,
            ),
        ),
        (
            // Windows start at 920, 970, 1020, 1070, 1120.
            "sliding 100 ms / 50 ms, offset 20 ms",
            processing_time_windows(
                SlidingProcessingTimeWindows::of_with_offset(ms(100), ms(50), ms(20)),
                &sends,
                5,
            ),
        ),
    ];
    let expected: Vec<Case> = vec![
        (
            "tumbling 100 ms, offset 30 ms",
            vec![(1 + 2, 1029), (4 + 8 + 16, 1129), (32, 1229)],
        ),
        (
            "sliding 100 ms / 50 ms, offset 20 ms",
            vec![
                (1, 1019),
                (1 + 2 + 4, 1069),
                (2 + 4 + 8 + 16, 1119),
                (8 + 16 + 32, 1169),
                (32, 1219),
            ],
        ),
    ];
    assert_eq!(cases, expected);
}

/// A record `(source name, event time, value)`.
type Event = (String, i64, i64);

/// A source whose records carry their event time; a watermark of `ts - 1` follows every
/// record (so the test knows exactly which watermark travels behind which record).
fn timed_feed(
    env: &StreamExecutionEnvironment,
    name: &str,
    idleness: Option<Duration>,
) -> (DataStream<Event>, mpsc::Sender<Event>) {
    let (source, feed) = FeedSource::<Event>::new();
    let mut strategy = WatermarkStrategy::for_punctuated(|_: &Event, ts| Some(ts - 1))
        .with_timestamp_assigner(|e: &Event, _| e.1);
    if let Some(timeout) = idleness {
        strategy = strategy.with_idleness(timeout);
    }
    let stream = env
        .from_source(source, name)
        .assign_timestamps_and_watermarks(strategy)
        .stream();
    (stream, feed)
}

#[test]
fn an_idle_input_does_not_hold_back_windows_and_counts_again_when_it_resumes() {
    let clock = ManualClock::new(START);
    let env = env(&clock, ms(10));
    let (a, feed_a) = timed_feed(&env, "a", None);
    let (b, feed_b) = timed_feed(&env, "b", Some(ms(100)));
    let (acks_a, acks_b) = (channel_sink(&a), channel_sink(&b));
    let late = OutputTag::<Event>::new("late");
    let windowed = a
        .union(&[&b])
        .key_by(|_: &Event| "all".to_string())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .side_output_late_data(&late)
        .reduce(|x: Event, y: Event| (x.0, x.1.max(y.1), x.2 + y.2));
    let results = channel_sink(&with_ts(&windowed.map(|e: Event| e.2).stream()));
    let late = channel_sink(&windowed.get_side_output(&late));
    let job = env.execute_async("idleness").unwrap();
    const A: usize = 0;
    const B: usize = 1;
    let feeds = [(&feed_a, &acks_a, "a"), (&feed_b, &acks_b, "b")];
    let send = |input: usize, ts: i64, v: i64| {
        let (feed, acks, name) = feeds[input];
        let e = (name.to_string(), ts, v);
        feed.send(e.clone()).unwrap();
        assert_eq!(next(acks), e);
    };

    // Both inputs active: b (watermark 1) holds the windows back although a is at 24.
    send(A, 1, 1);
    send(B, 2, 10);
    send(A, 12, 2);
    send(A, 15, 3);
    send(A, 25, 4);
    // b has no events for 100 ms of processing time: idle, and a alone drives the windows.
    // Idleness is noticed at b's periodic checks, so move the clock until it is.
    let mut first = None;
    for _ in 0..50 {
        clock.advance(100);
        if let Ok(r) = results.recv_timeout(Duration::from_millis(100)) {
            first = Some(r);
            break;
        }
    }
    assert_eq!(
        first,
        Some((1 + 10, Some(9))),
        "[0, 10) fired once b went idle"
    );
    assert_eq!(next(&results), (2 + 3, Some(19)));

    // b resumes behind the watermark (24): its records still land in open windows, and
    // once it has caught up (27 >= 24) it holds the watermark back again. The late record
    // proves b's watermark 27 has reached the window operator.
    send(B, 22, 20);
    send(B, 28, 30);
    send(B, 3, 99);
    assert_eq!(next(&late), ("b".to_string(), 3, 99));
    // a moves to 44, but [20, 30) and [30, 40) wait for b.
    send(A, 35, 5);
    send(A, 45, 6);
    send(B, 29, 40);
    send(B, 31, 50);
    send(B, 41, 60);
    assert_eq!(next(&results), (4 + 20 + 30 + 40, Some(29)));
    assert_eq!(next(&results), (5 + 50, Some(39)));
    drop(feed_a);
    drop(feed_b);
    job.wait().unwrap();
    assert_eq!(next(&results), (6 + 60, Some(49)));
    assert!(results.try_recv().is_err());
    assert!(late.try_recv().is_err(), "nothing else was late");
}

/// Registers an event-time timer at each record's value and reports, when it fires, the
/// watermark that fired it.
#[derive(Clone)]
struct WatermarkProbe;

impl KeyedProcessFunction<(), (i64, i64), (i64, i64)> for WatermarkProbe {
    fn process_element(
        &mut self,
        (_, timer): (i64, i64),
        ctx: &mut KeyedProcessContext<'_, (), (i64, i64)>,
    ) -> Result<(), BoxError> {
        ctx.timer_service().register_event_time_timer(timer);
        Ok(())
    }
    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedProcessContext<'_, (), (i64, i64)>,
    ) -> Result<(), BoxError> {
        let watermark = ctx.timer_service().current_watermark();
        ctx.collect((timestamp, watermark));
        Ok(())
    }
}

#[test]
fn bounded_out_of_orderness_watermarks_are_emitted_at_the_auto_watermark_interval() {
    let clock = ManualClock::new(START);
    let env = env(&clock, ms(50));
    let (source, feed) = FeedSource::<(i64, i64)>::new();
    let stamped = env
        .from_source(source, "feed")
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(ms(5))
                .with_timestamp_assigner(|e: &(i64, i64), _| e.0),
        )
        .stream();
    let acks = channel_sink(&stamped);
    let fired = channel_sink(
        &stamped
            .key_by(|_: &(i64, i64)| ())
            .process(WatermarkProbe)
            .stream(),
    );
    let job = env.execute_async("periodic watermarks").unwrap();

    // (records as (event time, timer), clock advance in ms, (timer, watermark) fired).
    type Step = (Vec<(i64, i64)>, i64, Vec<(i64, i64)>);
    let steps: Vec<Step> = vec![
        // Max 130, but no periodic emission before the interval (50 ms) has passed.
        (vec![(100, 90), (130, 120)], 49, vec![]),
        // At 1050 the first periodic watermark: max 200 - 5 - 1.
        (vec![(200, 190)], 1, vec![(90, 194), (120, 194), (190, 194)]),
        // An out-of-order record does not move the watermark back or forward.
        (vec![(150, 195)], 50, vec![]),
        // Max 201: watermark 195.
        (vec![(201, 196)], 50, vec![(195, 195)]),
    ];
    let mut observed = Vec::new();
    let mut expected = Vec::new();
    for (records, advance, firings) in steps {
        for r in records {
            feed.send(r).unwrap();
            assert_eq!(next(&acks), r);
        }
        clock.advance(advance);
        for _ in 0..firings.len() {
            observed.push(next(&fired));
        }
        expected.extend(firings);
    }
    drop(feed);
    job.wait().unwrap();
    // The end of input brings the final watermark, which fires the last timer.
    observed.extend(fired.try_iter());
    expected.push((196, MAX_WATERMARK));
    assert_eq!(observed, expected);
}
