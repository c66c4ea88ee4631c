//! [`KafkaBroker`]: a real single-node Apache Kafka broker (KRaft, broker and controller in one
//! JVM) on 127.0.0.1 per test, started through `scripts/infra/kafka.sh` from the jars
//! `scripts/infra/install-kafka.sh` cached, and Kafka's own tools to create topics, produce and
//! read topics back.
//!
//! The reading side is deliberately not Fjord's Kafka client: [`KafkaBroker::read_committed`]
//! runs Kafka's Java consumer (through the project's `DrainTopic` tool, see
//! `scripts/infra/kafka/src`) with `isolation.level=read_committed`, so it is an independent judge
//! of what an exactly-once sink committed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::cluster::{infra_dir, tail, unique_run_dir};
use crate::error::{Error, Result};

/// Exit code of `kafka.sh` when Kafka is not installed.
const EXIT_NOT_INSTALLED: i32 = 3;
/// How long [`KafkaBroker::read_committed`] may take before it fails (ms).
const DRAIN_TIMEOUT_MS: u64 = 120_000;

/// How to start a [`KafkaBroker`].
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    name: String,
    overrides: Vec<String>,
    cache_dir: Option<PathBuf>,
}

impl KafkaOptions {
    /// Options for a broker whose directory is named after `name` (usually the test's name).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            overrides: Vec::new(),
            cache_dir: None,
        }
    }

    /// Set a broker configuration `key` to `value` (a line of `server.properties`), e.g.
    /// `transaction.max.timeout.ms`. Defaults: see `scripts/infra/kafka.sh`.
    pub fn config(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.overrides.push(format!("{key}={value}"));
        self
    }

    /// The infrastructure cache to use instead of `$FJORD_CACHE` / `~/.cache/fjord`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
}

/// A record to produce with [`KafkaBroker::produce`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The partition; `None`: Kafka's default partitioner (by key hash, sticky without a key).
    pub partition: Option<i32>,
    /// The timestamp (ms since the epoch); `None`: the producer's clock.
    pub timestamp: Option<i64>,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl ProducerRecord {
    /// A record with this value, no key, no timestamp, default partitioning.
    pub fn value(value: impl Into<Vec<u8>>) -> Self {
        Self {
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// With this key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// With this timestamp (ms since the epoch).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Into this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
}

/// One record read back from a topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record's timestamp (ms since the epoch).
    pub timestamp: i64,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value, if any (`None` for a tombstone).
    pub value: Option<Vec<u8>>,
}

impl KafkaRecord {
    /// The key as UTF-8 (lossy); `None` without a key.
    pub fn key_str(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }

    /// The value as UTF-8 (lossy); empty for a tombstone.
    pub fn value_str(&self) -> String {
        self.value
            .as_deref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// A running Kafka broker. Dropping it stops the broker (also during a panic or an early `?`
/// return) and, when the test is panicking, prints the tail of the broker's log;
/// [`KafkaBroker::shutdown`] stops it, reports errors and removes its directory.
///
/// [`KafkaBroker::stop`] and [`KafkaBroker::restart`] take the broker down and bring it back with
/// the same port and data, for tests of a broker outage.
#[derive(Debug)]
pub struct KafkaBroker {
    dir: PathBuf,
    bootstrap: String,
    cache_dir: Option<PathBuf>,
    down: bool,
}

impl KafkaBroker {
    /// Start a broker with default options (a directory named `kafka`).
    ///
    /// # Errors
    /// See [`KafkaBroker::start_with`].
    pub fn start() -> Result<Self> {
        Self::start_with(KafkaOptions::new("kafka"))
    }

    /// Start a broker on free loopback ports in a new directory and wait until it serves
    /// (typically 5–15 s: a JVM formats the storage, another runs the broker).
    ///
    /// # Errors
    /// [`Error::KafkaNotInstalled`] when `scripts/infra/install-kafka.sh` has not run,
    /// [`Error::Kafka`] when the broker did not come up (the error holds the log's tail).
    pub fn start_with(options: KafkaOptions) -> Result<Self> {
        let dir = unique_run_dir(&format!("kafka-{}", options.name));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let mut broker = Self {
            dir,
            bootstrap: String::new(),
            cache_dir: options.cache_dir.clone(),
            down: false,
        };
        let mut args: Vec<String> = Vec::new();
        for o in &options.overrides {
            args.push("--override".into());
            args.push(o.clone());
        }
        broker.bootstrap = broker.run_start(&args)?;
        Ok(broker)
    }

    /// `host:port` to give clients as bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The broker's directory (`server.properties`, `data/`, `logs/kafka.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker's log file (appended across restarts).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("logs").join("kafka.log")
    }

    /// The last `lines` lines of the broker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        std::fs::read_to_string(self.log_path())
            .map(|t| tail(&t, lines))
            .unwrap_or_else(|e| format!("(no log at {}: {e})", self.log_path().display()))
    }

    /// Stop the broker with a controlled shutdown (SIGTERM; SIGKILL after 30 s), keeping its data
    /// and port. Idempotent.
    ///
    /// # Errors
    /// [`Error::Kafka`] if `kafka.sh stop` fails.
    pub fn stop(&self) -> Result<()> {
        self.script(&["stop"], &[]).map(drop)
    }

    /// Kill the broker with SIGKILL (a crash), keeping its data and port.
    ///
    /// # Errors
    /// [`Error::Kafka`] if `kafka.sh stop --kill` fails.
    pub fn kill(&self) -> Result<()> {
        self.script(&["stop"], &["--kill".into()]).map(drop)
    }

    /// Start the broker again after [`KafkaBroker::stop`] or [`KafkaBroker::kill`], on the same
    /// port with the same data; waits until it serves. A no-op while it runs.
    ///
    /// # Errors
    /// [`Error::Kafka`] if it does not come back.
    pub fn restart(&self) -> Result<()> {
        let bootstrap = self.run_start(&[])?;
        debug_assert_eq!(bootstrap, self.bootstrap);
        Ok(())
    }

    /// Create `topic` with `partitions` partitions (replication factor 1).
    ///
    /// # Errors
    /// [`Error::Command`] if Kafka's `TopicCommand` fails (for instance, the topic exists).
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<()> {
        self.tool_ok(
            "org.apache.kafka.tools.TopicCommand",
            &[
                "--bootstrap-server",
                &self.bootstrap,
                "--create",
                "--topic",
                topic,
                "--partitions",
                &partitions.to_string(),
                "--replication-factor",
                "1",
            ],
            None,
        )
        .map(drop)
    }

    /// Add partitions to `topic` so that it has `partitions` in all.
    ///
    /// # Errors
    /// [`Error::Command`] if Kafka's `TopicCommand` fails.
    pub fn add_partitions(&self, topic: &str, partitions: u32) -> Result<()> {
        self.tool_ok(
            "org.apache.kafka.tools.TopicCommand",
            &[
                "--bootstrap-server",
                &self.bootstrap,
                "--alter",
                "--topic",
                topic,
                "--partitions",
                &partitions.to_string(),
            ],
            None,
        )
        .map(drop)
    }

    /// Produce `records` with Kafka's own Java producer (idempotent, `acks=all`, through the
    /// project's `ProduceRecords` tool); returns when every record is acknowledged, fails if any
    /// is not. Records keep their order per partition.
    ///
    /// # Errors
    /// [`Error::Command`] if a record was not acknowledged (e.g. the topic does not exist).
    pub fn produce(&self, topic: &str, records: &[ProducerRecord]) -> Result<()> {
        let mut input = String::new();
        for r in records {
            let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            input.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                opt(r.partition.map(|p| p.to_string())),
                opt(r.timestamp.map(|t| t.to_string())),
                opt(r.key.as_deref().map(encode_hex)),
                opt(r.value.as_deref().map(encode_hex)),
            ));
        }
        self.tool_ok(
            "fjord.infra.ProduceRecords",
            &[
                "--bootstrap-server",
                &self.bootstrap,
                "--topic",
                topic,
                "--timeout-ms",
                "30000",
            ],
            Some(&input),
        )
        .map(drop)
    }

    /// Produce each line as the value of one record without a key (see [`KafkaBroker::produce`]).
    ///
    /// # Errors
    /// As [`KafkaBroker::produce`].
    pub fn produce_lines<S: AsRef<str>>(&self, topic: &str, lines: &[S]) -> Result<()> {
        let records: Vec<ProducerRecord> = lines
            .iter()
            .map(|l| ProducerRecord::value(l.as_ref()))
            .collect();
        self.produce(topic, &records)
    }

    /// Produce `(key, value)` records; the default partitioner puts equal keys in the same
    /// partition (see [`KafkaBroker::produce`]).
    ///
    /// # Errors
    /// As [`KafkaBroker::produce`].
    pub fn produce_keyed<K: AsRef<str>, V: AsRef<str>>(
        &self,
        topic: &str,
        records: &[(K, V)],
    ) -> Result<()> {
        let records: Vec<ProducerRecord> = records
            .iter()
            .map(|(k, v)| ProducerRecord::value(v.as_ref()).key(k.as_ref()))
            .collect();
        self.produce(topic, &records)
    }

    /// Every record of `topic` a `read_committed` consumer sees, from the beginning up to each
    /// partition's last stable offset at the time of the call (so records of committed
    /// transactions and non-transactional records before the first still-open transaction;
    /// aborted ones never), ordered by partition, then offset. Read by Kafka's own Java consumer.
    ///
    /// # Errors
    /// [`Error::Command`] if the topic does not exist or it cannot be read to its end in 120 s.
    pub fn read_committed(&self, topic: &str) -> Result<Vec<KafkaRecord>> {
        self.drain(topic, "read_committed")
    }

    /// Like [`KafkaBroker::read_committed`] with `read_uncommitted`: every record up to the high
    /// watermark, including those of open and aborted transactions.
    ///
    /// # Errors
    /// As [`KafkaBroker::read_committed`].
    pub fn read_uncommitted(&self, topic: &str) -> Result<Vec<KafkaRecord>> {
        self.drain(topic, "read_uncommitted")
    }

    /// Run one of Kafka's tools (a main class on the cached classpath, e.g.
    /// `org.apache.kafka.tools.GetOffsetShell`) with `args` and optional standard input; returns
    /// its output whatever its exit status.
    ///
    /// # Errors
    /// [`Error::Spawn`] if it cannot be started.
    pub fn tool(&self, class: &str, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let script = infra_dir().join("kafka.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).arg("tool").arg(class).args(args);
        self.apply_env(&mut cmd);
        run(cmd, "kafka.sh tool", stdin)
    }

    /// Like [`KafkaBroker::tool`], failing unless the tool exits 0; returns its stdout.
    ///
    /// # Errors
    /// [`Error::Command`] with the tool's stderr if it exits non-zero.
    pub fn tool_ok(&self, class: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let out = self.tool(class, args, stdin)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(Error::Command {
                command: format!("kafka.sh tool {class} {}", args.join(" ")),
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Stop the broker, release its ports and remove its directory (kept with
    /// `FJORD_E2E_KEEP=1`). End a passing test with this; dropping only stops.
    ///
    /// # Errors
    /// [`Error::Kafka`] if `kafka.sh down` fails.
    pub fn shutdown(mut self) -> Result<()> {
        self.down = true;
        self.script(&["down"], &[])?;
        if std::env::var_os("FJORD_E2E_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        Ok(())
    }

    fn drain(&self, topic: &str, isolation: &str) -> Result<Vec<KafkaRecord>> {
        let timeout = DRAIN_TIMEOUT_MS.to_string();
        let out = self.tool_ok(
            "fjord.infra.DrainTopic",
            &[
                "--bootstrap-server",
                &self.bootstrap,
                "--topic",
                topic,
                "--isolation",
                isolation,
                "--timeout-ms",
                &timeout,
            ],
            None,
        )?;
        out.lines().map(parse_drain_line).collect()
    }

    fn apply_env(&self, cmd: &mut Command) {
        if let Some(cache) = &self.cache_dir {
            cmd.env("FJORD_CACHE", cache);
        }
    }

    fn run_start(&self, args: &[String]) -> Result<String> {
        let stdout = self.script(&["start"], args)?;
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("KAFKA_BOOTSTRAP="))
            .map(str::to_string)
            .ok_or_else(|| Error::Kafka {
                action: "start",
                dir: self.dir.clone(),
                code: Some(0),
                output: format!("kafka.sh printed no KAFKA_BOOTSTRAP line:\n{stdout}"),
            })
    }

    /// `kafka.sh SUBCOMMAND DIR ARGS...`; stdout on success.
    fn script(&self, sub: &[&'static str], args: &[String]) -> Result<String> {
        let script = infra_dir().join("kafka.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(&script).args(sub).arg(&self.dir).args(args);
        // A watchdog stops the broker if this test process dies without dropping it.
        cmd.env("FJORD_E2E_OWNER_PID", std::process::id().to_string());
        self.apply_env(&mut cmd);
        let out = run(cmd, "kafka.sh", None)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
            Some(EXIT_NOT_INSTALLED) => Err(Error::KafkaNotInstalled {
                detail: stderr.trim().to_string(),
            }),
            code => Err(Error::Kafka {
                action: sub.first().copied().unwrap_or("run"),
                dir: self.dir.clone(),
                code,
                output: tail(&stderr, 50),
            }),
        }
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        if self.down {
            return;
        }
        self.down = true;
        if std::thread::panicking() {
            eprintln!(
                "fjord-e2e: Kafka broker log ({}), last lines:\n{}",
                self.log_path().display(),
                self.log_tail(60)
            );
        }
        if let Err(e) = self.script(&["down"], &[]) {
            eprintln!("fjord-e2e: {e}");
        }
        eprintln!(
            "fjord-e2e: Kafka broker stopped without KafkaBroker::shutdown() (test failed?); its \
             directory is kept: {}",
            self.dir.display()
        );
    }
}

fn run(mut cmd: Command, name: &str, stdin: Option<&str>) -> Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let spawn_err = |source| Error::Spawn {
        program: name.to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    // Feed stdin from a thread while stdout/stderr are read, so neither side blocks the other.
    // A tool that exits early (bad arguments, no broker) closes its stdin: the write error is
    // ignored and its exit status and stderr tell what happened.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            let input = input.to_string();
            Some(std::thread::spawn(move || {
                let _ = pipe.write_all(input.as_bytes());
            }))
        }
        _ => None,
    };
    let output = child.wait_with_output().map_err(spawn_err)?;
    if let Some(feeder) = feeder {
        let _ = feeder.join();
    }
    Ok(output)
}

/// Parse `partition TAB offset TAB timestamp TAB key-hex TAB value-hex` (`-` for null).
fn parse_drain_line(line: &str) -> Result<KafkaRecord> {
    let bad = || Error::Command {
        command: "kafka.sh tool fjord.infra.DrainTopic".into(),
        code: Some(0),
        stderr: format!("unexpected output line {line:?}"),
    };
    let fields: Vec<&str> = line.split('\t').collect();
    let [p, o, t, k, v] = fields.as_slice() else {
        return Err(bad());
    };
    let bytes = |s: &str| -> Result<Option<Vec<u8>>> {
        if s == "-" {
            return Ok(None);
        }
        decode_hex(s).map(Some).ok_or_else(bad)
    };
    Ok(KafkaRecord {
        partition: p.parse().map_err(|_| bad())?,
        offset: o.parse().map_err(|_| bad())?,
        timestamp: t.parse().map_err(|_| bad())?,
        key: bytes(k)?,
        value: bytes(v)?,
    })
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The bootstrap address of the Kafka broker the tests of this process share:
/// `FJORD_KAFKA_BOOTSTRAP` when set (a broker started by hand), else a broker named `name`
/// started on first use. It is stopped by `kafka.sh`'s watchdog when the process exits
/// (statics are never dropped). Panics with the cause when the broker cannot start.
pub fn shared_bootstrap(name: &str) -> String {
    static BROKER: std::sync::OnceLock<(Option<KafkaBroker>, String)> = std::sync::OnceLock::new();
    BROKER
        .get_or_init(|| {
            if let Ok(bootstrap) = std::env::var("FJORD_KAFKA_BOOTSTRAP") {
                return (None, bootstrap);
            }
            let broker = KafkaBroker::start_with(KafkaOptions::new(name))
                .unwrap_or_else(|e| panic!("starting Kafka failed: {e}"));
            let bootstrap = broker.bootstrap().to_string();
            (Some(broker), bootstrap)
        })
        .1
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_drain_lines() {
        let r = parse_drain_line("2\t17\t1700000000000\t6b\t68656c6c6f").unwrap();
        assert_eq!(r.partition, 2);
        assert_eq!(r.offset, 17);
        assert_eq!(r.key_str().as_deref(), Some("k"));
        assert_eq!(r.value_str(), "hello");
        let r = parse_drain_line("0\t0\t5\t-\t-").unwrap();
        assert_eq!((r.key, r.value), (None, None));
        assert!(parse_drain_line("0\t0\t5\t-").is_err());
        assert!(parse_drain_line("0\t0\t5\t-\t6").is_err());
        assert!(parse_drain_line("0\t0\t5\t-\tzz").is_err());
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode_hex(&encode_hex(&bytes)), Some(bytes));
        assert_eq!(encode_hex(b"k\n"), "6b0a");
    }
}
