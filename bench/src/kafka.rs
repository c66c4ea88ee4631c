//! Throughput of Kafka → Fjord → Kafka jobs on the embedded mini-cluster, against a running
//! broker, and of Fjord's Kafka client alone.
//!
//! ```text
//! cargo run --release -p fjord-bench --bin fjord-bench-kafka -- --bootstrap 127.0.0.1:9092 \
//!     --input perf-in [--records N] [--parallelism 2] [--checkpoint-interval-ms 10000] \
//!     [--jobs pass-through,keyed-count] [--guarantees at-least-once,exactly-once] [--client]
//! ```
//!
//! `bench/kafka/fjord-throughput.sh` starts a broker, fills the input topic with Kafka's own
//! `ProducerPerformance` (100-byte values of random letters), measures the broker's own rates
//! and then runs this binary against the same broker, so the figures sit side by side.
//!
//! Jobs (each reads the input topic from the earliest offset to the offsets it held when the
//! job started, `StoppingOffsets::Latest`, so it finishes; a fresh output topic per run):
//! - `pass-through`: every value unchanged to the output topic;
//! - `keyed-count`: keyed by the value's first two bytes (676 keys for letters), a running
//!   count per key, `key,count` to the output topic keyed by the key (one record out per record in).
//!
//! The figure is records read ÷ wall time from `execute` to its return (job start, the
//! bounded read, the sink's last flush or commit), in total and per core (÷ parallelism: each
//! subtask runs one source → map → sink chain or one side of the exchange). The output topic's
//! record count (end offsets; for exactly-once minus the transaction markers, read back with
//! read_committed) is checked against the input, so a run that lost or duplicated records is
//! reported as such, not as a figure.
//!
//! `--client` also measures Fjord's Kafka client alone on one partition: produce (plain
//! acks=all, idempotent, one transaction) and a read_committed fetch of what was produced.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context as _, Result, bail, ensure};
use bytes::Bytes;
use clap::Parser;
use fjord::StreamExecutionEnvironment;
use fjord_kafka::client::{
    ClientConfig, FetchOptions, IsolationLevel, KafkaClient, OffsetSpec, Producer, ProducerMode,
    ProducerRecord, TopicPartition,
};
use fjord_kafka::format::{CsvRow, RawBytes, Utf8, project, value_only};
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, StoppingOffsets};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Bootstrap servers of the broker.
    #[arg(long)]
    bootstrap: String,
    /// The input topic, already filled.
    #[arg(long, default_value = "perf-in")]
    input: String,
    /// Parallelism of the jobs.
    #[arg(long, default_value_t = 2)]
    parallelism: usize,
    /// Checkpoint interval (ms).
    #[arg(long, default_value_t = 10_000)]
    checkpoint_interval_ms: u64,
    /// Jobs to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pass-through,keyed-count"
    )]
    jobs: Vec<String>,
    /// Delivery guarantees of the sink.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "at-least-once,exactly-once"
    )]
    guarantees: Vec<String>,
    /// Partitions of each output topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Also measure the client alone (records per run).
    #[arg(long)]
    client: Option<u64>,
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut properties = BTreeMap::new();
    properties.insert("bootstrap.servers".to_string(), bootstrap.to_string());
    properties.insert("request.timeout.ms".to_string(), "60000".to_string());
    ClientConfig { properties }
}

/// Sum of the partitions' end offsets of `topic` (read_committed: the last stable offsets).
fn end_offsets(client: &mut KafkaClient, topic: &str) -> Result<(usize, i64)> {
    let meta = client.metadata(Some(&[topic.to_string()]))?;
    let n = *meta
        .topics
        .get(topic)
        .with_context(|| format!("topic {topic} does not exist"))?;
    let parts: Vec<TopicPartition> = (0..n)
        .map(|p| TopicPartition {
            topic: topic.into(),
            partition: p,
        })
        .collect();
    let ends = client.list_offsets(&parts, OffsetSpec::Latest)?;
    Ok((n as usize, ends.values().sum()))
}

/// Records of `topic` a read_committed consumer sees (reads every partition to its end).
fn count_committed(client: &mut KafkaClient, topic: &str) -> Result<u64> {
    let meta = client.metadata(Some(&[topic.to_string()]))?;
    let n = meta.topics[topic];
    let parts: Vec<TopicPartition> = (0..n)
        .map(|p| TopicPartition {
            topic: topic.into(),
            partition: p,
        })
        .collect();
    let ends = client.list_offsets(&parts, OffsetSpec::Latest)?;
    let mut positions = client.list_offsets(&parts, OffsetSpec::Earliest)?;
    let options = FetchOptions {
        isolation: IsolationLevel::ReadCommitted,
        ..FetchOptions::default()
    };
    let mut count = 0u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while positions.iter().any(|(tp, at)| *at < ends[tp]) {
        ensure!(
            Instant::now() < deadline,
            "reading {topic} back took > 600 s"
        );
        let wanted: BTreeMap<TopicPartition, i64> = positions
            .iter()
            .filter(|(tp, at)| **at < ends[*tp])
            .map(|(tp, at)| (tp.clone(), *at))
            .collect();
        for fetched in client.fetch(&wanted, &options)? {
            count += fetched.records.len() as u64;
            positions.insert(fetched.partition.clone(), fetched.next_offset);
        }
    }
    Ok(count)
}

fn guarantee(name: &str) -> Result<DeliveryGuarantee> {
    name.parse()
        .map_err(|e: fjord_kafka::KafkaError| anyhow::anyhow!("{e}"))
}

/// Runs one job; returns its wall time in seconds, and its attempts and the sink's metrics.
fn run_job(args: &Args, job: &str, g: &str, output: &str, run: u64) -> Result<(f64, String)> {
    let env = StreamExecutionEnvironment::get_execution_environment();
    env.set_parallelism(args.parallelism);
    env.enable_checkpointing(Duration::from_millis(args.checkpoint_interval_ms));
    let dir = tempfile::tempdir()?;
    let storage = format!("file://{}", dir.path().display());
    env.checkpoint_config(|c| c.storage = storage);
    let source = KafkaSource::builder()
        .bootstrap_servers(&args.bootstrap)
        .topics([args.input.as_str()])
        .group_id(format!("fjord-bench-{run}"))
        .property("commit.offsets.on.checkpoint", "false")
        .bounded(StoppingOffsets::Latest)
        .deserializer(value_only(RawBytes))
        .build()?;
    let prefix = format!("fjord-bench-{}-{run}", std::process::id());
    let values = env.from_source(source, "Source: Kafka").uid("source");
    match job {
        "pass-through" => {
            let sink = KafkaSink::builder()
                .bootstrap_servers(&args.bootstrap)
                .delivery_guarantee(guarantee(g)?)
                .transactional_id_prefix(&prefix)
                .record_serializer(
                    KafkaRecordSerializer::builder()
                        .topic(output)
                        .value(RawBytes)
                        .build()?,
                )
                .build()?;
            values
                .sink_to_transactional(sink, "Sink: Kafka")
                .uid("sink");
        }
        "keyed-count" => {
            let sink = KafkaSink::builder()
                .bootstrap_servers(&args.bootstrap)
                .delivery_guarantee(guarantee(g)?)
                .transactional_id_prefix(&prefix)
                .record_serializer(
                    KafkaRecordSerializer::builder()
                        .topic(output)
                        .key(project(|c: &(String, u64)| c.0.clone(), Utf8))
                        .value(CsvRow::<(String, u64)>::new())
                        .build()?,
                )
                .build()?;
            values
                .map(|v: Vec<u8>| {
                    let key = String::from_utf8_lossy(&v[..v.len().min(2)]).into_owned();
                    (key, 1u64)
                })
                .key_by(|(k, _): &(String, u64)| k.clone())
                .sum::<1>()
                .uid("count")
                .sink_to_transactional(sink, "Sink: Kafka")
                .uid("sink");
        }
        other => bail!("unknown job {other}: pass-through or keyed-count"),
    }
    let started = Instant::now();
    let result = env.execute(&format!("kafka-bench-{job}-{g}"))?;
    let secs = started.elapsed().as_secs_f64();
    // The sink's own account, shown when the output does not match the input.
    let sink: Vec<String> = [
        "recordsSent",
        "transactionsCommitted",
        "transactionsAborted",
        "commitFailures",
    ]
    .iter()
    .map(|m| {
        format!(
            "{m}={}",
            result
                .metrics
                .total("Sink: Kafka", &format!("KafkaSinkWriter.{m}"))
        )
    })
    .collect();
    Ok((
        secs,
        format!("attempts={} {}", result.attempts, sink.join(" ")),
    ))
}

fn client_bench(bootstrap: &str, records: u64) -> Result<()> {
    let mut admin = KafkaClient::connect(&config(bootstrap))?;
    let value = Bytes::from(vec![b'x'; 100]);
    let modes: Vec<(&str, ProducerMode)> = vec![
        ("plain (acks=all)", ProducerMode::Plain { acks: -1 }),
        ("idempotent", ProducerMode::Idempotent),
        (
            "transactional (one transaction)",
            ProducerMode::Transactional {
                transactional_id: format!("fjord-bench-client-{}", std::process::id()),
            },
        ),
    ];
    println!("| client run ({records} × 100 B, 1 partition) | records/s | MB/s |");
    println!("|---|---|---|");
    let mut last_topic = String::new();
    for (i, (name, mode)) in modes.into_iter().enumerate() {
        let topic = format!("client-bench-{}-{i}", std::process::id());
        admin.create_topic(&topic, 1, 1)?;
        let transactional = matches!(mode, ProducerMode::Transactional { .. });
        let mut producer = Producer::new(&config(bootstrap), mode)?;
        let tp = TopicPartition {
            topic: topic.clone(),
            partition: 0,
        };
        let started = Instant::now();
        for _ in 0..records {
            producer.send(
                &tp,
                ProducerRecord {
                    value: Some(value.clone()),
                    ..ProducerRecord::default()
                },
            )?;
        }
        if transactional {
            producer.commit()?;
        } else {
            producer.flush()?;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "| produce, {name} | {:.0} | {:.1} |",
            records as f64 / secs,
            records as f64 * 100.0 / secs / 1e6
        );
        last_topic = topic;
    }
    let started = Instant::now();
    let n = count_committed(&mut admin, &last_topic)?;
    let secs = started.elapsed().as_secs_f64();
    ensure!(n == records, "read back {n} of {records} records");
    println!(
        "| fetch, read_committed | {:.0} | {:.1} |",
        n as f64 / secs,
        n as f64 * 100.0 / secs / 1e6
    );
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut admin = KafkaClient::connect(&config(&args.bootstrap))
        .with_context(|| format!("connecting to {}", args.bootstrap))?;
    let (in_partitions, records) = end_offsets(&mut admin, &args.input)?;
    println!(
        "input {}: {records} records in {in_partitions} partitions; parallelism {}, checkpoints every {} ms",
        args.input, args.parallelism, args.checkpoint_interval_ms
    );
    println!("| job | guarantee | records | seconds | records/s | records/s per core |");
    println!("|---|---|---|---|---|---|");
    let mut run = 0u64;
    for job in &args.jobs {
        for g in &args.guarantees {
            run += 1;
            let output = format!("bench-out-{}-{run}", std::process::id());
            admin.create_topic(&output, args.partitions, 1)?;
            let (secs, sink) = run_job(&args, job, g, &output, run)?;
            // A commit returns once the coordinator logged it; the markers that make the records
            // readable follow asynchronously, so wait (bounded) for the last stable offsets to
            // cover the expected output before reading it back.
            let deadline = Instant::now() + Duration::from_secs(60);
            while end_offsets(&mut admin, &output)?.1 < records && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let written = count_committed(&mut admin, &output)?;
            let rate = records as f64 / secs;
            let ok = if written as i64 == records {
                String::new()
            } else {
                format!(" (output holds {written} records, not {records}; sink: {sink})")
            };
            println!(
                "| {job} | {g} | {records} | {secs:.2} | {rate:.0} | {:.0}{ok} |",
                rate / args.parallelism as f64
            );
        }
    }
    if let Some(n) = args.client {
        client_bench(&args.bootstrap, n)?;
    }
    Ok(())
}
