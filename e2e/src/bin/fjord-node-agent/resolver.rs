//! How a Service name reaches the right process: per-Pod `/etc/hosts` files (cluster DNS) plus
//! the ClusterIP proxy (kube-proxy).
//!
//! Every Pod process sees its own hosts file at `/etc/hosts` (bind-mounted by the launch step).
//! This module keeps those files current from the API server: it watches Services and Pods and
//! answers as cluster DNS would. A Service `svc` in namespace `ns` resolves as `svc` (from the
//! same namespace), `svc.ns`, `svc.ns.svc` and `svc.ns.svc.cluster.local`:
//! - to its ClusterIP (from this run's loopback block), where [`crate::proxy`] forwards TCP to
//!   the ready Pods' `targetPort`s — so `port` ≠ `targetPort` and named target ports work;
//! - for a headless Service, to the addresses of the ready, non-terminating Pods it selects (all
//!   of them with `publishNotReadyAddresses`), like the endpoints controller's selection; a
//!   StatefulSet Pod with `hostname`/`subdomain` also as `host.svc.ns.svc.cluster.local` (and
//!   shorter forms).
//!
//! Files are rewritten in place (same inode, so the bind mount sees the change) whenever the
//! answer changes, and glibc reads `/etc/hosts` on every lookup, so a restarted JobManager's new
//! address is seen by the next connection attempt.
//!
//! Services without a selector (manual EndpointSlices) are not resolved; only TCP ports are
//! proxied.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::net::{IpAddr, SocketAddr};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};

use crate::proxy::{Proxy, Rules};

/// One name → address line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Namespace of the Service (short names only resolve inside it).
    pub namespace: String,
    /// The address.
    pub ip: String,
    /// Names valid from any namespace.
    pub names: Vec<String>,
    /// Names valid only from `namespace`.
    pub short_names: Vec<String>,
}

/// Who a hosts file belongs to.
#[derive(Clone, Debug)]
pub struct Owner {
    /// The Pod's namespace.
    pub namespace: String,
    /// The Pod's address.
    pub ip: String,
    /// The Pod's hostname (and FQDN if it has a subdomain).
    pub hostnames: Vec<String>,
}

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    files: HashMap<PathBuf, (Owner, String)>,
    rules: Rules,
    proxy: Proxy,
}

/// Shared handle: pod tasks register their hosts files, the watch task updates them.
#[derive(Clone, Default)]
pub struct Resolver {
    inner: Arc<Mutex<Inner>>,
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

fn forms(name: &str, ns: &str) -> Vec<String> {
    vec![
        format!("{name}.{ns}"),
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}.svc.cluster.local"),
    ]
}

fn target_port(pod: &Pod, port: &ServicePort) -> Option<u16> {
    match &port.target_port {
        None => u16::try_from(port.port).ok(),
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        Some(IntOrString::String(name)) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// The name → address table and the ClusterIP proxy rules for `services` and `pods` (pure; the
/// endpoints controller's selection of Pods).
///
/// A Service with a ClusterIP resolves to that ClusterIP, where the agent's proxy forwards to the
/// selected Pods' target ports. A headless Service resolves to the selected Pods' addresses.
pub fn compute(services: &[Arc<Service>], pods: &[Arc<Pod>]) -> (Vec<Entry>, Rules) {
    let mut out = BTreeSet::new();
    let mut rules = Rules::new();
    for svc in services {
        let (Some(name), Some(ns)) = (&svc.metadata.name, &svc.metadata.namespace) else {
            continue;
        };
        let Some(spec) = &svc.spec else { continue };
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
        let cluster_ip: Option<IpAddr> = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| *ip != "None")
            .and_then(|ip| ip.parse().ok());
        let tcp_ports: Vec<&ServicePort> = spec
            .ports
            .iter()
            .flatten()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .collect();
        if let Some(vip) = cluster_ip {
            out.insert(Entry {
                namespace: ns.clone(),
                ip: vip.to_string(),
                names: forms(name, ns),
                short_names: vec![name.clone()],
            });
            for port in &tcp_ports {
                if let Ok(p) = u16::try_from(port.port) {
                    rules.entry(SocketAddr::new(vip, p)).or_default();
                }
            }
        }
        for pod in pods {
            if pod.metadata.namespace.as_ref() != Some(ns)
                || pod.metadata.deletion_timestamp.is_some()
                || !selects(selector, pod)
                || !(publish_not_ready || is_ready(pod))
            {
                continue;
            }
            let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
                continue;
            };
            match cluster_ip {
                Some(vip) => {
                    let Ok(pod_ip) = ip.parse::<IpAddr>() else {
                        continue;
                    };
                    for port in &tcp_ports {
                        let (Ok(p), Some(target)) =
                            (u16::try_from(port.port), target_port(pod, port))
                        else {
                            continue;
                        };
                        let endpoints = rules.entry(SocketAddr::new(vip, p)).or_default();
                        endpoints.push(SocketAddr::new(pod_ip, target));
                        endpoints.sort();
                    }
                }
                None => {
                    out.insert(Entry {
                        namespace: ns.clone(),
                        ip: ip.clone(),
                        names: forms(name, ns),
                        short_names: vec![name.clone()],
                    });
                }
            }
            let pod_spec = pod.spec.as_ref();
            if let (Some(host), Some(sub)) = (
                pod_spec.and_then(|s| s.hostname.clone()),
                pod_spec.and_then(|s| s.subdomain.clone()),
            ) && sub == *name
            {
                out.insert(Entry {
                    namespace: ns.clone(),
                    ip,
                    names: forms(&format!("{host}.{name}"), ns),
                    short_names: vec![format!("{host}.{name}")],
                });
            }
        }
    }
    (out.into_iter().collect(), rules)
}

/// The hosts file text for `owner` given `entries`.
pub fn render(owner: &Owner, entries: &[Entry]) -> String {
    let mut text =
        String::from("# Written by fjord-node-agent: Service names of this test cluster.\n");
    // The API server answers on 127.0.0.1 (at KUBERNETES_SERVICE_PORT, not 443).
    text.push_str(
        "127.0.0.1\tlocalhost kubernetes kubernetes.default kubernetes.default.svc \
         kubernetes.default.svc.cluster.local\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    text.push_str(&format!("{}\t{}\n", owner.ip, owner.hostnames.join(" ")));
    for e in entries {
        let mut names = e.names.clone();
        if e.namespace == owner.namespace {
            names.splice(0..0, e.short_names.iter().cloned());
        }
        text.push_str(&format!("{}\t{}\n", e.ip, names.join(" ")));
    }
    text
}

fn write_in_place(path: &Path, text: &str) {
    // fs::write truncates the existing inode, which the bind mount in the pod refers to.
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!(path = %path.display(), error = %e, "could not update hosts file");
    }
}

impl Resolver {
    /// Create `path` for `owner` and keep it current until [`Resolver::unregister`].
    pub fn register(&self, path: PathBuf, owner: Owner) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let text = render(&owner, &inner.entries);
        write_in_place(&path, &text);
        inner.files.insert(path, (owner, text));
    }

    /// Stop updating `path`.
    pub fn unregister(&self, path: &Path) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .remove(path);
    }

    fn update(&self, (entries, rules): (Vec<Entry>, Rules)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.rules != rules {
            inner.proxy.apply(&rules);
            inner.rules = rules;
        }
        if inner.entries == entries {
            return;
        }
        inner.entries = entries;
        let Inner { entries, files, .. } = &mut *inner;
        for (path, (owner, last)) in files.iter_mut() {
            let text = render(owner, entries);
            if *last != text {
                write_in_place(path, &text);
                *last = text;
            }
        }
    }

    /// Watch Services and Pods and keep every registered file current. Runs until the streams end.
    pub async fn run(self, client: Client) {
        let (services, svc_writer) = reflector::store::<Service>();
        let (pods, pod_writer) = reflector::store::<Pod>();
        let svc_events = watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(svc_writer)
        .map(|_| ())
        .boxed();
        let pod_events = watcher(Api::<Pod>::all(client), watcher::Config::default())
            .default_backoff()
            .reflect(pod_writer)
            .map(|_| ())
            .boxed();
        let mut events = futures::stream::select(svc_events, pod_events);
        while events.next().await.is_some() {
            self.refresh(&services, &pods);
        }
    }

    fn refresh(&self, services: &Store<Service>, pods: &Store<Pod>) {
        self.update(compute(&services.state(), &pods.state()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, extra: serde_json::Value) -> Arc<Pod> {
        let mut v = serde_json::json!({
            "metadata": {"name": name, "namespace": "ns", "labels": {"app": "jm"}},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "rpc", "containerPort": 6123}]}]},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        });
        if let serde_json::Value::Object(m) = extra {
            for (k, val) in m {
                v["spec"][k] = val;
            }
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    /// A headless Service (clusterIP None), or one with `cluster_ip` and port 80 → target "rpc".
    fn svc(name: &str, publish: bool, cluster_ip: Option<&str>) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "ns"},
                "spec": {"selector": {"app": "jm"}, "publishNotReadyAddresses": publish,
                         "clusterIP": cluster_ip.unwrap_or("None"),
                         "ports": [{"port": 80, "targetPort": "rpc"}, {"port": 53, "protocol": "UDP"}]}
            }))
            .unwrap(),
        )
    }

    fn pods() -> [Arc<Pod>; 2] {
        [
            pod("a", "127.42.1.2", true, serde_json::json!({})),
            pod("b", "127.42.1.3", false, serde_json::json!({})),
        ]
    }

    #[test]
    fn headless_services_resolve_to_ready_selected_pods_only() {
        let (entries, rules) = compute(&[svc("job-jobmanager", false, None)], &pods());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].ip, "127.42.1.2");
        assert!(rules.is_empty());
        let (all, _) = compute(&[svc("job-jobmanager", true, None)], &pods());
        assert_eq!(all.len(), 2);
    }

    #[test]
    fn cluster_ip_services_resolve_to_the_cluster_ip_and_proxy_to_target_ports() {
        let (entries, rules) = compute(&[svc("jm", false, Some("127.43.1.10"))], &pods());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].ip, "127.43.1.10");
        let listen: SocketAddr = "127.43.1.10:80".parse().unwrap();
        assert_eq!(rules.len(), 1, "{rules:?}"); // the UDP port is not proxied
        assert_eq!(
            rules[&listen],
            vec!["127.42.1.2:6123".parse::<SocketAddr>().unwrap()]
        );
        let (_, no_ready) = compute(
            &[svc("jm", false, Some("127.43.1.10"))],
            &[pods()[1].clone()],
        );
        assert_eq!(no_ready[&listen], Vec::<SocketAddr>::new());
    }

    #[test]
    fn short_names_only_within_the_namespace_and_statefulset_hostnames() {
        let pods = [pod(
            "tm-0",
            "127.42.1.4",
            true,
            serde_json::json!({"hostname": "tm-0", "subdomain": "tm"}),
        )];
        let (entries, _) = compute(&[svc("tm", false, None)], &pods);
        let own = Owner {
            namespace: "ns".into(),
            ip: "127.42.1.9".into(),
            hostnames: vec!["me".into()],
        };
        let other = Owner {
            namespace: "other".into(),
            ..own.clone()
        };
        let text = render(&own, &entries);
        assert!(
            text.contains("127.42.1.4\ttm tm.ns tm.ns.svc tm.ns.svc.cluster.local\n"),
            "{text}"
        );
        assert!(text.contains("tm-0.tm.ns.svc.cluster.local"), "{text}");
        assert!(text.contains("127.42.1.9\tme\n"));
        assert!(text.contains(" kubernetes.default.svc "), "{text}");
        let text = render(&other, &entries);
        assert!(text.contains("127.42.1.4\ttm.ns tm.ns.svc"), "{text}");
    }
}
