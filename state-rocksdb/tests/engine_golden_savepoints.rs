//! The engine's golden savepoints (`engine/tests/testdata/savepoint-format-*`, see
//! `engine/tests/savepoint_compat.rs`) restored into the RocksDB backend, where keyed state and
//! timers live in RocksDB: the format-2 one (key groups by the old `std::hash::Hash`) is
//! re-bucketed by the key groups of its key bytes, the format-3 ones restore as written (the
//! operators one holds session windows, sliding-window panes, an interval join and a rolling
//! reduce).

#[path = "../../engine/tests/golden_support/mod.rs"]
mod golden_support;

use fjord::state::StateBackendKind;
use golden_support::{
    expected_after_part1, operators, restore_and_check_job, restore_and_check_with,
};

fn rocksdb(dir: &std::path::Path) -> impl Fn(&fjord::StreamExecutionEnvironment) + '_ {
    move |env| {
        env.set_state_backend(StateBackendKind::RocksDb {
            dir: Some(dir.to_path_buf()),
        });
    }
}

#[test]
fn the_engines_golden_savepoints_restore_into_rocksdb_at_parallelism_2_and_3() {
    fjord_rocksdb::register();
    let expected = expected_after_part1();
    for name in ["savepoint-format-2", "savepoint-format-3"] {
        for parallelism in [2, 3] {
            let dir = tempfile::tempdir().unwrap();
            restore_and_check_with(name, parallelism, &expected, rocksdb(dir.path()));
        }
    }
}

#[test]
fn the_operators_golden_savepoint_restores_into_rocksdb_at_parallelism_2_and_3() {
    fjord_rocksdb::register();
    let expected = operators::expected_after_part1();
    for parallelism in [2, 3] {
        let dir = tempfile::tempdir().unwrap();
        restore_and_check_job(
            operators::GOLDEN,
            parallelism,
            &expected,
            rocksdb(dir.path()),
            &operators::job,
        );
    }
}
