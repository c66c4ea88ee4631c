//! The reader of one parallel instance of a [`KinesisSource`](super::KinesisSource): lists
//! shards and takes its own, reads them (parents before children) with GetRecords, emits with
//! per-shard watermarks, and snapshots the sequence number of the last record emitted.

use super::assign::owner_of;
use super::metrics::ReaderMetrics;
use super::split::{AssignedShard, KinesisShardSplit};
use super::watermarks::{SplitWatermarks, Update};
use super::{OnMalformed, Settings, StartingPosition};
use crate::client::{FetchedRecord, IteratorStart, KinesisClient, ShardInfo};
use crate::error::KinesisError;
use crate::record::KinesisRecord;
use fjord::sources::{SourceError, SourceOutput, SourceReader, SourceStatus};
use fjord::time::{Clock, SystemClock};
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Longest a poll sleeps when nothing is due.
const MAX_IDLE_SLEEP_MS: i64 = 50;
/// Backoff of a failing shard or listing: doubles from the first to the last.
const FIRST_BACKOFF_MS: i64 = 100;
const MAX_BACKOFF_MS: i64 = 5_000;

/// A shard being read.
struct ShardState {
    split: KinesisShardSplit,
    /// The iterator of the next GetRecords; `None` before the first (or after it expired).
    iterator: Option<String>,
    /// GetRecords gave no next iterator: once `buffer` is emitted, the shard is finished.
    at_end: bool,
    buffer: VecDeque<FetchedRecord>,
    /// Processing time (ms) before which the shard is not fetched again.
    next_fetch: Timestamp,
    backoff: i64,
}

impl ShardState {
    fn new(split: KinesisShardSplit) -> Self {
        ShardState {
            split,
            iterator: None,
            at_end: false,
            buffer: VecDeque::new(),
            next_fetch: Timestamp::MIN,
            backoff: 0,
        }
    }
}

pub(crate) struct KinesisSourceReader<T> {
    settings: Arc<Settings<T>>,
    subtask: usize,
    parallelism: usize,
    client: Option<KinesisClient>,
    clock: Arc<dyn Clock>,
    shards: BTreeMap<String, ShardState>,
    /// Shards this reader read to their end.
    finished: BTreeSet<String>,
    /// Shards some reader held at the restored checkpoint: never assigned again.
    assigned_before: BTreeSet<String>,
    /// Of those, the ones read to their end.
    finished_before: BTreeSet<String>,
    restored: bool,
    discovered: bool,
    next_discovery: Timestamp,
    discovery_backoff: i64,
    /// Since when calls fail (for the retry timeout), and the last error.
    failing_since: Option<Timestamp>,
    failures: u64,
    watermarks: Option<SplitWatermarks<T>>,
    metrics: Option<ReaderMetrics>,
    skipped: u64,
}

impl<T: Send + 'static> KinesisSourceReader<T> {
    pub(crate) fn new(settings: Arc<Settings<T>>, subtask: usize, parallelism: usize) -> Self {
        KinesisSourceReader {
            settings,
            subtask,
            parallelism: parallelism.max(1),
            client: None,
            clock: Arc::new(SystemClock),
            shards: BTreeMap::new(),
            finished: BTreeSet::new(),
            assigned_before: BTreeSet::new(),
            finished_before: BTreeSet::new(),
            restored: false,
            discovered: false,
            next_discovery: Timestamp::MIN,
            discovery_backoff: 0,
            failing_since: None,
            failures: 0,
            watermarks: None,
            metrics: None,
            skipped: 0,
        }
    }

    fn where_(&self) -> String {
        format!(
            "Kinesis stream {} at {}",
            self.settings.stream,
            self.settings.config.describe()
        )
    }

    /// A failed call: retried later if the error may pass and the retry timeout is not
    /// reached (returns the backoff to wait), else the job's error.
    fn on_error(&mut self, e: KinesisError, now: Timestamp, what: &str) -> Result<(), BoxError> {
        if !e.is_retryable() {
            return Err(SourceError::boxed(
                self.where_(),
                format!(
                    "{what}: {e}; the job fails (and restarts from its last checkpoint if it has a restart strategy)"
                ),
            ));
        }
        let since = *self.failing_since.get_or_insert(now);
        let limit = self.settings.retry_timeout.as_millis() as i64;
        if now - since >= limit {
            return Err(SourceError::boxed(
                self.where_(),
                format!(
                    "{what}: {e}; gave up after retrying for {} s (the source's retry timeout)",
                    limit / 1000
                ),
            ));
        }
        if self.failures.is_multiple_of(20) {
            tracing::warn!(subtask = self.subtask, error = %e, failures = self.failures + 1, "Kinesis source: {what}; retrying with backoff");
        }
        self.failures += 1;
        if let Some(m) = &self.metrics {
            m.retries.inc();
        }
        Ok(())
    }

    fn succeeded(&mut self) {
        if self.failing_since.take().is_some() {
            tracing::info!(
                subtask = self.subtask,
                failures = self.failures,
                "Kinesis source: calls succeed again"
            );
        }
        self.failures = 0;
    }

    /// Lists the shards and starts reading the ones this reader owns that nobody holds.
    fn discover(&mut self, now: Timestamp) -> Result<(), BoxError> {
        let client = self.client.as_ref().expect("opened before discovery");
        let listed = match client.list_shards(&self.settings.stream) {
            Ok(l) => l,
            Err(e) => {
                self.on_error(e, now, "listing the shards failed")?;
                self.discovery_backoff =
                    (self.discovery_backoff * 2).clamp(FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
                self.next_discovery = now + self.discovery_backoff;
                return Ok(());
            }
        };
        self.succeeded();
        self.discovery_backoff = 0;
        self.next_discovery = now + self.settings.discovery_interval.as_millis() as Timestamp;
        let shards: BTreeMap<String, ShardInfo> = listed
            .into_iter()
            .map(|s| (s.shard_id.clone(), s))
            .collect();
        let initial = !self.restored && !self.discovered;
        self.discovered = true;
        let start = if initial {
            match self.settings.starting {
                // LATEST as a fixed time: a restore before the first record reads what arrived
                // since, instead of skipping it with a new LATEST iterator.
                StartingPosition::Latest => IteratorStart::AtTimestamp(now),
                StartingPosition::TrimHorizon => IteratorStart::TrimHorizon,
                StartingPosition::AtTimestamp(ms) => IteratorStart::AtTimestamp(ms),
            }
        } else {
            IteratorStart::TrimHorizon
        };
        let new: Vec<&ShardInfo> = shards
            .values()
            .filter(|s| {
                let id = &s.shard_id;
                owner_of(&self.settings.stream, id, &shards, self.parallelism) == self.subtask
                    && !self.shards.contains_key(id)
                    && !self.finished.contains(id)
                    && !self.assigned_before.contains(id)
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        tracing::info!(
            subtask = self.subtask,
            shards = ?new.iter().map(|s| &s.shard_id).collect::<Vec<_>>(),
            start = ?start,
            "Kinesis source: assigned new shards"
        );
        for s in new {
            let split = KinesisShardSplit {
                shard_id: s.shard_id.clone(),
                parents: s.parents(),
                start: start.clone(),
            };
            self.shards
                .insert(s.shard_id.clone(), ShardState::new(split));
        }
        if let Some(m) = &self.metrics {
            m.assigned.set(self.shards.len() as u64);
        }
        Ok(())
    }

    /// True when every parent of `split` is finished, as far as this reader can tell: a
    /// parent it reads itself must be read to its end first.
    fn ready(shards: &BTreeMap<String, ShardState>, split: &KinesisShardSplit) -> bool {
        split.parents.iter().all(|p| !shards.contains_key(p))
    }

    /// One GetRecords (after a GetShardIterator if needed) for the ready shard that is due
    /// first. Returns whether a shard was fetched.
    fn fetch_one(&mut self, now: Timestamp) -> Result<bool, BoxError> {
        let due = self
            .shards
            .iter()
            .filter(|(_, s)| {
                s.buffer.is_empty()
                    && !s.at_end
                    && s.next_fetch <= now
                    && Self::ready(&self.shards, &s.split)
            })
            .min_by_key(|(_, s)| s.next_fetch)
            .map(|(id, _)| id.clone());
        let Some(id) = due else {
            return Ok(false);
        };
        let client = self.client.clone().expect("opened before polling");
        let stream = self.settings.stream.clone();
        let shard = self.shards.get_mut(&id).expect("listed above");
        if shard.iterator.is_none() {
            if let Some(w) = &mut self.watermarks {
                w.add_split(id.clone(), now);
            }
            match client.shard_iterator(&stream, &id, &shard.split.start) {
                Ok(Some(it)) => shard.iterator = Some(it),
                Ok(None) => {
                    shard.at_end = true;
                    return Ok(true);
                }
                Err(e) => return self.shard_failed(&id, e, now, "getting a shard iterator failed"),
            }
        }
        let iterator = shard.iterator.clone().expect("set above");
        match client.get_records(&stream, &iterator, self.settings.max_records) {
            Ok(fetched) => {
                let shard = self.shards.get_mut(&id).expect("listed above");
                shard.backoff = 0;
                shard.iterator = fetched.next_iterator;
                shard.at_end = shard.iterator.is_none();
                shard.next_fetch = if fetched.records.is_empty() {
                    now + self.settings.idle_interval.as_millis() as Timestamp
                } else {
                    now
                };
                if let Some(m) = &mut self.metrics {
                    let sm = m.shard(&id);
                    sm.bytes
                        .add(fetched.records.iter().map(|r| r.data.len() as u64).sum());
                    if let Some(behind) = fetched.millis_behind_latest {
                        sm.millis_behind_latest.set(behind.max(0) as u64);
                    }
                }
                shard.buffer.extend(fetched.records);
                self.succeeded();
                Ok(true)
            }
            Err(e) if e.code() == Some("ExpiredIteratorException") => {
                // Unused for five minutes: a new one from the position.
                self.shards.get_mut(&id).expect("listed above").iterator = None;
                Ok(true)
            }
            Err(e) => self.shard_failed(&id, e, now, "GetRecords failed"),
        }
    }

    fn shard_failed(
        &mut self,
        id: &str,
        e: KinesisError,
        now: Timestamp,
        what: &str,
    ) -> Result<bool, BoxError> {
        self.on_error(e, now, &format!("shard {id}: {what}"))?;
        if let Some(shard) = self.shards.get_mut(id) {
            // A new iterator after the failure: the old one may be gone with the server.
            shard.iterator = None;
            shard.backoff = (shard.backoff * 2).clamp(FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
            shard.next_fetch = now + shard.backoff;
        }
        Ok(true)
    }

    /// Emits buffered records, up to a batch, advancing each shard's position per record.
    fn emit(&mut self, out: &mut SourceOutput<'_, T>) -> Result<usize, BoxError> {
        let KinesisSourceReader {
            settings,
            shards,
            watermarks,
            metrics,
            skipped,
            ..
        } = self;
        let mut emitted = 0;
        for (id, shard) in shards.iter_mut() {
            let shard_metrics = metrics.as_mut().map(|m| m.shard(id));
            while emitted < settings.batch && !out.is_failed() {
                let Some(r) = shard.buffer.pop_front() else {
                    break;
                };
                let record = KinesisRecord {
                    stream: &settings.stream,
                    shard_id: id,
                    sequence_number: &r.sequence_number,
                    partition_key: &r.partition_key,
                    data: &r.data,
                    arrival_timestamp: r.arrival_timestamp,
                };
                match (settings.deserializer)(&record) {
                    Ok(Some(value)) => match watermarks {
                        Some(w) => {
                            let ts = w.timestamp(&value, r.arrival_timestamp);
                            let update = w.on_event(id, &value, ts);
                            if let Some(idle) = update.status {
                                out.emit_watermark_status(idle);
                            }
                            out.collect_with_timestamp(value, ts);
                            if let Some(wm) = update.watermark {
                                out.emit_watermark(wm);
                            }
                        }
                        None => out.collect_with_timestamp(value, r.arrival_timestamp),
                    },
                    Ok(None) => {}
                    Err(e) => match settings.on_malformed {
                        OnMalformed::Fail => {
                            return Err(SourceError::boxed(
                                record.position(),
                                format!(
                                    "malformed record: {e}; fix the producer, or skip such records with .on_malformed(OnMalformed::Skip) (in SQL: '<format>.ignore-parse-errors' = 'true')"
                                ),
                            ));
                        }
                        OnMalformed::Skip => {
                            if let Some(m) = metrics.as_ref() {
                                m.malformed_skipped.inc();
                            }
                            if skipped.is_multiple_of(1000) {
                                tracing::warn!(position = %record.position(), error = %e, skipped = *skipped + 1, "Kinesis source: skipping a malformed record");
                            }
                            *skipped += 1;
                        }
                    },
                }
                shard.split.start = IteratorStart::AfterSequenceNumber(r.sequence_number);
                if let Some(m) = &shard_metrics {
                    m.records.inc();
                }
                emitted += 1;
            }
        }
        Ok(emitted)
    }

    /// Shards read to their end stop holding back the watermark, and their children may start.
    fn retire_finished(&mut self, out: &mut SourceOutput<'_, T>) {
        let done: Vec<String> = self
            .shards
            .iter()
            .filter(|(_, s)| s.at_end && s.buffer.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            self.shards.remove(&id);
            tracing::info!(subtask = self.subtask, shard = %id, "Kinesis source: shard read to its end");
            if let Some(w) = &mut self.watermarks {
                apply(w.remove_split(&id), out);
            }
            if let Some(m) = &self.metrics {
                m.finished.inc();
                m.assigned.set(self.shards.len() as u64);
            }
            self.finished.insert(id);
        }
    }

    fn poll(&mut self, out: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        let now = self.clock.now();
        if now >= self.next_discovery {
            self.discover(now)?;
        }
        let mut emitted = self.emit(out)?;
        if emitted == 0 && self.fetch_one(now)? {
            emitted = self.emit(out)?;
        }
        self.retire_finished(out);
        if let Some(w) = &mut self.watermarks {
            apply(w.on_periodic(now), out);
        }
        if emitted > 0 || self.shards.values().any(|s| !s.buffer.is_empty()) {
            return Ok(SourceStatus::MoreAvailable);
        }
        // Nothing to emit: sleep until a shard or the listing is due (briefly, so barriers and
        // cancellation are not held up).
        let next = self
            .shards
            .values()
            .filter(|s| !s.at_end && Self::ready(&self.shards, &s.split))
            .map(|s| s.next_fetch)
            .chain(std::iter::once(self.next_discovery))
            .min()
            .unwrap_or(now + MAX_IDLE_SLEEP_MS);
        let wait = next.saturating_sub(now).clamp(0, MAX_IDLE_SLEEP_MS);
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        Ok(SourceStatus::NothingAvailable)
    }
}

fn apply<T>(update: Update, out: &mut SourceOutput<'_, T>) {
    if let Some(idle) = update.status {
        out.emit_watermark_status(idle);
    }
    if let Some(w) = update.watermark {
        out.emit_watermark(w);
    }
}

impl<T: Send + 'static> SourceReader<T> for KinesisSourceReader<T> {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.clock = ctx.clock();
        self.metrics = Some(ReaderMetrics::new(ctx));
        let client = KinesisClient::new(&self.settings.config)
            .map_err(|e| SourceError::boxed(self.where_(), e.to_string()))?;
        self.client = Some(client);
        if let Some(strategy) = &self.settings.watermarks {
            self.watermarks = Some(SplitWatermarks::new(
                strategy.clone(),
                ctx.auto_watermark_interval().as_millis() as i64,
            ));
        }
        // The first listing now, so no checkpoint is taken before the first assignment
        // (unless the service is unreachable: then it is retried).
        let now = self.clock.now();
        self.discover(now)
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        self.poll(output)
    }

    fn snapshot_splits(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        Ok(Some(
            self.shards.values().map(|s| s.split.encode()).collect(),
        ))
    }

    fn snapshot_union_state(&mut self, _checkpoint_id: u64) -> Result<Vec<Vec<u8>>, BoxError> {
        let all: BTreeSet<&String> = self
            .shards
            .keys()
            .chain(self.finished.iter())
            .chain(self.assigned_before.iter())
            .collect();
        all.into_iter()
            .map(|id| {
                let item = AssignedShard {
                    shard_id: id.clone(),
                    finished: self.finished.contains(id) || self.finished_before.contains(id),
                };
                fjord::encoding::to_vec(&item).map_err(Into::into)
            })
            .collect()
    }

    fn restore_union_state(&mut self, items: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.restored |= !items.is_empty();
        for item in items {
            let a: AssignedShard = fjord::encoding::from_slice(&item)?;
            if a.finished {
                self.finished_before.insert(a.shard_id.clone());
            }
            self.assigned_before.insert(a.shard_id);
        }
        Ok(())
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.restored |= !splits.is_empty();
        self.shards.clear();
        for bytes in splits {
            let split = KinesisShardSplit::decode(&bytes)?;
            self.shards
                .insert(split.shard_id.clone(), ShardState::new(split));
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.client = None;
        for s in self.shards.values_mut() {
            s.buffer.clear();
        }
        Ok(())
    }
}
