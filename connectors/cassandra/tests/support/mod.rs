//! A real Apache Cassandra node per test binary (or per test), started and stopped through
//! `scripts/infra/cassandra.sh` on free loopback ports with its own data directories. The
//! script's watchdog (`FJORD_E2E_OWNER_PID`) stops the node when the test binary is gone, even
//! if it was killed, so the shared node needs no drop. Tables are read back with plain CQL
//! through the driver, on a runtime of the tests' own.
#![allow(dead_code)]

use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// A running (or stopped) test node and a CQL session to it.
pub struct Cassandra {
    dir: PathBuf,
    hosts: String,
    runtime: tokio::runtime::Runtime,
    session: Session,
    owned: bool,
}

fn script() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|d| d.join("scripts/infra/cassandra.sh").is_file())
        .expect("scripts/infra/cassandra.sh above the crate");
    root.join("scripts/infra/cassandra.sh")
}

fn run(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("run scripts/infra/cassandra.sh");
    assert!(
        out.status.success(),
        "cassandra.sh {args:?} failed ({}): {}\n(install the server with scripts/infra/install.sh or scripts/infra/install-cassandra.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cassandra {
    /// Starts a node in a fresh directory named after `name`; it is stopped when dropped.
    pub fn start(name: &str) -> Cassandra {
        let dir =
            std::env::temp_dir().join(format!("fjord-cassandra-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = run(&["start", dir.to_str().unwrap()]);
        let hosts = out
            .lines()
            .find_map(|l| l.strip_prefix("CASSANDRA_HOSTS="))
            .expect("CASSANDRA_HOSTS in cassandra.sh's output")
            .to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let session = runtime
            .block_on(SessionBuilder::new().known_node(&hosts).build())
            .expect("a CQL session to the test node");
        Cassandra {
            dir,
            hosts,
            runtime,
            session,
            owned: true,
        }
    }

    /// One node for every test of the binary that does not stop it (started on first use;
    /// the watchdog stops it when the binary exits).
    pub fn shared() -> &'static Cassandra {
        static SHARED: OnceLock<Cassandra> = OnceLock::new();
        SHARED.get_or_init(|| {
            let mut c = Cassandra::start("shared");
            c.owned = false;
            c
        })
    }

    /// `127.0.0.1:PORT`, the native transport (CQL) address.
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// Runs CQL statements separated by `;` (schema set-up), each retried while the node is
    /// busy (bounded).
    pub fn cql(&self, statements: &str) {
        for s in statements
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match self.runtime.block_on(self.session.query_unpaged(s, ())) {
                    Ok(_) => break,
                    Err(e) if attempts < 10 => {
                        eprintln!("retrying `{s}`: {e}");
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    Err(e) => panic!("`{s}` failed: {e}"),
                }
            }
        }
    }

    /// A fresh keyspace (replication factor 1) named `name`.
    pub fn keyspace(&self, name: &str) {
        self.cql(&format!(
            "DROP KEYSPACE IF EXISTS {name}; CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        ));
    }

    /// Every row `query` selects (paged through), or the driver's error.
    pub fn try_rows<R>(&self, query: &str) -> Result<Vec<R>, String>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        use futures::StreamExt as _;
        self.runtime.block_on(async {
            let pager = self
                .session
                .query_iter(query, ())
                .await
                .map_err(|e| e.to_string())?;
            let mut stream = pager.rows_stream::<R>().map_err(|e| e.to_string())?;
            let mut rows = Vec::new();
            while let Some(r) = stream.next().await {
                rows.push(r.map_err(|e| e.to_string())?);
            }
            Ok(rows)
        })
    }

    /// Every row `query` selects; panics on an error.
    pub fn rows<R>(&self, query: &str) -> Vec<R>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + 'static,
    {
        self.try_rows(query)
            .unwrap_or_else(|e| panic!("`{query}` failed: {e}"))
    }

    /// The number of rows of `table` (0 while the node cannot answer).
    pub fn count(&self, table: &str) -> i64 {
        self.try_rows::<(i64,)>(&format!("SELECT COUNT(*) FROM {table}"))
            .ok()
            .and_then(|r| r.first().map(|(n,)| *n))
            .unwrap_or(0)
    }

    /// Kills the node (SIGKILL): what it acknowledged is in its synced commit log.
    pub fn kill(&self) {
        run(&["stop", self.dir.to_str().unwrap(), "--kill"]);
    }

    /// Starts the node again on the same ports with the same data.
    pub fn restart(&self) {
        run(&["start", self.dir.to_str().unwrap()]);
    }
}

impl Drop for Cassandra {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script())
                .args(["down", self.dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
