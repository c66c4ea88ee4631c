//! `print` and `print_to_err`.

use super::{Sink, SinkWriter};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::printable::Printable;
use crate::types::Timestamp;
use std::io::Write;

/// Where printed records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintTarget {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Prints every record on its own line. With parallelism above 1 each line starts with the
/// one-based subtask index and `> `, as in Flink (`2> (hello,1)`); with an identifier the
/// prefix is `identifier:2> ` (or `identifier> ` at parallelism 1).
#[derive(Debug, Clone)]
pub struct PrintSink {
    target: PrintTarget,
    identifier: Option<String>,
}

impl PrintSink {
    /// A print sink for stdout or stderr.
    pub fn new(target: PrintTarget) -> Self {
        PrintSink {
            target,
            identifier: None,
        }
    }

    /// Adds an identifier to the prefix (Flink's `print(sinkIdentifier)`).
    pub fn with_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    /// The prefix Flink prints before each record for this subtask.
    pub fn prefix(&self, subtask_index: usize, parallelism: usize) -> String {
        match (&self.identifier, parallelism > 1) {
            (Some(id), true) => format!("{id}:{}> ", subtask_index + 1),
            (Some(id), false) => format!("{id}> "),
            (None, true) => format!("{}> ", subtask_index + 1),
            (None, false) => String::new(),
        }
    }
}

impl<T: Printable + Send + 'static> Sink<T> for PrintSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(PrintWriter {
            target: self.target,
            prefix: self.prefix(ctx.subtask_index, ctx.parallelism),
            line: String::new(),
        }))
    }
}

struct PrintWriter {
    target: PrintTarget,
    prefix: String,
    line: String,
}

impl<T: Printable + Send> SinkWriter<T> for PrintWriter {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.line.clear();
        self.line.push_str(&self.prefix);
        value.print_to(&mut self.line);
        self.line.push('\n');
        // One write per line keeps lines of parallel subtasks from interleaving.
        let result = match self.target {
            PrintTarget::Stdout => std::io::stdout().lock().write_all(self.line.as_bytes()),
            PrintTarget::Stderr => std::io::stderr().lock().write_all(self.line.as_bytes()),
        };
        match result {
            // A closed pipe (`fjord run ... | head`) is not a job failure worth a stack of errors.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => Ok(other?),
        }
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        match self.target {
            PrintTarget::Stdout => std::io::stdout().flush()?,
            PrintTarget::Stderr => std::io::stderr().flush()?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_flink() {
        let plain = PrintSink::new(PrintTarget::Stdout);
        assert_eq!(plain.prefix(0, 1), "");
        assert_eq!(plain.prefix(1, 4), "2> ");
        let named = plain.with_identifier("out");
        assert_eq!(named.prefix(0, 1), "out> ");
        assert_eq!(named.prefix(2, 3), "out:3> ");
    }
}
