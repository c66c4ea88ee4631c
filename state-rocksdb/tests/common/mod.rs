//! Functions shared by the job tests of this crate.

use fjord::state::{ValueState, ValueStateDescriptor};
use fjord::{BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext};

/// Counts per key in a `ValueState` (which lives in RocksDB) and emits the running count.
#[derive(Clone, Default)]
pub struct Count {
    state: Option<ValueState<u64>>,
}

impl KeyedProcessFunction<u64, (u64, u64), (u64, u64)> for Count {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some(ctx.get_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (u64, u64),
        ctx: &mut KeyedProcessContext<'_, u64, (u64, u64)>,
    ) -> Result<(), BoxError> {
        let state = self.state.as_ref().expect("opened");
        let n = state.value().unwrap_or(0) + v.1;
        state.update(n);
        ctx.collect((v.0, n));
        Ok(())
    }
}
