//! The `fjord` binary with the built-in example jobs (and, with the `rocksdb` feature, the
//! RocksDB state backend, which `main_with` registers).

fn main() -> std::process::ExitCode {
    fjord_worker::main_with(fjord_examples::registry())
}
