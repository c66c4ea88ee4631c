//! Rolling aggregations on keyed streams: `reduce`, `sum`, `min`, `max`, `min_by`, `max_by`.
//!
//! Each record updates its key's aggregate and the new aggregate is emitted (Flink emits an
//! update per record too).

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{FjordError, Result};
use crate::functions::ReduceFunction;
use crate::keygroup::{KeyGroupRange, Rehash};
use crate::operators::basic::forwarding_lifecycle;
use crate::operators::key_selector::{KeyRef, KeySelector};
use crate::operators::output::{Lifecycle, Output, guard};
use crate::state::KeyedStateHandle;
use crate::state::internal::InternalKeyedValue;
use crate::types::Data;
use crate::types::{Key, StreamRecord, Timestamp};

/// Keeps one aggregate per key and emits it after every update. The aggregates live in the
/// operator's keyed state backend (`_fjord.rolling`), so with RocksDB they are on disk.
pub(crate) struct RollingReduceOp<T, K, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) key: KeySelector<T, K>,
    pub(crate) state: InternalKeyedValue<K, Option<T>>,
    pub(crate) out: Box<dyn Output<T>>,
}

/// Marks a rolling aggregate's key group snapshot of format 2: the bytes of the keyed state
/// backend follow. Format 1 (no marker) is an encoded ([`crate::encoding`]) list of (key, aggregate); its first 8
/// bytes are the list's length, which can never be this value.
const BACKEND_FORMAT: [u8; 8] = *b"\xffFJRB2\x00\xff";

impl<T, K: Key, F> RollingReduceOp<T, K, F> {
    pub(crate) fn new(
        ctx: &RuntimeContext,
        f: F,
        key: KeySelector<T, K>,
        out: Box<dyn Output<T>>,
    ) -> Result<Self>
    where
        T: Data,
    {
        let ctx = ctx.with_unregistered_keyed_state()?;
        let range = ctx.key_group_range();
        let handle = ctx.keyed.clone().expect("just created");
        let state = InternalKeyedValue::<K, Option<T>>::new(&handle, "rolling")?;
        let operator = ctx.operator_key();
        if let Some(restored) = ctx.services.checkpointing.restored(&operator)? {
            let rehash = restored.rehash_keys.then_some(Rehash {
                range,
                max_parallelism: ctx.max_parallelism,
            });
            for (kg, bytes) in &restored.keyed {
                match (bytes.strip_prefix(BACKEND_FORMAT.as_slice()), rehash) {
                    (Some(backend), None) => handle.restore_key_group(*kg, backend)?,
                    (Some(backend), Some(r)) => handle.restore_rehashed(*kg, backend, r)?,
                    (None, _) => state.restore_legacy_group(range, *kg, bytes, rehash)?,
                }
            }
        }
        ctx.services
            .checkpointing
            .register(operator, Box::new(BackendParticipant { handle, range }));
        Ok(RollingReduceOp {
            ctx,
            f,
            key,
            state,
            out,
        })
    }
}

/// Snapshots an operator whose keyed state is nothing but its backend, key group by key
/// group, in format 2.
struct BackendParticipant {
    handle: KeyedStateHandle,
    range: KeyGroupRange,
}

impl CheckpointParticipant for BackendParticipant {
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        let keyed = self
            .range
            .iter()
            .map(|kg| {
                let mut bytes = BACKEND_FORMAT.to_vec();
                bytes.extend_from_slice(&self.handle.snapshot_key_group(kg)?);
                Ok((kg, bytes))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(OperatorState {
            keyed,
            operator: None,
            ..OperatorState::default()
        })
    }
}

forwarding_lifecycle!(RollingReduceOp<T, K, F> where F: ReduceFunction<T>, T: Data, K: Key);

impl<T: Data, K: Key, F: ReduceFunction<T>> Output<T> for RollingReduceOp<T, K, F> {
    fn emit_batch(&mut self, batch: Vec<StreamRecord<T>>) -> Result<()> {
        let state = self.state.handle().clone();
        state.for_each_held(batch, |record| self.emit(record))
    }
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let key = (self.key)(&record.value);
        let mut taken = self.state.take(&key);
        let Some(acc) = taken.value.take() else {
            // The key's first record is its first aggregate.
            taken.value = Some(record.value.clone());
            self.state.store(&key, taken, false);
            return self.out.emit(record);
        };
        // A key borrowed from the record ends with it (the reduce function takes the record):
        // the aggregate goes back into the entry it was taken from.
        let owned = match key {
            KeyRef::Owned(k) => Some(k),
            KeyRef::Borrowed(_) => None,
        };
        let StreamRecord { value, timestamp } = record;
        let f = &mut self.f;
        let result = guard(&self.ctx, || f.reduce(acc, value))?;
        taken.value = Some(result.clone());
        if let Err(taken) = self.state.store_in_place(taken) {
            // The key changed or the entry moved under the reduce function, which neither
            // sets keys nor writes this state: only an owned key can store it again.
            let key = owned.ok_or_else(|| {
                FjordError::Internal(
                    "a rolling aggregate's entry moved while its reduce function ran".into(),
                )
            })?;
            self.state.store(&key, taken, false);
        }
        self.out.emit(StreamRecord {
            value: result,
            timestamp,
        })
    }
}

/// Which extreme an aggregation looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extreme {
    Min,
    Max,
}

/// `sum`: the first record of a key with the field replaced by the running sum.
#[derive(Clone)]
pub(crate) struct SumField<A>(pub(crate) A);

impl<T, N, A> ReduceFunction<T> for SumField<A>
where
    A: Fn(&mut T) -> &mut N + Send + 'static,
    N: Copy + std::ops::Add<Output = N>,
{
    #[inline]
    fn reduce(
        &mut self,
        mut acc: T,
        mut value: T,
    ) -> std::result::Result<T, crate::error::BoxError> {
        let add = *(self.0)(&mut value);
        let field = (self.0)(&mut acc);
        *field = *field + add;
        Ok(acc)
    }
}

/// `min`/`max`: the first record of a key with the field replaced by the extreme value;
/// `min_by`/`max_by`: the whole record holding the extreme value (the earlier one on ties).
#[derive(Clone)]
pub(crate) struct ExtremeField<A> {
    pub(crate) field: A,
    pub(crate) extreme: Extreme,
    pub(crate) whole_record: bool,
}

impl<T, N, A> ReduceFunction<T> for ExtremeField<A>
where
    A: Fn(&mut T) -> &mut N + Send + 'static,
    N: PartialOrd + Clone,
{
    #[inline]
    fn reduce(
        &mut self,
        mut acc: T,
        mut value: T,
    ) -> std::result::Result<T, crate::error::BoxError> {
        let candidate = (self.field)(&mut value).clone();
        let current = (self.field)(&mut acc);
        let better = match self.extreme {
            Extreme::Min => candidate < *current,
            Extreme::Max => candidate > *current,
        };
        Ok(match (better, self.whole_record) {
            (true, true) => value,
            (true, false) => {
                *current = candidate;
                acc
            }
            (false, _) => acc,
        })
    }
}
