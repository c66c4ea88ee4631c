//! The Redis sink (Apache Bahir's `RedisSink`) and its builder.
//!
//! # Guarantees
//! Every writer pipelines its commands and sends them when `max_batch_size` commands are
//! buffered, when the oldest buffered one is `flush_interval` old (checked as records arrive;
//! the engine also flushes a sink whose input goes idle), at the end of input, and before every
//! checkpoint barrier leaves the task, waiting for every reply. A completed checkpoint therefore
//! never covers a record Redis has not acknowledged: **at-least-once**. After a failure the job
//! restarts from that checkpoint and writes the records since then again; idempotent commands
//! (SET, HSET, SADD, ZADD of values depending only on the record) make that replay invisible
//! (**exactly-once results**), LPUSH/RPUSH/PUBLISH repeat.
//!
//! A connection that breaks, or a server error reply (WRONGTYPE, OOM, ...), fails the batch
//! and the job with [`RedisSinkError::Write`]; there is no retry inside the writer, the job's
//! restart strategy is the retry (as in Bahir, where the exception fails the task).

use crate::command::{CommandMapper, RedisMapper};
use crate::error::RedisSinkError;
use crate::writer::RedisWriter;
use fjord::sinks::{Sink, SinkWriter};
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// What the sink does with a record its mapper refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job with [`RedisSinkError::Malformed`] naming the problem (default).
    #[default]
    Fail,
    /// Skip the record, log a warning and count it in `recordsSkipped`.
    Skip,
}

/// Default number of commands a writer buffers before sending them.
pub const DEFAULT_MAX_BATCH_SIZE: usize = 1000;
/// Default age of the oldest buffered command that makes a writer send its batch.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// Default time to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time to wait for a batch's replies.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings every writer of a sink shares.
pub(crate) struct Settings<T> {
    pub(crate) client: redis::Client,
    /// The URL without its password, for messages.
    pub(crate) url: String,
    pub(crate) mapper: Box<dyn RedisMapper<T>>,
    pub(crate) max_batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
    pub(crate) on_malformed: OnMalformed,
}

/// Writes a stream to Redis (Bahir's `RedisSink`). Made by [`RedisSink::builder`]; add it
/// with `stream.sink_to(sink, name)`.
///
/// ```no_run
/// use fjord_redis::{RedisSink, RedisWrite};
/// # fn job(counts: &fjord::DataStream<(String, u64)>) -> Result<(), fjord_redis::RedisSinkError> {
/// let sink = RedisSink::builder()
///     .url("redis://127.0.0.1:6379/0")
///     .mapper(|c: &(String, u64)| Ok(RedisWrite::hset("word-counts", c.0.as_str(), c.1.to_string())))
///     .build()?;
/// counts.sink_to(sink, "Sink: Redis");
/// # Ok(())
/// # }
/// ```
pub struct RedisSink<T> {
    settings: Arc<Settings<T>>,
}

impl<T> Clone for RedisSink<T> {
    fn clone(&self) -> Self {
        RedisSink {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> RedisSink<T> {
    /// A builder.
    pub fn builder() -> RedisSinkBuilder<T> {
        RedisSinkBuilder {
            url: None,
            mapper: None,
            max_batch_size: DEFAULT_MAX_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            on_malformed: OnMalformed::default(),
            mapper_check: None,
        }
    }

    /// The server's URL without its password.
    pub fn url(&self) -> &str {
        &self.settings.url
    }
}

impl<T: Send + 'static> Sink<T> for RedisSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(RedisWriter::open(self.settings.clone(), ctx)?))
    }
}

/// Builds a [`RedisSink`].
pub struct RedisSinkBuilder<T> {
    url: Option<String>,
    mapper: Option<Box<dyn RedisMapper<T>>>,
    max_batch_size: usize,
    flush_interval: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
    on_malformed: OnMalformed,
    mapper_check: Option<String>,
}

impl<T: 'static> RedisSinkBuilder<T> {
    /// The server: `redis://[[user]:password@]host[:port][/db]` (Bahir's
    /// `FlinkJedisPoolConfig` host, port, password and database in one URL). Required.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// How records become writes: a closure `Fn(&T) -> Result<RedisWrite, String>` or a
    /// [`CommandMapper`] (Bahir's `RedisMapper`). Required.
    pub fn mapper(mut self, mapper: impl RedisMapper<T>) -> Self {
        self.mapper = Some(Box::new(mapper));
        self.mapper_check = None;
        self
    }

    /// Bahir's command description (checked by `build()`); the same as
    /// [`mapper`](Self::mapper) with a [`CommandMapper`].
    pub fn command_mapper(mut self, mapper: CommandMapper<T>) -> Self {
        self.mapper_check = mapper.check().err();
        self.mapper = Some(Box::new(mapper));
        self
    }

    /// Commands buffered before a writer sends them (default 1000; 1 sends every record
    /// alone).
    pub fn max_batch_size(mut self, commands: usize) -> Self {
        self.max_batch_size = commands;
        self
    }

    /// Age of the oldest buffered command at which a writer sends its batch (default 200 ms).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Time to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time to wait for a batch's replies before the write fails (default 30 s).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// What to do with records the mapper refuses (default: fail the job).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// The sink. Does not connect: every writer connects when the job starts.
    ///
    /// # Errors
    /// [`RedisSinkError::Config`] without URL or mapper, for a URL the client cannot parse, an
    /// incomplete [`CommandMapper`], a zero batch size or a zero timeout.
    pub fn build(self) -> Result<RedisSink<T>, RedisSinkError> {
        let url = self.url.map(|u| u.trim().to_string()).unwrap_or_default();
        if url.is_empty() {
            return Err(RedisSinkError::Config(
                "the Redis sink needs a server: call .url(\"redis://host:6379/0\")".into(),
            ));
        }
        let shown = without_password(&url);
        let client = redis::Client::open(url.as_str()).map_err(|e| {
            RedisSinkError::Config(format!(
                "`{shown}` is not a Redis URL ({e}); write redis://[:password@]host:port[/db]"
            ))
        })?;
        let mapper = self.mapper.ok_or_else(|| {
            RedisSinkError::Config(
                "the Redis sink needs a mapper: call .mapper(|r| Ok(RedisWrite::set(key, value))) or .command_mapper(CommandMapper::new(..))".into(),
            )
        })?;
        if let Some(problem) = self.mapper_check {
            return Err(RedisSinkError::Config(problem));
        }
        if self.max_batch_size == 0 {
            return Err(RedisSinkError::Config(
                "max_batch_size must be at least 1".into(),
            ));
        }
        if self.connect_timeout.is_zero() || self.response_timeout.is_zero() {
            return Err(RedisSinkError::Config(
                "connect and response timeouts must be above zero".into(),
            ));
        }
        Ok(RedisSink {
            settings: Arc::new(Settings {
                client,
                url: shown,
                mapper,
                max_batch_size: self.max_batch_size,
                flush_interval: self.flush_interval,
                connect_timeout: self.connect_timeout,
                response_timeout: self.response_timeout,
                on_malformed: self.on_malformed,
            }),
        })
    }
}

/// `url` with the password (between `:` and `@` of the authority) replaced by `***`.
fn without_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = &rest[..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end], &rest[at..])
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{RedisCommand, RedisWrite};

    fn error(b: RedisSinkBuilder<String>) -> String {
        match b.build() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[allow(clippy::ptr_arg)] // the mapper of a `RedisSink<String>` takes `&String`
    fn set(s: &String) -> Result<RedisWrite, String> {
        Ok(RedisWrite::set(s.as_str(), s.as_str()))
    }

    #[test]
    fn build_checks_url_mapper_and_sizes() {
        assert!(error(RedisSink::builder().mapper(set)).contains(".url("));
        assert!(error(RedisSink::builder().url("redis://h:1")).contains(".mapper("));
        assert!(
            error(RedisSink::builder().url("http://h:1").mapper(set)).contains("not a Redis URL")
        );
        assert!(
            error(
                RedisSink::builder()
                    .url("redis://h:1")
                    .mapper(set)
                    .max_batch_size(0)
            )
            .contains("at least 1")
        );
        let hset = CommandMapper::new(RedisCommand::Hset, |s: &String| s.clone(), |s| s.clone());
        assert!(
            error(RedisSink::builder().url("redis://h:1").command_mapper(hset))
                .contains("additional key")
        );
        let sink = RedisSink::builder()
            .url("redis://:secret@h:1/2")
            .mapper(set)
            .build()
            .unwrap();
        assert_eq!(sink.url(), "redis://:***@h:1/2");
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            without_password("redis://u:pw@h:1/0"),
            "redis://u:***@h:1/0"
        );
        assert_eq!(without_password("redis://h:1/0"), "redis://h:1/0");
    }
}
