//! The `print` sink: one line per row on stdout (or stderr), as Flink's print connector
//! writes them: `[identifier[:subtask]> ]+I[v1, v2, ...]`.

use crate::plan::TableDef;
use crate::types::{Row, Value};
use fjord::{BoxError, RuntimeContext, Sink, SinkWriter, Timestamp};
use std::io::Write;

/// The options of a print table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintConfig {
    /// `print-identifier`
    pub identifier: String,
    /// `standard-error`
    pub stderr: bool,
}

impl PrintConfig {
    /// Reads the options.
    ///
    /// # Errors
    /// Unknown options or a bad `standard-error` value.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        super::only_options(&table.options, &["print-identifier", "standard-error"])?;
        Ok(PrintConfig {
            identifier: table
                .options
                .get("print-identifier")
                .cloned()
                .unwrap_or_default(),
            stderr: super::bool_option(&table.options, "standard-error", false)?,
        })
    }
}

/// A row as the print connector shows it: `+I[1, abc, NULL]`.
pub fn format_row(row: &[Value]) -> String {
    let fields: Vec<String> = row
        .iter()
        .map(|v| v.to_sql_string().unwrap_or_else(|| "NULL".into()))
        .collect();
    format!("+I[{}]", fields.join(", "))
}

/// Prints rows.
#[derive(Debug, Clone)]
pub struct PrintSink {
    /// Its options.
    pub config: PrintConfig,
}

struct PrintWriter {
    prefix: String,
    stderr: bool,
}

impl Sink<Row> for PrintSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<Row>>, BoxError> {
        // Flink's PrintSinkOutputWriter: "id:2> " with parallelism above 1, "id> " or "2> ".
        let mut prefix = self.config.identifier.clone();
        if ctx.parallelism > 1 {
            if !prefix.is_empty() {
                prefix.push(':');
            }
            prefix.push_str(&(ctx.subtask_index + 1).to_string());
        }
        if !prefix.is_empty() {
            prefix.push_str("> ");
        }
        Ok(Box::new(PrintWriter {
            prefix,
            stderr: self.config.stderr,
        }))
    }
}

impl SinkWriter<Row> for PrintWriter {
    fn write(&mut self, value: Row, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let line = format!("{}{}", self.prefix, format_row(&value));
        if self.stderr {
            writeln!(std::io::stderr().lock(), "{line}")?;
        } else {
            writeln!(std::io::stdout().lock(), "{line}")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        std::io::stdout().flush()?;
        Ok(())
    }
}
