//! `socket_text_stream`: text records read from a TCP socket.

use super::{Source, SourceError, SourceOutput, SourceReader, SourceStatus};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::Duration;

const READ_TIMEOUT: Duration = Duration::from_millis(20);
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// Connects to `host:port` and emits the text between delimiters as records (Flink's
/// `socketTextStream`). Non-parallel. When the connection closes the source finishes, unless
/// retries remain (`max_retry`: 0 = none, a negative value = forever), in which case it
/// reconnects after 500 ms. A refused connection with no retries left fails the job naming the
/// address.
#[derive(Debug, Clone)]
pub struct SocketTextSource {
    host: String,
    port: u16,
    delimiter: u8,
    max_retry: i64,
}

impl SocketTextSource {
    /// Reads newline-delimited records, without retries.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        SocketTextSource {
            host: host.into(),
            port,
            delimiter: b'\n',
            max_retry: 0,
        }
    }

    /// Uses another single-byte delimiter.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets how often to reconnect (negative: forever).
    pub fn with_max_retry(mut self, max_retry: i64) -> Self {
        self.max_retry = max_retry;
        self
    }
}

impl Source<String> for SocketTextSource {
    fn is_parallel(&self) -> bool {
        false
    }

    fn create_reader(
        &self,
        _ctx: &RuntimeContext,
    ) -> Result<Box<dyn SourceReader<String>>, BoxError> {
        Ok(Box::new(SocketReader {
            source: self.clone(),
            stream: None,
            buf: Vec::new(),
            records: 0,
            retries: 0,
        }))
    }
}

struct SocketReader {
    source: SocketTextSource,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    records: u64,
    retries: i64,
}

impl SocketReader {
    fn address(&self) -> String {
        format!("{}:{}", self.source.host, self.source.port)
    }

    fn may_retry(&mut self) -> bool {
        if self.source.max_retry < 0 || self.retries < self.source.max_retry {
            self.retries += 1;
            true
        } else {
            false
        }
    }

    fn emit_complete_records(
        &mut self,
        output: &mut SourceOutput<'_, String>,
    ) -> Result<(), BoxError> {
        let delimiter = self.source.delimiter;
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|b| *b == delimiter) {
            let mut record = &self.buf[start..start + pos];
            if delimiter == b'\n' && record.last() == Some(&b'\r') {
                record = &record[..record.len() - 1];
            }
            self.records += 1;
            let text = std::str::from_utf8(record).map_err(|e| {
                SourceError::boxed(
                    format!("{} record {}", self.address(), self.records),
                    format!("record is not valid UTF-8 ({e})"),
                )
            })?;
            output.collect(text.to_owned());
            start += pos + 1;
        }
        self.buf.drain(..start);
        Ok(())
    }
}

impl SourceReader<String> for SocketReader {
    fn poll_next(
        &mut self,
        output: &mut SourceOutput<'_, String>,
    ) -> Result<SourceStatus, BoxError> {
        let address = self.address();
        if self.stream.is_none() {
            match TcpStream::connect(&address) {
                Ok(s) => {
                    s.set_read_timeout(Some(READ_TIMEOUT))?;
                    self.stream = Some(s);
                }
                Err(e) => {
                    if self.may_retry() {
                        std::thread::sleep(RETRY_DELAY);
                        return Ok(SourceStatus::NothingAvailable);
                    }
                    return Err(SourceError::boxed(
                        address,
                        format!(
                            "cannot connect: {e}; is a server listening there (for example `nc -lk {}`)?",
                            self.source.port
                        ),
                    ));
                }
            }
        }
        let stream = self.stream.as_mut().expect("connected");
        let mut chunk = [0u8; 64 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => {
                self.stream = None;
                if !self.buf.is_empty() {
                    // Flink emits the trailing text without delimiter when the socket closes.
                    self.buf.push(self.source.delimiter);
                    self.emit_complete_records(output)?;
                }
                if self.may_retry() {
                    return Ok(SourceStatus::NothingAvailable);
                }
                Ok(SourceStatus::Finished)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.emit_complete_records(output)?;
                Ok(SourceStatus::MoreAvailable)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ok(SourceStatus::NothingAvailable)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(SourceStatus::MoreAvailable),
            Err(e) => Err(SourceError::boxed(address, format!("read failed: {e}"))),
        }
    }
}
