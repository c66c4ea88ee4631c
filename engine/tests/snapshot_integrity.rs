//! Every snapshot file is checked on restore: a flipped bit in `_metadata` or in a state file
//! fails the restore with an error naming the file, instead of restoring wrong state.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::CheckpointMetadata;
use fjord::sources::GeneratorSource;
use fjord::storage::{SnapshotStore, StorageOptions};
use std::time::{Duration, Instant};

mod failure_support;
use failure_support::file_url;

fn job(env: &StreamExecutionEnvironment, rate: f64) {
    env.set_parallelism(2);
    env.from_source(
        GeneratorSource::new(Some(1_000_000), |i| (i % 7, 1u64)).with_rate(rate),
        "numbers",
    )
    .uid("numbers")
    .set_parallelism(1)
    .key_by(|t: &(u64, u64)| t.0)
    .sum::<1>()
    .uid("counter")
    .collect();
}

/// Takes a savepoint of a running counting job into `dir`; returns its URL.
fn savepoint(dir: &std::path::Path) -> String {
    let env = StreamExecutionEnvironment::new();
    job(&env, 20_000.0);
    let client = env.execute_async("integrity").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !client.is_running() {
        assert!(Instant::now() < deadline, "the job did not start");
        std::thread::yield_now();
    }
    client.stop_with_savepoint(&file_url(dir), false).unwrap()
}

#[test]
fn every_single_bit_flip_in_metadata_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let url = savepoint(dir.path());
    let options = StorageOptions::default();
    let original = SnapshotStore::open(&url, &options)
        .unwrap()
        .get("_metadata")
        .unwrap();
    let scratch = SnapshotStore::open(
        &format!("memory://integrity-{}", rand::random::<u64>()),
        &options,
    )
    .unwrap();
    scratch.put("_metadata", original.clone()).unwrap();
    CheckpointMetadata::read(&scratch).expect("the intact metadata reads");
    let mut accepted = Vec::new();
    let flips = original.len() * 8;
    for bit in 0..flips {
        let mut bytes = original.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        scratch.put("_metadata", bytes).unwrap();
        match CheckpointMetadata::read(&scratch) {
            Ok(_) => accepted.push(bit),
            Err(e) => assert!(e.to_string().contains("_metadata"), "bit {bit}: {e}"),
        }
    }
    eprintln!(
        "{flips} single-bit flips of _metadata, {} accepted",
        accepted.len()
    );
    assert!(accepted.is_empty(), "flips accepted at bits {accepted:?}");
}

#[test]
fn a_flipped_bit_in_a_state_file_fails_the_restore_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = savepoint(dir.path());
    let store = SnapshotStore::open(&url, &StorageOptions::default()).unwrap();
    let meta = CheckpointMetadata::read(&store).unwrap();
    let file = meta.operators["counter"]
        .subtasks
        .iter()
        .find(|s| s.size > 0)
        .expect("the counter has state")
        .file
        .clone();
    let mut bytes = store.get(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    store.put(&file, bytes).unwrap();

    let env = StreamExecutionEnvironment::new();
    env.restore_from(&url, false);
    job(&env, 1e9);
    let err = env.execute("restore").unwrap_err().to_string();
    assert!(
        err.contains(&file) && err.contains("corrupt"),
        "the error names the file: {err}"
    );
}
