//! The Kinesis source against a real kinesalite server (scripts/infra/kinesis.sh): the SDK
//! client, round trips, exactly-once across a job failure, resharding, a server restart and
//! malformed records.

mod support;

use support::Server;

/// The AWS SDK client works against the server: SigV4-signed CBOR/JSON requests create a
/// stream, put records and read them back in order with their keys.
#[test]
fn sdk_client_creates_puts_and_reads() {
    let server = Server::shared();
    server.create_stream("sdk-proof", 2);
    let shards = server.client().list_shards("sdk-proof").unwrap();
    assert_eq!(shards.len(), 2);
    assert!(
        shards
            .iter()
            .all(|s| s.parent.is_none() && s.ending_sequence_number.is_none())
    );
    let records: Vec<(String, String)> = (0..50)
        .map(|i| (format!("k{}", i % 5), format!("v{i}")))
        .collect();
    server.put("sdk-proof", &records);
    let read = server.read_all("sdk-proof");
    assert_eq!(read.len(), 50);
    // Per key, the order of the puts.
    for k in 0..5 {
        let key = format!("k{k}");
        let got: Vec<&str> = read
            .iter()
            .filter(|r| r.1 == key)
            .map(|r| r.2.as_str())
            .collect();
        let want: Vec<String> = (0..50)
            .filter(|i| i % 5 == k)
            .map(|i| format!("v{i}"))
            .collect();
        assert_eq!(got, want, "order of key {key}");
    }
}

/// A record's arrival time, given back as an AT_TIMESTAMP start, starts at that record: with
/// arrivals about a millisecond apart, none earlier comes too. (The SDK parses arrival times through
/// an `f64`; truncated, half of them came out a millisecond early, and a start at such a time
/// also read the record before. CI stop 41 failed on that.)
#[test]
fn at_timestamp_of_a_records_arrival_starts_at_that_record() {
    use fjord_kinesis::client::IteratorStart;
    let server = Server::shared();
    let stream = "arrivals";
    server.create_stream(stream, 1);
    // Single-record puts from 8 threads at once: the server takes them one after the other,
    // so many arrivals are a millisecond apart (about a fifth of them here; the unit test of
    // the rounding in client.rs does not depend on timing).
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..25 {
                    server.put(stream, &[("k".to_string(), format!("v{t}-{i}"))]);
                }
            });
        }
    });
    let client = server.client();
    let shard = client.list_shards(stream).unwrap().remove(0).shard_id;
    let read_from = |start: &IteratorStart| {
        let it = client
            .shard_iterator(stream, &shard, start)
            .unwrap()
            .unwrap();
        client.get_records(stream, &it, 10_000).unwrap().records
    };
    let all = read_from(&IteratorStart::TrimHorizon);
    assert_eq!(all.len(), 200);
    let mut checked = 0;
    for (i, r) in all.iter().enumerate() {
        if i > 0 && all[i - 1].arrival_timestamp == r.arrival_timestamp {
            continue; // two puts in one millisecond: the start is the first of them
        }
        let from = read_from(&IteratorStart::AtTimestamp(r.arrival_timestamp));
        assert_eq!(
            from.first().map(|f| &f.data),
            Some(&r.data),
            "AT_TIMESTAMP {} (the arrival of record {i})",
            r.arrival_timestamp
        );
        assert_eq!(from.len(), all.len() - i);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} distinct arrival times");
}

use fjord::StreamExecutionEnvironment;
use fjord::sinks::ExactlyOnceFileSink;
use fjord_e2e::jobs::{checkpointed_env, committed, counts, scratch_dir, wait_for};
use fjord_kinesis::{KinesisSource, OnMalformed, StartingPosition};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

/// `n` records `(key, "key:i")` with keys `k0..k9`, numbered from `from`.
fn numbered(from: u64, n: u64) -> Vec<(String, String)> {
    (from..from + n)
        .map(|i| {
            let k = format!("k{}", i % 10);
            (k.clone(), format!("{k}:{i}"))
        })
        .collect()
}

fn text_source(server: &Server, stream: &str) -> KinesisSource<String> {
    KinesisSource::builder()
        .config(server.config())
        .stream(stream)
        .starting_position(StartingPosition::TrimHorizon)
        .discovery_interval(Duration::from_millis(200))
        .value_deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap()
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// Reads `n` records of `stream` at parallelism 2 into exactly-once files, failing the job
/// once at record `fail_at` if given; returns the committed lines and the restarts.
fn read_exactly_once(
    server: &Server,
    stream: &str,
    n: usize,
    fail_at: Option<u64>,
) -> (Vec<String>, u32) {
    let dir = scratch_dir("kinesis", stream);
    let env = checkpointed_env(&dir);
    env.set_parallelism(2);
    let files = dir.join("out");
    env.from_source(text_source(server, stream), "Source: Kinesis")
        .uid("kinesis")
        .map(move |s: String| {
            let i: u64 = s.split(':').nth(1).unwrap().parse().unwrap();
            if Some(i) == fail_at && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
                panic!("injected failure at record {i}");
            }
            s
        })
        .uid("map")
        .sink_to_transactional(
            ExactlyOnceFileSink::new(format!("file://{}", files.display())),
            "files",
        )
        .uid("files");
    let job = env.execute_async(stream).unwrap();
    wait_for("every record committed", LONG, || {
        committed(&files).len() >= n
    });
    let restarts = job.restarts();
    job.cancel();
    let _ = job.wait();
    let lines = committed(&files);
    let _ = std::fs::remove_dir_all(&dir);
    (lines, restarts)
}

/// Exactly-once: a job failing mid-stream (restarted from its checkpoint, each shard read again
/// after the sequence number the checkpoint holds) commits the same output as a failure-free
/// run: every record once.
#[test]
fn exactly_once_source_survives_a_job_failure() {
    let server = Server::shared();
    let n = 3000;
    for stream in ["eo-clean", "eo-failure"] {
        server.create_stream(stream, 3);
        server.put(stream, &numbered(0, n));
    }
    let (clean, restarts) = read_exactly_once(server, "eo-clean", n as usize, None);
    assert_eq!(restarts, 0);
    let (failed, restarts) = read_exactly_once(server, "eo-failure", n as usize, Some(n / 2));
    assert!(restarts >= 1, "the injected failure restarted the job");
    let (c, f) = (counts(&clean), counts(&failed));
    assert_eq!(c.len() as u64, n, "every record read");
    assert!(c.values().all(|k| *k == 1));
    let twice: Vec<_> = f.iter().filter(|(_, k)| **k > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "records committed twice after the failure: {twice:?}"
    );
    assert_eq!(
        f, c,
        "the failure run commits what the failure-free run commits"
    );
}

/// What a job's map saw, per key, in order (the readers run in this process).
type Seen = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

fn run_collecting(
    _server: &Server,
    source: KinesisSource<String>,
    parallelism: usize,
) -> (fjord::JobClient, Seen) {
    let seen: Seen = Arc::default();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    let s = seen.clone();
    env.from_source(source, "Source: Kinesis")
        .map(move |v: String| {
            let (k, i) = v.split_once(':').unwrap();
            s.lock()
                .unwrap()
                .entry(k.to_string())
                .or_default()
                .push(i.parse().unwrap());
            v
        })
        .sink_to(fjord::sinks::FnSink::new(|_: String| {}), "discard");
    (env.execute_async("collect").unwrap(), seen)
}

fn total(seen: &Seen) -> usize {
    seen.lock().unwrap().values().map(Vec::len).sum()
}

/// Splits `shard` in the middle of its hash key range; returns the children.
fn split_in_half(server: &Server, stream: &str, shard: &fjord_kinesis::ShardInfo) -> Vec<String> {
    let client = server.client();
    let end: u128 = shard.ending_hash_key.parse().unwrap();
    let start: u128 = shard.starting_hash_key.parse().unwrap();
    client
        .split_shard(
            stream,
            &shard.shard_id,
            &(start + (end - start) / 2).to_string(),
        )
        .unwrap();
    let children: Vec<String> = client
        .list_shards(stream)
        .unwrap()
        .into_iter()
        .filter(|s| s.parent.as_deref() == Some(&shard.shard_id))
        .map(|s| s.shard_id)
        .collect();
    assert_eq!(children.len(), 2, "the split made two children");
    children
}

/// Resharding before and during a run: shard 0 is split and its children merged again before
/// the job starts (records put before, between and after), then shard 1 is split while the job
/// reads, 50 records per GetRecords so that parents still hold unread records when their
/// children are found. Every record is read once, and per partition key in the order of the
/// puts: a child shard is read only after its parents.
#[test]
fn resharding_reads_parents_before_children_and_every_record_once() {
    let server = Server::shared();
    let stream = "reshard";
    server.create_stream(stream, 2);
    let client = server.client();
    let first = client.list_shards(stream).unwrap();
    server.put(stream, &numbered(0, 1000));
    let children = split_in_half(server, stream, &first[0]);
    server.put(stream, &numbered(1000, 1000));
    client
        .merge_shards(stream, &children[0], &children[1])
        .unwrap();
    server.put(stream, &numbered(2000, 1000));
    assert_eq!(
        client.list_shards(stream).unwrap().len(),
        5,
        "2 first shards, 2 children, 1 merged"
    );
    let source = KinesisSource::builder()
        .config(server.config())
        .stream(stream)
        .starting_position(StartingPosition::TrimHorizon)
        .discovery_interval(Duration::from_millis(200))
        .max_records_per_fetch(50)
        .value_deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let (job, seen) = run_collecting(server, source, 2);
    wait_for("the first records read", LONG, || total(&seen) >= 500);
    split_in_half(server, stream, &first[1]);
    server.put(stream, &numbered(3000, 1000));
    assert_eq!(client.list_shards(stream).unwrap().len(), 7);
    wait_for("every record read", LONG, || total(&seen) >= 4000);
    job.cancel();
    let _ = job.wait();
    let seen = seen.lock().unwrap();
    for (key, got) in seen.iter() {
        let k: u64 = key[1..].parse().unwrap();
        let want: Vec<u64> = (0..4000).filter(|i| i % 10 == k).collect();
        assert_eq!(
            got, &want,
            "key {key}: each record once, in the order of the puts"
        );
    }
    assert_eq!(seen.len(), 10);
}

/// The server stopped and started again mid-run: the source retries with backoff (the job
/// does not even restart) and reads what was put before and after, exactly once.
#[test]
fn source_rides_out_a_server_restart() {
    let server = Server::start("source-restart");
    let stream = "restart";
    server.create_stream(stream, 2);
    server.put(stream, &numbered(0, 500));
    let dir = scratch_dir("kinesis", "source-restart");
    let env = checkpointed_env(&dir);
    let files = dir.join("out");
    env.from_source(text_source(&server, stream), "Source: Kinesis")
        .uid("kinesis")
        .sink_to_transactional(
            ExactlyOnceFileSink::new(format!("file://{}", files.display())),
            "files",
        )
        .uid("files");
    let job = env.execute_async("restart").unwrap();
    wait_for("the first records committed", LONG, || {
        committed(&files).len() >= 500
    });
    server.stop();
    // Down across several polls and checkpoints (100 ms apart) of the job.
    std::thread::sleep(Duration::from_secs(2));
    server.restart();
    server.put(stream, &numbered(500, 500));
    wait_for("every record committed", LONG, || {
        committed(&files).len() >= 1000
    });
    let restarts = job.restarts();
    let retries = support::metric_sum(&job.metrics(), "KinesisSourceReader.retries");
    job.cancel();
    let _ = job.wait();
    let c = counts(&committed(&files));
    assert_eq!(c.len(), 1000, "every record, none lost");
    assert!(c.values().all(|k| *k == 1), "none twice");
    assert_eq!(restarts, 0, "the reader retried instead of failing the job");
    assert!(retries > 0, "the reader met the outage");
    let _ = std::fs::remove_dir_all(&dir);
}

fn json_source(
    server: &Server,
    stream: &str,
    on_malformed: OnMalformed,
) -> KinesisSource<(String, i64)> {
    KinesisSource::builder()
        .config(server.config())
        .stream(stream)
        .starting_position(StartingPosition::TrimHorizon)
        .on_malformed(on_malformed)
        .deserializer_arc(fjord_kinesis::record::json_deserializer())
        .build()
        .unwrap()
}

/// A record that is not JSON fails the job with its stream, shard and sequence number and what
/// to do, or is skipped (and the rest read) with `OnMalformed::Skip`.
#[test]
fn malformed_records_fail_the_job_or_are_skipped() {
    let server = Server::shared();
    let stream = "malformed";
    server.create_stream(stream, 1);
    let mut records: Vec<(String, String)> = (0..3)
        .map(|i| ("k".to_string(), format!("[\"a\",{i}]")))
        .collect();
    records.push(("k".into(), "{not json".into()));
    records.extend((3..6).map(|i| ("k".to_string(), format!("[\"a\",{i}]"))));
    server.put(stream, &records);

    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_source(
        json_source(server, stream, OnMalformed::Fail),
        "Source: Kinesis",
    )
    .sink_to(fjord::sinks::FnSink::new(|_: (String, i64)| {}), "discard");
    let err = env.execute("fail").unwrap_err().to_string();
    for part in [
        "malformed record",
        "not JSON",
        "shardId-000000000000",
        "on_malformed(OnMalformed::Skip)",
    ] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }

    let (job, seen) = {
        let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
        let s = seen.clone();
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1);
        env.from_source(
            json_source(server, stream, OnMalformed::Skip),
            "Source: Kinesis",
        )
        .sink_to(
            fjord::sinks::FnSink::new(move |(_, i): (String, i64)| {
                s.lock().unwrap().push(i);
            }),
            "collect",
        );
        (env.execute_async("skip").unwrap(), seen)
    };
    wait_for("the good records", LONG, || seen.lock().unwrap().len() >= 6);
    job.cancel();
    let _ = job.wait();
    assert_eq!(*seen.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);
}

/// LATEST starts after what the stream held when the job started; AT_TIMESTAMP at the
/// records that arrived from that time on.
#[test]
fn start_positions_latest_and_at_timestamp() {
    let server = Server::shared();
    let stream = "positions";
    server.create_stream(stream, 1);
    server.put(stream, &numbered(0, 10));
    let latest = KinesisSource::builder()
        .config(server.config())
        .stream(stream)
        .value_deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let (job, seen) = run_collecting(server, latest, 1);
    // The source has listed the shards (and fixed LATEST) once the job runs; wait for a
    // record put after that to arrive, then check nothing older came.
    let mut i = 10;
    wait_for("a record put after the start", LONG, || {
        server.put(stream, &numbered(i, 1));
        i += 1;
        total(&seen) > 0
    });
    job.cancel();
    let _ = job.wait();
    let first = seen
        .lock()
        .unwrap()
        .values()
        .flatten()
        .min()
        .copied()
        .unwrap();
    assert!(
        first >= 10,
        "LATEST read record {first}, which was there before the start"
    );

    // AT_TIMESTAMP: the arrival time of a record in the middle.
    let client = server.client();
    let shard = &client.list_shards(stream).unwrap()[0];
    let it = client
        .shard_iterator(
            stream,
            &shard.shard_id,
            &fjord_kinesis::client::IteratorStart::TrimHorizon,
        )
        .unwrap()
        .unwrap();
    let all = client.get_records(stream, &it, 10_000).unwrap().records;
    let pivot = all
        .windows(2)
        .find(|w| w[1].arrival_timestamp > w[0].arrival_timestamp)
        .map(|w| w[1].clone())
        .expect("records put at different times");
    let from_pivot = all
        .iter()
        .filter(|r| r.arrival_timestamp >= pivot.arrival_timestamp)
        .count();
    let at = KinesisSource::builder()
        .config(server.config())
        .stream(stream)
        .starting_position(StartingPosition::AtTimestamp(pivot.arrival_timestamp))
        .value_deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let (job, seen) = run_collecting(server, at, 1);
    wait_for("the records from the timestamp", LONG, || {
        total(&seen) >= from_pivot
    });
    job.cancel();
    let _ = job.wait();
    assert_eq!(
        total(&seen),
        from_pivot,
        "exactly the records from the timestamp on"
    );
}

fn docs_config_example() -> (fjord_kinesis::KinesisConfig, fjord_kinesis::KinesisConfig) {
    use fjord_kinesis::KinesisConfig;
    // The first block of docs/connectors/kinesis.md, verbatim:
    let config = KinesisConfig::new("us-east-1"); // the default credential chain
    let local = KinesisConfig::new("us-east-1")
        .endpoint("http://localhost:4567") // a local or VPC endpoint
        .basic_credentials("AKIAEXAMPLE", "secret"); // static keys
    // (end of the block)
    (config, local)
}

fn docs_sink_example(
    config: fjord_kinesis::KinesisConfig,
    orders: Vec<(String, u64)>,
) -> Result<(), Box<dyn std::error::Error>> {
    use fjord_kinesis::KinesisSink;
    let env = StreamExecutionEnvironment::new();
    // The sink block of docs/connectors/kinesis.md, verbatim:
    let sink = KinesisSink::builder()
        .config(config.clone())
        .stream("orders")
        .serializer(|(customer, id): &(String, u64)| Ok(format!("{customer}:{id}").into_bytes()))
        .partition_key(|(customer, _): &(String, u64)| customer.clone())
        .build()?;
    env.from_collection(orders)
        .stream()
        .sink_to(sink, "Sink: Kinesis");
    env.execute("kinesis-sink-example")?;
    // (end of the block)
    Ok(())
}

fn docs_source_example(
    config: fjord_kinesis::KinesisConfig,
    out: &std::path::Path,
) -> Result<fjord::JobClient, Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    env.enable_checkpointing(Duration::from_millis(500));
    let storage = out.join("checkpoints");
    env.checkpoint_config(|c| c.storage = format!("file://{}", storage.display()));
    let files = format!("file://{}", out.join("orders").display());
    // The source block of docs/connectors/kinesis.md, verbatim:
    let source = KinesisSource::builder()
        .config(config.clone())
        .stream("orders")
        .starting_position(StartingPosition::TrimHorizon)
        .value_deserializer(|bytes: &[u8]| {
            String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
        })
        .build()?;
    env.from_source(source, "Source: Kinesis")
        .uid("kinesis-orders")
        .sink_to_transactional(ExactlyOnceFileSink::new(files), "Sink: files")
        .uid("files");
    let job = env.execute_async("kinesis-source-example")?;
    // (end of the block)
    Ok(job)
}

/// The docs examples: the sink writes 100 orders keyed by customer, the source reads them into
/// exactly-once files; the config example builds what it says.
#[test]
fn docs_examples_round_trip_through_a_stream() {
    let server = Server::start("docs");
    server.create_stream("orders", 2);
    let orders: Vec<(String, u64)> = (0..100)
        .map(|i| (["ann", "bob"][i as usize % 2].to_string(), i))
        .collect();
    docs_sink_example(server.config(), orders.clone()).unwrap();
    let out = scratch_dir("kinesis", "docs");
    let job = docs_source_example(server.config(), &out).unwrap();
    wait_for("100 committed orders", LONG, || {
        committed(&out.join("orders")).len() >= 100
    });
    job.cancel();
    let _ = job.wait();
    let mut got = committed(&out.join("orders"));
    got.sort();
    let mut want: Vec<String> = orders.iter().map(|(c, i)| format!("{c}:{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(&out);

    let (config, local) = docs_config_example();
    assert_eq!(
        (config.endpoint, config.credentials),
        (None, fjord_kinesis::AwsCredentials::Auto)
    );
    assert_eq!(local.endpoint.as_deref(), Some("http://localhost:4567"));
    assert!(
        !format!("{local:?}").contains("secret\""),
        "the secret is not in Debug output"
    );
}

/// Each ```rust block of the docs is in one of the docs example functions, line for line
/// (indentation aside), so the docs show code that runs.
#[test]
fn the_docs_examples_are_the_tested_code() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/kinesis.md")).unwrap();
    let test = include_str!("kinesis_source.rs");
    let blocks = fjord_e2e::jobs::code_blocks_in(&docs, "rust");
    assert_eq!(blocks.len(), 3, "a config, a source and a sink example");
    for block in blocks {
        assert!(
            fjord_e2e::jobs::is_code_of(&block, test),
            "docs/connectors/kinesis.md's example is not tested code:\n{block}"
        );
    }
}
