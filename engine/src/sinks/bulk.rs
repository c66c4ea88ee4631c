//! File formats of the exactly-once file sink: how records become the bytes of one part file.
//!
//! A [`BulkFormat`] (Flink's `BulkWriter.Factory`) opens a [`BulkWriter`] for every new part;
//! the sink adds the part's records to it one by one and, when the part rolls, calls
//! [`BulkWriter::finish`] for the whole file (for columnar formats such as Parquet: the row
//! groups and the footer). A row format is the special case where every record is encoded on
//! its own: an [`Encoder`] (Flink's `Encoder`) wrapped in a [`RowFormat`].
//!
//! A format that needs a header or a footer per file (CSV's header line, Parquet's footer, an
//! Avro container's header and sync markers) is a `BulkFormat`: every part file is a complete
//! file of its format, readable on its own.
//!
//! Implementing a new format (say, an Avro container file): a factory type holding the
//! schema and options implements [`BulkFormat<T>`], its [`create`](BulkFormat::create) returns
//! a writer that buffers encoded records (or blocks), reports its size through
//! [`BulkWriter::size_estimate`] (what the rolling policy's part size compares with) and
//! returns the complete file from [`finish`](BulkWriter::finish); the format names its file
//! extension in [`BulkFormat::suffix`]. The sink does the rest: part names, pending files,
//! commits with checkpoints, cleanup after a failure.

use crate::error::BoxError;
use crate::printable::Printable;
use std::sync::Arc;

/// Writes the records of one part file (Flink's `BulkWriter`). The part's bytes are kept in
/// memory until [`finish`](Self::finish) returns them; the sink then stores them as a pending
/// part.
pub trait BulkWriter<T>: Send {
    /// Adds one record to the part.
    ///
    /// # Errors
    /// A record the format cannot represent (the message names the field and what is wrong).
    fn add_element(&mut self, element: T) -> Result<(), BoxError>;

    /// The size of the part so far in bytes, as close as the format can tell without
    /// finishing it (encoded data plus what is still buffered). The rolling policy's part
    /// size is compared with this after every record.
    fn size_estimate(&self) -> u64;

    /// Completes the part file (footers, indexes, trailing blocks) and returns its bytes.
    ///
    /// # Errors
    /// An encoding failure of the format.
    fn finish(self: Box<Self>) -> Result<Vec<u8>, BoxError>;
}

/// Opens a [`BulkWriter`] for every new part file (Flink's `BulkWriter.Factory`). Shared by
/// all parallel instances of the sink.
pub trait BulkFormat<T>: Send + Sync + 'static {
    /// A writer for a new, empty part file.
    ///
    /// # Errors
    /// The format's configuration is unusable (for example, an invalid schema).
    fn create(&self) -> Result<Box<dyn BulkWriter<T>>, BoxError>;

    /// The part files' default name suffix with its dot (`.parquet`), or empty.
    fn suffix(&self) -> &str {
        ""
    }
}

/// Encodes one record on its own, appending its bytes (Flink's row `Encoder`): a row format.
pub trait Encoder<T>: Send + Sync + 'static {
    /// Appends the bytes of `element` (with its delimiter, such as a newline) to `out`.
    ///
    /// # Errors
    /// A record the encoder cannot represent.
    fn encode(&self, element: &T, out: &mut Vec<u8>) -> Result<(), BoxError>;
}

/// A row format: part files are the concatenated encodings of their records.
pub struct RowFormat<T> {
    encoder: Arc<dyn Encoder<T>>,
    suffix: String,
}

impl<T> RowFormat<T> {
    /// A row format writing every record through `encoder`.
    pub fn new(encoder: impl Encoder<T>) -> Self {
        RowFormat {
            encoder: Arc::new(encoder),
            suffix: String::new(),
        }
    }

    /// Sets the part files' default suffix (such as `.json`).
    pub fn with_suffix(mut self, suffix: &str) -> Self {
        self.suffix = suffix.to_string();
        self
    }
}

impl<T: Send + 'static> BulkFormat<T> for RowFormat<T> {
    fn create(&self) -> Result<Box<dyn BulkWriter<T>>, BoxError> {
        Ok(Box::new(RowWriter {
            encoder: self.encoder.clone(),
            bytes: Vec::new(),
        }))
    }

    fn suffix(&self) -> &str {
        &self.suffix
    }
}

struct RowWriter<T> {
    encoder: Arc<dyn Encoder<T>>,
    bytes: Vec<u8>,
}

impl<T: Send + 'static> BulkWriter<T> for RowWriter<T> {
    fn add_element(&mut self, element: T) -> Result<(), BoxError> {
        self.encoder.encode(&element, &mut self.bytes)
    }

    fn size_estimate(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn finish(self: Box<Self>) -> Result<Vec<u8>, BoxError> {
        Ok(self.bytes)
    }
}

/// Text lines: a record's [`Printable`] text and a newline (Flink's `SimpleStringEncoder`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LineEncoder;

impl<T: Printable + 'static> Encoder<T> for LineEncoder {
    fn encode(&self, element: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        let mut line = String::new();
        element.print_to(&mut line);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        Ok(())
    }
}
