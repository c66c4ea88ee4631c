//! Channels between tasks: bounded queues of batches, so a slow consumer slows its producers
//! (backpressure) instead of growing memory.

use crate::error::{FjordError, Result};
use crate::exchange::codec::BatchCodec;
use crate::types::Timestamp;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What travels over a channel.
pub(crate) enum Event {
    /// A batch of records: a `Vec<StreamRecord<T>>` whose type only the two ends know.
    Records(Box<dyn Any + Send>),
    /// A batch of records in its wire encoding, as a network channel carries it: the
    /// producing task encodes it and the consuming task decodes it, each on its own thread,
    /// so records are freed by the thread that allocated them and the connection's threads
    /// only move bytes (a record's allocation freed on another thread cost a third of the
    /// channel's CPU time; BENCHMARKS.md, "Network exchange").
    Encoded(EncodedBatch),
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

impl Event {
    /// The records of a [`Event::Records`] or (decoded) [`Event::Encoded`] event.
    ///
    /// # Errors
    /// An encoded batch cannot be decoded, or the event carries no records.
    pub(crate) fn into_batch(self) -> Result<Box<dyn Any + Send>> {
        match self {
            Event::Records(batch) => Ok(batch),
            Event::Encoded(batch) => batch.decode(),
            _ => Err(FjordError::Internal("an event without records".into())),
        }
    }
}

/// A record batch in its wire encoding, with the codec that reads it.
pub(crate) struct EncodedBatch {
    /// The batch as [`BatchCodec::encode`] wrote it.
    pub(crate) bytes: Vec<u8>,
    /// The channel's codec.
    pub(crate) codec: Arc<dyn BatchCodec>,
}

impl EncodedBatch {
    /// The batch's records, a `Vec<StreamRecord<T>>` type-erased as in [`Event::Records`].
    ///
    /// # Errors
    /// The bytes are not a batch of the codec's type.
    pub(crate) fn decode(&self) -> Result<Box<dyn Any + Send>> {
        self.codec.decode(&self.bytes)
    }
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
    /// The codec of a network channel, or of an in-process one whose records own heap memory:
    /// record batches are encoded by `send`, on the producing task's thread, into an
    /// [`Event::Encoded`].
    encoder: Option<Encoder>,
}

/// The codec of an encoding channel's sender and the size of its last encoded batch (the next
/// buffer's capacity).
#[derive(Clone)]
struct Encoder {
    codec: Arc<dyn BatchCodec>,
    last_len: Arc<AtomicUsize>,
}

impl Encoder {
    fn new(codec: Arc<dyn BatchCodec>) -> Self {
        Encoder {
            codec,
            last_len: Arc::default(),
        }
    }
}

impl ChannelSender {
    /// Sends an event, blocking while the channel is full (backpressure) but giving up when the
    /// job is cancelled or the receiver is gone.
    pub(crate) fn send(&self, event: Event) -> Result<()> {
        let mut event = self.encoded(event)?;
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

    /// A network channel's record batch becomes an [`Event::Encoded`]; other events pass.
    fn encoded(&self, event: Event) -> Result<Event> {
        match (&self.encoder, event) {
            (Some(encoder), Event::Records(batch)) => {
                let mut bytes = Vec::with_capacity(encoder.last_len.load(Ordering::Relaxed));
                encoder.codec.encode(&*batch, &mut bytes)?;
                drop(batch);
                encoder.last_len.store(bytes.len(), Ordering::Relaxed);
                Ok(Event::Encoded(EncodedBatch {
                    bytes,
                    codec: encoder.codec.clone(),
                }))
            }
            (_, event) => Ok(event),
        }
    }

    /// A network channel's sender over an existing bounded queue: record batches are encoded
    /// with `codec` before they enter it, and its receiving end may record, in `failure`, why
    /// it went away; `send` then fails with [`FjordError::Network`] carrying that message
    /// instead of [`FjordError::Cancelled`].
    pub(crate) fn from_parts(
        sender: Sender<Event>,
        cancel: &CancelFlag,
        failure: Arc<OnceLock<String>>,
        codec: Arc<dyn BatchCodec>,
    ) -> Self {
        ChannelSender {
            sender,
            cancel: cancel.clone(),
            failure: Some(failure),
            encoder: Some(Encoder::new(codec)),
        }
    }
}

/// Creates a bounded channel holding at most `capacity` events, between two tasks of one
/// process.
///
/// Batches of records that own heap memory (`codec` says) are encoded by the producing task
/// and decoded by the consuming one, as over the network: each record's strings are then
/// allocated and freed by one thread. Passed as objects, every string was allocated by the
/// producer and freed by the consumer, a cross-thread free that cost more than encoding
/// (the in-process queue took 1.2–1.5× the loopback TCP channel's CPU per `(String, i64)`
/// record; BENCHMARKS.md, "Network exchange"), and Flink, too, serializes every record that
/// leaves its chain. Records without heap memory (numbers, tuples of them) pass as they are.
pub(crate) fn channel(
    capacity: usize,
    cancel: &CancelFlag,
    codec: Option<Arc<dyn BatchCodec>>,
) -> (ChannelSender, Receiver<Event>) {
    let (sender, receiver) = crossbeam_channel::bounded(capacity.max(1));
    (
        ChannelSender {
            sender,
            cancel: cancel.clone(),
            failure: None,
            encoder: codec.filter(|c| c.owns_heap_memory()).map(Encoder::new),
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
        let event = self.encoded(event)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::codec::TypedCodec;
    use crate::types::StreamRecord;

    fn sent<T: crate::types::Data>(records: Vec<T>) -> (bool, Vec<StreamRecord<T>>) {
        let codec: Arc<dyn BatchCodec> = Arc::new(TypedCodec::<T>::new());
        let (tx, rx) = channel(2, &CancelFlag::default(), Some(codec));
        let batch: Vec<StreamRecord<T>> = records.into_iter().map(StreamRecord::new).collect();
        tx.send(Event::Records(Box::new(batch))).unwrap();
        let event = rx.recv().unwrap();
        let encoded = matches!(event, Event::Encoded(_));
        let batch = event.into_batch().unwrap();
        (encoded, *batch.downcast::<Vec<StreamRecord<T>>>().unwrap())
    }

    #[test]
    fn records_that_own_heap_memory_cross_an_in_process_channel_encoded() {
        let (encoded, batch) = sent(vec![("a".to_string(), 1i64), ("bb".to_string(), 2)]);
        assert!(encoded, "strings are encoded by the producer");
        let values: Vec<_> = batch.into_iter().map(|r| r.value).collect();
        assert_eq!(values, [("a".to_string(), 1), ("bb".to_string(), 2)]);

        let (encoded, batch) = sent(vec![(1u64, 2i64), (3, 4)]);
        assert!(!encoded, "numbers pass as they are");
        let values: Vec<_> = batch.into_iter().map(|r| r.value).collect();
        assert_eq!(values, [(1, 2), (3, 4)]);
    }
}
