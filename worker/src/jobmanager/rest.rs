//! The JobManager's REST API (JSON over HTTP, versioned under `/v1`), described by the OpenAPI
//! document in `fjord-client` and documented in `docs/rest-api.md`. Request and response types
//! come from [`fjord_client::api`], so the server and the client cannot drift apart.
//!
//! Savepoints and rescales in place are asynchronous and idempotent per caller-chosen trigger
//! ID.

use super::JobManagerState;
use super::job::{JobManager, SavepointRefusal};
use super::metrics;
use super::session::SubmitError;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use fjord_client::api::{
    CancelResponse, CheckpointTriggerAccepted, CheckpointTriggerRequest, DisposeSavepointRequest,
    ErrorBody, HealthResponse, JobList, LatestCheckpoint, RescaleRequest, SavepointAccepted,
    SavepointRequest, SubmitJobRequest, SubmitJobResponse, TaskManagerList, codes, paths,
    validate_checkpoint_trigger_id, validate_trigger_id,
};
use std::sync::Arc;

/// An error answer: status, stable code and a message a person can act on.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    fn refused(refusal: SavepointRefusal) -> Self {
        match refusal {
            SavepointRefusal::NotRunning(state) => Self::new(
                StatusCode::CONFLICT,
                codes::JOB_NOT_RUNNING,
                format!("the job is {state}; a savepoint needs a RUNNING job"),
            ),
            SavepointRefusal::NoDirectory => Self::bad_request(
                "no savepoint directory: pass \"directory\" in the request or configure \
                 savepoints.directory on the JobManager",
            ),
            SavepointRefusal::Busy(message) => {
                Self::new(StatusCode::CONFLICT, codes::JOB_NOT_RUNNING, message)
            }
            SavepointRefusal::NotEnoughSlots {
                required,
                available,
            } => Self::new(
                StatusCode::CONFLICT,
                codes::NOT_ENOUGH_SLOTS,
                format!(
                    "the job needs {required} task slots at the new parallelism, but \
                     TaskManagers offer {available}; start more TaskManagers (or give them \
                     more slots) first. Nothing was changed"
                ),
            ),
            SavepointRefusal::Invalid(message) => Self::bad_request(format!(
                "the job cannot be built at the new parallelism: {message}"
            )),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.code.into(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::new(
            rejection.status(),
            codes::BAD_REQUEST,
            format!(
                "{}; send a JSON body with Content-Type: application/json as described in \
                 /v1/openapi.json",
                rejection.body_text()
            ),
        )
    }
}

type ApiResult<T> = Result<T, ApiError>;
type Shared = Arc<JobManagerState>;

pub(crate) fn job_or_404(state: &JobManagerState, job_id: &str) -> ApiResult<Arc<JobManager>> {
    if state.session().is_some() {
        return state.job_by_id(job_id).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                codes::JOB_NOT_FOUND,
                format!("no job '{job_id}' in this session; see GET /v1/jobs"),
            )
        });
    }
    let Some(job) = state.job() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::JOB_NOT_FOUND,
            format!("no job '{job_id}': this JobManager has not built its job yet; retry shortly"),
        ));
    };
    if job.id() != job_id {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::JOB_NOT_FOUND,
            format!(
                "no job '{job_id}' on this JobManager; it runs job '{}' ({}), see GET /v1/jobs",
                job.id(),
                job.name()
            ),
        ));
    }
    Ok(job)
}

async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

async fn readyz(State(state): State<Shared>) -> ApiResult<Json<HealthResponse>> {
    match state.job().map(|_| ()).or(state.session().map(|_| ())) {
        Some(()) => Ok(Json(HealthResponse {
            status: "ready".into(),
        })),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::NOT_READY,
            "the JobManager is still building its job",
        )),
    }
}

async fn config(State(state): State<Shared>) -> Response {
    Json(state.config()).into_response()
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        fjord_client::OPENAPI_JSON,
    )
        .into_response()
}

async fn jobs(State(state): State<Shared>) -> Json<JobList> {
    Json(JobList {
        jobs: state.all_jobs().iter().map(|j| j.summary()).collect(),
    })
}

async fn submit(
    State(state): State<Shared>,
    body: Result<Json<SubmitJobRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Some(session) = state.session() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::NOT_A_SESSION,
            "this JobManager runs in application mode (one job, given when it started); \
             submit jobs to a session JobManager (`fjord jobmanager --session`)",
        ));
    };
    let Json(request) = body?;
    let result = tokio::task::spawn_blocking(move || session.submit(&request))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                format!("the submission failed: {e}"),
            )
        })?;
    match result {
        Ok(job) => Ok((
            StatusCode::ACCEPTED,
            Json(SubmitJobResponse {
                id: job.id().into(),
                name: job.name().into(),
                state: job.state(),
            }),
        )
            .into_response()),
        Err(e @ SubmitError::Exists { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::JOB_EXISTS,
            e.to_string(),
        )),
        Err(e @ SubmitError::NotEnoughSlots { .. }) => Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::NOT_ENOUGH_SLOTS,
            e.to_string(),
        )),
        Err(e @ SubmitError::Invalid(_)) => Err(ApiError::bad_request(e.to_string())),
    }
}

async fn job(State(state): State<Shared>, Path(job_id): Path<String>) -> ApiResult<Response> {
    Ok(Json(job_or_404(&state, &job_id)?.details()).into_response())
}

async fn cancel(State(state): State<Shared>, Path(job_id): Path<String>) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    let state = job.cancel();
    Ok((
        StatusCode::ACCEPTED,
        Json(CancelResponse {
            id: job.id().into(),
            state,
        }),
    )
        .into_response())
}

async fn checkpoints(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    Ok(Json(job.checkpoints()).into_response())
}

async fn latest_checkpoint(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    Ok(Json(LatestCheckpoint {
        checkpoint: job.latest_checkpoint(),
    })
    .into_response())
}

async fn trigger_checkpoint(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
    body: Result<Json<CheckpointTriggerRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    let Json(request) = body?;
    if let Some(id) = &request.trigger_id {
        validate_checkpoint_trigger_id(id).map_err(ApiError::bad_request)?;
    }
    let refused = |refusal| match refusal {
        SavepointRefusal::NotRunning(state) => ApiError::new(
            StatusCode::CONFLICT,
            codes::JOB_NOT_RUNNING,
            format!("the job is {state}; a checkpoint needs a RUNNING job"),
        ),
        other => ApiError::refused(other),
    };
    let request_id = job
        .trigger_checkpoint(request.trigger_id.as_deref(), request.checkpoint_type)
        .map_err(refused)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CheckpointTriggerAccepted { request_id }),
    )
        .into_response())
}

async fn checkpoint_trigger_status(
    State(state): State<Shared>,
    Path((job_id, trigger_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    match job.checkpoint_trigger_status(&trigger_id) {
        Some(status) => Ok(Json(status).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::UNKNOWN_TRIGGER,
            format!(
                "this JobManager has no checkpoint with trigger ID '{trigger_id}' (it was never \
                 triggered here, or the JobManager restarted); triggering it again is safe"
            ),
        )),
    }
}

fn accepted(trigger_id: String) -> Response {
    (StatusCode::ACCEPTED, Json(SavepointAccepted { trigger_id })).into_response()
}

fn savepoint_request(
    body: Result<Json<SavepointRequest>, JsonRejection>,
) -> ApiResult<SavepointRequest> {
    let Json(request) = body?;
    validate_trigger_id(&request.trigger_id).map_err(ApiError::bad_request)?;
    Ok(request)
}

async fn trigger_savepoint(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
    body: Result<Json<SavepointRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    let request = savepoint_request(body)?;
    job.savepoint(&request.trigger_id, request.directory.as_deref(), None)
        .map_err(ApiError::refused)?;
    Ok(accepted(request.trigger_id))
}

async fn savepoint_status(
    State(state): State<Shared>,
    Path((job_id, trigger_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    if let Some(status) = job.savepoint_status(&trigger_id) {
        return Ok(Json(status).into_response());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        codes::UNKNOWN_TRIGGER,
        format!(
            "this JobManager has no savepoint with trigger ID '{trigger_id}' (it was never \
             triggered here, or the JobManager restarted); triggering it again is safe"
        ),
    ))
}

async fn stop_with_savepoint(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
    body: Result<Json<SavepointRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    let request = savepoint_request(body)?;
    job.savepoint(
        &request.trigger_id,
        request.directory.as_deref(),
        Some(request.drain),
    )
    .map_err(ApiError::refused)?;
    Ok(accepted(request.trigger_id))
}

async fn rescale(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
    body: Result<Json<RescaleRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    let Json(request) = body?;
    let max = job
        .plan()
        .vertices
        .iter()
        .map(|v| v.max_parallelism)
        .min()
        .unwrap_or(usize::MAX);
    if request.parallelism == 0 || request.parallelism > max {
        return Err(ApiError::bad_request(format!(
            "parallelism must be between 1 and the job's max parallelism {max}, got {}",
            request.parallelism
        )));
    }
    let trigger_id = match request.trigger_id {
        Some(id) => {
            validate_trigger_id(&id).map_err(ApiError::bad_request)?;
            id
        }
        None => format!(
            "rescale-{}-to-{}",
            job.rescale_count() + 1,
            request.parallelism
        ),
    };
    let refused = |refusal| match refusal {
        SavepointRefusal::NoDirectory => ApiError::bad_request(
            "rescaling needs a place for its savepoint: configure savepoints.directory or a \
             checkpoint storage (checkpointing.storage) on the JobManager",
        ),
        SavepointRefusal::NotRunning(state) => ApiError::new(
            StatusCode::CONFLICT,
            codes::JOB_NOT_RUNNING,
            format!("the job is {state}; rescaling needs a RUNNING job"),
        ),
        other => ApiError::refused(other),
    };
    job.rescale(&trigger_id, request.parallelism)
        .map_err(refused)?;
    Ok(accepted(trigger_id))
}

async fn rescale_status(
    State(state): State<Shared>,
    Path((job_id, trigger_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let job = job_or_404(&state, &job_id)?;
    match job.rescale_status(&trigger_id) {
        Some(status) => Ok(Json(status).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::UNKNOWN_TRIGGER,
            format!(
                "this JobManager has no rescale with trigger ID '{trigger_id}' (it was never \
                 requested here, or the JobManager restarted)"
            ),
        )),
    }
}

async fn dispose_savepoint(
    State(state): State<Shared>,
    body: Result<Json<DisposeSavepointRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(request) = body?;
    let path = request.path.trim().trim_end_matches('/').to_string();
    if path.is_empty() {
        return Err(ApiError::bad_request(
            "the request's path is empty; pass the path a completed savepoint reported",
        ));
    }
    // Only a directory whose `_metadata` Fjord wrote for a savepoint is deleted, and only the
    // files that savepoint lists: a wrong path cannot delete other data.
    let options = state.storage_options();
    let target = path.clone();
    let result = tokio::task::spawn_blocking(move || {
        fjord::checkpoint::dispose_savepoint(&target, &options)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            format!("cannot dispose of {path}: {e}"),
        )
    })?;
    match result {
        Ok(deleted) => Ok(Json(serde_json::json!({ "deleted_files": deleted })).into_response()),
        Err(e @ fjord::FjordError::Storage { .. }) if !e.to_string().contains(": open failed") => {
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                format!("cannot dispose of {path}: {e}"),
            ))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "{path:?} is not a savepoint directory: {e}; pass the path a completed savepoint reported"
        ))),
    }
}

async fn task_managers(State(state): State<Shared>) -> Json<TaskManagerList> {
    Json(state.task_managers().list())
}

async fn prometheus(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(state.job().as_deref()) + &state.task_managers().render_metrics(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!(
            "no route {method} {}; the API lives under /v1 (see /v1/openapi.json)",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!(
            "{method} is not allowed on {}; see /v1/openapi.json for the methods",
            uri.path()
        ),
    )
}

/// Every route: method, path and handler. The router is built from this table, and a test
/// checks each entry against the OpenAPI document.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Shared>)> {
    vec![
        (Method::GET, paths::HEALTHZ, get(healthz)),
        (Method::GET, paths::READYZ, get(readyz)),
        (Method::GET, paths::CONFIG, get(config)),
        (Method::GET, paths::OPENAPI, get(openapi)),
        (Method::GET, paths::JOBS, get(jobs)),
        (Method::POST, paths::JOBS, post(submit)),
        (Method::GET, paths::JOB, get(job)),
        (Method::POST, paths::CANCEL, post(cancel)),
        (Method::GET, paths::CHECKPOINTS, get(checkpoints)),
        (Method::POST, paths::CHECKPOINTS, post(trigger_checkpoint)),
        (
            Method::GET,
            paths::CHECKPOINT_TRIGGER,
            get(checkpoint_trigger_status),
        ),
        (
            Method::GET,
            paths::LATEST_CHECKPOINT,
            get(latest_checkpoint),
        ),
        (Method::POST, paths::SAVEPOINTS, post(trigger_savepoint)),
        (Method::GET, paths::SAVEPOINT, get(savepoint_status)),
        (Method::POST, paths::STOP, post(stop_with_savepoint)),
        (Method::POST, paths::RESCALE, post(rescale)),
        (Method::GET, paths::RESCALE_STATUS, get(rescale_status)),
        (
            Method::POST,
            paths::DISPOSE_SAVEPOINT,
            post(dispose_savepoint),
        ),
        (Method::GET, paths::TASK_MANAGERS, get(task_managers)),
        (Method::GET, paths::METRICS, get(prometheus)),
    ]
    .into_iter()
    .chain(super::rest_dashboard::routes())
    .collect()
}

/// The REST API over `state`.
pub fn router(state: Shared) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(fjord_client::OPENAPI_JSON).unwrap();
        let documented = doc["paths"].as_object().unwrap();
        let routes = routes();
        for (method, path, _) in &routes {
            let entry = documented
                .get(*path)
                .unwrap_or_else(|| panic!("{path} is not in client/openapi.json"));
            let op = &entry[method.as_str().to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{method} {path} is not in client/openapi.json"
            );
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
        // And the document promises nothing the router lacks.
        for (path, ops) in documented {
            for method in ops.as_object().unwrap().keys() {
                assert!(
                    routes
                        .iter()
                        .any(|(m, p, _)| p == path && m.as_str().eq_ignore_ascii_case(method)),
                    "the document lists {method} {path}, which the router does not serve"
                );
            }
        }
    }
}
