//! A split: one shard and how far it was read.

use crate::client::IteratorStart;

/// One shard to read (Flink's `KinesisShardSplit`): where to continue, and the shards it came
/// from, which must be finished first. Stored in checkpoints (serialized with
/// `fjord::encoding`), so `start` is the exact read position: after the last record emitted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KinesisShardSplit {
    /// The shard.
    pub shard_id: String,
    /// Its parent shards (split or merge); read before it.
    pub parents: Vec<String>,
    /// Where reading continues.
    pub start: IteratorStart,
}

impl KinesisShardSplit {
    /// Serialized for a checkpoint.
    pub fn encode(&self) -> Vec<u8> {
        fjord::encoding::to_vec(self).expect("a split serializes")
    }

    /// Read back from a checkpoint.
    ///
    /// # Errors
    /// Bytes that are not a split.
    pub fn decode(bytes: &[u8]) -> Result<Self, fjord::encoding::EncodingError> {
        fjord::encoding::from_slice(bytes)
    }
}

/// What every reader learns about a shard from the union state: some reader was given it, and
/// whether it was read to its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct AssignedShard {
    pub(crate) shard_id: String,
    pub(crate) finished: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_state_round_trip() {
        for start in [
            IteratorStart::TrimHorizon,
            IteratorStart::Latest,
            IteratorStart::AtTimestamp(1_700_000_000_123),
            IteratorStart::AfterSequenceNumber("4959".into()),
        ] {
            let split = KinesisShardSplit {
                shard_id: "shardId-000000000002".into(),
                parents: vec!["shardId-000000000000".into()],
                start,
            };
            assert_eq!(KinesisShardSplit::decode(&split.encode()).unwrap(), split);
        }
        assert!(KinesisShardSplit::decode(b"garbage").is_err());
    }
}
