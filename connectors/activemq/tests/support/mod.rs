//! A real ActiveMQ Classic broker per test binary (or per test), started and stopped through
//! `scripts/infra/activemq.sh` on free loopback ports with its own KahaDB directory; the
//! script's watchdog (`FJORD_E2E_OWNER_PID`) stops it when the test binary is gone. Fixtures
//! are published, queues drained and depths read with the script's JMS tool (OpenWire),
//! independent of the connector's STOMP client. The script is driven by `fjord_e2e::ScriptServer`.
#![allow(dead_code)]

use fjord_e2e::ScriptServer;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A running (or stopped) test broker; `down` and its directory removed on drop (not the
/// shared broker, which is never dropped).
pub struct Broker {
    server: ScriptServer,
    url: String,
}

/// The value, or a panic naming the failed script call and how to install the broker.
fn must<T>(result: Result<T, fjord_e2e::Error>) -> T {
    result.unwrap_or_else(|e| {
        panic!("{e}\n(install the broker with scripts/infra/install-activemq.sh)")
    })
}

impl Broker {
    /// Starts a broker of its own in `dir` (emptied first).
    pub fn start_in(dir: PathBuf, owned: bool) -> Broker {
        let server = must(ScriptServer::start("activemq.sh", dir));
        let server = if owned { server } else { server.leak() };
        let url = must(server.var("STOMP_URL")).to_string();
        Broker { server, url }
    }

    /// A broker of this test alone, removed when dropped.
    pub fn start(name: &str) -> Broker {
        let dir =
            std::env::temp_dir().join(format!("fjord-activemq-{name}-{}", std::process::id()));
        Broker::start_in(dir, true)
    }

    /// The broker shared by the tests of this binary (each uses queues of its own). Its
    /// directory is under Cargo's per-target tmp dir, one per test binary process.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(|| {
            Broker::start_in(
                fjord_e2e::jobs::shared_server_dir(
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
                    "activemq",
                ),
                false,
            )
        })
    }

    /// `stomp://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the broker (SIGKILL). Persistent messages it received are in its synced journal.
    pub fn kill(&self) {
        must(self.server.stop(true));
    }

    /// Starts the broker again with the same ports and data.
    pub fn restart(&self) {
        must(self.server.restart());
    }

    /// Publishes `messages` (correlation id, body) to `queue` as persistent messages, each
    /// acknowledged by the broker before the next. Bodies must not hold newlines or tabs.
    pub fn publish(&self, queue: &str, messages: &[(Option<String>, String)]) {
        let mut input = String::new();
        for (id, body) in messages {
            input.push_str(id.as_deref().unwrap_or(""));
            input.push('\t');
            input.push_str(body);
            input.push('\n');
        }
        must(
            self.server
                .run_with_input("tool", &["publish", queue], &input),
        );
    }

    /// Takes every message of `queue` (acknowledging it): (correlation id, body), in order.
    pub fn drain(&self, queue: &str) -> Vec<(Option<String>, String)> {
        must(self.server.run("tool", &["drain", queue]))
            .lines()
            .map(|l| {
                let (id, body) = l.split_once('\t').unwrap_or(("", l));
                ((!id.is_empty()).then(|| id.to_string()), body.to_string())
            })
            .collect()
    }

    /// Messages in `queue`, ready and unacknowledged.
    pub fn depth(&self, queue: &str) -> u64 {
        must(self.server.run("tool", &["depth", queue]))
            .trim()
            .parse()
            .expect("a number from the depth tool")
    }
}
