//! Throughput benchmarks of the Fjord engine on the embedded mini-cluster.
//!
//! ```text
//! cargo run --release -p fjord-bench -- [chained|keyed-sum|wordcount|all] [--records N] [--runs R]
//! ```
//!
//! Each benchmark runs `R` times and reports the median run; figures are records per second, in
//! total and per core used (a job at parallelism `p` keeps up to `p` cores busy per stage), and
//! records per second of CPU time the process spent in the run (all threads: what a core does,
//! whatever the number of threads and however busy the machine's other tenants keep it).

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cpu;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use cpu::process_cpu_time;
use fjord::StreamExecutionEnvironment;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Which benchmark to run.
    #[arg(value_enum, default_value = "all")]
    which: Which,
    /// Records per run (the keyed and chained benchmarks).
    #[arg(long, default_value_t = 50_000_000)]
    records: u64,
    /// Runs per benchmark; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Chained,
    KeyedSum,
    Wordcount,
    /// Keyed sum with checkpoints every 1 s and 10 s versus none (time-bounded runs).
    Checkpointing,
    All,
}

struct Figure {
    name: &'static str,
    records: u64,
    /// The median run: its wall time and the process's CPU time in it.
    elapsed: Run,
    cores: usize,
}

/// The wall and CPU time of one run.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: Duration,
}

impl Figure {
    fn print(&self) {
        let rate = self.records as f64 / self.elapsed.wall.as_secs_f64();
        println!(
            "| {} | {} | {:.2} s | {:.2} M/s | {:.2} M/s | {:.2} M |",
            self.name,
            self.records,
            self.elapsed.wall.as_secs_f64(),
            rate / 1e6,
            rate / 1e6 / self.cores as f64,
            self.records as f64 / self.elapsed.cpu.as_secs_f64() / 1e6
        );
    }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.wall);
    runs[runs.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Run> {
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let (start, cpu) = (Instant::now(), process_cpu_time());
        f()?;
        times.push(Run {
            wall: start.elapsed(),
            cpu: process_cpu_time() - cpu,
        });
    }
    Ok(median(times))
}

/// Source -> map -> filter -> sink, all chained in one task (parallelism 1).
fn chained(records: u64, runs: usize) -> Result<Figure> {
    let elapsed = timed(runs, || {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        env.from_sequence(0, records as i64 - 1)
            .map(|x: i64| x.wrapping_mul(3))
            .filter(|x: &i64| x & 1 == 0)
            .for_each(|x: i64| {
                black_box(x);
            });
        env.execute("chained")?;
        Ok(())
    })?;
    Ok(Figure {
        name: "chained map -> filter (p=1)",
        records,
        elapsed,
        cores: 1,
    })
}

/// key_by + rolling sum over 10,000 keys at parallelism 2 (sources, aggregation and sink at
/// parallelism 2, so records cross threads through the hash exchange).
fn keyed_sum(records: u64, runs: usize) -> Result<Figure> {
    let elapsed = timed(runs, || {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.from_generator(Some(records), |i| (i % 10_000, 1u64))
            .key_by(|t: &(u64, u64)| t.0)
            .sum::<1>()
            .for_each(|x: (u64, u64)| {
                black_box(x);
            });
        env.execute("keyed sum")?;
        Ok(())
    })?;
    Ok(Figure {
        name: "key_by + sum, 10,000 keys (p=2)",
        records,
        elapsed,
        cores: 2,
    })
}

/// Flink-style WordCount over a generated text file, counting words (records after the
/// tokenizer), at parallelism 2.
fn wordcount(runs: usize) -> Result<Figure> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("words.txt");
    let vocabulary: Vec<String> = (0..5_000).map(|i| format!("word{i}")).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut words = 0u64;
    let mut state = 42u64;
    for _line in 0..1_000_000 {
        for _ in 0..10 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            write!(
                file,
                "{} ",
                vocabulary[(state >> 33) as usize % vocabulary.len()]
            )?;
            words += 1;
        }
        writeln!(file)?;
    }
    file.flush()?;
    drop(file);
    let elapsed = timed(runs, || {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.read_text_file(&path)
            .flat_map(fjord_examples::wordcount::Tokenizer)
            .key_by_ref(|(w, _): &(String, u64)| w)
            .sum::<1>()
            .for_each(|x: (String, u64)| {
                black_box(x);
            });
        env.execute("wordcount")?;
        Ok(())
    })?;
    Ok(Figure {
        name: "file WordCount, 10 M words (p=2)",
        records: words,
        elapsed,
        cores: 2,
    })
}

/// Runs the keyed sum (10,000 keys, p=2) unbounded for `seconds`, with checkpoints every
/// `interval` to `file://` storage (or none), and returns records per second and the number
/// of completed checkpoints.
fn checkpointed_sum(interval: Option<Duration>, seconds: u64) -> Result<(f64, u64)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir()?;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    if let Some(i) = interval {
        env.enable_checkpointing(i);
        env.checkpoint_config(|c| c.storage = format!("file://{}", dir.path().display()));
    }
    let total = Arc::new(AtomicU64::new(0));
    let sink_total = total.clone();
    let mut local = 0u64;
    env.from_generator(None, |i| (i % 10_000, 1u64))
        .uid("numbers")
        .key_by(|t: &(u64, u64)| t.0)
        .sum::<1>()
        .uid("sum")
        .for_each(move |x: (u64, u64)| {
            black_box(x);
            local += 1;
            if local == 4096 {
                sink_total.fetch_add(local, Ordering::Relaxed);
                local = 0;
            }
        });
    let client = env.execute_async("checkpointed sum")?;
    // Warm up, then measure a fixed window.
    std::thread::sleep(Duration::from_secs(2));
    let start_count = total.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let count = total.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed();
    let checkpoints = client
        .latest_checkpoint()
        .and_then(|l| l.rsplit("chk-").next().and_then(|n| n.parse().ok()))
        .unwrap_or(0);
    client.cancel();
    let _ = client.wait();
    Ok((count as f64 / elapsed.as_secs_f64(), checkpoints))
}

/// Throughput with checkpoints every 10 s and 1 s versus none, in `rounds` interleaved rounds
/// (none, 10 s, 1 s, none, ...) so that slow drifts of a shared machine hit every setting alike;
/// prints every round and the median per setting.
fn checkpointing(rounds: usize) -> Result<()> {
    let settings: [Option<u64>; 3] = [None, Some(10), Some(1)];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); settings.len()];
    println!();
    println!("| round | none | 10 s | 1 s | checkpoints (10 s / 1 s) |");
    println!("|---|---|---|---|---|");
    for round in 0..rounds.max(1) {
        let mut row = Vec::new();
        let mut completed = Vec::new();
        for (i, secs) in settings.iter().enumerate() {
            let (rate, n) = checkpointed_sum(secs.map(Duration::from_secs), 20)?;
            rates[i].push(rate);
            row.push(format!("{:.2} M/s", rate / 1e6));
            if secs.is_some() {
                completed.push(n.to_string());
            }
        }
        println!(
            "| {round} | {} | {} |",
            row.join(" | "),
            completed.join(" / ")
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let none = median(&mut rates[0]);
    let ten = median(&mut rates[1]);
    let one = median(&mut rates[2]);
    println!(
        "| median | {:.2} M/s | {:.2} M/s ({:+.1} %) | {:.2} M/s ({:+.1} %) | |",
        none / 1e6,
        ten / 1e6,
        (ten / none - 1.0) * 100.0,
        one / 1e6,
        (one / none - 1.0) * 100.0
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "| benchmark | records | median time | records/s | records/s per core | records per CPU second |"
    );
    println!("|---|---|---|---|---|---|");
    if matches!(args.which, Which::Chained | Which::All) {
        chained(args.records, args.runs)?.print();
    }
    if matches!(args.which, Which::KeyedSum | Which::All) {
        keyed_sum(args.records / 5, args.runs)?.print();
    }
    if matches!(args.which, Which::Wordcount | Which::All) {
        wordcount(args.runs)?.print();
    }
    if matches!(args.which, Which::Checkpointing | Which::All) {
        checkpointing(args.runs)?;
    }
    Ok(())
}
