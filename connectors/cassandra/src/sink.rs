//! The Cassandra sink (Flink's `CassandraSink`) and its builder.
//!
//! # Guarantees
//! [`CassandraSink`] sends every record as it arrives, asynchronously, with at most
//! `max_concurrent_requests` requests in flight per writer, and waits for every request before
//! a checkpoint barrier leaves the task (and at the end of input). A completed checkpoint thus
//! never covers a row Cassandra has not acknowledged: **at-least-once**. After a failure the
//! job restarts from that checkpoint and writes the rows since then again; as inserts into a
//! table with a primary key are upserts, the replay rewrites the same rows and the table ends
//! up as after a failure-free run (**exactly-once results**). Counter updates and appends to
//! collections are not idempotent and repeat.
//!
//! Timeouts, unavailable or overloaded nodes and broken connections are retried with
//! exponential backoff (`max_retries`, `retry_backoff`); a write that still fails goes to the
//! failure handler, which fails the job by default ([`OnFailure::Fail`], Flink's
//! `NoOpCassandraFailureHandler`) or counts and ignores it ([`OnFailure::IgnoreAndCount`]).
//!
//! [`CassandraWriteAheadSink`](crate::CassandraWriteAheadSink) (`build_write_ahead`) writes the
//! records of a checkpoint only once it completed; see [`wal`](crate::wal).

use crate::committer::{DEFAULT_COMMITTER_KEYSPACE, DEFAULT_COMMITTER_TABLE};
use crate::error::CassandraSinkError;
use crate::executor::RetryPolicy;
use crate::mapper::{CassandraEntity, CassandraMapper, entity};
use crate::statement::insert_statement;
use crate::wal::CassandraWriteAheadSink;
use crate::writer::CassandraWriter;
use fjord::sinks::{Sink, SinkWriter};
use fjord::{BoxError, RuntimeContext};
pub use scylla::frame::types::Consistency;
use std::sync::Arc;
use std::time::Duration;

/// What the sink does with a write that failed for good (Flink's `CassandraFailureHandler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Fail the job with [`CassandraSinkError::Write`] (default; Flink's
    /// `NoOpCassandraFailureHandler` rethrows).
    #[default]
    Fail,
    /// Log a warning, count the record in `recordsFailed` and go on (the row is lost).
    IgnoreAndCount,
}

/// What the sink does with a record its mapping refuses or whose values do not fit the
/// statement's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job with [`CassandraSinkError::Malformed`] naming the problem (default).
    #[default]
    Fail,
    /// Skip the record, log a warning and count it in `recordsSkipped`.
    Skip,
}

/// Default bound on requests in flight per writer (Flink's `maxConcurrentRequests`, which is
/// unbounded there by default; Fjord bounds every queue).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 256;
/// Default time to wait for a free request slot, or for the requests in flight at a
/// checkpoint (Flink's `maxConcurrentRequestsTimeout`).
pub const DEFAULT_MAX_CONCURRENT_REQUESTS_TIMEOUT: Duration = Duration::from_secs(300);
/// Default time to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time one request may take before it counts as timed out (and is retried).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(12);
/// Default number of retries of a request after a retriable error.
pub const DEFAULT_MAX_RETRIES: u32 = 10;
/// Default first pause before a retry; it doubles per retry up to
/// [`DEFAULT_MAX_BACKOFF`].
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Default longest pause between retries.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The settings every writer of a sink shares.
pub(crate) struct Settings<T> {
    pub(crate) hosts: Vec<String>,
    pub(crate) query: String,
    /// Values the mapping gives per record, when known (the generated statement's columns).
    pub(crate) row_width: Option<usize>,
    pub(crate) mapper: Box<dyn CassandraMapper<T>>,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) max_concurrent_requests_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) consistency: Consistency,
    pub(crate) retry: RetryPolicy,
    pub(crate) on_failure: OnFailure,
    pub(crate) on_malformed: OnMalformed,
    pub(crate) committer_keyspace: String,
    pub(crate) committer_table: String,
}

/// Writes a stream to Cassandra, at-least-once (Flink's `CassandraSink`). Made by
/// [`CassandraSink::builder`]; add it with `stream.sink_to(sink, name)`.
pub struct CassandraSink<T> {
    settings: Arc<Settings<T>>,
}

impl<T> Clone for CassandraSink<T> {
    fn clone(&self) -> Self {
        CassandraSink {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> CassandraSink<T> {
    /// A builder.
    pub fn builder() -> CassandraSinkBuilder<T> {
        CassandraSinkBuilder {
            hosts: Vec::new(),
            query: None,
            table: None,
            ttl: None,
            mapper: None,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_concurrent_requests_timeout: DEFAULT_MAX_CONCURRENT_REQUESTS_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            consistency: Consistency::LocalQuorum,
            retry: RetryPolicy {
                max_retries: DEFAULT_MAX_RETRIES,
                initial_backoff: DEFAULT_INITIAL_BACKOFF,
                max_backoff: DEFAULT_MAX_BACKOFF,
            },
            on_failure: OnFailure::default(),
            on_malformed: OnMalformed::default(),
            committer_keyspace: DEFAULT_COMMITTER_KEYSPACE.to_string(),
            committer_table: DEFAULT_COMMITTER_TABLE.to_string(),
        }
    }

    /// The statement the sink writes with.
    pub fn query(&self) -> &str {
        &self.settings.query
    }
}

impl<T: CassandraEntity> CassandraSink<T> {
    /// A builder for a struct that describes its table ([`CassandraEntity`], the counterpart of
    /// Flink's POJO sink): statement and mapping are set; add `.hosts(..)` and build.
    pub fn for_entity() -> CassandraSinkBuilder<T> {
        CassandraSink::<T>::builder()
            .table(
                T::KEYSPACE,
                T::TABLE,
                T::COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            )
            .mapper(entity::<T>)
    }
}

impl<T: Send + 'static> Sink<T> for CassandraSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(CassandraWriter::open(self.settings.clone(), ctx)?))
    }
}

/// Builds a [`CassandraSink`] or a [`CassandraWriteAheadSink`].
pub struct CassandraSinkBuilder<T> {
    hosts: Vec<String>,
    query: Option<String>,
    table: Option<(String, String, Vec<String>)>,
    ttl: Option<Duration>,
    mapper: Option<Box<dyn CassandraMapper<T>>>,
    max_concurrent_requests: usize,
    max_concurrent_requests_timeout: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    consistency: Consistency,
    retry: RetryPolicy,
    on_failure: OnFailure,
    on_malformed: OnMalformed,
    committer_keyspace: String,
    committer_table: String,
}

impl<T: 'static> CassandraSinkBuilder<T> {
    /// Contact points, `host:port` (port 9042 if left out), comma-separated or by repeated
    /// calls (Flink's `setHost` / `ClusterBuilder`). Required.
    pub fn hosts(mut self, hosts: impl AsRef<str>) -> Self {
        for h in hosts
            .as_ref()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
        {
            let h = if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:9042")
            };
            self.hosts.push(h);
        }
        self
    }

    /// The statement, with one bind marker `?` per value the mapper gives (Flink's
    /// `setQuery`), such as `INSERT INTO shop.orders (id, amount) VALUES (?, ?)`. Either this
    /// or [`table`](Self::table).
    pub fn query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// Writes with `INSERT INTO keyspace.table (columns...) VALUES (?, ...)`; the mapper gives
    /// one value per column, in this order. Either this or [`query`](Self::query).
    pub fn table(
        mut self,
        keyspace: impl Into<String>,
        table: impl Into<String>,
        columns: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.table = Some((
            keyspace.into(),
            table.into(),
            columns.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Rows written through [`table`](Self::table) expire after `ttl` (whole seconds;
    /// `USING TTL`). A [`query`](Self::query) says its own TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How records become rows: a closure `Fn(&T) -> Result<CqlRow, String>`,
    /// [`positional`](crate::positional) for tuples, or a [`CassandraMapper`]. Required
    /// (set by [`CassandraSink::for_entity`]).
    pub fn mapper(mut self, mapper: impl CassandraMapper<T>) -> Self {
        self.mapper = Some(Box::new(mapper));
        self
    }

    /// Requests in flight per writer at most (Flink's `setMaxConcurrentRequests`; default
    /// 256). A record waits for a free slot.
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n;
        self
    }

    /// How long a record waits for a free slot, and a checkpoint for the requests in flight,
    /// before the job fails (default 5 min).
    pub fn max_concurrent_requests_timeout(mut self, timeout: Duration) -> Self {
        self.max_concurrent_requests_timeout = timeout;
        self
    }

    /// Time to open the session (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time one request may take; then it is retried (default 12 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The consistency level of the writes (default `LOCAL_QUORUM`).
    pub fn consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Retries of a request after a timeout, an unavailable or overloaded node or a broken
    /// connection (default 10; 0 never retries).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// The first pause before a retry, doubling per retry up to `max` (default 100 ms to
    /// 10 s).
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial_backoff = initial;
        self.retry.max_backoff = max;
        self
    }

    /// What to do with a write that failed for good (default: fail the job).
    pub fn on_failure(mut self, on_failure: OnFailure) -> Self {
        self.on_failure = on_failure;
        self
    }

    /// What to do with records that do not make a row of the statement (default: fail).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// Write-ahead sink only: the keyspace and table that record committed checkpoints
    /// (default `fjord_auxiliary.checkpoints`, created if missing).
    pub fn committer_table(
        mut self,
        keyspace: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        self.committer_keyspace = keyspace.into();
        self.committer_table = table.into();
        self
    }

    fn settings(self) -> Result<Settings<T>, CassandraSinkError> {
        let config = |m: &str| CassandraSinkError::Config(m.to_string());
        if self.hosts.is_empty() {
            return Err(config(
                "the Cassandra sink needs contact points: call .hosts(\"127.0.0.1:9042\")",
            ));
        }
        let (query, row_width) = match (self.query, self.table) {
            (Some(q), None) => {
                if !q.contains('?') {
                    return Err(CassandraSinkError::Config(format!(
                        "`{q}` has no bind marker `?`; write one per value, such as INSERT INTO ks.t (a, b) VALUES (?, ?)"
                    )));
                }
                if self.ttl.is_some() {
                    return Err(config(
                        ".ttl(..) applies to .table(..); write USING TTL into the query instead",
                    ));
                }
                (q, None)
            }
            (None, Some((ks, table, columns))) => {
                let ttl = match self.ttl {
                    None => None,
                    Some(t) => Some(
                        u32::try_from(t.as_secs())
                            .ok()
                            .filter(|s| *s > 0)
                            .ok_or_else(|| config("the TTL must be at least one second"))?,
                    ),
                };
                let n = columns.len();
                (insert_statement(&ks, &table, &columns, ttl)?, Some(n))
            }
            (Some(_), Some(_)) => {
                return Err(config("give either .query(..) or .table(..), not both"));
            }
            (None, None) => {
                return Err(config(
                    "the Cassandra sink needs a statement: call .query(\"INSERT INTO ks.t (a, b) VALUES (?, ?)\") or .table(\"ks\", \"t\", [\"a\", \"b\"])",
                ));
            }
        };
        let mapper = self.mapper.ok_or_else(|| {
            config(
                "the Cassandra sink needs a mapper: call .mapper(positional) for tuples or .mapper(|r| Ok(vec![..]))",
            )
        })?;
        if self.max_concurrent_requests == 0 {
            return Err(config("max_concurrent_requests must be at least 1"));
        }
        if self.max_concurrent_requests > u32::MAX as usize / 2 {
            return Err(config("max_concurrent_requests is too large"));
        }
        if self.connect_timeout.is_zero()
            || self.request_timeout.is_zero()
            || self.max_concurrent_requests_timeout.is_zero()
        {
            return Err(config("timeouts must be above zero"));
        }
        if self.retry.initial_backoff.is_zero()
            || self.retry.max_backoff < self.retry.initial_backoff
        {
            return Err(config(
                "the retry backoff must start above zero and not exceed its maximum",
            ));
        }
        Ok(Settings {
            hosts: self.hosts,
            query,
            row_width,
            mapper,
            max_concurrent_requests: self.max_concurrent_requests,
            max_concurrent_requests_timeout: self.max_concurrent_requests_timeout,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            consistency: self.consistency,
            retry: self.retry,
            on_failure: self.on_failure,
            on_malformed: self.on_malformed,
            committer_keyspace: self.committer_keyspace,
            committer_table: self.committer_table,
        })
    }

    /// The at-least-once sink. Does not connect: every writer connects when the job starts.
    ///
    /// # Errors
    /// [`CassandraSinkError::Config`] without hosts, statement or mapper, with both a query
    /// and a table, a query without bind markers, a zero bound, timeout or backoff.
    pub fn build(self) -> Result<CassandraSink<T>, CassandraSinkError> {
        Ok(CassandraSink {
            settings: Arc::new(self.settings()?),
        })
    }

    /// The write-ahead sink (Flink's `enableWriteAheadLog()`): records are kept in the
    /// checkpoint and written when it completes; add it with
    /// `stream.sink_to_transactional(sink, name)`.
    ///
    /// # Errors
    /// As [`build`](Self::build), and an empty committer keyspace or table.
    pub fn build_write_ahead(self) -> Result<CassandraWriteAheadSink<T>, CassandraSinkError> {
        if self.committer_keyspace.trim().is_empty() || self.committer_table.trim().is_empty() {
            return Err(CassandraSinkError::Config(
                "the committer keyspace and table must not be empty".into(),
            ));
        }
        Ok(CassandraWriteAheadSink {
            settings: Arc::new(self.settings()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapper::positional;

    fn error(b: CassandraSinkBuilder<(String, i64)>) -> String {
        match b.build() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn build_checks_hosts_statement_mapper_and_bounds() {
        let b = || CassandraSink::<(String, i64)>::builder();
        assert!(
            error(
                b().query("INSERT INTO k.t (a, b) VALUES (?, ?)")
                    .mapper(positional)
            )
            .contains(".hosts(")
        );
        assert!(error(b().hosts("h").mapper(positional)).contains("needs a statement"));
        assert!(
            error(
                b().hosts("h")
                    .query("INSERT INTO k.t (a) VALUES ('x')")
                    .mapper(positional)
            )
            .contains("no bind marker")
        );
        assert!(
            error(b().hosts("h").query("INSERT INTO k.t (a, b) VALUES (?, ?)"))
                .contains("needs a mapper")
        );
        assert!(
            error(
                b().hosts("h")
                    .table("k", "t", ["a", "b"])
                    .mapper(positional)
                    .max_concurrent_requests(0)
            )
            .contains("at least 1")
        );
        let sink = b()
            .hosts("h1, h2:9043")
            .table("k", "t", ["a", "b"])
            .ttl(Duration::from_secs(60))
            .mapper(positional)
            .build()
            .unwrap();
        assert_eq!(
            sink.query(),
            "INSERT INTO k.t (a, b) VALUES (?, ?) USING TTL 60"
        );
        assert_eq!(sink.settings.hosts, vec!["h1:9042", "h2:9043"]);
    }
}
