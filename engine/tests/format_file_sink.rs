//! The exactly-once file sink with formats (CSV with a header, JSON lines): every record is
//! in exactly one committed part after failures, every part is a complete file of its format,
//! and parts roll at checkpoints and by size.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord::sinks::{CsvFormat, ExactlyOnceFileSink, JsonLinesEncoder, RollingPolicy};
use fjord::sources::GeneratorSource;
use fjord::storage::StorageOptions;
use std::time::Duration;

mod failure_support;
use failure_support::{FailAt, file_url};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Reading {
    id: u64,
    sensor: String,
    value: Option<f64>,
}

fn reading(i: u64) -> Reading {
    Reading {
        id: i,
        sensor: format!("s{}, \"north\"", i % 7),
        value: (!i.is_multiple_of(5)).then_some(i as f64 / 4.0),
    }
}

/// Runs `records` readings through a failure at `fail_at` into `sink`, with checkpoints
/// every 10 ms; returns the number of attempts.
fn run<S: fjord::sinks::TransactionalSink<Reading>>(records: u64, fail_at: u64, sink: S) -> u32 {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(10));
    env.checkpoint_config(|c| c.storage = format!("memory://format-sink-{fail_at}-{records}"));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 5,
        delay: Duration::from_millis(5),
    });
    env.from_source(
        GeneratorSource::new(Some(records), reading).with_rate(20_000.0),
        "readings",
    )
    .uid("readings")
    .set_parallelism(1)
    .rebalance()
    .map(FailAt::once(fail_at))
    .uid("fail")
    .sink_to_transactional(sink, "files")
    .uid("files");
    env.execute("format sink").unwrap().attempts
}

#[test]
fn csv_parts_each_start_with_the_header_and_hold_every_record_once_after_a_failure() {
    let out = tempfile::tempdir().unwrap();
    let url = file_url(out.path());
    let records = 3000;
    let attempts = run(
        records,
        700,
        ExactlyOnceFileSink::for_format(&url, CsvFormat::<Reading>::new())
            .with_rolling_policy(RollingPolicy::on_checkpoint().with_part_size(2048)),
    );
    assert!(attempts > 1, "the injected failure restarted the job");
    let parts = ExactlyOnceFileSink::committed_parts(&url, &StorageOptions::default()).unwrap();
    assert!(parts.len() > 2, "parts rolled: {}", parts.len());
    let mut got = Vec::new();
    for (name, bytes) in parts {
        assert!(name.ends_with(".csv"), "{name}");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(
            reader.headers().unwrap(),
            vec!["id", "sensor", "value"],
            "{name} starts with the header"
        );
        for r in reader.deserialize::<Reading>() {
            got.push(r.unwrap());
        }
    }
    got.sort_by_key(|r| r.id);
    let expected: Vec<Reading> = (0..records).map(reading).collect();
    assert_eq!(got, expected);
}

#[test]
fn json_lines_hold_every_record_once_after_a_failure() {
    let out = tempfile::tempdir().unwrap();
    let url = file_url(out.path());
    let records = 2000;
    let attempts = run(
        records,
        500,
        ExactlyOnceFileSink::for_format(&url, JsonLinesEncoder::format::<Reading>()),
    );
    assert!(attempts > 1, "the injected failure restarted the job");
    let mut got: Vec<Reading> =
        ExactlyOnceFileSink::read_committed(&url, &StorageOptions::default())
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
    got.sort_by_key(|r| r.id);
    let expected: Vec<Reading> = (0..records).map(reading).collect();
    assert_eq!(got, expected);
    let names: Vec<String> = ExactlyOnceFileSink::committed_parts(&url, &StorageOptions::default())
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".json")), "{names:?}");
}

#[test]
fn a_part_past_its_rollover_interval_rolls_before_the_next_record() {
    // Without checkpoints every part would stay open to the end of input; a rollover interval
    // of zero makes every part due when the next record arrives: one part per record.
    let out = tempfile::tempdir().unwrap();
    let url = file_url(out.path());
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_source(GeneratorSource::new(Some(3), |i| i), "numbers")
        .sink_to_transactional(
            ExactlyOnceFileSink::new(&url).with_rolling_policy(
                RollingPolicy::on_checkpoint().with_rollover_interval(Duration::ZERO),
            ),
            "files",
        );
    env.execute("rolled parts").unwrap();
    let parts = ExactlyOnceFileSink::committed_parts(&url, &StorageOptions::default()).unwrap();
    let mut texts: Vec<String> = parts
        .iter()
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
        .collect();
    texts.sort();
    assert_eq!(texts, vec!["0\n", "1\n", "2\n"], "one part per record");
}
