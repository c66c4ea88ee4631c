//! The `kinesis` connector: an Amazon Kinesis data stream as a table, read by Fjord's
//! `KinesisSource` and written by its `KinesisSink` (crate `fjord-kinesis`, the AWS SDK for
//! Rust), one row per record in the `csv` or `json` format. The options follow Flink's Kinesis
//! SQL connector: `stream`, `aws.region`, `aws.endpoint`, `aws.credentials.provider` (`AUTO`
//! or `BASIC` with `aws.credentials.basic.accesskeyid` / `.secretkey`),
//! `source.init.position` (`LATEST`, `TRIM_HORIZON`, `AT_TIMESTAMP` with
//! `source.init.timestamp`), `source.shard.discovery.interval`, `sink.partitioner-fields`
//! (Fjord's stand-in for `PARTITIONED BY`: the columns whose values, joined by
//! `sink.partitioner-field-delimiter`, make the partition key; random keys without it),
//! `sink.batch.max-size`, `sink.requests.max-inflight`, `sink.flush-buffer.size`,
//! `sink.flush-buffer.timeout`. A record that does not read fails the job, unless
//! `<format>.ignore-parse-errors` is set, which skips it.

use super::format::{self, Format};
use crate::plan::TableDef;
use crate::types::{Row, Schema, Value};
use fjord_kinesis::sink::OnMalformed as SinkOnMalformed;
use fjord_kinesis::{
    AwsCredentials, KinesisConfig, KinesisRecord, KinesisSink, KinesisSource, OnMalformed,
    StartingPosition,
};
use std::collections::BTreeMap;
use std::time::Duration;

const OPTIONS: &[&str] = &[
    "stream",
    "aws.region",
    "aws.endpoint",
    "aws.credentials.provider",
    "aws.credentials.basic.accesskeyid",
    "aws.credentials.basic.secretkey",
    "source.init.position",
    "source.init.timestamp",
    "source.shard.discovery.interval",
    "sink.partitioner-fields",
    "sink.partitioner-field-delimiter",
    "sink.batch.max-size",
    "sink.requests.max-inflight",
    "sink.flush-buffer.size",
    "sink.flush-buffer.timeout",
];

/// The options of a Kinesis table.
#[derive(Debug, Clone)]
pub struct KinesisTableConfig {
    /// `stream`.
    pub stream: String,
    /// `aws.region`, `aws.endpoint`, `aws.credentials.*`.
    pub config: KinesisConfig,
    /// `source.init.position` (and `source.init.timestamp`).
    pub starting: StartingPosition,
    /// `source.shard.discovery.interval`.
    pub discovery_interval: Option<Duration>,
    /// `sink.partitioner-fields`: column indexes.
    pub partition_fields: Vec<usize>,
    /// `sink.partitioner-field-delimiter`.
    pub delimiter: String,
    /// `sink.batch.max-size`.
    pub batch_size: Option<usize>,
    /// `sink.requests.max-inflight`.
    pub max_in_flight: Option<usize>,
    /// `sink.flush-buffer.size` (bytes).
    pub flush_size: Option<usize>,
    /// `sink.flush-buffer.timeout`.
    pub flush_timeout: Option<Duration>,
    /// `format` and its options.
    pub format: Format,
    /// `<format>.ignore-parse-errors`.
    pub ignore_parse_errors: bool,
    /// The columns.
    pub schema: Schema,
}

fn positive(o: &BTreeMap<String, String>, key: &str) -> Result<Option<usize>, String> {
    o.get(key)
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{key}' = '{v}' must be a positive number"))
        })
        .transpose()
}

fn duration(o: &BTreeMap<String, String>, key: &str) -> Result<Option<Duration>, String> {
    o.get(key)
        .map(|v| {
            crate::planner::parse_duration(v)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!(
                        "'{key}' = '{v}' must be a positive duration such as '10 s' or '500 ms'"
                    )
                })
        })
        .transpose()
}

/// `source.init.timestamp`: seconds since the epoch (`1700000000.5`) or
/// `yyyy-MM-dd[THH:mm:ss[.SSS]]` in UTC (a trailing `Z` is allowed).
fn init_timestamp(v: &str) -> Result<i64, String> {
    let t = v.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Ok((secs * 1000.0).round() as i64);
    }
    crate::types::parse_timestamp(t.trim_end_matches('Z')).ok_or_else(|| {
        format!("'source.init.timestamp' = '{v}' must be seconds since the epoch or yyyy-MM-ddTHH:mm:ss[.SSS] (UTC)")
    })
}

impl KinesisTableConfig {
    /// Reads and checks the options.
    ///
    /// # Errors
    /// An unknown option or format, a missing `stream` or `aws.region`, a bad position,
    /// timestamp, number or duration, unknown partitioner fields.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o: &BTreeMap<String, String> = &table.options;
        let (format, ignore_parse_errors) = format::from_options(o, OPTIONS)?;
        format::check_schema(&format, &table.schema)?;
        let stream = o
            .get("stream")
            .filter(|s| !s.trim().is_empty())
            .ok_or("set 'stream' to the name of the Kinesis data stream")?
            .trim()
            .to_string();
        let region = o
            .get("aws.region")
            .filter(|s| !s.trim().is_empty())
            .ok_or("set 'aws.region' to the stream's AWS region, such as 'us-east-1'")?
            .trim()
            .to_string();
        let mut config = KinesisConfig::new(region);
        if let Some(e) = o.get("aws.endpoint") {
            let e = e.trim();
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!(
                    "'aws.endpoint' = '{e}' must be a URL such as 'https://kinesis.us-east-1.amazonaws.com' or 'http://localhost:4567'"
                ));
            }
            config = config.endpoint(e);
        }
        let provider = o
            .get("aws.credentials.provider")
            .map(|p| p.trim().to_ascii_uppercase());
        let key = o.get("aws.credentials.basic.accesskeyid");
        let secret = o.get("aws.credentials.basic.secretkey");
        match provider.as_deref() {
            None | Some("AUTO") if key.is_none() && secret.is_none() => {}
            None | Some("BASIC") => match (key, secret) {
                (Some(k), Some(s)) => {
                    config.credentials = AwsCredentials::Basic {
                        access_key_id: k.trim().to_string(),
                        secret_access_key: s.trim().to_string(),
                    }
                }
                _ => {
                    return Err("BASIC credentials need both 'aws.credentials.basic.accesskeyid' and 'aws.credentials.basic.secretkey'".into());
                }
            },
            Some("AUTO") => {
                return Err("'aws.credentials.provider' = 'AUTO' takes no 'aws.credentials.basic.*' keys; set it to 'BASIC' or remove the keys".into());
            }
            Some(p) => {
                return Err(format!(
                    "'aws.credentials.provider' = '{p}' is not supported; use 'AUTO' (the default chain: environment, profile, web identity, instance metadata) or 'BASIC'"
                ));
            }
        }
        let position = o
            .get("source.init.position")
            .map(|p| p.trim().to_ascii_uppercase());
        let starting = match position.as_deref() {
            None | Some("LATEST") => StartingPosition::Latest,
            Some("TRIM_HORIZON") => StartingPosition::TrimHorizon,
            Some("AT_TIMESTAMP") => StartingPosition::AtTimestamp(init_timestamp(
                o.get("source.init.timestamp").ok_or(
                    "'source.init.position' = 'AT_TIMESTAMP' needs 'source.init.timestamp'",
                )?,
            )?),
            Some(p) => {
                return Err(format!(
                    "'source.init.position' = '{p}' must be 'LATEST', 'TRIM_HORIZON' or 'AT_TIMESTAMP'"
                ));
            }
        };
        if o.contains_key("source.init.timestamp")
            && !matches!(starting, StartingPosition::AtTimestamp(_))
        {
            return Err(
                "'source.init.timestamp' needs 'source.init.position' = 'AT_TIMESTAMP'".into(),
            );
        }
        let partition_fields = match o.get("sink.partitioner-fields") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|c| {
                    let c = c.trim();
                    table
                        .schema
                        .columns
                        .iter()
                        .position(|col| col.name == c)
                        .ok_or_else(|| {
                            format!("'sink.partitioner-fields' names '{c}', which is not a column of the table")
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(KinesisTableConfig {
            stream,
            config,
            starting,
            discovery_interval: duration(o, "source.shard.discovery.interval")?,
            partition_fields,
            delimiter: o
                .get("sink.partitioner-field-delimiter")
                .cloned()
                .unwrap_or_else(|| "|".to_string()),
            batch_size: positive(o, "sink.batch.max-size")?,
            max_in_flight: positive(o, "sink.requests.max-inflight")?,
            flush_size: positive(o, "sink.flush-buffer.size")?,
            flush_timeout: duration(o, "sink.flush-buffer.timeout")?,
            format,
            ignore_parse_errors,
            schema: table.schema.clone(),
        })
    }

    /// The source.
    ///
    /// # Errors
    /// What `KinesisSource`'s builder refuses.
    pub fn source(&self) -> Result<KinesisSource<Row>, String> {
        let (format, schema, ignore) = (
            self.format.clone(),
            self.schema.clone(),
            self.ignore_parse_errors,
        );
        let mut b = KinesisSource::builder()
            .config(self.config.clone())
            .stream(&self.stream)
            .starting_position(self.starting)
            .on_malformed(if ignore {
                OnMalformed::Skip
            } else {
                OnMalformed::Fail
            })
            .deserializer(move |r: &KinesisRecord<'_>| {
                super::kafka::decode(r.data, &format, &schema, ignore)
            });
        if let Some(d) = self.discovery_interval {
            b = b.discovery_interval(d);
        }
        b.build().map_err(|e| e.to_string())
    }

    /// The sink.
    ///
    /// # Errors
    /// What `KinesisSink`'s builder refuses.
    pub fn sink(&self) -> Result<KinesisSink<Row>, String> {
        let (format, schema) = (self.format.clone(), self.schema.clone());
        let mut b = KinesisSink::builder()
            .config(self.config.clone())
            .stream(&self.stream)
            .on_malformed(SinkOnMalformed::Fail)
            .serializer(move |row: &Row| {
                format::encode(&format, &schema, row).map_err(|e| e.to_string())
            });
        if !self.partition_fields.is_empty() {
            let (fields, delimiter) = (self.partition_fields.clone(), self.delimiter.clone());
            b = b.partition_key(move |row: &Row| {
                fields
                    .iter()
                    .map(|&c| match &row[c] {
                        Value::Null => "null".to_string(),
                        v => v.to_sql_string().unwrap_or_default(),
                    })
                    .collect::<Vec<_>>()
                    .join(&delimiter)
            });
        }
        if let Some(n) = self.batch_size {
            b = b.max_batch_size(n);
        }
        if let Some(n) = self.max_in_flight {
            b = b.max_in_flight_requests(n);
        }
        if let Some(n) = self.flush_size {
            b = b.max_batch_bytes(n);
        }
        if let Some(d) = self.flush_timeout {
            b = b.max_time_in_buffer(d);
        }
        b.build().map_err(|e| e.to_string())
    }
}
