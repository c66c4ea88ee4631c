//! The custom worker's SQL script with its user-defined functions on a JobManager and a
//! TaskManager of the same binary (as a StreamJob with this binary's image runs it): both
//! roles plan the script with the functions `main_with_functions` installed, and the
//! TaskManager prints the rows `udf_sql_cli.rs` expects from the local run.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A role of `my-worker`, killed when dropped.
struct Role(Child);

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a role; its stdout and stderr lines arrive on the two receivers (keep both: a
/// dropped one closes the pipe, and the role dies writing to it).
fn spawn(args: &[&str]) -> (Role, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_my-worker"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("FJORD_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("my-worker starts");
    fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    (Role(child), out, err)
}

/// Waits (at most 60 s) for a line containing `marker`; returns the text after it.
fn wait_for(rx: &mpsc::Receiver<String>, marker: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some((_, after)) = line.split_once(marker) {
                    return after.trim().to_string();
                }
            }
            Err(e) => panic!("no line with {marker:?} within 60 s ({e})"),
        }
    }
}

#[test]
fn a_jobmanager_and_a_taskmanager_of_the_binary_run_the_script_with_its_functions() {
    let (_jm, _jm_out, jm_err) = spawn(&[
        "jobmanager",
        "--rest-address",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--rpc-port",
        "0",
        // Deploy the subtasks to TaskManagers, as the operator's clusters do.
        "--scheduler",
        "taskmanagers",
        "--wait-for-slots",
        "60s",
        "sql",
        "--file",
        "examples/custom-worker/sql/readings.sql",
    ]);
    let rpc = wait_for(&jm_err, "(TaskManager registration) listening on ");
    wait_for(&jm_err, "Waiting up to");
    let (_tm, tm_out, _tm_err) = spawn(&[
        "taskmanager",
        "--jobmanager-address",
        &rpc,
        "--id",
        "tm-udf",
        "--host",
        "127.0.0.1",
        "--data-port",
        "0",
        "--rpc-port",
        "0",
        "--metrics-port",
        "0",
        "--slots",
        "2",
    ]);
    // Eleven rows in all (three windows, eight tags); collect them, bounded in count and time.
    let mut rows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows.len() < 11 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = tm_out
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("only {rows:?} within 60 s ({e})"));
        if line.starts_with("windows> ") || line.starts_with("tags> ") {
            rows.push(line);
        }
    }
    rows.sort();
    assert_eq!(
        rows,
        [
            "tags> +I[cellar, inside, 51.8]",
            "tags> +I[cellar, null, 53.6]",
            "tags> +I[roof, north, 70.7]",
            "tags> +I[roof, north, 73.4]",
            "tags> +I[roof, north, null]",
            "tags> +I[roof, outside, 70.7]",
            "tags> +I[roof, outside, 73.4]",
            "tags> +I[roof, outside, null]",
            "windows> +I[2024-01-01T00:00, cellar, 53.6, 0.0]",
            "windows> +I[2024-01-01T00:00, roof, 73.4, 1.5]",
            "windows> +I[2024-01-01T00:00:10, cellar, 51.8, 0.0]",
        ]
    );
}
