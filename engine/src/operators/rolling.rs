//! Rolling aggregations on keyed streams: `reduce`, `sum`, `min`, `max`, `min_by`, `max_by`.
//!
//! Each record updates its key's aggregate and the new aggregate is emitted (Flink emits an
//! update per record too).

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::Result;
use crate::functions::ReduceFunction;
use crate::keygroup::KeyGroupRange;
use crate::operators::basic::forwarding_lifecycle;
use crate::operators::output::{Lifecycle, Output, guard};
use crate::state::KeyGroupedMap;
use crate::types::Data;
use crate::types::{Key, StreamRecord, Timestamp};
use parking_lot::Mutex;
use std::sync::Arc;

/// Extracts the key of a record.
pub(crate) type KeySelector<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// Keeps one aggregate per key and emits it after every update.
pub(crate) struct RollingReduceOp<T, K, F> {
    pub(crate) ctx: RuntimeContext,
    pub(crate) f: F,
    pub(crate) key: KeySelector<T, K>,
    pub(crate) state: Arc<Mutex<KeyGroupedMap<K, Option<T>>>>,
    pub(crate) out: Box<dyn Output<T>>,
}

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
        let range =
            KeyGroupRange::for_subtask(ctx.max_parallelism, ctx.parallelism, ctx.subtask_index);
        let mut map = KeyGroupedMap::new(range, ctx.max_parallelism);
        let operator = ctx.operator_key();
        if let Some(restored) = ctx.services.checkpointing.restored(&operator)? {
            for (kg, bytes) in &restored.keyed {
                map.restore_group(*kg, bytes)?;
            }
        }
        let state = Arc::new(Mutex::new(map));
        ctx.services
            .checkpointing
            .register(operator, Box::new(MapParticipant { map: state.clone() }));
        Ok(RollingReduceOp {
            ctx: ctx.clone(),
            f,
            key,
            state,
            out,
        })
    }
}

/// Snapshots a key-grouped map key group by key group.
struct MapParticipant<K, V> {
    map: Arc<Mutex<KeyGroupedMap<K, V>>>,
}

impl<K: Key, V: Data> CheckpointParticipant for MapParticipant<K, V> {
    fn snapshot(&mut self, _checkpoint_id: u64) -> Result<OperatorState> {
        let map = self.map.lock();
        let keyed = map
            .range()
            .iter()
            .map(|kg| Ok((kg, map.snapshot_group(kg)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(OperatorState {
            keyed,
            operator: None,
        })
    }
}

forwarding_lifecycle!(RollingReduceOp<T, K, F> where F: ReduceFunction<T>, T: Send + 'static, K: Key);

impl<T: Clone + Send + 'static, K: Key, F: ReduceFunction<T>> Output<T>
    for RollingReduceOp<T, K, F>
{
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let key = (self.key)(&record.value);
        let mut state = self.state.lock();
        let group = state.group_mut(&key);
        let result = match group.get_mut(&key) {
            Some(slot) => {
                let acc = slot.take().expect("aggregate present");
                let f = &mut self.f;
                let next = guard(&self.ctx, || f.reduce(acc, record.value))?;
                *slot = Some(next.clone());
                next
            }
            None => {
                group.insert(key, Some(record.value.clone()));
                record.value
            }
        };
        drop(state);
        self.out.emit(StreamRecord {
            value: result,
            timestamp: record.timestamp,
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
