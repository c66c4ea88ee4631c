//! Kafka → keyed event-time window counts → Kafka with the exactly-once Kafka sink, on the
//! distributed runtime (a `fjord jobmanager --scheduler taskmanagers` and `fjord taskmanager`
//! processes on loopback, checkpoints in a `file://` temporary directory) and a real Apache
//! Kafka broker (`fjord_e2e::KafkaBroker`), running the built-in `kafka-windowed-counts` job.
//!
//! The judge is Kafka's own Java consumer with `isolation.level=read_committed`
//! (`KafkaBroker::read_committed`), not Fjord's client: after the failures of each scenario
//! (TaskManagers SIGKILLed repeatedly, a rescale in place, the broker stopped for 30 s) it must
//! see exactly the failure-free output — every (key, window) count once, none missing, nothing
//! duplicated, nothing else.
//!
//! The input is deterministic: record `i` goes to partition `i % PARTITIONS` with key
//! `key-(i % KEYS)` as its value and Kafka timestamp `BASE + i` ms, so the expected counts follow
//! from the record numbers alone. The test produces it in batches while the job runs, then a
//! closing record per partition one hour later, which moves every partition's watermark past
//! all windows of the real records (those closing windows never fire, and are not expected).
//!
//! The `fjord` binary must be built first, into this test's target directory:
//! `cargo build -p fjord-worker --features s3 --bins` (or point `FJORD_E2E_WORKER_BIN` at one).
//! Every wait is bounded; nothing asserts on timing.

mod process_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord_client::api::{RescaleRequest, SavepointRequest, SavepointState};
use fjord_e2e::{KafkaBroker, KafkaOptions, ProducerRecord, poll_until};
use process_support::{JobManager, POLL, Proc, cluster_jm_args, file_url, task_manager, with_args};

/// Partitions of the input and output topics.
const PARTITIONS: u32 = 3;
/// Distinct keys.
const KEYS: u64 = 7;
/// The job's window.
const WINDOW_MS: i64 = 1000;
/// Event time of record 0.
const BASE: i64 = 1_700_000_000_000;
/// Records per batch.
const BATCH: u64 = 3_000;
/// Bound on waiting for the job to catch up with its input or to recover.
const JOB: Duration = Duration::from_secs(300);

/// Record `i` of the input.
fn record(i: u64) -> ProducerRecord {
    ProducerRecord::value(format!("key-{}", i % KEYS))
        .partition((i % u64::from(PARTITIONS)) as i32)
        .timestamp(BASE + i as i64)
}

/// What the failure-free job commits for records `0..n`: `key,window_start,count`, sorted.
fn expected(n: u64) -> Vec<String> {
    let mut counts: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for i in 0..n {
        let t = BASE + i as i64;
        *counts
            .entry((i % KEYS, t - t.rem_euclid(WINDOW_MS)))
            .or_default() += 1;
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|((k, w), c)| format!("key-{k},{w},{c}"))
        .collect();
    lines.sort();
    lines
}

/// Blocking work (a Kafka tool run) from an async test.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// One scenario's broker, topics, JobManager and TaskManagers.
struct Setup {
    dir: tempfile::TempDir,
    broker: KafkaBroker,
    jm: JobManager,
    tms: Vec<Proc>,
    /// Killed TaskManagers, kept for their logs.
    dead: Vec<Proc>,
    job_id: String,
    produced: u64,
    /// The sink's transactional id prefix.
    prefix: String,
}

impl Setup {
    /// A broker with `events` and `counts`, a JobManager running `kafka-windowed-counts` at
    /// parallelism `p` with checkpoints every 500 ms, and `tms` TaskManagers of `slots` slots.
    async fn start(
        name: &str,
        p: u32,
        tms: usize,
        slots: u32,
        checkpoint_ms: u64,
    ) -> anyhow::Result<Self> {
        Self::start_with(name, p, tms, checkpoint_ms, |n, dir, rpc| {
            task_manager(&format!("tm{n}"), dir, rpc, slots)
        })
        .await
    }

    /// [`start`](Self::start) with TaskManagers started by `spawn(n, dir, jobmanager_rpc)`.
    async fn start_with(
        name: &str,
        p: u32,
        tms: usize,
        checkpoint_ms: u64,
        spawn: impl Fn(usize, &Path, &str) -> anyhow::Result<Proc>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let broker = blocking(|| -> anyhow::Result<KafkaBroker> {
            let broker = KafkaBroker::start_with(KafkaOptions::new(name))?;
            broker.create_topic("events", PARTITIONS)?;
            broker.create_topic("counts", PARTITIONS)?;
            Ok(broker)
        })?;
        let args = jm_args(dir.path(), p, broker.bootstrap(), name, checkpoint_ms);
        let mut jm = JobManager::start("jobmanager", dir.path(), args).await?;
        let mut procs = Vec::new();
        for n in 0..tms {
            procs.push(spawn(n, dir.path(), &jm.rpc)?);
        }
        let job_id = jm.job_id().await?;
        Ok(Setup {
            dir,
            broker,
            jm,
            tms: procs,
            dead: Vec::new(),
            job_id,
            produced: 0,
            prefix: name.to_string(),
        })
    }

    /// Produce the next `n` input records.
    fn produce(&mut self, n: u64) -> anyhow::Result<()> {
        let records: Vec<ProducerRecord> = (self.produced..self.produced + n).map(record).collect();
        blocking(|| self.broker.produce("events", &records))?;
        self.produced += n;
        Ok(())
    }

    /// Produce one record per partition an hour after the last real one, so every window of
    /// the real records closes.
    fn close_windows(&mut self) -> anyhow::Result<()> {
        let late = BASE + self.produced as i64 + 3_600_000;
        let records: Vec<ProducerRecord> = (0..PARTITIONS as i32)
            .map(|p| {
                ProducerRecord::value("closing")
                    .partition(p)
                    .timestamp(late)
            })
            .collect();
        blocking(|| self.broker.produce("events", &records))?;
        Ok(())
    }

    /// The newest completed checkpoint's ID (0 before the first or when not answered).
    async fn latest_checkpoint(&self) -> i64 {
        self.jm.latest_checkpoint(&self.job_id).await
    }

    /// Waits (bounded) until a checkpoint newer than `after` completed: the job runs and makes
    /// progress (after a restart: it recovered).
    async fn checkpoint_after(&self, after: i64) -> anyhow::Result<i64> {
        self.jm
            .checkpoint_after(&self.job_id, after, JOB)
            .await
            .with_context(|| self.tails())
    }

    /// The committed output's values, sorted, as Kafka's read_committed consumer sees them;
    /// fails on a record whose key is not the key at the start of its value.
    fn committed(&self) -> anyhow::Result<Vec<String>> {
        let records = blocking(|| self.broker.read_committed("counts"))?;
        let mut lines = Vec::with_capacity(records.len());
        for r in records {
            let value = r.value_str();
            let key = r.key_str().unwrap_or_default();
            ensure!(
                value.split(',').next() == Some(key.as_str()),
                "output record key {key:?} does not match its value {value:?}"
            );
            lines.push(value);
        }
        lines.sort();
        Ok(lines)
    }

    /// Stops the job with a savepoint (no drain: its last transactions commit, its windows
    /// stay in the savepoint) and returns the savepoint's path.
    async fn stop_with_savepoint(&self, trigger_id: &str) -> anyhow::Result<String> {
        let stop = self
            .jm
            .client
            .stop_with_savepoint(
                &self.job_id,
                &SavepointRequest {
                    trigger_id: trigger_id.into(),
                    directory: Some(file_url(&self.dir.path().join("savepoints"))),
                    drain: false,
                },
            )
            .await?;
        let client = self.jm.client.clone();
        let job_id = self.job_id.clone();
        let state = poll_until("the stop-with-savepoint", JOB, POLL, || {
            let (client, job_id, trigger) =
                (client.clone(), job_id.clone(), stop.trigger_id.clone());
            async move {
                let s = client.savepoint_status(&job_id, &trigger).await.ok()?;
                (s.state != SavepointState::InProgress).then_some(s)
            }
        })
        .await
        .with_context(|| self.tails())?;
        ensure!(
            state.state == SavepointState::Completed,
            "stop-with-savepoint: {state:?}\n{}",
            self.tails()
        );
        let described = format!("{state:?}");
        state
            .path
            .with_context(|| format!("a completed savepoint without a path: {described}"))
    }

    /// Starts the job again from `savepoint` at parallelism `p` under a new JobManager (and a
    /// new job ID) with one new TaskManager of `p` slots (Flink's `flink run -s`); the stopped
    /// job's JobManager and TaskManagers go first.
    async fn resume(&mut self, savepoint: &str, p: u32, n: usize) -> anyhow::Result<()> {
        let mut args = jm_args(
            self.dir.path(),
            p,
            self.broker.bootstrap(),
            &self.prefix,
            500,
        );
        // The restore path goes before the job's name (a JobManager flag).
        let at = args
            .iter()
            .position(|a| a == "kafka-windowed-counts")
            .context("the job's name in the JobManager's flags")?;
        // A new job ID, as the Kubernetes operator gives every deployed generation: under the
        // stopped job's ID the JobManager would resume from that job's latest checkpoint
        // (older than the savepoint) instead of the savepoint.
        let job_id = format!("{:032x}", 0x5e5u64 * 16 + n as u64);
        args.splice(
            at..at,
            [
                "--restore-path".to_string(),
                savepoint.to_string(),
                "--job-id".to_string(),
                job_id,
            ],
        );
        for mut old in self.tms.drain(..) {
            old.sigkill();
            self.dead.push(old);
        }
        self.jm.proc.sigkill();
        let jm = JobManager::start(&format!("jobmanager-{n}"), self.dir.path(), args).await?;
        let tm = task_manager(&format!("tm-resumed-{n}"), self.dir.path(), &jm.rpc, p)?;
        self.jm = jm;
        self.tms.push(tm);
        self.job_id = self.jm.job_id().await?;
        Ok(())
    }

    /// Waits (bounded) until the committed output holds at least as many records as the
    /// failure-free output of everything produced, then stops the job with a savepoint (its
    /// last transaction commits) and asserts the committed output is exactly that.
    async fn stop_and_assert_exactly_once(&mut self) -> anyhow::Result<()> {
        let want = expected(self.produced);
        let deadline = Instant::now() + JOB;
        loop {
            let got = self.committed()?;
            if got.len() >= want.len() {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "the job committed {} of {} window counts within {JOB:?}\n{}",
                got.len(),
                want.len(),
                self.tails()
            );
            // Each check runs a JVM, which takes seconds; no extra pause needed.
        }
        self.stop_with_savepoint("final-stop").await?;
        let got = self.committed()?;
        if got != want {
            let mut missing = want.clone();
            let mut extra = Vec::new();
            for line in &got {
                match missing.binary_search(line) {
                    Ok(at) => {
                        missing.remove(at);
                    }
                    Err(_) => extra.push(line.clone()),
                }
            }
            bail!(
                "read_committed output is not exactly once: {} records, {} expected; missing \
                 {:?}; duplicated or wrong {:?}\n{}",
                got.len(),
                want.len(),
                &missing[..missing.len().min(10)],
                &extra[..extra.len().min(10)],
                self.tails()
            );
        }
        eprintln!(
            "{} window counts committed exactly once for {} records",
            got.len(),
            self.produced
        );
        Ok(())
    }

    fn tails(&self) -> String {
        let mut out: Vec<String> = vec![self.jm.proc.tail()];
        out.extend(self.tms.iter().chain(&self.dead).map(Proc::tail));
        out.push(format!(
            "--- kafka ({}) ---\n{}",
            self.broker.log_path().display(),
            self.broker.log_tail(30)
        ));
        out.join("\n")
    }

    /// Stop the broker and remove its directory (the test passed).
    fn finish(self) -> anyhow::Result<()> {
        drop(self.tms);
        drop(self.dead);
        drop(self.jm);
        blocking(|| self.broker.shutdown())?;
        Ok(())
    }
}

/// JobManager flags: TaskManagers scheduler, loopback, parallelism `p`, checkpoints every
/// `checkpoint_ms`, heartbeat timeout 2 s; the job `kafka-windowed-counts` on `bootstrap`.
fn jm_args(dir: &Path, p: u32, bootstrap: &str, prefix: &str, checkpoint_ms: u64) -> Vec<String> {
    let (savepoints, window_ms) = (file_url(&dir.join("savepoints")), WINDOW_MS.to_string());
    with_args(
        cluster_jm_args(0, p, &dir.join("checkpoints"), checkpoint_ms),
        &[
            "--savepoint-dir",
            &savepoints,
            "--wait-for-slots",
            "60s",
            "kafka-windowed-counts",
            "--bootstrap-servers",
            bootstrap,
            "--input-topic",
            "events",
            "--output-topic",
            "counts",
            "--window-ms",
            &window_ms,
            // Per-partition watermarks; partitions start a batch a few ms apart after being idle.
            "--out-of-orderness-ms",
            "2000",
            "--idle-ms",
            "5000",
            "--delivery-guarantee",
            "exactly-once",
            "--transactional-id-prefix",
            prefix,
        ],
    )
}

/// TaskManagers are SIGKILLed three times while the job runs, each time with window counts in
/// flight that no checkpoint covers (and after a checkpoint showing the job recovered from the
/// previous kill), and replaced; Kafka's read_committed consumer
/// sees exactly the failure-free output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_task_managers_leave_the_kafka_output_exactly_once() -> anyhow::Result<()> {
    // Checkpoints every 20 s, and each kill comes right after new window counts reached Kafka
    // (seen by a read_uncommitted consumer), usually before a checkpoint covers them: they are
    // in an open transaction when the TaskManager dies, and the restarted attempt emits them
    // again. An at-least-once sink would leave such counts twice in the output.
    let mut s = Setup::start("eo-kills", 2, 2, 1, 20_000).await?;
    s.produce(BATCH)?;
    s.checkpoint_after(0).await?;
    for kill in 0..3 {
        let before = s.latest_checkpoint().await;
        let written = blocking(|| s.broker.read_uncommitted("counts"))?.len();
        s.produce(BATCH)?;
        let deadline = Instant::now() + JOB;
        while blocking(|| s.broker.read_uncommitted("counts"))?.len() <= written {
            ensure!(
                Instant::now() < deadline,
                "no new window counts reached Kafka within {JOB:?}\n{}",
                s.tails()
            );
        }
        // Kill the oldest TaskManager (it holds a subtask: every slot is used) and replace it.
        let covered = s.latest_checkpoint().await;
        let mut victim = s.tms.remove(0);
        eprintln!(
            "kill {kill}: SIGKILL {} with new window counts in flight (latest checkpoint \
             {covered}, {before} before the batch)",
            victim.name()
        );
        victim.sigkill();
        s.dead.push(victim);
        let name = format!("tm-replacement-{kill}");
        s.tms.push(task_manager(&name, s.dir.path(), &s.jm.rpc, 1)?);
        // Only the recovered job completes a checkpoint after the kill.
        s.checkpoint_after(covered).await?;
    }
    let restarts = s.jm.client.job(&s.job_id).await?.restarts;
    ensure!(restarts >= 1, "the job never restarted\n{}", s.tails());
    s.produce(BATCH)?;
    s.close_windows()?;
    s.stop_and_assert_exactly_once().await?;
    eprintln!("restarts: {restarts}");
    s.finish()
}

/// The job is rescaled in place from 2 to 3 subtasks (stop with a savepoint, restore at the new
/// parallelism: the sink's transactions and the source's offsets are redistributed) and later
/// back to 1; the output stays exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_at_another_parallelism_keeps_the_kafka_output_exactly_once() -> anyhow::Result<()>
{
    let mut s = Setup::start("eo-rescale", 2, 1, 3, 500).await?;
    s.produce(BATCH)?;
    s.checkpoint_after(0).await?;
    for (n, parallelism) in [3usize, 1].into_iter().enumerate() {
        let trigger =
            s.jm.client
                .rescale(
                    &s.job_id,
                    &RescaleRequest {
                        parallelism,
                        trigger_id: Some(format!("rescale-{n}")),
                    },
                )
                .await?;
        let client = s.jm.client.clone();
        let job_id = s.job_id.clone();
        let status = poll_until("the rescale", JOB, POLL, || {
            let (client, job_id, t) = (client.clone(), job_id.clone(), trigger.trigger_id.clone());
            async move {
                let st = client.rescale_status(&job_id, &t).await.ok()?;
                (st.state != SavepointState::InProgress).then_some(st)
            }
        })
        .await
        .with_context(|| s.tails())?;
        ensure!(
            status.state == SavepointState::Completed,
            "rescale to {parallelism}: {status:?}\n{}",
            s.tails()
        );
        eprintln!("rescaled to {parallelism} from {:?}", status.savepoint_path);
        s.produce(BATCH)?;
        s.checkpoint_after(s.latest_checkpoint().await).await?;
    }
    s.close_windows()?;
    s.stop_and_assert_exactly_once().await?;
    s.finish()
}

/// The user's way of rescaling, as with Flink's `flink stop` and `flink run -s`: the job is
/// stopped with a savepoint while records are in flight, started again from it by a new
/// JobManager at a higher parallelism (2 → 3: a sink subtask without state of its own), stopped
/// again and resumed at a lower one (3 → 1: one subtask commits and probes the transactions of
/// three). Kafka's read_committed consumer sees every window count exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_with_savepoint_and_resume_at_higher_and_lower_parallelism_is_exactly_once()
-> anyhow::Result<()> {
    let mut s = Setup::start("eo-stop-resume", 2, 1, 3, 500).await?;
    s.produce(BATCH)?;
    s.checkpoint_after(0).await?;
    for (n, parallelism) in [3u32, 1].into_iter().enumerate() {
        // Records in flight at the stop: some read, some not yet.
        s.produce(BATCH)?;
        let savepoint = s.stop_with_savepoint(&format!("stop-{n}")).await?;
        eprintln!("stopped with savepoint {savepoint}; resuming at parallelism {parallelism}");
        s.resume(&savepoint, parallelism, n).await?;
        s.produce(BATCH)?;
        s.checkpoint_after(s.latest_checkpoint().await).await?;
        let job = s.jm.client.job(&s.job_id).await?;
        let sink_parallelism = job.vertices.iter().map(|v| v.parallelism).max();
        ensure!(
            sink_parallelism == Some(parallelism as usize),
            "the resumed job runs at {sink_parallelism:?}, not {parallelism}"
        );
    }
    s.close_windows()?;
    s.stop_and_assert_exactly_once().await?;
    s.finish()
}

/// Parses the samples of `metric` in a Prometheus text exposition: each sample's labels and
/// value.
fn samples(text: &str, metric: &str) -> anyhow::Result<Vec<(BTreeMap<String, String>, f64)>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let mut labels = BTreeMap::new();
        let mut chars = rest.chars();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            ensure!(chars.next() == Some('"'), "bad labels in {line:?}");
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some(c) => value.push(c),
                        None => bail!("bad escape in {line:?}"),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key, value);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                _ => bail!("bad labels in {line:?}"),
            }
        }
        let value: f64 = chars
            .as_str()
            .trim()
            .parse()
            .with_context(|| line.to_string())?;
        out.push((labels, value));
    }
    Ok(out)
}

/// The values of `metric` per partition of `topic`, summed over subtasks.
fn per_partition(text: &str, metric: &str, topic: &str) -> anyhow::Result<BTreeMap<u32, f64>> {
    let mut out = BTreeMap::new();
    for (labels, value) in samples(text, metric)? {
        if labels.get("topic").map(String::as_str) == Some(topic) {
            let p: u32 = labels
                .get("partition")
                .context("a per-partition sample without a partition label")?
                .parse()?;
            *out.entry(p).or_default() += value;
        }
    }
    Ok(out)
}

/// The sum of `metric` over all its samples.
fn total(text: &str, metric: &str) -> anyhow::Result<f64> {
    Ok(samples(text, metric)?.iter().map(|(_, v)| v).sum())
}

/// The JobManager's Prometheus `/metrics` (real HTTP) shows the Kafka connector's metrics of
/// subtasks running on TaskManagers: records and bytes read per input partition, the
/// consumer lag per partition, offset commits, and the sink's records per output partition and
/// transactions — while the job runs, and their final values after it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_export_shows_the_kafka_metrics_per_partition() -> anyhow::Result<()> {
    const READ: &str = "fjord_operator_KafkaSourceReader_topic_partition_records_total";
    const BYTES: &str = "fjord_operator_KafkaSourceReader_topic_partition_bytes_total";
    const LAG: &str = "fjord_operator_KafkaSourceReader_topic_partition_lag";
    const COMMITS: &str = "fjord_operator_KafkaSourceReader_commitsSucceeded_total";
    const COMMIT_FAILURES: &str = "fjord_operator_KafkaSourceReader_commitsFailed_total";
    const SENT: &str = "fjord_operator_KafkaSinkWriter_topic_partition_recordsSent_total";
    const COMMITTED: &str = "fjord_operator_KafkaSinkWriter_transactionsCommitted_total";
    const ABORTED: &str = "fjord_operator_KafkaSinkWriter_transactionsAborted_total";
    const TX_FAILURES: &str = "fjord_operator_KafkaSinkWriter_commitFailures_total";

    let mut s = Setup::start("eo-metrics", 2, 1, 2, 500).await?;
    // Two batches: with 2 s of out-of-orderness the windows of the first one fire during the
    // second, so the sink commits transactions with records.
    s.produce(BATCH)?;
    s.produce(BATCH)?;
    let per_input = 2 * BATCH / u64::from(PARTITIONS);
    // Every input record read (BATCH / PARTITIONS per partition), no lag left, and a
    // transaction committed: the export is live while the job runs.
    let client = s.jm.client.clone();
    let last = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = last.clone();
    let text = poll_until("the Kafka metrics in /metrics", JOB, POLL, || {
        let (client, seen) = (client.clone(), seen.clone());
        async move {
            let text = client.metrics().await.ok()?;
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = text.clone();
            let read = per_partition(&text, READ, "events").ok()?;
            let lag = per_partition(&text, LAG, "events").ok()?;
            let done = read.len() == PARTITIONS as usize
                && read.values().all(|v| *v == per_input as f64)
                && lag.len() == PARTITIONS as usize
                && lag.values().all(|v| *v == 0.0)
                && total(&text, COMMITTED).ok()? >= 1.0
                && total(&text, COMMITS).ok()? >= 1.0;
            done.then_some(text)
        }
    })
    .await
    .with_context(|| {
        let last = last.lock().unwrap_or_else(|p| p.into_inner());
        let kafka: Vec<&str> = last
            .lines()
            .filter(|l| l.starts_with("fjord_operator_Kafka"))
            .collect();
        format!("last Kafka samples:\n{}\n{}", kafka.join("\n"), s.tails())
    })?;
    let bytes = per_partition(&text, BYTES, "events")?;
    ensure!(
        bytes.len() == PARTITIONS as usize && bytes.values().all(|b| *b > 0.0),
        "bytes per partition: {bytes:?}"
    );
    ensure!(
        total(&text, COMMIT_FAILURES)? == 0.0,
        "offset commit failures:\n{text}"
    );
    ensure!(
        total(&text, TX_FAILURES)? == 0.0,
        "transaction commit failures:\n{text}"
    );
    ensure!(
        !samples(&text, ABORTED)?.is_empty(),
        "no {ABORTED} series:\n{text}"
    );
    // Both subtasks of the source export their series (labels operator and subtask).
    let subtasks: std::collections::BTreeSet<String> = samples(&text, COMMITS)?
        .into_iter()
        .filter_map(|(l, _)| l.get("subtask").cloned())
        .collect();
    ensure!(
        subtasks.len() == 2,
        "source subtasks in {COMMITS}: {subtasks:?}"
    );

    s.close_windows()?;
    s.stop_and_assert_exactly_once().await?;
    // After the stop: the final values. Without failures every record sent was committed, so
    // the sink's records per output partition add up to what read_committed sees.
    let text = s.jm.client.metrics().await?;
    let committed = s.committed()?.len() as f64;
    let sent = per_partition(&text, SENT, "counts")?;
    ensure!(
        sent.values().sum::<f64>() == committed && !sent.is_empty(),
        "records sent per output partition {sent:?}, {committed} committed"
    );
    let read = per_partition(&text, READ, "events")?;
    ensure!(
        read.values().all(|v| *v == (per_input + 1) as f64),
        "records read per partition after the closing records: {read:?}"
    );
    s.finish()
}

/// The broker is stopped for 30 s while the job runs (the outage is the scenario, so the test
/// waits it out), then started again with its data: the job recovers and the read_committed
/// output holds every count exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_for_30_s_loses_nothing() -> anyhow::Result<()> {
    let mut s = Setup::start("eo-broker-down", 2, 2, 1, 500).await?;
    s.produce(BATCH)?;
    let before = s.checkpoint_after(0).await?;
    blocking(|| s.broker.stop())?;
    eprintln!("broker stopped after checkpoint {before}");
    tokio::time::sleep(Duration::from_secs(30)).await;
    blocking(|| s.broker.restart())?;
    eprintln!("broker back");
    s.produce(BATCH)?;
    s.checkpoint_after(s.latest_checkpoint().await).await?;
    s.close_windows()?;
    s.stop_and_assert_exactly_once().await?;
    s.finish()
}

/// A TaskManager with [`FAILPOINT`] set: it aborts the first time its sink is about to commit
/// a transaction with records, i.e. after the checkpoint that prepared it completed and before
/// Kafka commits it.
fn failing_task_manager(id: &str, dir: &Path, jm_rpc: &str) -> anyhow::Result<Proc> {
    let args: Vec<String> = [
        "taskmanager",
        "--jobmanager-address",
        jm_rpc,
        "--id",
        id,
        "--slots",
        "1",
        "--data-port",
        "0",
        "--rpc-port",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Proc::spawn(
        id,
        dir,
        &args,
        &[
            ("FJORD_LOG", "warn,fjord_worker=info"),
            (FAILPOINT, "abort-before-commit"),
        ],
    )
}

/// The sink's environment variable for fault injection (`fjord_kafka::sink::FAILPOINT_ENV`).
const FAILPOINT: &str = "FJORD_KAFKA_SINK_FAILPOINT";

/// The transactions of a completed checkpoint are lost between the checkpoint's completion
/// and their commit: each TaskManager aborts right before its first commit of a transaction
/// with records (a deterministic kill point in the sink's commit path). Only the restore path
/// — the restored checkpoint's transactions committed by the new attempt
/// (`KafkaClient::commit_prepared`) — can make those records visible; read_committed must see
/// every window count exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_lost_between_checkpoint_completion_and_commit_are_committed_on_restore()
-> anyhow::Result<()> {
    let mut s = Setup::start_with("eo-commit-crash", 2, 2, 2_000, |n, dir, rpc| {
        failing_task_manager(&format!("tm-failpoint-{n}"), dir, rpc)
    })
    .await?;
    // Two batches: with 2 s of out-of-orderness the windows of the first one fire during the
    // second, so transactions with records get prepared and then committed.
    s.produce(BATCH)?;
    s.produce(BATCH)?;
    // Every TaskManager aborts at its first commit with records; replace each one that did.
    let deadline = Instant::now() + JOB;
    let mut aborted = 0;
    while s.tms.iter().any(|tm| tm.name().starts_with("tm-failpoint")) {
        ensure!(
            Instant::now() < deadline,
            "the TaskManagers with the failpoint did not reach a commit within {JOB:?}\n{}",
            s.tails()
        );
        let mut i = 0;
        while i < s.tms.len() {
            if s.tms[i].name().starts_with("tm-failpoint") && s.tms[i].exited().is_some() {
                let mut dead = s.tms.remove(i);
                ensure!(
                    dead.log()
                        .contains("abort-before-commit: aborting the process"),
                    "{} exited, but not at the failpoint:\n{}",
                    dead.name(),
                    dead.tail()
                );
                dead.sigkill();
                s.dead.push(dead);
                aborted += 1;
                let name = format!("tm-replacement-{aborted}");
                s.tms.push(task_manager(&name, s.dir.path(), &s.jm.rpc, 1)?);
            } else {
                i += 1;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    eprintln!("{aborted} TaskManagers aborted before committing; replaced");
    let covered = s.latest_checkpoint().await;
    s.checkpoint_after(covered).await?;
    s.produce(BATCH)?;
    s.close_windows()?;
    s.stop_and_assert_exactly_once().await?;
    s.finish()
}
