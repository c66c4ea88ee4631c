//! The writer of one parallel instance of the Kafka sink (Flink's `KafkaWriter` and
//! `KafkaCommitter` in one, on Fjord's [`TransactionalWriter`]).
//!
//! Every guarantee runs through the two-phase-commit hooks: `pre_commit` at a checkpoint
//! barrier flushes (at-least-once) or prepares the open transaction (exactly-once), `commit`
//! commits prepared transactions when their checkpoint completed, `snapshot`/`restore` carry
//! what is needed to find lingering transactions (see [`transaction_ids`](super::transaction_ids)).

use super::metrics::WriterMetrics;
use super::partitioner::PartitionChooser;
use super::state::{WriterState, decode_committable, encode_committable};
use super::transaction_ids::{next_candidate, owned_old_subtasks, transactional_id};
use super::{DeliveryGuarantee, SinkSettings};
use crate::client::{KafkaClient, Producer, ProducerMode, ProducerRecord, TopicPartition};
use crate::error::KafkaError;
use bytes::Bytes;
use fjord::sinks::{SinkError, TransactionalWriter};
use fjord::{BoxError, RuntimeContext, Timestamp};
use std::sync::Arc;

/// Most ids probed for one subtask (and most old subtasks probed) before giving up with an
/// error: far beyond any real history, a bound so recovery cannot loop for ever.
const MAX_PROBES: u64 = 100_000;

/// Most skipped ids a writer of a job started without a checkpoint initialises in one go. Such
/// a writer numbers from 0; when its first checkpoint id is far higher (checkpoint ids of an
/// earlier run in the same checkpoint directory) it starts its contiguous range there instead
/// of initialising every id in between. A writer of a restored job numbers from the restored
/// checkpoint, with or without state of its own.
const MAX_FILL_WITHOUT_STATE: u64 = 1_000;

/// The Kafka error codes a commit meets when its transaction was already aborted (Flink's
/// `InvalidTxnStateException` and `UnknownProducerIdException`).
/// Fault injection for the end-to-end tests: with this variable set to `abort-before-commit` in
/// a process's environment, the process aborts the first time one of its sink writers is about
/// to commit a transaction that holds records — after the checkpoint completed, before Kafka
/// commits it: the window in which only the restore path (committing the restored
/// checkpoint's transactions) keeps the output exactly once. Unset, it costs one lookup per
/// process.
pub const FAILPOINT_ENV: &str = "FJORD_KAFKA_SINK_FAILPOINT";

/// Whether [`FAILPOINT_ENV`] asks for an abort before the first commit.
fn abort_before_commit() -> bool {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == "abort-before-commit"))
}

const INVALID_TXN_STATE: i16 = 48;
const UNKNOWN_PRODUCER_ID: i16 = 59;

pub(crate) struct KafkaWriter<T> {
    settings: Arc<SinkSettings<T>>,
    /// "Kafka topic t at host:port", for messages.
    target: String,
    client: KafkaClient,
    chooser: PartitionChooser<T>,
    metrics: WriterMetrics,
    mode: Mode,
}

enum Mode {
    /// None and at-least-once: one producer for the writer's life.
    Plain {
        producer: Producer,
        flush_at_checkpoints: bool,
    },
    /// Exactly-once: a transactional producer per checkpoint.
    Transactional(Transactions),
}

/// The exactly-once writer's transactions.
struct Transactions {
    prefix: String,
    subtask: usize,
    parallelism: usize,
    /// The open transaction: its number and producer.
    open: Option<(u64, Producer)>,
    /// The restored checkpoint (0 without restored state): numbering and probing start above.
    base: u64,
    /// Number of the next transaction: the last checkpoint pre-committed (or `base`) + 1.
    next: u64,
    /// Every id in `base + 1 ..= initialized` was initialised (used or empty).
    initialized: u64,
    /// The last checkpoint pre-committed (or `base`).
    last_checkpoint: u64,
    /// States restored into this writer.
    restored: Vec<WriterState>,
    /// Whether the job was restored from a checkpoint (even if this writer got no state).
    restored_job: bool,
    /// Whether lingering transactions were looked for.
    cleaned: bool,
}

impl<T: fjord::Data> KafkaWriter<T> {
    /// Connects, checks the topic, and sets the writer up for the sink's guarantee.
    ///
    /// Errors name the bootstrap servers and topic: brokers unreachable, topic missing,
    /// properties the client refuses.
    pub(crate) fn open(
        settings: Arc<SinkSettings<T>>,
        ctx: &RuntimeContext,
    ) -> Result<Self, BoxError> {
        let bootstrap = settings.bootstrap().to_string();
        let fixed = settings.serializer.fixed_topic().map(str::to_string);
        let target = match &fixed {
            Some(t) => format!("Kafka topic {t} at {bootstrap}"),
            None => format!("Kafka at {bootstrap}"),
        };
        let fail = |e: KafkaError| SinkError::boxed(target.clone(), startup_message(&e));
        let mut client = KafkaClient::connect(&settings.config).map_err(fail)?;
        if let Some(topic) = &fixed
            && client.wait_for_topic(topic).map_err(fail)?.is_none()
        {
            let waited = client.max_block().as_millis();
            return Err(SinkError::boxed(
                target,
                format!(
                    "topic {topic} does not exist (still absent after waiting max.block.ms = {waited} ms); create it first, for example `kafka-topics.sh --bootstrap-server {bootstrap} --create --topic {topic} --partitions 3` (the sink never creates topics)"
                ),
            ));
        }
        let batch_size = settings
            .config
            .properties
            .get("batch.size")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(16_384);
        let chooser = PartitionChooser::new(
            settings.serializer.partitioner.clone(),
            ctx.subtask_index,
            batch_size,
        );
        let mode = match settings.guarantee {
            DeliveryGuarantee::None | DeliveryGuarantee::AtLeastOnce => {
                let at_least_once = settings.guarantee == DeliveryGuarantee::AtLeastOnce;
                let idempotence = settings
                    .config
                    .properties
                    .get("enable.idempotence")
                    .is_none_or(|v| v.trim() != "false");
                let producer_mode = if at_least_once && idempotence {
                    ProducerMode::Idempotent
                } else {
                    ProducerMode::Plain {
                        acks: acks(&settings.config.properties),
                    }
                };
                Mode::Plain {
                    producer: Producer::new(&settings.config, producer_mode).map_err(fail)?,
                    flush_at_checkpoints: at_least_once,
                }
            }
            DeliveryGuarantee::ExactlyOnce => {
                // Numbering and probing start above the restored checkpoint, also in a subtask
                // that receives no state of its own (one added by scaling up): its ids since
                // then are what a later recovery must find.
                let base = ctx.restored_checkpoint_id().unwrap_or(0);
                Mode::Transactional(Transactions {
                    prefix: settings.prefix.clone().unwrap_or_default(),
                    subtask: ctx.subtask_index,
                    parallelism: ctx.parallelism,
                    open: None,
                    base,
                    next: base + 1,
                    initialized: base,
                    last_checkpoint: base,
                    restored: Vec::new(),
                    restored_job: base > 0,
                    cleaned: false,
                })
            }
        };
        Ok(KafkaWriter {
            target,
            client,
            chooser,
            metrics: WriterMetrics::new(ctx),
            mode,
            settings,
        })
    }
}

/// The message of a startup failure, with what to do.
fn startup_message(e: &KafkaError) -> String {
    match e {
        KafkaError::Unreachable { .. } => format!(
            "{e}; the sink cannot start without its brokers: start them, or fix bootstrap.servers (the broker address the job was given)"
        ),
        _ => e.to_string(),
    }
}

/// `acks` as the client takes it.
fn acks(properties: &std::collections::BTreeMap<String, String>) -> i16 {
    match properties.get("acks").map(|v| v.trim()) {
        Some("0") => 0,
        Some("1") => 1,
        _ => -1,
    }
}

impl<T> KafkaWriter<T> {
    fn error(&self, e: impl std::fmt::Display) -> BoxError {
        SinkError::boxed(self.target.clone(), e.to_string())
    }
}

impl Transactions {
    /// Aborts what earlier attempts left open (once, before the first transaction): the ids
    /// above `base` of every old subtask this one is responsible for, under this prefix and
    /// under the prefixes of the restored states.
    fn ensure_clean(&mut self, client: &mut KafkaClient) -> Result<(), KafkaError> {
        if self.cleaned {
            return Ok(());
        }
        let known = self
            .restored
            .iter()
            .map(|s| s.parallelism)
            .max()
            .unwrap_or(0);
        let mut prefixes = vec![self.prefix.clone()];
        for s in &self.restored {
            if !prefixes.contains(&s.prefix) {
                prefixes.push(s.prefix.clone());
            }
        }
        for prefix in &prefixes {
            let mut last = self.subtask;
            for k in owned_old_subtasks(self.subtask, self.parallelism, known) {
                let used = self.probe(client, prefix, k)?;
                if k == self.subtask && *prefix == self.prefix {
                    self.initialized = self.initialized.max(self.base + used + 1);
                }
                last = k;
            }
            // Beyond what the state names (older, larger parallelisms): Flink's rule, on while
            // the subtask had used ids.
            for _ in 0..MAX_PROBES {
                let k = next_candidate(last, self.parallelism);
                if self.probe(client, prefix, k)? == 0 {
                    break;
                }
                last = k;
            }
        }
        self.cleaned = true;
        Ok(())
    }

    /// Initialises ids of `subtask` upward from `base + 1` until one that was never used
    /// (epoch 0), aborting any open transaction on the way; returns how many had been used.
    fn probe(
        &self,
        client: &mut KafkaClient,
        prefix: &str,
        subtask: usize,
    ) -> Result<u64, KafkaError> {
        for used in 0..MAX_PROBES {
            let id = transactional_id(prefix, subtask, self.base + 1 + used);
            if client.abort_lingering(&id)? == 0 {
                if used > 0 {
                    tracing::info!(
                        "Kafka sink: initialised {used} transactional ids {prefix}-{subtask}-{}.. left by earlier attempts (aborting what was open)",
                        self.base + 1
                    );
                }
                return Ok(used);
            }
        }
        Err(KafkaError::Config(format!(
            "more than {MAX_PROBES} used transactional ids {prefix}-{subtask}-*; use a new transactional id prefix"
        )))
    }

    /// Initialises the ids up to `through` that were skipped (checkpoints that passed with no
    /// transaction open, checkpoint ids that never reached this subtask), keeping the used
    /// ids contiguous for the probing of a later recovery.
    fn fill_through(&mut self, client: &mut KafkaClient, through: u64) -> Result<(), KafkaError> {
        if through <= self.initialized {
            return Ok(());
        }
        if self.restored.is_empty()
            && !self.restored_job
            && through - self.initialized > MAX_FILL_WITHOUT_STATE
        {
            tracing::info!(
                "Kafka sink {}-{}: no restored state and checkpoint {through} is far above its ids; its ids continue from there",
                self.prefix,
                self.subtask
            );
            self.initialized = through;
            return Ok(());
        }
        for n in self.initialized + 1..=through {
            let id = transactional_id(&self.prefix, self.subtask, n);
            client.abort_lingering(&id)?;
            self.initialized = n;
        }
        Ok(())
    }

    /// The producer of the open transaction, opening one if none is.
    fn producer(
        &mut self,
        client: &mut KafkaClient,
        settings: &crate::client::ClientConfig,
    ) -> Result<&mut Producer, KafkaError> {
        if self.open.is_none() {
            self.ensure_clean(client)?;
            let n = self.next;
            self.fill_through(client, n - 1)?;
            let transactional_id = transactional_id(&self.prefix, self.subtask, n);
            let producer =
                Producer::new(settings, ProducerMode::Transactional { transactional_id })?;
            self.initialized = self.initialized.max(n);
            self.open = Some((n, producer));
        }
        Ok(&mut self.open.as_mut().expect("opened above").1)
    }
}

impl<T: fjord::Data> TransactionalWriter<T> for KafkaWriter<T> {
    fn write(&mut self, value: T, timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let record = self
            .settings
            .serializer
            .serialize(&value, timestamp)
            .map_err(|e| self.error(e))?;
        let size = record.size();
        let producer = match &mut self.mode {
            Mode::Plain { producer, .. } => producer,
            Mode::Transactional(t) => t
                .producer(&mut self.client, &self.settings.config)
                .map_err(|e| SinkError::boxed(self.target.clone(), e.to_string()))?,
        };
        let topic_error = |e: KafkaError| -> BoxError {
            SinkError::boxed(
                format!(
                    "Kafka topic {} at {}",
                    record.topic,
                    self.settings.bootstrap()
                ),
                e.to_string(),
            )
        };
        let partitions = producer.partitions(&record.topic).map_err(topic_error)?;
        let partition = self
            .chooser
            .choose(
                &value,
                record.key.as_deref(),
                size,
                &record.topic,
                partitions,
            )
            .map_err(|e| SinkError::boxed(self.target.clone(), e))?;
        let tp = TopicPartition {
            topic: record.topic.clone(),
            partition,
        };
        producer
            .send(
                &tp,
                ProducerRecord {
                    key: record.key.map(Bytes::from),
                    value: record.value.map(Bytes::from),
                    timestamp: record.timestamp,
                    headers: record
                        .headers
                        .into_iter()
                        .map(|(n, v)| (n, v.map(Bytes::from)))
                        .collect(),
                },
            )
            .map_err(topic_error)?;
        self.metrics.sent(&tp, size);
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, BoxError> {
        let end_of_input = checkpoint_id == u64::MAX;
        match &mut self.mode {
            Mode::Plain {
                producer,
                flush_at_checkpoints,
            } => {
                if *flush_at_checkpoints || end_of_input {
                    producer
                        .flush()
                        .map_err(|e| SinkError::boxed(self.target.clone(), e.to_string()))?;
                }
                Ok(Vec::new())
            }
            Mode::Transactional(t) => {
                let mut step = || -> Result<Vec<u8>, KafkaError> {
                    t.ensure_clean(&mut self.client)?;
                    let prepared = match t.open.take() {
                        Some((_, mut producer)) => Some(producer.prepare_commit()?),
                        None => None,
                    };
                    if !end_of_input {
                        t.fill_through(&mut self.client, checkpoint_id)?;
                        t.next = checkpoint_id + 1;
                        t.last_checkpoint = checkpoint_id;
                    }
                    Ok(encode_committable(prepared.as_ref()))
                };
                step().map_err(|e| SinkError::boxed(self.target.clone(), e.to_string()))
            }
        }
    }

    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), BoxError> {
        for c in committables {
            let Some(transaction) = decode_committable(c)? else {
                continue;
            };
            if abort_before_commit() {
                eprintln!(
                    "{FAILPOINT_ENV}=abort-before-commit: aborting the process before committing transaction {} (producer id {}, epoch {})",
                    transaction.transactional_id,
                    transaction.producer_id,
                    transaction.producer_epoch
                );
                std::process::abort();
            }
            match self.client.commit_prepared(&transaction) {
                Ok(()) => self.metrics.committed.inc(),
                Err(e)
                    if e.is_fenced()
                        || matches!(e.code(), Some(INVALID_TXN_STATE | UNKNOWN_PRODUCER_ID)) =>
                {
                    // As Flink's KafkaCommitter: a later producer of the id, or the
                    // coordinator's timeout, ended the transaction; committing again cannot
                    // help, so the job goes on, and says loudly that records may be lost.
                    self.metrics.commit_failures.inc();
                    tracing::error!(
                        "Kafka sink: cannot commit transaction {} (producer id {}, epoch {}): {e}. Its records are lost to read_committed consumers; this happens when recovery took longer than transaction.timeout.ms ({} ms) or another job uses the same transactional id prefix",
                        transaction.transactional_id,
                        transaction.producer_id,
                        transaction.producer_epoch,
                        self.settings
                            .config
                            .properties
                            .get("transaction.timeout.ms")
                            .map(String::as_str)
                            .unwrap_or("?"),
                    );
                }
                Err(e) => {
                    self.metrics.commit_failures.inc();
                    return Err(SinkError::boxed(
                        self.target.clone(),
                        format!(
                            "committing transaction {} failed: {e}; the job restarts from its last checkpoint and commits it again",
                            transaction.transactional_id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Vec<u8>, BoxError> {
        match &self.mode {
            Mode::Plain { .. } => Ok(Vec::new()),
            Mode::Transactional(t) => {
                Ok(
                    WriterState::new(&t.prefix, t.subtask, t.parallelism, t.last_checkpoint)
                        .encode(),
                )
            }
        }
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let Some(state) = WriterState::decode(state)? else {
            return Ok(());
        };
        if let Mode::Transactional(t) = &mut self.mode {
            t.base = t.base.max(state.checkpoint_id);
            t.next = t.base + 1;
            t.initialized = t.initialized.max(t.base);
            t.last_checkpoint = t.base;
            t.restored.push(state);
        }
        Ok(())
    }

    fn discard_uncommitted(&mut self) -> Result<(), BoxError> {
        if let Mode::Transactional(t) = &mut self.mode {
            t.ensure_clean(&mut self.client)
                .map_err(|e| SinkError::boxed(self.target.clone(), e.to_string()))?;
        }
        Ok(())
    }

    fn abort(&mut self) -> Result<(), BoxError> {
        if let Mode::Transactional(t) = &mut self.mode
            && let Some((_, mut producer)) = t.open.take()
        {
            producer
                .abort()
                .map_err(|e| SinkError::boxed(self.target.clone(), e.to_string()))?;
            self.metrics.aborted.inc();
        }
        Ok(())
    }
}
