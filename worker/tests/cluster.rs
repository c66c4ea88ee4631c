//! A JobManager and TaskManagers as separate `fjord` processes on loopback: registration,
//! slot offers, heartbeats, loss detection after SIGKILL, re-registration after a JobManager
//! restart, and `jobmanager.wait-for-slots`, with the embedded scheduler (subtasks in the
//! JobManager; `remote_cluster.rs` runs them on TaskManagers). The version refusal is tested
//! through the service in `jobmanager::rpc`.

mod support;

use fjord_client::Client;
use fjord_client::api::{TaskManagerList, TaskManagerState};
use std::time::{Duration, Instant};
use support::{Process, block_on, taskmanager};

const HEARTBEAT: [&str; 4] = [
    "--heartbeat-interval-ms",
    "100",
    "--heartbeat-timeout-ms",
    "1000",
];
const TIMEOUT: Duration = Duration::from_millis(1000);

/// A JobManager with a 1 s heartbeat timeout (see [`support::jobmanager`]).
fn jobmanager(args: &[&str]) -> (Process, Client, String) {
    let all: Vec<&str> = HEARTBEAT.iter().chain(args).copied().collect();
    support::jobmanager(&all)
}

/// Polls `GET /v1/taskmanagers` until `done` holds, for at most `limit`; returns the list
/// and how long it took.
fn wait_for_task_managers(
    client: &Client,
    limit: Duration,
    what: &str,
    done: impl Fn(&TaskManagerList) -> bool,
) -> (TaskManagerList, Duration) {
    let started = Instant::now();
    loop {
        let list = block_on(client.task_managers()).unwrap();
        if done(&list) {
            return (list, started.elapsed());
        }
        assert!(
            started.elapsed() < limit,
            "{what} not within {limit:?}: {list:?}"
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

fn state_of(list: &TaskManagerList, id: &str) -> Option<TaskManagerState> {
    list.task_managers
        .iter()
        .find(|t| t.id == id)
        .map(|t| t.state)
}

#[test]
fn two_task_managers_register_and_a_killed_one_is_marked_lost_within_the_timeout() {
    let (mut jm, client, rpc) = jobmanager(&["-p", "1", "transformations"]);
    let mut a = taskmanager(&rpc, "tm-a", 2, &[]);
    let mut b = taskmanager(&rpc, "tm-b", 3, &[]);
    let (list, _) = wait_for_task_managers(&client, Duration::from_secs(20), "both", |l| {
        l.slots_available == 5
    });
    assert_eq!(
        list.subtasks_run_in, "jobmanager",
        "the embedded scheduler runs subtasks in the JobManager"
    );
    assert_eq!(list.heartbeat_timeout_ms, 1000);
    let ids: Vec<(&str, u32, u32)> = list
        .task_managers
        .iter()
        .map(|t| (t.id.as_str(), t.slots, t.slots_offered))
        .collect();
    assert_eq!(ids, vec![("tm-a", 2, 2), ("tm-b", 3, 3)]);
    // Registered means ready: the data port the operator's readiness probe checks listens.
    for t in &list.task_managers {
        assert_eq!(t.state, TaskManagerState::Registered);
        std::net::TcpStream::connect(&t.data_address).unwrap();
    }
    a.wait_for_line("registered with the JobManager");
    let metrics = block_on(client.metrics()).unwrap();
    assert!(
        metrics.contains("fjord_taskmanagers{state=\"REGISTERED\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fjord_taskmanager_slots_available 5"),
        "{metrics}"
    );

    b.kill(); // SIGKILL: no goodbye, only missing heartbeats
    let (list, took) = wait_for_task_managers(&client, Duration::from_secs(10), "loss", |l| {
        state_of(l, "tm-b") == Some(TaskManagerState::Lost)
    });
    // Detected after the timeout, and well before twice the timeout (sweeps every 250 ms).
    assert!(took < TIMEOUT * 2, "loss detected after {took:?}");
    assert_eq!(state_of(&list, "tm-a"), Some(TaskManagerState::Registered));
    assert_eq!(list.slots_available, 2);
    let metrics = block_on(client.metrics()).unwrap();
    assert!(
        metrics.contains("fjord_taskmanagers{state=\"LOST\"} 1"),
        "{metrics}"
    );

    a.signal("TERM");
    assert_eq!(a.wait_exit(), Some(0), "{}", a.stderr());
    jm.signal("TERM");
    jm.wait_exit();
}

#[test]
fn a_task_manager_registers_again_when_the_job_manager_restarts() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port().to_string()
    };
    let (mut first, client, rpc) = jobmanager(&["--rpc-port", &port, "-p", "1", "transformations"]);
    let _tm = taskmanager(&rpc, "tm-r", 1, &[]);
    wait_for_task_managers(&client, Duration::from_secs(20), "registration", |l| {
        l.slots_available == 1
    });
    first.kill();
    first.wait_exit();

    let (_second, client, _) = jobmanager(&["--rpc-port", &port, "-p", "1", "transformations"]);
    let (list, _) =
        wait_for_task_managers(&client, Duration::from_secs(20), "re-registration", |l| {
            l.slots_available == 1
        });
    assert_eq!(list.task_managers[0].id, "tm-r");
}

#[test]
fn wait_for_slots_starts_the_job_only_once_enough_slots_are_offered() {
    // transformations at parallelism 3 needs 3 slots (one slot sharing group).
    let (mut jm, client, rpc) =
        jobmanager(&["--wait-for-slots", "60s", "-p", "3", "transformations"]);
    jm.wait_for_line("Waiting up to");
    let _two = taskmanager(&rpc, "tm-2", 2, &[]);
    wait_for_task_managers(&client, Duration::from_secs(20), "two slots", |l| {
        l.slots_available == 2
    });
    assert!(
        block_on(client.jobs()).unwrap().jobs.is_empty(),
        "started with 2 of 3 slots"
    );
    assert_eq!(block_on(client.ready()).unwrap_err().status(), Some(503));

    let _one = taskmanager(&rpc, "tm-1", 1, &[]);
    let started = Instant::now();
    while block_on(client.jobs()).unwrap().jobs.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            jm.stderr()
        );
        std::thread::park_timeout(Duration::from_millis(20));
    }
    jm.wait_for_line("is running");
}

#[test]
fn too_few_slots_within_the_wait_exits_4_and_an_unreachable_job_manager_too() {
    let (mut jm, _, _) = jobmanager(&["--wait-for-slots", "200ms", "-p", "2", "transformations"]);
    assert_eq!(jm.wait_exit(), Some(4));
    let stderr = jm.stderr();
    assert!(
        stderr.contains("needs 2 task slots") && stderr.contains("offer 0"),
        "{stderr}"
    );

    // Nothing listens on this port, so the TaskManager never registers.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut tm = taskmanager(
        &format!("127.0.0.1:{port}"),
        "tm-x",
        1,
        &["--registration-timeout-ms", "300"],
    );
    assert_eq!(tm.wait_exit(), Some(4));
    assert!(
        tm.stderr().contains("could not register"),
        "{}",
        tm.stderr()
    );
}
