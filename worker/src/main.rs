//! The `fjord` binary with the built-in example jobs and the Nexmark queries (`nexmark-qN`),
//! and, with the `rocksdb` feature, the RocksDB state backend (which `main_with` registers).

fn main() -> std::process::ExitCode {
    let mut jobs = fjord_examples::registry();
    fjord_nexmark::register(&mut jobs);
    fjord_worker::main_with(jobs)
}
