//! Golden savepoints: savepoints written by earlier Fjord releases (checked in under
//! `tests/testdata/`) restore into this one with every key's state intact.
//!
//! The job keys records by a `String`: a keyed process function sums values per key in a
//! value state and holds an event-time timer per key, and a tumbling event-time window sums
//! them per key and window. Part 1 of the input (records 0..60, watermark 23600) ran at
//! parallelism 2 and was stopped with a savepoint while window [20000, 30000) still held its
//! contents and every timer was pending; the tests run part 2 (records 60..100, then the end
//! of input) from that savepoint and check that the output is exactly what an uninterrupted
//! run of parts 1 and 2 emits after part 1.
//!
//! - `savepoint-format-2`: written by Fjord with key groups from `std::hash::Hash` (format
//!   version 2). Its keyed state is bucketed by that old hash, so restoring it re-buckets every
//!   entry by the key group of its key's bytes.
//! - `savepoint-format-3`: written with key groups from the key's serialized bytes.
//!
//! Regenerate (only when a new format version is introduced, never to make a test pass):
//! `FJORD_WRITE_GOLDEN=<dir name> cargo test -p fjord --test savepoint_compat -- --ignored`.

use fjord::sources::{Source, SourceOutput, SourceReader, SourceStatus};
use fjord::state::{ValueState, ValueStateDescriptor};
use fjord::windows::TumblingEventTimeWindows;
use fjord::{
    BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext,
    StreamExecutionEnvironment,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::file_url;

/// (key, timestamp, value)
type Rec = (String, i64, i64);

const KEYS: u64 = 20;
/// Records of part 1 (before the savepoint) and of both parts.
const PART1: u64 = 60;
const ALL: u64 = 100;
/// Every key's timer fires at this time: only the end of input reaches it.
const TIMER_AT: i64 = 50_000;

fn record(i: u64) -> Rec {
    (format!("key-{}", i % KEYS), i as i64 * 400, i as i64)
}

/// Emits records `from..to` with a watermark at each record's timestamp, then finishes, or
/// (with `idle_at_end`) polls forever without emitting, so that a savepoint taken later
/// holds the state of exactly these records.
#[derive(Clone)]
struct Part {
    from: u64,
    to: u64,
    idle_at_end: bool,
}

impl Source<Rec> for Part {
    fn is_parallel(&self) -> bool {
        false
    }

    fn create_reader(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<Rec>>, BoxError> {
        Ok(Box::new(PartReader {
            part: self.clone(),
            next: self.from,
        }))
    }
}

struct PartReader {
    part: Part,
    next: u64,
}

impl SourceReader<Rec> for PartReader {
    fn poll_next(&mut self, output: &mut SourceOutput<'_, Rec>) -> Result<SourceStatus, BoxError> {
        if self.next < self.part.to {
            let r = record(self.next);
            let ts = r.1;
            output.collect_with_timestamp(r, ts);
            output.emit_watermark(ts);
            self.next += 1;
            return Ok(SourceStatus::MoreAvailable);
        }
        if self.part.idle_at_end {
            std::thread::sleep(Duration::from_millis(2));
            return Ok(SourceStatus::NothingAvailable);
        }
        Ok(SourceStatus::Finished)
    }
}

/// Sums values per key in a value state; emits `elem <key> <i> <sum>` per record and
/// `final <key> <sum>` from an event-time timer at [`TIMER_AT`].
#[derive(Clone, Default)]
struct Summer {
    sum: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<String, Rec, String> for Summer {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.sum = Some(ctx.get_state(&ValueStateDescriptor::new("sum"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        r: Rec,
        ctx: &mut KeyedProcessContext<'_, String, String>,
    ) -> Result<(), BoxError> {
        let state = self.sum.as_ref().expect("opened");
        let sum = state.value().unwrap_or(0) + r.2;
        state.update(sum);
        ctx.timer_service().register_event_time_timer(TIMER_AT);
        ctx.collect(format!("elem {} {} {sum}", r.0, r.2));
        Ok(())
    }

    fn on_timer(
        &mut self,
        _ts: i64,
        ctx: &mut KeyedProcessContext<'_, String, String>,
    ) -> Result<(), BoxError> {
        let sum = self.sum.as_ref().expect("opened").value().unwrap_or(0);
        let key = ctx.current_key().clone();
        ctx.collect(format!("final {key} {sum}"));
        Ok(())
    }
}

/// The job over `source`: the process function's and the window's outputs, as lines.
fn job(
    env: &StreamExecutionEnvironment,
    source: Part,
) -> (
    fjord::sinks::CollectedOutput<String>,
    fjord::sinks::CollectedOutput<String>,
) {
    let input = env.from_source(source, "input").uid("input");
    let sums = input
        .key_by(|r: &Rec| r.0.clone())
        .process(Summer::default())
        .uid("summer")
        .collect();
    let windows = input
        .key_by(|r: &Rec| r.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10_000)))
        .reduce(|a: Rec, b: Rec| (a.0, a.1.max(b.1), a.2 + b.2))
        .uid("window")
        .map(|r: Rec| format!("window {} {} {}", r.0, r.1 / 10_000, r.2))
        .collect();
    (sums, windows)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Every line an uninterrupted run of both parts emits.
fn uninterrupted() -> Vec<String> {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let (sums, windows) = job(
        &env,
        Part {
            from: 0,
            to: ALL,
            idle_at_end: false,
        },
    );
    env.execute("uninterrupted").unwrap();
    let mut all = sums.values();
    all.extend(windows.values());
    all
}

/// Whether an uninterrupted run emits `line` only after part 1 (so a run restored from the
/// savepoint emits it): records of part 2, the timers, and windows after [10000, 20000).
fn after_part1(line: &str) -> bool {
    let f: Vec<&str> = line.split(' ').collect();
    match f[0] {
        "elem" => f[2].parse::<u64>().unwrap() >= PART1,
        "final" => true,
        "window" => f[2].parse::<u64>().unwrap() >= 2,
        other => panic!("unexpected line kind {other}"),
    }
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Restores the golden savepoint `name` (copied, so the checked-in files stay untouched) at
/// `parallelism`, runs part 2 and checks the output against an uninterrupted run.
fn restore_and_check(name: &str, parallelism: usize, expected: &[String]) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&golden(name), copy.path());
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env.restore_from(&file_url(copy.path()), false);
    let (sums, windows) = job(
        &env,
        Part {
            from: PART1,
            to: ALL,
            idle_at_end: false,
        },
    );
    env.execute(&format!("restore {name} at {parallelism}"))
        .unwrap();
    let mut got = sums.values();
    got.extend(windows.values());
    assert_eq!(
        sorted(got),
        expected,
        "restoring {name} at parallelism {parallelism}"
    );
}

fn expected_after_part1() -> Vec<String> {
    let all = uninterrupted();
    assert_eq!(
        all.iter().filter(|l| l.starts_with("final")).count() as u64,
        KEYS,
        "{all:?}"
    );
    sorted(all.into_iter().filter(|l| after_part1(l)).collect())
}

/// Writes a golden savepoint of part 1 into `tests/testdata/$FJORD_WRITE_GOLDEN`.
#[test]
#[ignore = "writes a golden savepoint; run by hand when a format version is introduced"]
fn write_golden_savepoint() {
    let Ok(name) = std::env::var("FJORD_WRITE_GOLDEN") else {
        return;
    };
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let (sums, windows) = job(
        &env,
        Part {
            from: 0,
            to: PART1,
            idle_at_end: true,
        },
    );
    let client = env.execute_async("golden").unwrap();
    // Part 1 emits a line per record and the windows [0, 10000) and [10000, 20000) of every key.
    let deadline = Instant::now() + Duration::from_secs(120);
    while sums.len() < PART1 as usize || windows.len() < 2 * KEYS as usize {
        assert!(Instant::now() < deadline, "part 1 did not complete");
        std::thread::sleep(Duration::from_millis(10));
    }
    let dir = tempfile::tempdir().unwrap();
    let savepoint = client.stop_with_savepoint(&file_url(dir.path()), false).unwrap();
    let target = golden(&name);
    let _ = std::fs::remove_dir_all(&target);
    copy_dir(Path::new(savepoint.trim_start_matches("file://")), &target);
    let mut part1 = sums.values();
    part1.extend(windows.values());
    assert!(part1.iter().all(|l| !after_part1(l)), "{part1:?}");
}

#[test]
fn a_format_2_savepoint_restores_with_every_key_intact_at_parallelism_2_and_3() {
    let expected = expected_after_part1();
    for parallelism in [2, 3] {
        restore_and_check("savepoint-format-2", parallelism, &expected);
    }
}

#[test]
fn a_format_3_savepoint_restores_with_every_key_intact_at_parallelism_2_and_3() {
    let expected = expected_after_part1();
    for parallelism in [2, 3] {
        restore_and_check("savepoint-format-3", parallelism, &expected);
    }
}

/// The key group format version 2 gave a key: its `std::hash::Hash` fed to `StableHasher`,
/// mixed with Murmur3's finalizer (as this Rust toolchain's `Hash` for `str` feeds it).
fn format_2_key_group(key: &str, max_parallelism: u64) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = fjord::keygroup::StableHasher::default();
    key.hash(&mut h);
    let mut k = h.finish();
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    (k % max_parallelism) as usize
}

#[test]
fn the_format_2_savepoint_has_keys_whose_subtask_changes_with_the_new_key_groups() {
    use fjord::keygroup::{assign_to_key_group, operator_index_for_key_group};
    let moved = (0..KEYS)
        .map(|k| format!("key-{k}"))
        .filter(|k| {
            let old = format_2_key_group(k, 128);
            let new = assign_to_key_group(k.as_str(), 128);
            operator_index_for_key_group(128, 2, old) != operator_index_for_key_group(128, 2, new)
        })
        .count();
    // Without re-bucketing, these keys' state would be restored into the wrong subtask.
    assert!(moved >= 3, "only {moved} keys move");
}
