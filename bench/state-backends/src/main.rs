//! Peak memory and throughput of keyed state with many keys, heap versus RocksDB.
//!
//! ```text
//! cargo run --release -p fjord-bench-backends -- --keys 10000000
//! ```
//!
//! Each workload reads `2 × keys` generated records `(i % keys, 1)` (every key twice, so the
//! state of every key is alive at once) at parallelism 1 into a discarding sink:
//! - `value`: a keyed process function counting in a `ValueState<u64>`;
//! - `rolling`: the rolling `sum` of a keyed stream;
//! - `window`: a tumbling event-time window of one hour with `reduce` (all records fall into
//!   one window per key, which fires at the end of input: every key's accumulator and
//!   timer are alive at once);
//! - `window-process`: the same window with a process function over its elements (window
//!   contents: two elements per key).
//!
//! Every (workload, backend) runs in a child process of its own, so its peak resident set
//! (`VmHWM` of `/proc/self/status`) is its own. Figures go to stdout as a Markdown table.

use anyhow::{Context, Result, bail};
use clap::Parser;
use fjord::state::{StateBackendKind, ValueState, ValueStateDescriptor};
use fjord::time::WatermarkStrategy;
use fjord::windows::{TimeWindow, TumblingEventTimeWindows, WindowContext};
use fjord::{
    BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment,
};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000_000)]
    keys: u64,
    /// Workloads to run (value, rolling, window, window-process).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "value,rolling,window,window-process"
    )]
    workloads: Vec<String>,
    /// Backends to run (heap, rocksdb).
    #[arg(long, value_delimiter = ',', default_value = "heap,rocksdb")]
    backends: Vec<String>,
    /// Directory of the RocksDB instances (default: the system's temporary directory).
    #[arg(long)]
    rocksdb_dir: Option<std::path::PathBuf>,
    /// Internal: run one (workload, backend) in this process and print its row.
    #[arg(long, hide = true)]
    child: Option<String>,
}

/// Counts per key in a `ValueState`.
#[derive(Clone, Default)]
struct Count {
    state: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<u64, (u64, u64), u64> for Count {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some(ctx.get_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (u64, u64),
        _ctx: &mut KeyedProcessContext<'_, u64, u64>,
    ) -> Result<(), BoxError> {
        let state = self.state.as_ref().ok_or("not opened")?;
        state.update(state.value().unwrap_or(0) + v.1);
        Ok(())
    }
}

fn peak_rss_mib() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/self/status")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM without a value")?
        .parse()?;
    Ok(kib / 1024.0)
}

fn run_one(
    workload: &str,
    backend: &str,
    keys: u64,
    dir: Option<std::path::PathBuf>,
) -> Result<()> {
    fjord_rocksdb::register();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.set_state_backend(match backend {
        "heap" => StateBackendKind::Heap,
        "rocksdb" => StateBackendKind::RocksDb { dir },
        other => bail!("unknown backend {other}; use heap or rocksdb"),
    });
    let records = 2 * keys;
    let input = env
        .from_generator(Some(records), move |i| (i % keys, 1u64))
        .uid("numbers")
        .assign_timestamps_and_watermarks(
            // Event time 0 for every record: one window per key, fired at end of input.
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|_: &(u64, u64), _| 0),
        )
        .key_by(|t: &(u64, u64)| t.0);
    match workload {
        "value" => {
            input
                .process(Count::default())
                .uid("count")
                .for_each(|_| {});
        }
        "rolling" => {
            input.sum::<1>().uid("rolling").for_each(|_| {});
        }
        "window" => {
            input
                .window(TumblingEventTimeWindows::of(Duration::from_secs(3600)))
                .reduce(|a: (u64, u64), b: (u64, u64)| (a.0, a.1 + b.1))
                .uid("window")
                .for_each(|_| {});
        }
        "window-process" => {
            input
                .window(TumblingEventTimeWindows::of(Duration::from_secs(3600)))
                .process(
                    |k: &u64,
                     ctx: &mut WindowContext<'_, TimeWindow, (u64, u64)>,
                     els: Vec<(u64, u64)>| {
                        ctx.collect((*k, els.len() as u64));
                    },
                )
                .uid("window")
                .for_each(|_| {});
        }
        other => bail!("unknown workload {other}"),
    };
    let started = Instant::now();
    env.execute(&format!("{workload} on {backend}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "| {workload} | {backend} | {keys} | {records} | {secs:.1} | {:.0} | {:.0} |",
        records as f64 / secs,
        peak_rss_mib()?
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(spec) = &args.child {
        let (workload, backend) = spec
            .split_once('@')
            .context("child spec is workload@backend")?;
        return run_one(workload, backend, args.keys, args.rocksdb_dir.clone());
    }
    println!("| workload | backend | keys | records | seconds | records/s | peak RSS (MiB) |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let exe = std::env::current_exe()?;
    for workload in &args.workloads {
        for backend in &args.backends {
            let mut cmd = std::process::Command::new(&exe);
            cmd.arg("--keys")
                .arg(args.keys.to_string())
                .arg("--child")
                .arg(format!("{workload}@{backend}"));
            if let Some(dir) = &args.rocksdb_dir {
                cmd.arg("--rocksdb-dir").arg(dir);
            }
            let status = cmd.status()?;
            if !status.success() {
                println!(
                    "| {workload} | {backend} | {} | failed: {status} | | | |",
                    args.keys
                );
            }
        }
    }
    Ok(())
}
