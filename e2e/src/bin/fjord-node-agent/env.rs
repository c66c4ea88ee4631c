//! A container's environment, as the kubelet builds it: service-host variables, `envFrom`, `env`
//! (literal values with `$(VAR)` expansion, ConfigMap/Secret keys, downward-API `fieldRef` and
//! `resourceFieldRef`).
//!
//! Differences from a kubelet: `KUBERNETES_SERVICE_HOST/PORT` name the real API server on
//! 127.0.0.1 (there is no ClusterIP proxy), and the per-Service `<NAME>_SERVICE_HOST` variables are
//! not injected (names resolve through the Pod's hosts file instead).

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVarSource, ObjectFieldSelector, Pod, Secret,
};
use kube::{Api, Client};

/// Facts about the running Pod the downward API can reveal.
#[derive(Clone, Debug)]
pub struct PodFacts {
    /// The Pod's address.
    pub pod_ip: String,
    /// The node's address.
    pub host_ip: String,
    /// API server port on 127.0.0.1.
    pub apiserver_port: u16,
    /// The Pod's own empty home directory (`HOME`), so nothing of the host user's (such as
    /// `~/.kube/config`) leaks into the Pod.
    pub home: String,
    /// Node allocatable CPU and memory, used when a container sets no limit.
    pub node_cpu: String,
    /// See `node_cpu`.
    pub node_memory: String,
}

/// Resolve a downward-API field path against `pod`.
pub fn field_value(
    pod: &Pod,
    facts: &PodFacts,
    selector: &ObjectFieldSelector,
) -> anyhow::Result<String> {
    let meta = &pod.metadata;
    let path = selector.field_path.as_str();
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let bracket_key = |p: &str, prefix: &str| -> Option<String> {
        p.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        "metadata.labels" => render_map(meta.labels.as_ref()),
        "metadata.annotations" => render_map(meta.annotations.as_ref()),
        p => {
            if let Some(k) = bracket_key(p, "metadata.labels['") {
                from_map(&meta.labels, &k)
            } else if let Some(k) = bracket_key(p, "metadata.annotations['") {
                from_map(&meta.annotations, &k)
            } else {
                bail!("unsupported downward-API fieldPath {p}")
            }
        }
    })
}

fn render_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.map(|m| m.iter().map(|(k, v)| format!("{k}={v:?}\n")).collect())
        .unwrap_or_default()
}

/// Resolve a `resourceFieldRef` for `container`.
pub fn resource_value(
    container: &Container,
    facts: &PodFacts,
    resource: &str,
    divisor: Option<&str>,
) -> anyhow::Result<String> {
    let res = container.resources.as_ref();
    let get = |which: &str, name: &str| {
        let map = if which == "limits" {
            res.and_then(|r| r.limits.as_ref())
        } else {
            res.and_then(|r| r.requests.as_ref())
        };
        map.and_then(|m| m.get(name)).map(|q| q.0.clone())
    };
    let (which, name) = resource
        .split_once('.')
        .context("resourceFieldRef.resource must be like limits.cpu")?;
    let fallback = match name {
        "cpu" if which == "limits" => facts.node_cpu.clone(),
        "memory" if which == "limits" => facts.node_memory.clone(),
        _ => "0".to_string(),
    };
    let value = get(which, name).unwrap_or(fallback);
    crate::quantity::divide_ceil(&value, divisor)
        .with_context(|| format!("cannot evaluate {resource}={value}"))
}

/// Expand `$(VAR)` references with `env` (unknown references stay as written; `$$` escapes).
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn set(env: &mut Vec<(String, String)>, key: String, value: String) {
    env.retain(|(k, _)| *k != key);
    env.push((key, value));
}

/// The complete environment of `container` in `pod`.
pub async fn build(
    client: &Client,
    pod: &Pod,
    container: &Container,
    facts: &PodFacts,
) -> anyhow::Result<Vec<(String, String)>> {
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut env: Vec<(String, String)> = Vec::new();
    set(
        &mut env,
        "PATH".into(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    set(&mut env, "HOSTNAME".into(), pod_hostname(pod));
    set(&mut env, "HOME".into(), facts.home.clone());
    for (k, v) in [
        ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_string()),
        ("KUBERNETES_SERVICE_PORT", facts.apiserver_port.to_string()),
        (
            "KUBERNETES_SERVICE_PORT_HTTPS",
            facts.apiserver_port.to_string(),
        ),
        (
            "KUBERNETES_PORT",
            format!("tcp://127.0.0.1:{}", facts.apiserver_port),
        ),
    ] {
        set(&mut env, k.into(), v);
    }
    // Kept so that down.sh can find and end every process of this run.
    for k in ["FJORD_E2E_RUN_ID", "RUST_BACKTRACE"] {
        if let Ok(v) = std::env::var(k) {
            set(&mut env, k.into(), v);
        }
    }

    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.clone().unwrap_or_default();
        if let Some(r) = &source.config_map_ref {
            match cms.get_opt(&r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(&mut env, format!("{prefix}{k}"), v);
                    }
                }
                None if r.optional == Some(true) => {}
                None => bail!("configmap {ns}/{} (envFrom) not found", r.name),
            }
        }
        if let Some(r) = &source.secret_ref {
            match secrets.get_opt(&r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(
                            &mut env,
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if r.optional == Some(true) => {}
                None => bail!("secret {ns}/{} (envFrom) not found", r.name),
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => expand(v, &env),
            (None, Some(from)) => {
                match value_from(&cms, &secrets, pod, container, facts, from).await? {
                    Some(v) => v,
                    None => continue,
                }
            }
            (None, None) => String::new(),
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

async fn value_from(
    cms: &Api<ConfigMap>,
    secrets: &Api<Secret>,
    pod: &Pod,
    container: &Container,
    facts: &PodFacts,
    from: &EnvVarSource,
) -> anyhow::Result<Option<String>> {
    if let Some(f) = &from.field_ref {
        return field_value(pod, facts, f).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        let divisor = r.divisor.as_ref().map(|q| q.0.as_str());
        return resource_value(container, facts, &r.resource, divisor).map(Some);
    }
    if let Some(r) = &from.config_map_key_ref {
        let value = cms
            .get_opt(&r.name)
            .await?
            .and_then(|cm| cm.data.and_then(|mut d| d.remove(&r.key)));
        return match value {
            Some(v) => Ok(Some(v)),
            None if r.optional == Some(true) => Ok(None),
            None => bail!("configmap key {}/{} not found", r.name, r.key),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let value = secrets
            .get_opt(&r.name)
            .await?
            .and_then(|s| s.data.and_then(|mut d| d.remove(&r.key)));
        return match value {
            Some(v) => Ok(Some(String::from_utf8_lossy(&v.0).into_owned())),
            None if r.optional == Some(true) => Ok(None),
            None => bail!("secret key {}/{} not found", r.name, r.key),
        };
    }
    bail!("unsupported env valueFrom source")
}

/// The Pod's hostname: `spec.hostname` or the Pod name.
pub fn pod_hostname(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.hostname.clone())
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PodFacts {
        PodFacts {
            pod_ip: "127.42.1.2".into(),
            host_ip: "127.42.1.1".into(),
            apiserver_port: 6443,
            home: "/tmp/home".into(),
            node_cpu: "16".into(),
            node_memory: "64Gi".into(),
        }
    }

    #[test]
    fn expands_references_like_kubernetes() {
        let env = vec![
            ("A".to_string(), "x".to_string()),
            ("B".to_string(), "y".to_string()),
        ];
        assert_eq!(expand("$(A)-$(B)", &env), "x-y");
        assert_eq!(expand("$(C)", &env), "$(C)");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("cost $5", &env), "cost $5");
        assert_eq!(expand("$(A", &env), "$(A");
    }

    #[test]
    fn resolves_downward_api_fields() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "echo"}},
            "spec": {"nodeName": "n0", "containers": []}
        }))
        .unwrap();
        let f = |p: &str| {
            field_value(
                &pod,
                &facts(),
                &ObjectFieldSelector {
                    field_path: p.into(),
                    api_version: None,
                },
            )
            .unwrap()
        };
        assert_eq!(f("metadata.name"), "p");
        assert_eq!(f("metadata.namespace"), "ns");
        assert_eq!(f("status.podIP"), "127.42.1.2");
        assert_eq!(f("spec.nodeName"), "n0");
        assert_eq!(f("metadata.labels['app']"), "echo");
        assert_eq!(f("spec.serviceAccountName"), "default");
    }
}
