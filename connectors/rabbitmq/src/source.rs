//! The RabbitMQ source (Flink's `RMQSource`).
//!
//! # Guarantees
//! The source consumes a queue with manual acknowledgements and acknowledges a delivery only
//! when the checkpoint covering it completes. After a failure the broker redelivers everything
//! not yet acknowledged, and the job restarts from its last completed checkpoint:
//! - without correlation ids: **at-least-once** (what was processed after that checkpoint is
//!   processed again; a message whose checkpoint completed but whose acknowledgement was lost
//!   is processed again, too);
//! - with [`uses_correlation_id(true)`](RmqSourceBuilder::uses_correlation_id): the ids of
//!   messages processed but not yet acknowledged are part of the checkpoint, and a delivery
//!   whose id is among them is dropped: **exactly-once** (Flink's `usesCorrelationId`). The
//!   producer must give every message a unique correlation id. Such a source runs with
//!   parallelism 1 (as in Flink), since the ids are remembered per reader.
//!
//! Checkpointing must be enabled: without it nothing is ever acknowledged and the source stops
//! when `prefetch_count` messages are unacknowledged. For a job without checkpoints use
//! [`auto_ack(true)`](RmqSourceBuilder::auto_ack) (no guarantee, as in Flink).

use crate::acks::AckState;
use crate::error::RabbitMqError;
use crate::session::Session;
use crate::without_password;
use fjord::metrics::Counter;
use fjord::sources::acknowledging::Verdict;
use fjord::sources::{Source, SourceOutput, SourceReader, SourceStatus};
use fjord::{BoxError, RuntimeContext};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use std::sync::Arc;
use std::time::Duration;

/// What the source does with a message its deserializer refuses (or that lacks a required
/// correlation id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job with [`RabbitMqError::Malformed`] (default). The message stays
    /// unacknowledged and is redelivered after the restart, so the job fails again until the
    /// message is removed or the setting changed.
    #[default]
    Fail,
    /// Reject the message without requeueing (the queue's dead-letter exchange gets it, if it
    /// has one), log a warning and count it in `messagesSkipped`.
    Skip,
}

/// Prefix of the source's metric names.
pub const METRIC_PREFIX: &str = "RabbitMqSourceReader";

/// Default `basic.qos` prefetch count.
pub const DEFAULT_PREFETCH_COUNT: u16 = 5000;

type Deserialize<T> = Arc<dyn Fn(&[u8]) -> Result<T, String> + Send + Sync>;

struct Settings<T> {
    uri: String,
    url: String,
    queue: String,
    declare_queue: bool,
    uses_correlation_id: bool,
    auto_ack: bool,
    prefetch_count: u16,
    retain_acknowledged_ids: usize,
    connect_timeout: Duration,
    on_malformed: OnMalformed,
    deserialize: Deserialize<T>,
}

/// Reads a RabbitMQ queue (Flink's `RMQSource`). Made by [`RmqSource::builder`]; add it with
/// `env.from_source(source, name)` and give it a `.uid(..)`.
pub struct RmqSource<T> {
    settings: Arc<Settings<T>>,
}

impl<T: 'static> RmqSource<T> {
    /// A builder.
    pub fn builder() -> RmqSourceBuilder<T> {
        RmqSourceBuilder {
            uri: None,
            queue: None,
            declare_queue: true,
            uses_correlation_id: false,
            auto_ack: false,
            prefetch_count: DEFAULT_PREFETCH_COUNT,
            retain_acknowledged_ids: 0,
            connect_timeout: Duration::from_secs(10),
            on_malformed: OnMalformed::default(),
            deserialize: None,
        }
    }
}

impl<T: Send + 'static> Source<T> for RmqSource<T> {
    fn is_parallel(&self) -> bool {
        !self.settings.uses_correlation_id
    }

    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        Ok(Box::new(RmqReader {
            settings: self.settings.clone(),
            session: None,
            consumer: None,
            acks: AckState::new("RabbitMQ", self.settings.retain_acknowledged_ids),
            received: group.counter("messagesReceived"),
            duplicates: group.counter("duplicatesDropped"),
            skipped: group.counter("messagesSkipped"),
            acked: group.counter("checkpointAcks"),
            reader: ctx.task_name_with_subtasks(),
        }))
    }
}

/// Builds an [`RmqSource`].
pub struct RmqSourceBuilder<T> {
    uri: Option<String>,
    queue: Option<String>,
    declare_queue: bool,
    uses_correlation_id: bool,
    auto_ack: bool,
    prefetch_count: u16,
    retain_acknowledged_ids: usize,
    connect_timeout: Duration,
    on_malformed: OnMalformed,
    deserialize: Option<Deserialize<T>>,
}

impl<T: 'static> RmqSourceBuilder<T> {
    /// The broker: `amqp://user:password@host:port/vhost` (`%2f` is the default vhost `/`;
    /// Flink's `RMQConnectionConfig` in one URI). Required.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// The queue to consume. Required.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Declare the queue (durable, not exclusive, not auto-delete; Flink's `setupQueue`) when a
    /// reader starts (default `true`). With `false` the queue must exist.
    pub fn declare_queue(mut self, declare: bool) -> Self {
        self.declare_queue = declare;
        self
    }

    /// Drop redelivered messages by correlation id: exactly-once (default `false`:
    /// at-least-once). Every message must carry a unique correlation id.
    pub fn uses_correlation_id(mut self, uses: bool) -> Self {
        self.uses_correlation_id = uses;
        self
    }

    /// Let the broker consider messages acknowledged on delivery (no guarantee); for jobs
    /// without checkpointing (default `false`).
    pub fn auto_ack(mut self, auto: bool) -> Self {
        self.auto_ack = auto;
        self
    }

    /// Unacknowledged deliveries the broker sends ahead (`basic.qos`, default 5000). Messages
    /// are acknowledged at checkpoints, so this bounds what one reader takes in per checkpoint
    /// interval.
    pub fn prefetch_count(mut self, count: u16) -> Self {
        self.prefetch_count = count;
        self
    }

    /// With correlation ids: also remember the ids of the last `count` acknowledged messages
    /// (default 0, Flink's behaviour: forget an id once its checkpoint completed). A broker
    /// that crashes can lose acknowledgements of classic queues and redeliver acknowledged
    /// messages after its restart; a window larger than the messages acknowledged in the
    /// broker's last seconds before a crash recognises them. The ids go into every checkpoint.
    pub fn retain_acknowledged_ids(mut self, count: usize) -> Self {
        self.retain_acknowledged_ids = count;
        self
    }

    /// Time to connect (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// What to do with malformed messages (default: fail).
    pub fn on_malformed(mut self, on_malformed: OnMalformed) -> Self {
        self.on_malformed = on_malformed;
        self
    }

    /// How a message body becomes a record (Flink's `DeserializationSchema`); `Err` marks the
    /// message malformed. Required.
    pub fn deserializer(
        mut self,
        deserialize: impl Fn(&[u8]) -> Result<T, String> + Send + Sync + 'static,
    ) -> Self {
        self.deserialize = Some(Arc::new(deserialize));
        self
    }

    /// The source. Does not connect: every reader connects when the job starts.
    ///
    /// # Errors
    /// [`RabbitMqError::Config`] without URI, queue or deserializer, with a URI that is not
    /// `amqp://`, a zero prefetch count, or correlation ids together with `auto_ack`.
    pub fn build(self) -> Result<RmqSource<T>, RabbitMqError> {
        let uri = self.uri.map(|u| u.trim().to_string()).unwrap_or_default();
        if !uri.starts_with("amqp://") {
            return Err(RabbitMqError::Config(format!(
                "the RabbitMQ source needs a broker URI amqp://user:password@host:port/vhost, got `{}`: call .uri(..)",
                without_password(&uri)
            )));
        }
        let queue = self.queue.unwrap_or_default();
        if queue.is_empty() {
            return Err(RabbitMqError::Config(
                "the RabbitMQ source needs a queue: call .queue(\"name\")".into(),
            ));
        }
        let deserialize = self.deserialize.ok_or_else(|| {
            RabbitMqError::Config(
                "the RabbitMQ source needs a deserializer: call .deserializer(|bytes| ..)".into(),
            )
        })?;
        if self.prefetch_count == 0 {
            return Err(RabbitMqError::Config(
                "prefetch_count must be at least 1 (messages are acknowledged at checkpoints)"
                    .into(),
            ));
        }
        if self.auto_ack && self.uses_correlation_id {
            return Err(RabbitMqError::Config(
                "auto_ack gives no guarantee, so correlation ids cannot make it exactly-once; use one or the other".into(),
            ));
        }
        Ok(RmqSource {
            settings: Arc::new(Settings {
                url: without_password(&uri),
                uri,
                queue,
                declare_queue: self.declare_queue,
                uses_correlation_id: self.uses_correlation_id,
                auto_ack: self.auto_ack,
                prefetch_count: self.prefetch_count,
                retain_acknowledged_ids: self.retain_acknowledged_ids,
                connect_timeout: self.connect_timeout,
                on_malformed: self.on_malformed,
                deserialize,
            }),
        })
    }
}

/// Most deliveries emitted per poll.
const MAX_PER_POLL: usize = 500;
/// How long a poll waits for the first delivery.
const POLL_WAIT: Duration = Duration::from_millis(20);

struct RmqReader<T> {
    settings: Arc<Settings<T>>,
    session: Option<Session>,
    consumer: Option<lapin::Consumer>,
    acks: AckState,
    received: Counter,
    duplicates: Counter,
    skipped: Counter,
    acked: Counter,
    reader: String,
}

impl<T> RmqReader<T> {
    fn session(&self) -> &Session {
        self.session.as_ref().expect("opened")
    }

    fn reject(&self, tag: u64) -> Result<(), RabbitMqError> {
        if self.settings.auto_ack {
            return Ok(());
        }
        let s = self.session();
        s.block_on(
            s.channel
                .basic_reject(tag, BasicRejectOptions { requeue: false }),
        )
        .map_err(|e| s.error("rejecting a delivery", e))
    }

    /// Handles one delivery: emits it, drops it as a duplicate, or treats it as malformed.
    fn handle(
        &mut self,
        delivery: lapin::message::Delivery,
        output: &mut SourceOutput<'_, T>,
    ) -> Result<(), RabbitMqError> {
        self.received.inc();
        let tag = delivery.delivery_tag;
        let id = if self.settings.uses_correlation_id {
            match delivery.properties.correlation_id() {
                Some(id) => Some(id.to_string()),
                None => {
                    return self.malformed(
                        tag,
                        format!(
                            "a message of queue '{}' has no correlation id, which uses_correlation_id(true) requires",
                            self.settings.queue
                        ),
                    );
                }
            }
        } else {
            None
        };
        let value = match (self.settings.deserialize)(&delivery.data) {
            Ok(v) => v,
            Err(problem) => {
                return self.malformed(tag, format!("queue '{}': {problem}", self.settings.queue));
            }
        };
        if self.settings.auto_ack {
            output.collect(value);
            return Ok(());
        }
        match self.acks.on_message(id.as_deref()) {
            Verdict::Emit => {
                self.acks.track(tag);
                output.collect(value);
            }
            Verdict::Duplicate => {
                self.duplicates.inc();
                self.reject(tag)?;
            }
        }
        Ok(())
    }

    fn malformed(&self, tag: u64, problem: String) -> Result<(), RabbitMqError> {
        match self.settings.on_malformed {
            OnMalformed::Fail => Err(RabbitMqError::Malformed(problem)),
            OnMalformed::Skip => {
                tracing::warn!(reader = %self.reader, "skipping a malformed message: {problem}");
                self.skipped.inc();
                self.reject(tag)
            }
        }
    }
}

impl<T: Send + 'static> SourceReader<T> for RmqReader<T> {
    fn open(&mut self, _ctx: &RuntimeContext) -> Result<(), BoxError> {
        let s = &self.settings;
        let session = Session::open(&s.uri, &s.url, s.connect_timeout)?;
        let channel = &session.channel;
        if s.declare_queue {
            session
                .block_on(channel.queue_declare(
                    s.queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                ))
                .map_err(|e| session.error(format!("declaring queue '{}'", s.queue), e))?;
        }
        if !s.auto_ack {
            session
                .block_on(channel.basic_qos(s.prefetch_count, BasicQosOptions::default()))
                .map_err(|e| session.error("setting the prefetch count", e))?;
        }
        let consumer = session
            .block_on(channel.basic_consume(
                s.queue.as_str().into(),
                format!("fjord-{}", self.reader).as_str().into(),
                BasicConsumeOptions {
                    no_ack: s.auto_ack,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            ))
            .map_err(|e| session.error(format!("consuming queue '{}'", s.queue), e))?;
        self.consumer = Some(consumer);
        self.session = Some(session);
        Ok(())
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        let mut consumer = self.consumer.take().expect("opened");
        let result = (|| {
            let mut emitted = 0;
            while emitted < MAX_PER_POLL {
                let wait = if emitted == 0 {
                    POLL_WAIT
                } else {
                    Duration::ZERO
                };
                let next = self
                    .session()
                    .block_on(async { tokio::time::timeout(wait, consumer.next()).await });
                match next {
                    Err(_) => break,
                    Ok(None) => {
                        return Err(self.session().error(
                            format!("consuming queue '{}'", self.settings.queue),
                            "the broker cancelled the consumer (was the queue deleted?)",
                        ));
                    }
                    Ok(Some(Err(e))) => {
                        return Err(self
                            .session()
                            .error(format!("consuming queue '{}'", self.settings.queue), e));
                    }
                    Ok(Some(Ok(delivery))) => {
                        self.handle(delivery, output)?;
                        emitted += 1;
                    }
                }
            }
            Ok(if emitted == 0 {
                SourceStatus::NothingAvailable
            } else {
                SourceStatus::MoreAvailable
            })
        })();
        self.consumer = Some(consumer);
        Ok(result?)
    }

    fn snapshot_state(&mut self, checkpoint_id: u64) -> Result<Option<Vec<u8>>, BoxError> {
        let state = self.acks.snapshot(checkpoint_id);
        // Without correlation ids there is nothing to restore (the broker redelivers what was
        // not acknowledged): no state, so the job can be restored at any parallelism.
        Ok(self.settings.uses_correlation_id.then_some(state))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        Ok(self.acks.restore(state)?)
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: u64) -> Result<(), BoxError> {
        let Some(tag) = self.acks.complete(checkpoint_id).0 else {
            return Ok(());
        };
        let s = self.session();
        s.block_on(s.channel.basic_ack(tag, BasicAckOptions { multiple: true }))
            .map_err(|e| s.error("acknowledging deliveries of a completed checkpoint", e))?;
        self.acked.inc();
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.consumer = None;
        if let Some(session) = self.session.take() {
            session.close();
        }
        Ok(())
    }
}
