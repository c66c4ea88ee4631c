//! Request limits of the REST API (Flink's `rest.server.max-content-length`): a request whose
//! body is larger than the limit is answered 413 with a JSON error that names the setting,
//! before any handler sees it.
//!
//! A body that declares its length (`Content-Length`) above the limit is refused without
//! being read; a body that does not (chunked) is read up to the limit and refused as soon as
//! it passes it, so no request makes the JobManager hold more than the limit.

use super::rest::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fjord_client::api::codes;
use futures::StreamExt;

/// The configuration key of the limit, named in every refusal.
pub const MAX_CONTENT_LENGTH_KEY: &str = "rest.server.max-content-length";

/// Applies the body limit of `max_bytes` to every route of `app`.
pub fn limit_bodies(app: Router, max_bytes: u64) -> Router {
    // The middleware bounds every body, so the extractors' own 2 MB default must not refuse
    // bodies the configured limit allows.
    app.layer(axum::middleware::from_fn_with_state(max_bytes, limit))
        .layer(DefaultBodyLimit::disable())
}

/// The message of a refused body.
fn too_large_message(max_bytes: u64) -> String {
    format!(
        "the request body is larger than this JobManager accepts ({max_bytes} bytes, \
         {MAX_CONTENT_LENGTH_KEY}); send a smaller body or raise the setting"
    )
}

fn too_large(max_bytes: u64) -> Response {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::PAYLOAD_TOO_LARGE,
        too_large_message(max_bytes),
    )
    .into_response()
}

async fn limit(State(max_bytes): State<u64>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > max_bytes => too_large(max_bytes),
        // HTTP framing ends the body at its declared length.
        Some(_) => next.run(request).await,
        None => {
            let (parts, body) = request.into_parts();
            let mut stream = body.into_data_stream();
            let mut buffered = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) if (buffered.len() + bytes.len()) as u64 > max_bytes => {
                        return too_large(max_bytes);
                    }
                    Ok(bytes) => buffered.extend_from_slice(&bytes),
                    Err(e) => {
                        return ApiError::new(
                            StatusCode::BAD_REQUEST,
                            codes::BAD_REQUEST,
                            format!("the request body could not be read: {e}"),
                        )
                        .into_response();
                    }
                }
            }
            next.run(Request::from_parts(parts, Body::from(buffered)))
                .await
        }
    }
}
