//! A JobManager (`--scheduler taskmanagers`) with TaskManagers as `fjord` processes on
//! loopback, seen through the REST API:
//!
//! - per-subtask metrics of tasks running on TaskManagers reach the JobManager with the
//!   heartbeats: the REST API and `/metrics` show the subtasks of both TaskManagers, live while
//!   the job runs and with counts that add up to the job's once it finished;
//! - rescaling in place moves a running keyed, windowed, exactly-once job from 2 to 3
//!   TaskManager slots without losing or repeating a record.

use fjord_client::Client;
use fjord_client::api::{JobDetails, JobState, RescaleRequest, SavepointRequest, SavepointState};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records the source emits.
const COUNT: u64 = 20_000;

fn fjord() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fjord"));
    for var in ["FJORD_POD_NAME", "FJORD_POD_IP", "FJORD_CONFIG"] {
        command.env_remove(var);
    }
    command
}

/// A child process whose stderr is collected; killed when dropped.
struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    #[allow(clippy::zombie_processes)]
    fn spawn(mut command: Command) -> Process {
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

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 30 s) for a stderr line containing `marker`; returns the text after it.
    fn wait_for_line(&mut self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.stderr();
            if let Some(line) = text.lines().find(|l| l.contains(marker)) {
                return line.split(marker).nth(1).unwrap().trim().to_string();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::park_timeout(Duration::from_millis(50));
                panic!("exited ({status}) before {marker:?}:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no {marker:?} in:\n{text}");
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

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Polls the job until `done` holds (at most 60 s).
fn wait_for_job(
    client: &Client,
    what: &str,
    processes: &[&Process],
    done: impl Fn(&JobDetails) -> bool,
) -> JobDetails {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = block_on(client.jobs()).unwrap();
        if let Some(job) = jobs.jobs.first() {
            let details = block_on(client.job(&job.id)).unwrap();
            if done(&details) {
                return details;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = processes.iter().map(|p| p.stderr()).collect();
                panic!(
                    "{what} not within 60 s: {details:#?}\n{}",
                    logs.join("\n---\n")
                );
            }
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn subtask_metrics_of_task_managers_show_on_the_job_manager() {
    let mut jm = Process::spawn({
        let mut c = fjord();
        c.args([
            "jobmanager",
            "--rest-address",
            "127.0.0.1",
            "--rest-port",
            "0",
        ])
        .args(["--rpc-port", "0", "--scheduler", "taskmanagers", "-p", "2"])
        .args([
            "--heartbeat-interval-ms",
            "100",
            "--heartbeat-timeout-ms",
            "5000",
        ])
        .args(["--wait-for-slots", "60s", "windowed-counts"])
        .args([
            "--count",
            &COUNT.to_string(),
            "--rate",
            "10000",
            "--keys",
            "8",
        ]);
        c
    });
    let rest = jm.wait_for_line("REST API listening on ");
    let rest = rest.split_whitespace().next().unwrap().to_string();
    let rpc = jm.wait_for_line("(TaskManager registration) listening on ");
    let client = Client::new(&rest).unwrap();
    let tm = |id: &str| {
        let mut c = fjord();
        c.args(["taskmanager", "--jobmanager-address", &rpc, "--id", id])
            .args(["--host", "127.0.0.1", "--data-port", "0", "--rpc-port", "0"])
            .args(["--metrics-port", "0", "--slots", "1"]);
        Process::spawn(c)
    };
    let a = tm("tm-a");
    let b = tm("tm-b");

    // While it runs (about 2 s at 10,000 records/s), heartbeats bring live counts of the
    // keyed subtasks on both TaskManagers.
    let live = wait_for_job(&client, "live counts", &[&jm, &a, &b], |j| {
        j.state.is_terminal()
            || j.vertices
                .iter()
                .find(|v| v.operators.iter().any(|o| o == "windows"))
                .is_some_and(|v| v.subtasks.iter().all(|s| s.records_in > 0))
    });
    assert_eq!(
        live.state,
        JobState::Running,
        "ended before a heartbeat: {live:#?}"
    );
    assert!(live.vertices[0].records_out < COUNT, "{live:#?}");

    let job = wait_for_job(&client, "the job to finish", &[&jm, &a, &b], |j| {
        j.state.is_terminal()
    });
    assert_eq!(job.state, JobState::Finished, "{job:#?}\n{}", jm.stderr());
    let source = job
        .vertices
        .iter()
        .find(|v| v.operators.iter().any(|o| o.contains("events")))
        .unwrap_or_else(|| panic!("no source vertex: {job:#?}"));
    let windows = job
        .vertices
        .iter()
        .find(|v| v.operators.iter().any(|o| o == "windows"))
        .unwrap_or_else(|| panic!("no windows vertex: {job:#?}"));
    assert_eq!(windows.parallelism, 2);
    // Every record the source emitted was received downstream and reached the keyed vertex.
    assert_eq!(source.records_out, COUNT, "{job:#?}");
    for v in &job.vertices[1..] {
        assert_eq!(v.records_in, COUNT, "vertex {}: {job:#?}", v.id);
    }
    // Its two subtasks ran on different TaskManagers (one slot each) and both reported.
    for s in &windows.subtasks {
        assert!(
            s.records_in > 0,
            "subtask {} reported nothing: {job:#?}",
            s.subtask
        );
        assert!(s.busy_ms + s.idle_ms > 0, "{job:#?}");
    }
    // Across processes, bytes move over the network: one of the keyed subtasks is on the
    // other TaskManager than the source.
    assert!(windows.subtasks.iter().any(|s| s.bytes_in > 0), "{job:#?}");
    assert!(source.subtasks[0].bytes_out > 0, "{job:#?}");

    // /metrics has the same numbers.
    let metrics = block_on(client.metrics()).unwrap();
    let sum = |metric: &str, vertex: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .filter(|l| l.contains(&format!("vertex=\"{vertex}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let w = windows.id.to_string();
    assert_eq!(sum("fjord_task_records_out_total", "0"), COUNT, "{metrics}");
    assert_eq!(sum("fjord_task_records_in_total", &w), COUNT, "{metrics}");
}

/// The job manager, its REST client and RPC address.
fn job_manager(extra: &[&str], job: &[&str]) -> (Process, Client, String) {
    let mut jm = Process::spawn({
        let mut c = fjord();
        c.args([
            "jobmanager",
            "--rest-address",
            "127.0.0.1",
            "--rest-port",
            "0",
        ])
        .args(["--rpc-port", "0", "--scheduler", "taskmanagers"])
        .args(extra)
        .args(job);
        c
    });
    let rest = jm.wait_for_line("REST API listening on ");
    let rest = rest.split_whitespace().next().unwrap().to_string();
    let rpc = jm.wait_for_line("(TaskManager registration) listening on ");
    (jm, Client::new(&rest).unwrap(), rpc)
}

fn task_manager(rpc: &str, id: &str) -> Process {
    let mut c = fjord();
    c.args(["taskmanager", "--jobmanager-address", rpc, "--id", id])
        .args(["--host", "127.0.0.1", "--data-port", "0", "--rpc-port", "0"])
        .args(["--metrics-port", "0", "--slots", "1"]);
    Process::spawn(c)
}

#[test]
fn rescaling_in_place_on_task_managers_keeps_every_window_count_exact() {
    const KEYS: u64 = 8;
    const WINDOW_MS: u64 = 400;
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("file://{}", dir.path().join(name).display());
    let output = url("out");
    let (jm, client, rpc) = job_manager(
        &[
            "-p",
            "2",
            "--storage-url",
            &url("checkpoints"),
            "--checkpoint-interval-ms",
            "300",
            "--savepoint-dir",
            &url("savepoints"),
            "--heartbeat-interval-ms",
            "100",
        ],
        &[
            "windowed-counts",
            "--rate",
            "4000",
            "--keys",
            &KEYS.to_string(),
            "--window-ms",
            &WINDOW_MS.to_string(),
            "--output",
            &output,
        ],
    );
    let tms: Vec<Process> = ["tm-a", "tm-b", "tm-c"]
        .iter()
        .map(|id| task_manager(&rpc, id))
        .collect();
    let all: Vec<&Process> = std::iter::once(&jm).chain(tms.iter()).collect();
    let windows_of = |j: &JobDetails| {
        j.vertices
            .iter()
            .find(|v| v.operators.iter().any(|o| o == "windows"))
            .cloned()
    };
    // About half a second of input before the rescale and as much after it, so that windows
    // complete on both sides of it.
    let running = wait_for_job(&client, "two windows subtasks with records", &all, |j| {
        windows_of(j)
            .is_some_and(|w| w.subtasks.iter().all(|s| s.records_in > 0) && w.records_in >= 2_000)
    });
    assert_eq!(windows_of(&running).unwrap().parallelism, 2);
    let job_id = running.id.clone();
    let accepted = block_on(client.rescale(
        &job_id,
        &RescaleRequest {
            parallelism: 3,
            trigger_id: Some("to-three".into()),
        },
    ))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        let status = block_on(client.rescale_status(&job_id, &accepted.trigger_id)).unwrap();
        if status.state != SavepointState::InProgress {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "rescale not done: {status:?}\n{}",
            jm.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(50));
    };
    assert_eq!(
        status.state,
        SavepointState::Completed,
        "{status:?}\n{}",
        jm.stderr()
    );
    // The job runs on with three windows subtasks, all of them receiving records.
    let rescaled = wait_for_job(&client, "three windows subtasks with records", &all, |j| {
        windows_of(j)
            .is_some_and(|w| w.parallelism == 3 && w.subtasks.iter().all(|s| s.records_in > 0))
    });
    assert_eq!(rescaled.id, job_id, "the job keeps its ID");
    assert_eq!(rescaled.state, JobState::Running);
    let stop = block_on(client.stop_with_savepoint(
        &job_id,
        &SavepointRequest {
            trigger_id: "stop".into(),
            directory: None,
            drain: false,
        },
    ))
    .unwrap();
    let done = wait_for_job(&client, "the job to stop", &all, |j| j.state.is_terminal());
    assert_eq!(done.state, JobState::Finished, "{done:#?}\n{}", jm.stderr());
    let stopped = block_on(client.savepoint_status(&job_id, &stop.trigger_id)).unwrap();
    assert_eq!(stopped.state, SavepointState::Completed, "{stopped:?}");

    // Every committed window holds exactly its records (record i has key i % KEYS and event
    // time i ms), each (key, window) once, and no window is missing before the last one: no
    // record was lost or counted twice across the rescale.
    let lines = fjord::sinks::ExactlyOnceFileSink::read_committed(
        &output,
        &fjord::storage::StorageOptions::default(),
    )
    .unwrap();
    let mut windows: BTreeMap<(String, u64), u64> = BTreeMap::new();
    for line in &lines {
        let fields: Vec<&str> = line.trim_matches(['(', ')']).split(',').collect();
        let (key, start, count) = (
            fields[0].to_string(),
            fields[1].parse().unwrap(),
            fields[2].parse().unwrap(),
        );
        if windows.insert((key, start), count).is_some() {
            let files: Vec<String> = std::fs::read_dir(dir.path().join("out"))
                .unwrap()
                .map(|e| {
                    let p = e.unwrap().path();
                    format!(
                        "{}: {}",
                        p.display(),
                        std::fs::read_to_string(&p)
                            .unwrap_or_default()
                            .replace('\n', " ")
                    )
                })
                .collect();
            panic!(
                "{line} written twice:\n{}\n{}",
                files.join("\n"),
                jm.stderr()
            );
        }
    }
    let last = windows.keys().map(|(_, s)| *s).max().unwrap();
    assert!(last >= 2 * WINDOW_MS, "too few windows: {lines:?}");
    for start in (0..=last).step_by(WINDOW_MS as usize) {
        for key in 0..KEYS {
            let count = windows.get(&(format!("key-{key}"), start));
            assert_eq!(
                count,
                Some(&(WINDOW_MS / KEYS)),
                "window {start} of key-{key}"
            );
        }
    }
}
