//! A real OpenSearch node per test binary (or per test), started and stopped through
//! `scripts/infra/opensearch.sh` on a free loopback port with its own data directory; the
//! script's watchdog (`FJORD_E2E_OWNER_PID`) stops it when the test binary is gone. Documents
//! are read back through the REST API (`_refresh`, `_count`, `_search`) with a plain HTTP
//! client, independent of the sink's.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A running (or stopped) test node.
pub struct Node {
    dir: PathBuf,
    url: String,
    /// Remove the directory on drop (not for the shared node, which is never dropped).
    owned: bool,
}

fn script() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|d| d.join("scripts/infra/opensearch.sh").is_file())
        .expect("scripts/infra/opensearch.sh above the crate");
    root.join("scripts/infra/opensearch.sh")
}

fn run(args: &[&str], extra_settings: Option<&str>) -> String {
    let mut cmd = Command::new(script());
    cmd.args(args)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string());
    if let Some(s) = extra_settings {
        cmd.env("OPENSEARCH_EXTRA_SETTINGS", s);
    }
    let out = cmd.output().expect("run scripts/infra/opensearch.sh");
    assert!(
        out.status.success(),
        "opensearch.sh {args:?} failed ({}): {}\n(install the node with scripts/infra/install-opensearch.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small blocking HTTP client for the tests' own requests.
fn http() -> &'static (tokio::runtime::Runtime, reqwest::Client) {
    static HTTP: OnceLock<(tokio::runtime::Runtime, reqwest::Client)> = OnceLock::new();
    HTTP.get_or_init(|| {
        (
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            // No idle connections kept: after a node restart on the same port a pooled
            // connection to the old process fails the next request (IncompleteMessage, seen
            // once in a full run); a new loopback connection per request costs nothing here.
            reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        )
    })
}

impl Node {
    /// Starts a node of its own in `dir` (emptied first), with `extra` lines of opensearch.yml.
    pub fn start_in(dir: PathBuf, owned: bool, extra: Option<&str>) -> Node {
        if dir.exists() {
            let _ = Command::new(script())
                .args(["down", dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        let out = run(&["start", dir.to_str().unwrap()], extra);
        let url = out
            .lines()
            .find_map(|l| l.strip_prefix("OPENSEARCH_URL="))
            .expect("OPENSEARCH_URL in opensearch.sh's output")
            .to_string();
        Node { dir, url, owned }
    }

    /// A node of this test alone, removed when dropped.
    pub fn start(name: &str) -> Node {
        Node::start_with(name, None)
    }

    /// A node of this test alone with `extra` lines of opensearch.yml.
    pub fn start_with(name: &str, extra: Option<&str>) -> Node {
        let dir =
            std::env::temp_dir().join(format!("fjord-opensearch-{name}-{}", std::process::id()));
        Node::start_in(dir, true, extra)
    }

    /// The node shared by the tests of this binary (each uses indices of its own).
    pub fn shared() -> &'static Node {
        static SHARED: OnceLock<Node> = OnceLock::new();
        SHARED.get_or_init(|| {
            Node::start_in(
                fjord_e2e::jobs::shared_server_dir(
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
                    "opensearch",
                ),
                false,
                None,
            )
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the node (SIGTERM, a clean shutdown).
    pub fn stop(&self) {
        run(&["stop", self.dir.to_str().unwrap()], None);
    }

    /// Starts the node again with the same port and data.
    pub fn restart(&self) {
        run(&["start", self.dir.to_str().unwrap()], None);
    }

    /// A request; the status and the JSON body (`null` if none).
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (rt, client) = http();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        rt.block_on(async {
            let resp = req.send().await.expect("the node answers");
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        })
    }

    /// Creates `index` with one shard, no replicas and `mappings`.
    pub fn create_index(&self, index: &str, mappings: Value) {
        let (status, body) = self.request(
            "PUT",
            &format!("/{index}"),
            Some(json!({
                "settings": {"number_of_shards": 1, "number_of_replicas": 0},
                "mappings": mappings,
            })),
        );
        assert_eq!(status, 200, "create index {index}: {body}");
    }

    /// Documents in `index` after a refresh (0 if it does not exist).
    pub fn count(&self, index: &str) -> u64 {
        self.request("POST", &format!("/{index}/_refresh"), None);
        let (status, body) = self.request("GET", &format!("/{index}/_count"), None);
        // 404: the index does not exist yet; 503: it does, but its shard is not started yet
        // (just created by the sink, or the node just restarted). Nothing to count either way.
        if status == 404 || status == 503 {
            return 0;
        }
        assert_eq!(status, 200, "count {index}: {body}");
        body["count"].as_u64().unwrap()
    }

    /// Every document of `index` (at most 10 000) after a refresh: id to source.
    pub fn docs(&self, index: &str) -> BTreeMap<String, Value> {
        // After a restart the shard takes a moment to start; a search before answers 503.
        self.request(
            "GET",
            &format!("/_cluster/health/{index}?wait_for_status=yellow&timeout=30s"),
            None,
        );
        self.request("POST", &format!("/{index}/_refresh"), None);
        let (status, body) = self.request(
            "POST",
            &format!("/{index}/_search"),
            Some(json!({"size": 10000, "query": {"match_all": {}}})),
        );
        if status == 404 {
            return BTreeMap::new();
        }
        assert_eq!(status, 200, "search {index}: {body}");
        let hits = body["hits"]["hits"].as_array().unwrap();
        assert!(hits.len() < 10000, "more documents than one search returns");
        hits.iter()
            .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script())
                .args(["down", self.dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
