//! The Kafka example StreamJobs on Kubernetes: the operator (installed from its Helm chart on
//! the test cluster: real kube-apiserver and etcd, Pods run by the node agent) runs
//! `examples/streamjobs/kafka-wordcount.yaml` and `kafka-windowed-counts.yaml` against a real
//! Apache Kafka broker (`fjord_e2e::KafkaBroker`), and Kafka's own Java consumer with
//! `isolation.level=read_committed` judges the output topics.
//!
//! Each manifest is applied as it is in the repository except the one value the docs tell a
//! user to change, the broker address after `--bootstrap-servers` in `spec.job.args`
//! (`localhost:9092` there; this broker's address here: the Pods share the host's loopback).
//!
//! 1. `kafka-wordcount` (at-least-once sink): lines produced while it runs; per word, the
//!    committed updates are exactly `word,1` … `word,n` in its partition, n its occurrences,
//!    and nothing else — also after the StreamJob is deleted.
//! 2. `kafka-windowed-counts` (exactly-once sink, 1 s event-time windows): input produced in
//!    batches while it runs; in the middle the manifest is applied again with
//!    `upgradeMode: savepoint`, then with a changed argument (`--idle-ms`), so the operator
//!    stops the job with a savepoint while a batch is in flight and redeploys from it; at the
//!    end the StreamJob is suspended (stop with a savepoint, its last transactions commit) and
//!    the committed output must be exactly the failure-free window counts: every input record
//!    counted once.
//!
//! 3. `sql-order-counts` (`spec.job.sql`, a Flink SQL script run by the stock image's
//!    built-in `sql` job; exactly-once Kafka sink, 10 s tumbling windows per product): the
//!    operator plans the script before creating anything (a misspelt column leaves it
//!    `Degraded InvalidSpec` with line and column, no Pods); half of a window's orders are
//!    produced, the job is upgraded with a savepoint (`restartNonce`), the other half follows,
//!    and the committed counts must be exactly the failure-free ones: the open window's
//!    state and the offsets crossed the upgrade under the plan's stable uids. Its broker
//!    address is in the script's two tables (`'properties.bootstrap.servers'`).
//! 4. `ticks` (`examples/streamjobs/sql-configmap.yaml`, `spec.job.sqlFrom`: the script in a
//!    ConfigMap): the StreamJob applied before its ConfigMap waits `Degraded InvalidSpec`
//!    naming it, with no Pods; the ConfigMap starts it; editing only the ConfigMap's script
//!    upgrades the job with a savepoint (the datagen sequence goes on: the topic holds 0, 1,
//!    2, ... once each, v1 rows then v2 rows); a script that does not plan leaves it Degraded
//!    with line and column while v2 runs on.
//!
//! The input of (2) is deterministic: batch `k` has [`BATCH`] records, record `j` with value
//! `key-(j % KEYS)`, partition `j % 3` and a Kafka timestamp inside window `k`, so a batch
//! closes the previous batch's windows and no record is ever late, whatever the idleness of the
//! partitions between batches (the manifest's watermarks have no out-of-orderness allowance).
//! The test produces batch `k + 1` only when window `k - 1` is committed, so at most one batch
//! is unread when partitions come back from idleness.
//!
//! Build first (see `tests/operator_support/mod.rs`):
//! `cargo build -p fjord-operator --bins && cargo build -p fjord-worker --features s3 --bins`,
//! then `cargo test -p fjord-e2e --test operator_kafka -- --nocapture`. Every wait is bounded;
//! nothing asserts on timing.

mod operator_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord_e2e::{KafkaBroker, KafkaOptions, KafkaRecord, ProducerRecord};
use operator_support::{OperatorCluster, secs};
use serde_json::Value;

/// Bound on every wait for the job or the operator.
const WAIT: Duration = Duration::from_secs(300);
/// Partitions of every topic (as the manifests' comments create them).
const PARTITIONS: u32 = 3;
/// Distinct keys of the windowed input.
const KEYS: u64 = 20;
/// Records per batch of the windowed input.
const BATCH: u64 = 1_500;
/// Batches of the windowed input.
const BATCHES: u64 = 9;
/// The batch after which the savepoint upgrade is applied (while it is being read).
const UPGRADE_AT: u64 = 4;
/// The manifest's window.
const WINDOW_MS: i64 = 1_000;
/// Event time of window 0 (a multiple of the window).
const BASE: i64 = 1_700_000_000_000;

/// The value the docs tell a user to change, as it stands in the manifests' `spec.job.args`.
const BOOTSTRAP_ARG: &str = r#""--bootstrap-servers", "localhost:9092""#;

/// Blocking work (a Kafka tool run, kubectl) from the async test.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// `file` from `examples/streamjobs/` with the broker address in `spec.job.args` replaced by
/// `bootstrap`, the one change the docs ask for; fails if the manifest does not hold that
/// value exactly once.
fn manifest(op: &OperatorCluster, file: &str, bootstrap: &str) -> anyhow::Result<String> {
    replace_once(
        &op.example(file)?,
        BOOTSTRAP_ARG,
        &format!(r#""--bootstrap-servers", "{bootstrap}""#),
    )
    .with_context(|| format!("{file}: the documented broker address"))
}

/// `text` with its one occurrence of `from` replaced by `to`.
fn replace_once(text: &str, from: &str, to: &str) -> anyhow::Result<String> {
    let n = text.matches(from).count();
    ensure!(n == 1, "expected `{from}` once, found it {n} times");
    Ok(text.replacen(from, to, 1))
}

/// Reads `topic` (read_committed) until `done` holds for its records, bounded by [`WAIT`].
/// Each read runs a JVM (seconds), which paces the loop.
fn wait_topic(
    broker: &KafkaBroker,
    topic: &str,
    what: &str,
    done: impl Fn(&[KafkaRecord]) -> bool,
) -> anyhow::Result<Vec<KafkaRecord>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let records = broker.read_committed(topic)?;
        if done(&records) {
            return Ok(records);
        }
        if Instant::now() >= deadline {
            bail!(
                "{what}: not there within {WAIT:?}; {topic} holds {} committed records",
                records.len()
            );
        }
    }
}

/// The JobManager and TaskManager logs of a StreamJob's Pods (for failure messages).
fn pod_logs(op: &OperatorCluster, name: &str) -> String {
    let dir = op.cluster.run_dir().join("agent/logs");
    let mut out = String::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("default_{name}-")))
            })
            .collect();
        paths.sort();
        for p in paths {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(25)..].join("\n");
            out.push_str(&format!("--- {} ---\n{tail}\n", p.display()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// kafka-wordcount

/// Input line `i`: one to five words of a 17-word vocabulary, mixed case and punctuation (the
/// tokenizer lowercases and splits on anything but letters, digits and `_`).
fn line(i: u64) -> String {
    const WORDS: [&str; 17] = [
        "Fjord",
        "stream",
        "kafka",
        "river",
        "state",
        "window",
        "Key",
        "barrier",
        "savepoint",
        "offset",
        "topic",
        "record",
        "watermark",
        "event",
        "time",
        "sink",
        "source",
    ];
    (0..=i % 5)
        .map(|j| WORDS[((i * 7 + j * 3) % 17) as usize])
        .collect::<Vec<_>>()
        .join(if i.is_multiple_of(2) { " " } else { ", " })
}

/// Occurrences per word (lowercase) in lines `0..n`.
fn word_counts(n: u64) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for i in 0..n {
        for w in line(i).split([' ', ',']).filter(|w| !w.is_empty()) {
            *out.entry(w.to_lowercase()).or_default() += 1;
        }
    }
    out
}

/// Checks the committed word-count updates: every record keyed by its word with value
/// `word,c`; per word, in offset order, exactly `1..=n` in one partition.
fn check_word_counts(records: &[KafkaRecord], want: &BTreeMap<String, u64>) -> anyhow::Result<()> {
    let mut seen: BTreeMap<String, (i32, Vec<u64>)> = BTreeMap::new();
    for r in records {
        let key = r.key_str().context("an output record without key")?;
        let value = r.value_str();
        let count = value
            .strip_prefix(&format!("{key},"))
            .and_then(|c| c.parse::<u64>().ok())
            .with_context(|| format!("record {key:?} → {value:?} is not `word,count`"))?;
        let entry = seen.entry(key.clone()).or_insert((r.partition, Vec::new()));
        ensure!(
            entry.0 == r.partition,
            "updates of {key:?} in partitions {} and {}",
            entry.0,
            r.partition
        );
        entry.1.push(count);
    }
    // Records come by partition, then offset: each word's updates are in the order written.
    for (word, n) in want {
        let got = seen.get(word).map(|s| s.1.clone()).unwrap_or_default();
        let expected: Vec<u64> = (1..=*n).collect();
        ensure!(
            got == expected,
            "updates of {word:?}: {got:?}, expected 1..={n} once each"
        );
    }
    let extra: Vec<&String> = seen.keys().filter(|w| !want.contains_key(*w)).collect();
    ensure!(
        extra.is_empty(),
        "updates of words never produced: {extra:?}"
    );
    Ok(())
}

async fn wordcount(op: &OperatorCluster, broker: &KafkaBroker) -> anyhow::Result<()> {
    const NAME: &str = "kafka-wordcount";
    const LINES: u64 = 400;
    blocking(|| -> anyhow::Result<()> {
        broker.create_topic("lines", PARTITIONS)?;
        broker.create_topic("word-counts", PARTITIONS)?;
        Ok(())
    })?;
    let started = Instant::now();
    op.apply(&manifest(op, "kafka-wordcount.yaml", broker.bootstrap())?)?;
    op.wait_running(NAME, WAIT).await?;
    eprintln!("{NAME}: Running {:.1}s after kubectl apply", secs(started));
    // Two batches while it runs.
    for range in [0..LINES / 2, LINES / 2..LINES] {
        let lines: Vec<String> = range.map(line).collect();
        blocking(|| broker.produce_lines("lines", &lines))?;
    }
    let want = word_counts(LINES);
    let total: u64 = want.values().sum();
    let records = blocking(|| {
        wait_topic(broker, "word-counts", "every word-count update", |r| {
            r.len() as u64 >= total
        })
    })
    .with_context(|| pod_logs(op, NAME))?;
    check_word_counts(&records, &want).with_context(|| pod_logs(op, NAME))?;
    ensure!(
        records.len() as u64 == total,
        "{} updates for {total} words",
        records.len()
    );
    op.kubectl(&["delete", "streamjob", NAME, "--wait=true", "--timeout=120s"])?;
    op.wait_no_pods(NAME, WAIT).await?;
    let after = blocking(|| broker.read_committed("word-counts"))?;
    check_word_counts(&after, &want)?;
    ensure!(
        after.len() == records.len(),
        "{} updates after the delete, {} before",
        after.len(),
        records.len()
    );
    eprintln!(
        "{NAME}: {LINES} lines, {total} words → {} updates, each word's counts 1..n exactly once",
        records.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kafka-windowed-counts

/// Record `j` of batch `k`: value `key-(j % KEYS)`, partition `j % 3`, timestamp in window `k`,
/// increasing with `j`.
fn event(k: u64, j: u64) -> ProducerRecord {
    ProducerRecord::value(format!("key-{}", j % KEYS))
        .partition((j % u64::from(PARTITIONS)) as i32)
        .timestamp(BASE + k as i64 * WINDOW_MS + (j as i64 * WINDOW_MS) / BATCH as i64)
}

/// The committed output of batches `0..n` once their windows closed:
/// `key,window_start,count`, sorted.
fn window_counts(n: u64) -> Vec<String> {
    let mut per_key: BTreeMap<u64, u64> = BTreeMap::new();
    for j in 0..BATCH {
        *per_key.entry(j % KEYS).or_default() += 1;
    }
    let mut out = Vec::new();
    for k in 0..n {
        for (key, count) in &per_key {
            out.push(format!("key-{key},{},{count}", BASE + k as i64 * WINDOW_MS));
        }
    }
    out.sort();
    out
}

/// The committed output's values, sorted; fails on a record whose key is not its value's.
fn committed_counts(broker: &KafkaBroker) -> anyhow::Result<Vec<String>> {
    values_of(&broker.read_committed("window-counts")?)
}

fn values_of(records: &[KafkaRecord]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let value = r.value_str();
        let key = r.key_str().unwrap_or_default();
        ensure!(
            value.split(',').next() == Some(key.as_str()),
            "output record key {key:?} does not match its value {value:?}"
        );
        out.push(value);
    }
    out.sort();
    Ok(out)
}

/// What differs between `got` and `want` (both sorted), for the failure message.
fn diff(got: &[String], want: &[String]) -> String {
    let mut missing = want.to_vec();
    let mut extra = Vec::new();
    for line in got {
        match missing.binary_search(line) {
            Ok(at) => {
                missing.remove(at);
            }
            Err(_) => extra.push(line.clone()),
        }
    }
    format!(
        "{} records, {} expected; missing {:?}; duplicated or wrong {:?}",
        got.len(),
        want.len(),
        &missing[..missing.len().min(10)],
        &extra[..extra.len().min(10)]
    )
}

/// Produces batch `k`.
fn produce_batch(broker: &KafkaBroker, k: u64) -> anyhow::Result<()> {
    let records: Vec<ProducerRecord> = (0..BATCH).map(|j| event(k, j)).collect();
    Ok(broker.produce("events", &records)?)
}

/// Waits until the windows of batches `0..n` are committed, and checks they are exactly the
/// expected counts (a window is complete when it is committed: one transaction holds it).
fn wait_windows(op: &OperatorCluster, broker: &KafkaBroker, n: u64) -> anyhow::Result<()> {
    let want = window_counts(n);
    let records = wait_topic(
        broker,
        "window-counts",
        &format!("the window counts of batches 0..{n}"),
        |r| r.len() >= want.len(),
    )
    .with_context(|| pod_logs(op, "kafka-windowed-counts"))?;
    let got = values_of(&records)?;
    ensure!(
        got == want,
        "after batch {n}: {}\n{}",
        diff(&got, &want),
        pod_logs(op, "kafka-windowed-counts")
    );
    Ok(())
}

/// Applies `manifest` (StreamJob `name`), waits until it runs and returns its job ID.
async fn apply_and_wait_running(
    op: &OperatorCluster,
    name: &str,
    manifest: &str,
) -> anyhow::Result<String> {
    let started = Instant::now();
    op.apply(manifest)?;
    let sj = op.wait_running(name, WAIT).await?;
    eprintln!("{name}: Running {:.1}s after kubectl apply", secs(started));
    Ok(sj["status"]["jobId"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Waits until the spec change just applied to `name` runs as a new job (not `first_job`)
/// restored from the one upgrade savepoint in its status; returns that savepoint's path and
/// the new job's configuration.
async fn wait_savepoint_upgrade(
    op: &OperatorCluster,
    name: &str,
    first_job: &str,
) -> anyhow::Result<(String, fjord_client::api::ClusterConfig)> {
    let g = generation(op, name)?;
    let sj = op
        .wait_for(name, "the savepoint upgrade to run", WAIT, |s| {
            s["lifecycleState"] == "Running"
                && s["jobState"] == "RUNNING"
                && s["lastReconciledGeneration"] == g
                && s["jobId"].as_str().is_some_and(|id| id != first_job)
        })
        .await?;
    let upgrade = history(&sj["status"], "upgrade");
    ensure!(
        upgrade.len() == 1,
        "one upgrade savepoint expected: {upgrade:?}"
    );
    let config = op.jobmanager(name)?.config().await?;
    ensure!(
        config.restore_path.as_deref() == Some(upgrade[0].as_str()),
        "the new job restored {:?}, not the upgrade savepoint {}",
        config.restore_path,
        upgrade[0]
    );
    Ok((upgrade[0].clone(), config))
}

/// The StreamJob's `metadata.generation`.
fn generation(op: &OperatorCluster, name: &str) -> anyhow::Result<Value> {
    Ok(op.streamjob(name)?["metadata"]["generation"].clone())
}

/// Savepoint paths in the status history taken for `trigger`.
fn history(status: &Value, trigger: &str) -> Vec<String> {
    status["savepointHistory"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            r["trigger"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(trigger))
        })
        .filter_map(|r| r["path"].as_str().map(str::to_string))
        .collect()
}

async fn windowed_counts(op: &OperatorCluster, broker: &KafkaBroker) -> anyhow::Result<()> {
    const NAME: &str = "kafka-windowed-counts";
    blocking(|| -> anyhow::Result<()> {
        broker.create_topic("events", PARTITIONS)?;
        broker.create_topic("window-counts", PARTITIONS)?;
        Ok(())
    })?;
    let original = manifest(op, "kafka-windowed-counts.yaml", broker.bootstrap())?;
    let first_job = apply_and_wait_running(op, NAME, &original).await?;

    // Batches 0..UPGRADE_AT, each once the windows two batches back are committed.
    for k in 0..UPGRADE_AT {
        blocking(|| produce_batch(broker, k))?;
        if k >= 1 {
            blocking(|| wait_windows(op, broker, k))?;
        }
    }

    // The upgrade mode first (nothing running changes: the operator observes the generation
    // without redeploying), then a changed argument: the operator stops the job with a
    // savepoint while batch UPGRADE_AT is being read.
    let savepoint_mode = replace_once(
        &original,
        "upgradeMode: last-state",
        "upgradeMode: savepoint",
    )?;
    op.apply(&savepoint_mode)?;
    let g = generation(op, NAME)?;
    op.wait_for(NAME, "the upgrade mode to be reconciled", WAIT, |s| {
        s["observedGeneration"] == g && s["lifecycleState"] == "Running"
    })
    .await?;
    let upgraded = replace_once(
        &savepoint_mode,
        r#""--idle-ms", "5000""#,
        r#""--idle-ms", "4000""#,
    )?;
    blocking(|| produce_batch(broker, UPGRADE_AT))?;
    let upgrade_started = Instant::now();
    op.apply(&upgraded)?;
    let (upgrade, config) = wait_savepoint_upgrade(op, NAME, &first_job).await?;
    ensure!(
        config
            .job_args
            .windows(2)
            .any(|w| w == ["--idle-ms", "4000"]),
        "the new job runs {:?}",
        config.job_args
    );
    eprintln!(
        "{NAME}: savepoint upgrade to {} running after {:.1}s",
        upgrade,
        secs(upgrade_started)
    );

    // The rest of the input, then one record per partition an hour later, closing every window.
    blocking(|| wait_windows(op, broker, UPGRADE_AT))?;
    for k in UPGRADE_AT + 1..BATCHES {
        blocking(|| produce_batch(broker, k))?;
        blocking(|| wait_windows(op, broker, k))?;
    }
    let late = BASE + BATCHES as i64 * WINDOW_MS + 3_600_000;
    let closing: Vec<ProducerRecord> = (0..PARTITIONS as i32)
        .map(|p| {
            ProducerRecord::value("closing")
                .partition(p)
                .timestamp(late)
        })
        .collect();
    blocking(|| broker.produce("events", &closing))?;
    blocking(|| wait_windows(op, broker, BATCHES))?;

    // Suspend: stop with a savepoint (its transactions commit), no Pods left; the committed
    // output is then final and must be exactly the failure-free one.
    op.patch(NAME, r#"{"spec":{"job":{"state":"suspended"}}}"#)?;
    op.wait_for(NAME, "Suspended", WAIT, |s| {
        s["lifecycleState"] == "Suspended"
    })
    .await?;
    op.wait_no_pods(NAME, WAIT).await?;
    let want = window_counts(BATCHES);
    let got = blocking(|| committed_counts(broker))?;
    if got != want {
        bail!(
            "read_committed output is not exactly once: {}\n{}",
            diff(&got, &want),
            pod_logs(op, NAME)
        );
    }
    eprintln!(
        "{NAME}: {} records in {BATCHES} batches, a savepoint upgrade after batch {UPGRADE_AT}: \
         {} window counts committed exactly once",
        BATCHES * BATCH,
        got.len()
    );
    op.kubectl(&["delete", "streamjob", NAME, "--wait=true", "--timeout=120s"])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sql-order-counts

/// Orders per window in the SQL example's input.
const SQL_ORDERS: u64 = 60;

/// Order `j` of window `k` as the CSV line the script's `orders` table reads: product
/// `p(j % 3)`, amount `j`, event time `k * 10 s + j * 150 ms` (inside window `k`).
fn order(k: u64, j: u64) -> String {
    let ms = k * 10_000 + j * 150;
    format!(
        "{},p{},{j},2024-01-01 00:{:02}:{:02}.{:03}",
        k * SQL_ORDERS + j,
        j % 3,
        ms / 60_000,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The committed output for windows `0..n`, sorted: `start,end,product,orders,total` as
/// Flink's CSV format writes TIMESTAMP(3).
fn order_counts(n: u64) -> Vec<String> {
    let time = |s: u64| format!("2024-01-01 00:{:02}:{:02}", s / 60, s % 60);
    let mut out = Vec::new();
    for k in 0..n {
        for p in 0..3 {
            let amounts = (0..SQL_ORDERS).filter(|j| j % 3 == p);
            let (count, total) = (amounts.clone().count(), amounts.sum::<u64>());
            out.push(format!(
                "{},{},p{p},{count},{total}",
                time(k * 10),
                time(k * 10 + 10)
            ));
        }
    }
    out.sort();
    out
}

/// Waits until the counts of windows `0..n` are committed and checks they are exactly those.
fn wait_order_counts(op: &OperatorCluster, broker: &KafkaBroker, n: u64) -> anyhow::Result<()> {
    let want = order_counts(n);
    let records = wait_topic(broker, "order-counts", "the order counts", |r| {
        r.len() >= want.len()
    })
    .with_context(|| pod_logs(op, "sql-order-counts"))?;
    let mut got: Vec<String> = records.iter().map(KafkaRecord::value_str).collect();
    got.sort();
    ensure!(
        got == want,
        "windows 0..{n}: {}\n{}",
        diff(&got, &want),
        pod_logs(op, "sql-order-counts")
    );
    Ok(())
}

async fn sql_order_counts(op: &OperatorCluster, broker: &KafkaBroker) -> anyhow::Result<()> {
    const NAME: &str = "sql-order-counts";
    const SQL_BOOTSTRAP: &str = "'properties.bootstrap.servers' = 'localhost:9092'";
    blocking(|| -> anyhow::Result<()> {
        broker.create_topic("orders", 1)?;
        broker.create_topic("order-counts", 1)?;
        Ok(())
    })?;
    let example = op.example("sql-order-counts.yaml")?;
    ensure!(
        example.matches(SQL_BOOTSTRAP).count() == 2,
        "the documented broker address, once per table"
    );
    let manifest = example.replace(
        SQL_BOOTSTRAP,
        &format!("'properties.bootstrap.servers' = '{}'", broker.bootstrap()),
    );
    // A script that does not plan: Degraded with line and column, and nothing deployed.
    op.apply(&manifest.replace("SUM(amount)", "SUM(amountt)"))?;
    op.wait_degraded(NAME, "InvalidSpec", WAIT, |m| {
        m.contains("spec.job.sql") && m.contains("line ") && m.contains("amountt")
    })
    .await?;
    op.wait_no_pods(NAME, WAIT).await?;
    let first_job = apply_and_wait_running(op, NAME, &manifest).await?;
    let produce = |k: u64, js: std::ops::Range<u64>| {
        let lines: Vec<String> = js.map(|j| order(k, j)).collect();
        blocking(|| broker.produce_lines("orders", &lines))
    };
    // Windows 0 and 1, then window 0 committed (window 1's orders close it).
    produce(0, 0..SQL_ORDERS)?;
    produce(1, 0..SQL_ORDERS)?;
    blocking(|| wait_order_counts(op, broker, 1))?;
    // Half of window 2, read before the upgrade: its counts are state in the savepoint.
    produce(2, 0..SQL_ORDERS / 2)?;
    blocking(|| wait_order_counts(op, broker, 2))?;
    op.patch(NAME, r#"{"spec":{"job":{"restartNonce":1}}}"#)?;
    let _ = wait_savepoint_upgrade(op, NAME, &first_job).await?;
    // The rest of window 2, window 3, then an order an hour later closing them.
    produce(2, SQL_ORDERS / 2..SQL_ORDERS)?;
    produce(3, 0..SQL_ORDERS)?;
    blocking(|| broker.produce_lines("orders", &["0,p0,0,2024-01-01 01:00:00".to_string()]))?;
    blocking(|| wait_order_counts(op, broker, 4))?;
    // Nothing more arrives: the last read is the final answer.
    let got = blocking(|| broker.read_committed("order-counts"))?.len();
    ensure!(
        got == order_counts(4).len(),
        "{got} committed counts at the end"
    );
    eprintln!(
        "{NAME}: {} orders in 4 windows, a savepoint upgrade mid-window: {got} counts committed exactly once",
        4 * SQL_ORDERS
    );
    op.kubectl(&["delete", "streamjob", NAME, "--wait=true", "--timeout=120s"])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ticks: spec.job.sqlFrom

/// The `(version, n)` rows of the `ticks` topic, in offset order.
fn ticks(records: &[KafkaRecord]) -> anyhow::Result<Vec<(String, u64)>> {
    records
        .iter()
        .map(|r| {
            let v = r.value_str();
            let (version, n) = v
                .split_once(',')
                .with_context(|| format!("{v:?} is not `version,n`"))?;
            Ok((version.to_string(), n.parse()?))
        })
        .collect()
}

/// The rows of `version` in `rows`.
fn of_version(rows: &[(String, u64)], version: &str) -> Vec<u64> {
    rows.iter()
        .filter(|(v, _)| v == version)
        .map(|(_, n)| *n)
        .collect()
}

async fn sql_from_config_map(op: &OperatorCluster, broker: &KafkaBroker) -> anyhow::Result<()> {
    const NAME: &str = "ticks";
    const SQL_BOOTSTRAP: &str = "'properties.bootstrap.servers' = 'localhost:9092'";
    blocking(|| broker.create_topic("ticks", 1))?;
    let example = replace_once(
        &op.example("sql-configmap.yaml")?,
        SQL_BOOTSTRAP,
        &format!("'properties.bootstrap.servers' = '{}'", broker.bootstrap()),
    )?;
    let (config_map, streamjob) = example
        .split_once("\n---\n")
        .context("the example holds a ConfigMap, then the StreamJob")?;
    // The StreamJob first: it waits for its ConfigMap, Degraded, with nothing deployed.
    op.apply(streamjob)?;
    op.wait_degraded(NAME, "InvalidSpec", WAIT, |m| {
        m.contains("ConfigMap 'ticks-sql' does not exist in namespace 'default'")
    })
    .await?;
    op.wait_no_pods(NAME, WAIT).await?;
    // The ConfigMap arrives: the watch starts the job.
    let first_job = apply_and_wait_running(op, NAME, config_map).await?;
    let rows = blocking(|| {
        wait_topic(broker, "ticks", "40 rows of v1", |r| {
            ticks(r).is_ok_and(|t| of_version(&t, "v1").len() >= 40)
        })
    })
    .with_context(|| pod_logs(op, NAME))?;
    ensure!(
        ticks(&rows)?.iter().all(|(v, _)| v == "v1"),
        "only v1 rows before the edit"
    );
    // The script edited in the ConfigMap alone: a savepoint upgrade to the new script, whose
    // sequence goes on from the savepoint.
    op.apply(&replace_once(
        config_map,
        "SELECT 'v1', n",
        "SELECT 'v2', n",
    )?)?;
    let _ = wait_savepoint_upgrade(op, NAME, &first_job).await?;
    let records = blocking(|| {
        wait_topic(broker, "ticks", "40 rows of v2", |r| {
            ticks(r).is_ok_and(|t| of_version(&t, "v2").len() >= 40)
        })
    })
    .with_context(|| pod_logs(op, NAME))?;
    let rows = ticks(&records)?;
    let (v1, v2) = (of_version(&rows, "v1"), of_version(&rows, "v2"));
    let split = rows
        .iter()
        .position(|(v, _)| v == "v2")
        .unwrap_or(rows.len());
    ensure!(
        rows[split..].iter().all(|(v, _)| v == "v2"),
        "v1 rows after the first v2 row"
    );
    let all: Vec<u64> = rows.iter().map(|(_, n)| *n).collect();
    ensure!(
        all == (0..all.len() as u64).collect::<Vec<_>>(),
        "the sequence across the upgrade is not 0, 1, 2, ... once each: v1 {}..={}, v2 from {}",
        v1.first().copied().unwrap_or_default(),
        v1.last().copied().unwrap_or_default(),
        v2.first().copied().unwrap_or_default()
    );
    // A script that does not plan: Degraded with line and column; v2 runs on meanwhile.
    op.apply(&replace_once(
        config_map,
        "SELECT 'v1', n",
        "SELECT 'v3', nn",
    )?)?;
    op.wait_degraded(NAME, "InvalidSpec", WAIT, |m| {
        m.contains("spec.job.sqlFrom") && m.contains("line ") && m.contains("nn")
    })
    .await?;
    let before = records.len();
    let later = blocking(|| {
        wait_topic(broker, "ticks", "v2 rows after the bad edit", |r| {
            r.len() >= before + 20
        })
    })?;
    ensure!(
        ticks(&later)?[before..].iter().all(|(v, _)| v == "v2"),
        "the running v2 job goes on while the ConfigMap's script does not plan"
    );
    eprintln!(
        "{NAME}: {} rows of v1, a ConfigMap edit upgraded the job with a savepoint, v2 went on from {}",
        v1.len(),
        v2.first().copied().unwrap_or_default()
    );
    op.kubectl(&["delete", "streamjob", NAME, "--wait=true", "--timeout=120s"])?;
    Ok(())
}

/// The Kafka examples on the operator, one cluster and one broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_streamjobs_write_their_topics_exactly_once_across_a_savepoint_upgrade()
-> anyhow::Result<()> {
    let broker = blocking(|| KafkaBroker::start_with(KafkaOptions::new("operator-kafka")))?;
    let op = blocking(|| OperatorCluster::start("operator-kafka"))?;
    let outcome = async {
        wordcount(&op, &broker).await?;
        windowed_counts(&op, &broker).await?;
        sql_order_counts(&op, &broker).await?;
        sql_from_config_map(&op, &broker).await
    }
    .await;
    if let Err(e) = outcome {
        bail!(
            "{e:#}\n--- kafka ({}) ---\n{}",
            broker.log_path().display(),
            broker.log_tail(30)
        );
    }
    op.cluster.stop()?;
    blocking(|| broker.shutdown())?;
    Ok(())
}
