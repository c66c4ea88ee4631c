//! The PostgreSQL sink (Flink's JDBC sink for PostgreSQL) and its builder.
//!
//! # Guarantees
//! Every writer collects actions into a batch and writes it in one transaction when it holds
//! `max_rows` actions, when its oldest action is `flush_interval` old (checked as records
//! arrive; the engine also flushes a sink whose input goes idle), at the end of input, and
//! before every checkpoint barrier leaves the task, waiting for the server's commit (Flink's
//! flush on checkpoint). A completed checkpoint therefore never covers an action the server has
//! not committed: **at-least-once**.
//!
//! With key columns, a batch keeps only the last action of each key (Flink's reduced buffer),
//! and upserts are `INSERT ... ON CONFLICT (key) DO UPDATE`, deletes `DELETE ... WHERE key =`:
//! both idempotent. After a failure the job restarts from its last checkpoint and replays the
//! records since then, which write the same final row for every key: the table ends exactly as
//! a run without failure leaves it (**exactly-once results**). Without key columns the sink
//! appends with `INSERT`; a replay appends the replayed rows again (at-least-once).
//!
//! A batch that fails for a reason a retry can cure (no connection, the server restarting, a
//! deadlock between writers) is written again, whole, on a new connection, after the
//! [`Backoff`]'s delay; the transaction that failed was rolled back by the server. Anything
//! else (a missing table or column, a value of the wrong type, a constraint) fails the job with
//! a message naming it.

use crate::action::PgEmitter;
use crate::backoff::Backoff;
use crate::client::ConnectOptions;
use crate::error::PostgresError;
use crate::writer::PostgresWriter;
use fjord::sinks::{Sink, SinkWriter};
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// What the sink does with a record its emitter refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job with [`PostgresError::Malformed`] naming the problem (default).
    #[default]
    Fail,
    /// Skip the record, log a warning and count it in `recordsSkipped`.
    Skip,
}

/// Default actions per batch (Flink's `sink.buffer-flush.max-rows`).
pub const DEFAULT_MAX_ROWS: usize = 100;
/// Default age of the oldest buffered action that writes the batch (Flink's
/// `sink.buffer-flush.interval`).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default time to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The settings every writer of a sink shares.
pub(crate) struct Settings<T> {
    pub(crate) connect: ConnectOptions,
    pub(crate) table: String,
    /// `None`: every column of the table, in table order (read when a writer opens).
    pub(crate) columns: Option<Vec<String>>,
    /// Empty: append mode.
    pub(crate) key: Vec<String>,
    pub(crate) emitter: Box<dyn PgEmitter<T>>,
    /// `usize::MAX` when disabled.
    pub(crate) max_rows: usize,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) backoff: Backoff,
    pub(crate) on_malformed: OnMalformed,
}

/// Writes a stream to a PostgreSQL table: idempotent upserts and deletes by key, or appends.
/// Made by [`PostgresSink::builder`]; add it with `stream.sink_to(sink, name)`.
///
/// ```no_run
/// use fjord_postgres::{PgAction, PgValue, PostgresSink};
/// # fn job(counts: &fjord::DataStream<(String, i64)>) -> Result<(), fjord_postgres::PostgresError> {
/// // CREATE TABLE word_counts (word text PRIMARY KEY, n bigint)
/// let sink = PostgresSink::builder()
///     .url("postgres://fjord@127.0.0.1:5432/fjord")
///     .table("word_counts")
///     .columns(["word", "n"])
///     .key(["word"])
///     .emitter(|(word, n): &(String, i64)| {
///         Ok(PgAction::Upsert(vec![PgValue::text(word), PgValue::Int8(*n)]))
///     })
///     .build()?;
/// counts.sink_to(sink, "Sink: PostgreSQL");
/// # Ok(())
/// # }
/// ```
pub struct PostgresSink<T> {
    settings: Arc<Settings<T>>,
}

impl<T> Clone for PostgresSink<T> {
    fn clone(&self) -> Self {
        PostgresSink {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> PostgresSink<T> {
    /// A builder.
    pub fn builder() -> PostgresSinkBuilder<T> {
        PostgresSinkBuilder {
            url: None,
            username: None,
            password: None,
            table: None,
            columns: None,
            key: Vec::new(),
            emitter: None,
            max_rows: DEFAULT_MAX_ROWS,
            flush_interval: Some(DEFAULT_FLUSH_INTERVAL),
            backoff: Backoff::default(),
            on_malformed: OnMalformed::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The table written.
    pub fn table(&self) -> &str {
        &self.settings.table
    }
}

impl<T: Send + 'static> Sink<T> for PostgresSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(PostgresWriter::open(self.settings.clone(), ctx)?))
    }
}

/// Builds a [`PostgresSink`].
pub struct PostgresSinkBuilder<T> {
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    table: Option<String>,
    columns: Option<Vec<String>>,
    key: Vec<String>,
    emitter: Option<Box<dyn PgEmitter<T>>>,
    max_rows: usize,
    flush_interval: Option<Duration>,
    backoff: Backoff,
    on_malformed: OnMalformed,
    connect_timeout: Duration,
}

impl<T: 'static> PostgresSinkBuilder<T> {
    /// The server: `postgres://user[:password]@host:port/database` (Flink's `url`, without its
    /// `jdbc:` prefix; a `jdbc:postgresql://` URL is accepted too and needs the user set with
    /// [`username`](Self::username)). Required.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The user, if not in the URL (Flink's `username`).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password, if not in the URL (Flink's `password`).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The table (Flink's `table-name`): `name`, or `schema.name`. Names are quoted, so they
    /// are case-sensitive (`CREATE TABLE Users` makes `users`). Required.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        self
    }

    /// The columns an upsert writes, in the order of [`PgAction::Upsert`](crate::PgAction)'s
    /// values (default: every column of the table, in table order, read when a writer opens).
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Self {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The key columns (the table's primary key, or columns with a unique index), in the
    /// order of [`PgAction::Delete`](crate::PgAction)'s values. With a key the sink upserts and
    /// deletes; without (the default) it appends with plain `INSERT`s.
    pub fn key<S: Into<String>>(mut self, key: impl IntoIterator<Item = S>) -> Self {
        self.key = key.into_iter().map(Into::into).collect();
        self
    }

    /// What each record becomes: a closure `Fn(&T) -> Result<PgAction, String>` or any
    /// [`PgEmitter`]. Required.
    pub fn emitter(mut self, emitter: impl PgEmitter<T>) -> Self {
        self.emitter = Some(Box::new(emitter));
        self
    }

    /// Actions per batch (default 100; 0: no limit by count).
    pub fn max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows;
        self
    }

    /// Age of the oldest buffered action at which the batch is written (default 1 s; `None`:
    /// only count, checkpoints and idle input write it).
    pub fn flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Retries of batches that failed for a transient reason (default: 5, from 200 ms).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// What to do with records the emitter refuses (default: fail the job).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// Time to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The sink. Does not connect: every writer connects when it opens, and checks there that
    /// the table, the columns and the key exist.
    ///
    /// # Errors
    /// [`PostgresError::Config`] without URL, table or emitter, for a URL the client cannot
    /// read, a key column missing from the columns given, a zero timeout.
    pub fn build(self) -> Result<PostgresSink<T>, PostgresError> {
        let config = |m: String| PostgresError::Config(m);
        let connect =
            connect_options(self.url, self.username, self.password, self.connect_timeout)?;
        let table = table_name(self.table)?;
        let emitter = self.emitter.ok_or_else(|| {
            config(
                "the sink needs an emitter: call .emitter(|r| Ok(PgAction::upsert([...])))".into(),
            )
        })?;
        if let Some(cols) = &self.columns {
            if cols.is_empty() {
                return Err(config(
                    "the column list is empty: name the columns, or leave .columns(..) out for all of the table's".into(),
                ));
            }
            if let Some(k) = self.key.iter().find(|k| !cols.contains(k)) {
                return Err(config(format!(
                    "key column {k} is not among the sink's columns ({}): every key column is written too",
                    cols.join(", ")
                )));
            }
        }
        let unlimited = |n: usize| if n == 0 { usize::MAX } else { n };
        Ok(PostgresSink {
            settings: Arc::new(Settings {
                connect,
                table,
                columns: self.columns,
                key: self.key,
                emitter,
                max_rows: unlimited(self.max_rows),
                flush_interval: self.flush_interval,
                backoff: self.backoff,
                on_malformed: self.on_malformed,
            }),
        })
    }
}

/// The connection options of a builder, checked.
pub(crate) fn connect_options(
    url: Option<String>,
    username: Option<String>,
    password: Option<String>,
    connect_timeout: Duration,
) -> Result<ConnectOptions, PostgresError> {
    let url = url.map(|u| u.trim().to_string()).unwrap_or_default();
    if url.is_empty() {
        return Err(PostgresError::Config(
            "no server: call .url(\"postgres://user@host:5432/database\") (SQL 'url')".into(),
        ));
    }
    // Flink's JDBC URLs: jdbc:postgresql://host:port/db → postgres://host:port/db.
    let url = url
        .strip_prefix("jdbc:postgresql://")
        .map_or(url.clone(), |rest| format!("postgres://{rest}"));
    if connect_timeout.is_zero() {
        return Err(PostgresError::Config(
            "the connect timeout must be above zero".into(),
        ));
    }
    let options = ConnectOptions {
        url,
        username,
        password,
        connect_timeout,
    };
    options.config()?;
    Ok(options)
}

/// The table name of a builder, checked.
pub(crate) fn table_name(table: Option<String>) -> Result<String, PostgresError> {
    table
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            PostgresError::Config("no table: call .table(\"name\") (SQL 'table-name')".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PgAction;

    fn base() -> PostgresSinkBuilder<i64> {
        PostgresSink::builder()
            .url("postgres://fjord@127.0.0.1:5432/fjord")
            .table("t")
            .emitter(|i: &i64| Ok(PgAction::upsert([*i])))
    }

    #[test]
    fn builds_need_url_table_emitter_and_keys_among_the_columns() {
        assert!(base().build().is_ok());
        let e = |b: PostgresSinkBuilder<i64>| b.build().err().unwrap().to_string();
        assert!(
            e(PostgresSink::builder().table("t")).contains("no server"),
            "{}",
            e(PostgresSink::builder().table("t"))
        );
        assert!(e(base().table(" ")).contains("no table"));
        assert!(
            e(base().columns(["a", "b"]).key(["c"])).contains("key column c is not among"),
            "{}",
            e(base().columns(["a", "b"]).key(["c"]))
        );
        assert!(e(base().url("mysql:/x")).contains("not a PostgreSQL connection URL"));
        let jdbc = base()
            .url("jdbc:postgresql://127.0.0.1:5432/fjord")
            .username("fjord")
            .build()
            .unwrap();
        assert_eq!(jdbc.settings.connect.url, "postgres://127.0.0.1:5432/fjord");
    }
}
