//! A session JobManager (`fjord jobmanager --session --scheduler taskmanagers`) with two
//! TaskManagers as `fjord` processes on loopback, driven through the REST API:
//!
//! - two jobs submitted with `POST /v1/jobs` run at once on the shared TaskManagers, each
//!   with its own job ID and its checkpoints in its own directory `<storage>/<job id>/`;
//! - the slots they hold are accounted for: a third job that needs more slots than are free is
//!   refused (409 `not_enough_slots`), a second submission of a running job too (`job_exists`);
//! - cancelling one job ends only that one and frees its slots;
//! - stop-with-savepoint of the other, then a submission restoring the savepoint, carries its
//!   keyed state over (its counts continue instead of starting from 1);
//! - an application-mode JobManager refuses submissions (`not_a_session`);
//! - SIGTERM suspends a session's jobs and keeps their checkpoints: a job submitted again under
//!   its ID to the next session JobManager resumes from its latest checkpoint (what the
//!   operator does when a StreamCluster's JobManager Pod restarted).

mod support;

use fjord_client::api::{JobDetails, JobState, SavepointRequest, SavepointState, SubmitJobRequest};
use fjord_client::{Client, ClientError};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Process, block_on, jobmanager, taskmanager};

/// Polls `check` every 50 ms until it returns `Some` (at most 60 s; the processes' logs on
/// failure).
fn wait_for<T>(what: &str, processes: &[&Process], mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes.iter().map(|p| p.stderr()).collect();
            panic!("{what}: not within 60 s\n{}", logs.join("\n---\n"));
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn job(client: &Client, id: &str) -> JobDetails {
    block_on(client.job(id)).unwrap()
}

fn counting(output: &str) -> SubmitJobRequest {
    SubmitJobRequest {
        job: "counting".into(),
        args: ["--keys", "4", "--rate", "200", "--output", output]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        parallelism: Some(1),
        ..Default::default()
    }
}

/// The `(key,count)` lines of a text sink's output (a file, or a directory of part files).
fn counts(path: &Path) -> Vec<(String, u64)> {
    let mut files = vec![];
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            files.push(e.unwrap().path());
        }
    } else {
        files.push(path.to_path_buf());
    }
    let mut out = vec![];
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let (key, count) = line
                .trim_matches(['(', ')'])
                .split_once(',')
                .unwrap_or_else(|| panic!("not a (key,count) line: {line:?}"));
            out.push((key.to_string(), count.parse().unwrap()));
        }
    }
    out
}

fn api_error(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, code, .. } => (status, code),
        other => panic!("not an API error: {other:?}"),
    }
}

#[test]
fn jobs_of_a_session_share_task_managers_and_stop_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = |name: &str| format!("file://{}", dir.path().join(name).display());
    let (jm, client, rpc) = jobmanager(&[
        "--session",
        "--scheduler",
        "taskmanagers",
        "--storage-url",
        &url("checkpoints"),
        "--checkpoint-interval-ms",
        "200",
        "--savepoint-dir",
        &url("savepoints"),
        "--heartbeat-interval-ms",
        "100",
    ]);
    let a = taskmanager(&rpc, "tm-a", 2, &[]);
    let b = taskmanager(&rpc, "tm-b", 2, &[]);
    let all = [&jm, &a, &b];
    wait_for("4 slots offered", &all, || {
        (block_on(client.task_managers()).unwrap().slots_available == 4).then_some(())
    });
    assert_eq!(block_on(client.ready()).unwrap().status, "ready");
    assert!(block_on(client.jobs()).unwrap().jobs.is_empty());

    // Two jobs at once: counting (1 slot) and windowed-counts at parallelism 2 (2 slots).
    let out = |name: &str| dir.path().join(name).display().to_string();
    let first = block_on(client.submit_job(&counting(&out("counts-1")))).unwrap();
    assert_eq!(first.name, "counting");
    let windowed = SubmitJobRequest {
        job: "windowed-counts".into(),
        args: ["--rate", "1000", "--keys", "8"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        parallelism: Some(2),
        ..Default::default()
    };
    let second = block_on(client.submit_job(&windowed)).unwrap();
    assert_ne!(first.id, second.id);
    for id in [&first.id, &second.id] {
        wait_for("both jobs RUNNING", &all, || {
            (job(&client, id).state == JobState::Running).then_some(())
        });
    }
    let listed = block_on(client.jobs()).unwrap().jobs;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(block_on(client.task_managers()).unwrap().slots_in_use, 3);

    // One slot is left: a job needing two is refused, and so is the running job again.
    let mut too_big = windowed.clone();
    too_big.args.push("--count".into());
    too_big.args.push("10".into());
    let refused = api_error(block_on(client.submit_job(&too_big)).unwrap_err());
    assert_eq!(refused, (409, "not_enough_slots".into()));
    let again = api_error(block_on(client.submit_job(&counting(&out("counts-1")))).unwrap_err());
    assert_eq!(again, (409, "job_exists".into()));
    let unknown = SubmitJobRequest {
        job: "no-such-job".into(),
        ..Default::default()
    };
    assert_eq!(
        api_error(block_on(client.submit_job(&unknown)).unwrap_err()).0,
        400
    );

    // Each job checkpoints into its own directory.
    for id in [&first.id, &second.id] {
        wait_for("a completed checkpoint of each job", &all, || {
            block_on(client.latest_checkpoint(id))
                .unwrap()
                .checkpoint
                .filter(|c| c.path.contains(&format!("/checkpoints/{id}/")))
        });
    }

    // Cancelling the windowed job ends only that one and frees its two slots.
    block_on(client.cancel(&second.id)).unwrap();
    wait_for("the windowed job CANCELED", &all, || {
        (job(&client, &second.id).state == JobState::Canceled).then_some(())
    });
    assert_eq!(job(&client, &first.id).state, JobState::Running);
    wait_for("its slots free", &all, || {
        (block_on(client.task_managers()).unwrap().slots_in_use == 1).then_some(())
    });

    // Stop the counting job with a savepoint, and run it again from there under a new ID:
    // its per-key counts continue.
    let stop = block_on(client.stop_with_savepoint(
        &first.id,
        &SavepointRequest {
            trigger_id: "upgrade".into(),
            directory: None,
            drain: false,
        },
    ))
    .unwrap();
    let savepoint = wait_for("the savepoint", &all, || {
        let status = block_on(client.savepoint_status(&first.id, &stop.trigger_id)).unwrap();
        match status.state {
            SavepointState::InProgress => None,
            _ => Some(status),
        }
    });
    assert_eq!(savepoint.state, SavepointState::Completed, "{savepoint:?}");
    let path = savepoint.path.clone().unwrap();
    wait_for("the counting job ended", &all, || {
        job(&client, &first.id).state.is_terminal().then_some(())
    });
    let before = counts(&dir.path().join("counts-1"));
    assert!(!before.is_empty());
    let mut restored = counting(&out("counts-2"));
    restored.restore_path = Some(path);
    restored.job_id = Some("0123456789abcdef0123456789abcdef".into());
    let resumed = block_on(client.submit_job(&restored)).unwrap();
    assert_eq!(resumed.id, "0123456789abcdef0123456789abcdef");
    wait_for("the restored job RUNNING", &all, || {
        (job(&client, &resumed.id).state == JobState::Running).then_some(())
    });
    wait_for("a checkpoint of the restored job", &all, || {
        block_on(client.latest_checkpoint(&resumed.id))
            .unwrap()
            .checkpoint
    });
    block_on(client.cancel(&resumed.id)).unwrap();
    wait_for("the restored job CANCELED", &all, || {
        job(&client, &resumed.id).state.is_terminal().then_some(())
    });
    let last_before: BTreeMap<String, u64> = before.into_iter().collect();
    let after = counts(&dir.path().join("counts-2"));
    assert!(!after.is_empty(), "{}", jm.stderr());
    let mut first_after: BTreeMap<String, u64> = BTreeMap::new();
    for (key, count) in after {
        first_after.entry(key).or_insert(count);
    }
    for (key, count) in &first_after {
        let stopped_at = last_before[key];
        assert_eq!(
            *count,
            stopped_at + 1,
            "{key} continues from its count at the savepoint"
        );
    }
    // Every job is listed with its final state.
    let states: BTreeMap<String, JobState> = block_on(client.jobs())
        .unwrap()
        .jobs
        .into_iter()
        .map(|j| (j.id, j.state))
        .collect();
    assert_eq!(states.len(), 3, "{states:?}");
    assert_eq!(states[&second.id], JobState::Canceled);
}

#[test]
fn an_application_job_manager_refuses_submissions() {
    let (_jm, client, _rpc) = jobmanager(&["counting", "--count", "10", "--rate", "1000"]);
    let refused =
        api_error(block_on(client.submit_job(&counting("/nonexistent/out"))).unwrap_err());
    assert_eq!(refused, (409, "not_a_session".into()));
}

/// A free loopback port (bound and released; the JobManagers below reuse it in turn).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_job_submitted_again_to_a_restarted_session_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}", dir.path().join("checkpoints").display());
    let rpc_port = free_port().to_string();
    let session = |rpc_port: &str| {
        jobmanager(&[
            "--session",
            "--scheduler",
            "taskmanagers",
            "--rpc-port",
            rpc_port,
            "--storage-url",
            &storage,
            "--checkpoint-interval-ms",
            "200",
            "--heartbeat-interval-ms",
            "100",
            "--heartbeat-timeout-ms",
            "2000",
        ])
    };
    let (mut jm, client, rpc) = session(&rpc_port);
    let tm = taskmanager(&rpc, "tm-a", 1, &[]);
    wait_for("a slot", &[&jm, &tm], || {
        (block_on(client.task_managers()).unwrap().slots_available == 1).then_some(())
    });
    let out = |name: &str| dir.path().join(name).display().to_string();
    let mut request = counting(&out("counts-1"));
    request.job_id = Some("00000000000000000000000000000abc".into());
    let submitted = block_on(client.submit_job(&request)).unwrap();
    wait_for("a completed checkpoint", &[&jm, &tm], || {
        block_on(client.latest_checkpoint(&submitted.id))
            .unwrap()
            .checkpoint
            .filter(|c| c.id >= 2)
    });

    // SIGTERM: the session suspends its job (its checkpoints stay) and exits 0.
    jm.signal("TERM");
    assert_eq!(jm.wait_exit(), Some(0), "{}", jm.stderr());
    let before = counts(&dir.path().join("counts-1"));
    assert!(!before.is_empty());

    // A new session JobManager on the same ports and storage (what a restarted Pod is); the
    // TaskManager registers with it, and the job submitted again under its ID resumes.
    let (jm2, client2, _) = session(&rpc_port);
    wait_for("the TaskManager registered again", &[&jm2, &tm], || {
        (block_on(client2.task_managers()).unwrap().slots_available == 1).then_some(())
    });
    request.args[5] = out("counts-2");
    let again = block_on(client2.submit_job(&request)).unwrap();
    assert_eq!(again.id, submitted.id);
    wait_for("the job RUNNING again", &[&jm2, &tm], || {
        (job(&client2, &again.id).state == JobState::Running).then_some(())
    });
    assert!(
        jm2.stderr()
            .contains("from its latest completed checkpoint"),
        "{}",
        jm2.stderr()
    );
    wait_for("counts after the restart", &[&jm2, &tm], || {
        let path = dir.path().join("counts-2");
        (path.exists() && counts(&path).len() >= 4).then_some(())
    });
    block_on(client2.cancel(&again.id)).unwrap();
    wait_for("the job CANCELED", &[&jm2, &tm], || {
        job(&client2, &again.id).state.is_terminal().then_some(())
    });
    let last_before: BTreeMap<String, u64> = before.into_iter().collect();
    let mut first_after: BTreeMap<String, u64> = BTreeMap::new();
    for (key, count) in counts(&dir.path().join("counts-2")) {
        first_after.entry(key).or_insert(count);
    }
    for (key, first) in &first_after {
        // From the checkpoint: not from 1, and at most one past what was printed before
        // (records after the checkpoint are printed again: the text sink is at-least-once).
        assert!(
            *first > 1 && *first <= last_before[key] + 1,
            "{key}: resumed at {first}, printed up to {} before",
            last_before[key]
        );
    }
}
