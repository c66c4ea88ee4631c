//! The ActiveMQ sink over STOMP, with receipts.
//!
//! # Guarantees
//! Every record is sent as a `SEND` frame with a `receipt` header (persistent by default);
//! ActiveMQ answers with the `RECEIPT` once it has taken the message (for a persistent one:
//! once it is stored). Before every checkpoint barrier leaves the task, at the end of input
//! and whenever `max_in_flight` receipts are outstanding, the writer waits for all of them. An
//! `ERROR` frame, a lost connection or a receipt not arriving in time fails the job, which
//! restarts from its last checkpoint and sends the records since then again:
//! **at-least-once** (a message received just before a failure is sent twice). Give messages
//! a correlation id ([`correlation_id`](AmqSinkBuilder::correlation_id)) and read them with an
//! [`AmqSource`](crate::AmqSource) deduplicating by it to drop such duplicates downstream.

use crate::address::Address;
use crate::client::{ClientOptions, Event};
use crate::error::ActiveMqError;
use crate::frame::Frame;
use crate::session::Session;
use crate::source::queue_destination;
use fjord::metrics::Counter;
use fjord::sinks::{Sink, SinkWriter};
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prefix of the sink's metric names.
pub const METRIC_PREFIX: &str = "ActiveMqSinkWriter";

type Serialize<T> = Arc<dyn Fn(&T) -> Vec<u8> + Send + Sync>;
type Extract<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

struct Settings<T> {
    address: Address,
    destination: String,
    correlation_id: Option<Extract<T>>,
    persistent: bool,
    max_in_flight: usize,
    receipt_timeout: Duration,
    client: ClientOptions,
    serialize: Serialize<T>,
}

/// Sends a stream to an ActiveMQ queue or topic over STOMP. Made by [`AmqSink::builder`]; add
/// it with `stream.sink_to(sink, name)`.
pub struct AmqSink<T> {
    settings: Arc<Settings<T>>,
}

impl<T: 'static> AmqSink<T> {
    /// A builder.
    pub fn builder() -> AmqSinkBuilder<T> {
        AmqSinkBuilder {
            url: None,
            destination: None,
            correlation_id: None,
            persistent: true,
            max_in_flight: 1000,
            connect_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
            receipt_timeout: Duration::from_secs(30),
            serialize: None,
        }
    }
}

impl<T: Send + 'static> Sink<T> for AmqSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        let s = &self.settings;
        let session = Session::open(&s.address, &s.client)?;
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        Ok(Box::new(AmqWriter {
            settings: self.settings.clone(),
            session,
            outstanding: HashSet::new(),
            sent: group.counter("messagesSent"),
            receipted: group.counter("messagesReceipted"),
        }))
    }
}

/// Builds an [`AmqSink`].
pub struct AmqSinkBuilder<T> {
    url: Option<String>,
    destination: Option<String>,
    correlation_id: Option<Extract<T>>,
    persistent: bool,
    max_in_flight: usize,
    connect_timeout: Duration,
    heartbeat: Duration,
    receipt_timeout: Duration,
    serialize: Option<Serialize<T>>,
}

impl<T: 'static> AmqSinkBuilder<T> {
    /// The broker's STOMP transport connector:
    /// `stomp://[user[:password]@]host:port[/virtual-host]`. Required.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Send to this queue (`orders` or `/queue/orders`). Either this or
    /// [`topic`](Self::topic).
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.destination = Some(queue_destination(&queue.into()).unwrap_or_default());
        self
    }

    /// Send to this topic (`prices` or `/topic/prices`); only subscribers connected at the
    /// time receive a topic's messages.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        let topic = topic.into();
        let name = topic.trim().strip_prefix("/topic/").unwrap_or(topic.trim());
        self.destination = Some(if name.is_empty() {
            String::new()
        } else {
            format!("/topic/{name}")
        });
        self
    }

    /// The correlation id of each message, from its record (for a deduplicating
    /// [`AmqSource`](crate::AmqSource) downstream: unique per record and the same when the
    /// record is replayed).
    pub fn correlation_id(mut self, id: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.correlation_id = Some(Arc::new(id));
        self
    }

    /// Persistent messages (`persistent:true`, default `true`): stored by the broker before
    /// it sends the receipt, so they survive a broker restart.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Receipts outstanding before the writer waits for them (default 1000).
    pub fn max_in_flight(mut self, messages: usize) -> Self {
        self.max_in_flight = messages;
        self
    }

    /// Time to connect and log in (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// STOMP heart-beat interval offered both ways (default 10 s; zero: none).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// Time to wait for outstanding receipts (default 30 s).
    pub fn receipt_timeout(mut self, timeout: Duration) -> Self {
        self.receipt_timeout = timeout;
        self
    }

    /// How a record becomes a message body (Flink's `SerializationSchema`). Required.
    pub fn serializer(mut self, serialize: impl Fn(&T) -> Vec<u8> + Send + Sync + 'static) -> Self {
        self.serialize = Some(Arc::new(serialize));
        self
    }

    /// The sink. Does not connect: every writer connects when the job starts.
    ///
    /// # Errors
    /// [`ActiveMqError::Config`] without URL, destination or serializer, with a URL that is
    /// not `stomp://host:port`, or with a zero `max_in_flight`.
    pub fn build(self) -> Result<AmqSink<T>, ActiveMqError> {
        let address = Address::parse(self.url.as_deref().unwrap_or_default())?;
        let destination = self.destination.filter(|d| !d.is_empty()).ok_or_else(|| {
            ActiveMqError::Config(
                "the ActiveMQ sink needs a destination: call .queue(\"name\") or .topic(\"name\")"
                    .into(),
            )
        })?;
        let serialize = self.serialize.ok_or_else(|| {
            ActiveMqError::Config(
                "the ActiveMQ sink needs a serializer: call .serializer(|record| bytes)".into(),
            )
        })?;
        if self.max_in_flight == 0 {
            return Err(ActiveMqError::Config(
                "max_in_flight must be at least 1".into(),
            ));
        }
        Ok(AmqSink {
            settings: Arc::new(Settings {
                address,
                destination,
                correlation_id: self.correlation_id,
                persistent: self.persistent,
                max_in_flight: self.max_in_flight,
                receipt_timeout: self.receipt_timeout,
                client: ClientOptions {
                    connect_timeout: self.connect_timeout,
                    heartbeat: self.heartbeat,
                    // Receipts are taken after every send, so a small buffer suffices.
                    capacity: self.max_in_flight.clamp(16, 4096),
                },
                serialize,
            }),
        })
    }
}

struct AmqWriter<T> {
    settings: Arc<Settings<T>>,
    session: Session,
    /// Receipt ids sent and not yet received.
    outstanding: HashSet<String>,
    sent: Counter,
    receipted: Counter,
}

impl<T> AmqWriter<T> {
    fn sending(&self) -> String {
        format!("sending to {}", self.settings.destination)
    }

    /// Takes receipts (and failures) that arrived, waiting up to `wait` for the first.
    fn take_receipts(&mut self, wait: Duration) -> Result<bool, ActiveMqError> {
        let mut took = false;
        let mut wait = wait;
        while let Some(event) = self.session.next_event(wait) {
            wait = Duration::ZERO;
            match event {
                Event::Receipt(id) => {
                    if self.outstanding.remove(&id) {
                        self.receipted.inc();
                        took = true;
                    }
                }
                Event::Message(_) => {}
                other => return Err(self.session.failure(other, &self.sending())),
            }
        }
        Ok(took)
    }

    /// Waits until every outstanding receipt arrived.
    fn wait_for_receipts(&mut self) -> Result<(), ActiveMqError> {
        let timeout = self.settings.receipt_timeout;
        let deadline = Instant::now() + timeout;
        while !self.outstanding.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.session.error(
                    &self.sending(),
                    format!(
                        "{} messages without receipt after {timeout:?}",
                        self.outstanding.len()
                    ),
                ));
            }
            self.take_receipts(left.min(Duration::from_millis(200)))?;
        }
        Ok(())
    }
}

impl<T: Send + 'static> SinkWriter<T> for AmqWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let s = self.settings.clone();
        let receipt = self.session.receipt_id();
        let mut frame = Frame::new("SEND")
            .header("destination", s.destination.clone())
            .header("receipt", receipt.clone());
        if s.persistent {
            frame = frame.header("persistent", "true");
        }
        if let Some(id) = &s.correlation_id {
            frame = frame.header("correlation-id", id(&value));
        }
        let frame = frame.body((s.serialize)(&value));
        let operation = self.sending();
        self.session.send(&[frame], &operation)?;
        self.outstanding.insert(receipt);
        self.sent.inc();
        // Take what arrived, so receipts never pile up in the connection's buffer.
        self.take_receipts(Duration::ZERO)?;
        if self.outstanding.len() >= s.max_in_flight {
            self.wait_for_receipts()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.wait_for_receipts()?)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.outstanding.clear();
        self.session.close();
        Ok(())
    }
}
