//! The write-ahead sink (Flink's `CassandraSink.builder().enableWriteAheadLog()`, a
//! `GenericWriteAheadSink`): records are not sent as they arrive but kept until a checkpoint
//! barrier, stored in that checkpoint's operator state, and written once the checkpoint has
//! completed on every task (`notifyCheckpointComplete`), through the engine's two-phase sink
//! framework. Before writing a checkpoint's records the writer asks the [committer
//! table](crate::committer) whether they were written already (a restore hands the last
//! completed checkpoint back) and records them as written afterwards.
//!
//! Guarantee: what a completed checkpoint holds is written; a restore does not write a
//! recorded checkpoint again. Like Flink's, it is not atomic: a failure after some of a
//! checkpoint's rows were written but before the committer recorded it writes those rows again
//! (harmless for upserts on a primary key). Records appear one checkpoint interval late.

use crate::committer::Committer;
use crate::error::CassandraSinkError;
use crate::executor::Executor;
use crate::metrics::WriterMetrics;
use crate::sink::Settings;
use crate::writer::bind_record;
use fjord::sinks::{TransactionalSink, TransactionalWriter};
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;

/// Writes a stream to Cassandra when checkpoints complete (Flink's write-ahead Cassandra
/// sink). Made by [`CassandraSinkBuilder::build_write_ahead`](crate::CassandraSinkBuilder::build_write_ahead);
/// add it with `stream.sink_to_transactional(sink, name)`. Needs checkpointing: without it
/// the records are written once, at the end of input.
pub struct CassandraWriteAheadSink<T> {
    pub(crate) settings: Arc<Settings<T>>,
}

impl<T> Clone for CassandraWriteAheadSink<T> {
    fn clone(&self) -> Self {
        CassandraWriteAheadSink {
            settings: self.settings.clone(),
        }
    }
}

/// What one checkpoint of one writer leaves to commit.
#[derive(serde::Serialize, serde::Deserialize)]
struct Committable {
    run_id: String,
    subtask: i32,
    checkpoint_id: u64,
    /// The records, bincode-encoded `Vec<T>`.
    records: Vec<u8>,
}

impl<T> TransactionalSink<T> for CassandraWriteAheadSink<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError> {
        let metrics = Arc::new(WriterMetrics::new(ctx));
        let executor = Executor::open(&self.settings, metrics.clone())?;
        let committer = Committer::open(
            executor.connection(),
            &self.settings.committer_keyspace,
            &self.settings.committer_table,
            &ctx.task_name,
            &self.settings.retry,
        )?;
        let run_id = format!("{:032x}", rand::random::<u128>());
        Ok(Box::new(WalWriter {
            settings: self.settings.clone(),
            executor,
            committer,
            metrics,
            subtask_name: ctx.task_name_with_subtasks(),
            subtask: ctx.subtask_index as i32,
            run_id,
            buffer: Vec::new(),
            _t: PhantomData,
        }))
    }
}

struct WalWriter<T> {
    settings: Arc<Settings<T>>,
    executor: Executor,
    committer: Committer,
    metrics: Arc<WriterMetrics>,
    subtask_name: String,
    subtask: i32,
    run_id: String,
    buffer: Vec<T>,
    _t: PhantomData<fn() -> T>,
}

impl<T> WalWriter<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn commit_one(&mut self, bytes: &[u8]) -> Result<(), CassandraSinkError> {
        let c: Committable = bincode::deserialize(bytes).map_err(|e| {
            CassandraSinkError::Encoding(format!("a checkpoint's committable: {e}"))
        })?;
        // u64::MAX: the end of input without checkpoints; no restore can hand it back.
        let recorded = c.checkpoint_id != u64::MAX;
        let conn = self.executor.connection();
        if recorded
            && self
                .committer
                .is_committed(conn, &c.run_id, c.subtask, c.checkpoint_id)?
        {
            self.metrics.already_committed.inc();
            tracing::info!(sink = %self.subtask_name, checkpoint = c.checkpoint_id,
                "the records of this checkpoint were written before; not writing them again");
            return Ok(());
        }
        let records: Vec<T> = bincode::deserialize(&c.records)
            .map_err(|e| CassandraSinkError::Encoding(format!("a checkpoint's records: {e}")))?;
        for record in &records {
            if let Some(bound) = bind_record(
                &self.settings,
                &self.executor,
                &self.metrics,
                &self.subtask_name,
                record,
            )? {
                self.executor.submit(bound)?;
            }
        }
        self.executor.drain()?;
        if recorded {
            self.committer.commit(
                self.executor.connection(),
                &c.run_id,
                c.subtask,
                c.checkpoint_id,
            )?;
        }
        self.metrics.committed.inc();
        Ok(())
    }
}

impl<T> TransactionalWriter<T> for WalWriter<T>
where
    T: Serialize + DeserializeOwned + Send + 'static,
{
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        // Checked now, so a malformed record fails (or is skipped) where it arrives, not
        // when its checkpoint completes.
        if bind_record(
            &self.settings,
            &self.executor,
            &self.metrics,
            &self.subtask_name,
            &value,
        )?
        .is_some()
        {
            self.buffer.push(value);
        }
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, BoxError> {
        let records = bincode::serialize(&self.buffer)
            .map_err(|e| CassandraSinkError::Encoding(format!("records to keep: {e}")))?;
        self.buffer.clear();
        let c = Committable {
            run_id: self.run_id.clone(),
            subtask: self.subtask,
            checkpoint_id,
            records,
        };
        Ok(bincode::serialize(&c)
            .map_err(|e| CassandraSinkError::Encoding(format!("a committable: {e}")))?)
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), BoxError> {
        for c in committables {
            self.commit_one(c)?;
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), BoxError> {
        self.buffer.clear();
        Ok(())
    }
}
