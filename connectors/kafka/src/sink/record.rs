//! From a job's value to a Kafka record: topic, key, value, headers, timestamp and partitioner
//! (Flink's `KafkaRecordSerializationSchema` and its builder).

use super::partitioner::KafkaPartitioner;
use crate::error::KafkaError;
use crate::format::SerializationFormat;
use fjord::BoxError;
use std::sync::Arc;

/// Headers of a record: `(name, value)` pairs in order.
pub type Headers = Vec<(String, Option<Vec<u8>>)>;

type TopicFn<T> = dyn Fn(&T) -> String + Send + Sync;
type HeadersFn<T> = dyn Fn(&T) -> Headers + Send + Sync;
type TimestampFn<T> = dyn Fn(&T) -> Option<i64> + Send + Sync;

/// Where records go.
pub(crate) enum TopicSelector<T> {
    /// One topic for every record.
    Fixed(String),
    /// A topic per record.
    PerRecord(Arc<TopicFn<T>>),
}

impl<T> Clone for TopicSelector<T> {
    fn clone(&self) -> Self {
        match self {
            TopicSelector::Fixed(t) => TopicSelector::Fixed(t.clone()),
            TopicSelector::PerRecord(f) => TopicSelector::PerRecord(f.clone()),
        }
    }
}

/// A record ready to be sent: everything but its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SerializedRecord {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    /// `None`: a tombstone.
    pub value: Option<Vec<u8>>,
    pub headers: Headers,
    pub timestamp: Option<i64>,
}

impl SerializedRecord {
    /// Bytes of key, value and headers (what the sink's byte counters count).
    pub(crate) fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
    }
}

/// Turns a job's values into Kafka records (Flink's `KafkaRecordSerializationSchema`). Made by
/// [`KafkaRecordSerializer::builder`].
pub struct KafkaRecordSerializer<T> {
    pub(crate) topic: TopicSelector<T>,
    key: Option<Arc<dyn SerializationFormat<T>>>,
    value: Arc<dyn SerializationFormat<T>>,
    headers: Option<Arc<HeadersFn<T>>>,
    pub(crate) partitioner: KafkaPartitioner<T>,
    timestamps: bool,
    timestamp_of: Option<Arc<TimestampFn<T>>>,
}

impl<T> Clone for KafkaRecordSerializer<T> {
    fn clone(&self) -> Self {
        KafkaRecordSerializer {
            topic: self.topic.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            headers: self.headers.clone(),
            partitioner: self.partitioner.clone(),
            timestamps: self.timestamps,
            timestamp_of: self.timestamp_of.clone(),
        }
    }
}

impl<T: 'static> KafkaRecordSerializer<T> {
    /// A builder; a topic (or topic selector) and a value format are required.
    pub fn builder() -> KafkaRecordSerializerBuilder<T> {
        KafkaRecordSerializerBuilder {
            topic: None,
            key: None,
            value: None,
            headers: None,
            partitioner: KafkaPartitioner::Default,
            timestamps: true,
            timestamp_of: None,
        }
    }

    /// The fixed topic, if the records do not choose theirs.
    pub fn fixed_topic(&self) -> Option<&str> {
        match &self.topic {
            TopicSelector::Fixed(t) => Some(t),
            TopicSelector::PerRecord(_) => None,
        }
    }

    /// Serializes one value with its timestamp (the record's event time, written as the Kafka
    /// record timestamp unless [`KafkaRecordSerializerBuilder::without_timestamps`]).
    pub(crate) fn serialize(
        &self,
        value: &T,
        timestamp: Option<i64>,
    ) -> Result<SerializedRecord, BoxError> {
        let topic = match &self.topic {
            TopicSelector::Fixed(t) => t.clone(),
            TopicSelector::PerRecord(f) => f(value),
        };
        if topic.is_empty() {
            return Err("the topic selector returned an empty topic name".into());
        }
        let fail = |what: &str, e: BoxError| -> BoxError {
            format!("cannot serialize the {what} of a record for topic {topic}: {e}").into()
        };
        let key = match &self.key {
            Some(k) => Some(k.serialize(value).map_err(|e| fail("key", e))?),
            None => None,
        };
        let bytes = self
            .value
            .serialize_nullable(value)
            .map_err(|e| fail("value", e))?;
        let headers = self.headers.as_ref().map(|h| h(value)).unwrap_or_default();
        let timestamp = match &self.timestamp_of {
            Some(f) => f(value),
            None => timestamp.filter(|_| self.timestamps),
        };
        Ok(SerializedRecord {
            topic,
            key,
            value: bytes,
            headers,
            // Kafka refuses negative timestamps other than -1 (none); Flink passes null then.
            timestamp: timestamp.filter(|t| *t >= 0),
        })
    }
}

/// Builds a [`KafkaRecordSerializer`] (Flink's `KafkaRecordSerializationSchemaBuilder`).
pub struct KafkaRecordSerializerBuilder<T> {
    topic: Option<TopicSelector<T>>,
    key: Option<Arc<dyn SerializationFormat<T>>>,
    value: Option<Arc<dyn SerializationFormat<T>>>,
    headers: Option<Arc<HeadersFn<T>>>,
    partitioner: KafkaPartitioner<T>,
    timestamps: bool,
    timestamp_of: Option<Arc<TimestampFn<T>>>,
}

impl<T: 'static> KafkaRecordSerializerBuilder<T> {
    /// Every record goes to `topic` (Flink's `setTopic`).
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(TopicSelector::Fixed(topic.into()));
        self
    }

    /// Each record goes to the topic `select` names (Flink's `setTopicSelector`). Topics must
    /// exist; the sink never creates them.
    pub fn topic_selector(mut self, select: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.topic = Some(TopicSelector::PerRecord(Arc::new(select)));
        self
    }

    /// The record key, in `format` (Flink's `setKeySerializationSchema`); use
    /// [`project`](crate::format::project) to key by a field. Without a key records have none.
    pub fn key(mut self, format: impl SerializationFormat<T>) -> Self {
        self.key = Some(Arc::new(format));
        self
    }

    /// The record value, in `format` (Flink's `setValueSerializationSchema`): `Utf8`,
    /// `RawBytes`, `Json`, `CsvRow`, a projection or a closure.
    pub fn value(mut self, format: impl SerializationFormat<T>) -> Self {
        self.value = Some(Arc::new(format));
        self
    }

    /// Headers for each record.
    pub fn headers(mut self, headers: impl Fn(&T) -> Headers + Send + Sync + 'static) -> Self {
        self.headers = Some(Arc::new(headers));
        self
    }

    /// How records are spread over partitions (default: [`KafkaPartitioner::Default`]).
    pub fn partitioner(mut self, partitioner: KafkaPartitioner<T>) -> Self {
        self.partitioner = partitioner;
        self
    }

    /// Leaves the Kafka record timestamp to the producer (the send time) instead of the
    /// record's event time.
    pub fn without_timestamps(mut self) -> Self {
        self.timestamps = false;
        self
    }

    /// Takes each record's Kafka timestamp from its value (`None`: the producer's send time)
    /// instead of the event time, as Flink SQL's `timestamp` metadata column does.
    pub fn timestamp(mut self, of: impl Fn(&T) -> Option<i64> + Send + Sync + 'static) -> Self {
        self.timestamp_of = Some(Arc::new(of));
        self
    }

    /// The serializer.
    ///
    /// # Errors
    /// [`KafkaError::Config`] without topic or value format, with an empty topic name, or when
    /// partitioning by key without a key format.
    pub fn build(self) -> Result<KafkaRecordSerializer<T>, KafkaError> {
        let topic = self.topic.ok_or_else(|| {
            KafkaError::Config(
                "the Kafka sink needs a topic: call .topic(\"name\") or .topic_selector(..) on the record serializer builder".into(),
            )
        })?;
        if let TopicSelector::Fixed(t) = &topic
            && t.trim().is_empty()
        {
            return Err(KafkaError::Config(
                "the Kafka sink's topic name is empty".into(),
            ));
        }
        let value = self.value.ok_or_else(|| {
            KafkaError::Config(
                "the Kafka sink needs a value format: call .value(Utf8), .value(Json::new()), .value(CsvRow::new()), .value(RawBytes) or .value(|r| bytes) on the record serializer builder".into(),
            )
        })?;
        if self.partitioner.needs_key() && self.key.is_none() {
            return Err(KafkaError::Config(
                "partitioning by key needs a key: call .key(..) on the record serializer builder"
                    .into(),
            ));
        }
        Ok(KafkaRecordSerializer {
            topic,
            key: self.key,
            value,
            headers: self.headers,
            partitioner: self.partitioner,
            timestamps: self.timestamps,
            timestamp_of: self.timestamp_of,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Json, Utf8, project};

    type Count = (String, u64);

    #[test]
    fn a_timestamp_function_overrides_the_event_time() {
        let s = KafkaRecordSerializer::<Count>::builder()
            .topic("t")
            .value(Json::<Count>::new())
            .timestamp(|r: &Count| (r.1 > 0).then_some(r.1 as i64 * 1000))
            .build()
            .unwrap();
        let ts = |n: u64| s.serialize(&("a".into(), n), Some(5)).unwrap().timestamp;
        assert_eq!(ts(2), Some(2000));
        assert_eq!(ts(0), None, "None leaves the timestamp to the producer");
    }

    #[test]
    fn serializes_topic_key_value_headers_and_timestamp() {
        let s = KafkaRecordSerializer::<Count>::builder()
            .topic_selector(|r: &Count| format!("counts-{}", r.0.len()))
            .key(project(|r: &Count| r.0.clone(), Utf8))
            .value(Json::<Count>::new())
            .headers(|r: &Count| vec![("n".into(), Some(r.1.to_string().into_bytes()))])
            .build()
            .unwrap();
        let r = s.serialize(&("word".into(), 3), Some(99)).unwrap();
        assert_eq!(
            r,
            SerializedRecord {
                topic: "counts-4".into(),
                key: Some(b"word".to_vec()),
                value: Some(br#"["word",3]"#.to_vec()),
                headers: vec![("n".into(), Some(b"3".to_vec()))],
                timestamp: Some(99),
            }
        );
        assert_eq!(r.size(), 4 + 10 + 2);
        assert_eq!(
            s.serialize(&("w".into(), 1), Some(-5)).unwrap().timestamp,
            None
        );
        assert_eq!(s.fixed_topic(), None);
    }

    #[test]
    fn a_value_format_may_write_tombstones() {
        /// A count as text; no count is the deletion of the word.
        struct Upsert;
        impl SerializationFormat<(String, Option<u64>)> for Upsert {
            fn serialize(&self, v: &(String, Option<u64>)) -> Result<Vec<u8>, BoxError> {
                Ok(v.1.unwrap_or_default().to_string().into_bytes())
            }
            fn serialize_nullable(
                &self,
                v: &(String, Option<u64>),
            ) -> Result<Option<Vec<u8>>, BoxError> {
                Ok(v.1.map(|n| n.to_string().into_bytes()))
            }
        }
        let s = KafkaRecordSerializer::<(String, Option<u64>)>::builder()
            .topic("counts")
            .key(project(|r: &(String, Option<u64>)| r.0.clone(), Utf8))
            .value(Upsert)
            .build()
            .unwrap();
        let put = s.serialize(&("a".into(), Some(2)), None).unwrap();
        assert_eq!(
            (put.key, put.value),
            (Some(b"a".to_vec()), Some(b"2".to_vec()))
        );
        let deleted = s.serialize(&("a".into(), None), None).unwrap();
        assert_eq!(deleted.size(), 1);
        assert_eq!((deleted.key, deleted.value), (Some(b"a".to_vec()), None));
    }

    #[test]
    fn without_timestamps_and_without_key() {
        let s = KafkaRecordSerializer::<String>::builder()
            .topic("lines")
            .value(Utf8)
            .without_timestamps()
            .build()
            .unwrap();
        let r = s.serialize(&"a b".to_string(), Some(5)).unwrap();
        assert_eq!(
            (r.key, r.timestamp, r.value),
            (None, None, Some(b"a b".to_vec()))
        );
        assert_eq!(s.fixed_topic(), Some("lines"));
    }

    #[test]
    fn incomplete_builders_say_what_is_missing() {
        let msg = |r: Result<KafkaRecordSerializer<String>, KafkaError>| match r {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted"),
        };
        let no_topic = msg(KafkaRecordSerializer::builder().value(Utf8).build());
        assert!(no_topic.contains(".topic("), "{no_topic}");
        let no_value = msg(KafkaRecordSerializer::builder().topic("t").build());
        assert!(no_value.contains(".value("), "{no_value}");
        let empty = msg(KafkaRecordSerializer::builder()
            .topic(" ")
            .value(Utf8)
            .build());
        assert!(empty.contains("empty"), "{empty}");
        let by_key = msg(KafkaRecordSerializer::builder()
            .topic("t")
            .value(Utf8)
            .partitioner(KafkaPartitioner::ByKey)
            .build());
        assert!(by_key.contains(".key("), "{by_key}");
    }

    #[test]
    fn serialization_errors_name_the_topic_and_the_part() {
        type Nested = (u8, std::collections::BTreeMap<String, u8>);
        let s = KafkaRecordSerializer::<Nested>::builder()
            .topic("nested")
            .value(crate::format::CsvRow::new())
            .build()
            .unwrap();
        let err = s
            .serialize(&(1, [("a".into(), 1)].into()), None)
            .unwrap_err();
        let err = err.to_string();
        assert!(err.contains("value") && err.contains("nested"), "{err}");
    }
}
