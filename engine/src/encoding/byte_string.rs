//! Byte strings: `Vec<u8>` fields of snapshots written with `serialize_bytes` and read with
//! `deserialize_byte_buf`.
//!
//! serde writes a `Vec<u8>` as a sequence, one `serialize_u8` call per byte. In this format a
//! sequence of `u8` and a byte string are the same bytes (the length as a `u64`, then the
//! bytes), so a field that goes through these adapters keeps its encoding, and savepoints of
//! any earlier release read as before, while the bytes are copied at once. Snapshots are
//! mostly such fields (a key group's entries, their keys and values, an operator's key
//! groups), copied several times on their way to storage: in a profile of Nexmark q18 with a
//! checkpoint of its 1.4 GB of heap state, over a tenth of the samples were per-byte calls.

use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A borrowed byte string, for writing.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// An owned byte string, for reading (and writing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(ByteBufVisitor).map(ByteBuf)
    }
}

struct ByteBufVisitor;

impl<'de> Visitor<'de> for ByteBufVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element()? {
            out.push(b);
        }
        Ok(out)
    }
}

/// `#[serde(with = "crate::encoding::byte_string::option")]` for an `Option<Vec<u8>>` field.
pub mod option {
    use super::*;

    /// Writes `v` as an optional byte string.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().map(Bytes).serialize(s)
    }

    /// Reads an optional byte string.
    ///
    /// # Errors
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<ByteBuf>::deserialize(d)?.map(|b| b.0))
    }
}

/// `#[serde(with = "crate::encoding::byte_string::indexed")]` for a `Vec<(usize, Vec<u8>)>`
/// field (an operator's key groups and their bytes).
pub mod indexed {
    use super::*;

    /// Writes `v` as a sequence of (index, byte string).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(v: &[(usize, Vec<u8>)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for (i, bytes) in v {
            seq.serialize_element(&(i, Bytes(bytes)))?;
        }
        seq.end()
    }

    /// Reads a sequence of (index, byte string).
    ///
    /// # Errors
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(usize, Vec<u8>)>, D::Error> {
        let v = Vec::<(usize, ByteBuf)>::deserialize(d)?;
        Ok(v.into_iter().map(|(i, b)| (i, b.0)).collect())
    }
}

/// Byte strings written as a fixed-size tuple: the encoding of `[Vec<u8>; N]`, which
/// `[ByteBuf; N]` reads.
pub struct Array<'a>(pub &'a [Vec<u8>]);

impl Serialize for Array<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(self.0.len())?;
        for p in self.0 {
            t.serialize_element(&Bytes(p))?;
        }
        t.end()
    }
}

/// `#[serde(with = "crate::encoding::byte_string::named_triples")]` for a
/// `Vec<(String, Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>)>` field (a key group's snapshot: per
/// state, its (key, namespace, value) entries).
pub mod named_triples {
    use super::*;

    /// One state's entries, written as a sequence of three byte strings each.
    struct Triples<'a>(&'a [(Vec<u8>, Vec<u8>, Vec<u8>)]);

    impl Serialize for Triples<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for (k, n, v) in self.0 {
                seq.serialize_element(&(Bytes(k), Bytes(n), Bytes(v)))?;
            }
            seq.end()
        }
    }

    type Named = (String, Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>);

    /// Writes `v` as a sequence of (name, entries).
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(v: &[Named], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for (name, entries) in v {
            seq.serialize_element(&(name, Triples(entries)))?;
        }
        seq.end()
    }

    /// Reads a sequence of (name, entries).
    ///
    /// # Errors
    /// The deserializer's.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Named>, D::Error> {
        let v = Vec::<(String, Vec<(ByteBuf, ByteBuf, ByteBuf)>)>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|(name, entries)| {
                let entries = entries.into_iter().map(|(k, n, v)| (k.0, n.0, v.0));
                (name, entries.collect())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{from_slice, to_vec};

    type Named = Vec<(String, Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>)>;

    /// The fields as serde derives them (sequences of `u8`)...
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Plain {
        indexed: Vec<(usize, Vec<u8>)>,
        option: Option<Vec<u8>>,
        named: Named,
        array: [Vec<u8>; 3],
    }

    /// ...and through the adapters.
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Adapted {
        #[serde(with = "indexed")]
        indexed: Vec<(usize, Vec<u8>)>,
        #[serde(with = "option")]
        option: Option<Vec<u8>>,
        #[serde(with = "named_triples")]
        named: Named,
        array: [ByteBuf; 3],
    }

    fn bytes(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| (seed * 31 + i * 7) as u8).collect()
    }

    fn plain(option: bool) -> Plain {
        Plain {
            indexed: vec![(3, bytes(1, 40)), (7, Vec::new()), (127, bytes(2, 300))],
            option: option.then(|| bytes(3, 9)),
            named: vec![
                (
                    "sum".into(),
                    vec![(bytes(4, 8), Vec::new(), bytes(5, 17)); 3],
                ),
                ("_fjord.windows".into(), Vec::new()),
            ],
            array: [bytes(6, 2), Vec::new(), bytes(7, 1000)],
        }
    }

    fn adapted(p: Plain) -> Adapted {
        Adapted {
            indexed: p.indexed,
            option: p.option,
            named: p.named,
            array: p.array.map(ByteBuf),
        }
    }

    #[test]
    fn byte_strings_are_the_bytes_of_sequences_of_u8_both_ways() {
        for option in [true, false] {
            let plain_bytes = to_vec(&plain(option)).unwrap();
            assert_eq!(to_vec(&adapted(plain(option))).unwrap(), plain_bytes);
            let array = plain(option).array;
            assert_eq!(to_vec(&Array(&array)).unwrap(), to_vec(&array).unwrap());
            let read: Adapted = from_slice(&plain_bytes).unwrap();
            assert_eq!(read, adapted(plain(option)));
        }
    }

    #[test]
    fn a_truncated_byte_string_is_an_error() {
        let bytes = to_vec(&adapted(plain(true))).unwrap();
        for cut in [1, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                from_slice::<Adapted>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
