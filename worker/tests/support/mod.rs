//! What the worker's multi-process tests share: the built `fjord` binary as child processes
//! whose stderr is collected, and a JobManager and TaskManagers on free loopback ports.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use fjord_client::Client;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a process may take to print a line or to exit.
const WAIT: Duration = Duration::from_secs(20);

/// The built `fjord` binary, without the operator's Pod variables of the environment.
pub fn fjord() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fjord"));
    for var in ["FJORD_POD_NAME", "FJORD_POD_IP", "FJORD_CONFIG"] {
        command.env_remove(var);
    }
    command
}

/// A child process whose stderr is collected by a thread; killed when dropped.
pub struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    /// Starts `command` with stdout discarded and stderr collected.
    // The child is waited for in `Drop` or by the test; clippy cannot see through that.
    #[allow(clippy::zombie_processes)]
    pub fn spawn(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Process { child, stderr }
    }

    /// What it printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 20 s) until stderr has a line containing `marker`; returns the text
    /// after the marker on that line.
    pub fn wait_for_line(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.stderr();
            if let Some(line) = text.lines().find(|l| l.contains(marker)) {
                return line.split(marker).nth(1).unwrap().trim().to_string();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread catch up with the last lines.
                std::thread::park_timeout(Duration::from_millis(50));
                panic!(
                    "exited ({status}) before printing {marker:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(Instant::now() < deadline, "no {marker:?} in:\n{text}");
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    /// Kills it with SIGKILL (no goodbye).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
    }

    /// Sends signal `name` (`TERM`, `KILL`, ...).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits at most 20 s for the exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "did not exit:\n{}",
                self.stderr()
            );
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JobManager on free loopback ports (an RPC port of 0 unless `args` name one) with `args`
/// (flags, then the job and its arguments): the process, its REST client and its RPC address.
pub fn jobmanager(args: &[&str]) -> (Process, Client, String) {
    let mut command = fjord();
    command.args([
        "jobmanager",
        "--rest-address",
        "127.0.0.1",
        "--rest-port",
        "0",
    ]);
    if !args.contains(&"--rpc-port") {
        command.args(["--rpc-port", "0"]);
    }
    command.args(args);
    let mut jm = Process::spawn(command);
    let rest = jm.wait_for_line("REST API listening on ");
    let rest = rest.split_whitespace().next().unwrap().to_string();
    let rpc = jm.wait_for_line("(TaskManager registration) listening on ");
    (jm, Client::new(&rest).unwrap(), rpc)
}

/// A TaskManager `id` with `slots` registering at `rpc`, on free loopback ports.
pub fn taskmanager(rpc: &str, id: &str, slots: u32, extra: &[&str]) -> Process {
    let mut command = fjord();
    command
        .args(["taskmanager", "--jobmanager-address", rpc, "--id", id])
        .args(["--host", "127.0.0.1", "--data-port", "0", "--rpc-port", "0"])
        .args(["--metrics-port", "0", "--slots", &slots.to_string()])
        .args(extra);
    Process::spawn(command)
}

/// A one-slot TaskManager with `flags` (TLS flags, in the security tests) that gives up
/// registering after 4 s, for tests where a refused registration is an expected outcome.
pub fn impatient_taskmanager(rpc: &str, id: &str, flags: &[String]) -> Process {
    let mut extra = vec!["--registration-timeout-ms", "4000"];
    extra.extend(flags.iter().map(String::as_str));
    taskmanager(rpc, id, 1, &extra)
}

/// Runs `future` to completion on a fresh single-threaded runtime.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}
