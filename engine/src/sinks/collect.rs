//! Sinks that hand records to the program: collecting into memory, or calling a closure.

use super::{Sink, SinkWriter};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::types::Timestamp;
use parking_lot::Mutex;
use std::sync::Arc;

/// The records a [`CollectSink`] gathered, readable after (or while) the job runs.
///
/// Records of each parallel instance keep their order; instances are interleaved.
pub struct CollectedOutput<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for CollectedOutput<T> {
    fn clone(&self) -> Self {
        CollectedOutput {
            items: self.items.clone(),
        }
    }
}

impl<T: Clone> CollectedOutput<T> {
    /// A copy of what has been collected so far.
    pub fn values(&self) -> Vec<T> {
        self.items.lock().clone()
    }

    /// Takes what has been collected so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock())
    }

    /// Number of records collected so far.
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// True when nothing has been collected.
    pub fn is_empty(&self) -> bool {
        self.items.lock().is_empty()
    }
}

/// Collects every record into memory (for tests and small results; Flink's
/// `executeAndCollect`).
pub struct CollectSink<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> CollectSink<T> {
    /// A new sink and the handle to read what it collects.
    pub fn new() -> (Self, CollectedOutput<T>) {
        let items = Arc::new(Mutex::new(Vec::new()));
        (
            CollectSink {
                items: items.clone(),
            },
            CollectedOutput { items },
        )
    }
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    fn create_writer(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(CollectWriter {
            items: self.items.clone(),
            local: Vec::new(),
        }))
    }
}

struct CollectWriter<T> {
    items: Arc<Mutex<Vec<T>>>,
    local: Vec<T>,
}

impl<T: Send> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        self.local.push(value);
        if self.local.len() >= 1024 {
            self.items.lock().append(&mut self.local);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.items.lock().append(&mut self.local);
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        // A cancelled job still shows what reached the sink.
        self.items.lock().append(&mut self.local);
        Ok(())
    }
}

/// Calls a closure for every record; the closure is cloned for each parallel instance.
pub struct FnSink<F> {
    f: Mutex<F>,
}

impl<F> FnSink<F> {
    /// A sink calling `f`.
    pub fn new(f: F) -> Self {
        FnSink { f: Mutex::new(f) }
    }
}

impl<T, F> Sink<T> for FnSink<F>
where
    T: Send + 'static,
    F: FnMut(T) + Clone + Send + 'static,
{
    fn create_writer(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(FnWriter(self.f.lock().clone())))
    }
}

struct FnWriter<F>(F);

impl<T, F: FnMut(T) + Send> SinkWriter<T> for FnWriter<F> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        (self.0)(value);
        Ok(())
    }
}
