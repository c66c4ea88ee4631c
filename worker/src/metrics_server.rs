//! A tiny HTTP server that answers `GET /metrics` with the Prometheus text a
//! [`MetricsSource`] renders (Flink's Prometheus reporter, default port 9249): what a
//! TaskManager exposes for its subtasks, on `taskmanager.metrics.port`. Every other path is 404.
//!
//! ```no_run
//! # async fn example() -> Result<(), fjord_worker::WorkerError> {
//! use fjord_worker::metrics_server::{MetricsServer, MetricsSource};
//! use std::sync::Arc;
//! let source: MetricsSource = Arc::new(|| "fjord_up 1\n".to_string());
//! let server = MetricsServer::start("0.0.0.0", 9249, source).await?;
//! // ... later
//! server.stop().await;
//! # Ok(()) }
//! ```

use crate::WorkerError;
use crate::prometheus::CONTENT_TYPE;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;

/// Renders the current metrics in the Prometheus text format; called on every scrape.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// A running metrics server.
#[derive(Debug)]
pub struct MetricsServer {
    /// Where it listens (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsServer {
    /// Binds `address:port` (0 picks a free port) and serves `GET /metrics` from `source` in
    /// the background, on the current tokio runtime.
    ///
    /// # Errors
    /// [`WorkerError::Serve`] when the address cannot be bound (port in use, bad address).
    pub async fn start(
        address: &str,
        port: u16,
        source: MetricsSource,
    ) -> Result<MetricsServer, WorkerError> {
        let serve_error = |source| WorkerError::Serve {
            address: format!("{address}:{port}"),
            source,
        };
        let listener = tokio::net::TcpListener::bind((address, port))
            .await
            .map_err(serve_error)?;
        let addr = listener.local_addr().map_err(serve_error)?;
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let source = source.clone();
                async move {
                    // Rendering reads locks of running tasks; keep it off the async workers.
                    let text = tokio::task::spawn_blocking(move || source())
                        .await
                        .unwrap_or_default();
                    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
                }
            }),
        );
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // A dropped sender (the server dropped without `stop`) stops it as well.
                    let _ = stop.await;
                })
                .await
        });
        Ok(MetricsServer {
            addr,
            shutdown,
            task,
        })
    }

    /// Stops accepting connections, lets scrapes in flight finish, and returns.
    pub async fn stop(self) {
        // The server may have ended already (receiver gone); how it ended changes nothing
        // now that it is being stopped (a panic was reported by the panic hook).
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord::runtime::io_metrics::OperatorIo;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_the_sources_text_over_http_on_loopback() {
        let scrapes = Arc::new(AtomicU64::new(0));
        let counted = scrapes.clone();
        let source: MetricsSource = Arc::new(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            let task = OperatorIo {
                vertex: 0,
                position: 0,
                operator: "Source: Numbers".into(),
                subtask: 0,
                records_in: 0,
                records_out: n,
                bytes_in: 0,
                bytes_out: 4 * n,
                backpressured_ms: 0,
                idle_ms: 0,
                busy_ms: 1,
                input_watermark: None,
                output_watermark: Some(42),
            };
            let mut out = String::new();
            crate::prometheus::render_tasks(
                &mut out,
                &[task],
                &[("taskmanager_id", "tm-1")],
                &|o| o.operator.clone(),
            );
            out
        });
        let server = MetricsServer::start("127.0.0.1", 0, source).await.unwrap();
        let url = format!("http://{}/metrics", server.addr);
        for expected in 1..=2 {
            let response = reqwest::get(&url).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.headers()[reqwest::header::CONTENT_TYPE],
                CONTENT_TYPE
            );
            let text = response.text().await.unwrap();
            let l = "{taskmanager_id=\"tm-1\",vertex=\"0\",task=\"Source: Numbers\",subtask=\"0\"}";
            assert!(
                text.contains(&format!("fjord_task_records_out_total{l} {expected}\n")),
                "rendered on every scrape: {text}"
            );
            assert!(text.contains(&format!("fjord_task_output_watermark_ms{l} 42\n")));
        }
        let other = reqwest::get(format!("http://{}/", server.addr))
            .await
            .unwrap();
        assert_eq!(other.status(), 404);
        server.stop().await;
        assert!(
            reqwest::get(&url).await.is_err(),
            "stopped servers do not answer"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_port_is_a_serve_error() {
        let first = MetricsServer::start("127.0.0.1", 0, Arc::new(String::new))
            .await
            .unwrap();
        let err = MetricsServer::start("127.0.0.1", first.addr.port(), Arc::new(String::new))
            .await
            .unwrap_err();
        assert!(matches!(err, WorkerError::Serve { .. }), "{err}");
        assert!(
            err.to_string().contains("taskmanager.metrics.port"),
            "{err}"
        );
        first.stop().await;
    }
}
