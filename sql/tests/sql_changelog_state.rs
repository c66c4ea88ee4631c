//! The state of updating queries survives a savepoint and a rescale: a regular join feeding a
//! `GROUP BY` without windows is stopped with a savepoint in the middle and resumed at another
//! parallelism. The changes both runs emitted, applied in order, must leave exactly the totals
//! of the whole input: a join side or an accumulator lost at the stop would leave ids unjoined
//! or keys counted from zero again (an `+I` where a `-U`/`+U` belongs).

use fjord::StreamExecutionEnvironment;
use fjord_sql::changelog::{Change, materialize};

mod common;

const N: i64 = 6000;

fn script(parallelism: usize) -> String {
    format!(
        "SET 'parallelism.default' = '{parallelism}';
         SET 'execution.checkpointing.interval' = '200ms';
         CREATE TABLE a (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '1000',
           'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{N}');
         CREATE TABLE b (id BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '700',
           'fields.id.kind' = 'sequence', 'fields.id.start' = '1', 'fields.id.end' = '{N}');
         CREATE VIEW joined AS SELECT MOD(a.id, 8) AS k, b.id AS id FROM a JOIN b ON a.id = b.id;
         CREATE TABLE totals (k BIGINT, cnt BIGINT, ids BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO totals SELECT k, COUNT(*), SUM(id) FROM joined GROUP BY k;"
    )
}

/// The planned job in a new environment, its rows collected, restored from `savepoint`.
fn start(
    parallelism: usize,
    savepoint: Option<&str>,
) -> (
    StreamExecutionEnvironment,
    fjord::sinks::CollectedOutput<Change>,
) {
    let job = fjord_sql::plan(&script(parallelism)).unwrap();
    let env = StreamExecutionEnvironment::new();
    let mut collected = fjord_sql::build_collecting(&job, &env).unwrap();
    if let Some(path) = savepoint {
        env.restore_from(path, false);
    }
    (env, collected.remove(0).1)
}

#[test]
fn a_join_and_group_by_stopped_with_a_savepoint_resume_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let savepoints = dir.path().join("savepoints");
    let (env, first) = start(2, None);
    let savepoint = common::stop_once(env, &savepoints, "changes", || first.len() >= 200);
    let before = first.values();

    let (env, second) = start(3, Some(&savepoint));
    env.execute("second half").unwrap();
    let after = second.values();
    assert!(
        !after.is_empty() && after.iter().all(|c| c.row.len() == 3),
        "the second half emitted changes"
    );

    let changes = before
        .into_iter()
        .chain(after)
        .map(|c| (c.kind, format!("{:?}", c.row)));
    let table = materialize(changes).unwrap();
    let want: std::collections::BTreeMap<String, usize> = (0..8)
        .map(|k| {
            let ids: i64 = (1..=N).filter(|i| i % 8 == k).sum();
            let row = vec![
                fjord_sql::types::Value::BigInt(k),
                fjord_sql::types::Value::BigInt(N / 8),
                fjord_sql::types::Value::BigInt(ids),
            ];
            (format!("{row:?}"), 1)
        })
        .collect();
    assert_eq!(table, want, "each key's final totals, once");
}
