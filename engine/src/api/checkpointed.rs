//! Transformations whose functions keep operator state (Flink's `CheckpointedFunction`).

use crate::api::Template;
use crate::api::datastream::{DataStream, SingleOutputStreamOperator};
use crate::functions::{CheckpointedFunction, MapFunction};
use crate::operators::checkpointed::CheckpointedMapOp;
use crate::operators::shared::Shared;
use crate::types::Data;

impl<T: Data> DataStream<T> {
    /// Like [`map`](DataStream::map), with a function that keeps operator state: before
    /// `open`, `initialize_state` gets the instance's [`OperatorStateStore`](crate::state::OperatorStateStore)
    /// (restored from a checkpoint or savepoint, list state split evenly and union state
    /// given whole to every instance when the parallelism changed); at every checkpoint
    /// `snapshot_state` runs and the store's states are saved. Give the operator a `uid` for
    /// savepoints.
    pub fn map_checkpointed<U: Data, F: MapFunction<T, U> + CheckpointedFunction + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<U> {
        let template = Template::new(f);
        self.one_input(
            "Map",
            Box::new(move |ctx, out, _| {
                let op = CheckpointedMapOp::new(ctx, template.instance(), out)?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        )
    }
}
