//! The real REST server on 127.0.0.1:0 with real jobs, called by the real `fjord-client`, for
//! every endpoint including bad requests.

use super::config::{JobManagerArgs, JobManagerConfig};
use super::job::JobManager;
use super::{JobManagerState, Server};
use fjord::{JobArgs, JobRegistry, Result, StreamExecutionEnvironment};
use fjord_client::api::{
    JobDetails, JobState, RescaleRequest, RescaleStatus, SavepointRequest, SavepointState,
    SavepointStatus, codes,
};
use fjord_client::{Client, ClientError};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod manual_checkpoints;
mod rest_limits;

/// Runs until cancelled, slowly (a record per millisecond per subtask).
fn endless(env: &StreamExecutionEnvironment, _: &JobArgs) -> Result<()> {
    env.from_generator(None, |i| i as i64)
        .name("Numbers")
        .map(|x: i64| {
            std::thread::sleep(Duration::from_millis(1));
            x * 2
        })
        .name("Double")
        .rebalance()
        .filter(|_: &i64| false)
        .name("Nothing")
        .collect();
    Ok(())
}

/// Ten records, then done.
fn ten(env: &StreamExecutionEnvironment, _: &JobArgs) -> Result<()> {
    env.from_sequence(1, 10)
        .name("Numbers")
        .rebalance()
        .map(|x: i64| x + 1)
        .name("Inc")
        .collect();
    Ok(())
}

/// Fails on its third record.
fn boom(env: &StreamExecutionEnvironment, _: &JobArgs) -> Result<()> {
    env.from_sequence(1, 10)
        .name("Numbers")
        .map(|x: i64| {
            assert!(x != 3, "boom at record 3");
            x
        })
        .name("Exploding")
        .collect();
    Ok(())
}

/// Fails on its third record the first time it runs, then restarts once and finishes.
fn flaky(env: &StreamExecutionEnvironment, _: &JobArgs) -> Result<()> {
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    env.set_restart_strategy(fjord::checkpoint::RestartStrategy::FixedDelay {
        attempts: 1,
        delay: Duration::from_millis(10),
    });
    env.from_sequence(1, 10)
        .name("Numbers")
        .set_parallelism(1)
        .map(|x: i64| {
            let fail = x == 3 && !FAILED.swap(true, std::sync::atomic::Ordering::SeqCst);
            assert!(!fail, "fails once at record 3");
            x
        })
        .name("Flaky")
        .set_parallelism(1)
        .collect();
    Ok(())
}

/// Every (key, count) the `keyed-counts` job emitted, in order.
static KEYED_COUNTS: std::sync::Mutex<Vec<(String, u64)>> = std::sync::Mutex::new(Vec::new());

/// Counts per key in keyed state (uids, so a savepoint maps), recording every count.
fn keyed_counts(env: &StreamExecutionEnvironment, _: &JobArgs) -> Result<()> {
    env.from_source(
        fjord::sources::GeneratorSource::new(None, |i| (format!("key-{}", i % 3), 1u64))
            .with_rate(2000.0),
        "Source: events",
    )
    .uid("events")
    .set_parallelism(1)
    .key_by(|(k, _): &(String, u64)| k.clone())
    .sum::<1>()
    .name("counts")
    .uid("counts")
    .map(|(k, n): (String, u64)| {
        KEYED_COUNTS.lock().unwrap().push((k, n));
        n
    })
    .name("record")
    .uid("record")
    .collect();
    Ok(())
}

fn registry() -> JobRegistry {
    let mut r = JobRegistry::new();
    r.register("endless", "runs until cancelled", endless);
    r.register("flaky", "fails once, then finishes", flaky);
    r.register("ten", "ten records", ten);
    r.register("boom", "fails", boom);
    r.register(
        "keyed-counts",
        "keyed counts recorded in KEYED_COUNTS",
        keyed_counts,
    );
    r.register(
        "counting",
        "keyed counts with uids",
        fjord_examples::counting::build,
    );
    r
}

struct Harness {
    config: JobManagerConfig,
    state: Arc<JobManagerState>,
    server: Server,
    client: Client,
}

fn args(job: &str) -> JobManagerArgs {
    JobManagerArgs {
        job: Some(job.into()),
        parallelism: Some(2),
        ..Default::default()
    }
}

impl Harness {
    /// A JobManager serving on a free loopback port, with no job yet.
    async fn serving(args: JobManagerArgs) -> Harness {
        let config = JobManagerConfig::resolve(args).unwrap();
        let state = JobManagerState::new(&config, 0);
        let server = Server::start("127.0.0.1", 0, state.clone()).await.unwrap();
        let client = Client::new(&format!("http://{}/v1", server.addr)).unwrap();
        Harness {
            config,
            state,
            server,
            client,
        }
    }

    /// Serving, with its job started.
    async fn running(args: JobManagerArgs) -> (Harness, Arc<JobManager>) {
        let h = Self::serving(args).await;
        let jm = h.start();
        (h, jm)
    }

    fn start(&self) -> Arc<JobManager> {
        let jm = JobManager::start(&registry(), &self.config).unwrap();
        self.state.set_job(jm.clone());
        jm
    }

    fn raw(&self) -> (reqwest::Client, String) {
        (
            reqwest::Client::new(),
            format!("http://{}", self.server.addr),
        )
    }
}

/// Polls `check` until it returns `Some`, failing after 20 s.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn job_in_state(client: &Client, id: &str, state: JobState) -> JobDetails {
    eventually(&format!("job {state}"), || async {
        let job = client.job(id).await.unwrap();
        (job.state == state).then_some(job)
    })
    .await
}

fn assert_api_error(err: ClientError, status: u16, code: &str, message_part: &str) {
    match &err {
        ClientError::Api {
            status: s,
            code: c,
            message,
            ..
        } => {
            assert_eq!((*s, c.as_str()), (status, code), "{err}");
            assert!(message.contains(message_part), "{message}");
        }
        other => panic!("expected HTTP {status} {code}, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_follow_the_job() {
    let h = Harness::serving(args("ten")).await;
    assert_eq!(h.client.health().await.unwrap().status, "ok");
    assert_api_error(
        h.client.ready().await.unwrap_err(),
        503,
        codes::NOT_READY,
        "building",
    );
    assert!(h.client.jobs().await.unwrap().jobs.is_empty());
    assert_api_error(
        h.client.job("x").await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        "not built its job yet",
    );
    h.start();
    assert_eq!(h.client.ready().await.unwrap().status, "ready");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_reports_vertices_and_live_record_counts() {
    let (h, jm) = Harness::running(args("endless")).await;
    let jobs = h.client.jobs().await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].id.as_str(), jobs[0].name.as_str()),
        (jm.id(), "endless")
    );
    assert_eq!(jobs[0].id.len(), 32);

    let job = eventually("records flowing through Nothing", || async {
        let job = h.client.job(jm.id()).await.unwrap();
        let flowing = job.vertices.len() == 2
            && job.vertices[1].records_in > 0
            && job.vertices[0].subtasks.iter().all(|s| s.records_out > 0);
        flowing.then_some(job)
    })
    .await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.failure, None);
    assert_eq!(job.end_time_ms, None);
    assert_eq!(job.restarts, 0);
    let source = &job.vertices[0];
    assert_eq!(source.name, "Numbers -> Double");
    assert_eq!(source.parallelism, 2);
    assert_eq!(source.subtasks.len(), 2);
    assert_eq!(source.records_in, 0, "a source chain receives nothing");
    assert_eq!(source.operators, vec!["Numbers", "Double"]);
    assert!(source.records_out > 0);
    assert!(
        source.subtasks.iter().all(|s| s.records_out > 0),
        "{source:?}"
    );
    assert_eq!(job.edges.len(), 1);
    assert_eq!(job.edges[0].partitioner, "REBALANCE");
    let sink = &job.vertices[1];
    assert_eq!(sink.records_out, 0, "the filter drops everything");

    let metrics = h.client.metrics().await.unwrap();
    let state_line = format!(
        "fjord_job_state{{job_id=\"{}\",job_name=\"endless\",state=\"RUNNING\"}} 1",
        jm.id()
    );
    assert!(metrics.contains(&state_line), "{metrics}");
    assert!(metrics.contains("# TYPE fjord_task_records_in_total counter"));
    assert!(
        metrics.contains("task=\"Numbers -> Double\",subtask=\"1\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("fjord_job_restarts_total{"), "{metrics}");
    assert!(metrics.contains("fjord_job_uptime_seconds{"), "{metrics}");

    // Cancel, twice: the second call reports the terminal state.
    let first = h.client.cancel(jm.id()).await.unwrap();
    assert!(
        matches!(first.state, JobState::Cancelling | JobState::Canceled),
        "{first:?}"
    );
    let done = job_in_state(&h.client, jm.id(), JobState::Canceled).await;
    assert!(done.end_time_ms.is_some());
    assert_eq!(
        h.client.cancel(jm.id()).await.unwrap().state,
        JobState::Canceled
    );
    assert_eq!(jm.terminated().await, JobState::Canceled);
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_job_finishes_with_exact_counts() {
    let (h, jm) = Harness::running(args("ten")).await;
    let job = job_in_state(&h.client, jm.id(), JobState::Finished).await;
    let (source, inc) = (&job.vertices[0], &job.vertices[1]);
    assert_eq!((source.records_in, source.records_out), (0, 10));
    assert_eq!((inc.records_in, inc.records_out), (10, 0));
    assert_eq!(inc.subtasks.iter().map(|s| s.records_in).sum::<u64>(), 10);
    assert!(job.duration_ms >= 0 && job.end_time_ms.is_some());
    assert_eq!(
        h.client.jobs().await.unwrap().jobs[0].state,
        JobState::Finished
    );
    assert_eq!(jm.state(), JobState::Finished);
    h.server.stop().await;
}

/// The sum of the samples of `metric` whose labels contain `with`.
fn sum_of(metrics: &str, metric: &str, with: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(with))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_export_task_time_bytes_watermarks_and_job_counters() {
    let (h, jm) = Harness::running(args("ten")).await;
    let job = job_in_state(&h.client, jm.id(), JobState::Finished).await;
    let metrics = h.client.metrics().await.unwrap();
    let finished = format!(
        "fjord_job_state{{job_id=\"{}\",job_name=\"ten\",state=\"FINISHED\"}} 1",
        jm.id()
    );
    assert!(metrics.contains(&finished), "{metrics}");
    for (metric, kind) in [
        ("fjord_task_records_in_total", "counter"),
        ("fjord_task_records_out_total", "counter"),
        ("fjord_task_received_bytes_total", "counter"),
        ("fjord_task_sent_bytes_total", "counter"),
        ("fjord_task_backpressured_ms_total", "counter"),
        ("fjord_task_idle_ms_total", "counter"),
        ("fjord_task_busy_ms_total", "counter"),
        ("fjord_task_input_watermark_ms", "gauge"),
        ("fjord_task_output_watermark_ms", "gauge"),
        ("fjord_job_restarts_total", "counter"),
        ("fjord_job_checkpoints_completed_total", "counter"),
        ("fjord_job_checkpoints_failed_total", "counter"),
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {metric} {kind}\n")),
            "{metric}: {metrics}"
        );
    }
    // Exactly the ten records the source sent arrived, over both subtasks.
    assert_eq!(
        sum_of(&metrics, "fjord_task_records_out_total", "vertex=\"0\""),
        10.0
    );
    assert_eq!(
        sum_of(&metrics, "fjord_task_records_in_total", "vertex=\"1\""),
        10.0
    );
    // Objects between threads of one process: no bytes.
    assert_eq!(sum_of(&metrics, "fjord_task_received_bytes_total", ""), 0.0);
    for metric in [
        "fjord_task_busy_ms_total",
        "fjord_task_idle_ms_total",
        "fjord_task_backpressured_ms_total",
    ] {
        let samples = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .count();
        assert_eq!(samples, 4, "one per subtask of both vertices: {metric}");
    }
    let inc_watermark = format!(
        "fjord_task_input_watermark_ms{{job_id=\"{}\",job_name=\"ten\",vertex=\"1\",task=\"{}\",subtask=\"0\"}} {}",
        jm.id(),
        job.vertices[1].name,
        i64::MAX
    );
    assert!(
        metrics.contains(&inc_watermark),
        "bounded sources end event time: {metrics}"
    );
    assert_eq!(sum_of(&metrics, "fjord_job_restarts_total", ""), 0.0);
    assert_eq!(
        sum_of(&metrics, "fjord_job_checkpoints_completed_total", ""),
        0.0
    );

    // The same in the job's JSON.
    let (source, inc) = (&job.vertices[0], &job.vertices[1]);
    for s in &source.subtasks {
        assert_eq!(
            (s.input_watermark, s.output_watermark),
            (None, Some(i64::MAX))
        );
    }
    for s in &inc.subtasks {
        assert_eq!(
            (s.input_watermark, s.output_watermark),
            (Some(i64::MAX), None)
        );
        assert_eq!((s.bytes_in, s.bytes_out), (0, 0));
        assert!(
            s.busy_ms + s.idle_ms + s.backpressured_ms <= job.duration_ms as u64 + 1000,
            "{s:?} within {} ms",
            job.duration_ms
        );
    }
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_counted() {
    let (h, jm) = Harness::running(args("flaky")).await;
    let job = job_in_state(&h.client, jm.id(), JobState::Finished).await;
    assert_eq!(job.restarts, 1);
    // The exception history keeps the restart's cause, with its operator and subtask.
    let exceptions = h.client.exceptions(jm.id()).await.unwrap();
    assert_eq!(exceptions.root_cause, None, "the job finished");
    assert_eq!(exceptions.history.len(), 1, "{exceptions:?}");
    let e = &exceptions.history[0];
    assert!(
        e.message.contains("fails once at record 3"),
        "{}",
        e.message
    );
    assert!(
        e.operator.as_deref().is_some_and(|o| o.contains("Flaky")),
        "{e:?}"
    );
    assert_eq!((e.subtask, e.attempt, e.terminal), (Some(0), 0, false));
    let metrics = h.client.metrics().await.unwrap();
    assert_eq!(
        sum_of(&metrics, "fjord_job_restarts_total", ""),
        1.0,
        "{metrics}"
    );
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_reports_the_cause() {
    let (h, jm) = Harness::running(args("boom")).await;
    let job = job_in_state(&h.client, jm.id(), JobState::Failed).await;
    let failure = job.failure.unwrap();
    assert!(
        failure.contains("Exploding") && failure.contains("boom at record 3"),
        "{failure}"
    );
    // The root cause is the terminal entry of the history.
    let exceptions = h.client.exceptions(jm.id()).await.unwrap();
    let root = exceptions.root_cause.expect("a root cause");
    assert_eq!(root.message, failure);
    assert!(root.terminal);
    assert_eq!(exceptions.history.first(), Some(&root));
    let metrics = h.client.metrics().await.unwrap();
    assert!(metrics.contains("state=\"FAILED\"} 1"), "{metrics}");
    h.server.stop().await;
}

fn counting_args(dir: &tempfile::TempDir) -> Vec<String> {
    let out = dir
        .path()
        .join(format!("out-{}.txt", rand::random::<u32>()));
    [
        "--keys",
        "3",
        "--rate",
        "2000",
        "--output",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

async fn savepoint_done(client: &Client, job: &str, trigger: &str) -> SavepointStatus {
    eventually(&format!("savepoint {trigger}"), || async {
        let status = client.savepoint_status(job, trigger).await.unwrap();
        (status.state != SavepointState::InProgress).then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_savepoints_stop_restore_and_dispose() {
    let dir = tempfile::tempdir().unwrap();
    let url = |sub: &str| format!("file://{}/{sub}", dir.path().display());
    let (h, jm) = Harness::running(JobManagerArgs {
        checkpoint_interval_ms: Some(50),
        storage_url: Some(url("checkpoints")),
        savepoint_dir: Some(url("savepoints")),
        args: counting_args(&dir),
        ..args("counting")
    })
    .await;
    let id = jm.id().to_string();

    // Periodic checkpoints show up in the history and as the latest.
    let latest = eventually("a completed checkpoint", || async {
        h.client.latest_checkpoint(&id).await.unwrap().checkpoint
    })
    .await;
    assert!(latest.path.starts_with(&url("checkpoints")), "{latest:?}");
    assert!(!latest.savepoint && latest.id >= 1);
    let history = h.client.checkpoints(&id).await.unwrap();
    assert_eq!(history.interval_ms, Some(50));
    assert!(history.completed.iter().any(|c| c.path == latest.path));

    // A savepoint into the configured directory; the same trigger ID again starts nothing.
    let request = SavepointRequest {
        trigger_id: "manual-1".into(),
        directory: None,
        drain: false,
    };
    for _ in 0..2 {
        let accepted = h.client.trigger_savepoint(&id, &request).await.unwrap();
        assert_eq!(accepted.trigger_id, "manual-1");
    }
    let done = savepoint_done(&h.client, &id, "manual-1").await;
    assert_eq!(done.state, SavepointState::Completed, "{done:?}");
    let manual = done.path.unwrap();
    assert!(
        manual.starts_with(&url("savepoints/savepoint-")),
        "{manual}"
    );
    assert_eq!(
        h.client
            .trigger_savepoint(&id, &request)
            .await
            .unwrap()
            .trigger_id,
        "manual-1"
    );
    let metrics = h.client.metrics().await.unwrap();
    assert!(metrics.contains("outcome=\"completed\"} 1"), "{metrics}");
    assert!(
        sum_of(&metrics, "fjord_job_checkpoints_completed_total", "") >= 1.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("fjord_job_last_checkpoint_size_bytes{"),
        "{metrics}"
    );
    let history = h.client.checkpoints(&id).await.unwrap();
    let savepoints: Vec<_> = history.completed.iter().filter(|c| c.savepoint).collect();
    assert_eq!(savepoints.len(), 1, "one savepoint for two requests");
    assert_eq!(savepoints[0].path, manual);

    // Stop with a savepoint into a directory of the caller's choice: the job finishes.
    let stop = SavepointRequest {
        trigger_id: "upgrade-1".into(),
        directory: Some(url("upgrades")),
        drain: false,
    };
    h.client.stop_with_savepoint(&id, &stop).await.unwrap();
    let stopped = savepoint_done(&h.client, &id, "upgrade-1").await;
    let upgrade = stopped.path.expect("stop-with-savepoint completed");
    job_in_state(&h.client, &id, JobState::Finished).await;
    // History is still served after the job ended; new savepoints are refused.
    assert!(
        !h.client
            .checkpoints(&id)
            .await
            .unwrap()
            .completed
            .is_empty()
    );
    let again = SavepointRequest {
        trigger_id: "too-late".into(),
        ..stop.clone()
    };
    assert_api_error(
        h.client.trigger_savepoint(&id, &again).await.unwrap_err(),
        409,
        codes::JOB_NOT_RUNNING,
        "FINISHED",
    );
    // Known trigger IDs keep their answer.
    assert_eq!(
        h.client
            .savepoint_status(&id, "manual-1")
            .await
            .unwrap()
            .path,
        Some(manual.clone())
    );
    h.server.stop().await;

    // A new JobManager restores the stop savepoint.
    let (h2, jm2) = Harness::running(JobManagerArgs {
        restore_path: Some(upgrade.clone()),
        args: counting_args(&dir),
        ..args("counting")
    })
    .await;
    let restored = job_in_state(&h2.client, jm2.id(), JobState::Running).await;
    assert_eq!(restored.failure, None);
    assert_eq!(
        h2.client.config().await.unwrap().restore_path,
        Some(upgrade.clone())
    );
    // Without a directory in the request or the configuration, the caller is told so.
    let no_dir = SavepointRequest {
        trigger_id: "x".into(),
        directory: None,
        drain: false,
    };
    assert_api_error(
        h2.client
            .trigger_savepoint(jm2.id(), &no_dir)
            .await
            .unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "savepoints.directory",
    );

    // Dispose of the manual savepoint; disposing again succeeds; other paths are refused.
    let manual_dir = manual.trim_start_matches("file://").to_string();
    assert!(std::path::Path::new(&manual_dir).exists());
    h2.client.dispose_savepoint(&manual).await.unwrap();
    assert!(!std::path::Path::new(&manual_dir).exists());
    h2.client.dispose_savepoint(&manual).await.unwrap();
    assert_api_error(
        h2.client
            .dispose_savepoint(&url("checkpoints"))
            .await
            .unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "not a savepoint directory",
    );
    // A directory merely named like a savepoint, with a user's file, or with a `_metadata`
    // Fjord did not write, is refused and keeps its files.
    for (name, metadata) in [
        ("savepoint-important", None),
        ("savepoint-forged", Some("{\"not\": \"fjord\"}")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(name);
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("notes.txt"), "keep me").unwrap();
        if let Some(m) = metadata {
            std::fs::write(target.join("_metadata"), m).unwrap();
        }
        assert_api_error(
            h2.client
                .dispose_savepoint(&format!("file://{}", target.display()))
                .await
                .unwrap_err(),
            400,
            codes::BAD_REQUEST,
            "not a savepoint directory",
        );
        assert_eq!(
            std::fs::read_to_string(target.join("notes.txt")).unwrap(),
            "keep me",
            "{name}"
        );
    }
    // Rescaling in place needs a place for its savepoint; this JobManager has none.
    assert_api_error(
        h2.client
            .rescale(
                jm2.id(),
                &RescaleRequest {
                    parallelism: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "savepoints.directory",
    );
    jm2.cancel();
    jm2.terminated().await;
    h2.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_savepoint_still_ends_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let (h, jm) = Harness::running(JobManagerArgs {
        args: counting_args(&dir),
        ..args("counting")
    })
    .await;
    let id = jm.id().to_string();
    let request = SavepointRequest {
        trigger_id: "racing".into(),
        directory: Some(format!("file://{}/sp", dir.path().display())),
        drain: false,
    };
    h.client.trigger_savepoint(&id, &request).await.unwrap();
    h.client.cancel(&id).await.unwrap();
    job_in_state(&h.client, &id, JobState::Canceled).await;
    let status = savepoint_done(&h.client, &id, "racing").await;
    assert!(
        matches!(
            status.state,
            SavepointState::Completed | SavepointState::Failed
        ),
        "{status:?}"
    );
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_with_messages() {
    let (h, jm) = Harness::running(args("endless")).await;
    let id = jm.id();
    let sp = SavepointRequest {
        trigger_id: "t".into(),
        directory: None,
        drain: false,
    };
    // Unknown job ID on every job endpoint.
    let other = "0123";
    assert_api_error(
        h.client.job(other).await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        id,
    );
    assert_api_error(
        h.client.cancel(other).await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        "GET /v1/jobs",
    );
    assert_api_error(
        h.client.checkpoints(other).await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        other,
    );
    assert_api_error(
        h.client.latest_checkpoint(other).await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        other,
    );
    assert_api_error(
        h.client.trigger_savepoint(other, &sp).await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        other,
    );
    assert_api_error(
        h.client.savepoint_status(other, "t").await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        other,
    );
    assert_api_error(
        h.client.stop_with_savepoint(other, &sp).await.unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        other,
    );
    assert_api_error(
        h.client
            .rescale(
                other,
                &RescaleRequest {
                    parallelism: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err(),
        404,
        codes::JOB_NOT_FOUND,
        other,
    );

    // Malformed trigger IDs and parallelism.
    let bad = SavepointRequest {
        trigger_id: "a/b".into(),
        directory: None,
        drain: false,
    };
    assert_api_error(
        h.client.trigger_savepoint(id, &bad).await.unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "trigger_id may contain only",
    );
    assert_api_error(
        h.client.stop_with_savepoint(id, &bad).await.unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "trigger_id",
    );
    assert_api_error(
        h.client
            .rescale(
                id,
                &RescaleRequest {
                    parallelism: 0,
                    ..Default::default()
                },
            )
            .await
            .unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "between 1 and",
    );
    assert_api_error(
        h.client.dispose_savepoint(" ").await.unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "path",
    );

    // Raw requests the typed client cannot make.
    let (http, root) = h.raw();
    let post = |path: String, body: &'static str, content_type: &'static str| {
        http.post(format!("{root}{path}"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let check = |response: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(response.status().as_u16(), status);
        let body: fjord_client::api::ErrorBody = response.json().await.unwrap();
        assert_eq!(body.error, code, "{}", body.message);
        assert!(!body.message.is_empty());
        body.message
    };
    let savepoints = format!("/v1/jobs/{id}/savepoints");
    let msg = check(
        post(savepoints.clone(), "{not json", "application/json")
            .await
            .unwrap(),
        400,
        codes::BAD_REQUEST,
    )
    .await;
    assert!(msg.contains("openapi"), "{msg}");
    check(
        post(savepoints.clone(), "{}", "application/json")
            .await
            .unwrap(),
        422,
        codes::BAD_REQUEST,
    )
    .await;
    check(
        post(savepoints, "{\"trigger_id\":\"t\"}", "text/plain")
            .await
            .unwrap(),
        415,
        codes::BAD_REQUEST,
    )
    .await;
    check(
        post(
            format!("/v1/jobs/{id}/rescale"),
            "{\"parallelism\":-1}",
            "application/json",
        )
        .await
        .unwrap(),
        422,
        codes::BAD_REQUEST,
    )
    .await;
    let msg = check(
        http.get(format!("{root}/v2/jobs")).send().await.unwrap(),
        404,
        codes::NOT_FOUND,
    )
    .await;
    assert!(msg.contains("/v1"), "{msg}");
    check(
        http.delete(format!("{root}/v1/jobs")).send().await.unwrap(),
        405,
        codes::METHOD_NOT_ALLOWED,
    )
    .await;
    check(
        http.get(format!("{root}/v1/jobs/{id}/cancel"))
            .send()
            .await
            .unwrap(),
        405,
        codes::METHOD_NOT_ALLOWED,
    )
    .await;

    jm.cancel();
    jm.terminated().await;
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_and_openapi_are_served() {
    let h = Harness::serving(JobManagerArgs {
        storage_url: Some("s3://key:secret@minio:9000/bucket".into()),
        restore_path: Some("s3://key:secret@minio:9000/bucket/savepoint-a".into()),
        ..args("ten")
    })
    .await;
    let config = h.client.config().await.unwrap();
    assert_eq!(config.job_name, "ten");
    assert_eq!(config.execution, "embedded");
    assert_eq!(config.parallelism, Some(2));
    assert_eq!(
        config.storage_url.as_deref(),
        Some("s3://***@minio:9000/bucket"),
        "credentials never leave the JobManager"
    );
    assert_eq!(
        config.restore_path.as_deref(),
        Some("s3://***@minio:9000/bucket/savepoint-a")
    );
    let served = h.client.openapi().await.unwrap();
    let checked_in: serde_json::Value = serde_json::from_str(fjord_client::OPENAPI_JSON).unwrap();
    assert_eq!(served, checked_in);
    let metrics = h.client.metrics().await.unwrap();
    assert!(metrics.contains("fjord_jobmanager_has_job 0"), "{metrics}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_its_endpoints_are_served() {
    let (h, jm) = Harness::running(args("endless")).await;
    let (http, base) = h.raw();
    // The page and its files, each with its type and the Content-Security-Policy.
    for asset in super::dashboard::ASSETS {
        let r = http
            .get(format!("{base}{}", asset.path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", asset.path);
        let headers = r.headers().clone();
        assert_eq!(
            headers["content-type"], asset.content_type,
            "{}",
            asset.path
        );
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(r.text().await.unwrap(), asset.body, "{}", asset.path);
    }
    // Unknown paths still get the API's JSON 404.
    let r = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The checkpoint overview reflects the configuration.
    let overview: fjord_client::api::CheckpointOverview = http
        .get(format!("{base}/v1/jobs/{}/checkpoints/overview", jm.id()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(overview.settings.mode, "EXACTLY_ONCE");
    assert_eq!(overview.restored_from, None);
    assert_eq!(overview.savepoints_in_progress, 0);
    // An unknown TaskManager is a 404 that says where to look.
    let r = http
        .get(format!("{base}/v1/taskmanagers/tm-none"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("GET /v1/taskmanagers"));
    jm.cancel();
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_a_clear_error() {
    let h = Harness::serving(args("ten")).await;
    let err = Server::start("127.0.0.1", h.server.addr.port(), h.state.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, crate::WorkerError::Serve { .. }));
    assert!(err.to_string().contains("--rest-port"), "{err}");
    h.server.stop().await;
}

async fn rescale_done(client: &Client, job: &str, trigger: &str) -> RescaleStatus {
    eventually(&format!("rescale {trigger}"), || async {
        let status = client.rescale_status(job, trigger).await.unwrap();
        (status.state != SavepointState::InProgress).then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescale_in_place_keeps_keyed_state_job_id_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let url = |sub: &str| format!("file://{}/{sub}", dir.path().display());
    // No savepoint directory: the savepoint goes to <checkpoint storage>/rescale.
    let (h, jm) = Harness::running(JobManagerArgs {
        checkpoint_interval_ms: Some(100),
        storage_url: Some(url("checkpoints")),
        ..args("keyed-counts")
    })
    .await;
    let id = jm.id().to_string();
    let counts = |job: &JobDetails| {
        job.vertices
            .iter()
            .find(|v| v.operators.iter().any(|o| o == "counts"))
            .unwrap()
            .clone()
    };
    let before = job_in_state(&h.client, &id, JobState::Running).await;
    assert_eq!(counts(&before).parallelism, 2);
    eventually("counts", || async {
        (KEYED_COUNTS.lock().unwrap().len() > 30).then_some(())
    })
    .await;

    let request = RescaleRequest {
        parallelism: 3,
        trigger_id: Some("grow-1".into()),
    };
    let accepted = h.client.rescale(&id, &request).await.unwrap();
    assert_eq!(accepted.trigger_id, "grow-1");
    // The same trigger again starts nothing; another rescale or a savepoint meanwhile is
    // refused (unless the first one already completed).
    assert_eq!(
        h.client.rescale(&id, &request).await.unwrap().trigger_id,
        "grow-1"
    );
    let done = rescale_done(&h.client, &id, "grow-1").await;
    assert_eq!(done.state, SavepointState::Completed, "{done:?}");
    assert_eq!(done.parallelism, 3);
    let savepoint = done.savepoint_path.unwrap();
    assert!(
        savepoint.starts_with(&url("checkpoints/rescale/savepoint-")),
        "{savepoint}"
    );

    // Same job ID, still RUNNING, now at parallelism 3.
    let after = job_in_state(&h.client, &id, JobState::Running).await;
    assert_eq!(after.id, id);
    assert_eq!(counts(&after).parallelism, 3);
    assert_eq!(after.failure, None);
    let recorded = KEYED_COUNTS.lock().unwrap().len();
    eventually("counts after the rescale", || async {
        (KEYED_COUNTS.lock().unwrap().len() > recorded + 30).then_some(())
    })
    .await;
    jm.cancel();
    assert_eq!(jm.terminated().await, JobState::Canceled);

    // Keyed state carried over: per key the counts go 1, 2, 3, ... once, without starting
    // again at 1 (stop-with-savepoint replays nothing).
    let all = KEYED_COUNTS.lock().unwrap().clone();
    for key in ["key-0", "key-1", "key-2"] {
        let seen: Vec<u64> = all
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, n)| *n)
            .collect();
        let expected: Vec<u64> = (1..=seen.len() as u64).collect();
        assert_eq!(seen, expected, "{key}");
    }
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rescale_requests_are_refused_and_change_nothing() {
    let (h, jm) = Harness::running(args("endless")).await;
    let id = jm.id().to_string();
    job_in_state(&h.client, &id, JobState::Running).await;
    let rescale = |parallelism: usize, trigger_id: Option<&str>| RescaleRequest {
        parallelism,
        trigger_id: trigger_id.map(String::from),
    };
    // Out of range, a malformed trigger ID, no savepoint location.
    assert_api_error(
        h.client.rescale(&id, &rescale(0, None)).await.unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "between 1 and",
    );
    assert_api_error(
        h.client
            .rescale(&id, &rescale(100_000, None))
            .await
            .unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "max parallelism",
    );
    assert_api_error(
        h.client
            .rescale(&id, &rescale(2, Some("a/b")))
            .await
            .unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "trigger_id",
    );
    assert_api_error(
        h.client.rescale(&id, &rescale(3, None)).await.unwrap_err(),
        400,
        codes::BAD_REQUEST,
        "savepoints.directory",
    );
    // An unknown trigger.
    assert_api_error(
        h.client.rescale_status(&id, "never").await.unwrap_err(),
        404,
        codes::UNKNOWN_TRIGGER,
        "never",
    );
    // Still running at its parallelism.
    let job = h.client.job(&id).await.unwrap();
    assert_eq!(job.state, JobState::Running);
    assert!(job.vertices.iter().all(|v| v.parallelism <= 2));
    // Not running: refused with 409.
    jm.cancel();
    jm.terminated().await;
    let dir = tempfile::tempdir().unwrap();
    let (h2, jm2) = Harness::running(JobManagerArgs {
        savepoint_dir: Some(format!("file://{}", dir.path().display())),
        ..args("ten")
    })
    .await;
    job_in_state(&h2.client, jm2.id(), JobState::Finished).await;
    assert_api_error(
        h2.client
            .rescale(jm2.id(), &rescale(1, None))
            .await
            .unwrap_err(),
        409,
        codes::JOB_NOT_RUNNING,
        "FINISHED",
    );
    h.server.stop().await;
    h2.server.stop().await;
}
