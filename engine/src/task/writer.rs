//! The end of a chain: batches records per downstream channel and sends full batches on.

use crate::error::Result;
use crate::exchange::channel::{ChannelSender, Event};
use crate::exchange::io_metrics::IoCounter;
use crate::operators::output::{Lifecycle, Output};
use crate::task::partitioner::{Partitioner, Target};
use crate::types::{StreamRecord, Timestamp};

/// Writes records of one edge to its channels.
pub(crate) struct RecordWriter<T> {
    channels: Vec<ChannelSender>,
    buffers: Vec<Vec<StreamRecord<T>>>,
    partitioner: Partitioner<T>,
    batch_size: usize,
    pending: bool,
    /// Records sent, counted per batch (nothing per record: at 100 M records/s even one
    /// increment per record shows).
    records_out: IoCounter,
}

impl<T: Clone + Send + 'static> RecordWriter<T> {
    pub(crate) fn new(
        channels: Vec<ChannelSender>,
        partitioner: Partitioner<T>,
        batch_size: usize,
        records_out: IoCounter,
    ) -> Self {
        let buffers = channels
            .iter()
            .map(|_| Vec::with_capacity(batch_size))
            .collect();
        RecordWriter {
            channels,
            buffers,
            partitioner,
            batch_size: batch_size.max(1),
            pending: false,
            records_out,
        }
    }

    #[inline]
    fn push(&mut self, channel: usize, record: StreamRecord<T>) -> Result<()> {
        let buffer = &mut self.buffers[channel];
        buffer.push(record);
        self.pending = true;
        if buffer.len() >= self.batch_size {
            self.send_buffer(channel)?;
        }
        Ok(())
    }

    fn send_buffer(&mut self, channel: usize) -> Result<()> {
        if self.buffers[channel].is_empty() {
            return Ok(());
        }
        self.records_out.add(self.buffers[channel].len() as u64);
        let batch = std::mem::replace(
            &mut self.buffers[channel],
            Vec::with_capacity(self.batch_size),
        );
        self.channels[channel]
            .send_measured(Event::Records(Box::new(batch)), self.records_out.task())
    }

    fn broadcast_event(&mut self, make: impl Fn() -> Event) -> Result<()> {
        self.flush()?;
        let task = self.records_out.task();
        self.channels
            .iter()
            .try_for_each(|c| c.send_measured(make(), task))
    }
}

impl<T: Clone + Send + 'static> Lifecycle for RecordWriter<T> {
    fn open(&mut self) -> Result<()> {
        // Opened on the task's thread when the task starts: its wall time starts now.
        self.records_out.task().mark_started();
        Ok(())
    }

    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.records_out.task().set_output_watermark(watermark);
        self.broadcast_event(|| Event::Watermark(watermark))
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending {
            for channel in 0..self.channels.len() {
                self.send_buffer(channel)?;
            }
            self.pending = false;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.broadcast_event(|| Event::EndOfPartition)
    }

    fn emit_watermark_status(&mut self, idle: bool) -> Result<()> {
        self.broadcast_event(|| Event::WatermarkStatus { idle })
    }

    fn close(&mut self) -> Result<()> {
        // Dropping the senders (with the writer) tells consumers that nothing more comes; on
        // failure they see a disconnect instead of an end of partition.
        Ok(())
    }
}

impl<T> Drop for RecordWriter<T> {
    /// The task's thread drops its chain when the task ended, also on failure.
    fn drop(&mut self) {
        self.records_out.task().mark_ended();
    }
}

impl<T: Clone + Send + 'static> Output<T> for RecordWriter<T> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let n = self.channels.len();
        match self.partitioner.select(&record.value, n)? {
            Target::One(i) => self.push(i, record),
            Target::All => {
                for i in 0..n - 1 {
                    self.push(i, record.clone())?;
                }
                self.push(n - 1, record)
            }
        }
    }
}
