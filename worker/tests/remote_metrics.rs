//! Per-subtask metrics of tasks running on TaskManagers reach the JobManager with the
//! heartbeats: a JobManager (`--scheduler taskmanagers -p 2`) and two TaskManagers as `fjord`
//! processes on loopback run a bounded keyed job, and the JobManager's REST API and `/metrics`
//! show the subtasks of both TaskManagers, live while the job runs and with counts that add
//! up to the job's once it finished.

use fjord_client::Client;
use fjord_client::api::{JobDetails, JobState};
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
