//! Certificate rotation in a running cluster (issue 16), with real `fjord` processes: a
//! JobManager and two TaskManagers read mutual TLS (and the JobManager its REST TLS) from one
//! directory laid out as the kubelet mounts a Secret (`tls.crt`, `tls.key`, `ca.crt` are links
//! into `..data`, a link swapped atomically). While a job runs, the directory goes through a CA
//! rotation as the operator performs it:
//!
//! 1. the old leaf, trusting the old and the new CA;
//! 2. (a broken set in between: the new certificate with the old key, which every process
//!    keeps out, warning once and naming the file;)
//! 3. a leaf of the new CA, trusting both;
//! 4. the new CA only.
//!
//! After each step every process logs the reload; then new connections use the new files: a
//! TaskManager that knows only the new CA registers, a REST client that trusts only the new CA
//! is served (and, at the end, one that trusts only the old CA is not), TaskManagers of an
//! unrelated CA are refused throughout, and the job, whose connections were made before the
//! rotation, finishes with every record counted.

mod support;

use fjord::tls::testing;
use fjord_client::api::{JobDetails, JobState};
use fjord_client::{Client, Security};
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Process, block_on, fjord, impatient_taskmanager};

const COUNT: u64 = 90_000;
/// Records per second: the first test's job runs for about 60 s, longer than the rotation
/// takes.
const RATE: u64 = 1_500;
const RELOADED: &str = "reloaded TLS certificate files";

/// Writes a version of the mounted directory (the leaf `leaf`, or the certificate of `leaf`
/// with the key of `key_of`, trusting `bundle`) and swaps `..data` to it.
fn publish(root: &Path, version: &str, leaf: &str, key_of: &str, bundle: &[&str]) {
    let mount = root.join("mount");
    let data = mount.join(format!("..{version}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(root.join(format!("{leaf}.crt")), data.join("tls.crt")).unwrap();
    std::fs::copy(root.join(format!("{key_of}.key")), data.join("tls.key")).unwrap();
    let pem: String = bundle
        .iter()
        .map(|ca| std::fs::read_to_string(root.join(format!("{ca}.crt"))).unwrap())
        .collect();
    std::fs::write(data.join("ca.crt"), pem).unwrap();
    let tmp = mount.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, mount.join("..data")).unwrap();
}

fn mount(root: &Path) -> std::path::PathBuf {
    let dir = root.join("mount");
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
    }
    dir
}

fn internal_files(cert: &Path, key: &Path, ca: &Path) -> Vec<String> {
    vec![
        "--ssl-internal".into(),
        "--ssl-internal-cert".into(),
        cert.display().to_string(),
        "--ssl-internal-key".into(),
        key.display().to_string(),
        "--ssl-internal-ca".into(),
        ca.display().to_string(),
    ]
}

fn lines(process: &Process, markers: &[&str]) -> usize {
    process
        .stderr()
        .lines()
        .filter(|l| markers.iter().all(|m| l.contains(m)))
        .count()
}

/// Waits until each process has logged `markers` on `at_least` lines.
fn wait_for_all(processes: &[(&str, &Process, usize)], markers: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (who, process, at_least) in processes {
        while lines(process, markers) < *at_least {
            assert!(
                Instant::now() < deadline,
                "{who} did not log {markers:?} {at_least} times:\n{}",
                process.stderr()
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }
}

fn client(rest: &str, ca: &Path) -> Client {
    Client::secured(
        rest,
        &Security {
            token: None,
            ca_pem: Some(std::fs::read(ca).unwrap()),
        },
    )
    .unwrap()
}

fn job(client: &Client) -> Option<JobDetails> {
    let jobs = block_on(client.jobs()).ok()?;
    let id = jobs.jobs.first()?.id.clone();
    block_on(client.job(&id)).ok()
}

fn registered(client: &Client) -> Vec<String> {
    block_on(client.task_managers())
        .unwrap()
        .task_managers
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// The certificates of a rotation in `root` (old, new and an unrelated CA; a leaf of the old
/// and of the new CA) and the mounted directory at step 0; returns the flags that point a
/// process at the directory.
fn certificates(root: &Path) -> (std::path::PathBuf, Vec<String>) {
    for ca in ["old-ca", "new-ca", "other-ca"] {
        testing::ca(root, ca);
    }
    testing::leaf(root, "old-ca", "old-leaf");
    testing::leaf(root, "new-ca", "new-leaf");
    let mount = mount(root);
    publish(root, "0", "old-leaf", "old-leaf", &["old-ca"]);
    let shared = internal_files(
        &mount.join("tls.crt"),
        &mount.join("tls.key"),
        &mount.join("ca.crt"),
    );
    (mount, shared)
}

/// A JobManager with the mounted directory for internal and REST TLS, running
/// `windowed-counts` at `parallelism` once that many slots registered: the process, its REST
/// URL and its RPC address.
fn jobmanager(
    mount: &Path,
    shared: &[String],
    parallelism: u32,
    count: u64,
) -> (Process, String, String) {
    let mut command = fjord();
    command
        .args([
            "jobmanager",
            "--rest-address",
            "127.0.0.1",
            "--rest-port",
            "0",
        ])
        .args(["--rpc-port", "0", "--scheduler", "taskmanagers"])
        .args(["-p", &parallelism.to_string()])
        .args(["--wait-for-slots", "120s", "--heartbeat-interval-ms", "100"])
        .args(shared)
        .arg("--ssl-rest")
        .arg("--ssl-rest-dir")
        .arg(mount)
        .args(["windowed-counts", "--count", &count.to_string()])
        .args(["--rate", &RATE.to_string(), "--keys", "64"]);
    let mut jm = Process::spawn(command);
    let rest = jm.wait_for_line("REST API listening on ");
    let rest = rest.split_whitespace().next().unwrap().to_string();
    let rpc = jm.wait_for_line("(TaskManager registration) listening on ");
    (jm, rest, rpc)
}

/// Waits for the job to end; asserts it finished with `count` records into every vertex after
/// the source.
fn wait_finished(client: &Client, jm: &Process, count: u64) -> JobDetails {
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let j = job(client).unwrap();
        if j.state.is_terminal() {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not finish:\n{}",
            jm.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(200));
    };
    assert_eq!(done.state, JobState::Finished, "{done:#?}\n{}", jm.stderr());
    for v in &done.vertices[1..] {
        assert_eq!(v.records_in, count, "vertex {}: {done:#?}", v.id);
    }
    done
}

#[test]
fn a_running_cluster_follows_a_ca_rotation_in_its_certificate_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (mount, shared) = certificates(root);
    let stranger_flags = |name: &str| {
        let f = testing::leaf(root, "other-ca", name);
        internal_files(&f.cert, &f.key, &f.ca)
    };
    let (jm, rest, rpc) = jobmanager(&mount, &shared, 2, COUNT);
    let a = impatient_taskmanager(&rpc, "tm-a", &shared);
    let b = impatient_taskmanager(&rpc, "tm-b", &shared);
    let old_client = client(&rest, &root.join("old-ca.crt"));
    let new_client = client(&rest, &root.join("new-ca.crt"));
    // A client without pooled connections: its call makes a new TLS connection.
    let fresh_client = |ca: &str| client(&rest, &root.join(format!("{ca}.crt")));

    // The job runs, its records crossing the TLS data plane between tm-a and tm-b.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !job(&old_client).is_some_and(|j| {
        j.state == JobState::Running && j.vertices.iter().skip(1).all(|v| v.records_in > 0)
    }) {
        assert!(
            Instant::now() < deadline,
            "the job did not start:\n{}\n---\n{}\n---\n{}",
            jm.stderr(),
            a.stderr(),
            b.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    assert!(
        block_on(new_client.jobs()).is_err(),
        "the REST certificate is of the old CA"
    );
    let all = |jm_reloads: usize, tm_reloads: usize| {
        wait_for_all(
            &[
                ("jobmanager", &jm, jm_reloads),
                ("tm-a", &a, tm_reloads),
                ("tm-b", &b, tm_reloads),
            ],
            &[RELOADED, "internal"],
        )
    };

    // Step 1: trust both CAs.
    publish(root, "1", "old-leaf", "old-leaf", &["old-ca", "new-ca"]);
    all(1, 1);

    // A broken set (the new certificate with the old key): kept out, one warning naming the
    // file, and the processes keep serving with step 1.
    publish(
        root,
        "broken",
        "new-leaf",
        "old-leaf",
        &["old-ca", "new-ca"],
    );
    let broken = ["cannot be used", "tls.key", "does not fit", "internal"];
    wait_for_all(
        &[("jobmanager", &jm, 1), ("tm-a", &a, 1), ("tm-b", &b, 1)],
        &broken,
    );
    assert!(
        block_on(fresh_client("old-ca").jobs()).is_ok(),
        "a new connection is still served with the old leaf"
    );

    // Step 2: the leaf of the new CA.
    publish(root, "2", "new-leaf", "new-leaf", &["old-ca", "new-ca"]);
    all(2, 2);
    assert_eq!(lines(&jm, &broken), 1, "one warning per broken set");
    assert!(
        block_on(fresh_client("new-ca").jobs()).is_ok(),
        "a client that trusts only the new CA is served"
    );
    assert!(
        block_on(fresh_client("old-ca").jobs()).is_err(),
        "a new connection of a client that trusts only the old CA meets the new leaf"
    );
    // A TaskManager that knows only the new CA registers (its client handshake trusts the
    // JobManager's new leaf, the JobManager's bundle trusts its certificate).
    let fresh = testing::leaf(root, "new-ca", "tm-new");
    let c = impatient_taskmanager(
        &rpc,
        "tm-new",
        &internal_files(&fresh.cert, &fresh.key, &fresh.ca),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !registered(&new_client).iter().any(|id| id == "tm-new") {
        assert!(
            Instant::now() < deadline,
            "tm-new did not register:\n{}\n---\n{}",
            c.stderr(),
            jm.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    let mut stranger = impatient_taskmanager(&rpc, "tm-stranger", &stranger_flags("stranger"));
    assert_ne!(stranger.wait_exit(), Some(0), "{}", stranger.stderr());

    // Step 3: the old CA dropped.
    publish(root, "3", "new-leaf", "new-leaf", &["new-ca"]);
    all(3, 3);
    assert!(block_on(fresh_client("new-ca").jobs()).is_ok());
    assert!(block_on(fresh_client("old-ca").jobs()).is_err());
    let stale = testing::leaf(root, "old-ca", "tm-stale");
    let mut stale_tm = impatient_taskmanager(
        &rpc,
        "tm-stale",
        &internal_files(&stale.cert, &stale.key, &root.join("old-ca.crt")),
    );
    let mut late_stranger =
        impatient_taskmanager(&rpc, "tm-stranger-2", &stranger_flags("stranger-2"));
    assert_ne!(stale_tm.wait_exit(), Some(0), "{}", stale_tm.stderr());
    assert_ne!(
        late_stranger.wait_exit(),
        Some(0),
        "{}",
        late_stranger.stderr()
    );
    let ids = registered(&new_client);
    assert!(
        !ids.iter().any(|id| id.starts_with("tm-st")),
        "no stranger or stale TaskManager registered: {ids:?}"
    );

    // The rotation happened while the job ran; it finishes with every record counted.
    let mid = job(&new_client).unwrap();
    assert_eq!(
        mid.state,
        JobState::Running,
        "the rotation must happen mid-run: {mid:#?}"
    );
    wait_finished(&new_client, &jm, COUNT);

    // Keys stay out of every log, the warnings included.
    let key_body = |name: &str| {
        std::fs::read_to_string(root.join(format!("{name}.key")))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .to_string()
    };
    for (who, log) in [
        ("jobmanager", jm.stderr()),
        ("tm-a", a.stderr()),
        ("tm-b", b.stderr()),
        ("tm-new", c.stderr()),
    ] {
        for key in ["old-leaf", "new-leaf", "tm-new"] {
            assert!(
                !log.contains(&key_body(key)),
                "{who}'s log shows a key:\n{log}"
            );
        }
    }
}

/// The data plane with reloaded files: the job is deployed only after the switch to the new
/// CA's leaf, across two TaskManagers that reloaded their files (step 0 → 2) and one that knows
/// only the new CA, so every data connection between them is made with the new material; the
/// old CA is dropped while it runs.
#[test]
fn a_job_deployed_after_the_switch_exchanges_records_across_reloaded_and_new_taskmanagers() {
    const SHORT: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (mount, shared) = certificates(root);
    let (jm, rest, rpc) = jobmanager(&mount, &shared, 3, SHORT);
    let a = impatient_taskmanager(&rpc, "tm-a", &shared);
    let b = impatient_taskmanager(&rpc, "tm-b", &shared);
    let all = |n: usize| {
        wait_for_all(
            &[("jobmanager", &jm, n), ("tm-a", &a, n), ("tm-b", &b, n)],
            &[RELOADED, "internal"],
        )
    };
    // Both have loaded step 0 (they registered) before the files change.
    let old_client = client(&rest, &root.join("old-ca.crt"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while registered(&old_client).len() < 2 {
        assert!(Instant::now() < deadline, "tm-a and tm-b did not register");
        std::thread::park_timeout(Duration::from_millis(100));
    }
    publish(root, "1", "old-leaf", "old-leaf", &["old-ca", "new-ca"]);
    all(1);
    publish(root, "2", "new-leaf", "new-leaf", &["old-ca", "new-ca"]);
    all(2);
    let fresh = testing::leaf(root, "new-ca", "tm-new");
    let c = impatient_taskmanager(
        &rpc,
        "tm-new",
        &internal_files(&fresh.cert, &fresh.key, &fresh.ca),
    );
    let client = client(&rest, &root.join("new-ca.crt"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !job(&client).is_some_and(|j| {
        j.state == JobState::Running && j.vertices.iter().skip(1).all(|v| v.records_in > 0)
    }) {
        assert!(
            Instant::now() < deadline,
            "the job did not start:\n{}\n---\n{}",
            jm.stderr(),
            c.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(100));
    }
    publish(root, "3", "new-leaf", "new-leaf", &["new-ca"]);
    all(3);
    let done = wait_finished(&client, &jm, SHORT);
    let windows = done
        .vertices
        .iter()
        .find(|v| v.operators.iter().any(|o| o == "windows"))
        .unwrap();
    assert_eq!(windows.subtasks.len(), 3, "{done:#?}");
    assert!(
        windows.subtasks.iter().any(|s| s.bytes_in > 0),
        "records crossed the data plane: {done:#?}"
    );
    let ids = registered(&client);
    assert!(
        ["tm-a", "tm-b", "tm-new"]
            .iter()
            .all(|id| ids.iter().any(|i| i == id)),
        "{ids:?}"
    );
}
