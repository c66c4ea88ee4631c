//! A typed client for the Fjord JobManager REST API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), fjord_client::ClientError> {
//! let jm = fjord_client::Client::new("http://counting-jobmanager.default.svc:8081/v1")?;
//! if let Some(job) = jm.jobs().await?.jobs.first() {
//!     println!("{} is {}", job.name, job.state);
//! }
//! # Ok(()) }
//! ```
//!
//! Modules: [`api`] holds the request and response types, shared with the server in
//! `fjord-worker` so both stay in step; the crate root holds the [`Client`] and its
//! [`ClientError`]. The OpenAPI document of the same API is [`OPENAPI_JSON`].

pub mod api;
pub mod job_id;

use api::{
    CancelResponse, CheckpointHistory, ClusterConfig, DisposeSavepointRequest, ErrorBody,
    HealthResponse, JobDetails, JobList, LatestCheckpoint, RescaleRequest, RescaleStatus,
    SavepointAccepted, SavepointRequest, SavepointStatus, TaskManagerList,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The OpenAPI 3 document of the REST API (served by the JobManager at `/v1/openapi.json`).
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// What can go wrong calling the JobManager.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `http://` or `https://` URL.
    #[error("invalid JobManager URL '{url}': {message}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// No HTTP answer: the JobManager is not (yet) listening, crashed, or the network failed.
    #[error("JobManager at {url} is unreachable: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The JobManager answered with an error status and a JSON error body.
    #[error("JobManager answered {method} {url} with HTTP {status} ({code}): {message}")]
    Api {
        /// HTTP method.
        method: String,
        /// The URL called.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The stable error code (see [`api::codes`]).
        code: String,
        /// The JobManager's message.
        message: String,
    },
    /// The client's own settings are unusable (a token or CA file).
    #[error("client settings: {message}")]
    Config {
        /// What is wrong, naming the file (never a token).
        message: String,
    },
    /// The answer was not the JSON this client expects (a different server or version).
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// What did not fit.
        message: String,
    },
}

impl ClientError {
    /// The HTTP status of an [`Api`](Self::Api) error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error code of an [`Api`](Self::Api) error (see [`api::codes`]).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True for an HTTP 501 answer (code `not_implemented`): the server's version lacks a
    /// feature the API defines. No route of this version's JobManager answers 501 (every
    /// route in the OpenAPI document is served); the check is for servers of other versions.
    pub fn is_not_implemented(&self) -> bool {
        self.status() == Some(501)
    }
}

/// How to reach a JobManager whose REST API uses TLS or a bearer token. `Debug` never shows
/// the token.
#[derive(Clone, Default)]
pub struct Security {
    /// Sent as `Authorization: Bearer <token>` on every request.
    pub token: Option<String>,
    /// PEM CA certificate(s) to trust for `https://` (beside the system's web roots), such as
    /// the `ca.crt` of the StreamJob's certificate Secret.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Security")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

impl Security {
    /// Reads the token (trimmed) and the CA from files, either optional.
    ///
    /// # Errors
    /// [`ClientError::Config`] naming the file that cannot be read or is empty.
    pub fn from_files(
        token_file: Option<&std::path::Path>,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Security, ClientError> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| ClientError::Config {
                message: format!("cannot read {}: {e}", path.display()),
            })
        };
        let token = token_file
            .map(|path| {
                let bytes = read(path)?;
                let token = String::from_utf8_lossy(&bytes).trim().to_string();
                if token.is_empty() {
                    return Err(ClientError::Config {
                        message: format!("the token file {} is empty", path.display()),
                    });
                }
                Ok(token)
            })
            .transpose()?;
        let ca_pem = ca_file.map(read).transpose()?;
        Ok(Security { token, ca_pem })
    }
}

/// A client for one JobManager. Cheap to clone; clones share the connection pool.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Server root without trailing slash and without `/v1`.
    root: String,
}

impl Client {
    /// A client for the JobManager at `base_url`: the server root (`http://host:8081`) or the
    /// versioned API root (`http://host:8081/v1`); both work. Requests time out after 30 s.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when the URL is not `http://` or `https://`.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::InvalidUrl {
                url: base_url.into(),
                message: e.to_string(),
            })?;
        Self::with_http(base_url, http)
    }

    /// Like [`new`](Self::new) for a JobManager with TLS (trusting `security.ca_pem`) or a
    /// bearer token (sent on every request, marked sensitive so it is not logged).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when the URL is not `http://` or `https://`,
    /// [`ClientError::Config`] when the CA is not PEM or the token is not a valid header value.
    pub fn secured(base_url: &str, security: &Security) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = &security.ca_pem {
            for cert in
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| ClientError::Config {
                    message: format!("the CA file is not PEM: {e}"),
                })?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(token) = &security.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ClientError::Config {
                    message: "the token holds characters an HTTP header cannot carry".into(),
                })?;
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        let http = builder.build().map_err(|e| ClientError::Config {
            message: e.to_string(),
        })?;
        Self::with_http(base_url, http)
    }

    /// Like [`new`](Self::new) with a caller-configured `reqwest` client (timeouts, TLS roots).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when the URL is not `http://` or `https://`.
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self, ClientError> {
        let trimmed = base_url.trim_end_matches('/');
        let root = trimmed.strip_suffix(api::API_PREFIX).unwrap_or(trimmed);
        let rest = root
            .strip_prefix("http://")
            .or_else(|| root.strip_prefix("https://"));
        match rest {
            Some(host) if !host.is_empty() => {}
            _ => {
                return Err(ClientError::InvalidUrl {
                    url: base_url.into(),
                    message:
                        "expected http://host:port or https://host:port, optionally followed by /v1"
                            .into(),
                });
            }
        }
        Ok(Client {
            http,
            root: root.to_string(),
        })
    }

    /// The server root this client calls (without `/v1`).
    pub fn root(&self) -> &str {
        &self.root
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.root)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(dyn ErasedBody + Sync)>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = self.url(path);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_json());
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response
            .text()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => (body.error, body.message),
            Err(_) => ("unknown".to_string(), text),
        };
        Err(ClientError::Api {
            method: method.to_string(),
            url,
            status: status.as_u16(),
            code,
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&(dyn ErasedBody + Sync)>,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        let response = self.send(method, path, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode {
            url,
            message: e.to_string(),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(reqwest::Method::GET, path, None).await
    }

    async fn post<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json(reqwest::Method::POST, path, Some(body)).await
    }

    /// `GET /v1/healthz`: the process is alive and serving.
    ///
    /// # Errors
    /// [`ClientError::Unreachable`] when nothing answers.
    pub async fn health(&self) -> Result<HealthResponse, ClientError> {
        self.get(api::paths::HEALTHZ).await
    }

    /// `GET /v1/readyz`: the JobManager has its job and answers about it.
    ///
    /// # Errors
    /// [`ClientError::Api`] with HTTP 503 and code `not_ready` before the job is built.
    pub async fn ready(&self) -> Result<HealthResponse, ClientError> {
        self.get(api::paths::READYZ).await
    }

    /// `GET /v1/config`: the effective configuration.
    ///
    /// # Errors
    /// Transport and decoding errors.
    pub async fn config(&self) -> Result<ClusterConfig, ClientError> {
        self.get(api::paths::CONFIG).await
    }

    /// `GET /v1/taskmanagers`: the TaskManagers registered with the JobManager, their slots
    /// and whether they are alive.
    ///
    /// # Errors
    /// Transport and decoding errors.
    pub async fn task_managers(&self) -> Result<TaskManagerList, ClientError> {
        self.get(api::paths::TASK_MANAGERS).await
    }

    /// `GET /v1/jobs`: the jobs (at most one in application mode).
    ///
    /// # Errors
    /// Transport and decoding errors.
    pub async fn jobs(&self) -> Result<JobList, ClientError> {
        self.get(api::paths::JOBS).await
    }

    /// `POST /v1/jobs`: submit a registered job to a session JobManager (`fjord jobmanager
    /// --session`); it runs next to the session's other jobs on their TaskManagers.
    ///
    /// # Errors
    /// HTTP 400 `bad_request` for an unknown job or bad arguments; HTTP 409 `not_a_session`,
    /// `job_exists` (a job with this ID runs) or `not_enough_slots` (too few free slots).
    pub async fn submit_job(
        &self,
        request: &api::SubmitJobRequest,
    ) -> Result<api::SubmitJobResponse, ClientError> {
        self.post(api::paths::JOBS, request).await
    }

    /// `GET /v1/jobs/{job_id}`: the job with its vertices and record counts.
    ///
    /// # Errors
    /// [`ClientError::Api`] with HTTP 404 and code `job_not_found` for an unknown ID.
    pub async fn job(&self, job_id: &str) -> Result<JobDetails, ClientError> {
        self.get(&job_path(job_id, "")).await
    }

    /// `POST /v1/jobs/{job_id}/cancel`: cancel without a savepoint. Cancelling a job that
    /// already ended succeeds and returns its terminal state.
    ///
    /// # Errors
    /// HTTP 404 `job_not_found` for an unknown ID.
    pub async fn cancel(&self, job_id: &str) -> Result<CancelResponse, ClientError> {
        self.post(&job_path(job_id, "/cancel"), &serde_json::json!({}))
            .await
    }

    /// `GET /v1/jobs/{job_id}/exceptions`: the failures of the job's execution attempts,
    /// newest first, and the root cause when it failed.
    ///
    /// # Errors
    /// HTTP 404 for an unknown job.
    pub async fn exceptions(&self, job_id: &str) -> Result<api::ExceptionHistory, ClientError> {
        self.get(&job_path(job_id, "/exceptions")).await
    }

    /// `GET /v1/jobs/{job_id}/checkpoints`.
    ///
    /// # Errors
    /// HTTP 404 for an unknown job.
    pub async fn checkpoints(&self, job_id: &str) -> Result<CheckpointHistory, ClientError> {
        self.get(&job_path(job_id, "/checkpoints")).await
    }

    /// `GET /v1/jobs/{job_id}/checkpoints/latest`.
    ///
    /// # Errors
    /// HTTP 404 for an unknown job or when no checkpoint has completed yet.
    pub async fn latest_checkpoint(&self, job_id: &str) -> Result<LatestCheckpoint, ClientError> {
        self.get(&job_path(job_id, "/checkpoints/latest")).await
    }

    /// `POST /v1/jobs/{job_id}/checkpoints`: take a checkpoint now (Flink's manual
    /// checkpoint); `202` with the `request-id` to poll
    /// [`checkpoint_trigger_status`](Self::checkpoint_trigger_status) with. Idempotent per
    /// `triggerId` when the request carries one.
    ///
    /// # Errors
    /// HTTP 400 for a malformed trigger ID; HTTP 404 for an unknown job; HTTP 409 while the
    /// job is not running or a rescale is in progress.
    pub async fn trigger_checkpoint(
        &self,
        job_id: &str,
        request: &api::CheckpointTriggerRequest,
    ) -> Result<api::CheckpointTriggerAccepted, ClientError> {
        self.post(&job_path(job_id, "/checkpoints"), request).await
    }

    /// `GET /v1/jobs/{job_id}/checkpoints/{trigger_id}`: `IN_PROGRESS`, then `COMPLETED`
    /// with the checkpoint's id and path or the failure cause.
    ///
    /// # Errors
    /// HTTP 404 `unknown_trigger` when this JobManager never saw the trigger ID (sending the
    /// trigger again is then safe).
    pub async fn checkpoint_trigger_status(
        &self,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<api::CheckpointTriggerStatus, ClientError> {
        self.get(&job_path(
            job_id,
            &format!("/checkpoints/{}", encode_segment(trigger_id)),
        ))
        .await
    }

    /// `POST /v1/jobs/{job_id}/savepoints`: start a savepoint; idempotent per trigger ID.
    ///
    /// # Errors
    /// HTTP 400 for a malformed trigger ID or a missing savepoint directory; HTTP 404 for an
    /// unknown job; HTTP 409 while the job is not running.
    pub async fn trigger_savepoint(
        &self,
        job_id: &str,
        request: &SavepointRequest,
    ) -> Result<SavepointAccepted, ClientError> {
        self.post(&job_path(job_id, "/savepoints"), request).await
    }

    /// `GET /v1/jobs/{job_id}/savepoints/{trigger_id}`.
    ///
    /// # Errors
    /// HTTP 404 `unknown_trigger` when this JobManager never saw the trigger ID (sending the
    /// trigger again is then safe).
    pub async fn savepoint_status(
        &self,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<SavepointStatus, ClientError> {
        self.get(&job_path(
            job_id,
            &format!("/savepoints/{}", encode_segment(trigger_id)),
        ))
        .await
    }

    /// `POST /v1/jobs/{job_id}/stop`: stop with a final savepoint; the job keeps running if the
    /// savepoint fails. Idempotent per trigger ID.
    ///
    /// # Errors
    /// HTTP 400 for a malformed trigger ID or a missing savepoint directory; HTTP 404 for an
    /// unknown job; HTTP 409 while the job is not running.
    pub async fn stop_with_savepoint(
        &self,
        job_id: &str,
        request: &SavepointRequest,
    ) -> Result<SavepointAccepted, ClientError> {
        self.post(&job_path(job_id, "/stop"), request).await
    }

    /// `POST /v1/jobs/{job_id}/rescale`: rescale in place (stop with a savepoint, start again
    /// from it at the new parallelism); `202` with the trigger ID to poll with
    /// [`rescale_status`](Self::rescale_status). Idempotent per trigger ID.
    ///
    /// # Errors
    /// HTTP 400 for a parallelism out of range or no savepoint location; HTTP 409 when the
    /// job is not running, a savepoint or rescale is in progress, or TaskManagers offer too
    /// few slots.
    pub async fn rescale(
        &self,
        job_id: &str,
        request: &RescaleRequest,
    ) -> Result<SavepointAccepted, ClientError> {
        self.post(&job_path(job_id, "/rescale"), request).await
    }

    /// `GET /v1/jobs/{job_id}/rescale/{trigger_id}`: how the rescale went.
    ///
    /// # Errors
    /// HTTP 404 `unknown_trigger` for an ID this JobManager never saw.
    pub async fn rescale_status(
        &self,
        job_id: &str,
        trigger_id: &str,
    ) -> Result<RescaleStatus, ClientError> {
        self.get(&job_path(
            job_id,
            &format!("/rescale/{}", encode_segment(trigger_id)),
        ))
        .await
    }

    /// `POST /v1/savepoints/dispose`: delete a savepoint's files.
    ///
    /// # Errors
    /// HTTP 400 when the path is not a savepoint or cannot be deleted.
    pub async fn dispose_savepoint(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        self.post(
            api::paths::DISPOSE_SAVEPOINT,
            &DisposeSavepointRequest { path: path.into() },
        )
        .await
    }

    /// `GET /v1/openapi.json`: the OpenAPI document the server serves.
    ///
    /// # Errors
    /// Transport and decoding errors.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        self.get(api::paths::OPENAPI).await
    }

    /// `GET /metrics`: the Prometheus text exposition.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        let url = self.url(api::paths::METRICS);
        self.send(reqwest::Method::GET, api::paths::METRICS, None)
            .await?
            .text()
            .await
            .map_err(|source| ClientError::Unreachable { url, source })
    }
}

/// A request body, object-safe so `send` stays non-generic.
trait ErasedBody {
    fn to_json(&self) -> Vec<u8>;
}

impl<T: Serialize> ErasedBody for T {
    fn to_json(&self) -> Vec<u8> {
        // Serializing the API's own types cannot fail (no maps with non-string keys).
        serde_json::to_vec(self).unwrap_or_default()
    }
}

fn job_path(job_id: &str, rest: &str) -> String {
    format!("{}/jobs/{}{rest}", api::API_PREFIX, encode_segment(job_id))
}

/// Percent-encodes everything but unreserved characters, so an ID cannot escape its path
/// segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_may_include_the_version() {
        for url in [
            "http://jm:8081",
            "http://jm:8081/",
            "http://jm:8081/v1",
            "http://jm:8081/v1/",
        ] {
            assert_eq!(Client::new(url).unwrap().root(), "http://jm:8081", "{url}");
        }
    }

    #[test]
    fn a_bad_base_url_is_refused_with_the_expected_form() {
        let err = Client::new("jm:8081").unwrap_err().to_string();
        assert!(err.contains("expected http://host:port"), "{err}");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(job_path("a/b c", "/cancel"), "/v1/jobs/a%2Fb%20c/cancel");
    }

    #[test]
    fn the_openapi_document_is_valid_json() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_unreachable() {
        // Bind and drop to find a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let err = client.health().await.unwrap_err();
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
}
