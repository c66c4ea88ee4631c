//! Window joins, co-groups and interval joins with exact outputs.

mod event_support;

use event_support::{r, sorted, timed, w};
use fjord::StreamExecutionEnvironment;
use fjord::joins::IntervalJoinContext;
use fjord::windows::{EventTimeSessionWindows, SlidingEventTimeWindows, TumblingEventTimeWindows};
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
