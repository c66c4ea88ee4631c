//! `fjord-node-agent`: the test stand-in for the kubelet and the container runtime.
//!
//! It registers Nodes with a real API server and runs each Pod scheduled to them as local
//! processes (an image name maps to a binary). See `docs/test-infrastructure.md` for exactly what
//! it does and does not do.
//!
//! Modules, leaves first:
//! - `images`: image name → local binary table.
//! - `ipam`: per-run pool of 127.42.N.x pod addresses.
//! - `launch`: the `__launch` re-exec that sets up a Pod process's mount namespace and execs it.
//! - `quantity`: the few Kubernetes quantity conversions the downward API needs.
//! - `env`: a container's environment (env, envFrom, downward API, `$(VAR)` expansion).
//! - `volumes`: ConfigMap/Secret/projected/emptyDir/downwardAPI/hostPath volumes as directories.
//! - `probe`: httpGet / tcpSocket / exec probes.
//! - `proxy`: the kube-proxy stand-in, TCP forwarding from ClusterIP:port to ready endpoints.
//! - `resolver`: per-Pod `/etc/hosts` files (Service names → ClusterIPs or, headless, ready Pod
//!   addresses) and the proxy rules, from watched Services and Pods.
//! - `container`: one container's process, probes and restart bookkeeping.
//! - `status`: PodStatus from the containers' state.
//! - `kubelet_api`: the `/containerLogs` endpoint behind `kubectl logs`.
//! - `pod`: one Pod's lifecycle (prepare, run, probe, restart, terminate, finalize).
//! - `node`: Node registration, status and Lease heartbeats.
//! - `manager`: watches Pods per node and owns the pod tasks; shutdown.

mod cli;
mod container;
mod env;
mod images;
mod ipam;
mod kubelet_api;
mod launch;
mod manager;
mod node;
mod pod;
mod probe;
mod proxy;
mod quantity;
mod resolver;
mod status;
mod volumes;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(launch::SUBCOMMAND) {
        // Runs in the forked child just before it becomes the Pod's process; never returns on success.
        return launch::run(&argv[2..]);
    }
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(manager::run(cli))
}
