//! The RabbitMQ sink (Flink's `RMQSink`) with publisher confirms.
//!
//! # Guarantees
//! The channel is in confirm mode. Every record is published (persistent, `mandatory` by
//! default) and its confirm kept; before every checkpoint barrier leaves the task, at the end
//! of input and whenever `max_in_flight` confirms are outstanding, the writer waits for all of
//! them. A refused (nack) or returned (unroutable) message, or a connection lost before its
//! confirm, fails the job, which restarts from its last checkpoint and publishes the records
//! since then again: **at-least-once** (a message confirmed just before a failure is published
//! twice). Give messages a correlation id
//! ([`correlation_id`](RmqSinkBuilder::correlation_id)) and read them with an
//! [`RmqSource`](crate::RmqSource) that uses correlation ids to drop such duplicates downstream.

use crate::error::RabbitMqError;
use crate::session::Session;
use crate::without_password;
use fjord::metrics::Counter;
use fjord::sinks::{Sink, SinkWriter};
use fjord::types::Timestamp;
use fjord::{BoxError, RuntimeContext};
use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Confirmation, PublisherConfirm};
use std::sync::Arc;
use std::time::Duration;

/// Prefix of the sink's metric names.
pub const METRIC_PREFIX: &str = "RabbitMqSinkWriter";

type Serialize<T> = Arc<dyn Fn(&T) -> Vec<u8> + Send + Sync>;
type Extract<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

struct Settings<T> {
    uri: String,
    url: String,
    exchange: String,
    routing_key: String,
    routing_key_fn: Option<Extract<T>>,
    declare_queue: Option<String>,
    correlation_id: Option<Extract<T>>,
    persistent: bool,
    mandatory: bool,
    max_in_flight: usize,
    connect_timeout: Duration,
    confirm_timeout: Duration,
    serialize: Serialize<T>,
}

/// Publishes a stream to RabbitMQ (Flink's `RMQSink`). Made by [`RmqSink::builder`]; add it
/// with `stream.sink_to(sink, name)`.
pub struct RmqSink<T> {
    settings: Arc<Settings<T>>,
}

impl<T: 'static> RmqSink<T> {
    /// A builder.
    pub fn builder() -> RmqSinkBuilder<T> {
        RmqSinkBuilder {
            uri: None,
            exchange: String::new(),
            routing_key: None,
            routing_key_fn: None,
            declare_queue: None,
            correlation_id: None,
            persistent: true,
            mandatory: true,
            max_in_flight: 1000,
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(30),
            serialize: None,
        }
    }
}

impl<T: Send + 'static> Sink<T> for RmqSink<T> {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<T>>, BoxError> {
        let s = &self.settings;
        let session = Session::open(&s.uri, &s.url, s.connect_timeout)?;
        if let Some(queue) = &s.declare_queue {
            session
                .block_on(session.channel.queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                ))
                .map_err(|e| session.error(format!("declaring queue '{queue}'"), e))?;
        }
        session
            .block_on(
                session
                    .channel
                    .confirm_select(ConfirmSelectOptions::default()),
            )
            .map_err(|e| session.error("enabling publisher confirms", e))?;
        let group = ctx.metric_group().add_group(METRIC_PREFIX);
        Ok(Box::new(RmqWriter {
            settings: self.settings.clone(),
            session,
            in_flight: Vec::new(),
            published: group.counter("messagesPublished"),
            confirmed: group.counter("messagesConfirmed"),
        }))
    }
}

/// Builds an [`RmqSink`].
pub struct RmqSinkBuilder<T> {
    uri: Option<String>,
    exchange: String,
    routing_key: Option<String>,
    routing_key_fn: Option<Extract<T>>,
    declare_queue: Option<String>,
    correlation_id: Option<Extract<T>>,
    persistent: bool,
    mandatory: bool,
    max_in_flight: usize,
    connect_timeout: Duration,
    confirm_timeout: Duration,
    serialize: Option<Serialize<T>>,
}

impl<T: 'static> RmqSinkBuilder<T> {
    /// The broker: `amqp://user:password@host:port/vhost`. Required.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.uri = Some(uri.into());
        self
    }

    /// Publish to this queue through the default exchange, declaring it (durable) when a
    /// writer starts: Flink's `RMQSink(config, queueName, schema)`. Either this or
    /// [`exchange`](Self::exchange) with a routing key.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        self.exchange = String::new();
        self.routing_key = Some(queue.clone());
        self.declare_queue = Some(queue);
        self
    }

    /// Publish to this exchange (which must exist) with [`routing_key`](Self::routing_key) or
    /// [`routing_key_fn`](Self::routing_key_fn) (Flink's `RMQSinkPublishOptions`).
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.exchange = exchange.into();
        self.declare_queue = None;
        self
    }

    /// The routing key of every message.
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.routing_key = Some(key.into());
        self
    }

    /// The routing key of each message, from its record.
    pub fn routing_key_fn(mut self, key: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.routing_key_fn = Some(Arc::new(key));
        self
    }

    /// The correlation id of each message, from its record (for an exactly-once
    /// [`RmqSource`](crate::RmqSource) downstream: make it unique per record and the same when
    /// the record is replayed).
    pub fn correlation_id(mut self, id: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        self.correlation_id = Some(Arc::new(id));
        self
    }

    /// Persistent messages (delivery mode 2, default `true`): they survive a broker restart in
    /// a durable queue.
    pub fn persistent(mut self, persistent: bool) -> Self {
        self.persistent = persistent;
        self
    }

    /// Publish with `mandatory` (default `true`): a message no queue receives is returned and
    /// fails the job instead of vanishing.
    pub fn mandatory(mut self, mandatory: bool) -> Self {
        self.mandatory = mandatory;
        self
    }

    /// Confirms outstanding before the writer waits for them (default 1000).
    pub fn max_in_flight(mut self, messages: usize) -> Self {
        self.max_in_flight = messages;
        self
    }

    /// Time to connect (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time to wait for outstanding confirms (default 30 s).
    pub fn confirm_timeout(mut self, timeout: Duration) -> Self {
        self.confirm_timeout = timeout;
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
    /// [`RabbitMqError::Config`] without URI, target or serializer, with a URI that is not
    /// `amqp://`, or with a zero `max_in_flight`.
    pub fn build(self) -> Result<RmqSink<T>, RabbitMqError> {
        let uri = self.uri.map(|u| u.trim().to_string()).unwrap_or_default();
        if !uri.starts_with("amqp://") {
            return Err(RabbitMqError::Config(format!(
                "the RabbitMQ sink needs a broker URI amqp://user:password@host:port/vhost, got `{}`: call .uri(..)",
                without_password(&uri)
            )));
        }
        if self.routing_key.is_none() && self.routing_key_fn.is_none() {
            return Err(RabbitMqError::Config(
                "the RabbitMQ sink needs a target: call .queue(\"name\"), or .exchange(\"name\") with .routing_key(..) or .routing_key_fn(..)".into(),
            ));
        }
        let serialize = self.serialize.ok_or_else(|| {
            RabbitMqError::Config(
                "the RabbitMQ sink needs a serializer: call .serializer(|record| bytes)".into(),
            )
        })?;
        if self.max_in_flight == 0 {
            return Err(RabbitMqError::Config(
                "max_in_flight must be at least 1".into(),
            ));
        }
        Ok(RmqSink {
            settings: Arc::new(Settings {
                url: without_password(&uri),
                uri,
                exchange: self.exchange,
                routing_key: self.routing_key.unwrap_or_default(),
                routing_key_fn: self.routing_key_fn,
                declare_queue: self.declare_queue,
                correlation_id: self.correlation_id,
                persistent: self.persistent,
                mandatory: self.mandatory,
                max_in_flight: self.max_in_flight,
                connect_timeout: self.connect_timeout,
                confirm_timeout: self.confirm_timeout,
                serialize,
            }),
        })
    }
}

struct RmqWriter<T> {
    settings: Arc<Settings<T>>,
    session: Session,
    in_flight: Vec<PublisherConfirm>,
    published: Counter,
    confirmed: Counter,
}

impl<T> RmqWriter<T> {
    /// Waits for every outstanding confirm.
    fn wait_for_confirms(&mut self) -> Result<(), RabbitMqError> {
        if self.in_flight.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.in_flight);
        let count = pending.len();
        let timeout = self.settings.confirm_timeout;
        let results = self.session.block_on(async {
            tokio::time::timeout(timeout, futures::future::join_all(pending)).await
        });
        let results = results.map_err(|_| {
            self.session.error(
                "waiting for publisher confirms",
                format!("{count} messages unconfirmed after {timeout:?}"),
            )
        })?;
        let mut refused = 0;
        let mut first = None;
        for r in results {
            let confirmation =
                r.map_err(|e| self.session.error("waiting for publisher confirms", e))?;
            let problem = match confirmation {
                Confirmation::Ack(None) | Confirmation::NotRequested => None,
                Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)) => {
                    Some(format!(
                        "returned by the broker: {} {} (exchange '{}', routing key '{}'); is a queue bound to it?",
                        returned.reply_code,
                        returned.reply_text,
                        returned.delivery.exchange,
                        returned.delivery.routing_key
                    ))
                }
                Confirmation::Nack(None) => Some("refused (nack) by the broker".to_string()),
            };
            if let Some(p) = problem {
                refused += 1;
                first.get_or_insert(p);
            } else {
                self.confirmed.inc();
            }
        }
        match first {
            None => Ok(()),
            Some(reason) => Err(RabbitMqError::NotConfirmed {
                url: self.settings.url.clone(),
                count: refused,
                reason,
            }),
        }
    }
}

impl<T: Send + 'static> SinkWriter<T> for RmqWriter<T> {
    fn write(&mut self, value: T, _timestamp: Option<Timestamp>) -> Result<(), BoxError> {
        let s = &self.settings;
        let body = (s.serialize)(&value);
        let routing_key = match &s.routing_key_fn {
            Some(f) => f(&value),
            None => s.routing_key.clone(),
        };
        let mut properties = BasicProperties::default();
        if s.persistent {
            properties = properties.with_delivery_mode(2);
        }
        if let Some(id) = &s.correlation_id {
            properties = properties.with_correlation_id(id(&value).as_str().into());
        }
        let channel = &self.session.channel;
        let confirm = self
            .session
            .block_on(channel.basic_publish(
                s.exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: s.mandatory,
                    ..BasicPublishOptions::default()
                },
                &body,
                properties,
            ))
            .map_err(|e| {
                self.session
                    .error(format!("publishing to exchange '{}'", s.exchange), e)
            })?;
        self.published.inc();
        self.in_flight.push(confirm);
        if self.in_flight.len() >= s.max_in_flight {
            self.wait_for_confirms()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        Ok(self.wait_for_confirms()?)
    }

    fn close(&mut self) -> Result<(), BoxError> {
        self.in_flight.clear();
        self.session.close();
        Ok(())
    }
}
