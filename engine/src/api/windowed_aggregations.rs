//! The built-in window aggregations of Flink's `WindowedStream`: `sum`, `min`, `max`, `minBy`
//! and `maxBy` over a tuple field (or any field an accessor points at), as window reductions
//! with the same functions as the keyed stream's rolling aggregations (see
//! [`field_aggregations`](super::field_aggregations)).

use crate::api::datastream::SingleOutputStreamOperator;
use crate::api::field_aggregations::field_aggregations;
use crate::api::tuple::Field;
use crate::api::windowed::WindowedStream;
use crate::functions::ReduceFunction;
use crate::types::{Data, Key};
use crate::windows::window::Window;

impl<T: Data, K: Key, W: Window> WindowedStream<T, K, W> {
    field_aggregations!("per window", "the window's first record");

    fn field_aggregate<F: ReduceFunction<T> + Clone>(&self, f: F) -> SingleOutputStreamOperator<T> {
        self.reduce(f)
    }
}
