//! A real kinesalite server per test binary (or per test), started and stopped through
//! `scripts/infra/kinesis.sh` on a free loopback port with its own LevelDB directory; the
//! script's watchdog (`FJORD_E2E_OWNER_PID`) stops it when the test binary is gone. Streams are
//! created, fed and read back with the crate's blocking client (the AWS SDK), with static
//! test credentials (the server checks the SigV4 signature's form, not the keys).
#![allow(dead_code)]

use fjord_kinesis::client::IteratorStart;
use fjord_kinesis::{KinesisClient, KinesisConfig};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running (or stopped) test server.
pub struct Server {
    dir: PathBuf,
    endpoint: String,
    owned: bool,
}

fn script() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .find(|d| d.join("scripts/infra/kinesis.sh").is_file())
        .expect("scripts/infra/kinesis.sh above the crate")
        .join("scripts/infra/kinesis.sh")
}

fn run(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("run scripts/infra/kinesis.sh");
    assert!(
        out.status.success(),
        "kinesis.sh {args:?} failed ({}): {}\n(install the server with scripts/infra/install-kinesalite.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Server {
    /// Starts a server of its own in `dir` (emptied first).
    pub fn start_in(dir: PathBuf, owned: bool) -> Server {
        if dir.exists() {
            let _ = Command::new(script())
                .args(["down", dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        let out = run(&["start", dir.to_str().unwrap()]);
        let endpoint = out
            .lines()
            .find_map(|l| l.strip_prefix("KINESIS_ENDPOINT="))
            .expect("KINESIS_ENDPOINT in kinesis.sh's output")
            .to_string();
        Server {
            dir,
            endpoint,
            owned,
        }
    }

    /// A server of this test alone, removed when dropped.
    pub fn start(name: &str) -> Server {
        // Not `fjord-kinesis-*`: the tests' scratch directories are named so.
        let dir =
            std::env::temp_dir().join(format!("fjord-kinesalite-{name}-{}", std::process::id()));
        Server::start_in(dir, true)
    }

    /// The server shared by the tests of this binary (each uses streams of its own).
    pub fn shared() -> &'static Server {
        static SHARED: OnceLock<Server> = OnceLock::new();
        SHARED.get_or_init(|| {
            Server::start_in(
                fjord_e2e::jobs::shared_server_dir(
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
                    "kinesis",
                ),
                false,
            )
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The connector's configuration for this server (static test credentials).
    pub fn config(&self) -> KinesisConfig {
        KinesisConfig::new("us-east-1")
            .endpoint(self.endpoint.clone())
            .basic_credentials("fjord-test", "fjord-test-secret")
    }

    /// A client of this server.
    pub fn client(&self) -> KinesisClient {
        KinesisClient::new(&self.config()).expect("a client")
    }

    /// Stops the server (SIGTERM); its store stays.
    pub fn stop(&self) {
        run(&["stop", self.dir.to_str().unwrap()]);
    }

    /// Starts it again with the same port and store.
    pub fn restart(&self) {
        run(&["start", self.dir.to_str().unwrap()]);
    }

    /// Creates `stream` with `shards` shards.
    pub fn create_stream(&self, stream: &str, shards: i32) {
        self.client()
            .create_stream(stream, shards)
            .expect("CreateStream");
    }

    /// Puts `records` (partition key, payload) in order, batches of up to 500.
    pub fn put(&self, stream: &str, records: &[(String, String)]) {
        let client = self.client();
        for chunk in records.chunks(500) {
            let entries: Vec<_> = chunk
                .iter()
                .map(|(k, v)| fjord_kinesis::client::PutEntry {
                    partition_key: k.clone(),
                    data: v.clone().into_bytes(),
                })
                .collect();
            let outcomes = client.put_records(stream, &entries).expect("PutRecords");
            assert!(
                outcomes
                    .iter()
                    .all(|o| matches!(o, fjord_kinesis::client::PutOutcome::Written { .. })),
                "every fixture record written: {outcomes:?}"
            );
        }
    }

    /// Every record of every shard of `stream` from its start: (shard, key, payload), shard by
    /// shard in sequence order.
    pub fn read_all(&self, stream: &str) -> Vec<(String, String, String)> {
        let client = self.client();
        let mut out = Vec::new();
        for shard in client.list_shards(stream).expect("ListShards") {
            let mut it = client
                .shard_iterator(stream, &shard.shard_id, &IteratorStart::TrimHorizon)
                .expect("GetShardIterator");
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Some(i) = it {
                assert!(Instant::now() < deadline, "reading {stream} took too long");
                let f = client.get_records(stream, &i, 10_000).expect("GetRecords");
                let empty = f.records.is_empty();
                for r in f.records {
                    out.push((
                        shard.shard_id.clone(),
                        r.partition_key,
                        String::from_utf8(r.data).unwrap(),
                    ));
                }
                // An open shard has an iterator forever: stop at its tip.
                it = if empty { None } else { f.next_iterator };
            }
        }
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script())
                .args(["down", self.dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The sum over subtasks of the job's metric whose identifier ends with `name`
/// (`KinesisSinkWriter.recordsRetried`).
pub fn metric_sum(metrics: &fjord::metrics::MetricRegistry, name: &str) -> u64 {
    metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with(name))
        .map(|(_, v)| *v)
        .sum()
}
