//! The `rabbitmq` connector: a queue as a table, read by Fjord's `RmqSource` and written by its
//! `RmqSink` (crate `fjord-rabbitmq`), one row per message body in the `csv` or `json` format of
//! the `filesystem` and `kafka` connectors. Options: `uri`, `queue`, `format` and its options,
//! `scan.uses-correlation-id` (exactly-once reading, needs checkpointing),
//! `scan.prefetch-count`, `sink.correlation-id-column` (a column whose text becomes each
//! message's correlation id). The source acknowledges on checkpoint completion (so
//! `execution.checkpointing.interval` must be set); the sink publishes with confirms
//! (at-least-once). A body that does not read fails the job, unless
//! `<format>.ignore-parse-errors` is set, which rejects it (to the queue's dead-letter exchange,
//! if any) and goes on.

use super::format::{self, Format};
use crate::plan::TableDef;
use crate::types::{Row, Schema};
use fjord_rabbitmq::{OnMalformed, RmqSink, RmqSource};
use std::collections::BTreeMap;

const OPTIONS: &[&str] = &[
    "uri",
    "queue",
    "scan.uses-correlation-id",
    "scan.prefetch-count",
    "sink.correlation-id-column",
];

/// The options of a RabbitMQ table.
#[derive(Debug, Clone)]
pub struct RabbitMqTableConfig {
    /// `uri`: `amqp://user:password@host:port/vhost`.
    pub uri: String,
    /// `queue`.
    pub queue: String,
    /// `scan.uses-correlation-id`.
    pub uses_correlation_id: bool,
    /// `scan.prefetch-count`.
    pub prefetch_count: Option<u16>,
    /// `sink.correlation-id-column`: the index of the column.
    pub correlation_id_column: Option<usize>,
    /// `format` and its options.
    pub format: Format,
    /// `<format>.ignore-parse-errors`.
    pub ignore_parse_errors: bool,
    /// The columns.
    pub schema: Schema,
}

impl RabbitMqTableConfig {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// An unknown option or format, a missing `uri` or `queue`, a bad prefetch count, an unknown
    /// correlation id column.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o: &BTreeMap<String, String> = &table.options;
        let (format, ignore_parse_errors) = format::from_options(o, OPTIONS)?;
        format::check_schema(&format, &table.schema)?;
        let uri = o
            .get("uri")
            .filter(|u| u.trim().starts_with("amqp://"))
            .ok_or("set 'uri' to the broker, such as 'amqp://guest:guest@localhost:5672/%2f'")?
            .trim()
            .to_string();
        let queue = o
            .get("queue")
            .filter(|q| !q.trim().is_empty())
            .ok_or("set 'queue' to the RabbitMQ queue of the table")?
            .clone();
        let prefetch_count =
            match o.get("scan.prefetch-count") {
                None => None,
                Some(n) => Some(n.trim().parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(
                    || format!("'scan.prefetch-count' = '{n}' must be a number from 1 to 65535"),
                )?),
            };
        let correlation_id_column = match o.get("sink.correlation-id-column") {
            None => None,
            Some(c) => Some(
                table
                    .schema
                    .columns
                    .iter()
                    .position(|col| &col.name == c)
                    .ok_or_else(|| {
                        format!("'sink.correlation-id-column' = '{c}' is not a column of the table")
                    })?,
            ),
        };
        Ok(RabbitMqTableConfig {
            uri,
            queue,
            uses_correlation_id: super::bool_option(o, "scan.uses-correlation-id", false)?,
            prefetch_count,
            correlation_id_column,
            format,
            ignore_parse_errors,
            schema: table.schema.clone(),
        })
    }

    /// The source.
    ///
    /// # Errors
    /// What `RmqSource`'s builder refuses.
    pub fn source(&self) -> Result<RmqSource<Row>, String> {
        let ignore = self.ignore_parse_errors;
        let mut b = RmqSource::builder()
            .uri(&self.uri)
            .queue(&self.queue)
            .uses_correlation_id(self.uses_correlation_id)
            .on_malformed(if ignore {
                OnMalformed::Skip
            } else {
                OnMalformed::Fail
            })
            .deserializer(super::kafka::message_decoder(
                self.format.clone(),
                self.schema.clone(),
                ignore,
            ));
        if let Some(n) = self.prefetch_count {
            b = b.prefetch_count(n);
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The sink.
    ///
    /// # Errors
    /// What `RmqSink`'s builder refuses.
    pub fn sink(&self) -> Result<RmqSink<Row>, String> {
        let mut b = RmqSink::builder()
            .uri(&self.uri)
            .queue(&self.queue)
            .serializer(super::kafka::message_encoder(
                self.format.clone(),
                self.schema.clone(),
                "rabbitmq",
            )?);
        if let Some(c) = self.correlation_id_column {
            b = b.correlation_id(super::kafka::column_text(c));
        }
        b.build().map_err(|e| e.to_string())
    }
}
