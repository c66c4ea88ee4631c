//! What one record becomes in Redis.
//!
//! A [`RedisMapper`] turns a record into a [`RedisWrite`]: one data command (SET, HSET, LPUSH,
//! RPUSH, SADD, ZADD, PUBLISH) and, for all but PUBLISH, an optional time to live. Any
//! `Fn(&T) -> Result<RedisWrite, String>` is a mapper; [`CommandMapper`] is Apache Bahir's
//! `RedisMapper` (a command description with the additional key, plus key and value
//! extractors), for users coming from Flink.
//!
//! Idempotence: SET, HSET, SADD and ZADD give the same result when repeated, so a replay after a
//! failure leaves what a failure-free run leaves (exactly-once *results*). LPUSH and RPUSH
//! append again (duplicates), and PUBLISH delivers again to subscribers.

use std::sync::Arc;
use std::time::Duration;

/// A Redis data command, as named in Bahir's `RedisCommand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisCommand {
    /// `SET key value` (`SET key value EX ttl` with a TTL). Idempotent.
    Set,
    /// `HSET additional_key key value`: field `key` of the hash `additional_key`. Idempotent.
    Hset,
    /// `LPUSH key value`. Not idempotent.
    Lpush,
    /// `RPUSH key value`. Not idempotent.
    Rpush,
    /// `SADD key value`. Idempotent.
    Sadd,
    /// `ZADD additional_key value key`: member `key` with score `value` (a number) in the
    /// sorted set `additional_key`, as Bahir does. Idempotent.
    Zadd,
    /// `PUBLISH key value`: `value` to the channel `key`. Not idempotent; no TTL.
    Publish,
}

impl RedisCommand {
    /// The command's name as Redis spells it.
    pub fn name(self) -> &'static str {
        match self {
            RedisCommand::Set => "SET",
            RedisCommand::Hset => "HSET",
            RedisCommand::Lpush => "LPUSH",
            RedisCommand::Rpush => "RPUSH",
            RedisCommand::Sadd => "SADD",
            RedisCommand::Zadd => "ZADD",
            RedisCommand::Publish => "PUBLISH",
        }
    }

    /// Whether repeating the command with the same arguments leaves the same data.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            RedisCommand::Set | RedisCommand::Hset | RedisCommand::Sadd | RedisCommand::Zadd
        )
    }

    /// Whether the command writes into a structure named by an additional key (HSET, ZADD).
    pub fn needs_additional_key(self) -> bool {
        matches!(self, RedisCommand::Hset | RedisCommand::Zadd)
    }
}

impl std::str::FromStr for RedisCommand {
    type Err = String;

    /// `SET`, `HSET`, `LPUSH`, `RPUSH`, `SADD`, `ZADD` or `PUBLISH`, any case.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "SET" => RedisCommand::Set,
            "HSET" => RedisCommand::Hset,
            "LPUSH" => RedisCommand::Lpush,
            "RPUSH" => RedisCommand::Rpush,
            "SADD" => RedisCommand::Sadd,
            "ZADD" => RedisCommand::Zadd,
            "PUBLISH" => RedisCommand::Publish,
            other => {
                return Err(format!(
                    "Redis command `{other}` is not one of SET, HSET, LPUSH, RPUSH, SADD, ZADD, PUBLISH"
                ));
            }
        })
    }
}

/// One record's write: a data command and an optional time to live of the key it writes.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisWrite {
    /// The command.
    pub command: RedisCommand,
    /// The key written (the channel for PUBLISH; the hash or sorted set for HSET and ZADD).
    pub key: Vec<u8>,
    /// The hash field (HSET) or sorted-set member (ZADD); empty for the other commands.
    pub field: Vec<u8>,
    /// The value (the message for PUBLISH); empty for ZADD, whose score is `score`.
    pub value: Vec<u8>,
    /// The score (ZADD only).
    pub score: f64,
    /// Time to live of `key`: `SET .. EX`, or `EXPIRE key` after the other commands (whole
    /// seconds, at least one). Ignored for PUBLISH.
    pub ttl: Option<Duration>,
}

impl RedisWrite {
    fn new(command: RedisCommand, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        RedisWrite {
            command,
            key: key.into(),
            field: Vec::new(),
            value: value.into(),
            score: 0.0,
            ttl: None,
        }
    }

    /// `SET key value`.
    pub fn set(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::new(RedisCommand::Set, key, value)
    }

    /// `HSET hash field value`.
    pub fn hset(
        hash: impl Into<Vec<u8>>,
        field: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        let mut w = Self::new(RedisCommand::Hset, hash, value);
        w.field = field.into();
        w
    }

    /// `LPUSH list value`.
    pub fn lpush(list: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::new(RedisCommand::Lpush, list, value)
    }

    /// `RPUSH list value`.
    pub fn rpush(list: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::new(RedisCommand::Rpush, list, value)
    }

    /// `SADD set member`.
    pub fn sadd(set: impl Into<Vec<u8>>, member: impl Into<Vec<u8>>) -> Self {
        Self::new(RedisCommand::Sadd, set, member)
    }

    /// `ZADD sorted_set score member`.
    pub fn zadd(sorted_set: impl Into<Vec<u8>>, score: f64, member: impl Into<Vec<u8>>) -> Self {
        let mut w = Self::new(RedisCommand::Zadd, sorted_set, Vec::new());
        w.field = member.into();
        w.score = score;
        w
    }

    /// `PUBLISH channel message`.
    pub fn publish(channel: impl Into<Vec<u8>>, message: impl Into<Vec<u8>>) -> Self {
        Self::new(RedisCommand::Publish, channel, message)
    }

    /// With a time to live of the key it writes (rounded up to whole seconds).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The TTL in whole seconds (rounded up, at least 1), if any and if the command takes one.
    pub fn ttl_seconds(&self) -> Option<u64> {
        if self.command == RedisCommand::Publish {
            return None;
        }
        self.ttl.map(|d| {
            let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            s.max(1)
        })
    }

    /// Appends the commands of this write to `pipe` (replies ignored) and returns how many.
    pub(crate) fn append_to(&self, pipe: &mut redis::Pipeline) -> usize {
        let ttl = self.ttl_seconds();
        match self.command {
            RedisCommand::Set => {
                let c = pipe.cmd("SET").arg(&self.key).arg(&self.value);
                if let Some(s) = ttl {
                    c.arg("EX").arg(s);
                }
                c.ignore();
                return 1;
            }
            RedisCommand::Hset => {
                pipe.cmd("HSET")
                    .arg(&self.key)
                    .arg(&self.field)
                    .arg(&self.value)
                    .ignore();
            }
            RedisCommand::Zadd => {
                pipe.cmd("ZADD")
                    .arg(&self.key)
                    .arg(self.score)
                    .arg(&self.field)
                    .ignore();
            }
            RedisCommand::Lpush | RedisCommand::Rpush | RedisCommand::Sadd => {
                pipe.cmd(self.command.name())
                    .arg(&self.key)
                    .arg(&self.value)
                    .ignore();
            }
            RedisCommand::Publish => {
                pipe.cmd("PUBLISH").arg(&self.key).arg(&self.value).ignore();
                return 1;
            }
        }
        match ttl {
            Some(s) => {
                pipe.cmd("EXPIRE").arg(&self.key).arg(s).ignore();
                2
            }
            None => 1,
        }
    }
}

/// Turns a record into the write the sink sends (Bahir's `RedisMapper`). `Err` means the
/// record is malformed: the sink fails or skips it (see
/// [`OnMalformed`](crate::OnMalformed)).
pub trait RedisMapper<T>: Send + Sync + 'static {
    /// The write for `value`, or why it cannot be written.
    fn map(&self, value: &T) -> Result<RedisWrite, String>;
}

impl<T, F> RedisMapper<T> for F
where
    F: Fn(&T) -> Result<RedisWrite, String> + Send + Sync + 'static,
{
    fn map(&self, value: &T) -> Result<RedisWrite, String> {
        self(value)
    }
}

type Extract<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

/// Bahir's way to describe the write: a command, an additional key (the hash of HSET, the
/// sorted set of ZADD), an optional TTL, and functions giving each record's key and value
/// (Bahir's `RedisCommandDescription`, `getKeyFromData`, `getValueFromData`).
///
/// For ZADD the value is the score and must parse as a number; a record whose value does not
/// is malformed.
pub struct CommandMapper<T> {
    command: RedisCommand,
    additional_key: Option<String>,
    ttl: Option<Duration>,
    key: Extract<T>,
    value: Extract<T>,
}

impl<T> Clone for CommandMapper<T> {
    fn clone(&self) -> Self {
        CommandMapper {
            command: self.command,
            additional_key: self.additional_key.clone(),
            ttl: self.ttl,
            key: self.key.clone(),
            value: self.value.clone(),
        }
    }
}

impl<T: 'static> CommandMapper<T> {
    /// A mapper writing `command` with the record's key and value.
    pub fn new(
        command: RedisCommand,
        key: impl Fn(&T) -> String + Send + Sync + 'static,
        value: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Self {
        CommandMapper {
            command,
            additional_key: None,
            ttl: None,
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }

    /// The hash (HSET) or sorted set (ZADD) written; required for those two, refused for the
    /// others by [`check`](Self::check).
    pub fn additional_key(mut self, key: impl Into<String>) -> Self {
        self.additional_key = Some(key.into());
        self
    }

    /// A time to live of the written key (the additional key for HSET and ZADD).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The command.
    pub fn command(&self) -> RedisCommand {
        self.command
    }

    /// Checks that the description is complete (the sink's `build()` calls it).
    ///
    /// # Errors
    /// HSET or ZADD without an additional key, another command with one, PUBLISH with a TTL.
    pub fn check(&self) -> Result<(), String> {
        match (&self.additional_key, self.command.needs_additional_key()) {
            (None, true) => {
                return Err(format!(
                    "{} needs an additional key (the {} written): call .additional_key(\"name\")",
                    self.command.name(),
                    if self.command == RedisCommand::Hset {
                        "hash"
                    } else {
                        "sorted set"
                    }
                ));
            }
            (Some(_), false) => {
                return Err(format!(
                    "{} takes no additional key; only HSET and ZADD do",
                    self.command.name()
                ));
            }
            _ => {}
        }
        if self.command == RedisCommand::Publish && self.ttl.is_some() {
            return Err("PUBLISH writes no key, so it takes no TTL".into());
        }
        Ok(())
    }
}

impl<T: 'static> RedisMapper<T> for CommandMapper<T> {
    fn map(&self, record: &T) -> Result<RedisWrite, String> {
        let key = (self.key)(record);
        let value = (self.value)(record);
        let extra = || self.additional_key.clone().unwrap_or_default();
        let mut w = match self.command {
            RedisCommand::Hset => RedisWrite::hset(extra(), key, value),
            RedisCommand::Zadd => {
                let score: f64 = value.trim().parse().map_err(|_| {
                    format!("ZADD needs a numeric score, got `{value}` for member `{key}`")
                })?;
                if score.is_nan() {
                    return Err(format!("ZADD score of member `{key}` is NaN"));
                }
                RedisWrite::zadd(extra(), score, key)
            }
            command => RedisWrite::new(command, key, value),
        };
        w.ttl = self.ttl;
        Ok(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(w: &RedisWrite) -> (usize, String) {
        let mut p = redis::pipe();
        let n = w.append_to(&mut p);
        let bytes = p.get_packed_pipeline();
        (n, String::from_utf8_lossy(&bytes).replace("\r\n", " "))
    }

    #[test]
    fn commands_and_ttls_become_the_resp_commands_bahir_sends() {
        let cases = [
            (RedisWrite::set("k", "v"), 1, "SET $1 k $1 v"),
            (
                RedisWrite::set("k", "v").with_ttl(Duration::from_millis(1500)),
                1,
                "SET $1 k $1 v $2 EX $1 2",
            ),
            (RedisWrite::hset("h", "f", "v"), 1, "HSET $1 h $1 f $1 v"),
            (
                RedisWrite::lpush("l", "v").with_ttl(Duration::from_secs(60)),
                2,
                "LPUSH $1 l $1 v *3 $6 EXPIRE $1 l $2 60",
            ),
            (RedisWrite::zadd("z", 2.5, "m"), 1, "ZADD $1 z $3 2.5 $1 m"),
            (
                RedisWrite::publish("c", "m").with_ttl(Duration::from_secs(5)),
                1,
                "PUBLISH $1 c $1 m",
            ),
        ];
        for (w, n, text) in cases {
            let (count, packed) = packed(&w);
            assert_eq!(count, n, "{w:?}");
            assert!(packed.contains(text), "{w:?}: {packed}");
        }
    }

    #[test]
    fn command_mapper_follows_bahir_and_refuses_bad_scores() {
        let m = CommandMapper::new(
            RedisCommand::Zadd,
            |r: &(String, String)| r.0.clone(),
            |r: &(String, String)| r.1.clone(),
        )
        .additional_key("board");
        m.check().unwrap();
        let w = m.map(&("alice".into(), "3".into())).unwrap();
        assert_eq!(w, RedisWrite::zadd("board", 3.0, "alice"));
        let e = m.map(&("bob".into(), "three".into())).unwrap_err();
        assert!(e.contains("numeric score") && e.contains("bob"), "{e}");
        let h = CommandMapper::new(
            RedisCommand::Hset,
            |r: &(String, String)| r.0.clone(),
            |r| r.1.clone(),
        );
        assert!(h.check().unwrap_err().contains(".additional_key("));
        let s = CommandMapper::new(
            RedisCommand::Set,
            |r: &(String, String)| r.0.clone(),
            |r| r.1.clone(),
        )
        .additional_key("x");
        assert!(s.check().unwrap_err().contains("no additional key"));
    }

    #[test]
    fn commands_parse_and_know_their_idempotence() {
        assert_eq!("hset".parse::<RedisCommand>().unwrap(), RedisCommand::Hset);
        assert!(
            "INCR"
                .parse::<RedisCommand>()
                .unwrap_err()
                .contains("SET, HSET")
        );
        assert!(RedisCommand::Set.is_idempotent() && !RedisCommand::Rpush.is_idempotent());
    }
}
