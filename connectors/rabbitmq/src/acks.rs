//! What the RabbitMQ source acknowledges: the bookkeeping is the engine's
//! [`AcknowledgingState`] (Flink's `MessageAcknowledgingSourceBase`); a checkpoint's deliveries
//! are acknowledged with one `basic.ack` with `multiple` up to the highest delivery tag.
//! Duplicates are not tracked: the source rejects them at once.

use fjord::sources::acknowledging::{AckHandles, AcknowledgingState};

/// The highest delivery tag of this channel among a checkpoint's deliveries.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HighestTag(pub(crate) Option<u64>);

impl AckHandles for HighestTag {
    type Handle = u64;
    fn add(&mut self, tag: u64) {
        self.0 = Some(self.0.map_or(tag, |t| t.max(tag)));
    }
    fn absorb(&mut self, later: Self) {
        if let Some(tag) = later.0 {
            self.add(tag);
        }
    }
}

/// The RabbitMQ source's state.
pub(crate) type AckState = AcknowledgingState<HighestTag>;

#[cfg(test)]
mod tests {
    use super::*;
    use fjord::sources::acknowledging::Verdict;

    #[test]
    fn a_checkpoint_is_acknowledged_up_to_its_highest_tag() {
        let mut s = AckState::new("RabbitMQ", 0);
        for tag in [2, 1] {
            assert_eq!(s.on_message(None), Verdict::Emit);
            s.track(tag);
        }
        s.snapshot(1);
        s.track(3);
        s.snapshot(2);
        s.snapshot(3);
        assert_eq!(s.complete(1), HighestTag(Some(2)));
        assert_eq!(s.complete(3), HighestTag(Some(3)));
        assert_eq!(s.complete(4), HighestTag(None));
    }
}
