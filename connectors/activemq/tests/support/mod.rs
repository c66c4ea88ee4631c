//! A real ActiveMQ Classic broker per test binary (or per test), started and stopped through
//! `scripts/infra/activemq.sh` on free loopback ports with its own KahaDB directory; the
//! script's watchdog (`FJORD_E2E_OWNER_PID`) stops it when the test binary is gone. Fixtures
//! are published, queues drained and depths read with the script's JMS tool (OpenWire),
//! independent of the connector's STOMP client.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A running (or stopped) test broker.
pub struct Broker {
    dir: PathBuf,
    url: String,
    /// Remove the directory on drop (not for the shared broker, which is never dropped).
    owned: bool,
}

fn script() -> PathBuf {
    // The repository root is the first ancestor of the crate holding scripts/infra (this file
    // may also be included by other crates' tests).
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|d| d.join("scripts/infra/activemq.sh").is_file())
        .expect("scripts/infra/activemq.sh above the crate");
    root.join("scripts/infra/activemq.sh")
}

fn run(args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(script())
        .args(args)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/infra/activemq.sh");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "activemq.sh {args:?} failed ({}): {}\n(install the broker with scripts/infra/install-activemq.sh)",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Broker {
    /// Starts a broker of its own in `dir` (emptied first).
    pub fn start_in(dir: PathBuf, owned: bool) -> Broker {
        if dir.exists() {
            let _ = Command::new(script())
                .args(["down", dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&dir);
        }
        let out = run(&["start", dir.to_str().unwrap()], None);
        let url = out
            .lines()
            .find_map(|l| l.strip_prefix("STOMP_URL="))
            .expect("STOMP_URL in activemq.sh's output")
            .to_string();
        Broker { dir, url, owned }
    }

    /// A broker of this test alone, removed when dropped.
    pub fn start(name: &str) -> Broker {
        let dir =
            std::env::temp_dir().join(format!("fjord-activemq-{name}-{}", std::process::id()));
        Broker::start_in(dir, true)
    }

    /// The broker shared by the tests of this binary (each uses queues of its own). Its
    /// directory is under Cargo's per-target tmp dir and replaced by the next run.
    pub fn shared() -> &'static Broker {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(|| {
            Broker::start_in(
                PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("activemq-shared"),
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
        run(&["stop", self.dir.to_str().unwrap(), "--kill"], None);
    }

    /// Starts the broker again with the same ports and data.
    pub fn restart(&self) {
        run(&["start", self.dir.to_str().unwrap()], None);
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
        run(
            &["tool", self.dir.to_str().unwrap(), "publish", queue],
            Some(&input),
        );
    }

    /// Takes every message of `queue` (acknowledging it): (correlation id, body), in order.
    pub fn drain(&self, queue: &str) -> Vec<(Option<String>, String)> {
        run(&["tool", self.dir.to_str().unwrap(), "drain", queue], None)
            .lines()
            .map(|l| {
                let (id, body) = l.split_once('\t').unwrap_or(("", l));
                ((!id.is_empty()).then(|| id.to_string()), body.to_string())
            })
            .collect()
    }

    /// Messages in `queue`, ready and unacknowledged.
    pub fn depth(&self, queue: &str) -> u64 {
        run(&["tool", self.dir.to_str().unwrap(), "depth", queue], None)
            .trim()
            .parse()
            .expect("a number from the depth tool")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(script())
                .args(["down", self.dir.to_str().unwrap()])
                .output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
