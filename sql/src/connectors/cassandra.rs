//! The `cassandra` connector: a sink table whose rows are written into a Cassandra table
//! through Fjord's `CassandraSink` (crate `fjord-cassandra`, Flink's `CassandraSink`
//! semantics). Flink has no official SQL connector for Cassandra; this one maps the SQL
//! table's physical columns by name onto the Cassandra table's columns
//! (`INSERT INTO keyspace.table (col, ...) VALUES (?, ...)`), so the SQL table declares the
//! columns to write, a subset of the Cassandra table's that includes its primary key.
//!
//! Options: `hosts` (contact points `host:port`, comma-separated), `keyspace`, `table`,
//! `ttl` (whole seconds), `consistency`, `sink.max-concurrent-requests`, `sink.max-retries`,
//! `sink.write-ahead-log` (write a checkpoint's rows once it completed, Flink's
//! `enableWriteAheadLog`), `sink.committer-keyspace`, `sink.ignore-failures` (count and go on
//! instead of failing), `sink.ignore-malformed` (skip rows that do not fit the columns).
//! SQL values map to CQL as BOOLEAN → boolean, INT → int, BIGINT → bigint (or int, smallint,
//! tinyint, timestamp if the column is one and the value fits), DOUBLE → double (or float),
//! STRING → text/varchar/ascii, TIMESTAMP(3) → timestamp, DATE → date, NULL → null.

use crate::plan::TableDef;
use crate::types::{Row, Value};
use fjord_cassandra::{
    CassandraSink, CassandraWriteAheadSink, Consistency, CqlRow, CqlValue, OnFailure, OnMalformed,
};
use std::time::Duration;

const OPTIONS: &[&str] = &[
    "hosts",
    "keyspace",
    "table",
    "ttl",
    "consistency",
    "sink.max-concurrent-requests",
    "sink.max-retries",
    "sink.write-ahead-log",
    "sink.committer-keyspace",
    "sink.ignore-failures",
    "sink.ignore-malformed",
];

/// The options of a Cassandra table.
#[derive(Debug, Clone, PartialEq)]
pub struct CassandraTableConfig {
    /// `hosts`: contact points.
    pub hosts: String,
    /// `keyspace`.
    pub keyspace: String,
    /// `table`.
    pub table: String,
    /// The SQL table's physical column names, which are the Cassandra columns written.
    pub columns: Vec<String>,
    /// `ttl`: seconds to live of written rows.
    pub ttl: Option<Duration>,
    /// `consistency`.
    pub consistency: Consistency,
    /// `sink.max-concurrent-requests`.
    pub max_concurrent_requests: Option<usize>,
    /// `sink.max-retries`.
    pub max_retries: Option<u32>,
    /// `sink.write-ahead-log`.
    pub write_ahead_log: bool,
    /// `sink.committer-keyspace`.
    pub committer_keyspace: Option<String>,
    /// `sink.ignore-failures`.
    pub ignore_failures: bool,
    /// `sink.ignore-malformed`.
    pub ignore_malformed: bool,
}

fn consistency(name: &str) -> Result<Consistency, String> {
    Ok(
        match name.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "ANY" => Consistency::Any,
            "ONE" => Consistency::One,
            "TWO" => Consistency::Two,
            "THREE" => Consistency::Three,
            "QUORUM" => Consistency::Quorum,
            "ALL" => Consistency::All,
            "LOCAL_QUORUM" => Consistency::LocalQuorum,
            "EACH_QUORUM" => Consistency::EachQuorum,
            "LOCAL_ONE" => Consistency::LocalOne,
            _ => {
                return Err(format!(
                    "'consistency' = '{name}' is not one of ANY, ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE"
                ));
            }
        },
    )
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    o: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<Option<T>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|n| *n > T::default())
            .map(Some)
            .ok_or_else(|| format!("'{key}' = '{v}' must be a number above 0")),
    }
}

impl CassandraTableConfig {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// An unknown option, a missing `hosts`, `keyspace` or `table`, a bad `ttl`,
    /// `consistency` or number, a non-boolean flag.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o = &table.options;
        super::only_options(o, OPTIONS)?;
        let required = |key: &str, example: &str| {
            o.get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("set '{key}' to {example}"))
        };
        let hosts = required(
            "hosts",
            "the cluster's contact points, such as '127.0.0.1:9042'",
        )?;
        let keyspace = required("keyspace", "the Cassandra keyspace of the table")?;
        let cql_table = required("table", "the Cassandra table to write")?;
        let ttl = positive::<u64>(o, "ttl")?.map(Duration::from_secs);
        let config = CassandraTableConfig {
            hosts,
            keyspace,
            table: cql_table,
            columns: table
                .schema
                .columns
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            ttl,
            consistency: match o.get("consistency") {
                None => Consistency::LocalQuorum,
                Some(c) => consistency(c)?,
            },
            max_concurrent_requests: positive(o, "sink.max-concurrent-requests")?,
            max_retries: match o.get("sink.max-retries") {
                None => None,
                Some(v) => Some(v.trim().parse::<u32>().map_err(|_| {
                    format!("'sink.max-retries' = '{v}' must be a whole number, 0 or more")
                })?),
            },
            write_ahead_log: super::bool_option(o, "sink.write-ahead-log", false)?,
            committer_keyspace: o.get("sink.committer-keyspace").cloned(),
            ignore_failures: super::bool_option(o, "sink.ignore-failures", false)?,
            ignore_malformed: super::bool_option(o, "sink.ignore-malformed", false)?,
        };
        if config.committer_keyspace.is_some() && !config.write_ahead_log {
            return Err(
                "'sink.committer-keyspace' applies to 'sink.write-ahead-log' = 'true' only".into(),
            );
        }
        // The builder's own checks (statement, bounds), before any job starts.
        config.builder().build().map_err(|e| e.to_string())?;
        Ok(config)
    }

    fn builder(&self) -> fjord_cassandra::CassandraSinkBuilder<Row> {
        let mut b = CassandraSink::<Row>::builder()
            .hosts(&self.hosts)
            .table(&self.keyspace, &self.table, self.columns.clone())
            .consistency(self.consistency)
            .mapper(row_values)
            .on_failure(if self.ignore_failures {
                OnFailure::IgnoreAndCount
            } else {
                OnFailure::Fail
            })
            .on_malformed(if self.ignore_malformed {
                OnMalformed::Skip
            } else {
                OnMalformed::Fail
            });
        if let Some(t) = self.ttl {
            b = b.ttl(t);
        }
        if let Some(n) = self.max_concurrent_requests {
            b = b.max_concurrent_requests(n);
        }
        if let Some(n) = self.max_retries {
            b = b.max_retries(n);
        }
        if let Some(ks) = &self.committer_keyspace {
            b = b.committer_table(ks, fjord_cassandra::committer::DEFAULT_COMMITTER_TABLE);
        }
        b
    }

    /// The at-least-once sink.
    ///
    /// # Errors
    /// What the builder refuses.
    pub fn sink(&self) -> Result<CassandraSink<Row>, String> {
        self.builder().build().map_err(|e| e.to_string())
    }

    /// The write-ahead sink (`'sink.write-ahead-log' = 'true'`).
    ///
    /// # Errors
    /// What the builder refuses.
    pub fn write_ahead_sink(&self) -> Result<CassandraWriteAheadSink<Row>, String> {
        self.builder()
            .build_write_ahead()
            .map_err(|e| e.to_string())
    }
}

/// A SQL row as CQL values, column by column.
fn row_values(row: &Row) -> Result<CqlRow, String> {
    row.iter()
        .map(|v| {
            Ok(match v {
            Value::Null => None,
            Value::Boolean(b) => Some(CqlValue::Boolean(*b)),
            Value::TinyInt(i) => Some(CqlValue::TinyInt(*i)),
            Value::SmallInt(i) => Some(CqlValue::SmallInt(*i)),
            Value::Int(i) => Some(CqlValue::Int(*i)),
            Value::BigInt(i) => Some(CqlValue::BigInt(*i)),
            Value::Decimal(d) => Some(fjord_cassandra::row::decimal(d.unscaled, d.scale)),
            Value::Float(f) => Some(CqlValue::Float(*f)),
            Value::Double(d) => Some(CqlValue::Double(*d)),
            Value::String(s) => Some(CqlValue::Text(s.clone())),
            Value::Timestamp(ms) => Some(fjord_cassandra::timestamp(*ms)),
            Value::Date(days) => Some(fjord_cassandra::row::date(*days)),
            Value::Time(millis, _) => Some(fjord_cassandra::row::time_of_day(*millis)),
            Value::Bytes(b) => Some(CqlValue::Blob(b.clone())),
            Value::TimestampLtz(ms) => Some(fjord_cassandra::timestamp(*ms)),
            Value::Row(_) | Value::Array(_) | Value::Map(_) => {
                return Err(format!(
                    "the Cassandra sink writes scalar columns only, not {}; CAST it to STRING or select its fields",
                    v.to_sql_string().unwrap_or_default()
                ));
            }
        })
        })
        .collect()
}
