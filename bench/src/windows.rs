//! Throughput of windows and joins on the embedded mini-cluster.
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-windows -- [--records N] [--runs R]
//!     [--parallelism 1,2] [--only tumbling] [--keys 10000]
//! ```
//!
//! Every job reads generated records `(key, value)` with 10,000 keys (`--keys`) and event time
//! `index / 10` ms (10 records per millisecond; bounded out-of-orderness of 1 s), keys them
//! and runs one windowed or joined operator (or a process function with timers) into a
//! discarding sink. Figures are the median of `R` runs: records per second in total and per
//! core (total / parallelism), and records per second of the CPU time the process spent in
//! that run (all threads: the source runs in a task of its own, so at parallelism 1 the job
//! keeps more than one core busy).

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cpu;

use anyhow::Result;
use clap::Parser;
use cpu::process_cpu_time;
use fjord::joins::IntervalJoinContext;
use fjord::state::{ValueState, ValueStateDescriptor};
use fjord::time::WatermarkStrategy;
use fjord::windows::{EventTimeSessionWindows, SlidingEventTimeWindows, TumblingEventTimeWindows};
use fjord::{
    AggregateFunction, DataStream, KeyedProcessContext, KeyedProcessFunction,
    StreamExecutionEnvironment,
};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Records per run (for the join: per input).
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Runs per benchmark; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Parallelisms to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    parallelism: Vec<usize>,
    /// Run only the benchmarks whose name contains this (e.g. `tumbling`).
    #[arg(long)]
    only: Option<String>,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
}

type Rec = (u64, i64);

fn source(env: &StreamExecutionEnvironment, records: u64, keys: u64, salt: u64) -> DataStream<Rec> {
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
        .with_timestamp_assigner(move |_: &Rec, ts| ts.unwrap_or(0));
    env.from_source(
        TimestampedGenerator {
            records,
            keys,
            salt,
        },
        "Source: generator",
    )
    .assign_timestamps_and_watermarks(strategy)
    .stream()
}

/// A parallel generator of `(key, 1)` records with timestamps, each subtask a contiguous
/// share of the indices (so its timestamps ascend).
struct TimestampedGenerator {
    records: u64,
    keys: u64,
    salt: u64,
}

struct Reader {
    next: u64,
    end: u64,
    keys: u64,
    salt: u64,
}

impl fjord::Source<Rec> for TimestampedGenerator {
    fn create_reader(
        &self,
        ctx: &fjord::RuntimeContext,
    ) -> std::result::Result<Box<dyn fjord::SourceReader<Rec>>, fjord::BoxError> {
        let (i, p) = (ctx.subtask_index as u64, ctx.parallelism as u64);
        Ok(Box::new(Reader {
            next: self.records * i / p,
            end: self.records * (i + 1) / p,
            keys: self.keys,
            salt: self.salt,
        }))
    }
}

impl fjord::SourceReader<Rec> for Reader {
    fn poll_next(
        &mut self,
        out: &mut fjord::SourceOutput<'_, Rec>,
    ) -> std::result::Result<fjord::SourceStatus, fjord::BoxError> {
        let stop = (self.next + 1024).min(self.end);
        while self.next < stop {
            let i = self.next;
            let key = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ self.salt) % self.keys;
            out.collect_with_timestamp((key, 1), (i / 10) as i64);
            self.next += 1;
        }
        Ok(if self.next >= self.end {
            fjord::SourceStatus::Finished
        } else {
            fjord::SourceStatus::MoreAvailable
        })
    }
}

#[derive(Clone)]
struct CountAgg;

impl AggregateFunction<Rec, u64, u64> for CountAgg {
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    fn add(&mut self, _: Rec, acc: u64) -> u64 {
        acc + 1
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// Counts per key and 10 s of event time in a process function, as Flink users hand-write a
/// tumbling window: a value state per key and an event-time timer at the end of each 10 s.
#[derive(Clone, Default)]
struct TimerCount {
    count: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<u64, Rec, u64> for TimerCount {
    fn open(&mut self, ctx: &fjord::RuntimeContext) -> std::result::Result<(), fjord::BoxError> {
        self.count = Some(ctx.get_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        _: Rec,
        ctx: &mut KeyedProcessContext<'_, u64, u64>,
    ) -> std::result::Result<(), fjord::BoxError> {
        let count = self.count.as_ref().expect("opened");
        count.update(count.value().unwrap_or(0) + 1);
        let ts = ctx.timestamp().unwrap_or(0);
        ctx.timer_service()
            .register_event_time_timer(ts - ts.rem_euclid(10_000) + 9_999);
        Ok(())
    }

    fn on_timer(
        &mut self,
        _: i64,
        ctx: &mut KeyedProcessContext<'_, u64, u64>,
    ) -> std::result::Result<(), fjord::BoxError> {
        let count = self.count.as_ref().expect("opened");
        if let Some(n) = count.value() {
            ctx.collect(n);
        }
        count.clear();
        Ok(())
    }
}

fn env(p: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(p);
    env
}

fn run(
    name: &str,
    p: usize,
    records: u64,
    build: impl Fn(&StreamExecutionEnvironment),
) -> Result<(f64, f64)> {
    let env = env(p);
    build(&env);
    let (started, cpu) = (Instant::now(), process_cpu_time());
    env.execute(name)?;
    Ok((
        records as f64 / started.elapsed().as_secs_f64(),
        records as f64 / (process_cpu_time() - cpu).as_secs_f64(),
    ))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let n = args.records;
    let keys = args.keys;
    println!(
        "| benchmark | parallelism | records | records/s | records/s per core | records per CPU second |"
    );
    println!("|---|---|---|---|---|---|");
    type Job = (&'static str, u64, Box<dyn Fn(&StreamExecutionEnvironment)>);
    let jobs: Vec<Job> = vec![
        (
            "tumbling 10 s sum",
            n,
            Box::new(move |env| {
                source(env, n, keys, 0)
                    .key_by(|r: &Rec| r.0)
                    .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
                    .reduce(|a: Rec, b: Rec| (a.0, a.1 + b.1))
                    .for_each(|_| {});
            }),
        ),
        (
            "process function: 10 s count with timers",
            n,
            Box::new(move |env| {
                source(env, n, keys, 0)
                    .key_by(|r: &Rec| r.0)
                    .process(TimerCount::default())
                    .for_each(|_| {});
            }),
        ),
        (
            "sliding 10 s / 2 s count",
            n,
            Box::new(move |env| {
                source(env, n, keys, 0)
                    .key_by(|r: &Rec| r.0)
                    .window(SlidingEventTimeWindows::of(
                        Duration::from_secs(10),
                        Duration::from_secs(2),
                    ))
                    .aggregate(CountAgg)
                    .for_each(|_| {});
            }),
        ),
        (
            "session (gap 500 ms) count",
            n,
            Box::new(move |env| {
                source(env, n, keys, 0)
                    .key_by(|r: &Rec| r.0)
                    .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
                        500,
                    )))
                    .aggregate(CountAgg)
                    .for_each(|_| {});
            }),
        ),
        (
            "interval join ±50 ms (records of both inputs)",
            2 * n,
            Box::new(move |env| {
                let left = source(env, n, keys, 0).key_by(|r: &Rec| r.0);
                let right = source(env, n, keys, 0x5555).key_by(|r: &Rec| r.0);
                left.interval_join(&right)
                    .between_millis(-50, 50)
                    .process(|a: &Rec, b: &Rec, ctx: &mut IntervalJoinContext<'_, u64>| {
                        ctx.collect(a.0 + b.0)
                    })
                    .for_each(|_| {});
            }),
        ),
    ];
    let chosen = jobs
        .iter()
        .filter(|(name, ..)| args.only.as_ref().is_none_or(|o| name.contains(o.as_str())));
    for (name, records, build) in chosen {
        for &p in &args.parallelism {
            let mut rates: Vec<(f64, f64)> = (0..args.runs.max(1))
                .map(|_| run(name, p, *records, build))
                .collect::<Result<_>>()?;
            rates.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (median, per_cpu) = rates[rates.len() / 2];
            println!(
                "| {name} | {p} | {records} | {:.0} | {:.0} | {:.0} |",
                median,
                median / p as f64,
                per_cpu
            );
        }
    }
    Ok(())
}
