//! Lookups: the rows of a table whose key columns equal given values (Flink's JDBC lookup
//! source, `SELECT cols FROM table WHERE k1 = $1 AND ...`), with an optional partial cache.
//!
//! [`PostgresLookup`] is synchronous: [`lookup`](PostgresLookup::lookup) blocks the calling
//! thread until the server answers, on a runtime of the lookup's own, so any operator (a
//! `flat_map`, a SQL lookup-join operator) calls it directly. It connects on
//! [`open`](PostgresLookup::open) (or on the first lookup), reconnects after connection
//! errors, retrying up to `max_retries` times, and is cloned unconnected, one connection per
//! parallel instance. [`LookupJoin`] wraps it as a `FlatMapFunction` for the DataStream API.

use crate::backoff::Backoff;
use crate::cache::PartialCache;
use crate::client::{
    ConnectOptions, Connection, Failure, error_chain, is_transient, result_columns,
};
use crate::error::PostgresError;
use crate::metrics::LookupMetrics;
use crate::sink::{connect_options, table_name};
use crate::statement;
use crate::value::{PgColumn, PgRow, PgValue};
use fjord::{BoxError, Collector, FlatMapFunction, RuntimeContext};
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

/// Flink's `lookup.cache` = `PARTIAL`: rows by key, kept for later lookups of the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupCache {
    /// Keys kept at most (`lookup.partial-cache.max-rows`; like Flink's cache it counts
    /// keys, each with all its rows); the least recently used goes first.
    pub max_rows: usize,
    /// Time after which an entry is dropped, from when it was loaded
    /// (`lookup.partial-cache.expire-after-write`; `None`: never).
    pub expire_after_write: Option<Duration>,
    /// Time after which an entry is dropped, from when it was last read
    /// (`lookup.partial-cache.expire-after-access`; `None`: never).
    pub expire_after_access: Option<Duration>,
    /// Whether a key with no rows is cached too (`lookup.partial-cache.cache-missing-key`,
    /// default true).
    pub cache_missing_key: bool,
}

impl LookupCache {
    /// A cache of up to `max_rows` keys, entries kept until evicted, missing keys cached.
    pub fn partial(max_rows: usize) -> LookupCache {
        LookupCache {
            max_rows,
            expire_after_write: None,
            expire_after_access: None,
            cache_missing_key: true,
        }
    }

    /// Entries expire `ttl` after they were loaded.
    pub fn expire_after_write(mut self, ttl: Duration) -> LookupCache {
        self.expire_after_write = Some(ttl);
        self
    }

    /// Entries expire `ttl` after they were last read.
    pub fn expire_after_access(mut self, ttl: Duration) -> LookupCache {
        self.expire_after_access = Some(ttl);
        self
    }

    /// Whether keys without rows are cached.
    pub fn cache_missing_key(mut self, cache: bool) -> LookupCache {
        self.cache_missing_key = cache;
        self
    }
}

/// The counts of one lookup instance (also in the job's metrics, `PostgresLookup.*`, when it
/// was opened with a context).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LookupStats {
    /// Lookups answered from the cache (`hitCount`).
    pub hits: u64,
    /// Lookups that went to the server (`missCount`).
    pub misses: u64,
    /// Queries answered by the server (`loadCount`).
    pub loads: u64,
    /// Lookups that failed after every retry (`numLoadFailures`).
    pub load_failures: u64,
    /// Queries sent again after a transient failure (`retries`).
    pub retries: u64,
    /// Keys in the cache now (`numCachedRecords`).
    pub cached_keys: u64,
}

struct LookupSettings {
    connect: ConnectOptions,
    table: String,
    key: Vec<String>,
    /// Empty: every column of the table.
    columns: Vec<String>,
    cache: Option<LookupCache>,
    backoff: Backoff,
}

/// A connection with the prepared query, and the result's columns.
struct Live {
    conn: Connection,
    query: Statement,
}

/// Rows of a table by key: `SELECT columns FROM table WHERE key1 = $1 AND ...`.
///
/// ```no_run
/// use fjord_postgres::{LookupCache, PgValue, PostgresLookup};
/// # fn f() -> Result<(), fjord_postgres::PostgresError> {
/// let mut customers = PostgresLookup::builder()
///     .url("postgres://fjord@127.0.0.1:5432/fjord")
///     .table("customers")
///     .key(["id"])
///     .columns(["id", "name", "country"])
///     .cache(LookupCache::partial(10_000).expire_after_write(std::time::Duration::from_secs(60)))
///     .build()?;
/// for row in customers.lookup(&[PgValue::Int8(42)])? {
///     println!("{:?}", row.get("name"));
/// }
/// # Ok(())
/// # }
/// ```
pub struct PostgresLookup {
    settings: Arc<LookupSettings>,
    live: Option<Live>,
    /// The result's columns, once known (they stay across reconnections).
    columns: Option<Arc<[PgColumn]>>,
    cache: Option<PartialCache>,
    metrics: LookupMetrics,
}

impl Clone for PostgresLookup {
    /// The same lookup, not connected, with an empty cache and metrics of its own.
    fn clone(&self) -> Self {
        PostgresLookup::from_settings(self.settings.clone())
    }
}

impl PostgresLookup {
    /// A builder.
    pub fn builder() -> PostgresLookupBuilder {
        PostgresLookupBuilder {
            url: None,
            username: None,
            password: None,
            table: None,
            key: Vec::new(),
            columns: Vec::new(),
            cache: None,
            max_retries: 3,
            connect_timeout: crate::sink::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    fn from_settings(settings: Arc<LookupSettings>) -> Self {
        let cache = settings
            .cache
            .map(|c| PartialCache::new(c.max_rows, c.expire_after_write, c.expire_after_access));
        PostgresLookup {
            settings,
            live: None,
            columns: None,
            cache,
            metrics: LookupMetrics::default(),
        }
    }

    /// Connects and prepares the query (checking the table, the key and the columns), with
    /// the metrics in `ctx`'s operator group (`PostgresLookup.hitCount` ...) when given.
    /// Called by [`LookupJoin`] in its `open`; a lookup not opened opens on first use,
    /// without registered metrics.
    ///
    /// # Errors
    /// [`PostgresError::Unreachable`] after the retries, [`PostgresError::MissingTable`],
    /// [`PostgresError::MissingColumn`], [`PostgresError::UnsupportedType`] for a result
    /// column the connector cannot read, [`PostgresError::Refused`] for bad credentials.
    pub fn open(&mut self, ctx: Option<&RuntimeContext>) -> Result<(), PostgresError> {
        if let Some(ctx) = ctx {
            self.metrics = LookupMetrics::registered(ctx);
        }
        if self.live.is_none() {
            let conn = Connection::connect_with_retries(
                &self.settings.connect,
                &self.settings.backoff,
                "PostgreSQL lookup",
            )?;
            self.connect_with(conn)
                .map_err(|f| self.unreachable(f, 1))?;
        }
        Ok(())
    }

    /// Prepares the query on `conn` and keeps both.
    fn connect_with(&mut self, conn: Connection) -> Result<(), Failure> {
        let s = &self.settings;
        let sql = statement::select(&s.table, &s.columns, &s.key);
        let what = if s.columns.is_empty() {
            "the lookup's key columns"
        } else {
            "the lookup's key or columns"
        };
        let query = conn.prepare(&sql, &s.table, &s.key, what)?;
        if self.columns.is_none() {
            let cols = result_columns(&query, &s.table).map_err(Failure::permanent)?;
            self.columns = Some(Arc::from(cols));
        }
        self.live = Some(Live { conn, query });
        Ok(())
    }

    fn unreachable(&self, f: Failure, attempts: u32) -> PostgresError {
        match f {
            Failure::Permanent(e) => *e,
            Failure::Transient(reason) => PostgresError::Unreachable {
                url: self.settings.connect.redacted_url(),
                attempts,
                reason,
            },
        }
    }

    /// The result's columns (names and types from the server's row description), once opened.
    pub fn columns(&self) -> Option<&[PgColumn]> {
        self.columns.as_deref()
    }

    /// The table looked up.
    pub fn table(&self) -> &str {
        &self.settings.table
    }

    /// The rows whose key columns equal `key` (in the key's column order), from the cache or
    /// the server; none when a key value is NULL (SQL's `=` matches no NULL). Blocks until
    /// the server answers; connects first if needed; a transient failure (no connection, the
    /// server restarting) is retried on a new connection up to `max_retries` times.
    ///
    /// # Errors
    /// [`PostgresError::Arity`] for a key of the wrong length, [`PostgresError::TypeMismatch`]
    /// for a key value its column cannot be compared with, [`PostgresError::Unreachable`]
    /// after the retries, and the errors of [`open`](Self::open).
    pub fn lookup(&mut self, key: &[PgValue]) -> Result<Vec<PgRow>, PostgresError> {
        Ok(self.lookup_shared(key)?.to_vec())
    }

    /// [`lookup`](Self::lookup), returning the cache's shared rows without copying them.
    ///
    /// # Errors
    /// As [`lookup`](Self::lookup).
    pub fn lookup_shared(&mut self, key: &[PgValue]) -> Result<Arc<[PgRow]>, PostgresError> {
        let s = self.settings.clone();
        if key.len() != s.key.len() {
            return Err(PostgresError::Arity {
                what: "a lookup key",
                table: s.table.clone(),
                got: key.len(),
                expected: s.key.len(),
                columns: s.key.join(", "),
            });
        }
        let now = Instant::now();
        if let Some(cache) = &mut self.cache
            && let Some(rows) = cache.get(key, now)
        {
            self.metrics.hits.inc();
            return Ok(rows);
        }
        self.metrics.misses.inc();
        let rows: Arc<[PgRow]> = if key.iter().any(PgValue::is_null) {
            Arc::from(Vec::new())
        } else {
            match self.query(key) {
                Ok(rows) => Arc::from(rows),
                Err(e) => {
                    self.metrics.load_failures.inc();
                    return Err(e);
                }
            }
        };
        if let (Some(cache), Some(config)) = (&mut self.cache, &s.cache) {
            if !rows.is_empty() || config.cache_missing_key {
                cache.put(key.to_vec(), rows.clone(), now);
            }
            self.metrics.cached.set(cache.len() as u64);
        }
        Ok(rows)
    }

    /// Queries the server, retrying transient failures.
    fn query(&mut self, key: &[PgValue]) -> Result<Vec<PgRow>, PostgresError> {
        let mut retry = 0u32;
        loop {
            match self.try_query(key) {
                Ok(rows) => {
                    self.metrics.loads.inc();
                    return Ok(rows);
                }
                Err(Failure::Permanent(e)) => return Err(*e),
                Err(Failure::Transient(reason)) => {
                    self.live = None;
                    retry += 1;
                    let Some(d) = self.settings.backoff.delay_before(retry) else {
                        return Err(self.unreachable(Failure::Transient(reason), retry));
                    };
                    tracing::warn!(
                        "lookup in {} failed ({reason}); retry {retry} in {d:?}",
                        self.settings.table
                    );
                    self.metrics.retries.inc();
                    std::thread::sleep(d);
                }
            }
        }
    }

    fn try_query(&mut self, key: &[PgValue]) -> Result<Vec<PgRow>, Failure> {
        if self.live.is_none() {
            let conn = Connection::connect(&self.settings.connect)?;
            self.connect_with(conn)?;
        }
        let live = self.live.as_ref().expect("connected");
        let s = &self.settings;
        for (i, (v, ty)) in key.iter().zip(live.query.params()).enumerate() {
            if let Err(hint) = v.check(ty) {
                return Err(Failure::permanent(PostgresError::TypeMismatch {
                    table: s.table.clone(),
                    column: s.key[i].clone(),
                    column_type: ty.name().to_string(),
                    value: v.to_string(),
                    hint,
                }));
            }
        }
        let params: Vec<&(dyn ToSql + Sync)> =
            key.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let rows = live
            .conn
            .block_on(live.conn.client().query(&live.query, &params))
            .map_err(|e| {
                if is_transient(&e) {
                    Failure::Transient(error_chain(&e))
                } else {
                    live.conn.classify(&e, &s.table, &s.key, "the lookup")
                }
            })?;
        let columns = self.columns.clone().expect("columns known once prepared");
        rows.iter()
            .map(|row| {
                let values = columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| PgRow::read_value(row, i, c.pg_type))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Failure::permanent(PostgresError::Statement {
                            table: s.table.clone(),
                            statement: "reading a lookup's row".into(),
                            code: "-".into(),
                            message: error_chain(&e),
                            detail: String::new(),
                        })
                    })?;
                Ok(PgRow::new(columns.clone(), values))
            })
            .collect()
    }

    /// This instance's counts so far.
    pub fn stats(&self) -> LookupStats {
        let m = &self.metrics;
        LookupStats {
            hits: m.hits.get(),
            misses: m.misses.get(),
            loads: m.loads.get(),
            load_failures: m.load_failures.get(),
            retries: m.retries.get(),
            cached_keys: self.cache.as_ref().map_or(0, |c| c.len() as u64),
        }
    }
}

/// Builds a [`PostgresLookup`].
pub struct PostgresLookupBuilder {
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    table: Option<String>,
    key: Vec<String>,
    columns: Vec<String>,
    cache: Option<LookupCache>,
    max_retries: u32,
    connect_timeout: Duration,
}

impl PostgresLookupBuilder {
    /// The server: `postgres://user[:password]@host:port/database` (or Flink's
    /// `jdbc:postgresql://...` with [`username`](Self::username)). Required.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The user, if not in the URL.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password, if not in the URL.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The table (`name` or `schema.name`; quoted, so case-sensitive). Required.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// The columns compared with a lookup's key values, in order. Required.
    pub fn key<S: Into<String>>(mut self, key: impl IntoIterator<Item = S>) -> Self {
        self.key = key.into_iter().map(Into::into).collect();
        self
    }

    /// The columns returned, in order (default: every column of the table).
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = columns.into_iter().map(Into::into).collect();
        self
    }

    /// A partial cache (default: none, every lookup queries the server).
    pub fn cache(mut self, cache: LookupCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Retries of a lookup that failed for a transient reason, on a new connection (Flink's
    /// `lookup.max-retries`, default 3), from 200 ms apart, doubling.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Time to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The lookup, not connected yet.
    ///
    /// # Errors
    /// [`PostgresError::Config`] without URL, table or key columns, for a URL the client
    /// cannot read, a cache of zero rows.
    pub fn build(self) -> Result<PostgresLookup, PostgresError> {
        let connect =
            connect_options(self.url, self.username, self.password, self.connect_timeout)?;
        let table = table_name(self.table)?;
        if self.key.is_empty() {
            return Err(PostgresError::Config(
                "a lookup needs key columns: call .key([\"id\"]) (SQL: the join's equality conditions)".into(),
            ));
        }
        if self.cache.is_some_and(|c| c.max_rows == 0) {
            return Err(PostgresError::Config(
                "lookup.partial-cache.max-rows must be above zero (leave the cache out for none)"
                    .into(),
            ));
        }
        Ok(PostgresLookup::from_settings(Arc::new(LookupSettings {
            connect,
            table,
            key: self.key,
            columns: self.columns,
            cache: self.cache,
            backoff: Backoff::retries(self.max_retries),
        })))
    }
}

impl PostgresLookupBuilder {
    /// A lookup without key columns or cache, whose `lookup(&[])` returns every row of the
    /// table (`SELECT columns FROM table`): the bounded scan of a SQL `jdbc` table (Flink's
    /// JDBC table source), read in one query. Any key columns set are ignored.
    ///
    /// # Errors
    /// [`PostgresError::Config`] without URL or table, for a URL the client cannot read.
    pub fn build_scan(self) -> Result<PostgresLookup, PostgresError> {
        let connect =
            connect_options(self.url, self.username, self.password, self.connect_timeout)?;
        let table = table_name(self.table)?;
        Ok(PostgresLookup::from_settings(Arc::new(LookupSettings {
            connect,
            table,
            key: Vec::new(),
            columns: self.columns,
            cache: None,
            backoff: Backoff::retries(self.max_retries),
        })))
    }
}

/// A lookup join for the DataStream API: a `FlatMapFunction` that looks up each record's key
/// and emits what `join` makes of the record and the matching rows (an inner join emits one
/// output per row; a left join also one for no row).
///
/// ```no_run
/// use fjord_postgres::{LookupJoin, PgValue, PostgresLookup};
/// # fn job(orders: &fjord::DataStream<(i64, i64)>, customers: PostgresLookup) {
/// // (order id, customer id) → (order id, customer name)
/// let named = orders.flat_map(LookupJoin::new(
///     customers,
///     |o: &(i64, i64)| vec![PgValue::Int8(o.1)],
///     |o: &(i64, i64), rows: &[fjord_postgres::PgRow]| {
///         rows.iter()
///             .map(|r| (o.0, r.get("name").and_then(|v| v.as_str()).unwrap_or("").to_string()))
///             .collect::<Vec<_>>()
///     },
/// ));
/// # }
/// ```
pub struct LookupJoin<T, O, K, J> {
    lookup: PostgresLookup,
    key: K,
    join: J,
    _types: PhantomData<fn(T) -> O>,
}

impl<T, O, K: Clone, J: Clone> Clone for LookupJoin<T, O, K, J> {
    fn clone(&self) -> Self {
        LookupJoin {
            lookup: self.lookup.clone(),
            key: self.key.clone(),
            join: self.join.clone(),
            _types: PhantomData,
        }
    }
}

impl<T, O, K, J, I> LookupJoin<T, O, K, J>
where
    K: Fn(&T) -> Vec<PgValue>,
    J: Fn(&T, &[PgRow]) -> I,
    I: IntoIterator<Item = O>,
{
    /// Joins with `lookup`: `key` gives a record's key values, `join` the outputs for the
    /// record and its rows.
    pub fn new(lookup: PostgresLookup, key: K, join: J) -> Self {
        LookupJoin {
            lookup,
            key,
            join,
            _types: PhantomData,
        }
    }
}

impl<T, O, K, J, I> FlatMapFunction<T, O> for LookupJoin<T, O, K, J>
where
    T: 'static,
    O: 'static,
    K: Fn(&T) -> Vec<PgValue> + Send + 'static,
    J: Fn(&T, &[PgRow]) -> I + Send + 'static,
    I: IntoIterator<Item = O>,
{
    fn flat_map(&mut self, value: T, out: &mut Collector<'_, O>) -> Result<(), BoxError> {
        let rows = self.lookup.lookup_shared(&(self.key)(&value))?;
        for o in (self.join)(&value, &rows) {
            out.collect(o);
        }
        Ok(())
    }

    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        Ok(self.lookup.open(Some(ctx))?)
    }
}
