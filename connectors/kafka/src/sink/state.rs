//! What the sink keeps in checkpoints: the committable of a pre-committed transaction and the
//! writer's own state. Both are persistent bytes (they live in savepoints), so they are
//! versioned JSON documents; an unknown version fails the restore with a message.

use crate::client::PreparedTransaction;
use fjord::BoxError;
use serde::{Deserialize, Serialize};

/// Version of the documents this module writes.
const VERSION: u32 = 1;

/// A pre-committed transaction, as stored in a checkpoint until the checkpoint completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Committable {
    v: u32,
    #[serde(flatten)]
    transaction: PreparedTransaction,
}

/// Encodes the committable of a checkpoint: empty when no transaction was open (nothing to
/// commit: at-least-once and none, or an exactly-once checkpoint without records).
pub(crate) fn encode_committable(transaction: Option<&PreparedTransaction>) -> Vec<u8> {
    match transaction {
        None => Vec::new(),
        Some(t) => serde_json::to_vec(&Committable {
            v: VERSION,
            transaction: t.clone(),
        })
        .expect("a committable always serializes"),
    }
}

/// Decodes what [`encode_committable`] wrote.
pub(crate) fn decode_committable(bytes: &[u8]) -> Result<Option<PreparedTransaction>, BoxError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let c: Committable = serde_json::from_slice(bytes)
        .map_err(|e| format!("unreadable Kafka sink committable in the checkpoint: {e}"))?;
    check_version(c.v, "committable")?;
    Ok(Some(c.transaction))
}

/// The state of one writer in a checkpoint (Flink's `KafkaWriterState`, plus what Fjord needs
/// to find lingering transactions after a rescale).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WriterState {
    /// Format version.
    pub v: u32,
    /// The transactional id prefix the writer used.
    pub prefix: String,
    /// Its subtask index and the parallelism then.
    pub subtask: usize,
    /// The parallelism of the sink when it wrote this.
    pub parallelism: usize,
    /// The checkpoint this state belongs to (the last the writer pre-committed).
    pub checkpoint_id: u64,
}

impl WriterState {
    pub(crate) fn new(
        prefix: &str,
        subtask: usize,
        parallelism: usize,
        checkpoint_id: u64,
    ) -> Self {
        WriterState {
            v: VERSION,
            prefix: prefix.to_string(),
            subtask,
            parallelism,
            checkpoint_id,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a writer state always serializes")
    }

    /// Decodes a state; `None` for the empty state of a sink without transactions.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Option<Self>, BoxError> {
        if bytes.is_empty() {
            return Ok(None);
        }
        let s: WriterState = serde_json::from_slice(bytes)
            .map_err(|e| format!("unreadable Kafka sink state in the checkpoint: {e}"))?;
        check_version(s.v, "state")?;
        Ok(Some(s))
    }
}

fn check_version(v: u32, what: &str) -> Result<(), BoxError> {
    if v == VERSION {
        Ok(())
    } else {
        Err(format!(
            "the checkpoint holds a Kafka sink {what} of version {v}, this Fjord reads version {VERSION}; restore it with the Fjord release that wrote it"
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committables_round_trip_and_empty_means_none() {
        let t = PreparedTransaction {
            transactional_id: "p-0-3".into(),
            producer_id: 4711,
            producer_epoch: 2,
        };
        let bytes = encode_committable(Some(&t));
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"transactional_id":"p-0-3","producer_id":4711,"producer_epoch":2}"#
        );
        assert_eq!(decode_committable(&bytes).unwrap(), Some(t));
        assert!(encode_committable(None).is_empty());
        assert_eq!(decode_committable(&[]).unwrap(), None);
    }

    #[test]
    fn writer_states_round_trip_and_unknown_versions_are_refused() {
        let s = WriterState::new("p", 2, 4, 17);
        assert_eq!(WriterState::decode(&s.encode()).unwrap(), Some(s));
        assert_eq!(WriterState::decode(&[]).unwrap(), None);
        let future = br#"{"v":2,"prefix":"p","subtask":0,"parallelism":1,"checkpoint_id":1}"#;
        let err = WriterState::decode(future).unwrap_err().to_string();
        assert!(err.contains("version 2"), "{err}");
        let err = decode_committable(b"garbage").unwrap_err().to_string();
        assert!(err.contains("committable"), "{err}");
    }
}
