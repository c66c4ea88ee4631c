//! Command-line flags of the agent.

use std::path::PathBuf;

/// Registers Nodes and runs the Pods scheduled to them as local processes.
#[derive(Debug, clap::Parser)]
#[command(name = "fjord-node-agent", version)]
pub struct Cli {
    /// Kubeconfig of the API server to register with.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// How many Nodes to register (named `<node-prefix>-0`, `-1`, ...).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Name prefix of the Nodes.
    #[arg(long, default_value = "fjord-node")]
    pub node_prefix: String,
    /// First three octets of this run's pod addresses, e.g. 127.42.17; pods get .2-.254 and the
    /// nodes report .1 as their address.
    #[arg(long, default_value = "127.42.1")]
    pub ip_block: String,
    /// Directory for pod files (volumes, hosts files, process logs).
    #[arg(long)]
    pub root: PathBuf,
    /// YAML file `images: {<image>: <binary path>}`.
    #[arg(long)]
    pub image_map: PathBuf,
    /// Port of the API server on 127.0.0.1, given to pods as KUBERNETES_SERVICE_HOST/PORT.
    #[arg(long)]
    pub apiserver_port: u16,
    /// Port for the kubelet API (container logs) on the nodes' address; 0 = do not serve.
    #[arg(long, default_value_t = 0)]
    pub kubelet_port: u16,
    /// Serving certificate (PEM) of the kubelet API.
    #[arg(long, requires = "kubelet_key")]
    pub kubelet_cert: Option<PathBuf>,
    /// Private key (PEM) of the kubelet API.
    #[arg(long, requires = "kubelet_cert")]
    pub kubelet_key: Option<PathBuf>,
    /// CPU capacity each Node reports.
    #[arg(long, default_value = "16")]
    pub node_cpu: String,
    /// Memory capacity each Node reports.
    #[arg(long, default_value = "64Gi")]
    pub node_memory: String,
}
