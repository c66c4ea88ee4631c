//! Fjord's binary encoding: the one module through which every persistent and wire byte
//! format is written and read — savepoints and checkpoints (operator and keyed state,
//! timers, source splits, sink transactions), RocksDB keys and values, and the record
//! batches of network channels.
//!
//! # The format
//! The bytes are those of bincode 1.x's default configuration (`bincode::serialize`), which
//! every snapshot Fjord has written so far uses, so savepoints of earlier releases are read
//! as they are, with no migration; the code that writes and reads them is Fjord's own
//! (bincode 1.x is no longer maintained), and `encoding/tests.rs` checks byte for byte
//! against bincode 1.3 over generated values of every serde shape while the golden
//! savepoints of `engine/src/keygroup/golden.rs` and `state-rocksdb/tests/golden_savepoints.rs`
//! pin real snapshot files. The rules, over serde's data model:
//!
//! | serde type | bytes |
//! |---|---|
//! | `bool` | one byte, `0` or `1` (anything else is refused) |
//! | `i8`..`i128`, `u8`..`u128` | fixed width, little-endian |
//! | `f32`, `f64` | their IEEE 754 bits, little-endian |
//! | `char` | its UTF-8 bytes (1 to 4), no length |
//! | `str`, `bytes` | the length as a `u64`, then the bytes |
//! | `Option` | `0`, or `1` then the value |
//! | unit, unit struct | nothing |
//! | newtype struct | the value |
//! | sequence, map | the number of elements (or entries) as a `u64`, then each element (key, value) |
//! | tuple, tuple struct, struct | the fields in order, nothing around them |
//! | enum variant | the variant's index as a `u32`, then its fields as above |
//!
//! A sequence or map must know its length before it is written. Reading needs the type
//! (there are no tags): `deserialize_any`, identifiers and ignored values are refused. Bytes
//! left after a value are allowed by [`from_slice`] (as bincode's `deserialize` allows them);
//! [`take_from`] reads one value from the front of a slice and advances it.
//!
//! Snapshot files carry their format version in their metadata
//! ([`crate::checkpoint`]); a change of these rules is a new format version, and a reader of
//! the old one stays here.

pub mod byte_string;
mod de;
mod ser;

pub(crate) use ser::{ByteSink, Encoder};
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

/// A value that could not be encoded or decoded: a malformed or truncated input, a type
/// that does not fit the format (a sequence without a length), or a `Serialize` or
/// `Deserialize` implementation's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodingError {
    message: String,
}

impl EncodingError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        EncodingError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EncodingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EncodingError {}

impl serde::ser::Error for EncodingError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodingError::new(msg.to_string())
    }
}

impl serde::de::Error for EncodingError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        EncodingError::new(msg.to_string())
    }
}

/// The encoding of `value`.
///
/// # Errors
/// The value's `Serialize` implementation failed, or it wrote a sequence or map without its
/// length.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodingError> {
    let mut out = Vec::new();
    write_into(&mut out, value)?;
    Ok(out)
}

/// Appends the encoding of `value` to `out` (which keeps what it held before).
///
/// # Errors
/// As [`to_vec`]; `out` may then hold part of the value.
pub fn write_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), EncodingError> {
    value.serialize(&mut Encoder { out })
}

/// Decodes a value from the front of `bytes`; bytes after it are ignored.
///
/// # Errors
/// The bytes end before the value does, or do not encode a `T` (an invalid `bool`, `char`,
/// UTF-8 string or `Option` tag, an unknown enum variant, ...).
pub fn from_slice<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, EncodingError> {
    let mut rest = bytes;
    take_from(&mut rest)
}

/// Decodes a value from the front of `bytes` and advances `bytes` past it, for several values
/// written one after another.
///
/// # Errors
/// As [`from_slice`]; `bytes` is then left unchanged.
pub fn take_from<'a, T: Deserialize<'a>>(bytes: &mut &'a [u8]) -> Result<T, EncodingError> {
    let mut decoder = de::Decoder { input: bytes };
    let value = T::deserialize(&mut decoder)?;
    *bytes = decoder.input;
    Ok(value)
}
