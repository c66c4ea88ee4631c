//! Windows: out-of-order event streams with known watermarks and exact outputs, late
//! firings, late side outputs and drops, merging sessions, count windows and evictors.

mod event_support;

use event_support::{r, timed, w};
use fjord::windows::{
    CountEvictor, CountTrigger, EventTimeSessionWindows, EventTimeTrigger, SlidingEventTimeWindows,
    TimeWindow, Trigger, TriggerContext, TriggerResult, TumblingEventTimeWindows, WindowAssigner,
    WindowContext,
};
use fjord::{AggregateFunction, DataStream, OutputTag, ProcessContext, StreamExecutionEnvironment};
use std::time::Duration;

type Rec = (String, i64, i64);

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Pairs every value with its timestamp.
fn with_ts<T: fjord::Data>(s: &DataStream<T>) -> DataStream<(T, Option<i64>)> {
    s.process(|v: T, ctx: &mut ProcessContext<'_, (T, Option<i64>)>| {
        let ts = ctx.timestamp();
        ctx.collect((v, ts))
    })
    .stream()
}

fn sum(a: Rec, b: Rec) -> Rec {
    (a.0, a.1.max(b.1), a.2 + b.2)
}

#[test]
fn tumbling_window_with_lateness_late_firings_and_late_side_output() {
    let env = env(1);
    let input = vec![
        r("a", 1, 1),
        r("a", 5, 2),
        r("a", 12, 3),
        r("b", 7, 100),
        r("a", 3, 4), // out of order, still on time
        w(9),         // fires [0,10): a=7, b=100
        r("a", 8, 5), // late but within 5 ms lateness: fires [0,10) again with 12
        w(14),        // [0,10) is cleaned up (9 + 5 <= 14)
        r("a", 2, 6), // too late: side output
        w(19),        // fires [10,20): a=3
        w(100),
    ];
    let late = OutputTag::<Rec>::new("late");
    let windowed = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .allowed_lateness(ms(5))
        .side_output_late_data(&late)
        .reduce(sum);
    let main = with_ts(&windowed.map(|e: Rec| (e.0, e.2)).stream()).collect();
    let side = windowed.get_side_output(&late).collect();
    let result = env.execute("tumbling").unwrap();
    let expected: Vec<((String, i64), Option<i64>)> = vec![
        (("a".into(), 7), Some(9)),
        (("b".into(), 100), Some(9)),
        (("a".into(), 12), Some(9)),
        (("a".into(), 3), Some(19)),
    ];
    assert_eq!(main.values(), expected);
    assert_eq!(side.values(), vec![("a".to_string(), 2, 6)]);
    assert_eq!(result.counter("Window(Reduce)", "numLateRecordsDropped"), 0);
}

#[test]
fn too_late_elements_are_dropped_and_counted() {
    let env = env(1);
    let input = vec![
        r("a", 1, 1),
        w(20),
        r("a", 3, 1),
        r("a", 9, 1),
        r("a", 25, 1),
        w(100),
    ];
    let out = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .reduce(sum)
        .map(|e: Rec| e.2)
        .collect();
    let result = env.execute("drops").unwrap();
    assert_eq!(out.values(), vec![1, 1]);
    assert_eq!(result.counter("Window(Reduce)", "numLateRecordsDropped"), 2);
}

#[test]
fn tumbling_windows_with_offset() {
    let env = env(1);
    let input = vec![
        r("a", 2, 1),
        r("a", 3, 1),
        r("a", 12, 1),
        r("a", 13, 1),
        w(100),
    ];
    let out = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of_with_offset(ms(10), ms(3)))
        .process(
            |_k: &String,
             ctx: &mut WindowContext<'_, TimeWindow, (i64, i64, usize)>,
             els: Vec<Rec>| {
                let w = *ctx.window();
                ctx.collect((w.start, w.end, els.len()))
            },
        )
        .collect();
    env.execute("offset").unwrap();
    assert_eq!(out.values(), vec![(-7, 3, 1), (3, 13, 2), (13, 23, 1)]);
}

#[derive(Clone)]
struct Count;

impl AggregateFunction<Rec, u64, u64> for Count {
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    fn add(&mut self, _: Rec, acc: u64) -> u64 {
        acc + 1
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

#[allow(clippy::ptr_arg)] // a ProcessWindowFunction receives `&K`, here `&String`
fn window_bounds(
    key: &String,
    ctx: &mut WindowContext<'_, TimeWindow, (String, i64, i64, u64)>,
    counts: Vec<u64>,
) {
    let w = *ctx.window();
    ctx.collect((key.clone(), w.start, w.end, counts[0]))
}

#[test]
fn sliding_windows_from_panes_match_the_general_operator() {
    // Pane-based (aggregate + process, default trigger) versus per-window (an explicit
    // trigger disables panes) must give the same windows in the same order.
    let input = || {
        vec![
            r("a", 1, 0),
            r("b", 4, 0),
            r("a", 7, 0),
            r("a", 6, 0),
            w(4), // fires windows ending at 5: [-5,5)
            r("a", 12, 0),
            r("a", 2, 0), // window [-5,5) fired: only in [0,10)
            w(14),
            r("a", 16, 0),
            r("a", 3, 0), // every window of 3 ended at 14: dropped
            w(100),
        ]
    };
    let run = |general: bool| {
        let env = env(2);
        let windowed = timed(&env, input())
            .key_by(|e: &Rec| e.0.clone())
            .window(SlidingEventTimeWindows::of(ms(10), ms(5)));
        let windowed = if general {
            windowed.trigger(fjord::windows::EventTimeTrigger)
        } else {
            windowed
        };
        let out = windowed
            .aggregate_with_process(Count, window_bounds)
            .collect();
        let result = env.execute("sliding").unwrap();
        let mut v = out.values();
        v.sort_by_key(|x| (x.2, x.0.clone()));
        (
            v,
            result.counter("Window(Aggregate)", "numLateRecordsDropped"),
        )
    };
    let expected: Vec<(String, i64, i64, u64)> = vec![
        ("a".into(), -5, 5, 1),
        ("b".into(), -5, 5, 1),
        ("a".into(), 0, 10, 4),
        ("b".into(), 0, 10, 1),
        ("a".into(), 5, 15, 3),
        ("a".into(), 10, 20, 2),
        ("a".into(), 15, 25, 1),
    ];
    assert_eq!(run(false), (expected.clone(), 1), "panes");
    assert_eq!(run(true), (expected, 1), "general operator");
}

/// 600 elements of 4 keys from a fixed seed: up to 80 ms out of order, pauses of 60 ms,
/// watermarks 25 ms behind the latest element now and then (so some elements are late).
fn shuffled_input() -> Vec<event_support::Ev> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut input = Vec::new();
    let mut max_ts = 0_i64;
    for i in 0..600_i64 {
        let key = ["a", "b", "c", "d"][next(4) as usize];
        let base = i / 3 * 2 + i / 97 * 60;
        let ts = (base - i64::try_from(next(80)).unwrap()).max(0);
        max_ts = max_ts.max(ts);
        input.push(r(key, ts, 1));
        if next(10) == 0 {
            input.push(w(max_ts - 25));
        }
    }
    input.push(w(10_000));
    input
}

/// [`EventTimeTrigger`](fjord::windows::EventTimeTrigger) behind a type the window operator
/// does not know: its timers go through the de-duplicating timer queue.
#[derive(Clone)]
struct OpaqueEventTimeTrigger;

impl<T, W: fjord::windows::Window> Trigger<T, W> for OpaqueEventTimeTrigger {
    fn on_element(
        &mut self,
        element: &T,
        timestamp: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, fjord::BoxError> {
        Trigger::<T, W>::on_element(&mut EventTimeTrigger, element, timestamp, window, ctx)
    }
    fn on_event_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, fjord::BoxError> {
        Trigger::<T, W>::on_event_time(&mut EventTimeTrigger, time, window, ctx)
    }
    fn on_processing_time(
        &mut self,
        time: i64,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<TriggerResult, fjord::BoxError> {
        Trigger::<T, W>::on_processing_time(&mut EventTimeTrigger, time, window, ctx)
    }
    fn clear(
        &mut self,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<(), fjord::BoxError> {
        Trigger::<T, W>::clear(&mut EventTimeTrigger, window, ctx)
    }
    fn can_merge(&self) -> bool {
        true
    }
    fn on_merge(
        &mut self,
        window: &W,
        ctx: &mut TriggerContext<'_, W>,
    ) -> Result<(), fjord::BoxError> {
        Trigger::<T, W>::on_merge(&mut EventTimeTrigger, window, ctx)
    }
}

/// The windows (key, start, end, count) of [`shuffled_input`] and the number of late elements
/// dropped, with `assigner` and `trigger` (the assigner's default without one), at p=2.
fn count_shuffled<A, X>(assigner: A, trigger: Option<X>) -> (Vec<(String, i64, i64, u64)>, u64)
where
    A: WindowAssigner<Rec, TimeWindow>,
    X: Trigger<Rec, TimeWindow> + Clone + Sync,
{
    let env = env(2);
    let windowed = timed(&env, shuffled_input())
        .key_by(|e: &Rec| e.0.clone())
        .window(assigner);
    let windowed = match trigger {
        Some(t) => windowed.trigger(t),
        None => windowed,
    };
    let out = windowed
        .aggregate_with_process(Count, window_bounds)
        .collect();
    let result = env.execute("shuffled").unwrap();
    let mut v = out.values();
    v.sort_by_key(|x| (x.2, x.0.clone()));
    (
        v,
        result.counter("Window(Aggregate)", "numLateRecordsDropped"),
    )
}

#[test]
fn tumbling_windows_without_timer_deduplication_match_the_deduplicating_queue() {
    // The default trigger without lateness lets the window operator skip the timers'
    // de-duplication and add most elements to their window in place, without calling the
    // trigger; the same trigger behind an unknown type takes the general path for both.
    let tumbling = || TumblingEventTimeWindows::of(ms(20));
    let deduplicated = count_shuffled(tumbling(), Some(OpaqueEventTimeTrigger));
    assert!(deduplicated.0.len() > 50, "{}", deduplicated.0.len());
    assert!(deduplicated.1 > 0, "some elements are late");
    assert_eq!(
        count_shuffled(tumbling(), None::<EventTimeTrigger>),
        deduplicated
    );
}

#[test]
fn session_windows_without_timer_deduplication_match_the_deduplicating_queue() {
    // Without lateness, session windows skip the timers' de-duplication too: the timer of a
    // window merged away stays queued and is ignored when it fires. Sessions that grow,
    // bridge two others and come out of order must give the same windows as with it.
    let sessions = || EventTimeSessionWindows::with_gap(ms(6));
    let deduplicated = count_shuffled(sessions(), Some(OpaqueEventTimeTrigger));
    assert!(deduplicated.0.len() > 30, "{}", deduplicated.0.len());
    assert!(
        deduplicated.0.iter().any(|w| w.3 >= 5),
        "some sessions merged many elements: {:?}",
        deduplicated.0
    );
    assert!(deduplicated.1 > 0, "some elements are late");
    assert_eq!(
        count_shuffled(sessions(), None::<EventTimeTrigger>),
        deduplicated
    );
}

#[test]
fn sliding_windows_from_panes_match_the_general_operator_on_shuffled_input() {
    // Each key's pending timer moves earlier and later: the pane operator (the default
    // trigger) and the general operator without timer de-duplication (`EventTimeTrigger`
    // given) must give the windows of the general operator with it (the opaque trigger).
    let sliding = || SlidingEventTimeWindows::of(ms(30), ms(10));
    let deduplicated = count_shuffled(sliding(), Some(OpaqueEventTimeTrigger));
    assert!(deduplicated.0.len() > 100, "{}", deduplicated.0.len());
    assert!(deduplicated.1 > 0, "some elements are late");
    assert_eq!(
        count_shuffled(sliding(), Some(EventTimeTrigger)),
        deduplicated
    );
    assert_eq!(
        count_shuffled(sliding(), None::<EventTimeTrigger>),
        deduplicated
    );
}

#[test]
fn sliding_window_with_non_dividing_slide_uses_gcd_panes() {
    let env = env(1);
    let input = vec![r("a", 0, 1), r("a", 4, 1), r("a", 9, 1), w(100)];
    let out = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(SlidingEventTimeWindows::of(ms(6), ms(4)))
        .aggregate_with_process(Count, window_bounds)
        .map(|x: (String, i64, i64, u64)| (x.1, x.2, x.3))
        .collect();
    env.execute("gcd").unwrap();
    assert_eq!(
        out.values(),
        vec![(-4, 2, 1), (0, 6, 2), (4, 10, 2), (8, 14, 1)]
    );
}

#[allow(clippy::ptr_arg)] // a ProcessWindowFunction receives `&K`, here `&String`
fn session_summary(
    key: &String,
    ctx: &mut WindowContext<'_, TimeWindow, (String, i64, i64, Vec<i64>)>,
    els: Vec<Rec>,
) {
    let w = *ctx.window();
    let mut ts: Vec<i64> = els.iter().map(|e| e.1).collect();
    ts.sort();
    ctx.collect((key.clone(), w.start, w.end, ts))
}

#[test]
fn session_windows_merge_table() {
    type Case = (
        &'static str,
        Vec<event_support::Ev>,
        Vec<(i64, i64, Vec<i64>)>,
    );
    let cases: Vec<Case> = vec![
        (
            "separate sessions",
            vec![r("a", 1, 0), r("a", 20, 0), w(100)],
            vec![(1, 11, vec![1]), (20, 30, vec![20])],
        ),
        (
            "adjacent windows merge",
            vec![r("a", 1, 0), r("a", 11, 0), w(100)],
            vec![(1, 21, vec![1, 11])],
        ),
        (
            "a late element bridges two sessions",
            vec![
                r("a", 1, 0),
                r("a", 5, 0),
                r("a", 30, 0),
                r("a", 12, 0),
                r("a", 25, 0),
                w(100),
            ],
            vec![(1, 22, vec![1, 5, 12]), (25, 40, vec![25, 30])],
        ),
        (
            "bridge merges three sessions",
            vec![
                r("a", 0, 0),
                r("a", 20, 0),
                r("a", 40, 0),
                r("a", 10, 0),
                r("a", 30, 0),
                w(100),
            ],
            vec![(0, 50, vec![0, 10, 20, 30, 40])],
        ),
        (
            "after the first session fired and was cleaned up, a behind-watermark element whose own window is not late starts a new session",
            vec![r("a", 0, 0), w(10), r("a", 8, 0), r("a", 15, 0), w(100)],
            vec![(0, 10, vec![0]), (8, 25, vec![8, 15])],
        ),
        (
            "an element whose session window is late is dropped",
            vec![r("a", 0, 0), w(30), r("a", 15, 0), w(100)],
            vec![(0, 10, vec![0])],
        ),
    ];
    for (name, input, expected) in cases {
        let env = env(1);
        let out = timed(&env, input)
            .key_by(|e: &Rec| e.0.clone())
            .window(EventTimeSessionWindows::with_gap(ms(10)))
            .process(session_summary)
            .map(|x: (String, i64, i64, Vec<i64>)| (x.1, x.2, x.3))
            .collect();
        env.execute("sessions").unwrap();
        assert_eq!(out.values(), expected, "case: {name}");
    }
}

#[test]
fn count_trigger_state_merges_with_session_windows() {
    // Gap 10 ms, CountTrigger::of(3): the counts of merged sessions add up (Flink's
    // `CountTrigger.onMerge` merges the partitioned count state), and a firing resets the
    // count of the merged window only.
    type Case = (&'static str, Vec<i64>, Vec<(i64, i64, Vec<i64>)>);
    let cases: Vec<Case> = vec![
        (
            "a bridge merges two sessions of one element each: 1 + 1 + 1",
            vec![1, 20, 10],
            vec![(1, 30, vec![1, 10, 20])],
        ),
        (
            "merged counts 2 + 1, then the bridging element makes 4",
            vec![1, 3, 20, 10],
            vec![(1, 30, vec![1, 3, 10, 20])],
        ),
        (
            "sessions that never merge keep their own counts and never fire",
            vec![1, 20, 2],
            vec![],
        ),
        (
            "a firing clears the count; later merges start from the cleared count",
            vec![1, 2, 3, 5, 30, 32, 14, 25],
            vec![(1, 13, vec![1, 2, 3]), (25, 42, vec![25, 30, 32])],
        ),
    ];
    for (name, times, expected) in cases {
        let env = env(1);
        let input = times.iter().map(|&t| r("a", t, 0)).collect();
        let out = timed(&env, input)
            .key_by(|e: &Rec| e.0.clone())
            .window(EventTimeSessionWindows::with_gap(ms(10)))
            .trigger(CountTrigger::of(3))
            .process(session_summary)
            .map(|x: (String, i64, i64, Vec<i64>)| (x.1, x.2, x.3))
            .collect();
        env.execute("count-triggered sessions").unwrap();
        assert_eq!(out.values(), expected, "case: {name}");
    }
}

#[test]
fn session_windows_with_dynamic_gap_and_incremental_reduce() {
    let env = env(1);
    // The gap is the record's value.
    let input = vec![
        r("a", 0, 5),
        r("a", 4, 20),
        r("a", 30, 1),
        r("b", 0, 1),
        w(100),
    ];
    let out = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(EventTimeSessionWindows::with_dynamic_gap(|e: &Rec| {
            Duration::from_millis(e.2 as u64)
        }))
        .reduce_with_process(
            sum,
            |k: &String,
             ctx: &mut WindowContext<'_, TimeWindow, (String, i64, i64, i64)>,
             v: Vec<Rec>| {
                let w = *ctx.window();
                ctx.collect((k.clone(), w.start, w.end, v[0].2))
            },
        )
        .collect();
    env.execute("dynamic").unwrap();
    let mut v = out.values();
    v.sort();
    // a@0 gap 5 -> [0,5); a@4 gap 20 -> [4,24) merges -> [0,24); a@30 gap 1 -> [30,31).
    assert_eq!(
        v,
        vec![
            ("a".into(), 0, 24, 25),
            ("a".into(), 30, 31, 1),
            ("b".into(), 0, 1, 1)
        ]
    );
}

#[test]
fn count_windows_tumbling_and_sliding() {
    let env = env(2);
    let values: Vec<(String, i64)> = (1..=7)
        .map(|i| ("a".to_string(), i))
        .chain([("b".to_string(), 10)])
        .collect();
    let s = env.from_collection(values).set_parallelism(1);
    let tumbling = s
        .key_by(|e: &(String, i64)| e.0.clone())
        .count_window(3)
        .reduce(|a: (String, i64), b: (String, i64)| (a.0, a.1 + b.1))
        .collect();
    let sliding = s
        .key_by(|e: &(String, i64)| e.0.clone())
        .count_window_sliding(3, 2)
        .reduce(|a: (String, i64), b: (String, i64)| (a.0, a.1 + b.1))
        .collect();
    env.execute("count").unwrap();
    assert_eq!(
        tumbling.values(),
        vec![("a".to_string(), 6), ("a".to_string(), 15)]
    );
    assert_eq!(
        sliding.values(),
        vec![
            ("a".to_string(), 3),
            ("a".to_string(), 9),
            ("a".to_string(), 15)
        ]
    );
}

#[test]
fn evictor_keeps_the_last_elements_of_a_time_window() {
    let env = env(1);
    let input = vec![
        r("a", 1, 1),
        r("a", 2, 2),
        r("a", 3, 3),
        r("a", 4, 4),
        w(100),
    ];
    let out = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .evictor(CountEvictor::of(2))
        .reduce(sum)
        .map(|e: Rec| e.2)
        .collect();
    env.execute("evictor").unwrap();
    assert_eq!(out.values(), vec![7]);
}

#[test]
fn window_all_runs_at_parallelism_one() {
    let env = env(2);
    let input = vec![r("a", 1, 1), r("b", 2, 2), r("c", 12, 4), w(100)];
    let out = timed(&env, input)
        .window_all(TumblingEventTimeWindows::of(ms(10)))
        .process(
            |_: &(), ctx: &mut WindowContext<'_, TimeWindow, (i64, i64)>, els: Vec<Rec>| {
                let start = ctx.window().start;
                ctx.collect((start, els.iter().map(|e| e.2).sum()))
            },
        )
        .collect();
    let plan = env.get_execution_plan().unwrap();
    env.execute("all").unwrap();
    let mut v = out.values();
    v.sort();
    assert_eq!(v, vec![(0, 3), (10, 4)]);
    assert!(
        serde_json::to_string(&plan)
            .unwrap()
            .contains("Window(Process)")
    );
}

#[test]
fn event_time_windows_need_timestamps() {
    let env = env(1);
    env.from_collection(vec![1i64])
        .key_by(|x: &i64| *x)
        .window(TumblingEventTimeWindows::of(ms(10)))
        .reduce(|a: i64, b: i64| a + b)
        .collect();
    let err = env.execute("no timestamps").unwrap_err().to_string();
    assert!(err.contains("record without timestamp"), "{err}");
}

#[test]
fn process_window_functions_keep_per_window_and_global_state() {
    use fjord::state::ValueStateDescriptor;
    // Same input as the lateness test: [0,10) of key a fires on time and again late.
    let env = env(1);
    let input = vec![
        r("a", 1, 1),
        r("a", 5, 2),
        r("a", 12, 3),
        r("b", 7, 100),
        w(9),
        r("a", 8, 5),
        w(14),
        w(19),
        w(100),
    ];
    let out = timed(&env, input)
        .key_by(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .allowed_lateness(ms(5))
        .process(
            |key: &String,
             ctx: &mut WindowContext<'_, TimeWindow, (String, i64, u32, u32)>,
             _els: Vec<Rec>| {
                // Firings of this window (per window) and of all windows of the key (global).
                let firings = ctx
                    .window_state()
                    .unwrap()
                    .get_state(&ValueStateDescriptor::<u32>::new("firings"))
                    .unwrap();
                let total = ctx
                    .global_state()
                    .unwrap()
                    .get_state(&ValueStateDescriptor::<u32>::new("total"))
                    .unwrap();
                let n = firings.value().unwrap_or(0) + 1;
                firings.update(n);
                let t = total.value().unwrap_or(0) + 1;
                total.update(t);
                let start = ctx.window().start;
                ctx.collect((key.clone(), start, n, t));
            },
        )
        .collect();
    env.execute("window state").unwrap();
    assert_eq!(
        out.values(),
        vec![
            ("a".to_string(), 0, 1, 1),
            ("b".to_string(), 0, 1, 1),
            ("a".to_string(), 0, 2, 2), // the late firing of the same window
            ("a".to_string(), 10, 1, 3), // a new window: its own count starts at 1
        ]
    );
}
