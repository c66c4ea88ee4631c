//! The `blackhole` sink: accepts every row and drops it (for benchmarks).

use fjord::{BoxError, Data, RuntimeContext, Sink, SinkWriter, Timestamp};

/// Drops every row (appended rows and changes alike).
#[derive(Debug, Clone, Copy, Default)]
pub struct BlackholeSink;

impl<T: Data> Sink<T> for BlackholeSink {
    fn create_writer(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(BlackholeSink))
    }
}

impl<T: Data> SinkWriter<T> for BlackholeSink {
    fn write(&mut self, _value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        Ok(())
    }
}
