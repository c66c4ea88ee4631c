//! Operators whose own state goes into checkpoints.
//!
//! An operator keeps its mutable parts (window contents, join buffers, timers, the keyed state
//! backend) in a *core* that sits in an `Arc<Mutex<..>>`: the task calls the core through
//! [`Shared`] (one uncontended lock per call), and the checkpoint participant registered for
//! the operator reaches the same core between two calls to copy its state.
//!
//! Keyed parts are stored per key group as a list of byte strings in a fixed order (the
//! keyed state backend, event-time timers, processing-time timers, then the operator's own
//! contents), so they move together when key groups move on rescaling.

use crate::chain::TwoInputOperator;
use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::encoding::byte_string::{Array, ByteBuf};
use crate::error::{FjordError, Result};
use crate::keygroup::{KeyGroupRange, Rehash};
use crate::operators::output::{Lifecycle, Output};
use crate::state::KeyedStateHandle;
use crate::timers::InternalTimerService;
use crate::types::{StreamRecord, Timestamp};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;

/// An operator core the task calls through a lock that the checkpoint participant shares.
pub(crate) struct Shared<C>(pub(crate) Arc<Mutex<C>>);

impl<C: CheckpointParticipant + 'static> Shared<C> {
    /// Wraps `core` and registers it as the checkpoint participant of `ctx`'s operator.
    pub(crate) fn register(ctx: &RuntimeContext, core: C) -> Self {
        let core = Arc::new(Mutex::new(core));
        ctx.services.checkpointing.register(
            ctx.operator_key(),
            Box::new(SharedParticipant(core.clone())),
        );
        Shared(core)
    }
}

struct SharedParticipant<C>(Arc<Mutex<C>>);

impl<C: CheckpointParticipant> CheckpointParticipant for SharedParticipant<C> {
    fn snapshot(&mut self, checkpoint_id: u64) -> Result<OperatorState> {
        self.0.lock().snapshot(checkpoint_id)
    }
    fn notify_complete(&mut self, checkpoint_id: u64) -> Result<()> {
        self.0.lock().notify_complete(checkpoint_id)
    }
}

impl<C: Lifecycle> Lifecycle for Shared<C> {
    fn open(&mut self) -> Result<()> {
        self.0.lock().open()
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.0.lock().emit_watermark(watermark)
    }
    fn flush(&mut self) -> Result<()> {
        self.0.lock().flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.0.lock().finish()
    }
    fn close(&mut self) -> Result<()> {
        self.0.lock().close()
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.0.lock().advance_processing_time(now)
    }
    fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.0.lock().emit_watermark_status(idle)
    }
    fn notify_checkpoint(
        &mut self,
        notice: crate::operators::output::CheckpointNotice,
    ) -> Result<()> {
        self.0.lock().notify_checkpoint(notice)
    }
}

impl<T, C: Output<T>> Output<T> for Shared<C> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        self.0.lock().emit(record)
    }
    fn emit_batch(&mut self, batch: Vec<StreamRecord<T>>) -> Result<()> {
        self.0.lock().emit_batch(batch)
    }
}

impl<A, B, C: TwoInputOperator<A, B>> TwoInputOperator<A, B> for Shared<C> {
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        self.0.lock().process1(record)
    }
    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        self.0.lock().process2(record)
    }
}

fn ser<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>> {
    crate::encoding::to_vec(value).map_err(|e| FjordError::Serialization {
        context: what.to_string(),
        message: e.to_string(),
    })
}

fn de<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    crate::encoding::from_slice(bytes).map_err(|e| FjordError::Serialization {
        context: what.to_string(),
        message: e.to_string(),
    })
}

/// The keyed parts of an operator: its keyed state backend (if it has one) and timers.
/// `own` snapshots and restores the operator's own contents of one key group.
pub(crate) struct KeyedParts<'a, K, N> {
    pub(crate) range: KeyGroupRange,
    pub(crate) max_parallelism: usize,
    pub(crate) backend: Option<&'a KeyedStateHandle>,
    pub(crate) timers: &'a mut InternalTimerService<K, N>,
}

impl<'a, K, N> KeyedParts<'a, K, N> {
    /// The parts of an operator whose keyed state is the runtime context's and whose
    /// contents are nothing else than that state and `timers`, over the subtask's key groups.
    pub(crate) fn of(ctx: &'a RuntimeContext, timers: &'a mut InternalTimerService<K, N>) -> Self {
        KeyedParts {
            range: ctx.key_group_range(),
            max_parallelism: ctx.max_parallelism,
            backend: ctx.keyed.as_ref(),
            timers,
        }
    }
}

impl<K, N> KeyedParts<'_, K, N>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    N: Hash + Eq + Clone + Serialize + DeserializeOwned,
{
    /// Snapshots every key group of the range: backend, timers and `own(key_group)`.
    pub(crate) fn snapshot(
        &self,
        mut own: impl FnMut(usize) -> Result<Vec<u8>>,
    ) -> Result<Vec<(usize, Vec<u8>)>> {
        let mut event: BTreeMap<usize, Vec<u8>> =
            self.timers.event.snapshot_groups(self.max_parallelism)?;
        let mut processing = self
            .timers
            .processing
            .snapshot_groups(self.max_parallelism)?;
        self.range
            .iter()
            .map(|kg| {
                let backend = match self.backend {
                    Some(b) => b.snapshot_key_group(kg)?,
                    None => Vec::new(),
                };
                let parts: [Vec<u8>; 4] = [
                    backend,
                    event.remove(&kg).unwrap_or_default(),
                    processing.remove(&kg).unwrap_or_default(),
                    own(kg)?,
                ];
                Ok((kg, ser(&Array(&parts), "keyed operator state")?))
            })
            .collect()
    }

    /// Restores the key groups of `state` (already filtered to this subtask's range, or all
    /// of them to re-bucket when `state.rehash_keys`). `own` gets the operator's own part of
    /// each key group, and the [`Rehash`] to apply to it when the key groups must be re-bucketed.
    pub(crate) fn restore(
        &mut self,
        state: &OperatorState,
        mut own: impl FnMut(usize, &[u8], Option<Rehash>) -> Result<()>,
    ) -> Result<()> {
        let rehash = state.rehash_keys.then_some(Rehash {
            range: self.range,
            max_parallelism: self.max_parallelism,
        });
        for (kg, bytes) in &state.keyed {
            let parts: [ByteBuf; 4] = de(bytes, &format!("restoring key group {kg}"))?;
            let parts = parts.map(|p| p.0);
            if let Some(b) = self.backend
                && !parts[0].is_empty()
            {
                match rehash {
                    None => b.restore_key_group(*kg, &parts[0])?,
                    Some(r) => b.restore_rehashed(*kg, &parts[0], r)?,
                }
            }
            self.timers.restore_event(&parts[1], rehash)?;
            self.timers.restore_processing(&parts[2], rehash)?;
            if !parts[3].is_empty() {
                own(*kg, &parts[3], rehash)?;
            }
        }
        Ok(())
    }
}
