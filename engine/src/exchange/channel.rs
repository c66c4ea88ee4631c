//! Channels between tasks: bounded queues of batches, so a slow consumer slows its producers
//! (backpressure) instead of growing memory.

use crate::error::{FjordError, Result};
use crate::types::Timestamp;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What travels over a channel.
pub(crate) enum Event {
    /// A batch of records: a `Vec<StreamRecord<T>>` whose type only the two ends know.
    Records(Box<dyn Any + Send>),
    /// An event-time watermark from this channel's producer.
    Watermark(Timestamp),
    /// The producer's stream became idle or active again (Flink's `WatermarkStatus`).
    WatermarkStatus {
        /// True when idle.
        idle: bool,
    },
    /// A checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(crate::checkpoint::CheckpointBarrier),
    /// The producer finished; nothing more comes on this channel.
    EndOfPartition,
}

/// A flag all tasks of a job watch; set when the job is cancelled or a task failed. A child
/// flag (one execution attempt) is also set when its parent (the whole job) is.
#[derive(Clone, Default)]
pub(crate) struct CancelFlag(Arc<AtomicBool>, Option<Arc<AtomicBool>>);

impl CancelFlag {
    /// A flag that is cancelled on its own or with `parent`.
    pub(crate) fn child(parent: &CancelFlag) -> Self {
        CancelFlag(Arc::default(), Some(parent.0.clone()))
    }
    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed) || self.1.as_ref().is_some_and(|p| p.load(Ordering::Relaxed))
    }
}

/// How often a blocked task looks at the cancel flag.
pub(crate) const CANCEL_POLL: Duration = Duration::from_millis(50);

/// The sending end of a channel.
#[derive(Clone)]
pub(crate) struct ChannelSender {
    sender: Sender<Event>,
    cancel: CancelFlag,
    /// Why the receiving end went away, when it can tell more than "the consumer is gone" (a
    /// network channel whose connection was refused or lost). Set once, shared by clones.
    failure: Option<Arc<OnceLock<String>>>,
}

impl ChannelSender {
    /// Sends an event, blocking while the channel is full (backpressure) but giving up when the
    /// job is cancelled or the receiver is gone.
    pub(crate) fn send(&self, mut event: Event) -> Result<()> {
        loop {
            match self.sender.send_timeout(event, CANCEL_POLL) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(e)) => {
                    if self.cancel.is_cancelled() {
                        return Err(FjordError::Cancelled);
                    }
                    event = e;
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    return Err(match self.failure.as_ref().and_then(|f| f.get()) {
                        Some(message) => FjordError::Network(message.clone()),
                        None => FjordError::Cancelled,
                    });
                }
            }
        }
    }

    /// A sender over an existing bounded queue whose receiving end may record, in `failure`,
    /// why it went away; `send` then fails with [`FjordError::Network`] carrying that message
    /// instead of [`FjordError::Cancelled`].
    pub(crate) fn from_parts(
        sender: Sender<Event>,
        cancel: &CancelFlag,
        failure: Arc<OnceLock<String>>,
    ) -> Self {
        ChannelSender {
            sender,
            cancel: cancel.clone(),
            failure: Some(failure),
        }
    }
}

/// Creates a bounded channel holding at most `capacity` events.
pub(crate) fn channel(capacity: usize, cancel: &CancelFlag) -> (ChannelSender, Receiver<Event>) {
    let (sender, receiver) = crossbeam_channel::bounded(capacity.max(1));
    (
        ChannelSender {
            sender,
            cancel: cancel.clone(),
            failure: None,
        },
        receiver,
    )
}

impl ChannelSender {
    /// Like [`send`](Self::send), and counts the time blocked on a full channel into `task`'s
    /// backpressured time. Tries without blocking first, so the clock is read only when the
    /// channel is full.
    pub(crate) fn send_measured(
        &self,
        event: Event,
        task: &crate::exchange::io_metrics::TaskIo,
    ) -> Result<()> {
        match self.sender.try_send(event) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(event)) => task
                .timed(crate::exchange::io_metrics::Wait::Backpressured, || {
                    self.send(event)
                }),
            // `send` knows how to tell why the receiver went away.
            Err(crossbeam_channel::TrySendError::Disconnected(event)) => self.send(event),
        }
    }
}
