//! `fjord jobmanager` as a process: it serves the REST API, runs its job, and stops on
//! SIGTERM or when the job ends with the documented exit codes.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

fn fjord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fjord"))
}

/// `fjord jobmanager` on free loopback ports (REST, and the gRPC port TaskManagers register
/// with), so tests run in parallel.
const LOOPBACK_JOBMANAGER: [&str; 7] = [
    "jobmanager",
    "--rest-address",
    "127.0.0.1",
    "--rest-port",
    "0",
    "--rpc-port",
    "0",
];

/// Starts `fjord jobmanager` on a free loopback port; returns the process, its REST root and
/// its remaining stderr.
// The child is returned to the caller, which waits on it; clippy cannot see through that.
#[allow(clippy::zombie_processes)]
fn start_jobmanager(args: &[&str]) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = fjord()
        .args(LOOPBACK_JOBMANAGER)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("the JobManager exited before listening: {status}");
        }
        if let Some(rest) = line.split("listening on ").nth(1) {
            let root = rest.split_whitespace().next().unwrap().to_string();
            return (child, root, stderr);
        }
    }
}

fn get(url: &str) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    })
}

/// Polls until the job reports `state`, failing after 20 s.
fn wait_for_state(root: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = get(&format!("{root}/v1/jobs"));
        if body.contains(&format!("\"state\":\"{state}\"")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job never reached {state}: {body}"
        );
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the JobManager did not stop within 20 s");
        }
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_cancels_the_running_job_and_exits_130() {
    // An unbounded job: word count over a socket that never closes.
    let socket = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    let (mut child, root, mut stderr) = start_jobmanager(&[
        "-p",
        "1",
        "socket-wordcount",
        "--hostname",
        "127.0.0.1",
        "--port",
        &port,
    ]);
    let (mut connection, _) = socket.accept().unwrap();
    connection.write_all(b"to be or not to be\n").unwrap();
    wait_for_state(&root, "RUNNING");
    assert_eq!(get(&format!("{root}/v1/readyz")).0, 200);
    let (status, metrics) = get(&format!("{root}/metrics"));
    assert_eq!(status, 200);
    assert!(metrics.contains("state=\"RUNNING\"} 1"), "{metrics}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(wait_exit(&mut child), Some(130));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(rest.contains("is CANCELED"), "{rest}");
}

#[test]
fn exit_on_finish_returns_the_jobs_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.txt");
    let (mut child, _root, _stderr) = start_jobmanager(&[
        "--exit-on-finish",
        "-p",
        "1",
        "transformations",
        "--count",
        "4",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(wait_exit(&mut child), Some(0));
    assert_eq!(std::fs::read_to_string(out).unwrap(), "4\n-4\n16\n-16\n");
}

#[test]
fn configuration_errors_exit_2_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fjord-conf.yaml");
    std::fs::write(
        &config,
        "\"job.name\": \"wordcount\"\n\"jobmanager.rest.port\": \"http\"\n",
    )
    .unwrap();
    let out = fjord()
        .args(["jobmanager", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("jobmanager.rest.port"), "{stderr}");

    let out = fjord()
        .args(LOOPBACK_JOBMANAGER)
        .arg("no-such-job")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no job named 'no-such-job'"));
}

#[test]
fn a_busy_rest_port_exits_3() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = fjord()
        .args([
            "jobmanager",
            "--rest-address",
            "127.0.0.1",
            "--rest-port",
            &port,
        ])
        .arg("transformations")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rest-port"));
}

#[test]
fn savepoint_stop_and_cancel_commands_drive_a_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let savepoints = format!("file://{}", dir.path().display());
    let checkpoints = format!("file://{}/checkpoints", dir.path().display());
    let (mut child, root, _stderr) = start_jobmanager(&[
        "--storage-url",
        &checkpoints,
        "-p",
        "1",
        "counting",
        "--keys",
        "3",
        "--rate",
        "500",
    ]);
    wait_for_state(&root, "RUNNING");

    // `fjord checkpoint --full` prints the checkpoint's path (no periodic checkpoints here).
    // Until every task runs, the JobManager answers that the tasks are not running yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = fjord()
            .args(["checkpoint", "--full", "-m", &root])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.success() || !stderr.contains("not running yet") {
            break out;
        }
        assert!(Instant::now() < deadline, "{stderr}");
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checkpoint = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        checkpoint.starts_with(&checkpoints) && checkpoint.contains("/chk-"),
        "{checkpoint}"
    );
    assert!(
        std::path::Path::new(checkpoint.trim_start_matches("file://"))
            .join("_metadata")
            .is_file()
    );

    // `fjord savepoint` prints the savepoint's path; the job keeps running.
    let out = fjord()
        .args(["savepoint", "-m", &root, "--directory", &savepoints])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        path.starts_with(&format!("{savepoints}/savepoint-")),
        "{path}"
    );
    assert!(
        std::path::Path::new(path.trim_start_matches("file://"))
            .join("_metadata")
            .is_file()
    );
    wait_for_state(&root, "RUNNING");

    // `fjord stop` takes a final savepoint and the job finishes.
    let out = fjord()
        .args(["stop", "-m", &root, "--directory", &savepoints])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let final_path = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_ne!(final_path, path);
    wait_for_state(&root, "FINISHED");

    // Cancel is idempotent: on a finished job it reports the final state.
    let out = fjord().args(["cancel", "-m", &root]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "FINISHED");

    // A JobManager that is not there gives a clear error.
    let out = fjord()
        .args(["savepoint", "-m", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the JobManager"));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_exit(&mut child);
}

/// The `chk-N` directories of `job` under a `file://` checkpoint storage `root`.
fn checkpoint_dirs(root: &std::path::Path, job: &str) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(root.join(job))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with("chk-"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Reads stderr lines until one contains `needle` (the stream ends first: panic with what
/// was read).
fn read_until(stderr: &mut BufReader<ChildStderr>, needle: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            panic!("stderr ended without {needle:?}:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(needle) {
            return line.clone();
        }
    }
}

#[test]
fn sigterm_suspends_the_job_keeping_its_checkpoints_for_the_next_jobmanager() {
    // A Pod eviction or node drain sends SIGTERM: the job is not over, so its checkpoints
    // stay (without checkpointing.retain-on-cancellation) and the next JobManager of the same
    // job ID resumes from the latest one.
    const JOB_ID: &str = "e71c7ed0000000000000000000000001";
    let storage = tempfile::tempdir().unwrap();
    let url = format!("file://{}", storage.path().display());
    let args = [
        "--job-id",
        JOB_ID,
        "--storage-url",
        &url,
        "--checkpoint-interval-ms",
        "100",
        "-p",
        "1",
        "counting",
        "--rate",
        "200",
    ];
    let (mut child, root, mut stderr) = start_jobmanager(&args);
    wait_for_state(&root, "RUNNING");
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint_dirs(storage.path(), "e71c7ed0000000000000000000000001").is_empty() {
        assert!(Instant::now() < deadline, "no checkpoint within 30 s");
        std::thread::park_timeout(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(wait_exit(&mut child), Some(130));
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let kept = checkpoint_dirs(storage.path(), "e71c7ed0000000000000000000000001");
    assert!(
        !kept.is_empty(),
        "SIGTERM deleted the checkpoints; stderr:\n{rest}"
    );
    let latest = kept.last().unwrap().clone();

    // The next JobManager resumes from the latest kept checkpoint.
    let (mut next, next_root, mut next_stderr) = start_jobmanager(&args);
    let line = read_until(&mut next_stderr, &format!("Resuming job {JOB_ID}"));
    assert!(line.contains(&latest), "{line} (kept: {kept:?})");
    wait_for_state(&next_root, "RUNNING");
    // The adopted checkpoint is subsumed like one of this run (one retained by default).
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpoint_dirs(storage.path(), JOB_ID).contains(&latest) {
        assert!(
            Instant::now() < deadline,
            "{latest} was never subsumed: {:?}",
            checkpoint_dirs(storage.path(), JOB_ID)
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }

    // An explicit cancel ends the job: then its checkpoints go (no retain-on-cancellation).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{next_root}/v1/jobs/{JOB_ID}/cancel"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 202);
    wait_for_state(&next_root, "CANCELED");
    assert_eq!(
        checkpoint_dirs(storage.path(), "e71c7ed0000000000000000000000001"),
        Vec::<String>::new()
    );
    Command::new("kill")
        .args(["-TERM", &next.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut next), Some(130));
}
