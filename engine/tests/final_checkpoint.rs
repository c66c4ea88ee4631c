//! The final checkpoint at the end of input (Flink's FLIP-147): a transactional sink commits
//! its last transaction only once a checkpoint holds the end of the input, so a failure at the
//! end of input — before or after that checkpoint — writes nothing twice and loses nothing.
//!
//! The sink here is what a transactional external system (Kafka, a database) looks like: every
//! transaction has an id of its own (attempt, subtask, sequence), committing a transaction
//! appends its records once, and data written again after a restore arrives in new
//! transactions. A record committed, replayed and committed again shows up twice.

use fjord::checkpoint::RestartStrategy;
use fjord::sinks::{TransactionalSink, TransactionalWriter};
use fjord::sources::GeneratorSource;
use fjord::{BoxError, RuntimeContext, StreamExecutionEnvironment};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

/// The external system: prepared and committed transactions of every named table.
#[derive(Default)]
struct Table {
    prepared: BTreeMap<String, Vec<u64>>,
    committed: BTreeSet<String>,
    records: Vec<u64>,
}

static TABLES: LazyLock<Mutex<HashMap<String, Table>>> = LazyLock::new(Mutex::default);

fn table_records(name: &str) -> Vec<u64> {
    let mut records = TABLES
        .lock()
        .get(name)
        .map_or(Vec::new(), |t| t.records.clone());
    records.sort_unstable();
    records
}

/// Where the sink of attempt 0 fails on purpose.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Pre-committing the transaction that holds the last record (the final checkpoint).
    FinalPreCommit,
    /// Committing it (after the final checkpoint completed).
    FinalCommit,
}

#[derive(Clone)]
struct TableSink {
    table: String,
    total: u64,
    fault: Fault,
}

struct TableWriter {
    table: String,
    total: u64,
    fault: Fault,
    attempt: u32,
    subtask: usize,
    sequence: u64,
    written: u64,
    open: Vec<u64>,
}

impl TransactionalSink<u64> for TableSink {
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<u64>>, BoxError> {
        Ok(Box::new(TableWriter {
            table: self.table.clone(),
            total: self.total,
            fault: self.fault,
            attempt: ctx.attempt_number,
            subtask: ctx.subtask_index,
            sequence: 0,
            written: 0,
            open: Vec::new(),
        }))
    }
}

impl TableWriter {
    /// Whether this writer wrote the last record of the input in the first attempt.
    fn at_the_end(&self, fault: Fault) -> bool {
        self.fault == fault && self.attempt == 0 && self.written == self.total
    }
}

impl TransactionalWriter<u64> for TableWriter {
    fn write(&mut self, value: u64, _: Option<i64>) -> Result<(), BoxError> {
        self.open.push(value);
        self.written += 1;
        Ok(())
    }

    fn pre_commit(&mut self, _checkpoint_id: u64) -> Result<Vec<u8>, BoxError> {
        if self.at_the_end(Fault::FinalPreCommit) {
            return Err("injected failure pre-committing the last transaction".into());
        }
        self.sequence += 1;
        let id = format!("{}-{}-{}", self.attempt, self.subtask, self.sequence);
        let records = std::mem::take(&mut self.open);
        TABLES
            .lock()
            .entry(self.table.clone())
            .or_default()
            .prepared
            .insert(id.clone(), records);
        Ok(id.into_bytes())
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), BoxError> {
        if self.at_the_end(Fault::FinalCommit) {
            return Err("injected failure committing the last transaction".into());
        }
        let mut tables = TABLES.lock();
        let table = tables.entry(self.table.clone()).or_default();
        for c in committables {
            let id = String::from_utf8(c.clone())?;
            if table.committed.insert(id.clone()) {
                let records = table
                    .prepared
                    .get(&id)
                    .ok_or_else(|| format!("transaction {id} was never prepared"))?
                    .clone();
                table.records.extend(records);
            }
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), BoxError> {
        self.open.clear();
        Ok(())
    }
}

/// Runs a job with two branches into two tables: `fast` chained to the source (it finishes
/// with the source), `slow` behind a shuffle whose sink fails as `fault` says. Returns the
/// attempts and the completed checkpoints.
fn run(name: &str, records: u64, fault: Fault) -> (u32, u64) {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_millis(20));
    env.checkpoint_config(|c| {
        c.storage = format!("memory://final-checkpoint-{name}-{}", rand::random::<u64>());
    });
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(5),
    });
    let numbers = env
        .from_source(
            GeneratorSource::new(Some(records), |i| i).with_rate(50_000.0),
            "numbers",
        )
        .uid("numbers");
    numbers
        .map(|v: u64| v)
        .uid("fast-map")
        .sink_to_transactional(
            TableSink {
                table: format!("{name}-fast"),
                total: records,
                fault: Fault::None,
            },
            "fast",
        )
        .uid("fast");
    numbers
        .rebalance()
        .map(|v: u64| v)
        .uid("slow-map")
        .sink_to_transactional(
            TableSink {
                table: format!("{name}-slow"),
                total: records,
                fault,
            },
            "slow",
        )
        .uid("slow");
    let result = env.execute(name).unwrap();
    (result.attempts, result.completed_checkpoints)
}

fn assert_exactly_once(name: &str, records: u64) {
    let expected: Vec<u64> = (0..records).collect();
    for branch in ["fast", "slow"] {
        let got = table_records(&format!("{name}-{branch}"));
        let duplicated = got.len() - got.iter().collect::<BTreeSet<_>>().len();
        let lost = expected
            .iter()
            .filter(|v| got.binary_search(v).is_err())
            .count();
        assert_eq!(
            (duplicated, lost),
            (0, 0),
            "{branch}: {duplicated} duplicated, {lost} lost"
        );
    }
}

#[test]
fn without_failures_the_last_transaction_is_committed_by_a_final_checkpoint() {
    let (attempts, checkpoints) = run("no-fault", 5_000, Fault::None);
    assert_eq!(attempts, 1);
    assert!(checkpoints >= 1, "the final checkpoint completed");
    assert_exactly_once("no-fault", 5_000);
}

#[test]
fn a_failure_in_the_final_checkpoint_commits_nothing_twice() {
    let (attempts, _) = run("final-pre-commit", 5_000, Fault::FinalPreCommit);
    assert_eq!(
        attempts, 2,
        "the failed final checkpoint restarted the job once"
    );
    assert_exactly_once("final-pre-commit", 5_000);
}

#[test]
fn a_failure_after_the_final_checkpoint_commits_nothing_twice() {
    let (attempts, _) = run("final-commit", 5_000, Fault::FinalCommit);
    assert_eq!(attempts, 2, "the failed commit restarted the job once");
    assert_exactly_once("final-commit", 5_000);
}
