//! The `fjord-operator` binary: runs the StreamJob controller with leader election, health
//! endpoints and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use fjord_operator::controller::{self, Context};
use fjord_operator::jobmanager::rest::RestJobManager;
use fjord_operator::leader::{self, LeaseConfig};
use fjord_operator::lifecycle::Settings;
use fjord_operator::metrics::Metrics;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tracing::{error, info};

/// The Fjord Kubernetes operator.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Namespaces to watch, comma separated; empty watches all namespaces.
    #[arg(
        long,
        env = "FJORD_WATCH_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    namespaces: Vec<String>,

    /// Elect a leader on a Lease so only one replica reconciles.
    #[arg(long, env = "FJORD_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,

    /// Name of the leader election Lease.
    #[arg(long, env = "FJORD_LEASE_NAME", default_value = "fjord-operator")]
    lease_name: String,

    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,

    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "fjord-operator")]
    identity: String,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "FJORD_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,

    /// Log filter, such as `info` or `fjord_operator=debug,kube=info`.
    #[arg(long, env = "FJORD_LOG", default_value = "info")]
    log: String,

    /// How long each step of a CA rotation waits for the Kubernetes Secret it published to
    /// reach every Pod before the next step (seconds). The kubelet updates mounted Secrets
    /// within its sync period plus its cache's TTL, about a minute each by default.
    #[arg(long, env = "FJORD_CA_PROPAGATION_SECONDS", default_value_t = 600)]
    ca_propagation_seconds: u64,

    /// Log format: `json` (structured) or `text`.
    #[arg(long, env = "FJORD_LOG_FORMAT", default_value = "json")]
    log_format: String,
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("invalid --log filter {:?}", args.log))?;
    if args.log_format == "json" {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        // Plain text for people and log collectors: no terminal colour codes.
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(filter)
            .init();
    }

    let client = Client::try_default()
        .await
        .context("cannot connect to the Kubernetes API (in-cluster config or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let state = HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_addr))?;
    info!(addr = %args.http_addr, "serving /metrics, /healthz and /readyz");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            error!(error = %e, "HTTP server stopped");
        }
    });

    // The replica is ready (serving health and waiting for the Lease) once it has started.
    ready.store(true, Ordering::SeqCst);
    let mut lease: Option<(Api<Lease>, LeaseConfig, tokio::task::JoinHandle<()>)> = None;
    if args.leader_elect {
        let cfg = LeaseConfig {
            name: args.lease_name.clone(),
            namespace: args.lease_namespace.clone(),
            identity: args.identity.clone(),
            lease_duration: Duration::from_secs(15),
            retry_period: Duration::from_secs(2),
        };
        let leases: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
        info!(lease = %cfg.name, identity = %cfg.identity, "waiting to lead");
        loop {
            match leader::try_lead(&leases, &cfg).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => error!(error = %e, "leader election failed; retrying"),
            }
            tokio::time::sleep(cfg.retry_period).await;
        }
        info!("leading");
        let renew_leases = leases.clone();
        let renew_cfg = cfg.clone();
        let renewer = tokio::spawn(async move {
            let (leases, cfg) = (renew_leases, renew_cfg);
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(cfg.retry_period).await;
                match leader::try_lead(&leases, &cfg).await {
                    Ok(true) => last_renewal = tokio::time::Instant::now(),
                    Ok(false) => {
                        error!("lost the leader Lease; exiting so that one leader remains");
                        std::process::exit(1);
                    }
                    Err(e) => {
                        error!(error = %e, "could not renew the leader Lease");
                        if last_renewal.elapsed() > cfg.lease_duration {
                            error!("the Lease expired without renewal; exiting");
                            std::process::exit(1);
                        }
                    }
                }
            }
        });
        lease = Some((leases, cfg, renewer));
    }

    let ca_rotation = fjord_operator::ca_rotation::Timing {
        propagation: Duration::from_secs(args.ca_propagation_seconds),
        ..Default::default()
    };
    let ctx = Arc::new(Context::new(
        client,
        RestJobManager::new()?,
        metrics,
        Settings {
            ca_rotation,
            ..Settings::default()
        },
        Some(args.identity.clone()),
    ));
    info!(namespaces = ?args.namespaces, "starting the StreamJob controller");
    let namespaces: Vec<String> = args
        .namespaces
        .into_iter()
        .filter(|n| !n.is_empty())
        .collect();
    let snapshot_namespaces: Vec<String> = namespaces.clone();
    let session_namespaces: Vec<String> = namespaces.clone();
    let session_ctx = Arc::new(
        fjord_operator::session::SessionContext::new(ctx.client.clone(), &args.identity)?
            .with_ca_rotation(ca_rotation),
    );
    tokio::join!(
        controller::run(ctx.clone(), namespaces),
        fjord_operator::snapshots::run(ctx, snapshot_namespaces),
        fjord_operator::session::run(session_ctx, session_namespaces)
    );
    if let Some((leases, cfg, renewer)) = lease {
        // The controller has stopped: hand the Lease over at once, so the next replica (a
        // `helm upgrade`'s new pod) leads within its retry period instead of the lease duration.
        renewer.abort();
        match leader::release(&leases, &cfg).await {
            Ok(true) => info!(lease = %cfg.name, "released the leader Lease"),
            Ok(false) => {}
            Err(e) => {
                error!(error = %e, "could not release the leader Lease; it expires on its own")
            }
        }
    }
    info!("stopped");
    Ok(())
}

async fn render_metrics(State(state): State<HttpState>) -> String {
    state.metrics.render()
}

async fn readyz(State(state): State<HttpState>) -> StatusCode {
    if state.ready.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}
