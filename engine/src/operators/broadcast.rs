//! The broadcast state pattern (Flink's `BroadcastProcessFunction` and
//! `KeyedBroadcastProcessFunction`): a stream connected with a broadcast stream, whose
//! elements reach every parallel instance and update *broadcast state* — maps that are the
//! same on every instance. The broadcast side reads and writes broadcast state; the other side
//! only reads it. In the keyed variant the other side has keyed state and timers, and the
//! broadcast side may visit the keyed state of every key (`apply_to_keyed_state`).
//!
//! Broadcast state goes into checkpoints as operator state and is restored on every instance
//! (from one old instance, as all are equal), whatever the new parallelism.

use crate::chain::TwoInputOperator;
use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::functions::lifecycle_hooks;
use crate::operators::key_selector::KeySelector;
use crate::operators::keyed_process::{KeyedProcessContext, fire_keyed_timers, keyed_call};
use crate::operators::output::{
    Lifecycle, Output, SideOutputs, guard, keyed_timer_time, process_lifecycle_common,
};
use crate::operators::process::{OperatorTime, ProcessContext};
use crate::operators::shared::KeyedParts;
use crate::state::keyed::KeyedStateDescriptor;
use crate::state::{BroadcastState, KeyedStateHandle, MapStateDescriptor, OperatorStateStore};
use crate::timers::{InternalTimerService, TimeDomain};
use crate::types::{Data, Key, MIN_WATERMARK, StreamRecord, Timestamp};
use std::any::Any;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A state descriptor that can declare broadcast state in
/// [`DataStream::broadcast_with`](crate::DataStream::broadcast_with). Implemented by
/// [`MapStateDescriptor`]: broadcast state is a map.
pub trait BroadcastStateDescriptor: Send + Sync {
    /// The state's name.
    fn state_name(&self) -> &str;
    /// Creates the state in an instance's store (restoring it if the store was restored).
    #[doc(hidden)]
    fn create(&self, store: &mut OperatorStateStore) -> Result<Box<dyn Any + Send>>;
    /// A shared copy of the descriptor.
    #[doc(hidden)]
    fn to_shared(&self) -> Arc<dyn BroadcastStateDescriptor>;
}

impl<K: Key + Sync, V: Data + Sync> BroadcastStateDescriptor for MapStateDescriptor<K, V> {
    fn state_name(&self) -> &str {
        &self.name
    }
    fn create(&self, store: &mut OperatorStateStore) -> Result<Box<dyn Any + Send>> {
        let state = BroadcastState::<K, V>::new();
        store.register_broadcast_state(&self.name, &state)?;
        Ok(Box::new(state))
    }
    fn to_shared(&self) -> Arc<dyn BroadcastStateDescriptor> {
        Arc::new(self.clone())
    }
}

/// The broadcast states of one operator instance.
pub(crate) struct BroadcastStates {
    store: OperatorStateStore,
    states: Vec<(String, Box<dyn Any + Send>)>,
    operator: String,
}

impl BroadcastStates {
    /// Creates every declared state, restored from the operator's snapshot if there is one.
    pub(crate) fn new(
        ctx: &RuntimeContext,
        descriptors: &[Arc<dyn BroadcastStateDescriptor>],
        restored: Option<&[u8]>,
    ) -> Result<Self> {
        let mut store = OperatorStateStore::from_restored(restored)?;
        let states = descriptors
            .iter()
            .map(|d| Ok((d.state_name().to_string(), d.create(&mut store)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(BroadcastStates {
            store,
            states,
            operator: ctx.task_name.clone(),
        })
    }

    fn get<K: Key, V: Data>(&self, d: &MapStateDescriptor<K, V>) -> Result<BroadcastState<K, V>> {
        let (_, any) = self
            .states
            .iter()
            .find(|(n, _)| *n == d.name)
            .ok_or_else(|| FjordError::UnknownState {
                name: d.name.clone(),
                operator: self.operator.clone(),
                known: self
                    .states
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        any.downcast_ref::<BroadcastState<K, V>>()
            .cloned()
            .ok_or_else(|| FjordError::StateTypeMismatch {
                name: d.name.clone(),
                registered: "a broadcast state of other key or value types".into(),
                requested: std::any::type_name::<BroadcastState<K, V>>().into(),
            })
    }

    /// The serialized states (operator state of the snapshot).
    pub(crate) fn snapshot(&self) -> Result<Vec<u8>> {
        self.store.snapshot_bytes()
    }
}

/// Broadcast state as the non-broadcast side sees it: read only.
pub struct ReadOnlyBroadcastState<K, V>(BroadcastState<K, V>);

impl<K: Key, V: Data> ReadOnlyBroadcastState<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }
    /// True if `key` is present.
    pub fn contains(&self, key: &K) -> bool {
        self.0.contains(key)
    }
    /// All entries (in no particular order).
    pub fn entries(&self) -> Vec<(K, V)> {
        self.0.entries()
    }
}

/// What a [`BroadcastProcessFunction`] sees for an element of the non-broadcast side:
/// everything of a [`ProcessContext`] (timestamp, outputs) plus read-only broadcast state.
pub struct ReadOnlyContext<'a, 'b, O> {
    inner: ProcessContext<'a, O>,
    states: &'b BroadcastStates,
}

impl<'a, O> Deref for ReadOnlyContext<'a, '_, O> {
    type Target = ProcessContext<'a, O>;
    fn deref(&self) -> &ProcessContext<'a, O> {
        &self.inner
    }
}

impl<'a, O> DerefMut for ReadOnlyContext<'a, '_, O> {
    fn deref_mut(&mut self) -> &mut ProcessContext<'a, O> {
        &mut self.inner
    }
}

impl<O> ReadOnlyContext<'_, '_, O> {
    /// A broadcast state declared in `broadcast_with`, read only.
    ///
    /// # Errors
    /// [`FjordError::UnknownState`] for a name not declared in `broadcast_with`;
    /// [`FjordError::StateTypeMismatch`] for other key or value types.
    pub fn broadcast_state<K: Key, V: Data>(
        &self,
        descriptor: &MapStateDescriptor<K, V>,
    ) -> Result<ReadOnlyBroadcastState<K, V>> {
        self.states.get(descriptor).map(ReadOnlyBroadcastState)
    }
}

/// What a broadcast process function sees for an element of the broadcast side: everything
/// of a [`ProcessContext`] plus read-write broadcast state, and in the keyed variant
/// [`apply_to_keyed_state`](Self::apply_to_keyed_state). `K` is the key type (`()` for the
/// non-keyed variant).
pub struct BroadcastContext<'a, 'b, K, O> {
    inner: ProcessContext<'a, O>,
    states: &'b BroadcastStates,
    rt: &'b RuntimeContext,
    keyed: Option<&'b KeyedStateHandle>,
    _k: PhantomData<fn() -> K>,
}

impl<'a, K, O> Deref for BroadcastContext<'a, '_, K, O> {
    type Target = ProcessContext<'a, O>;
    fn deref(&self) -> &ProcessContext<'a, O> {
        &self.inner
    }
}

impl<'a, K, O> DerefMut for BroadcastContext<'a, '_, K, O> {
    fn deref_mut(&mut self) -> &mut ProcessContext<'a, O> {
        &mut self.inner
    }
}

impl<K: Key, O> BroadcastContext<'_, '_, K, O> {
    /// A broadcast state declared in `broadcast_with`, readable and writable. Update it
    /// the same way on every instance (from the broadcast element only), so instances stay
    /// equal.
    ///
    /// # Errors
    /// [`FjordError::UnknownState`] for a name not declared in `broadcast_with`;
    /// [`FjordError::StateTypeMismatch`] for other key or value types.
    pub fn broadcast_state<BK: Key, BV: Data>(
        &self,
        descriptor: &MapStateDescriptor<BK, BV>,
    ) -> Result<BroadcastState<BK, BV>> {
        self.states.get(descriptor)
    }

    /// Calls `f` with every key of this instance that has a value in the keyed state of
    /// `descriptor`, with the state scoped to that key (Flink's `applyToKeyedState`). The
    /// function may read, update or clear the state. Keys are visited in no particular
    /// order.
    ///
    /// # Errors
    /// [`FjordError::NotKeyed`] in a non-keyed broadcast process function; the first error
    /// of `f`.
    pub fn apply_to_keyed_state<D: KeyedStateDescriptor>(
        &mut self,
        descriptor: &D,
        mut f: impl FnMut(&K, &D::State) -> std::result::Result<(), BoxError>,
    ) -> std::result::Result<(), BoxError> {
        let handle = self.keyed.ok_or_else(|| FjordError::NotKeyed {
            what: "apply_to_keyed_state".into(),
            operator: self.rt.task_name.clone(),
        })?;
        let (state, id) = descriptor.bind(handle)?;
        for (bytes, kg) in handle.keys_of(id) {
            let key: K =
                crate::encoding::from_slice(&bytes).map_err(|e| FjordError::Serialization {
                    context: format!("key of state '{}'", descriptor.state_name()),
                    message: e.to_string(),
                })?;
            handle.set_current_key_bytes(&bytes, kg);
            f(&key, &state)?;
        }
        Ok(())
    }
}

/// What a [`KeyedBroadcastProcessFunction`] sees for an element of the keyed side and in
/// `on_timer`: everything of a [`KeyedProcessContext`] (timestamp, current key, outputs,
/// timer service) plus read-only broadcast state.
pub struct KeyedReadOnlyContext<'a, 'b, K, O> {
    inner: &'b mut KeyedProcessContext<'a, K, O>,
    states: &'b BroadcastStates,
}

impl<'a, K, O> Deref for KeyedReadOnlyContext<'a, '_, K, O> {
    type Target = KeyedProcessContext<'a, K, O>;
    fn deref(&self) -> &KeyedProcessContext<'a, K, O> {
        self.inner
    }
}

impl<'a, K, O> DerefMut for KeyedReadOnlyContext<'a, '_, K, O> {
    fn deref_mut(&mut self) -> &mut KeyedProcessContext<'a, K, O> {
        self.inner
    }
}

impl<K, O> KeyedReadOnlyContext<'_, '_, K, O> {
    /// A broadcast state declared in `broadcast_with`, read only.
    ///
    /// # Errors
    /// As [`ReadOnlyContext::broadcast_state`].
    pub fn broadcast_state<BK: Key, BV: Data>(
        &self,
        descriptor: &MapStateDescriptor<BK, BV>,
    ) -> Result<ReadOnlyBroadcastState<BK, BV>> {
        self.states.get(descriptor).map(ReadOnlyBroadcastState)
    }
}

/// Processes a stream connected with a broadcast stream (Flink's
/// `BroadcastProcessFunction`).
pub trait BroadcastProcessFunction<I1, I2, O>: Send + 'static {
    /// An element of the non-broadcast side; broadcast state is read only here.
    fn process_element(
        &mut self,
        value: I1,
        ctx: &mut ReadOnlyContext<'_, '_, O>,
    ) -> std::result::Result<(), BoxError>;

    /// An element of the broadcast side (every instance sees every one); broadcast state
    /// is writable here.
    fn process_broadcast_element(
        &mut self,
        value: I2,
        ctx: &mut BroadcastContext<'_, '_, (), O>,
    ) -> std::result::Result<(), BoxError>;

    lifecycle_hooks!();
}

/// Processes a keyed stream connected with a broadcast stream (Flink's
/// `KeyedBroadcastProcessFunction`): keyed state and timers on the keyed side, read-write
/// broadcast state and `apply_to_keyed_state` on the broadcast side.
pub trait KeyedBroadcastProcessFunction<K, I1, I2, O>: Send + 'static {
    /// An element of the keyed side; `ctx.current_key()` is its key.
    fn process_element(
        &mut self,
        value: I1,
        ctx: &mut KeyedReadOnlyContext<'_, '_, K, O>,
    ) -> std::result::Result<(), BoxError>;

    /// An element of the broadcast side.
    fn process_broadcast_element(
        &mut self,
        value: I2,
        ctx: &mut BroadcastContext<'_, '_, K, O>,
    ) -> std::result::Result<(), BoxError>;

    /// A timer of `ctx.current_key()` fired at `timestamp`.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _ctx: &mut KeyedReadOnlyContext<'_, '_, K, O>,
    ) -> std::result::Result<(), BoxError> {
        Ok(())
    }

    lifecycle_hooks!();
}

/// Runs a [`BroadcastProcessFunction`]; input 1 is the broadcast side.
pub(crate) struct BroadcastProcessOp<A, B, O, F> {
    ctx: RuntimeContext,
    f: F,
    states: BroadcastStates,
    watermark: Timestamp,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
    _in: PhantomData<fn(A, B)>,
}

impl<A: 'static, B: 'static, O: 'static, F: BroadcastProcessFunction<A, B, O>>
    BroadcastProcessOp<A, B, O, F>
{
    /// A new instance with its broadcast states, restored if the job was restored.
    pub(crate) fn new(
        ctx: &RuntimeContext,
        f: F,
        descriptors: &[Arc<dyn BroadcastStateDescriptor>],
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
    ) -> Result<Self> {
        let restored = ctx.restored_state()?;
        let states = BroadcastStates::new(
            ctx,
            descriptors,
            restored.as_ref().and_then(|s| s.operator.as_deref()),
        )?;
        Ok(BroadcastProcessOp {
            ctx: ctx.clone(),
            f,
            states,
            watermark: MIN_WATERMARK,
            out,
            sides,
            _in: PhantomData,
        })
    }
}

impl<A: 'static, B: 'static, O: 'static, F: BroadcastProcessFunction<A, B, O>> Lifecycle
    for BroadcastProcessOp<A, B, O, F>
{
    process_lifecycle_common!();
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.watermark = watermark;
        self.out.emit_watermark(watermark)?;
        self.sides.emit_watermark(watermark)
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.out.advance_processing_time(now)?;
        self.sides.advance_processing_time(now)
    }
}

impl<A: 'static, B: 'static, O: 'static, F: BroadcastProcessFunction<A, B, O>>
    TwoInputOperator<A, B> for BroadcastProcessOp<A, B, O, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let mut c = ReadOnlyContext {
            inner: ProcessContext::new(
                self.out.as_mut(),
                &mut self.sides,
                record.timestamp,
                OperatorTime {
                    watermark: self.watermark,
                    rt: &self.ctx,
                },
            ),
            states: &self.states,
        };
        let f = &mut self.f;
        guard(&self.ctx, || f.process_element(record.value, &mut c))?;
        c.inner.finish()
    }

    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let mut c = BroadcastContext {
            inner: ProcessContext::new(
                self.out.as_mut(),
                &mut self.sides,
                record.timestamp,
                OperatorTime {
                    watermark: self.watermark,
                    rt: &self.ctx,
                },
            ),
            states: &self.states,
            rt: &self.ctx,
            keyed: None,
            _k: PhantomData,
        };
        let f = &mut self.f;
        guard(&self.ctx, || {
            f.process_broadcast_element(record.value, &mut c)
        })?;
        c.inner.finish()
    }
}

impl<A: 'static, B: 'static, O: 'static, F: BroadcastProcessFunction<A, B, O>> CheckpointParticipant
    for BroadcastProcessOp<A, B, O, F>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        Ok(OperatorState {
            keyed: Vec::new(),
            operator: Some(self.states.snapshot()?),
            ..OperatorState::default()
        })
    }
}

/// Runs a [`KeyedBroadcastProcessFunction`]; input 1 is the broadcast side.
pub(crate) struct KeyedBroadcastProcessOp<K, A, B, O, F> {
    ctx: RuntimeContext,
    f: F,
    key: KeySelector<A, K>,
    timers: InternalTimerService<K, ()>,
    states: BroadcastStates,
    out: Box<dyn Output<O>>,
    sides: SideOutputs,
    _in: PhantomData<fn(B)>,
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedBroadcastProcessFunction<K, A, B, O>>
    KeyedBroadcastProcessOp<K, A, B, O, F>
{
    /// A new instance with keyed state, timers and broadcast states, restored if the job
    /// was restored.
    pub(crate) fn new(
        ctx: &RuntimeContext,
        f: F,
        key: KeySelector<A, K>,
        descriptors: &[Arc<dyn BroadcastStateDescriptor>],
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
    ) -> Result<Self> {
        let ctx = ctx.with_unregistered_keyed_state()?;
        let restored = ctx.restored_state()?;
        let states = BroadcastStates::new(
            &ctx,
            descriptors,
            restored.as_ref().and_then(|s| s.operator.as_deref()),
        )?;
        let mut op = KeyedBroadcastProcessOp {
            timers: InternalTimerService::new(&ctx),
            ctx,
            f,
            key,
            states,
            out,
            sides,
            _in: PhantomData,
        };
        if let Some(restored) = restored {
            op.parts().restore(&restored, |_, _, _| Ok(()))?;
        }
        Ok(op)
    }

    fn parts(&mut self) -> KeyedParts<'_, K, ()> {
        KeyedParts::of(&self.ctx, &mut self.timers)
    }

    fn run(
        &mut self,
        key: &K,
        timestamp: Option<Timestamp>,
        domain: Option<TimeDomain>,
        call: impl FnOnce(&mut F, &mut KeyedReadOnlyContext<'_, '_, K, O>) -> Result<(), BoxError>,
    ) -> Result<()> {
        let states = &self.states;
        keyed_call!(self).run(&mut self.f, key, timestamp, domain, |f, inner| {
            call(f, &mut KeyedReadOnlyContext { inner, states })
        })
    }

    fire_keyed_timers!();
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedBroadcastProcessFunction<K, A, B, O>>
    Lifecycle for KeyedBroadcastProcessOp<K, A, B, O, F>
{
    process_lifecycle_common!();
    keyed_timer_time!();
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedBroadcastProcessFunction<K, A, B, O>>
    TwoInputOperator<A, B> for KeyedBroadcastProcessOp<K, A, B, O, F>
{
    fn process1(&mut self, record: StreamRecord<A>) -> Result<()> {
        let key = (self.key)(&record.value).into_owned();
        self.run(&key, record.timestamp, None, |f, c| {
            f.process_element(record.value, c)
        })
    }

    fn process2(&mut self, record: StreamRecord<B>) -> Result<()> {
        let mut c = BroadcastContext {
            inner: ProcessContext::new(
                self.out.as_mut(),
                &mut self.sides,
                record.timestamp,
                OperatorTime {
                    watermark: self.timers.watermark,
                    rt: &self.ctx,
                },
            ),
            states: &self.states,
            rt: &self.ctx,
            keyed: self.ctx.keyed.as_ref(),
            _k: PhantomData,
        };
        let f = &mut self.f;
        guard(&self.ctx, || {
            f.process_broadcast_element(record.value, &mut c)
        })?;
        c.inner.finish()
    }
}

impl<K: Key, A: 'static, B: 'static, O: 'static, F: KeyedBroadcastProcessFunction<K, A, B, O>>
    CheckpointParticipant for KeyedBroadcastProcessOp<K, A, B, O, F>
{
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        let operator = Some(self.states.snapshot()?);
        Ok(OperatorState {
            keyed: self.parts().snapshot(|_| Ok(Vec::new()))?,
            operator,
            ..OperatorState::default()
        })
    }
}
