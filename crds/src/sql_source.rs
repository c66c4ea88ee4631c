//! `spec.job.sqlFrom`: a job's SQL script kept in a ConfigMap key instead of inline. The
//! operator reads the ConfigMap from the API server on every pass; `fjord run <manifest>` reads
//! it from the same manifest file (another YAML document). Both turn it into the script with
//! [`script_from`], so a missing ConfigMap or key reads the same in both places.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::manifest::FieldError;
use crate::spec::{ConfigMapKeyReference, JobSpec};

/// The field every error of this module names.
pub const FIELD: &str = "spec.job.sqlFrom.configMapKeyRef";

/// The script under `reference.key` in a ConfigMap's `data` (`None`: there is no such
/// ConfigMap; `absent` then says where it was looked for and what to do, e.g. `does not exist
/// in namespace 'jobs': create it with ...`).
///
/// # Errors
/// No ConfigMap, no such key (the message lists the keys there are), or an empty script.
pub fn script_from(
    reference: &ConfigMapKeyReference,
    data: Option<&BTreeMap<String, String>>,
    absent: &str,
) -> Result<String, FieldError> {
    let ConfigMapKeyReference { name, key } = reference;
    let Some(data) = data else {
        return Err(FieldError::new(
            FIELD,
            format!("ConfigMap '{name}' {absent}"),
        ));
    };
    let Some(script) = data.get(key) else {
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        let there = if keys.is_empty() {
            "it has no data keys".to_string()
        } else {
            format!("its keys: {}", keys.join(", "))
        };
        return Err(FieldError::new(
            FIELD,
            format!(
                "ConfigMap '{name}' has no key '{key}' ({there}); correct {FIELD}.key or add the key"
            ),
        ));
    };
    if script.trim().is_empty() {
        return Err(FieldError::new(
            FIELD,
            format!(
                "key '{key}' of ConfigMap '{name}' is empty: it must hold a SQL script (CREATE TABLE ..., INSERT INTO ... SELECT ...)"
            ),
        ));
    }
    Ok(script.clone())
}

/// What to tell a user whose ConfigMap `name` does not exist in namespace `namespace`.
pub fn absent_in_namespace(reference: &ConfigMapKeyReference, namespace: &str) -> String {
    format!(
        "does not exist in namespace '{namespace}': create it (kubectl create configmap {} -n {namespace} --from-file={}=job.sql) or correct {FIELD}.name",
        reference.name, reference.key
    )
}

/// `job` with its ConfigMap script in `sql` instead of the `sqlFrom` reference: the spec the
/// workers run and the operator records as deployed, so a changed script is a changed spec
/// (and the same script moved inline is not). A job without `sqlFrom` is returned as it is.
///
/// # Errors
/// As [`script_from`]; `lookup` gives the `data` of the named ConfigMap, if it exists.
pub fn resolve(
    job: &JobSpec,
    lookup: impl FnOnce(&str) -> Option<BTreeMap<String, String>>,
    absent: impl FnOnce(&ConfigMapKeyReference) -> String,
) -> Result<JobSpec, FieldError> {
    let Some(from) = &job.sql_from else {
        return Ok(job.clone());
    };
    let reference = &from.config_map_key_ref;
    let data = lookup(&reference.name);
    let script = script_from(reference, data.as_ref(), &absent(reference))?;
    Ok(JobSpec {
        sql: Some(script),
        sql_from: None,
        ..job.clone()
    })
}

/// The `data` of the ConfigMap `name` among the YAML documents of `yaml` (a manifest file
/// that holds the StreamJob and its ConfigMap), if one is there.
pub fn config_map_in_manifest(yaml: &str, name: &str) -> Option<BTreeMap<String, String>> {
    #[derive(Deserialize)]
    struct Metadata {
        name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Document {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        kind: Option<String>,
        metadata: Option<Metadata>,
        #[serde(default)]
        data: BTreeMap<String, String>,
    }
    serde_yaml::Deserializer::from_str(yaml)
        .filter_map(|doc| Document::deserialize(doc).ok())
        .find(|d| {
            d.api_version.as_deref() == Some("v1")
                && d.kind.as_deref() == Some("ConfigMap")
                && d.metadata.as_ref().and_then(|m| m.name.as_deref()) == Some(name)
        })
        .map(|d| d.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str, key: &str) -> ConfigMapKeyReference {
        ConfigMapKeyReference {
            name: name.into(),
            key: key.into(),
        }
    }

    const MANIFEST: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: other
data:
  job.sql: SELECT 0
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: orders-sql
data:
  job.sql: |
    CREATE TABLE t (x INT) WITH ('connector' = 'datagen');
  notes: ''
---
apiVersion: fjord.dev/v1alpha1
kind: StreamJob
metadata:
  name: orders
";

    #[test]
    fn the_script_is_the_named_key_of_the_named_config_map_in_the_file() {
        let data = config_map_in_manifest(MANIFEST, "orders-sql");
        let script = script_from(&reference("orders-sql", "job.sql"), data.as_ref(), "-").unwrap();
        assert_eq!(
            script,
            "CREATE TABLE t (x INT) WITH ('connector' = 'datagen');\n"
        );
        assert!(config_map_in_manifest(MANIFEST, "orders").is_none());
    }

    #[test]
    fn a_missing_config_map_key_or_script_says_what_to_do() {
        let data = config_map_in_manifest(MANIFEST, "orders-sql");
        let r = reference("orders-sql", "jobs.sql");
        let e = script_from(&r, data.as_ref(), "-").unwrap_err().to_string();
        assert!(
            e.contains("no key 'jobs.sql'") && e.contains("its keys: job.sql, notes"),
            "{e}"
        );
        let e = script_from(&reference("orders-sql", "notes"), data.as_ref(), "-")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'notes'") && e.contains("is empty"), "{e}");
        let r = reference("nope", "job.sql");
        let e = script_from(&r, None, &absent_in_namespace(&r, "jobs"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(FIELD)
                && e.contains("ConfigMap 'nope' does not exist in namespace 'jobs'")
                && e.contains("kubectl create configmap nope -n jobs --from-file=job.sql=job.sql"),
            "{e}"
        );
    }
}
