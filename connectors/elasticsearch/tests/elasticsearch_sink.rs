//! The Elasticsearch/OpenSearch sink against a real OpenSearch 2.19 node (Maven Central jars,
//! started by `scripts/infra/opensearch.sh` on a free loopback port), in jobs on the embedded
//! mini-cluster. What the sink wrote is read back through the REST API (`_count`, `_search`).

mod support;

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord::sources::GeneratorSource;
use fjord_elasticsearch::{
    Backoff, BackoffStrategy, DocAction, ElasticsearchSink, FailureHandler, JsonEmitter,
    METRIC_PREFIX, OnMalformed,
};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::Node;

/// Sum of a sink counter over all subtasks in a metrics snapshot.
fn sum(snapshot: &BTreeMap<String, u64>, name: &str) -> u64 {
    let suffix = format!(".{METRIC_PREFIX}.{name}");
    snapshot
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| v)
        .sum()
}

fn metric(result: &fjord::JobExecutionResult, name: &str) -> u64 {
    sum(&result.metrics.snapshot(), name)
}

/// Waits (polling, bounded) until `done` holds; panics naming `what` otherwise.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn docs_example(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let env = StreamExecutionEnvironment::new();
    // The block in docs/connectors/elasticsearch.md, verbatim:
    let sink = ElasticsearchSink::builder()
        .hosts([url])
        .emitter(|(word, count): &(String, u64)| {
            DocAction::upsert(
                "word-counts",
                word.as_str(),
                &json!({"word": word, "count": count}),
            )
        })
        .build()?;
    env.from_collection(vec![
        ("fjord".to_string(), 3u64),
        ("opensearch".to_string(), 1),
    ])
    .stream()
    .sink_to(sink, "Sink: Elasticsearch");
    env.execute("elasticsearch-docs-example")?;
    // (end of the block)
    Ok(())
}

#[test]
fn docs_example_upserts_word_counts() {
    let node = Node::shared();
    docs_example(node.url()).unwrap();
    let docs = node.docs("word-counts");
    assert_eq!(
        docs,
        BTreeMap::from([
            ("fjord".to_string(), json!({"word": "fjord", "count": 3})),
            (
                "opensearch".to_string(),
                json!({"word": "opensearch", "count": 1})
            ),
        ])
    );
}

/// Every ```rust block of the docs is test code of this file, line for line (indentation
/// aside), so the docs show code that runs.
#[test]
fn the_docs_examples_are_the_tested_code() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/elasticsearch.md")).unwrap();
    let test = include_str!("elasticsearch_sink.rs");
    let blocks = fjord_e2e::jobs::code_blocks_in(&docs, "rust");
    assert_eq!(
        blocks.len(),
        2,
        "the word-count and the JsonEmitter examples"
    );
    for block in blocks {
        assert!(
            fjord_e2e::jobs::is_code_of(&block, test),
            "docs/connectors/elasticsearch.md's example is not tested code:\n{block}"
        );
    }
}

#[derive(Clone, Serialize, serde::Deserialize)]
struct Event {
    user: String,
    region: String,
    score: i64,
    deleted: bool,
}

/// Index, upsert and delete actions from a job at parallelism 2, into a static index and into
/// indices named by a field; what is searched back is what the records say.
#[test]
fn index_upsert_and_delete_round_trip() -> Result<(), Box<dyn std::error::Error>> {
    let node = Node::shared();
    let events: Vec<Event> = (0..200i64)
        .map(|i| Event {
            user: format!("u{}", i % 50),
            region: ["eu", "us"][(i % 2) as usize].to_string(),
            score: i,
            // The last event of every fifth user deletes it.
            deleted: i >= 150 && (i % 50) % 5 == 0,
        })
        .collect();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let upserts = ElasticsearchSink::builder()
        .hosts([node.url()])
        .max_actions(17)
        .emitter(|e: &Event| {
            if e.deleted {
                Ok(DocAction::delete("rt-users", e.user.as_str()))
            } else {
                DocAction::upsert("rt-users", e.user.as_str(), &json!({"score": e.score}))
            }
        })
        .build()
        .unwrap();
    // The block in docs/connectors/elasticsearch.md, verbatim:
    let by_region = ElasticsearchSink::builder()
        .hosts([node.url()])
        .emitter(JsonEmitter::index_from_field("region").id_fields(["user", "score"]))
        .build()?;
    // (end of the block)
    let stream = env
        .from_collection(events.clone())
        .key_by(|e: &Event| e.user.clone());
    stream.sink_to(upserts, "Sink: users");
    stream.sink_to(by_region, "Sink: by region");
    let result = env.execute("round trip").unwrap();

    // Records of one user arrive in order (keyed), so the last event of each user wins.
    let mut expect_users = BTreeMap::new();
    for e in &events {
        if e.deleted {
            expect_users.remove(&e.user);
        } else {
            expect_users.insert(e.user.clone(), json!({"score": e.score}));
        }
    }
    assert_eq!(expect_users.len(), 40);
    assert_eq!(node.docs("rt-users"), expect_users);
    for region in ["eu", "us"] {
        let expect: BTreeMap<String, Value> = events
            .iter()
            .filter(|e| e.region == region)
            .map(|e| {
                (
                    format!("{}_{}", e.user, e.score),
                    serde_json::to_value(e).unwrap(),
                )
            })
            .collect();
        assert_eq!(node.docs(region), expect, "index {region}");
    }
    assert_eq!(metric(&result, "recordsWritten"), 400);
    assert_eq!(metric(&result, "actionsFailed"), 0);
    Ok(())
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// Runs records 0..n through a checkpointed job into `{prefix}-ids` (upserts by id) and
/// `{prefix}-auto` (ids the cluster chooses), failing once mid-stream if `fail`; the restarts.
fn run_with_optional_failure(node: &Node, prefix: &str, n: u64, fail: bool) -> u32 {
    let dir = std::env::temp_dir().join(format!("fjord-es-{prefix}-{}", std::process::id()));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(100));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 3,
        delay: Duration::from_millis(100),
    });
    let mapped = env
        .from_source(
            GeneratorSource::new(Some(n), |i| i).with_rate(4000.0),
            "Source: sequence",
        )
        .uid("sequence")
        .set_parallelism(1)
        .rebalance()
        .map(move |i: u64| {
            if fail && i == n / 2 && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
                panic!("injected failure at record {i}");
            }
            i
        })
        .uid("map");
    let ids = format!("{prefix}-ids");
    let with_ids = ElasticsearchSink::builder()
        .hosts([node.url()])
        .max_actions(100)
        .emitter(move |i: &u64| {
            DocAction::upsert(
                ids.as_str(),
                i.to_string(),
                &json!({"i": i, "square": i * i}),
            )
        })
        .build()
        .unwrap();
    let auto = format!("{prefix}-auto");
    let auto_ids = ElasticsearchSink::builder()
        .hosts([node.url()])
        .max_actions(100)
        .emitter(move |i: &u64| DocAction::index(auto.as_str(), &json!({"i": i})))
        .build()
        .unwrap();
    mapped.sink_to(with_ids, "Sink: ids").uid("ids");
    mapped.sink_to(auto_ids, "Sink: auto ids").uid("auto");
    let job = env.execute_async(prefix).unwrap();
    wait_for("the job to end", || job.is_finished());
    let restarts = job.restarts();
    job.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    restarts
}

/// A job failing mid-stream restarts from its checkpoint: the index with document ids ends
/// equal to the failure-free run's; the one with cluster-chosen ids has every record at least
/// once (the replayed ones twice).
#[test]
fn a_job_failure_mid_stream_leaves_the_index_a_clean_run_leaves() {
    let node = Node::shared();
    let n = 4000u64;
    assert_eq!(run_with_optional_failure(node, "clean", n, false), 0);
    let restarts = run_with_optional_failure(node, "failed", n, true);
    assert!(restarts >= 1, "the injected failure restarted the job");
    let clean = node.docs("clean-ids");
    assert_eq!(clean.len() as u64, n);
    assert_eq!(
        node.docs("failed-ids"),
        clean,
        "after a failure, the same index"
    );
    assert_eq!(
        node.count("clean-auto"),
        n,
        "no duplicates without a failure"
    );
    let mut seen = BTreeMap::<u64, u64>::new();
    for doc in node.docs("failed-auto").values() {
        *seen.entry(doc["i"].as_u64().unwrap()).or_default() += 1;
    }
    let missing: Vec<u64> = (0..n).filter(|i| !seen.contains_key(i)).take(5).collect();
    assert!(
        missing.is_empty(),
        "records lost after the failure: {missing:?}"
    );
    let duplicates: u64 = seen.values().map(|c| c - 1).sum();
    eprintln!(
        "after one job failure: {n} records, {duplicates} duplicates without ids (at-least-once)"
    );
}

/// The node stopped mid-run and started again: the sink retries with backoff until it answers
/// and every record is there, once.
#[test]
fn a_node_restarted_mid_run_loses_nothing() {
    let node = Node::start("restart");
    let dir = std::env::temp_dir().join(format!("fjord-es-restart-{}", std::process::id()));
    let n = 6000u64;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(200));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 1000,
        delay: Duration::from_millis(200),
    });
    let sink = ElasticsearchSink::builder()
        .hosts([node.url()])
        .max_actions(50)
        .backoff(Backoff {
            strategy: BackoffStrategy::Exponential,
            max_retries: 12,
            delay: Duration::from_millis(100),
        })
        .connect_timeout(Duration::from_secs(2))
        .emitter(|i: &u64| DocAction::upsert("restart", i.to_string(), &json!({"i": i})))
        .build()
        .unwrap();
    env.from_source(
        GeneratorSource::new(Some(n), |i| i).with_rate(1500.0),
        "Source: sequence",
    )
    .uid("sequence")
    .set_parallelism(1)
    .rebalance()
    .sink_to(sink, "Sink: OpenSearch")
    .uid("sink");
    let job = env.execute_async("node restart").unwrap();
    let metrics = job.metrics();
    let retries = || sum(&metrics.snapshot(), "retries");
    wait_for("a third of the records", || node.count("restart") >= n / 3);
    node.stop();
    wait_for("the sink to retry against the stopped node", || {
        retries() > 0
    });
    node.restart();
    wait_for("the job to end", || job.is_finished());
    let restarts = job.restarts();
    job.wait().expect("the job finishes once the node is back");
    let docs = node.docs("restart");
    assert_eq!(docs.len() as u64, n, "every record, once");
    for i in 0..n {
        assert_eq!(docs[&i.to_string()], json!({"i": i}));
    }
    eprintln!(
        "node stopped mid-run: {} sink retries, {restarts} job restarts",
        retries()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Documents the index mapping refuses (a string in a `long` field) fail the job with the
/// cluster's reason and the document's id, or are dropped and counted; records the emitter
/// refuses are skipped and counted.
#[test]
fn refused_documents_go_to_the_failure_handler() {
    let node = Node::shared();
    node.create_index("typed", json!({"properties": {"n": {"type": "long"}}}));
    let rows: Vec<(u32, String)> = (0..20)
        .map(|i| {
            (
                i,
                if i % 7 == 3 {
                    format!("x{i}")
                } else {
                    i.to_string()
                },
            )
        })
        .collect();
    let sink = |handler: FailureHandler| {
        ElasticsearchSink::builder()
            .hosts([node.url()])
            .failure_handler(handler)
            .on_malformed(OnMalformed::Skip)
            .emitter(|(i, n): &(u32, String)| {
                if *i == 19 {
                    return Err(format!("record {i} is malformed"));
                }
                DocAction::upsert("typed", i.to_string(), &json!({"n": n}))
            })
            .build()
            .unwrap()
    };
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_collection(rows.clone())
        .stream()
        .sink_to(sink(FailureHandler::Fail), "Sink: typed");
    let err = env.execute("fail").unwrap_err().to_string();
    assert!(
        err.contains("mapper_parsing_exception")
            && err.contains("document 3 in index 'typed'")
            && err.contains("HTTP 400")
            && err.contains("failure-handler"),
        "{err}"
    );

    let env = StreamExecutionEnvironment::new();
    env.from_collection(rows)
        .stream()
        .sink_to(sink(FailureHandler::Drop), "Sink: typed");
    let result = env.execute("drop").unwrap();
    let refused = [3u32, 10, 17];
    assert_eq!(metric(&result, "actionsDropped"), refused.len() as u64);
    assert_eq!(metric(&result, "actionsFailed"), refused.len() as u64);
    assert_eq!(metric(&result, "recordsSkipped"), 1);
    assert_eq!(metric(&result, "recordsWritten"), 16);
    let expect: BTreeMap<String, Value> = (0..19u32)
        .filter(|i| !refused.contains(i))
        .map(|i| (i.to_string(), json!({"n": i.to_string()})))
        .collect();
    assert_eq!(node.docs("typed"), expect);
}

/// One job writing `items` with the sink made by `builder`, the sink chained to a source at
/// parallelism 1 with no buffer timeout and no checkpoints: only the sink's own thresholds
/// and the end of input send requests. The bulk requests and bytes sent.
fn flush_run<I>(
    items: I,
    index: &str,
    configure: impl FnOnce(
        fjord_elasticsearch::ElasticsearchSinkBuilder<u64>,
    ) -> fjord_elasticsearch::ElasticsearchSinkBuilder<u64>,
) -> (u64, u64)
where
    I: Iterator<Item = u64> + Clone + Send + 'static,
{
    let node = Node::shared();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.set_buffer_timeout(Duration::from_secs(3600));
    let idx = index.to_string();
    let sink = configure(
        ElasticsearchSink::builder()
            .hosts([node.url()])
            .max_actions(0)
            .max_size_bytes(0)
            .flush_interval(None),
    )
    .emitter(move |i: &u64| {
        DocAction::upsert(
            idx.as_str(),
            format!("{i:05}"),
            &json!({"i": format!("{i:05}")}),
        )
    })
    .build()
    .unwrap();
    env.from_iter(items).sink_to(sink, "Sink: flush");
    let result = env.execute(index).unwrap();
    (
        metric(&result, "bulkRequests"),
        metric(&result, "bytesSent"),
    )
}

/// Requests go out when they hold max-actions actions, when they reach max-size bytes and
/// when their oldest action is flush-interval old; without any of these, once at the end.
#[test]
fn bulk_requests_flush_by_count_size_and_interval() {
    let node = Node::shared();
    let (requests, bytes) = flush_run(0..95u64, "flush-none", |b| b);
    assert_eq!(requests, 1, "no threshold: one request at the end of input");
    assert_eq!(bytes % 95, 0, "actions of equal size");
    let action = bytes / 95;

    let (requests, _) = flush_run(0..95u64, "flush-count", |b| b.max_actions(10));
    assert_eq!(requests, 10, "nine full requests of 10, then the last 5");

    let max = 1000;
    let per_request = (max as u64).div_ceil(action);
    let (requests, size_bytes) = flush_run(0..95u64, "flush-size", |b| b.max_size_bytes(max));
    assert_eq!(size_bytes, bytes);
    assert_eq!(
        requests,
        95u64.div_ceil(per_request),
        "{per_request} actions of {action} bytes reach {max}"
    );

    // 40 records at least 25 ms apart: the oldest action turns 200 ms old several times.
    let slow = (0..40u64).inspect(|_| std::thread::sleep(Duration::from_millis(25)));
    let (requests, _) = flush_run(slow, "flush-interval", |b| {
        b.flush_interval(Some(Duration::from_millis(200)))
    });
    assert!(
        requests >= 2,
        "the interval sent requests before the end: {requests}"
    );
    for index in ["flush-none", "flush-count", "flush-size", "flush-interval"] {
        let want = if index == "flush-interval" { 40 } else { 95 };
        assert_eq!(node.count(index), want, "{index}");
    }
}

/// A node whose write queue holds one bulk: writers at parallelism 4 get HTTP 429 for some
/// actions, which the sink sends again after the backoff; every document arrives once.
#[test]
fn rejected_actions_are_retried_with_backoff() {
    let node = Node::start_with(
        "rejections",
        Some("thread_pool.write.size: 1\nthread_pool.write.queue_size: 1"),
    );
    let n = 8000u64;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(4);
    let sink = ElasticsearchSink::builder()
        .hosts([node.url()])
        .max_actions(20)
        .failure_handler(FailureHandler::Retry)
        .backoff(Backoff {
            strategy: BackoffStrategy::Constant,
            max_retries: 3,
            delay: Duration::from_millis(20),
        })
        .emitter(|i: &u64| DocAction::upsert("busy", i.to_string(), &json!({"i": i})))
        .build()
        .unwrap();
    env.from_sequence(0, n as i64 - 1)
        .map(|i: i64| i as u64)
        .rebalance()
        .sink_to(sink, "Sink: busy");
    let result = env.execute("rejections").unwrap();
    assert_eq!(node.count("busy"), n, "every document once");
    assert_eq!(metric(&result, "actionsWritten"), n);
    let retries = metric(&result, "retries");
    eprintln!("write queue of one: {retries} retries of rejected actions");
    assert!(
        retries > 0,
        "four writers against a write queue of one saw no HTTP 429"
    );
}
