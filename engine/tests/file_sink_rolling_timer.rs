//! The exactly-once file sink rolls a part on a processing-time timer (Flink's bucket check
//! interval): a part that stops receiving records rolls once its inactivity interval passed,
//! though no record arrives after it, and is committed with the next checkpoint.
//!
//! The source writes a few records, then idles until the rolled part shows up as pending
//! (bounded in time), then ends. Periodic checkpoints are an hour apart, so no checkpoint
//! barrier rolls the part: only the timer can. The part is committed by the final checkpoint.

use fjord::sinks::{ExactlyOnceFileSink, RollingPolicy};
use fjord::storage::StorageOptions;
use fjord::{
    BoxError, RuntimeContext, Source, SourceOutput, SourceReader, SourceStatus,
    StreamExecutionEnvironment,
};
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the source waits at most for the timer to roll the part.
const PATIENCE: Duration = Duration::from_secs(30);

/// Emits `records` numbers, then polls until `.pending/` under `dir` holds a part (or
/// `PATIENCE` passed), noting its name in `seen`, and ends.
#[derive(Clone)]
struct WriteThenIdle {
    records: u64,
    dir: PathBuf,
    seen: Arc<Mutex<Option<String>>>,
}

struct Reader {
    source: WriteThenIdle,
    emitted: bool,
    since: Option<Instant>,
}

impl Source<u64> for WriteThenIdle {
    fn is_parallel(&self) -> bool {
        false
    }

    fn create_reader(&self, _: &RuntimeContext) -> Result<Box<dyn SourceReader<u64>>, BoxError> {
        Ok(Box::new(Reader {
            source: self.clone(),
            emitted: false,
            since: None,
        }))
    }
}

impl SourceReader<u64> for Reader {
    fn poll_next(&mut self, output: &mut SourceOutput<'_, u64>) -> Result<SourceStatus, BoxError> {
        if !self.emitted {
            for i in 0..self.source.records {
                output.collect(i);
            }
            self.emitted = true;
            return Ok(SourceStatus::MoreAvailable);
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        let pending = std::fs::read_dir(self.source.dir.join(".pending"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            // object_store's local store writes `<name>#<n>` first and renames it: the part
            // is pending once it has its own name.
            .find(|name| !name.contains('#'));
        if let Some(name) = pending {
            *self.source.seen.lock() = Some(name);
            return Ok(SourceStatus::Finished);
        }
        if since.elapsed() > PATIENCE {
            return Ok(SourceStatus::Finished);
        }
        std::thread::sleep(Duration::from_millis(10));
        Ok(SourceStatus::NothingAvailable)
    }
}

/// Runs the job; `chained`: the sink in the source's task (its timer fires from the source
/// loop), otherwise behind a network edge (from the input loop).
fn rolls_an_idle_part(chained: bool) {
    let out = tempfile::tempdir().unwrap();
    let url = format!("file://{}", out.path().display());
    let records = 7;
    let seen = Arc::new(Mutex::new(None));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_secs(3600));
    env.checkpoint_config(|c| c.storage = format!("memory://rolling-timer-{chained}"));
    let stream = env
        .from_source(
            WriteThenIdle {
                records,
                dir: out.path().to_path_buf(),
                seen: seen.clone(),
            },
            "numbers",
        )
        .uid("numbers")
        .stream();
    let stream = if chained { stream } else { stream.rebalance() };
    stream
        .sink_to_transactional(
            ExactlyOnceFileSink::new(&url)
                .with_rolling_policy(
                    RollingPolicy::on_checkpoint()
                        .with_inactivity_interval(Duration::from_millis(100)),
                )
                .with_bucket_check_interval(Duration::from_millis(20)),
            "files",
        )
        .uid("files");
    let result = env.execute("rolling timer").unwrap();

    let rolled = seen.lock().clone().unwrap_or_else(|| {
        panic!("no part rolled within {PATIENCE:?} of the last record (chained: {chained})")
    });
    assert!(
        result.completed_checkpoints >= 1,
        "the final checkpoint committed the part"
    );
    let parts = ExactlyOnceFileSink::committed_parts(&url, &StorageOptions::default()).unwrap();
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [rolled.as_str()], "the rolled part, committed");
    let lines = ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default()).unwrap();
    let expected: Vec<String> = (0..records).map(|i| i.to_string()).collect();
    assert_eq!(lines, expected, "every record in it, once");
}

#[test]
fn an_idle_part_rolls_on_the_timer_in_the_sources_task() {
    rolls_an_idle_part(true);
}

#[test]
fn an_idle_part_rolls_on_the_timer_behind_a_network_edge() {
    rolls_an_idle_part(false);
}
