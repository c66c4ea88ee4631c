//! The Helm chart: `helm lint` and `helm template`, and what the rendered RBAC grants.
//!
//! Needs a `helm` binary: `FJORD_HELM`, or the one `scripts/infra/install.sh` builds into
//! `~/.cache/fjord/bin/helm-*/helm`. Without one the tests say so and pass, unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

fn helm() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("FJORD_HELM") {
        return Some(PathBuf::from(p));
    }
    let cache = std::env::var("FJORD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/fjord")
        });
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache.join("bin"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("helm-"))
        .map(|e| e.path().join("helm"))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found.pop()
}

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/fjord-operator")
}

fn helm_or_skip() -> Option<PathBuf> {
    let h = helm();
    if h.is_none() {
        assert!(
            std::env::var("CI").is_err(),
            "helm is required in CI: run scripts/infra/install.sh"
        );
        eprintln!("skipped: no helm binary (set FJORD_HELM or run scripts/infra/install.sh)");
    }
    h
}

fn template(helm: &Path, args: &[&str]) -> Vec<serde_yaml::Value> {
    let out = Command::new(helm)
        .args(["template", "t"])
        .arg(chart())
        .args(["--namespace", "fjord-system"])
        .args(args)
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn kinds(docs: &[serde_yaml::Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    k.sort();
    k
}

fn rule_resources(doc: &serde_yaml::Value) -> Vec<String> {
    doc["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|r| r["resources"].as_sequence().unwrap().clone())
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn chart_lints() {
    let Some(helm) = helm_or_skip() else { return };
    let out = Command::new(helm)
        .arg("lint")
        .arg(chart())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm lint failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn default_install_watches_all_namespaces_with_a_clusterrole_and_keeps_the_crd() {
    let Some(helm) = helm_or_skip() else { return };
    let docs = template(&helm, &[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let crd = docs
        .iter()
        .find(|d| {
            d["kind"] == "CustomResourceDefinition"
                && d["metadata"]["name"] == "streamjobs.fjord.dev"
        })
        .unwrap();
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let cr = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
    let resources = rule_resources(cr);
    // spec.security: the operator creates, re-issues and reads a StreamJob's CA, certificate
    // and token Secrets by name, but can never list or watch Secrets (no enumeration of the
    // namespace's credentials).
    let secret_verbs: Vec<String> = cr["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| {
            r["resources"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|x| x == "secrets")
        })
        .flat_map(|r| r["verbs"].as_sequence().unwrap().clone())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(secret_verbs, ["get", "create", "patch", "update"]);
    for needed in [
        "streamjobs",
        "streamjobs/status",
        "streamjobs/finalizers",
        "streamjobsnapshots",
        "streamjobsnapshots/status",
        "streamjobsnapshots/finalizers",
        "streamclusters",
        "streamclusters/status",
        "streamsessionjobs",
        "streamsessionjobs/status",
        "streamsessionjobs/finalizers",
        "ingresses",
        "deployments",
        "services",
        "configmaps",
        "events",
    ] {
        assert!(resources.iter().any(|r| r == needed), "missing {needed}");
    }
    let lease_role = docs.iter().find(|d| d["kind"] == "Role").unwrap();
    assert_eq!(rule_resources(lease_role), ["leases"]);
    assert_eq!(lease_role["metadata"]["namespace"], "fjord-system");
}

#[test]
fn listed_namespaces_get_roles_and_nothing_cluster_wide() {
    let Some(helm) = helm_or_skip() else { return };
    let docs = template(
        &helm,
        &[
            "--set",
            "watchNamespaces={team-a,team-b}",
            "--set",
            "crds.install=false",
        ],
    );
    let k = kinds(&docs);
    assert!(
        !k.iter()
            .any(|k| k.starts_with("Cluster") || k == "CustomResourceDefinition"),
        "{k:?}"
    );
    let role_namespaces: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" && rule_resources(d).contains(&"streamjobs".to_string()))
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(role_namespaces, ["team-a", "team-b"]);
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_sequence()
        .unwrap();
    let watch = env
        .iter()
        .find(|e| e["name"] == "FJORD_WATCH_NAMESPACES")
        .unwrap();
    assert_eq!(watch["value"], "team-a,team-b");
}

#[test]
fn the_chart_crd_is_the_generated_one() {
    let Some(helm) = helm_or_skip() else { return };
    let docs = template(&helm, &[]);
    for crd in [
        fjord_crds::crd::crd(),
        fjord_crds::crd::snapshot_crd(),
        fjord_crds::crd::cluster_crd(),
        fjord_crds::crd::session_job_crd(),
    ] {
        let name = crd.metadata.name.clone().unwrap();
        let rendered = docs
            .iter()
            .find(|d| {
                d["kind"] == "CustomResourceDefinition" && d["metadata"]["name"] == name.as_str()
            })
            .unwrap_or_else(|| panic!("the chart has no CRD {name}"));
        let mut generated: serde_yaml::Value = serde_yaml::to_value(crd).unwrap();
        generated["metadata"]["annotations"]["helm.sh/resource-policy"] = "keep".into();
        assert_eq!(rendered, &generated);
    }
}

#[test]
fn pod_monitors_only_when_asked_for() {
    let Some(helm) = helm_or_skip() else { return };
    assert!(!kinds(&template(&helm, &[])).contains(&"PodMonitor".to_string()));
    let docs = template(&helm, &["--set", "podMonitor.enabled=true"]);
    let monitors: Vec<&serde_yaml::Value> =
        docs.iter().filter(|d| d["kind"] == "PodMonitor").collect();
    assert_eq!(monitors.len(), 2, "the operator's and the StreamJobs' Pods");
    for m in &monitors {
        assert_eq!(m["apiVersion"], "monitoring.coreos.com/v1");
    }
    let operator = monitors
        .iter()
        .find(|m| m["metadata"]["name"] == "t-fjord-operator")
        .expect("the operator's PodMonitor");
    assert_eq!(operator["metadata"]["namespace"], "fjord-system");
    assert_eq!(operator["spec"]["podMetricsEndpoints"][0]["port"], "http");
    let jobs = monitors
        .iter()
        .find(|m| m["metadata"]["name"] == "t-fjord-operator-streamjobs")
        .expect("the StreamJobs' PodMonitor");
    assert_eq!(jobs["spec"]["namespaceSelector"]["any"], true);
    assert_eq!(
        jobs["spec"]["selector"]["matchLabels"]["app.kubernetes.io/managed-by"],
        "fjord-operator"
    );
    let ports: Vec<&str> = jobs["spec"]["podMetricsEndpoints"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["port"].as_str().unwrap())
        .collect();
    assert_eq!(ports, ["rest", "metrics"]);
    // Watching listed namespaces narrows the StreamJobs' monitor to them.
    let docs = template(
        &helm,
        &[
            "--set",
            "podMonitor.enabled=true",
            "--set",
            "watchNamespaces={team-a}",
        ],
    );
    let jobs = docs
        .iter()
        .find(|d| {
            d["kind"] == "PodMonitor" && d["metadata"]["name"] == "t-fjord-operator-streamjobs"
        })
        .unwrap();
    assert_eq!(jobs["spec"]["namespaceSelector"]["matchNames"][0], "team-a");
}

/// The port names of the JobManager's and TaskManagers' main containers, as the operator
/// generates them for the quick start's StreamJob.
fn generated_port_names() -> Vec<String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/streamjobs/counting-basic.yaml"),
    )
    .unwrap();
    let manifest = text
        .split("\n---")
        .find(|d| d.contains("kind: StreamJob"))
        .expect("the example holds a StreamJob");
    let mut job: fjord_crds::StreamJob = serde_yaml::from_str(manifest).unwrap();
    job.metadata.namespace = Some("streams".into());
    job.metadata.uid = Some("1234-abcd".into());
    job.metadata.generation = Some(1);
    let desired = fjord_operator::resources::desired(&job, &job.spec, None, 1).unwrap();
    let mut names: Vec<String> = [&desired.jobmanager, &desired.taskmanager]
        .iter()
        .flat_map(|d| {
            let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            pod.containers[0].ports.clone().unwrap_or_default()
        })
        .filter_map(|p| p.name)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn policy_ports(rule: &serde_yaml::Value) -> Vec<String> {
    rule["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn network_policies_only_when_asked_for_and_name_the_generated_ports() {
    let Some(helm) = helm_or_skip() else { return };
    assert!(!kinds(&template(&helm, &[])).contains(&"NetworkPolicy".to_string()));
    let docs = template(
        &helm,
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "networkPolicy.namespaces={streams}",
            "--set",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
        ],
    );
    let policies: Vec<&serde_yaml::Value> = docs
        .iter()
        .filter(|d| d["kind"] == "NetworkPolicy")
        .collect();
    let placed: Vec<(String, String)> = policies
        .iter()
        .map(|p| {
            (
                p["metadata"]["namespace"].as_str().unwrap().to_string(),
                p["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("fjord-system".into(), "t-fjord-operator".into()),
            ("fjord-system".into(), "t-fjord-operator-streamjobs".into()),
            ("streams".into(), "t-fjord-operator-streamjobs".into()),
        ]
    );
    // The operator's Pod: metrics scrapes from the monitoring peers only.
    let operator = policies[0];
    assert_eq!(operator["spec"]["policyTypes"][0], "Ingress");
    let rules = operator["spec"]["ingress"].as_sequence().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(policy_ports(&rules[0]), ["http"]);
    assert_eq!(
        rules[0]["from"][0]["namespaceSelector"]["matchLabels"]["team"],
        "monitoring"
    );

    // The jobs' Pods: each rule's ports exist on the Pods the operator generates, and every
    // generated port is reachable from someone (nothing the job needs is cut off).
    let jobs = policies[2];
    assert_eq!(
        jobs["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/managed-by"],
        "fjord-operator"
    );
    let generated = generated_port_names();
    let rules = jobs["spec"]["ingress"].as_sequence().unwrap();
    let mut allowed: Vec<String> = rules.iter().flat_map(policy_ports).collect();
    for port in &allowed {
        assert!(
            generated.contains(port),
            "{port} is not a port of {generated:?}"
        );
    }
    allowed.sort();
    allowed.dedup();
    assert_eq!(allowed, generated);
    // Control and data ports only from the jobs' own Pods; REST from the operator's Pods in
    // the release namespace (and the monitoring peers, for the JobManager's /metrics).
    assert_eq!(policy_ports(&rules[0]), ["rpc", "data"]);
    assert_eq!(
        rules[0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/managed-by"],
        "fjord-operator"
    );
    assert_eq!(policy_ports(&rules[1]), ["rest"]);
    assert_eq!(
        rules[1]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "fjord-system"
    );
    assert_eq!(
        rules[1]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "fjord-operator"
    );
    assert_eq!(policy_ports(&rules[2]), ["rest", "metrics"]);

    // Listed watch namespaces: one job policy in each, none in the release namespace.
    let docs = template(
        &helm,
        &[
            "--set",
            "networkPolicy.enabled=true",
            "--set",
            "watchNamespaces={team-a,team-b}",
        ],
    );
    let namespaces: Vec<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "NetworkPolicy")
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["fjord-system", "team-a", "team-b"]);
}

/// The README's NetworkPolicy example, as written, renders the policies it describes.
#[test]
fn the_readmes_network_policy_example_renders() {
    let Some(helm) = helm_or_skip() else { return };
    let readme = std::fs::read_to_string(chart().join("README.md")).unwrap();
    let section = &readme[readme.find("## NetworkPolicies").expect("the section")..];
    let start = section.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let values = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.yaml");
    std::fs::write(&file, values).unwrap();
    let docs = template(&helm, &["-f", file.to_str().unwrap()]);
    let jobs = docs
        .iter()
        .find(|d| d["kind"] == "NetworkPolicy" && d["metadata"]["namespace"] == "streams")
        .expect("the StreamJob policy in the example's namespace");
    let rules = jobs["spec"]["ingress"].as_sequence().unwrap();
    let peer = |rule: &serde_yaml::Value| {
        rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(peer(&rules[2]), "ingress-nginx");
    assert_eq!(policy_ports(&rules[2]), ["rest"]);
    assert_eq!(peer(&rules[3]), "monitoring");
    assert_eq!(policy_ports(&rules[3]), ["rest", "metrics"]);
}
