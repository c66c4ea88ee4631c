//! The wire format of a data connection.
//!
//! A connection starts with the producer's preamble, [`MAGIC`] and [`VERSION`] (big-endian
//! `u16`), followed by frames. A frame is `len: u32` (big-endian, counting the kind byte and
//! the payload), `kind: u8`, payload:
//!
//! | kind | direction | payload |
//! | --- | --- | --- |
//! | `HELLO` | producer -> server | encoded [`ChannelKey`] |
//! | `ACCEPT` | server -> producer | initial credit, `u32` |
//! | `REFUSE` | server -> producer | reason, UTF-8 |
//! | `RECORDS` | producer -> server | the [`BatchCodec`]'s encoding of a batch |
//! | `WATERMARK` | producer -> server | `i64` |
//! | `WATERMARK_STATUS` | producer -> server | `u8`, 1 = idle |
//! | `BARRIER` | producer -> server | encoded [`BarrierWire`] |
//! | `END_OF_PARTITION` | producer -> server | empty |
//! | `CREDIT` | server -> producer | granted credits, `u32` |
//! | `CLOSE` | server -> producer | encoded [`CloseWire`]: why the server ends the connection |

use super::codec::BatchCodec;
use super::key::ChannelKey;
use crate::checkpoint::CheckpointBarrier;
use crate::error::{FjordError, Result};
use crate::exchange::channel::{EncodedBatch, Event};
use crate::storage::{SnapshotStore, StorageOptions};
use serde::{Deserialize, Serialize};
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

/// The first bytes of every data connection.
pub(crate) const MAGIC: [u8; 4] = *b"FJRD";
/// The protocol version this build speaks.
pub(crate) const VERSION: u16 = 1;
/// The preamble's length: magic and version.
pub(crate) const PREAMBLE_LEN: usize = 6;
/// Frames longer than this are refused as corrupt.
pub(crate) const MAX_FRAME: usize = 1 << 30;
/// The longest frame a server reads before a producer's hello named a registered channel: a
/// peer that is not (yet) a producer of this job cannot make it allocate more.
pub(crate) const MAX_HANDSHAKE_FRAME: usize = 64 * 1024;
/// Bytes before a frame's payload: length and kind.
const HEADER: usize = 5;

/// Frame kinds.
pub(crate) mod kind {
    pub(crate) const HELLO: u8 = 1;
    pub(crate) const ACCEPT: u8 = 2;
    pub(crate) const REFUSE: u8 = 3;
    pub(crate) const RECORDS: u8 = 10;
    pub(crate) const WATERMARK: u8 = 11;
    pub(crate) const WATERMARK_STATUS: u8 = 12;
    pub(crate) const BARRIER: u8 = 13;
    pub(crate) const END_OF_PARTITION: u8 = 14;
    pub(crate) const CREDIT: u8 = 20;
    pub(crate) const CLOSE: u8 = 21;
}

/// A checkpoint barrier on the wire: its target travels as a URL and is re-opened by the
/// receiving TaskManager with its own storage options.
#[derive(Serialize, Deserialize)]
pub(crate) struct BarrierWire {
    pub(crate) id: u64,
    pub(crate) timestamp: i64,
    pub(crate) target: String,
    pub(crate) savepoint: bool,
    pub(crate) stop: Option<bool>,
    pub(crate) full: bool,
}

/// Why a server ends a connection before the producer finished.
#[derive(Serialize, Deserialize)]
pub(crate) struct CloseWire {
    /// True when this is only a consequence of cancellation (the consumer was cancelled or went
    /// away); the producer then fails with [`FjordError::Cancelled`], as with a local channel.
    pub(crate) cancelled: bool,
    /// What happened, for the producer's error.
    pub(crate) reason: String,
}

/// The preamble every connection starts with.
pub(crate) fn preamble() -> [u8; PREAMBLE_LEN] {
    let v = VERSION.to_be_bytes();
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], v[0], v[1]]
}

/// Appends a frame of `kind` whose payload `payload` appends.
pub(crate) fn frame(
    out: &mut Vec<u8>,
    kind: u8,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    payload(out)?;
    let len = out.len() - start - 4;
    if len > MAX_FRAME {
        out.truncate(start);
        return Err(FjordError::Network(format!(
            "a frame of {len} bytes exceeds the limit of {MAX_FRAME} bytes; use smaller batches"
        )));
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

/// Appends a frame whose payload is `bytes`.
pub(crate) fn frame_bytes(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    frame(out, kind, |o| {
        o.extend_from_slice(bytes);
        Ok(())
    })
    .expect("small frames fit");
}

/// Appends a frame whose payload is the encoding ([`crate::encoding`]) of `value`.
pub(crate) fn frame_encoded(out: &mut Vec<u8>, kind: u8, value: &impl Serialize) -> Result<()> {
    frame(out, kind, |o| {
        crate::encoding::write_into(o, value).map_err(|e| FjordError::Serialization {
            context: "a network control frame".into(),
            message: e.to_string(),
        })
    })
}

/// Appends the frame of an event; returns true for `EndOfPartition`.
pub(crate) fn encode_event(
    event: &Event,
    codec: &dyn BatchCodec,
    out: &mut Vec<u8>,
) -> Result<bool> {
    match event {
        Event::Records(batch) => frame(out, kind::RECORDS, |o| codec.encode(&**batch, o))?,
        Event::Encoded(batch) => frame_bytes(out, kind::RECORDS, &batch.bytes),
        Event::Watermark(t) => frame_bytes(out, kind::WATERMARK, &t.to_be_bytes()),
        Event::WatermarkStatus { idle } => {
            frame_bytes(out, kind::WATERMARK_STATUS, &[u8::from(*idle)])
        }
        Event::Barrier(b) => frame_encoded(
            out,
            kind::BARRIER,
            &BarrierWire {
                id: b.id,
                timestamp: b.timestamp,
                target: b.target.url().to_string(),
                savepoint: b.savepoint,
                stop: b.stop,
                full: b.full,
            },
        )?,
        Event::EndOfPartition => {
            frame_bytes(out, kind::END_OF_PARTITION, &[]);
            return Ok(true);
        }
    }
    Ok(false)
}

/// Decodes the event of a data frame; `None` when `kind` is not a data frame. Record batches
/// stay encoded ([`Event::Encoded`]): the consuming task decodes them on its own thread.
pub(crate) fn decode_event(
    kind: u8,
    payload: &[u8],
    codec: &Arc<dyn BatchCodec>,
    storage: &StorageOptions,
) -> Result<Option<Event>> {
    Ok(Some(match kind {
        kind::RECORDS => Event::Encoded(EncodedBatch {
            bytes: payload.to_vec(),
            codec: codec.clone(),
        }),
        kind::WATERMARK => Event::Watermark(i64::from_be_bytes(fixed(payload, "watermark")?)),
        kind::WATERMARK_STATUS => Event::WatermarkStatus {
            idle: u8::from_be_bytes(fixed(payload, "watermark status")?) != 0,
        },
        kind::BARRIER => {
            let wire: BarrierWire = decode_encoded(payload, "barrier")?;
            Event::Barrier(CheckpointBarrier {
                id: wire.id,
                timestamp: wire.timestamp,
                target: SnapshotStore::open(&wire.target, storage)?,
                savepoint: wire.savepoint,
                stop: wire.stop,
                full: wire.full,
            })
        }
        kind::END_OF_PARTITION => Event::EndOfPartition,
        _ => return Ok(None),
    }))
}

/// What a connection's first bytes say about its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PreambleCheck {
    /// A Fjord producer speaking this version of the protocol.
    Fjord,
    /// Not the data protocol's magic bytes: not a Fjord producer.
    NotFjord,
    /// A Fjord producer speaking another protocol version.
    OtherVersion(u16),
}

/// Checks a preamble (magic bytes and version).
pub(crate) fn check_preamble(preamble: &[u8; PREAMBLE_LEN]) -> PreambleCheck {
    if preamble[..4] != MAGIC {
        return PreambleCheck::NotFjord;
    }
    match u16::from_be_bytes([preamble[4], preamble[5]]) {
        VERSION => PreambleCheck::Fjord,
        other => PreambleCheck::OtherVersion(other),
    }
}

/// Decodes an encoded ([`crate::encoding`]) payload.
pub(crate) fn decode_encoded<T: serde::de::DeserializeOwned>(
    payload: &[u8],
    what: &str,
) -> Result<T> {
    crate::encoding::from_slice(payload)
        .map_err(|e| FjordError::Network(format!("malformed {what} frame: {e}")))
}

/// A fixed-size payload.
pub(crate) fn fixed<const N: usize>(payload: &[u8], what: &str) -> Result<[u8; N]> {
    payload.try_into().map_err(|_| {
        FjordError::Network(format!(
            "malformed {what} frame: {} bytes instead of {N}",
            payload.len()
        ))
    })
}

/// Reads frames from a socket with a read timeout without losing partial frames: bytes are
/// collected in a buffer and frames handed out once complete.
pub(crate) struct FrameReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// True until the preamble was taken (a server's reader): the first bytes are no frame.
    before_preamble: bool,
    /// Frames longer than this are refused: [`MAX_HANDSHAKE_FRAME`] on a server until the
    /// channel was accepted, then [`MAX_FRAME`].
    max_frame: usize,
}

/// What one attempt to read more bytes found.
pub(crate) enum Fill {
    /// This many bytes arrived.
    Bytes(usize),
    /// The read timed out; look at the stop conditions and try again.
    Timeout,
    /// The peer closed its side.
    Eof,
}

impl FrameReader {
    /// A reader of frames (the producer's side).
    pub(crate) fn new() -> Self {
        FrameReader {
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            before_preamble: false,
            max_frame: MAX_FRAME,
        }
    }

    /// A reader of the preamble, then frames (the server's side), reading only short frames
    /// until [`FrameReader::accept_large_frames`].
    pub(crate) fn with_preamble() -> Self {
        FrameReader {
            before_preamble: true,
            max_frame: MAX_HANDSHAKE_FRAME,
            ..Self::new()
        }
    }

    /// The producer's channel was accepted: frames up to [`MAX_FRAME`] from now on.
    pub(crate) fn accept_large_frames(&mut self) {
        self.max_frame = MAX_FRAME;
    }

    /// Takes the preamble once it is complete.
    pub(crate) fn preamble(&mut self) -> Option<[u8; PREAMBLE_LEN]> {
        if self.end - self.start < PREAMBLE_LEN {
            return None;
        }
        let p = self.buf[self.start..self.start + PREAMBLE_LEN]
            .try_into()
            .expect("preamble length");
        self.start += PREAMBLE_LEN;
        self.before_preamble = false;
        Some(p)
    }

    /// Takes the next complete frame: its kind and the range of its payload, valid until the
    /// next [`FrameReader::fill`].
    ///
    /// # Errors
    /// The frame's length is zero or over the limit (a corrupt stream, or a peer that is no
    /// producer of this job).
    pub(crate) fn next(&mut self) -> Result<Option<(u8, Range<usize>)>> {
        let available = self.end - self.start;
        if self.before_preamble || available < HEADER {
            return Ok(None);
        }
        let len = self.frame_len()?;
        if available < 4 + len {
            return Ok(None);
        }
        let kind = self.buf[self.start + 4];
        let payload = self.start + HEADER..self.start + 4 + len;
        self.start += 4 + len;
        Ok(Some((kind, payload)))
    }

    /// The bytes of a payload range [`FrameReader::next`] returned.
    pub(crate) fn payload(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    fn frame_len(&self) -> Result<usize> {
        let len = u32::from_be_bytes(
            self.buf[self.start..self.start + 4]
                .try_into()
                .expect("length prefix"),
        ) as usize;
        if len == 0 || len > self.max_frame {
            return Err(FjordError::Network(format!(
                "corrupt stream: frame length {len} (at most {} {})",
                self.max_frame,
                if self.max_frame < MAX_FRAME {
                    "before the producer's channel is accepted"
                } else {
                    "bytes"
                }
            )));
        }
        Ok(len)
    }

    /// Reads more bytes (at most one `read` call), making room for the frame in progress.
    ///
    /// # Errors
    /// The socket failed, or the frame in progress is corrupt.
    pub(crate) fn fill(&mut self, source: &mut impl Read) -> Result<Fill> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if !self.before_preamble && self.end >= HEADER {
            let needed = 4 + self.frame_len()?;
            if needed > self.buf.len() && self.end == self.buf.len() {
                // Grow as the frame's bytes arrive (doubling), never to the length the peer
                // merely claims: holding N bytes takes sending about N bytes.
                let grown = (self.buf.len() * 2).min(needed);
                self.buf.resize(grown, 0);
            }
        }
        if self.end == self.buf.len() {
            // A complete frame is buffered: nothing to read until it is taken.
            return Ok(Fill::Bytes(0));
        }
        match source.read(&mut self.buf[self.end..]) {
            Ok(0) => Ok(Fill::Eof),
            Ok(n) => {
                self.end += n;
                Ok(Fill::Bytes(n))
            }
            Err(e) if is_timeout(&e) => Ok(Fill::Timeout),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Fill::Bytes(0)),
            Err(e) => Err(FjordError::io("reading from a data connection", e)),
        }
    }

    /// Waits for the next complete frame until `deadline`, calling `stop` on every read
    /// timeout; `Ok(None)` when the peer closed the connection first. Received bytes are
    /// passed to `received`.
    ///
    /// # Errors
    /// The deadline passed (the message says what was awaited), `stop` returned an error, or
    /// the socket failed.
    pub(crate) fn wait(
        &mut self,
        source: &mut impl Read,
        deadline: Instant,
        what: &str,
        mut stop: impl FnMut() -> Result<()>,
        mut received: impl FnMut(usize),
    ) -> Result<Option<(u8, Range<usize>)>> {
        loop {
            if let Some(frame) = self.next()? {
                return Ok(Some(frame));
            }
            if !self.wait_fill(source, deadline, what, &mut stop, &mut received)? {
                return Ok(None);
            }
        }
    }

    /// Waits for the preamble like [`FrameReader::wait`].
    pub(crate) fn wait_preamble(
        &mut self,
        source: &mut impl Read,
        deadline: Instant,
        mut stop: impl FnMut() -> Result<()>,
        mut received: impl FnMut(usize),
    ) -> Result<Option<[u8; PREAMBLE_LEN]>> {
        loop {
            if let Some(p) = self.preamble() {
                return Ok(Some(p));
            }
            if !self.wait_fill(source, deadline, "the preamble", &mut stop, &mut received)? {
                return Ok(None);
            }
        }
    }

    /// One fill with the deadline and stop checks; false at end of stream.
    fn wait_fill(
        &mut self,
        source: &mut impl Read,
        deadline: Instant,
        what: &str,
        stop: &mut impl FnMut() -> Result<()>,
        received: &mut impl FnMut(usize),
    ) -> Result<bool> {
        match self.fill(source)? {
            Fill::Bytes(n) => received(n),
            Fill::Eof => return Ok(false),
            Fill::Timeout => {
                stop()?;
                if Instant::now() >= deadline {
                    return Err(FjordError::Network(format!("timed out waiting for {what}")));
                }
            }
        }
        Ok(true)
    }
}

/// True for the error a read or write timeout produces (the kind differs by platform).
pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Appends the handshake a producer sends for `key`.
pub(crate) fn hello(out: &mut Vec<u8>, key: &ChannelKey) -> Result<()> {
    out.extend_from_slice(&preamble());
    frame_encoded(out, kind::HELLO, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delivers its bytes in chunks of the given sizes, with a timeout between chunks.
    struct Chunked {
        data: Vec<u8>,
        pos: usize,
        chunks: Vec<usize>,
        timeout_next: bool,
    }

    impl Read for Chunked {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.timeout_next {
                self.timeout_next = false;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.timeout_next = true;
            let chunk = if self.chunks.is_empty() {
                usize::MAX
            } else {
                self.chunks.remove(0)
            };
            let n = chunk.min(buf.len()).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    #[test]
    fn frames_survive_any_split_and_timeouts() {
        let mut data = preamble().to_vec();
        let big = vec![7u8; 200_000]; // larger than the initial buffer
        frame_bytes(&mut data, kind::RECORDS, b"abc");
        frame_bytes(&mut data, kind::RECORDS, &big);
        frame_bytes(&mut data, kind::END_OF_PARTITION, &[]);
        frame_bytes(&mut data, kind::CREDIT, &5u32.to_be_bytes());
        for chunks in [vec![1; 64], vec![3, 5, 7, 11], vec![6, 8, 100_000], vec![]] {
            let mut source = Chunked {
                data: data.clone(),
                pos: 0,
                chunks,
                timeout_next: false,
            };
            let mut reader = FrameReader::with_preamble();
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            let p = reader
                .wait_preamble(&mut source, deadline, || Ok(()), |_| {})
                .unwrap()
                .unwrap();
            assert_eq!(p, preamble());
            reader.accept_large_frames();
            let mut frames = Vec::new();
            while let Some((k, range)) = reader
                .wait(&mut source, deadline, "a frame", || Ok(()), |_| {})
                .unwrap()
            {
                frames.push((k, reader.payload(range).to_vec()));
            }
            assert_eq!(
                frames,
                vec![
                    (kind::RECORDS, b"abc".to_vec()),
                    (kind::RECORDS, big.clone()),
                    (kind::END_OF_PARTITION, vec![]),
                    (kind::CREDIT, 5u32.to_be_bytes().to_vec()),
                ]
            );
        }
    }

    #[test]
    fn the_buffer_grows_with_the_bytes_that_arrive_not_with_the_length_claimed() {
        // An accepted producer announcing a 512 MiB frame and sending 100 KiB of it makes the
        // reader hold about what arrived, not 512 MiB.
        let mut data = preamble().to_vec();
        data.extend_from_slice(&(512u32 << 20).to_be_bytes());
        data.push(kind::RECORDS);
        data.extend_from_slice(&vec![1u8; 100 << 10]);
        let mut source = Chunked {
            data,
            pos: 0,
            chunks: vec![],
            timeout_next: false,
        };
        let mut reader = FrameReader::with_preamble();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        reader
            .wait_preamble(&mut source, deadline, || Ok(()), |_| {})
            .unwrap()
            .unwrap();
        reader.accept_large_frames();
        let frame = reader
            .wait(&mut source, deadline, "a frame", || Ok(()), |_| {})
            .unwrap();
        assert!(frame.is_none(), "the stream ended inside the frame");
        assert!(
            reader.buf.len() <= 256 << 10,
            "buffer of {} bytes for 100 KiB received",
            reader.buf.len()
        );
    }

    #[test]
    fn a_server_reads_no_large_frame_before_the_channel_is_accepted() {
        // A peer announcing a 1 GiB hello is refused before any buffer grows to fit it.
        let mut stream = preamble().to_vec();
        stream.extend_from_slice(&((MAX_HANDSHAKE_FRAME as u32) + 1).to_be_bytes());
        stream.push(kind::HELLO);
        let mut reader = FrameReader::with_preamble();
        let mut source: &[u8] = &stream;
        reader.fill(&mut source).unwrap();
        assert!(reader.preamble().is_some());
        let err = match reader.fill(&mut source) {
            Err(e) => e,
            Ok(_) => reader.next().map(|_| ()).unwrap_err(),
        };
        assert!(
            err.to_string()
                .contains("before the producer's channel is accepted"),
            "{err}"
        );
        assert!(
            reader.buf.len() <= 64 * 1024,
            "the buffer grew to {}",
            reader.buf.len()
        );

        // After acceptance the same length is an ordinary frame.
        let mut reader = FrameReader::with_preamble();
        let mut source: &[u8] = &stream;
        reader.fill(&mut source).unwrap();
        reader.preamble().unwrap();
        reader.accept_large_frames();
        reader.fill(&mut source).unwrap();
        assert!(
            matches!(reader.next(), Ok(None)),
            "waits for the rest of the frame"
        );
    }

    #[test]
    fn corrupt_length_is_an_error() {
        let mut reader = FrameReader::new();
        let mut source: &[u8] = &[0, 0, 0, 0, 1];
        reader.fill(&mut source).unwrap();
        assert!(matches!(reader.next(), Err(FjordError::Network(m)) if m.contains("corrupt")));
    }
}
