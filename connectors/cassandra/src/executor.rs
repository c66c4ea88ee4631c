//! One writer's connection and its asynchronous requests (Flink's `CassandraSinkBase`): a
//! driver session on a small tokio runtime of its own, the prepared statement, and a
//! semaphore of `max_concurrent_requests` permits. [`Executor::submit`] takes a permit (waiting
//! while that many requests are in flight) and sends the request on the runtime;
//! [`Executor::drain`] waits until every permit is back, i.e. every request answered, which is
//! what a checkpoint barrier waits for. Retriable errors (timeouts, unavailable or overloaded
//! nodes, broken connections) are retried with exponential backoff; what still fails goes to
//! the failure handler ([`OnFailure`]). Must not be used from inside another tokio runtime.

use crate::error::CassandraSinkError;
use crate::metrics::WriterMetrics;
use crate::row::{CqlRow, coerce};
use crate::sink::{OnFailure, Settings};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::policies::retry::FallthroughRetryPolicy;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// A session on its own runtime.
pub(crate) struct Connection {
    runtime: tokio::runtime::Runtime,
    session: Arc<Session>,
}

impl Connection {
    /// Opens a session to the settings' contact points.
    ///
    /// # Errors
    /// [`CassandraSinkError::Connect`] if no contact point answers within the connect timeout.
    pub(crate) fn open<T>(settings: &Settings<T>) -> Result<Self, CassandraSinkError> {
        let connect = |message: String| CassandraSinkError::Connect {
            hosts: settings.hosts.join(","),
            message,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cassandra-sink")
            .enable_all()
            .build()
            .map_err(|e| connect(format!("cannot start the client's runtime: {e}")))?;
        // The sink retries itself (with backoff, counted); the driver makes one attempt.
        let profile = ExecutionProfile::builder()
            .request_timeout(Some(settings.request_timeout))
            .consistency(settings.consistency)
            .retry_policy(Arc::new(FallthroughRetryPolicy::new()))
            .build();
        let builder = SessionBuilder::new()
            .known_nodes(&settings.hosts)
            .connection_timeout(settings.connect_timeout)
            .default_execution_profile_handle(profile.into_handle());
        let session = runtime
            .block_on(async {
                tokio::time::timeout(settings.connect_timeout * 2, builder.build()).await
            })
            .map_err(|_| {
                connect(format!(
                    "no answer within {:?}",
                    settings.connect_timeout * 2
                ))
            })?
            .map_err(|e| connect(e.to_string()))?;
        Ok(Connection {
            runtime,
            session: Arc::new(session),
        })
    }

    /// Runs `f` to completion on the connection's runtime.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The session.
    pub(crate) fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// Prepares `query` (retried like a write while the cluster is unreachable).
    ///
    /// # Errors
    /// [`CassandraSinkError::Prepare`] when the server refuses it.
    pub(crate) fn prepare(
        &self,
        query: &str,
        retry: &RetryPolicy,
    ) -> Result<PreparedStatement, CassandraSinkError> {
        let session = self.session.clone();
        let mut backoff = retry.initial_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.block_on(session.prepare(Statement::new(query))) {
                Ok(p) => return Ok(p),
                Err(e) => {
                    let message = e.to_string();
                    let transient = message.contains("connection")
                        || message.contains("Connection")
                        || message.contains("timed out");
                    if !transient || attempt > retry.max_retries {
                        return Err(CassandraSinkError::Prepare {
                            query: query.to_string(),
                            message,
                        });
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(retry.max_backoff);
                }
            }
        }
    }
}

/// How often and how patiently a failed request is tried again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

/// Whether an error may go away by itself: a timeout, an unavailable, overloaded or
/// bootstrapping node, a broken or missing connection. Syntax, schema and type errors do not.
pub(crate) fn retriable(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::EmptyPlan
        | ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_) => true,
        ExecutionError::LastAttemptError(attempt) => match attempt {
            RequestAttemptError::UnableToAllocStreamId
            | RequestAttemptError::BrokenConnectionError(_) => true,
            RequestAttemptError::DbError(db, _) => matches!(
                db,
                DbError::WriteTimeout { .. }
                    | DbError::ReadTimeout { .. }
                    | DbError::Unavailable { .. }
                    | DbError::Overloaded
                    | DbError::IsBootstrapping
                    | DbError::TruncateError
                    | DbError::ServerError
                    | DbError::RateLimitReached { .. }
            ),
            _ => false,
        },
        _ => false,
    }
}

/// The first write failure of a writer, reported at its next call.
type FailureSlot = Arc<Mutex<Option<CassandraSinkError>>>;

/// Bounded asynchronous writes of one prepared statement.
pub(crate) struct Executor {
    connection: Connection,
    prepared: PreparedStatement,
    permits: Arc<Semaphore>,
    max_in_flight: usize,
    wait_timeout: Duration,
    retry: RetryPolicy,
    on_failure: OnFailure,
    failure: FailureSlot,
    metrics: Arc<WriterMetrics>,
}

impl Executor {
    /// Connects and prepares the settings' statement.
    pub(crate) fn open<T>(
        settings: &Settings<T>,
        metrics: Arc<WriterMetrics>,
    ) -> Result<Self, CassandraSinkError> {
        let connection = Connection::open(settings)?;
        let prepared = connection.prepare(&settings.query, &settings.retry)?;
        let expected = prepared.get_variable_col_specs().len();
        if let Some(n) = settings.row_width
            && n != expected
        {
            return Err(CassandraSinkError::Config(format!(
                "`{}` has {expected} bind marker(s) but the mapping gives {n} value(s)",
                settings.query
            )));
        }
        Ok(Executor {
            connection,
            prepared,
            permits: Arc::new(Semaphore::new(settings.max_concurrent_requests)),
            max_in_flight: settings.max_concurrent_requests,
            wait_timeout: settings.max_concurrent_requests_timeout,
            retry: settings.retry,
            on_failure: settings.on_failure,
            failure: Arc::new(Mutex::new(None)),
            metrics,
        })
    }

    /// The connection (the write-ahead committer uses it too).
    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The statement.
    pub(crate) fn query(&self) -> &str {
        self.prepared.get_statement()
    }

    /// Checks `row` against the statement's bind markers and serializes it: one value per
    /// marker, each adapted to the column's type ([`coerce`]) and type-checked by the driver.
    ///
    /// # Errors
    /// What does not fit, naming the column, its CQL type and the value.
    pub(crate) fn bind(
        &self,
        row: CqlRow,
    ) -> Result<scylla::statement::bound::BoundStatement, String> {
        let specs = self.prepared.get_variable_col_specs();
        if row.len() != specs.len() {
            return Err(format!(
                "the row has {} value(s) but `{}` has {} bind marker(s)",
                row.len(),
                self.query(),
                specs.len()
            ));
        }
        let mut values = Vec::with_capacity(row.len());
        for (value, spec) in row.into_iter().zip(specs.iter()) {
            let value = match value {
                None => None,
                Some(v) => Some(
                    coerce(v, spec.typ())
                        .map_err(|e| format!("column `{}` ({:?}): {e}", spec.name(), spec.typ()))?,
                ),
            };
            values.push(value);
        }
        let shown = format!("{values:?}");
        self.prepared.clone().bind(&values).map_err(|e| {
            let column = specs
                .iter()
                .zip(values.iter())
                .find(|(spec, v)| !value_fits(v.as_ref(), spec.typ()))
                .map(|(spec, v)| {
                    format!(
                        "column `{}` is {:?} but the record gives {:?}; ",
                        spec.name(),
                        spec.typ(),
                        v
                    )
                })
                .unwrap_or_default();
            format!(
                "{column}the values {shown} do not fit `{}`: {e}",
                self.query()
            )
        })
    }

    /// Sends one bound row once a request slot is free.
    ///
    /// # Errors
    /// An earlier write's failure (with [`OnFailure::Fail`]), or no free slot within the
    /// timeout.
    pub(crate) fn submit(
        &self,
        bound: scylla::statement::bound::BoundStatement,
    ) -> Result<(), CassandraSinkError> {
        self.check()?;
        let permits = self.permits.clone();
        let permit = self
            .connection
            .block_on(async {
                tokio::time::timeout(self.wait_timeout, permits.acquire_owned()).await
            })
            .map_err(|_| self.timeout("a free request slot"))?
            .map_err(|_| CassandraSinkError::Config("the request semaphore closed".into()))?;
        let session = self.connection.session().clone();
        let (retry, on_failure, failure, metrics) = (
            self.retry,
            self.on_failure,
            self.failure.clone(),
            self.metrics.clone(),
        );
        let query = self.query().to_string();
        metrics
            .in_flight
            .set((self.max_in_flight - self.permits.available_permits()) as u64);
        self.connection.runtime.spawn(async move {
            let result = execute_with_retry(&session, &bound, &retry, &metrics).await;
            match result {
                Ok(()) => metrics.written.inc(),
                Err((attempts, message)) => match on_failure {
                    OnFailure::Fail => {
                        let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                        if slot.is_none() {
                            *slot = Some(CassandraSinkError::Write {
                                query,
                                attempts,
                                message,
                            });
                        }
                    }
                    OnFailure::IgnoreAndCount => {
                        metrics.failed.inc();
                        tracing::warn!(%query, attempts, "ignoring a failed Cassandra write: {message}");
                    }
                },
            }
            drop(permit);
        });
        Ok(())
    }

    /// Waits until every request sent so far is answered.
    ///
    /// # Errors
    /// A write's failure (with [`OnFailure::Fail`]), or requests still in flight after the
    /// timeout.
    pub(crate) fn drain(&self) -> Result<(), CassandraSinkError> {
        let permits = self.permits.clone();
        let all = self.max_in_flight as u32;
        let acquired = self.connection.block_on(async {
            tokio::time::timeout(self.wait_timeout, permits.acquire_many_owned(all)).await
        });
        match acquired {
            Ok(Ok(all)) => drop(all),
            Ok(Err(_)) => {
                return Err(CassandraSinkError::Config(
                    "the request semaphore closed".into(),
                ));
            }
            Err(_) => return Err(self.timeout("the requests in flight")),
        }
        self.metrics.in_flight.set(0);
        self.check()
    }

    fn check(&self) -> Result<(), CassandraSinkError> {
        match self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn timeout(&self, what: &'static str) -> CassandraSinkError {
        CassandraSinkError::Timeout {
            what,
            timeout_ms: self.wait_timeout.as_millis(),
            in_flight: self.max_in_flight - self.permits.available_permits(),
        }
    }
}

/// Whether the driver's type check accepts `v` for `typ` (used to name the offending column).
fn value_fits(
    v: Option<&scylla::value::CqlValue>,
    typ: &scylla::cluster::metadata::ColumnType<'_>,
) -> bool {
    use scylla::serialize::value::SerializeValue;
    use scylla::serialize::writers::CellWriter;
    let mut buf = Vec::new();
    v.serialize(typ, CellWriter::new(&mut buf)).is_ok()
}

async fn execute_with_retry(
    session: &Session,
    bound: &scylla::statement::bound::BoundStatement,
    retry: &RetryPolicy,
    metrics: &WriterMetrics,
) -> Result<(), (u32, String)> {
    let mut backoff = retry.initial_backoff;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match session.execute_bound_unpaged(bound).await {
            Ok(_) => return Ok(()),
            Err(e) if retriable(&e) && attempt <= retry.max_retries => {
                metrics.retries.inc();
                tracing::debug!(attempt, "retrying a Cassandra write in {backoff:?}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(retry.max_backoff);
            }
            Err(e) => return Err((attempt, e.to_string())),
        }
    }
}
