//! Barrier alignment in the input loop: which channels delivered the barrier of the
//! checkpoint being aligned, and the selection over the channels still read from (those that
//! have not ended and are not held back while an exactly-once alignment waits).

use super::input::InputChannel;
use crate::checkpoint::CheckpointBarrier;
use crossbeam_channel::Select;

/// Barriers received so far for the checkpoint being aligned.
pub(super) struct Alignment {
    pub(super) barrier: CheckpointBarrier,
    pub(super) received: Vec<bool>,
}

impl Alignment {
    /// Every channel delivered the barrier or ended.
    pub(super) fn complete(&self, ended: &[bool]) -> bool {
        self.received.iter().zip(ended).all(|(r, e)| *r || *e)
    }

    /// A channel ended; returns the barrier if that completes the alignment.
    pub(super) fn on_end(&mut self, _channel: usize, ended: &[bool]) -> Option<CheckpointBarrier> {
        self.complete(ended).then(|| self.barrier.clone())
    }
}

/// Rebuilds the selection over channels that have not ended and are not held back; returns
/// the channel index of each selection position.
pub(super) fn reselect<'a>(
    select: &mut Select<'a>,
    channels: &'a [InputChannel],
    ended: &[bool],
    blocked: &[bool],
) -> Vec<usize> {
    *select = Select::new();
    let mut active = Vec::new();
    for (k, c) in channels.iter().enumerate() {
        if !ended[k] && !blocked[k] {
            select.recv(&c.receiver);
            active.push(k);
        }
    }
    active
}
