//! `write_to_socket`.

use super::{Sink, SinkError, SinkWriter};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::types::Timestamp;
use std::io::{BufWriter, Write};
use std::net::TcpStream;
use std::sync::Arc;

/// Serializes records to bytes for a socket.
pub type SerializeFn<T> = Arc<dyn Fn(&T, &mut Vec<u8>) + Send + Sync>;

/// Writes serialized records to a TCP connection (Flink's `writeToSocket`). A refused
/// connection or a broken pipe fails the job naming the address.
pub struct SocketSink<T> {
    host: String,
    port: u16,
    serialize: SerializeFn<T>,
}

impl<T> SocketSink<T> {
    /// A sink connecting to `host:port`, serializing each record with `serialize`.
    pub fn new(host: impl Into<String>, port: u16, serialize: SerializeFn<T>) -> Self {
        SocketSink {
            host: host.into(),
            port,
            serialize,
        }
    }
}

impl<T: Send + 'static> Sink<T> for SocketSink<T> {
    fn create_writer(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        let address = format!("{}:{}", self.host, self.port);
        let stream = TcpStream::connect(&address).map_err(|e| {
            SinkError::boxed(
                &address,
                format!("cannot connect: {e}; is a server listening there?"),
            )
        })?;
        Ok(Box::new(SocketWriter {
            address,
            out: BufWriter::new(stream),
            serialize: self.serialize.clone(),
            buf: Vec::new(),
        }))
    }
}

struct SocketWriter<T> {
    address: String,
    out: BufWriter<TcpStream>,
    serialize: SerializeFn<T>,
    buf: Vec<u8>,
}

impl<T: Send> SinkWriter<T> for SocketWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.buf.clear();
        (self.serialize)(&value, &mut self.buf);
        self.out
            .write_all(&self.buf)
            .map_err(|e| SinkError::boxed(&self.address, format!("send failed: {e}")))
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.out
            .flush()
            .map_err(|e| SinkError::boxed(&self.address, format!("send failed: {e}")))
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.flush()
    }
}
