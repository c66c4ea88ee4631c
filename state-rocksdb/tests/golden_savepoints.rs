//! Savepoints written before window contents, pane accumulators and rolling aggregates moved
//! into the keyed state backend (format 1 of these operators: their contents in the operator's
//! own part of each key group) restore into both backends, at other parallelisms, and the job
//! ends with the results computed directly from the input.
//!
//! `tests/golden/v1-operators/` was written by
//! `write_golden_savepoint_with_the_code_under_test` (ignored) run against commit d42687a, the
//! last one with format 1:
//!
//! ```text
//! git checkout d42687a -- engine/src state-rocksdb/src
//! FJORD_WRITE_GOLDEN=1 cargo test -p fjord-rocksdb --test golden_savepoints -- --ignored
//! git checkout HEAD -- engine/src state-rocksdb/src
//! ```

use fjord::sinks::CollectedOutput;
use fjord::sources::GeneratorSource;
use fjord::state::StateBackendKind;
use fjord::time::WatermarkStrategy;
use fjord::windows::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    WindowContext,
};
use fjord::{AggregateFunction, FjordError, StreamExecutionEnvironment};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEYS: u64 = 7;
const RECORDS: u64 = 30_000;

fn event_time(i: u64) -> i64 {
    (i + 2000 * (i / 3000)) as i64
}

/// (operator, key, window end or 0, value): every result of the job in one type.
type Row = (String, u64, i64, u64);

#[derive(Clone)]
struct Sum;

impl AggregateFunction<(u64, u64), u64, u64> for Sum {
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    fn add(&mut self, v: (u64, u64), acc: u64) -> u64 {
        acc + v.1
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

struct Outputs {
    progress: Arc<AtomicUsize>,
    rows: Vec<CollectedOutput<Row>>,
}

impl Outputs {
    fn rows(&self) -> Vec<Row> {
        self.rows.iter().flat_map(|c| c.values()).collect()
    }
}

fn job(env: &StreamExecutionEnvironment, rate: f64) -> Outputs {
    let input = env
        .from_source(
            GeneratorSource::new(Some(RECORDS), |i| (i % KEYS, i)).with_rate(rate),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &(u64, u64), _| event_time(e.1)),
        )
        .set_parallelism(1)
        .key_by(|e: &(u64, u64)| e.0);
    let tumbling = input
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .process(
            |k: &u64, ctx: &mut WindowContext<'_, TimeWindow, Row>, els: Vec<(u64, u64)>| {
                let end = ctx.window().end;
                ctx.collect(("tumbling".into(), *k, end, els.iter().map(|e| e.1).sum()));
            },
        )
        .uid("tumbling");
    let progress = Arc::new(AtomicUsize::new(0));
    let counter = progress.clone();
    tumbling.for_each(move |_: Row| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let sliding = input
        .window(SlidingEventTimeWindows::of(
            Duration::from_secs(2),
            Duration::from_millis(500),
        ))
        .aggregate_with_process(
            Sum,
            |k: &u64, ctx: &mut WindowContext<'_, TimeWindow, Row>, r: Vec<u64>| {
                let end = ctx.window().end;
                ctx.collect(("sliding".into(), *k, end, r[0]));
            },
        )
        .uid("sliding");
    let sessions = input
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            300,
        )))
        .aggregate_with_process(
            Sum,
            |k: &u64, ctx: &mut WindowContext<'_, TimeWindow, Row>, r: Vec<u64>| {
                let end = ctx.window().end;
                ctx.collect(("sessions".into(), *k, end, r[0]));
            },
        )
        .uid("sessions");
    let rolling = input
        .sum::<1>()
        .uid("rolling")
        .map(|(k, s): (u64, u64)| ("rolling".to_string(), k, 0i64, s));
    Outputs {
        progress,
        rows: vec![
            tumbling.collect(),
            sliding.collect(),
            sessions.collect(),
            rolling.collect(),
        ],
    }
}

/// The results computed directly from the input.
fn expected() -> BTreeSet<Row> {
    let mut out = BTreeSet::new();
    let mut tumbling: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut sliding: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    let mut sessions: BTreeMap<u64, Vec<(i64, i64, u64)>> = BTreeMap::new();
    let mut rolling: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..RECORDS {
        let (k, ts) = (i % KEYS, event_time(i));
        *tumbling.entry((k, (ts / 1000 + 1) * 1000)).or_default() += i;
        let mut end = (ts / 500 + 1) * 500;
        while end - 2000 <= ts {
            *sliding.entry((k, end)).or_default() += i;
            end += 500;
        }
        let s = sessions.entry(k).or_default();
        match s.last_mut() {
            Some((_, last_end, sum)) if ts <= *last_end => {
                *last_end = ts + 300;
                *sum += i;
            }
            _ => s.push((ts, ts + 300, i)),
        }
        let r = rolling.entry(k).or_default();
        *r += i;
        out.insert(("rolling".to_string(), k, 0, *r));
    }
    out.extend(
        tumbling
            .into_iter()
            .map(|((k, e), s)| ("tumbling".to_string(), k, e, s)),
    );
    out.extend(
        sliding
            .into_iter()
            .map(|((k, e), s)| ("sliding".to_string(), k, e, s)),
    );
    for (k, s) in sessions {
        out.extend(
            s.into_iter()
                .map(|(_, end, sum)| ("sessions".to_string(), k, end, sum)),
        );
    }
    out
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/v1-operators")
}

/// Writes the golden savepoint (run against the commit named in the module docs).
#[test]
#[ignore = "writes tests/golden with the code under test; see the module docs"]
fn write_golden_savepoint_with_the_code_under_test() {
    assert!(
        std::env::var("FJORD_WRITE_GOLDEN").is_ok(),
        "set FJORD_WRITE_GOLDEN=1 to overwrite tests/golden"
    );
    let dir = golden_dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.set_state_backend(StateBackendKind::Heap);
    let out = job(&env, 20_000.0);
    let client = env.execute_async("golden").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while out.progress.load(Ordering::SeqCst) < 4 * KEYS as usize {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::yield_now();
    }
    let savepoint = client
        .trigger_savepoint(&format!("file://{}", dir.join("savepoint").display()))
        .unwrap();
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
    // The results emitted before the savepoint was taken (and possibly a few after it,
    // before the cancellation: the restored job emits those again, identically).
    let before: Vec<Row> = out.rows();
    std::fs::write(
        dir.join("before.bin"),
        fjord::encoding::to_vec(&before).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("savepoint.txt"), &savepoint).unwrap();
}

/// The savepoint's directory in this checkout.
fn golden_savepoint() -> String {
    let written = std::fs::read_to_string(golden_dir().join("savepoint.txt")).unwrap();
    let name = written
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    format!(
        "file://{}",
        golden_dir().join("savepoint").join(name).display()
    )
}

fn restore_golden(kind: &str, parallelism: usize) {
    fjord_rocksdb::register();
    let local = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env.set_state_backend(match kind {
        "heap" => StateBackendKind::Heap,
        _ => StateBackendKind::RocksDb {
            dir: Some(local.path().to_path_buf()),
        },
    });
    env.restore_from(&golden_savepoint(), false);
    let out = job(&env, 1e9);
    env.execute("restored golden").unwrap();
    let before: Vec<Row> =
        fjord::encoding::from_slice(&std::fs::read(golden_dir().join("before.bin")).unwrap())
            .unwrap();
    let after = out.rows();
    assert!(!before.is_empty() && !after.is_empty());
    let got: BTreeSet<Row> = before.into_iter().chain(after).collect();
    let want = expected();
    let missing: Vec<_> = want.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&want).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{kind} at p={parallelism}: missing {missing:?}, unexpected {extra:?}"
    );
}

#[test]
fn a_format_1_savepoint_restores_into_the_heap_at_parallelism_3() {
    restore_golden("heap", 3);
}

#[test]
fn a_format_1_savepoint_restores_into_rocksdb_at_parallelisms_2_and_1() {
    restore_golden("rocksdb", 2);
    restore_golden("rocksdb", 1);
}
