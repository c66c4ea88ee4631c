//! The writer of one parallel instance of the at-least-once sink (Flink's
//! `CassandraSinkBase`): maps and binds every record at once (a malformed one fails the job or
//! is skipped there, before anything is sent), sends it asynchronously, and waits for every
//! request in flight before a checkpoint barrier goes on.

use crate::error::CassandraSinkError;
use crate::executor::Executor;
use crate::metrics::WriterMetrics;
use crate::sink::{OnMalformed, Settings};
use fjord::sinks::SinkWriter;
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;

pub(crate) struct CassandraWriter<T> {
    settings: Arc<Settings<T>>,
    executor: Executor,
    metrics: Arc<WriterMetrics>,
    subtask: String,
}

impl<T: 'static> CassandraWriter<T> {
    pub(crate) fn open(
        settings: Arc<Settings<T>>,
        ctx: &RuntimeContext,
    ) -> Result<Self, CassandraSinkError> {
        let metrics = Arc::new(WriterMetrics::new(ctx));
        let executor = Executor::open(&settings, metrics.clone())?;
        Ok(CassandraWriter {
            settings,
            executor,
            metrics,
            subtask: ctx.task_name_with_subtasks(),
        })
    }
}

/// Maps and binds `record`; `Ok(None)` when it is malformed and skipped.
pub(crate) fn bind_record<T: 'static>(
    settings: &Settings<T>,
    executor: &Executor,
    metrics: &WriterMetrics,
    subtask: &str,
    record: &T,
) -> Result<Option<scylla::statement::bound::BoundStatement>, CassandraSinkError> {
    let bound = settings
        .mapper
        .map(record)
        .and_then(|row| executor.bind(row));
    match bound {
        Ok(b) => Ok(Some(b)),
        Err(problem) => match settings.on_malformed {
            OnMalformed::Fail => Err(CassandraSinkError::Malformed(problem)),
            OnMalformed::Skip => {
                tracing::warn!(sink = %subtask, "skipping a malformed record: {problem}");
                metrics.skipped.inc();
                Ok(None)
            }
        },
    }
}

impl<T: Send + 'static> SinkWriter<T> for CassandraWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        if let Some(bound) = bind_record(
            &self.settings,
            &self.executor,
            &self.metrics,
            &self.subtask,
            &value,
        )? {
            self.executor.submit(bound)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.executor.drain()?)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        // On failure or cancellation nothing more is awaited; at the end of input flush ran.
        Ok(())
    }
}
