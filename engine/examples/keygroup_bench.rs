//! The cost of key groups on the keyBy hot path: `assign_to_key_group` per key type, and the
//! engine's `key_by + sum` pipeline (as in `fjord-bench keyed-sum`) with `u64` and `String`
//! keys, in one binary that builds with the engine alone.
//!
//! ```text
//! cargo run --release -p fjord --example keygroup_bench -- [records] [runs]
//! ```
//!
//! Prints the median of `runs` (default 3) as Markdown table rows.

use fjord::StreamExecutionEnvironment;
use fjord::keygroup::assign_to_key_group;
use std::hint::black_box;
use std::time::{Duration, Instant};

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn timed(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn row(name: &str, n: u64, elapsed: Duration) {
    let per = elapsed.as_nanos() as f64 / n as f64;
    let rate = n as f64 / elapsed.as_secs_f64() / 1e6;
    println!("| {name} | {n} | {per:.2} ns | {rate:.1} M/s |");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let records: u64 = args
        .get(1)
        .map_or(4_000_000, |s| s.parse().expect("records"));
    let runs: usize = args.get(2).map_or(3, |s| s.parse().expect("runs"));

    println!("| benchmark | items | per item | rate |");
    println!("|---|---|---|---|");
    let n = 10 * records;
    let d = timed(runs, || {
        for i in 0..n {
            black_box(assign_to_key_group(&black_box(i), 128));
        }
    });
    row("assign_to_key_group(u64)", n, d);
    let d = timed(runs, || {
        for i in 0..n {
            black_box(assign_to_key_group(&black_box((i, i ^ 7)), 128));
        }
    });
    row("assign_to_key_group((u64, u64))", n, d);
    let words: Vec<String> = (0..10_000).map(|i| format!("word-{i}")).collect();
    let d = timed(runs, || {
        for i in 0..n {
            black_box(assign_to_key_group(
                black_box(&words[(i % 10_000) as usize]),
                128,
            ));
        }
    });
    row("assign_to_key_group(String ~9 bytes)", n, d);

    let d = timed(runs, || {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.from_generator(Some(records), |i| (i % 10_000, 1u64))
            .key_by(|t: &(u64, u64)| t.0)
            .sum::<1>()
            .for_each(|x: (u64, u64)| {
                black_box(x);
            });
        env.execute("keyed sum").expect("runs");
    });
    row("key_by + sum, 10,000 u64 keys (p=2)", records, d);

    let d = timed(runs, || {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.from_generator(Some(records), |i| (format!("word-{}", i % 10_000), 1u64))
            .key_by(|t: &(String, u64)| t.0.clone())
            .sum::<1>()
            .for_each(|x: (String, u64)| {
                black_box(x);
            });
        env.execute("keyed sum, strings").expect("runs");
    });
    row("key_by + sum, 10,000 String keys (p=2)", records, d);
}
