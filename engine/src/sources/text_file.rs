//! `read_text_file` and `read_text_file_with`: the lines of a file, or of every file in a
//! directory, as strings or decoded by a function.

use super::lines::{Line, next_line};
use super::{Source, SourceError, SourceOutput, SourceReader, SourceStatus};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const BATCH: usize = 1024;

/// Reads text lines from a file or from the files of a directory (not recursive; names starting
/// with `.` or `_` are skipped, as Flink does). Files are spread over the parallel instances:
/// with sorted file names, file `k` is read by subtask `k % parallelism`. A line that is not
/// valid UTF-8 fails the job with the file and line number. In checkpoints every file still to
/// read is a split (file, byte offset), so the source can be restored at another parallelism:
/// the splits are redistributed and every line is read once overall.
///
/// `TextFileSource<T>` with a decoder (Flink's `FileSource` with a line-oriented
/// `StreamFormat`) turns each line into a `T` where it is read, from the reader's buffer: no
/// `String` per line is made, copied and dropped. A line the decoder refuses fails the job with
/// the file, the line number and the decoder's message.
pub struct TextFileSource<T = String> {
    path: PathBuf,
    decode: LineDecoder<T>,
}

/// Turns one line (without its line ending) into a record, or says why it cannot.
pub type LineDecoder<T> = Arc<dyn Fn(&str) -> Result<T, BoxError> + Send + Sync>;

impl<T> Clone for TextFileSource<T> {
    fn clone(&self) -> Self {
        TextFileSource {
            path: self.path.clone(),
            decode: Arc::clone(&self.decode),
        }
    }
}

impl<T> std::fmt::Debug for TextFileSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextFileSource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TextFileSource {
    /// A source of the lines of a file or of the files in a directory.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TextFileSource::with_decoder(path, |line: &str| Ok(line.to_owned()))
    }
}

impl<T> TextFileSource<T> {
    /// A source of the lines of a file or of the files in a directory, each decoded by
    /// `decode` (for example parsed as JSON).
    pub fn with_decoder(
        path: impl Into<PathBuf>,
        decode: impl Fn(&str) -> Result<T, BoxError> + Send + Sync + 'static,
    ) -> Self {
        TextFileSource {
            path: path.into(),
            decode: Arc::new(decode),
        }
    }

    /// The file or directory read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn files(&self) -> Result<Vec<PathBuf>, BoxError> {
        let shown = self.path.display().to_string();
        let meta = std::fs::metadata(&self.path).map_err(|e| {
            SourceError::boxed(
                &shown,
                format!("cannot read input path: {e}; check that it exists and is readable"),
            )
        })?;
        if meta.is_file() {
            return Ok(vec![self.path.clone()]);
        }
        let mut files = Vec::new();
        let entries = std::fs::read_dir(&self.path)
            .map_err(|e| SourceError::boxed(&shown, format!("cannot list directory: {e}")))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| SourceError::boxed(&shown, format!("cannot list directory: {e}")))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if entry.path().is_file() {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }
}

impl<T: Send + 'static> Source<T> for TextFileSource<T> {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        let files = self
            .files()?
            .into_iter()
            .enumerate()
            .filter(|(k, _)| k % ctx.parallelism == ctx.subtask_index)
            .map(|(_, f)| f)
            .collect::<Vec<_>>();
        Ok(Box::new(TextFileReader {
            splits: files.into_iter().map(|f| (f, 0, 0)).collect(),
            current: None,
            decode: Arc::clone(&self.decode),
        }))
    }
}

struct OpenFile {
    path: PathBuf,
    reader: BufReader<File>,
    line: u64,
    /// Bytes consumed so far (the position stored in checkpoints).
    offset: u64,
    buf: Vec<u8>,
}

/// A piece of input: a file, the byte offset to continue at and the number of lines before it
/// (for messages). One split per file; in checkpoints, the current file and every file not
/// started yet are one split each.
type FileSplit = (PathBuf, u64, u64);

struct TextFileReader<T> {
    /// Splits not started yet, in reading order.
    splits: VecDeque<FileSplit>,
    current: Option<OpenFile>,
    decode: LineDecoder<T>,
}

fn open(path: &Path) -> Result<OpenFile, BoxError> {
    let file = File::open(path).map_err(|e| {
        SourceError::boxed(path.display().to_string(), format!("cannot open file: {e}"))
    })?;
    Ok(OpenFile {
        offset: 0,
        path: path.to_path_buf(),
        reader: BufReader::with_capacity(1 << 16, file),
        line: 0,
        buf: Vec::new(),
    })
}

/// Opens a split's file and moves to its offset.
fn open_split((path, offset, line): &FileSplit) -> Result<OpenFile, BoxError> {
    let mut file = open(path)?;
    if *offset > 0 {
        file.reader.seek(SeekFrom::Start(*offset)).map_err(|e| {
            SourceError::boxed(
                format!("{} line {line}", path.display()),
                format!("cannot continue reading after a restore: {e}"),
            )
        })?;
    }
    file.offset = *offset;
    file.line = *line;
    Ok(file)
}

/// The read position written before text file sources stored splits: files not started yet,
/// and where in the current file reading stopped.
type TextPosition = (Vec<PathBuf>, Option<(PathBuf, u64, u64)>);

impl<T: Send + 'static> SourceReader<T> for TextFileReader<T> {
    fn snapshot_splits(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let current = self
            .current
            .as_ref()
            .map(|f| (f.path.clone(), f.offset, f.line));
        let splits = current
            .iter()
            .chain(self.splits.iter())
            .map(crate::encoding::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(splits))
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.splits = splits
            .iter()
            .map(|b| crate::encoding::from_slice::<FileSplit>(b))
            .collect::<Result<_, _>>()?;
        self.current = None;
        Ok(())
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let (files, current): TextPosition = crate::encoding::from_slice(state)?;
        self.splits = current
            .into_iter()
            .chain(files.into_iter().map(|f| (f, 0, 0)))
            .collect();
        self.current = None;
        Ok(())
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        let file = match &mut self.current {
            Some(f) => f,
            None => match self.splits.pop_front() {
                Some(split) => self.current.insert(open_split(&split)?),
                None => return Ok(SourceStatus::Finished),
            },
        };
        for _ in 0..BATCH {
            let read = next_line(&mut file.reader, &mut file.buf).map_err(|e| {
                SourceError::boxed(
                    format!("{} line {}", file.path.display(), file.line + 1),
                    format!("read failed: {e}"),
                )
            })?;
            let (bytes, consumed, borrowed) = match read {
                Line::Borrowed { bytes, consumed } => (bytes, consumed, true),
                Line::Gathered { consumed } => (file.buf.as_slice(), consumed, false),
                Line::End => {
                    self.current = None;
                    return Ok(SourceStatus::MoreAvailable);
                }
            };
            // `\r\n` ends a line as `\n` does; a last line without a newline keeps its `\r`.
            let ended = consumed > bytes.len();
            let bytes = match bytes.strip_suffix(b"\r") {
                Some(b) if ended => b,
                _ => bytes,
            };
            let at = |line: u64| format!("{} line {line}", file.path.display());
            let record = match simdutf8::compat::from_utf8(bytes) {
                Ok(line) => (self.decode)(line).map_err(|e| {
                    SourceError::boxed(at(file.line + 1), format!("cannot decode the line: {e}"))
                }),
                Err(e) => Err(SourceError::boxed(
                    at(file.line + 1),
                    format!("line is not valid UTF-8 ({e}); convert the file to UTF-8"),
                )),
            };
            if borrowed {
                file.reader.consume(consumed);
            }
            file.line += 1;
            file.offset += consumed as u64;
            output.collect(record?);
        }
        Ok(SourceStatus::MoreAvailable)
    }
}
