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
//!
//! With `--overhead-rounds N` it measures instead what checkpoints cost a job with that much
//! RocksDB state: the state is written once and checkpointed, then jobs restored from that
//! checkpoint update random keys across the whole state at full speed, alternately without
//! checkpoints and with one every `--interval-secs`, `N` rounds of each; each prints the
//! records per second and the process's CPU time per million records over `--measure-secs`
//! after `--warmup-secs` (long enough for the first checkpoint after the restore, which
//! uploads the whole state into the new job's storage), the checkpoints completed in that
//! time and the storage the last two of them use.
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-state -- --megabytes 1024 \
//!     --interval-secs 10 --overhead-rounds 3
//! ```

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cpu;

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
    /// Measure the throughput cost of checkpoints with this many rounds (RocksDB only).
    #[arg(long)]
    overhead_rounds: Option<u32>,
    /// Seconds measured per run of the overhead measurement.
    #[arg(long, default_value_t = 60)]
    measure_secs: u64,
    /// Seconds a restored job runs before it is measured.
    #[arg(long, default_value_t = 30)]
    warmup_secs: u64,
}

/// What the job does after it wrote every key once.
#[derive(Clone, Copy, PartialEq)]
enum Updates {
    /// Updates 1,000 keys: checkpoints after the fill upload almost nothing.
    Few,
    /// Updates random keys across the whole state, so every checkpoint has new files.
    Spread,
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
    interval: Option<Duration>,
    updates: Updates,
) {
    env.set_parallelism(1);
    env.set_state_backend(backend.clone());
    if let Some(interval) = interval {
        env.enable_checkpointing(interval);
    }
    env.checkpoint_config(|c| {
        c.storage = storage.to_string();
        // Few updates: nothing deleted, so storage growth = bytes uploaded. Spread updates
        // upload gigabytes a minute (compaction output); only the last two are kept.
        c.retained = if updates == Updates::Few { 100 } else { 2 };
        c.retain_on_cancellation = true;
        c.timeout = Duration::from_secs(1800);
    });
    // First every key once, then updates forever.
    env.from_generator(None, move |i| match (i < keys, updates) {
        (true, _) => i,
        (false, Updates::Few) => i % 1000,
        (false, Updates::Spread) => (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % keys,
    })
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

/// Keys holding `megabytes` of values.
fn keys_for(megabytes: u64) -> u64 {
    megabytes * 1024 * 1024 / VALUE_BYTES as u64
}

/// Records the keyed operator has taken in so far.
fn records_in(client: &fjord::JobClient) -> u64 {
    client
        .io_metrics()
        .snapshot()
        .iter()
        .filter(|o| o.operator == "KeyedProcess")
        .map(|o| o.records_in)
        .sum()
}

/// Waits for a job writing `keys` keys: one step of at most 200 ms, failing past the
/// deadline or when the job ended, and noting when every key was written.
struct FillWatch {
    started: Instant,
    deadline: Instant,
    /// When every key was written (ms since the epoch).
    full_at_ms: Option<i64>,
}

impl FillWatch {
    fn new() -> Self {
        let started = Instant::now();
        FillWatch {
            started,
            deadline: started + Duration::from_secs(3600),
            full_at_ms: None,
        }
    }

    /// One step; `failure` is the error past the deadline.
    fn step(&mut self, client: &fjord::JobClient, keys: u64, failure: &str) -> Result<()> {
        if Instant::now() > self.deadline || client.is_finished() {
            bail!("{failure}");
        }
        std::thread::sleep(Duration::from_millis(200));
        if self.full_at_ms.is_none() && records_in(client) >= keys {
            self.full_at_ms = Some(now_ms());
            println!(
                "|   state written after | {:.1} s |",
                self.started.elapsed().as_secs_f64()
            );
        }
        Ok(())
    }
}

fn run(name: &str, backend: StateBackendKind, megabytes: u64, interval: Duration) -> Result<()> {
    let keys = keys_for(megabytes);
    let storage_dir = tempfile::tempdir()?;
    let storage = format!("file://{}", storage_dir.path().display());
    let env = StreamExecutionEnvironment::new();
    job(&env, keys, &backend, &storage, Some(interval), Updates::Few);
    println!("| {name} |");
    let client = env.execute_async("state benchmark")?;
    // Wait until every key was written, then for three checkpoints completed after that.
    let mut watch = FillWatch::new();
    let mut seen = 0;
    let mut previous_total = 0u64;
    let mut rows = Vec::new();
    while rows.len() < 3 {
        watch.step(
            &client,
            keys,
            &format!("{name}: no checkpoints within the deadline"),
        )?;
        let full_at_ms = watch.full_at_ms;
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
        Some(Duration::from_secs(3600)),
        Updates::Few,
    );
    env.restore_from(&latest, false);
    let start = Instant::now();
    let client = running(env.execute_async("restored")?, name)?;
    println!(
        "|   restore (submit to running) | {:.1} s |",
        start.elapsed().as_secs_f64()
    );
    client.cancel();
    let _ = client.wait();
    Ok(())
}

/// Waits until a restored job runs and returns its client; fails with why it ended if it
/// ended first.
fn running(client: fjord::JobClient, what: &str) -> Result<fjord::JobClient> {
    while !client.is_running() {
        if client.is_finished() {
            bail!("{what}: restored job ended: {:?}", client.wait().err());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(client)
}

/// Epoch milliseconds now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes every key once into RocksDB, checkpointing into `storage` (a local directory), and
/// returns the path of a checkpoint taken after that.
fn fill(keys: u64, storage: &std::path::Path) -> Result<String> {
    let rocks_dir = tempfile::tempdir()?;
    let backend = StateBackendKind::RocksDb {
        dir: Some(rocks_dir.path().to_path_buf()),
    };
    let env = StreamExecutionEnvironment::new();
    let interval = Duration::from_secs(10);
    let url = format!("file://{}", storage.display());
    job(&env, keys, &backend, &url, Some(interval), Updates::Spread);
    let client = env.execute_async("fill")?;
    let mut watch = FillWatch::new();
    loop {
        watch.step(
            &client,
            keys,
            "the fill did not complete a checkpoint of the whole state",
        )?;
        let (history, _) = client.checkpoint_history();
        if let (Some(t), Some(c)) = (watch.full_at_ms, history.last())
            && c.completed_at_ms - c.duration_ms as i64 > t
        {
            println!(
                "checkpoint {} of the whole state: {:.1} s; {:.0} MiB in the fill's storage",
                c.id,
                c.duration_ms as f64 / 1000.0,
                dir_size(storage) as f64 / 1048576.0
            );
            let path = c.path.clone();
            client.cancel();
            let _ = client.wait();
            return Ok(path);
        }
    }
}

/// What one restored run measured.
struct Run {
    /// Records per second over the measured seconds.
    rate: f64,
    /// CPU seconds of the process per million records over them.
    cpu_per_million: f64,
    /// Checkpoints completed in them.
    taken: Vec<fjord::checkpoint::CompletedCheckpoint>,
    /// Checkpoints failed in the whole run.
    failed: u64,
    /// Bytes in the storage at their end (the last two checkpoints).
    stored: u64,
}

/// A job restored from `from` updating random keys in RocksDB, with checkpoints into `storage`
/// (a local directory) every `interval` or none, measured for `measured` after `warmup`.
fn measure(
    keys: u64,
    from: &str,
    storage: &std::path::Path,
    interval: Option<Duration>,
    (warmup, measured): (Duration, Duration),
) -> Result<Run> {
    // A RocksDB directory of its own, deleted after the run: a restored instance is as large
    // as the state.
    let rocks_dir = tempfile::tempdir()?;
    let backend = StateBackendKind::RocksDb {
        dir: Some(rocks_dir.path().to_path_buf()),
    };
    let env = StreamExecutionEnvironment::new();
    let url = format!("file://{}", storage.display());
    job(&env, keys, &backend, &url, interval, Updates::Spread);
    env.restore_from(from, false);
    let client = running(env.execute_async("updates")?, "updates")?;
    std::thread::sleep(warmup);
    let (start, n0, t0) = (Instant::now(), records_in(&client), now_ms());
    let cpu0 = cpu::process_cpu_time().as_secs_f64();
    std::thread::sleep(measured);
    let (n1, secs, t1) = (records_in(&client), start.elapsed().as_secs_f64(), now_ms());
    let (cpu1, stored) = (cpu::process_cpu_time().as_secs_f64(), dir_size(storage));
    let (history, failed) = client.checkpoint_history();
    client.cancel();
    let _ = client.wait();
    let records = (n1 - n0) as f64;
    Ok(Run {
        rate: records / secs,
        cpu_per_million: (cpu1 - cpu0) / records * 1e6,
        taken: history
            .into_iter()
            .filter(|c| c.completed_at_ms >= t0 && c.completed_at_ms <= t1)
            .collect(),
        failed,
        stored,
    })
}

/// The throughput cost of checkpoints with `megabytes` of RocksDB state.
fn overhead(args: &Args, rounds: u32) -> Result<()> {
    let keys = keys_for(args.megabytes);
    let storage_dir = tempfile::tempdir()?;
    let from = fill(keys, &storage_dir.path().join("fill"))?;
    let interval = Duration::from_secs(args.interval_secs);
    let times = (
        Duration::from_secs(args.warmup_secs),
        Duration::from_secs(args.measure_secs),
    );
    println!(
        "| round | checkpoints | records/s | CPU s per M records | checkpoints completed | durations | storage at the end |"
    );
    println!("|---|---|---|---|---|---|---|");
    for round in 0..rounds {
        // Alternate which setting goes first, so slow drifts hit both alike.
        let order = if round % 2 == 0 {
            [None, Some(interval)]
        } else {
            [Some(interval), None]
        };
        for setting in order {
            let dir = storage_dir
                .path()
                .join(format!("r{round}-{}", setting.map_or(0, |i| i.as_secs())));
            let run = measure(keys, &from, &dir, setting, times)?;
            // A run without checkpoints wrote nothing.
            let _ = std::fs::remove_dir_all(&dir);
            let durations: Vec<String> = run
                .taken
                .iter()
                .map(|c| format!("{:.1} s", c.duration_ms as f64 / 1000.0))
                .collect();
            println!(
                "| {round} | {} | {:.0} | {:.2} | {}{} | {} | {:.0} MiB |",
                setting.map_or("none".to_string(), |i| format!("every {} s", i.as_secs())),
                run.rate,
                run.cpu_per_million,
                run.taken.len(),
                if run.failed > 0 {
                    format!(" ({} failed)", run.failed)
                } else {
                    String::new()
                },
                durations.join(", "),
                run.stored as f64 / 1048576.0,
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    fjord_rocksdb::register();
    if let Some(rounds) = args.overhead_rounds {
        return overhead(&args, rounds);
    }
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
