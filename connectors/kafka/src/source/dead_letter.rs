//! The dead-letter topic of a source (`OnMalformed::DeadLetterTopic`): a record the
//! deserializer rejects is written, as it was read (key, value, headers, timestamp), to another
//! Kafka topic of the same cluster, with headers saying where it came from and why it was
//! rejected — what Kafka Connect's `errors.deadletterqueue.topic.name` does and what Flink users
//! build by hand with a side output and a second sink.
//!
//! Delivery is at-least-once and tied to checkpoints: the letters are sent by an idempotent
//! producer (acks = all) and flushed before the reader's splits are snapshotted, so a completed
//! checkpoint whose offsets are past a malformed record means its letter is in Kafka. After a
//! failure the records since the checkpoint are read again, and their letters written again.
//! A letter that cannot be written fails the job (a malformed record is never dropped silently).

use crate::client::TopicPartition;
use crate::client::{ClientConfig, ConsumerRecord, Producer, ProducerMode, ProducerRecord};
use crate::error::KafkaError;
use bytes::Bytes;

/// Header with the topic the record was read from.
pub const HEADER_TOPIC: &str = "fjord.error.topic";
/// Header with its partition (decimal).
pub const HEADER_PARTITION: &str = "fjord.error.partition";
/// Header with its offset (decimal).
pub const HEADER_OFFSET: &str = "fjord.error.offset";
/// Header with the deserializer's error message.
pub const HEADER_MESSAGE: &str = "fjord.error.message";

/// A reader's producer to the dead-letter topic, connected on the first letter.
pub(crate) struct DeadLetters {
    topic: String,
    config: ClientConfig,
    producer: Option<Producer>,
    partitions: i32,
    /// Letters not handed to the producer yet.
    pending: Vec<(i32, ProducerRecord)>,
}

impl DeadLetters {
    /// Letters to `topic` through a producer with the source's client properties.
    pub(crate) fn new(topic: String, config: ClientConfig) -> Self {
        DeadLetters {
            topic,
            config,
            producer: None,
            partitions: 0,
            pending: Vec::new(),
        }
    }

    /// The dead-letter topic.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Queues the letter of `record` of `from`, rejected with `error`. It goes to partition
    /// `from.partition % partitions of the dead-letter topic`, so the letters of one source
    /// partition stay in order.
    pub(crate) fn push(&mut self, from: &TopicPartition, record: &ConsumerRecord, error: &str) {
        let mut headers = record.headers.clone();
        headers.extend([
            (
                HEADER_TOPIC.to_string(),
                Some(Bytes::from(from.topic.clone())),
            ),
            (
                HEADER_PARTITION.to_string(),
                Some(Bytes::from(from.partition.to_string())),
            ),
            (
                HEADER_OFFSET.to_string(),
                Some(Bytes::from(record.offset.to_string())),
            ),
            (
                HEADER_MESSAGE.to_string(),
                Some(Bytes::from(error.to_string())),
            ),
        ]);
        self.pending.push((
            from.partition,
            ProducerRecord {
                key: record.key.clone(),
                value: record.value.clone(),
                timestamp: (record.timestamp >= 0).then_some(record.timestamp),
                headers,
            },
        ));
    }

    /// Hands the queued letters to the producer (connecting it first if needed) and sends
    /// batches whose linger time passed.
    ///
    /// # Errors
    /// The topic does not exist, or the producer failed.
    pub(crate) fn send(&mut self) -> Result<(), KafkaError> {
        if self.pending.is_empty() && self.producer.is_none() {
            return Ok(());
        }
        if self.producer.is_none() {
            let mut producer = Producer::new(&self.config, ProducerMode::Idempotent)?;
            self.partitions = producer.partitions(&self.topic)?;
            if self.partitions <= 0 {
                return Err(KafkaError::Config(format!(
                    "the dead-letter topic {} has no partitions; create it first",
                    self.topic
                )));
            }
            self.producer = Some(producer);
        }
        let producer = self.producer.as_mut().expect("connected above");
        for (from, record) in self.pending.drain(..) {
            let tp = TopicPartition {
                topic: self.topic.clone(),
                partition: from.rem_euclid(self.partitions),
            };
            producer.send(&tp, record)?;
        }
        producer.poll()
    }

    /// Sends everything queued and waits until Kafka acknowledged it.
    ///
    /// # Errors
    /// Those of [`send`](Self::send) and of the producer's flush.
    pub(crate) fn flush(&mut self) -> Result<(), KafkaError> {
        self.send()?;
        match &mut self.producer {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }
}
