//! The `filesystem` connector: reads a file or the files of a directory (`csv`,
//! newline-delimited `json`, `raw` lines, `parquet`), bounded or continuously, and writes part
//! files into a directory.
//!
//! Reading: files are listed when the job starts (sorted; names starting with `.` or `_`
//! are skipped, as Flink does) and dealt to the subtasks round-robin; a reader's checkpointed
//! position is (file, rows read). With `source.monitor-interval` the source is unbounded and
//! lists the path again at that interval ([`super::filesystem_monitor`], which also reads a
//! `path` given as a URL). Writing: subtask `i` writes `part-<i>-<n>` with the first
//! `n` that does not exist yet, so nothing already written is overwritten (at-least-once).
//!
//! A sink `path` that is a URL (`file:///dir`, `s3://bucket/dir`, `hdfs://namenode:8020/dir`)
//! goes to the engine's exactly-once file sink instead (Flink's `FileSink`): rows are encoded
//! by [`EncodeLines`] and written as part files committed with checkpoints. The `parquet`
//! and `avro` formats always go there (a local path is taken as `file://`), through the
//! [`parquet`](super::parquet) and [`avro_file`](super::avro_file) bulk formats; parts roll
//! at every checkpoint and by the `sink.rolling-policy.*` options (time checked every
//! `sink.rolling-policy.check-interval`, also without records).

use super::filesystem_monitor::{self as monitor, Monitor};
use super::format::{self, Format};
use crate::plan::TableDef;
use crate::types::{Row, Schema};
use fjord::sinks::RollingPolicy;
use fjord::{
    BoxError, RuntimeContext, Sink, SinkError, SinkWriter, Source, SourceError, SourceOutput,
    SourceReader, SourceStatus, Timestamp,
};
use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The options of a filesystem table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileConfig {
    /// `path`: a file or directory (a directory for sinks).
    pub path: PathBuf,
    /// `format`.
    pub format: FileFormat,
    /// `csv.ignore-parse-errors` / `json.ignore-parse-errors`: a field that does not read
    /// becomes NULL instead of failing the job.
    pub ignore_parse_errors: bool,
    /// The columns.
    pub schema: Schema,
    /// `sink.rolling-policy.file-size` (default 128 MB), `.rollover-interval` and
    /// `.inactivity-interval` (default 30 min each): when the exactly-once sink rolls a part
    /// besides at every checkpoint.
    pub rolling: RollingPolicy,
    /// `source.monitor-interval`: the source is unbounded and lists `path` again at this
    /// interval for new files ([`super::filesystem_monitor`]).
    pub monitor_interval: Option<std::time::Duration>,
    /// `sink.rolling-policy.check-interval` (default 1 min): how often the exactly-once sink
    /// checks an open part's age and inactivity when no record arrives.
    pub check_interval: std::time::Duration,
}

/// A file format of the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// A row format (`csv`, `json`): one line per row.
    Row(Format),
    /// `raw`: one line per row, as its only column ([`super::format_raw`]).
    Raw(super::format_raw::RawFormat),
    /// `parquet`, written by the exactly-once sink only.
    Parquet(fjord_parquet::ParquetOptions),
    /// `avro`: Avro container files, written by the exactly-once sink only.
    Avro(super::avro_file::AvroFileOptions),
}

/// The connector's own options besides `path` and the format's.
const SINK_OPTIONS: &[&str] = &[
    "path",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
    "sink.rolling-policy.inactivity-interval",
    "sink.rolling-policy.check-interval",
    "source.monitor-interval",
];

/// The rolling policy of the `sink.rolling-policy.*` options and the check interval, Flink's
/// defaults where absent.
fn rolling_policy(
    o: &std::collections::BTreeMap<String, String>,
) -> Result<(RollingPolicy, std::time::Duration), String> {
    let duration_or = |key: &str, default: u64| -> Result<std::time::Duration, String> {
        match o.get(key) {
            None => Ok(std::time::Duration::from_secs(default)),
            Some(v) => crate::planner::parse_duration(v)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("option '{key}' = '{v}' is not a duration such as '30 min' or '10s'")
                }),
        }
    };
    let size = match o.get("sink.rolling-policy.file-size") {
        None => 128 << 20,
        Some(v) => super::elasticsearch::memory_size(v)
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!(
                    "option 'sink.rolling-policy.file-size' = '{v}' is not a size such as '128MB'"
                )
            })?,
    };
    let duration = |key: &str| duration_or(key, 30 * 60);
    let policy = RollingPolicy::on_checkpoint()
        .with_part_size(size as u64)
        .with_rollover_interval(duration("sink.rolling-policy.rollover-interval")?)
        .with_inactivity_interval(duration("sink.rolling-policy.inactivity-interval")?);
    Ok((
        policy,
        duration_or("sink.rolling-policy.check-interval", 60)?,
    ))
}

impl FileConfig {
    /// Reads and checks the options; a source's path must exist.
    ///
    /// # Errors
    /// Missing `path`/`format`, unknown options, a path that does not exist.
    pub fn from_table(table: &TableDef, source: bool) -> Result<Self, String> {
        let o = &table.options;
        let (format, ignore) = if o.get("format").map(String::as_str) == Some("raw") {
            let mut allowed = SINK_OPTIONS.to_vec();
            allowed.push("format");
            allowed.extend(super::format_raw::OPTIONS);
            super::only_options(o, &allowed)?;
            let raw = super::format_raw::RawFormat::from_table(&table.schema, o)?;
            (FileFormat::Raw(raw), false)
        } else if o.get("format").map(String::as_str) == Some("parquet") {
            let mut allowed = SINK_OPTIONS.to_vec();
            allowed.push("format");
            allowed.extend(super::parquet::OPTIONS);
            super::only_options(o, &allowed)?;
            super::parquet::schema(&table.schema)?;
            (FileFormat::Parquet(super::parquet::options(o)?), false)
        } else if o.get("format").map(String::as_str) == Some("avro") {
            let mut allowed = SINK_OPTIONS.to_vec();
            allowed.push("format");
            allowed.extend(super::avro_file::OPTIONS);
            super::only_options(o, &allowed)?;
            let options = super::avro_file::options(o)?;
            super::avro_file::schema(&table.schema, options.legacy_timestamps)?;
            (FileFormat::Avro(options), false)
        } else {
            let (format, ignore) = format::from_options(o, SINK_OPTIONS)?;
            if matches!(format, Format::Protobuf(_)) {
                return Err("the protobuf format has no framing of messages in a file (Flink's filesystem connector does not take it either); use it with a message connector (kafka, kinesis, rabbitmq, activemq), or 'json', 'csv' or 'parquet' for files".into());
            }
            if let Format::Avro(avro) = &format {
                return Err(format!(
                    "format '{}' is for message connectors (kafka, rabbitmq, activemq, kinesis); the filesystem connector reads and writes Avro container files with 'format' = 'avro' (a file holds its schema, no registry is needed)",
                    avro.name()
                ));
            }
            (FileFormat::Row(format), ignore)
        };
        let (rolling, check_interval) = rolling_policy(o)?;
        let path = PathBuf::from(o.get("path").ok_or("set 'path' to a file or directory")?);
        let monitor_interval = super::filesystem_monitor::interval(o)?;
        if source && monitor::local(&path).is_some_and(|p| !p.exists()) {
            return Err(format!(
                "path '{}' does not exist; create it or fix 'path'",
                path.display()
            ));
        }
        Ok(FileConfig {
            path,
            format,
            ignore_parse_errors: ignore,
            schema: table.schema.clone(),
            rolling,
            monitor_interval,
            check_interval,
        })
    }
}

impl FileConfig {
    /// The sink's URL when `path` names one (`scheme://...`): the exactly-once file sink.
    /// A `parquet` or `avro` table's local path is made a `file://` URL (bulk formats go to
    /// the exactly-once sink only).
    pub fn url(&self) -> Option<String> {
        if is_url(&self.path) {
            return Some(self.path.display().to_string());
        }
        match self.format {
            FileFormat::Parquet(_) | FileFormat::Avro(_) => {
                let absolute = std::path::absolute(&self.path).unwrap_or(self.path.clone());
                Some(format!("file://{}", absolute.display()))
            }
            FileFormat::Row(_) | FileFormat::Raw(_) => None,
        }
    }

    /// The part files' extension with its dot (`.csv`, `.json`, `.parquet`, `.avro`).
    pub fn extension(&self) -> &'static str {
        match self.format {
            FileFormat::Row(Format::Csv { .. }) => ".csv",
            FileFormat::Row(Format::Json | Format::Avro(_) | Format::Protobuf(_)) => ".json",
            FileFormat::Parquet(_) => ".parquet",
            FileFormat::Raw(_) => ".txt",
            FileFormat::Avro(_) => ".avro",
        }
    }

    /// The row format, or an error for a bulk format (the line-based paths refuse it).
    fn row_format(&self) -> Result<&Format, BoxError> {
        match &self.format {
            FileFormat::Row(f) => Ok(f),
            FileFormat::Raw(_) => Err(SinkError::boxed(
                self.path.display().to_string(),
                "the raw format is not a row format",
            )),
            FileFormat::Parquet(_) | FileFormat::Avro(_) => Err(SinkError::boxed(
                self.path.display().to_string(),
                format!(
                    "the {} format has no lines; it is written by the exactly-once file sink",
                    self.extension().trim_start_matches('.')
                ),
            )),
        }
    }

    /// One row as a line of the table's format (without `\n`).
    fn encode_line(&self, row: &Row) -> Result<Vec<u8>, BoxError> {
        match &self.format {
            FileFormat::Raw(raw) => raw
                .encode(row)
                .map_err(|e| SinkError::boxed(self.path.display().to_string(), e)),
            _ => Ok(format::encode(self.row_format()?, &self.schema, row)?),
        }
    }
}

pub(crate) fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.contains("://"))
}

/// Encodes rows as lines of a table's format, for the exactly-once file sink.
#[derive(Debug, Clone)]
pub struct EncodeLines {
    config: FileConfig,
}

impl EncodeLines {
    /// The encoder of a filesystem table of a row format.
    ///
    /// # Errors
    /// The table's format is not a row format.
    pub fn new(config: &FileConfig) -> Result<Self, BoxError> {
        if !matches!(config.format, FileFormat::Raw(_)) {
            config.row_format()?;
        }
        Ok(EncodeLines {
            config: config.clone(),
        })
    }
}

impl fjord::MapFunction<Row, String> for EncodeLines {
    fn map(&mut self, row: Row) -> Result<String, BoxError> {
        String::from_utf8(self.config.encode_line(&row)?).map_err(|_| {
            SinkError::boxed(
                self.config.path.display().to_string(),
                "a raw BYTES value that is not UTF-8 text cannot be written to a URL path yet; write it to a local directory",
            )
        })
    }
}

/// Reads files: bounded, or continuously with `source.monitor-interval`.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// Its options.
    pub config: FileConfig,
}

enum Open {
    Csv(csv::Reader<Box<dyn BufRead + Send>>),
    /// Lines of JSON (also Avro and protobuf text forms), read into one reused buffer.
    Json(Box<dyn BufRead + Send>, String),
    /// `raw`: lines as they are.
    Raw(Box<dyn BufRead + Send>),
    /// A Parquet or Avro file, decoded whole when opened (Parquet's footer is at its end).
    Decoded(std::vec::IntoIter<Row>),
}

struct FileReader {
    config: FileConfig,
    /// The files to read and how many rows of each were read before (a restored split).
    files: Vec<(PathBuf, u64)>,
    /// Index into `files` and rows already read from it.
    file: usize,
    rows: u64,
    open: Option<Open>,
    record: csv::StringRecord,
    /// The continuous listing (`source.monitor-interval`).
    monitor: Option<Monitor>,
}

impl Source<Row> for FileSource {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<Row>>, BoxError> {
        let p = ctx.parallelism.max(1);
        let monitor = self
            .config
            .monitor_interval
            .map(|i| Monitor::new(i, ctx.subtask_index, p));
        // Continuous: the monitor deals the files out as it finds them.
        let files = if monitor.is_some() {
            Vec::new()
        } else {
            monitor::list(&self.config.path)?
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % p == ctx.subtask_index)
                .map(|(_, f)| (f, 0))
                .collect()
        };
        Ok(Box::new(FileReader {
            config: self.config.clone(),
            files,
            file: 0,
            rows: 0,
            open: None,
            record: csv::StringRecord::new(),
            monitor,
        }))
    }
}

impl FileReader {
    fn open_current(&mut self) -> Result<(), BoxError> {
        let (path, skip) = &self.files[self.file];
        self.rows = *skip;
        let where_ = || path.display().to_string();
        let mut open = match &self.config.format {
            FileFormat::Parquet(_) => {
                let bytes = monitor::read_all(path)?;
                let rows = super::parquet::decode_file(bytes, &self.config.schema)
                    .map_err(|e| SourceError::boxed(where_(), e))?;
                Open::Decoded(rows.into_iter())
            }
            FileFormat::Avro(_) => {
                let bytes = monitor::read_all(path)?;
                let rows = super::avro_file::decode_file(&bytes, &self.config.schema)
                    .map_err(|e| SourceError::boxed(where_(), e))?;
                Open::Decoded(rows.into_iter())
            }
            FileFormat::Row(Format::Csv { delimiter, .. }) => Open::Csv(
                csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .delimiter(*delimiter)
                    .from_reader(monitor::open(path)?),
            ),
            FileFormat::Row(Format::Json | Format::Avro(_) | Format::Protobuf(_)) => {
                Open::Json(monitor::open(path)?, String::new())
            }
            FileFormat::Raw(_) => Open::Raw(monitor::open(path)?),
        };
        // Skip what a restored position says was read already.
        for _ in 0..self.rows {
            let more = match &mut open {
                Open::Csv(r) => r.read_record(&mut self.record)?,
                Open::Json(input, line) => read_text_line(input, line)?,
                Open::Raw(input) => read_line(input, &mut Vec::new())?,
                Open::Decoded(rows) => rows.next().is_some(),
            };
            if !more {
                break;
            }
        }
        self.open = Some(open);
        Ok(())
    }

    /// The next row of the current file, `None` at its end.
    fn next_row(&mut self) -> Result<Option<Row>, BoxError> {
        let file = self.files[self.file].0.display().to_string();
        let row_number = self.rows + 1;
        let position = || format!("{file} row {row_number}");
        let schema = &self.config.schema;
        let ignore = self.config.ignore_parse_errors;
        let hint = if ignore {
            ""
        } else {
            "; fix the file, or set '<format>.ignore-parse-errors' = 'true' to read such fields as NULL"
        };
        match self.open.as_mut().expect("opened") {
            Open::Csv(r) => {
                if !r
                    .read_record(&mut self.record)
                    .map_err(|e| SourceError::boxed(position(), e.to_string()))?
                {
                    return Ok(None);
                }
                let null_literal = match &self.config.format {
                    FileFormat::Row(Format::Csv { null_literal, .. }) => null_literal.as_deref(),
                    _ => None,
                };
                let row = format::decode_csv(&self.record, schema, null_literal, ignore)
                    .map_err(|e| SourceError::boxed(position(), format!("{e}{hint}")))?;
                Ok(Some(row))
            }
            Open::Decoded(rows) => Ok(rows.next()),
            Open::Raw(input) => {
                let mut line = Vec::new();
                if !read_line(input, &mut line)
                    .map_err(|e| SourceError::boxed(position(), e.to_string()))?
                {
                    return Ok(None);
                }
                match &self.config.format {
                    FileFormat::Raw(raw) => Ok(Some(raw.decode(&line))),
                    _ => unreachable!("a raw reader is opened for the raw format only"),
                }
            }
            Open::Json(input, line) => loop {
                if !read_text_line(input, line)? {
                    return Ok(None);
                }
                if line.trim().is_empty() {
                    self.rows += 1;
                    continue;
                }
                match format::decode_json(line, schema, ignore) {
                    Ok(Some(row)) => return Ok(Some(row)),
                    Ok(None) => {
                        self.rows += 1;
                        continue;
                    }
                    Err(e) => {
                        return Err(SourceError::boxed(position(), format!("{e}{hint}")));
                    }
                }
            },
        }
    }
}

impl SourceReader<Row> for FileReader {
    fn poll_next(&mut self, output: &mut SourceOutput<'_, Row>) -> Result<SourceStatus, BoxError> {
        for _ in 0..1000 {
            if self.file >= self.files.len() {
                let Some(monitor) = &mut self.monitor else {
                    return Ok(SourceStatus::Finished);
                };
                let new = monitor.poll(&self.config.path)?;
                if new.is_empty() {
                    return Ok(SourceStatus::NothingAvailable);
                }
                self.files.extend(new.into_iter().map(|f| (f, 0)));
                continue;
            }
            if self.open.is_none() {
                self.open_current()?;
            }
            match self.next_row()? {
                Some(row) => {
                    self.rows += 1;
                    output.collect(row);
                }
                None => {
                    self.open = None;
                    self.file += 1;
                    self.rows = 0;
                }
            }
        }
        Ok(SourceStatus::MoreAvailable)
    }

    /// The files left, each with the rows already read, as splits: a restore at another
    /// parallelism deals them out again and every row is still read exactly once.
    fn snapshot_splits(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let mut splits = Vec::new();
        for (i, (path, skip)) in self.files.iter().enumerate().skip(self.file) {
            let read = if i == self.file && self.open.is_some() {
                self.rows
            } else {
                *skip
            };
            splits.push(serde_json::to_vec(&(path, read))?);
        }
        Ok(Some(splits))
    }

    /// Continuous reading: the files this subtask has taken (every subtask gets all of them
    /// on restore, so none is taken twice).
    fn snapshot_union_state(&mut self, _checkpoint_id: u64) -> Result<Vec<Vec<u8>>, BoxError> {
        self.monitor
            .as_ref()
            .map_or(Ok(Vec::new()), Monitor::snapshot)
    }

    fn restore_union_state(&mut self, items: Vec<Vec<u8>>) -> Result<(), BoxError> {
        match &mut self.monitor {
            Some(monitor) => monitor.restore(items),
            None => Ok(()),
        }
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.files = splits
            .iter()
            .map(|s| serde_json::from_slice::<(PathBuf, u64)>(s))
            .collect::<Result<_, _>>()?;
        (self.file, self.rows, self.open) = (0, 0, None);
        Ok(())
    }
}

/// Reads one line (up to `\n`, which is not kept) into `line`; `false` at the end of input.
/// Reads the next line into `line` (without its `\n` or `\r\n`, as `BufRead::lines`);
/// `false` at the end.
fn read_text_line(input: &mut Box<dyn BufRead + Send>, line: &mut String) -> std::io::Result<bool> {
    line.clear();
    if input.read_line(line)? == 0 {
        return Ok(false);
    }
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    Ok(true)
}

fn read_line(input: &mut Box<dyn BufRead + Send>, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    if input.read_until(b'\n', line)? == 0 {
        return Ok(false);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    Ok(true)
}

/// Writes rows as part files into a directory.
#[derive(Debug, Clone)]
pub struct FileSink {
    /// Its options.
    pub config: FileConfig,
}

struct FileWriter {
    config: FileConfig,
    path: PathBuf,
    /// Unbuffered: a row is in the file when `write` returns, so a checkpoint taken after it
    /// never covers a row that a crash could still lose (the engine does not flush sinks at
    /// checkpoints today).
    out: File,
}

impl Sink<Row> for FileSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<Row>>, BoxError> {
        let dir = &self.config.path;
        let target = || dir.display().to_string();
        std::fs::create_dir_all(dir)
            .map_err(|e| SinkError::boxed(target(), format!("cannot create the directory: {e}")))?;
        if !matches!(self.config.format, FileFormat::Raw(_)) {
            self.config.row_format()?;
        }
        let ext = &self.config.extension()[1..];
        // Bounded: the first free name (a run never overwrites output).
        let path = (0..100_000u32)
            .map(|n| dir.join(format!("part-{}-{n}.{ext}", ctx.subtask_index)))
            .find(|p| !p.exists())
            .ok_or_else(|| {
                SinkError::boxed(
                    target(),
                    "100000 part files of this subtask exist already; empty the directory",
                )
            })?;
        let file = File::create(&path)
            .map_err(|e| SinkError::boxed(path.display().to_string(), e.to_string()))?;
        Ok(Box::new(FileWriter {
            config: self.config.clone(),
            path,
            out: file,
        }))
    }
}

impl SinkWriter<Row> for FileWriter {
    fn write(&mut self, value: Row, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let mut line = self.config.encode_line(&value)?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .map_err(|e| SinkError::boxed(self.path.display().to_string(), e.to_string()))?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.out
            .flush()
            .map_err(|e| SinkError::boxed(self.path.display().to_string(), e.to_string()))?;
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.flush()
    }
}
