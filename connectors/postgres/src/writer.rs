//! The writer of one parallel instance: a batch of actions (with key columns, the last action
//! of each key only), written in one transaction (the statements pipelined) when it holds
//! `max_rows` actions, when its oldest action is `flush_interval` old, and on every `flush`
//! (before each checkpoint barrier, at the end of input); retried whole on a new connection
//! after transient failures.

use crate::action::PgAction;
use crate::client::{Connection, Failure, detail_of, error_chain, is_transient};
use crate::error::PostgresError;
use crate::metrics::WriterMetrics;
use crate::sink::{OnMalformed, Settings};
use crate::statement;
use crate::value::PgValue;
use fjord::sinks::SinkWriter;
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio_postgres::Statement;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

/// The statements of one connection.
struct Prepared {
    /// Upsert (with key) or insert.
    write: Statement,
    /// With key only.
    delete: Option<Statement>,
}

/// What the writer learned from the table when it opened.
struct Shape {
    columns: Vec<String>,
    /// Each column's type, in column order.
    column_types: Vec<Type>,
    /// Positions of the key columns in `columns`.
    key_positions: Vec<usize>,
    write_sql: String,
    delete_sql: Option<String>,
}

pub(crate) struct PostgresWriter<T> {
    settings: Arc<Settings<T>>,
    shape: Shape,
    conn: Option<(Connection, Prepared)>,
    buffer: Vec<PgAction>,
    /// With key columns: where each key's action is in `buffer`.
    index: HashMap<Vec<PgValue>, usize>,
    /// Records whose actions are in `buffer`.
    records: u64,
    /// When the first action of the current batch was buffered.
    oldest: Option<Instant>,
    metrics: WriterMetrics,
    subtask: String,
}

impl<T> PostgresWriter<T> {
    /// Connects (retrying transient failures), reads the table's columns if none were given,
    /// and prepares the statements: a missing table, column or unique key fails here, before
    /// the first record.
    pub(crate) fn open(
        settings: Arc<Settings<T>>,
        ctx: &RuntimeContext,
    ) -> Result<Self, PostgresError> {
        let subtask = ctx.task_name_with_subtasks();
        let conn =
            Connection::connect_with_retries(&settings.connect, &settings.backoff, &subtask)?;
        let table = &settings.table;
        let columns = match &settings.columns {
            Some(c) => c.clone(),
            None => conn
                .table_columns(table)
                .map_err(permanent_or_unreachable(&settings))?
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
        };
        let key_positions = settings
            .key
            .iter()
            .map(|k| {
                columns
                    .iter()
                    .position(|c| c == k)
                    .ok_or_else(|| PostgresError::MissingColumn {
                        table: table.clone(),
                        column: k.clone(),
                        what: "the sink's key columns",
                        available: columns.join(", "),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (write_sql, delete_sql) = if settings.key.is_empty() {
            (statement::insert(table, &columns), None)
        } else {
            (
                statement::upsert(table, &columns, &settings.key),
                Some(statement::delete(table, &settings.key)),
            )
        };
        let mut shape = Shape {
            columns,
            column_types: Vec::new(),
            key_positions,
            write_sql,
            delete_sql,
        };
        let prepared =
            prepare(&conn, &shape, &settings).map_err(permanent_or_unreachable(&settings))?;
        shape.column_types = prepared.write.params().to_vec();
        Ok(PostgresWriter {
            conn: Some((conn, prepared)),
            shape,
            buffer: Vec::new(),
            index: HashMap::new(),
            records: 0,
            oldest: None,
            metrics: WriterMetrics::new(ctx),
            subtask,
            settings,
        })
    }

    /// Checks an action's arity and value types against the table, before it is buffered.
    fn check(&self, action: &PgAction) -> Result<(), PostgresError> {
        let s = &self.settings;
        let (values, positions, what): (&[PgValue], Vec<usize>, _) = match action {
            PgAction::Upsert(v) => (v, (0..self.shape.columns.len()).collect(), "an upsert"),
            PgAction::Delete(k) => {
                if s.key.is_empty() {
                    return Err(PostgresError::Malformed(format!(
                        "a delete for table {}, but the sink has no key columns (it appends); configure .key([...]) (SQL: a PRIMARY KEY) to upsert and delete",
                        s.table
                    )));
                }
                (k, self.shape.key_positions.clone(), "a delete")
            }
        };
        if values.len() != positions.len() {
            return Err(PostgresError::Arity {
                what,
                table: s.table.clone(),
                got: values.len(),
                expected: positions.len(),
                columns: positions
                    .iter()
                    .map(|&p| self.shape.columns[p].as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        for (v, &p) in values.iter().zip(&positions) {
            let ty = &self.shape.column_types[p];
            if let Err(hint) = v.check(ty) {
                return Err(PostgresError::TypeMismatch {
                    table: s.table.clone(),
                    column: self.shape.columns[p].clone(),
                    column_type: ty.name().to_string(),
                    value: v.to_string(),
                    hint,
                });
            }
        }
        Ok(())
    }

    /// The key of an action (with key columns).
    fn key_of(&self, action: &PgAction) -> Vec<PgValue> {
        match action {
            PgAction::Upsert(v) => self
                .shape
                .key_positions
                .iter()
                .map(|&p| v[p].clone())
                .collect(),
            PgAction::Delete(k) => k.clone(),
        }
    }

    /// Writes every buffered action and waits for the server's commit.
    fn send_all(&mut self) -> Result<(), PostgresError> {
        let batch = std::mem::take(&mut self.buffer);
        let records = std::mem::take(&mut self.records);
        self.index.clear();
        self.oldest = None;
        if batch.is_empty() {
            self.metrics.records.add(records);
            return Ok(());
        }
        let mut retry = 0u32;
        loop {
            match self.try_send(&batch) {
                Ok(()) => break,
                Err(Failure::Permanent(e)) => return Err(*e),
                Err(Failure::Transient(reason)) => {
                    // The server rolled the transaction back (or never committed it); a new
                    // connection writes the whole batch again.
                    self.conn = None;
                    retry += 1;
                    let Some(d) = self.settings.backoff.delay_before(retry) else {
                        return Err(PostgresError::Unreachable {
                            url: self.settings.connect.redacted_url(),
                            attempts: retry,
                            reason: format!(
                                "writing a batch of {} actions to {}: {reason}",
                                batch.len(),
                                self.settings.table
                            ),
                        });
                    };
                    tracing::warn!(sink = %self.subtask, "batch of {} actions failed ({reason}); retry {retry} in {d:?}", batch.len());
                    self.metrics.retries.inc();
                    std::thread::sleep(d);
                }
            }
        }
        for a in &batch {
            match a {
                PgAction::Upsert(_) => self.metrics.upserts.inc(),
                PgAction::Delete(_) => self.metrics.deletes.inc(),
            }
        }
        self.metrics.batches.inc();
        self.metrics.records.add(records);
        Ok(())
    }

    /// One attempt: connect if needed, then the batch in one transaction.
    fn try_send(&mut self, batch: &[PgAction]) -> Result<(), Failure> {
        if self.conn.is_none() {
            let conn = Connection::connect(&self.settings.connect)?;
            let prepared = prepare(&conn, &self.shape, &self.settings)?;
            self.conn = Some((conn, prepared));
        }
        let (conn, prepared) = self.conn.as_ref().expect("connected");
        let client = conn.client();
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = batch
            .iter()
            .map(|a| match a {
                PgAction::Upsert(v) | PgAction::Delete(v) => {
                    v.iter().map(|x| x as &(dyn ToSql + Sync)).collect()
                }
            })
            .collect();
        let results = conn.block_on(async {
            client.batch_execute("BEGIN").await?;
            // All statements at once: tokio-postgres pipelines them on the connection.
            let writes = batch.iter().zip(&params).map(|(a, p)| {
                let stmt = match a {
                    PgAction::Upsert(_) => &prepared.write,
                    PgAction::Delete(_) => prepared.delete.as_ref().expect("a delete statement"),
                };
                client.execute(stmt, p)
            });
            let results = futures::future::join_all(writes).await;
            Ok::<_, tokio_postgres::Error>(results)
        });
        let results = results.map_err(|e| self.failure(&e, None))?;
        let failed = results.iter().enumerate().find_map(|(i, r)| match r {
            Err(e) if e.code() != Some(&SqlState::IN_FAILED_SQL_TRANSACTION) => Some((i, e)),
            _ => None,
        });
        if let Some((i, e)) = failed {
            let f = self.failure(e, Some(&batch[i]));
            if matches!(f, Failure::Permanent(_)) {
                let _ = conn.block_on(client.batch_execute("ROLLBACK"));
            }
            return Err(f);
        }
        conn.block_on(client.batch_execute("COMMIT"))
            .map_err(|e| self.failure(&e, None))
    }

    /// Sorts a failed statement's error; a permanent one names the action.
    fn failure(&self, e: &tokio_postgres::Error, action: Option<&PgAction>) -> Failure {
        if is_transient(e) {
            return Failure::Transient(error_chain(e));
        }
        let statement = match action {
            Some(a @ PgAction::Upsert(v)) if !self.settings.key.is_empty() => {
                format!("the upsert of key ({})", values_text(&self.key_of(a)))
                    + &format!(" with row ({})", values_text(v))
            }
            Some(PgAction::Upsert(v)) => format!("the insert of row ({})", values_text(v)),
            Some(PgAction::Delete(k)) => format!("the delete of key ({})", values_text(k)),
            None => "a batch".to_string(),
        };
        Failure::permanent(match e.as_db_error() {
            // The planner, not `prepare`, looks for the unique index ON CONFLICT needs.
            Some(db)
                if *db.code() == SqlState::INVALID_COLUMN_REFERENCE
                    && db.message().contains("ON CONFLICT") =>
            {
                PostgresError::NoUniqueKey {
                    table: self.settings.table.clone(),
                    key: self.settings.key.join(", "),
                }
            }
            Some(db) => PostgresError::Statement {
                table: self.settings.table.clone(),
                statement,
                code: db.code().code().to_string(),
                message: db.message().to_string(),
                detail: detail_of(db),
            },
            None => PostgresError::Statement {
                table: self.settings.table.clone(),
                statement,
                code: "-".into(),
                message: error_chain(e),
                detail: String::new(),
            },
        })
    }
}

/// Values as `1, 'a', NULL` for messages.
fn values_text(values: &[PgValue]) -> String {
    values
        .iter()
        .map(|v| match v {
            PgValue::Text(s) => format!("'{s}'"),
            PgValue::Int2(x) => x.to_string(),
            PgValue::Int4(x) => x.to_string(),
            PgValue::Int8(x) => x.to_string(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prepares the writer's statements on `conn`.
fn prepare<T>(
    conn: &Connection,
    shape: &Shape,
    settings: &Settings<T>,
) -> Result<Prepared, Failure> {
    let what = if settings.columns.is_some() {
        "the sink's columns"
    } else {
        "the table's columns"
    };
    let write = conn.prepare(&shape.write_sql, &settings.table, &settings.key, what)?;
    let delete = match &shape.delete_sql {
        Some(sql) => Some(conn.prepare(
            sql,
            &settings.table,
            &settings.key,
            "the sink's key columns",
        )?),
        None => None,
    };
    Ok(Prepared { write, delete })
}

/// Turns a failure at open into the error: transient ones (after the connection's own
/// retries) as unreachable.
fn permanent_or_unreachable<T>(settings: &Settings<T>) -> impl Fn(Failure) -> PostgresError + '_ {
    move |f| match f {
        Failure::Permanent(e) => *e,
        Failure::Transient(reason) => PostgresError::Unreachable {
            url: settings.connect.redacted_url(),
            attempts: 1,
            reason,
        },
    }
}

impl<T: Send + 'static> SinkWriter<T> for PostgresWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let actions = match self.settings.emitter.emit(&value) {
            Ok(a) => a,
            Err(problem) => match self.settings.on_malformed {
                OnMalformed::Fail => return Err(Box::new(PostgresError::Malformed(problem))),
                OnMalformed::Skip => {
                    tracing::warn!(sink = %self.subtask, "skipping a malformed record: {problem}");
                    self.metrics.skipped.inc();
                    return Ok(());
                }
            },
        };
        for a in &actions {
            self.check(a)?;
        }
        self.records += 1;
        if actions.is_empty() {
            return Ok(());
        }
        for a in actions {
            if self.settings.key.is_empty() {
                self.buffer.push(a);
                continue;
            }
            let key = self.key_of(&a);
            match self.index.get(&key) {
                Some(&i) => {
                    self.buffer[i] = a;
                    self.metrics.reduced.inc();
                }
                None => {
                    self.index.insert(key, self.buffer.len());
                    self.buffer.push(a);
                }
            }
        }
        let oldest = *self.oldest.get_or_insert_with(Instant::now);
        let s = &self.settings;
        if self.buffer.len() >= s.max_rows
            || s.flush_interval.is_some_and(|i| oldest.elapsed() >= i)
        {
            self.send_all()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.send_all()?)
    }
}
