//! The bookkeeping of a source that acknowledges messages to its broker only when the checkpoint
//! covering them completes, and drops redeliveries of messages it processed already (Flink's
//! `MessageAcknowledgingSourceBase` with `MultipleIdsMessageAcknowledgingSourceBase`). The
//! RabbitMQ and ActiveMQ sources build on it.
//!
//! - Every message taken since the last snapshot is *current*: the broker's handle to
//!   acknowledge it by (a delivery tag, an ack id), gathered by an [`AckHandles`], and, when the
//!   source deduplicates, its id (a correlation id or message id).
//! - A snapshot for checkpoint `c` moves the current ones into a *pending* entry of `c`; the
//!   ids of every pending entry go into the snapshot, the handles do not (they belong to this
//!   connection and mean nothing after a restart).
//! - When checkpoint `c` completes, the handles of every entry up to `c` are returned for the
//!   source to acknowledge, and their ids are forgotten.
//! - A message whose id is current or pending was processed already: it is a redelivery (after
//!   a failure, or a duplicate send) and is dropped.
//! - After a restore the ids of the restored snapshot's pending entries are *restored*: their
//!   messages went back to the queue unacknowledged, and their effects are in the restored
//!   state. A restored id is remembered until its message comes again and is dropped; it then
//!   joins the current entry, and is forgotten when that entry's checkpoint completes (by which
//!   time the redelivery is settled). Flink forgets restored ids as soon as the first
//!   checkpoint after the restore completes; a broker that has not yet redelivered all of them
//!   by then (RabbitMQ hands out at most `prefetch` unacknowledged messages at a time) sends
//!   the rest afterwards, and they were processed twice. Restored ids whose acknowledgement
//!   reached the broker before the failure are never redelivered: they stay remembered (at most
//!   one checkpoint's ids per restore) and in every snapshot.
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
pub enum Verdict {
    /// New: emit it; it is acknowledged when its checkpoint completes.
    Emit,
    /// Processed already: drop it.
    Duplicate,
}

/// The broker handles of the messages of one checkpoint, gathered for acknowledgement.
pub trait AckHandles: Default {
    /// The handle of one message.
    type Handle;
    /// Adds one message's handle.
    fn add(&mut self, handle: Self::Handle);
    /// Adds the handles of a later checkpoint's entry.
    fn absorb(&mut self, later: Self);
}

/// Every handle, acknowledged one by one (STOMP's `client-individual` ack ids).
impl<T> AckHandles for Vec<T> {
    type Handle = T;
    fn add(&mut self, handle: T) {
        self.push(handle);
    }
    fn absorb(&mut self, later: Self) {
        self.extend(later);
    }
}

#[derive(Debug)]
struct Pending<H> {
    checkpoint: u64,
    /// Handles of this connection in the entry; none for restored entries.
    handles: H,
    ids: Vec<String>,
}

/// The snapshot format: ids per checkpoint not yet known to be complete, acknowledged ids
/// retained, and (from version 2 on) restored ids whose messages have not come again.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    pending: Vec<(u64, Vec<String>)>,
    /// Ids of acknowledged messages still remembered, oldest first.
    acknowledged: Vec<String>,
    /// Version 2: ids restored from an earlier snapshot and not yet redelivered.
    restored: Vec<String>,
}

/// Version 1: [`Snapshot`] without `restored` (read, never written).
#[derive(Deserialize)]
struct SnapshotV1 {
    version: u32,
    pending: Vec<(u64, Vec<String>)>,
    acknowledged: Vec<String>,
}

const SNAPSHOT_VERSION: u32 = 2;

/// What a message-acknowledging source remembers (see the module docs).
#[derive(Debug)]
pub struct AcknowledgingState<H> {
    /// The system's name in error messages ("RabbitMQ").
    system: &'static str,
    current: H,
    current_ids: Vec<String>,
    pending: VecDeque<Pending<H>>,
    /// Ids of acknowledged messages kept, oldest first (at most `retain_acknowledged`).
    acknowledged: VecDeque<String>,
    retain_acknowledged: usize,
    /// Ids restored from a snapshot whose messages have not come again (see the module docs).
    restored: HashSet<String>,
    /// Ids processed and not yet forgotten: current, pending, restored and acknowledged ones.
    seen: HashSet<String>,
}

impl<H: AckHandles> AcknowledgingState<H> {
    /// A state for a source of `system` (named in error messages) that also remembers the ids
    /// of the last `retain_acknowledged` acknowledged messages (0: Flink's behaviour, forget
    /// them at acknowledgement).
    pub fn new(system: &'static str, retain_acknowledged: usize) -> Self {
        AcknowledgingState {
            system,
            current: H::default(),
            current_ids: Vec::new(),
            pending: VecDeque::new(),
            acknowledged: VecDeque::new(),
            retain_acknowledged,
            restored: HashSet::new(),
            seen: HashSet::new(),
        }
    }

    /// Whether a message with `id` (`None`: the source does not deduplicate) is new, recording
    /// its id if it is. Its handle is recorded apart, with [`track`](Self::track): a source
    /// decides whether a duplicate's handle is acknowledged with the checkpoint or settled at
    /// once.
    pub fn on_message(&mut self, id: Option<&str>) -> Verdict {
        if let Some(id) = id {
            if self.seen.contains(id) {
                // A restored id's message came again: remember it until this redelivery is
                // settled with the current entry's checkpoint.
                if self.restored.remove(id) {
                    self.current_ids.push(id.to_string());
                }
                return Verdict::Duplicate;
            }
            self.seen.insert(id.to_string());
            self.current_ids.push(id.to_string());
        }
        Verdict::Emit
    }

    /// Records a handle to acknowledge when the next snapshot's checkpoint completes.
    pub fn track(&mut self, handle: H::Handle) {
        self.current.add(handle);
    }

    /// Records the snapshot of checkpoint `checkpoint` and returns its bytes.
    pub fn snapshot(&mut self, checkpoint: u64) -> Vec<u8> {
        self.pending.push_back(Pending {
            checkpoint,
            handles: std::mem::take(&mut self.current),
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
            restored: self.restored.iter().cloned().collect(),
        };
        crate::encoding::to_vec(&snapshot).expect("a snapshot of strings serializes")
    }

    /// Checkpoint `checkpoint` completed: forgets the ids of every entry up to it and returns
    /// the handles to acknowledge.
    pub fn complete(&mut self, checkpoint: u64) -> H {
        let mut handles = H::default();
        while self
            .pending
            .front()
            .is_some_and(|p| p.checkpoint <= checkpoint)
        {
            let p = self.pending.pop_front().expect("checked");
            self.forget(p.ids);
            handles.absorb(p.handles);
        }
        handles
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
    /// A message naming the system if the bytes are not such a snapshot.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let system = self.system;
        let unreadable = |e| format!("the {system} source's checkpoint state is unreadable: {e}");
        // Version 1's fields are a prefix of version 2's: read them first to learn the version.
        let v1: SnapshotV1 = crate::encoding::from_slice(bytes).map_err(unreadable)?;
        let snapshot = match v1.version {
            1 => Snapshot {
                version: 1,
                pending: v1.pending,
                acknowledged: v1.acknowledged,
                restored: Vec::new(),
            },
            SNAPSHOT_VERSION => crate::encoding::from_slice(bytes).map_err(unreadable)?,
            other => {
                return Err(format!(
                    "the {system} source's checkpoint state has version {other}, this build reads 1 and {SNAPSHOT_VERSION}"
                ));
            }
        };
        let keep = snapshot.acknowledged.len().min(self.retain_acknowledged);
        let acknowledged = &snapshot.acknowledged[snapshot.acknowledged.len() - keep..];
        self.seen.extend(acknowledged.iter().cloned());
        self.acknowledged.extend(acknowledged.iter().cloned());
        let restored = snapshot
            .pending
            .into_iter()
            .flat_map(|(_, ids)| ids)
            .chain(snapshot.restored);
        for id in restored {
            self.seen.insert(id.clone());
            self.restored.insert(id);
        }
        Ok(())
    }

    /// How many ids are remembered (current, pending and retained acknowledged ones).
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type State = AcknowledgingState<Vec<&'static str>>;

    /// A message as a source that acknowledges duplicates with the checkpoint takes it.
    fn take(s: &mut State, ack: &'static str, id: Option<&str>) -> Verdict {
        s.track(ack);
        s.on_message(id)
    }

    #[test]
    fn messages_are_acknowledged_when_their_checkpoint_completes() {
        let mut s = State::new("Test", 0);
        assert_eq!(take(&mut s, "a1", None), Verdict::Emit);
        assert_eq!(take(&mut s, "a2", None), Verdict::Emit);
        s.snapshot(1);
        assert_eq!(take(&mut s, "a3", None), Verdict::Emit);
        s.snapshot(2);
        s.snapshot(3); // nothing new
        assert_eq!(s.complete(1), ["a1", "a2"]);
        // Checkpoint 2 aborted silently; 3 completing covers it (ids ascend).
        assert_eq!(s.complete(3), ["a3"]);
        assert!(s.complete(4).is_empty());
    }

    #[test]
    fn redeliveries_of_processed_ids_are_dropped_until_their_checkpoint_completes() {
        let mut s = State::new("Test", 0);
        assert_eq!(take(&mut s, "1", Some("a")), Verdict::Emit);
        assert_eq!(take(&mut s, "2", Some("a")), Verdict::Duplicate);
        s.snapshot(7);
        assert_eq!(take(&mut s, "3", Some("a")), Verdict::Duplicate);
        assert_eq!(take(&mut s, "4", Some("b")), Verdict::Emit);
        assert_eq!(
            s.complete(7),
            ["1", "2"],
            "the duplicate is acknowledged too"
        );
        assert_eq!(s.remembered(), 1, "b is still pending");
        assert_eq!(take(&mut s, "5", Some("a")), Verdict::Emit);
        s.snapshot(8);
        assert_eq!(s.complete(8), ["3", "4", "5"]);
    }

    /// The failure scenario: a snapshot with processed ids, a crash before the acks, a
    /// restart from that snapshot, and the broker redelivering everything unacknowledged.
    #[test]
    fn after_a_restore_the_checkpointed_ids_are_dropped_and_the_rest_replayed() {
        let mut before = State::new("Test", 0);
        for (ack, id) in [("1", "a"), ("2", "b")] {
            assert_eq!(take(&mut before, ack, Some(id)), Verdict::Emit);
        }
        let snapshot = before.snapshot(5);
        assert_eq!(take(&mut before, "3", Some("c")), Verdict::Emit);
        // Crash: nothing was acknowledged. The job restores checkpoint 5.
        let mut after = State::new("Test", 0);
        after.restore(&snapshot).unwrap();
        let verdicts: Vec<_> = [("x1", "a"), ("x2", "b"), ("x3", "c")]
            .into_iter()
            .map(|(ack, id)| take(&mut after, ack, Some(id)))
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
        let mut s = State::new("Test", 2);
        for (ack, id) in [("1", "a"), ("2", "b"), ("3", "c")] {
            assert_eq!(take(&mut s, ack, Some(id)), Verdict::Emit);
        }
        s.snapshot(1);
        assert_eq!(s.complete(1).len(), 3);
        assert_eq!(s.remembered(), 2, "a fell out of the window");
        assert_eq!(take(&mut s, "4", Some("c")), Verdict::Duplicate);
        let snapshot = s.snapshot(2);
        let mut after = State::new("Test", 1);
        after.restore(&snapshot).unwrap();
        assert_eq!(take(&mut after, "1", Some("c")), Verdict::Duplicate);
        assert_eq!(
            take(&mut after, "2", Some("b")),
            Verdict::Emit,
            "a window of 1 keeps c only"
        );
        let mut flink = State::new("Test", 0);
        take(&mut flink, "1", Some("a"));
        flink.snapshot(1);
        flink.complete(1);
        assert_eq!(take(&mut flink, "2", Some("a")), Verdict::Emit);
    }

    /// The broker redelivers the restored messages a few at a time (RabbitMQ: `prefetch`
    /// unacknowledged at once): a checkpoint completing before all came again must not make
    /// the source forget the ones still to come.
    #[test]
    fn restored_ids_are_remembered_until_their_messages_come_again() {
        let mut before = State::new("Test", 0);
        for (ack, id) in [("1", "a"), ("2", "b"), ("3", "c")] {
            take(&mut before, ack, Some(id));
        }
        let snapshot = before.snapshot(1);
        let mut after = State::new("Test", 0);
        after.restore(&snapshot).unwrap();
        assert_eq!(take(&mut after, "x1", Some("a")), Verdict::Duplicate);
        after.snapshot(3);
        assert_eq!(after.complete(3), ["x1"]);
        assert_eq!(
            take(&mut after, "x2", Some("b")),
            Verdict::Duplicate,
            "b came after checkpoint 3 completed, and is still known"
        );
        assert_eq!(
            after.remembered(),
            2,
            "a is settled; b waits for its checkpoint, c for its message"
        );
        // A restore from a snapshot taken now keeps c (and b, pending).
        let again = after.snapshot(4);
        assert_eq!(after.complete(4), ["x2"]);
        assert_eq!(after.remembered(), 1);
        let mut third = State::new("Test", 0);
        third.restore(&again).unwrap();
        assert_eq!(take(&mut third, "y1", Some("c")), Verdict::Duplicate);
        assert_eq!(take(&mut third, "y2", Some("b")), Verdict::Duplicate);
        assert_eq!(take(&mut third, "y3", Some("d")), Verdict::Emit);
    }

    /// Snapshots of version 1 (before restored ids were kept apart) restore.
    #[test]
    fn a_version_1_snapshot_restores() {
        let v1 = crate::encoding::to_vec(&(
            1u32,
            vec![(5u64, vec!["a".to_string()])],
            vec!["z".to_string()],
        ))
        .unwrap();
        let mut s = State::new("Test", 1);
        s.restore(&v1).unwrap();
        assert_eq!(take(&mut s, "1", Some("a")), Verdict::Duplicate);
        assert_eq!(take(&mut s, "2", Some("z")), Verdict::Duplicate);
        assert_eq!(take(&mut s, "3", Some("b")), Verdict::Emit);
        let future = crate::encoding::to_vec(&(
            9u32,
            Vec::<(u64, Vec<String>)>::new(),
            Vec::<String>::new(),
        ))
        .unwrap();
        let e = State::new("Test", 0).restore(&future).unwrap_err();
        assert!(e.contains("version 9"), "{e}");
    }

    #[test]
    fn garbage_state_is_refused_naming_the_system() {
        let e = State::new("Test", 0).restore(b"nope").unwrap_err();
        assert!(
            e.contains("the Test source's checkpoint state is unreadable"),
            "{e}"
        );
    }
}
