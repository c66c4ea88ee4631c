//! Type-erased operations on a stream of one record type, used to wire a job graph.

use crate::error::{FjordError, Result};
use crate::exchange::channel::ChannelSender;
use crate::exchange::io_metrics::IoCounter;
use crate::operators::output::{
    AnyOutput, Discard, FanOut, Output, SideOutput, TypedSide, erase, unerase,
};
use crate::task::partitioner::{PartitionSpec, Partitioner};
use crate::task::writer::RecordWriter;
use crate::task::{OneInputHead, TaskHead};
use crate::types::Data;
use std::marker::PhantomData;

/// What the runtime needs to do with a stream of some record type without knowing it.
pub(crate) trait StreamType: Send + Sync {
    /// The record type's name, for errors.
    fn type_name(&self) -> &'static str;
    /// Combines several outputs into one that feeds all of them.
    fn fan_out(&self, outputs: Vec<AnyOutput>) -> Result<AnyOutput>;
    /// Creates the writer of a network edge; it counts the records it sends into
    /// `records_out`.
    fn writer(
        &self,
        channels: Vec<ChannelSender>,
        spec: &PartitionSpec,
        max_parallelism: usize,
        start: usize,
        batch_size: usize,
        records_out: IoCounter,
    ) -> Result<AnyOutput>;
    /// Wraps the first operator of a chain as a task head.
    fn head(&self, operator: AnyOutput) -> Result<Box<dyn TaskHead>>;
    /// Wraps an output as a side output.
    fn side(&self, output: AnyOutput) -> Result<Box<dyn SideOutput>>;
    /// Encodes and decodes this type's record batches for channels between processes.
    fn codec(&self) -> std::sync::Arc<dyn crate::network::BatchCodec>;
}

/// The [`StreamType`] of records of type `T`.
pub(crate) struct TypeOps<T>(PhantomData<fn() -> T>);

impl<T> TypeOps<T> {
    pub(crate) fn new() -> Self {
        TypeOps(PhantomData)
    }
}

impl<T: Data> StreamType for TypeOps<T> {
    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn fan_out(&self, outputs: Vec<AnyOutput>) -> Result<AnyOutput> {
        let mut typed: Vec<Box<dyn Output<T>>> = outputs
            .into_iter()
            .map(|o| unerase::<T>(o, "fan-out"))
            .collect::<Result<_>>()?;
        Ok(match typed.len() {
            0 => erase::<T>(Box::new(Discard)),
            1 => erase::<T>(typed.pop().expect("one output")),
            _ => erase::<T>(Box::new(FanOut { outputs: typed })),
        })
    }

    fn writer(
        &self,
        channels: Vec<ChannelSender>,
        spec: &PartitionSpec,
        max_parallelism: usize,
        start: usize,
        batch_size: usize,
        records_out: IoCounter,
    ) -> Result<AnyOutput> {
        if channels.is_empty() {
            return Err(FjordError::Internal("network edge without channels".into()));
        }
        let partitioner = Partitioner::<T>::new(spec, max_parallelism, start)?;
        Ok(erase::<T>(Box::new(RecordWriter::new(
            channels,
            partitioner,
            batch_size,
            records_out,
        ))))
    }

    fn head(&self, operator: AnyOutput) -> Result<Box<dyn TaskHead>> {
        Ok(Box::new(OneInputHead {
            operator: unerase::<T>(operator, "task head")?,
            records_in: None,
        }))
    }

    fn side(&self, output: AnyOutput) -> Result<Box<dyn SideOutput>> {
        Ok(Box::new(TypedSide {
            output: unerase::<T>(output, "side output")?,
        }))
    }

    fn codec(&self) -> std::sync::Arc<dyn crate::network::BatchCodec> {
        std::sync::Arc::new(crate::network::TypedCodec::<T>::new())
    }
}
