//! What an ended execution attempt leaves behind: nothing. Its operators, user functions and
//! keyed state are released when its tasks end (also after a failure and restart), and an
//! aborted checkpoint's directory stays empty even when a task wrote into it after the abort.
//! (The multi-process counterpart, threads, open files and RocksDB directories of a
//! TaskManager over 20 attempts, is `e2e/tests/state_release.rs`.)

use fjord::checkpoint::RestartStrategy;
use fjord::sources::GeneratorSource;
use fjord::storage::test_hooks::hold_puts;
use fjord::time::WatermarkStrategy;
use fjord::windows::TumblingEventTimeWindows;
use fjord::{
    BoxError, KeyedProcessContext, KeyedProcessFunction, ReduceFunction, StreamExecutionEnvironment,
};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::{FailAt, file_url};

/// The tests of this file run one at a time: a put hold applies to the whole process.
static SERIAL: Mutex<()> = Mutex::new(());

/// Counts the live copies of the function that holds it.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Live(count.clone())
    }
}

impl Clone for Live {
    fn clone(&self) -> Self {
        Live::new(&self.0)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts records per key in keyed state; alive as long as its operator is.
#[derive(Clone)]
struct Counter(#[allow(dead_code)] Live);

impl KeyedProcessFunction<u64, (u64, u64), (u64, u64)> for Counter {
    fn process_element(
        &mut self,
        value: (u64, u64),
        ctx: &mut KeyedProcessContext<'_, u64, (u64, u64)>,
    ) -> Result<(), BoxError> {
        ctx.collect(value);
        Ok(())
    }
}

/// Sums per window; alive as long as its window operator is.
#[derive(Clone)]
struct Sum(#[allow(dead_code)] Live);

impl ReduceFunction<(u64, u64)> for Sum {
    fn reduce(&mut self, a: (u64, u64), b: (u64, u64)) -> Result<(u64, u64), BoxError> {
        Ok((a.0, a.1 + b.1))
    }
}

/// Every copy of the user functions of a job that failed once and restarted is dropped when
/// the job ends: the operators (and their keyed state and window contents) of both attempts
/// are released. Before, a checkpoint participant and its operator's runtime context held
/// each other, and every attempt's operators stayed in memory for good.
#[test]
fn the_operators_of_every_attempt_are_released_when_it_ends() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let live = Arc::new(AtomicUsize::new(0));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(20));
    env.checkpoint_config(|c| c.storage = file_url(dir.path()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(10),
    });
    let out = env
        .from_source(
            GeneratorSource::new(Some(20_000), |i| (i % 50, 1u64)).with_rate(40_000.0),
            "numbers",
        )
        .uid("numbers")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(
                |_: &(u64, u64), _| 0, // every record in window [0, 1000)
            ),
        )
        .map(FailAt::once(15_000))
        .uid("fail")
        .set_parallelism(1)
        .key_by(|t: &(u64, u64)| t.0)
        .process(Counter(Live::new(&live)))
        .uid("counter")
        .key_by(|t: &(u64, u64)| t.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(Sum(Live::new(&live)))
        .uid("sum")
        .collect();
    // The prototypes the job graph holds (and whatever the environment keeps of it).
    let before = live.load(Ordering::SeqCst);
    let client = env.execute_async("released attempts").unwrap();
    let result = client.wait().unwrap();
    let after = live.load(Ordering::SeqCst);
    eprintln!(
        "live function copies: {before} before the job, {after} after it ({} attempts)",
        result.attempts
    );
    assert!(result.attempts >= 2, "the job restarted once");
    assert_eq!(
        out.len(),
        50,
        "one sum per key in the one window, exactly once"
    );
    assert_eq!(
        after, before,
        "copies of the user functions outlived their attempts: {after} live after the job, \
         {before} before it"
    );
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(
                path.strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
        }
    }
    out.sort();
    out
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Checkpoint 1 is taken while the input runs, but its uploads are held; the input ends, so
/// the coordinator aborts checkpoint 1 and deletes its directory; only then are the uploads
/// let go, and they write into that directory after the abort. The job finishes (the final
/// checkpoint completes and is removed with the job), and nothing of checkpoint 1 remains.
#[test]
fn files_written_into_an_aborted_checkpoint_after_the_abort_are_deleted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let storage = file_url(dir.path());
    let hold_chk1 = hold_puts("/chk-1/");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_millis(10));
    env.checkpoint_config(|c| c.storage = storage.clone());
    let records = 10_000;
    let out = env
        .from_source(
            GeneratorSource::new(Some(records), |i| (i % 4, 1u64)).with_rate(20_000.0),
            "numbers",
        )
        .uid("numbers")
        .key_by(|t: &(u64, u64)| t.0)
        .sum::<1>()
        .uid("counter")
        .collect();
    let client = env.execute_async("aborted checkpoint").unwrap();

    // Both tasks took their snapshot of checkpoint 1 and are uploading it (held).
    let held = hold_chk1.wait_held(2, Duration::from_secs(60));
    assert_eq!(held.len(), 2, "both tasks started uploading: {held:?}");
    // Meanwhile clients see it in flight, one entry per vertex, none acknowledged yet (the
    // uploads come before the acknowledgements).
    wait_until("checkpoint 1 in flight", || {
        client.in_flight_checkpoints().iter().any(|c| c.id == 1)
    });
    let in_flight = client.in_flight_checkpoints();
    let chk1 = in_flight.iter().find(|c| c.id == 1).unwrap();
    assert!(!chk1.savepoint);
    assert!(!chk1.vertices.is_empty(), "{chk1:?}");
    assert!(
        chk1.vertices
            .iter()
            .all(|&(acked, parallelism)| parallelism == 1 && acked == 0),
        "{chk1:?}"
    );
    // The input ends meanwhile: checkpoint 1 can no longer complete and is aborted.
    wait_until("checkpoint 1 is aborted", || {
        client.checkpoint_counts().1 >= 1
    });
    // It is recorded with the reason, and no longer in flight.
    let failed = client.failed_checkpoints();
    let chk1 = failed
        .iter()
        .find(|c| c.id == 1)
        .expect("checkpoint 1 recorded as failed");
    assert!(
        chk1.reason.contains("before the checkpoint completed"),
        "{chk1:?}"
    );
    assert!(chk1.failed_at_ms >= chk1.triggered_at_ms, "{chk1:?}");
    wait_until("checkpoint 1 no longer in flight", || {
        client.in_flight_checkpoints().iter().all(|c| c.id != 1)
    });
    assert!(
        files(dir.path()).iter().all(|f| !f.contains("chk-1/")),
        "the abort deleted checkpoint 1's directory: {:?}",
        files(dir.path())
    );
    // Now the uploads write into the aborted directory.
    hold_chk1.release();
    let result = client.wait().unwrap();
    assert_eq!(out.len() as u64, records, "every record went through once");
    assert!(result.completed_checkpoints >= 1, "the final checkpoint");
    let left = files(dir.path());
    eprintln!("left in checkpoint storage: {left:?}");
    assert!(
        left.iter().all(|f| !f.contains("chk-")),
        "an aborted checkpoint left files behind: {left:?}"
    );
}
