//! The Redis sink against a real Redis server (Debian's `redis-server`, one per test, started by
//! `scripts/infra/redis.sh` on a free loopback port), in jobs on the embedded mini-cluster.
//! What the sink wrote is read back with plain commands (GET, HGETALL, LRANGE, ...).

mod support;

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord::sources::GeneratorSource;
use fjord_redis::{CommandMapper, METRIC_PREFIX, OnMalformed, RedisCommand, RedisSink, RedisWrite};
use redis::Commands;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::RedisServer;

/// Sum of a sink counter over all subtasks.
fn metric(result: &fjord::JobExecutionResult, name: &str) -> u64 {
    let suffix = format!(".{METRIC_PREFIX}.{name}");
    result
        .metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| v)
        .sum()
}

/// Waits (polling, bounded) until `done` holds; panics naming `what` otherwise.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn docs_example(server: &RedisServer) -> Result<(), Box<dyn std::error::Error>> {
    let url = server.url().to_string();
    let env = StreamExecutionEnvironment::new();
    // The block in docs/connectors/redis.md, verbatim:
    let sink = RedisSink::builder()
        .url(&url)
        .mapper(|(word, count): &(String, u64)| {
            Ok(RedisWrite::hset(
                "word-counts",
                word.as_str(),
                count.to_string(),
            ))
        })
        .build()?;
    env.from_collection(vec![("fjord".to_string(), 3u64), ("redis".to_string(), 1)])
        .stream()
        .sink_to(sink, "Sink: Redis");
    env.execute("redis-docs-example")?;
    // (end of the block)
    Ok(())
}

#[test]
fn docs_example_writes_word_counts_into_a_hash() {
    let server = RedisServer::start("docs");
    docs_example(&server).unwrap();
    let counts: BTreeMap<String, String> = server.connection().hgetall("word-counts").unwrap();
    assert_eq!(
        counts,
        BTreeMap::from([("fjord".into(), "3".into()), ("redis".into(), "1".into())])
    );
}

/// Every ```rust block of the docs is test code of this file, line for line (indentation
/// aside), so the docs show code that runs.
#[test]
fn the_docs_examples_are_the_tested_code() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/redis.md")).unwrap();
    let test = include_str!("sink.rs");
    let blocks = fjord_e2e::jobs::code_blocks_in(&docs, "rust");
    assert_eq!(
        blocks.len(),
        2,
        "the word-count and the Bahir mapper examples"
    );
    for block in blocks {
        assert!(
            fjord_e2e::jobs::is_code_of(&block, test),
            "docs/connectors/redis.md's example is not tested code:\n{block}"
        );
    }
}

/// Every command, with and without TTL, through a job at parallelism 2; PUBLISH reaches a
/// subscriber that listens before the job starts.
#[test]
fn every_command_and_ttl_round_trips() {
    let server = RedisServer::start("commands");
    let mut subscriber = server.connection();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let listener = std::thread::spawn(move || {
        let mut pubsub = subscriber.as_pubsub();
        pubsub.subscribe("events").unwrap();
        ready_tx.send(()).unwrap();
        for _ in 0..20 {
            let msg: String = pubsub.get_message().unwrap().get_payload().unwrap();
            tx.send(msg).unwrap();
        }
    });
    ready_rx.recv().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let sink = RedisSink::builder()
        .url(server.url())
        .max_batch_size(7)
        .mapper(|i: &u64| {
            let v = i.to_string();
            Ok(match i % 7 {
                0 => RedisWrite::set(format!("s:{i}"), v),
                1 => RedisWrite::set(format!("t:{i}"), v).with_ttl(Duration::from_secs(600)),
                2 => RedisWrite::hset("h", v.as_str(), format!("v{i}"))
                    .with_ttl(Duration::from_secs(600)),
                3 => RedisWrite::lpush("l", v),
                4 => RedisWrite::rpush("r", v),
                5 => RedisWrite::sadd("set", v),
                _ => RedisWrite::publish("events", v),
            })
        })
        .build()
        .unwrap();
    env.from_collection((0..140u64).collect())
        .rebalance()
        .sink_to(sink, "Sink: Redis");
    let result = env.execute("commands").unwrap();
    let mut c = server.connection();
    for i in (0..140u64).filter(|i| i % 7 == 0) {
        let v: String = c.get(format!("s:{i}")).unwrap();
        assert_eq!(v, i.to_string());
        let ttl: i64 = c.ttl(format!("s:{i}")).unwrap();
        assert_eq!(ttl, -1, "no TTL asked for s:{i}");
    }
    for i in (0..140u64).filter(|i| i % 7 == 1) {
        let ttl: i64 = c.ttl(format!("t:{i}")).unwrap();
        assert!(ttl > 0 && ttl <= 600, "t:{i} has TTL {ttl}");
    }
    let h: HashMap<String, String> = c.hgetall("h").unwrap();
    assert_eq!(h.len(), 20);
    assert_eq!(h["2"], "v2");
    let ttl: i64 = c.ttl("h").unwrap();
    assert!(ttl > 0, "HSET with TTL sets EXPIRE on the hash: {ttl}");
    let sorted = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    let expect = |r: u64| {
        (0..140u64)
            .filter(|i| i % 7 == r)
            .map(|i| i.to_string())
            .collect::<BTreeSet<_>>()
    };
    let l: Vec<String> = c.lrange("l", 0, -1).unwrap();
    assert_eq!(l.len(), 20);
    assert_eq!(sorted(l), expect(3));
    let r: Vec<String> = c.lrange("r", 0, -1).unwrap();
    assert_eq!(sorted(r), expect(4));
    let s: BTreeSet<String> = c.smembers("set").unwrap();
    assert_eq!(s, expect(5));
    listener.join().unwrap();
    let published: BTreeSet<String> = rx.try_iter().collect();
    assert_eq!(published, expect(6));
    assert_eq!(metric(&result, "recordsWritten"), 140);
    // 20 EXPIREs after the HSETs; SET's TTL is its EX argument.
    assert_eq!(metric(&result, "commandsSent"), 160);
}

/// Bahir's command description: ZADD with the value as score into a named sorted set.
#[test]
fn command_mapper_writes_a_sorted_set_like_bahir() {
    let server = RedisServer::start("zadd");
    let env = StreamExecutionEnvironment::new();
    let sink = RedisSink::builder()
        .url(server.url())
        .command_mapper(
            CommandMapper::new(
                RedisCommand::Zadd,
                |r: &(String, i64)| r.0.clone(),
                |r: &(String, i64)| r.1.to_string(),
            )
            .additional_key("leaderboard"),
        )
        .build()
        .unwrap();
    env.from_collection(vec![
        ("ann".to_string(), 5i64),
        ("bob".into(), 9),
        ("ann".into(), 7),
    ])
    .stream()
    .sink_to(sink, "Sink: Redis");
    env.execute("zadd").unwrap();
    let board: Vec<(String, f64)> = server
        .connection()
        .zrange_withscores("leaderboard", 0, -1)
        .unwrap();
    assert_eq!(
        board,
        vec![("ann".to_string(), 7.0), ("bob".to_string(), 9.0)]
    );
}

static FAILED_ONCE: AtomicBool = AtomicBool::new(false);

/// Runs the same stream (records 0..n, idempotent HSET into `{prefix}:h`, appending RPUSH
/// into `{prefix}:l`) with checkpoints, failing once mid-stream if `fail`.
fn run_with_optional_failure(server: &RedisServer, prefix: &str, n: u64, fail: bool) -> u32 {
    let dir = std::env::temp_dir().join(format!("fjord-redis-{prefix}-{}", std::process::id()));
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
    let (h, l) = (format!("{prefix}:h"), format!("{prefix}:l"));
    let hset = RedisSink::builder()
        .url(server.url())
        .mapper(move |i: &u64| Ok(RedisWrite::hset(h.as_str(), i.to_string(), format!("v{i}"))))
        .build()
        .unwrap();
    let rpush = RedisSink::builder()
        .url(server.url())
        .mapper(move |i: &u64| Ok(RedisWrite::rpush(l.as_str(), i.to_string())))
        .build()
        .unwrap();
    mapped.sink_to(hset, "Sink: Redis HSET").uid("hset");
    mapped.sink_to(rpush, "Sink: Redis RPUSH").uid("rpush");
    let job = env.execute_async(prefix).unwrap();
    let restarts = {
        let client = &job;
        wait_for("the job to end", || client.is_finished());
        client.restarts()
    };
    job.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    restarts
}

/// A job killed mid-stream and restarted from its checkpoint: the idempotent HSET leaves
/// exactly what the failure-free run leaves; the RPUSH list has every record at least once
/// and its duplicates are only records replayed after the failure.
#[test]
fn a_job_failure_loses_nothing_and_idempotent_writes_give_exactly_once_results() {
    let server = RedisServer::start("failure");
    let n = 4000u64;
    assert_eq!(run_with_optional_failure(&server, "clean", n, false), 0);
    let restarts = run_with_optional_failure(&server, "failed", n, true);
    assert!(restarts >= 1, "the injected failure restarted the job");
    let mut c = server.connection();
    let clean: BTreeMap<String, String> = c.hgetall("clean:h").unwrap();
    let failed: BTreeMap<String, String> = c.hgetall("failed:h").unwrap();
    assert_eq!(clean.len() as u64, n);
    assert_eq!(
        failed, clean,
        "HSET after a failure equals the failure-free result"
    );
    let count = |key: &str| -> BTreeMap<u64, u64> {
        let mut counts = BTreeMap::new();
        let items: Vec<u64> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(&mut server.connection())
            .unwrap();
        for i in items {
            *counts.entry(i).or_default() += 1;
        }
        counts
    };
    let clean_list = count("clean:l");
    assert_eq!(clean_list.len() as u64, n);
    assert!(
        clean_list.values().all(|c| *c == 1),
        "no duplicates without a failure"
    );
    let failed_list = count("failed:l");
    let missing: Vec<u64> = (0..n)
        .filter(|i| !failed_list.contains_key(i))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "RPUSH lost records after the failure: {missing:?}"
    );
    let duplicates: u64 = failed_list.values().map(|c| c - 1).sum();
    eprintln!("RPUSH after one job failure: {n} records, {duplicates} duplicates (at-least-once)");
}

/// The server killed mid-run: the sink fails with a write error, the job restarts through its
/// restart strategy (failing to connect until the server is back), and in the end every record
/// is there: the SET keys exactly once, the RPUSH list at least once.
#[test]
fn a_killed_server_fails_the_job_and_the_restart_recovers_without_loss() {
    let server = RedisServer::start("server-kill");
    let dir = std::env::temp_dir().join(format!("fjord-redis-kill-{}", std::process::id()));
    let n = 6000u64;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(100));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 1000,
        delay: Duration::from_millis(100),
    });
    let source = env
        .from_source(
            GeneratorSource::new(Some(n), |i| i).with_rate(2000.0),
            "Source: sequence",
        )
        .uid("sequence")
        .set_parallelism(1)
        .rebalance();
    let set = RedisSink::builder()
        .url(server.url())
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(5))
        .mapper(|i: &u64| Ok(RedisWrite::set(format!("k:{i}"), i.to_string())))
        .build()
        .unwrap();
    let rpush = RedisSink::builder()
        .url(server.url())
        .mapper(|i: &u64| Ok(RedisWrite::rpush("all", i.to_string())))
        .build()
        .unwrap();
    source.sink_to(set, "Sink: Redis SET").uid("set");
    source.sink_to(rpush, "Sink: Redis RPUSH").uid("rpush");
    let job = env.execute_async("server kill").unwrap();
    let mut probe = server.connection();
    wait_for("a third of the records", || {
        probe.llen::<_, u64>("all").unwrap_or(0) >= n / 3
    });
    server.kill();
    wait_for("the job to restart after the server died", || {
        job.restarts() >= 1
    });
    server.restart();
    wait_for("the job to end", || job.is_finished());
    let restarts = job.restarts();
    job.wait()
        .expect("the job finishes once the server is back");
    let mut c = server.connection();
    let keys: Vec<String> = c.keys("k:*").unwrap();
    assert_eq!(keys.len() as u64, n, "every SET key, once");
    let items: Vec<u64> = c.lrange("all", 0, -1).unwrap();
    let distinct: BTreeSet<u64> = items.iter().copied().collect();
    assert_eq!(distinct.len() as u64, n, "no record lost");
    eprintln!(
        "server killed mid-run: {restarts} restarts, {} RPUSH duplicates of {n} records",
        items.len() as u64 - n
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A record the mapper refuses fails the job with a message naming it, or is skipped and
/// counted; a server error reply (WRONGTYPE) fails the job naming the server and the error.
#[test]
fn malformed_records_and_server_errors() {
    let server = RedisServer::start("malformed");
    let scores = vec![
        ("ann".to_string(), "1".to_string()),
        ("bob".into(), "many".into()),
        ("cid".into(), "3".into()),
    ];
    let sink = |on: OnMalformed| {
        RedisSink::builder()
            .url(server.url())
            .on_malformed(on)
            .command_mapper(
                CommandMapper::new(
                    RedisCommand::Zadd,
                    |r: &(String, String)| r.0.clone(),
                    |r: &(String, String)| r.1.clone(),
                )
                .additional_key("scores"),
            )
            .build()
            .unwrap()
    };
    let env = StreamExecutionEnvironment::new();
    env.from_collection(scores.clone())
        .stream()
        .sink_to(sink(OnMalformed::Fail), "Sink: Redis");
    let err = env.execute("fail").unwrap_err().to_string();
    assert!(
        err.contains("numeric score") && err.contains("bob") && err.contains("OnMalformed::Skip"),
        "{err}"
    );
    let env = StreamExecutionEnvironment::new();
    env.from_collection(scores)
        .stream()
        .sink_to(sink(OnMalformed::Skip), "Sink: Redis");
    let result = env.execute("skip").unwrap();
    assert_eq!(metric(&result, "recordsSkipped"), 1);
    assert_eq!(metric(&result, "recordsWritten"), 2);
    let members: Vec<String> = server.connection().zrange("scores", 0, -1).unwrap();
    assert_eq!(members, vec!["ann".to_string(), "cid".to_string()]);

    let _: () = server.connection().set("taken", "a string").unwrap();
    let env = StreamExecutionEnvironment::new();
    let wrong = RedisSink::builder()
        .url(server.url())
        .mapper(|s: &String| Ok(RedisWrite::lpush("taken", s.as_str())))
        .build()
        .unwrap();
    env.from_collection(vec!["x".to_string()])
        .stream()
        .sink_to(wrong, "Sink: Redis");
    let err = env.execute("wrongtype").unwrap_err().to_string();
    assert!(
        err.contains("WRONGTYPE") && err.contains(server.url()) && err.contains("restart"),
        "{err}"
    );
}

#[test]
fn a_dead_server_fails_the_job_with_a_clear_error() {
    let env = StreamExecutionEnvironment::new();
    let sink = RedisSink::builder()
        .url("redis://127.0.0.1:1/")
        .connect_timeout(Duration::from_secs(2))
        .mapper(|s: &String| Ok(RedisWrite::set(s.as_str(), "1")))
        .build()
        .unwrap();
    env.from_collection(vec!["x".to_string()])
        .stream()
        .sink_to(sink, "Sink: Redis");
    let err = env.execute("dead").unwrap_err().to_string();
    assert!(
        err.contains("cannot connect to Redis at redis://127.0.0.1:1/")
            && err.contains("check that the server runs"),
        "{err}"
    );
}
