//! The DataStream API: the environment, streams and their transformations.

pub mod broadcast;
mod checkpointed;
pub mod connected;
pub mod datastream;
pub mod env;
mod field_aggregations;
pub mod keyed;
pub mod side_output;
pub mod tuple;
pub mod windowed;
mod windowed_aggregations;

use parking_lot::Mutex;

/// A user function kept in the graph; each parallel instance gets its own clone.
pub(crate) struct Template<F>(Mutex<F>);

impl<F: Clone> Template<F> {
    pub(crate) fn new(f: F) -> Self {
        Template(Mutex::new(f))
    }

    pub(crate) fn instance(&self) -> F {
        self.0.lock().clone()
    }
}
