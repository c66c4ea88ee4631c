//! The CustomResourceDefinition generated from the Rust types, and the files it is written to.
//!
//! The YAML is never edited by hand: `cargo run -p fjord-crds --bin crdgen` writes it, and a test
//! fails when the checked-in files drift from the types.

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::snapshot::StreamJobSnapshot;
use crate::{Error, StreamJob};

/// The command that regenerates the checked-in CRD files.
pub const REGENERATE_COMMAND: &str = "cargo run -p fjord-crds --bin crdgen";

/// The CRD file for `kubectl apply`, relative to the repository root.
pub const CRD_FILE: &str = "crds/streamjob.yaml";

/// The chart's copy of the CRD, relative to the repository root. It is a template (not in the
/// chart's `crds/` folder) so that `helm upgrade` upgrades it; see the chart's README.
pub const CHART_CRD_FILE: &str = "helm/fjord-operator/templates/crd-streamjob.yaml";

/// The StreamJobSnapshot CRD file for `kubectl apply`, relative to the repository root.
pub const SNAPSHOT_CRD_FILE: &str = "crds/streamjobsnapshot.yaml";

/// The chart's copy of the StreamJobSnapshot CRD (a template, like [`CHART_CRD_FILE`]).
pub const CHART_SNAPSHOT_CRD_FILE: &str =
    "helm/fjord-operator/templates/crd-streamjobsnapshot.yaml";

/// The StreamCluster CRD file for `kubectl apply`, relative to the repository root.
pub const CLUSTER_CRD_FILE: &str = "crds/streamcluster.yaml";

/// The chart's copy of the StreamCluster CRD (a template, like [`CHART_CRD_FILE`]).
pub const CHART_CLUSTER_CRD_FILE: &str = "helm/fjord-operator/templates/crd-streamcluster.yaml";

/// The StreamSessionJob CRD file for `kubectl apply`, relative to the repository root.
pub const SESSION_JOB_CRD_FILE: &str = "crds/streamsessionjob.yaml";

/// The chart's copy of the StreamSessionJob CRD (a template, like [`CHART_CRD_FILE`]).
pub const CHART_SESSION_JOB_CRD_FILE: &str =
    "helm/fjord-operator/templates/crd-streamsessionjob.yaml";

const HEADER: &str = "# Generated from the Rust types in crds/src by `cargo run -p fjord-crds --bin crdgen`.\n# Do not edit: change the types and regenerate.\n";

/// The StreamJob CustomResourceDefinition.
///
/// Descriptions come from `///` comments, whose hard line wraps are joined so `kubectl explain`
/// wraps the text itself; blank lines still separate paragraphs.
pub fn crd() -> CustomResourceDefinition {
    generated(StreamJob::crd())
}

/// The StreamJobSnapshot CustomResourceDefinition (descriptions joined as in [`crd`]).
pub fn snapshot_crd() -> CustomResourceDefinition {
    generated(StreamJobSnapshot::crd())
}

/// The StreamCluster CustomResourceDefinition (descriptions joined as in [`crd`]).
pub fn cluster_crd() -> CustomResourceDefinition {
    generated(crate::cluster::StreamCluster::crd())
}

/// The StreamSessionJob CustomResourceDefinition (descriptions joined as in [`crd`]).
pub fn session_job_crd() -> CustomResourceDefinition {
    generated(crate::cluster::StreamSessionJob::crd())
}

fn generated(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(crd).expect("a CRD serializes to JSON");
    unwrap_descriptions(&mut value);
    serde_json::from_value(value).expect("joining description lines keeps a valid CRD")
}

fn unwrap_descriptions(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(s) if k == "description" => {
                        *s = s
                            .split("\n\n")
                            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                            .collect::<Vec<_>>()
                            .join("\n\n");
                    }
                    _ => unwrap_descriptions(v),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

/// The CRD as YAML for `kubectl apply -f`, with a header saying how it was made.
///
/// # Errors
/// [`Error::Render`] if the YAML serializer fails (it does not for this type).
pub fn crd_yaml() -> Result<String, Error> {
    plain_yaml(&crd())
}

fn plain_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    let body = serde_yaml::to_string(crd).map_err(Error::Render)?;
    Ok(format!("{HEADER}{body}"))
}

/// The CRD as a Helm template: installed and upgraded with the chart when `crds.install` is true,
/// and kept (`helm.sh/resource-policy: keep`) when the release is uninstalled so that uninstalling
/// the operator never deletes the users' StreamJobs.
///
/// # Errors
/// [`Error::Render`] if the YAML serializer fails.
pub fn chart_crd_yaml() -> Result<String, Error> {
    chart_yaml(crd())
}

fn chart_yaml(mut crd: CustomResourceDefinition) -> Result<String, Error> {
    crd.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("helm.sh/resource-policy".into(), "keep".into());
    let body = serde_yaml::to_string(&crd).map_err(Error::Render)?;
    Ok(format!(
        "{HEADER}{{{{- if .Values.crds.install }}}}\n{body}{{{{- end }}}}\n"
    ))
}

/// Every generated file with its content, as paths relative to the repository root.
///
/// # Errors
/// [`Error::Render`] if rendering fails.
pub fn generated_files() -> Result<Vec<(PathBuf, String)>, Error> {
    Ok(vec![
        (PathBuf::from(CRD_FILE), crd_yaml()?),
        (PathBuf::from(CHART_CRD_FILE), chart_crd_yaml()?),
        (
            PathBuf::from(SNAPSHOT_CRD_FILE),
            plain_yaml(&snapshot_crd())?,
        ),
        (
            PathBuf::from(CHART_SNAPSHOT_CRD_FILE),
            chart_yaml(snapshot_crd())?,
        ),
        (PathBuf::from(CLUSTER_CRD_FILE), plain_yaml(&cluster_crd())?),
        (
            PathBuf::from(CHART_CLUSTER_CRD_FILE),
            chart_yaml(cluster_crd())?,
        ),
        (
            PathBuf::from(SESSION_JOB_CRD_FILE),
            plain_yaml(&session_job_crd())?,
        ),
        (
            PathBuf::from(CHART_SESSION_JOB_CRD_FILE),
            chart_yaml(session_job_crd())?,
        ),
    ])
}

/// Write every generated file under `repo_root`, creating folders as needed.
///
/// # Errors
/// [`Error::Io`] naming the file that could not be written.
pub fn write_generated_files(repo_root: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut written = Vec::new();
    for (rel, content) in generated_files()? {
        let path = repo_root.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, content).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The repository root, found from this crate's manifest directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds/ sits inside the repository")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize as _;

    #[test]
    fn checked_in_crd_files_match_the_types() {
        let root = repo_root();
        for (rel, expected) in generated_files().unwrap() {
            let path = root.join(&rel);
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                actual == expected,
                "{} is out of date with the Rust types in crds/src; regenerate it with `{}` and commit the result",
                rel.display(),
                REGENERATE_COMMAND
            );
        }
    }

    #[test]
    fn crd_names_and_scope() {
        let crd = crd();
        assert_eq!(crd.metadata.name.as_deref(), Some("streamjobs.fjord.dev"));
        assert_eq!(crd.spec.group, "fjord.dev");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(crd.spec.names.kind, "StreamJob");
        assert_eq!(crd.spec.names.plural, "streamjobs");
        assert_eq!(crd.spec.names.short_names, Some(vec!["sj".to_string()]));
        let v = &crd.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        assert!(v.served && v.storage);
    }

    #[test]
    fn subresources_status_and_scale_on_parallelism() {
        let crd = crd();
        let sub = crd.spec.versions[0].subresources.as_ref().unwrap();
        assert!(sub.status.is_some());
        let scale = sub.scale.as_ref().unwrap();
        assert_eq!(scale.spec_replicas_path, ".spec.job.parallelism");
        assert_eq!(scale.status_replicas_path, ".status.parallelism");
        assert_eq!(
            scale.label_selector_path.as_deref(),
            Some(".status.selector")
        );
    }

    #[test]
    fn printer_columns() {
        let crd = crd();
        let cols: Vec<(String, String)> = crd.spec.versions[0]
            .additional_printer_columns
            .clone()
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.json_path))
            .collect();
        let expected = [
            ("State", ".status.lifecycleState"),
            ("Job State", ".status.jobState"),
            ("Parallelism", ".spec.job.parallelism"),
            ("Restarts", ".status.jobRestarts"),
            ("Last Checkpoint", ".status.lastCheckpoint.completedAt"),
            ("Last Savepoint", ".status.lastSavepoint"),
            ("Age", ".metadata.creationTimestamp"),
            // Priority 1: `kubectl get -o wide` only.
            ("Dashboard", ".status.dashboardUrl"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(cols, expected);
    }

    #[test]
    fn snapshot_crd_names_columns_and_no_scale() {
        let crd = snapshot_crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("streamjobsnapshots.fjord.dev")
        );
        assert_eq!(crd.spec.names.kind, "StreamJobSnapshot");
        assert_eq!(crd.spec.names.short_names, Some(vec!["sjs".to_string()]));
        let v = &crd.spec.versions[0];
        assert!(v.subresources.as_ref().unwrap().status.is_some());
        assert!(v.subresources.as_ref().unwrap().scale.is_none());
        let cols: Vec<String> = v
            .additional_printer_columns
            .clone()
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(cols, ["Job", "Kind", "State", "Trigger", "Path", "Age"]);
    }

    #[test]
    fn session_job_manifests_read_as_before_the_job_spec_was_shared() {
        // A session job's spec.job is a StreamJob's JobSpec: every session example still reads,
        // with the defaults it had (parallelism 1, savepoint mode, running, no nonces).
        let dir = repo_root().join("examples/sessions");
        let mut jobs = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value = serde_yaml::Value::deserialize(doc).unwrap();
                if value["kind"] != "StreamSessionJob" {
                    continue;
                }
                let job: crate::StreamSessionJob = serde_yaml::from_value(value).unwrap();
                assert!(job.spec.job.parallelism >= 1);
                assert_eq!(job.spec.job.savepoint_trigger_nonce, None);
                jobs += 1;
            }
        }
        assert!(jobs >= 3, "{jobs} session jobs in {}", dir.display());
        let minimal: crate::StreamSessionJobSpec =
            serde_yaml::from_str("clusterName: shared\njob: {name: counting}\n").unwrap();
        assert_eq!(minimal.job.parallelism, 1);
        assert_eq!(minimal.job.upgrade_mode, crate::UpgradeMode::Savepoint);
        assert_eq!(minimal.job.state, crate::DesiredJobState::Running);
    }

    #[test]
    fn a_session_jobs_periodic_interval_is_a_streamjobs() {
        let spec: crate::StreamSessionJobSpec = serde_yaml::from_str(
            "clusterName: shared\njob: {name: counting}\nsavepoints: {periodicInterval: 1h30m}\n",
        )
        .unwrap();
        assert_eq!(
            spec.periodic_savepoint_interval(),
            Some(std::time::Duration::from_secs(5400))
        );
        let none: crate::StreamSessionJobSpec =
            serde_yaml::from_str("clusterName: shared\njob: {name: counting}\n").unwrap();
        assert_eq!(none.periodic_savepoint_interval(), None);
        // The same schema (description, length, CEL rule) as spec.savepoints.periodicInterval
        // of a StreamJob.
        let field = |crd: CustomResourceDefinition| {
            let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
            schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["savepoints"]["properties"]
                ["periodicInterval"]
                .clone()
        };
        let session = field(session_job_crd());
        assert_eq!(session, field(crd()));
        assert_eq!(
            session["x-kubernetes-validations"][0]["message"],
            crate::spec::PERIODIC_INTERVAL_MESSAGE
        );
    }

    #[test]
    fn a_snapshot_without_a_job_kind_is_of_a_streamjob() {
        // Manifests written before jobReference.kind existed keep working: serde and the
        // schema default both say StreamJob.
        let s: crate::StreamJobSnapshotSpec =
            serde_yaml::from_str("jobReference: {name: counting}\n").unwrap();
        assert_eq!(s.job_reference, crate::JobReference::stream_job("counting"));
        let s: crate::StreamJobSnapshotSpec =
            serde_yaml::from_str("jobReference: {kind: StreamSessionJob, name: counts-a}\n")
                .unwrap();
        assert_eq!(s.job_reference.kind, crate::JobKind::StreamSessionJob);
        let schema = serde_json::to_value(&snapshot_crd().spec.versions[0].schema).unwrap();
        let kind = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["jobReference"]["properties"]
            ["kind"];
        assert_eq!(kind["default"], "StreamJob", "{kind}");
    }

    #[test]
    fn chart_crd_is_a_kept_conditional_template_without_stray_template_syntax() {
        let yaml = chart_crd_yaml().unwrap();
        assert!(yaml.contains("{{- if .Values.crds.install }}"));
        assert!(yaml.trim_end().ends_with("{{- end }}"));
        assert!(yaml.contains("helm.sh/resource-policy: keep"));
        // Only the two wrapper directives may look like Go templates, or Helm would try to
        // render schema text.
        assert_eq!(yaml.matches("{{").count(), 2);
    }

    #[test]
    fn pod_templates_keep_unknown_fields() {
        let json = serde_json::to_value(crd()).unwrap();
        let spec = &json["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        assert_eq!(
            spec["properties"]["podTemplate"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        assert_eq!(
            spec["properties"]["taskManager"]["properties"]["podTemplate"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }
}
