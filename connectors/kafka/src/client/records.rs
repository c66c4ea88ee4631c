//! Record batches (the v2 "magic 2" format every Kafka since 0.11 writes): encoding what a
//! producer sends, decoding what a fetch returns, and the `read_committed` filter.
//!
//! Own code rather than `kafka_protocol::records` because a consumer needs what that decoder
//! hides: the batch's last offset (to skip past control and compacted batches), the maximum
//! timestamp (log-append-time topics), duplicate header keys (Kafka allows them), and a tolerant
//! end (a fetch may end with a partial batch). Compression itself is `kafka_protocol`'s.

use super::config::Codec;
use super::{ConsumerRecord, IsolationLevel, ProducerRecord, Result};
use crate::error::KafkaError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Snappy};
use std::collections::{BTreeSet, HashSet};

/// Bytes before the first record of a batch.
pub(crate) const BATCH_HEADER: usize = 61;
/// Offset of the magic byte.
const MAGIC_AT: usize = 16;
/// Offset of the first field the CRC covers (attributes).
const CRC_FROM: usize = 21;

const ATTR_COMPRESSION: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Control record type of an abort marker.
const CONTROL_ABORT: i16 = 0;

/// Identity a producer stamps on a batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchIdentity {
    /// Producer id (-1 without idempotence).
    pub producer_id: i64,
    /// Producer epoch (-1 without idempotence).
    pub producer_epoch: i16,
    /// Sequence of the first record (-1 without idempotence).
    pub base_sequence: i32,
    /// Part of a transaction.
    pub transactional: bool,
}

/// A record with its timestamp resolved, waiting in a producer buffer.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub timestamp: i64,
    pub record: ProducerRecord,
}

impl Pending {
    /// Upper bound of the encoded size (uncompressed), for `batch.size`.
    pub fn estimated_size(&self) -> usize {
        let r = &self.record;
        21 + r.key.as_ref().map_or(0, |k| k.len())
            + r.value.as_ref().map_or(0, |v| v.len())
            + r.headers
                .iter()
                .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, |v| v.len()))
                .sum::<usize>()
    }
}

/// Encodes `records` as one batch with base offset 0.
pub(crate) fn encode_batch(records: &[Pending], id: BatchIdentity, codec: Codec) -> Result<Bytes> {
    let count = i32::try_from(records.len()).map_err(|_| encode_error("too many records"))?;
    if count == 0 {
        return Err(encode_error("empty batch"));
    }
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
    let mut plain = BytesMut::with_capacity(records.iter().map(Pending::estimated_size).sum());
    for (i, p) in records.iter().enumerate() {
        encode_record(&mut plain, p, base_ts, i as i32)?;
    }
    let mut buf = BytesMut::with_capacity(BATCH_HEADER + plain.len());
    buf.put_i64(0); // base offset (the broker assigns)
    buf.put_i32(0); // length, filled below
    buf.put_i32(-1); // partition leader epoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, filled below
    let mut attributes = match codec {
        Codec::None => 0,
        Codec::Gzip => 1,
        Codec::Snappy => 2,
    };
    if id.transactional {
        attributes |= ATTR_TRANSACTIONAL;
    }
    buf.put_i16(attributes);
    buf.put_i32(count - 1); // last offset delta
    buf.put_i64(base_ts);
    buf.put_i64(max_ts);
    buf.put_i64(id.producer_id);
    buf.put_i16(id.producer_epoch);
    buf.put_i32(id.base_sequence);
    buf.put_i32(count);
    match codec {
        Codec::None => buf.put_slice(&plain),
        Codec::Gzip => Gzip::compress(&mut buf, |out: &mut BytesMut| {
            out.put_slice(&plain);
            Ok(())
        })
        .map_err(|e| encode_error(&format!("gzip: {e}")))?,
        Codec::Snappy => Snappy::compress(&mut buf, |out: &mut BytesMut| {
            out.put_slice(&plain);
            Ok(())
        })
        .map_err(|e| encode_error(&format!("snappy: {e}")))?,
    }
    let len = i32::try_from(buf.len() - 12).map_err(|_| encode_error("batch larger than 2 GiB"))?;
    buf[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_FROM..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(buf.freeze())
}

fn encode_record(buf: &mut BytesMut, p: &Pending, base_ts: i64, offset_delta: i32) -> Result<()> {
    let mut body = BytesMut::with_capacity(p.estimated_size());
    body.put_i8(0); // attributes
    put_varlong(&mut body, p.timestamp - base_ts);
    put_varlong(&mut body, i64::from(offset_delta));
    put_bytes(&mut body, p.record.key.as_deref())?;
    put_bytes(&mut body, p.record.value.as_deref())?;
    put_varlong(&mut body, p.record.headers.len() as i64);
    for (k, v) in &p.record.headers {
        put_bytes(&mut body, Some(k.as_bytes()))?;
        put_bytes(&mut body, v.as_deref())?;
    }
    put_varlong(buf, body.len() as i64);
    buf.put_slice(&body);
    Ok(())
}

fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) -> Result<()> {
    match b {
        None => put_varlong(buf, -1),
        Some(b) => {
            let len =
                i32::try_from(b.len()).map_err(|_| encode_error("field larger than 2 GiB"))?;
            put_varlong(buf, i64::from(len));
            buf.put_slice(b);
        }
    }
    Ok(())
}

fn put_varlong(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn encode_error(message: &str) -> KafkaError {
    KafkaError::Protocol {
        api: "Produce",
        message: format!("cannot encode record batch: {message}"),
    }
}

/// One decoded batch.
#[derive(Debug)]
pub(crate) struct Batch {
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    /// `Some(type)` for a control batch (0 abort, 1 commit).
    pub control: Option<i16>,
    pub records: Vec<ConsumerRecord>,
    /// Encoded size of the batch.
    pub size: usize,
}

/// Splits `data` into whole batches (a trailing partial batch, which a fetch response may
/// end with, is ignored) and decodes them. `target` names the partition for errors.
pub(crate) fn decode_batches(mut data: Bytes, target: &str) -> Result<Vec<Batch>> {
    let mut out = Vec::new();
    while data.len() >= 12 {
        let length = (&data[8..12]).get_i32();
        if length < 0 {
            return Err(corrupt(target, "negative batch length"));
        }
        let total = 12 + length as usize;
        if data.len() < total {
            break; // partial batch at the end of a fetch response
        }
        let raw = data.split_to(total);
        out.push(decode_batch(raw, target)?);
    }
    Ok(out)
}

fn decode_batch(raw: Bytes, target: &str) -> Result<Batch> {
    let size = raw.len();
    let base_offset = (&raw[0..8]).get_i64();
    if raw.len() <= MAGIC_AT {
        return Err(corrupt(target, "batch shorter than its header"));
    }
    let magic = raw[MAGIC_AT] as i8;
    if magic != 2 {
        return Err(KafkaError::Protocol {
            api: "Fetch",
            message: format!(
                "{target} at offset {base_offset} holds a message set of format v{magic} (written by \
                 a Kafka older than 0.11); this client reads record batches v2 only"
            ),
        });
    }
    if raw.len() < BATCH_HEADER {
        return Err(corrupt(target, "batch shorter than its header"));
    }
    let mut h = &raw[17..BATCH_HEADER];
    let crc = h.get_u32();
    if crc32c::crc32c(&raw[CRC_FROM..]) != crc {
        return Err(corrupt(
            target,
            &format!("CRC mismatch in the batch at offset {base_offset}"),
        ));
    }
    let attributes = h.get_i16();
    let last_offset_delta = h.get_i32();
    let base_ts = h.get_i64();
    let max_ts = h.get_i64();
    let producer_id = h.get_i64();
    let _epoch = h.get_i16();
    let _base_sequence = h.get_i32();
    let count = h.get_i32();
    let last_offset = base_offset + i64::from(last_offset_delta);
    let transactional = attributes & ATTR_TRANSACTIONAL != 0;
    let log_append = attributes & ATTR_LOG_APPEND_TIME != 0;
    let is_control = attributes & ATTR_CONTROL != 0;
    let body = raw.slice(BATCH_HEADER..);
    let mut body = match attributes & ATTR_COMPRESSION {
        0 => body,
        1 => decompress::<Gzip>(body, target, base_offset, "gzip")?,
        2 => decompress::<Snappy>(body, target, base_offset, "snappy")?,
        c => {
            let name = match c {
                3 => "lz4",
                4 => "zstd",
                _ => "an unknown codec",
            };
            return Err(KafkaError::Protocol {
                api: "Fetch",
                message: format!(
                    "{target}: the batch at offset {base_offset} is compressed with {name}, which this \
                     pure-Rust client cannot decompress (it reads none, gzip and snappy); have the \
                     producers use compression.type=gzip, snappy or none, or set the topic's \
                     compression.type to one of them"
                ),
            });
        }
    };
    let mut records = Vec::with_capacity(count.max(0) as usize);
    let mut control = None;
    for _ in 0..count.max(0) {
        let mut r = read_record(&mut body, base_offset, base_ts).ok_or_else(|| {
            corrupt(
                target,
                &format!("truncated record in the batch at offset {base_offset}"),
            )
        })?;
        if log_append {
            r.timestamp = max_ts;
        }
        if is_control {
            // Key: version (i16), type (i16).
            control = Some(
                r.key
                    .as_ref()
                    .filter(|k| k.len() >= 4)
                    .map_or(-1, |k| (&k[2..4]).get_i16()),
            );
        } else {
            records.push(r);
        }
    }
    Ok(Batch {
        last_offset,
        producer_id,
        transactional,
        control: if is_control {
            Some(control.unwrap_or(-1))
        } else {
            None
        },
        records,
        size,
    })
}

fn decompress<D: Decompressor<Bytes, Buf = Bytes>>(
    mut body: Bytes,
    target: &str,
    base_offset: i64,
    name: &str,
) -> Result<Bytes> {
    D::decompress(&mut body, |out: &mut Bytes| Ok(out.clone())).map_err(|e| {
        corrupt(
            target,
            &format!("cannot {name}-decompress the batch at offset {base_offset}: {e}"),
        )
    })
}

fn read_record(buf: &mut Bytes, base_offset: i64, base_ts: i64) -> Option<ConsumerRecord> {
    let len = get_varlong(buf)?;
    if len < 0 || buf.len() < len as usize {
        return None;
    }
    let mut r = buf.split_to(len as usize);
    let _attributes = r.try_get_i8().ok()?;
    let ts_delta = get_varlong(&mut r)?;
    let offset_delta = get_varlong(&mut r)?;
    let key = get_bytes(&mut r)?;
    let value = get_bytes(&mut r)?;
    let header_count = get_varlong(&mut r)?;
    if header_count < 0 || header_count > r.len() as i64 {
        return None;
    }
    let mut headers = Vec::with_capacity(header_count as usize);
    for _ in 0..header_count {
        let k = get_bytes(&mut r)??;
        let v = get_bytes(&mut r)?;
        headers.push((String::from_utf8_lossy(&k).into_owned(), v));
    }
    Some(ConsumerRecord {
        offset: base_offset + offset_delta,
        timestamp: base_ts + ts_delta,
        key,
        value,
        headers,
    })
}

/// `Some(None)` for a null field, `None` when truncated.
fn get_bytes(buf: &mut Bytes) -> Option<Option<Bytes>> {
    let len = get_varlong(buf)?;
    if len < 0 {
        return Some(None);
    }
    if buf.len() < len as usize {
        return None;
    }
    Some(Some(buf.split_to(len as usize)))
}

fn get_varlong(buf: &mut Bytes) -> Option<i64> {
    let mut z: u64 = 0;
    for i in 0..10 {
        let b = buf.try_get_u8().ok()?;
        z |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

fn corrupt(target: &str, message: &str) -> KafkaError {
    KafkaError::Protocol {
        api: "Fetch",
        message: format!("corrupt record data from {target}: {message}"),
    }
}

/// What a fetch of one partition yields after filtering.
#[derive(Debug, Default)]
pub(crate) struct Filtered {
    pub records: Vec<ConsumerRecord>,
    /// Offset to fetch next (`fetch_offset` when no whole batch arrived).
    pub next_offset: i64,
    /// Bytes of whole batches.
    pub bytes: usize,
}

/// Applies the isolation level to decoded batches (Kafka's consumer algorithm): control
/// batches are never returned; with `read_committed`, a transactional batch whose producer has
/// an aborted transaction starting at or before it (per the response's aborted transaction
/// list) is dropped until that producer's abort marker. Records before `fetch_offset` (a fetch
/// starting inside a batch) are dropped too.
pub(crate) fn filter(
    batches: Vec<Batch>,
    fetch_offset: i64,
    isolation: IsolationLevel,
    aborted: &[(i64, i64)],
) -> Filtered {
    let mut pending: BTreeSet<(i64, i64)> =
        aborted.iter().map(|(pid, first)| (*first, *pid)).collect();
    let mut aborting: HashSet<i64> = HashSet::new();
    let mut out = Filtered {
        next_offset: fetch_offset,
        ..Filtered::default()
    };
    for batch in batches {
        out.bytes += batch.size;
        if batch.last_offset < fetch_offset {
            continue;
        }
        out.next_offset = out.next_offset.max(batch.last_offset + 1);
        if isolation == IsolationLevel::ReadCommitted {
            while let Some(&(first, pid)) = pending.first() {
                if first > batch.last_offset {
                    break;
                }
                pending.pop_first();
                aborting.insert(pid);
            }
        }
        if let Some(kind) = batch.control {
            if kind == CONTROL_ABORT {
                aborting.remove(&batch.producer_id);
            }
            continue;
        }
        if isolation == IsolationLevel::ReadCommitted
            && batch.transactional
            && aborting.contains(&batch.producer_id)
        {
            continue;
        }
        out.records.extend(
            batch
                .records
                .into_iter()
                .filter(|r| r.offset >= fetch_offset),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(key: &str, value: &str, ts: i64) -> Pending {
        Pending {
            timestamp: ts,
            record: ProducerRecord {
                key: Some(Bytes::from(key.to_string())),
                value: Some(Bytes::from(value.to_string())),
                timestamp: Some(ts),
                headers: vec![
                    ("h".into(), Some(Bytes::from_static(b"1"))),
                    ("h".into(), None),
                ],
            },
        }
    }

    /// A batch as the broker stores it: the base offset set.
    fn at(offset: i64, batch: Bytes) -> Bytes {
        let mut b = BytesMut::from(&batch[..]);
        b[0..8].copy_from_slice(&offset.to_be_bytes());
        b.freeze()
    }

    fn id(pid: i64, transactional: bool) -> BatchIdentity {
        BatchIdentity {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            transactional,
        }
    }

    /// A control batch (commit or abort marker) of `pid` at `offset`, built by hand.
    fn marker(offset: i64, pid: i64, kind: i16) -> Bytes {
        let mut key = BytesMut::new();
        key.put_i16(0);
        key.put_i16(kind);
        let value = Bytes::from_static(&[0, 0, 0, 0, 0, 0]);
        let p = Pending {
            timestamp: 5,
            record: ProducerRecord {
                key: Some(key.freeze()),
                value: Some(value),
                timestamp: Some(5),
                headers: vec![],
            },
        };
        let batch = encode_batch(&[p], id(pid, true), Codec::None).unwrap();
        let mut b = BytesMut::from(&at(offset, batch)[..]);
        let attrs = (&b[21..23]).get_i16() | ATTR_CONTROL;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_FROM..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        let mut b = BytesMut::new();
        for p in parts {
            b.put_slice(p);
        }
        b.freeze()
    }

    #[test]
    fn round_trips_keys_values_headers_and_timestamps_with_every_codec() {
        for codec in [Codec::None, Codec::Gzip, Codec::Snappy] {
            let records = vec![pending("k1", "v1", 1000), pending("k2", "v2", 990)];
            let batch = at(42, encode_batch(&records, id(-1, false), codec).unwrap());
            let decoded = decode_batches(batch, "t-0").unwrap();
            assert_eq!(decoded.len(), 1);
            let b = &decoded[0];
            assert_eq!(b.last_offset, 43);
            let got: Vec<_> = b.records.iter().map(|r| (r.offset, r.timestamp)).collect();
            assert_eq!(got, vec![(42, 1000), (43, 990)], "{codec:?}");
            assert_eq!(b.records[1].key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(b.records[1].value.as_deref(), Some(&b"v2"[..]));
            // Duplicate header keys survive, in order.
            assert_eq!(
                b.records[0].headers,
                vec![
                    ("h".to_string(), Some(Bytes::from_static(b"1"))),
                    ("h".to_string(), None)
                ]
            );
        }
    }

    #[test]
    fn ignores_a_partial_trailing_batch_and_rejects_corruption() {
        let full = at(
            0,
            encode_batch(&[pending("a", "b", 1)], id(-1, false), Codec::None).unwrap(),
        );
        let second = at(
            1,
            encode_batch(&[pending("c", "d", 2)], id(-1, false), Codec::None).unwrap(),
        );
        let data = concat(&[full.clone(), second.slice(..second.len() - 3)]);
        let batches = decode_batches(data, "t-0").unwrap();
        assert_eq!(batches.len(), 1);
        let f = filter(batches, 0, IsolationLevel::ReadUncommitted, &[]);
        assert_eq!((f.records.len(), f.next_offset), (1, 1));

        let mut bad = BytesMut::from(&full[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let err = decode_batches(bad.freeze(), "t-0").unwrap_err().to_string();
        assert!(err.contains("CRC mismatch"), "{err}");
    }

    #[test]
    fn names_codecs_it_cannot_read() {
        let batch = encode_batch(&[pending("a", "b", 1)], id(-1, false), Codec::None).unwrap();
        let mut b = BytesMut::from(&batch[..]);
        b[21..23].copy_from_slice(&4i16.to_be_bytes()); // zstd
        let crc = crc32c::crc32c(&b[CRC_FROM..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = decode_batches(b.freeze(), "t-3").unwrap_err().to_string();
        assert!(
            err.contains("t-3") && err.contains("zstd") && err.contains("gzip"),
            "{err}"
        );
    }

    #[test]
    fn read_committed_drops_aborted_transactions_and_control_batches() {
        // pid 7: aborted transaction at 0..=1, abort marker at 2;
        // pid 8: committed transaction at 3, commit marker at 4;
        // pid 7 again: a later committed transaction at 5, marker at 6;
        // a plain record at 7.
        let txn = |offset, pid, v: &str| {
            at(
                offset,
                encode_batch(&[pending("k", v, 1)], id(pid, true), Codec::None).unwrap(),
            )
        };
        let data = concat(&[
            txn(0, 7, "aborted-1"),
            txn(1, 7, "aborted-2"),
            marker(2, 7, 0),
            txn(3, 8, "committed-8"),
            marker(4, 8, 1),
            txn(5, 7, "committed-7"),
            marker(6, 7, 1),
            at(
                7,
                encode_batch(&[pending("k", "plain", 1)], id(-1, false), Codec::None).unwrap(),
            ),
        ]);
        let values = |f: &Filtered| -> Vec<String> {
            f.records
                .iter()
                .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
                .collect()
        };
        let batches = decode_batches(data.clone(), "t-0").unwrap();
        let committed = filter(batches, 0, IsolationLevel::ReadCommitted, &[(7, 0)]);
        assert_eq!(
            values(&committed),
            vec!["committed-8", "committed-7", "plain"]
        );
        assert_eq!(committed.next_offset, 8);

        let batches = decode_batches(data.clone(), "t-0").unwrap();
        let all = filter(batches, 0, IsolationLevel::ReadUncommitted, &[(7, 0)]);
        assert_eq!(
            values(&all),
            vec![
                "aborted-1",
                "aborted-2",
                "committed-8",
                "committed-7",
                "plain"
            ]
        );

        // Starting after the abort: nothing of it is returned, the rest is.
        let batches = decode_batches(data, "t-0").unwrap();
        let tail = filter(batches, 3, IsolationLevel::ReadCommitted, &[]);
        assert_eq!(values(&tail), vec!["committed-8", "committed-7", "plain"]);
    }

    #[test]
    fn a_fetch_ending_on_a_control_batch_moves_past_it() {
        let data = concat(&[marker(10, 3, 1)]);
        let f = filter(
            decode_batches(data, "t-0").unwrap(),
            10,
            IsolationLevel::ReadCommitted,
            &[],
        );
        assert!(f.records.is_empty());
        assert_eq!(f.next_offset, 11);
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(get_varlong(&mut b.freeze()), Some(v));
        }
    }
}
