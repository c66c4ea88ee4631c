//! The Elasticsearch/OpenSearch sink (Flink's `ElasticsearchSink`) and its builder.
//!
//! # Guarantees
//! Every writer collects actions into a bulk request and sends it when it holds `max_actions`
//! actions or `max_size_bytes` bytes, when its oldest action is `flush_interval` old (checked
//! as records arrive; the engine also flushes a sink whose input goes idle), at the end of
//! input, and before every checkpoint barrier leaves the task, waiting until the cluster has
//! answered for every action (Flink's `flushOnCheckpoint`). A completed checkpoint therefore
//! never covers an action the cluster has not accepted: **at-least-once**. After a failure the
//! job restarts from that checkpoint and sends the actions since then again; with document ids
//! from the record (upserts, indexes with an id, deletes) the replay rewrites the same
//! documents, so the index ends as a run without failure leaves it (**exactly-once results**).
//!
//! A request that gets no answer, or a whole-request 429/502/503/504, is sent again after the
//! backoff's delay; so are the actions the cluster rejected for load (item status 429, 503).
//! What is left after the retries, and every other refused action (a mapping conflict, a
//! malformed document), goes to the [`FailureHandler`]: fail the job (default), drop and count
//! it, or retry load rejections forever.

use crate::action::Emitter;
use crate::backoff::Backoff;
use crate::error::ElasticsearchError;
use crate::failure::FailureHandler;
use crate::writer::ElasticsearchWriter;
use fjord::sinks::{Sink, SinkWriter};
use fjord::{BoxError, RuntimeContext};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What the sink does with a record its emitter refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job with [`ElasticsearchError::Malformed`] naming the problem (default).
    #[default]
    Fail,
    /// Skip the record, log a warning and count it in `recordsSkipped`.
    Skip,
}

/// Default actions per bulk request (Flink's `sink.bulk-flush.max-actions`).
pub const DEFAULT_MAX_ACTIONS: usize = 1000;
/// Default bytes per bulk request (Flink's `sink.bulk-flush.max-size`, 2 MB).
pub const DEFAULT_MAX_SIZE_BYTES: usize = 2 * 1024 * 1024;
/// Default age of the oldest buffered action that sends the request (Flink's
/// `sink.bulk-flush.interval`).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default time to open a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time for a whole bulk request and its response.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The settings every writer of a sink shares.
pub(crate) struct Settings<T> {
    /// Base URLs (`http://host:9200`, `https://host:9200/prefix`), without a trailing slash.
    pub(crate) hosts: Vec<String>,
    pub(crate) emitter: Box<dyn Emitter<T>>,
    /// `usize::MAX` when disabled.
    pub(crate) max_actions: usize,
    /// `usize::MAX` when disabled.
    pub(crate) max_size_bytes: usize,
    pub(crate) flush_interval: Option<Duration>,
    pub(crate) backoff: Backoff,
    pub(crate) failure_handler: FailureHandler,
    pub(crate) on_malformed: OnMalformed,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

/// Writes a stream to Elasticsearch 7/8 or OpenSearch through the bulk API. Made by
/// [`ElasticsearchSink::builder`]; add it with `stream.sink_to(sink, name)`.
///
/// ```no_run
/// use fjord_elasticsearch::{DocAction, ElasticsearchSink};
/// # fn job(counts: &fjord::DataStream<(String, u64)>) -> Result<(), fjord_elasticsearch::ElasticsearchError> {
/// let sink = ElasticsearchSink::builder()
///     .hosts(["http://127.0.0.1:9200"])
///     .emitter(|c: &(String, u64)| {
///         DocAction::upsert("word-counts", c.0.as_str(), &serde_json::json!({"word": c.0, "count": c.1}))
///     })
///     .build()?;
/// counts.sink_to(sink, "Sink: Elasticsearch");
/// # Ok(())
/// # }
/// ```
pub struct ElasticsearchSink<T> {
    settings: Arc<Settings<T>>,
}

impl<T> Clone for ElasticsearchSink<T> {
    fn clone(&self) -> Self {
        ElasticsearchSink {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> ElasticsearchSink<T> {
    /// A builder.
    pub fn builder() -> ElasticsearchSinkBuilder<T> {
        ElasticsearchSinkBuilder {
            hosts: Vec::new(),
            emitter: None,
            max_actions: DEFAULT_MAX_ACTIONS,
            max_size_bytes: DEFAULT_MAX_SIZE_BYTES,
            flush_interval: Some(DEFAULT_FLUSH_INTERVAL),
            backoff: Backoff::default(),
            failure_handler: FailureHandler::default(),
            on_malformed: OnMalformed::default(),
            username: None,
            password: None,
            ca_file: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// The cluster's hosts.
    pub fn hosts(&self) -> &[String] {
        &self.settings.hosts
    }
}

impl<T: Send + 'static> Sink<T> for ElasticsearchSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(ElasticsearchWriter::open(
            self.settings.clone(),
            ctx,
        )?))
    }
}

/// Builds an [`ElasticsearchSink`].
pub struct ElasticsearchSinkBuilder<T> {
    hosts: Vec<String>,
    emitter: Option<Box<dyn Emitter<T>>>,
    max_actions: usize,
    max_size_bytes: usize,
    flush_interval: Option<Duration>,
    backoff: Backoff,
    failure_handler: FailureHandler,
    on_malformed: OnMalformed,
    username: Option<String>,
    password: Option<String>,
    ca_file: Option<PathBuf>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl<T: 'static> ElasticsearchSinkBuilder<T> {
    /// The cluster's REST endpoints, `http[s]://host:port[/path-prefix]`; requests go to the
    /// first, and to the next when one does not answer. Required.
    pub fn hosts<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// What each record becomes: a closure `Fn(&T) -> Result<DocAction, String>`, a
    /// [`JsonEmitter`](crate::JsonEmitter) or any [`Emitter`]. Required.
    pub fn emitter(mut self, emitter: impl Emitter<T>) -> Self {
        self.emitter = Some(Box::new(emitter));
        self
    }

    /// Actions per bulk request (default 1000; 0: no limit by count).
    pub fn max_actions(mut self, actions: usize) -> Self {
        self.max_actions = actions;
        self
    }

    /// Bytes of a bulk request's body that make it be sent (default 2 MiB; 0: no limit by size).
    pub fn max_size_bytes(mut self, bytes: usize) -> Self {
        self.max_size_bytes = bytes;
        self
    }

    /// Age of the oldest buffered action at which the request is sent (default 1 s; `None`:
    /// only count, size, checkpoints and idle input send it).
    pub fn flush_interval(mut self, interval: Option<Duration>) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Retries of requests without answer and of actions rejected for load (default:
    /// exponential, 5 retries from 100 ms).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// What happens to actions the cluster refuses (default: fail the job).
    pub fn failure_handler(mut self, handler: FailureHandler) -> Self {
        self.failure_handler = handler;
        self
    }

    /// What to do with records the emitter refuses (default: fail the job).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// HTTP basic authentication.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// A PEM file with the CA certificate(s) that signed the cluster's HTTPS certificate,
    /// trusted besides the usual public roots.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Time to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for a bulk request and its response (default 60 s); a request without answer by
    /// then is retried like a broken connection.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The sink. Does not connect: every writer connects when it first sends.
    ///
    /// # Errors
    /// [`ElasticsearchError::Config`] without hosts or emitter, for a host that is not an
    /// `http://` or `https://` URL, a password without user, a zero timeout.
    pub fn build(self) -> Result<ElasticsearchSink<T>, ElasticsearchError> {
        let config = |m: String| ElasticsearchError::Config(m);
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('/').to_string())
            .filter(|h| !h.is_empty())
            .collect();
        if hosts.is_empty() {
            return Err(config(
                "the sink needs the cluster's address: call .hosts([\"http://host:9200\"])".into(),
            ));
        }
        for h in &hosts {
            check_host(h).map_err(config)?;
        }
        let emitter = self.emitter.ok_or_else(|| {
            config("the sink needs an emitter: call .emitter(|r| DocAction::upsert(index, id, &r)) or .emitter(JsonEmitter::new(index))".into())
        })?;
        if self.password.is_some() && self.username.as_deref().is_none_or(str::is_empty) {
            return Err(config("a password needs a username".into()));
        }
        if self.connect_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(config(
                "connect and request timeouts must be above zero".into(),
            ));
        }
        let unlimited = |n: usize| if n == 0 { usize::MAX } else { n };
        Ok(ElasticsearchSink {
            settings: Arc::new(Settings {
                hosts,
                emitter,
                max_actions: unlimited(self.max_actions),
                max_size_bytes: unlimited(self.max_size_bytes),
                flush_interval: self.flush_interval.filter(|d| !d.is_zero()),
                backoff: self.backoff,
                failure_handler: self.failure_handler,
                on_malformed: self.on_malformed,
                username: self.username.filter(|u| !u.is_empty()),
                password: self.password,
                ca_file: self.ca_file,
                connect_timeout: self.connect_timeout,
                request_timeout: self.request_timeout,
            }),
        })
    }
}

/// Checks one host URL: `http[s]://host[:port][/prefix]`, without credentials, query or
/// fragment.
pub fn check_host(h: &str) -> Result<(), String> {
    let rest = h
        .strip_prefix("http://")
        .or_else(|| h.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("host '{h}' must start with http:// or https://, e.g. http://localhost:9200")
        })?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("host '{h}' has no host name"));
    }
    if authority.contains('@') {
        return Err(format!(
            "host '{h}' holds credentials; give them as username and password instead"
        ));
    }
    if h.contains('?') || h.contains('#') {
        return Err(format!("host '{h}' must not have a query or fragment"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::DocAction;

    fn error(b: ElasticsearchSinkBuilder<String>) -> String {
        match b.build() {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[allow(clippy::ptr_arg)] // the emitter of an `ElasticsearchSink<String>` takes `&String`
    fn emit(s: &String) -> Result<DocAction, String> {
        Ok(DocAction::delete("i", s.as_str()))
    }

    #[test]
    fn build_checks_hosts_emitter_and_auth() {
        assert!(error(ElasticsearchSink::builder().emitter(emit)).contains(".hosts("));
        assert!(error(ElasticsearchSink::builder().hosts(["http://h:1"])).contains(".emitter("));
        assert!(
            error(ElasticsearchSink::builder().hosts(["h:9200"]).emitter(emit))
                .contains("must start with http://")
        );
        assert!(
            error(
                ElasticsearchSink::builder()
                    .hosts(["http://u:p@h:9200"])
                    .emitter(emit)
            )
            .contains("credentials")
        );
        let sink = ElasticsearchSink::builder()
            .hosts(["https://h:9200/", " http://g:9200/es "])
            .emitter(emit)
            .build()
            .unwrap();
        assert_eq!(sink.hosts(), ["https://h:9200", "http://g:9200/es"]);
    }
}
