//! The `blackhole` sink: accepts every row and drops it (for benchmarks).

use crate::types::Row;
use fjord::{BoxError, RuntimeContext, Sink, SinkWriter, Timestamp};

/// Drops every row.
#[derive(Debug, Clone, Copy, Default)]
pub struct BlackholeSink;

impl Sink<Row> for BlackholeSink {
    fn create_writer(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<Row>>, BoxError> {
        Ok(Box::new(BlackholeSink))
    }
}

impl SinkWriter<Row> for BlackholeSink {
    fn write(&mut self, _value: Row, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        Ok(())
    }
}
