//! The web dashboard: its files, served by the JobManager at `/` beside the REST API they
//! read.
//!
//! The files are the checked-in sources under `dashboard/src/` at the repository root,
//! embedded into the binary when it is compiled (`include_str!`), so the binary and the
//! image need nothing else and a Rust toolchain alone builds them: the front end is plain
//! ES modules with no build step (see `docs/dashboard.md` for why). Every answer carries a
//! Content-Security-Policy that allows only this origin, so the page runs no script and
//! loads nothing from elsewhere.
//!
//! For work on the front end, `FJORD_DASHBOARD_DIR=<dir>` makes the JobManager read the files
//! from `<dir>` (normally `dashboard/src`) on every request instead, so an edit shows on reload
//! without rebuilding the binary.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The environment variable naming a directory to serve the files from instead.
pub const DIR_ENV: &str = "FJORD_DASHBOARD_DIR";

/// One embedded file: the path it is served at, its media type and its bytes.
pub struct Asset {
    /// The URL path.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The file's text.
    pub body: &'static str,
}

/// Every file of the dashboard. `/` is the page; the others are under `/dashboard/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../../../dashboard/src/index.html"),
    },
    Asset {
        path: "/dashboard/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../dashboard/src/app.js"),
    },
    Asset {
        path: "/dashboard/auth.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../dashboard/src/auth.js"),
    },
    Asset {
        path: "/dashboard/graph.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../dashboard/src/graph.js"),
    },
    Asset {
        path: "/dashboard/format.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../../dashboard/src/format.js"),
    },
    Asset {
        path: "/dashboard/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../../dashboard/src/style.css"),
    },
    Asset {
        path: "/dashboard/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../../dashboard/src/favicon.svg"),
    },
];

/// Whether `path` is one of the dashboard's files (served without a token even when the REST
/// API needs one: see `rest_auth`).
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|a| a.path == path)
}

/// Only this origin: no inline script, no framing by other sites.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The file's name in `dashboard/src/`.
fn file_name(asset: &Asset) -> &'static str {
    match asset.path.rsplit('/').next() {
        Some("") | None => "index.html",
        Some(name) => name,
    }
}

fn serve(asset: &'static Asset) -> Response {
    let body = match std::env::var_os(DIR_ENV) {
        Some(dir) => {
            let path = std::path::Path::new(&dir).join(file_name(asset));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| format!("cannot read {} ({DIR_ENV}): {e}", path.display()))
        }
        None => asset.body.to_string(),
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // The files change with the binary; revalidating is cheap on loopback and in a
            // cluster, and an upgraded JobManager never serves a stale script.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The routes of the dashboard's files (no state, no fallback: the REST router's applies).
pub fn router() -> Router {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(asset.path, get(move || async move { serve(asset) }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_references_is_served() {
        // Each `./x.js` a served module imports, and each `dashboard/x` the page links, is an
        // asset: a reference to a file not in ASSETS would 404 in the browser.
        let served: Vec<&str> = ASSETS.iter().map(|a| a.path).collect();
        for asset in ASSETS {
            for piece in asset.body.split(['"', '\'']) {
                let referenced = if let Some(rest) = piece.strip_prefix("./") {
                    rest.ends_with(".js").then(|| format!("/dashboard/{rest}"))
                } else if piece.starts_with("dashboard/") && !piece.contains(' ') {
                    Some(format!("/{piece}"))
                } else {
                    None
                };
                if let Some(path) = referenced {
                    assert!(
                        served.contains(&path.as_str()),
                        "{} references {path}, which is not in ASSETS",
                        asset.path
                    );
                }
            }
        }
    }

    #[test]
    fn every_file_of_dashboard_src_is_served() {
        // A file added to dashboard/src/ must be embedded too (type declarations excepted:
        // they are for the type checker only).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboard/src");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".d.ts") {
                continue;
            }
            let path = if name == "index.html" {
                "/".to_string()
            } else {
                format!("/dashboard/{name}")
            };
            assert!(
                ASSETS.iter().any(|a| a.path == path),
                "dashboard/src/{name} is not embedded: add it to ASSETS"
            );
        }
    }

    #[test]
    fn no_asset_path_collides_with_the_api() {
        for asset in ASSETS {
            assert!(!asset.path.starts_with("/v1"), "{}", asset.path);
            assert_ne!(asset.path, fjord_client::api::paths::METRICS);
        }
    }
}
