//! The `redis` connector: a sink table whose rows become Redis writes through Fjord's
//! `RedisSink` (crate `fjord-redis`, Bahir's `RedisSink` semantics). The table has two columns:
//! the first is the key (the hash field for HSET, the member for ZADD, the channel for
//! PUBLISH), the second the value (the score for ZADD), both written as their `CAST(.. AS
//! STRING)` text. Options: `url`, `command`, `additional-key` (HSET and ZADD), `ttl` (whole
//! seconds), `sink.max-batch-size`, `sink.ignore-malformed`. At-least-once; idempotent commands
//! give exactly-once results. A row with a NULL key or value is malformed.

use crate::plan::TableDef;
use crate::types::{Row, Value};
use fjord_redis::{CommandMapper, OnMalformed, RedisCommand, RedisMapper, RedisSink, RedisWrite};
use std::time::Duration;

const OPTIONS: &[&str] = &[
    "url",
    "command",
    "additional-key",
    "ttl",
    "sink.max-batch-size",
    "sink.ignore-malformed",
];

/// The options of a Redis table.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisTableConfig {
    /// `url`: `redis://[:password@]host:port[/db]`.
    pub url: String,
    /// `command`: SET, HSET, LPUSH, RPUSH, SADD, ZADD or PUBLISH.
    pub command: RedisCommand,
    /// `additional-key`: the hash (HSET) or sorted set (ZADD).
    pub additional_key: Option<String>,
    /// `ttl`: seconds to live of the written key.
    pub ttl: Option<Duration>,
    /// `sink.max-batch-size`.
    pub max_batch_size: Option<usize>,
    /// `sink.ignore-malformed`: skip rows with NULLs or bad scores instead of failing.
    pub ignore_malformed: bool,
}

impl RedisTableConfig {
    /// Reads and checks the options and the schema.
    ///
    /// # Errors
    /// An unknown option, a missing `url` or `command`, an unknown command, HSET/ZADD without
    /// `additional-key` (or another command with one), a bad `ttl` or batch size, a table that
    /// does not have exactly two columns.
    pub fn from_table(table: &TableDef) -> Result<Self, String> {
        let o = &table.options;
        super::only_options(o, OPTIONS)?;
        if table.schema.columns.len() != 2 {
            return Err(format!(
                "a 'redis' table has two columns (the key, then the value), not {}",
                table.schema.columns.len()
            ));
        }
        let url = o
            .get("url")
            .filter(|u| !u.trim().is_empty())
            .ok_or("set 'url' to the Redis server, such as 'redis://localhost:6379/0'")?
            .trim()
            .to_string();
        let command: RedisCommand = o
            .get("command")
            .ok_or("set 'command' to one of SET, HSET, LPUSH, RPUSH, SADD, ZADD, PUBLISH")?
            .parse()?;
        let ttl = match o.get("ttl") {
            None => None,
            Some(t) => Some(Duration::from_secs(
                t.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("'ttl' = '{t}' must be whole seconds above 0"))?,
            )),
        };
        let max_batch_size = match o.get("sink.max-batch-size") {
            None => None,
            Some(n) => Some(
                n.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!("'sink.max-batch-size' = '{n}' must be a number above 0")
                    })?,
            ),
        };
        let config = RedisTableConfig {
            url,
            command,
            additional_key: o.get("additional-key").cloned(),
            ttl,
            max_batch_size,
            ignore_malformed: super::bool_option(o, "sink.ignore-malformed", false)?,
        };
        config.mapper().check()?;
        Ok(config)
    }

    fn mapper(&self) -> CommandMapper<Row> {
        let text = |v: &Value| v.to_sql_string().unwrap_or_default();
        let mut m = CommandMapper::new(
            self.command,
            move |r: &Row| text(&r[0]),
            move |r: &Row| text(&r[1]),
        );
        if let Some(k) = &self.additional_key {
            m = m.additional_key(k);
        }
        if let Some(t) = self.ttl {
            m = m.ttl(t);
        }
        m
    }

    /// The sink.
    ///
    /// # Errors
    /// A URL the Redis client cannot parse.
    pub fn sink(&self) -> Result<RedisSink<Row>, String> {
        let mapper = RowMapper(self.mapper());
        let mut b = RedisSink::builder()
            .url(&self.url)
            .mapper(mapper)
            .on_malformed(if self.ignore_malformed {
                OnMalformed::Skip
            } else {
                OnMalformed::Fail
            });
        if let Some(n) = self.max_batch_size {
            b = b.max_batch_size(n);
        }
        b.build().map_err(|e| e.to_string())
    }
}

/// The command mapper, refusing rows with a NULL key or value first.
struct RowMapper(CommandMapper<Row>);

impl RedisMapper<Row> for RowMapper {
    fn map(&self, row: &Row) -> Result<RedisWrite, String> {
        if row.len() != 2 || row[0].is_null() || row[1].is_null() {
            return Err(format!(
                "a row written to Redis needs a key and a value, got {row:?}"
            ));
        }
        self.0.map(row)
    }
}
