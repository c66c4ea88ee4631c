//! The stand-in for kube-proxy: for every Service with a ClusterIP, a TCP listener on
//! `<ClusterIP>:<port>` that forwards each connection to a ready endpoint's `targetPort`,
//! round-robin. ClusterIPs come from this run's loopback block, so binding them needs no network
//! setup. A connection that arrives while a Service has no ready endpoint is closed at once (as
//! kube-proxy rejects it). UDP and SCTP ports are not proxied.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Listen address → endpoints.
pub type Rules = BTreeMap<SocketAddr, Vec<SocketAddr>>;

struct Listener {
    targets: watch::Sender<Vec<SocketAddr>>,
    task: JoinHandle<()>,
}

/// The running listeners.
#[derive(Default)]
pub struct Proxy {
    listeners: HashMap<SocketAddr, Listener>,
}

impl Proxy {
    /// Make the listeners match `rules`: start new ones, update endpoints, stop removed ones.
    /// Must be called inside a tokio runtime.
    pub fn apply(&mut self, rules: &Rules) {
        self.listeners.retain(|addr, l| {
            let keep = rules.contains_key(addr);
            if !keep {
                l.task.abort();
                tracing::info!(%addr, "service proxy stopped");
            }
            keep
        });
        for (addr, targets) in rules {
            match self.listeners.get(addr) {
                Some(l) => {
                    l.targets.send_if_modified(|current| {
                        let changed = current != targets;
                        if changed {
                            current.clone_from(targets);
                        }
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(targets.clone());
                    let task = tokio::spawn(listen(*addr, rx));
                    self.listeners.insert(*addr, Listener { targets: tx, task });
                }
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for l in self.listeners.values() {
            l.task.abort();
        }
    }
}

async fn listen(addr: SocketAddr, targets: watch::Receiver<Vec<SocketAddr>>) {
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot listen for service; its ClusterIP will refuse");
            return;
        }
    };
    tracing::info!(%addr, "service proxy listening");
    let next = Arc::new(AtomicUsize::new(0));
    loop {
        let (inbound, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%addr, error = %e, "accept failed");
                continue;
            }
        };
        let endpoints = targets.borrow().clone();
        if endpoints.is_empty() {
            drop(inbound); // no ready endpoint: reject
            continue;
        }
        let target = endpoints[next.fetch_add(1, Ordering::Relaxed) % endpoints.len()];
        tokio::spawn(async move {
            let mut inbound = inbound;
            match TcpStream::connect(target).await {
                Ok(mut outbound) => {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
                Err(e) => tracing::debug!(%addr, %target, error = %e, "endpoint refused"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn forwards_to_endpoints_and_follows_rule_changes() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend_addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = backend.accept().await.unwrap();
                s.write_all(b"hi").await.unwrap();
            }
        });
        // A free port for the proxy.
        let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let front = probe.local_addr().unwrap();
        drop(probe);

        let mut proxy = Proxy::default();
        proxy.apply(&Rules::from([(front, vec![backend_addr])]));
        let mut got = Vec::new();
        for _ in 0..50 {
            if let Ok(mut s) = TcpStream::connect(front).await {
                s.read_to_end(&mut got).await.unwrap();
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(got, b"hi");

        // Without endpoints the connection is closed at once.
        proxy.apply(&Rules::from([(front, vec![])]));
        let mut s = TcpStream::connect(front).await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        assert!(buf.is_empty());

        proxy.apply(&Rules::new());
        assert!(proxy.listeners.is_empty());
    }
}
