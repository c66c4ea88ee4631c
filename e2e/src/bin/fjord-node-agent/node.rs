//! Node registration, status and Lease heartbeats, so the node lifecycle controller keeps the
//! Nodes Ready and the scheduler places Pods on them.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::container::now_time;

/// Field manager of everything the agent applies.
pub const MANAGER: &str = "fjord-node-agent";
/// How often the Lease and the Ready condition are renewed (the kubelet's default).
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// Static facts a Node reports.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Address reported as InternalIP.
    pub ip: Ipv4Addr,
    /// CPU capacity.
    pub cpu: String,
    /// Memory capacity.
    pub memory: String,
    /// Port of the kubelet API (0: none).
    pub kubelet_port: u16,
    /// When the agent registered the node: the conditions' stable `lastTransitionTime`.
    pub since: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
}

fn status(info: &NodeInfo) -> serde_json::Value {
    let now = now_time();
    let cond = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": info.since})
    };
    let capacity = json!({"cpu": info.cpu, "memory": info.memory, "pods": "250", "ephemeral-storage": "100Gi"});
    json!({
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            cond("Ready", "True", "KubeletReady", "fjord-node-agent is posting ready status"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "test node"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "test node"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "test node"),
        ],
        "addresses": [{"type": "InternalIP", "address": info.ip.to_string()}, {"type": "Hostname", "address": info.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": info.kubelet_port}},
        "nodeInfo": {
            "machineID": info.name, "systemUUID": info.name, "bootID": "fjord-test",
            "kernelVersion": "", "osImage": "fjord-node-agent (processes on the host)",
            "containerRuntimeVersion": "fjord-node-agent://0.1",
            "kubeletVersion": "v1.35.4", "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        },
    })
}

/// Create or update the Node object and its status; returns the Node's uid.
pub async fn register(client: &Client, info: &NodeInfo) -> anyhow::Result<String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": info.name, "labels": {
            "kubernetes.io/hostname": info.name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "fjord.dev/test-node": "true"}},
    });
    let params = PatchParams::apply(MANAGER).force();
    let created = nodes
        .patch(&info.name, &params, &Patch::Apply(&node))
        .await
        .with_context(|| format!("registering node {}", info.name))?;
    nodes
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status(info)})),
        )
        .await
        .with_context(|| format!("posting status of node {}", info.name))?;
    created.metadata.uid.context("node without uid")
}

async fn beat(client: &Client, info: &NodeInfo, uid: &str) -> anyhow::Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": info.name, "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": info.name, "uid": uid}]},
        "spec": {"holderIdentity": info.name, "leaseDurationSeconds": 40,
                 "renewTime": MicroTime(k8s_openapi::jiff::Timestamp::now())},
    });
    leases
        .patch(
            &info.name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&lease),
        )
        .await?;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .patch_status(
            &info.name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status(info)})),
        )
        .await?;
    Ok(())
}

/// Renew the Lease and the Ready condition every [`HEARTBEAT`], forever.
pub async fn heartbeat(client: Client, info: NodeInfo, uid: String) {
    let mut ticker = tokio::time::interval(HEARTBEAT);
    loop {
        ticker.tick().await;
        if let Err(e) = beat(&client, &info, &uid).await {
            tracing::warn!(node = %info.name, error = %format!("{e:#}"), "heartbeat failed");
        }
    }
}
