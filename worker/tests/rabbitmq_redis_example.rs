//! The `rabbitmq-redis-counts` manifest, run verbatim with `fjord run
//! examples/streamjobs/rabbitmq-redis-counts.yaml` against a real RabbitMQ node and a real Redis
//! server (their addresses given on the command line, which override the manifest's
//! localhost defaults); the Redis hash is the judge.

#[path = "../../connectors/rabbitmq/tests/support/mod.rs"]
mod rabbitmq;
#[path = "../../connectors/redis/tests/support/mod.rs"]
mod redis_support;

use redis::Commands;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn rabbitmq_redis_counts_manifest_counts_orders_into_a_hash() {
    let broker = rabbitmq::Broker::start("manifest");
    let server = redis_support::RedisServer::start("manifest");
    let orders: Vec<(Option<String>, String)> = (0..300u64)
        .map(|i| {
            (
                Some(format!("o-{i}")),
                ["ann", "bob", "cid"][(i % 3) as usize].to_string(),
            )
        })
        .collect();
    broker.publish("orders", &orders);
    let dir = std::env::temp_dir().join(format!("fjord-rmq-redis-manifest-{}", std::process::id()));
    let mut job = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["run", "--checkpoint-storage"])
        .arg(format!("file://{}", dir.display()))
        .arg("examples/streamjobs/rabbitmq-redis-counts.yaml")
        .args(["--amqp-uri", broker.url(), "--redis-url", server.url()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fjord");
    let expected: BTreeMap<String, String> = ["ann", "bob", "cid"]
        .iter()
        .map(|c| (c.to_string(), "100".to_string()))
        .collect();
    let mut c = server.connection();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = job.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            job.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("fjord exited early ({status}):\n{err}");
        }
        let got: BTreeMap<String, String> = c.hgetall("order-counts").unwrap_or_default();
        if got == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "counts never reached {expected:?}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every order is acknowledged once its checkpoint (2 s in the manifest) completes.
    while broker.depth("orders") > 0 {
        assert!(Instant::now() < deadline, "orders left unacknowledged");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        job.wait().unwrap().code(),
        Some(130),
        "exit code of a cancelled run"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
