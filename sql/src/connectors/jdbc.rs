//! The `jdbc` connector (Flink's JDBC connector, for PostgreSQL): a table of a PostgreSQL
//! database through Fjord's `fjord-postgres` crate, with Flink's SQL options `url`
//! (`jdbc:postgresql://host:port/db`), `table-name`, `username`, `password`, `driver`,
//! `sink.buffer-flush.max-rows`, `sink.buffer-flush.interval`, `sink.max-retries`,
//! `lookup.cache` (`NONE`/`PARTIAL`), `lookup.partial-cache.max-rows`,
//! `lookup.partial-cache.expire-after-write`, `lookup.partial-cache.expire-after-access`,
//! `lookup.partial-cache.cache-missing-key` and `lookup.max-retries`.
//!
//! - **Sink.** Without a `PRIMARY KEY` the table appends (`INSERT`) and takes appended rows
//!   only; with `PRIMARY KEY (...) NOT ENFORCED` it is an upsert sink that takes changelogs:
//!   `+I`/`+U` upsert by the key, `-D` and `-U` delete by the key (Flink's JDBC sink: its
//!   reduced buffer keeps the last change of a key per batch, so a `-U` followed by its `+U`
//!   writes the upsert only, and a `-U` whose `+U` a `HAVING` dropped deletes the row). The
//!   lowering keys the stream by the primary key first, so every key's changes reach one
//!   writer in order, and replays after a failure rewrite the same final rows: exactly-once
//!   results.
//! - **Scan.** `SELECT ... FROM t` reads the table once ([`JdbcScanSource`]: one query, one
//!   subtask, bounded, as Flink's JDBC table source); a restart after a failure reads it again.
//! - **Lookups.** `JOIN t FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.k = c.id` looks up each
//!   probe row's key ([`LookupJoinFn`], Flink's `LookupJoin`): stateless, chained.
//! - **Values.** [`to_pg`] and [`from_pg`] map the SQL types to PostgreSQL's: `INT` int4,
//!   `BIGINT` int8, `SMALLINT`/`TINYINT` int2, `FLOAT` real, `DOUBLE` double precision,
//!   `DECIMAL` numeric (exact text), `STRING` text, `BYTES` bytea, `BOOLEAN`, `DATE`,
//!   `TIMESTAMP(3)`/`TIMESTAMP_LTZ(3)` timestamp (milliseconds). `TIME` and composite types are
//!   refused at planning.

use crate::changelog::{Change, RowKind};
use crate::expr::Expr;
use crate::plan::{ColumnKind, TableDef};
use crate::types::{DataType, Row, Schema, Value};
use fjord::sources::{Source, SourceOutput, SourceReader, SourceStatus};
use fjord::{BoxError, Collector, FlatMapFunction, RuntimeContext};
use fjord_postgres::{
    Backoff, LookupCache, PgAction, PgEmitter, PgValue, PostgresLookup, PostgresSink,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The connector's name.
pub const CONNECTOR: &str = "jdbc";

const OPTIONS: &[&str] = &[
    "url",
    "table-name",
    "username",
    "password",
    "driver",
    "sink.buffer-flush.max-rows",
    "sink.buffer-flush.interval",
    "sink.max-retries",
    "lookup.cache",
    "lookup.partial-cache.max-rows",
    "lookup.partial-cache.expire-after-write",
    "lookup.partial-cache.expire-after-access",
    "lookup.partial-cache.cache-missing-key",
    "lookup.max-retries",
];

/// The options of a `jdbc` table.
#[derive(Debug, Clone, PartialEq)]
pub struct JdbcTableConfig {
    /// The server's URL as the client takes it (`jdbc:postgresql://...` is kept; the client
    /// reads it).
    pub url: String,
    username: Option<String>,
    password: Option<String>,
    /// `table-name`.
    pub table: String,
    /// The physical columns (the database table's columns, by name).
    pub schema: Schema,
    /// The physical columns of the primary key, in key order (empty: append).
    pub key: Vec<usize>,
    max_rows: Option<usize>,
    flush_interval: Option<Option<Duration>>,
    max_retries: Option<u32>,
    cache: Option<LookupCache>,
    lookup_max_retries: Option<u32>,
}

fn duration(o: &BTreeMap<String, String>, key: &str) -> Result<Option<Duration>, String> {
    o.get(key)
        .map(|v| {
            crate::planner::parse_duration(v).ok_or_else(|| {
                format!("'{key}' = '{v}' is not a duration; write e.g. '1s', '500ms', '10min'")
            })
        })
        .transpose()
}

fn count(o: &BTreeMap<String, String>, key: &str) -> Result<Option<usize>, String> {
    o.get(key)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("'{key}' = '{v}' must be a whole number"))
        })
        .transpose()
}

/// Checks that a SQL type has a PostgreSQL value type ([`to_pg`]).
fn check_type(column: &str, t: DataType) -> Result<(), String> {
    match t {
        DataType::Time(_) => Err(format!(
            "column '{column}' is TIME, which the 'jdbc' connector does not read or write yet; declare it STRING (PostgreSQL's text form) or leave it out"
        )),
        DataType::Interval => Err(format!("column '{column}' is an INTERVAL")),
        t if t.is_composite() => Err(format!(
            "column '{column}' is {t}: the 'jdbc' connector writes and reads flat columns only (PostgreSQL has no ROW/ARRAY/MAP mapping here); select the fields you need, or CAST(... AS STRING) into a text column"
        )),
        _ => Ok(()),
    }
}

impl JdbcTableConfig {
    /// Reads and checks the options, the columns and the primary key.
    ///
    /// # Errors
    /// An unknown option (listing the known ones), a missing `url` or `table-name`, a URL of
    /// another database, a bad number or duration, cache options without `'lookup.cache' =
    /// 'PARTIAL'`, a column of a type the connector has no mapping for.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o = &table.options;
        super::only_options(o, OPTIONS)?;
        let url = o
            .get("url")
            .map(|u| u.trim().to_string())
            .unwrap_or_default();
        if url.is_empty() {
            return Err(
                "set 'url' to the database, such as 'jdbc:postgresql://localhost:5432/mydb'".into(),
            );
        }
        if !(url.starts_with("jdbc:postgresql://")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(format!(
                "'url' = '{url}': the 'jdbc' connector speaks PostgreSQL only; write 'jdbc:postgresql://host:port/database' (MySQL, Oracle and the other databases of Flink's JDBC connector are not supported)"
            ));
        }
        if let Some(d) = o.get("driver")
            && d.trim() != "org.postgresql.Driver"
        {
            return Err(format!(
                "'driver' = '{d}': only PostgreSQL is supported ('org.postgresql.Driver'; the option may be left out)"
            ));
        }
        let table_name = o
            .get("table-name")
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or("set 'table-name' to the database table, such as 'orders' or 'shop.orders'")?;
        let schema = table.schema.clone();
        for c in &schema.columns {
            check_type(&c.name, c.data_type)?;
        }
        if !table.metadata.is_empty() {
            return Err(
                "the 'jdbc' connector has no metadata columns; declare physical columns".into(),
            );
        }
        let key = table
            .primary_key
            .iter()
            .map(|c| {
                schema
                    .index_of(c)
                    .ok_or_else(|| format!("PRIMARY KEY column '{c}' is not a physical column"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let username = o.get("username").cloned().filter(|u| !u.is_empty());
        let password = o.get("password").cloned();
        let cache = match o
            .get("lookup.cache")
            .map(|c| c.trim().to_ascii_uppercase())
            .as_deref()
        {
            None | Some("NONE") => {
                if let Some(k) = o.keys().find(|k| k.starts_with("lookup.partial-cache.")) {
                    return Err(format!(
                        "'{k}' needs the partial cache: add 'lookup.cache' = 'PARTIAL'"
                    ));
                }
                None
            }
            Some("PARTIAL") => {
                let max_rows = count(o, "lookup.partial-cache.max-rows")?
                    .filter(|&n| n > 0)
                    .ok_or("'lookup.cache' = 'PARTIAL' needs 'lookup.partial-cache.max-rows' (the keys kept, above zero)")?;
                let mut cache = LookupCache::partial(max_rows).cache_missing_key(
                    super::bool_option(o, "lookup.partial-cache.cache-missing-key", true)?,
                );
                if let Some(d) = duration(o, "lookup.partial-cache.expire-after-write")? {
                    cache = cache.expire_after_write(d);
                }
                if let Some(d) = duration(o, "lookup.partial-cache.expire-after-access")? {
                    cache = cache.expire_after_access(d);
                }
                Some(cache)
            }
            Some(c) => {
                return Err(format!(
                    "'lookup.cache' = '{c}' must be NONE or PARTIAL (Flink's FULL cache is not supported yet)"
                ));
            }
        };
        let retries = |key: &str| -> Result<Option<u32>, String> {
            Ok(count(o, key)?.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
        };
        Ok(JdbcTableConfig {
            url,
            username,
            password,
            table: table_name,
            schema,
            key,
            max_rows: count(o, "sink.buffer-flush.max-rows")?,
            flush_interval: duration(o, "sink.buffer-flush.interval")?
                .map(|d| (!d.is_zero()).then_some(d)),
            max_retries: retries("sink.max-retries")?,
            cache,
            lookup_max_retries: retries("lookup.max-retries")?,
        })
    }

    /// Whether the table has a primary key (an upsert sink).
    pub fn upserts(&self) -> bool {
        !self.key.is_empty()
    }

    fn names(&self, columns: &[usize]) -> Vec<String> {
        columns
            .iter()
            .map(|&i| self.schema.columns[i].name.clone())
            .collect()
    }

    fn sink<T: Send + 'static>(
        &self,
        emitter: impl PgEmitter<T>,
    ) -> Result<PostgresSink<T>, String> {
        let all: Vec<usize> = (0..self.schema.columns.len()).collect();
        let mut b = PostgresSink::builder()
            .url(&self.url)
            .table(&self.table)
            .columns(self.names(&all))
            .key(self.names(&self.key))
            .emitter(emitter);
        if let Some(u) = &self.username {
            b = b.username(u);
        }
        if let Some(p) = &self.password {
            b = b.password(p);
        }
        if let Some(n) = self.max_rows {
            b = b.max_rows(n);
        }
        if let Some(i) = self.flush_interval {
            b = b.flush_interval(i);
        }
        if let Some(n) = self.max_retries {
            b = b.backoff(Backoff {
                max_retries: n,
                ..Backoff::default()
            });
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The sink of appended rows: upserts by the primary key when the table has one, plain
    /// `INSERT`s otherwise.
    ///
    /// # Errors
    /// A URL the client cannot read.
    pub fn row_sink(&self) -> Result<PostgresSink<Row>, String> {
        self.sink(RowEmitter {
            types: Arc::new(self.types()),
            key: Arc::new(self.key.clone()),
            changes: false,
        })
    }

    /// The sink of a changelog (the table has a primary key): `+I`/`+U` upsert, `-U`/`-D`
    /// delete by the key.
    ///
    /// # Errors
    /// As [`row_sink`](Self::row_sink).
    pub fn change_sink(&self) -> Result<PostgresSink<Change>, String> {
        self.sink(RowEmitter {
            types: Arc::new(self.types()),
            key: Arc::new(self.key.clone()),
            changes: true,
        })
    }

    fn types(&self) -> Vec<(String, DataType)> {
        self.schema
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.data_type))
            .collect()
    }

    /// A lookup of the table's physical columns by `key` (physical column indexes).
    ///
    /// # Errors
    /// A URL the client cannot read, an empty key.
    pub fn lookup(&self, key: &[usize]) -> Result<PostgresLookup, String> {
        let all: Vec<usize> = (0..self.schema.columns.len()).collect();
        let mut b = PostgresLookup::builder()
            .url(&self.url)
            .table(&self.table)
            .key(self.names(key))
            .columns(self.names(&all));
        if let Some(u) = &self.username {
            b = b.username(u);
        }
        if let Some(p) = &self.password {
            b = b.password(p);
        }
        if let Some(c) = self.cache {
            b = b.cache(c);
        }
        if let Some(n) = self.lookup_max_retries {
            b = b.max_retries(n);
        }
        b.build().map_err(|e| e.to_string())
    }
}

impl JdbcTableConfig {
    /// The bounded scan of the table's physical columns.
    ///
    /// # Errors
    /// A URL the client cannot read.
    pub fn scan(&self) -> Result<JdbcScanSource, String> {
        let all: Vec<usize> = (0..self.schema.columns.len()).collect();
        let mut b = PostgresLookup::builder()
            .url(&self.url)
            .table(&self.table)
            .columns(self.names(&all));
        if let Some(u) = &self.username {
            b = b.username(u);
        }
        if let Some(p) = &self.password {
            b = b.password(p);
        }
        if let Some(n) = self.lookup_max_retries {
            b = b.max_retries(n);
        }
        Ok(JdbcScanSource {
            lookup: b.build_scan().map_err(|e| e.to_string())?,
            types: Arc::new(self.schema.columns.iter().map(|c| c.data_type).collect()),
            table: self.table.clone(),
        })
    }
}

/// The bounded scan of a `jdbc` table (Flink's JDBC table source, without its partitioned
/// reads): one subtask runs `SELECT columns FROM table` and emits the rows, then finishes.
/// It keeps no read position: a restart after a failure reads the table again.
pub struct JdbcScanSource {
    lookup: PostgresLookup,
    types: Arc<Vec<DataType>>,
    table: String,
}

impl Source<Row> for JdbcScanSource {
    fn is_parallel(&self) -> bool {
        false
    }

    fn create_reader(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<Row>>, BoxError> {
        Ok(Box::new(ScanReader {
            lookup: self.lookup.clone(),
            types: self.types.clone(),
            table: self.table.clone(),
            rows: None,
        }))
    }
}

struct ScanReader {
    lookup: PostgresLookup,
    types: Arc<Vec<DataType>>,
    table: String,
    /// The rows still to emit, once read.
    rows: Option<std::vec::IntoIter<fjord_postgres::PgRow>>,
}

impl SourceReader<Row> for ScanReader {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        Ok(self.lookup.open(Some(ctx))?)
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, Row>) -> Result<SourceStatus, BoxError> {
        if self.rows.is_none() {
            let rows = self.lookup.lookup(&[]).map_err(|e| -> BoxError {
                format!("reading table '{}': {e}", self.table).into()
            })?;
            self.rows = Some(rows.into_iter());
        }
        let rows = self.rows.as_mut().expect("read");
        for r in rows.by_ref().take(1000) {
            let mut row = Vec::with_capacity(self.types.len());
            for (v, t) in r.values().iter().zip(self.types.iter()) {
                row.push(from_pg(v, *t).map_err(|e| -> BoxError {
                    format!("reading table '{}': {e}", self.table).into()
                })?);
            }
            output.collect(row);
        }
        Ok(if rows.len() == 0 {
            SourceStatus::Finished
        } else {
            SourceStatus::MoreAvailable
        })
    }
}

/// Checks a table a lookup join reads: a `jdbc` table whose columns are all physical.
///
/// # Errors
/// What is wrong, for the planner to place.
pub fn check_lookup(table: &TableDef) -> Result<JdbcTableConfig, String> {
    if table.connector() != CONNECTOR {
        return Err(format!(
            "FOR SYSTEM_TIME AS OF joins a lookup table, and '{}' is a '{}' table; lookup joins read 'jdbc' tables (temporal joins of versioned tables are not supported yet)",
            table.name,
            table.connector()
        ));
    }
    if table
        .kinds
        .iter()
        .any(|k| !matches!(k, ColumnKind::Physical(_)))
    {
        return Err(format!(
            "the lookup table '{}' has computed or metadata columns; a lookup table has physical columns only",
            table.name
        ));
    }
    JdbcTableConfig::from_table(table)
}

/// A SQL value as the PostgreSQL value of a column of type `t`.
///
/// # Errors
/// A value of a type the connector has no mapping for (TIME, composite values).
pub fn to_pg(v: &Value, t: DataType) -> Result<PgValue, String> {
    Ok(match v {
        Value::Null => PgValue::Null,
        Value::Boolean(b) => PgValue::Bool(*b),
        Value::TinyInt(i) => PgValue::Int2(i16::from(*i)),
        Value::SmallInt(i) => PgValue::Int2(*i),
        Value::Int(i) => PgValue::Int4(*i),
        Value::BigInt(i) => PgValue::Int8(*i),
        Value::Float(f) => PgValue::Float4(*f),
        Value::Double(d) => PgValue::Float8(*d),
        Value::Decimal(d) => PgValue::Numeric(d.to_plain_string()),
        Value::String(s) => PgValue::Text(s.clone()),
        Value::Bytes(b) => PgValue::Bytea(b.clone()),
        Value::Timestamp(ms) | Value::TimestampLtz(ms) => PgValue::Timestamp(*ms),
        Value::Date(d) => PgValue::Date(*d),
        other => {
            return Err(format!(
                "a {t} value ({other:?}) has no PostgreSQL mapping in the 'jdbc' connector"
            ));
        }
    })
}

/// A PostgreSQL value read from the database as the SQL type `t` of its column (numbers
/// widen to the declared type; text of a `STRING` column; NUMERIC text to the declared
/// DECIMAL).
///
/// # Errors
/// A value that does not fit the declared type, naming both.
pub fn from_pg(v: &PgValue, t: DataType) -> Result<Value, String> {
    let bad = || {
        format!(
            "a PostgreSQL value {v} cannot be read as {t}; declare the column with the type matching PostgreSQL's (int4: INT, int8: BIGINT, text: STRING, numeric: DECIMAL, timestamp: TIMESTAMP(3), ...)"
        )
    };
    let int = |i: i64| -> Result<Value, String> {
        Ok(match t {
            DataType::TinyInt => Value::TinyInt(i8::try_from(i).map_err(|_| bad())?),
            DataType::SmallInt => Value::SmallInt(i16::try_from(i).map_err(|_| bad())?),
            DataType::Int => Value::Int(i32::try_from(i).map_err(|_| bad())?),
            DataType::BigInt => Value::BigInt(i),
            DataType::Float => Value::Float(i as f32),
            DataType::Double => Value::Double(i as f64),
            DataType::Decimal(p, s) => {
                Value::Decimal(crate::decimal::from_i64(i, p, s).ok_or_else(bad)?)
            }
            _ => return Err(bad()),
        })
    };
    Ok(match v {
        PgValue::Null => Value::Null,
        PgValue::Bool(b) if t == DataType::Boolean => Value::Boolean(*b),
        PgValue::Int2(i) => int(i64::from(*i))?,
        PgValue::Int4(i) => int(i64::from(*i))?,
        PgValue::Int8(i) => int(*i)?,
        PgValue::Float4(f) if t == DataType::Float => Value::Float(*f),
        PgValue::Float4(f) if t == DataType::Double => Value::Double(f64::from(*f)),
        PgValue::Float8(d) if t == DataType::Double => Value::Double(*d),
        PgValue::Text(s) if t == DataType::String => Value::String(s.clone()),
        PgValue::Bytea(b) if t == DataType::Bytes => Value::Bytes(b.clone()),
        PgValue::Numeric(text) => match t {
            DataType::Decimal(p, s) => Value::Decimal(
                crate::decimal::parse(text, p, s)
                    .ok()
                    .flatten()
                    .ok_or_else(bad)?,
            ),
            DataType::Double => Value::Double(text.parse().map_err(|_| bad())?),
            DataType::String => Value::String(text.clone()),
            _ => return Err(bad()),
        },
        PgValue::Timestamp(ms) if t == DataType::Timestamp => Value::Timestamp(*ms),
        PgValue::Timestamp(ms) if t == DataType::TimestampLtz => Value::TimestampLtz(*ms),
        PgValue::Date(d) if t == DataType::Date => Value::Date(*d),
        _ => return Err(bad()),
    })
}

/// Rows or changes as the sink's actions.
struct RowEmitter {
    /// The physical columns' names and types.
    types: Arc<Vec<(String, DataType)>>,
    key: Arc<Vec<usize>>,
    /// Whether records are [`Change`]s (else rows, all upserts or inserts).
    changes: bool,
}

impl RowEmitter {
    fn values(
        &self,
        row: &[Value],
        columns: impl Iterator<Item = usize>,
    ) -> Result<Vec<PgValue>, String> {
        columns
            .map(|i| {
                let (name, t) = &self.types[i];
                to_pg(row.get(i).unwrap_or(&Value::Null), *t)
                    .map_err(|e| format!("column '{name}': {e}"))
            })
            .collect()
    }

    fn actions(&self, kind: RowKind, row: &[Value]) -> Result<Vec<PgAction>, String> {
        Ok(match kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                vec![PgAction::Upsert(self.values(row, 0..self.types.len())?)]
            }
            // Flink's JDBC upsert sink deletes by the key for both: a -U whose +U follows in
            // the same batch is reduced away; one whose +U a filter dropped deletes the row.
            RowKind::UpdateBefore | RowKind::Delete => {
                vec![PgAction::Delete(
                    self.values(row, self.key.iter().copied())?,
                )]
            }
        })
    }
}

impl PgEmitter<Row> for RowEmitter {
    fn emit(&self, row: &Row) -> Result<Vec<PgAction>, String> {
        debug_assert!(!self.changes);
        self.actions(RowKind::Insert, row)
    }
}

impl PgEmitter<Change> for RowEmitter {
    fn emit(&self, change: &Change) -> Result<Vec<PgAction>, String> {
        debug_assert!(self.changes);
        self.actions(change.kind, &change.row)
    }
}

/// A lookup join (Flink's `LookupJoin`): each probe row's key values are looked up in the
/// table; every matching row that also satisfies the rest of `ON` makes a joined row (the
/// probe's columns, then the table's); a left join pads a probe row without any with NULLs.
/// Stateless; a changelog's kinds pass through.
#[derive(Clone)]
pub struct LookupJoinFn {
    lookup: PostgresLookup,
    /// The key values over a probe row (already in the lookup columns' types).
    keys: Arc<Vec<(Expr, DataType)>>,
    /// The lookup table's column types.
    columns: Arc<Vec<DataType>>,
    /// The rest of `ON` over a joined row.
    condition: Option<Arc<Expr>>,
    left_outer: bool,
    /// For messages.
    table: String,
}

impl LookupJoinFn {
    /// A join with `lookup` (keyed by the lookup columns `keys` refer to).
    pub fn new(
        lookup: PostgresLookup,
        keys: Vec<(Expr, DataType)>,
        columns: Vec<DataType>,
        condition: Option<Expr>,
        left_outer: bool,
        table: String,
    ) -> Self {
        LookupJoinFn {
            lookup,
            keys: Arc::new(keys),
            columns: Arc::new(columns),
            condition: condition.map(Arc::new),
            left_outer,
            table,
        }
    }

    /// The joined rows of one probe row.
    fn join(&mut self, row: &Row) -> Result<Vec<Row>, BoxError> {
        let mut key = Vec::with_capacity(self.keys.len());
        for (e, t) in self.keys.iter() {
            // A key that cannot be computed (a failing cast) is NULL: it matches nothing.
            let v = e.eval(row).unwrap_or(Value::Null);
            key.push(to_pg(&v, *t)?);
        }
        let found = self.lookup.lookup_shared(&key).map_err(|e| -> BoxError {
            format!("lookup join with '{}': {e}", self.table).into()
        })?;
        let mut out = Vec::new();
        for r in found.iter() {
            let mut joined = Vec::with_capacity(row.len() + self.columns.len());
            joined.extend_from_slice(row);
            for (v, t) in r.values().iter().zip(self.columns.iter()) {
                joined.push(from_pg(v, *t).map_err(|e| -> BoxError {
                    format!("lookup join with '{}': {e}", self.table).into()
                })?);
            }
            if let Some(c) = &self.condition {
                let ok = c
                    .eval(&joined)
                    .map_err(|e| -> BoxError { format!("lookup join condition: {e}").into() })?;
                if ok != Value::Boolean(true) {
                    continue;
                }
            }
            out.push(joined);
        }
        if out.is_empty() && self.left_outer {
            let mut padded = row.clone();
            padded.extend(std::iter::repeat_n(Value::Null, self.columns.len()));
            out.push(padded);
        }
        Ok(out)
    }
}

impl FlatMapFunction<Row, Row> for LookupJoinFn {
    fn flat_map(&mut self, row: Row, out: &mut Collector<'_, Row>) -> Result<(), BoxError> {
        for joined in self.join(&row)? {
            out.collect(joined);
        }
        Ok(())
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        Ok(self.lookup.open(Some(ctx))?)
    }
}

impl FlatMapFunction<Change, Change> for LookupJoinFn {
    fn flat_map(
        &mut self,
        change: Change,
        out: &mut Collector<'_, Change>,
    ) -> Result<(), BoxError> {
        for row in self.join(&change.row)? {
            out.collect(Change {
                kind: change.kind,
                row,
            });
        }
        Ok(())
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        Ok(self.lookup.open(Some(ctx))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(options: &[(&str, &str)], key: &[&str]) -> TableDef {
        let schema = Schema::of(&[("id", DataType::BigInt), ("name", DataType::String)]);
        let mut o: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        o.insert("connector".into(), "jdbc".into());
        let mut t = TableDef::physical("t", schema, o);
        t.primary_key = key.iter().map(|k| k.to_string()).collect();
        t
    }

    const BASE: &[(&str, &str)] = &[
        ("url", "jdbc:postgresql://localhost:5432/db"),
        ("table-name", "users"),
    ];

    #[test]
    fn options_are_checked_with_what_to_do() {
        let c = JdbcTableConfig::from_table(&table(BASE, &["id"])).unwrap();
        assert!(c.upserts());
        assert_eq!(c.key, vec![0]);
        let err = |extra: &[(&str, &str)]| {
            let mut o = BASE.to_vec();
            o.extend_from_slice(extra);
            JdbcTableConfig::from_table(&table(&o, &[])).unwrap_err()
        };
        assert!(err(&[("sink.flush", "1")]).contains("lookup.partial-cache.max-rows"));
        assert!(err(&[("sink.flush", "1")]).contains("unsupported option 'sink.flush'"));
        assert!(err(&[("url", "jdbc:mysql://x/db")]).contains("PostgreSQL only"));
        assert!(err(&[("lookup.cache", "FULL")]).contains("NONE or PARTIAL"));
        assert!(err(&[("lookup.cache", "PARTIAL")]).contains("max-rows"));
        assert!(
            err(&[("lookup.partial-cache.max-rows", "10")]).contains("'lookup.cache' = 'PARTIAL'")
        );
        assert!(err(&[("sink.buffer-flush.interval", "soon")]).contains("not a duration"));
        let missing = JdbcTableConfig::from_table(&table(&BASE[..1], &[])).unwrap_err();
        assert!(missing.contains("table-name"), "{missing}");
    }

    #[test]
    fn values_map_both_ways() {
        let d = crate::decimal::parse("12.50", 10, 2).unwrap().unwrap();
        assert_eq!(
            to_pg(&Value::Decimal(d), DataType::Decimal(10, 2)).unwrap(),
            PgValue::Numeric("12.50".into())
        );
        assert_eq!(
            from_pg(&PgValue::Numeric("12.50".into()), DataType::Decimal(10, 2)).unwrap(),
            Value::Decimal(d)
        );
        assert_eq!(
            from_pg(&PgValue::Int4(7), DataType::BigInt).unwrap(),
            Value::BigInt(7)
        );
        assert!(from_pg(&PgValue::Int8(1 << 40), DataType::Int).is_err());
        assert!(
            from_pg(&PgValue::Text("x".into()), DataType::Int)
                .unwrap_err()
                .contains("cannot be read as INT")
        );
        assert_eq!(
            to_pg(&Value::TinyInt(-3), DataType::TinyInt).unwrap(),
            PgValue::Int2(-3)
        );
    }
}
