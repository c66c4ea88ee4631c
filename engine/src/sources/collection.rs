//! `from_collection` and `from_iter`: non-parallel sources over in-memory data.

use super::{Source, SourceOutput, SourceReader, SourceStatus};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::types::Data;

const BATCH: usize = 1024;

/// Emits the elements of a vector, in order, then finishes. Always runs with parallelism 1.
pub struct CollectionSource<T> {
    items: Vec<T>,
}

impl<T> CollectionSource<T> {
    /// A source over these elements.
    pub fn new(items: Vec<T>) -> Self {
        CollectionSource { items }
    }
}

impl<T: Data + Sync> Source<T> for CollectionSource<T> {
    fn is_parallel(&self) -> bool {
        false
    }

    fn create_reader(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        Ok(Box::new(IterReader {
            iter: self.items.clone().into_iter(),
        }))
    }
}

/// Emits the items of an iterator (cloned for each run of the job). Runs with parallelism 1.
pub struct IterSource<I> {
    iter: parking_lot::Mutex<I>,
}

impl<I> IterSource<I> {
    /// A source over a clone of this iterator.
    pub fn new(iter: I) -> Self {
        IterSource {
            iter: parking_lot::Mutex::new(iter),
        }
    }
}

impl<T: Data, I: Iterator<Item = T> + Clone + Send + 'static> Source<T> for IterSource<I> {
    fn is_parallel(&self) -> bool {
        false
    }

    fn create_reader(&self, _ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        Ok(Box::new(IterReader {
            iter: self.iter.lock().clone(),
        }))
    }
}

struct IterReader<I> {
    iter: I,
}

impl<T, I: Iterator<Item = T> + Send> SourceReader<T> for IterReader<I> {
    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        for _ in 0..BATCH {
            match self.iter.next() {
                Some(v) => output.collect(v),
                None => return Ok(SourceStatus::Finished),
            }
        }
        Ok(SourceStatus::MoreAvailable)
    }
}
