//! The Kafka source: Flink's `KafkaSource` on Fjord's split-based [`Source`] trait.
//!
//! - A *split* is one topic-partition ([`KafkaSplit`]: next offset, stopping offset).
//! - Fjord has no central enumerator, so every reader discovers the partitions of its topics
//!   (a list or a pattern) itself, at start and then every discovery interval, and takes those
//!   Flink's enumerator would give it ([`assign::owner_of`]): even and deterministic, and every
//!   partition has exactly one reader.
//! - Checkpoints store the splits as the engine's redistributable source splits, so a job
//!   restored at another parallelism redistributes them; beside them every reader stores the
//!   partitions already assigned as a union list, so that after a restore no reader takes a
//!   partition another one holds, or starts one from scratch twice. Partitions found later
//!   start at the earliest offset, as in Flink.
//! - Offsets are committed to the consumer group when a checkpoint completes, for monitoring.
//! - Watermarks are generated per partition ([`watermarks`]).
//! - Malformed records fail the job, are skipped, or go to a dead-letter topic ([`dead_letter`]).
//!
//! Configure it with [`KafkaSource::builder`]; see `docs/connectors/kafka.md`.

pub mod assign;
mod builder;
pub mod dead_letter;
pub mod metrics;
pub mod offsets;
mod reader;
pub mod split;
mod watermarks;

pub use builder::{DEFAULT_DISCOVERY_INTERVAL, KafkaSourceBuilder};
pub use offsets::{OffsetReset, OffsetsInitializer, StoppingOffsets};
pub use split::KafkaSplit;

use crate::client::{ClientConfig, FetchOptions};
use crate::format::KafkaDeserializer;
use fjord::sources::{Source, SourceReader};
use fjord::time::WatermarkStrategy;
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// What the source does with a record its deserializer rejects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job, naming topic, partition and offset (the default).
    #[default]
    Fail,
    /// Skip the record and count it (`KafkaSourceReader.malformedRecordsSkipped`); the first
    /// and then every 1000th are logged with their position.
    Skip,
    /// Write the record as it was read (key, value, headers, timestamp) to this topic of the
    /// same Kafka cluster, with the headers `fjord.error.topic`, `fjord.error.partition`,
    /// `fjord.error.offset` and `fjord.error.message` added, and count it
    /// (`KafkaSourceReader.malformedRecordsDeadLettered`). At least once: the letters are
    /// flushed before each checkpoint's splits are taken. The topic must exist and must not be
    /// one the source reads.
    DeadLetterTopic(String),
}

/// Which topics to read.
#[derive(Debug, Clone)]
pub(crate) enum Subscription {
    /// These topics.
    Topics(Vec<String>),
    /// Topics whose whole name matches.
    Pattern(regex::Regex),
}

/// Everything a reader needs, shared by all readers of a source.
pub(crate) struct Settings<T> {
    pub(crate) client: ClientConfig,
    pub(crate) client_id_prefix: Option<String>,
    pub(crate) subscription: Subscription,
    pub(crate) group_id: Option<String>,
    pub(crate) starting: OffsetsInitializer,
    pub(crate) stopping: Option<StoppingOffsets>,
    pub(crate) deserializer: Arc<dyn KafkaDeserializer<T>>,
    pub(crate) discovery_interval: Option<Duration>,
    pub(crate) watermarks: Option<WatermarkStrategy<T>>,
    pub(crate) on_malformed: OnMalformed,
    pub(crate) commit_offsets: bool,
    pub(crate) fetch: FetchOptions,
    pub(crate) batch: usize,
}

/// A source of Kafka records (Flink's `KafkaSource`): use it with
/// `env.from_source(source, "Kafka")`.
pub struct KafkaSource<T> {
    pub(crate) settings: Arc<Settings<T>>,
}

impl<T> Clone for KafkaSource<T> {
    fn clone(&self) -> Self {
        KafkaSource {
            settings: self.settings.clone(),
        }
    }
}

impl<T: 'static> KafkaSource<T> {
    /// A builder; [`KafkaSourceBuilder::build`] checks the configuration.
    pub fn builder() -> KafkaSourceBuilder<T> {
        KafkaSourceBuilder::default()
    }

    /// True when the source stops at stopping offsets.
    pub fn is_bounded(&self) -> bool {
        self.settings.stopping.is_some()
    }
}

impl<T: Send + 'static> Source<T> for KafkaSource<T> {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        Ok(Box::new(reader::KafkaSourceReader::new(
            self.settings.clone(),
            ctx.subtask_index,
            ctx.parallelism,
        )))
    }
}
