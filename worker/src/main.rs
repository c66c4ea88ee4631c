//! The stock `fjord` binary: the built-in example jobs and the Nexmark queries (`nexmark-qN`;
//! both the `stock-jobs` feature, which this binary requires) and whatever else the features
//! it is built with bring (SQL, manifests, Kubernetes HA by default; with `rocksdb` the
//! RocksDB state backend, which `main_with` registers).
//!
//! With the default `mimalloc` feature, mimalloc serves the binary's Rust allocations (see
//! docs/state-backends.md, "Allocator").

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let mut jobs = fjord_examples::registry();
    fjord_nexmark::register(&mut jobs);
    fjord_worker::main_with(jobs)
}
