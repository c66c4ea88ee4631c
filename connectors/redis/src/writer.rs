//! The writer of one parallel instance of the Redis sink: one connection, one pipeline.

use crate::error::RedisSinkError;
use crate::metrics::WriterMetrics;
use crate::sink::{OnMalformed, Settings};
use fjord::sinks::SinkWriter;
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct RedisWriter<T> {
    settings: Arc<Settings<T>>,
    connection: redis::Connection,
    pipe: redis::Pipeline,
    /// Commands and records in `pipe`.
    commands: usize,
    records: u64,
    /// When the first command of the current batch was buffered.
    oldest: Option<Instant>,
    metrics: WriterMetrics,
    subtask: String,
}

impl<T> RedisWriter<T> {
    /// Connects to the server.
    ///
    /// # Errors
    /// [`RedisSinkError::Connect`] if the server cannot be reached in the connect timeout or
    /// refuses the connection (authentication, database).
    pub(crate) fn open(
        settings: Arc<Settings<T>>,
        ctx: &RuntimeContext,
    ) -> Result<Self, RedisSinkError> {
        let connect = |e| RedisSinkError::Connect {
            url: settings.url.clone(),
            source: e,
        };
        let connection = settings
            .client
            .get_connection_with_timeout(settings.connect_timeout)
            .map_err(connect)?;
        connection
            .set_read_timeout(Some(settings.response_timeout))
            .map_err(connect)?;
        connection
            .set_write_timeout(Some(settings.response_timeout))
            .map_err(connect)?;
        Ok(RedisWriter {
            connection,
            pipe: redis::pipe(),
            commands: 0,
            records: 0,
            oldest: None,
            metrics: WriterMetrics::new(ctx),
            subtask: ctx.task_name_with_subtasks(),
            settings,
        })
    }

    /// Sends the buffered commands and waits for every reply.
    fn send(&mut self) -> Result<(), RedisSinkError> {
        if self.commands == 0 {
            return Ok(());
        }
        let result = self.pipe.query::<()>(&mut self.connection);
        let (commands, records) = (self.commands, self.records);
        self.pipe.clear();
        self.commands = 0;
        self.records = 0;
        self.oldest = None;
        result.map_err(|source| RedisSinkError::Write {
            url: self.settings.url.clone(),
            commands,
            source,
        })?;
        self.metrics.flushes.inc();
        self.metrics.commands.add(commands as u64);
        self.metrics.records.add(records);
        Ok(())
    }
}

impl<T: Send + 'static> SinkWriter<T> for RedisWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let write = match self.settings.mapper.map(&value) {
            Ok(w) => w,
            Err(problem) => match self.settings.on_malformed {
                OnMalformed::Fail => return Err(Box::new(RedisSinkError::Malformed(problem))),
                OnMalformed::Skip => {
                    tracing::warn!(sink = %self.subtask, "skipping a malformed record: {problem}");
                    self.metrics.skipped.inc();
                    return Ok(());
                }
            },
        };
        self.commands += write.append_to(&mut self.pipe);
        self.records += 1;
        let oldest = *self.oldest.get_or_insert_with(Instant::now);
        if self.commands >= self.settings.max_batch_size
            || oldest.elapsed() >= self.settings.flush_interval
        {
            self.send()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.send()?)
    }
}
