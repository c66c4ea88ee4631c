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
//! by [`EncodeLines`] and written as part files committed with checkpoints.

use super::format::{self, Format};
use crate::plan::TableDef;
use crate::types::{Row, Schema};
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
    pub format: Format,
    /// `csv.ignore-parse-errors` / `json.ignore-parse-errors`: a field that does not read
    /// becomes NULL instead of failing the job.
    pub ignore_parse_errors: bool,
    /// The columns.
    pub schema: Schema,
}

impl FileConfig {
    /// Reads and checks the options; a source's path must exist.
    ///
    /// # Errors
    /// Missing `path`/`format`, unknown options, a path that does not exist.
    pub fn from_table(table: &TableDef, source: bool) -> Result<Self, String> {
        let o = &table.options;
        let (format, ignore) = format::from_options(o, &["path"])?;
        if matches!(format, Format::Protobuf(_)) {
            return Err("the protobuf format has no framing of messages in a file (Flink's filesystem connector does not take it either); use it with a message connector (kafka, kinesis, rabbitmq, activemq), or 'json' or 'csv' for files".into());
        }
        if let Format::Avro(avro) = &format {
            return Err(format!(
                "format '{}' is for message connectors (kafka, rabbitmq, activemq, kinesis); the filesystem connector does not write Avro container files yet: use 'csv' or 'json'",
                avro.name()
            ));
        }
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
        })
    }
}

impl FileConfig {
    /// The sink's URL when `path` names one (`scheme://...`): the exactly-once file sink.
    pub fn url(&self) -> Option<String> {
        is_url(&self.path).then(|| self.path.display().to_string())
    }

    /// The part files' extension with its dot (`.csv`, `.json`).
    pub fn extension(&self) -> &'static str {
        match self.format {
            Format::Csv { .. } => ".csv",
            Format::Json | Format::Avro(_) | Format::Protobuf(_) => ".json",
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
    /// The encoder of a filesystem table.
    pub fn new(config: &FileConfig) -> Self {
        EncodeLines {
            format: config.format.clone(),
            schema: config.schema.clone(),
        }
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
        let f = File::open(path)
            .map_err(|e| SourceError::boxed(path.display().to_string(), e.to_string()))?;
        let mut open = match &self.config.format {
            Format::Csv { delimiter, .. } => Open::Csv(
                csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .delimiter(*delimiter)
                    .from_reader(f),
            ),
            Format::Json | Format::Avro(_) | Format::Protobuf(_) => {
                Open::Json(BufReader::new(f).lines())
            }
        };
        // Skip what a restored position says was read already.
        for _ in 0..self.rows {
            let more = match &mut open {
                Open::Csv(r) => r.read_record(&mut self.record)?,
                Open::Json(lines) => lines.next().transpose()?.is_some(),
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
                    Format::Csv { null_literal, .. } => null_literal.as_deref(),
                    Format::Json | Format::Avro(_) | Format::Protobuf(_) => None,
                };
                let row = format::decode_csv(&self.record, schema, null_literal, ignore)
                    .map_err(|e| SourceError::boxed(position(), format!("{e}{hint}")))?;
                Ok(Some(row))
            }
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
        let ext = match self.config.format {
            Format::Csv { .. } => "csv",
            Format::Json | Format::Avro(_) | Format::Protobuf(_) => "json",
        };
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
        let mut line = format::encode(&self.config.format, &self.config.schema, &value)?;
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
