//! The web dashboard in a real browser: Playwright (`playwright-core` from npm) drives Debian's
//! Chromium, headless, against a real `fjord jobmanager --scheduler taskmanagers` with two
//! real `fjord taskmanager` processes running the built-in `windowed-counts` job (source →
//! watermarks → keyed event-time windows → sink, checkpoints every 500 ms into a `file://`
//! temporary directory).
//!
//! The browser script is `dashboard/tests/dashboard.test.mjs` (node's test runner). It runs in
//! two phases around a failure this test injects:
//! 1. `running`: every page renders (at 1280×800, on a phone, in dark mode) without console
//!    errors, the graph shows the job's vertices and edges as the REST API lists them and a
//!    vertex opens its subtasks, figures move while the job runs, and a savepoint triggered
//!    from the page is shown in progress and then in the checkpoint history.
//! 2. Then this test SIGKILLs TaskManager `tm2` (a machine failure), starts `tm3`, and waits
//!    until the job restarted from its latest checkpoint.
//! 3. `failover`: Exceptions shows the failure the JobManager recorded for the restart (the
//!    lost TaskManager, or its peers' tasks failing on the broken connections to it, whichever
//!    it noticed first), TaskManagers shows `tm2` `LOST`, a rescale to parallelism 1 from the page completes, and a
//!    cancel from the page ends the job `CANCELED`.
//!
//!
//! A second test runs the script's `auth` phase against a JobManager with a REST token
//! (`--rest-token-file`): the page asks for the token, refuses a wrong one with a clear
//! message, shows the job with the right one and forgets it on sign-out. Then the script
//! pauses (SIGSTOP) a TaskManager that runs no source subtask: the next checkpoint is held,
//! and the Checkpoints page shows it in flight with its acknowledgements per vertex; the
//! paused TaskManager misses its heartbeats, the JobManager restarts the job on the spare
//! third TaskManager, and the held checkpoint is listed among the failed ones with its
//! reason. Last, a stop with a savepoint from the page (an authenticated POST) ends the job
//! `FINISHED` with its savepoint in the history.
//!
//! Screenshots of each page go to `<target dir>/dashboard-artifacts/` (see
//! `docs/dashboard.md`). Needs `scripts/install-deps.sh` (Chromium, Node.js) and
//! `scripts/install-node-deps.sh` (the npm packages); `scripts/test.sh` runs both. The `fjord`
//! binary must be built first (`cargo build -p fjord-worker --bins`, or
//! `FJORD_E2E_WORKER_BIN`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use fjord_e2e::poll_until;

mod process_support;
use process_support::{JobManager, POLL, Proc, cluster_jm_args, file_url, task_manager, with_args};

/// Bound on the job restarting after the TaskManager was killed.
const FAILOVER: Duration = Duration::from_secs(120);
/// Bound on one phase of the browser script.
const PHASE: Duration = Duration::from_secs(600);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `dashboard/`, checked to have its npm packages installed.
fn dashboard_dir() -> anyhow::Result<PathBuf> {
    let dir = repo().join("dashboard");
    ensure!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/typescript").is_dir(),
        "the dashboard's npm packages are not installed in {}: run scripts/install-node-deps.sh \
         (scripts/test.sh does)",
        dir.display()
    );
    Ok(dir)
}

fn chromium() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("FJORD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    ensure!(
        path.is_file(),
        "no Chromium at {}: run scripts/install-deps.sh (it installs Debian's chromium), or set \
         FJORD_CHROMIUM",
        path.display()
    );
    Ok(path)
}

/// `<target dir>/dashboard-artifacts`: this test binary lives in `<target>/debug/deps/`.
fn artifacts_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .ancestors()
        .nth(3)
        .context("the test binary is not under <target>/<profile>/deps")?;
    Ok(target.join("dashboard-artifacts"))
}

/// Removes the screenshots whose file name `ours` selects (the two tests of this file share
/// the directory and may run at once).
fn clear_artifacts(ours: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(artifacts_dir()?) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        if ours(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Runs the browser script's `phase` with node's test runner; its report is printed, and a
/// failing test fails this one with it.
fn browser_phase(phase: &str, url: &str, env: &[(&str, String)]) -> anyhow::Result<()> {
    let dir = dashboard_dir()?;
    let mut command = Command::new("node");
    command
        .current_dir(&dir)
        .args(["--test", "--test-reporter=spec", "tests/dashboard.test.mjs"])
        .env("FJORD_DASHBOARD_URL", url)
        .env("FJORD_DASHBOARD_PHASE", phase)
        .env("FJORD_DASHBOARD_ARTIFACTS", artifacts_dir()?)
        .env("FJORD_CHROMIUM", chromium()?);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("start node (run scripts/install-deps.sh to install Node.js)")?;
    // Bounded: kill the browser script if it hangs past PHASE.
    let deadline = std::time::Instant::now() + PHASE;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait()?;
        }
        std::thread::park_timeout(Duration::from_millis(100));
    };
    let out = child.wait_with_output()?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("--- browser phase {phase} ---\n{report}");
    ensure!(
        status.success(),
        "browser phase {phase} failed ({status}):\n{report}"
    );
    Ok(())
}

#[test]
fn the_dashboards_scripts_type_check() -> anyhow::Result<()> {
    let dir = dashboard_dir()?;
    let out = Command::new(dir.join("node_modules/.bin/tsc"))
        .current_dir(&dir)
        .args(["-p", "tsconfig.json"])
        .output()
        .context("run tsc")?;
    ensure!(
        out.status.success(),
        "tsc found type errors in dashboard/src:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_running_job_its_savepoint_and_its_failure_in_a_browser()
-> anyhow::Result<()> {
    dashboard_dir()?;
    chromium()?;
    // Only this run's screenshots (the `auth-` ones are the other test's).
    clear_artifacts(|name| !name.starts_with("auth-"))?;
    let dir = tempfile::tempdir()?;
    let (chk, savepoints) = (dir.path().join("chk"), dir.path().join("savepoints"));
    let args = with_args(
        cluster_jm_args(0, 2, &chk, 500),
        &[
            "--wait-for-slots",
            "60s",
            // Unbounded: the job runs until the page cancels it.
            "windowed-counts",
            "--rate",
            "300",
            "--keys",
            "5",
            "--window-ms",
            "1000",
        ],
    );
    let mut jm = JobManager::start("jobmanager", dir.path(), args).await?;
    let tm1 = task_manager("tm1", dir.path(), &jm.rpc, 1)?;
    let mut tm2 = task_manager("tm2", dir.path(), &jm.rpc, 1)?;
    let job_id = jm.job_id().await?;
    jm.first_checkpoint(&job_id).await?;
    let url = format!("http://{}/", jm.rest);
    let tails = |procs: &[&Proc]| {
        procs
            .iter()
            .map(|p| p.tail())
            .collect::<Vec<_>>()
            .join("\n")
    };

    let running = browser_phase(
        "running",
        &url,
        &[("FJORD_DASHBOARD_SAVEPOINT_DIR", file_url(&savepoints))],
    );
    running.with_context(|| tails(&[&jm.proc, &tm1, &tm2]))?;

    // A machine failure: the job restarts from its latest checkpoint on tm1 and tm3.
    tm2.sigkill();
    let tm3 = task_manager("tm3", dir.path(), &jm.rpc, 1)?;
    let client = jm.client.clone();
    let id = job_id.clone();
    poll_until(
        "the job to restart after tm2 was lost",
        FAILOVER,
        POLL,
        || {
            let (client, id) = (client.clone(), id.clone());
            async move {
                let details = client.job(&id).await.ok()?;
                let exceptions = client.exceptions(&id).await.ok()?;
                let restarted = details.restarts >= 1
                    && details.state == fjord_client::api::JobState::Running
                    && exceptions.history.iter().any(|e| !e.terminal);
                // Running again: the new attempt's subtasks report records.
                let flowing = details.vertices.iter().any(|v| v.records_out > 0);
                (restarted && flowing).then_some(())
            }
        },
    )
    .await
    .with_context(|| tails(&[&jm.proc, &tm1, &tm3]))?;

    let failover = browser_phase(
        "failover",
        &url,
        &[("FJORD_DASHBOARD_LOST_TM", "tm2".to_string())],
    );
    failover.with_context(|| tails(&[&jm.proc, &tm1, &tm3]))?;
    eprintln!(
        "screenshots in {}",
        artifacts_dir().map(|d| d.display().to_string())?
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_the_rest_token_and_stops_the_job_with_a_savepoint()
-> anyhow::Result<()> {
    dashboard_dir()?;
    chromium()?;
    let dir = tempfile::tempdir()?;
    let (chk, savepoints) = (dir.path().join("chk"), dir.path().join("savepoints"));
    // A token as the operator makes them (URL-safe base64 of random bytes), unique per run.
    let token = format!(
        "dashboard-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let token_file = dir.path().join("rest-token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    // The paused TaskManager is declared lost after 6 s (instead of the shared 2 s): long
    // enough for the page to show the held checkpoint, short enough to wait for.
    let mut args = cluster_jm_args(0, 2, &chk, 500);
    let timeout = args
        .iter()
        .position(|a| a == "--heartbeat-timeout-ms")
        .context("--heartbeat-timeout-ms")?;
    args[timeout + 1] = "6000".into();
    let args = with_args(
        args,
        &[
            "--rest-token-file",
            &token_file.to_string_lossy(),
            "--wait-for-slots",
            "60s",
            "windowed-counts",
            "--rate",
            "300",
            "--keys",
            "5",
            "--window-ms",
            "1000",
        ],
    );
    let mut jm = JobManager::start("jobmanager", dir.path(), args).await?;
    jm.client = fjord_client::Client::secured(
        &format!("http://{}", jm.rest),
        &fjord_client::Security {
            token: Some(token.clone()),
            ca_pem: None,
        },
    )?;
    // One slot each: the job runs on two, the third is spare for the restart.
    let tm1 = task_manager("tm1", dir.path(), &jm.rpc, 1)?;
    let tm2 = task_manager("tm2", dir.path(), &jm.rpc, 1)?;
    let job_id = jm.job_id().await?;
    let tm3 = task_manager("tm3", dir.path(), &jm.rpc, 1)?;
    let tms = [&tm1, &tm2, &tm3];
    let pids = tms
        .iter()
        .map(|p| format!("{}={}", p.name(), p.pid()))
        .collect::<Vec<_>>()
        .join(",");
    jm.first_checkpoint(&job_id).await?;
    let url = format!("http://{}/", jm.rest);
    clear_artifacts(|name| name.starts_with("auth-"))?;
    let result = browser_phase(
        "auth",
        &url,
        &[
            ("FJORD_DASHBOARD_TOKEN", token.clone()),
            ("FJORD_DASHBOARD_SAVEPOINT_DIR", file_url(&savepoints)),
            ("FJORD_DASHBOARD_TM_PIDS", pids),
        ],
    );
    result.with_context(|| {
        std::iter::once(jm.proc.tail())
            .chain(tms.iter().map(|p| p.tail()))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    // The token was typed into the page and sent in headers only: neither process logged it.
    for proc in [&jm.proc, &tm1, &tm2, &tm3] {
        ensure!(
            !proc.log().contains(&token),
            "{} logged the REST token",
            proc.name()
        );
    }
    Ok(())
}
