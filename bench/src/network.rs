//! Throughput of one channel of `(String, i64)` record batches: over loopback TCP through
//! Fjord's data plane (encode, socket, decode, credit) versus an in-process bounded queue
//! (batches encoded by the producer and decoded by the consumer, as tasks do), and the same
//! queue with the batches passed as objects (how tasks used it before).
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-network -- [--records N] [--batch B] [--capacity C] [--runs R] [--tls]
//! ```
//!
//! Each mode runs `R` times; the median is reported in records per second, with the CPU time
//! the process spent per million records (all threads: producer, consumer and the data
//! plane's; the process CPU clock, which also counts threads that ended). With `--tls` a
//! third mode runs the loopback channel over mutual TLS (`security.ssl.internal`), with a
//! throw-away CA and certificates made by `openssl` in a temporary directory; the modes then
//! alternate run by run, so a change in the machine's load hits both alike, and a last line
//! gives TLS's cost in throughput and in CPU time.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cpu;

use anyhow::Result;
use clap::Parser;
use cpu::process_cpu_time;
use fjord::network::bench::{Throughput, in_process, in_process_objects, loopback, loopback_tls};
use fjord::tls::{InternalTls, testing};
use std::time::Duration;

#[derive(Parser)]
struct Args {
    /// Records per run.
    #[arg(long, default_value_t = 5_000_000)]
    records: u64,
    /// Records per batch (the engine's default batch size is 1024).
    #[arg(long, default_value_t = 1024)]
    batch: usize,
    /// Channel capacity in batches (credits on the network channel).
    #[arg(long, default_value_t = 16)]
    capacity: usize,
    /// Runs per mode; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Also measure the loopback channel over mutual TLS.
    #[arg(long)]
    tls: bool,
    /// Run one mode only (`in-process`, `tcp` or `tls`): to profile it, e.g. under `perf record`.
    #[arg(long)]
    only: Option<String>,
}

/// One run: what the channel measured and the CPU time the process spent meanwhile.
#[derive(Clone, Copy)]
struct Run {
    throughput: Throughput,
    cpu: Duration,
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|a| a.throughput.elapsed);
    runs[runs.len() / 2]
}

/// CPU seconds per million records of a run.
fn cpu_per_million(run: &Run) -> f64 {
    run.cpu.as_secs_f64() * 1e6 / run.throughput.records as f64
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "| channel | records | batch | capacity | time | records/s | MB/s on the wire | CPU s per M records |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let dir = tempfile::tempdir()?;
    let tls = if args.tls {
        testing::ca(dir.path(), "bench-ca");
        Some(InternalTls::load(&testing::leaf(
            dir.path(),
            "bench-ca",
            "bench",
        ))?)
    } else {
        None
    };
    type Mode<'a> = Box<dyn Fn(u64, usize, usize) -> fjord::Result<Throughput> + 'a>;
    // (what `--only` calls it, the table's name, the run)
    let mut modes: Vec<(&str, &str, Mode<'_>)> = vec![
        ("in-process", "in-process queue", Box::new(in_process)),
        ("tcp", "loopback TCP", Box::new(loopback)),
    ];
    if let Some(tls) = &tls {
        modes.push((
            "tls",
            "loopback TCP, mutual TLS",
            Box::new(move |r, b, c| loopback_tls(r, b, c, Some(tls))),
        ));
    }
    modes.push((
        "objects",
        "in-process queue, batches as objects",
        Box::new(in_process_objects),
    ));
    if let Some(only) = &args.only {
        let index = modes.iter().position(|m| m.0 == only).ok_or_else(|| {
            anyhow::anyhow!("--only takes in-process, tcp, objects or tls (with --tls)")
        })?;
        modes = vec![modes.swap_remove(index)];
    }
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); modes.len()];
    for _ in 0..args.runs.max(1) {
        for (i, (_, _, mode)) in modes.iter().enumerate() {
            let before = process_cpu_time();
            let throughput = mode(args.records, args.batch, args.capacity)?;
            let cpu = process_cpu_time() - before;
            runs[i].push(Run { throughput, cpu });
        }
    }
    let medians: Vec<Run> = runs.into_iter().map(median).collect();
    for ((_, name, _), run) in modes.iter().zip(&medians) {
        let t = run.throughput;
        let wire = if t.bytes > 0 {
            format!("{:.0}", t.bytes as f64 / 1e6 / t.elapsed.as_secs_f64())
        } else {
            "-".into()
        };
        println!(
            "| {name} | {} | {} | {} | {:.2} s | {:.2} M/s | {wire} | {:.3} |",
            t.records,
            args.batch,
            args.capacity,
            t.elapsed.as_secs_f64(),
            t.records_per_second() / 1e6,
            cpu_per_million(run)
        );
    }
    let median_of = |key: &str| {
        modes
            .iter()
            .zip(&medians)
            .find_map(|(m, run)| (m.0 == key).then_some(run))
    };
    if let (Some(plain), Some(tls)) = (median_of("tcp"), median_of("tls")) {
        let throughput =
            1.0 - tls.throughput.records_per_second() / plain.throughput.records_per_second();
        let cpu = cpu_per_million(tls) / cpu_per_million(plain) - 1.0;
        println!(
            "\nTLS cost: {:.1} % of the throughput, {:.1} % more CPU time per record",
            throughput * 100.0,
            cpu * 100.0
        );
    }
    Ok(())
}
