//! [`RestJobManager`]: the [`JobManagerApi`] on the JobManager's REST API, through
//! `fjord-client`.
//!
//! The mapping (see `docs/rest-api.md`): `job` → `GET /v1/jobs` (first entry) and, for a failed
//! job, `GET /v1/jobs/{id}` for the cause; savepoint calls pass the operator's trigger ID and the
//! directory; manual checkpoints pass the trigger ID as Flink's `triggerId`; `404
//! unknown_trigger` on a status endpoint is [`SavepointStatus::Unknown`] (or
//! [`CheckpointStatus::Unknown`]); a
//! transport failure (or an answer that is not this API) is [`Error::JobManagerUnreachable`], an
//! error answer (including `501 not_implemented`) is [`Error::JobManagerApi`] with its status
//! and message, so the lifecycle reports it and never treats it as success.

use std::time::Duration;

use fjord_client::api::{self, SavepointRequest, SavepointState};
use fjord_client::{Client, ClientError};
use fjord_crds::{CheckpointRecord, CheckpointType, JobState};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::{
    CheckpointStatus, JobInfo, JobManagerApi, JobManagerEndpoint, SavepointStatus, SubtaskCounters,
    VertexMetrics,
};
use crate::Error;

/// Bound on one REST call, so a hung JobManager cannot stall a reconcile pass for long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The JobManager REST client the operator binary uses. Cheap to clone; one connection pool is
/// shared by the calls to every StreamJob's JobManager.
#[derive(Debug, Clone)]
pub struct RestJobManager {
    http: reqwest::Client,
}

impl RestJobManager {
    /// A client with the operator's timeouts (10 s per request, 3 s to connect).
    ///
    /// # Errors
    /// [`Error::JobManagerUnreachable`] if the HTTP client cannot be built (no TLS roots).
    pub fn new() -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Error::JobManagerUnreachable {
                endpoint: "-".into(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Self { http })
    }

    /// Start a savepoint (`stop`: stop-with-savepoint) into `directory`, never draining.
    async fn savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
        stop: bool,
    ) -> Result<(), Error> {
        let client = self.client(jm)?;
        let request = SavepointRequest {
            trigger_id: trigger_id.into(),
            directory: Some(directory.into()),
            // The job resumes from this savepoint: never drain (that would fire windows early).
            drain: false,
        };
        let (operation, answer) = if stop {
            (
                "stop with savepoint",
                client.stop_with_savepoint(job_id, &request).await,
            )
        } else {
            (
                "trigger savepoint",
                client.trigger_savepoint(job_id, &request).await,
            )
        };
        answer.map(drop).map_err(|e| map_error(jm, operation, e))
    }

    fn client(&self, jm: &JobManagerEndpoint) -> Result<Client, Error> {
        client_for(&self.http, jm)
    }
}

/// A REST client of the JobManager `jm`: over the shared `http` client when it needs neither a
/// token nor a CA of its own, else over a small client of its own (the token a sensitive
/// default header, never logged; the CA a root only this JobManager's calls trust).
///
/// # Errors
/// [`Error::JobManagerUnreachable`] when the token or the CA cannot be used.
pub(crate) fn client_for(http: &reqwest::Client, jm: &JobManagerEndpoint) -> Result<Client, Error> {
    if jm.token.is_none() && jm.ca_pem.is_none() {
        return Client::with_http(&jm.base_url, http.clone())
            .map_err(|e| map_error(jm, "connect", e));
    }
    // A job with REST authentication or REST TLS gets its own small client: the token is
    // a default header (sensitive: never logged) and the CA a root only this job trusts.
    let unusable = |message: String| Error::JobManagerUnreachable {
        endpoint: jm.base_url.clone(),
        message,
    };
    let mut builder = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(token) = &jm.token {
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| {
                unusable("the REST token holds characters an HTTP header cannot carry".into())
            })?;
        value.set_sensitive(true);
        builder = builder.default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            value,
        )]));
    }
    if let Some(pem) = &jm.ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| unusable(format!("the TLS Secret's ca.crt is not PEM: {e}")))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    let http = builder
        .build()
        .map_err(|e| unusable(format!("cannot build the HTTP client: {e}")))?;
    Client::with_http(&jm.base_url, http).map_err(|e| map_error(jm, "connect", e))
}

/// The operator's error for a failed call of `operation`.
pub(crate) fn map_error(jm: &JobManagerEndpoint, operation: &str, e: ClientError) -> Error {
    match e {
        ClientError::Api {
            status, message, ..
        } => Error::JobManagerApi {
            endpoint: jm.base_url.clone(),
            operation: operation.into(),
            status,
            message,
        },
        ClientError::Decode { message, .. } => Error::JobManagerUnreachable {
            endpoint: jm.base_url.clone(),
            message: format!(
                "{operation}: the answer is not the Fjord JobManager API this operator speaks \
                 (another server or version?): {message}"
            ),
        },
        other => Error::JobManagerUnreachable {
            endpoint: jm.base_url.clone(),
            message: other.to_string(),
        },
    }
}

/// The StreamJob status's name for a JobManager job state.
pub fn job_state(state: api::JobState) -> JobState {
    match state {
        api::JobState::Created => JobState::Created,
        api::JobState::Running => JobState::Running,
        api::JobState::Cancelling => JobState::Cancelling,
        api::JobState::Canceled => JobState::Cancelled,
        api::JobState::Finished => JobState::Finished,
        api::JobState::Failed => JobState::Failed,
    }
}

/// The operator's view of a savepoint status answer.
pub fn savepoint_status(answer: api::SavepointStatus) -> SavepointStatus {
    match answer.state {
        SavepointState::InProgress => SavepointStatus::InProgress,
        SavepointState::Completed => match answer.path {
            Some(path) => SavepointStatus::Completed { path },
            None => SavepointStatus::Failed {
                message: "the JobManager reported the savepoint completed without a path".into(),
            },
        },
        SavepointState::Failed => SavepointStatus::Failed {
            message: answer
                .failure
                .unwrap_or_else(|| "the JobManager gave no reason".into()),
        },
    }
}

/// The operator's view of a manual checkpoint's status answer.
pub fn checkpoint_status(answer: api::CheckpointTriggerStatus) -> CheckpointStatus {
    if let Some(message) = answer.failure() {
        return CheckpointStatus::Failed {
            message: message.to_string(),
        };
    }
    match (answer.status.id, answer.operation) {
        (api::OperationState::InProgress, _) => CheckpointStatus::InProgress,
        (api::OperationState::Completed, Some(op)) => match (op.checkpoint_id, op.path) {
            (Some(id), Some(path)) => CheckpointStatus::Completed { id, path },
            _ => CheckpointStatus::Failed {
                message: "the JobManager reported the checkpoint completed without its id and \
                          path"
                    .into(),
            },
        },
        (api::OperationState::Completed, None) => CheckpointStatus::Failed {
            message: "the JobManager reported the checkpoint ended without a result".into(),
        },
    }
}

/// The operator's view of the job's details.
pub fn job_info(d: api::JobDetails) -> JobInfo {
    JobInfo {
        state: job_state(d.state),
        failure: if d.state == api::JobState::Failed {
            d.failure
        } else {
            None
        },
        restarts: Some(d.restarts),
        start_time: (d.start_time_ms > 0)
            .then(|| Timestamp::from_millisecond(d.start_time_ms).ok().map(Time))
            .flatten(),
        vertices: d
            .vertices
            .iter()
            .map(|v| VertexMetrics {
                name: v.name.clone(),
                parallelism: u32::try_from(v.parallelism).unwrap_or(u32::MAX),
                source: !d.edges.iter().any(|e| e.target == v.id),
                subtasks: v
                    .subtasks
                    .iter()
                    .map(|s| SubtaskCounters {
                        busy_ms: s.busy_ms,
                        idle_ms: s.idle_ms,
                        backpressured_ms: s.backpressured_ms,
                        records_in: s.records_in,
                        records_out: s.records_out,
                    })
                    .collect(),
            })
            .collect(),
        id: d.id,
    }
}

/// The status record of a completed checkpoint.
pub fn checkpoint_record(c: api::CheckpointInfo) -> CheckpointRecord {
    CheckpointRecord {
        id: c.id,
        path: c.path,
        completed_at: Timestamp::from_millisecond(c.completed_at_ms)
            .ok()
            .map(Time),
    }
}

impl JobManagerApi for RestJobManager {
    async fn job(&self, jm: &JobManagerEndpoint) -> Result<Option<JobInfo>, Error> {
        let client = self.client(jm)?;
        let list = client
            .jobs()
            .await
            .map_err(|e| map_error(jm, "list jobs", e))?;
        let Some(summary) = list.jobs.into_iter().next() else {
            return Ok(None);
        };
        // The details carry the restart count and start time the status shows (and the
        // failure cause of a failed job).
        let details = client
            .job(&summary.id)
            .await
            .map_err(|e| map_error(jm, "read the job", e))?;
        Ok(Some(job_info(details)))
    }

    async fn trigger_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
    ) -> Result<(), Error> {
        self.savepoint(jm, job_id, trigger_id, directory, false)
            .await
    }

    async fn stop_with_savepoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        directory: &str,
    ) -> Result<(), Error> {
        self.savepoint(jm, job_id, trigger_id, directory, true)
            .await
    }

    async fn savepoint_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<SavepointStatus, Error> {
        match self.client(jm)?.savepoint_status(job_id, trigger_id).await {
            Ok(answer) => Ok(savepoint_status(answer)),
            Err(e) if e.code() == Some(api::codes::UNKNOWN_TRIGGER) => Ok(SavepointStatus::Unknown),
            Err(e) => Err(map_error(jm, "read savepoint status", e)),
        }
    }

    async fn trigger_checkpoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        kind: CheckpointType,
    ) -> Result<(), Error> {
        let request = api::CheckpointTriggerRequest {
            checkpoint_type: match kind {
                CheckpointType::Configured => api::CheckpointType::Configured,
                CheckpointType::Full => api::CheckpointType::Full,
                CheckpointType::Incremental => api::CheckpointType::Incremental,
            },
            trigger_id: Some(trigger_id.into()),
        };
        self.client(jm)?
            .trigger_checkpoint(job_id, &request)
            .await
            .map(drop)
            .map_err(|e| map_error(jm, "trigger checkpoint", e))
    }

    async fn checkpoint_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<CheckpointStatus, Error> {
        match self
            .client(jm)?
            .checkpoint_trigger_status(job_id, trigger_id)
            .await
        {
            Ok(answer) => Ok(checkpoint_status(answer)),
            Err(e) if e.code() == Some(api::codes::UNKNOWN_TRIGGER) => {
                Ok(CheckpointStatus::Unknown)
            }
            Err(e) => Err(map_error(jm, "read checkpoint status", e)),
        }
    }

    async fn cancel(&self, jm: &JobManagerEndpoint, job_id: &str) -> Result<(), Error> {
        self.client(jm)?
            .cancel(job_id)
            .await
            .map(drop)
            .map_err(|e| map_error(jm, "cancel", e))
    }

    async fn latest_checkpoint(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
    ) -> Result<Option<CheckpointRecord>, Error> {
        self.client(jm)?
            .latest_checkpoint(job_id)
            .await
            .map(|l| l.checkpoint.map(checkpoint_record))
            .map_err(|e| map_error(jm, "read the latest checkpoint", e))
    }

    async fn rescale(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
        parallelism: i32,
    ) -> Result<(), Error> {
        let request = api::RescaleRequest {
            parallelism: usize::try_from(parallelism.max(1)).unwrap_or(1),
            trigger_id: Some(trigger_id.into()),
        };
        self.client(jm)?
            .rescale(job_id, &request)
            .await
            .map(drop)
            .map_err(|e| map_error(jm, "rescale in place", e))
    }

    async fn rescale_status(
        &self,
        jm: &JobManagerEndpoint,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<SavepointStatus, Error> {
        match self.client(jm)?.rescale_status(job_id, trigger_id).await {
            Ok(answer) => Ok(savepoint_status(api::SavepointStatus {
                trigger_id: answer.trigger_id,
                state: answer.state,
                path: answer.savepoint_path,
                failure: answer.failure,
            })),
            Err(e) if e.code() == Some(api::codes::UNKNOWN_TRIGGER) => Ok(SavepointStatus::Unknown),
            Err(e) => Err(map_error(jm, "read rescale status", e)),
        }
    }

    async fn busy_task_managers(&self, jm: &JobManagerEndpoint) -> Result<Vec<String>, Error> {
        self.client(jm)?
            .task_managers()
            .await
            .map(|l| {
                l.task_managers
                    .into_iter()
                    .filter(|t| t.slots_in_use > 0)
                    .map(|t| t.id)
                    .collect()
            })
            .map_err(|e| map_error(jm, "list TaskManagers", e))
    }

    async fn dispose_savepoint(&self, jm: &JobManagerEndpoint, path: &str) -> Result<(), Error> {
        self.client(jm)?
            .dispose_savepoint(path)
            .await
            .map(drop)
            .map_err(|e| map_error(jm, "dispose of savepoint", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> JobManagerEndpoint {
        JobManagerEndpoint {
            base_url: "http://counting-jobmanager.ns.svc:8081/v1".into(),
            token: None,
            ca_pem: None,
        }
    }

    #[test]
    fn every_job_state_maps_to_the_status_name() {
        let names: Vec<_> = api::JobState::ALL
            .iter()
            .map(|s| {
                serde_json::to_value(job_state(*s))
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            names,
            [
                "CREATED",
                "RUNNING",
                "CANCELLING",
                "CANCELLED",
                "FINISHED",
                "FAILED"
            ]
        );
    }

    #[test]
    fn savepoint_answers_map_without_inventing_success() {
        let answer = |state, path: Option<&str>, failure: Option<&str>| api::SavepointStatus {
            trigger_id: "t".into(),
            state,
            path: path.map(Into::into),
            failure: failure.map(Into::into),
        };
        assert_eq!(
            savepoint_status(answer(SavepointState::InProgress, None, None)),
            SavepointStatus::InProgress
        );
        assert_eq!(
            savepoint_status(answer(SavepointState::Completed, Some("s3://b/sp-1"), None)),
            SavepointStatus::Completed {
                path: "s3://b/sp-1".into()
            }
        );
        assert!(matches!(
            savepoint_status(answer(SavepointState::Completed, None, None)),
            SavepointStatus::Failed { .. }
        ));
        assert_eq!(
            savepoint_status(answer(SavepointState::Failed, None, Some("disk full"))),
            SavepointStatus::Failed {
                message: "disk full".into()
            }
        );
    }

    #[test]
    fn checkpoint_answers_map_without_inventing_success() {
        assert_eq!(
            checkpoint_status(api::CheckpointTriggerStatus::in_progress()),
            CheckpointStatus::InProgress
        );
        assert_eq!(
            checkpoint_status(api::CheckpointTriggerStatus::completed(
                7,
                "s3://b/cp/j/chk-7".into()
            )),
            CheckpointStatus::Completed {
                id: 7,
                path: "s3://b/cp/j/chk-7".into()
            }
        );
        assert_eq!(
            checkpoint_status(api::CheckpointTriggerStatus::failed("declined".into())),
            CheckpointStatus::Failed {
                message: "declined".into()
            }
        );
        // COMPLETED without an id and path is no success.
        let mut bare = api::CheckpointTriggerStatus::completed(7, "p".into());
        bare.operation.as_mut().unwrap().path = None;
        assert!(matches!(
            checkpoint_status(bare),
            CheckpointStatus::Failed { .. }
        ));
    }

    #[test]
    fn not_implemented_is_an_api_error_with_its_status() {
        let e = map_error(
            &endpoint(),
            "stop with savepoint",
            ClientError::Api {
                method: "POST".into(),
                url: "u".into(),
                status: 501,
                code: api::codes::NOT_IMPLEMENTED.into(),
                message: "checkpoints are not available".into(),
            },
        );
        assert!(
            matches!(&e, Error::JobManagerApi { status: 501, operation, .. } if operation == "stop with savepoint"),
            "{e:?}"
        );
        let e = map_error(
            &endpoint(),
            "list jobs",
            ClientError::Decode {
                url: "u".into(),
                message: "missing field `jobs`".into(),
            },
        );
        assert!(matches!(e, Error::JobManagerUnreachable { .. }), "{e:?}");
    }

    #[test]
    fn checkpoint_time_comes_from_milliseconds() {
        let r = checkpoint_record(api::CheckpointInfo {
            id: 7,
            path: "s3://b/chk-7".into(),
            completed_at_ms: 1_700_000_000_123,
            size_bytes: 1,
            duration_ms: 1,
            savepoint: false,
        });
        assert_eq!(r.id, 7);
        assert_eq!(
            r.completed_at.unwrap().0.as_millisecond(),
            1_700_000_000_123
        );
    }
}
