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
            position: 0,
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
            position: 0,
        }))
    }
}

struct IterReader<I> {
    iter: I,
    /// Items emitted so far (the position stored in checkpoints).
    position: u64,
}

impl<T, I: Iterator<Item = T> + Send> SourceReader<T> for IterReader<I> {
    fn snapshot_state(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(self.position.to_le_bytes().to_vec()))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let bytes: [u8; 8] = state
            .try_into()
            .map_err(|_| "restored collection position is not 8 bytes")?;
        let skip = u64::from_le_bytes(bytes);
        for _ in 0..skip {
            self.iter.next();
        }
        self.position = skip;
        Ok(())
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        for _ in 0..BATCH {
            match self.iter.next() {
                Some(v) => {
                    self.position += 1;
                    output.collect(v)
                }
                None => return Ok(SourceStatus::Finished),
            }
        }
        Ok(SourceStatus::MoreAvailable)
    }
}
