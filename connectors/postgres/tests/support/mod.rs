//! A real PostgreSQL 15 server (Debian's binaries) per test binary (or per test), started and
//! stopped through `scripts/infra/postgres.sh` on a free loopback port with its own data
//! directory; the script's watchdog (`FJORD_E2E_OWNER_PID`) stops it when the test binary is
//! gone. Fixtures are written and results read back with Debian's `psql` (`postgres.sh psql`),
//! not through the code under test.
#![allow(dead_code)]

use fjord_e2e::ScriptServer;
use std::path::Path;
use std::sync::OnceLock;

/// A running (or stopped) test server.
pub struct Server {
    server: ScriptServer,
    url: String,
}

impl Server {
    fn start_in(dir: std::path::PathBuf) -> Server {
        let server = ScriptServer::start("postgres.sh", dir)
            .unwrap_or_else(|e| panic!("{e}\n(install PostgreSQL with scripts/install-deps.sh)"));
        let url = server
            .var("POSTGRES_URL")
            .expect("POSTGRES_URL")
            .to_string();
        Server { server, url }
    }

    /// A server of this test alone, removed when dropped.
    pub fn start(name: &str) -> Server {
        // Short: the server's Unix socket lives in the directory.
        let dir = std::env::temp_dir().join(format!("fjord-pg-{name}-{}", std::process::id()));
        Server::start_in(dir)
    }

    /// The server shared by the tests of this binary (each uses tables of its own).
    pub fn shared() -> &'static Server {
        static SHARED: OnceLock<Server> = OnceLock::new();
        SHARED.get_or_init(|| {
            let dir = fjord_e2e::jobs::shared_server_dir(
                Path::new(env!("CARGO_TARGET_TMPDIR")),
                "postgres",
            );
            let mut s = Server::start_in(dir);
            s.server = s.server.leak();
            s
        })
    }

    /// `postgres://fjord@127.0.0.1:PORT/fjord`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs SQL with psql (stops at the first error); its unaligned, tuples-only output.
    pub fn psql(&self, sql: &str) -> String {
        self.server
            .run("psql", &["-At", "-F", "|", "-c", sql])
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// Every row of `query` as `a|b|c` lines.
    pub fn rows(&self, query: &str) -> Vec<String> {
        self.psql(query).lines().map(str::to_string).collect()
    }

    /// `SELECT count(*) FROM table`.
    pub fn count(&self, table: &str) -> u64 {
        self.psql(&format!("SELECT count(*) FROM {table}"))
            .trim()
            .parse()
            .expect("a count")
    }

    /// Stops the server (fast shutdown: clients are disconnected); its data stays.
    pub fn stop(&self) {
        self.server.stop(false).expect("postgres.sh stop");
    }

    /// Starts it again with the same port and data.
    pub fn restart(&self) {
        self.server.restart().expect("postgres.sh start");
    }
}

/// The sum over subtasks of the job's metric whose identifier ends with `.{prefix}.{name}`.
pub fn metric_sum(metrics: &fjord::metrics::MetricRegistry, prefix: &str, name: &str) -> u64 {
    let suffix = format!(".{prefix}.{name}");
    metrics
        .snapshot()
        .iter()
        .filter(|(k, _)| k.ends_with(&suffix))
        .map(|(_, v)| *v)
        .sum()
}
