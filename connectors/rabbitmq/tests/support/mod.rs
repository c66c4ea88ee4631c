//! A real RabbitMQ node per test binary (or per test), started and stopped through
//! `scripts/infra/rabbitmq.sh` on free loopback ports with its own data directory and port
//! mapper; the script's watchdog (`FJORD_E2E_OWNER_PID`) stops it when the test binary is gone.
//! Plus a plain AMQP client (lapin) to publish fixtures and to drain queues, independent of the
//! connector's reader and writer.
#![allow(dead_code)]

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::path::PathBuf;
use std::process::Command;
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
    // is also included by other crates' tests).
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|d| d.join("scripts/infra/rabbitmq.sh").is_file())
        .expect("scripts/infra/rabbitmq.sh above the crate");
    root.join("scripts/infra/rabbitmq.sh")
}

fn run(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("run scripts/infra/rabbitmq.sh");
    assert!(
        out.status.success(),
        "rabbitmq.sh {args:?} failed ({}): {}\n(install the broker with scripts/install-deps.sh)",
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
        let out = run(&["start", dir.to_str().unwrap()]);
        let url = out
            .lines()
            .find_map(|l| l.strip_prefix("AMQP_URL="))
            .expect("AMQP_URL in rabbitmq.sh's output")
            .to_string();
        Broker { dir, url, owned }
    }

    /// A broker of this test alone, removed when dropped.
    pub fn start(name: &str) -> Broker {
        let dir =
            std::env::temp_dir().join(format!("fjord-rabbitmq-{name}-{}", std::process::id()));
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
                    "rabbitmq",
                ),
                false,
            )
        })
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Kills the node (SIGKILL). Persistent messages it confirmed are on disk.
    pub fn kill(&self) {
        run(&["stop", self.dir.to_str().unwrap(), "--kill"]);
    }

    /// Starts the node again with the same ports and data.
    pub fn restart(&self) {
        run(&["start", self.dir.to_str().unwrap()]);
    }

    /// Stops the node cleanly (SIGTERM) and starts it again, so that every queue declared so
    /// far is in its stored definitions. A node killed seconds after a queue was declared can
    /// boot without that queue and the persistent messages confirmed into it (seen once with
    /// RabbitMQ 3.10: "Recovering 1 queues" of two, the second declared 7 s before the kill);
    /// the broker-kill tests call this before they kill, so what they judge is Fjord.
    pub fn restart_cleanly(&self) {
        run(&["stop", self.dir.to_str().unwrap()]);
        self.restart();
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Declares a durable queue and publishes `messages` (correlation id, body) to it as
    /// persistent messages, waiting for the broker's confirms.
    pub fn publish(&self, queue: &str, messages: &[(Option<String>, String)]) {
        Self::runtime().block_on(async {
            let conn = Connection::connect(&self.url, ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            ch.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .unwrap();
            for (id, body) in messages {
                let mut props = BasicProperties::default().with_delivery_mode(2);
                if let Some(id) = id {
                    props = props.with_correlation_id(id.as_str().into());
                }
                ch.basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    props,
                )
                .await
                .unwrap();
            }
            ch.wait_for_confirms().await.unwrap();
            conn.close(200, "done".into()).await.unwrap();
        });
    }

    /// Takes every message of `queue` (acknowledging it): (correlation id, body), in order.
    pub fn drain(&self, queue: &str) -> Vec<(Option<String>, String)> {
        Self::runtime().block_on(async {
            let conn = Connection::connect(&self.url, ConnectionProperties::default())
                .await
                .unwrap();
            let ch = conn.create_channel().await.unwrap();
            let mut out = Vec::new();
            while let Some(m) = ch
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .unwrap()
            {
                let d = &m.delivery;
                out.push((
                    d.properties
                        .correlation_id()
                        .as_ref()
                        .map(|s| s.to_string()),
                    String::from_utf8_lossy(&d.data).into_owned(),
                ));
                ch.basic_ack(d.delivery_tag, BasicAckOptions::default())
                    .await
                    .unwrap();
            }
            conn.close(200, "done".into()).await.unwrap();
            out
        })
    }

    /// Messages in `queue`, ready and unacknowledged (rabbitmqctl's `messages`).
    pub fn depth(&self, queue: &str) -> u64 {
        let out = run(&[
            "ctl",
            self.dir.to_str().unwrap(),
            "-q",
            "list_queues",
            "name",
            "messages",
        ]);
        out.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                (f.next()? == queue).then(|| f.next()?.parse().ok())?
            })
            .next()
            .unwrap_or(0)
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
