//! The `datagen` source: rows from sequences and random values, optionally rate-limited
//! (Flink's datagen connector). Options: `number-of-rows`, `rows-per-second` (default
//! 10000), and per field `fields.<f>.kind` = `sequence` (`start`, `end`) or `random` (`min`,
//! `max`, `length` for strings, `max-past` in ms for timestamps).

use crate::plan::TableDef;
use crate::types::{DataType, Row, Value};
use fjord::{BoxError, RuntimeContext, Source, SourceOutput, SourceReader, SourceStatus};
use rand::Rng;
use std::time::{Duration, Instant};

/// How one field is generated.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldGen {
    /// `start + row index`, up to `end`.
    Sequence {
        /// First value.
        start: i64,
        /// Last value (inclusive).
        end: i64,
    },
    /// A random value.
    Random {
        /// Smallest number.
        min: f64,
        /// Largest number.
        max: f64,
        /// String length.
        length: usize,
        /// Timestamps go back at most this many ms from now.
        max_past: i64,
    },
}

/// The options of a datagen table.
#[derive(Debug, Clone, PartialEq)]
pub struct DatagenConfig {
    /// Rows in total (`None`: unbounded).
    pub rows: Option<u64>,
    /// Rows per second over all subtasks.
    pub rows_per_second: f64,
    /// Per column: its type and generator.
    pub fields: Vec<(DataType, FieldGen)>,
}

fn number<T: std::str::FromStr>(table: &TableDef, key: &str) -> Result<Option<T>, String> {
    table
        .options
        .get(key)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| format!("option '{key}' = '{v}' is not a number"))
        })
        .transpose()
}

impl DatagenConfig {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// Unknown options or fields, bad numbers, a sequence on a type without one.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        for key in table.options.keys() {
            let ok = match key.strip_prefix("fields.") {
                Some(rest) => match rest.rsplit_once('.') {
                    Some((field, opt)) => {
                        if table.schema.index_of(field).is_none() {
                            return Err(format!(
                                "option '{key}' names no column; the table has: {}",
                                table.schema.names()
                            ));
                        }
                        matches!(
                            opt,
                            "kind" | "start" | "end" | "min" | "max" | "length" | "max-past"
                        )
                    }
                    None => false,
                },
                None => matches!(
                    key.as_str(),
                    "connector" | "number-of-rows" | "rows-per-second"
                ),
            };
            if !ok {
                return Err(format!(
                    "unsupported option '{key}'; datagen takes number-of-rows, rows-per-second and fields.<column>.kind|start|end|min|max|length|max-past"
                ));
            }
        }
        let mut rows: Option<u64> = number(table, "number-of-rows")?;
        let rows_per_second: f64 = number(table, "rows-per-second")?.unwrap_or(10_000.0);
        if rows_per_second <= 0.0 {
            return Err("option 'rows-per-second' must be above 0".into());
        }
        let mut fields = Vec::new();
        for c in &table.schema.columns {
            let f = |opt: &str| format!("fields.{}.{opt}", c.name);
            let kind = table
                .options
                .get(&f("kind"))
                .map_or("random", String::as_str);
            let generator = match kind {
                "sequence" => {
                    if !(c.data_type.is_numeric() || c.data_type == DataType::String) {
                        return Err(format!(
                            "column '{}' is {}; sequences are for numbers (TINYINT to DOUBLE) and STRING",
                            c.name, c.data_type
                        ));
                    }
                    let (Some(start), Some(end)) = (
                        number::<i64>(table, &f("start"))?,
                        number::<i64>(table, &f("end"))?,
                    ) else {
                        return Err(format!(
                            "a sequence needs '{}' and '{}'",
                            f("start"),
                            f("end")
                        ));
                    };
                    if end < start {
                        return Err(format!("'{}' is below '{}'", f("end"), f("start")));
                    }
                    let len = (end - start) as u64 + 1;
                    rows = Some(rows.map_or(len, |r| r.min(len)));
                    FieldGen::Sequence { start, end }
                }
                "random" if c.data_type.is_composite() => {
                    return Err(format!(
                        "column '{}' is {}; datagen generates only scalar columns (build the value in the query instead, e.g. ROW(a, b) or ARRAY[a, b])",
                        c.name, c.data_type
                    ));
                }
                "random" => {
                    let (dmin, dmax) = match c.data_type {
                        DataType::Int => (f64::from(i32::MIN), f64::from(i32::MAX)),
                        DataType::BigInt => (i64::MIN as f64, i64::MAX as f64),
                        DataType::TinyInt => (f64::from(i8::MIN), f64::from(i8::MAX)),
                        DataType::SmallInt => (f64::from(i16::MIN), f64::from(i16::MAX)),
                        DataType::Float => (f64::from(f32::MIN), f64::from(f32::MAX)),
                        // The largest magnitude the type holds (its integer digits).
                        DataType::Decimal(p, s) => {
                            let m = 10f64.powi(i32::from(p - s)) - 1.0;
                            (-m, m)
                        }
                        _ => (f64::MIN, f64::MAX),
                    };
                    let min = number::<f64>(table, &f("min"))?.unwrap_or(dmin);
                    let max = number::<f64>(table, &f("max"))?.unwrap_or(dmax);
                    if max < min {
                        return Err(format!("'{}' is below '{}'", f("max"), f("min")));
                    }
                    FieldGen::Random {
                        min,
                        max,
                        length: number(table, &f("length"))?.unwrap_or(100),
                        max_past: number(table, &f("max-past"))?.unwrap_or(0),
                    }
                }
                other => {
                    return Err(format!(
                        "'{}' = '{other}' must be 'sequence' or 'random'",
                        f("kind")
                    ));
                }
            };
            fields.push((c.data_type, generator));
        }
        Ok(DatagenConfig {
            rows,
            rows_per_second,
            fields,
        })
    }
}

/// The datagen source (parallel: each subtask makes a contiguous share of the rows).
#[derive(Debug, Clone)]
pub struct DatagenSource {
    /// Its options.
    pub config: DatagenConfig,
}

struct DatagenReader {
    config: DatagenConfig,
    /// Next row index, and the end of this subtask's share (exclusive; `None`: unbounded).
    next: u64,
    end: Option<u64>,
    /// Further ranges `[from, to)` to read after this one (after a restore at another
    /// parallelism a reader may hold several), last first.
    pending: Vec<(u64, u64)>,
    /// Rows emitted since the reader started (for the rate limit).
    emitted: u64,
    rate: f64,
    started: Option<Instant>,
    rng: rand::rngs::StdRng,
}

impl Source<Row> for DatagenSource {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<Row>>, BoxError> {
        let (p, i) = (ctx.parallelism.max(1) as u64, ctx.subtask_index as u64);
        let (next, end) = match self.config.rows {
            Some(n) => (n * i / p, Some(n * (i + 1) / p)),
            None => (0, None),
        };
        Ok(Box::new(DatagenReader {
            config: self.config.clone(),
            next,
            end,
            pending: Vec::new(),
            emitted: 0,
            rate: self.config.rows_per_second / p as f64,
            started: None,
            rng: rand::SeedableRng::from_os_rng(),
        }))
    }
}

impl DatagenReader {
    fn row(&mut self, index: u64) -> Row {
        let mut row = Vec::with_capacity(self.config.fields.len());
        for (t, g) in &self.config.fields {
            row.push(match g {
                FieldGen::Sequence { start, .. } => {
                    let v = start + index as i64;
                    match t {
                        DataType::Int => Value::Int(v as i32),
                        DataType::Double => Value::Double(v as f64),
                        DataType::String => Value::String(v.to_string()),
                        DataType::BigInt => Value::BigInt(v),
                        // TINYINT, SMALLINT, FLOAT, DECIMAL: as CAST from BIGINT.
                        t => crate::expr::cast(Value::BigInt(v), *t).unwrap_or(Value::Null),
                    }
                }
                FieldGen::Random {
                    min,
                    max,
                    length,
                    max_past,
                } => match t {
                    DataType::Boolean => Value::Boolean(self.rng.random()),
                    DataType::Int => {
                        Value::Int(self.rng.random_range(*min as i64..=*max as i64) as i32)
                    }
                    DataType::BigInt => {
                        Value::BigInt(self.rng.random_range(*min as i64..=*max as i64))
                    }
                    DataType::Double => Value::Double(if max > min {
                        self.rng.random_range(*min..*max)
                    } else {
                        *min
                    }),
                    DataType::String => Value::String(
                        (0..*length)
                            .map(|_| char::from(self.rng.random_range(b'a'..=b'z')))
                            .collect(),
                    ),
                    DataType::Timestamp => Value::Timestamp(recent(&mut self.rng, *max_past)),
                    DataType::TimestampLtz => Value::TimestampLtz(recent(&mut self.rng, *max_past)),
                    DataType::Date => Value::Date(crate::types::date_of_timestamp(recent(
                        &mut self.rng,
                        *max_past,
                    ))),
                    DataType::TinyInt | DataType::SmallInt => crate::expr::cast(
                        Value::BigInt(self.rng.random_range(*min as i64..=*max as i64)),
                        *t,
                    )
                    .unwrap_or(Value::Null),
                    DataType::Float | DataType::Decimal(..) => crate::expr::cast(
                        Value::Double(if max > min {
                            self.rng.random_range(*min..*max)
                        } else {
                            *min
                        }),
                        *t,
                    )
                    .unwrap_or(Value::Null),
                    DataType::Time(p) => Value::Time(
                        crate::types::truncate_time(self.rng.random_range(0..86_400_000), *p),
                        *p,
                    ),
                    DataType::Bytes => {
                        Value::Bytes((0..*length).map(|_| self.rng.random()).collect())
                    }
                    // Refused when the table is planned.
                    DataType::Interval
                    | DataType::Row(_)
                    | DataType::Array(_)
                    | DataType::Map(..) => Value::Null,
                },
            });
        }
        row
    }
}

/// Now, in epoch milliseconds, minus a random time up to `max_past` ms (Flink's
/// `fields.#.max-past` for TIMESTAMP, TIMESTAMP_LTZ and DATE columns).
fn recent(rng: &mut impl Rng, max_past: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    now - if max_past > 0 {
        rng.random_range(0..=max_past)
    } else {
        0
    }
}

/// Rows a poll emits at most.
const BATCH: u64 = 1000;

impl SourceReader<Row> for DatagenReader {
    fn poll_next(&mut self, output: &mut SourceOutput<'_, Row>) -> Result<SourceStatus, BoxError> {
        while self.end.is_some_and(|e| self.next >= e) {
            match self.pending.pop() {
                Some((from, to)) => (self.next, self.end) = (from, Some(to)),
                None => return Ok(SourceStatus::Finished),
            }
        }
        let since = *self.started.get_or_insert_with(Instant::now);
        let allowed = (since.elapsed().as_secs_f64() * self.rate) as u64 + 1;
        let mut budget = allowed.saturating_sub(self.emitted).min(BATCH);
        if let Some(e) = self.end {
            budget = budget.min(e - self.next);
        }
        if budget == 0 {
            // Wait (briefly) until the next row is due.
            let due = Duration::from_secs_f64(self.emitted as f64 / self.rate);
            std::thread::sleep(
                due.saturating_sub(since.elapsed())
                    .min(Duration::from_millis(20)),
            );
            return Ok(SourceStatus::NothingAvailable);
        }
        for _ in 0..budget {
            let row = self.row(self.next);
            output.collect(row);
            self.next += 1;
            self.emitted += 1;
        }
        Ok(SourceStatus::MoreAvailable)
    }

    /// Bounded: the row ranges left, as splits, so a restore at another parallelism deals
    /// them out again and every row is still made exactly once. Unbounded (random only):
    /// no splits; the position is kept per subtask.
    fn snapshot_splits(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let Some(end) = self.end else {
            return Ok(None);
        };
        let mut ranges = vec![(self.next, end)];
        ranges.extend(self.pending.iter().rev().copied());
        Ok(Some(
            ranges
                .into_iter()
                .filter(|(from, to)| from < to)
                .map(|(from, to)| [from.to_le_bytes(), to.to_le_bytes()].concat())
                .collect(),
        ))
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        let mut ranges = Vec::with_capacity(splits.len());
        for s in splits {
            let (from, to) = s
                .split_at_checked(8)
                .ok_or("a datagen split must be 16 bytes")?;
            let from = u64::from_le_bytes(from.try_into().map_err(|_| "bad datagen split")?);
            let to = u64::from_le_bytes(to.try_into().map_err(|_| "bad datagen split")?);
            ranges.push((from, to));
        }
        ranges.reverse();
        self.pending = ranges;
        (self.next, self.end) = (0, Some(0));
        Ok(())
    }

    fn snapshot_state(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(self.next.to_le_bytes().to_vec()))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| "datagen position must be 8 bytes")?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}
