//! The Kinesis source: Flink's `KinesisStreamsSource` on Fjord's split-based [`Source`] trait.
//!
//! - A *split* is one shard ([`KinesisShardSplit`]: where to continue, its parents).
//! - Fjord has no central enumerator, so every reader lists the stream's shards itself (at
//!   start and then every discovery interval) and takes those [`assign::owner_of`] gives it:
//!   a shard goes to the reader of its lineage's first shard, so the children of a split are
//!   read by the reader of their parent.
//! - A shard is read only after its parents are finished (read to their end after a split or
//!   merge), so records of one partition key keep their order across a reshard.
//! - Checkpoints store the splits with the sequence number of the last record emitted, as the
//!   engine's redistributable source splits (exactly-once with a checkpointed job), and beside
//!   them, as union state, every shard some reader was given and whether it was finished.
//! - Start positions: `LATEST` (fixed as the time of the first discovery, so a restart before
//!   the first record does not skip what arrived meanwhile), `TRIM_HORIZON`, `AT_TIMESTAMP`.
//!   Shards found later (children of a reshard) are read from their start.
//! - Watermarks are generated per shard ([`watermarks`]) with the job's strategy.
//! - Calls that fail for a reason that may pass (connection refused, throttling, a server
//!   error) are retried with backoff for the retry timeout; then, or for any other error, the
//!   job fails and restarts from its checkpoint.

pub mod assign;
mod metrics;
mod reader;
pub mod split;
mod watermarks;

pub use metrics::PREFIX as METRIC_PREFIX;
pub use split::KinesisShardSplit;

use crate::config::KinesisConfig;
use crate::error::KinesisError;
use crate::record::{Deserializer, KinesisRecord};
use fjord::sources::{Source, SourceReader};
use fjord::time::WatermarkStrategy;
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// Where a source starts reading the shards it finds at its first start (Flink's
/// `source.init.position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartingPosition {
    /// Records that arrive after the job starts (the default, as in Flink).
    #[default]
    Latest,
    /// The oldest records the stream keeps.
    TrimHorizon,
    /// Records that arrived at or after this time (ms since the epoch).
    AtTimestamp(i64),
}

/// What the source does with a record its deserializer refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job, naming stream, shard and sequence number (the default).
    #[default]
    Fail,
    /// Skip the record, count it (`KinesisSourceReader.malformedRecordsSkipped`) and log the
    /// first and then every 1000th with its position.
    Skip,
}

/// Default time between shard listings.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);
/// Default most records one GetRecords asks for (the API's maximum).
pub const DEFAULT_MAX_RECORDS: i32 = 10_000;
/// Default wait before asking a shard again after it returned nothing.
pub const DEFAULT_IDLE_INTERVAL: Duration = Duration::from_millis(200);
/// Default time the source retries calls that fail for a passing reason before failing.
pub const DEFAULT_RETRY_TIMEOUT: Duration = Duration::from_secs(300);

/// Everything a reader needs, shared by all readers of a source.
pub(crate) struct Settings<T> {
    pub(crate) config: KinesisConfig,
    pub(crate) stream: String,
    pub(crate) starting: StartingPosition,
    pub(crate) deserializer: Deserializer<T>,
    pub(crate) watermarks: Option<WatermarkStrategy<T>>,
    pub(crate) on_malformed: OnMalformed,
    pub(crate) discovery_interval: Duration,
    pub(crate) max_records: i32,
    pub(crate) idle_interval: Duration,
    pub(crate) retry_timeout: Duration,
    pub(crate) batch: usize,
}

/// A source of Kinesis records (Flink's `KinesisStreamsSource`): use it with
/// `env.from_source(source, "Kinesis")`. Unbounded: it reads until the job is cancelled.
pub struct KinesisSource<T> {
    pub(crate) settings: Arc<Settings<T>>,
}

impl<T> Clone for KinesisSource<T> {
    fn clone(&self) -> Self {
        KinesisSource {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> KinesisSource<T> {
    /// A builder; [`KinesisSourceBuilder::build`] checks the configuration.
    pub fn builder() -> KinesisSourceBuilder<T> {
        KinesisSourceBuilder {
            config: None,
            stream: None,
            starting: StartingPosition::default(),
            deserializer: None,
            watermarks: None,
            on_malformed: OnMalformed::default(),
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            max_records: DEFAULT_MAX_RECORDS,
            idle_interval: DEFAULT_IDLE_INTERVAL,
            retry_timeout: DEFAULT_RETRY_TIMEOUT,
        }
    }
}

impl<T: Send + 'static> Source<T> for KinesisSource<T> {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        Ok(Box::new(reader::KinesisSourceReader::new(
            self.settings.clone(),
            ctx.subtask_index,
            ctx.parallelism,
        )))
    }
}

/// Configures a [`KinesisSource`].
pub struct KinesisSourceBuilder<T> {
    config: Option<KinesisConfig>,
    stream: Option<String>,
    starting: StartingPosition,
    deserializer: Option<Deserializer<T>>,
    watermarks: Option<WatermarkStrategy<T>>,
    on_malformed: OnMalformed,
    discovery_interval: Duration,
    max_records: i32,
    idle_interval: Duration,
    retry_timeout: Duration,
}

impl<T: 'static> KinesisSourceBuilder<T> {
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

    /// Where to start in the shards found at the first start (default `Latest`).
    pub fn starting_position(mut self, position: StartingPosition) -> Self {
        self.starting = position;
        self
    }

    /// Turns a record's payload into a value (required, or [`deserializer`](Self::deserializer)).
    pub fn value_deserializer(
        mut self,
        f: impl Fn(&[u8]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        self.deserializer = Some(Arc::new(move |r: &KinesisRecord<'_>| f(r.data).map(Some)));
        self
    }

    /// Turns a record (payload, partition key, shard, sequence number, arrival time) into a
    /// value; `Ok(None)` drops it.
    pub fn deserializer(
        mut self,
        f: impl Fn(&KinesisRecord<'_>) -> Result<Option<T>, String> + Send + Sync + 'static,
    ) -> Self {
        self.deserializer = Some(Arc::new(f));
        self
    }

    /// A deserializer built elsewhere ([`crate::record::json_deserializer`]).
    pub fn deserializer_arc(mut self, f: Deserializer<T>) -> Self {
        self.deserializer = Some(f);
        self
    }

    /// Generates watermarks per shard with `strategy` (its timestamp assigner, else the
    /// records' arrival time); the reader's watermark is the minimum over its active shards.
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy<T>) -> Self {
        self.watermarks = Some(strategy);
        self
    }

    /// What to do with records the deserializer refuses (default: fail the job).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// How often the shards are listed to find new ones (default 10 s, Flink's
    /// `source.shard.discovery.interval`).
    pub fn discovery_interval(mut self, interval: Duration) -> Self {
        self.discovery_interval = interval;
        self
    }

    /// Most records per GetRecords (1 to 10000, default 10000).
    pub fn max_records_per_fetch(mut self, n: i32) -> Self {
        self.max_records = n;
        self
    }

    /// Wait before asking a shard again after it returned nothing (default 200 ms; Kinesis
    /// allows 5 GetRecords per shard and second).
    pub fn idle_interval(mut self, interval: Duration) -> Self {
        self.idle_interval = interval;
        self
    }

    /// How long calls that fail for a passing reason (connection, throttling, server
    /// errors) are retried before the job fails (default 5 min).
    pub fn retry_timeout(mut self, timeout: Duration) -> Self {
        self.retry_timeout = timeout;
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`KinesisError::Config`] naming what is missing or out of range.
    pub fn build(self) -> Result<KinesisSource<T>, KinesisError> {
        let config = self.config.ok_or_else(|| {
            KinesisError::Config(
                "no endpoint: call .config(KinesisConfig::new(region)) (with .endpoint(url) for a local server)".into(),
            )
        })?;
        if config.region.trim().is_empty() {
            return Err(KinesisError::Config(
                "the region is empty; set one such as us-east-1".into(),
            ));
        }
        let stream = self
            .stream
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| KinesisError::Config("no stream: call .stream(name)".into()))?;
        let deserializer = self.deserializer.ok_or_else(|| {
            KinesisError::Config(
                "no deserializer: call .value_deserializer(|bytes| ...) or .deserializer(...)"
                    .into(),
            )
        })?;
        if !(1..=10_000).contains(&self.max_records) {
            return Err(KinesisError::Config(format!(
                "max records per fetch {} must be between 1 and 10000",
                self.max_records
            )));
        }
        if self.discovery_interval.is_zero() {
            return Err(KinesisError::Config(
                "the shard discovery interval must be positive".into(),
            ));
        }
        Ok(KinesisSource {
            settings: Arc::new(Settings {
                config,
                stream,
                starting: self.starting,
                deserializer,
                watermarks: self.watermarks,
                on_malformed: self.on_malformed,
                discovery_interval: self.discovery_interval,
                max_records: self.max_records,
                idle_interval: self.idle_interval,
                retry_timeout: self.retry_timeout,
                batch: 1000,
            }),
        })
    }
}
