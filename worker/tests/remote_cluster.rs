//! A JobManager (`--scheduler taskmanagers`) with TaskManagers as `fjord` processes on
//! loopback, seen through the REST API:
//!
//! - per-subtask metrics of tasks running on TaskManagers reach the JobManager with the
//!   heartbeats: the REST API and `/metrics` show the subtasks of both TaskManagers, live while
//!   the job runs and with counts that add up to the job's once it finished;
//! - rescaling in place moves a running keyed, windowed, exactly-once job from 2 to 3
//!   TaskManager slots without losing or repeating a record, and a FULL manual checkpoint of
//!   the rescaled job completes on the TaskManagers.

mod support;

use fjord_client::Client;
use fjord_client::api::{
    CheckpointTriggerRequest, CheckpointType, JobDetails, JobState, OperationState, RescaleRequest,
    SavepointRequest, SavepointState,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Process, block_on, jobmanager, taskmanager};

/// Records the source emits.
const COUNT: u64 = 20_000;

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
    let count = COUNT.to_string();
    let (jm, client, rpc) = job_manager(
        &[
            "-p",
            "2",
            "--heartbeat-interval-ms",
            "100",
            "--heartbeat-timeout-ms",
            "5000",
            "--wait-for-slots",
            "60s",
        ],
        &[
            "windowed-counts",
            "--count",
            &count,
            "--rate",
            "10000",
            "--keys",
            "8",
        ],
    );
    let tm = |id: &str| taskmanager(&rpc, id, 1, &[]);
    let a = tm("tm-a");
    let b = tm("tm-b");

    // While it runs (about 2 s at 10,000 records/s), heartbeats bring live counts of the
    // keyed subtasks on both TaskManagers. The job turns RUNNING when every TaskManager has
    // answered its deployment, and a TaskManager's first heartbeat can come before the last
    // answer (it happened under the full suite's load): wait for both.
    let live = wait_for_job(&client, "live counts", &[&jm, &a, &b], |j| {
        j.state.is_terminal()
            || (j.state == JobState::Running
                && j.vertices
                    .iter()
                    .find(|v| v.operators.iter().any(|o| o == "windows"))
                    .is_some_and(|v| v.subtasks.iter().all(|s| s.records_in > 0)))
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

/// A JobManager deploying to TaskManagers with `flags`, running `job` (see
/// [`support::jobmanager`]).
fn job_manager(flags: &[&str], job: &[&str]) -> (Process, Client, String) {
    let args: Vec<&str> = ["--scheduler", "taskmanagers"]
        .iter()
        .chain(flags)
        .chain(job)
        .copied()
        .collect();
    jobmanager(&args)
}

#[test]
fn rescaling_in_place_on_task_managers_keeps_every_window_count_exact() {
    const KEYS: u64 = 16;
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
        .map(|id| taskmanager(&rpc, id, 1, &[]))
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
    // A FULL manual checkpoint of the tasks on the TaskManagers, between periodic ones: the
    // sinks commit on it too, which the exact counts below also check.
    let request = CheckpointTriggerRequest {
        checkpoint_type: CheckpointType::Full,
        trigger_id: Some("full-1".into()),
    };
    let accepted = block_on(client.trigger_checkpoint(&job_id, &request)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let checkpoint = loop {
        let status =
            block_on(client.checkpoint_trigger_status(&job_id, &accepted.request_id)).unwrap();
        if status.status.id == OperationState::Completed {
            break status;
        }
        assert!(Instant::now() < deadline, "{status:?}\n{}", jm.stderr());
        std::thread::park_timeout(Duration::from_millis(50));
    };
    assert_eq!(checkpoint.failure(), None, "{}", jm.stderr());
    let operation = checkpoint.operation.unwrap();
    let path = operation.path.unwrap();
    assert!(
        path.starts_with(&url("checkpoints"))
            && path.ends_with(&format!("/chk-{}", operation.checkpoint_id.unwrap())),
        "{path}"
    );
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
