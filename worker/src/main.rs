//! The `fjord` binary with the built-in example jobs.

fn main() -> std::process::ExitCode {
    // With the `rocksdb` feature, `FJORD_STATE_BACKEND=rocksdb` (or a job's
    // `set_state_backend`) selects RocksDB; without it only the heap backend exists.
    #[cfg(feature = "rocksdb")]
    fjord_rocksdb::register();
    fjord_worker::main_with(fjord_examples::registry())
}
