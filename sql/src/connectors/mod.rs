//! The connectors SQL tables name in `WITH ('connector' = ...)`: option checking at planning
//! time (so a typo fails before any job starts), and the sources and sinks the lowering
//! attaches to the DataStream graph. One file per connector.

pub mod activemq;
pub mod avro_file;
pub mod blackhole;
pub mod cassandra;
pub mod datagen;
pub mod elasticsearch;
pub mod filesystem;
pub(crate) mod filesystem_monitor;
pub mod format;
pub mod format_avro;
pub mod format_debezium;
pub(crate) mod format_json;
pub mod format_protobuf;
pub mod format_raw;
pub mod jdbc;
pub mod kafka;
pub mod kinesis;
pub mod parquet;
pub mod print;
pub mod rabbitmq;
pub mod redis;
pub mod upsert_kafka;

use crate::plan::TableDef;
use crate::types::DataType;
use std::collections::BTreeMap;

/// A metadata key a connector offers for `col TYPE METADATA FROM 'key'` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataKey {
    /// The key.
    pub key: &'static str,
    /// The type of its values.
    pub data_type: DataType,
    /// Whether a sink writes it (a non-virtual column of a key that is not writable cannot
    /// be INSERTed into).
    pub writable: bool,
}

/// The metadata keys of a connector (none for most).
pub fn metadata_keys(connector: &str) -> &'static [MetadataKey] {
    match connector {
        "kafka" => kafka::METADATA,
        _ => &[],
    }
}

/// The connectors SQL tables can use.
pub const KNOWN: &[&str] = &[
    "datagen",
    "filesystem",
    "kafka",
    "upsert-kafka",
    "print",
    "blackhole",
    "redis",
    "rabbitmq",
    "activemq",
    "elasticsearch-7",
    "elasticsearch-8",
    "opensearch",
    "opensearch-2",
    "cassandra",
    "kinesis",
    "jdbc",
];

/// The connectors whose tables use a `PRIMARY KEY (...) NOT ENFORCED` (the document id).
pub const USES_PRIMARY_KEY: &[&str] = elasticsearch::CONNECTORS;

/// The connectors that refuse a `PRIMARY KEY`, as Flink's do: an append-only Kafka topic
/// cannot keep one (an `upsert-kafka` table can). Other tables accept the declaration, which,
/// `NOT ENFORCED`, changes nothing they read or write.
pub const REFUSES_PRIMARY_KEY: &[&str] = &["kafka"];

/// Checks that a table's options make it a source (and, with `local_paths`, that a
/// `filesystem` source's path exists here).
///
/// # Errors
/// What is wrong with the options and what to do, without position (the planner adds it).
pub fn check_source(table: &TableDef, local_paths: bool) -> Result<(), String> {
    match table.connector() {
        "datagen" => datagen::DatagenConfig::from_table(table).map(|_| ()),
        "filesystem" => filesystem::FileConfig::from_table(table, local_paths).map(|_| ()),
        "kafka" => kafka::KafkaTableConfig::from_table(table, true).map(|_| ()),
        "upsert-kafka" => upsert_kafka::UpsertKafkaConfig::from_table(table).map(|_| ()),
        "rabbitmq" => rabbitmq::RabbitMqTableConfig::from_table(table).map(|_| ()),
        "activemq" => activemq::ActiveMqTableConfig::from_table(table).map(|_| ()),
        "kinesis" => kinesis::KinesisTableConfig::from_table(table).map(|_| ()),
        "jdbc" => jdbc::JdbcTableConfig::from_table(table).map(|_| ()),
        other => Err(format!(
            "the '{other}' connector can only be written to (INSERT INTO it); read from a 'datagen', 'filesystem', 'kafka', 'upsert-kafka', 'rabbitmq', 'activemq', 'kinesis' or 'jdbc' table"
        )),
    }
}

/// Checks that a table's options make it a sink.
///
/// # Errors
/// As [`check_source`].
pub fn check_sink(table: &TableDef) -> Result<(), String> {
    match table.connector() {
        "print" => print::PrintConfig::from_table(table).map(|_| ()),
        "blackhole" => only_options(&table.options, &[]),
        "filesystem" => filesystem::FileConfig::from_table(table, false).map(|_| ()),
        "kafka" => kafka::KafkaTableConfig::from_table(table, false).map(|_| ()),
        "upsert-kafka" => upsert_kafka::UpsertKafkaConfig::from_table(table).map(|_| ()),
        "redis" => redis::RedisTableConfig::from_table(table).map(|_| ()),
        "rabbitmq" => rabbitmq::RabbitMqTableConfig::from_table(table).map(|_| ()),
        "activemq" => activemq::ActiveMqTableConfig::from_table(table).map(|_| ()),
        c if elasticsearch::CONNECTORS.contains(&c) => {
            elasticsearch::ElasticsearchTableConfig::from_table(table).map(|_| ())
        }
        "cassandra" => cassandra::CassandraTableConfig::from_table(table).map(|_| ()),
        "kinesis" => kinesis::KinesisTableConfig::from_table(table).map(|_| ()),
        "jdbc" => jdbc::JdbcTableConfig::from_table(table).map(|_| ()),
        other => Err(format!(
            "the '{other}' connector can only be read from; write to a 'print', 'blackhole', 'filesystem', 'kafka', 'upsert-kafka', 'rabbitmq', 'activemq', 'kinesis', 'redis', 'elasticsearch-7', 'opensearch' or 'cassandra' table"
        )),
    }
}

/// What a sink table takes: `print`, `blackhole` and a `kafka` table in `debezium-json` take
/// every change kind; `upsert-kafka` and a `jdbc` table with a primary key upsert; the others
/// append rows and refuse updating queries, as Flink's do.
pub fn sink_changes(table: &TableDef) -> crate::changelog::SinkChanges {
    match table.connector() {
        "print" | "blackhole" => crate::changelog::SinkChanges::All,
        "kafka" if is_debezium(table) => crate::changelog::SinkChanges::All,
        "upsert-kafka" => crate::changelog::SinkChanges::Upsert,
        "jdbc" if !table.primary_key.is_empty() => crate::changelog::SinkChanges::Upsert,
        _ => crate::changelog::SinkChanges::AppendOnly,
    }
}

/// Whether a table's format is Flink's `debezium-json` changelog format.
fn is_debezium(table: &TableDef) -> bool {
    table.options.get("format").map(String::as_str) == Some("debezium-json")
}

/// Whether reading the table gives a changelog (`-U`/`+U`/`-D` besides `+I`): an
/// `upsert-kafka` table, a `kafka` table in `debezium-json` (Flink's changelog sources).
pub fn is_changelog_source(table: &TableDef) -> bool {
    match table.connector() {
        "upsert-kafka" => true,
        "kafka" => is_debezium(table),
        _ => false,
    }
}

/// What to do when an updating query goes into an append-only table of this connector
/// (added to the planner's message), for connectors that can take updates another way.
pub fn updating_hint(table: &TableDef) -> Option<&'static str> {
    match table.connector() {
        "jdbc" => Some(
            "declare the table's PRIMARY KEY (...) NOT ENFORCED to make it an upsert sink (the key of the query's result, such as its GROUP BY columns), or",
        ),
        "kafka" => Some(
            "write it to an 'upsert-kafka' table with a PRIMARY KEY (...) NOT ENFORCED (the key of the query's result, such as its GROUP BY columns; deletes become tombstones), or to a 'kafka' table with 'format' = 'debezium-json', or",
        ),
        _ => None,
    }
}

/// Refuses options a connector does not know (as Flink does), listing the ones it does.
fn only_options(options: &BTreeMap<String, String>, allowed: &[&str]) -> Result<(), String> {
    for key in options.keys() {
        if key != "connector" && !allowed.contains(&key.as_str()) {
            return Err(format!(
                "unsupported option '{key}'; this connector takes: {}",
                if allowed.is_empty() {
                    "no options besides 'connector'".to_string()
                } else {
                    allowed.join(", ")
                }
            ));
        }
    }
    Ok(())
}

/// A boolean option (`'true'`/`'false'`), `default` when absent.
fn bool_option(
    options: &BTreeMap<String, String>,
    key: &str,
    default: bool,
) -> Result<bool, String> {
    match options.get(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(format!("option '{key}' = '{v}' must be 'true' or 'false'")),
    }
}
