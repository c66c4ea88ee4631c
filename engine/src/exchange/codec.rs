//! Encoding of record batches, whose type only the two ends of a channel know: a network
//! channel's producing task encodes them and its consuming task decodes them, and so does an
//! in-process channel's when its records own heap memory (see
//! [`crate::exchange::channel::channel`]).

use crate::error::{FjordError, Result};
use crate::types::{Data, StreamRecord};
use std::any::Any;
use std::marker::PhantomData;

/// Encodes and decodes the record batches of one stream type (`Vec<StreamRecord<T>>`, passed
/// type-erased as in [`crate::exchange::channel::Event::Records`]).
pub(crate) trait BatchCodec: Send + Sync {
    /// Appends the encoding of a `Vec<StreamRecord<T>>` batch (passed type-erased) to `out`.
    ///
    /// # Errors
    /// The batch is not a `Vec<StreamRecord<T>>` of this codec's `T`, or a record cannot be
    /// serialized.
    fn encode(&self, batch: &(dyn Any + Send), out: &mut Vec<u8>) -> Result<()>;
    /// Decodes a batch that [`BatchCodec::encode`] of the same `T` produced.
    ///
    /// # Errors
    /// The bytes are not such an encoding.
    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send>>;
    /// True when the records own heap memory (strings, vectors: the type has drop glue), which
    /// a task that received them as objects would free on another thread than the one that
    /// allocated it.
    fn owns_heap_memory(&self) -> bool;
}

/// The [`BatchCodec`] of records of type `T`, in [`crate::encoding`].
pub(crate) struct TypedCodec<T>(PhantomData<fn() -> T>);

impl<T> TypedCodec<T> {
    pub(crate) fn new() -> Self {
        TypedCodec(PhantomData)
    }
}

impl<T: Data> BatchCodec for TypedCodec<T> {
    fn encode(&self, batch: &(dyn Any + Send), out: &mut Vec<u8>) -> Result<()> {
        let batch = batch
            .downcast_ref::<Vec<StreamRecord<T>>>()
            .ok_or_else(|| {
                FjordError::Internal(format!(
                    "network channel of {} received a batch of another type",
                    std::any::type_name::<T>()
                ))
            })?;
        crate::encoding::write_into(out, batch).map_err(|e| serialization::<T>(e, "encoding"))
    }

    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn Any + Send>> {
        let batch: Vec<StreamRecord<T>> =
            crate::encoding::from_slice(bytes).map_err(|e| serialization::<T>(e, "decoding"))?;
        Ok(Box::new(batch))
    }

    fn owns_heap_memory(&self) -> bool {
        std::mem::needs_drop::<T>()
    }
}

fn serialization<T>(e: crate::encoding::EncodingError, what: &str) -> FjordError {
    FjordError::Serialization {
        context: format!(
            "{what} a batch of {} for a network channel",
            std::any::type_name::<T>()
        ),
        message: e.to_string(),
    }
}
