//! Transport security with real `fjord` processes (issue 16): a JobManager and TaskManagers
//! with mutual TLS on the control and data planes, TLS and a bearer token on the REST API.
//!
//! - a keyed job runs across two TaskManagers with certificates of the cluster's CA (records
//!   cross the TLS data plane) and finishes with every record counted;
//! - a TaskManager with a certificate of another CA, and one without TLS, are refused: they
//!   never register, and the JobManager logs the refused handshakes;
//! - REST calls without the token (or with a wrong one) get 401 with a message that says what
//!   to send; health stays open; the `fjord` CLI sends the token and trusts the CA file;
//! - neither the token nor the private keys appear in the configuration view or the logs.

mod support;

use fjord::tls::testing;
use fjord_client::api::JobState;
use fjord_client::{Client, Security};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Process, block_on, fjord, impatient_taskmanager};

const TOKEN: &str = "t0ken-for-the-security-test-3f9a";
const COUNT: u64 = 5_000;

fn internal_flags(dir: &Path, name: &str, ca: &str) -> Vec<String> {
    let files = testing::leaf(dir, ca, name);
    vec![
        "--ssl-internal".into(),
        "--ssl-internal-cert".into(),
        files.cert.display().to_string(),
        "--ssl-internal-key".into(),
        files.key.display().to_string(),
        "--ssl-internal-ca".into(),
        files.ca.display().to_string(),
    ]
}

#[test]
fn a_mutual_tls_cluster_runs_and_refuses_strangers_and_callers_without_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    testing::ca(d, "cluster-ca");
    testing::ca(d, "other-ca");
    let token_file = d.join("rest-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let jm_tls = testing::leaf(d, "cluster-ca", "jobmanager");

    let mut command = fjord();
    command
        .args([
            "jobmanager",
            "--rest-address",
            "127.0.0.1",
            "--rest-port",
            "0",
        ])
        .args(["--rpc-port", "0", "--scheduler", "taskmanagers", "-p", "2"])
        .args(["--wait-for-slots", "60s", "--heartbeat-interval-ms", "100"])
        .args(internal_flags(d, "jobmanager", "cluster-ca"))
        .arg("--ssl-rest")
        .arg("--ssl-rest-cert")
        .arg(&jm_tls.cert)
        .arg("--ssl-rest-key")
        .arg(&jm_tls.key)
        .arg("--rest-token-file")
        .arg(&token_file)
        .args(["windowed-counts", "--count", &COUNT.to_string()])
        .args(["--rate", "5000", "--keys", "8"]);
    let mut jm = Process::spawn(command);
    let rest = jm.wait_for_line("REST API listening on ");
    let rest = rest.split_whitespace().next().unwrap().to_string();
    assert!(rest.starts_with("https://"), "{rest}");
    let rpc = jm.wait_for_line("(TaskManager registration) listening on ");

    // Strangers first: a certificate of another CA, and no TLS at all.
    let mut stranger = impatient_taskmanager(
        &rpc,
        "tm-stranger",
        &internal_flags(d, "stranger", "other-ca"),
    );
    let mut plain = impatient_taskmanager(&rpc, "tm-plain", &[]);
    assert_ne!(stranger.wait_exit(), Some(0), "{}", stranger.stderr());
    assert_ne!(plain.wait_exit(), Some(0), "{}", plain.stderr());
    jm.wait_for_line("refused a connection: TLS handshake failed");
    // A TCP probe (connect, close: what a Pod's tcpSocket readiness probe does every second)
    // is no refused peer: the JobManager does not warn about it.
    for url in [rest.as_str(), rpc.as_str()] {
        let addr = url
            .split("://")
            .last()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .trim();
        drop(std::net::TcpStream::connect(addr).unwrap());
    }

    // REST: the token is required (health excepted), and only https with the CA works.
    let ca_pem = std::fs::read(&jm_tls.ca).unwrap();
    let anonymous = Client::secured(
        &rest,
        &Security {
            token: None,
            ca_pem: Some(ca_pem.clone()),
        },
    )
    .unwrap();
    let health = block_on(anonymous.health());
    assert!(health.is_ok(), "health is open: {health:?}");
    let refused = block_on(anonymous.jobs()).unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    assert_eq!(refused.code(), Some("unauthorized"), "{refused}");
    assert!(
        refused.to_string().contains("Authorization: Bearer"),
        "{refused}"
    );
    let wrong = Client::secured(
        &rest,
        &Security {
            token: Some("not-the-token".into()),
            ca_pem: Some(ca_pem.clone()),
        },
    )
    .unwrap();
    assert_eq!(block_on(wrong.jobs()).unwrap_err().status(), Some(401));
    let untrusted = Client::secured(
        &rest,
        &Security {
            token: Some(TOKEN.into()),
            ca_pem: None,
        },
    )
    .unwrap();
    assert!(
        block_on(untrusted.jobs()).is_err(),
        "a server certificate of an unknown CA is not trusted"
    );
    let client = Client::secured(
        &rest,
        &Security {
            token: Some(TOKEN.into()),
            ca_pem: Some(ca_pem),
        },
    )
    .unwrap();
    assert!(
        !format!("{client:?}").contains(TOKEN),
        "the client's Debug hides the token"
    );

    // The cluster: two TaskManagers of the cluster's CA; records cross the TLS data plane.
    let a = impatient_taskmanager(&rpc, "tm-a", &internal_flags(d, "tm-a", "cluster-ca"));
    let b = impatient_taskmanager(&rpc, "tm-b", &internal_flags(d, "tm-b", "cluster-ca"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let jobs = block_on(client.jobs()).unwrap();
        if let Some(job) = jobs.jobs.first() {
            let details = block_on(client.job(&job.id)).unwrap();
            if details.state.is_terminal() {
                break details;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the job did not finish:\n{}\n---\n{}\n---\n{}",
            jm.stderr(),
            a.stderr(),
            b.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(100));
    };
    assert_eq!(job.state, JobState::Finished, "{job:#?}\n{}", jm.stderr());
    assert!(
        !jm.stderr().contains("tls handshake eof"),
        "a TCP probe was logged as a refused connection:\n{}",
        jm.stderr()
    );
    for v in &job.vertices[1..] {
        assert_eq!(v.records_in, COUNT, "vertex {}: {job:#?}", v.id);
    }
    let windows = job
        .vertices
        .iter()
        .find(|v| v.operators.iter().any(|o| o == "windows"))
        .unwrap();
    assert!(windows.subtasks.iter().any(|s| s.bytes_in > 0), "{job:#?}");
    let tms = block_on(client.task_managers()).unwrap();
    let ids: Vec<&str> = tms.task_managers.iter().map(|t| t.id.as_str()).collect();
    assert!(
        ids.contains(&"tm-a") && ids.contains(&"tm-b") && ids.len() == 2,
        "only the cluster's TaskManagers registered: {ids:?}"
    );

    // The CLI sends the token from its file and trusts the CA file.
    let cli = fjord()
        .args(["cancel", "-m", &rest])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--ca-file")
        .arg(&jm_tls.ca)
        .output()
        .unwrap();
    let cli_err = String::from_utf8_lossy(&cli.stderr);
    assert!(
        !cli_err.contains("401") && !cli_err.contains("unauthorized"),
        "the CLI authenticated: {cli_err}"
    );
    let cli_anonymous = fjord()
        .args(["cancel", "-m", &rest, "--ca-file"])
        .arg(&jm_tls.ca)
        .env_remove("FJORD_REST_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!cli_anonymous.status.success());
    assert!(
        String::from_utf8_lossy(&cli_anonymous.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&cli_anonymous.stderr)
    );

    // No secret in the configuration view or in any log.
    let config = serde_json::to_string(&block_on(client.config()).unwrap()).unwrap();
    assert!(!config.contains(TOKEN), "{config}");
    let key_body = |path: &Path| {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let secrets = [
        TOKEN.to_string(),
        key_body(&jm_tls.key),
        key_body(&d.join("tm-a.key")),
    ];
    for (who, log) in [
        ("jobmanager", jm.stderr()),
        ("tm-a", a.stderr()),
        ("tm-b", b.stderr()),
        ("stranger", stranger.stderr()),
        ("cli", cli_err.to_string()),
    ] {
        for secret in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "{who}'s log shows a secret:\n{log}"
            );
        }
    }
}
