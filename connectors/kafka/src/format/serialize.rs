//! Serialization: from the values a job writes to the bytes of a Kafka key or value (the
//! `SerializationSchema`s of Flink's formats), the mirror of [`deserialize`](super::deserialize).
//!
//! A [`SerializationFormat`] turns a value into bytes. The formats are the ones the source
//! reads: [`RawBytes`] (anything that is bytes), [`Utf8`] (anything that is text), [`Json`]
//! (any serde type) and [`CsvRow`] (one CSV row, no line end, any flat serde type), plus any
//! closure `Fn(&T) -> Vec<u8>`. [`project`] serializes a part of a record (the word of a
//! `(word, count)` pair as the key, say).
//!
//! An error fails the job, naming the sink and the topic; nothing is skipped silently.

use super::deserialize::{Json, RawBytes, Utf8};
use fjord::BoxError;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;

/// Turns a value into the bytes of a Kafka key or value (Flink's `SerializationSchema`).
/// Shared by all parallel writers, so it must be `Send + Sync`.
pub trait SerializationFormat<T>: Send + Sync + 'static {
    /// Serializes one value.
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError>;

    /// The bytes of a record value, or `None` for a tombstone: a record without value, which
    /// a compacted topic keeps as the deletion of its key (Flink's `upsert-kafka` writes one
    /// for a deleted row). The default is always [`serialize`](Self::serialize)'s bytes.
    fn serialize_nullable(&self, value: &T) -> Result<Option<Vec<u8>>, BoxError> {
        self.serialize(value).map(Some)
    }
}

impl<T: 'static, S: SerializationFormat<T> + ?Sized> SerializationFormat<T> for Arc<S> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        (**self).serialize(value)
    }

    fn serialize_nullable(&self, value: &T) -> Result<Option<Vec<u8>>, BoxError> {
        (**self).serialize_nullable(value)
    }
}

impl<T: 'static> SerializationFormat<T> for Box<dyn SerializationFormat<T>> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        (**self).serialize(value)
    }

    fn serialize_nullable(&self, value: &T) -> Result<Option<Vec<u8>>, BoxError> {
        (**self).serialize_nullable(value)
    }
}

/// The bytes as they are (Flink's `ByteArraySerializer`): `Vec<u8>`, `bytes::Bytes`, ...
impl<T: AsRef<[u8]>> SerializationFormat<T> for RawBytes {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(value.as_ref().to_vec())
    }
}

/// UTF-8 text (Flink's `SimpleStringSchema`): `String`, `&'static str`, ...
impl<T: AsRef<str>> SerializationFormat<T> for Utf8 {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(value.as_ref().as_bytes().to_vec())
    }
}

/// JSON of any serde type (Flink's `JsonSerializationSchema`).
impl<T: Serialize + 'static> SerializationFormat<T> for Json<T> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        serde_json::to_vec(value).map_err(|e| format!("cannot write as JSON: {e}").into())
    }
}

impl<T, F> SerializationFormat<T> for F
where
    F: Fn(&T) -> Vec<u8> + Send + Sync + 'static,
{
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(self(value))
    }
}

/// One CSV row per record, without a line end (what the source's `Csv` format reads back):
/// tuples and structs of scalars, fields in order, quoted where needed. Nested structures
/// cannot be written as one row and fail with the CSV writer's message.
#[derive(Clone)]
pub struct CsvRow<T> {
    delimiter: u8,
    quote: u8,
    _t: PhantomData<fn(&T)>,
}

impl<T> std::fmt::Debug for CsvRow<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRow")
            .field("delimiter", &(self.delimiter as char))
            .field("quote", &(self.quote as char))
            .finish()
    }
}

impl<T> Default for CsvRow<T> {
    fn default() -> Self {
        CsvRow::new()
    }
}

impl<T> CsvRow<T> {
    /// Comma-separated, `"` quotes.
    pub fn new() -> Self {
        CsvRow {
            delimiter: b',',
            quote: b'"',
            _t: PhantomData,
        }
    }

    /// Another field delimiter (`b';'`, `b'\t'`, ...).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Another quote character.
    pub fn quote(mut self, quote: u8) -> Self {
        self.quote = quote;
        self
    }
}

impl<T: Serialize + 'static> SerializationFormat<T> for CsvRow<T> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        writer
            .serialize(value)
            .map_err(|e| format!("cannot write as one CSV row: {e}"))?;
        let mut bytes = writer
            .into_inner()
            .map_err(|e| format!("cannot write as one CSV row: {e}"))?;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
        }
        Ok(bytes)
    }
}

/// Serializes the part `extract` takes out of each record in `format`; made by [`project`].
pub struct Projected<E, S, K> {
    extract: E,
    format: S,
    _k: PhantomData<fn() -> K>,
}

/// Serializes `extract(record)` in `format`: the word of a `(word, count)` pair as UTF-8 is
/// `project(|r: &(String, u64)| r.0.clone(), Utf8)`.
pub fn project<T, K, E, S>(extract: E, format: S) -> Projected<E, S, K>
where
    E: Fn(&T) -> K + Send + Sync + 'static,
    S: SerializationFormat<K>,
{
    Projected {
        extract,
        format,
        _k: PhantomData,
    }
}

impl<T, K, E, S> SerializationFormat<T> for Projected<E, S, K>
where
    K: 'static,
    E: Fn(&T) -> K + Send + Sync + 'static,
    S: SerializationFormat<K>,
{
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        self.format.serialize(&(self.extract)(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::deserialize::{BytesFormat, Csv};

    fn ser<T, S: SerializationFormat<T>>(format: &S, value: &T) -> Vec<u8> {
        format.serialize(value).unwrap()
    }

    #[test]
    fn raw_bytes_and_text_are_copied_unchanged() {
        assert_eq!(ser(&RawBytes, &vec![0u8, 255, 7]), vec![0, 255, 7]);
        assert_eq!(ser(&RawBytes, &bytes::Bytes::from_static(b"ab")), b"ab");
        assert_eq!(ser(&Utf8, &"wörd".to_string()), "wörd".as_bytes());
        assert_eq!(ser(&Utf8, &"x"), b"x");
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Event {
        key: String,
        window: i64,
        count: u64,
    }

    #[test]
    fn json_round_trips_through_the_source_format() {
        let e = Event {
            key: "k \"1\"".into(),
            window: -4,
            count: 9,
        };
        let bytes = ser(&Json::<Event>::new(), &e);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"key":"k \"1\"","window":-4,"count":9}"#
        );
        let back: Event = Json::<Event>::new().parse(&bytes).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn csv_rows_have_no_line_end_and_quote_what_needs_it() {
        let row = ("a,b".to_string(), 3u64, "say \"hi\"".to_string());
        let bytes = ser(&CsvRow::new(), &row);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#""a,b",3,"say ""hi""""#
        );
        let back: (String, u64, String) = Csv::new().parse(&bytes).unwrap();
        assert_eq!(back, row);
        let semi = ser(&CsvRow::new().delimiter(b';'), &("x".to_string(), 1.5f64));
        assert_eq!(semi, b"x;1.5");
        let back: (String, f64) = Csv::new().delimiter(b';').parse(&semi).unwrap();
        assert_eq!(back, ("x".to_string(), 1.5));
    }

    #[test]
    fn csv_refuses_what_is_not_one_row() {
        let nested = (1, std::collections::BTreeMap::from([("a", 1)]));
        let err = CsvRow::new().serialize(&nested).unwrap_err();
        assert!(err.to_string().contains("one CSV row"), "{err}");
    }

    #[test]
    fn projections_and_closures_serialize_a_part_of_the_record() {
        let key = project(|r: &(String, u64)| r.0.clone(), Utf8);
        assert_eq!(ser(&key, &("word".to_string(), 3)), b"word");
        let count = |r: &(String, u64)| r.1.to_string().into_bytes();
        assert_eq!(ser(&count, &("word".to_string(), 3)), b"3");
        let boxed: Box<dyn SerializationFormat<(String, u64)>> = Box::new(key);
        assert_eq!(ser(&boxed, &("w".to_string(), 1)), b"w");
    }
}
