//! A real Redis server per test binary (or per test), started and stopped through
//! `scripts/infra/redis.sh` on a free loopback port with its own data directory. The script's
//! watchdog (`FJORD_E2E_OWNER_PID`) stops the server when the test binary is gone, even if it
//! was killed.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// A running (or stopped) test server.
pub struct RedisServer {
    dir: PathBuf,
    url: String,
}

fn script() -> PathBuf {
    // The repository root is the first ancestor of the crate holding scripts/infra (this file
    // is also included by other crates' tests).
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|d| d.join("scripts/infra/redis.sh").is_file())
        .expect("scripts/infra/redis.sh above the crate");
    root.join("scripts/infra/redis.sh")
}

fn run(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("run scripts/infra/redis.sh");
    assert!(
        out.status.success(),
        "redis.sh {args:?} failed ({}): {}\n(install the server with scripts/install-deps.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisServer {
    /// Starts a server in a fresh directory named after `name`.
    pub fn start(name: &str) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("fjord-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = run(&["start", dir.to_str().unwrap()]);
        let url = out
            .lines()
            .find_map(|l| l.strip_prefix("REDIS_URL="))
            .expect("REDIS_URL in redis.sh's output")
            .to_string();
        RedisServer { dir, url }
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
        run(&["stop", self.dir.to_str().unwrap(), "--kill"]);
    }

    /// Starts the server again on the same port with the same data.
    pub fn restart(&self) {
        run(&["start", self.dir.to_str().unwrap()]);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", self.dir.to_str().unwrap()])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
