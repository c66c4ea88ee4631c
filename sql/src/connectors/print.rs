//! The `print` sink: one line per row on stdout (or stderr), as Flink's print connector
//! writes them: `[identifier[:subtask]> ]+I[v1, v2, ...]`.

use crate::changelog::{Change, RowKind};
use crate::plan::TableDef;
use crate::types::{Row, Value, format_timestamp_iso};
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

/// An inserted row as Flink's print connector shows it: the fields' Java `toString`, so
/// `+I[1, abc, null, true, 1.0E10, 2024-01-01T00:00:10.500]` (checked against Flink 2.3).
pub fn format_row(row: &[Value]) -> String {
    format_change(RowKind::Insert, row)
}

/// A change as Flink's print connector shows it: its kind, then the fields
/// (`-U[alice, 1]`, `+U[alice, 2]`).
pub fn format_change(kind: RowKind, row: &[Value]) -> String {
    let fields: Vec<String> = row
        .iter()
        .map(|v| match v {
            Value::Null => "null".to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Timestamp(ms) => format_timestamp_iso(*ms),
            // Java's `BigDecimal.toString` (`1.5E-8` for tiny values).
            Value::Decimal(d) => d.to_java_string(),
            Value::Time(ms, _) => crate::types::format_time_iso(*ms),
            // Java's `Arrays.toString` of the byte[]: signed bytes.
            Value::Bytes(b) => {
                let items: Vec<String> = b.iter().map(|x| (*x as i8).to_string()).collect();
                format!("[{}]", items.join(", "))
            }
            other => other.to_sql_string().unwrap_or_default(),
        })
        .collect();
    format!("{}[{}]", kind.short(), fields.join(", "))
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

impl PrintSink {
    fn writer(&self, ctx: &RuntimeContext) -> PrintWriter {
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
        PrintWriter {
            prefix,
            stderr: self.config.stderr,
        }
    }
}

impl Sink<Row> for PrintSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<Row>>, BoxError> {
        Ok(Box::new(self.writer(ctx)))
    }
}

impl Sink<Change> for PrintSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<Change>>, BoxError> {
        Ok(Box::new(self.writer(ctx)))
    }
}

impl PrintWriter {
    fn print(&mut self, kind: RowKind, row: &[Value]) -> Result<(), BoxError> {
        let line = format!("{}{}", self.prefix, format_change(kind, row));
        if self.stderr {
            writeln!(std::io::stderr().lock(), "{line}")?;
        } else {
            writeln!(std::io::stdout().lock(), "{line}")?;
        }
        Ok(())
    }
}

impl SinkWriter<Row> for PrintWriter {
    fn write(&mut self, value: Row, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.print(RowKind::Insert, &value)
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        std::io::stdout().flush()?;
        Ok(())
    }
}

impl SinkWriter<Change> for PrintWriter {
    fn write(&mut self, value: Change, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.print(value.kind, &value.row)
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        std::io::stdout().flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_print_as_flink_prints_them() {
        use crate::types::Value;
        // The line Flink 2.3's print connector wrote for the same values.
        let row = [
            Value::Null,
            Value::String("a b".into()),
            Value::Double(1e10),
            Value::Timestamp(1_704_067_210_500),
            Value::Null,
        ];
        assert_eq!(
            super::format_row(&row),
            "+I[null, a b, 1.0E10, 2024-01-01T00:00:10.500, null]"
        );
        let row = [
            Value::Int(1),
            Value::Null,
            Value::Double(20.0),
            Value::Timestamp(1_704_067_210_000),
            Value::Boolean(true),
        ];
        assert_eq!(
            super::format_row(&row),
            "+I[1, null, 20.0, 2024-01-01T00:00:10, true]"
        );
        // The lines Flink 2.3's print connector wrote for the newer types.
        let decimal = |text| Value::Decimal(crate::decimal::parse(text, 12, 10).unwrap().unwrap());
        let row = [
            Value::TinyInt(-128),
            Value::SmallInt(30000),
            Value::Float(3.0e10),
            decimal("0.0000000015"),
            decimal("0.1"),
            Value::Bytes(b"hi".to_vec()),
            Value::Time(0, 0),
            Value::Time(3_723_500, 1),
        ];
        assert_eq!(
            super::format_row(&row),
            "+I[-128, 30000, 3.0000001E10, 1.5E-9, 0.1000000000, [104, 105], 00:00, 01:02:03.500]"
        );
        let row = [Value::Bytes(vec![0xCA, 0xFE])];
        assert_eq!(super::format_row(&row), "+I[[-54, -2]]");
    }
}
