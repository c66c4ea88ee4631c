//! Window joins, co-groups and interval joins with exact outputs.

mod event_support;

use event_support::{Ev, channel_sink, fed, next, r, sorted, timed, w, with_ts};
use fjord::joins::IntervalJoinContext;
use fjord::windows::{
    CountTrigger, EventTimeSessionWindows, SlidingEventTimeWindows, TimeEvictor,
    TumblingEventTimeWindows,
};
use fjord::{OutputTag, StreamExecutionEnvironment};
use std::time::Duration;

type Rec = (String, i64, i64);

fn env() -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Left: a@1(1) a@4(2) b@5(3) a@12(4); right: a@2(10) a@13(20) b@19(30).
fn inputs(env: &StreamExecutionEnvironment) -> (fjord::DataStream<Rec>, fjord::DataStream<Rec>) {
    let left = timed(
        env,
        vec![
            r("a", 1, 1),
            r("a", 4, 2),
            r("b", 5, 3),
            r("a", 12, 4),
            w(100),
        ],
    );
    let right = timed(
        env,
        vec![r("a", 2, 10), r("a", 13, 20), r("b", 19, 30), w(100)],
    );
    (left, right)
}

#[test]
fn tumbling_window_join_pairs_within_the_same_window() {
    let env = env();
    let (left, right) = inputs(&env);
    let out = left
        .join(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .apply(|a: Rec, b: Rec| (a.0, a.2, b.2))
        .collect();
    env.execute("join").unwrap();
    // b@5 and b@19 are in different windows: no pair.
    assert_eq!(
        sorted(out.values()),
        vec![
            ("a".into(), 1, 10),
            ("a".into(), 2, 10),
            ("a".into(), 4, 20)
        ]
    );
}

#[test]
fn sliding_and_session_window_joins() {
    let env = env();
    let (left, right) = inputs(&env);
    let sliding = left
        .join(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(SlidingEventTimeWindows::of(ms(10), ms(5)))
        .apply(|a: Rec, b: Rec| (a.2, b.2))
        .collect();
    let session = left
        .join(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(EventTimeSessionWindows::with_gap(ms(8)))
        .apply(|a: Rec, b: Rec| (a.2, b.2))
        .collect();
    env.execute("joins").unwrap();
    // Sliding [0,10) (1,10)(2,10); [-5,5): (1,10)(2,10); [5,15): (4,20); [10,20): (4,20) and
    // b: [15,25) has only b@19; [10,20) has b@19 only; [5,15) has b@5 only.
    assert_eq!(
        sorted(sliding.values()),
        vec![(1, 10), (1, 10), (2, 10), (2, 10), (4, 20), (4, 20)]
    );
    // Sessions of a: 1,2,4 -> [1,12) and 12 -> touches 12: [1,21) includes 12, 13: one session.
    // b: 5 -> [5,13), 19 -> [19,27): separate.
    assert_eq!(
        sorted(session.values()),
        vec![(1, 10), (1, 20), (2, 10), (2, 20), (4, 10), (4, 20)]
    );
}

#[test]
fn co_group_sees_both_sides_even_if_one_is_empty() {
    let env = env();
    let (left, right) = inputs(&env);
    let out = left
        .co_group(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .co_group(
            |k: &String, a: Vec<Rec>, b: Vec<Rec>, out: &mut Vec<(String, usize, usize)>| {
                out.push((k.clone(), a.len(), b.len()))
            },
        )
        .collect();
    env.execute("cogroup").unwrap();
    assert_eq!(
        sorted(out.values()),
        vec![
            ("a".into(), 1, 1),
            ("a".into(), 2, 1),
            ("b".into(), 0, 1),
            ("b".into(), 1, 0)
        ]
    );
}

fn interval(lower: i64, upper: i64, lower_ex: bool, upper_ex: bool) -> Vec<(i64, i64)> {
    let env = env();
    let left = timed(&env, vec![r("k", 10, 10), w(100)]).key_by(|e: &Rec| e.0.clone());
    let right = timed(
        &env,
        (5..=15).map(|t| r("k", t, t)).chain([w(100)]).collect(),
    )
    .key_by(|e: &Rec| e.0.clone());
    let mut joined = left.interval_join(&right).between_millis(lower, upper);
    if lower_ex {
        joined = joined.lower_bound_exclusive();
    }
    if upper_ex {
        joined = joined.upper_bound_exclusive();
    }
    let out = joined
        .process(
            |a: &Rec, b: &Rec, ctx: &mut IntervalJoinContext<'_, (i64, i64)>| {
                assert_eq!(ctx.left_timestamp(), a.1);
                ctx.collect((b.1, a.1.max(b.1)))
            },
        )
        .collect();
    env.execute("interval").unwrap();
    sorted(out.values())
        .into_iter()
        .map(|(b, _)| (10, b))
        .collect()
}

/// (lower, upper, lower exclusive, upper exclusive).
type Bounds = (i64, i64, bool, bool);

#[test]
fn interval_join_bounds_table() {
    // bounds -> right timestamps joined with left@10
    let cases: Vec<(Bounds, Vec<i64>)> = vec![
        ((-2, 1, false, false), vec![8, 9, 10, 11]),
        ((-2, 1, true, false), vec![9, 10, 11]),
        ((-2, 1, false, true), vec![8, 9, 10]),
        ((-2, 1, true, true), vec![9, 10]),
        ((0, 0, false, false), vec![10]),
        ((2, 4, false, false), vec![12, 13, 14]),
        ((-5, -3, false, false), vec![5, 6, 7]),
    ];
    for ((lo, hi, lx, ux), expected) in cases {
        let got: Vec<i64> = interval(lo, hi, lx, ux)
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        assert_eq!(got, expected, "bounds [{lo}, {hi}] exclusive ({lx}, {ux})");
    }
}

#[test]
fn interval_join_result_timestamp_is_the_larger_one_and_late_elements_are_dropped() {
    let env = env();
    let left = timed(&env, vec![r("k", 10, 1), w(50), r("k", 20, 2), w(100)])
        .key_by(|e: &Rec| e.0.clone());
    let right = timed(&env, vec![r("k", 12, 1), w(50), r("k", 21, 2), w(100)])
        .key_by(|e: &Rec| e.0.clone());
    let out = left
        .interval_join(&right)
        .between_millis(-5, 5)
        .process(
            |a: &Rec, b: &Rec, ctx: &mut IntervalJoinContext<'_, (i64, i64, i64)>| {
                let ts = ctx.left_timestamp().max(ctx.right_timestamp());
                ctx.collect((a.2, b.2, ts))
            },
        )
        .collect();
    env.execute("interval late").unwrap();
    // 20 and 21 arrive behind the watermark 50 of their own input: dropped, as in Flink.
    assert_eq!(out.values(), vec![(1, 1, 12)]);
}

/// Flink's `sideOutputLeftLateData` / `sideOutputRightLateData`: elements behind the joined
/// watermark go to their side's output with their timestamps instead of being dropped; the
/// join function's context tells the pair's timestamp and emits to side outputs. Fed step by
/// step so the watermark each element meets is known, not raced.
#[test]
fn interval_join_late_elements_go_to_side_outputs_and_the_function_can_emit_to_one() {
    let env = env();
    let (left, feed_left) = fed(&env, "left");
    let (right, feed_right) = fed(&env, "right");
    let late_left = OutputTag::<Rec>::new("late-left");
    let late_right = OutputTag::<Rec>::new("late-right");
    let pairs = OutputTag::<(i64, i64)>::new("pairs");
    let pairs_tag = pairs.clone();
    let joined = left
        .key_by(|e: &Rec| e.0.clone())
        .interval_join(&right.key_by(|e: &Rec| e.0.clone()))
        .between_millis(-5, 5)
        .side_output_left_late_data(&late_left)
        .side_output_right_late_data(&late_right)
        .process(
            move |a: &Rec, b: &Rec, ctx: &mut IntervalJoinContext<'_, (i64, i64, i64)>| {
                let ts = ctx.timestamp();
                ctx.output(&pairs_tag, (a.2, b.2));
                ctx.collect((a.2, b.2, ts))
            },
        );
    let main = channel_sink(&with_ts(&joined.stream()));
    let side = channel_sink(&with_ts(&joined.get_side_output(&pairs)));
    let late_l = channel_sink(&with_ts(&joined.get_side_output(&late_left)));
    let late_r = channel_sink(&with_ts(&joined.get_side_output(&late_right)));
    let job = env.execute_async("interval join late data").unwrap();

    feed_left.send(r("k", 10, 1)).unwrap();
    feed_right.send(r("k", 12, 1)).unwrap();
    assert_eq!(next(&main), ((1, 1, 12), Some(12)), "the larger timestamp");
    assert_eq!(next(&side), ((1, 1), Some(12)), "side records carry it too");
    // Both watermarks, then a pair behind them on each input: once it is joined, both
    // inputs' watermark 50 has been processed (each input is in order).
    for feed in [&feed_left, &feed_right] {
        feed.send(w(50)).unwrap();
    }
    feed_left.send(r("k", 60, 2)).unwrap();
    feed_right.send(r("k", 61, 2)).unwrap();
    assert_eq!(next(&main), ((2, 2, 61), Some(61)));
    assert_eq!(next(&side), ((2, 2), Some(61)));
    // 20 and 21 are behind the watermark 50: to the side outputs, not joined, not dropped.
    feed_left.send(r("k", 20, 3)).unwrap();
    feed_right.send(r("k", 21, 4)).unwrap();
    assert_eq!(next(&late_l), (("k".to_string(), 20, 3), Some(20)));
    assert_eq!(next(&late_r), (("k".to_string(), 21, 4), Some(21)));
    drop((feed_left, feed_right));
    job.wait().unwrap();
    assert!(main.try_recv().is_err(), "late elements are not joined");
    assert!(side.try_recv().is_err());
}

/// A window join's trigger replaces the assigner's: with `CountTrigger::of(3)` a window
/// fires when its key has three elements of either input, and a window that never gets
/// three never fires (the event-time trigger would have fired both at the watermark).
#[test]
fn a_window_join_with_a_count_trigger_fires_on_the_count_not_the_watermark() {
    let env = env();
    let left = timed(&env, vec![r("a", 1, 1), r("a", 4, 2), r("b", 5, 3), w(100)]);
    let right = timed(
        &env,
        vec![r("a", 2, 10), r("b", 6, 30), r("a", 13, 20), w(100)],
    );
    let out = left
        .join(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .trigger(CountTrigger::of(3))
        .apply(|a: Rec, b: Rec| (a.0, a.1, b.1))
        .collect();
    env.execute("count-triggered join").unwrap();
    // a in [0, 10): 1, 4 and 2 -> one firing with both pairs; b in [0, 10) and a in [10, 20)
    // have fewer than three elements.
    assert_eq!(
        sorted(out.values()),
        vec![("a".into(), 1, 2), ("a".into(), 4, 2)]
    );
}

/// A window join's evictor runs over the elements of both inputs before the join function:
/// `TimeEvictor::of(3ms)` keeps those within 3 ms of the window's latest element.
#[test]
fn a_window_join_evictor_removes_elements_of_either_input_before_the_join() {
    let env = env();
    let (left, right) = inputs(&env);
    let out = left
        .join(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .evictor(TimeEvictor::of(ms(3)))
        .apply(|a: Rec, b: Rec| (a.0, a.1, b.1))
        .collect();
    env.execute("evicting join").unwrap();
    // a in [0, 10): left 1 and 4, right 2; the latest is 4, so 1 (<= 4 - 3) is evicted.
    // a in [10, 20): left 12, right 13.
    assert_eq!(
        sorted(out.values()),
        vec![("a".into(), 4, 2), ("a".into(), 12, 13)]
    );
}

/// Allowed lateness on a window join: a late element within the lateness fires its window
/// again with every pair so far (as Flink's `WithWindow.allowedLateness`), one beyond it is
/// dropped; a flat join function emits any number of results per pair.
#[test]
fn a_window_join_with_allowed_lateness_fires_again_for_late_elements_and_flat_apply_emits_many() {
    let env = env();
    let (left, feed_left) = fed(&env, "left");
    let (right, feed_right) = fed(&env, "right");
    let out = left
        .join(&right)
        .where_key(|e: &Rec| e.0.clone())
        .equal_to(|e: &Rec| e.0.clone())
        .window(TumblingEventTimeWindows::of(ms(10)))
        .allowed_lateness(ms(15))
        .flat_apply(|a: Rec, b: Rec, out: &mut Vec<(i64, i64)>| {
            out.push((a.1, b.1));
            if a.1 > 3 {
                out.push((a.1 * 100, b.1));
            }
        });
    let results = channel_sink(&with_ts(&out.stream()));
    let job = env.execute_async("late join").unwrap();
    let both = |e: Ev| {
        for feed in [&feed_left, &feed_right] {
            feed.send(e.clone()).unwrap();
        }
    };
    feed_left.send(r("a", 1, 1)).unwrap();
    feed_right.send(r("a", 2, 2)).unwrap();
    both(w(20));
    assert_eq!(next(&results), ((1, 2), Some(9)), "fired at watermark 20");
    // Late for [0, 10) (watermark 20 >= 10) but within 15 ms of lateness: fires again.
    feed_left.send(r("a", 5, 3)).unwrap();
    let mut again: Vec<_> = (0..3).map(|_| next(&results)).collect();
    again.sort();
    assert_eq!(
        again,
        vec![((1, 2), Some(9)), ((5, 2), Some(9)), ((500, 2), Some(9))]
    );
    // Beyond the lateness (watermark 30 >= 10 + 15): dropped. A pair in [20, 30) fires once the
    // join has watermark 30 from both inputs, so the late element is sent after that (the two
    // inputs are read concurrently: without the fence it could overtake the right input's
    // watermark and still be within the lateness).
    feed_left.send(r("a", 21, 4)).unwrap();
    feed_right.send(r("a", 22, 4)).unwrap();
    both(w(30));
    let mut fence = vec![next(&results), next(&results)];
    fence.sort();
    assert_eq!(fence, vec![((21, 22), Some(29)), ((2100, 22), Some(29))]);
    // The next window's pair is the next result.
    feed_left.send(r("a", 6, 4)).unwrap();
    feed_left.send(r("a", 41, 5)).unwrap();
    feed_right.send(r("a", 42, 6)).unwrap();
    both(w(60));
    let mut next_window = vec![next(&results), next(&results)];
    next_window.sort();
    assert_eq!(
        next_window,
        vec![((41, 42), Some(49)), ((4100, 42), Some(49))]
    );
    drop((feed_left, feed_right));
    job.wait().unwrap();
    assert!(
        results.try_recv().is_err(),
        "the element beyond the lateness joined nothing"
    );
}

/// One side of [`interval_join_with_repeated_timestamps_joins_every_pair_in_bounds`]: 300
/// elements of 3 keys from `seed`, several per timestamp (timestamps advance by 5 ms every
/// 7 elements), values unique per side, and a watermark 1 ms behind the latest timestamp
/// every 10 elements (no element is ever late).
fn repeated_timestamps(seed: u64, value_base: i64) -> Vec<Ev> {
    let mut state = seed;
    let mut events = Vec::new();
    for i in 0..300_i64 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = ["a", "b", "c"][(state >> 33) as usize % 3];
        let ts = i / 7 * 5;
        events.push(r(key, ts, value_base + i));
        if i % 10 == 9 {
            events.push(w(ts - 1));
        }
    }
    events.push(w(10_000));
    events
}

#[test]
fn interval_join_with_repeated_timestamps_joins_every_pair_in_bounds() {
    // Each side's buffer holds several elements per timestamp and registers one cleanup timer
    // per timestamp (when the timestamp's entry is made); every pair within the bounds is
    // joined exactly once, whatever the bounds' signs.
    let left = repeated_timestamps(7, 0);
    let right = repeated_timestamps(11, 1_000);
    let records = |events: &[Ev]| -> Vec<(String, i64, i64)> {
        events
            .iter()
            .filter_map(|e| match e {
                Ev::R(k, t, v) => Some((k.clone(), *t, *v)),
                Ev::W(_) => None,
            })
            .collect()
    };
    let (ls, rs) = (records(&left), records(&right));
    for (lower, upper) in [(-12, 8), (0, 0), (3, 17), (-20, -5)] {
        let env = env();
        let l = timed(&env, left.clone()).key_by(|e: &Rec| e.0.clone());
        let r = timed(&env, right.clone()).key_by(|e: &Rec| e.0.clone());
        let out = l
            .interval_join(&r)
            .between_millis(lower, upper)
            .process(
                |a: &Rec, b: &Rec, ctx: &mut IntervalJoinContext<'_, (i64, i64)>| {
                    ctx.collect((a.2, b.2))
                },
            )
            .collect();
        env.execute("interval repeated timestamps").unwrap();
        let mut expected: Vec<(i64, i64)> = ls
            .iter()
            .flat_map(|a| {
                rs.iter()
                    .filter(move |b| a.0 == b.0 && b.1 >= a.1 + lower && b.1 <= a.1 + upper)
                    .map(move |b| (a.2, b.2))
            })
            .collect();
        expected.sort();
        assert!(
            expected.len() > 100,
            "bounds [{lower}, {upper}]: {}",
            expected.len()
        );
        assert_eq!(sorted(out.values()), expected, "bounds [{lower}, {upper}]");
    }
}
