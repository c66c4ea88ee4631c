//! The source's bookkeeping of what to acknowledge and what was already processed (Flink's
//! `MessageAcknowledgingSourceBase` with `MultipleIdsMessageAcknowledgingSourceBase`).
//!
//! - Every delivery emitted since the last snapshot is *current*: its delivery tag and (with
//!   correlation ids) its id.
//! - A snapshot for checkpoint `c` moves the current ones into a *pending* entry of `c`; the
//!   ids of every pending entry go into the snapshot, the tags do not (they belong to this
//!   channel and mean nothing after a restart).
//! - When checkpoint `c` completes, every delivery of entries up to `c` is acknowledged (one
//!   `basic.ack` with `multiple` up to the highest tag) and their ids are forgotten.
//! - A delivery whose correlation id is current or pending was processed already: it is a
//!   redelivery (after a failure, or a duplicate publish) and is dropped. After a restore the
//!   ids of the restored snapshot are pending (without tags): their messages went back to the
//!   queue unacknowledged, and their effects are in the restored state.
//!
//! As in Flink, ids are forgotten once the checkpoint covering them completes; a message
//! redelivered after that is not recognised (the broker only redelivers unacknowledged ones, and
//! those were acknowledged).

use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};

/// What to do with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: emit it; it is acknowledged when its checkpoint completes.
    Emit,
    /// Processed already: drop it (reject without requeue).
    Duplicate,
}

#[derive(Debug)]
struct Pending {
    checkpoint: u64,
    /// Highest delivery tag of this channel in the entry; `None` for restored entries.
    max_tag: Option<u64>,
    ids: Vec<String>,
}

/// The snapshot format: ids per checkpoint not yet known to be complete.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    pending: Vec<(u64, Vec<String>)>,
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Default)]
pub(crate) struct AckState {
    current_max_tag: Option<u64>,
    current_ids: Vec<String>,
    pending: VecDeque<Pending>,
    /// Ids processed and not yet acknowledged: current, pending and restored.
    seen: HashSet<String>,
}

impl AckState {
    /// Records a delivery; `id` is its correlation id when the source uses them.
    pub(crate) fn on_delivery(&mut self, tag: u64, id: Option<&str>) -> Verdict {
        if let Some(id) = id {
            if self.seen.contains(id) {
                return Verdict::Duplicate;
            }
            self.seen.insert(id.to_string());
            self.current_ids.push(id.to_string());
        }
        self.current_max_tag = Some(self.current_max_tag.map_or(tag, |t| t.max(tag)));
        Verdict::Emit
    }

    /// Records the snapshot of checkpoint `checkpoint` and returns its bytes.
    pub(crate) fn snapshot(&mut self, checkpoint: u64) -> Vec<u8> {
        self.pending.push_back(Pending {
            checkpoint,
            max_tag: self.current_max_tag.take(),
            ids: std::mem::take(&mut self.current_ids),
        });
        let snapshot = Snapshot {
            version: SNAPSHOT_VERSION,
            pending: self
                .pending
                .iter()
                .filter(|p| !p.ids.is_empty())
                .map(|p| (p.checkpoint, p.ids.clone()))
                .collect(),
        };
        bincode::serialize(&snapshot).expect("a snapshot of strings serializes")
    }

    /// Checkpoint `checkpoint` completed: forgets the ids of every entry up to it and returns
    /// the delivery tag to acknowledge with `multiple` (if any delivery of this channel is
    /// covered).
    pub(crate) fn complete(&mut self, checkpoint: u64) -> Option<u64> {
        let mut ack = None;
        while self
            .pending
            .front()
            .is_some_and(|p| p.checkpoint <= checkpoint)
        {
            let p = self.pending.pop_front().expect("checked");
            for id in &p.ids {
                self.seen.remove(id);
            }
            if let Some(t) = p.max_tag {
                ack = Some(ack.map_or(t, |a: u64| a.max(t)));
            }
        }
        ack
    }

    /// Continues from `bytes` written by [`snapshot`](Self::snapshot).
    ///
    /// # Errors
    /// A message if the bytes are not such a snapshot.
    pub(crate) fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let snapshot: Snapshot = bincode::deserialize(bytes)
            .map_err(|e| format!("the RabbitMQ source's checkpoint state is unreadable: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "the RabbitMQ source's checkpoint state has version {}, this build reads {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        for (checkpoint, ids) in snapshot.pending {
            self.seen.extend(ids.iter().cloned());
            self.pending.push_back(Pending {
                checkpoint,
                max_tag: None,
                ids,
            });
        }
        Ok(())
    }

    /// Ids currently remembered (for tests and metrics).
    pub(crate) fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_acknowledged_when_their_checkpoint_completes() {
        let mut s = AckState::default();
        assert_eq!(s.on_delivery(1, None), Verdict::Emit);
        assert_eq!(s.on_delivery(2, None), Verdict::Emit);
        s.snapshot(1);
        assert_eq!(s.on_delivery(3, None), Verdict::Emit);
        s.snapshot(2);
        s.snapshot(3); // nothing new
        assert_eq!(s.complete(1), Some(2));
        // Checkpoint 2 aborted silently; 3 completing covers it (ids ascend).
        assert_eq!(s.complete(3), Some(3));
        assert_eq!(s.complete(4), None);
    }

    #[test]
    fn redeliveries_of_processed_ids_are_dropped_until_their_checkpoint_completes() {
        let mut s = AckState::default();
        assert_eq!(s.on_delivery(1, Some("a")), Verdict::Emit);
        assert_eq!(s.on_delivery(2, Some("a")), Verdict::Duplicate);
        s.snapshot(7);
        assert_eq!(s.on_delivery(3, Some("a")), Verdict::Duplicate);
        assert_eq!(s.on_delivery(4, Some("b")), Verdict::Emit);
        assert_eq!(s.complete(7), Some(1));
        assert_eq!(s.remembered(), 1, "b is still pending");
        assert_eq!(s.on_delivery(5, Some("a")), Verdict::Emit);
    }

    /// The failure scenario: a snapshot with processed ids, a crash before the acks, a
    /// restart from that snapshot, and the broker redelivering everything unacknowledged.
    #[test]
    fn after_a_restore_the_checkpointed_ids_are_dropped_and_the_rest_replayed() {
        let mut before = AckState::default();
        for (tag, id) in [(1, "a"), (2, "b")] {
            assert_eq!(before.on_delivery(tag, Some(id)), Verdict::Emit);
        }
        let snapshot = before.snapshot(5);
        assert_eq!(before.on_delivery(3, Some("c")), Verdict::Emit);
        // Crash: nothing was acknowledged. The job restores checkpoint 5.
        let mut after = AckState::default();
        after.restore(&snapshot).unwrap();
        let verdicts: Vec<_> = [(1, "a"), (2, "b"), (3, "c")]
            .into_iter()
            .map(|(tag, id)| after.on_delivery(tag, Some(id)))
            .collect();
        assert_eq!(
            verdicts,
            [Verdict::Duplicate, Verdict::Duplicate, Verdict::Emit],
            "a and b are in the restored state, c is replayed"
        );
        after.snapshot(6);
        assert_eq!(after.complete(6), Some(3), "c's new tag is acknowledged");
        assert_eq!(after.remembered(), 0);
    }

    #[test]
    fn garbage_state_is_refused() {
        let e = AckState::default().restore(b"nope").unwrap_err();
        assert!(e.contains("unreadable"), "{e}");
    }
}
