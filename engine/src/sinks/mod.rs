//! Sinks: the `Sink` trait for custom sinks and the built-in ones.
//!
//! A [`Sink`] is a factory shared by all parallel instances; each instance gets its own
//! [`SinkWriter`] (Flink's `Sink`/`SinkWriter`, the successor of `SinkFunction`).

pub mod bulk;
mod collect;
mod file;
mod file_2pc;
mod print;
pub mod rolling;
pub mod serde_formats;
mod socket;
mod two_phase;

pub use bulk::{BulkFormat, BulkWriter, Encoder, LineEncoder, RowFormat};
pub use collect::{CollectSink, CollectedOutput, FnSink};
pub use file::{CsvFileSink, TextFileSink, WriteMode};
pub use file_2pc::{DEFAULT_CHECK_INTERVAL, ExactlyOnceFileSink, FormatFileSink};
pub use print::{PrintSink, PrintTarget};
pub use rolling::RollingPolicy;
pub use serde_formats::{CsvFormat, JsonLinesEncoder};
pub use socket::SocketSink;
pub(crate) use two_phase::TwoPhaseSinkOp;
pub use two_phase::{TransactionalSink, TransactionalWriter};

use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::operators::output::{Lifecycle, Output, guard};
use crate::types::{StreamRecord, Timestamp};
use std::sync::Arc;

/// A factory of sink writers, one per parallel instance.
pub trait Sink<T>: Send + Sync + 'static {
    /// Creates the writer of one parallel instance.
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError>;
}

/// Writes the records of one parallel instance of a sink.
pub trait SinkWriter<T>: Send {
    /// Writes one record.
    fn write(&mut self, value: T, timestamp: Option<Timestamp>) -> Result<(), BoxError>;

    /// Makes everything written so far durable or visible (Flink's `SinkWriter.flush`).
    /// Called before every checkpoint barrier leaves the task, so a checkpoint never covers
    /// records still in a buffer (at-least-once), at the end of input, and when the task sends
    /// its partly filled buffers on (buffer timeout, idle input) after records were written.
    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Releases resources; called once, also on failure and cancellation.
    fn close(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Checkpoint `checkpoint_id` completed on every task (Flink's
    /// `CheckpointListener::notifyCheckpointComplete`); increasing ids, never one that did not
    /// complete. For output that must become visible exactly once, use a
    /// [`TransactionalSink`] instead.
    fn notify_checkpoint_complete(&mut self, _checkpoint_id: u64) -> Result<(), BoxError> {
        Ok(())
    }

    /// Checkpoint `checkpoint_id` was given up (Flink's
    /// `CheckpointListener::notifyCheckpointAborted`; best effort, see the function traits).
    fn notify_checkpoint_aborted(&mut self, _checkpoint_id: u64) -> Result<(), BoxError> {
        Ok(())
    }
}

/// An error of a sink writing to a known target; the runtime reports it with the sink's name
/// and subtask.
#[derive(Debug, thiserror::Error)]
#[error("{message} (writing to {target})")]
pub struct SinkError {
    /// The file, directory or address being written.
    pub target: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl SinkError {
    /// A boxed sink error, ready to return from a writer.
    pub fn boxed(target: impl Into<String>, message: impl Into<String>) -> BoxError {
        Box::new(SinkError {
            target: target.into(),
            message: message.into(),
        })
    }
}

pub(crate) fn sink_failure(error: FjordError) -> FjordError {
    match error {
        FjordError::UserFunction { location, source } => match source.downcast::<SinkError>() {
            Ok(e) => FjordError::Sink {
                location,
                target: e.target,
                message: e.message,
            },
            Err(source) => FjordError::UserFunction { location, source },
        },
        other => other,
    }
}

/// Runs a sink writer at the end of a chain.
pub(crate) struct SinkOp<T> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) sink: Arc<dyn Sink<T>>,
    pub(crate) writer: Option<Box<dyn SinkWriter<T>>>,
    /// Records were written since the writer's last flush.
    pub(crate) unflushed: bool,
}

impl<T> SinkOp<T> {
    fn call(
        &mut self,
        f: impl FnOnce(&mut dyn SinkWriter<T>) -> Result<(), BoxError>,
    ) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(FjordError::Internal(format!(
                "sink {} used before open",
                self.ctx.location()
            )));
        };
        guard(&self.ctx, || f(writer.as_mut())).map_err(sink_failure)
    }
}

impl<T: Send + 'static> Lifecycle for SinkOp<T> {
    fn open(&mut self) -> Result<()> {
        let sink = self.sink.clone();
        let ctx = &self.ctx;
        let writer = guard(ctx, || sink.create_writer(ctx)).map_err(sink_failure)?;
        self.writer = Some(writer);
        Ok(())
    }
    fn emit_watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        // The task flushes its chain before every checkpoint barrier goes on: what the
        // checkpoint covers must be out of the writer's buffers.
        if !std::mem::take(&mut self.unflushed) {
            return Ok(());
        }
        self.call(|w| w.flush())
    }
    fn finish(&mut self) -> Result<()> {
        self.unflushed = false;
        self.call(|w| w.flush())
    }
    fn close(&mut self) -> Result<()> {
        if self.writer.is_none() {
            return Ok(());
        }
        let result = self.call(|w| w.close());
        self.writer = None;
        result
    }
    fn notify_checkpoint(
        &mut self,
        notice: crate::operators::output::CheckpointNotice,
    ) -> Result<()> {
        use crate::operators::output::CheckpointNotice;
        match notice {
            CheckpointNotice::Complete(id) => self.call(|w| w.notify_checkpoint_complete(id)),
            CheckpointNotice::Aborted(id) => self.call(|w| w.notify_checkpoint_aborted(id)),
        }
    }
}

impl<T: Send + 'static> Output<T> for SinkOp<T> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        match self.writer.as_mut() {
            Some(w) => {
                self.unflushed = true;
                guard(&self.ctx, || w.write(record.value, record.timestamp)).map_err(sink_failure)
            }
            None => Err(FjordError::Internal("sink not open".into())),
        }
    }
}
