//! WordCount between Kafka topics: lines from one topic, a running `(word,count)` per word
//! occurrence to another (the seed's WordCount with Kafka at both ends).
//!
//! ```text
//! fjord run kafka-wordcount [--bootstrap-servers localhost:9092] [--input-topic lines]
//!     [--output-topic word-counts] [--group-id kafka-wordcount] [--bounded]
//!     [--delivery-guarantee at-least-once|exactly-once|none] [--transactional-id-prefix P]
//!     [--kafka-properties client.properties]
//! ```
//!
//! Each line of the input topic (its value, UTF-8) is split into words as in
//! [`wordcount`](crate::wordcount); every word occurrence produces a record on the output topic
//! with key `word` and value `word,count` (one CSV row). Records of a word share its key, so
//! they go to one partition, in order: the last one is the word's count. With `--bounded` the
//! job reads what the input topic holds when it starts and finishes; without it, it runs
//! until stopped. Both topics must exist.

use crate::kafka::{self, KafkaArgs};
use fjord::{JobArgs, Result, StreamExecutionEnvironment};
use fjord_kafka::format::{CsvRow, Utf8, project, value_only};

/// Builds the job. Operators have stable uids (`lines`, `counter`, `kafka-sink`).
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let kafka = KafkaArgs::parse(args, "kafka-wordcount", "word-counts")?;
    let input = args.get("input-topic").unwrap_or("lines").to_string();
    let source = kafka.source(&input, value_only(Utf8), None)?;
    let counts = env
        .from_source(source, "Source: Kafka lines")
        .uid("lines")
        .flat_map(|line: String| crate::wordcount::tokenize(&line))
        .name("tokenizer")
        .key_by(|(word, _): &(String, u64)| word.clone())
        .sum::<1>()
        .name("counter")
        .uid("counter");
    let sink = kafka.sink(kafka::record_serializer(
        &kafka.output_topic,
        project(|c: &(String, u64)| c.0.clone(), Utf8),
        CsvRow::<(String, u64)>::new(),
    )?)?;
    counts
        .sink_to_transactional(sink, "Sink: Kafka word counts")
        .uid("kafka-sink");
    Ok(())
}
