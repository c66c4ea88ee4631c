//! The real REST server on 127.0.0.1:0 with real jobs, called by the real `fjord-client`, for
//! every endpoint including bad requests.

use super::config::{JobManagerArgs, JobManagerConfig};
use super::job::JobManager;
use super::{JobManagerState, Server};
use fjord::{JobArgs, JobRegistry, Result, StreamExecutionEnvironment};
use fjord_client::api::{JobDetails, JobState, RescaleRequest, SavepointRequest, codes};
use fjord_client::{Client, ClientError};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

fn registry() -> JobRegistry {
    let mut r = JobRegistry::new();
    r.register("endless", "runs until cancelled", endless);
    r.register("ten", "ten records", ten);
    r.register("boom", "fails", boom);
    r
}

struct Harness {
    state: Arc<JobManagerState>,
    server: Server,
    client: Client,
}

impl Harness {
    /// A JobManager serving on a free loopback port, with no job yet.
    async fn serving(job: &str) -> Harness {
        let config = JobManagerConfig::resolve(JobManagerArgs {
            job: Some(job.into()),
            parallelism: Some(2),
            storage_url: Some("s3://key:secret@minio:9000/bucket".into()),
            ..Default::default()
        })
        .unwrap();
        let state = JobManagerState::new(config.to_api(0));
        let server = Server::start("127.0.0.1", 0, state.clone()).await.unwrap();
        let client = Client::new(&format!("http://{}/v1", server.addr)).unwrap();
        Harness {
            state,
            server,
            client,
        }
    }

    /// Serving, with `job` running at parallelism 2.
    async fn running(job: &str) -> (Harness, Arc<JobManager>) {
        let h = Self::serving(job).await;
        let run = crate::local::LocalRun {
            job: job.into(),
            args: vec![],
            parallelism: Some(2),
            max_parallelism: None,
        };
        let jm = JobManager::start(&registry(), &run).unwrap();
        h.state.set_job(jm.clone());
        (h, jm)
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
    let h = Harness::serving("ten").await;
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
    let run = crate::local::LocalRun {
        job: "ten".into(),
        args: vec![],
        parallelism: Some(1),
        max_parallelism: None,
    };
    h.state
        .set_job(JobManager::start(&registry(), &run).unwrap());
    assert_eq!(h.client.ready().await.unwrap().status, "ready");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_reports_vertices_and_live_record_counts() {
    let (h, jm) = Harness::running("endless").await;
    let jobs = h.client.jobs().await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        (jobs[0].id.as_str(), jobs[0].name.as_str()),
        (jm.id(), "endless")
    );
    assert_eq!(jobs[0].id.len(), 32);

    let job = eventually("records flowing through Nothing", || async {
        let job = h.client.job(jm.id()).await.unwrap();
        (job.vertices.len() == 2 && job.vertices[1].records_in > 0).then_some(job)
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
    assert_eq!(source.operators[0].name, "Numbers");
    assert!(source.operators[1].records_in > 0);
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
    assert!(metrics.contains("# TYPE fjord_operator_records_in_total counter"));
    assert!(
        metrics.contains("operator=\"Double\",subtask=\"1\"}"),
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
    let (h, jm) = Harness::running("ten").await;
    let job = job_in_state(&h.client, jm.id(), JobState::Finished).await;
    let v = &job.vertices[0];
    assert_eq!(v.operators[0].records_out, 10);
    assert_eq!(v.operators[1].records_in, 10);
    assert_eq!(v.operators[1].records_out, 10);
    assert!(job.duration_ms >= 0 && job.end_time_ms.is_some());
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_reports_the_cause() {
    let (h, jm) = Harness::running("boom").await;
    let job = job_in_state(&h.client, jm.id(), JobState::Failed).await;
    let failure = job.failure.unwrap();
    assert!(
        failure.contains("Exploding") && failure.contains("boom at record 3"),
        "{failure}"
    );
    let metrics = h.client.metrics().await.unwrap();
    assert!(metrics.contains("state=\"FAILED\"} 1"), "{metrics}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_endpoints_say_they_are_not_available() {
    let (h, jm) = Harness::running("endless").await;
    let id = jm.id();
    let sp = SavepointRequest {
        trigger_id: "upgrade-1".into(),
        directory: Some("s3://b/sp".into()),
    };
    let unavailable = "not available in this version";
    assert_api_error(
        h.client.checkpoints(id).await.unwrap_err(),
        501,
        codes::NOT_IMPLEMENTED,
        unavailable,
    );
    assert_api_error(
        h.client.latest_checkpoint(id).await.unwrap_err(),
        501,
        codes::NOT_IMPLEMENTED,
        unavailable,
    );
    // A retry with the same trigger ID gets the same answer; nothing was started.
    for _ in 0..2 {
        let err = h.client.trigger_savepoint(id, &sp).await.unwrap_err();
        assert!(err.is_not_implemented());
        assert_api_error(err, 501, codes::NOT_IMPLEMENTED, "nothing was started");
    }
    assert_api_error(
        h.client.stop_with_savepoint(id, &sp).await.unwrap_err(),
        501,
        codes::NOT_IMPLEMENTED,
        "the job keeps running",
    );
    assert_api_error(
        h.client
            .rescale(id, &RescaleRequest { parallelism: 4 })
            .await
            .unwrap_err(),
        501,
        codes::NOT_IMPLEMENTED,
        unavailable,
    );
    assert_api_error(
        h.client.dispose_savepoint("s3://b/sp/1").await.unwrap_err(),
        501,
        codes::NOT_IMPLEMENTED,
        unavailable,
    );
    // The status of a trigger this JobManager never saw.
    assert_api_error(
        h.client
            .savepoint_status(id, "upgrade-1")
            .await
            .unwrap_err(),
        404,
        codes::UNKNOWN_TRIGGER,
        "triggering it again is safe",
    );
    // The job is untouched.
    assert_eq!(h.client.job(id).await.unwrap().state, JobState::Running);
    jm.cancel();
    jm.terminated().await;
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx_with_messages() {
    let (h, jm) = Harness::running("endless").await;
    let id = jm.id();
    let sp = SavepointRequest {
        trigger_id: "t".into(),
        directory: None,
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
            .rescale(other, &RescaleRequest { parallelism: 1 })
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
            .rescale(id, &RescaleRequest { parallelism: 0 })
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
    let h = Harness::serving("ten").await;
    let config = h.client.config().await.unwrap();
    assert_eq!(config.job_name, "ten");
    assert_eq!(config.execution, "embedded");
    assert_eq!(config.parallelism, Some(2));
    assert_eq!(
        config.storage_url.as_deref(),
        Some("s3://***@minio:9000/bucket"),
        "credentials never leave the JobManager"
    );
    let served = h.client.openapi().await.unwrap();
    let checked_in: serde_json::Value = serde_json::from_str(fjord_client::OPENAPI_JSON).unwrap();
    assert_eq!(served, checked_in);
    let metrics = h.client.metrics().await.unwrap();
    assert!(metrics.contains("fjord_jobmanager_has_job 0"), "{metrics}");
    h.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_a_clear_error() {
    let h = Harness::serving("ten").await;
    let err = Server::start("127.0.0.1", h.server.addr.port(), h.state.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, crate::WorkerError::Serve { .. }));
    assert!(err.to_string().contains("--rest-port"), "{err}");
    h.server.stop().await;
}
