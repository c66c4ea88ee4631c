//! Counts per key and event-time window from one Kafka topic to another, exactly once (the
//! Kafka variant of [`windowed_counts`](crate::windowed_counts)).
//!
//! ```text
//! fjord run kafka-windowed-counts [--bootstrap-servers localhost:9092] [--input-topic events]
//!     [--output-topic window-counts] [--window-ms 1000] [--out-of-orderness-ms 0]
//!     [--idle-ms 5000] [--group-id kafka-windowed-counts] [--bounded]
//!     [--delivery-guarantee exactly-once|at-least-once|none]
//!     [--transactional-id-prefix kafka-windowed-counts] [--kafka-properties client.properties]
//! ```
//!
//! Every record of the input topic is one event: its value (UTF-8) is the key, its Kafka
//! timestamp the event time. Watermarks are generated per partition (bounded out-of-orderness
//! `--out-of-orderness-ms`; a partition without records for `--idle-ms` does not hold them
//! back). The job counts events per key in tumbling event-time windows of `--window-ms` and
//! writes one record per key and window to the output topic: key `key`, value
//! `key,window_start,count` (one CSV row). With exactly-once (the default; it needs
//! checkpointing, e.g. `--checkpoint-interval 1s` of `fjord run`), `read_committed` consumers
//! see each window's count exactly once across failures and restarts. Both topics must exist.

use crate::kafka::KafkaArgs;
use fjord::time::WatermarkStrategy;
use fjord::windows::TumblingEventTimeWindows;
use fjord::{FjordError, JobArgs, Result, StreamExecutionEnvironment};
use fjord_kafka::format::{CsvRow, KafkaRecord, Utf8, from_fn, project};
use fjord_kafka::sink::DeliveryGuarantee;
use std::time::Duration;

/// One event: key, event time, count (1).
type Event = (String, i64, u64);

/// Builds the job. Operators have stable uids (`events`, `windows`, `results`, `kafka-sink`).
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let kafka = KafkaArgs::parse_with_guarantee(
        args,
        "kafka-windowed-counts",
        "window-counts",
        DeliveryGuarantee::ExactlyOnce,
    )?;
    let window_ms: i64 = args.get_parsed("window-ms", 1000)?;
    let out_of_orderness: u64 = args.get_parsed("out-of-orderness-ms", 0)?;
    let idle_ms: u64 = args.get_parsed("idle-ms", 5000)?;
    if window_ms <= 0 || idle_ms == 0 {
        return Err(FjordError::BadArguments(
            "--window-ms and --idle-ms must be positive".into(),
        ));
    }
    let input = args.get("input-topic").unwrap_or("events").to_string();
    let events = from_fn(|r: &KafkaRecord<'_>| {
        let key = std::str::from_utf8(r.value.unwrap_or_default())
            .map_err(|e| format!("the event's value is not UTF-8: {e}"))?;
        Ok(Some((key.to_string(), r.timestamp, 1u64)))
    });
    let watermarks =
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(out_of_orderness))
            .with_idleness(Duration::from_millis(idle_ms));
    let source = kafka.source(&input, events, Some(watermarks))?;
    let counts = env
        .from_source(source, "Source: Kafka events")
        .uid("events")
        .key_by(|e: &Event| e.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            window_ms as u64,
        )))
        .reduce(|a: Event, b: Event| (a.0, a.1.min(b.1), a.2 + b.2))
        .uid("windows")
        .name("windows")
        .map(move |(k, first, n): Event| (k, first - first.rem_euclid(window_ms), n))
        .uid("results");
    let sink = kafka.sink(crate::kafka::record_serializer(
        &kafka.output_topic,
        project(|c: &Event| c.0.clone(), Utf8),
        CsvRow::<Event>::new(),
    )?)?;
    counts
        .sink_to_transactional(sink, "Sink: Kafka window counts")
        .uid("kafka-sink");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_refused_before_anything_connects() {
        let env = StreamExecutionEnvironment::new();
        let err = build(&env, &JobArgs::parse(["--window-ms", "0"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
        let err = build(
            &env,
            &JobArgs::parse(["--delivery-guarantee", "twice"]).unwrap(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("exactly-once"), "{err}");
    }
}
