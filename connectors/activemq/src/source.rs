//! The ActiveMQ source (Flink's `RMQSource` pattern over STOMP, as Bahir's `AMQSource` offers
//! for ActiveMQ).
//!
//! # Guarantees
//! Every reader subscribes to the queue with `ack:client-individual` and acknowledges a
//! message only when the checkpoint covering it completes. After a failure the broker
//! redelivers everything not yet acknowledged, and the job restarts from its last completed
//! checkpoint:
//! - without deduplication: **at-least-once** (what was processed after that checkpoint is
//!   processed again, and so is a message whose checkpoint completed but whose
//!   acknowledgement was lost);
//! - with [`dedupe_by`](AmqSourceBuilder::dedupe_by) [`DedupeBy::MessageId`] (the broker's
//!   `message-id`, the same on every redelivery) or [`DedupeBy::CorrelationId`] (the
//!   producer's `correlation-id`, which also catches a producer's retried sends): the ids of
//!   messages processed but not yet acknowledged are part of the checkpoint, and a message
//!   whose id is among them is dropped: **exactly-once**. Such a source runs with parallelism
//!   1 (as Flink's with correlation ids), since the ids are remembered per reader.
//!
//! Checkpointing must be enabled: without it nothing is ever acknowledged and the source stops
//! once `prefetch` messages are unacknowledged. For a job without checkpoints use
//! [`ack_on_receipt(true)`](AmqSourceBuilder::ack_on_receipt) (no guarantee, as in Flink).

use crate::acks::AckState;
use crate::address::Address;
use crate::client::{ClientOptions, Event};
use crate::error::ActiveMqError;
use crate::frame::Frame;
use crate::session::Session;
use fjord::metrics::Counter;
use fjord::sources::acknowledging::Verdict;
use fjord::sources::{Source, SourceOutput, SourceReader, SourceStatus};
use fjord::{BoxError, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// What the source does with a message its deserializer refuses (or that lacks the id it
/// deduplicates by).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMalformed {
    /// Fail the job with [`ActiveMqError::Malformed`] (default). The message stays
    /// unacknowledged and is redelivered after the restart, so the job fails again until the
    /// message is removed or the setting changed.
    #[default]
    Fail,
    /// `NACK` the message, which ActiveMQ moves to its dead-letter queue (`ActiveMQ.DLQ`
    /// unless the broker's policy names another), log a warning and count it in
    /// `messagesDeadLettered`.
    DeadLetter,
}

/// Which id recognises a redelivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DedupeBy {
    /// No deduplication: at-least-once (default); the source may run in parallel.
    #[default]
    None,
    /// The broker's `message-id` header (JMS message id), stable across redeliveries and
    /// broker restarts: exactly-once for every producer.
    MessageId,
    /// The producer's `correlation-id` header (JMS correlation id), which must be unique per
    /// message: exactly-once, and a producer's retried send is dropped as well.
    CorrelationId,
}

impl DedupeBy {
    fn header(self) -> Option<&'static str> {
        match self {
            DedupeBy::None => None,
            DedupeBy::MessageId => Some("message-id"),
            DedupeBy::CorrelationId => Some("correlation-id"),
        }
    }
}

/// Prefix of the source's metric names.
pub const METRIC_PREFIX: &str = "ActiveMqSourceReader";

/// Default prefetch (`activemq.prefetchSize`): unacknowledged messages the broker sends ahead.
pub const DEFAULT_PREFETCH: u32 = 1000;

type Deserialize<T> = Arc<dyn Fn(&[u8]) -> Result<T, String> + Send + Sync>;

struct Settings<T> {
    address: Address,
    destination: String,
    dedupe_by: DedupeBy,
    ack_on_receipt: bool,
    prefetch: u32,
    retain_acknowledged_ids: usize,
    client: ClientOptions,
    on_malformed: OnMalformed,
    deserialize: Deserialize<T>,
}

/// Reads an ActiveMQ queue over STOMP. Made by [`AmqSource::builder`]; add it with
/// `env.from_source(source, name)` and give it a `.uid(..)`.
pub struct AmqSource<T> {
    settings: Arc<Settings<T>>,
}

impl<T: 'static> AmqSource<T> {
    /// A builder.
    pub fn builder() -> AmqSourceBuilder<T> {
        AmqSourceBuilder {
            url: None,
            queue: None,
            dedupe_by: DedupeBy::None,
            ack_on_receipt: false,
            prefetch: DEFAULT_PREFETCH,
            retain_acknowledged_ids: 0,
            connect_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
            on_malformed: OnMalformed::default(),
            deserialize: None,
        }
    }
}

impl<T: Send + 'static> Source<T> for AmqSource<T> {
    fn is_parallel(&self) -> bool {
        self.settings.dedupe_by == DedupeBy::None
    }

    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        Ok(Box::new(AmqReader {
            settings: self.settings.clone(),
            session: None,
            acks: AckState::new("ActiveMQ", self.settings.retain_acknowledged_ids),
            received: group.counter("messagesReceived"),
            duplicates: group.counter("duplicatesDropped"),
            dead_lettered: group.counter("messagesDeadLettered"),
            acknowledged: group.counter("messagesAcknowledged"),
            reader: ctx.task_name_with_subtasks(),
        }))
    }
}

/// Builds an [`AmqSource`].
pub struct AmqSourceBuilder<T> {
    url: Option<String>,
    queue: Option<String>,
    dedupe_by: DedupeBy,
    ack_on_receipt: bool,
    prefetch: u32,
    retain_acknowledged_ids: usize,
    connect_timeout: Duration,
    heartbeat: Duration,
    on_malformed: OnMalformed,
    deserialize: Option<Deserialize<T>>,
}

impl<T: 'static> AmqSourceBuilder<T> {
    /// The broker's STOMP transport connector:
    /// `stomp://[user[:password]@]host:port[/virtual-host]`. Required.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The queue to consume (`orders`, or the destination `/queue/orders`). Required.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Drop redelivered messages by this id: exactly-once (default [`DedupeBy::None`]:
    /// at-least-once).
    pub fn dedupe_by(mut self, by: DedupeBy) -> Self {
        self.dedupe_by = by;
        self
    }

    /// Acknowledge every message as soon as it is emitted (no guarantee); for jobs without
    /// checkpointing (default `false`).
    pub fn ack_on_receipt(mut self, on_receipt: bool) -> Self {
        self.ack_on_receipt = on_receipt;
        self
    }

    /// Unacknowledged messages the broker sends ahead (`activemq.prefetchSize`, default 1000).
    /// Messages are acknowledged at checkpoints, so this bounds what one reader takes in per
    /// checkpoint interval.
    pub fn prefetch(mut self, messages: u32) -> Self {
        self.prefetch = messages;
        self
    }

    /// With deduplication: also remember the ids of the last `count` acknowledged messages
    /// (default 0, Flink's behaviour: forget an id once its checkpoint completed). A broker
    /// that crashes between receiving an acknowledgement and storing it redelivers the
    /// message after its restart; a window larger than the messages acknowledged in the
    /// broker's last moments recognises it. The ids go into every checkpoint.
    pub fn retain_acknowledged_ids(mut self, count: usize) -> Self {
        self.retain_acknowledged_ids = count;
        self
    }

    /// Time to connect and log in (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// STOMP heart-beat interval offered both ways (default 10 s; zero: none). A broker
    /// silent for twice the agreed interval and 5 s counts as gone and fails the job.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
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
    /// [`ActiveMqError::Config`] without URL, queue or deserializer, with a URL that is not
    /// `stomp://host:port`, a zero prefetch, or deduplication together with
    /// `ack_on_receipt`.
    pub fn build(self) -> Result<AmqSource<T>, ActiveMqError> {
        let address = Address::parse(self.url.as_deref().unwrap_or_default())?;
        let destination =
            queue_destination(self.queue.as_deref().unwrap_or_default()).ok_or_else(|| {
                ActiveMqError::Config(
                    "the ActiveMQ source needs a queue: call .queue(\"name\")".into(),
                )
            })?;
        let deserialize = self.deserialize.ok_or_else(|| {
            ActiveMqError::Config(
                "the ActiveMQ source needs a deserializer: call .deserializer(|bytes| ..)".into(),
            )
        })?;
        if self.prefetch == 0 {
            return Err(ActiveMqError::Config(
                "prefetch must be at least 1 (messages are acknowledged at checkpoints)".into(),
            ));
        }
        if self.ack_on_receipt && self.dedupe_by != DedupeBy::None {
            return Err(ActiveMqError::Config(
                "ack_on_receipt gives no guarantee, so deduplication cannot make it exactly-once; use one or the other".into(),
            ));
        }
        Ok(AmqSource {
            settings: Arc::new(Settings {
                address,
                destination,
                dedupe_by: self.dedupe_by,
                ack_on_receipt: self.ack_on_receipt,
                prefetch: self.prefetch,
                retain_acknowledged_ids: self.retain_acknowledged_ids,
                client: ClientOptions {
                    connect_timeout: self.connect_timeout,
                    heartbeat: self.heartbeat,
                    capacity: (self.prefetch as usize).clamp(16, 4096),
                },
                on_malformed: self.on_malformed,
                deserialize,
            }),
        })
    }
}

/// `/queue/name` for `name` or `/queue/name`; `None` when empty or another kind of destination.
pub(crate) fn queue_destination(queue: &str) -> Option<String> {
    let queue = queue.trim();
    let name = queue.strip_prefix("/queue/").unwrap_or(queue);
    (!name.is_empty() && !name.starts_with('/')).then(|| format!("/queue/{name}"))
}

/// Most messages emitted per poll.
const MAX_PER_POLL: usize = 500;
/// How long a poll waits for the first message.
const POLL_WAIT: Duration = Duration::from_millis(20);
/// How long the broker may take to confirm the subscription.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The subscription's id on its connection.
const SUBSCRIPTION: &str = "0";

struct AmqReader<T> {
    settings: Arc<Settings<T>>,
    session: Option<Session>,
    acks: AckState,
    received: Counter,
    duplicates: Counter,
    dead_lettered: Counter,
    acknowledged: Counter,
    reader: String,
}

impl<T> AmqReader<T> {
    fn session(&mut self) -> &mut Session {
        self.session.as_mut().expect("opened")
    }

    fn consuming(&self) -> String {
        format!("consuming {}", self.settings.destination)
    }

    /// Handles one message: emits it, drops it as a duplicate, or treats it as malformed;
    /// frames to send at the end of the poll go to `replies`.
    fn handle(
        &mut self,
        message: Frame,
        output: &mut SourceOutput<'_, T>,
        replies: &mut Vec<Frame>,
    ) -> Result<(), ActiveMqError> {
        self.received.inc();
        let s = self.settings.clone();
        let Some(ack) = message.get("ack").map(str::to_string) else {
            let operation = self.consuming();
            return Err(self.session().error(
                &operation,
                "the broker sent a MESSAGE without an ack header to a client-individual subscription",
            ));
        };
        let id = match s.dedupe_by.header() {
            None => None,
            Some(header) => match message.get(header) {
                Some(id) if !id.is_empty() => Some(id.to_string()),
                _ => {
                    return self.malformed(
                        &ack,
                        format!(
                            "a message of {} has no {header} header, by which the source deduplicates",
                            s.destination
                        ),
                        replies,
                    );
                }
            },
        };
        let value = match (s.deserialize)(&message.body) {
            Ok(v) => v,
            Err(problem) => {
                return self.malformed(&ack, format!("{}: {problem}", s.destination), replies);
            }
        };
        if s.ack_on_receipt {
            output.collect(value);
            replies.push(Frame::new("ACK").header("id", ack));
            self.acknowledged.inc();
            return Ok(());
        }
        // A duplicate's ack id too is acknowledged with the next completed checkpoint.
        self.acks.track(ack);
        match self.acks.on_message(id.as_deref()) {
            Verdict::Emit => output.collect(value),
            Verdict::Duplicate => self.duplicates.inc(),
        }
        Ok(())
    }

    fn malformed(
        &mut self,
        ack: &str,
        problem: String,
        replies: &mut Vec<Frame>,
    ) -> Result<(), ActiveMqError> {
        match self.settings.on_malformed {
            OnMalformed::Fail => Err(ActiveMqError::Malformed(problem)),
            OnMalformed::DeadLetter => {
                tracing::warn!(reader = %self.reader, "sending a malformed message to the dead-letter queue: {problem}");
                self.dead_lettered.inc();
                replies.push(Frame::new("NACK").header("id", ack));
                Ok(())
            }
        }
    }
}

impl<T: Send + 'static> SourceReader<T> for AmqReader<T> {
    fn open(&mut self, _ctx: &RuntimeContext) -> Result<(), BoxError> {
        let s = self.settings.clone();
        let mut session = Session::open(&s.address, &s.client)?;
        let subscribe = Frame::new("SUBSCRIBE")
            .header("id", SUBSCRIPTION)
            .header("destination", s.destination.clone())
            .header("ack", "client-individual")
            .header("activemq.prefetchSize", s.prefetch.to_string());
        session.request(
            subscribe,
            &format!("subscribing to {}", s.destination),
            SUBSCRIBE_TIMEOUT,
        )?;
        self.session = Some(session);
        Ok(())
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        let mut emitted = 0;
        let mut replies = Vec::new();
        let result = loop {
            if emitted >= MAX_PER_POLL {
                break Ok(());
            }
            let wait = if emitted == 0 {
                POLL_WAIT
            } else {
                Duration::ZERO
            };
            match self.session().next_event(wait) {
                None => break Ok(()),
                Some(Event::Message(m)) => {
                    if let Err(e) = self.handle(m, output, &mut replies) {
                        break Err(e);
                    }
                    emitted += 1;
                }
                Some(Event::Receipt(_)) => {}
                Some(other) => {
                    let operation = self.consuming();
                    break Err(self.session().failure(other, &operation));
                }
            }
        };
        result?;
        if !replies.is_empty() {
            let operation = format!("acknowledging messages of {}", self.settings.destination);
            self.session().send(&replies, &operation)?;
        }
        Ok(if emitted == 0 {
            SourceStatus::NothingAvailable
        } else {
            SourceStatus::MoreAvailable
        })
    }

    fn snapshot_state(&mut self, checkpoint_id: u64) -> Result<Option<Vec<u8>>, BoxError> {
        let state = self.acks.snapshot(checkpoint_id);
        // Without deduplication there is nothing to restore (the broker redelivers what was
        // not acknowledged): no state, so the job can be restored at any parallelism.
        Ok((self.settings.dedupe_by != DedupeBy::None).then_some(state))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        Ok(self.acks.restore(state)?)
    }

    fn notify_checkpoint_complete(&mut self, checkpoint_id: u64) -> Result<(), BoxError> {
        let acks = self.acks.complete(checkpoint_id);
        if acks.is_empty() {
            return Ok(());
        }
        let count = acks.len() as u64;
        let frames: Vec<Frame> = acks
            .into_iter()
            .map(|ack| Frame::new("ACK").header("id", ack))
            .collect();
        let operation = format!(
            "acknowledging the messages of checkpoint {checkpoint_id} of {}",
            self.settings.destination
        );
        self.session().send(&frames, &operation)?;
        self.acknowledged.add(count);
        Ok(())
    }

    fn close(&mut self) -> Result<(), BoxError> {
        if let Some(session) = self.session.take() {
            session.close();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_become_queue_destinations() {
        assert_eq!(
            queue_destination("orders").as_deref(),
            Some("/queue/orders")
        );
        assert_eq!(
            queue_destination(" /queue/a.b ").as_deref(),
            Some("/queue/a.b")
        );
        assert_eq!(queue_destination(""), None);
        assert_eq!(queue_destination("/topic/x"), None);
    }

    #[test]
    fn builder_refuses_incomplete_or_contradictory_settings() {
        let ok = || {
            AmqSource::<usize>::builder()
                .url("stomp://127.0.0.1:61613")
                .queue("q")
                .deserializer(|b: &[u8]| Ok(b.len()))
        };
        assert!(ok().build().is_ok());
        let cases = [
            (ok().url("amqp://h:1"), "stomp://"),
            (ok().queue(""), "needs a queue"),
            (ok().prefetch(0), "prefetch"),
            (
                ok().ack_on_receipt(true).dedupe_by(DedupeBy::MessageId),
                "one or the other",
            ),
        ];
        for (builder, expected) in cases {
            let e = builder.build().err().expect("refused").to_string();
            assert!(e.contains(expected), "{e}");
        }
        let e = AmqSource::<usize>::builder()
            .url("stomp://h:1")
            .queue("q")
            .build()
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("deserializer"), "{e}");
    }
}
