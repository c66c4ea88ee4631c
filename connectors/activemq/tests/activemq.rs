//! The ActiveMQ source and sink against a real ActiveMQ Classic broker (6.3.1 from Maven
//! Central, started by `scripts/infra/activemq.sh` on free loopback ports), in jobs on the
//! embedded mini-cluster. Fixtures are published and queues drained with a JMS client over
//! OpenWire (the script's tool); the exactly-once output is judged from the committed files of
//! Fjord's exactly-once file sink.

mod support;

use fjord::StreamExecutionEnvironment;
use fjord::sinks::ExactlyOnceFileSink;
use fjord::sources::GeneratorSource;
use fjord_activemq::{AmqSink, AmqSource, DedupeBy, OnMalformed};
use fjord_e2e::jobs::{self, checkpointed_env, committed, counts, numbered_messages as messages};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::Broker;

/// Waits until `done` holds; bounded generously for a loaded machine.
fn wait_for(what: &str, done: impl FnMut() -> bool) {
    jobs::wait_for(what, Duration::from_secs(300), done);
}

fn temp_dir(name: &str) -> PathBuf {
    jobs::scratch_dir("amq", name)
}

fn docs_sink_example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    // The sink block in docs/connectors/activemq.md, verbatim:
    let sink = AmqSink::builder()
        .url(url)
        .queue("orders")
        .correlation_id(|order: &u64| format!("order-{order}"))
        .serializer(|order: &u64| order.to_string().into_bytes())
        .build()?;
    env.from_collection((0..100u64).collect())
        .stream()
        .sink_to(sink, "Sink: ActiveMQ");
    env.execute("activemq-sink-example")?;
    // (end of the block)
    Ok(())
}

fn docs_source_example(
    url: &str,
    out: &Path,
) -> Result<fjord::JobClient, Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    env.enable_checkpointing(Duration::from_secs(1));
    let storage = out.join("checkpoints");
    env.checkpoint_config(|c| c.storage = format!("file://{}", storage.display()));
    let files = format!("file://{}", out.join("orders").display());
    // The source block in docs/connectors/activemq.md, verbatim:
    let source = AmqSource::builder()
        .url(url)
        .queue("orders")
        .dedupe_by(DedupeBy::MessageId)
        .deserializer(|body: &[u8]| {
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            text.parse::<u64>().map_err(|e| format!("`{text}`: {e}"))
        })
        .build()?;
    env.from_source(source, "Source: ActiveMQ")
        .uid("activemq-orders")
        .map(|order: u64| order * 10)
        .sink_to_transactional(ExactlyOnceFileSink::new(files), "Sink: files")
        .uid("files");
    let job = env.execute_async("activemq-source-example")?;
    // (end of the block)
    Ok(job)
}

/// Both docs examples: the sink sends 100 orders with receipts, the source reads them into
/// exactly-once files and acknowledges them all once their checkpoint completed.
#[test]
fn docs_examples_round_trip_through_a_queue() {
    let broker = Broker::shared();
    docs_sink_example(broker.url()).unwrap();
    assert_eq!(
        broker.depth("orders"),
        100,
        "every receipted message is queued"
    );
    let out = temp_dir("docs");
    let job = docs_source_example(broker.url(), &out).unwrap();
    wait_for("100 committed orders", || {
        committed(&out.join("orders")).len() >= 100
    });
    wait_for("every message acknowledged", || broker.depth("orders") == 0);
    job.cancel();
    let _ = job.wait();
    let mut lines = committed(&out.join("orders"));
    lines.sort_by_key(|l| l.parse::<u64>().unwrap());
    let expected: Vec<String> = (0..100u64).map(|i| (i * 10).to_string()).collect();
    assert_eq!(lines, expected);
    let _ = std::fs::remove_dir_all(&out);
}

/// Each ```rust block of the docs is in one of the docs example functions, line for line
/// (indentation aside), so the docs show code that runs.
#[test]
fn the_docs_examples_are_the_tested_code() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/activemq.md")).unwrap();
    let test = include_str!("activemq.rs");
    let blocks = fjord_e2e::jobs::code_blocks_in(&docs, "rust");
    assert_eq!(blocks.len(), 2, "a source and a sink example");
    for block in blocks {
        assert!(
            fjord_e2e::jobs::is_code_of(&block, test),
            "docs/connectors/activemq.md's example is not tested code:\n{block}"
        );
    }
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// Reads `n` messages of `queue` deduplicating by `by` into exactly-once files, failing the
/// job once at message `fail_at` if given; returns the committed lines and the restarts.
fn read_exactly_once(
    broker: &Broker,
    queue: &str,
    n: u64,
    by: DedupeBy,
    fail_at: Option<u64>,
) -> (Vec<String>, u32) {
    let dir = temp_dir(queue);
    let env = checkpointed_env(&dir);
    let source = AmqSource::builder()
        .url(broker.url())
        .queue(queue)
        .dedupe_by(by)
        .deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let files = dir.join("out");
    env.from_source(source, "Source: ActiveMQ")
        .uid("amq")
        .map(move |s: String| {
            let i: u64 = s.parse().unwrap();
            if Some(i) == fail_at && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
                panic!("injected failure at message {i}");
            }
            s
        })
        .uid("map")
        .sink_to_transactional(
            ExactlyOnceFileSink::new(format!("file://{}", files.display())),
            "files",
        )
        .uid("files");
    let job = env.execute_async(queue).unwrap();
    wait_for("every message committed", || {
        committed(&files).len() as u64 >= n
    });
    wait_for("every message acknowledged", || broker.depth(queue) == 0);
    let restarts = job.restarts();
    job.cancel();
    let _ = job.wait();
    let lines = committed(&files);
    let _ = std::fs::remove_dir_all(&dir);
    (lines, restarts)
}

/// Exactly-once: a job failing mid-stream (restarted from its checkpoint, the broker
/// redelivering every unacknowledged message) commits the same output as a failure-free run:
/// every message once, none lost.
#[test]
fn exactly_once_source_survives_a_job_failure() {
    let broker = Broker::shared();
    let n = 3000;
    broker.publish("eo-clean", &messages("c", n));
    broker.publish("eo-failure", &messages("f", n));
    let (clean, restarts) = read_exactly_once(broker, "eo-clean", n, DedupeBy::MessageId, None);
    assert_eq!(restarts, 0);
    let (failed, restarts) =
        read_exactly_once(broker, "eo-failure", n, DedupeBy::MessageId, Some(n / 2));
    assert!(restarts >= 1, "the injected failure restarted the job");
    let (c, f) = (counts(&clean), counts(&failed));
    assert_eq!(c.len() as u64, n);
    assert!(c.values().all(|k| *k == 1));
    let twice: Vec<_> = f.iter().filter(|(_, k)| **k > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "messages committed twice after the failure: {twice:?}"
    );
    assert_eq!(
        f, c,
        "the failure run commits what the failure-free run commits"
    );
}

/// Redelivered messages are recognised by correlation id: a message sent twice with the
/// same id (as an at-least-once producer does after a failure) is emitted once.
#[test]
fn duplicate_correlation_ids_are_dropped() {
    let broker = Broker::shared();
    let queue = "dedupe";
    let mut fixture = Vec::new();
    for (id, body) in messages("d", 200) {
        fixture.push((id.clone(), body.clone()));
        fixture.push((id, body));
    }
    broker.publish(queue, &fixture);
    let env = StreamExecutionEnvironment::new();
    // Checkpoints far apart: all 400 messages arrive while their ids are remembered.
    env.enable_checkpointing(Duration::from_secs(30));
    let dir = temp_dir("dedupe");
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    let source = AmqSource::builder()
        .url(broker.url())
        .queue(queue)
        .dedupe_by(DedupeBy::CorrelationId)
        .deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let out = env.from_source(source, "Source: ActiveMQ").collect();
    let job = env.execute_async("dedupe").unwrap();
    let metrics = job.metrics();
    let dropped = || -> u64 {
        metrics
            .snapshot()
            .iter()
            .filter(|(k, _)| k.ends_with("ActiveMqSourceReader.duplicatesDropped"))
            .map(|(_, v)| v)
            .sum()
    };
    wait_for("200 records and 200 dropped duplicates", || {
        out.len() >= 200 && dropped() >= 200
    });
    job.cancel();
    let _ = job.wait();
    let values = out.values();
    assert_eq!(values.len(), 200);
    assert_eq!(counts(&values).len(), 200);
    assert_eq!(dropped(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads `n` messages of `queue` deduplicating by message id into exactly-once files while the
/// broker is killed (SIGKILL) and started again mid-run; returns the occurrences of each
/// committed line and the restarts.
fn read_through_a_broker_kill(
    broker: &Broker,
    queue: &str,
    n: u64,
    retain: usize,
) -> (BTreeMap<String, usize>, u32) {
    broker.publish(queue, &messages(queue, n));
    let dir = temp_dir(queue);
    let env = checkpointed_env(&dir);
    let seen = std::sync::Arc::new(AtomicU64::new(0));
    let source = AmqSource::builder()
        .url(broker.url())
        .queue(queue)
        .dedupe_by(DedupeBy::MessageId)
        .retain_acknowledged_ids(retain)
        .prefetch(100)
        .connect_timeout(Duration::from_secs(2))
        .deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let files = dir.join("out");
    let counter = seen.clone();
    env.from_source(source, "Source: ActiveMQ")
        .uid("amq")
        .map(move |s: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            // Slow enough that the kill lands mid-stream.
            std::thread::sleep(Duration::from_micros(500));
            s
        })
        .uid("map")
        .sink_to_transactional(
            ExactlyOnceFileSink::new(format!("file://{}", files.display())),
            "files",
        )
        .uid("files");
    let job = env.execute_async(queue).unwrap();
    wait_for("a third of the messages", || {
        seen.load(Ordering::SeqCst) >= n / 3
    });
    broker.kill();
    wait_for("a restart after the broker died", || job.restarts() >= 1);
    broker.restart();
    wait_for("every message committed", || {
        counts(&committed(&files)).len() as u64 >= n
    });
    wait_for("every message acknowledged", || broker.depth(queue) == 0);
    let restarts = job.restarts();
    job.cancel();
    let _ = job.wait();
    let c = counts(&committed(&files));
    let _ = std::fs::remove_dir_all(&dir);
    (c, restarts)
}

/// The tests that kill a broker run one at a time (each has a broker of its own).
static BROKER_KILLS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The broker killed (SIGKILL) while the exactly-once source reads: the job fails, restarts
/// through its restart strategy until the broker is back, and nothing is lost. Flink's window
/// (ids forgotten at acknowledgement) counts what a crash makes the broker redeliver although
/// it was acknowledged; with `retain_acknowledged_ids` covering them every message is committed
/// exactly once.
#[test]
fn exactly_once_source_survives_a_broker_kill() {
    let _one_at_a_time = BROKER_KILLS.lock().unwrap_or_else(|e| e.into_inner());
    let broker = Broker::start("source-kill");
    let n = 3000u64;
    let (flink, restarts) = read_through_a_broker_kill(&broker, "kill-forget", n, 0);
    assert!(restarts >= 1);
    assert_eq!(flink.len() as u64, n, "no message lost");
    let duplicates: usize = flink.values().map(|k| k - 1).sum();
    eprintln!(
        "source, broker killed mid-run, ids forgotten at acknowledgement: {restarts} restarts, {duplicates} messages committed twice (acknowledgements the broker lost)"
    );
    let (retained, restarts) = read_through_a_broker_kill(&broker, "kill-retain", n, 10_000);
    assert!(restarts >= 1);
    assert_eq!(retained.len() as u64, n, "no message lost");
    let twice: Vec<_> = retained.iter().filter(|(_, k)| **k > 1).take(5).collect();
    assert!(twice.is_empty(), "committed twice: {twice:?}");
}

/// The sink with the broker killed mid-run: the job fails on the lost connection, restarts
/// until the broker is back, and every record is in the queue (persistent messages receipted
/// before the kill survived it); duplicates are counted (at-least-once).
#[test]
fn sink_loses_nothing_when_the_broker_is_killed() {
    let _one_at_a_time = BROKER_KILLS.lock().unwrap_or_else(|e| e.into_inner());
    let broker = Broker::start("sink-kill");
    let queue = "kill-sink";
    let n = 4000u64;
    let dir = temp_dir("sink-kill");
    let env = checkpointed_env(&dir);
    let passed = std::sync::Arc::new(AtomicU64::new(0));
    let counter = passed.clone();
    let sink = AmqSink::builder()
        .url(broker.url())
        .queue(queue)
        .connect_timeout(Duration::from_secs(2))
        .receipt_timeout(Duration::from_secs(5))
        .correlation_id(|i: &u64| format!("s-{i}"))
        .serializer(|i: &u64| i.to_string().into_bytes())
        .build()
        .unwrap();
    env.from_source(
        GeneratorSource::new(Some(n), |i| i).with_rate(2000.0),
        "Source: sequence",
    )
    .uid("sequence")
    .map(move |i: u64| {
        counter.fetch_add(1, Ordering::SeqCst);
        i
    })
    .uid("map")
    .sink_to(sink, "Sink: ActiveMQ")
    .uid("amq");
    let job = env.execute_async("sink kill").unwrap();
    wait_for("a third of the records", || {
        passed.load(Ordering::SeqCst) >= n / 3
    });
    broker.kill();
    wait_for("a restart after the broker died", || job.restarts() >= 1);
    broker.restart();
    wait_for("the job to end", || job.is_finished());
    let restarts = job.restarts();
    job.wait()
        .expect("the job finishes once the broker is back");
    let drained = broker.drain(queue);
    let c = counts(&drained.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
    let missing: Vec<u64> = (0..n)
        .filter(|i| !c.contains_key(&i.to_string()))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "records lost: {missing:?}");
    assert!(
        drained
            .iter()
            .all(|(id, b)| id.as_deref() == Some(&format!("s-{b}")))
    );
    eprintln!(
        "sink, broker killed mid-run: {restarts} restarts, {} messages for {n} records ({} duplicates)",
        drained.len(),
        drained.len() as u64 - n
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A body the deserializer refuses fails the job naming the queue, or goes to ActiveMQ's
/// dead-letter queue and is counted; a message without the correlation id the source
/// deduplicates by fails it.
#[test]
fn malformed_messages_fail_the_job_or_go_to_the_dead_letter_queue() {
    let broker = Broker::start("malformed");
    let numbers = |on: OnMalformed, queue: &str| {
        AmqSource::builder()
            .url(broker.url())
            .queue(queue)
            .on_malformed(on)
            .deserializer(|b: &[u8]| {
                let t = String::from_utf8_lossy(b).into_owned();
                t.parse::<u64>()
                    .map_err(|_| format!("`{t}` is not a number"))
            })
            .build()
            .unwrap()
    };
    let fixture = |q: &str| {
        broker.publish(
            q,
            &[(None, "1".into()), (None, "x".into()), (None, "3".into())],
        );
    };
    fixture("malformed-fail");
    let env = StreamExecutionEnvironment::new();
    env.from_source(
        numbers(OnMalformed::Fail, "malformed-fail"),
        "Source: ActiveMQ",
    )
    .collect();
    let err = env.execute("fail").unwrap_err().to_string();
    assert!(
        err.contains("malformed ActiveMQ message")
            && err.contains("/queue/malformed-fail")
            && err.contains("`x` is not a number"),
        "{err}"
    );
    assert_eq!(
        broker.depth("malformed-fail"),
        3,
        "nothing acknowledged without a checkpoint"
    );

    fixture("malformed-dlq");
    let env = StreamExecutionEnvironment::new();
    env.enable_checkpointing(Duration::from_millis(100));
    let dir = temp_dir("dlq");
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    let out = env
        .from_source(
            numbers(OnMalformed::DeadLetter, "malformed-dlq"),
            "Source: ActiveMQ",
        )
        .collect();
    let job = env.execute_async("dlq").unwrap();
    wait_for("two numbers", || out.len() >= 2);
    wait_for("the queue emptied", || broker.depth("malformed-dlq") == 0);
    job.cancel();
    let _ = job.wait();
    assert_eq!(out.values(), vec![1, 3]);
    let dead: Vec<String> = broker
        .drain("ActiveMQ.DLQ")
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        dead,
        ["x"],
        "the malformed message is in the dead-letter queue"
    );
    let _ = std::fs::remove_dir_all(&dir);

    broker.publish("no-id", &[(None, "1".into())]);
    let env = StreamExecutionEnvironment::new();
    let source = AmqSource::builder()
        .url(broker.url())
        .queue("no-id")
        .dedupe_by(DedupeBy::CorrelationId)
        .deserializer(|b: &[u8]| Ok(b.len()))
        .build()
        .unwrap();
    env.from_source(source, "Source: ActiveMQ").collect();
    let err = env.execute("no id").unwrap_err().to_string();
    assert!(err.contains("has no correlation-id header"), "{err}");
}

/// Without checkpointing, `ack_on_receipt` acknowledges every message as it is emitted.
#[test]
fn without_checkpoints_messages_are_acknowledged_on_receipt() {
    let broker = Broker::shared();
    let queue = "on-receipt";
    broker.publish(queue, &messages("r", 50));
    let env = StreamExecutionEnvironment::new();
    let source = AmqSource::builder()
        .url(broker.url())
        .queue(queue)
        .ack_on_receipt(true)
        .deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let out = env.from_source(source, "Source: ActiveMQ").collect();
    let job = env.execute_async("on receipt").unwrap();
    wait_for("50 records", || out.len() >= 50);
    wait_for("every message acknowledged", || broker.depth(queue) == 0);
    job.cancel();
    let _ = job.wait();
    assert_eq!(counts(&out.values()).len(), 50);
}

/// Heart-beats keep an idle connection open: ActiveMQ drops a client silent for the agreed
/// interval (2 s here, without grace), so a source left idle for four intervals would fail its
/// job without them. (The test failed before the client sent at half the interval: sending
/// exactly on time raced the broker's check.)
#[test]
fn heart_beats_keep_an_idle_source_connected() {
    let broker = Broker::shared();
    let queue = "idle";
    let env = StreamExecutionEnvironment::new();
    let source = AmqSource::builder()
        .url(broker.url())
        .queue(queue)
        .heartbeat(Duration::from_secs(2))
        .ack_on_receipt(true)
        .deserializer(|b: &[u8]| String::from_utf8(b.to_vec()).map_err(|e| e.to_string()))
        .build()
        .unwrap();
    let out = env.from_source(source, "Source: ActiveMQ").collect();
    let job = env.execute_async("idle").unwrap();
    broker.publish(queue, &[(None, "first".into())]);
    wait_for("the first message", || !out.is_empty());
    // Not a wait for an event: the connection is left idle on purpose.
    std::thread::sleep(Duration::from_secs(8));
    broker.publish(queue, &[(None, "second".into())]);
    wait_for("the second message", || {
        assert!(
            !job.is_finished() && job.restarts() == 0,
            "the idle connection broke: the job ended or restarted"
        );
        out.len() >= 2
    });
    job.cancel();
    let _ = job.wait();
    assert_eq!(out.values(), ["first", "second"]);
}

/// A record the broker refuses (the test broker takes frames up to 4 MiB) fails the job with
/// the message of the broker's ERROR frame.
#[test]
fn a_broker_error_frame_fails_the_job_with_its_message() {
    let broker = Broker::shared();
    let env = StreamExecutionEnvironment::new();
    let sink = AmqSink::builder()
        .url(broker.url())
        .queue("too-big")
        .serializer(|n: &usize| vec![b'x'; *n])
        .build()
        .unwrap();
    env.from_collection(vec![5usize << 20])
        .stream()
        .sink_to(sink, "Sink: ActiveMQ");
    let err = env.execute("too big").unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "ActiveMQ at {} refused sending to /queue/too-big",
            broker.url()
        )) && err.contains("The maximum frame size was exceeded"),
        "{err}"
    );
    assert_eq!(broker.depth("too-big"), 0);
}

#[test]
fn a_dead_broker_fails_the_job_with_a_clear_error() {
    let url = "stomp://admin:secret@127.0.0.1:1";
    let env = StreamExecutionEnvironment::new();
    let sink = AmqSink::builder()
        .url(url)
        .queue("q")
        .connect_timeout(Duration::from_secs(2))
        .serializer(|s: &String| s.clone().into_bytes())
        .build()
        .unwrap();
    env.from_collection(vec!["x".to_string()])
        .stream()
        .sink_to(sink, "Sink: ActiveMQ");
    let err = env.execute("dead sink").unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to ActiveMQ at stomp://admin:***@127.0.0.1:1")
            && err.contains("check that the broker runs")
            && !err.contains("secret"),
        "{err}"
    );
    let env = StreamExecutionEnvironment::new();
    let source = AmqSource::builder()
        .url(url)
        .queue("q")
        .connect_timeout(Duration::from_secs(2))
        .deserializer(|b: &[u8]| Ok(b.len()))
        .build()
        .unwrap();
    env.from_source(source, "Source: ActiveMQ").collect();
    let err = env.execute("dead source").unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to ActiveMQ at stomp://admin:***@127.0.0.1:1"),
        "{err}"
    );
}
