//! A small blocking client over the AWS SDK for Rust: what the source and the sink call
//! (ListShards, GetShardIterator, GetRecords, PutRecords) and the admin calls that tests and
//! tools use (CreateStream, SplitShard, MergeShards). Every instance owns a one-thread tokio
//! runtime, so callers need none; the sink spawns its in-flight requests on it.

use crate::config::{AwsCredentials, KinesisConfig};
use crate::error::KinesisError;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Error codes after which the same request may succeed later.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "KMSThrottlingException",
    "InternalFailure",
    "InternalFailureException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ThrottlingException",
];

/// One shard as ListShards describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// Its id (`shardId-000000000000`).
    pub shard_id: String,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent: Option<String>,
    /// The second shard it was merged from.
    pub adjacent_parent: Option<String>,
    /// Set once the shard is closed (after a split or merge): no records are added to it.
    pub ending_sequence_number: Option<String>,
    /// The lowest hash key it holds (a decimal 128-bit number).
    pub starting_hash_key: String,
    /// The highest hash key it holds.
    pub ending_hash_key: String,
}

impl ShardInfo {
    /// The shards it came from (none for a shard of the stream's creation).
    pub fn parents(&self) -> Vec<String> {
        self.parent
            .iter()
            .chain(self.adjacent_parent.iter())
            .cloned()
            .collect()
    }
}

/// Where to start reading a shard.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IteratorStart {
    /// The oldest record kept.
    TrimHorizon,
    /// Records added after the iterator is made.
    Latest,
    /// Records that arrived at or after this time (ms since the epoch).
    AtTimestamp(i64),
    /// Records after this sequence number.
    AfterSequenceNumber(String),
}

/// One record as GetRecords returns it.
#[derive(Debug, Clone)]
pub struct FetchedRecord {
    /// Its sequence number in the shard.
    pub sequence_number: String,
    /// The partition key it was put with.
    pub partition_key: String,
    /// Its payload.
    pub data: Vec<u8>,
    /// When Kinesis received it (ms since the epoch).
    pub arrival_timestamp: i64,
}

/// What one GetRecords returned.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The records, in order.
    pub records: Vec<FetchedRecord>,
    /// The iterator of the next call; `None` once a closed shard was read to its end.
    pub next_iterator: Option<String>,
    /// How far behind the shard's tip the call ended (ms).
    pub millis_behind_latest: Option<i64>,
}

/// One record for PutRecords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutEntry {
    /// Its payload (at most 1 MiB with the partition key).
    pub data: Vec<u8>,
    /// Its partition key (1 to 256 characters), which chooses the shard.
    pub partition_key: String,
}

/// The result of one entry of a PutRecords call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Written: its shard and sequence number.
    Written {
        /// The shard.
        shard_id: String,
        /// The sequence number.
        sequence_number: String,
    },
    /// Refused (throttled, internal failure): the error code and message.
    Failed {
        /// The code (`ProvisionedThroughputExceededException`, `InternalFailure`).
        code: String,
        /// The message.
        message: String,
    },
}

/// A blocking Kinesis client for one endpoint.
#[derive(Clone)]
pub struct KinesisClient {
    runtime: Arc<tokio::runtime::Runtime>,
    client: aws_sdk_kinesis::Client,
    config: KinesisConfig,
}

impl std::fmt::Debug for KinesisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KinesisClient")
            .field("config", &self.config)
            .finish()
    }
}

impl KinesisClient {
    /// A client for `config`: region, endpoint and credentials (the default chain is resolved
    /// lazily, on the first request). HTTPS uses rustls with ring and the platform's roots.
    ///
    /// # Errors
    /// [`KinesisError::Client`] if the runtime cannot start.
    pub fn new(config: &KinesisConfig) -> Result<Self, KinesisError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fjord-kinesis")
            .enable_all()
            .build()
            .map_err(|e| KinesisError::Client(format!("tokio runtime: {e}")))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(config.region.clone()))
            .http_client(http)
            // The SDK's own retries stay short: the source and the sink retry on top of them
            // with their own backoff and timeout, and must not block a task for long.
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(50))
                    .with_max_backoff(Duration::from_millis(500)),
            )
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            );
        if let AwsCredentials::Basic {
            access_key_id,
            secret_access_key,
        } = &config.credentials
        {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                access_key_id.clone(),
                secret_access_key.clone(),
                None,
                None,
                "fjord-basic",
            ));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let sdk_config = runtime.block_on(loader.load());
        let client = aws_sdk_kinesis::Client::new(&sdk_config);
        Ok(KinesisClient {
            runtime: Arc::new(runtime),
            client,
            config: config.clone(),
        })
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &KinesisConfig {
        &self.config
    }

    /// The SDK client, for calls this type does not wrap (async; run them with
    /// [`block_on`](Self::block_on)).
    pub fn sdk(&self) -> &aws_sdk_kinesis::Client {
        &self.client
    }

    /// Runs a future on the client's runtime and waits for it.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// The client's runtime (the sink spawns its requests on it).
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.runtime
    }

    /// Every shard of `stream`, open and closed (ListShards, all pages).
    ///
    /// # Errors
    /// [`KinesisError::Api`].
    pub fn list_shards(&self, stream: &str) -> Result<Vec<ShardInfo>, KinesisError> {
        self.block_on(list_shards(&self.client, stream))
    }

    /// An iterator of `shard` from `start`; `None` when the service gives none (a closed
    /// shard read past its end).
    ///
    /// # Errors
    /// [`KinesisError::Api`] (`ResourceNotFoundException` when the shard is gone).
    pub fn shard_iterator(
        &self,
        stream: &str,
        shard_id: &str,
        start: &IteratorStart,
    ) -> Result<Option<String>, KinesisError> {
        let mut req = self
            .client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard_id);
        req = match start {
            IteratorStart::TrimHorizon => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
            IteratorStart::Latest => req.shard_iterator_type(ShardIteratorType::Latest),
            IteratorStart::AtTimestamp(ms) => req
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*ms)),
            IteratorStart::AfterSequenceNumber(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(seq),
        };
        let out = self
            .block_on(req.send())
            .map_err(|e| api_error("GetShardIterator", stream, e))?;
        Ok(out.shard_iterator().map(str::to_string))
    }

    /// Up to `limit` records from `iterator` (GetRecords).
    ///
    /// # Errors
    /// [`KinesisError::Api`] (`ExpiredIteratorException` after five minutes unused).
    pub fn get_records(
        &self,
        stream: &str,
        iterator: &str,
        limit: i32,
    ) -> Result<Fetched, KinesisError> {
        let out = self
            .block_on(
                self.client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(limit)
                    .send(),
            )
            .map_err(|e| api_error("GetRecords", stream, e))?;
        let records = out
            .records()
            .iter()
            .map(|r| FetchedRecord {
                sequence_number: r.sequence_number().to_string(),
                partition_key: r.partition_key().unwrap_or_default().to_string(),
                data: r.data().as_ref().to_vec(),
                arrival_timestamp: r.approximate_arrival_timestamp().map_or(0, arrival_millis),
            })
            .collect();
        Ok(Fetched {
            records,
            next_iterator: out.next_shard_iterator().map(str::to_string),
            millis_behind_latest: out.millis_behind_latest(),
        })
    }

    /// Writes `entries` with one PutRecords call; the outcome of each, in order.
    ///
    /// # Errors
    /// [`KinesisError::Api`] when the whole call failed.
    pub fn put_records(
        &self,
        stream: &str,
        entries: &[PutEntry],
    ) -> Result<Vec<PutOutcome>, KinesisError> {
        self.block_on(put_records(&self.client, stream, entries))
    }

    /// Creates `stream` with `shards` shards and waits (up to 60 s) until it is active.
    ///
    /// # Errors
    /// [`KinesisError::Api`] (`ResourceInUseException` if it exists).
    pub fn create_stream(&self, stream: &str, shards: i32) -> Result<(), KinesisError> {
        self.block_on(
            self.client
                .create_stream()
                .stream_name(stream)
                .shard_count(shards)
                .send(),
        )
        .map_err(|e| api_error("CreateStream", stream, e))?;
        self.wait_active(stream, Duration::from_secs(60))
    }

    /// Splits `shard_id` at `new_starting_hash_key` (a decimal 128-bit number) and waits
    /// until the stream is active again.
    ///
    /// # Errors
    /// [`KinesisError::Api`].
    pub fn split_shard(
        &self,
        stream: &str,
        shard_id: &str,
        new_starting_hash_key: &str,
    ) -> Result<(), KinesisError> {
        self.block_on(
            self.client
                .split_shard()
                .stream_name(stream)
                .shard_to_split(shard_id)
                .new_starting_hash_key(new_starting_hash_key)
                .send(),
        )
        .map_err(|e| api_error("SplitShard", stream, e))?;
        self.wait_active(stream, Duration::from_secs(60))
    }

    /// Merges two adjacent shards and waits until the stream is active again.
    ///
    /// # Errors
    /// [`KinesisError::Api`].
    pub fn merge_shards(
        &self,
        stream: &str,
        shard_id: &str,
        adjacent_shard_id: &str,
    ) -> Result<(), KinesisError> {
        self.block_on(
            self.client
                .merge_shards()
                .stream_name(stream)
                .shard_to_merge(shard_id)
                .adjacent_shard_to_merge(adjacent_shard_id)
                .send(),
        )
        .map_err(|e| api_error("MergeShards", stream, e))?;
        self.wait_active(stream, Duration::from_secs(60))
    }

    /// Waits until `stream` is ACTIVE.
    ///
    /// # Errors
    /// [`KinesisError::Api`], or a timeout as [`KinesisError::Config`].
    pub fn wait_active(&self, stream: &str, timeout: Duration) -> Result<(), KinesisError> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self
                .block_on(
                    self.client
                        .describe_stream_summary()
                        .stream_name(stream)
                        .send(),
                )
                .map_err(|e| api_error("DescribeStreamSummary", stream, e))?;
            if out
                .stream_description_summary()
                .is_some_and(|s| *s.stream_status() == StreamStatus::Active)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(KinesisError::Config(format!(
                    "stream '{stream}' did not become ACTIVE within {} s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

async fn list_shards(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
) -> Result<Vec<ShardInfo>, KinesisError> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        // A request with a NextToken must not name the stream.
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(stream),
        };
        let out = req
            .send()
            .await
            .map_err(|e| api_error("ListShards", stream, e))?;
        for s in out.shards() {
            let range = s.hash_key_range();
            shards.push(ShardInfo {
                shard_id: s.shard_id().to_string(),
                parent: s.parent_shard_id().map(str::to_string),
                adjacent_parent: s.adjacent_parent_shard_id().map(str::to_string),
                ending_sequence_number: s
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .map(str::to_string),
                starting_hash_key: range
                    .map(|r| r.starting_hash_key().to_string())
                    .unwrap_or_default(),
                ending_hash_key: range
                    .map(|r| r.ending_hash_key().to_string())
                    .unwrap_or_default(),
            });
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(shards),
        }
    }
}

pub(crate) async fn put_records(
    client: &aws_sdk_kinesis::Client,
    stream: &str,
    entries: &[PutEntry],
) -> Result<Vec<PutOutcome>, KinesisError> {
    let records = entries
        .iter()
        .map(|e| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(e.data.clone()))
                .partition_key(e.partition_key.clone())
                .build()
                .map_err(|err| KinesisError::Malformed {
                    position: format!("for stream '{stream}'"),
                    message: err.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = client
        .put_records()
        .stream_name(stream)
        .set_records(Some(records))
        .send()
        .await
        .map_err(|e| api_error("PutRecords", stream, e))?;
    Ok(out
        .records()
        .iter()
        .map(|r| match r.error_code() {
            Some(code) => PutOutcome::Failed {
                code: code.to_string(),
                message: r.error_message().unwrap_or_default().to_string(),
            },
            None => PutOutcome::Written {
                shard_id: r.shard_id().unwrap_or_default().to_string(),
                sequence_number: r.sequence_number().unwrap_or_default().to_string(),
            },
        })
        .collect())
}

/// The SDK's error as the crate's, with whether a retry may help and a hint.
fn api_error<E, R>(operation: &'static str, stream: &str, e: SdkError<E, R>) -> KinesisError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().map(str::to_string);
    let retryable = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => code
            .as_deref()
            .is_some_and(|c| RETRYABLE_CODES.contains(&c)),
        _ => false,
    };
    let hint = match code.as_deref() {
        Some("ResourceNotFoundException") => {
            "; check the stream name and region (the stream must exist)".to_string()
        }
        Some(c)
            if c.contains("AccessDenied")
                || c.contains("Unrecognized")
                || c.contains("Signature") =>
        {
            "; check the credentials (aws.credentials.*) and their permissions".to_string()
        }
        _ if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
            "; check that the endpoint is reachable (aws.endpoint / aws.region)".to_string()
        }
        _ => String::new(),
    };
    KinesisError::Api {
        operation,
        stream: stream.to_string(),
        message: DisplayErrorContext(&e).to_string(),
        hint,
        retryable,
        code,
    }
}

/// A record's arrival time in milliseconds since the epoch, rounded to the nearest one.
///
/// Kinesis sends arrival times as epoch seconds with three decimals, and the SDK parses them
/// through an `f64`: `1733520000.123` becomes 1733520000.12299990654 seconds, which
/// [`DateTime::to_millis`] truncates to `…122` for about half of all values. Rounding gives
/// back the millisecond the service wrote, so that the arrival time of a record given to
/// [`IteratorStart::AtTimestamp`] starts at that record and not 1 ms before it.
fn arrival_millis(t: &DateTime) -> i64 {
    t.secs() * 1000 + i64::from((t.subsec_nanos() + 500_000) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_times_parsed_through_f64_round_back_to_their_millisecond() {
        let mut truncated = 0;
        for ms in 1_733_520_000_000i64..1_733_520_001_000 {
            let parsed = DateTime::from_secs_f64(ms as f64 / 1000.0);
            truncated += usize::from(parsed.to_millis().unwrap() != ms);
            assert_eq!(arrival_millis(&parsed), ms, "{parsed:?}");
        }
        // What the fix is for: plain truncation loses a millisecond on many of them.
        assert!(truncated > 100, "{truncated}");
        assert_eq!(arrival_millis(&DateTime::from_millis(-1)), -1);
    }
}
