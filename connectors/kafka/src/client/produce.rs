//! The producer: per-partition buffers (`batch.size`, `linger.ms`), Produce requests per
//! leader, idempotent sequence numbers, and the transactional state machine on top of
//! [`super::transactions`].

use super::cluster::{Cluster, InFlight, Node};
use super::config::Settings;
use super::records::{BatchIdentity, Pending, encode_batch};
use super::transactions;
use super::{
    ClientConfig, PreparedTransaction, ProducerMetrics, ProducerMode, ProducerRecord, Result,
    TopicPartition,
};
use crate::error::{KafkaError, codes};
use bytes::Bytes;
use kafka_protocol::messages::{
    ProduceRequest, TopicName, TransactionalId,
    produce_request::{PartitionProduceData, TopicProduceData},
};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// v12+ belongs to transaction version 2 (implicit partition adds); v13 names topics by id.
const PRODUCE_VERSIONS: RangeInclusive<i16> = 3..=11;
/// Everything buffered is sent once the buffers hold this much (Kafka's `buffer.memory`).
const MAX_BUFFERED: usize = 32 * 1024 * 1024;

struct Buffer {
    records: Vec<Pending>,
    bytes: usize,
    since: Instant,
}

struct Transaction {
    id: String,
    /// Partitions added to the open transaction.
    partitions: BTreeSet<TopicPartition>,
    /// `prepare_commit` was called: no more sends.
    prepared: bool,
}

/// Writes records, batching them per partition.
pub struct Producer {
    cluster: Cluster,
    mode: ProducerMode,
    acks: i16,
    /// Producer id and epoch (idempotent and transactional modes).
    identity: Option<(i64, i16)>,
    sequences: HashMap<TopicPartition, i32>,
    /// Partitions where the broker acknowledged a batch of this producer. Until then the
    /// broker has no state for the producer there and takes any first sequence, so a refused
    /// first batch (a partition whose leader is not ready yet) could land behind the batches
    /// pipelined after it: the first batch of a partition is sent alone.
    acknowledged: HashSet<TopicPartition>,
    /// Batches encoded so far: the order of a batch among those of its partition.
    encoded: u64,
    buffers: BTreeMap<TopicPartition, Buffer>,
    buffered: usize,
    txn: Option<Transaction>,
    metrics: ProducerMetrics,
    /// A send failed for good; the producer refuses further work (its guarantees are gone).
    failed: Option<String>,
    /// Produce requests written, responses not read yet (oldest first).
    in_flight: VecDeque<Request>,
    /// Batches to send again (retriable failures), in the order they were first sent.
    resend: Vec<SentBatch>,
}

impl Producer {
    /// Creates a producer. For [`ProducerMode::Transactional`] this initialises the
    /// transactional id (fencing older producers with it, aborting its open transaction) and
    /// begins a transaction.
    pub fn new(config: &ClientConfig, mode: ProducerMode) -> Result<Self> {
        let settings = Settings::parse(config)?;
        let acks = match &mode {
            ProducerMode::Plain { acks } if matches!(acks, -1..=1) => *acks,
            ProducerMode::Plain { acks } => {
                return Err(KafkaError::Config(format!(
                    "acks={acks} is not one of -1, 0, 1"
                )));
            }
            _ => -1,
        };
        let deadline = Instant::now() + settings.max_block;
        let timeout_ms = settings.transaction_timeout_ms;
        let mut cluster = Cluster::connect(settings)?;
        let (identity, txn) = match &mode {
            ProducerMode::Plain { .. } => (None, None),
            ProducerMode::Idempotent => (
                Some(transactions::init_producer_id(
                    &mut cluster,
                    None,
                    timeout_ms,
                    deadline,
                )?),
                None,
            ),
            ProducerMode::Transactional { transactional_id } => {
                if transactional_id.is_empty() {
                    return Err(KafkaError::Config(
                        "the transactional id must not be empty".into(),
                    ));
                }
                let identity = transactions::init_producer_id(
                    &mut cluster,
                    Some(transactional_id),
                    timeout_ms,
                    deadline,
                )?;
                let txn = Transaction {
                    id: transactional_id.clone(),
                    partitions: BTreeSet::new(),
                    prepared: false,
                };
                (Some(identity), Some(txn))
            }
        };
        Ok(Producer {
            cluster,
            mode,
            acks,
            identity,
            sequences: HashMap::new(),
            acknowledged: HashSet::new(),
            encoded: 0,
            buffers: BTreeMap::new(),
            buffered: 0,
            txn,
            metrics: ProducerMetrics::default(),
            failed: None,
            in_flight: VecDeque::new(),
            resend: Vec::new(),
        })
    }

    /// The mode this producer was created with.
    pub fn mode(&self) -> &ProducerMode {
        &self.mode
    }

    /// Partition count of a topic (cached, refreshed when a send hits an unknown partition).
    pub fn partitions(&mut self, topic: &str) -> Result<i32> {
        let info = self
            .cluster
            .retry(|c| c.topic("Metadata", topic).map(|i| i.leaders.len()))?;
        Ok(info as i32)
    }

    /// Buffers a record for a partition; sends a batch when the partition's buffer is full
    /// (`batch.size`) or `linger.ms` passed. Errors of earlier sends surface here or in
    /// [`flush`](Self::flush).
    pub fn send(&mut self, partition: &TopicPartition, record: ProducerRecord) -> Result<()> {
        self.check_usable()?;
        let count = self.partitions(&partition.topic)?;
        if partition.partition < 0 || partition.partition >= count {
            // Maybe the topic grew: look again once.
            self.cluster.invalidate(&partition.topic);
            let count = self.partitions(&partition.topic)?;
            if partition.partition < 0 || partition.partition >= count {
                return Err(KafkaError::broker(
                    "Produce",
                    format!("{partition} (the topic has {count} partitions)"),
                    codes::UNKNOWN_TOPIC_OR_PARTITION,
                ));
            }
        }
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let pending = Pending { timestamp, record };
        let size = pending.estimated_size();
        let buffer = self
            .buffers
            .entry(partition.clone())
            .or_insert_with(|| Buffer {
                records: Vec::new(),
                bytes: 0,
                since: Instant::now(),
            });
        buffer.records.push(pending);
        buffer.bytes += size;
        self.buffered += size;
        let batch_size = self.cluster.settings.batch_size;
        let linger = self.cluster.settings.linger;
        let ready: Vec<TopicPartition> = if self.buffered >= MAX_BUFFERED {
            self.buffers.keys().cloned().collect()
        } else {
            self.buffers
                .iter()
                .filter(|(_, b)| b.bytes >= batch_size || b.since.elapsed() >= linger)
                .map(|(tp, _)| tp.clone())
                .collect()
        };
        if !ready.is_empty() {
            self.drain(&ready)?;
        }
        Ok(())
    }

    /// Sends everything buffered and waits for the acknowledgements.
    pub fn flush(&mut self) -> Result<()> {
        self.check_usable()?;
        self.send_all_and_wait()
    }

    /// Sends the batches whose `linger.ms` passed (without waiting for their
    /// acknowledgement). Records are otherwise only sent from [`send`](Self::send) and
    /// [`flush`](Self::flush): a caller with nothing to send for a while calls this so the
    /// buffered records do not wait for the next send.
    pub fn poll(&mut self) -> Result<()> {
        self.check_usable()?;
        let linger = self.cluster.settings.linger;
        let due: Vec<TopicPartition> = self
            .buffers
            .iter()
            .filter(|(_, b)| b.since.elapsed() >= linger)
            .map(|(tp, _)| tp.clone())
            .collect();
        if !due.is_empty() {
            self.drain(&due)?;
        }
        Ok(())
    }

    fn send_all_and_wait(&mut self) -> Result<()> {
        let all: Vec<TopicPartition> = self.buffers.keys().cloned().collect();
        if !all.is_empty() {
            self.drain(&all)?;
        }
        let result = self.complete_all();
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }

    /// Whether the open transaction has records (transactional mode; `false` otherwise).
    pub fn has_records_in_transaction(&self) -> bool {
        self.txn
            .as_ref()
            .is_some_and(|t| !t.partitions.is_empty() || !self.buffers.is_empty())
    }

    /// Transactional mode: flushes and returns the identity of the open transaction, which
    /// stays open (prepared) until someone commits it with
    /// [`KafkaClient::commit_prepared`](super::KafkaClient::commit_prepared) or
    /// [`commit`](Self::commit). No further records may be sent on this producer.
    ///
    /// A transaction without records is never seen by the coordinator; committing it with
    /// `commit_prepared` succeeds and does nothing.
    pub fn prepare_commit(&mut self) -> Result<PreparedTransaction> {
        self.flush()?;
        let (producer_id, producer_epoch) = self.identity.unwrap_or((-1, -1));
        let txn = self.txn_mut("prepare_commit")?;
        txn.prepared = true;
        Ok(PreparedTransaction {
            transactional_id: txn.id.clone(),
            producer_id,
            producer_epoch,
        })
    }

    /// Transactional mode: commits the open transaction (a new one begins with the next
    /// send). Returns once the coordinator decided the commit; `read_committed` readers see
    /// the records once it wrote the markers, right after.
    pub fn commit(&mut self) -> Result<()> {
        self.end(true)
    }

    /// Transactional mode: aborts the open transaction (buffered records are dropped).
    pub fn abort(&mut self) -> Result<()> {
        self.end(false)
    }

    /// Bytes and records sent, commit failures and transactions committed/aborted so far.
    pub fn metrics(&self) -> ProducerMetrics {
        self.metrics
    }

    fn end(&mut self, commit: bool) -> Result<()> {
        let what = if commit { "commit" } else { "abort" };
        self.txn_mut(what)?;
        if let Some(e) = &self.failed {
            return Err(KafkaError::Usage(format!(
                "cannot {what}: this producer failed earlier ({e}); create a new one"
            )));
        }
        if commit {
            self.send_all_and_wait()?;
        } else {
            self.buffers.clear();
            self.buffered = 0;
            // Read what is in flight (the coordinator may share the connection); whether
            // it was written does not matter any more.
            while !self.in_flight.is_empty() {
                if let Err(e) = self.complete_oldest() {
                    tracing::debug!(error = %e, "Produce failed in a transaction being aborted");
                }
            }
            self.resend.clear();
        }
        let identity = self
            .identity
            .expect("transactional producers have an identity");
        let deadline = Instant::now() + self.cluster.settings.max_block;
        let txn = self.txn.as_mut().expect("checked above");
        let result = if txn.partitions.is_empty() {
            Ok(()) // nothing was written: the coordinator never saw the transaction
        } else {
            transactions::end_txn(&mut self.cluster, &txn.id, identity, commit, deadline)
        };
        match result {
            Ok(()) => {
                txn.partitions.clear();
                txn.prepared = false;
                if commit {
                    self.metrics.transactions_committed += 1;
                } else {
                    self.metrics.transactions_aborted += 1;
                }
                Ok(())
            }
            Err(e) => {
                if commit {
                    self.metrics.commit_failures += 1;
                }
                self.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn txn_mut(&mut self, what: &str) -> Result<&mut Transaction> {
        self.txn
            .as_mut()
            .ok_or_else(|| KafkaError::Usage(format!("{what} needs a transactional producer")))
    }

    fn check_usable(&self) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(KafkaError::Usage(format!(
                "this producer failed earlier ({e}); create a new one"
            )));
        }
        if self.txn.as_ref().is_some_and(|t| t.prepared) {
            return Err(KafkaError::Usage(
                "the transaction was prepared (prepare_commit); send on a new producer".into(),
            ));
        }
        Ok(())
    }

    /// Sends the buffers of `ready` (pipelined: waits for acknowledgements only beyond
    /// `max.in.flight.requests.per.connection`); marks the producer failed when that does not
    /// succeed.
    fn drain(&mut self, ready: &[TopicPartition]) -> Result<()> {
        let result = self.drain_inner(ready);
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }

    fn drain_inner(&mut self, ready: &[TopicPartition]) -> Result<()> {
        let deadline = Instant::now() + self.cluster.settings.request_timeout;
        if let (Some(txn), Some(_)) = (self.txn.as_ref(), self.identity) {
            let new: Vec<TopicPartition> = ready
                .iter()
                .filter(|tp| !txn.partitions.contains(*tp))
                .cloned()
                .collect();
            if !new.is_empty() {
                // The coordinator may be a broker with produce requests in flight: one
                // conversation at a time on a connection.
                self.complete_all()?;
                let (txn, identity) = (
                    self.txn.as_mut().expect("checked"),
                    self.identity.expect("checked"),
                );
                transactions::add_partitions(&mut self.cluster, &txn.id, identity, &new, deadline)?;
                txn.partitions.extend(new);
            }
        }
        let transactional = self.txn.is_some();
        let codec = self.cluster.settings.codec;
        let mut batches: Vec<SentBatch> = Vec::with_capacity(ready.len());
        for tp in ready {
            let Some(buffer) = self.buffers.remove(tp) else {
                continue;
            };
            self.buffered = self.buffered.saturating_sub(buffer.bytes);
            let count = buffer.records.len();
            let id = match self.identity {
                None => BatchIdentity {
                    producer_id: -1,
                    producer_epoch: -1,
                    base_sequence: -1,
                    transactional: false,
                },
                Some((pid, epoch)) => {
                    let seq = self.sequences.entry(tp.clone()).or_insert(0);
                    let base = *seq;
                    *seq = seq.wrapping_add(count as i32) & i32::MAX;
                    BatchIdentity {
                        producer_id: pid,
                        producer_epoch: epoch,
                        base_sequence: base,
                        transactional,
                    }
                }
            };
            let batch = encode_batch(&buffer.records, id, codec)?;
            self.encoded += 1;
            batches.push(SentBatch {
                tp: tp.clone(),
                batch,
                count,
                order: self.encoded,
            });
        }
        let first_of_partition =
            self.identity.is_some() && batches.iter().any(|b| !self.acknowledged.contains(&b.tp));
        if self.acks == 0 || !self.resend.is_empty() {
            // No responses to pipeline (acks=0), or earlier batches wait for a resend that
            // these must follow.
            self.resend.extend(batches);
            return self.complete_all();
        }
        // Pipelined: one request per leader, up to max.in.flight.requests.per.connection
        // unanswered; the responses are read later, in order.
        let mut by_leader: BTreeMap<i32, Vec<SentBatch>> = BTreeMap::new();
        for b in batches {
            match self.cluster.leader("Produce", &b.tp) {
                Ok(leader) => by_leader.entry(leader).or_default().push(b),
                Err(e) if e.is_retriable() => self.resend.push(b),
                Err(e) => return Err(e),
            }
        }
        for (leader, batches) in by_leader {
            // At most max.in.flight.requests.per.connection unanswered, counting this one:
            // the broker remembers the last 5 batches of a producer per partition to
            // recognise a batch sent again.
            while self.in_flight.len() >= self.cluster.settings.max_in_flight {
                self.complete_oldest()?;
            }
            let sent = {
                let transactional_id = self.txn.as_ref().map(|t| t.id.as_str());
                let build =
                    produce_request(&batches, transactional_id, self.acks, self.timeout_ms());
                self.cluster
                    .send_request(leader, &PRODUCE_VERSIONS, Duration::ZERO, build)
            };
            match sent {
                Ok(in_flight) => self.in_flight.push_back(Request { in_flight, batches }),
                Err(e) if e.is_retriable() => self.resend.extend(batches),
                Err(e) => return Err(e),
            }
        }
        if first_of_partition || !self.resend.is_empty() {
            self.complete_all()?;
        }
        Ok(())
    }

    /// Counts a batch the broker wrote (or had written: a duplicate).
    fn acknowledge(&mut self, b: &SentBatch) {
        self.metrics.records_sent += b.count as u64;
        self.metrics.bytes_sent += b.batch.len() as u64;
        self.acknowledged.insert(b.tp.clone());
    }

    fn timeout_ms(&self) -> i32 {
        i32::try_from(self.cluster.settings.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Reads the response to the oldest request in flight: acknowledged batches are counted,
    /// batches that failed retriably go to `resend` (so do later batches of their partition
    /// that the broker refused as out of sequence), a non-retriable error is returned.
    fn complete_oldest(&mut self) -> Result<()> {
        let Some(request) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let response = match self.cluster.receive::<ProduceRequest>(&request.in_flight) {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "Produce response lost; sending again");
                self.cluster.forget_metadata();
                self.resend.extend(request.batches);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let mut codes_by_tp: HashMap<(&str, i32), (i16, Option<&StrBytes>)> = HashMap::new();
        for topic in &response.responses {
            for p in &topic.partition_responses {
                codes_by_tp.insert(
                    (topic.name.as_str(), p.index),
                    (p.error_code, p.error_message.as_ref()),
                );
            }
        }
        let mut resend = Vec::new();
        let mut fatal = None;
        for b in &request.batches {
            let Some(&(code, message)) = codes_by_tp.get(&(b.tp.topic.as_str(), b.tp.partition))
            else {
                resend.push(b.clone()); // not answered: send again (deduplicated if idempotent)
                continue;
            };
            match code {
                0 | codes::DUPLICATE_SEQUENCE_NUMBER => self.acknowledge(b),
                codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                    if self.resend.iter().chain(&resend).any(|r| r.tp == b.tp) =>
                {
                    // An earlier batch of this partition failed: this one follows it.
                    resend.push(b.clone());
                }
                code => {
                    let e = produce_error(&b.tp, code, message);
                    if e.is_retriable() {
                        if is_leader_error(code) {
                            self.cluster.invalidate(&b.tp.topic);
                        }
                        resend.push(b.clone());
                    } else if fatal.is_none() {
                        fatal = Some(e);
                    }
                }
            }
        }
        self.resend.extend(resend);
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Reads every outstanding response, then sends what has to be sent again, in order,
    /// one batch per partition per request, until acknowledged (bounded by the request
    /// timeout per round).
    fn complete_all(&mut self) -> Result<()> {
        while !self.in_flight.is_empty() {
            self.complete_oldest()?;
        }
        let mut queues: BTreeMap<TopicPartition, VecDeque<SentBatch>> = BTreeMap::new();
        for b in std::mem::take(&mut self.resend) {
            queues.entry(b.tp.clone()).or_default().push_back(b);
        }
        // In the order they were encoded, whichever failure put them here first.
        for queue in queues.values_mut() {
            queue.make_contiguous().sort_by_key(|b| b.order);
        }
        while !queues.is_empty() {
            let mut wave: Vec<SentBatch> = Vec::with_capacity(queues.len());
            queues.retain(|_, q| {
                if let Some(b) = q.pop_front() {
                    wave.push(b);
                }
                !q.is_empty()
            });
            self.send_sync(wave)?;
        }
        Ok(())
    }

    /// Sends batches (at most one per partition) and waits for their acknowledgement,
    /// retrying retriable errors until the request timeout passed.
    fn send_sync(&mut self, mut outstanding: Vec<SentBatch>) -> Result<()> {
        let deadline = Instant::now() + self.cluster.settings.request_timeout;
        let transactional_id = self.txn.as_ref().map(|t| t.id.clone());
        let acks = self.acks;
        let timeout_ms = self.timeout_ms();
        let mut backoff = self
            .cluster
            .settings
            .retry_backoff
            .max(Duration::from_millis(10));
        // Bounded by the deadline and in count.
        for _ in 0..1_000 {
            if outstanding.is_empty() {
                return Ok(());
            }
            match self.produce_round(
                &mut outstanding,
                transactional_id.as_deref(),
                acks,
                timeout_ms,
            ) {
                Ok(()) if outstanding.is_empty() => return Ok(()),
                Ok(()) => {}
                Err(e) if e.is_retriable() && Instant::now() + backoff < deadline => {
                    tracing::debug!(error = %e, "retrying Produce");
                    if !matches!(e, KafkaError::Broker { .. }) {
                        self.cluster.forget_metadata(); // a broker went away
                    }
                }
                Err(e) => return Err(e),
            }
            if Instant::now() + backoff >= deadline {
                break;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
        Err(KafkaError::broker(
            "Produce",
            outstanding[0].tp.to_string(),
            codes::REQUEST_TIMED_OUT,
        ))
    }

    /// One Produce request per leader for `outstanding`, waiting for each response; what
    /// succeeded is removed, what failed retriably stays (a non-retriable error is returned).
    fn produce_round(
        &mut self,
        outstanding: &mut Vec<SentBatch>,
        transactional_id: Option<&str>,
        acks: i16,
        timeout_ms: i32,
    ) -> Result<()> {
        let mut by_leader: BTreeMap<i32, Vec<SentBatch>> = BTreeMap::new();
        for b in outstanding.iter() {
            let leader = self.cluster.leader("Produce", &b.tp)?;
            by_leader.entry(leader).or_default().push(b.clone());
        }
        let mut done: HashSet<TopicPartition> = HashSet::new();
        let mut retriable: Option<KafkaError> = None;
        for (leader, batches) in by_leader {
            let build = produce_request(&batches, transactional_id, acks, timeout_ms);
            if acks == 0 {
                match self
                    .cluster
                    .send_only(Node::Id(leader), &PRODUCE_VERSIONS, build)
                {
                    Ok(()) => {
                        for b in &batches {
                            self.metrics.records_sent += b.count as u64;
                            self.metrics.bytes_sent += b.batch.len() as u64;
                            done.insert(b.tp.clone());
                        }
                    }
                    Err(e) if e.is_retriable() => retriable = Some(e),
                    Err(e) => return Err(e),
                }
                continue;
            }
            let response =
                match self
                    .cluster
                    .send(Node::Id(leader), &PRODUCE_VERSIONS, Duration::ZERO, build)
                {
                    Ok((r, _)) => r,
                    Err(e) if e.is_retriable() => {
                        retriable = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            for topic in &response.responses {
                for p in &topic.partition_responses {
                    let Some(b) = batches
                        .iter()
                        .find(|b| b.tp.topic == topic.name.as_str() && b.tp.partition == p.index)
                    else {
                        continue;
                    };
                    match p.error_code {
                        // A retry of a batch the broker had already written.
                        0 | codes::DUPLICATE_SEQUENCE_NUMBER => {
                            self.acknowledge(b);
                            done.insert(b.tp.clone());
                        }
                        code => {
                            if is_leader_error(code) {
                                self.cluster.invalidate(&b.tp.topic);
                            }
                            let e = produce_error(&b.tp, code, p.error_message.as_ref());
                            if e.is_retriable() {
                                retriable = Some(e);
                            } else {
                                return Err(e);
                            }
                        }
                    }
                }
            }
        }
        outstanding.retain(|b| !done.contains(&b.tp));
        match retriable {
            Some(e) if !outstanding.is_empty() => Err(e),
            _ => Ok(()),
        }
    }
}

/// A batch on its way: partition, encoded batch, record count, order of encoding.
#[derive(Clone)]
struct SentBatch {
    tp: TopicPartition,
    batch: Bytes,
    count: usize,
    order: u64,
}

/// A pipelined Produce request and its batches.
struct Request {
    in_flight: InFlight,
    batches: Vec<SentBatch>,
}

/// A Produce request builder for `batches` (one per partition).
fn produce_request<'a>(
    batches: &'a [SentBatch],
    transactional_id: Option<&'a str>,
    acks: i16,
    timeout_ms: i32,
) -> impl FnOnce(i16) -> ProduceRequest + 'a {
    move |_| {
        let mut topics: BTreeMap<&str, Vec<&SentBatch>> = BTreeMap::new();
        for b in batches {
            topics.entry(&b.tp.topic).or_default().push(b);
        }
        let mut request = ProduceRequest::default();
        request.transactional_id =
            transactional_id.map(|id| TransactionalId(StrBytes::from_string(id.to_string())));
        request.acks = acks;
        request.timeout_ms = timeout_ms;
        request.topic_data = topics
            .into_iter()
            .map(|(topic, parts)| {
                let mut t = TopicProduceData::default();
                t.name = TopicName(StrBytes::from_string(topic.to_string()));
                t.partition_data = parts
                    .into_iter()
                    .map(|b| {
                        let mut d = PartitionProduceData::default();
                        d.index = b.tp.partition;
                        d.records = Some(b.batch.clone());
                        d
                    })
                    .collect();
                t
            })
            .collect();
        request
    }
}

fn is_leader_error(code: i16) -> bool {
    matches!(
        code,
        codes::NOT_LEADER_OR_FOLLOWER
            | codes::LEADER_NOT_AVAILABLE
            | codes::UNKNOWN_TOPIC_OR_PARTITION
            | codes::FENCED_LEADER_EPOCH
    )
}

/// The error of a partition in a Produce response, with the broker's message.
fn produce_error(tp: &TopicPartition, code: i16, message: Option<&StrBytes>) -> KafkaError {
    let mut e = KafkaError::broker("Produce", tp.to_string(), code);
    if let (KafkaError::Broker { hint, .. }, Some(m)) = (&mut e, message)
        && !m.is_empty()
    {
        *hint = format!("; {}{}", m.as_str(), hint);
    }
    e
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
#[path = "produce_tests.rs"]
mod tests;
