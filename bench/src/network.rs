//! Throughput of one channel of `(String, i64)` record batches: over loopback TCP through
//! Fjord's data plane (encode, socket, decode, credit) versus an in-process bounded queue.
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-network -- [--records N] [--batch B] [--capacity C] [--runs R]
//! ```
//!
//! Each mode runs `R` times; the median is reported in records per second.

use anyhow::Result;
use clap::Parser;
use fjord::network::bench::{Throughput, in_process, loopback};

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
}

fn median(mut runs: Vec<Throughput>) -> Throughput {
    runs.sort_by_key(|a| a.elapsed);
    runs[runs.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!("| channel | records | batch | capacity | time | records/s | MB/s on the wire |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    type Mode = fn(u64, usize, usize) -> fjord::Result<Throughput>;
    let modes: [(&str, Mode); 2] = [("in-process queue", in_process), ("loopback TCP", loopback)];
    for (name, mode) in modes {
        let runs = (0..args.runs.max(1))
            .map(|_| mode(args.records, args.batch, args.capacity))
            .collect::<fjord::Result<Vec<_>>>()?;
        let t = median(runs);
        let wire = if t.bytes > 0 {
            format!("{:.0}", t.bytes as f64 / 1e6 / t.elapsed.as_secs_f64())
        } else {
            "-".into()
        };
        println!(
            "| {name} | {} | {} | {} | {:.2} s | {:.2} M/s | {wire} |",
            t.records,
            args.batch,
            args.capacity,
            t.elapsed.as_secs_f64(),
            t.records_per_second() / 1e6
        );
    }
    Ok(())
}
