//! The reader of one parallel instance of a [`KafkaSource`](super::KafkaSource): discovers and
//! assigns itself partitions, fetches, deserializes, generates watermarks per partition,
//! snapshots its splits and commits offsets when checkpoints complete.

use super::assign::owner_of;
use super::dead_letter::DeadLetters;
use super::metrics::ReaderMetrics;
use super::offsets::{OffsetReset, OffsetsInitializer, StoppingOffsets};
use super::split::KafkaSplit;
use super::watermarks::{SplitWatermarks, Update};
use super::{OnMalformed, Settings, Subscription};
use crate::client::{
    ClusterMetadata, FetchOptions, FetchedPartition, KafkaClient, OffsetSpec, TopicPartition,
};
use crate::error::KafkaError;
use crate::format::KafkaRecord;
use fjord::sources::{SourceError, SourceOutput, SourceReader, SourceStatus};
use fjord::time::{Clock, SystemClock};
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Checkpoints whose offsets are kept for committing; older ones are dropped (a checkpoint
/// that never completes must not make the map grow).
const MAX_PENDING_COMMITS: usize = 64;

/// What the reader needs from Kafka: the client's calls, behind a trait so the assignment and
/// restore logic can be unit-tested against an in-memory log.
pub(crate) trait Cluster: Send {
    fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata, KafkaError>;
    fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError>;
    fn fetch(
        &mut self,
        positions: &BTreeMap<TopicPartition, i64>,
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>, KafkaError>;
    fn committed_offsets(
        &mut self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, KafkaError>;
    fn commit_offsets(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), KafkaError>;
}

impl Cluster for KafkaClient {
    fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata, KafkaError> {
        KafkaClient::metadata(self, topics)
    }
    fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
        KafkaClient::list_offsets(self, partitions, spec)
    }
    fn fetch(
        &mut self,
        positions: &BTreeMap<TopicPartition, i64>,
        options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>, KafkaError> {
        KafkaClient::fetch(self, positions, options)
    }
    fn committed_offsets(
        &mut self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, KafkaError> {
        KafkaClient::committed_offsets(self, group_id, partitions)
    }
    fn commit_offsets(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), KafkaError> {
        KafkaClient::commit_offsets(self, group_id, offsets)
    }
}

/// Where the reader emits: the engine's [`SourceOutput`], or a collector in unit tests.
pub(crate) trait Emit<T> {
    fn record(&mut self, value: T, timestamp: Timestamp);
    fn watermark(&mut self, watermark: Timestamp);
    fn status(&mut self, idle: bool);
    fn failed(&self) -> bool;
}

impl<T> Emit<T> for SourceOutput<'_, T> {
    fn record(&mut self, value: T, timestamp: Timestamp) {
        self.collect_with_timestamp(value, timestamp);
    }
    fn watermark(&mut self, watermark: Timestamp) {
        self.emit_watermark(watermark);
    }
    fn status(&mut self, idle: bool) {
        self.emit_watermark_status(idle);
    }
    fn failed(&self) -> bool {
        self.is_failed()
    }
}

fn apply<T>(update: Update, out: &mut dyn Emit<T>) {
    if let Some(idle) = update.status {
        out.status(idle);
    }
    if let Some(w) = update.watermark {
        out.watermark(w);
    }
}

/// Fetched records of one partition not emitted yet, and the index of the next one.
struct Pending {
    fetched: FetchedPartition,
    next: usize,
}

pub(crate) struct KafkaSourceReader<T> {
    settings: Arc<Settings<T>>,
    subtask: usize,
    parallelism: usize,
    pub(crate) cluster: Option<Box<dyn Cluster>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Partitions being read.
    splits: BTreeMap<TopicPartition, KafkaSplit>,
    /// Bounded mode: partitions read to their stopping offset (and that offset).
    finished: BTreeMap<TopicPartition, i64>,
    /// Partitions some reader held at the restored checkpoint (the union state): never
    /// assigned again by discovery.
    assigned_before: BTreeSet<TopicPartition>,
    restored: bool,
    discovered: bool,
    next_discovery: Option<Timestamp>,
    buffer: VecDeque<Pending>,
    pending_commits: BTreeMap<u64, BTreeMap<TopicPartition, i64>>,
    watermarks: Option<SplitWatermarks<T>>,
    pub(crate) metrics: Option<ReaderMetrics>,
    missing_topics: BTreeSet<String>,
    skipped: u64,
    /// `OnMalformed::DeadLetterTopic`: the producer of the letters.
    dead_letters: Option<DeadLetters>,
}

impl<T: Send + 'static> KafkaSourceReader<T> {
    pub(crate) fn new(settings: Arc<Settings<T>>, subtask: usize, parallelism: usize) -> Self {
        let dead_letters = match &settings.on_malformed {
            OnMalformed::DeadLetterTopic(topic) => {
                let mut config = settings.client.clone();
                if let Some(prefix) = &settings.client_id_prefix {
                    config
                        .properties
                        .insert("client.id".into(), format!("{prefix}-{subtask}-dlq"));
                }
                Some(DeadLetters::new(topic.clone(), config))
            }
            _ => None,
        };
        KafkaSourceReader {
            dead_letters,
            settings,
            subtask,
            parallelism: parallelism.max(1),
            cluster: None,
            clock: Arc::new(SystemClock),
            splits: BTreeMap::new(),
            finished: BTreeMap::new(),
            assigned_before: BTreeSet::new(),
            restored: false,
            discovered: false,
            next_discovery: None,
            buffer: VecDeque::new(),
            pending_commits: BTreeMap::new(),
            watermarks: None,
            metrics: None,
            missing_topics: BTreeSet::new(),
            skipped: 0,
        }
    }

    fn where_(&self) -> String {
        let servers = self
            .settings
            .client
            .properties
            .get("bootstrap.servers")
            .map_or("", String::as_str);
        match &self.settings.subscription {
            Subscription::Topics(t) => format!("Kafka {servers} topics {}", t.join(",")),
            Subscription::Pattern(p) => format!("Kafka {servers} topic pattern {}", p.as_str()),
        }
    }

    fn connect(&mut self) -> Result<(), BoxError> {
        if self.cluster.is_some() {
            return Ok(());
        }
        let mut config = self.settings.client.clone();
        if let Some(prefix) = &self.settings.client_id_prefix {
            config
                .properties
                .insert("client.id".into(), format!("{prefix}-{}", self.subtask));
        }
        let client = KafkaClient::connect(&config)
            .map_err(|e| SourceError::boxed(self.where_(), e.to_string()))?;
        self.cluster = Some(Box::new(client));
        Ok(())
    }

    /// Prepares the reader (watermark generators from the job's interval) and makes the first
    /// discovery, so no checkpoint is ever taken before the initial assignment.
    pub(crate) fn start(&mut self, watermark_interval_ms: i64) -> Result<(), BoxError> {
        let now = self.clock.now();
        if let Some(strategy) = &self.settings.watermarks {
            let mut w = SplitWatermarks::new(strategy.clone(), watermark_interval_ms);
            for tp in self.splits.keys() {
                w.add_split(tp.clone(), now);
            }
            self.watermarks = Some(w);
        }
        self.discover(now)
    }

    /// Looks for partitions nobody holds that this reader owns, and starts reading them.
    fn discover(&mut self, now: Timestamp) -> Result<(), BoxError> {
        let where_ = self.where_();
        let fail =
            |what: &str, e: KafkaError| SourceError::boxed(where_.clone(), format!("{what}: {e}"));
        let settings = self.settings.clone();
        let cluster = self.cluster.as_mut().expect("connected before discovery");
        let topics: BTreeMap<String, i32> = match &settings.subscription {
            Subscription::Topics(list) => {
                let meta = cluster
                    .metadata(Some(list))
                    .map_err(|e| fail("partition discovery failed", e))?;
                for t in list {
                    if !meta.topics.contains_key(t) && self.missing_topics.insert(t.clone()) {
                        tracing::warn!(topic = %t, "Kafka source: topic does not exist (yet); it is read once it exists and partition discovery runs");
                    }
                }
                meta.topics
            }
            Subscription::Pattern(re) => cluster
                .metadata(None)
                .map_err(|e| fail("partition discovery failed", e))?
                .topics
                .into_iter()
                .filter(|(t, _)| re.is_match(t))
                .collect(),
        };
        self.next_discovery = settings
            .discovery_interval
            .map(|d| now + d.as_millis() as Timestamp);
        let initial = !self.restored && !self.discovered;
        self.discovered = true;
        let new: Vec<TopicPartition> = topics
            .iter()
            .flat_map(|(topic, count)| {
                (0..*count).map(move |partition| TopicPartition {
                    topic: topic.clone(),
                    partition,
                })
            })
            .filter(|tp| {
                owner_of(&tp.topic, tp.partition, self.parallelism) == self.subtask
                    && !self.splits.contains_key(tp)
                    && !self.finished.contains_key(tp)
                    && !self.assigned_before.contains(tp)
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let starting = if initial {
            settings.starting.clone()
        } else {
            OffsetsInitializer::Earliest
        };
        let starts = resolve_start(
            &mut **cluster,
            &starting,
            settings.group_id.as_deref(),
            &new,
        )
        .map_err(|e| fail("cannot resolve starting offsets", e))?;
        let stops = match &settings.stopping {
            None => BTreeMap::new(),
            Some(stopping) => resolve_stop(&mut **cluster, stopping, &new)
                .map_err(|e| fail("cannot resolve stopping offsets", e))?,
        };
        tracing::info!(
            subtask = self.subtask,
            partitions = ?new,
            "Kafka source: assigned new partitions"
        );
        for tp in new {
            let Some(next_offset) = starts.get(&tp).copied() else {
                return Err(SourceError::boxed(
                    tp_position(&tp),
                    "the broker returned no starting offset for this partition; check that it has a leader",
                ));
            };
            let stopping_offset = stops.get(&tp).copied();
            let split = KafkaSplit {
                partition: tp,
                next_offset,
                stopping_offset,
            };
            self.add_split(split, now);
        }
        Ok(())
    }

    fn add_split(&mut self, split: KafkaSplit, now: Timestamp) {
        if split.is_finished() {
            self.finished
                .insert(split.partition.clone(), split.next_offset);
            return;
        }
        if let Some(w) = &mut self.watermarks {
            w.add_split(split.partition.clone(), now);
        }
        self.splits.insert(split.partition.clone(), split);
    }

    /// One poll: discovery when due, a fetch when nothing is buffered, up to a batch of
    /// records, then periodic watermarks when due.
    pub(crate) fn poll(&mut self, out: &mut dyn Emit<T>) -> Result<SourceStatus, BoxError> {
        let now = self.clock.now();
        if self.next_discovery.is_some_and(|t| now >= t) {
            self.discover(now)?;
        }
        let status = self.read(out)?;
        if let Some(w) = &mut self.watermarks {
            apply(w.on_periodic(now), out);
        }
        Ok(status)
    }

    fn read(&mut self, out: &mut dyn Emit<T>) -> Result<SourceStatus, BoxError> {
        let bounded = self.settings.stopping.is_some();
        if self.buffer.is_empty() {
            if self.splits.is_empty() {
                if bounded {
                    return Ok(SourceStatus::Finished);
                }
                // Nothing assigned (yet): wait as long as a fetch would, then poll again.
                let wait = self.settings.fetch.max_wait;
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                return Ok(SourceStatus::NothingAvailable);
            }
            self.fetch()?;
        }
        let emitted = self.emit_batch(out)?;
        self.send_dead_letters(false)?;
        self.retire_finished(out);
        if bounded && self.splits.is_empty() && self.buffer.is_empty() {
            return Ok(SourceStatus::Finished);
        }
        Ok(if emitted > 0 || !self.buffer.is_empty() {
            SourceStatus::MoreAvailable
        } else {
            SourceStatus::NothingAvailable
        })
    }

    fn fetch(&mut self) -> Result<(), BoxError> {
        let positions: BTreeMap<TopicPartition, i64> = self
            .splits
            .iter()
            .map(|(tp, s)| (tp.clone(), s.next_offset))
            .collect();
        let where_ = self.where_();
        let cluster = self.cluster.as_mut().expect("connected before polling");
        let fetched = cluster
            .fetch(&positions, &self.settings.fetch)
            .map_err(|e| SourceError::boxed(where_, format!("fetch failed: {e}")))?;
        for f in fetched {
            if let Some(m) = &mut self.metrics {
                let m = m.partition(&f.partition);
                m.bytes.add(f.bytes as u64);
                m.lag.set((f.high_watermark - f.next_offset).max(0) as u64);
            }
            if f.records.is_empty() {
                if let Some(split) = self.splits.get_mut(&f.partition) {
                    advance_past(split, f.next_offset);
                }
            } else {
                self.buffer.push_back(Pending {
                    fetched: f,
                    next: 0,
                });
            }
        }
        Ok(())
    }

    /// Hands queued dead letters to their producer; with `flush`, waits until Kafka has them.
    fn send_dead_letters(&mut self, flush: bool) -> Result<(), BoxError> {
        let Some(d) = &mut self.dead_letters else {
            return Ok(());
        };
        let result = if flush { d.flush() } else { d.send() };
        let topic = d.topic().to_string();
        result.map_err(|e| {
            SourceError::boxed(
                self.where_(),
                format!(
                    "writing malformed records to the dead-letter topic {topic} failed: {e}; create the topic (or fix the broker) and restart the job"
                ),
            )
        })
    }

    fn emit_batch(&mut self, out: &mut dyn Emit<T>) -> Result<usize, BoxError> {
        let KafkaSourceReader {
            settings,
            splits,
            buffer,
            watermarks,
            metrics,
            skipped,
            dead_letters,
            ..
        } = self;
        let limit = settings.batch;
        let mut emitted = 0;
        while emitted < limit && !out.failed() {
            let Some(pending) = buffer.front_mut() else {
                break;
            };
            let tp = &pending.fetched.partition;
            let Some(split) = splits.get_mut(tp) else {
                buffer.pop_front();
                continue;
            };
            let partition_metrics = metrics.as_mut().map(|m| m.partition(tp));
            let records = &pending.fetched.records;
            while pending.next < records.len() && emitted < limit && !out.failed() {
                let r = &records[pending.next];
                pending.next += 1;
                if split.stopping_offset.is_some_and(|stop| r.offset >= stop) {
                    pending.next = records.len();
                    break;
                }
                if r.offset < split.next_offset {
                    continue; // Kafka returns whole batches; skip what is before the position.
                }
                let record = KafkaRecord {
                    topic: &tp.topic,
                    partition: tp.partition,
                    offset: r.offset,
                    timestamp: r.timestamp,
                    key: r.key.as_deref(),
                    value: r.value.as_deref(),
                    headers: &r.headers,
                };
                match settings.deserializer.deserialize(&record) {
                    Ok(Some(value)) => match watermarks {
                        Some(w) => {
                            let ts = w.timestamp(&value, r.timestamp);
                            let update = w.on_event(tp, &value, ts);
                            if let Some(idle) = update.status {
                                out.status(idle);
                            }
                            out.record(value, ts);
                            if let Some(wm) = update.watermark {
                                out.watermark(wm);
                            }
                        }
                        None => out.record(value, r.timestamp),
                    },
                    Ok(None) => {}
                    Err(e) => match &settings.on_malformed {
                        OnMalformed::Fail => {
                            return Err(SourceError::boxed(
                                record.position(),
                                format!(
                                    "malformed record in topic {}, partition {}, offset {}: {e}; fix the producer, or skip such records with .on_malformed(OnMalformed::Skip) or send them to a dead-letter topic with .on_malformed(OnMalformed::DeadLetterTopic(topic))",
                                    tp.topic, tp.partition, r.offset
                                ),
                            ));
                        }
                        OnMalformed::Skip => {
                            if let Some(m) = metrics {
                                m.malformed_skipped.inc();
                            }
                            if (*skipped).is_multiple_of(1000) {
                                tracing::warn!(position = %record.position(), error = %e, skipped = *skipped + 1, "Kafka source: skipping malformed record");
                            }
                            *skipped += 1;
                        }
                        OnMalformed::DeadLetterTopic(_) => {
                            if let Some(d) = dead_letters.as_mut() {
                                d.push(tp, r, &e.to_string());
                            }
                            if let Some(m) = metrics {
                                m.malformed_dead_lettered.inc();
                            }
                        }
                    },
                }
                split.next_offset = r.offset + 1;
                if let Some(m) = &partition_metrics {
                    m.records.inc();
                }
                emitted += 1;
            }
            if pending.next >= records.len() {
                advance_past(split, pending.fetched.next_offset);
                if let Some(m) = &partition_metrics {
                    m.current_offset.set(split.next_offset.max(0) as u64);
                }
                buffer.pop_front();
            }
        }
        Ok(emitted)
    }

    /// Bounded mode: splits read to their stopping offset stop holding back the watermark.
    fn retire_finished(&mut self, out: &mut dyn Emit<T>) {
        let done: Vec<TopicPartition> = self
            .splits
            .iter()
            .filter(|(_, s)| s.is_finished())
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in done {
            if let Some(split) = self.splits.remove(&tp) {
                self.finished.insert(tp.clone(), split.next_offset);
            }
            self.buffer.retain(|p| p.fetched.partition != tp);
            if let Some(w) = &mut self.watermarks {
                apply(w.remove_split(&tp), out);
            }
        }
    }

    fn commit(&mut self, checkpoint_id: u64) {
        let offsets = self.pending_commits.remove(&checkpoint_id);
        self.pending_commits.retain(|id, _| *id > checkpoint_id);
        let (Some(offsets), Some(group), true) = (
            offsets,
            self.settings.group_id.as_deref(),
            self.settings.commit_offsets,
        ) else {
            return;
        };
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if offsets.is_empty() {
            return;
        }
        match cluster.commit_offsets(group, &offsets) {
            Ok(()) => {
                if let Some(m) = &mut self.metrics {
                    m.commits_succeeded.inc();
                    for (tp, offset) in &offsets {
                        m.partition(tp)
                            .committed_offset
                            .set((*offset).max(0) as u64);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(group, checkpoint_id, error = %e, "Kafka source: committing offsets to the consumer group failed; the job goes on (the checkpoint holds the offsets), monitoring shows older offsets");
                if let Some(m) = &mut self.metrics {
                    m.commits_failed.inc();
                }
            }
        }
    }
}

/// Moves a split to `next` (past control records or records of aborted transactions), never
/// past its stopping offset.
fn advance_past(split: &mut KafkaSplit, next: i64) {
    let next = match split.stopping_offset {
        Some(stop) => next.min(stop),
        None => next,
    };
    split.next_offset = split.next_offset.max(next);
}

fn tp_position(tp: &TopicPartition) -> String {
    format!("{}-{}", tp.topic, tp.partition)
}

fn reset_spec(reset: OffsetReset) -> OffsetSpec {
    match reset {
        OffsetReset::Earliest => OffsetSpec::Earliest,
        OffsetReset::Latest => OffsetSpec::Latest,
    }
}

/// Offsets from the group's committed ones, `reset` where there are none.
fn committed_or(
    cluster: &mut dyn Cluster,
    group: Option<&str>,
    partitions: &[TopicPartition],
    reset: OffsetReset,
) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    match group {
        Some(group) => {
            let committed = cluster.committed_offsets(group, partitions)?;
            for tp in partitions {
                match committed.get(tp).copied().flatten() {
                    Some(o) if o >= 0 => {
                        out.insert(tp.clone(), o);
                    }
                    _ => missing.push(tp.clone()),
                }
            }
        }
        None => missing.extend(partitions.iter().cloned()),
    }
    if !missing.is_empty() {
        out.extend(cluster.list_offsets(&missing, reset_spec(reset))?);
    }
    Ok(out)
}

/// The offsets to start `partitions` at.
fn resolve_start(
    cluster: &mut dyn Cluster,
    starting: &OffsetsInitializer,
    group: Option<&str>,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
    match starting {
        OffsetsInitializer::Earliest => cluster.list_offsets(partitions, OffsetSpec::Earliest),
        OffsetsInitializer::Latest => cluster.list_offsets(partitions, OffsetSpec::Latest),
        OffsetsInitializer::Timestamp(ts) => {
            cluster.list_offsets(partitions, OffsetSpec::Timestamp(*ts))
        }
        OffsetsInitializer::Committed { reset } => committed_or(cluster, group, partitions, *reset),
        OffsetsInitializer::Offsets(map) => {
            let (given, rest): (Vec<_>, Vec<_>) = partitions
                .iter()
                .cloned()
                .partition(|tp| map.contains_key(tp));
            let mut out: BTreeMap<TopicPartition, i64> =
                given.into_iter().map(|tp| (tp.clone(), map[&tp])).collect();
            if !rest.is_empty() {
                out.extend(committed_or(cluster, group, &rest, OffsetReset::Earliest)?);
            }
            Ok(out)
        }
    }
}

/// The offsets to stop `partitions` at.
fn resolve_stop(
    cluster: &mut dyn Cluster,
    stopping: &StoppingOffsets,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
    let (mut out, rest) = match stopping {
        StoppingOffsets::Latest => (BTreeMap::new(), partitions.to_vec()),
        StoppingOffsets::Offsets(map) => {
            let (given, rest): (Vec<_>, Vec<_>) = partitions
                .iter()
                .cloned()
                .partition(|tp| map.contains_key(tp));
            (
                given.into_iter().map(|tp| (tp.clone(), map[&tp])).collect(),
                rest,
            )
        }
    };
    if !rest.is_empty() {
        out.extend(cluster.list_offsets(&rest, OffsetSpec::Latest)?);
    }
    Ok(out)
}

impl<T: Send + 'static> SourceReader<T> for KafkaSourceReader<T> {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.clock = ctx.clock();
        self.metrics = Some(ReaderMetrics::new(ctx));
        self.connect()?;
        self.start(ctx.auto_watermark_interval().as_millis() as i64)
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        self.poll(output)
    }

    fn snapshot_splits(&mut self, checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        // The checkpoint's offsets are past the malformed records read so far: their letters
        // must be in Kafka before it can complete.
        self.send_dead_letters(true)?;
        let mut offsets: BTreeMap<TopicPartition, i64> = self.finished.clone();
        offsets.extend(
            self.splits
                .iter()
                .map(|(tp, s)| (tp.clone(), s.next_offset)),
        );
        self.pending_commits.insert(checkpoint_id, offsets);
        while self.pending_commits.len() > MAX_PENDING_COMMITS {
            self.pending_commits.pop_first();
        }
        Ok(Some(self.splits.values().map(KafkaSplit::encode).collect()))
    }

    fn snapshot_union_state(&mut self, _checkpoint_id: u64) -> Result<Vec<Vec<u8>>, BoxError> {
        let all: BTreeSet<&TopicPartition> = self
            .splits
            .keys()
            .chain(self.finished.keys())
            .chain(self.assigned_before.iter())
            .collect();
        all.into_iter()
            .map(|tp| fjord::encoding::to_vec(tp).map_err(Into::into))
            .collect()
    }

    fn restore_union_state(&mut self, items: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.restored = true;
        for item in items {
            self.assigned_before
                .insert(fjord::encoding::from_slice(&item)?);
        }
        Ok(())
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.restored = true;
        self.buffer.clear();
        self.splits.clear();
        for bytes in splits {
            let split = KafkaSplit::decode(&bytes)?;
            if split.is_finished() {
                self.finished
                    .insert(split.partition.clone(), split.next_offset);
            } else {
                self.splits.insert(split.partition.clone(), split);
            }
        }
        Ok(())
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: u64) -> Result<(), BoxError> {
        self.commit(checkpoint_id);
        Ok(())
    }

    fn notify_checkpoint_aborted(&mut self, checkpoint_id: u64) -> Result<(), BoxError> {
        self.pending_commits.remove(&checkpoint_id);
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.cluster = None;
        self.buffer.clear();
        // At the end of a bounded input nothing else flushes the last letters.
        self.send_dead_letters(true)
    }
}

#[cfg(test)]
mod tests;
