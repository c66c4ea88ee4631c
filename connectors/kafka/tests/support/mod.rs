//! Helpers shared by the Kafka integration tests: unique names, free ports, test
//! certificates and a broker started with extra listeners through `scripts/infra/kafka.sh`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A name no other test (or earlier run against the same broker) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a certificate signed by it for `name` (key + certificate in `name`.pem, the PEM
/// keystore layout of Kafka and of this client).
pub fn certificates(dir: &Path, names: &[(&str, &str)]) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=fjord-test-ca",
        ],
    );
    for (name, san) in names {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!("subjectAltName={san}\n"),
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
        let key = std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap();
        let crt = std::fs::read_to_string(dir.join(format!("{name}.crt"))).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), key + &crt).unwrap();
    }
}

/// Starts a broker in `dir` on `port` (PLAINTEXT) and `controller` with `kafka.sh start`, the
/// server properties `overrides` (`--override`) and further `kafka.sh` arguments `extra`
/// (such as `--add-scram`); stopped by the script's watchdog when this test process ends.
pub fn start_kafka(dir: &Path, port: u16, controller: u16, overrides: &[String], extra: &[String]) {
    // The repository root: the first ancestor of the crate (connectors/kafka, examples, ...)
    // that holds the script.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("scripts/infra/kafka.sh"))
        .find(|s| s.exists())
        .expect("scripts/infra/kafka.sh above the crate");
    let mut start = Command::new("bash");
    start
        .arg(script)
        .arg("start")
        .arg(dir)
        .args([
            "--port",
            &port.to_string(),
            "--controller-port",
            &controller.to_string(),
        ])
        .env("FJORD_E2E_OWNER_PID", std::process::id().to_string());
    for o in overrides {
        start.args(["--override", o]);
    }
    start.args(extra);
    let out = start.output().unwrap();
    assert!(
        out.status.success(),
        "kafka.sh start failed (is Kafka installed? scripts/infra/install-kafka.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
