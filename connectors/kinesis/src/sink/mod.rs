//! The Kinesis sink: Flink's `KinesisStreamsSink` (an async sink) on Fjord's `Sink` trait.
//!
//! - Records are serialized, given a partition key (from the record, or random), and
//!   buffered; a batch is sent with PutRecords when it holds [`max_batch_size`] records or
//!   [`max_batch_bytes`] bytes, or its oldest record waited [`max_time_in_buffer`].
//! - Up to [`max_in_flight_requests`] PutRecords calls run at once (on the client's runtime);
//!   a writer with that many in flight waits for one to finish (backpressure).
//! - Entries a PutRecords refuses (throttled, internal failure) are sent again, and so are
//!   whole calls that fail for a passing reason (connection refused, server error), with
//!   exponential backoff (100 ms to 5 s) for at most the retry timeout; then the job fails.
//! - Before every checkpoint barrier the buffer is sent and every call in flight is waited
//!   for, so a completed checkpoint covers only records Kinesis has: at-least-once (a record
//!   sent again after a failure may be in the stream twice).
//!
//! [`max_batch_size`]: KinesisSinkBuilder::max_batch_size
//! [`max_batch_bytes`]: KinesisSinkBuilder::max_batch_bytes
//! [`max_time_in_buffer`]: KinesisSinkBuilder::max_time_in_buffer
//! [`max_in_flight_requests`]: KinesisSinkBuilder::max_in_flight_requests

mod metrics;
mod writer;

pub use metrics::PREFIX as METRIC_PREFIX;

use crate::config::KinesisConfig;
use crate::error::KinesisError;
use crate::record::{PartitionKeyFn, Serializer};
use fjord::sinks::{Sink, SinkWriter};
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// PutRecords' limit of records per call.
pub const MAX_BATCH_SIZE: usize = 500;
/// PutRecords' limit of bytes per call (payloads and partition keys).
pub const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;
/// Kinesis' limit of one record (payload and partition key).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// What the sink does with a record its serializer refuses or that is too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job (the default).
    #[default]
    Fail,
    /// Skip the record and count it (`KinesisSinkWriter.recordsSkipped`).
    Skip,
}

pub(crate) struct Settings<T> {
    pub(crate) config: KinesisConfig,
    pub(crate) stream: String,
    pub(crate) serializer: Serializer<T>,
    pub(crate) partition_key: Option<PartitionKeyFn<T>>,
    pub(crate) max_batch_size: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) max_time_in_buffer: Duration,
    pub(crate) retry_timeout: Duration,
    pub(crate) on_malformed: OnMalformed,
}

/// A sink writing records to a Kinesis stream (Flink's `KinesisStreamsSink`): use it with
/// `stream.sink_to(sink, "Kinesis")`.
pub struct KinesisSink<T> {
    pub(crate) settings: Arc<Settings<T>>,
}

impl<T> Clone for KinesisSink<T> {
    fn clone(&self) -> Self {
        KinesisSink {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> KinesisSink<T> {
    /// A builder; [`KinesisSinkBuilder::build`] checks the configuration.
    pub fn builder() -> KinesisSinkBuilder<T> {
        KinesisSinkBuilder {
            config: None,
            stream: None,
            serializer: None,
            partition_key: None,
            max_batch_size: MAX_BATCH_SIZE,
            max_batch_bytes: MAX_BATCH_BYTES,
            max_in_flight: 50,
            max_time_in_buffer: Duration::from_secs(5),
            retry_timeout: Duration::from_secs(300),
            on_malformed: OnMalformed::Fail,
        }
    }
}

impl<T: Send + 'static> Sink<T> for KinesisSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        Ok(Box::new(writer::KinesisWriter::open(
            self.settings.clone(),
            ctx,
        )?))
    }
}

/// Configures a [`KinesisSink`].
pub struct KinesisSinkBuilder<T> {
    config: Option<KinesisConfig>,
    stream: Option<String>,
    serializer: Option<Serializer<T>>,
    partition_key: Option<PartitionKeyFn<T>>,
    max_batch_size: usize,
    max_batch_bytes: usize,
    max_in_flight: usize,
    max_time_in_buffer: Duration,
    retry_timeout: Duration,
    on_malformed: OnMalformed,
}

impl<T: 'static> KinesisSinkBuilder<T> {
    /// Where the stream is (required).
    pub fn config(mut self, config: KinesisConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The stream's name (required).
    pub fn stream(mut self, stream: impl Into<String>) -> Self {
        self.stream = Some(stream.into());
        self
    }

    /// Turns a value into a record's payload (required); `Err` is a malformed value.
    pub fn serializer(
        mut self,
        f: impl Fn(&T) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Self {
        self.serializer = Some(Arc::new(f));
        self
    }

    /// A serializer built elsewhere ([`crate::record::json_serializer`]).
    pub fn serializer_arc(mut self, f: Serializer<T>) -> Self {
        self.serializer = Some(f);
        self
    }

    /// The partition key of a value (1 to 256 characters), which chooses its shard: records
    /// of one key keep their order. Default: a random key per record (even spread, no order).
    pub fn partition_key(mut self, f: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.partition_key = Some(Arc::new(f));
        self
    }

    /// Most records per PutRecords (1 to 500, default 500).
    pub fn max_batch_size(mut self, n: usize) -> Self {
        self.max_batch_size = n;
        self
    }

    /// Most bytes per PutRecords (payloads and keys; up to 5 MiB, the default).
    pub fn max_batch_bytes(mut self, n: usize) -> Self {
        self.max_batch_bytes = n;
        self
    }

    /// Most PutRecords calls in flight per writer (default 50).
    pub fn max_in_flight_requests(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Longest a record waits in the buffer before its batch is sent (default 5 s).
    pub fn max_time_in_buffer(mut self, d: Duration) -> Self {
        self.max_time_in_buffer = d;
        self
    }

    /// How long failed entries and calls are retried before the job fails (default 5 min).
    pub fn retry_timeout(mut self, d: Duration) -> Self {
        self.retry_timeout = d;
        self
    }

    /// What to do with a value the serializer refuses or that exceeds 1 MiB.
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`KinesisError::Config`] naming what is missing or out of range.
    pub fn build(self) -> Result<KinesisSink<T>, KinesisError> {
        let config = self.config.ok_or_else(|| {
            KinesisError::Config(
                "no endpoint: call .config(KinesisConfig::new(region)) (with .endpoint(url) for a local server)".into(),
            )
        })?;
        let stream = self
            .stream
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| KinesisError::Config("no stream: call .stream(name)".into()))?;
        let serializer = self.serializer.ok_or_else(|| {
            KinesisError::Config("no serializer: call .serializer(|value| ...)".into())
        })?;
        if !(1..=MAX_BATCH_SIZE).contains(&self.max_batch_size) {
            return Err(KinesisError::Config(format!(
                "max batch size {} must be between 1 and {MAX_BATCH_SIZE} (PutRecords' limit)",
                self.max_batch_size
            )));
        }
        if !(MAX_RECORD_BYTES..=MAX_BATCH_BYTES).contains(&self.max_batch_bytes) {
            return Err(KinesisError::Config(format!(
                "max batch bytes {} must be between {MAX_RECORD_BYTES} (one record) and {MAX_BATCH_BYTES} (PutRecords' limit)",
                self.max_batch_bytes
            )));
        }
        if self.max_in_flight == 0 {
            return Err(KinesisError::Config(
                "max in-flight requests must be at least 1".into(),
            ));
        }
        Ok(KinesisSink {
            settings: Arc::new(Settings {
                config,
                stream,
                serializer,
                partition_key: self.partition_key,
                max_batch_size: self.max_batch_size,
                max_batch_bytes: self.max_batch_bytes,
                max_in_flight: self.max_in_flight,
                max_time_in_buffer: self.max_time_in_buffer,
                retry_timeout: self.retry_timeout,
                on_malformed: self.on_malformed,
            }),
        })
    }
}
