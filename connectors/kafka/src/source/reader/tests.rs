//! The reader's logic (assignment, discovery, restore at another parallelism, bounded mode,
//! offsets, malformed records, per-partition watermarks) against an in-memory log standing
//! in for the broker. The same behaviour against a real broker is in `tests/source*.rs`.

use super::*;
use crate::format::{Utf8, value_only};
use crate::source::{KafkaSource, OnMalformed};
use fjord::metrics::MetricRegistry;
use fjord::state::{redistribute_even_split, redistribute_union};
use fjord::time::{ManualClock, WatermarkStrategy};
use parking_lot::Mutex;
use std::time::Duration;

/// Records (timestamp, value) per partition, committed offsets per group.
#[derive(Default)]
struct Log {
    partitions: BTreeMap<TopicPartition, Vec<(i64, Vec<u8>)>>,
    committed: BTreeMap<(String, TopicPartition), i64>,
    fail_commits: bool,
}

#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Log>>);

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition {
        topic: topic.into(),
        partition,
    }
}

impl Memory {
    /// Creates `topic` with `partitions` partitions, or grows it to that many.
    fn topic(&self, topic: &str, partitions: i32) {
        let mut log = self.0.lock();
        for p in 0..partitions {
            log.partitions.entry(tp(topic, p)).or_default();
        }
    }

    /// Appends `value` with timestamp `ts`.
    fn append(&self, topic: &str, partition: i32, ts: i64, value: &str) {
        self.0
            .lock()
            .partitions
            .get_mut(&tp(topic, partition))
            .expect("partition exists")
            .push((ts, value.as_bytes().to_vec()));
    }

    /// Appends `n` values `"{topic}/{partition}/{i}"` to every partition of `topic`.
    fn fill(&self, topic: &str, n: usize) {
        let parts: Vec<TopicPartition> = self
            .0
            .lock()
            .partitions
            .keys()
            .filter(|t| t.topic == topic)
            .cloned()
            .collect();
        for t in parts {
            let len = self.0.lock().partitions[&t].len();
            for i in len..len + n {
                self.append(
                    topic,
                    t.partition,
                    1000 + i as i64,
                    &format!("{topic}/{}/{i}", t.partition),
                );
            }
        }
    }

    fn all_values(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .0
            .lock()
            .partitions
            .values()
            .flatten()
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
            .collect();
        all.sort();
        all
    }
}

impl Cluster for Memory {
    fn metadata(&mut self, topics: Option<&[String]>) -> Result<ClusterMetadata, KafkaError> {
        let log = self.0.lock();
        let mut out = ClusterMetadata::default();
        for t in log.partitions.keys() {
            if topics.is_none_or(|list| list.contains(&t.topic)) {
                *out.topics.entry(t.topic.clone()).or_default() += 1;
            }
        }
        Ok(out)
    }

    fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, KafkaError> {
        let log = self.0.lock();
        Ok(partitions
            .iter()
            .map(|t| {
                let records = &log.partitions[t];
                let offset = match spec {
                    OffsetSpec::Earliest => 0,
                    OffsetSpec::Latest => records.len(),
                    OffsetSpec::Timestamp(ts) => records
                        .iter()
                        .position(|(t, _)| *t >= ts)
                        .unwrap_or(records.len()),
                };
                (t.clone(), offset as i64)
            })
            .collect())
    }

    fn fetch(
        &mut self,
        positions: &BTreeMap<TopicPartition, i64>,
        _options: &FetchOptions,
    ) -> Result<Vec<FetchedPartition>, KafkaError> {
        let log = self.0.lock();
        Ok(positions
            .iter()
            .map(|(t, offset)| {
                let all = &log.partitions[t];
                // At most 7 records per partition and fetch, so batches end mid-partition.
                let records: Vec<crate::client::ConsumerRecord> = all
                    .iter()
                    .enumerate()
                    .skip(*offset as usize)
                    .take(7)
                    .map(|(i, (ts, v))| crate::client::ConsumerRecord {
                        offset: i as i64,
                        timestamp: *ts,
                        key: None,
                        value: Some(bytes::Bytes::from(v.clone())),
                        headers: Vec::new(),
                    })
                    .collect();
                FetchedPartition {
                    partition: t.clone(),
                    next_offset: offset + records.len() as i64,
                    bytes: records
                        .iter()
                        .map(|r| r.value.as_ref().unwrap().len())
                        .sum(),
                    records,
                    high_watermark: all.len() as i64,
                    last_stable_offset: all.len() as i64,
                }
            })
            .collect())
    }

    fn committed_offsets(
        &mut self,
        group_id: &str,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>, KafkaError> {
        let log = self.0.lock();
        Ok(partitions
            .iter()
            .map(|t| {
                let c = log
                    .committed
                    .get(&(group_id.to_string(), t.clone()))
                    .copied();
                (t.clone(), c)
            })
            .collect())
    }

    fn commit_offsets(
        &mut self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), KafkaError> {
        let mut log = self.0.lock();
        if log.fail_commits {
            return Err(KafkaError::Broker {
                api: "OffsetCommit",
                target: group_id.into(),
                code: 15,
                code_name: "COORDINATOR_NOT_AVAILABLE".into(),
                hint: String::new(),
            });
        }
        for (t, o) in offsets {
            log.committed.insert((group_id.to_string(), t.clone()), *o);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Record(String, i64),
    Watermark(i64),
    Idle(bool),
}

#[derive(Default)]
struct Collect(Vec<Event>);

impl Collect {
    fn values(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Event::Record(v, _) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }
    fn watermarks(&self) -> Vec<i64> {
        self.0
            .iter()
            .filter_map(|e| match e {
                Event::Watermark(w) => Some(*w),
                _ => None,
            })
            .collect()
    }
}

impl Emit<String> for Collect {
    fn record(&mut self, value: String, timestamp: Timestamp) {
        self.0.push(Event::Record(value, timestamp));
    }
    fn watermark(&mut self, watermark: Timestamp) {
        self.0.push(Event::Watermark(watermark));
    }
    fn status(&mut self, idle: bool) {
        self.0.push(Event::Idle(idle));
    }
    fn failed(&self) -> bool {
        false
    }
}

fn builder() -> crate::source::KafkaSourceBuilder<String> {
    KafkaSource::builder()
        .bootstrap_servers("memory:0")
        .deserializer(value_only(Utf8))
        .property("fetch.max.wait.ms", "0")
        .property("max.poll.records", "10")
}

struct Harness {
    log: Memory,
    clock: ManualClock,
    registry: MetricRegistry,
}

impl Harness {
    fn new() -> Self {
        Harness {
            log: Memory::default(),
            clock: ManualClock::new(1_000_000),
            registry: MetricRegistry::default(),
        }
    }

    /// A reader that is not started yet (restore it first, if needed).
    fn reader(
        &self,
        source: &KafkaSource<String>,
        subtask: usize,
        parallelism: usize,
    ) -> KafkaSourceReader<String> {
        let mut r = KafkaSourceReader::new(source.settings.clone(), subtask, parallelism);
        r.cluster = Some(Box::new(self.log.clone()));
        r.clock = Arc::new(self.clock.clone());
        r.metrics = Some(ReaderMetrics::in_registry(
            &self.registry,
            &format!("src ({}/{parallelism})", subtask + 1),
        ));
        r
    }

    fn started(
        &self,
        source: &KafkaSource<String>,
        subtask: usize,
        parallelism: usize,
    ) -> KafkaSourceReader<String> {
        let mut r = self.reader(source, subtask, parallelism);
        r.start(100).unwrap();
        r
    }
}

/// Polls until the reader finishes (bounded) or `polls` polls found nothing in a row.
fn drain(reader: &mut KafkaSourceReader<String>, out: &mut Collect) -> SourceStatus {
    let mut quiet = 0;
    for _ in 0..10_000 {
        match reader.poll(out).unwrap() {
            SourceStatus::Finished => return SourceStatus::Finished,
            SourceStatus::NothingAvailable => {
                quiet += 1;
                if quiet == 3 {
                    return SourceStatus::NothingAvailable;
                }
            }
            SourceStatus::MoreAvailable => quiet = 0,
        }
    }
    panic!("the reader never settled");
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn bounded_readers_read_every_record_once_from_their_own_partitions() {
    let h = Harness::new();
    h.log.topic("orders", 5);
    h.log.topic("clicks", 2);
    h.log.fill("orders", 23);
    h.log.fill("clicks", 4);
    let source = builder()
        .topics(["orders", "clicks"])
        .bounded(StoppingOffsets::Latest)
        .build()
        .unwrap();
    let mut all = Vec::new();
    for subtask in 0..3 {
        let mut reader = h.started(&source, subtask, 3);
        let mut out = Collect::default();
        assert_eq!(drain(&mut reader, &mut out), SourceStatus::Finished);
        for v in out.values() {
            let mut parts = v.split('/');
            let (topic, partition) = (parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(
                owner_of(topic, partition.parse().unwrap(), 3),
                subtask,
                "{v} read by subtask {subtask}"
            );
        }
        all.extend(out.values());
    }
    assert_eq!(sorted(all), h.log.all_values());
    // Records appended after the stopping offsets were resolved are not read.
    let mut reader = h.started(&source, 0, 1);
    h.log.fill("orders", 1);
    let mut out = Collect::default();
    assert_eq!(drain(&mut reader, &mut out), SourceStatus::Finished);
    assert_eq!(out.values().len(), 5 * 23 + 2 * 4);
    let scope = "src (1/1)";
    let records: u64 = (0..5)
        .map(|p| {
            h.registry
                .snapshot()
                .get(&format!(
                    "{scope}.{}",
                    super::super::metrics::partition_metric("orders", p, "records")
                ))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(records, 5 * 23, "per-partition record counters");
}

#[test]
fn discovery_picks_up_new_partitions_and_topics_from_earliest() {
    let h = Harness::new();
    h.log.topic("in-a", 2);
    h.log.fill("in-a", 5);
    let source = builder()
        .topic_pattern("in-.*")
        .starting_offsets(OffsetsInitializer::Latest)
        .partition_discovery_interval(Some(Duration::from_secs(10)))
        .build()
        .unwrap();
    let mut reader = h.started(&source, 0, 1);
    let mut out = Collect::default();
    drain(&mut reader, &mut out);
    assert!(out.values().is_empty(), "started at latest");
    h.log.fill("in-a", 1);
    h.log.topic("in-a", 3); // a new partition
    h.log.topic("in-b", 1); // a new topic
    h.log.topic("other", 1); // not matching
    h.log.fill("in-a", 2);
    h.log.fill("in-b", 2);
    h.log.fill("other", 2);
    drain(&mut reader, &mut out);
    assert_eq!(
        sorted(out.values()),
        [
            "in-a/0/5", "in-a/0/6", "in-a/0/7", "in-a/1/5", "in-a/1/6", "in-a/1/7"
        ],
        "before the next discovery only the old partitions"
    );
    h.clock.advance(10_000);
    let mut out = Collect::default();
    drain(&mut reader, &mut out);
    assert_eq!(
        sorted(out.values()),
        ["in-a/2/0", "in-a/2/1", "in-b/0/0", "in-b/0/1"],
        "new partitions and topics from their earliest offset"
    );
}

/// A reader's snapshot: its splits and its union list.
type Snapshot = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// Snapshots of readers: (splits, union) each.
fn snapshot(readers: &mut [KafkaSourceReader<String>], id: u64) -> Vec<Snapshot> {
    readers
        .iter_mut()
        .map(|r| {
            (
                r.snapshot_splits(id).unwrap().unwrap(),
                r.snapshot_union_state(id).unwrap(),
            )
        })
        .collect()
}

/// New readers at `parallelism` restored from `snap` as the engine does it (even split of the
/// splits, union of the union lists, also at the same parallelism).
fn restore(
    h: &Harness,
    source: &KafkaSource<String>,
    snap: Vec<Snapshot>,
    parallelism: usize,
) -> Vec<KafkaSourceReader<String>> {
    let (splits, unions): (Vec<_>, Vec<_>) = snap.into_iter().unzip();
    let splits = if splits.len() == parallelism {
        splits
    } else {
        redistribute_even_split(&splits, parallelism)
    };
    let unions = redistribute_union(&unions, parallelism);
    splits
        .into_iter()
        .zip(unions)
        .enumerate()
        .map(|(i, (s, u))| {
            let mut r = h.reader(source, i, parallelism);
            r.restore_union_state(u).unwrap();
            r.restore_splits(s).unwrap();
            r.start(100).unwrap();
            r
        })
        .collect()
}

#[test]
fn restores_at_other_parallelisms_read_every_record_exactly_once() {
    let h = Harness::new();
    h.log.topic("t", 5);
    h.log.fill("t", 30);
    let source = builder()
        .topics(["t"])
        .partition_discovery_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    // Two readers read part of it; the checkpoint holds what they emitted until then.
    let mut readers: Vec<_> = (0..2).map(|i| h.started(&source, i, 2)).collect();
    let mut committed = Vec::new();
    for r in &mut readers {
        let mut out = Collect::default();
        for _ in 0..3 {
            r.poll(&mut out).unwrap();
        }
        committed.extend(out.values());
    }
    let snap = snapshot(&mut readers, 1);
    // After the checkpoint they read on (lost in the failure) and a partition is added.
    for r in &mut readers {
        drain(r, &mut Collect::default());
    }
    h.log.topic("t", 7);
    h.log.fill("t", 4);
    // Restore at 3, read a bit, checkpoint, restore at 3 again (union lists must still reach
    // everyone), then at 1; then everything is read.
    let mut readers = restore(&h, &source, snap, 3);
    for r in &mut readers {
        let mut out = Collect::default();
        r.poll(&mut out).unwrap();
        committed.extend(out.values());
    }
    let snap = snapshot(&mut readers, 2);
    let mut readers = restore(&h, &source, snap, 3);
    for r in &mut readers {
        let mut out = Collect::default();
        r.poll(&mut out).unwrap();
        r.poll(&mut out).unwrap();
        committed.extend(out.values());
    }
    let snap = snapshot(&mut readers, 3);
    h.log.topic("t", 8);
    h.log.fill("t", 1);
    let mut readers = restore(&h, &source, snap, 1);
    h.clock.advance(1_000);
    let mut out = Collect::default();
    drain(&mut readers[0], &mut out);
    committed.extend(out.values());
    assert_eq!(sorted(committed), h.log.all_values());
}

#[test]
fn offsets_are_committed_when_checkpoints_complete_and_failures_only_counted() {
    let h = Harness::new();
    h.log.topic("t", 2);
    h.log.fill("t", 10);
    let source = builder().topics(["t"]).group_id("g").build().unwrap();
    let mut reader = h.started(&source, 0, 1);
    let mut out = Collect::default();
    reader.poll(&mut out).unwrap(); // 10 records (max.poll.records)
    reader.snapshot_splits(1).unwrap();
    drain(&mut reader, &mut out);
    reader.snapshot_splits(2).unwrap();
    assert!(
        h.log.0.lock().committed.is_empty(),
        "nothing before completion"
    );
    reader.notify_checkpoint_complete(1).unwrap();
    let committed: i64 = h.log.0.lock().committed.values().sum();
    assert_eq!(committed, 10, "the offsets of checkpoint 1");
    h.log.0.lock().fail_commits = true;
    reader.notify_checkpoint_complete(2).unwrap();
    h.log.0.lock().fail_commits = false;
    let m = h.registry.snapshot();
    assert_eq!(m["src (1/1).KafkaSourceReader.commitsSucceeded"], 1);
    assert_eq!(m["src (1/1).KafkaSourceReader.commitsFailed"], 1);
    let lag: u64 = (0..2)
        .map(|p| {
            m[&format!(
                "src (1/1).{}",
                super::super::metrics::partition_metric("t", p, "lag")
            )]
        })
        .sum();
    assert_eq!(lag, 0, "everything read");
    // A fresh run of the group starts where the committed offsets are.
    let resumed = builder()
        .topics(["t"])
        .group_id("g")
        .starting_offsets(OffsetsInitializer::Committed {
            reset: OffsetReset::Latest,
        })
        .bounded(StoppingOffsets::Latest)
        .build()
        .unwrap();
    let mut reader = h.started(&resumed, 0, 1);
    let mut out = Collect::default();
    drain(&mut reader, &mut out);
    assert_eq!(out.values().len(), 20 - 10);
}

#[test]
fn starting_at_timestamps_and_explicit_offsets() {
    let h = Harness::new();
    h.log.topic("t", 2);
    h.log.fill("t", 10); // timestamps 1000..1009
    let by_time = builder()
        .topics(["t"])
        .starting_offsets(OffsetsInitializer::Timestamp(1007))
        .bounded(StoppingOffsets::Latest)
        .build()
        .unwrap();
    let mut out = Collect::default();
    drain(&mut h.started(&by_time, 0, 1), &mut out);
    assert_eq!(
        sorted(out.values()),
        ["t/0/7", "t/0/8", "t/0/9", "t/1/7", "t/1/8", "t/1/9"]
    );
    let explicit = builder()
        .topics(["t"])
        .starting_offsets(OffsetsInitializer::Offsets(BTreeMap::from([(
            tp("t", 1),
            8,
        )])))
        .bounded(StoppingOffsets::Offsets(BTreeMap::from([(tp("t", 0), 2)])))
        .build()
        .unwrap();
    let mut out = Collect::default();
    drain(&mut h.started(&explicit, 0, 1), &mut out);
    assert_eq!(sorted(out.values()), ["t/0/0", "t/0/1", "t/1/8", "t/1/9"]);
    // Records carry the Kafka timestamp as event time.
    assert!(out.0.contains(&Event::Record("t/1/9".into(), 1009)));
}

#[test]
fn malformed_records_fail_with_their_position_or_are_skipped_and_counted() {
    let h = Harness::new();
    h.log.topic("t", 1);
    h.log.append("t", 0, 1, "fine");
    h.log
        .0
        .lock()
        .partitions
        .get_mut(&tp("t", 0))
        .unwrap()
        .push((2, vec![0xff, 0xfe]));
    h.log.append("t", 0, 3, "also fine");
    let failing = builder()
        .topics(["t"])
        .bounded(StoppingOffsets::Latest)
        .build()
        .unwrap();
    let mut reader = h.started(&failing, 0, 1);
    let e = reader.poll(&mut Collect::default()).unwrap_err();
    let e = e.downcast::<SourceError>().unwrap();
    assert_eq!(e.position, "t-0@1");
    assert!(
        e.message.contains("topic t, partition 0, offset 1")
            && e.message.contains("not valid UTF-8"),
        "{}",
        e.message
    );
    let skipping = builder()
        .topics(["t"])
        .bounded(StoppingOffsets::Latest)
        .on_malformed(OnMalformed::Skip)
        .build()
        .unwrap();
    let mut out = Collect::default();
    drain(&mut h.started(&skipping, 0, 1), &mut out);
    assert_eq!(out.values(), ["fine", "also fine"]);
    assert_eq!(
        h.registry.snapshot()["src (1/1).KafkaSourceReader.malformedRecordsSkipped"],
        1
    );
}

#[test]
fn watermarks_per_partition_with_an_idle_partition() {
    let h = Harness::new();
    h.log.topic("t", 2);
    let source = builder()
        .topics(["t"])
        .watermark_strategy(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
                .with_idleness(Duration::from_secs(5)),
        )
        .build()
        .unwrap();
    let mut reader = h.started(&source, 0, 1);
    let mut out = Collect::default();
    // Partition 0 is ahead of partition 1: the reader follows the slower one.
    h.log.append("t", 0, 5000, "a");
    h.log.append("t", 1, 2000, "b");
    drain(&mut reader, &mut out);
    h.clock.advance(100);
    drain(&mut reader, &mut out);
    assert_eq!(out.watermarks(), [1999]);
    // Partition 1 gets nothing more; partition 0 goes on. Until the idleness timeout the
    // watermark stays; then partition 1 no longer holds it back.
    for i in 1..=60 {
        h.log.append("t", 0, 5000 + i * 100, "a");
        h.clock.advance(100);
        drain(&mut reader, &mut out);
        // Partition 1's last event was seen at the first periodic emission (clock + 0), so
        // it is idle from clock + 5000 on: iteration 49.
        let expected = if i < 49 { 1999 } else { 5000 + i * 100 - 1 };
        assert_eq!(
            *out.watermarks().last().unwrap(),
            expected,
            "after {i} periods"
        );
    }
    // Nothing anywhere for the timeout: the reader is idle; a record makes it active again.
    h.clock.advance(5_100);
    drain(&mut reader, &mut out);
    assert_eq!(out.0.last(), Some(&Event::Idle(true)));
    h.log.append("t", 1, 9000, "c");
    drain(&mut reader, &mut out);
    let tail = &out.0[out.0.len() - 2..];
    assert_eq!(tail, [Event::Idle(false), Event::Record("c".into(), 9000)]);
}
