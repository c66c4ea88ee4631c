//! Checkpoint notifications to user functions (Flink's `CheckpointListener`), and snapshot
//! uploads that do not hold up processing.

use fjord::checkpoint::RestartStrategy;
use fjord::sources::GeneratorSource;
use fjord::storage::test_hooks::hold_puts;
use fjord::{
    BoxError, Collector, FilterFunction, FlatMapFunction, KeyedProcessContext,
    KeyedProcessFunction, MapFunction, ProcessContext, ProcessFunction, RuntimeContext, Sink,
    SinkWriter, StreamExecutionEnvironment, Timestamp,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::file_url;

/// What the functions heard: (function and subtask, completed?, checkpoint id).
type Log = Arc<Mutex<Vec<(String, bool, u64)>>>;

/// Records the checkpoint notifications it gets, as every kind of user function.
#[derive(Clone)]
struct Listener {
    name: &'static str,
    subtask: usize,
    log: Log,
}

impl Listener {
    fn new(name: &'static str, log: &Log) -> Self {
        Listener {
            name,
            subtask: 0,
            log: log.clone(),
        }
    }
    fn open_at(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.subtask = ctx.subtask_index;
        Ok(())
    }
    fn heard(&mut self, completed: bool, id: u64) -> Result<(), BoxError> {
        let who = format!("{}#{}", self.name, self.subtask);
        self.log.lock().unwrap().push((who, completed, id));
        Ok(())
    }
}

/// The hooks every function kind shares.
macro_rules! listening {
    () => {
        fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
            self.open_at(ctx)
        }
        fn notify_checkpoint_complete(&mut self, id: u64) -> Result<(), BoxError> {
            self.heard(true, id)
        }
        fn notify_checkpoint_aborted(&mut self, id: u64) -> Result<(), BoxError> {
            self.heard(false, id)
        }
    };
}

impl MapFunction<u64, u64> for Listener {
    fn map(&mut self, v: u64) -> Result<u64, BoxError> {
        Ok(v)
    }
    listening!();
}

impl FlatMapFunction<u64, u64> for Listener {
    fn flat_map(&mut self, v: u64, out: &mut Collector<'_, u64>) -> Result<(), BoxError> {
        out.collect(v);
        Ok(())
    }
    listening!();
}

impl FilterFunction<u64> for Listener {
    fn filter(&mut self, _: &u64) -> Result<bool, BoxError> {
        Ok(true)
    }
    listening!();
}

impl ProcessFunction<u64, u64> for Listener {
    fn process_element(
        &mut self,
        v: u64,
        ctx: &mut ProcessContext<'_, u64>,
    ) -> Result<(), BoxError> {
        ctx.collect(v);
        Ok(())
    }
    listening!();
}

impl KeyedProcessFunction<u64, u64, u64> for Listener {
    fn process_element(
        &mut self,
        v: u64,
        ctx: &mut KeyedProcessContext<'_, u64, u64>,
    ) -> Result<(), BoxError> {
        ctx.collect(v);
        Ok(())
    }
    listening!();
}

struct ListeningSink(Log);

impl Sink<u64> for ListeningSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<u64>>, BoxError> {
        let mut l = Listener::new("sink", &self.0);
        l.open_at(ctx)?;
        Ok(Box::new(l))
    }
}

impl SinkWriter<u64> for Listener {
    fn write(&mut self, _: u64, _: Option<Timestamp>) -> Result<(), BoxError> {
        Ok(())
    }
    fn notify_checkpoint_complete(&mut self, id: u64) -> Result<(), BoxError> {
        self.heard(true, id)
    }
    fn notify_checkpoint_aborted(&mut self, id: u64) -> Result<(), BoxError> {
        self.heard(false, id)
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn completed(client: &fjord::JobClient) -> usize {
    client.checkpoint_history().0.len()
}

fn failed(client: &fjord::JobClient) -> u64 {
    client.checkpoint_history().1
}

#[test]
fn user_functions_hear_completed_checkpoints_in_order_and_never_one_that_did_not_complete() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("checkpoints");
    let savepoints = tempfile::tempdir().unwrap();
    let log: Log = Arc::default();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_millis(30));
    env.set_restart_strategy(RestartStrategy::None);
    env.checkpoint_config(|c| {
        c.storage = file_url(&base);
        c.tolerable_failures = 1_000_000;
    });
    // Source chain (parallelism 1): map, flat_map, filter, process. Then keyed process and
    // sink at parallelism 2. The keyed process has state but no uid, so savepoints fail.
    env.from_source(
        GeneratorSource::new(None, |i| i).with_rate(5_000.0),
        "numbers",
    )
    .uid("numbers")
    .map(Listener::new("map", &log))
    .flat_map(Listener::new("flat_map", &log))
    .filter(Listener::new("filter", &log))
    .process(Listener::new("process", &log))
    .key_by(|v: &u64| v % 8)
    .process(Listener::new("keyed_process", &log))
    .set_parallelism(2)
    .sink_to(ListeningSink(log.clone()), "sink")
    .set_parallelism(2);
    let client = env.execute_async("listeners").unwrap();
    wait_until("3 checkpoints completed", || completed(&client) >= 3);

    // A stop-with-savepoint that fails (an operator without uid): the sources carry on and
    // every function hears that it was aborted.
    let err = client
        .trigger_stop_with_savepoint(&file_url(savepoints.path()), false)
        .unwrap_err();
    assert!(err.to_string().contains("has state but no uid"), "{err}");

    // Checkpoints declined while the storage is unusable, then completing again.
    let failed_before = failed(&client);
    wait_until("the storage is broken", || {
        let _ = std::fs::remove_dir_all(&base);
        std::fs::write(&base, "not a directory").is_ok()
    });
    wait_until("2 checkpoints failed", || {
        failed(&client) >= failed_before + 2
    });
    let completed_before = completed(&client);
    std::fs::remove_file(&base).unwrap();
    std::fs::create_dir_all(&base).unwrap();
    wait_until("3 more checkpoints completed", || {
        completed(&client) >= completed_before + 3
    });
    // Let the latest completions reach every function, then stop.
    let last = client.checkpoint_history().0.last().unwrap().id;
    wait_until("the latest completion reached the sinks", || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|(who, done, id)| who.starts_with("sink") && *done && *id >= last)
            .count()
            >= 2
    });
    client.cancel();
    let (history, failures) = client.checkpoint_history();
    let _ = client.wait();

    assert!(
        history.len() < 100,
        "the history holds every completed checkpoint"
    );
    assert!(
        failures >= 3,
        "a savepoint and at least 2 checkpoints failed"
    );
    let done: BTreeSet<u64> = history.iter().map(|c| c.id).collect();
    let max = *done.last().unwrap();
    let not_done: BTreeSet<u64> = (1..=max).filter(|id| !done.contains(id)).collect();
    assert!(not_done.len() >= 3, "failed: {not_done:?}");

    let mut per_function: BTreeMap<String, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
    for (who, completed, id) in log.lock().unwrap().iter() {
        let e = per_function.entry(who.clone()).or_default();
        if *completed {
            e.0.push(*id)
        } else {
            e.1.push(*id)
        }
    }
    let names: BTreeSet<&str> = per_function
        .keys()
        .map(|k| k.split('#').next().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "filter",
            "flat_map",
            "keyed_process",
            "map",
            "process",
            "sink"
        ]),
        "every kind of function heard of checkpoints"
    );
    for (who, (completes, aborts)) in &per_function {
        assert!(
            completes.windows(2).all(|w| w[0] < w[1]),
            "{who} heard completions in increasing order: {completes:?}"
        );
        assert!(
            completes.iter().all(|id| done.contains(id)),
            "{who} heard only completed checkpoints: {completes:?}, completed: {done:?}"
        );
        assert!(
            completes.len() >= 6,
            "{who} heard the completions before and after the failures: {completes:?}"
        );
        assert!(
            completes.iter().any(|id| not_done.iter().any(|f| f < id)),
            "{who} heard completions after failed checkpoints: {completes:?}"
        );
        assert!(
            aborts.iter().all(|id| !done.contains(id)),
            "{who} heard an abort of a completed checkpoint: {aborts:?}"
        );
        // Every task hears every abort: the failed stop-with-savepoint and the declined
        // checkpoints.
        assert!(
            aborts.len() >= 3,
            "{who} heard the failed savepoint and the declined checkpoints: {aborts:?}"
        );
    }
}

#[test]
fn records_keep_flowing_while_a_snapshot_upload_is_held_and_the_checkpoint_completes_after() {
    // Every write into this store waits until the hold is released.
    let hold = hold_puts("memory://held-upload/");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_millis(10));
    env.checkpoint_config(|c| c.storage = "memory://held-upload".into());
    let out = env
        .from_source(
            GeneratorSource::new(None, |i| (i % 4, 1u64)).with_rate(20_000.0),
            "numbers",
        )
        .uid("numbers")
        .key_by(|t: &(u64, u64)| t.0)
        .sum::<1>()
        .uid("counter")
        .collect();
    let client = env.execute_async("held upload").unwrap();

    // Checkpoint 1's uploads (source task and counter task) are held.
    let held = hold.wait_held(2, Duration::from_secs(60));
    assert_eq!(held.len(), 2, "both tasks started uploading: {held:?}");
    assert!(held.iter().all(|p| p.contains("/chk-1/")), "{held:?}");

    // While they are held, the sink keeps receiving records: the snapshot did not stop
    // processing. Nothing completes in the meantime.
    let seen = out.len();
    wait_until("the sink received 2000 more records", || {
        out.len() >= seen + 2_000
    });
    assert_eq!(
        client.latest_checkpoint(),
        None,
        "checkpoint 1 is still uploading"
    );
    assert_eq!(
        hold.wait_held(3, Duration::ZERO).len(),
        2,
        "no other checkpoint started (max_concurrent = 1)"
    );

    // Released: the uploads finish and checkpoint 1 completes.
    hold.release();
    wait_until("a checkpoint completed", || {
        client.latest_checkpoint().is_some()
    });
    let (history, failures) = client.checkpoint_history();
    assert_eq!(history.first().map(|c| c.id), Some(1), "{history:?}");
    assert_eq!(failures, 0);
    client.cancel();
    let _ = client.wait();
}
