//! The `kafka` connector: a topic as a table, read by Fjord's `KafkaSource` and written by its
//! `KafkaSink`, with Flink's option names (`topic`, `properties.*`, `scan.startup.mode`,
//! `scan.bounded.mode`, `sink.delivery-guarantee`, `sink.transactional-id-prefix`) and the
//! `csv` and `json` formats of the `filesystem` connector, `avro` and `avro-confluent` (one row
//! per record value; `avro-confluent` registers under `<topic>-value` unless
//! `avro-confluent.subject` says otherwise).
//!
//! Offsets live in checkpoints as for any Kafka source job; with `exactly-once` the sink writes
//! in Kafka transactions committed with checkpoints. A record that does not read fails the job
//! naming topic, partition and offset, unless `<format>.ignore-parse-errors` is set. Records
//! without a value (tombstones) are skipped.
//!
//! With `'format' = 'debezium-json'` ([`super::format_debezium`]) the table is a changelog:
//! each record one change in Debezium's envelope, read as `+I`/`-U`/`+U`/`-D` and written
//! for updating queries. `upsert-kafka` tables ([`super::upsert_kafka`]) share the option
//! checks here.

use super::MetadataKey;
use super::format::{self, Format};
use super::format_debezium::DebeziumJson;
use crate::changelog::Change;
use crate::plan::TableDef;
use crate::types::{DataType, Row, Schema, Value};
use fjord_kafka::format::{KafkaRecord, SerializationFormat, from_fn};
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, OffsetReset, OffsetsInitializer, StoppingOffsets};
use std::collections::BTreeMap;

/// The metadata keys of Kafka tables (Flink's names): the record timestamp (a column declares it
/// `TIMESTAMP_LTZ(3)`, Flink's type, or `TIMESTAMP(3)`, the same instant in UTC), partition,
/// offset and topic. Only `timestamp` is written.
pub const METADATA: &[MetadataKey] = &[
    MetadataKey {
        key: "timestamp",
        data_type: DataType::Timestamp,
        writable: true,
    },
    MetadataKey {
        key: "partition",
        data_type: DataType::Int,
        writable: false,
    },
    MetadataKey {
        key: "offset",
        data_type: DataType::BigInt,
        writable: false,
    },
    MetadataKey {
        key: "topic",
        data_type: DataType::String,
        writable: false,
    },
];

/// The connector's own options (besides `connector`, `format` and the format's options).
const OPTIONS: &[&str] = &[
    "topic",
    "scan.startup.mode",
    "scan.startup.timestamp-millis",
    "scan.bounded.mode",
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
];

/// The options of a Kafka table.
#[derive(Debug, Clone)]
pub struct KafkaTableConfig {
    /// `topic`.
    pub topic: String,
    /// `properties.<key>`: Kafka client properties (`bootstrap.servers` required).
    pub properties: BTreeMap<String, String>,
    /// `scan.startup.mode` (and `scan.startup.timestamp-millis`).
    pub startup: OffsetsInitializer,
    /// `scan.bounded.mode` = `latest-offset`: stop at the end each partition had when first
    /// seen, so the job finishes.
    pub bounded: bool,
    /// `sink.delivery-guarantee`.
    pub delivery: DeliveryGuarantee,
    /// `sink.transactional-id-prefix`.
    pub transactional_id_prefix: Option<String>,
    /// `format` and its options (`json` for `debezium-json`, the rows in its envelope).
    pub format: Format,
    /// `'format' = 'debezium-json'`: the table is a changelog.
    pub debezium: Option<DebeziumJson>,
    /// `<format>.ignore-parse-errors`.
    pub ignore_parse_errors: bool,
    /// The physical columns (the record value).
    pub schema: Schema,
    /// The metadata keys a source appends to each row, in order.
    pub metadata: Vec<String>,
    /// The column of the sink's row holding the record timestamp (a non-virtual `timestamp`
    /// metadata column); without one the producer's send time is used, as in Flink SQL.
    pub timestamp_column: Option<usize>,
}

impl KafkaTableConfig {
    /// Reads and checks the options; the scan options matter only for a `source` table.
    ///
    /// # Errors
    /// A missing `topic` or `properties.bootstrap.servers`, an unknown option or mode, a
    /// `group-offsets` source without `properties.group.id`, an exactly-once sink without
    /// `sink.transactional-id-prefix`.
    pub fn from_table(table: &TableDef, source: bool) -> Result<Self, String> {
        let o = &table.options;
        let own: BTreeMap<String, String> = o
            .iter()
            .filter(|(k, _)| !k.starts_with("properties."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (mut format, ignore_parse_errors, debezium) = if own.get("format").map(String::as_str)
            == Some("debezium-json")
        {
            let mut allowed = OPTIONS.to_vec();
            allowed.push("format");
            allowed.extend(super::format_debezium::OPTIONS);
            super::only_options(&own, &allowed)?;
            let d = DebeziumJson::from_options(&own)?;
            if d.schema_include && !source {
                // Flink's DebeziumJsonFormatFactory refuses it for a sink too.
                return Err("'debezium-json.schema-include' = 'true' is for reading (a Kafka Connect message with its schema); a sink writes Debezium envelopes without a schema, as Flink's does: remove the option from the table written to".into());
            }
            (Format::Json, d.ignore_parse_errors, Some(d))
        } else {
            let (format, ignore) = format::from_options(&own, OPTIONS)?;
            (format, ignore, None)
        };
        format::check_schema(&format, &table.schema)?;
        let topic = o
            .get("topic")
            .filter(|t| !t.trim().is_empty())
            .ok_or("set 'topic' to the Kafka topic of the table")?
            .clone();
        if let Format::Avro(avro) = &mut format {
            // Flink's default subject for a Kafka table's value format (TopicNameStrategy).
            avro.default_subject(|| fjord_avro::registry::topic_subject(&topic, false));
        }
        let properties: BTreeMap<String, String> = o
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("properties.")?.to_string(), v.clone())))
            .collect();
        if !properties.contains_key("bootstrap.servers") {
            return Err(
                "set 'properties.bootstrap.servers' to the brokers, such as 'localhost:9092'"
                    .into(),
            );
        }
        let reset = match properties.get("auto.offset.reset").map(String::as_str) {
            Some("latest") => Some(OffsetReset::Latest),
            Some("earliest") => Some(OffsetReset::Earliest),
            None => None,
            Some(other) => {
                return Err(format!(
                    "'properties.auto.offset.reset' = '{other}' must be 'earliest' or 'latest' (without a committed offset Fjord starts there; Flink's 'none', fail instead, is not supported)"
                ));
            }
        };
        let startup = match o.get("scan.startup.mode").map(String::as_str) {
            None | Some("group-offsets") => {
                if source && !properties.contains_key("group.id") {
                    return Err("scan.startup.mode 'group-offsets' (the default) needs 'properties.group.id'; set it, or set 'scan.startup.mode' = 'earliest-offset'".into());
                }
                OffsetsInitializer::Committed {
                    reset: reset.unwrap_or(OffsetReset::Earliest),
                }
            }
            Some("earliest-offset") => OffsetsInitializer::Earliest,
            Some("latest-offset") => OffsetsInitializer::Latest,
            Some("timestamp") => {
                let ms = o
                    .get("scan.startup.timestamp-millis")
                    .and_then(|t| t.trim().parse::<i64>().ok())
                    .ok_or("scan.startup.mode 'timestamp' needs 'scan.startup.timestamp-millis' (milliseconds since the epoch)")?;
                OffsetsInitializer::Timestamp(ms)
            }
            Some(other) => {
                return Err(format!(
                    "scan.startup.mode '{other}' is not supported; use 'earliest-offset', 'latest-offset', 'group-offsets' or 'timestamp'"
                ));
            }
        };
        let bounded = match o.get("scan.bounded.mode").map(String::as_str) {
            None | Some("unbounded") => false,
            Some("latest-offset") => true,
            Some(other) => {
                return Err(format!(
                    "scan.bounded.mode '{other}' is not supported; use 'unbounded' or 'latest-offset'"
                ));
            }
        };
        let delivery = match o.get("sink.delivery-guarantee").map(String::as_str) {
            None | Some("at-least-once") => DeliveryGuarantee::AtLeastOnce,
            Some("exactly-once") => DeliveryGuarantee::ExactlyOnce,
            Some("none") => DeliveryGuarantee::None,
            Some(other) => {
                return Err(format!(
                    "sink.delivery-guarantee '{other}' is not supported; use 'at-least-once', 'exactly-once' or 'none'"
                ));
            }
        };
        let transactional_id_prefix = o.get("sink.transactional-id-prefix").cloned();
        if !source
            && delivery == DeliveryGuarantee::ExactlyOnce
            && transactional_id_prefix.is_none()
        {
            return Err("sink.delivery-guarantee 'exactly-once' needs 'sink.transactional-id-prefix', unique to this job".into());
        }
        Ok(KafkaTableConfig {
            topic,
            properties,
            startup,
            bounded,
            delivery,
            transactional_id_prefix,
            format,
            debezium,
            ignore_parse_errors,
            schema: table.schema.clone(),
            metadata: table.metadata.iter().map(|m| m.key.clone()).collect(),
            timestamp_column: table
                .written_metadata()
                .position(|m| m.key == "timestamp")
                .map(|i| table.schema.columns.len() + i),
        })
    }

    /// The Kafka source of the table.
    ///
    /// # Errors
    /// The Kafka source builder's refusal of the properties, as text.
    pub fn source(&self) -> Result<KafkaSource<Row>, String> {
        let (schema, format, ignore, metadata) = (
            self.schema.clone(),
            self.format.clone(),
            self.ignore_parse_errors,
            self.metadata.clone(),
        );
        let deserializer = from_fn(move |r: &KafkaRecord<'_>| {
            let Some(value) = r.value else {
                return Ok(None);
            };
            let mut row = decode(value, &format, &schema, ignore)?;
            if let Some(row) = &mut row {
                row.extend(metadata.iter().map(|key| metadata_value(r, key)));
            }
            Ok(row)
        });
        self.source_with(deserializer)
    }

    /// The Kafka source of a `debezium-json` table: each record's changes (none for a
    /// tombstone), with the metadata columns after each row's physical columns.
    ///
    /// # Errors
    /// As [`source`](Self::source).
    pub fn changelog_source(&self) -> Result<KafkaSource<Vec<Change>>, String> {
        let (schema, metadata) = (self.schema.clone(), self.metadata.clone());
        let debezium = self
            .debezium
            .ok_or("the table's format is not a changelog format ('debezium-json')")?;
        let deserializer = from_fn(move |r: &KafkaRecord<'_>| {
            let Some(value) = r.value else {
                return Ok(None);
            };
            let mut changes = debezium.decode(value, &schema)?;
            for c in &mut changes {
                c.row
                    .extend(metadata.iter().map(|key| metadata_value(r, key)));
            }
            Ok(Some(changes))
        });
        self.source_with(deserializer)
    }

    fn source_with<T: 'static>(
        &self,
        deserializer: impl fjord_kafka::format::KafkaDeserializer<T>,
    ) -> Result<KafkaSource<T>, String> {
        let mut builder = KafkaSource::<T>::builder()
            .topics([self.topic.clone()])
            .starting_offsets(self.startup.clone())
            .deserializer(deserializer);
        for (k, v) in &self.properties {
            builder = builder.property(k.clone(), v.clone());
        }
        if self.bounded {
            builder = builder.bounded(StoppingOffsets::Latest);
        }
        builder.build().map_err(|e| e.to_string())
    }

    /// The Kafka sink of the table (each row one record value, no key).
    ///
    /// # Errors
    /// The Kafka sink builder's refusal of the properties, as text.
    pub fn sink(&self) -> Result<KafkaSink<Row>, String> {
        let value = RowValue {
            schema: self.schema.clone(),
            format: self.format.clone(),
        };
        // Flink SQL writes the `timestamp` metadata column as the record timestamp, and no
        // timestamp (the producer's send time) without one.
        let column = self.timestamp_column;
        let serializer = KafkaRecordSerializer::builder()
            .topic(self.topic.clone())
            .value(value)
            .timestamp(move |row: &Row| record_timestamp(row, column))
            .build()
            .map_err(|e| e.to_string())?;
        self.sink_with(serializer)
    }

    /// The Kafka sink of a `debezium-json` table: each change one record value (no key).
    ///
    /// # Errors
    /// As [`sink`](Self::sink).
    pub fn change_sink(&self) -> Result<KafkaSink<Change>, String> {
        let debezium = self
            .debezium
            .ok_or("the table's format is not a changelog format ('debezium-json')")?;
        let schema = self.schema.clone();
        let column = self.timestamp_column;
        let serializer = KafkaRecordSerializer::builder()
            .topic(self.topic.clone())
            .value(ChangeValue { debezium, schema })
            .timestamp(move |c: &Change| record_timestamp(&c.row, column))
            .build()
            .map_err(|e| e.to_string())?;
        self.sink_with(serializer)
    }

    fn sink_with<T: 'static>(
        &self,
        serializer: KafkaRecordSerializer<T>,
    ) -> Result<KafkaSink<T>, String> {
        let mut builder = KafkaSink::<T>::builder()
            .delivery_guarantee(self.delivery)
            .record_serializer(serializer);
        for (k, v) in &self.properties {
            builder = builder.property(k.clone(), v.clone());
        }
        if let Some(prefix) = &self.transactional_id_prefix {
            builder = builder.transactional_id_prefix(prefix.clone());
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// The record timestamp of a row: its `timestamp` metadata column, if it has one.
fn record_timestamp(row: &Row, column: Option<usize>) -> Option<i64> {
    column.and_then(|c| row[c].epoch_ms())
}

/// A change's record value in `debezium-json`.
struct ChangeValue {
    debezium: DebeziumJson,
    schema: Schema,
}

impl SerializationFormat<Change> for ChangeValue {
    fn serialize(&self, change: &Change) -> Result<Vec<u8>, fjord::BoxError> {
        self.debezium.encode(change, &self.schema)
    }
}

/// A row's record value in the table's format; an error (a value Avro cannot write, a schema
/// registry that refuses or cannot be reached) fails the sink naming the topic.
struct RowValue {
    schema: Schema,
    format: Format,
}

impl SerializationFormat<Row> for RowValue {
    fn serialize(&self, row: &Row) -> Result<Vec<u8>, fjord::BoxError> {
        // The value holds the physical columns; written metadata columns follow them.
        let n = self.schema.columns.len();
        if row.len() > n {
            format::encode(&self.format, &self.schema, &row[..n].to_vec())
        } else {
            format::encode(&self.format, &self.schema, row)
        }
    }
}

/// The value of a metadata key of a record (in the key's type in [`METADATA`]).
fn metadata_value(r: &KafkaRecord<'_>, key: &str) -> Value {
    match key {
        "timestamp" => Value::Timestamp(r.timestamp),
        "partition" => Value::Int(r.partition),
        "offset" => Value::BigInt(r.offset),
        "topic" => Value::String(r.topic.into()),
        _ => Value::Null,
    }
}

/// The body decoder of a message queue's source (`rabbitmq`, `activemq`): one row per message;
/// a body that holds no row (a row skipped under `ignore`) is refused, so the source's
/// malformed-message handling (skip, dead-letter or fail) decides what becomes of it.
pub(crate) fn message_decoder(
    format: Format,
    schema: Schema,
    ignore: bool,
) -> impl Fn(&[u8]) -> Result<Row, String> + Send + Sync + 'static {
    move |body: &[u8]| match decode(body, &format, &schema, ignore)? {
        Some(row) => Ok(row),
        None => Err("the message holds no row".to_string()),
    }
}

/// The body encoder of a message queue's sink (`rabbitmq`, `activemq`): the row in `format`.
///
/// # Errors
/// `avro-confluent`: these sinks take an encoder that cannot fail, and a schema registry can
/// refuse or be down, so the format is refused rather than writing empty bodies.
pub(crate) fn message_encoder(
    format: Format,
    schema: Schema,
    connector: &str,
) -> Result<impl Fn(&Row) -> Vec<u8> + Send + Sync + 'static, String> {
    if let Format::Avro(avro) = &format
        && avro.registry.is_some()
    {
        return Err(format!(
            "the '{connector}' sink cannot write format 'avro-confluent' yet (a schema registry error could not fail the sink); use 'avro', or write to a 'kafka' table"
        ));
    }
    Ok(move |row: &Row| format::encode(&format, &schema, row).unwrap_or_default())
}

/// The text of column `column` of a row, as a message's correlation id (empty for NULL).
pub(crate) fn column_text(column: usize) -> impl Fn(&Row) -> String + Send + Sync + 'static {
    move |row: &Row| row[column].to_sql_string().unwrap_or_default()
}

/// One record value in `format` as a row (`None`: nothing to read, or a row skipped under
/// `ignore`); shared with the `rabbitmq` and `activemq` connectors.
pub(crate) fn decode(
    value: &[u8],
    format: &Format,
    schema: &Schema,
    ignore: bool,
) -> Result<Option<Row>, String> {
    let utf8 = || std::str::from_utf8(value).map_err(|e| format!("the value is not UTF-8: {e}"));
    match format {
        // Flink's Avro formats have no ignore-parse-errors: a record that does not read fails.
        Format::Avro(avro) => avro.decode(schema, value).map(Some),
        Format::Protobuf(rows) => match rows.decode(value, schema) {
            Ok(row) => Ok(Some(row)),
            Err(_) if ignore => Ok(None),
            Err(e) => Err(e),
        },
        Format::Json => format::decode_json(utf8()?, schema, ignore),
        Format::Csv {
            delimiter,
            null_literal,
        } => {
            utf8()?;
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .delimiter(*delimiter)
                .from_reader(value);
            let mut record = csv::StringRecord::new();
            if !reader.read_record(&mut record).map_err(|e| e.to_string())? {
                return Ok(None);
            }
            format::decode_csv(&record, schema, null_literal.as_deref(), ignore).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Column, DataType};

    fn table(options: &[(&str, &str)]) -> TableDef {
        TableDef::physical(
            "t",
            Schema {
                columns: vec![Column {
                    name: "a".into(),
                    data_type: DataType::Int,
                    rowtime: false,
                }],
            },
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    const BASE: &[(&str, &str)] = &[
        ("connector", "kafka"),
        ("topic", "t"),
        ("properties.bootstrap.servers", "localhost:9092"),
        ("format", "json"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> TableDef {
        let mut o = BASE.to_vec();
        o.extend_from_slice(extra);
        table(&o)
    }

    #[test]
    fn options_read_as_flink_names_them() {
        let c = KafkaTableConfig::from_table(
            &with(&[
                ("scan.startup.mode", "timestamp"),
                ("scan.startup.timestamp-millis", "1700000000000"),
                ("scan.bounded.mode", "latest-offset"),
                ("properties.isolation.level", "read_committed"),
            ]),
            true,
        )
        .unwrap();
        assert_eq!(c.startup, OffsetsInitializer::Timestamp(1_700_000_000_000));
        assert!(c.bounded);
        assert_eq!(c.properties["isolation.level"], "read_committed");
        assert_eq!(c.delivery, DeliveryGuarantee::AtLeastOnce);
    }

    #[test]
    fn misconfigured_tables_are_refused_with_what_to_do() {
        type Case = (&'static [(&'static str, &'static str)], bool, &'static str);
        let cases: &[Case] = &[
            (
                &[("connector", "kafka"), ("format", "json")],
                true,
                "'topic'",
            ),
            (
                &[("connector", "kafka"), ("topic", "t"), ("format", "json")],
                true,
                "properties.bootstrap.servers",
            ),
            (BASE, true, "properties.group.id"),
            (
                &[("scan.startup.mode", "specific-offsets")],
                true,
                "not supported",
            ),
            (
                &[
                    ("scan.startup.mode", "earliest-offset"),
                    ("scan.bounded.mode", "forever"),
                ],
                true,
                "not supported",
            ),
            (
                &[("sink.delivery-guarantee", "exactly-once")],
                false,
                "sink.transactional-id-prefix",
            ),
            (
                &[
                    ("scan.startup.mode", "earliest-offset"),
                    ("sink.parallelism", "2"),
                ],
                true,
                "unsupported option 'sink.parallelism'",
            ),
            // Flink refuses a schema to write, as this does (found by the Kafka oracle).
            (
                &[
                    ("format", "debezium-json"),
                    ("debezium-json.schema-include", "true"),
                ],
                false,
                "'debezium-json.schema-include' = 'true' is for reading",
            ),
        ];
        for (options, source, expected) in cases {
            let t = if options.iter().any(|(k, _)| *k == "connector") {
                table(options)
            } else {
                let mut o = BASE.to_vec();
                o.extend_from_slice(options);
                table(&o)
            };
            let err = KafkaTableConfig::from_table(&t, *source).unwrap_err();
            assert!(err.contains(expected), "{options:?}: {err}");
        }
        // A sink needs no group id; a source with one starts at its committed offsets.
        assert!(KafkaTableConfig::from_table(&table(BASE), false).is_ok());
        let c = KafkaTableConfig::from_table(&with(&[("properties.group.id", "g")]), true).unwrap();
        assert_eq!(
            c.startup,
            OffsetsInitializer::Committed {
                reset: OffsetReset::Earliest
            }
        );
    }

    #[test]
    fn record_values_decode_in_the_table_format() {
        let schema = table(BASE).schema;
        let json = Format::Json;
        assert_eq!(
            decode(br#"{"a": 7}"#, &json, &schema, false).unwrap(),
            Some(vec![crate::types::Value::Int(7)])
        );
        assert!(
            decode(b"not json", &json, &schema, false)
                .unwrap_err()
                .contains("JSON")
        );
        assert_eq!(decode(b"not json", &json, &schema, true).unwrap(), None);
        let csv = Format::Csv {
            delimiter: b';',
            null_literal: None,
        };
        assert_eq!(
            decode(b"42", &csv, &schema, false).unwrap(),
            Some(vec![crate::types::Value::Int(42)])
        );
        assert!(
            decode(b"x", &csv, &schema, false)
                .unwrap_err()
                .contains("column 'a'")
        );
    }
}
