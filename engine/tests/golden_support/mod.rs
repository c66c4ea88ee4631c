//! The job, inputs and checks of the golden savepoint tests (see `savepoint_compat.rs`),
//! shared with `state-rocksdb/tests/engine_golden_savepoints.rs`, which restores the same
//! savepoints into the RocksDB backend.
#![allow(dead_code)]

pub mod operators;

use fjord::sinks::CollectedOutput;
use fjord::sources::{Source, SourceOutput, SourceReader, SourceStatus};
use fjord::state::{ValueState, ValueStateDescriptor};
use fjord::windows::TumblingEventTimeWindows;
use fjord::{
    BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// (key, timestamp, value)
pub type Rec = (String, i64, i64);

pub const KEYS: u64 = 20;
/// Records of part 1 (before the savepoint) and of both parts.
pub const PART1: u64 = 60;
pub const ALL: u64 = 100;
/// Every key's timer fires at this time: only the end of input reaches it.
pub const TIMER_AT: i64 = 50_000;

pub fn record(i: u64) -> Rec {
    (format!("key-{}", i % KEYS), i as i64 * 400, i as i64)
}

/// Emits records `from..to` with a watermark at each record's timestamp, then finishes, or
/// (with `idle_at_end`) polls forever without emitting, so that a savepoint taken later
/// holds the state of exactly these records.
#[derive(Clone)]
pub struct Part {
    pub from: u64,
    pub to: u64,
    pub idle_at_end: bool,
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

pub struct PartReader {
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
pub struct Summer {
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
pub fn job(
    env: &StreamExecutionEnvironment,
    source: Part,
) -> (
    fjord::sinks::CollectedOutput<String>,
    fjord::sinks::CollectedOutput<String>,
) {
    job_with(env, source, false)
}

/// [`job`], keyed with `key_by_ref` (the key borrowed from the record) when `by_ref`.
pub fn job_with(
    env: &StreamExecutionEnvironment,
    source: Part,
    by_ref: bool,
) -> (
    fjord::sinks::CollectedOutput<String>,
    fjord::sinks::CollectedOutput<String>,
) {
    let input = env.from_source(source, "input").uid("input");
    let keyed = || {
        if by_ref {
            input.key_by_ref(|r: &Rec| &r.0)
        } else {
            input.key_by(|r: &Rec| r.0.clone())
        }
    };
    let sums = keyed().process(Summer::default()).uid("summer").collect();
    let windows = keyed()
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10_000)))
        .reduce(|a: Rec, b: Rec| (a.0, a.1.max(b.1), a.2 + b.2))
        .uid("window")
        .map(|r: Rec| format!("window {} {} {}", r.0, r.1 / 10_000, r.2))
        .collect();
    (sums, windows)
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A golden job: builds the job over a part of the input and returns its outputs of lines.
pub type Job<'a> = &'a dyn Fn(&StreamExecutionEnvironment, Part) -> Vec<CollectedOutput<String>>;

/// The first golden job ([`job`]) as a [`Job`].
pub fn keyed_sum(env: &StreamExecutionEnvironment, source: Part) -> Vec<CollectedOutput<String>> {
    let (sums, windows) = job(env, source);
    vec![sums, windows]
}

/// Every line of `outputs`.
pub fn lines(outputs: &[CollectedOutput<String>]) -> Vec<String> {
    outputs.iter().flat_map(|o| o.values()).collect()
}

/// Every line an uninterrupted run of both parts emits.
pub fn uninterrupted() -> Vec<String> {
    uninterrupted_of(&keyed_sum)
}

/// `job` over records `0..to` at parallelism 2, not yet executed.
fn at_parallelism_2(
    job: Job<'_>,
    to: u64,
    idle_at_end: bool,
) -> (StreamExecutionEnvironment, Vec<CollectedOutput<String>>) {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let outputs = job(
        &env,
        Part {
            from: 0,
            to,
            idle_at_end,
        },
    );
    (env, outputs)
}

/// Every line an uninterrupted run of both parts of `job` emits.
pub fn uninterrupted_of(job: Job<'_>) -> Vec<String> {
    let (env, outputs) = at_parallelism_2(job, ALL, false);
    env.execute("uninterrupted").unwrap();
    lines(&outputs)
}

/// Runs part 1 of `job` at parallelism 2 until it has emitted `part1_lines` lines, stops it
/// with a savepoint and copies that into `tests/testdata/<name>`. Returns part 1's lines.
pub fn write_golden(name: &str, job: Job<'_>, part1_lines: usize) -> Vec<String> {
    let (env, outputs) = at_parallelism_2(job, PART1, true);
    let client = env.execute_async("golden").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while outputs.iter().map(|o| o.len()).sum::<usize>() < part1_lines {
        assert!(
            std::time::Instant::now() < deadline,
            "part 1 did not complete"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let dir = tempfile::tempdir().unwrap();
    let savepoint = client
        .stop_with_savepoint(&file_url(dir.path()), false)
        .unwrap();
    let target = golden(name);
    let _ = std::fs::remove_dir_all(&target);
    copy_dir(Path::new(savepoint.trim_start_matches("file://")), &target);
    lines(&outputs)
}

/// Whether an uninterrupted run emits `line` only after part 1 (so a run restored from the
/// savepoint emits it): records of part 2, the timers, and windows after [10000, 20000).
pub fn after_part1(line: &str) -> bool {
    let f: Vec<&str> = line.split(' ').collect();
    match f[0] {
        "elem" => f[2].parse::<u64>().unwrap() >= PART1,
        "final" => true,
        "window" => f[2].parse::<u64>().unwrap() >= 2,
        other => panic!("unexpected line kind {other}"),
    }
}

pub fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../engine/tests/testdata")
        .join(name)
}

pub fn copy_dir(from: &Path, to: &Path) {
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
pub fn restore_and_check(name: &str, parallelism: usize, expected: &[String]) {
    restore_and_check_with(name, parallelism, expected, |_| {});
}

/// [`restore_and_check`] with the environment set up by `configure` (a state backend, say).
pub fn restore_and_check_with(
    name: &str,
    parallelism: usize,
    expected: &[String],
    configure: impl Fn(&StreamExecutionEnvironment),
) {
    restore_and_check_keyed(name, parallelism, expected, configure, false);
}

/// [`restore_and_check_with`], the restored job keyed with `key_by_ref` when `by_ref`.
pub fn restore_and_check_keyed(
    name: &str,
    parallelism: usize,
    expected: &[String],
    configure: impl Fn(&StreamExecutionEnvironment),
    by_ref: bool,
) {
    let keyed = |env: &StreamExecutionEnvironment, part: Part| {
        let (sums, windows) = job_with(env, part, by_ref);
        vec![sums, windows]
    };
    restore_and_check_job(name, parallelism, expected, configure, &keyed);
}

/// Restores the golden savepoint `name` (copied, so the checked-in files stay untouched) into
/// `job` at `parallelism`, with the environment set up by `configure`, runs part 2 and checks
/// its lines against `expected`.
pub fn restore_and_check_job(
    name: &str,
    parallelism: usize,
    expected: &[String],
    configure: impl Fn(&StreamExecutionEnvironment),
    job: Job<'_>,
) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&golden(name), copy.path());
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    configure(&env);
    env.restore_from(&file_url(copy.path()), false);
    let outputs = job(
        &env,
        Part {
            from: PART1,
            to: ALL,
            idle_at_end: false,
        },
    );
    env.execute(&format!("restore {name} at {parallelism}"))
        .unwrap();
    assert_eq!(
        sorted(lines(&outputs)),
        expected,
        "restoring {name} at parallelism {parallelism}"
    );
}

pub fn expected_after_part1() -> Vec<String> {
    let all = uninterrupted();
    assert_eq!(
        all.iter().filter(|l| l.starts_with("final")).count() as u64,
        KEYS,
        "{all:?}"
    );
    sorted(all.into_iter().filter(|l| after_part1(l)).collect())
}

/// The `file://` URL of a directory.
pub fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}
