//! The `rabbitmq-redis-counts` example job with the arguments of its StreamJob manifest
//! (`examples/streamjobs/rabbitmq-redis-counts.yaml`, the broker and server addresses replaced
//! by the test's, as `fjord run <manifest> --amqp-uri .. --redis-url ..` does), against a real
//! RabbitMQ node and a real Redis server. The job fails once mid-stream and restarts from its
//! checkpoint (Redis is killed under it); the Redis hash ends with the exact count per customer.

#[path = "../../connectors/rabbitmq/tests/support/mod.rs"]
mod rabbitmq;
#[path = "../../connectors/redis/tests/support/mod.rs"]
mod redis_support;

use fjord::checkpoint::RestartStrategy;
use fjord::{JobArgs, StreamExecutionEnvironment};
use redis::Commands;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The manifest's `spec.job.args`, with the values of `overrides` replaced.
fn manifest_args(overrides: &[(&str, &str)]) -> Vec<String> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("streamjobs/rabbitmq-redis-counts.yaml")).unwrap();
    let line = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("args: ["))
        .expect("spec.job.args in the manifest");
    let mut args: Vec<String> = line
        .trim_end_matches(']')
        .split(',')
        .map(|a| a.trim().trim_matches('"').to_string())
        .collect();
    for (key, value) in overrides {
        let at = args
            .iter()
            .position(|a| a == &format!("--{key}"))
            .unwrap_or_else(|| panic!("--{key} in the manifest"));
        args[at + 1] = value.to_string();
    }
    args
}

#[test]
fn orders_from_rabbitmq_are_counted_into_redis_exactly_once_across_a_failure() {
    let broker = rabbitmq::Broker::start("example");
    let server = redis_support::RedisServer::start("example");
    let customers = ["ann", "bob", "cid", "dee"];
    let n = 2000u64;
    let orders: Vec<(Option<String>, String)> = (0..n)
        .map(|i| {
            let c = customers[(i * i % 7 % 4) as usize];
            (Some(format!("order-{i}")), c.to_string())
        })
        .collect();
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (_, c) in &orders {
        let e = expected.entry(c.clone()).or_insert_with(|| "0".into());
        *e = (e.parse::<u64>().unwrap() + 1).to_string();
    }
    let (first, second) = orders.split_at(orders.len() / 2);
    broker.publish("orders", first);

    let args = JobArgs::parse(manifest_args(&[
        ("amqp-uri", broker.url()),
        ("redis-url", server.url()),
    ]))
    .unwrap();
    assert_eq!(args.get("hash"), Some("order-counts"));
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2); // spec.job.parallelism
    env.enable_checkpointing(Duration::from_millis(200));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.path().display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 1000,
        delay: Duration::from_millis(100),
    });
    let build = fjord_examples::registry()
        .get("rabbitmq-redis-counts")
        .unwrap()
        .build;
    build(&env, &args).unwrap();
    let job = env.execute_async("rabbitmq-redis-counts").unwrap();
    // After the first half, Redis is killed: the sink fails the job, which restarts (failing to connect
    // until Redis is back) from its last checkpoint; the source drops the redelivered orders
    // that checkpoint already counted.
    let mut c = server.connection();
    let deadline = Instant::now() + Duration::from_secs(120);
    let total = |c: &mut redis::Connection| -> u64 {
        let h: BTreeMap<String, String> = c.hgetall("order-counts").unwrap_or_default();
        h.values().map(|v| v.parse::<u64>().unwrap()).sum()
    };
    while total(&mut c) < n / 2 {
        assert!(Instant::now() < deadline, "the job made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill();
    // The second half arrives while Redis is down: the sink's write fails the job.
    broker.publish("orders", second);
    while job.restarts() < 1 {
        assert!(Instant::now() < deadline, "no restart after Redis died");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.restart();
    let mut c = server.connection();
    let mut got = BTreeMap::new();
    while got != expected {
        assert!(
            Instant::now() < deadline,
            "counts never reached {expected:?}; last {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
        got = c.hgetall("order-counts").unwrap_or_default();
    }
    job.cancel();
    let _ = job.wait();
    assert_eq!(got, expected);
}
