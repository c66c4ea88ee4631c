//! The `activemq` connector: an ActiveMQ queue as a table, read by Fjord's `AmqSource` and
//! written by its `AmqSink` (crate `fjord-activemq`, STOMP 1.2), one row per message body in
//! the `csv` or `json` format of the `filesystem` and `kafka` connectors. Options: `url`
//! (`stomp://[user[:password]@]host:port`), `queue`, `format` and its options,
//! `scan.dedupe-by` (`none`, `message-id` or `correlation-id`: exactly-once reading, needs
//! checkpointing), `scan.prefetch`, `scan.ack-on-receipt` (for jobs without checkpointing),
//! `sink.correlation-id-column` (a column whose text becomes each message's correlation id).
//! The source acknowledges on checkpoint completion (so `execution.checkpointing.interval`
//! must be set, or `scan.ack-on-receipt` = `true`); the sink sends with receipts
//! (at-least-once). A body that does not read fails the job, unless
//! `<format>.ignore-parse-errors` is set, which sends it to ActiveMQ's dead-letter queue and
//! goes on.

use super::format::{self, Format};
use crate::plan::TableDef;
use crate::types::{Row, Schema};
use fjord_activemq::{AmqSink, AmqSource, DedupeBy, OnMalformed};
use std::collections::BTreeMap;

const OPTIONS: &[&str] = &[
    "url",
    "queue",
    "scan.dedupe-by",
    "scan.prefetch",
    "scan.ack-on-receipt",
    "sink.correlation-id-column",
];

/// The options of an ActiveMQ table.
#[derive(Debug, Clone)]
pub struct ActiveMqTableConfig {
    /// `url`: `stomp://[user[:password]@]host:port`.
    pub url: String,
    /// `queue`.
    pub queue: String,
    /// `scan.dedupe-by`.
    pub dedupe_by: DedupeBy,
    /// `scan.prefetch`.
    pub prefetch: Option<u32>,
    /// `scan.ack-on-receipt`.
    pub ack_on_receipt: bool,
    /// `sink.correlation-id-column`: the index of the column.
    pub correlation_id_column: Option<usize>,
    /// `format` and its options.
    pub format: Format,
    /// `<format>.ignore-parse-errors`.
    pub ignore_parse_errors: bool,
    /// The columns.
    pub schema: Schema,
}

impl ActiveMqTableConfig {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// An unknown option or format, a missing `url` or `queue`, a bad prefetch or
    /// `scan.dedupe-by`, an unknown correlation id column, deduplication together with
    /// `scan.ack-on-receipt`.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o: &BTreeMap<String, String> = &table.options;
        let (format, ignore_parse_errors) = format::from_options(o, OPTIONS)?;
        format::check_schema(&format, &table.schema)?;
        let url = o
            .get("url")
            .filter(|u| u.trim().starts_with("stomp://"))
            .ok_or("set 'url' to the broker's STOMP connector, such as 'stomp://localhost:61613'")?
            .trim()
            .to_string();
        let queue = o
            .get("queue")
            .filter(|q| !q.trim().is_empty())
            .ok_or("set 'queue' to the ActiveMQ queue of the table")?
            .trim()
            .to_string();
        let dedupe_by = match o
            .get("scan.dedupe-by")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => DedupeBy::None,
            Some(v) if v == "none" => DedupeBy::None,
            Some(v) if v == "message-id" => DedupeBy::MessageId,
            Some(v) if v == "correlation-id" => DedupeBy::CorrelationId,
            Some(v) => {
                return Err(format!(
                    "'scan.dedupe-by' = '{v}' must be 'none', 'message-id' or 'correlation-id'"
                ));
            }
        };
        let prefetch = match o.get("scan.prefetch") {
            None => None,
            Some(n) => Some(
                n.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("'scan.prefetch' = '{n}' must be a positive number"))?,
            ),
        };
        let ack_on_receipt = super::bool_option(o, "scan.ack-on-receipt", false)?;
        if ack_on_receipt && dedupe_by != DedupeBy::None {
            return Err(
                "'scan.ack-on-receipt' = 'true' gives no guarantee, so 'scan.dedupe-by' cannot make it exactly-once; set one or the other".into(),
            );
        }
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
        Ok(ActiveMqTableConfig {
            url,
            queue,
            dedupe_by,
            prefetch,
            ack_on_receipt,
            correlation_id_column,
            format,
            ignore_parse_errors,
            schema: table.schema.clone(),
        })
    }

    /// The source.
    ///
    /// # Errors
    /// What `AmqSource`'s builder refuses.
    pub fn source(&self) -> Result<AmqSource<Row>, String> {
        let ignore = self.ignore_parse_errors;
        let mut b = AmqSource::builder()
            .url(&self.url)
            .queue(&self.queue)
            .dedupe_by(self.dedupe_by)
            .ack_on_receipt(self.ack_on_receipt)
            .on_malformed(if ignore {
                OnMalformed::DeadLetter
            } else {
                OnMalformed::Fail
            })
            .deserializer(super::kafka::message_decoder(
                self.format.clone(),
                self.schema.clone(),
                ignore,
            ));
        if let Some(n) = self.prefetch {
            b = b.prefetch(n);
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The sink.
    ///
    /// # Errors
    /// What `AmqSink`'s builder refuses.
    pub fn sink(&self) -> Result<AmqSink<Row>, String> {
        let mut b = AmqSink::builder()
            .url(&self.url)
            .queue(&self.queue)
            .serializer(super::kafka::message_encoder(
                self.format.clone(),
                self.schema.clone(),
                "activemq",
            )?);
        if let Some(c) = self.correlation_id_column {
            b = b.correlation_id(super::kafka::column_text(c));
        }
        b.build().map_err(|e| e.to_string())
    }
}
