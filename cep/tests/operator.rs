//! The CEP operator on the embedded mini-cluster: event-time buffering, late data, timeouts
//! to a side output, and NFA state that survives a savepoint restored at another parallelism.

use fjord::sources::GeneratorSource;
use fjord::time::WatermarkStrategy;
use fjord::{DataStream, FjordError, JobClient, OutputTag, StreamExecutionEnvironment};
use fjord_cep::{CEP, Pattern};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `(key, value, event time)`.
type Ev = (String, i64, i64);

fn ev(k: &str, v: i64, ts: i64) -> Ev {
    (k.to_string(), v, ts)
}

#[test]
fn matches_in_event_time_with_late_data_and_timeouts() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    // Watermark = the timestamp of each record minus five; records within those 5 ms may
    // arrive out of order and are matched in timestamp order.
    let input = env
        .from_collection(vec![
            ev("u", 1, 10),
            ev("v", 1, 11),
            ev("u", 2, 13), // a 2 at 13 comes before the 1 at 12 below
            ev("u", 1, 12),
            ev("u", 9, 40),  // watermark 35: u's events are matched
            ev("u", 1, 5),   // late: behind the watermark
            ev("v", 2, 100), // v's partial match from 11 timed out at 11 + 20 = 31
        ])
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_punctuated(|e: &Ev, _| Some(e.2 - 5))
                .with_timestamp_assigner(|e: &Ev, _| e.2),
        )
        .set_parallelism(1)
        .stream();
    let keyed = input.key_by(|e: &Ev| e.0.clone());
    let pattern = Pattern::begin("one")
        .where_(|e: &Ev| e.1 == 1)
        .next("two")
        .where_(|e: &Ev| e.1 == 2)
        .within(Duration::from_millis(20));
    let timeouts = OutputTag::<(String, i64, i64)>::new("timeouts");
    let late = OutputTag::<Ev>::new("late");
    let matches = CEP::pattern(&keyed, pattern)
        .unwrap()
        .side_output_late_data(&late)
        .select_with_timeout(
            &timeouts,
            |m, at| {
                (
                    m.first("one").unwrap().0.clone(),
                    m.first("one").unwrap().2,
                    at,
                )
            },
            |m| {
                let (one, two) = (m.first("one").unwrap(), m.first("two").unwrap());
                (one.0.clone(), one.2, two.2)
            },
        );
    let timed_out = matches.get_side_output(&timeouts).collect();
    let late_out = matches.get_side_output(&late).collect();
    let out = matches.collect();
    env.execute("cep in event time").unwrap();
    // u: 1@10 and 1@12 are both followed directly by 2@13 only in timestamp order 12, 13.
    assert_eq!(out.values(), vec![("u".to_string(), 12, 13)]);
    let mut t = timed_out.values();
    t.sort();
    // u's 1@10 is followed by 1@12 (strict contiguity broken); it dies without timing out.
    assert_eq!(t, vec![("v".to_string(), 11, 31)]);
    assert_eq!(late_out.values(), vec![ev("u", 1, 5)]);
}

#[test]
fn a_non_keyed_stream_is_matched_as_one_key() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let input = env
        .from_collection(vec![ev("u", 1, 1), ev("v", 2, 2), ev("u", 2, 3)])
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_punctuated(|e: &Ev, _| Some(e.2 - 1))
                .with_timestamp_assigner(|e: &Ev, _| e.2),
        )
        .stream();
    let pattern = Pattern::begin("one")
        .where_(|e: &Ev| e.1 == 1)
        .next("two")
        .where_(|e: &Ev| e.1 == 2);
    let out = CEP::pattern_all(&input, pattern)
        .unwrap()
        .select(|m| {
            (
                m.first("one").unwrap().0.clone(),
                m.first("two").unwrap().0.clone(),
            )
        })
        .collect();
    env.execute("cep on a non-keyed stream").unwrap();
    // u's 1 and v's 2 are contiguous when the stream is not keyed.
    assert_eq!(out.values(), vec![("u".to_string(), "v".to_string())]);
}

#[test]
fn a_malformed_pattern_is_refused_with_a_message() {
    let env = StreamExecutionEnvironment::new();
    let keyed = env
        .from_collection(vec![ev("u", 1, 1)])
        .key_by(|e: &Ev| e.0.clone());
    let err = CEP::pattern(&keyed, Pattern::begin("a").followed_by("a"))
        .err()
        .expect("duplicate names are refused");
    assert!(
        err.to_string().contains("duplicate pattern name 'a'"),
        "{err}"
    );
}

/// Record `i` of the savepoint job: 7 keys, values cycling so that "a b b" patterns appear.
fn record(i: u64) -> (u64, u64, i64) {
    (i % 7, (i / 7) % 5, i as i64)
}

/// The savepoint job: "value 0, then two of value 1 or 2 within 60 ms", one match
/// `(key, first ts, last ts)` per match.
fn job(
    env: &StreamExecutionEnvironment,
    records: u64,
    rate: f64,
) -> (DataStream<(u64, i64, i64)>, Arc<AtomicUsize>) {
    let input = env
        .from_source(
            GeneratorSource::new(Some(records), record).with_rate(rate),
            "events",
        )
        .uid("events")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_punctuated(|e: &(u64, u64, i64), _| Some(e.2 - 1))
                .with_timestamp_assigner(|e: &(u64, u64, i64), _| e.2),
        )
        .set_parallelism(1)
        .stream();
    let keyed = input.key_by(|e: &(u64, u64, i64)| e.0);
    let pattern = Pattern::begin("a")
        .where_(|e: &(u64, u64, i64)| e.1 == 0)
        .followed_by("b")
        .where_(|e: &(u64, u64, i64)| e.1 == 1 || e.1 == 2)
        .times(2)
        .within(Duration::from_millis(60));
    let matches = CEP::pattern(&keyed, pattern)
        .unwrap()
        .select(|m| {
            let a = m.first("a").unwrap();
            let b = m.get("b").unwrap();
            (a.0, a.2, b[b.len() - 1].2)
        })
        .uid("cep")
        .stream();
    let progress = Arc::new(AtomicUsize::new(0));
    let counter = progress.clone();
    matches.for_each(move |_: (u64, i64, i64)| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (matches, progress)
}

fn savepoint_and_cancel(
    client: JobClient,
    dir: &std::path::Path,
    ready: impl Fn() -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "the job made no progress");
        std::thread::yield_now();
    }
    let url = format!("file://{}", dir.display());
    let savepoint = loop {
        match client.trigger_savepoint(&url) {
            Ok(p) => break p,
            Err(e) if Instant::now() < deadline && e.to_string().contains("not running") => {
                std::thread::yield_now()
            }
            Err(e) => panic!("{e}"),
        }
    };
    client.cancel();
    let end = client.wait();
    assert!(matches!(end, Err(FjordError::Cancelled)), "{end:?}");
    savepoint
}

#[test]
fn nfa_state_survives_a_savepoint_restored_at_another_parallelism() {
    let records = 6_000;
    // The expected matches: one uninterrupted run.
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let (matches, _) = job(&env, records, 1e9);
    let expected_out = matches.collect();
    env.execute("uninterrupted").unwrap();
    let expected: BTreeSet<_> = expected_out.values().into_iter().collect();
    assert!(
        expected.len() > 100,
        "the input makes matches: {}",
        expected.len()
    );

    // Savepoint mid-stream at parallelism 2, restore at parallelism 3.
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let (matches, progress) = job(&env, records, 3_000.0);
    let first_out = matches.collect();
    let savepoint = savepoint_and_cancel(env.execute_async("first").unwrap(), dir.path(), || {
        progress.load(Ordering::SeqCst) >= 20
    });
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3);
    env.restore_from(&savepoint, false);
    let (matches, _) = job(&env, records, 1e9);
    let second_out = matches.collect();
    env.execute("restored").unwrap();
    let first: BTreeSet<_> = first_out.values().into_iter().collect();
    let second: BTreeSet<_> = second_out.values().into_iter().collect();
    assert!(!first.is_empty() && !second.is_empty());
    let all: BTreeSet<_> = first.union(&second).cloned().collect();
    // A match whose partial match was in flight at the savepoint is only found if the
    // restored NFA state carried it over.
    assert_eq!(all, expected);
}
