//! The key hash: a stable 64-bit hash of a key's canonical bytes, computed by streaming the
//! key's serde serialization into the hash without building the bytes.
//!
//! The canonical bytes of a key are its [`crate::encoding`] (the bytes of bincode 1.x's
//! `bincode::serialize`, the encoding keyed state backends store keys in): integers and
//! floats fixed-width little-endian, `bool` one byte, `char` its UTF-8 bytes, strings and
//! byte strings and sequences and maps prefixed with their length as a `u64`, `Option` a
//! `0`/`1` byte before the value, enum variants their index as a `u32`, structs and tuples
//! their fields in order with nothing around them. [`hash_key`] runs the encoding's own
//! serializer with a [`KeyHasher`] as the destination of that byte stream, which it hashes as
//! one stream: however the writes are split, the hash is [`hash_bytes`] of the concatenated
//! bytes.
//!
//! The hash itself (version 1, fixed forever for format version 3 of snapshots): the bytes
//! are read as little-endian 64-bit words (the last one padded with zero bytes), each word
//! `w` is mixed in as `h = (h.rotate_left(5) ^ w).wrapping_mul(K)` from `h = 0`, then the
//! byte count is mixed in the same way, and the result goes through Murmur3's 64-bit
//! finalizer (`fmix64`). The constants are in this file and pinned by golden tests.

use crate::encoding::{ByteSink, Encoder};
use crate::error::FjordError;
use serde::Serialize;

/// The multiplier of the word mix (FxHash's).
const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Murmur3's 64-bit finalizer: spreads the bits of a hash evenly.
#[inline]
pub(crate) fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Hashes a byte stream as described in the module docs; feed it with
/// [`write`](Self::write) (any split), or hash a key with [`hash_key`].
#[derive(Debug, Default, Clone)]
pub struct KeyHasher {
    hash: u64,
    /// Bytes not yet mixed in, in the low `pending_bits` bits (little-endian order).
    pending: u64,
    pending_bits: u32,
    len: u64,
}

impl KeyHasher {
    /// A hasher that has seen no bytes.
    pub fn new() -> Self {
        KeyHasher::default()
    }

    #[inline(always)]
    fn mix(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }

    /// Appends the low `n` bytes (1..=8) of `v` (little-endian), whose higher bytes are zero.
    #[inline(always)]
    fn push(&mut self, v: u64, n: u32) {
        debug_assert!((1..=8).contains(&n) && (n == 8 || v >> (8 * n) == 0));
        self.len += n as u64;
        let bits = 8 * n;
        // pending_bits < 64, so the shift is defined; bits of `v` above 64 are dropped here
        // and carried below.
        self.pending |= v << self.pending_bits;
        let total = self.pending_bits + bits;
        if total >= 64 {
            let word = self.pending;
            self.mix(word);
            let used = 64 - self.pending_bits;
            self.pending = v.checked_shr(used).unwrap_or(0);
            self.pending_bits = total - 64;
        } else {
            self.pending_bits = total;
        }
    }

    /// Appends bytes to the stream.
    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.push(u64::from_le_bytes(c.try_into().expect("8 bytes")), 8);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.push(u64::from_le_bytes(buf), rest.len() as u32);
        }
    }

    /// The hash of the bytes written so far.
    #[inline]
    pub fn finish(&self) -> u64 {
        let mut h = self.clone();
        if h.pending_bits > 0 {
            let word = h.pending;
            h.mix(word);
        }
        let len = h.len;
        h.mix(len);
        fmix64(h.hash)
    }
}

/// The key hash of a byte string (the canonical bytes of a key).
#[inline]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = KeyHasher::new();
    h.write(bytes);
    h.finish()
}

/// The key hash of a key: [`hash_bytes`] of its canonical bytes, without building them.
///
/// # Errors
/// [`FjordError::Serialization`] when the key's `Serialize` implementation failed, or
/// serialized a sequence or map without telling its length (which the encoding cannot write
/// either, so such a key cannot be stored).
#[inline]
pub fn hash_key<K: Serialize + ?Sized>(key: &K) -> crate::error::Result<u64> {
    let mut h = KeyHasher::new();
    key.serialize(&mut Encoder { out: &mut h })
        .map_err(|e| FjordError::Serialization {
            context: "key".into(),
            message: e.to_string(),
        })?;
    Ok(h.finish())
}

/// The key hash consumes the encoding's byte stream as it is written.
impl ByteSink for KeyHasher {
    #[inline(always)]
    fn fixed(&mut self, v: u64, width: u32) {
        self.push(v, width);
    }

    #[inline(always)]
    fn bytes(&mut self, bytes: &[u8]) {
        self.write(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    /// The streamed hash equals the hash of the encoded bytes.
    fn agrees<K: Serialize + ?Sized + std::fmt::Debug>(key: &K) {
        let bytes = crate::encoding::to_vec(key).expect("serializes");
        assert_eq!(
            hash_key(key).unwrap(),
            hash_bytes(&bytes),
            "{key:?} = {bytes:?}"
        );
    }

    #[derive(Serialize, Debug, Clone)]
    struct Nested {
        id: u32,
        tags: Vec<String>,
        parent: Option<Box<Nested>>,
        ratio: f32,
    }

    #[derive(Serialize, Debug, Clone)]
    enum Shape {
        Empty,
        Circle(f64),
        Rect { w: u16, h: u16 },
        Poly(Vec<(i32, i32)>, bool),
    }

    #[derive(Serialize, Debug, Clone, Copy)]
    struct Unit;

    #[derive(Serialize, Debug, Clone, Copy)]
    struct Wrapper(u64);

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Empty),
            any::<f64>().prop_map(Shape::Circle),
            (any::<u16>(), any::<u16>()).prop_map(|(w, h)| Shape::Rect { w, h }),
            (
                proptest::collection::vec(any::<(i32, i32)>(), 0..5),
                any::<bool>()
            )
                .prop_map(|(v, b)| Shape::Poly(v, b)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn integers_agree_with_the_encoding(
            a in any::<u8>(), b in any::<u16>(), c in any::<u32>(), d in any::<u64>(),
            e in any::<u128>(), f in any::<i8>(), g in any::<i16>(), h in any::<i32>(),
            i in any::<i64>(), j in any::<i128>(), k in any::<usize>(), l in any::<isize>(),
        ) {
            agrees(&a); agrees(&b); agrees(&c); agrees(&d); agrees(&e); agrees(&f);
            agrees(&g); agrees(&h); agrees(&i); agrees(&j); agrees(&k); agrees(&l);
            agrees(&(a, b, c, d, e, f, g, h, i, j, k, l));
        }

        #[test]
        fn scalars_and_strings_agree_with_the_encoding(
            b in any::<bool>(), c in any::<char>(), f in any::<f32>(), d in any::<f64>(),
            s in ".{0,40}", bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            agrees(&b); agrees(&c); agrees(&f); agrees(&d);
            agrees(&s); agrees(s.as_str()); agrees(&bytes);
            agrees(&BytesKey(bytes.clone()));
            agrees(&(c, s.clone(), b)); agrees(&(s, bytes));
        }

        #[test]
        fn options_collections_and_tuples_agree_with_the_encoding(
            o in proptest::option::of(any::<u32>()),
            os in proptest::option::of(".{0,10}"),
            v in proptest::collection::vec(".{0,6}", 0..6),
            m in proptest::collection::btree_map(any::<u16>(), any::<i64>(), 0..6),
            t in any::<(u8, (i16, Option<bool>), [u32; 3])>(),
        ) {
            agrees(&o); agrees(&os); agrees(&v); agrees(&m); agrees(&t);
            agrees(&(o, os, v, m, t));
            agrees(&()); agrees(&Unit); agrees(&Wrapper(7));
            agrees(&Some(Some(())));
        }

        #[test]
        fn derived_structs_and_enums_agree_with_the_encoding(
            id in any::<u32>(), tags in proptest::collection::vec(".{0,5}", 0..4),
            ratio in any::<f32>(), shapes in proptest::collection::vec(shape(), 0..5),
        ) {
            let inner = Nested { id, tags: tags.clone(), parent: None, ratio };
            let outer = Nested { id: id ^ 1, tags, parent: Some(Box::new(inner)), ratio };
            agrees(&outer);
            for s in &shapes {
                agrees(s);
            }
            agrees(&shapes);
            let map: BTreeMap<String, Shape> =
                shapes.into_iter().enumerate().map(|(i, s)| (i.to_string(), s)).collect();
            agrees(&map);
        }

        #[test]
        fn the_hash_does_not_depend_on_how_writes_are_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..100),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut h = KeyHasher::new();
            let mut at = 0;
            for p in points {
                h.write(&bytes[at..p]);
                at = p;
            }
            h.write(&bytes[at..]);
            prop_assert_eq!(h.finish(), hash_bytes(&bytes));
        }
    }

    /// A byte string serialized with `serialize_bytes` (as `serde_bytes` does).
    #[derive(Debug)]
    struct BytesKey(Vec<u8>);

    impl Serialize for BytesKey {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    #[test]
    fn distinct_lengths_hash_differently() {
        // Zero padding of the last word does not make "a" and "a\0" equal.
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
        assert_ne!(hash_bytes(&[0; 8]), hash_bytes(&[0; 16]));
    }

    #[test]
    fn a_sequence_of_unknown_length_is_an_error() {
        struct Unsized;
        impl Serialize for Unsized {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(std::iter::from_fn(|| Some(1u8)).take(3).filter(|_| true))
            }
        }
        assert!(hash_key(&Unsized).is_err());
        assert!(crate::encoding::to_vec(&Unsized).is_err());
    }
}
