//! Throughput of one channel of `(String, i64)` record batches: over loopback TCP through
//! Fjord's data plane (encode, socket, decode, credit) versus an in-process bounded queue.
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-network -- [--records N] [--batch B] [--capacity C] [--runs R] [--tls]
//! ```
//!
//! Each mode runs `R` times; the median is reported in records per second. With `--tls` a
//! third mode runs the loopback channel over mutual TLS (`security.ssl.internal`), with a
//! throw-away CA and certificates made by `openssl` in a temporary directory; the modes then
//! alternate run by run, so a change in the machine's load hits both alike.

use anyhow::Result;
use clap::Parser;
use fjord::network::bench::{Throughput, in_process, loopback, loopback_tls};
use fjord::tls::{InternalTls, testing};

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
}

fn median(mut runs: Vec<Throughput>) -> Throughput {
    runs.sort_by_key(|a| a.elapsed);
    runs[runs.len() / 2]
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!("| channel | records | batch | capacity | time | records/s | MB/s on the wire |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
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
    let mut modes: Vec<(&str, Mode<'_>)> = vec![
        ("in-process queue", Box::new(in_process)),
        ("loopback TCP", Box::new(loopback)),
    ];
    if let Some(tls) = &tls {
        modes.push((
            "loopback TCP, mutual TLS",
            Box::new(move |r, b, c| loopback_tls(r, b, c, Some(tls))),
        ));
    }
    let mut runs: Vec<Vec<Throughput>> = vec![Vec::new(); modes.len()];
    for _ in 0..args.runs.max(1) {
        for (i, (_, mode)) in modes.iter().enumerate() {
            runs[i].push(mode(args.records, args.batch, args.capacity)?);
        }
    }
    for ((name, _), runs) in modes.iter().zip(runs) {
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
