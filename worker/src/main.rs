//! The `fjord` binary with the built-in example jobs and the Nexmark queries (`nexmark-qN`).

fn main() -> std::process::ExitCode {
    // With the `rocksdb` feature, `FJORD_STATE_BACKEND=rocksdb` (or a job's
    // `set_state_backend`) selects RocksDB; without it only the heap backend exists.
    #[cfg(feature = "rocksdb")]
    fjord_rocksdb::register();
    let mut jobs = fjord_examples::registry();
    fjord_nexmark::register(&mut jobs);
    fjord_worker::main_with(jobs)
}
