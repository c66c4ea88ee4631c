//! The writer of one parallel instance of the Kinesis sink: a buffer, PutRecords batches in
//! flight on the client's runtime, and the retries of what Kinesis refused.

use super::metrics::WriterMetrics;
use super::{MAX_RECORD_BYTES, OnMalformed, Settings};
use crate::client::{KinesisClient, PutEntry, PutOutcome, put_records};
use crate::error::KinesisError;
use fjord::sinks::{SinkError, SinkWriter};
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What one batch took, once Kinesis has every record of it.
struct BatchDone {
    records: u64,
    requests: u64,
    retried: u64,
}

pub(crate) struct KinesisWriter<T> {
    settings: Arc<Settings<T>>,
    client: KinesisClient,
    buffer: Vec<PutEntry>,
    buffer_bytes: usize,
    oldest: Option<Instant>,
    in_flight: JoinSet<Result<BatchDone, KinesisError>>,
    metrics: WriterMetrics,
    target: String,
    subtask: String,
    /// State of the random partition keys.
    key_state: u64,
}

/// splitmix64: the next random partition key.
fn next_key(state: &mut u64) -> String {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).to_string()
}

impl<T> KinesisWriter<T> {
    pub(crate) fn open(settings: Arc<Settings<T>>, ctx: &RuntimeContext) -> Result<Self, BoxError> {
        let target = format!(
            "Kinesis stream {} at {}",
            settings.stream,
            settings.config.describe()
        );
        let client = KinesisClient::new(&settings.config)
            .map_err(|e| SinkError::boxed(target.clone(), e.to_string()))?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ ((ctx.subtask_index as u64) << 48);
        Ok(KinesisWriter {
            client,
            buffer: Vec::new(),
            buffer_bytes: 0,
            oldest: None,
            in_flight: JoinSet::new(),
            metrics: WriterMetrics::new(ctx),
            target,
            subtask: ctx.task_name_with_subtasks(),
            key_state: seed,
            settings,
        })
    }

    fn fail(&self, e: KinesisError) -> BoxError {
        SinkError::boxed(
            self.target.clone(),
            format!(
                "{e}; the job fails (and restarts from its last checkpoint, which writes these records again)"
            ),
        )
    }

    fn done(
        &mut self,
        result: Result<Result<BatchDone, KinesisError>, tokio::task::JoinError>,
    ) -> Result<(), BoxError> {
        self.metrics.in_flight.set(self.in_flight.len() as u64);
        match result {
            Ok(Ok(d)) => {
                self.metrics.records.add(d.records);
                self.metrics.requests.add(d.requests);
                self.metrics.retried.add(d.retried);
                Ok(())
            }
            Ok(Err(e)) => Err(self.fail(e)),
            Err(e) => Err(SinkError::boxed(
                self.target.clone(),
                format!("a PutRecords task failed: {e}"),
            )),
        }
    }

    /// Collects the batches that finished, without waiting.
    fn reap(&mut self) -> Result<(), BoxError> {
        while let Some(r) = self.in_flight.try_join_next() {
            self.done(r)?;
        }
        Ok(())
    }

    /// Waits for one batch in flight.
    fn wait_one(&mut self) -> Result<(), BoxError> {
        let rt = self.client.clone();
        if let Some(r) = rt.block_on(self.in_flight.join_next()) {
            self.done(r)?;
        }
        Ok(())
    }

    /// Sends the buffer as one PutRecords batch (waiting first while too many are in flight).
    fn send(&mut self) -> Result<(), BoxError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.reap()?;
        while self.in_flight.len() >= self.settings.max_in_flight {
            self.wait_one()?;
        }
        let entries = std::mem::take(&mut self.buffer);
        self.buffer_bytes = 0;
        self.oldest = None;
        let client = self.client.sdk().clone();
        let stream = self.settings.stream.clone();
        let timeout = self.settings.retry_timeout;
        self.in_flight.spawn_on(
            put_with_retries(client, stream, entries, timeout),
            self.client.runtime().handle(),
        );
        self.metrics.in_flight.set(self.in_flight.len() as u64);
        Ok(())
    }

    fn malformed(&self, message: String) -> Result<(), BoxError> {
        match self.settings.on_malformed {
            OnMalformed::Fail => Err(SinkError::boxed(
                self.target.clone(),
                format!(
                    "malformed record for the Kinesis sink: {message}; fix the data or the serializer, or skip such records with .on_malformed(OnMalformed::Skip)"
                ),
            )),
            OnMalformed::Skip => {
                tracing::warn!(sink = %self.subtask, "Kinesis sink: skipping a malformed record: {message}");
                self.metrics.skipped.inc();
                Ok(())
            }
        }
    }
}

/// Sends `entries` until Kinesis has all of them: refused entries and failed calls that may
/// pass are sent again with backoff, for at most `timeout`.
async fn put_with_retries(
    client: aws_sdk_kinesis::Client,
    stream: String,
    entries: Vec<PutEntry>,
    timeout: Duration,
) -> Result<BatchDone, KinesisError> {
    let start = Instant::now();
    let mut pending = entries;
    let mut done = BatchDone {
        records: 0,
        requests: 0,
        retried: 0,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let last_error = match put_records(&client, &stream, &pending).await {
            Ok(outcomes) => {
                done.requests += 1;
                let mut failed = Vec::new();
                let mut first_error = None;
                for (entry, outcome) in pending.into_iter().zip(outcomes) {
                    match outcome {
                        PutOutcome::Written { .. } => done.records += 1,
                        PutOutcome::Failed { code, message } => {
                            first_error.get_or_insert_with(|| format!("{code}: {message}"));
                            failed.push(entry);
                        }
                    }
                }
                if failed.is_empty() {
                    return Ok(done);
                }
                pending = failed;
                first_error.unwrap_or_default()
            }
            Err(e) if e.is_retryable() => e.to_string(),
            Err(e) => return Err(e),
        };
        if start.elapsed() >= timeout {
            return Err(KinesisError::WriteGaveUp {
                stream,
                count: pending.len(),
                seconds: timeout.as_secs(),
                last_error,
            });
        }
        tracing::debug!(stream = %stream, records = pending.len(), error = %last_error, "Kinesis sink: retrying");
        done.retried += pending.len() as u64;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

impl<T: Send + 'static> SinkWriter<T> for KinesisWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let data = match (self.settings.serializer)(&value) {
            Ok(d) => d,
            Err(e) => return self.malformed(e),
        };
        let partition_key = match &self.settings.partition_key {
            Some(f) => f(&value),
            None => next_key(&mut self.key_state),
        };
        let key_chars = partition_key.chars().count();
        if !(1..=256).contains(&key_chars) {
            return self.malformed(format!(
                "the partition key has {key_chars} characters; Kinesis takes 1 to 256"
            ));
        }
        let size = data.len() + partition_key.len();
        if size > MAX_RECORD_BYTES {
            return self.malformed(format!(
                "the record has {size} bytes with its partition key; Kinesis takes at most {MAX_RECORD_BYTES}"
            ));
        }
        if self.buffer_bytes + size > self.settings.max_batch_bytes {
            self.send()?;
        }
        self.buffer.push(PutEntry {
            data,
            partition_key,
        });
        self.buffer_bytes += size;
        let oldest = *self.oldest.get_or_insert_with(Instant::now);
        if self.buffer.len() >= self.settings.max_batch_size
            || oldest.elapsed() >= self.settings.max_time_in_buffer
        {
            self.send()?;
        } else {
            self.reap()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        self.send()?;
        while !self.in_flight.is_empty() {
            self.wait_one()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        // On failure or cancellation: what is in flight is given up (a restart sends it again).
        self.in_flight.abort_all();
        Ok(())
    }
}
