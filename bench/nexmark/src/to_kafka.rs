//! `nexmark-to-kafka`: the events of the generator (or of event files) written to a Kafka topic,
//! one record per event whose value is the event's JSON line as in the event files (without
//! the newline), so another system — Flink's Kafka SQL connector with the `json` format, a
//! Fjord job reading the topic — reads exactly the same events.
//!
//! Arguments: `--bootstrap-servers host:port[,...]` (required), `--topic T` (default
//! `nexmark`), `--delivery-guarantee none|at-least-once|exactly-once` (default
//! `exactly-once`: one transaction per subtask and checkpoint, committed when the checkpoint
//! completes and at the end of input, so a restart writes no event twice), and the generator
//! keys (`--events.num`, `--tps`, `--seed`, ...) or `--input <events file or dir>`.

use crate::{Event, NexmarkError, events, json::write_event};
use fjord::{JobArgs, StreamExecutionEnvironment};
use fjord_kafka::format::Utf8;
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};

/// The registered job's name.
pub const JOB: &str = "nexmark-to-kafka";

/// Its one-line description in `fjord list`.
pub const DESCRIPTION: &str = "Nexmark events to Kafka: --bootstrap-servers H:P [--topic nexmark] [--delivery-guarantee exactly-once] [--input <events> | generator keys --events.num N ...] (docs/nexmark.md)";

/// An event's JSON line, without its newline (a Kafka record is one event).
pub fn event_json(event: &Event) -> String {
    let mut line = String::new();
    write_event(&mut line, event);
    line.truncate(line.trim_end_matches('\n').len());
    line
}

/// Builds the job into `env`.
///
/// # Errors
/// [`NexmarkError::Config`] without `--bootstrap-servers` or with an unknown guarantee, the
/// generator's configuration errors, and the Kafka sink's refusal of its settings.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<(), NexmarkError> {
    let servers = args.get("bootstrap-servers").ok_or_else(|| {
        NexmarkError::Config(format!(
            "{JOB} needs --bootstrap-servers host:port (the Kafka cluster to write to)"
        ))
    })?;
    let topic = args.get("topic").unwrap_or("nexmark").to_string();
    let guarantee: DeliveryGuarantee = args
        .get("delivery-guarantee")
        .unwrap_or("exactly-once")
        .parse()
        .map_err(|e| NexmarkError::Config(format!("--delivery-guarantee: {e}")))?;
    let serializer = KafkaRecordSerializer::builder()
        .topic(&topic)
        .value(Utf8)
        .build()?;
    let sink = KafkaSink::builder()
        .bootstrap_servers(servers)
        .record_serializer(serializer)
        .delivery_guarantee(guarantee)
        .transactional_id_prefix(format!("{JOB}-{topic}"))
        .build()?;
    events(env, args)?
        .map(|e: Event| event_json(&e))
        .name("Nexmark event to JSON")
        .sink_to_transactional(sink, &format!("Sink: Kafka {topic}"))
        .uid("nexmark-kafka-sink");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Generator, NexmarkConfig, json::parse_event};

    #[test]
    fn a_record_is_the_events_file_line_without_its_newline() {
        let generator = Generator::new(NexmarkConfig::default());
        for n in 0..100 {
            let event = generator.event(n);
            let mut file_line = String::new();
            write_event(&mut file_line, &event);
            let record = event_json(&event);
            assert_eq!(format!("{record}\n"), file_line);
            assert_eq!(parse_event(&record).unwrap(), event);
        }
    }

    #[test]
    fn the_job_names_what_it_misses() {
        let env = StreamExecutionEnvironment::new();
        let args = JobArgs::parse(["--events.num", "10"]).unwrap();
        let e = build(&env, &args).unwrap_err().to_string();
        assert!(e.contains("--bootstrap-servers"), "{e}");
        let args = JobArgs::parse([
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--delivery-guarantee",
            "twice",
        ])
        .unwrap();
        let e = build(&env, &args).unwrap_err().to_string();
        assert!(e.contains("--delivery-guarantee"), "{e}");
    }
}
