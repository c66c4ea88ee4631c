//! Every connector with TaskManager processes SIGKILLed mid-stream: a SQL script run by the
//! built-in `sql` job of the stock `fjord` binary on a JobManager (`--scheduler taskmanagers`)
//! and two TaskManagers on loopback (`process_support`), checkpoints every second into a
//! `file://` directory, against the connector's real server started by its
//! `scripts/infra/<name>.sh` (`fjord_e2e::ScriptServer`).
//!
//! Sinks: a bounded, rate-limited `datagen` sequence (its position is checkpointed as row
//! ranges, so a restore replays from the checkpoint) writes into the connector. Once a
//! checkpoint completed and some rows reached the server (more are in flight), one TaskManager
//! is SIGKILLed and a replacement started; the job restarts from its latest checkpoint and
//! finishes (the JobManager exits 0). Then an independent client reads the server and compares
//! with the failure-free output: exactly the expected rows for sinks whose writes are upserts
//! by key (Redis HSET, Cassandra, OpenSearch with a primary key) or exactly-once (the
//! `filesystem` sink on HDFS), every expected row at least once, nothing else, duplicates
//! counted in the log, for the at-least-once sinks (RabbitMQ, ActiveMQ, Kinesis).
//!
//! Sources: the test publishes messages before and while the job runs, the job reads them
//! into the exactly-once `filesystem` sink (a `file://` URL), a TaskManager is SIGKILLed right
//! after a batch was published (read but not yet committed), and the committed output must
//! equal the published messages exactly once (what each connector's page claims).
//!
//! The `fjord` binary must be built first into this test's target directory (`cargo test
//! --workspace --all-features` builds it; or point `FJORD_E2E_WORKER_BIN` at one with the
//! `hdfs` feature). Every wait is bounded; nothing asserts on timing.

mod process_support;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use fjord_e2e::ScriptServer;
use fjord_e2e::jobs::lines_in;
use process_support::{JobManager, POLL, Proc, cluster_jm_args, file_url, task_manager, with_args};

/// Parallelism of the jobs; one TaskManager of one slot per subtask.
const P: u32 = 2;
/// Checkpoint interval.
const CHECKPOINT_MS: u64 = 1000;
/// Bound on a job's run, its recovery, and the output reaching the server.
const JOB: Duration = Duration::from_secs(300);
/// Rows a sink test writes, and how fast (over both subtasks): about 15 s of input, so the
/// kill lands mid-stream.
const ROWS: u64 = 300;
const RATE: u64 = 20;
/// The rate for sinks whose server is read with a JVM tool or `rabbitmqctl` (an Erlang VM
/// started per call; seconds a call on a loaded machine): about 30 s.
const SLOW_RATE: u64 = 10;
/// A sink test kills once at least this many rows reached the server.
const KILL_AFTER: usize = 40;
/// Messages a source test publishes in each of its three batches.
const BATCH: u64 = 100;

/// Blocking work (a client with a runtime of its own, a server's command-line tool) from the
/// async test: on a plain thread, outside the test's runtime.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    tokio::task::block_in_place(|| {
        std::thread::scope(|s| s.spawn(f).join().expect("the blocking helper panicked"))
    })
}

/// Runs `fut` on a runtime of its own (inside [`blocking`]).
fn block_on<T>(fut: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(fut)
}

/// A server of this test alone, in a fresh directory named after the test.
fn server(script: &str, name: &str) -> anyhow::Result<ScriptServer> {
    let dir = std::env::temp_dir().join(format!("fjord-tmkill-{name}-{}", std::process::id()));
    Ok(blocking(|| ScriptServer::start(script, dir))?)
}

/// The `datagen` table `numbers (id BIGINT)`: ids 1..=ROWS at `rate` rows per second.
fn numbers_table(rate: u64) -> String {
    format!(
        "CREATE TABLE numbers (id BIGINT) WITH (\n  'connector' = 'datagen', \
         'rows-per-second' = '{rate}', 'fields.id.kind' = 'sequence',\n  \
         'fields.id.start' = '1', 'fields.id.end' = '{ROWS}');\n"
    )
}

/// A JobManager running a SQL script on two TaskManagers.
struct Cluster {
    dir: tempfile::TempDir,
    jm: JobManager,
    tms: Vec<Proc>,
    /// Killed TaskManagers, kept for their logs.
    dead: Vec<Proc>,
    job_id: String,
}

impl Cluster {
    /// Writes `script` to a file and starts a JobManager running `sql --file` on it at
    /// parallelism [`P`], checkpointing every [`CHECKPOINT_MS`], exiting when the job ends,
    /// and two TaskManagers of one slot.
    async fn start(script: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("job.sql");
        std::fs::write(&file, script)?;
        eprintln!("the job:\n{script}");
        let args = with_args(
            cluster_jm_args(0, P, &dir.path().join("checkpoints"), CHECKPOINT_MS),
            &[
                "--exit-on-finish",
                "--wait-for-slots",
                "60s",
                "sql",
                "--file",
                file.to_str().context("a UTF-8 temporary path")?,
            ],
        );
        let mut jm = JobManager::start("jobmanager", dir.path(), args).await?;
        let mut tms = Vec::new();
        for n in 0..P {
            tms.push(task_manager(&format!("tm{n}"), dir.path(), &jm.rpc, 1)?);
        }
        let job_id = jm.job_id().await?;
        Ok(Cluster {
            dir,
            jm,
            tms,
            dead: Vec::new(),
            job_id,
        })
    }

    /// The newest completed checkpoint's ID (0 before the first or when not answered).
    async fn latest_checkpoint(&self) -> i64 {
        self.jm.latest_checkpoint(&self.job_id).await
    }

    /// Waits (bounded) until a checkpoint newer than `after` completed; returns its ID.
    async fn checkpoint_after(&self, after: i64) -> anyhow::Result<i64> {
        self.jm
            .checkpoint_after(&self.job_id, after, JOB)
            .await
            .with_context(|| self.tails())
    }

    /// SIGKILLs the oldest TaskManager (every slot is used: it holds a subtask of every
    /// operator) and starts a replacement; then waits (bounded) until the job restarted.
    async fn kill_a_task_manager(&mut self, why: &str) -> anyhow::Result<()> {
        let covered = self.latest_checkpoint().await;
        let mut victim = self.tms.remove(0);
        eprintln!(
            "SIGKILL {} {why} (latest completed checkpoint {covered})",
            victim.name()
        );
        victim.sigkill();
        self.dead.push(victim);
        let name = format!("tm-replacement-{}", self.dead.len());
        self.tms
            .push(task_manager(&name, self.dir.path(), &self.jm.rpc, 1)?);
        let deadline = Instant::now() + JOB;
        loop {
            if let Ok(job) = self.jm.client.job(&self.job_id).await
                && job.restarts >= 1
            {
                eprintln!("the job restarted ({} restarts)", job.restarts);
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the job did not restart within {JOB:?} after the kill\n{}",
                self.tails()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits (bounded) for the bounded job to finish: the JobManager exits 0.
    async fn finished(&mut self) -> anyhow::Result<()> {
        let code = self.jm.proc.wait_exit(JOB).await?;
        ensure!(code == 0, "the JobManager exited {code}\n{}", self.tails());
        Ok(())
    }

    /// The last lines of every process, for failure messages.
    fn tails(&self) -> String {
        std::iter::once(&self.jm.proc)
            .chain(&self.tms)
            .chain(&self.dead)
            .map(Proc::tail)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits (bounded) until `check` (blocking) answers true.
async fn wait_until(
    what: &str,
    cluster: &Cluster,
    mut check: impl FnMut() -> anyhow::Result<bool> + Send,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + JOB;
    loop {
        let done = blocking(&mut check);
        match done {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => eprintln!("waiting for {what}: {e:#}"),
        }
        ensure!(
            Instant::now() < deadline,
            "timed out after {JOB:?} waiting for {what}\n{}",
            cluster.tails()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The sink scenario: runs `script` (a datagen of [`ROWS`] rows writing into the connector),
/// kills a TaskManager once a checkpoint completed and `written()` (rows on the server) is at
/// least [`KILL_AFTER`] but below the total, and waits for the job to finish.
async fn sink_with_a_kill(
    script: &str,
    mut written: impl FnMut() -> anyhow::Result<usize> + Send,
) -> anyhow::Result<Cluster> {
    let mut c = Cluster::start(script).await?;
    c.checkpoint_after(0).await?;
    let mut seen = 0;
    wait_until("rows on the server", &c, || {
        seen = written()?;
        Ok(seen >= KILL_AFTER)
    })
    .await?;
    ensure!(
        (seen as u64) < ROWS,
        "all {ROWS} rows were written before the kill: the test did not kill mid-stream \
         (slow the datagen down)\n{}",
        c.tails()
    );
    c.kill_a_task_manager(&format!("with {seen} of {ROWS} rows on the server"))
        .await?;
    c.finished().await?;
    Ok(c)
}

/// The at-least-once judgement: every id in 1..=ROWS at least once, nothing else; logs the
/// duplicates.
fn assert_at_least_once(what: &str, ids: &[u64]) -> anyhow::Result<()> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for id in ids {
        *counts.entry(*id).or_default() += 1;
    }
    let missing: Vec<u64> = (1..=ROWS).filter(|i| !counts.contains_key(i)).collect();
    let foreign: Vec<u64> = counts
        .keys()
        .copied()
        .filter(|i| !(1..=ROWS).contains(i))
        .collect();
    ensure!(
        missing.is_empty() && foreign.is_empty(),
        "{what}: {} of {ROWS} ids missing ({:?}...), unexpected ids {foreign:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let duplicates = ids.len() - counts.len();
    eprintln!(
        "{what}: all {ROWS} ids present, {} messages, {duplicates} duplicates (at-least-once)",
        ids.len()
    );
    Ok(())
}

/// The id of a JSON message body `{"id":..,...}`.
fn json_id(body: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value =
        serde_json::from_str(body).with_context(|| format!("a JSON body: {body}"))?;
    v["id"]
        .as_u64()
        .with_context(|| format!("an id in the body {body}"))
}

/// What the source scenarios publish: message `i` (1-based) is `{"id":i,"customer":"c<i%3>"}`
/// with correlation id `m-<i>`; the job writes `i,C<i%3>`.
fn message(i: u64) -> (String, String) {
    (
        format!("m-{i}"),
        format!("{{\"id\":{i},\"customer\":\"c{}\"}}", i % 3),
    )
}

/// The lines the source scenarios' job commits for messages 1..=n, sorted.
fn expected_lines(n: u64) -> Vec<String> {
    let mut v: Vec<String> = (1..=n).map(|i| format!("{i},C{}", i % 3)).collect();
    v.sort();
    v
}

/// The tail of a source script: the exactly-once `filesystem` sink at `out` and the query.
fn shouting_into(out: &Path) -> String {
    format!(
        "CREATE TABLE shouting (id BIGINT, customer STRING) WITH (\n  'connector' = \
         'filesystem', 'path' = '{}', 'format' = 'csv');\n\
         INSERT INTO shouting SELECT id, UPPER(customer) FROM orders;\n",
        file_url(out)
    )
}

/// The source scenario: `publish(range)` publishes those messages. Batch 1 before the job
/// starts; once a checkpoint completed and some output is committed, batch 2 and at once a
/// TaskManager SIGKILLed (batch 2 read, not committed); after the restart batch 3. The
/// committed output must be every message exactly once.
async fn source_with_a_kill(
    script: &str,
    out: &Path,
    mut publish: impl FnMut(std::ops::Range<u64>) -> anyhow::Result<()> + Send,
) -> anyhow::Result<()> {
    blocking(|| publish(1..BATCH + 1))?;
    let mut c = Cluster::start(script).await?;
    c.checkpoint_after(0).await?;
    wait_until("committed output of batch 1", &c, || {
        Ok(!lines_in(out).is_empty())
    })
    .await?;
    blocking(|| publish(BATCH + 1..2 * BATCH + 1))?;
    let committed = lines_in(out).len();
    c.kill_a_task_manager(&format!(
        "right after publishing batch 2 ({committed} lines committed)"
    ))
    .await?;
    blocking(|| publish(2 * BATCH + 1..3 * BATCH + 1))?;
    let want = expected_lines(3 * BATCH);
    wait_until("every message in the committed output", &c, || {
        let mut got = lines_in(out);
        got.sort();
        got.dedup();
        Ok(got == want)
    })
    .await?;
    // A checkpoint more: duplicates the restart would commit late are in the output too.
    let latest = c.latest_checkpoint().await;
    c.checkpoint_after(latest).await?;
    let mut got = lines_in(out);
    got.sort();
    ensure!(
        got == want,
        "the committed output is not the published messages exactly once: {} lines for {} \
         messages\n{}",
        got.len(),
        want.len(),
        c.tails()
    );
    eprintln!("{} messages committed exactly once", want.len());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ

/// An AMQP connection of the test's own (lapin), independent of the connector's.
async fn amqp(url: &str) -> anyhow::Result<(lapin::Connection, lapin::Channel)> {
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    Ok((conn, ch))
}

/// Declares the durable `queue` and publishes persistent messages with confirms.
fn amqp_publish(url: &str, queue: &str, messages: &[(String, String)]) -> anyhow::Result<()> {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
    block_on(async {
        let (conn, ch) = amqp(url).await?;
        ch.queue_declare(
            queue.into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        for (id, body) in messages {
            let props = lapin::BasicProperties::default()
                .with_delivery_mode(2)
                .with_correlation_id(id.as_str().into());
            ch.basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                props,
            )
            .await?;
        }
        ch.wait_for_confirms().await?;
        conn.close(200, "done".into()).await?;
        Ok(())
    })
}

/// Takes every message of `queue`: (correlation id, body).
fn amqp_drain(url: &str, queue: &str) -> anyhow::Result<Vec<(Option<String>, String)>> {
    use lapin::options::{BasicAckOptions, BasicGetOptions};
    block_on(async {
        let (conn, ch) = amqp(url).await?;
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions::default())
            .await?
        {
            let d = &m.delivery;
            out.push((
                d.properties
                    .correlation_id()
                    .as_ref()
                    .map(|s| s.to_string()),
                String::from_utf8_lossy(&d.data).into_owned(),
            ));
            ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                .await?;
        }
        conn.close(200, "done".into()).await?;
        Ok(out)
    })
}

/// Ready messages in `queue` (rabbitmqctl, through the script).
fn rabbitmq_depth(node: &ScriptServer, queue: &str) -> anyhow::Result<usize> {
    let out = node.run("ctl", &["-q", "list_queues", "name", "messages"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == queue).then(|| f.next()?.parse().ok())?
        })
        .next()
        .unwrap_or(0))
}

/// Checks a drained queue: correlation id `i` on a body with id `i`; returns the ids.
fn checked_ids(messages: &[(Option<String>, String)]) -> anyhow::Result<Vec<u64>> {
    messages
        .iter()
        .map(|(corr, body)| {
            let id = json_id(body)?;
            ensure!(
                corr.as_deref() == Some(id.to_string().as_str()),
                "correlation id {corr:?} on the body {body}"
            );
            Ok(id)
        })
        .collect()
}

/// The RabbitMQ sink (publishes with confirms): every row at least once after a TaskManager
/// was killed mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_sink_loses_nothing_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    let node = server("rabbitmq.sh", "rabbitmq-sink")?;
    let url = node.var("AMQP_URL")?.to_string();
    let queue = "tmkill-sink";
    let script = format!(
        "{}CREATE TABLE orders (id BIGINT, customer STRING) WITH (\n  'connector' = 'rabbitmq', \
         'uri' = '{url}', 'queue' = '{queue}',\n  'format' = 'json', \
         'sink.correlation-id-column' = 'id');\n\
         INSERT INTO orders SELECT id, CONCAT('c', CAST(id AS STRING)) FROM numbers;\n",
        numbers_table(SLOW_RATE)
    );
    sink_with_a_kill(&script, || rabbitmq_depth(&node, queue)).await?;
    let messages = blocking(|| amqp_drain(&url, queue))?;
    assert_at_least_once("RabbitMQ queue", &checked_ids(&messages)?)
}

/// The RabbitMQ source with correlation ids (exactly-once, docs/connectors/rabbitmq.md): the
/// committed output is every published message once after a TaskManager was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_source_is_exactly_once_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    let node = server("rabbitmq.sh", "rabbitmq-source")?;
    let url = node.var("AMQP_URL")?.to_string();
    let out = tempfile::tempdir()?;
    let queue = "tmkill-source";
    let script = format!(
        "CREATE TABLE orders (id BIGINT, customer STRING) WITH (\n  'connector' = 'rabbitmq', \
         'uri' = '{url}', 'queue' = '{queue}',\n  'format' = 'json', \
         'scan.uses-correlation-id' = 'true');\n{}",
        shouting_into(&out.path().join("out"))
    );
    source_with_a_kill(&script, &out.path().join("out"), |range| {
        let messages: Vec<(String, String)> = range.map(message).collect();
        amqp_publish(&url, queue, &messages)
    })
    .await?;
    ensure!(
        blocking(|| rabbitmq_depth(&node, queue))? == 0,
        "messages left in the queue"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Redis

/// The Redis sink writing HSET (idempotent): exactly the failure-free hash after a TaskManager
/// was killed mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sink_upserts_exactly_the_expected_hash_when_a_task_manager_is_killed()
-> anyhow::Result<()> {
    let redis_server = server("redis.sh", "redis")?;
    let url = redis_server.var("REDIS_URL")?.to_string();
    let hash = "tmkill-squares";
    let script = format!(
        "{}CREATE TABLE squares (n STRING, square BIGINT) WITH (\n  'connector' = 'redis', \
         'url' = '{url}',\n  'command' = 'HSET', 'additional-key' = '{hash}');\n\
         INSERT INTO squares SELECT CAST(id AS STRING), id * id FROM numbers;\n",
        numbers_table(RATE)
    );
    let read = || -> anyhow::Result<BTreeMap<String, String>> {
        let mut con = redis::Client::open(url.as_str())?.get_connection()?;
        Ok(redis::cmd("HGETALL").arg(hash).query(&mut con)?)
    };
    sink_with_a_kill(&script, || Ok(read()?.len())).await?;
    let got = blocking(read)?;
    let want: BTreeMap<String, String> = (1..=ROWS)
        .map(|i| (i.to_string(), (i * i).to_string()))
        .collect();
    ensure!(
        got == want,
        "the hash differs from the failure-free one: {} fields for {}",
        got.len(),
        want.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ActiveMQ

/// The ActiveMQ sink (sends with receipts): every row at least once after a TaskManager was
/// killed mid-stream; read back with the script's JMS tool (OpenWire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_sink_loses_nothing_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    let broker = server("activemq.sh", "activemq-sink")?;
    let url = broker.var("STOMP_URL")?.to_string();
    let queue = "tmkill-sink";
    let script = format!(
        "{}CREATE TABLE orders (id BIGINT, customer STRING) WITH (\n  'connector' = 'activemq', \
         'url' = '{url}', 'queue' = '{queue}',\n  'format' = 'json', \
         'sink.correlation-id-column' = 'id');\n\
         INSERT INTO orders SELECT id, CONCAT('c', CAST(id AS STRING)) FROM numbers;\n",
        numbers_table(SLOW_RATE)
    );
    let depth = || -> anyhow::Result<usize> {
        broker
            .run("tool", &["depth", queue])?
            .trim()
            .parse()
            .context("a number from the depth tool")
    };
    sink_with_a_kill(&script, depth).await?;
    let drained = blocking(|| broker.run("tool", &["drain", queue]))?;
    let messages: Vec<(Option<String>, String)> = drained
        .lines()
        .map(|l| {
            let (id, body) = l.split_once('\t').unwrap_or(("", l));
            ((!id.is_empty()).then(|| id.to_string()), body.to_string())
        })
        .collect();
    assert_at_least_once("ActiveMQ queue", &checked_ids(&messages)?)
}

/// The ActiveMQ source deduplicating by correlation id (exactly-once,
/// docs/connectors/activemq.md): every published message committed once after a TaskManager
/// was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activemq_source_is_exactly_once_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    let broker = server("activemq.sh", "activemq-source")?;
    let url = broker.var("STOMP_URL")?.to_string();
    let out = tempfile::tempdir()?;
    let queue = "tmkill-source";
    let script = format!(
        "CREATE TABLE orders (id BIGINT, customer STRING) WITH (\n  'connector' = 'activemq', \
         'url' = '{url}', 'queue' = '{queue}',\n  'format' = 'json', \
         'scan.dedupe-by' = 'correlation-id');\n{}",
        shouting_into(&out.path().join("out"))
    );
    source_with_a_kill(&script, &out.path().join("out"), |range| {
        let input: String = range
            .map(message)
            .map(|(id, body)| format!("{id}\t{body}\n"))
            .collect();
        broker.run_with_input("tool", &["publish", queue], &input)?;
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Cassandra

/// A CQL session of the test's own (ScyllaDB's driver, not the connector's writer).
async fn cql_session(hosts: &str) -> anyhow::Result<scylla::client::session::Session> {
    Ok(scylla::client::session_builder::SessionBuilder::new()
        .known_node(hosts)
        .build()
        .await?)
}

/// The Cassandra sink (upserts by primary key): exactly the failure-free table after a
/// TaskManager was killed mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cassandra_sink_upserts_exactly_the_expected_rows_when_a_task_manager_is_killed()
-> anyhow::Result<()> {
    let node = server("cassandra.sh", "cassandra")?;
    let hosts = node.var("CASSANDRA_HOSTS")?.to_string();
    blocking(|| {
        block_on(async {
            let session = cql_session(&hosts).await?;
            for statement in [
                "CREATE KEYSPACE IF NOT EXISTS tmkill WITH replication = \
                 {'class': 'SimpleStrategy', 'replication_factor': 1}",
                "CREATE TABLE IF NOT EXISTS tmkill.squares (n bigint PRIMARY KEY, square bigint)",
            ] {
                session.query_unpaged(statement, ()).await?;
            }
            anyhow::Ok(())
        })
    })?;
    let script = format!(
        "{}CREATE TABLE squares (n BIGINT, square BIGINT) WITH (\n  'connector' = 'cassandra', \
         'hosts' = '{hosts}',\n  'keyspace' = 'tmkill', 'table' = 'squares');\n\
         INSERT INTO squares SELECT id, id * id FROM numbers;\n",
        numbers_table(RATE)
    );
    let read = || -> anyhow::Result<BTreeMap<i64, i64>> {
        use futures::StreamExt as _;
        block_on(async {
            let session = cql_session(&hosts).await?;
            let mut rows = session
                .query_iter("SELECT n, square FROM tmkill.squares", ())
                .await?
                .rows_stream::<(i64, i64)>()?;
            let mut out = BTreeMap::new();
            while let Some(row) = rows.next().await {
                let (n, square) = row?;
                out.insert(n, square);
            }
            Ok(out)
        })
    };
    sink_with_a_kill(&script, || Ok(read()?.len())).await?;
    let got = blocking(read)?;
    let want: BTreeMap<i64, i64> = (1..=ROWS as i64).map(|i| (i, i * i)).collect();
    ensure!(
        got == want,
        "the table differs from the failure-free one: {} rows for {}",
        got.len(),
        want.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// OpenSearch (the elasticsearch connectors)

/// A request to the node with the test's own HTTP client: status and JSON body.
fn http(
    url: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    block_on(async {
        let mut req = reqwest::Client::new().request(method, format!("{url}{path}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or_default()))
    })
}

/// The OpenSearch sink with a primary key (upserts by document id): exactly the failure-free
/// documents after a TaskManager was killed mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opensearch_sink_upserts_exactly_the_expected_documents_when_a_task_manager_is_killed()
-> anyhow::Result<()> {
    let node = server("opensearch.sh", "opensearch")?;
    let url = node.var("OPENSEARCH_URL")?.to_string();
    let index = "tmkill-squares";
    let script = format!(
        "{}CREATE TABLE squares (id BIGINT, square BIGINT, PRIMARY KEY (id) NOT ENFORCED) WITH (\n  \
         'connector' = 'opensearch', 'hosts' = '{url}', 'index' = '{index}',\n  \
         'sink.bulk-flush.max-actions' = '20', 'sink.bulk-flush.interval' = '200ms');\n\
         INSERT INTO squares SELECT id, id * id FROM numbers;\n",
        numbers_table(RATE)
    );
    let docs = || -> anyhow::Result<BTreeMap<String, serde_json::Value>> {
        http(
            &url,
            reqwest::Method::POST,
            &format!("/{index}/_refresh"),
            None,
        )?;
        let (status, body) = http(
            &url,
            reqwest::Method::POST,
            &format!("/{index}/_search"),
            Some(serde_json::json!({"size": 10000, "query": {"match_all": {}}})),
        )?;
        // 404: not created yet; 503: its shard is not started yet.
        if status == 404 || status == 503 {
            return Ok(BTreeMap::new());
        }
        ensure!(status == 200, "search {index}: {status} {body}");
        let hits = body["hits"]["hits"].as_array().context("hits")?;
        Ok(hits
            .iter()
            .map(|h| {
                (
                    h["_id"].as_str().unwrap_or_default().to_string(),
                    h["_source"].clone(),
                )
            })
            .collect())
    };
    sink_with_a_kill(&script, || Ok(docs()?.len())).await?;
    let got = blocking(docs)?;
    let want: BTreeMap<String, serde_json::Value> = (1..=ROWS)
        .map(|i| (i.to_string(), serde_json::json!({"id": i, "square": i * i})))
        .collect();
    ensure!(
        got == want,
        "the index differs from the failure-free one: {} documents for {}",
        got.len(),
        want.len()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Kinesis (kinesalite)

/// The client the connector's tests use too (the AWS SDK), with static test credentials.
fn kinesis(endpoint: &str) -> anyhow::Result<fjord_kinesis::KinesisClient> {
    let config = fjord_kinesis::KinesisConfig::new("us-east-1")
        .endpoint(endpoint.to_string())
        .basic_credentials("fjord-test", "fjord-test-secret");
    Ok(fjord_kinesis::KinesisClient::new(&config)?)
}

/// Creates `stream` with two shards and waits until it is active.
fn kinesis_stream(endpoint: &str, stream: &str) -> anyhow::Result<()> {
    let client = kinesis(endpoint)?;
    client.create_stream(stream, 2)?;
    client.wait_active(stream, Duration::from_secs(60))?;
    Ok(())
}

/// Every record payload of `stream` from the start of every shard.
fn kinesis_read_all(endpoint: &str, stream: &str) -> anyhow::Result<Vec<String>> {
    use fjord_kinesis::client::IteratorStart;
    let client = kinesis(endpoint)?;
    let mut out = Vec::new();
    for shard in client.list_shards(stream)? {
        let mut it = client.shard_iterator(stream, &shard.shard_id, &IteratorStart::TrimHorizon)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(i) = it {
            ensure!(Instant::now() < deadline, "reading {stream} took too long");
            let fetched = client.get_records(stream, &i, 10_000)?;
            let empty = fetched.records.is_empty();
            out.extend(
                fetched
                    .records
                    .into_iter()
                    .map(|r| String::from_utf8_lossy(&r.data).into_owned()),
            );
            // An open shard has an iterator forever: stop at its tip.
            it = if empty { None } else { fetched.next_iterator };
        }
    }
    Ok(out)
}

/// The Kinesis table options for kinesalite at `endpoint`.
fn kinesis_options(endpoint: &str, stream: &str) -> String {
    format!(
        "'connector' = 'kinesis', 'stream' = '{stream}',\n  'aws.region' = 'us-east-1', \
         'aws.endpoint' = '{endpoint}',\n  'aws.credentials.provider' = 'BASIC',\n  \
         'aws.credentials.basic.accesskeyid' = 'fjord-test', \
         'aws.credentials.basic.secretkey' = 'fjord-test-secret',\n  'format' = 'json'"
    )
}

/// The Kinesis sink (at-least-once): every row at least once after a TaskManager was killed
/// mid-stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_sink_loses_nothing_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    let kinesalite = server("kinesis.sh", "kinesis-sink")?;
    let endpoint = kinesalite.var("KINESIS_ENDPOINT")?.to_string();
    let stream = "tmkill-sink";
    blocking(|| kinesis_stream(&endpoint, stream))?;
    let script = format!(
        "{}CREATE TABLE orders (id BIGINT, customer STRING) WITH (\n  {},\n  \
         'sink.partitioner-fields' = 'customer');\n\
         INSERT INTO orders SELECT id, CONCAT('c', CAST(id % 7 AS STRING)) FROM numbers;\n",
        numbers_table(RATE),
        kinesis_options(&endpoint, stream)
    );
    sink_with_a_kill(&script, || Ok(kinesis_read_all(&endpoint, stream)?.len())).await?;
    let records = blocking(|| kinesis_read_all(&endpoint, stream))?;
    let ids = records
        .iter()
        .map(|r| json_id(r))
        .collect::<anyhow::Result<Vec<u64>>>()?;
    assert_at_least_once("Kinesis stream", &ids)
}

/// The Kinesis source from TRIM_HORIZON (exactly-once with a checkpointed job,
/// docs/connectors/kinesis.md): every record committed once after a TaskManager was killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_source_is_exactly_once_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    use fjord_kinesis::client::{PutEntry, PutOutcome};
    let kinesalite = server("kinesis.sh", "kinesis-source")?;
    let endpoint = kinesalite.var("KINESIS_ENDPOINT")?.to_string();
    let stream = "tmkill-source";
    blocking(|| kinesis_stream(&endpoint, stream))?;
    let out = tempfile::tempdir()?;
    let script = format!(
        "CREATE TABLE orders (id BIGINT, customer STRING) WITH (\n  {},\n  \
         'source.init.position' = 'TRIM_HORIZON');\n{}",
        kinesis_options(&endpoint, stream),
        shouting_into(&out.path().join("out"))
    );
    source_with_a_kill(&script, &out.path().join("out"), |range| {
        let client = kinesis(&endpoint)?;
        let entries: Vec<PutEntry> = range
            .map(message)
            .map(|(key, body)| PutEntry {
                partition_key: key,
                data: body.into_bytes(),
            })
            .collect();
        let outcomes = client.put_records(stream, &entries)?;
        if let Some(refused) = outcomes
            .iter()
            .find(|o| !matches!(o, PutOutcome::Written { .. }))
        {
            bail!("a record was not written: {refused:?}");
        }
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// HDFS

/// The `filesystem` sink on HDFS (exactly-once part files committed with checkpoints): exactly
/// the failure-free lines after a TaskManager was killed mid-stream, read with Hadoop's shell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdfs_file_sink_is_exactly_once_when_a_task_manager_is_killed() -> anyhow::Result<()> {
    let hdfs = server("hdfs.sh", "hdfs")?;
    let url = hdfs.var("HDFS_URL")?.to_string();
    let script = format!(
        "{}CREATE TABLE squares (id BIGINT, square BIGINT) WITH (\n  'connector' = \
         'filesystem', 'path' = '{url}/tmkill/squares', 'format' = 'csv');\n\
         INSERT INTO squares SELECT id, id * id FROM numbers;\n",
        numbers_table(SLOW_RATE)
    );
    // Hadoop's own shell: committed part files only (in-progress ones are under .pending/).
    // `-cat` fails while there is no part file yet: nothing committed.
    let committed = || -> Vec<String> {
        let text = hdfs
            .run("fs", &["-cat", "/tmkill/squares/part-*"])
            .unwrap_or_default();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    sink_with_a_kill(&script, || Ok(committed().len())).await?;
    let got = blocking(committed);
    let mut want: Vec<String> = (1..=ROWS).map(|i| format!("{i},{}", i * i)).collect();
    want.sort();
    ensure!(
        got == want,
        "the committed files differ from the failure-free output: {} lines for {}",
        got.len(),
        want.len()
    );
    Ok(())
}
