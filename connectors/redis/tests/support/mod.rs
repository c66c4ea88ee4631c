//! A real Redis server per test binary (or per test), started and stopped through
//! `scripts/infra/redis.sh` (driven by `fjord_e2e::ScriptServer`) on a free loopback port with
//! its own data directory. The script's watchdog (`FJORD_E2E_OWNER_PID`) stops the server when
//! the test binary is gone, even if it was killed.
#![allow(dead_code)]

use fjord_e2e::ScriptServer;

/// A running (or stopped) test server; `down` and its directory removed on drop.
pub struct RedisServer {
    server: ScriptServer,
    url: String,
}

/// The value, or a panic naming the failed script call and how to install the server.
fn must<T>(result: Result<T, fjord_e2e::Error>) -> T {
    result.unwrap_or_else(|e| panic!("{e}\n(install the server with scripts/install-deps.sh)"))
}

impl RedisServer {
    /// Starts a server in a fresh directory named after `name`.
    pub fn start(name: &str) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("fjord-redis-{name}-{}", std::process::id()));
        let server = must(ScriptServer::start("redis.sh", dir));
        let url = must(server.var("REDIS_URL")).to_string();
        RedisServer { server, url }
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client connection (redis-rs, as a reader independent of the sink's pipelines).
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .expect("connect to the test server")
    }

    /// Kills the server (SIGKILL): what it acknowledged is in its fsync'ed append-only file.
    pub fn kill(&self) {
        must(self.server.stop(true));
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&self) {
        must(self.server.restart());
    }
}
