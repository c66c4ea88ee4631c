//! Which channels a data server expects, holds or serves, and which generations it fences.
//!
//! Each channel key is in one state at a time:
//!
//! - `Registered`: the consumer called `incoming`; no producer connected yet.
//! - `Waiting`: a producer connected first; its connection waits for the registration.
//! - `Connected`: a connection serves the channel; the flag closes it when fenced.
//!
//! A key leaves the registry when its connection ends or its generation is fenced.

use super::codec::BatchCodec;
use super::key::ChannelKey;
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CancelFlag, Event};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The consumer's half of a channel, handed to the connection that serves it.
pub(crate) struct Registration {
    /// The local queue the consumer reads.
    pub(crate) queue: Sender<Event>,
    pub(crate) codec: Arc<dyn BatchCodec>,
    /// The queue's capacity: the initial credit.
    pub(crate) capacity: usize,
    /// The consumer's cancel flag.
    pub(crate) cancel: CancelFlag,
    /// Set when the channel's generation is fenced.
    pub(crate) fenced: Arc<AtomicBool>,
    /// The consuming task's metrics (bytes in), when known.
    pub(crate) io: Option<crate::exchange::io_metrics::TaskIo>,
}

enum Slot {
    Registered(Registration),
    Waiting(Sender<Registration>, u64),
    Connected(Arc<AtomicBool>),
}

/// What a producer's connection gets for its key.
pub(crate) enum Claim {
    /// The consumer is registered: serve it.
    Ready(Registration),
    /// The consumer is not registered yet: wait for it here; the number identifies the
    /// waiting connection for [`Registry::give_up`].
    Wait(Receiver<Registration>, u64),
}

/// The channels of one data server.
#[derive(Default)]
pub(crate) struct Registry {
    slots: HashMap<ChannelKey, Slot>,
    /// Per job, the oldest generation still accepted.
    fences: HashMap<String, (u64, u32)>,
    /// Numbers waiting connections.
    tickets: u64,
}

impl Registry {
    /// The error for a key older than its job's fence, if it is.
    pub(crate) fn check_fence(&self, key: &ChannelKey) -> Result<()> {
        match self.fences.get(&key.job_id) {
            Some(&(epoch, attempt)) if key.generation() < (epoch, attempt) => {
                Err(FjordError::Network(format!(
                    "channel {key} belongs to a fenced generation: job '{}' now runs epoch {epoch} attempt {attempt}; the producer or consumer is stale and is being replaced",
                    key.job_id
                )))
            }
            _ => Ok(()),
        }
    }

    /// The consumer's registration of `key`.
    ///
    /// # Errors
    /// The generation is fenced, or `key` is registered already.
    pub(crate) fn register(&mut self, key: ChannelKey, registration: Registration) -> Result<()> {
        self.check_fence(&key)?;
        // Registrations whose consumer was cancelled before its producer connected would
        // otherwise stay until their generation is fenced.
        self.slots
            .retain(|_, slot| !matches!(slot, Slot::Registered(r) if r.cancel.is_cancelled()));
        match self.slots.entry(key) {
            Entry::Vacant(v) => {
                v.insert(Slot::Registered(registration));
            }
            Entry::Occupied(mut o) => match o.get() {
                Slot::Waiting(waiting, _) => {
                    let fenced = registration.fenced.clone();
                    match waiting.try_send(registration) {
                        Ok(()) => {
                            o.insert(Slot::Connected(fenced));
                        }
                        // The connection gave up waiting but has not removed itself yet.
                        Err(e) => {
                            o.insert(Slot::Registered(e.into_inner()));
                        }
                    }
                }
                Slot::Registered(_) | Slot::Connected(_) => {
                    return Err(FjordError::Internal(format!(
                        "channel {} is registered twice on this TaskManager",
                        o.key()
                    )));
                }
            },
        }
        Ok(())
    }

    /// A producer's connection for `key` arrived.
    ///
    /// # Errors
    /// The generation is fenced, or another connection serves or waits for `key`.
    pub(crate) fn claim(&mut self, key: &ChannelKey) -> Result<Claim> {
        self.check_fence(key)?;
        match self.slots.remove(key) {
            None => {
                let (tx, rx) = crossbeam_channel::bounded(1);
                self.tickets += 1;
                self.slots
                    .insert(key.clone(), Slot::Waiting(tx, self.tickets));
                Ok(Claim::Wait(rx, self.tickets))
            }
            Some(Slot::Registered(r)) => {
                self.slots
                    .insert(key.clone(), Slot::Connected(r.fenced.clone()));
                Ok(Claim::Ready(r))
            }
            Some(other) => {
                self.slots.insert(key.clone(), other);
                Err(FjordError::Network(format!(
                    "channel {key} already has a producer connection; a second producer for the same channel and generation is a bug or a stale process"
                )))
            }
        }
    }

    /// A waiting connection gives up: removes its slot if it is still waiting.
    pub(crate) fn give_up(&mut self, key: &ChannelKey, ticket: u64) {
        if let Some(Slot::Waiting(_, t)) = self.slots.get(key)
            && *t == ticket
        {
            self.slots.remove(key);
        }
    }

    /// The connection serving `key` ended: forgets the key if that connection still owns it.
    pub(crate) fn finished(&mut self, key: &ChannelKey, fenced: &Arc<AtomicBool>) {
        if let Some(Slot::Connected(f)) = self.slots.get(key)
            && Arc::ptr_eq(f, fenced)
        {
            self.slots.remove(key);
        }
    }

    /// Fences every generation of `job_id` older than `(epoch, attempt)`: drops their
    /// registrations (their consumers see a disconnect), ends their waiting and serving
    /// connections, and refuses them later.
    pub(crate) fn fence(&mut self, job_id: &str, epoch: u64, attempt: u32) {
        let fence = self
            .fences
            .entry(job_id.to_string())
            .or_insert((epoch, attempt));
        *fence = (*fence).max((epoch, attempt));
        let fence = *fence;
        self.slots.retain(|key, slot| {
            if key.job_id != job_id || key.generation() >= fence {
                return true;
            }
            match slot {
                Slot::Registered(r) => r.fenced.store(true, Ordering::SeqCst),
                Slot::Connected(f) => f.store(true, Ordering::SeqCst),
                Slot::Waiting(..) => {}
            }
            false
        });
    }

    /// Drops everything (the server shuts down).
    pub(crate) fn clear(&mut self) {
        for slot in self.slots.values() {
            if let Slot::Connected(f) = slot {
                f.store(true, Ordering::SeqCst);
            }
        }
        self.slots.clear();
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.slots
            .values()
            .filter(|s| matches!(s, Slot::Waiting(..)))
            .count()
    }
}
