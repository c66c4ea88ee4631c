//! Deserialization: from a [`KafkaRecord`] to the values a job reads (Flink's
//! `KafkaRecordDeserializationSchema` and the `DeserializationSchema`s of its formats).
//!
//! Two levels:
//! - a [`BytesFormat`] turns the bytes of a key or a value into a value: [`RawBytes`],
//!   [`Utf8`], [`Json`] (any serde type), [`Csv`] (one CSV row per record, any serde type);
//! - a [`KafkaDeserializer`] turns a whole record into zero or one value: [`value_only`] (the
//!   common case), [`key_value`], [`RecordDeserializer`] (the record with all its metadata), or
//!   any closure over the record with [`from_fn`].
//!
//! An error means the record is malformed: the source fails the job naming topic, partition and
//! offset, unless it was told to skip malformed records.

use super::record::{ConsumedRecord, KafkaRecord};
use fjord::BoxError;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use std::sync::Arc;

/// Turns a Kafka record into a value of the job (Flink's `KafkaRecordDeserializationSchema`).
///
/// `Ok(None)` drops the record (a tombstone, a record the job does not want); `Err` marks it
/// malformed. Shared by all parallel readers, so it must be `Send + Sync`.
pub trait KafkaDeserializer<T>: Send + Sync + 'static {
    /// Deserializes one record.
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<T>, BoxError>;
}

impl<T, D: KafkaDeserializer<T> + ?Sized> KafkaDeserializer<T> for Arc<D> {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<T>, BoxError> {
        (**self).deserialize(record)
    }
}

impl<T: 'static> KafkaDeserializer<T> for Box<dyn KafkaDeserializer<T>> {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<T>, BoxError> {
        (**self).deserialize(record)
    }
}

/// Turns the bytes of a key or a value into a value (Flink's `DeserializationSchema`).
pub trait BytesFormat<T>: Send + Sync + 'static {
    /// Parses `bytes`.
    fn parse(&self, bytes: &[u8]) -> Result<T, BoxError>;
}

/// The bytes as they are (Flink's `ByteArrayDeserializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl BytesFormat<Vec<u8>> for RawBytes {
    fn parse(&self, bytes: &[u8]) -> Result<Vec<u8>, BoxError> {
        Ok(bytes.to_vec())
    }
}

/// UTF-8 text (Flink's `SimpleStringSchema`); invalid UTF-8 is malformed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl BytesFormat<String> for Utf8 {
    fn parse(&self, bytes: &[u8]) -> Result<String, BoxError> {
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(format!("not valid UTF-8: {e}").into()),
        }
    }
}

/// JSON into any serde type (Flink's `JsonDeserializationSchema`).
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// The JSON format for `T`.
    pub fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Json::new()
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Json::new()
    }
}

impl<T> std::fmt::Debug for Json<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Json<{}>", std::any::type_name::<T>())
    }
}

impl<T: DeserializeOwned + 'static> BytesFormat<T> for Json<T> {
    fn parse(&self, bytes: &[u8]) -> Result<T, BoxError> {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}").into())
    }
}

/// One CSV row per record into any serde type (tuples, structs; Flink's `CsvRowFormat` for a
/// record holding one line). No header line; fields are matched by position. A record with
/// no row, or more than one, is malformed.
#[derive(Clone)]
pub struct Csv<T> {
    delimiter: u8,
    quote: u8,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Csv<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Csv")
            .field("delimiter", &(self.delimiter as char))
            .field("quote", &(self.quote as char))
            .finish()
    }
}

impl<T> Default for Csv<T> {
    fn default() -> Self {
        Csv::new()
    }
}

impl<T> Csv<T> {
    /// Comma-separated, `"` quotes.
    pub fn new() -> Self {
        Csv {
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

impl<T: DeserializeOwned + 'static> BytesFormat<T> for Csv<T> {
    fn parse(&self, bytes: &[u8]) -> Result<T, BoxError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(self.delimiter)
            .quote(self.quote)
            .from_reader(bytes);
        let mut rows = reader.deserialize::<T>();
        let row = match rows.next() {
            Some(Ok(row)) => row,
            Some(Err(e)) => return Err(format!("invalid CSV row: {e}").into()),
            None => return Err("empty CSV record: expected one row".into()),
        };
        if rows.next().is_some() {
            return Err("more than one CSV row in one record: expected one row".into());
        }
        Ok(row)
    }
}

impl<T, F> BytesFormat<T> for F
where
    F: Fn(&[u8]) -> Result<T, BoxError> + Send + Sync + 'static,
{
    fn parse(&self, bytes: &[u8]) -> Result<T, BoxError> {
        self(bytes)
    }
}

/// Deserializes the value only; tombstones (records without value) are dropped. Made by
/// [`value_only`].
#[derive(Debug, Clone)]
pub struct ValueOnly<F>(F);

/// The value of each record in format `format` (Flink's `valueOnly`); tombstones are dropped.
pub fn value_only<F>(format: F) -> ValueOnly<F> {
    ValueOnly(format)
}

impl<T, F: BytesFormat<T>> KafkaDeserializer<T> for ValueOnly<F> {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<T>, BoxError> {
        match record.value {
            Some(value) => self.0.parse(value).map(Some),
            None => Ok(None),
        }
    }
}

/// Deserializes key (if present) and value: `(Option<K>, V)`; tombstones are dropped. Made by
/// [`key_value`].
#[derive(Debug, Clone)]
pub struct KeyValue<K, V> {
    key: K,
    value: V,
}

/// Key and value of each record, each in its own format: `(Option<key>, value)`; tombstones
/// are dropped. A key that does not parse makes the record malformed.
pub fn key_value<K, V>(key: K, value: V) -> KeyValue<K, V> {
    KeyValue { key, value }
}

impl<K, V, FK: BytesFormat<K>, FV: BytesFormat<V>> KafkaDeserializer<(Option<K>, V)>
    for KeyValue<FK, FV>
{
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<(Option<K>, V)>, BoxError> {
        let Some(value) = record.value else {
            return Ok(None);
        };
        let key = match record.key {
            Some(k) => Some(self.key.parse(k).map_err(|e| format!("key: {e}"))?),
            None => None,
        };
        let value = self.value.parse(value).map_err(|e| format!("value: {e}"))?;
        Ok(Some((key, value)))
    }
}

/// The whole record with its metadata ([`ConsumedRecord`]), tombstones included.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordDeserializer;

impl KafkaDeserializer<ConsumedRecord> for RecordDeserializer {
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<ConsumedRecord>, BoxError> {
        Ok(Some(record.to_owned()))
    }
}

/// A deserializer from a closure over the record, which sees key, value, headers, timestamp,
/// topic, partition and offset.
///
/// ```
/// use fjord_kafka::format::{from_fn, KafkaRecord};
/// let tagged = from_fn(|r: &KafkaRecord<'_>| {
///     let value = std::str::from_utf8(r.value.unwrap_or_default())?;
///     Ok(Some(format!("{}/{}: {value}", r.topic, r.partition)))
/// });
/// # let _ = tagged;
/// ```
pub fn from_fn<T, F>(f: F) -> FnDeserializer<F>
where
    F: Fn(&KafkaRecord<'_>) -> Result<Option<T>, BoxError> + Send + Sync + 'static,
{
    FnDeserializer(f)
}

/// A closure as a [`KafkaDeserializer`]; made by [`from_fn`].
#[derive(Clone)]
pub struct FnDeserializer<F>(F);

impl<T, F> KafkaDeserializer<T> for FnDeserializer<F>
where
    F: Fn(&KafkaRecord<'_>) -> Result<Option<T>, BoxError> + Send + Sync + 'static,
{
    fn deserialize(&self, record: &KafkaRecord<'_>) -> Result<Option<T>, BoxError> {
        (self.0)(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record<'a>(
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        headers: &'a [(String, Option<Bytes>)],
    ) -> KafkaRecord<'a> {
        KafkaRecord {
            topic: "t",
            partition: 3,
            offset: 42,
            timestamp: 1_700_000_000_000,
            key,
            value,
            headers,
        }
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Order {
        id: u64,
        item: String,
    }

    #[test]
    fn raw_utf8_and_tombstones() {
        let r = record(None, Some(&[0, 255]), &[]);
        assert_eq!(
            value_only(RawBytes).deserialize(&r).unwrap(),
            Some(vec![0, 255])
        );
        let e = value_only(Utf8).deserialize(&r).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
        let r = record(None, Some("héllo".as_bytes()), &[]);
        assert_eq!(
            value_only(Utf8).deserialize(&r).unwrap().as_deref(),
            Some("héllo")
        );
        let tombstone = record(Some(b"k"), None, &[]);
        assert_eq!(value_only(Utf8).deserialize(&tombstone).unwrap(), None);
        assert_eq!(key_value(Utf8, Utf8).deserialize(&tombstone).unwrap(), None);
    }

    #[test]
    fn json_into_a_struct_and_malformed_json() {
        let r = record(None, Some(br#"{"id": 7, "item": "tea"}"#), &[]);
        let d = value_only(Json::<Order>::new());
        assert_eq!(
            d.deserialize(&r).unwrap(),
            Some(Order {
                id: 7,
                item: "tea".into()
            })
        );
        let bad = record(None, Some(br#"{"id": "seven"}"#), &[]);
        let e = d.deserialize(&bad).unwrap_err().to_string();
        assert!(e.starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn csv_rows_into_tuples_and_structs() {
        let r = record(None, Some(b"7,\"tea, green\""), &[]);
        let d = value_only(Csv::<(u64, String)>::new());
        assert_eq!(d.deserialize(&r).unwrap(), Some((7, "tea, green".into())));
        let r = record(None, Some(b"8;coffee"), &[]);
        let d = value_only(Csv::<Order>::new().delimiter(b';'));
        assert_eq!(
            d.deserialize(&r).unwrap(),
            Some(Order {
                id: 8,
                item: "coffee".into()
            })
        );
        let two_rows = record(None, Some(b"1,a\n2,b"), &[]);
        let e = value_only(Csv::<(u64, String)>::new())
            .deserialize(&two_rows)
            .unwrap_err();
        assert!(e.to_string().contains("more than one CSV row"), "{e}");
        let bad = record(None, Some(b"x,a"), &[]);
        let e = value_only(Csv::<(u64, String)>::new())
            .deserialize(&bad)
            .unwrap_err();
        assert!(e.to_string().starts_with("invalid CSV row"), "{e}");
        let empty = record(None, Some(b""), &[]);
        assert!(
            value_only(Csv::<(u64, String)>::new())
                .deserialize(&empty)
                .is_err()
        );
    }

    #[test]
    fn key_and_value_in_their_own_formats() {
        let r = record(Some(b"42"), Some(br#"["a", 1]"#), &[]);
        let d = key_value(Json::<u32>::new(), Json::<(String, i32)>::new());
        assert_eq!(
            d.deserialize(&r).unwrap(),
            Some((Some(42), ("a".into(), 1)))
        );
        let no_key = record(None, Some(br#"["b", 2]"#), &[]);
        assert_eq!(
            d.deserialize(&no_key).unwrap(),
            Some((None, ("b".into(), 2)))
        );
        let bad_key = record(Some(b"x"), Some(br#"["b", 2]"#), &[]);
        let e = d.deserialize(&bad_key).unwrap_err().to_string();
        assert!(e.starts_with("key: invalid JSON"), "{e}");
    }

    #[test]
    fn closures_see_headers_and_metadata() {
        let headers = vec![
            ("trace".to_string(), Some(Bytes::from_static(b"old"))),
            ("flag".to_string(), None),
            ("trace".to_string(), Some(Bytes::from_static(b"abc"))),
        ];
        let r = record(Some(b"k"), Some(b"v"), &headers);
        let d = from_fn(|r: &KafkaRecord<'_>| {
            let trace = r.header("trace").flatten().unwrap_or_default();
            Ok(Some(format!(
                "{} {} {} {}",
                r.position(),
                r.timestamp,
                String::from_utf8_lossy(trace),
                r.header("flag").is_some()
            )))
        });
        assert_eq!(
            d.deserialize(&r).unwrap().as_deref(),
            Some("t-3@42 1700000000000 abc true")
        );
        assert_eq!(r.header("missing"), None);
        let owned = RecordDeserializer.deserialize(&r).unwrap().unwrap();
        assert_eq!(owned.offset, 42);
        assert_eq!(owned.headers[2].1.as_deref(), Some(&b"abc"[..]));
        // A bytes format from a closure.
        let upper = value_only(|b: &[u8]| -> Result<String, BoxError> {
            Ok(String::from_utf8_lossy(b).to_uppercase())
        });
        assert_eq!(upper.deserialize(&r).unwrap().as_deref(), Some("V"));
    }
}
