//! The agent's top level: registers the Nodes, watches the Pods bound to each, runs one task per
//! Pod, and on SIGTERM/SIGINT stops every Pod process before exiting.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::Cli;
use crate::images::ImageMap;
use crate::ipam::Ipam;
use crate::node::{self, NodeInfo};
use crate::pod::{self, Shared, Update};
use crate::resolver::Resolver;

type Tasks = Arc<Mutex<JoinSet<()>>>;

async fn client(cli: &Cli) -> anyhow::Result<Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cli.kubeconfig)
        .with_context(|| format!("reading {}", cli.kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Run the agent until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = client(&cli).await?;
    let images = ImageMap::load(&cli.image_map)?;
    let ipam = Ipam::new(&cli.ip_block)?;
    let host_ip = ipam.node_ip();
    std::fs::create_dir_all(&cli.root)
        .with_context(|| format!("creating {}", cli.root.display()))?;
    let agent_exe = std::env::current_exe().context("locating fjord-node-agent itself")?;
    crate::launch::self_test(&agent_exe, &cli.root.join("self-test"))?;
    let resolver = Resolver::default();
    let shared = Arc::new(Shared {
        client: client.clone(),
        images,
        ipam: Mutex::new(ipam),
        resolver: resolver.clone(),
        root: cli.root.clone(),
        agent_exe,
        apiserver_port: cli.apiserver_port,
        live_logs: pod::LiveLogs::default(),
        node_cpu: cli.node_cpu.clone(),
        node_memory: cli.node_memory.clone(),
    });
    tokio::spawn(resolver.run(client.clone()));
    if let (true, Some(cert), Some(key)) =
        (cli.kubelet_port != 0, &cli.kubelet_cert, &cli.kubelet_key)
    {
        let addr = std::net::SocketAddr::new(host_ip.into(), cli.kubelet_port);
        let (cert, key, logs) = (cert.clone(), key.clone(), cli.root.join("logs"));
        let live = shared.live_logs.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::kubelet_api::serve(addr, cert, key, logs, live).await {
                tracing::error!(error = %format!("{e:#}"), "kubelet API stopped; kubectl logs will not work");
            }
        });
    }

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let tasks: Tasks = Arc::new(Mutex::new(JoinSet::new()));
    for i in 0..cli.nodes {
        let info = NodeInfo {
            name: format!("{}-{i}", cli.node_prefix),
            ip: host_ip,
            cpu: cli.node_cpu.clone(),
            memory: cli.node_memory.clone(),
            kubelet_port: cli.kubelet_port,
            since: crate::container::now_time(),
        };
        let uid = node::register(&client, &info).await?;
        tracing::info!(node = %info.name, "node registered");
        tokio::spawn(node::heartbeat(client.clone(), info.clone(), uid));
        tokio::spawn(watch_pods(
            shared.clone(),
            info.name.clone(),
            host_ip.to_string(),
            shutdown_rx.clone(),
            tasks.clone(),
        ));
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: stopping all pod processes");
    let _ = shutdown_tx.send(true);
    let mut set = std::mem::take(&mut *tasks.lock().unwrap_or_else(|e| e.into_inner()));
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Watch the Pods bound to `node` and feed each one's task.
async fn watch_pods(
    shared: Arc<Shared>,
    node: String,
    host_ip: String,
    shutdown: watch::Receiver<bool>,
    tasks: Tasks,
) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut pods: HashMap<String, watch::Sender<Update>> = HashMap::new();
    let mut seen_in_init: HashSet<String> = HashSet::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%node, error = %e, "pod watch error; retrying");
                continue;
            }
        };
        pods.retain(|_, tx| !tx.is_closed());
        match event {
            watcher::Event::Init => seen_in_init.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                seen_in_init.insert(uid.clone());
                let pod = Arc::new(pod);
                match pods.get(&uid) {
                    Some(tx) => {
                        let _ = tx.send(Update::Present(pod));
                    }
                    None => {
                        let (tx, rx) = watch::channel(Update::Present(pod));
                        pods.insert(uid, tx);
                        let fut = pod::run(
                            shared.clone(),
                            node.clone(),
                            host_ip.clone(),
                            rx,
                            shutdown.clone(),
                        );
                        tasks.lock().unwrap_or_else(|e| e.into_inner()).spawn(fut);
                    }
                }
            }
            watcher::Event::Delete(pod) => {
                if let Some(tx) = pods.remove(&pod.metadata.uid.clone().unwrap_or_default()) {
                    let _ = tx.send(Update::Gone);
                }
            }
            watcher::Event::InitDone => {
                for (uid, tx) in pods.iter() {
                    if !seen_in_init.contains(uid) {
                        let _ = tx.send(Update::Gone);
                    }
                }
            }
        }
    }
}
