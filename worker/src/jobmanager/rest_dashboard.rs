//! The REST endpoints added for the web dashboard ([`super::dashboard`]): the exception
//! history, the checkpoint overview and one TaskManager with its subtasks. Part of the same
//! versioned API: [`routes`] joins [`rest::routes`](super::rest::routes), so the OpenAPI test
//! checks them too, and `docs/rest-api.md` documents them.

use super::JobManagerState;
use super::rest::{ApiError, job_or_404};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use fjord_client::api::dashboard::paths;
use fjord_client::api::{TaskManagerDetails, codes};
use std::sync::Arc;

type Shared = Arc<JobManagerState>;

async fn exceptions(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_or_404(&state, &job_id)?;
    Ok(Json(job.exceptions()).into_response())
}

async fn checkpoint_overview(
    State(state): State<Shared>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let job = job_or_404(&state, &job_id)?;
    Ok(Json(job.checkpoint_overview()).into_response())
}

async fn task_manager(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let list = state.task_managers().list();
    let Some(info) = list.task_managers.into_iter().find(|t| t.id == id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::NOT_FOUND,
            format!(
                "no TaskManager '{id}' registered with this JobManager; GET /v1/taskmanagers \
                 lists them"
            ),
        ));
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Every job's subtasks there (a session JobManager's jobs share TaskManagers).
    let subtasks = state
        .all_jobs()
        .iter()
        .flat_map(|job| job.subtasks_on(&id))
        .collect();
    Ok(Json(TaskManagerDetails {
        heartbeat_age_ms: (now_ms - info.last_heartbeat_ms).max(0),
        memory_rss_bytes: state.task_managers().memory_of(&id),
        info,
        subtasks,
    })
    .into_response())
}

/// The dashboard's endpoints: method, path and handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Shared>)> {
    vec![
        (Method::GET, paths::EXCEPTIONS, get(exceptions)),
        (
            Method::GET,
            paths::CHECKPOINT_OVERVIEW,
            get(checkpoint_overview),
        ),
        (Method::GET, paths::TASK_MANAGER, get(task_manager)),
    ]
}
