//! What the Kafka examples share: their Kafka arguments, the source and the sink built from
//! them.
//!
//! - `--bootstrap-servers host:port[,...]` (default `localhost:9092`): the one value to change
//!   for another Kafka cluster;
//! - `--output-topic T`, `--group-id G` (default: the job's name);
//! - `--bounded`: read what the input topics hold when the job starts, then finish;
//! - `--delivery-guarantee none|at-least-once|exactly-once` and
//!   `--transactional-id-prefix P` (default: the job's name);
//! - `--kafka-properties FILE`: Kafka client properties in Java `.properties` form
//!   (`key=value` lines, `#` and `!` comments), passed to both source and sink — how a job
//!   gets `security.protocol`, `sasl.mechanism`, `sasl.jaas.config` or `ssl.*` without putting
//!   secrets on its command line (on Kubernetes: a Secret mounted as a file).

use fjord::time::WatermarkStrategy;
use fjord::{FjordError, JobArgs, Result};
use fjord_kafka::format::{KafkaDeserializer, SerializationFormat};
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, StoppingOffsets};
use std::collections::BTreeMap;
use std::path::Path;

/// The broker address the examples use unless given `--bootstrap-servers`.
pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "localhost:9092";

/// The Kafka arguments of an example job.
#[derive(Clone)]
pub struct KafkaArgs {
    /// `--bootstrap-servers`.
    pub bootstrap_servers: String,
    /// `--output-topic`.
    pub output_topic: String,
    /// `--group-id`.
    pub group_id: String,
    /// `--bounded`.
    pub bounded: bool,
    /// `--delivery-guarantee`.
    pub guarantee: DeliveryGuarantee,
    /// `--transactional-id-prefix`.
    pub transactional_id_prefix: String,
    /// The properties of `--kafka-properties` (empty without it).
    pub properties: BTreeMap<String, String>,
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Property values may hold passwords (sasl.jaas.config): show only the keys.
        f.debug_struct("KafkaArgs")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("output_topic", &self.output_topic)
            .field("group_id", &self.group_id)
            .field("bounded", &self.bounded)
            .field("guarantee", &self.guarantee)
            .field("transactional_id_prefix", &self.transactional_id_prefix)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Reads a Java `.properties` file of Kafka client properties: `key=value` or `key: value`
/// per line, surrounding blanks trimmed, blank lines and lines starting with `#` or `!`
/// skipped, a line ending in `\` continued on the next. Errors name the file and line (never a
/// value, which may be a password).
pub fn read_properties(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FjordError::BadArguments(format!(
            "--kafka-properties {}: cannot read it: {e}",
            path.display()
        ))
    })?;
    parse_properties(&text).map_err(|(line, why)| {
        FjordError::BadArguments(format!(
            "--kafka-properties {}:{line}: {why}",
            path.display()
        ))
    })
}

/// The properties of a `.properties` text; `Err((line, reason))` for a malformed line.
fn parse_properties(text: &str) -> std::result::Result<BTreeMap<String, String>, (usize, String)> {
    let mut out = BTreeMap::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let (start, mut logical) = match pending.take() {
            Some((start, so_far)) => (start, so_far + line),
            None if line.is_empty() || line.starts_with('#') || line.starts_with('!') => continue,
            None => (i + 1, line.to_string()),
        };
        if logical.ends_with('\\') {
            logical.pop();
            pending = Some((start, logical));
            continue;
        }
        let Some(at) = logical.find(['=', ':']) else {
            return Err((start, "expected key=value".into()));
        };
        let key = logical[..at].trim();
        if key.is_empty() {
            return Err((start, "a property without a key".into()));
        }
        let value = logical[at + 1..].trim();
        if out.insert(key.to_string(), value.to_string()).is_some() {
            return Err((start, format!("{key} is given twice")));
        }
    }
    if let Some((start, _)) = pending {
        return Err((start, "the last line ends in a continuation '\\'".into()));
    }
    Ok(out)
}

fn bad(e: fjord_kafka::KafkaError) -> FjordError {
    FjordError::BadArguments(e.to_string())
}

impl KafkaArgs {
    /// Reads the arguments; `job` names the defaults of group and prefix.
    pub fn parse(args: &JobArgs, job: &str, default_output: &str) -> Result<Self> {
        Self::parse_with_guarantee(args, job, default_output, DeliveryGuarantee::AtLeastOnce)
    }

    /// As [`parse`](Self::parse), with another default guarantee.
    pub fn parse_with_guarantee(
        args: &JobArgs,
        job: &str,
        default_output: &str,
        guarantee: DeliveryGuarantee,
    ) -> Result<Self> {
        let guarantee = match args.get("delivery-guarantee") {
            None => guarantee,
            Some(g) => g.parse().map_err(bad)?,
        };
        Ok(KafkaArgs {
            bootstrap_servers: args
                .get("bootstrap-servers")
                .unwrap_or(DEFAULT_BOOTSTRAP_SERVERS)
                .to_string(),
            output_topic: args
                .get("output-topic")
                .unwrap_or(default_output)
                .to_string(),
            group_id: args.get("group-id").unwrap_or(job).to_string(),
            bounded: args.has("bounded"),
            guarantee,
            transactional_id_prefix: args
                .get("transactional-id-prefix")
                .unwrap_or(job)
                .to_string(),
            properties: match args.get("kafka-properties") {
                Some(path) => read_properties(Path::new(path))?,
                None => BTreeMap::new(),
            },
        })
    }

    /// A source reading `topic` from the earliest offset (bounded with `--bounded`), with
    /// per-partition watermarks when given a strategy.
    pub fn source<T: 'static>(
        &self,
        topic: &str,
        deserializer: impl KafkaDeserializer<T>,
        watermarks: Option<WatermarkStrategy<T>>,
    ) -> Result<KafkaSource<T>> {
        let mut builder = KafkaSource::builder()
            .bootstrap_servers(&self.bootstrap_servers)
            .topics([topic])
            .group_id(&self.group_id)
            .deserializer(deserializer);
        for (k, v) in &self.properties {
            builder = builder.property(k, v);
        }
        if let Some(strategy) = watermarks {
            builder = builder.watermark_strategy(strategy);
        }
        if self.bounded {
            builder = builder.bounded(StoppingOffsets::Latest);
        }
        builder.build().map_err(bad)
    }

    /// A sink with these arguments' servers, guarantee and prefix.
    pub fn sink<T: 'static>(&self, serializer: KafkaRecordSerializer<T>) -> Result<KafkaSink<T>> {
        KafkaSink::builder()
            .bootstrap_servers(&self.bootstrap_servers)
            .properties(self.properties.clone())
            .delivery_guarantee(self.guarantee)
            .transactional_id_prefix(&self.transactional_id_prefix)
            .record_serializer(serializer)
            .build()
            .map_err(bad)
    }
}

/// Records for `topic` with this key and value format.
pub fn record_serializer<T: 'static>(
    topic: &str,
    key: impl SerializationFormat<T>,
    value: impl SerializationFormat<T>,
) -> Result<KafkaRecordSerializer<T>> {
    KafkaRecordSerializer::builder()
        .topic(topic)
        .key(key)
        .value(value)
        .build()
        .map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_as_java_reads_them() {
        let text = "# SASL for the cluster\n\
                    security.protocol = SASL_SSL\n\
                    ! another comment\n\
                    sasl.mechanism: SCRAM-SHA-256\n\
                    sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule \\\n\
                    \x20   required username=\"alice\" password=\"a=b\";\n\
                    \n";
        let p = parse_properties(text).unwrap();
        assert_eq!(p["security.protocol"], "SASL_SSL");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-256");
        assert_eq!(
            p["sasl.jaas.config"],
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"a=b\";"
        );
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn malformed_properties_name_the_line_not_the_value() {
        assert_eq!(
            parse_properties("a=1\nsecret-without-separator\n").unwrap_err(),
            (2, "expected key=value".to_string())
        );
        assert_eq!(parse_properties("a=1\na=2").unwrap_err().0, 2);
        assert_eq!(parse_properties("=x").unwrap_err().0, 1);
        assert_eq!(parse_properties("a=\\").unwrap_err().0, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.properties");
        std::fs::write(&path, "sasl.jaas.config=hunter2\npassword hunter2\n").unwrap();
        let err = read_properties(&path).unwrap_err().to_string();
        assert!(
            err.contains("client.properties:2: expected key=value"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        let err = read_properties(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read it"), "{err}");
    }
}
