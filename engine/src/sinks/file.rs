//! `write_as_text` and `write_as_csv`.

use super::{Sink, SinkError, SinkWriter};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::printable::Printable;
use crate::types::Timestamp;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// What to do when the output exists already (Flink's `FileSystem.WriteMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Fail with a clear error (the default, as in Flink).
    #[default]
    NoOverwrite,
    /// Replace existing files.
    Overwrite,
}

/// The file one subtask writes: the path itself at parallelism 1, otherwise `path/<n>` with
/// the one-based subtask index, as Flink's file output formats do.
fn target_file(path: &Path, ctx: &RuntimeContext) -> PathBuf {
    if ctx.parallelism == 1 {
        path.to_path_buf()
    } else {
        path.join((ctx.subtask_index + 1).to_string())
    }
}

fn create(
    path: &Path,
    mode: WriteMode,
    ctx: &RuntimeContext,
) -> Result<(PathBuf, BufWriter<File>), BoxError> {
    let file = target_file(path, ctx);
    let shown = file.display().to_string();
    if ctx.parallelism > 1 {
        if path.is_file() {
            return Err(SinkError::boxed(
                path.display().to_string(),
                "a file exists where the output directory should be created; remove it or choose another path",
            ));
        }
        std::fs::create_dir_all(path).map_err(|e| {
            SinkError::boxed(
                path.display().to_string(),
                format!("cannot create output directory: {e}"),
            )
        })?;
    } else if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            SinkError::boxed(
                parent.display().to_string(),
                format!("cannot create directory: {e}"),
            )
        })?;
    }
    if file.exists() && mode == WriteMode::NoOverwrite {
        return Err(SinkError::boxed(
            shown,
            "output exists already; delete it or use WriteMode::Overwrite",
        ));
    }
    if file.is_dir() {
        return Err(SinkError::boxed(
            shown,
            "output path is a directory; choose a file path",
        ));
    }
    let handle = File::create(&file)
        .map_err(|e| SinkError::boxed(&shown, format!("cannot create file: {e}")))?;
    Ok((file, BufWriter::with_capacity(1 << 16, handle)))
}

/// Writes each record as a line of text (its [`Printable`] form).
#[derive(Debug, Clone)]
pub struct TextFileSink {
    path: PathBuf,
    mode: WriteMode,
}

impl TextFileSink {
    /// A text sink writing to `path` (a file at parallelism 1, else a directory).
    pub fn new(path: impl Into<PathBuf>, mode: WriteMode) -> Self {
        TextFileSink {
            path: path.into(),
            mode,
        }
    }
}

impl<T: Printable + Send + 'static> Sink<T> for TextFileSink {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        let (file, out) = create(&self.path, self.mode, ctx)?;
        Ok(Box::new(TextWriter {
            file,
            out,
            line: String::new(),
        }))
    }
}

struct TextWriter {
    file: PathBuf,
    out: BufWriter<File>,
    line: String,
}

impl TextWriter {
    fn io(&self, e: std::io::Error) -> BoxError {
        SinkError::boxed(
            self.file.display().to_string(),
            format!("write failed: {e}"),
        )
    }
}

impl<T: Printable + Send> SinkWriter<T> for TextWriter {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.line.clear();
        value.print_to(&mut self.line);
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|e| self.io(e))
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.out.flush().map_err(|e| self.io(e))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.out.flush().map_err(|e| self.io(e))
    }
}

/// Writes records as CSV rows through serde: a tuple `("a", 1)` becomes `a,1`; a struct
/// becomes its fields in declaration order (no header row, as in Flink's `writeAsCsv`).
#[derive(Debug)]
pub struct CsvFileSink<T> {
    path: PathBuf,
    mode: WriteMode,
    delimiter: u8,
    _t: PhantomData<fn(T)>,
}

impl<T> CsvFileSink<T> {
    /// A CSV sink writing to `path` (a file at parallelism 1, else a directory).
    pub fn new(path: impl Into<PathBuf>, mode: WriteMode) -> Self {
        CsvFileSink {
            path: path.into(),
            mode,
            delimiter: b',',
            _t: PhantomData,
        }
    }

    /// Uses another field delimiter.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for CsvFileSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        let (file, out) = create(&self.path, self.mode, ctx)?;
        let writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .from_writer(out);
        Ok(Box::new(CsvWriter { file, writer }))
    }
}

struct CsvWriter {
    file: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl<T: Serialize + Send> SinkWriter<T> for CsvWriter {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.writer.serialize(value).map_err(|e| {
            SinkError::boxed(
                self.file.display().to_string(),
                format!("cannot write CSV row: {e}"),
            )
        })
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.writer.flush().map_err(|e| {
            SinkError::boxed(
                self.file.display().to_string(),
                format!("write failed: {e}"),
            )
        })
    }

    fn close(&mut self) -> Result<(), BoxError> {
        SinkWriter::<T>::flush(self)
    }
}
