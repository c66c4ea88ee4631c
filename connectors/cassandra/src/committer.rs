//! Flink's `CassandraCommitter`: the write-ahead sink records in a Cassandra table, per run
//! of a writer and subtask, the last checkpoint whose records it wrote, so a restore that hands
//! it the same checkpoint again does not write its records twice.
//!
//! Table (created if missing, in a keyspace created with SimpleStrategy and replication factor 1
//! if missing; create it yourself beforehand for another replication):
//! `(run_id text, sub_id int, sink text, checkpoint_id bigint, PRIMARY KEY (run_id, sub_id))`.
//! `run_id` is random per writer instance and travels in the checkpoint with the records, so
//! ids of another job, or of a fresh start of the same job, never match.

use crate::error::CassandraSinkError;
use crate::executor::{Connection, RetryPolicy};
use crate::statement::quote_identifier;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::unprepared::Statement;

/// Default keyspace of the committer table (Flink: `flink_auxiliary`).
pub const DEFAULT_COMMITTER_KEYSPACE: &str = "fjord_auxiliary";
/// Default name of the committer table.
pub const DEFAULT_COMMITTER_TABLE: &str = "checkpoints";

pub(crate) struct Committer {
    table: String,
    sink: String,
    select: PreparedStatement,
    insert: PreparedStatement,
}

impl Committer {
    /// Creates the keyspace and table if missing and prepares the statements.
    pub(crate) fn open(
        connection: &Connection,
        keyspace: &str,
        table: &str,
        sink: &str,
        retry: &RetryPolicy,
    ) -> Result<Self, CassandraSinkError> {
        let name = format!("{}.{}", quote_identifier(keyspace), quote_identifier(table));
        let error = |message: String| CassandraSinkError::Committer {
            table: name.clone(),
            message,
        };
        let session = connection.session().clone();
        for ddl in [
            format!(
                "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}",
                quote_identifier(keyspace)
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {name} (run_id text, sub_id int, sink text, checkpoint_id bigint, PRIMARY KEY (run_id, sub_id))"
            ),
        ] {
            connection
                .block_on(session.query_unpaged(Statement::new(ddl.as_str()), ()))
                .map_err(|e| error(format!("`{ddl}`: {e}")))?;
        }
        let select = connection.prepare(
            &format!("SELECT checkpoint_id FROM {name} WHERE run_id = ? AND sub_id = ?"),
            retry,
        )?;
        let insert = connection.prepare(
            &format!(
                "INSERT INTO {name} (run_id, sub_id, sink, checkpoint_id) VALUES (?, ?, ?, ?)"
            ),
            retry,
        )?;
        Ok(Committer {
            table: name,
            sink: sink.to_string(),
            select,
            insert,
        })
    }

    /// Whether the records of `checkpoint_id` of that run and subtask were written already.
    pub(crate) fn is_committed(
        &self,
        connection: &Connection,
        run_id: &str,
        subtask: i32,
        checkpoint_id: u64,
    ) -> Result<bool, CassandraSinkError> {
        let session = connection.session().clone();
        let last = connection
            .block_on(async {
                let result = session
                    .execute_unpaged(&self.select, (run_id, subtask))
                    .await
                    .map_err(|e| e.to_string())?;
                let rows = result.into_rows_result().map_err(|e| e.to_string())?;
                rows.maybe_first_row::<(i64,)>()
                    .map_err(|e| e.to_string())
                    .map(|r| r.map(|(id,)| id))
            })
            .map_err(|message| self.error(message))?;
        Ok(last.is_some_and(|last| last >= checkpoint_id as i64))
    }

    /// Records that the records of `checkpoint_id` were written.
    pub(crate) fn commit(
        &self,
        connection: &Connection,
        run_id: &str,
        subtask: i32,
        checkpoint_id: u64,
    ) -> Result<(), CassandraSinkError> {
        let session = connection.session().clone();
        connection
            .block_on(session.execute_unpaged(
                &self.insert,
                (run_id, subtask, self.sink.as_str(), checkpoint_id as i64),
            ))
            .map(|_| ())
            .map_err(|e| self.error(e.to_string()))
    }

    fn error(&self, message: String) -> CassandraSinkError {
        CassandraSinkError::Committer {
            table: self.table.clone(),
            message,
        }
    }
}
