//! The `filesystem` connector, bounded: reads a file or the files of a directory (`csv` or
//! newline-delimited `json`), and writes part files into a directory.
//!
//! Reading: files are listed when the job starts (sorted; names starting with `.` or `_`
//! are skipped, as Flink does) and dealt to the subtasks round-robin; a reader's checkpointed
//! position is (file, rows read). Writing: subtask `i` writes `part-<i>-<n>` with the first
//! `n` that does not exist yet, so nothing already written is overwritten (at-least-once).
//!
//! A sink `path` that is a URL (`file:///dir`, `s3://bucket/dir`, `hdfs://namenode:8020/dir`)
//! goes to the engine's exactly-once file sink instead (Flink's `FileSink`): rows are encoded
//! by [`EncodeLines`] and written as part files committed with checkpoints. The `parquet`
//! format always goes there (a local path is taken as `file://`), through the
//! [`parquet`](super::parquet) bulk format; parts roll at every checkpoint and by the
//! `sink.rolling-policy.*` options.

use super::format::{self, Format};
use crate::plan::TableDef;
use crate::types::{Row, Schema};
use fjord::sinks::RollingPolicy;
use fjord::{
    BoxError, RuntimeContext, Sink, SinkError, SinkWriter, Source, SourceError, SourceOutput,
    SourceReader, SourceStatus, Timestamp,
};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
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
}

/// A file format of the connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFormat {
    /// A row format (`csv`, `json`): one line per row.
    Row(Format),
    /// `parquet`, written by the exactly-once sink only.
    Parquet(fjord_parquet::ParquetOptions),
}

/// The connector's own options besides `path` and the format's.
const SINK_OPTIONS: &[&str] = &[
    "path",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
    "sink.rolling-policy.inactivity-interval",
    "sink.rolling-policy.check-interval",
];

/// The rolling policy of the `sink.rolling-policy.*` options, Flink's defaults where absent.
fn rolling_policy(o: &std::collections::BTreeMap<String, String>) -> Result<RollingPolicy, String> {
    let duration = |key: &str| -> Result<std::time::Duration, String> {
        match o.get(key) {
            None => Ok(std::time::Duration::from_secs(30 * 60)),
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
    duration("sink.rolling-policy.check-interval")?;
    Ok(RollingPolicy::on_checkpoint()
        .with_part_size(size as u64)
        .with_rollover_interval(duration("sink.rolling-policy.rollover-interval")?)
        .with_inactivity_interval(duration("sink.rolling-policy.inactivity-interval")?))
}

impl FileConfig {
    /// Reads and checks the options; a source's path must exist.
    ///
    /// # Errors
    /// Missing `path`/`format`, unknown options, a path that does not exist.
    pub fn from_table(table: &TableDef, source: bool) -> Result<Self, String> {
        let o = &table.options;
        let (format, ignore) = if o.get("format").map(String::as_str) == Some("parquet") {
            let mut allowed = SINK_OPTIONS.to_vec();
            allowed.push("format");
            allowed.extend(super::parquet::OPTIONS);
            super::only_options(o, &allowed)?;
            super::parquet::schema(&table.schema)?;
            (FileFormat::Parquet(super::parquet::options(o)?), false)
        } else {
            let (format, ignore) = format::from_options(o, SINK_OPTIONS)?;
            if matches!(format, Format::Protobuf(_)) {
                return Err("the protobuf format has no framing of messages in a file (Flink's filesystem connector does not take it either); use it with a message connector (kafka, kinesis, rabbitmq, activemq), or 'json', 'csv' or 'parquet' for files".into());
            }
            if let Format::Avro(avro) = &format {
                return Err(format!(
                    "format '{}' is for message connectors (kafka, rabbitmq, activemq, kinesis); the filesystem connector does not write Avro container files yet: use 'parquet', 'csv' or 'json'",
                    avro.name()
                ));
            }
            (FileFormat::Row(format), ignore)
        };
        let rolling = rolling_policy(o)?;
        let path = PathBuf::from(o.get("path").ok_or("set 'path' to a file or directory")?);
        if source && is_url(&path) {
            return Err(format!(
                "path '{}': a filesystem source reads local files and directories only (a URL \
                 such as hdfs:// or s3:// can be written to, not read yet); copy the files to a \
                 local directory",
                path.display()
            ));
        }
        if source && !path.exists() {
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
        })
    }
}

impl FileConfig {
    /// The sink's URL when `path` names one (`scheme://...`): the exactly-once file sink.
    /// A `parquet` table's local path is made a `file://` URL (Parquet goes to the
    /// exactly-once sink only).
    pub fn url(&self) -> Option<String> {
        if is_url(&self.path) {
            return Some(self.path.display().to_string());
        }
        match self.format {
            FileFormat::Parquet(_) => {
                let absolute = std::path::absolute(&self.path).unwrap_or(self.path.clone());
                Some(format!("file://{}", absolute.display()))
            }
            FileFormat::Row(_) => None,
        }
    }

    /// The part files' extension with its dot (`.csv`, `.json`, `.parquet`).
    pub fn extension(&self) -> &'static str {
        match self.format {
            FileFormat::Row(Format::Csv { .. }) => ".csv",
            FileFormat::Row(Format::Json | Format::Avro(_) | Format::Protobuf(_)) => ".json",
            FileFormat::Parquet(_) => ".parquet",
        }
    }

    /// The row format, or an error for a bulk format (the line-based paths refuse it).
    fn row_format(&self) -> Result<&Format, BoxError> {
        match &self.format {
            FileFormat::Row(f) => Ok(f),
            FileFormat::Parquet(_) => Err(SinkError::boxed(
                self.path.display().to_string(),
                "the parquet format has no lines; it is written by the exactly-once file sink",
            )),
        }
    }
}

fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.contains("://"))
}

/// Encodes rows as lines of a table's format, for the exactly-once file sink.
#[derive(Debug, Clone)]
pub struct EncodeLines {
    format: Format,
    schema: Schema,
}

impl EncodeLines {
    /// The encoder of a filesystem table of a row format.
    ///
    /// # Errors
    /// The table's format is not a row format.
    pub fn new(config: &FileConfig) -> Result<Self, BoxError> {
        Ok(EncodeLines {
            format: config.row_format()?.clone(),
            schema: config.schema.clone(),
        })
    }
}

impl fjord::MapFunction<Row, String> for EncodeLines {
    fn map(&mut self, row: Row) -> Result<String, BoxError> {
        Ok(String::from_utf8(format::encode(
            &self.format,
            &self.schema,
            &row,
        )?)?)
    }
}

/// The files to read: the path itself, or the visible files of the directory, sorted.
fn list_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n.starts_with('_'));
        if p.is_file() && !hidden {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Reads bounded files.
#[derive(Debug, Clone)]
pub struct FileSource {
    /// Its options.
    pub config: FileConfig,
}

enum Open {
    Csv(csv::Reader<File>),
    Json(std::io::Lines<BufReader<File>>),
    /// A Parquet file, decoded whole when opened (its footer is at its end).
    Parquet(std::vec::IntoIter<Row>),
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
}

impl Source<Row> for FileSource {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<Row>>, BoxError> {
        let all = list_files(&self.config.path).map_err(|e| {
            SourceError::boxed(self.config.path.display().to_string(), e.to_string())
        })?;
        let p = ctx.parallelism.max(1);
        let files = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % p == ctx.subtask_index)
            .map(|(_, f)| (f, 0))
            .collect();
        Ok(Box::new(FileReader {
            config: self.config.clone(),
            files,
            file: 0,
            rows: 0,
            open: None,
            record: csv::StringRecord::new(),
        }))
    }
}

impl FileReader {
    fn open_current(&mut self) -> Result<(), BoxError> {
        let (path, skip) = &self.files[self.file];
        self.rows = *skip;
        let where_ = || path.display().to_string();
        let f = File::open(path).map_err(|e| SourceError::boxed(where_(), e.to_string()))?;
        let mut open = match &self.config.format {
            FileFormat::Parquet(_) => {
                let bytes =
                    std::fs::read(path).map_err(|e| SourceError::boxed(where_(), e.to_string()))?;
                let rows = super::parquet::decode_file(bytes, &self.config.schema)
                    .map_err(|e| SourceError::boxed(where_(), e))?;
                Open::Parquet(rows.into_iter())
            }
            FileFormat::Row(Format::Csv { delimiter, .. }) => Open::Csv(
                csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .delimiter(*delimiter)
                    .from_reader(f),
            ),
            FileFormat::Row(Format::Json | Format::Avro(_) | Format::Protobuf(_)) => {
                Open::Json(BufReader::new(f).lines())
            }
        };
        // Skip what a restored position says was read already.
        for _ in 0..self.rows {
            let more = match &mut open {
                Open::Csv(r) => r.read_record(&mut self.record)?,
                Open::Json(lines) => lines.next().transpose()?.is_some(),
                Open::Parquet(rows) => rows.next().is_some(),
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
            Open::Parquet(rows) => Ok(rows.next()),
            Open::Json(lines) => loop {
                let Some(line) = lines.next().transpose()? else {
                    return Ok(None);
                };
                if line.trim().is_empty() {
                    self.rows += 1;
                    continue;
                }
                match format::decode_json(&line, schema, ignore) {
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
                return Ok(SourceStatus::Finished);
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

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.files = splits
            .iter()
            .map(|s| serde_json::from_slice::<(PathBuf, u64)>(s))
            .collect::<Result<_, _>>()?;
        (self.file, self.rows, self.open) = (0, 0, None);
        Ok(())
    }
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
        self.config.row_format()?;
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
        let mut line = format::encode(self.config.row_format()?, &self.config.schema, &value)?;
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
