//! Entry points for fuzzing the data plane's decoding (the targets in `fuzz/`): the bytes one
//! inbound connection delivers, decoded as a TaskManager's data port decodes them, without a
//! socket or threads.
//!
//! [`decode_inbound`] runs the reader and decoders of `inbound` in the same order: the
//! preamble and its check, the hello (a [`ChannelKey`]), then data frames turned into events
//! with the channel's codec (here records of `(String, i64)`). The one difference: a barrier's
//! storage target is parsed but not opened (opening a `file://` target creates its
//! directory, which a fuzzer must not do on the machine running it).

use super::codec::TypedCodec;
use super::key::ChannelKey;
use super::protocol::{
    self, BarrierWire, FrameReader, PreambleCheck, decode_encoded, decode_event, kind,
};
use crate::error::Result;
use crate::exchange::channel::Event;
use crate::storage::StorageOptions;
use std::io::Read;
use std::time::{Duration, Instant};

/// What [`decode_inbound`] decoded before the bytes ended or the first error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The preamble was complete and named this protocol's version.
    pub preamble: bool,
    /// The producer's hello.
    pub hello: Option<ChannelKey>,
    /// Data events decoded after the hello.
    pub events: usize,
    /// The error the connection would have been closed with.
    pub error: Option<String>,
}

/// Delivers bytes in reads of the sizes of `sizes` (cycled; a zero size reads one byte).
struct Reads<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    next: usize,
}

impl Read for Reads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = match self.sizes {
            [] => usize::MAX,
            sizes => {
                let s = sizes[self.next % sizes.len()];
                self.next += 1;
                usize::from(s.max(1)) * 97
            }
        };
        let n = size.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Decodes `bytes` as one producer's connection, delivered in reads whose sizes `read_sizes`
/// give (see the module docs). Returns what was decoded; any input, however malformed, ends
/// in a [`Decoded`] with or without an error, never in a panic or an allocation much larger
/// than the input.
pub fn decode_inbound(bytes: &[u8], read_sizes: &[u8]) -> Decoded {
    let mut decoded = Decoded::default();
    if let Err(e) = run(bytes, read_sizes, &mut decoded) {
        decoded.error = Some(e.to_string());
    }
    decoded
}

fn run(bytes: &[u8], read_sizes: &[u8], decoded: &mut Decoded) -> Result<()> {
    let mut source = Reads {
        data: bytes,
        sizes: read_sizes,
        next: 0,
    };
    let mut reader = FrameReader::with_preamble();
    let codec: std::sync::Arc<dyn super::codec::BatchCodec> =
        std::sync::Arc::new(TypedCodec::<(String, i64)>::new());
    let storage = StorageOptions::default();
    // The reads never time out, so the deadline is never looked at.
    let deadline = Instant::now() + Duration::from_secs(3600);
    let Some(preamble) = reader.wait_preamble(&mut source, deadline, || Ok(()), |_| {})? else {
        return Ok(());
    };
    if protocol::check_preamble(&preamble) != PreambleCheck::Fjord {
        return Ok(());
    }
    decoded.preamble = true;
    let hello = reader.wait(&mut source, deadline, "the hello", || Ok(()), |_| {})?;
    let Some((kind::HELLO, range)) = hello else {
        return Ok(());
    };
    decoded.hello = Some(decode_encoded(reader.payload(range), "hello")?);
    reader.accept_large_frames();
    while let Some((k, range)) = reader.wait(&mut source, deadline, "a frame", || Ok(()), |_| {})? {
        let payload = reader.payload(range);
        if k == kind::BARRIER {
            let _: BarrierWire = decode_encoded(payload, "barrier")?;
        } else {
            match decode_event(k, payload, &codec, &storage)? {
                // What the consuming task does with a record frame.
                Some(event @ Event::Encoded(_)) => drop(event.into_batch()?),
                Some(_) => {}
                None => return Ok(()),
            }
        }
        decoded.events += 1;
    }
    Ok(())
}

/// A well-formed connection's bytes: preamble, hello and one event of every kind (records,
/// watermark, watermark status, barrier, end of partition) — the fuzz targets' seed.
pub fn sample_connection() -> Vec<u8> {
    use crate::types::StreamRecord;
    let mut out = protocol::preamble().to_vec();
    let hello = ChannelKey {
        job_id: "job".into(),
        epoch: 1,
        attempt: 0,
        edge: 2,
        producer: 0,
        consumer: 1,
    };
    protocol::frame_encoded(&mut out, kind::HELLO, &hello).expect("hello encodes");
    let codec = TypedCodec::<(String, i64)>::new();
    let records: Vec<StreamRecord<(String, i64)>> = vec![
        StreamRecord::with_timestamp(("a".into(), 1), 10),
        StreamRecord::new(("b".into(), 2)),
    ];
    let events = [
        Event::Records(Box::new(records)),
        Event::Watermark(5),
        Event::WatermarkStatus { idle: true },
        Event::EndOfPartition,
    ];
    for event in &events {
        protocol::encode_event(event, &codec, &mut out).expect("event encodes");
    }
    protocol::frame_encoded(
        &mut out,
        kind::BARRIER,
        &BarrierWire {
            id: 3,
            timestamp: 4,
            target: "memory://fuzz".into(),
            savepoint: false,
            stop: None,
            full: false,
        },
    )
    .expect("barrier encodes");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_decodes_whole_in_any_read_sizes() {
        let bytes = sample_connection();
        for sizes in [&[][..], &[1], &[0, 3, 255], &[2, 1]] {
            let d = decode_inbound(&bytes, sizes);
            assert_eq!(d.error, None, "{sizes:?}");
            assert!(d.preamble);
            assert_eq!(d.hello.as_ref().map(|h| h.edge), Some(2));
            assert_eq!(d.events, 5, "{sizes:?}");
        }
    }

    /// The fuzz target's seed (`fuzz/seeds/data_frames/sample`: a zero byte, no read sizes,
    /// then [`sample_connection`]) is the current protocol's; `FJORD_WRITE_FUZZ_SEED=1`
    /// rewrites it after a protocol change.
    #[test]
    fn the_fuzz_seed_is_the_current_sample() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds/data_frames/sample");
        let mut expected = vec![0u8];
        expected.extend(sample_connection());
        if std::env::var_os("FJORD_WRITE_FUZZ_SEED").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let seed = std::fs::read(&path).unwrap();
        assert!(
            seed == expected,
            "{} is not the current protocol's sample connection; rewrite it with \
             FJORD_WRITE_FUZZ_SEED=1 cargo test -p fjord --lib the_fuzz_seed",
            path.display()
        );
    }

    #[test]
    fn malformed_connections_end_in_an_error_not_a_panic() {
        let bytes = sample_connection();
        // Truncated anywhere, or with any single byte flipped.
        for cut in 0..bytes.len() {
            let d = decode_inbound(&bytes[..cut], &[1]);
            assert!(d.events <= 5);
        }
        let mut errors = 0;
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            errors += usize::from(decode_inbound(&b, &[]).error.is_some());
        }
        assert!(errors > 0, "no flipped byte was noticed");
        // Not a Fjord producer: nothing decoded, no error (the connection is just closed).
        let d = decode_inbound(b"GET / HTTP/1.1\r\n\r\n", &[]);
        assert!(!d.preamble && d.hello.is_none());
    }
}
