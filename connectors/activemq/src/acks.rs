//! The source's bookkeeping of what to acknowledge and what was already processed (Flink's
//! `MessageAcknowledgingSourceBase` with `MultipleIdsMessageAcknowledgingSourceBase`).
//!
//! - Every message taken since the last snapshot is *current*: its `ack` header (the STOMP
//!   handle to acknowledge it by) and, when the source deduplicates, its id (message id or
//!   correlation id).
//! - A snapshot for checkpoint `c` moves the current ones into a *pending* entry of `c`; the
//!   ids of every pending entry go into the snapshot, the ack handles do not (they belong to
//!   this connection and mean nothing after a restart).
//! - When checkpoint `c` completes, every message of entries up to `c` is acknowledged (one
//!   `ACK` frame each, `client-individual`) and their ids are forgotten.
//! - A message whose id is current or pending was processed already: it is a redelivery (after
//!   a failure, or a duplicate send) and is dropped; its handle is acknowledged with the next
//!   completed checkpoint. After a restore the ids of the restored snapshot are pending
//!   (without handles): their messages went back to the queue unacknowledged, and their effects
//!   are in the restored state.
//!
//! As in Flink, ids are forgotten once the checkpoint covering them completes, by default. A
//! broker that crashes can lose acknowledgements it had received but not yet stored, and then
//! redelivers acknowledged messages after its restart; to recognise those too, the state keeps
//! the ids of the last `retain_acknowledged` acknowledged messages as well (they go into every
//! snapshot).

use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// New: emit it; it is acknowledged when its checkpoint completes.
    Emit,
    /// Processed already: drop it (it is acknowledged when the next checkpoint completes).
    Duplicate,
}

#[derive(Debug)]
struct Pending {
    checkpoint: u64,
    /// Ack handles of this connection in the entry; empty for restored entries.
    acks: Vec<String>,
    ids: Vec<String>,
}

/// The snapshot format: ids per checkpoint not yet known to be complete.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    pending: Vec<(u64, Vec<String>)>,
    /// Ids of acknowledged messages still remembered, oldest first.
    acknowledged: Vec<String>,
}

const SNAPSHOT_VERSION: u32 = 1;

#[derive(Debug, Default)]
pub(crate) struct AckState {
    current_acks: Vec<String>,
    current_ids: Vec<String>,
    pending: VecDeque<Pending>,
    /// Ids of acknowledged messages kept, oldest first (at most `retain_acknowledged`).
    acknowledged: VecDeque<String>,
    retain_acknowledged: usize,
    /// Ids processed and not yet forgotten: current, pending, restored and acknowledged ones.
    seen: HashSet<String>,
}

impl AckState {
    /// A state that also remembers the ids of the last `retain_acknowledged` acknowledged
    /// messages (0: Flink's behaviour, forget them at acknowledgement).
    pub(crate) fn new(retain_acknowledged: usize) -> Self {
        AckState {
            retain_acknowledged,
            ..AckState::default()
        }
    }

    /// Records a message with ack handle `ack`; `id` is its id when the source deduplicates.
    pub(crate) fn on_message(&mut self, ack: &str, id: Option<&str>) -> Verdict {
        self.current_acks.push(ack.to_string());
        if let Some(id) = id {
            if self.seen.contains(id) {
                return Verdict::Duplicate;
            }
            self.seen.insert(id.to_string());
            self.current_ids.push(id.to_string());
        }
        Verdict::Emit
    }

    /// Records the snapshot of checkpoint `checkpoint` and returns its bytes.
    pub(crate) fn snapshot(&mut self, checkpoint: u64) -> Vec<u8> {
        self.pending.push_back(Pending {
            checkpoint,
            acks: std::mem::take(&mut self.current_acks),
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
            acknowledged: self.acknowledged.iter().cloned().collect(),
        };
        fjord::encoding::to_vec(&snapshot).expect("a snapshot of strings serializes")
    }

    /// Checkpoint `checkpoint` completed: forgets the ids of every entry up to it and returns
    /// the ack handles to acknowledge.
    pub(crate) fn complete(&mut self, checkpoint: u64) -> Vec<String> {
        let mut acks = Vec::new();
        while self
            .pending
            .front()
            .is_some_and(|p| p.checkpoint <= checkpoint)
        {
            let p = self.pending.pop_front().expect("checked");
            self.forget(p.ids);
            acks.extend(p.acks);
        }
        acks
    }

    /// Moves acknowledged ids into the retained window, forgetting what falls out of it.
    fn forget(&mut self, ids: Vec<String>) {
        for id in ids {
            if self.retain_acknowledged == 0 {
                self.seen.remove(&id);
                continue;
            }
            self.acknowledged.push_back(id);
            if self.acknowledged.len() > self.retain_acknowledged {
                let old = self.acknowledged.pop_front().expect("not empty");
                self.seen.remove(&old);
            }
        }
    }

    /// Continues from `bytes` written by [`snapshot`](Self::snapshot).
    ///
    /// # Errors
    /// A message if the bytes are not such a snapshot.
    pub(crate) fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let snapshot: Snapshot = fjord::encoding::from_slice(bytes)
            .map_err(|e| format!("the ActiveMQ source's checkpoint state is unreadable: {e}"))?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(format!(
                "the ActiveMQ source's checkpoint state has version {}, this build reads {SNAPSHOT_VERSION}",
                snapshot.version
            ));
        }
        let keep = snapshot.acknowledged.len().min(self.retain_acknowledged);
        let acknowledged = &snapshot.acknowledged[snapshot.acknowledged.len() - keep..];
        self.seen.extend(acknowledged.iter().cloned());
        self.acknowledged.extend(acknowledged.iter().cloned());
        for (checkpoint, ids) in snapshot.pending {
            self.seen.extend(ids.iter().cloned());
            self.pending.push_back(Pending {
                checkpoint,
                acks: Vec::new(),
                ids,
            });
        }
        Ok(())
    }

    /// Ids currently remembered.
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_acknowledged_when_their_checkpoint_completes() {
        let mut s = AckState::default();
        assert_eq!(s.on_message("a1", None), Verdict::Emit);
        assert_eq!(s.on_message("a2", None), Verdict::Emit);
        s.snapshot(1);
        assert_eq!(s.on_message("a3", None), Verdict::Emit);
        s.snapshot(2);
        s.snapshot(3); // nothing new
        assert_eq!(s.complete(1), ["a1", "a2"]);
        // Checkpoint 2 aborted silently; 3 completing covers it (ids ascend).
        assert_eq!(s.complete(3), ["a3"]);
        assert!(s.complete(4).is_empty());
    }

    #[test]
    fn redeliveries_of_processed_ids_are_dropped_until_their_checkpoint_completes() {
        let mut s = AckState::default();
        assert_eq!(s.on_message("1", Some("a")), Verdict::Emit);
        assert_eq!(s.on_message("2", Some("a")), Verdict::Duplicate);
        s.snapshot(7);
        assert_eq!(s.on_message("3", Some("a")), Verdict::Duplicate);
        assert_eq!(s.on_message("4", Some("b")), Verdict::Emit);
        assert_eq!(
            s.complete(7),
            ["1", "2"],
            "the duplicate is acknowledged too"
        );
        assert_eq!(s.remembered(), 1, "b is still pending");
        assert_eq!(s.on_message("5", Some("a")), Verdict::Emit);
        s.snapshot(8);
        assert_eq!(s.complete(8), ["3", "4", "5"]);
    }

    /// The failure scenario: a snapshot with processed ids, a crash before the acks, a
    /// restart from that snapshot, and the broker redelivering everything unacknowledged.
    #[test]
    fn after_a_restore_the_checkpointed_ids_are_dropped_and_the_rest_replayed() {
        let mut before = AckState::default();
        for (ack, id) in [("1", "a"), ("2", "b")] {
            assert_eq!(before.on_message(ack, Some(id)), Verdict::Emit);
        }
        let snapshot = before.snapshot(5);
        assert_eq!(before.on_message("3", Some("c")), Verdict::Emit);
        // Crash: nothing was acknowledged. The job restores checkpoint 5.
        let mut after = AckState::default();
        after.restore(&snapshot).unwrap();
        let verdicts: Vec<_> = [("x1", "a"), ("x2", "b"), ("x3", "c")]
            .into_iter()
            .map(|(ack, id)| after.on_message(ack, Some(id)))
            .collect();
        assert_eq!(
            verdicts,
            [Verdict::Duplicate, Verdict::Duplicate, Verdict::Emit],
            "a and b are in the restored state, c is replayed"
        );
        after.snapshot(6);
        assert_eq!(after.complete(6), ["x1", "x2", "x3"]);
        assert_eq!(after.remembered(), 0);
    }

    /// A broker crash that lost acknowledgements redelivers acknowledged messages: with a
    /// retained window they are recognised, also after a restore.
    #[test]
    fn acknowledged_ids_are_kept_in_a_bounded_window() {
        let mut s = AckState::new(2);
        for (ack, id) in [("1", "a"), ("2", "b"), ("3", "c")] {
            assert_eq!(s.on_message(ack, Some(id)), Verdict::Emit);
        }
        s.snapshot(1);
        assert_eq!(s.complete(1).len(), 3);
        assert_eq!(s.remembered(), 2, "a fell out of the window");
        assert_eq!(s.on_message("4", Some("c")), Verdict::Duplicate);
        let snapshot = s.snapshot(2);
        let mut after = AckState::new(1);
        after.restore(&snapshot).unwrap();
        assert_eq!(after.on_message("1", Some("c")), Verdict::Duplicate);
        assert_eq!(
            after.on_message("2", Some("b")),
            Verdict::Emit,
            "a window of 1 keeps c only"
        );
        let mut flink = AckState::new(0);
        flink.on_message("1", Some("a"));
        flink.snapshot(1);
        flink.complete(1);
        assert_eq!(flink.on_message("2", Some("a")), Verdict::Emit);
    }

    #[test]
    fn garbage_state_is_refused() {
        let e = AckState::default().restore(b"nope").unwrap_err();
        assert!(e.contains("unreadable"), "{e}");
    }
}
