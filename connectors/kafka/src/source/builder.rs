//! [`KafkaSourceBuilder`]: how a job configures a [`KafkaSource`] (Flink's
//! `KafkaSourceBuilder`).

use super::offsets::{OffsetsInitializer, StoppingOffsets};
use super::{KafkaSource, OnMalformed, Settings, Subscription};
use crate::client::{ClientConfig, FetchOptions, IsolationLevel};
use crate::error::KafkaError;
use crate::format::KafkaDeserializer;
use fjord::time::WatermarkStrategy;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Flink's default partition discovery interval (`partition.discovery.interval.ms`, FLIP-288):
/// five minutes. Bounded sources discover once.
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(300);

/// Properties the source reads itself (Flink's `KafkaSourceOptions` and the consumer
/// properties it maps onto fetches); they are not passed to the client.
const SOURCE_PROPERTIES: &[&str] = &[
    "partition.discovery.interval.ms",
    "commit.offsets.on.checkpoint",
    "client.id.prefix",
    "group.id",
    "isolation.level",
    "fetch.max.wait.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "max.poll.records",
];

/// Builds a [`KafkaSource`]; start with [`KafkaSource::builder`].
///
/// ```no_run
/// use fjord_kafka::format::{value_only, Utf8};
/// use fjord_kafka::source::{KafkaSource, OffsetsInitializer};
/// let source = KafkaSource::builder()
///     .bootstrap_servers("localhost:9092")
///     .topics(["input"])
///     .group_id("my-job")
///     .starting_offsets(OffsetsInitializer::Earliest)
///     .deserializer(value_only(Utf8))
///     .build()
///     .expect("valid configuration");
/// # let _ = source;
/// ```
pub struct KafkaSourceBuilder<T> {
    properties: BTreeMap<String, String>,
    topics: Option<Vec<String>>,
    pattern: Option<String>,
    group_id: Option<String>,
    starting: OffsetsInitializer,
    stopping: Option<StoppingOffsets>,
    deserializer: Option<Arc<dyn KafkaDeserializer<T>>>,
    discovery_interval: Option<Option<Duration>>,
    watermarks: Option<WatermarkStrategy<T>>,
    on_malformed: OnMalformed,
}

impl<T> Default for KafkaSourceBuilder<T> {
    fn default() -> Self {
        KafkaSourceBuilder {
            properties: BTreeMap::new(),
            topics: None,
            pattern: None,
            group_id: None,
            starting: OffsetsInitializer::default(),
            stopping: None,
            deserializer: None,
            discovery_interval: None,
            watermarks: None,
            on_malformed: OnMalformed::Fail,
        }
    }
}

impl<T: 'static> KafkaSourceBuilder<T> {
    /// The brokers to bootstrap from: `host:port[,host:port...]` (`bootstrap.servers`).
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.property("bootstrap.servers", servers)
    }

    /// Reads these topics (Flink's `setTopics`).
    pub fn topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.topics = Some(topics.into_iter().map(Into::into).collect());
        self
    }

    /// Reads every topic whose whole name matches this regular expression (Flink's
    /// `setTopicPattern`, Java's `Pattern.matches`); topics created later are picked up by
    /// partition discovery.
    pub fn topic_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// The consumer group offsets are committed to when checkpoints complete (for
    /// monitoring; the checkpoint is the source of truth), and that
    /// [`OffsetsInitializer::Committed`] reads.
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Where to start in the partitions found at the first discovery of a fresh run (default
    /// [`OffsetsInitializer::Earliest`]).
    pub fn starting_offsets(mut self, starting: OffsetsInitializer) -> Self {
        self.starting = starting;
        self
    }

    /// Makes the source bounded: each partition is read up to its stopping offset, and the
    /// source finishes when every partition did (Flink's `setBounded`). Partitions are
    /// discovered once.
    pub fn bounded(mut self, stopping: StoppingOffsets) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// How records become values (see [`crate::format`]).
    pub fn deserializer(mut self, deserializer: impl KafkaDeserializer<T>) -> Self {
        self.deserializer = Some(Arc::new(deserializer));
        self
    }

    /// A Kafka consumer property, passed to the client (`security.protocol`, `client.id`,
    /// `request.timeout.ms`, ...), or one of the source's own (Flink's `KafkaSourceOptions`):
    /// `partition.discovery.interval.ms`, `commit.offsets.on.checkpoint`, `client.id.prefix`,
    /// `isolation.level`, `fetch.max.wait.ms`, `fetch.min.bytes`, `fetch.max.bytes`,
    /// `max.partition.fetch.bytes`, `max.poll.records`.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// How often readers look for new partitions and (with a pattern) new topics; `None`
    /// turns discovery off after the first. Default five minutes, as Flink's; bounded sources
    /// discover once whatever is set.
    pub fn partition_discovery_interval(mut self, interval: Option<Duration>) -> Self {
        self.discovery_interval = Some(interval);
        self
    }

    /// Event time and watermarks generated per partition, as Flink's `fromSource(source,
    /// strategy, name)` does: each partition runs its own generator, a reader emits the
    /// minimum over its partitions, and partitions idle for the strategy's idleness timeout do
    /// not hold it back. Without a strategy records still carry the Kafka timestamp as their
    /// event time, and the source emits no watermarks.
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy<T>) -> Self {
        self.watermarks = Some(strategy);
        self
    }

    /// What a record the deserializer rejects does: fail the job (default), be skipped and
    /// counted, or go to a dead-letter topic ([`OnMalformed::DeadLetterTopic`]).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// Checks the configuration and builds the source.
    ///
    /// # Errors
    /// [`KafkaError::Config`] saying what is missing or wrong.
    pub fn build(self) -> Result<KafkaSource<T>, KafkaError> {
        let config = |m: String| KafkaError::Config(m);
        let mut props = self.properties;
        let servers = props.get("bootstrap.servers").map(|s| s.trim().to_string());
        if servers.as_deref().is_none_or(str::is_empty) {
            return Err(config(
                "the Kafka source needs bootstrap servers: call .bootstrap_servers(\"host:9092\")"
                    .into(),
            ));
        }
        let subscription = match (self.topics, self.pattern) {
            (Some(_), Some(_)) => {
                return Err(config(
                    "the Kafka source was given both topics and a topic pattern; use one of them"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(config(
                    "the Kafka source needs topics: call .topics([...]) or .topic_pattern(regex)"
                        .into(),
                ));
            }
            (Some(topics), None) => {
                if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
                    return Err(config(format!(
                        "invalid topic list {topics:?}: give at least one topic, none empty"
                    )));
                }
                Subscription::Topics(topics)
            }
            (None, Some(pattern)) => {
                let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| config(format!("invalid topic pattern {pattern:?}: {e}")))?;
                Subscription::Pattern(regex)
            }
        };
        if let OnMalformed::DeadLetterTopic(dlq) = &self.on_malformed {
            let read = match &subscription {
                Subscription::Topics(topics) => topics.contains(dlq),
                Subscription::Pattern(re) => re.is_match(dlq),
            };
            if dlq.trim().is_empty() || read {
                return Err(config(format!(
                    "invalid dead-letter topic {dlq:?}: name a topic the source does not read (a loop would read its own letters)"
                )));
            }
        }
        let Some(deserializer) = self.deserializer else {
            return Err(config(
                "the Kafka source needs a deserializer: call .deserializer(value_only(Utf8)) or another format"
                    .into(),
            ));
        };
        let group_id = match (self.group_id, props.get("group.id").cloned()) {
            (Some(a), Some(b)) if a != b => {
                return Err(config(format!(
                    "group id set twice, as {a:?} and as property group.id={b:?}; keep one"
                )));
            }
            (a, b) => a.or(b),
        };
        let needs_group = matches!(self.starting, OffsetsInitializer::Committed { .. });
        if needs_group && group_id.is_none() {
            return Err(config(
                "starting from committed offsets needs a consumer group: call .group_id(..)".into(),
            ));
        }
        let parse_ms = |key: &str, default: u64| -> Result<u64, KafkaError> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map(|n| n.max(0) as u64)
                    .map_err(|_| config(format!("property {key}={v:?} is not a number"))),
            }
        };
        let parse_i32 = |key: &str, default: i32| -> Result<i32, KafkaError> {
            match props.get(key) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        config(format!("property {key}={v:?} is not a positive number"))
                    }),
            }
        };
        // Discovery: the builder call wins over the property; bounded sources discover once.
        let discovery = match self.discovery_interval {
            Some(interval) => interval,
            None => match parse_ms(
                "partition.discovery.interval.ms",
                DEFAULT_DISCOVERY_INTERVAL.as_millis() as u64,
            )? {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
        };
        let discovery = if self.stopping.is_some() {
            None
        } else {
            discovery.filter(|d| !d.is_zero())
        };
        let commit_offsets = match props.get("commit.offsets.on.checkpoint").map(|s| s.trim()) {
            None => true,
            Some("true") => true,
            Some("false") => false,
            Some(v) => {
                return Err(config(format!(
                    "property commit.offsets.on.checkpoint={v:?} must be true or false"
                )));
            }
        };
        let isolation = match props.get("isolation.level").map(|s| s.trim()) {
            None | Some("read_uncommitted") => IsolationLevel::ReadUncommitted,
            Some("read_committed") => IsolationLevel::ReadCommitted,
            Some(v) => {
                return Err(config(format!(
                    "property isolation.level={v:?} must be read_committed or read_uncommitted"
                )));
            }
        };
        let fetch = FetchOptions {
            isolation,
            max_wait: Duration::from_millis(parse_ms("fetch.max.wait.ms", 50)?),
            min_bytes: parse_i32("fetch.min.bytes", 1)?,
            max_bytes: parse_i32("fetch.max.bytes", 16 * 1024 * 1024)?,
            partition_max_bytes: parse_i32("max.partition.fetch.bytes", 1024 * 1024)?,
        };
        let batch = parse_i32("max.poll.records", 1000)? as usize;
        let client_id_prefix = props.get("client.id.prefix").cloned();
        for key in SOURCE_PROPERTIES {
            props.remove(*key);
        }
        Ok(KafkaSource {
            settings: Arc::new(Settings {
                client: ClientConfig { properties: props },
                client_id_prefix,
                subscription,
                group_id,
                starting: self.starting,
                stopping: self.stopping,
                deserializer,
                discovery_interval: discovery,
                watermarks: self.watermarks,
                on_malformed: self.on_malformed,
                commit_offsets,
                fetch,
                batch,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Utf8, value_only};
    use crate::source::OffsetReset;

    fn base() -> KafkaSourceBuilder<String> {
        KafkaSource::builder()
            .bootstrap_servers("localhost:9092")
            .deserializer(value_only(Utf8))
    }

    fn error(b: KafkaSourceBuilder<String>) -> String {
        match b.build() {
            Ok(_) => panic!("built"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn missing_and_conflicting_settings_say_what_to_do() {
        assert!(error(base()).contains(".topics("));
        assert!(error(base().topics(["a"]).topic_pattern("a.*")).contains("use one of them"));
        assert!(error(base().topics(Vec::<String>::new())).contains("at least one topic"));
        assert!(error(base().topic_pattern("(unclosed")).contains("invalid topic pattern"));
        let no_servers = KafkaSource::<String>::builder()
            .topics(["a"])
            .deserializer(value_only(Utf8));
        assert!(error(no_servers).contains(".bootstrap_servers("));
        let no_format = KafkaSource::<String>::builder()
            .bootstrap_servers("localhost:9092")
            .topics(["a"]);
        assert!(error(no_format).contains("deserializer"));
        let committed = base()
            .topics(["a"])
            .starting_offsets(OffsetsInitializer::Committed {
                reset: OffsetReset::Earliest,
            });
        assert!(error(committed).contains(".group_id("));
        assert!(
            error(base().topics(["a"]).group_id("x").property("group.id", "y"))
                .contains("group id set twice")
        );
        assert!(
            error(base().topics(["a"]).property("fetch.max.wait.ms", "soon"))
                .contains("not a number")
        );
        assert!(
            error(base().topics(["a"]).property("isolation.level", "snapshot"))
                .contains("read_committed")
        );
    }

    #[test]
    fn source_properties_are_read_and_the_rest_passed_through() {
        let source = base()
            .topics(["a"])
            .property("group.id", "g")
            .property("isolation.level", "read_committed")
            .property("fetch.max.wait.ms", "80")
            .property("partition.discovery.interval.ms", "1000")
            .property("security.protocol", "PLAINTEXT")
            .property("client.id.prefix", "job")
            .build()
            .unwrap();
        let s = &source.settings;
        assert_eq!(s.group_id.as_deref(), Some("g"));
        assert_eq!(s.fetch.isolation, IsolationLevel::ReadCommitted);
        assert_eq!(s.fetch.max_wait, Duration::from_millis(80));
        assert_eq!(s.discovery_interval, Some(Duration::from_secs(1)));
        assert_eq!(s.client_id_prefix.as_deref(), Some("job"));
        let passed: Vec<&str> = s.client.properties.keys().map(String::as_str).collect();
        assert_eq!(passed, ["bootstrap.servers", "security.protocol"]);
    }

    #[test]
    fn discovery_defaults_to_flinks_and_bounded_sources_discover_once() {
        let unbounded = base().topics(["a"]).build().unwrap();
        assert_eq!(
            unbounded.settings.discovery_interval,
            Some(DEFAULT_DISCOVERY_INTERVAL)
        );
        let bounded = base()
            .topics(["a"])
            .partition_discovery_interval(Some(Duration::from_millis(10)))
            .bounded(StoppingOffsets::Latest)
            .build()
            .unwrap();
        assert_eq!(bounded.settings.discovery_interval, None);
        let off = base()
            .topics(["a"])
            .property("partition.discovery.interval.ms", "0")
            .build()
            .unwrap();
        assert_eq!(off.settings.discovery_interval, None);
    }

    #[test]
    fn patterns_match_whole_topic_names() {
        let source = base().topic_pattern("orders-[0-9]+").build().unwrap();
        let Subscription::Pattern(re) = &source.settings.subscription else {
            panic!("a pattern")
        };
        assert!(re.is_match("orders-12"));
        assert!(!re.is_match("orders-12-dlq"));
        assert!(!re.is_match("old-orders-1"));
    }
}
