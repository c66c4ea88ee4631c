//! A split: one topic-partition and how far it was read.

use crate::client::TopicPartition;

/// One partition to read (Flink's `KafkaPartitionSplit`): where to continue and, in bounded
/// mode, where to stop. Stored in checkpoints (serialized with `fjord::encoding`), so its fields are the
/// exact read position.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KafkaSplit {
    /// The partition.
    pub partition: TopicPartition,
    /// The offset of the next record to read.
    pub next_offset: i64,
    /// Bounded mode: records at and after this offset are not read.
    pub stopping_offset: Option<i64>,
}

impl KafkaSplit {
    /// True when a bounded split has nothing more to read.
    pub fn is_finished(&self) -> bool {
        self.stopping_offset
            .is_some_and(|stop| self.next_offset >= stop)
    }

    /// Serialized for a checkpoint.
    pub fn encode(&self) -> Vec<u8> {
        fjord::encoding::to_vec(self).expect("a split serializes")
    }

    /// Read back from a checkpoint.
    pub fn decode(bytes: &[u8]) -> Result<Self, fjord::encoding::EncodingError> {
        fjord::encoding::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_state_round_trip() {
        let split = KafkaSplit {
            partition: TopicPartition {
                topic: "orders".into(),
                partition: 7,
            },
            next_offset: 1234,
            stopping_offset: Some(2000),
        };
        let back = KafkaSplit::decode(&split.encode()).unwrap();
        assert_eq!(back, split);
        assert!(!back.is_finished());
        let done = KafkaSplit {
            next_offset: 2000,
            ..split.clone()
        };
        assert!(done.is_finished());
        let unbounded = KafkaSplit {
            stopping_offset: None,
            ..split
        };
        assert!(!unbounded.is_finished());
        assert!(KafkaSplit::decode(b"garbage").is_err());
    }
}
