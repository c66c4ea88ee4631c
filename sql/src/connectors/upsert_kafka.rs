//! The `upsert-kafka` connector (Flink's): a Kafka topic, typically compacted, as the changelog
//! of a table with a primary key. The record key holds the `PRIMARY KEY` columns in
//! `key.format`, the value the row in `value.format` (all columns, or with
//! `'value.fields-include' = 'EXCEPT_KEY'` the others); a record without value (a tombstone)
//! deletes its key.
//!
//! - **Sink** (takes updating queries, [`SinkChanges::Upsert`](crate::changelog::SinkChanges)):
//!   `+I`/`+U` are a record with the row, `-D` and `-U` a tombstone for its key, as Flink's
//!   `DynamicKafkaRecordSerializationSchema` writes them in upsert mode. (Flink's planner
//!   usually asks the query not to produce `-U` for an upsert sink keyed like the query's
//!   result; Fjord's does not yet, so an update is a tombstone then the new row. Writing `-U`
//!   keeps the topic right where its `+U` never comes: a `HAVING` or `WHERE` that stops
//!   holding drops the `+U`, a sink key other than the query's moves the row to another
//!   key.) The changes are keyed by the primary key before the writers, so each key's
//!   records are written in order, by one writer, to one partition.
//! - **Source**: every record is an upsert of its key or, without value, a delete; as Flink's
//!   `ChangelogNormalize`, the last row of each key is kept in keyed state so the table is a
//!   proper changelog: a key's first row `+I`, a different later one `-U` (previous) and `+U`,
//!   the same row again nothing, a tombstone `-D` of the previous row (nothing for a key
//!   without row). The topic is read from the earliest offset, as in Flink.

use super::format::{self, Format};
use super::kafka::decode;
use crate::changelog::{Change, RowKind};
use crate::plan::TableDef;
use crate::types::{Row, Schema, Value};
use fjord::state::{StateTtlConfig, ValueState, ValueStateDescriptor};
use fjord::{
    BoxError, DataStream, KeyedProcessContext, KeyedProcessFunction, RuntimeContext,
    StreamExecutionEnvironment,
};
use fjord_kafka::format::{KafkaRecord, SerializationFormat, from_fn};
use fjord_kafka::sink::{DeliveryGuarantee, KafkaRecordSerializer, KafkaSink};
use fjord_kafka::source::{KafkaSource, OffsetsInitializer, StoppingOffsets};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The connector's own options (besides `properties.*` and the `key.<format>.*` and
/// `value.<format>.*` options of its formats).
pub const OPTIONS: &[&str] = &[
    "topic",
    "key.format",
    "value.format",
    "key.fields-prefix",
    "value.fields-include",
    "scan.bounded.mode",
    "sink.parallelism",
    "sink.buffer-flush.max-rows",
    "sink.buffer-flush.interval",
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
];

/// Flink's message for an `upsert-kafka` table without a primary key.
const NEEDS_KEY: &str = "'upsert-kafka' tables require to define a PRIMARY KEY constraint. The PRIMARY KEY specifies which columns should be read from or write to the Kafka message key. The PRIMARY KEY also defines records in the 'upsert-kafka' table should update or delete on which keys. Add PRIMARY KEY (...) NOT ENFORCED to the table";

/// The options of an `upsert-kafka` table.
#[derive(Debug, Clone)]
pub struct UpsertKafkaConfig {
    /// `topic`.
    pub topic: String,
    /// `properties.<key>`: Kafka client properties (`bootstrap.servers` required).
    pub properties: BTreeMap<String, String>,
    /// `key.format` and its `key.<format>.*` options.
    pub key_format: Format,
    /// `value.format` and its `value.<format>.*` options.
    pub value_format: Format,
    /// `key.<format>.ignore-parse-errors`.
    pub ignore_key_errors: bool,
    /// `value.<format>.ignore-parse-errors`.
    pub ignore_value_errors: bool,
    /// The physical columns.
    pub schema: Schema,
    /// The primary key's physical columns, in key order.
    pub key: Vec<usize>,
    /// The fields of the record key (the key columns, without `key.fields-prefix`).
    pub key_schema: Schema,
    /// The physical columns in the record value (all, or those outside the key).
    pub value_columns: Vec<usize>,
    /// The fields of the record value.
    pub value_schema: Schema,
    /// `scan.bounded.mode` = `latest-offset`: stop at the end each partition had when first
    /// seen.
    pub bounded: bool,
    /// `sink.parallelism`.
    pub sink_parallelism: Option<usize>,
    /// `sink.buffer-flush.max-rows` and `.interval` (accepted and checked as Flink does; the
    /// producer batches records itself, no per-key reduction happens before it).
    pub buffer_flush: Option<(usize, Duration)>,
    /// `sink.delivery-guarantee`.
    pub delivery: DeliveryGuarantee,
    /// `sink.transactional-id-prefix`.
    pub transactional_id_prefix: Option<String>,
}

/// The options of one of the table's formats (`key.` or `value.`): `format` and the format's
/// options without the prefix.
fn format_of(
    o: &BTreeMap<String, String>,
    part: &str,
    topic: &str,
) -> Result<(Format, bool), String> {
    let prefix = format!("{part}.");
    let name = o.get(&format!("{part}.format")).ok_or_else(|| {
        format!("set '{part}.format' (the record {part}'s format: 'csv', 'json', 'avro' or 'avro-confluent')")
    })?;
    if name == "debezium-json" || name.ends_with("-json") && name != "json" {
        return Err(format!(
            "'upsert-kafka' connector doesn't support '{name}' as {part} format, because '{name}' is not in insert-only mode; use 'json' (the connector makes the changelog), or a 'kafka' table with 'format' = '{name}'"
        ));
    }
    let mut sub: BTreeMap<String, String> = o
        .iter()
        .filter(|(k, _)| !OPTIONS.contains(&k.as_str()))
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
        .collect();
    sub.insert("format".into(), name.clone());
    let (mut format, ignore) = format::from_options(&sub, &[])
        .map_err(|e| format!("{part}.format: {e} (the format's options start with '{prefix}')"))?;
    if let Format::Avro(avro) = &mut format {
        avro.default_subject(|| fjord_avro::registry::topic_subject(topic, part == "key"));
    }
    Ok((format, ignore))
}

impl UpsertKafkaConfig {
    /// Reads and checks the options and the primary key.
    ///
    /// # Errors
    /// No primary key (Flink's message), a missing `topic`, `properties.bootstrap.servers`,
    /// `key.format` or `value.format`, an unknown option, a changelog format as key or value
    /// format, a key prefix with `'value.fields-include' = 'ALL'`, a `WATERMARK`.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o = &table.options;
        if table.primary_key.is_empty() {
            return Err(NEEDS_KEY.into());
        }
        if o.contains_key("format") {
            return Err("an 'upsert-kafka' table has a format for the record key and one for the value: set 'key.format' and 'value.format' instead of 'format'".into());
        }
        for k in o.keys() {
            let known = k == "connector"
                || OPTIONS.contains(&k.as_str())
                || k.starts_with("properties.")
                || k.starts_with("key.")
                || k.starts_with("value.");
            if !known {
                return Err(format!(
                    "unsupported option '{k}'; this connector takes: {}, properties.*, key.<format>.*, value.<format>.*",
                    OPTIONS.join(", ")
                ));
            }
        }
        if table.watermark.is_some() {
            return Err("WATERMARK on an 'upsert-kafka' table is not supported yet (its rows are a changelog; event-time windows take appended rows)".into());
        }
        let topic = o
            .get("topic")
            .filter(|t| !t.trim().is_empty())
            .ok_or("set 'topic' to the Kafka topic of the table")?
            .clone();
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
        let (key_format, ignore_key_errors) = format_of(o, "key", &topic)?;
        let (value_format, ignore_value_errors) = format_of(o, "value", &topic)?;
        let schema = table.schema.clone();
        let key: Vec<usize> = table
            .primary_key
            .iter()
            .map(|name| {
                schema
                    .columns
                    .iter()
                    .position(|c| &c.name == name)
                    .ok_or_else(|| {
                        format!("the PRIMARY KEY column '{name}' is not a physical column")
                    })
            })
            .collect::<Result<_, _>>()?;
        let prefix = o.get("key.fields-prefix").cloned().unwrap_or_default();
        let except_key = match o
            .get("value.fields-include")
            .map(|v| v.trim().to_ascii_uppercase())
            .as_deref()
        {
            None | Some("ALL") => false,
            Some("EXCEPT_KEY") => true,
            Some(other) => {
                return Err(format!(
                    "'value.fields-include' = '{other}' must be 'ALL' or 'EXCEPT_KEY'"
                ));
            }
        };
        if !prefix.is_empty() && !except_key {
            return Err("a key prefix is not allowed when option 'value.fields-include' is set to 'ALL'; set it to 'EXCEPT_KEY' instead to avoid field overlaps".into());
        }
        let mut key_schema = Schema {
            columns: Vec::new(),
        };
        for &k in &key {
            let mut c = schema.columns[k].clone();
            c.name = c
                .name
                .strip_prefix(prefix.as_str())
                .ok_or_else(|| {
                    format!(
                        "all fields in the PRIMARY KEY must be prefixed with '{prefix}' when option 'key.fields-prefix' is set but field '{}' is not prefixed",
                        c.name
                    )
                })?
                .to_string();
            key_schema.columns.push(c);
        }
        let value_columns: Vec<usize> = (0..schema.columns.len())
            .filter(|i| !except_key || !key.contains(i))
            .collect();
        let value_schema = Schema {
            columns: value_columns
                .iter()
                .map(|&i| schema.columns[i].clone())
                .collect(),
        };
        format::check_schema(&key_format, &key_schema)?;
        format::check_schema(&value_format, &value_schema)?;
        let bounded = match o.get("scan.bounded.mode").map(String::as_str) {
            None | Some("unbounded") => false,
            Some("latest-offset") => true,
            Some(other) => {
                return Err(format!(
                    "scan.bounded.mode '{other}' is not supported; use 'unbounded' or 'latest-offset'"
                ));
            }
        };
        let sink_parallelism = match o.get("sink.parallelism") {
            None => None,
            Some(p) => Some(
                p.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or("'sink.parallelism' must be a positive integer")?,
            ),
        };
        // Flink's defaults are 0 (no buffering); both or neither must be positive.
        let rows = match o.get("sink.buffer-flush.max-rows") {
            None => 0,
            Some(r) => r
                .trim()
                .parse::<u64>()
                .map_err(|_| "'sink.buffer-flush.max-rows' must be a non-negative integer")?,
        };
        let interval = match o.get("sink.buffer-flush.interval") {
            None => Duration::ZERO,
            Some(t) => crate::planner::parse_duration(t).ok_or_else(|| {
                format!("'sink.buffer-flush.interval' = '{t}' is not a duration (such as '1s')")
            })?,
        };
        if (rows == 0) != interval.is_zero() {
            return Err("'sink.buffer-flush.max-rows' and 'sink.buffer-flush.interval' must be set to be greater than zero together to enable sink buffer flushing".into());
        }
        let buffer_flush = (rows > 0).then_some((rows as usize, interval));
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
        if delivery == DeliveryGuarantee::ExactlyOnce && transactional_id_prefix.is_none() {
            return Err("sink.delivery-guarantee 'exactly-once' needs 'sink.transactional-id-prefix', unique to this job".into());
        }
        Ok(UpsertKafkaConfig {
            topic,
            properties,
            key_format,
            value_format,
            ignore_key_errors,
            ignore_value_errors,
            schema,
            key,
            key_schema,
            value_columns,
            value_schema,
            bounded,
            sink_parallelism,
            buffer_flush,
            delivery,
            transactional_id_prefix,
        })
    }

    /// The Kafka source of the table: each record an upsert (`+U` of the row) or, without
    /// value, a delete (`-D` of a row with only the key columns set), before
    /// [`NormalizeFn`] makes a changelog of them.
    ///
    /// # Errors
    /// The Kafka source builder's refusal of the properties, as text.
    pub fn source(&self) -> Result<KafkaSource<Change>, String> {
        let c = Arc::new(self.clone());
        let deserializer = from_fn(move |r: &KafkaRecord<'_>| {
            let key = match r.key {
                Some(k) => decode(k, &c.key_format, &c.key_schema, c.ignore_key_errors)?,
                None => None,
            };
            let mut row: Row = vec![Value::Null; c.schema.columns.len()];
            if let Some(key) = &key {
                for (v, &i) in key.iter().zip(&c.key) {
                    row[i] = v.clone();
                }
            }
            let Some(value) = r.value else {
                // A tombstone without a key deletes nothing.
                return Ok(key.map(|_| Change {
                    kind: RowKind::Delete,
                    row,
                }));
            };
            if key.is_none() && c.value_columns.len() < c.schema.columns.len() {
                return Err(format!(
                    "a record without key (its value holds no key columns, 'value.fields-include' = 'EXCEPT_KEY'): {}",
                    r.position()
                )
                .into());
            }
            let Some(values) = decode(
                value,
                &c.value_format,
                &c.value_schema,
                c.ignore_value_errors,
            )?
            else {
                return Ok(None);
            };
            for (v, &i) in values.into_iter().zip(&c.value_columns) {
                row[i] = v;
            }
            Ok(Some(Change {
                kind: RowKind::UpdateAfter,
                row,
            }))
        });
        let mut builder = KafkaSource::<Change>::builder()
            .topics([self.topic.clone()])
            .starting_offsets(OffsetsInitializer::Earliest)
            .deserializer(deserializer);
        for (k, v) in &self.properties {
            builder = builder.property(k.clone(), v.clone());
        }
        if self.bounded {
            builder = builder.bounded(StoppingOffsets::Latest);
        }
        builder.build().map_err(|e| e.to_string())
    }

    /// The Kafka sink of the table: the key columns as the record key, the row (or the rest
    /// of it) as the value, a tombstone for `-D` and `-U`.
    ///
    /// # Errors
    /// The Kafka sink builder's refusal of the properties, as text.
    pub fn sink(&self) -> Result<KafkaSink<Change>, String> {
        let c = Arc::new(self.clone());
        let serializer = KafkaRecordSerializer::builder()
            .topic(self.topic.clone())
            .key(Part {
                config: c.clone(),
                key: true,
            })
            .value(Part {
                config: c,
                key: false,
            })
            .timestamp(|_: &Change| None)
            .build()
            .map_err(|e| e.to_string())?;
        let mut builder = KafkaSink::<Change>::builder()
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

/// The record key or value of a change.
struct Part {
    config: Arc<UpsertKafkaConfig>,
    key: bool,
}

impl SerializationFormat<Change> for Part {
    fn serialize(&self, change: &Change) -> Result<Vec<u8>, BoxError> {
        let c = &self.config;
        let (columns, format, schema) = if self.key {
            (&c.key, &c.key_format, &c.key_schema)
        } else {
            (&c.value_columns, &c.value_format, &c.value_schema)
        };
        let row: Row = columns.iter().map(|&i| change.row[i].clone()).collect();
        format::encode(format, schema, &row)
    }

    fn serialize_nullable(&self, change: &Change) -> Result<Option<Vec<u8>>, BoxError> {
        if !self.key && !change.kind.is_accumulate() {
            return Ok(None);
        }
        self.serialize(change).map(Some)
    }
}

/// Flink's `ChangelogNormalize` over an upsert stream, keyed by the primary key: the last row
/// of the key in keyed state, each upsert and delete turned into the changes that make the
/// changelog consistent.
#[derive(Clone)]
pub struct NormalizeFn {
    state_ttl: Option<Duration>,
    state: Option<ValueState<Row>>,
}

impl NormalizeFn {
    /// A normalizer; with a state TTL (`table.exec.state.ttl`) a repeated row is emitted again
    /// (`-U`/`+U`), as Flink does, so readers refresh it.
    pub fn new(state_ttl: Option<Duration>) -> Self {
        NormalizeFn {
            state_ttl,
            state: None,
        }
    }

    /// The changes of one upsert or delete given the key's previous row; returns the key's
    /// row after it.
    pub fn on_change(
        &self,
        previous: Option<Row>,
        change: Change,
        emit: &mut impl FnMut(Change),
    ) -> Option<Row> {
        match (change.kind, previous) {
            (RowKind::Delete | RowKind::UpdateBefore, None) => None,
            (RowKind::Delete | RowKind::UpdateBefore, Some(p)) => {
                emit(Change {
                    kind: RowKind::Delete,
                    row: p,
                });
                None
            }
            (_, None) => {
                emit(Change::insert(change.row.clone()));
                Some(change.row)
            }
            (_, Some(p)) if p == change.row && self.state_ttl.is_none() => Some(p),
            (_, Some(p)) => {
                emit(Change {
                    kind: RowKind::UpdateBefore,
                    row: p,
                });
                emit(Change {
                    kind: RowKind::UpdateAfter,
                    row: change.row.clone(),
                });
                Some(change.row)
            }
        }
    }
}

impl KeyedProcessFunction<Vec<Value>, Change, Change> for NormalizeFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let mut descriptor = ValueStateDescriptor::new("changelog-normalize");
        if let Some(ttl) = self.state_ttl {
            descriptor = descriptor.with_ttl(StateTtlConfig::new(ttl));
        }
        self.state = Some(ctx.get_state(&descriptor)?);
        Ok(())
    }

    fn process_element(
        &mut self,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Change>,
    ) -> Result<(), BoxError> {
        let handle = self
            .state
            .as_ref()
            .ok_or("changelog normalize not opened")?;
        let mut out = Vec::with_capacity(2);
        match self.on_change(handle.value(), change, &mut |c| out.push(c)) {
            Some(row) => handle.update(row),
            None => handle.clear(),
        }
        for c in out {
            ctx.collect(c);
        }
        Ok(())
    }
}

/// The table's rows as a changelog: the source, keyed by the primary key into a
/// [`NormalizeFn`] (uid `<uid>-normalize`).
///
/// # Errors
/// The source's refusal of the properties.
pub(crate) fn changelog_source(
    env: &StreamExecutionEnvironment,
    config: &UpsertKafkaConfig,
    name: &str,
    uid: &str,
    state_ttl: Option<Duration>,
) -> Result<DataStream<Change>, String> {
    let key = config.key.clone();
    Ok(env
        .from_source(config.source()?, name)
        .uid(uid)
        .key_by(move |c: &Change| {
            key.iter()
                .map(|&k| c.row[k].clone())
                .collect::<Vec<Value>>()
        })
        .process(NormalizeFn::new(state_ttl))
        .uid(&format!("{uid}-normalize"))
        .name(&format!(
            "ChangelogNormalize(key=[{}])",
            config.key_schema.names()
        ))
        .stream())
}

/// Writes a changelog into the table: keyed by the primary key, into the transactional Kafka
/// sink (at `sink.parallelism` if set).
///
/// # Errors
/// The sink's refusal of the properties.
pub(crate) fn write_changes(
    changes: DataStream<Change>,
    config: &UpsertKafkaConfig,
    name: &str,
    uid: &str,
) -> Result<(), String> {
    let sink = config.sink()?;
    let key = config.key.clone();
    let written = changes
        .key_by(move |c: &Change| {
            key.iter()
                .map(|&k| c.row[k].clone())
                .collect::<Vec<Value>>()
        })
        .sink_to_transactional(sink, name)
        .uid(uid);
    if let Some(p) = config.sink_parallelism {
        written.set_parallelism(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Column, DataType};

    fn table(options: &[(&str, &str)], key: &[&str]) -> TableDef {
        let col = |name: &str, data_type| Column {
            name: name.into(),
            data_type,
            rowtime: false,
        };
        let mut t = TableDef::physical(
            "t",
            Schema {
                columns: vec![
                    col("k_id", DataType::Int),
                    col("name", DataType::String),
                    col("n", DataType::BigInt),
                ],
            },
            options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        t.primary_key = key.iter().map(|k| k.to_string()).collect();
        t
    }

    const BASE: &[(&str, &str)] = &[
        ("connector", "upsert-kafka"),
        ("topic", "t"),
        ("properties.bootstrap.servers", "localhost:9092"),
        ("key.format", "json"),
        ("value.format", "csv"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut o = BASE.to_vec();
        o.extend_from_slice(extra);
        o
    }

    #[test]
    fn key_and_value_follow_the_prefix_and_fields_include() {
        let c = UpsertKafkaConfig::from_table(&table(
            &with(&[
                ("key.fields-prefix", "k_"),
                ("value.fields-include", "EXCEPT_KEY"),
                ("value.csv.field-delimiter", ";"),
                ("sink.parallelism", "2"),
                ("sink.buffer-flush.max-rows", "100"),
                ("sink.buffer-flush.interval", "1s"),
            ]),
            &["k_id"],
        ))
        .unwrap();
        assert_eq!(c.key, vec![0]);
        assert_eq!(c.key_schema.names(), "id");
        assert_eq!(c.value_columns, vec![1, 2]);
        assert_eq!(
            c.value_format,
            Format::Csv {
                delimiter: b';',
                null_literal: None
            }
        );
        assert_eq!(c.sink_parallelism, Some(2));
        assert_eq!(c.buffer_flush, Some((100, Duration::from_secs(1))));
        let change = Change::insert(vec![
            Value::Int(7),
            Value::String("a".into()),
            Value::BigInt(3),
        ]);
        let key = Part {
            config: Arc::new(c.clone()),
            key: true,
        };
        let value = Part {
            config: Arc::new(c),
            key: false,
        };
        assert_eq!(key.serialize(&change).unwrap(), br#"{"id":7}"#);
        assert_eq!(
            value.serialize_nullable(&change).unwrap(),
            Some(b"a;3".to_vec())
        );
        let before = Change {
            kind: RowKind::UpdateBefore,
            ..change.clone()
        };
        assert_eq!(value.serialize_nullable(&before).unwrap(), None);
        let deleted = Change {
            kind: RowKind::Delete,
            ..change
        };
        assert_eq!(value.serialize_nullable(&deleted).unwrap(), None);
        assert_eq!(
            key.serialize_nullable(&deleted).unwrap().unwrap(),
            br#"{"id":7}"#
        );
    }

    #[test]
    fn misconfigured_tables_are_refused_as_flink_refuses_them() {
        let refused = |options: &[(&str, &str)], key: &[&str]| {
            UpsertKafkaConfig::from_table(&table(options, key)).unwrap_err()
        };
        assert!(refused(BASE, &[]).contains("require to define a PRIMARY KEY"));
        assert!(refused(&with(&[("format", "json")]), &["k_id"]).contains("'key.format'"));
        assert!(
            refused(
                &with(&[("scan.startup.mode", "earliest-offset")]),
                &["k_id"]
            )
            .contains("unsupported option 'scan.startup.mode'")
        );
        assert!(
            refused(&with(&[("key.fields-prefix", "k_")]), &["k_id"])
                .contains("'value.fields-include' is set to 'ALL'")
        );
        assert!(
            refused(
                &with(&[
                    ("key.fields-prefix", "x_"),
                    ("value.fields-include", "EXCEPT_KEY")
                ]),
                &["k_id"]
            )
            .contains("prefixed with 'x_'")
        );
        let mut dbz = with(&[]);
        dbz.retain(|(k, _)| *k != "value.format");
        dbz.push(("value.format", "debezium-json"));
        assert!(refused(&dbz, &["k_id"]).contains("not in insert-only mode"));
        assert!(refused(&with(&[("value.csv.bogus", "1")]), &["k_id"]).contains("'value.'"));
        assert!(
            refused(&with(&[("sink.buffer-flush.max-rows", "10")]), &["k_id"])
                .contains("greater than zero together")
        );
        assert!(
            refused(
                &with(&[("sink.delivery-guarantee", "exactly-once")]),
                &["k_id"]
            )
            .contains("sink.transactional-id-prefix")
        );
    }

    #[test]
    fn normalizing_upserts_gives_a_consistent_changelog() {
        let f = NormalizeFn::new(None);
        let row = |n: i64| vec![Value::Int(1), Value::BigInt(n)];
        let upsert = |n| Change {
            kind: RowKind::UpdateAfter,
            row: row(n),
        };
        let delete = Change {
            kind: RowKind::Delete,
            row: vec![Value::Int(1), Value::Null],
        };
        let mut state = None;
        let mut out = Vec::new();
        for c in [
            upsert(1),
            upsert(1),
            upsert(2),
            delete.clone(),
            delete,
            upsert(3),
        ] {
            state = f.on_change(state, c, &mut |c| {
                out.push(format!("{}{:?}", c.kind.short(), c.row[1]))
            });
        }
        assert_eq!(
            out,
            [
                "+IBigInt(1)",
                "-UBigInt(1)",
                "+UBigInt(2)",
                "-DBigInt(2)",
                "+IBigInt(3)"
            ]
        );
        assert_eq!(state, Some(row(3)));
    }
}
