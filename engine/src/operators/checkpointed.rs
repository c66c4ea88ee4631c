//! Functions with operator state (Flink's `CheckpointedFunction`): the operator gives the
//! function an [`OperatorStateStore`] in `initialize_state` (restored and redistributed when
//! the job was restored), calls `snapshot_state` at every checkpoint and stores the store's
//! list, union and broadcast states as the operator's state.

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::Result;
use crate::functions::{
    CheckpointedFunction, FunctionInitializationContext, FunctionSnapshotContext, MapFunction,
};
use crate::operators::output::{Lifecycle, Output, guard};
use crate::state::OperatorStateStore;
use crate::types::{StreamRecord, Timestamp};
use std::marker::PhantomData;

/// Runs a [`MapFunction`] that is also a [`CheckpointedFunction`].
pub(crate) struct CheckpointedMapOp<T, U, F> {
    ctx: RuntimeContext,
    f: F,
    store: OperatorStateStore,
    out: Box<dyn Output<U>>,
    _in: PhantomData<fn(T)>,
}

impl<T: 'static, U: 'static, F: MapFunction<T, U> + CheckpointedFunction>
    CheckpointedMapOp<T, U, F>
{
    /// Creates the operator and lets the function initialize (or restore) its state.
    pub(crate) fn new(ctx: &RuntimeContext, mut f: F, out: Box<dyn Output<U>>) -> Result<Self> {
        let restored = ctx.restored_state()?;
        let mut store = OperatorStateStore::from_restored(
            restored.as_ref().and_then(|s| s.operator.as_deref()),
        )?;
        guard(ctx, || {
            f.initialize_state(&mut FunctionInitializationContext {
                operator_state: &mut store,
                runtime: ctx,
            })
        })?;
        Ok(CheckpointedMapOp {
            ctx: ctx.clone(),
            f,
            store,
            out,
            _in: PhantomData,
        })
    }
}

impl<T: 'static, U: 'static, F: MapFunction<T, U> + CheckpointedFunction> Lifecycle
    for CheckpointedMapOp<T, U, F>
{
    fn open(&mut self) -> Result<()> {
        self.out.open()?;
        let ctx = &self.ctx;
        let f = &mut self.f;
        guard(ctx, || f.open(ctx))
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.out.emit_watermark(watermark)
    }
    fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }
    fn finish(&mut self) -> Result<()> {
        self.out.finish()
    }
    fn close(&mut self) -> Result<()> {
        let f = &mut self.f;
        let own = guard(&self.ctx, || f.close());
        own.and(self.out.close())
    }
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        self.out.advance_processing_time(now)
    }
    fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.out.emit_watermark_status(idle)
    }
    fn notify_checkpoint(
        &mut self,
        notice: crate::operators::output::CheckpointNotice,
    ) -> Result<()> {
        crate::operators::output::notify_function!(self.ctx, self.f, notice)?;
        self.out.notify_checkpoint(notice)
    }
}

impl<T: 'static, U: 'static, F: MapFunction<T, U> + CheckpointedFunction> Output<T>
    for CheckpointedMapOp<T, U, F>
{
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let timestamp = record.timestamp;
        let f = &mut self.f;
        let value = guard(&self.ctx, || f.map(record.value))?;
        self.out.emit(StreamRecord { value, timestamp })
    }
}

impl<T: 'static, U: 'static, F: MapFunction<T, U> + CheckpointedFunction> CheckpointParticipant
    for CheckpointedMapOp<T, U, F>
{
    fn snapshot(&mut self, checkpoint_id: u64) -> Result<OperatorState> {
        let snapshot = FunctionSnapshotContext {
            checkpoint_id,
            checkpoint_timestamp: self.ctx.current_processing_time(),
        };
        let f = &mut self.f;
        guard(&self.ctx, || f.snapshot_state(&snapshot))?;
        Ok(OperatorState {
            keyed: Vec::new(),
            operator: Some(self.store.snapshot_bytes()?),
            ..OperatorState::default()
        })
    }
}
