//! Bearer-token authentication of the REST API: every request must carry
//! `Authorization: Bearer <token>` with the token from `security.rest.token-file`, except the
//! paths opened by configuration (health by default; `/metrics` and read-only GETs on request)
//! and the dashboard's static files. Anything else is answered 401 with a JSON error that says
//! what to send.
//!
//! The dashboard's files (`/`, `/dashboard/*`, see [`super::dashboard::ASSETS`]) are always
//! served without a token: they are the same for everyone (compiled into the binary) and hold
//! no job data. The page then asks the user for the token and sends it as a bearer header on
//! its API calls (kept in the tab's `sessionStorage`, never in a URL or a cookie), so the API
//! itself stays closed and no cross-site request can carry the token.
//!
//! The token is held in [`RestToken`], whose `Debug` never shows it; it is compared in
//! constant time.

use crate::WorkerError;
use crate::tls::RestAuthConfig;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fjord_client::api::{codes, paths};
use std::sync::Arc;

/// A bearer token; `Debug` shows `RestToken(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct RestToken(String);

impl std::fmt::Debug for RestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestToken(***)")
    }
}

impl RestToken {
    /// Reads the token from `path` (surrounding whitespace, such as a final newline, is not
    /// part of it).
    ///
    /// # Errors
    /// [`WorkerError::Config`] when the file cannot be read or is empty; the message names the
    /// file, never its content.
    pub fn read(path: &std::path::Path) -> Result<RestToken, WorkerError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            WorkerError::Config(format!(
                "security.rest.token-file {}: cannot read it: {e}",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(WorkerError::Config(format!(
                "security.rest.token-file {} is empty; put the bearer token in it",
                path.display()
            )));
        }
        Ok(RestToken(token.to_string()))
    }

    /// Constant-time comparison with what a caller sent.
    fn matches(&self, sent: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if sent.len() != expected.len() {
            return false;
        }
        expected
            .iter()
            .zip(sent)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The REST API's access rule.
#[derive(Debug, Clone)]
pub struct RestAuth {
    token: RestToken,
    open_read_only: bool,
    open_metrics: bool,
    open_health: bool,
}

impl RestAuth {
    /// The rule of `config`: `None` when no token file is configured (no authentication).
    ///
    /// # Errors
    /// The token file cannot be read or is empty.
    pub fn load(config: &RestAuthConfig) -> Result<Option<Arc<RestAuth>>, WorkerError> {
        let Some(path) = &config.token_file else {
            return Ok(None);
        };
        Ok(Some(Arc::new(RestAuth {
            token: RestToken::read(path)?,
            open_read_only: config.open_read_only,
            open_metrics: config.open_metrics,
            open_health: config.open_health,
        })))
    }

    /// Whether `method path` may be served without a token.
    fn is_open(&self, method: &Method, path: &str) -> bool {
        let read = method == Method::GET || method == Method::HEAD;
        (read && super::dashboard::is_asset(path))
            || (self.open_health && read && (path == paths::HEALTHZ || path == paths::READYZ))
            || (self.open_metrics && read && path == paths::METRICS)
            || (self.open_read_only && read)
    }
}

/// The middleware: passes authorized requests on, answers the others 401.
pub async fn check(State(auth): State<Arc<RestAuth>>, request: Request, next: Next) -> Response {
    if auth.is_open(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let sent = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match sent {
        Some(token) if auth.token.matches(token.as_bytes()) => next.run(request).await,
        Some(_) => unauthorized(
            "the bearer token is not valid for this JobManager; use the token of its \
             security.rest.token-file (the StreamJob's REST token Secret)",
        ),
        None => unauthorized(
            "this JobManager requires authentication: send `Authorization: Bearer <token>` \
             (fjord CLI: --token-file or FJORD_REST_TOKEN_FILE)",
        ),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        super::rest::ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message)
            .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"fjord\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(open_read_only: bool, open_metrics: bool, open_health: bool) -> RestAuth {
        RestAuth {
            token: RestToken("s3cret-token".into()),
            open_read_only,
            open_metrics,
            open_health,
        }
    }

    #[test]
    fn open_paths_follow_the_settings() {
        let table = [
            // (open_read_only, open_metrics, open_health, method, path, open)
            (false, false, true, Method::GET, paths::HEALTHZ, true),
            (false, false, false, Method::GET, paths::HEALTHZ, false),
            (false, false, true, Method::GET, paths::METRICS, false),
            (false, true, true, Method::GET, paths::METRICS, true),
            (false, false, true, Method::GET, paths::JOBS, false),
            // The dashboard's files, never its API.
            (false, false, false, Method::GET, "/", true),
            (false, false, false, Method::HEAD, "/dashboard/app.js", true),
            (false, false, false, Method::POST, "/", false),
            (
                false,
                false,
                false,
                Method::GET,
                "/dashboard/other.js",
                false,
            ),
            (
                false,
                false,
                false,
                Method::GET,
                "/v1/jobs/x/checkpoints",
                false,
            ),
            (true, false, true, Method::GET, paths::JOBS, true),
            (true, true, true, Method::POST, "/v1/jobs/x/cancel", false),
            (
                true,
                true,
                true,
                Method::POST,
                paths::DISPOSE_SAVEPOINT,
                false,
            ),
        ];
        for (ro, metrics, health, method, path, open) in table {
            assert_eq!(
                auth(ro, metrics, health).is_open(&method, path),
                open,
                "{method} {path} read-only={ro} metrics={metrics} health={health}"
            );
        }
    }

    #[test]
    fn the_token_matches_exactly() {
        let a = auth(false, false, false);
        assert!(a.token.matches(b"s3cret-token"));
        assert!(!a.token.matches(b"s3cret-tokeN"));
        assert!(!a.token.matches(b"s3cret"));
        assert!(!a.token.matches(b""));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let shown = format!("{:?}", auth(true, true, true));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
