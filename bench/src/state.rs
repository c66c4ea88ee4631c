//! Checkpoint size, duration and restore time for large keyed state, heap versus RocksDB
//! (full versus incremental checkpoints).
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-state -- --megabytes 1024
//! ```
//!
//! The job writes `megabytes` of keyed state (one 100-byte value per key), then keeps updating
//! a small set of keys, with a checkpoint every `--interval-secs`. The first checkpoint after
//! the state is complete is a full one; with RocksDB later ones upload only new SST files.
//! Restore time is the time from submitting a job restored from the last checkpoint until it
//! runs.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Result, bail};
use clap::Parser;
use fjord::state::{StateBackendKind, ValueState, ValueStateDescriptor};
use fjord::{
    BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment,
};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Keyed state to build, in MiB.
    #[arg(long, default_value_t = 1024)]
    megabytes: u64,
    /// Seconds between checkpoints.
    #[arg(long, default_value_t = 5)]
    interval_secs: u64,
    /// Only this backend (`heap` or `rocksdb`); both by default.
    #[arg(long)]
    backend: Option<String>,
}

const VALUE_BYTES: usize = 100;

/// Stores a 100-byte value per key.
#[derive(Clone, Default)]
struct Store {
    state: Option<ValueState<Vec<u8>>>,
}

impl KeyedProcessFunction<u64, u64, u64> for Store {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some(ctx.get_state(&ValueStateDescriptor::new("payload"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        i: u64,
        _ctx: &mut KeyedProcessContext<'_, u64, u64>,
    ) -> Result<(), BoxError> {
        // Incompressible bytes, so compression does not hide the state's size.
        let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let v: Vec<u8> = (0..VALUE_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        self.state.as_ref().ok_or("not opened")?.update(v);
        Ok(())
    }
}

fn job(
    env: &StreamExecutionEnvironment,
    keys: u64,
    backend: &StateBackendKind,
    storage: &str,
    interval: Duration,
) {
    env.set_parallelism(1);
    env.set_state_backend(backend.clone());
    env.enable_checkpointing(interval);
    env.checkpoint_config(|c| {
        c.storage = storage.to_string();
        c.retained = 100; // nothing deleted, so storage growth = bytes uploaded
        c.retain_on_cancellation = true;
        c.timeout = Duration::from_secs(1800);
    });
    // First every key once, then updates to a few keys forever.
    env.from_generator(None, move |i| if i < keys { i } else { i % 1000 })
        .uid("keys")
        .key_by(|k: &u64| *k)
        .process(Store::default())
        .uid("store")
        .name("KeyedProcess")
        .for_each(|_x: u64| {});
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn run(name: &str, backend: StateBackendKind, megabytes: u64, interval: Duration) -> Result<()> {
    let keys = megabytes * 1024 * 1024 / VALUE_BYTES as u64;
    let storage_dir = tempfile::tempdir()?;
    let storage = format!("file://{}", storage_dir.path().display());
    let env = StreamExecutionEnvironment::new();
    job(&env, keys, &backend, &storage, interval);
    println!("| {name} |");
    let client = env.execute_async("state benchmark")?;
    let started = Instant::now();
    // Wait until every key was written, then for three checkpoints completed after that.
    let deadline = started + Duration::from_secs(3600);
    let mut full_at_ms: Option<i64> = None;
    let mut seen = 0;
    let mut previous_total = 0u64;
    let mut rows = Vec::new();
    while rows.len() < 3 {
        if Instant::now() > deadline || client.is_finished() {
            bail!("{name}: no checkpoints within the deadline");
        }
        std::thread::sleep(Duration::from_millis(200));
        if full_at_ms.is_none() {
            let written: u64 = client
                .io_metrics()
                .snapshot()
                .iter()
                .filter(|o| o.operator == "KeyedProcess")
                .map(|o| o.records_in)
                .sum();
            if written >= keys {
                full_at_ms = Some(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_millis() as i64,
                );
                println!(
                    "|   state written after | {:.1} s |",
                    started.elapsed().as_secs_f64()
                );
            }
        }
        let (history, failed) = client.checkpoint_history();
        if failed > 0 {
            bail!("{name}: {failed} checkpoints failed");
        }
        for c in history.iter().skip(seen) {
            seen += 1;
            let total = dir_size(storage_dir.path());
            let uploaded = total.saturating_sub(previous_total);
            previous_total = total;
            let after_full =
                full_at_ms.is_some_and(|t| c.completed_at_ms - c.duration_ms as i64 > t);
            println!(
                "|   checkpoint {} ({}) | {:.1} s | uploaded {:.1} MiB |",
                c.id,
                if after_full {
                    "full state"
                } else {
                    "state still growing"
                },
                c.duration_ms as f64 / 1000.0,
                uploaded as f64 / 1048576.0
            );
            if after_full {
                rows.push((c.id, c.duration_ms, uploaded, c.path.clone()));
            }
        }
    }
    client.cancel();
    let _ = client.wait();
    let shared = dir_size(storage_dir.path());
    println!("| {name} | {} MiB | {} keys |", megabytes, keys);
    println!(
        "|   storage used in total | {:.1} MiB |",
        shared as f64 / 1048576.0
    );

    // Restore time: from submit to running, restoring the last checkpoint.
    let latest = rows.last().map(|r| r.3.clone()).expect("rows");
    let env = StreamExecutionEnvironment::new();
    job(
        &env,
        keys,
        &backend,
        &format!("file://{}/restored", storage_dir.path().display()),
        Duration::from_secs(3600),
    );
    env.restore_from(&latest, false);
    let start = Instant::now();
    let client = env.execute_async("restored")?;
    while !client.is_running() {
        if client.is_finished() {
            bail!("{name}: restored job ended: {:?}", client.wait().err());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "|   restore (submit to running) | {:.1} s |",
        start.elapsed().as_secs_f64()
    );
    client.cancel();
    let _ = client.wait();
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    fjord_rocksdb::register();
    let interval = Duration::from_secs(args.interval_secs);
    let rocks_dir = tempfile::tempdir()?;
    if args.backend.as_deref().is_none_or(|b| b == "heap") {
        run(
            "heap (full snapshots)",
            StateBackendKind::Heap,
            args.megabytes,
            interval,
        )?;
    }
    if args.backend.as_deref().is_none_or(|b| b == "rocksdb") {
        run(
            "RocksDB (incremental)",
            StateBackendKind::RocksDb {
                dir: Some(rocks_dir.path().to_path_buf()),
            },
            args.megabytes,
            interval,
        )?;
    }
    Ok(())
}
