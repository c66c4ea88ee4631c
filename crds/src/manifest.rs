//! Loading and validating a StreamJob manifest outside Kubernetes (`fjord run <streamjob.yaml>`)
//! and inside the operator (the deeper checks the schema cannot express).
//!
//! [`load_stream_job`] applies, in order: YAML parsing into the typed spec (wrong types and
//! missing required fields), strict field checking (unknown fields, as `kubectl apply` does), the
//! Rust rules of [`validate_spec`], and the CEL rules of the CRD schema evaluated locally. The Rust
//! rules restate the CEL rules with the same messages, so a laptop and the API server reject the
//! same manifest with the same words; the CEL pass guards against the two drifting apart.

use std::fmt;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Deserialize;

use crate::spec::{
    AUTOSCALER_BOUNDS_MESSAGE, AUTOSCALER_MAX_MESSAGE, AUTOSCALER_MIN_MESSAGE,
    AUTOSCALER_SLOTS_MESSAGE, AutoscalerSpec, CREDENTIAL_KEY_MARKERS, DesiredJobState,
    MEMORY_STORAGE_MESSAGE, PARALLELISM_MESSAGE, UpgradeMode,
};
use crate::{Error, StreamJob, StreamJobSpec};

/// The apiVersion of a StreamJob manifest.
pub const API_VERSION: &str = "fjord.dev/v1alpha1";
/// The kind of a StreamJob manifest.
pub const KIND: &str = "StreamJob";
/// Longest metadata.name: children are named `<name>-taskmanager` and Service names are at most
/// 63 characters.
pub const MAX_NAME_LEN: usize = 50;

/// One broken rule, naming the field in the manifest's own spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `spec.job.parallelism`.
    pub field: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl FieldError {
    /// An error of `field` saying `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.starts_with(&self.field) && !self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Parse a manifest holding exactly one StreamJob (other documents, such as a Secret, are
/// skipped) and validate it.
///
/// `source_name` is used in error messages (pass the file name).
///
/// # Errors
/// - [`Error::Parse`] when the YAML is malformed or a field has the wrong type; the message names
///   the field and line.
/// - [`Error::NotOneStreamJob`] when there is no StreamJob document, or more than one.
/// - [`Error::Invalid`] listing every broken rule (unknown fields, Rust rules, CEL rules).
pub fn load_stream_job(yaml: &str, source_name: &str) -> Result<StreamJob, Error> {
    let parse_err = |message: String| Error::Parse {
        source_name: source_name.to_string(),
        message,
    };
    // First pass: find the StreamJob documents.
    let mut found: Vec<(usize, serde_yaml::Value)> = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| parse_err(e.to_string()))?;
        let api_version = value.get("apiVersion").and_then(|v| v.as_str());
        let kind = value.get("kind").and_then(|v| v.as_str());
        if api_version == Some(API_VERSION) && kind == Some(KIND) {
            found.push((index, value));
        }
    }
    if found.len() != 1 {
        return Err(Error::NotOneStreamJob {
            source_name: source_name.to_string(),
            found: found.len(),
        });
    }
    let (index, value) = found.pop().expect("exactly one");
    let raw_json: serde_json::Value =
        serde_json::to_value(&value).map_err(|e| parse_err(e.to_string()))?;
    // Second pass: deserialize that document straight from the text, so the error names the
    // field path and the line in the user's file ("spec.job.parallelism: invalid type ... at
    // line 9 column 18").
    let doc = serde_yaml::Deserializer::from_str(yaml)
        .nth(index)
        .expect("the document was seen in the first pass");
    let job = StreamJob::deserialize(doc).map_err(|e| parse_err(e.to_string()))?;

    let mut errors = unknown_fields(&raw_json);
    errors.extend(validate_metadata(&job));
    errors.extend(validate_spec(&job.spec));
    if errors.is_empty() {
        // Only when the Rust rules pass, so one mistake is not reported twice.
        errors.extend(validate_cel(&job));
    }
    if errors.is_empty() {
        Ok(job)
    } else {
        Err(Error::Invalid {
            source_name: source_name.to_string(),
            errors,
        })
    }
}

/// Check metadata.name: present, a DNS label, short enough for the names of the children.
pub fn validate_metadata(job: &StreamJob) -> Vec<FieldError> {
    let mut errors = Vec::new();
    match job.metadata.name.as_deref() {
        None | Some("") => errors.push(FieldError::new("metadata.name", "is required")),
        Some(name) => {
            if name.len() > MAX_NAME_LEN || !is_dns_label(name) {
                errors.push(FieldError::new(
                    "metadata.name",
                    format!("{MAX_NAME_LEN_MESSAGE} (got {name:?})"),
                ));
            }
        }
    }
    errors
}

const MAX_NAME_LEN_MESSAGE: &str = "metadata.name must be at most 50 lowercase letters, digits and '-', starting with a letter and ending with a letter or digit";

fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !s.ends_with('-')
}

/// The message for a credential-looking key of spec.configuration (the same words as the
/// CRD's CEL rule, which names the first such key).
pub fn credential_key_message(key: &str) -> String {
    format!(
        "spec.configuration.{key} looks like a credential; spec.configuration goes into a ConfigMap, so put credentials in the Secret named by spec.storageCredentials instead"
    )
}

/// Whether a configuration key names a credential: it contains one of
/// [`CREDENTIAL_KEY_MARKERS`] in any case (the CRD's CEL rule matches the same words).
pub fn is_credential_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    CREDENTIAL_KEY_MARKERS.iter().any(|m| lower.contains(m))
}

fn is_storage_url(s: &str) -> bool {
    ["s3://", "hdfs://", "file://", "memory://"]
        .iter()
        .any(|p| s.len() > p.len() && s.starts_with(p))
}

/// Check the rules of a StreamJob spec. Every rule of the CRD's CEL validation is restated here
/// with the same message, plus the checks CEL cannot do (pod templates against the Pod schema).
/// Returns every problem found; an empty list means the spec is valid.
pub fn validate_spec(spec: &StreamJobSpec) -> Vec<FieldError> {
    let mut e = Vec::new();
    if spec.image.is_empty() {
        e.push(FieldError::new("spec.image", "must not be empty"));
    }
    let job = &spec.job;
    let sql_script = job.sql.is_some() || job.sql_from.is_some();
    if (job.sql.is_some() && job.sql_from.is_some())
        || (!sql_script && job.name.is_empty())
        || (sql_script
            && (!(job.name.is_empty() || job.name == crate::spec::SQL_JOB_NAME)
                || !job.args.is_empty()))
    {
        e.push(FieldError::new(
            "spec.job.name",
            crate::spec::JOB_SQL_MESSAGE,
        ));
    } else if job.sql.as_deref().is_some_and(|s| s.trim().is_empty()) {
        e.push(FieldError::new(
            "spec.job.sql",
            "must hold a SQL script (CREATE TABLE ..., INSERT INTO ... SELECT ...)",
        ));
    }
    if job.parallelism < 1 {
        e.push(FieldError::new(
            "spec.job.parallelism",
            format!("must be at least 1 (got {})", job.parallelism),
        ));
    }
    if job.parallelism > 32768 {
        e.push(FieldError::new(
            "spec.job.parallelism",
            format!("must be at most 32768 (got {})", job.parallelism),
        ));
    }
    match job.max_parallelism {
        Some(max) if !(1..=32768).contains(&max) => e.push(FieldError::new(
            "spec.job.maxParallelism",
            format!("must be between 1 and 32768 (got {max})"),
        )),
        _ if job.parallelism > spec.max_parallelism() => {
            e.push(FieldError::new("spec.job.parallelism", PARALLELISM_MESSAGE))
        }
        _ => {}
    }
    if let Some(p) = &job.initial_savepoint_path
        && !is_storage_url(p)
    {
        e.push(FieldError::new(
            "spec.job.initialSavepointPath",
            "spec.job.initialSavepointPath must be a URL with scheme s3://, hdfs://, file:// or memory://",
        ));
    }
    if job.initial_savepoint_path.is_some() && job.initial_savepoint_snapshot.is_some() {
        e.push(FieldError::new(
            "spec.job.initialSavepointSnapshot",
            crate::spec::INITIAL_SAVEPOINT_MESSAGE,
        ));
    }
    let has_checkpoint_storage = spec.checkpoint_storage().is_some();
    let has_savepoint_dir = spec.savepoint_directory().is_some();
    match job.upgrade_mode {
        UpgradeMode::Savepoint if !has_savepoint_dir => e.push(FieldError::new(
            "spec.job.upgradeMode",
            "spec.job.upgradeMode savepoint needs spec.savepoints.directory or spec.checkpointing.storage to write savepoints to",
        )),
        UpgradeMode::LastState if !has_checkpoint_storage => e.push(FieldError::new(
            "spec.job.upgradeMode",
            "spec.job.upgradeMode last-state needs spec.checkpointing.storage so checkpoints outlive the pods",
        )),
        _ => {}
    }
    if let Some(jm) = &spec.job_manager {
        if let Some(r) = jm.replicas
            && r != 1
            && jm.high_availability.is_none()
        {
            e.push(FieldError::new(
                "spec.jobManager.replicas",
                crate::spec::HA_REPLICAS_MESSAGE,
            ));
        }
        if let Some(r) = jm.replicas
            && !(1..=5).contains(&r)
        {
            e.push(FieldError::new(
                "spec.jobManager.replicas",
                "spec.jobManager.replicas must be between 1 and 5",
            ));
        }
        if let Some(ha) = &jm.high_availability {
            let (lease, renew, retry) = (
                ha.lease_duration_seconds.unwrap_or(15),
                ha.renew_deadline_seconds.unwrap_or(10),
                ha.retry_period_seconds.unwrap_or(2),
            );
            if renew >= lease {
                e.push(FieldError::new(
                    "spec.jobManager.highAvailability",
                    crate::spec::HA_RENEW_MESSAGE,
                ));
            }
            if retry >= renew {
                e.push(FieldError::new(
                    "spec.jobManager.highAvailability",
                    crate::spec::HA_RETRY_MESSAGE,
                ));
            }
            if spec
                .checkpoint_storage()
                .is_none_or(|s| s.starts_with("memory://"))
            {
                e.push(FieldError::new(
                    "spec.jobManager.highAvailability",
                    crate::spec::HA_STORAGE_MESSAGE,
                ));
            }
        }
    }
    let in_memory = |s: Option<&str>| s.is_some_and(|s| s.starts_with("memory://"));
    if job.upgrade_mode != UpgradeMode::Stateless
        && (in_memory(spec.checkpoint_storage())
            || in_memory(
                spec.savepoints
                    .as_ref()
                    .and_then(|s| s.directory.as_deref()),
            ))
    {
        e.push(FieldError::new(
            "spec.checkpointing.storage",
            MEMORY_STORAGE_MESSAGE,
        ));
    }
    if spec.configuration.len() > 256 {
        e.push(FieldError::new(
            "spec.configuration",
            format!(
                "must have at most 256 entries (got {})",
                spec.configuration.len()
            ),
        ));
    }
    if let Some(key) = spec.configuration.keys().find(|k| is_credential_key(k)) {
        e.push(FieldError::new(
            "spec.configuration",
            credential_key_message(key),
        ));
    }
    if let Some(tm) = &spec.task_manager {
        if let Some(s) = tm.slots
            && !(1..=1024).contains(&s)
        {
            e.push(FieldError::new(
                "spec.taskManager.slots",
                format!("must be between 1 and 1024 (got {s})"),
            ));
        }
        if let Some(r) = tm.replicas {
            if !(1..=32768).contains(&r) {
                e.push(FieldError::new(
                    "spec.taskManager.replicas",
                    format!("must be between 1 and 32768 (got {r})"),
                ));
            } else if i64::from(r) * i64::from(spec.slots()) < i64::from(job.parallelism) {
                e.push(FieldError::new(
                    "spec.taskManager.replicas",
                    "spec.taskManager.replicas * spec.taskManager.slots must be at least spec.job.parallelism",
                ));
            }
        }
    }
    if let Some(cp) = &spec.checkpointing {
        if let Some(i) = cp.interval
            && (i.is_negative() || std::time::Duration::from(i).is_zero())
        {
            e.push(FieldError::new(
                "spec.checkpointing.interval",
                "spec.checkpointing.interval must be a positive duration such as 10s, 1m or 1h30m",
            ));
        }
        if let Some(s) = &cp.storage
            && !is_storage_url(s)
        {
            e.push(FieldError::new(
                "spec.checkpointing.storage",
                "spec.checkpointing.storage must be a URL with scheme s3://, hdfs://, file:// or memory://",
            ));
        }
        if let Some(r) = cp.retained
            && !(1..=100).contains(&r)
        {
            e.push(FieldError::new(
                "spec.checkpointing.retained",
                format!("must be between 1 and 100 (got {r})"),
            ));
        }
    }
    if let Some(sp) = &spec.savepoints {
        if let Some(d) = &sp.directory
            && !is_storage_url(d)
        {
            e.push(FieldError::new(
                "spec.savepoints.directory",
                "spec.savepoints.directory must be a URL with scheme s3://, hdfs://, file:// or memory://",
            ));
        }
        if let Some(i) = sp.periodic_interval
            && (i.is_negative()
                || std::time::Duration::from(i) < std::time::Duration::from_secs(60))
        {
            e.push(FieldError::new(
                "spec.savepoints.periodicInterval",
                crate::spec::PERIODIC_INTERVAL_MESSAGE,
            ));
        }
        if let Some(i) = sp.history_max_age
            && (i.is_negative() || std::time::Duration::from(i).is_zero())
        {
            e.push(FieldError::new(
                "spec.savepoints.historyMaxAge",
                "spec.savepoints.historyMaxAge must be a positive duration such as 168h",
            ));
        }
        if let Some(i) = sp.on_delete_timeout
            && (i.is_negative() || std::time::Duration::from(i).is_zero())
        {
            e.push(FieldError::new(
                "spec.savepoints.onDeleteTimeout",
                "spec.savepoints.onDeleteTimeout must be a positive duration such as 5m",
            ));
        }
        if let Some(c) = sp.history_max_count
            && !(1..=1000).contains(&c)
        {
            e.push(FieldError::new(
                "spec.savepoints.historyMaxCount",
                format!("must be between 1 and 1000 (got {c})"),
            ));
        }
        if (sp.on_delete == Some(true) || sp.periodic_interval.is_some()) && !has_savepoint_dir {
            e.push(FieldError::new(
                "spec.savepoints",
                "spec.savepoints.onDelete and spec.savepoints.periodicInterval need spec.savepoints.directory or spec.checkpointing.storage",
            ));
        }
    }
    if let Some(a) = &spec.autoscaler {
        e.extend(validate_autoscaler(spec, a));
    }
    if let Some(secret) = &spec.storage_credentials
        && secret.name.is_empty()
    {
        e.push(FieldError::new(
            "spec.storageCredentials.name",
            "must name a Secret",
        ));
    }
    let templates = [
        ("spec.podTemplate", spec.pod_template.as_ref()),
        (
            "spec.jobManager.podTemplate",
            spec.job_manager
                .as_ref()
                .and_then(|j| j.pod_template.as_ref()),
        ),
        (
            "spec.taskManager.podTemplate",
            spec.task_manager
                .as_ref()
                .and_then(|t| t.pod_template.as_ref()),
        ),
    ];
    for (field, template) in templates {
        if let Some(t) = template
            && let Err(err) = serde_json::from_value::<PodTemplateSpec>(t.clone())
        {
            e.push(FieldError::new(
                field,
                format!("is not a valid Kubernetes pod template: {err}"),
            ));
        }
    }
    // Suspended is always valid; it is matched here so a new desired state is a compile error
    // until its rules are considered.
    match job.state {
        DesiredJobState::Running | DesiredJobState::Suspended => {}
    }
    e
}

/// The rules of spec.autoscaler (the CRD's bounds and CEL rules, with their messages).
fn validate_autoscaler(spec: &StreamJobSpec, a: &AutoscalerSpec) -> Vec<FieldError> {
    let mut e = Vec::new();
    for (field, value) in [
        ("spec.autoscaler.minParallelism", a.min_parallelism),
        ("spec.autoscaler.maxParallelism", a.max_parallelism),
    ] {
        if let Some(v) = value
            && !(1..=32768).contains(&v)
        {
            e.push(FieldError::new(
                field,
                format!("must be between 1 and 32768 (got {v})"),
            ));
        }
    }
    if let Some(t) = a.target_utilization
        && !(0.01..=1.0).contains(&t)
    {
        e.push(FieldError::new(
            "spec.autoscaler.targetUtilization",
            format!("must be between 0.01 and 1 (got {t})"),
        ));
    }
    if let Some(b) = a.target_utilization_boundary
        && !(0.0..=1.0).contains(&b)
    {
        e.push(FieldError::new(
            "spec.autoscaler.targetUtilizationBoundary",
            format!("must be between 0 and 1 (got {b})"),
        ));
    }
    if let Some(w) = a.metrics_window
        && (w.is_negative() || std::time::Duration::from(w) < std::time::Duration::from_secs(1))
    {
        e.push(FieldError::new(
            "spec.autoscaler.metricsWindow",
            "spec.autoscaler.metricsWindow must be a duration of at least 1s, such as 10s or 1m",
        ));
    }
    for (field, value) in [
        (
            "spec.autoscaler.stabilizationInterval",
            a.stabilization_interval,
        ),
        ("spec.autoscaler.scaleUpCooldown", a.scale_up_cooldown),
        ("spec.autoscaler.scaleDownCooldown", a.scale_down_cooldown),
    ] {
        if value.is_some_and(|d| d.is_negative()) {
            e.push(FieldError::new(
                field,
                format!("{field} must be a duration such as 0s, 30s or 5m"),
            ));
        }
    }
    if let (Some(min), Some(max)) = (a.min_parallelism, a.max_parallelism)
        && min > max
    {
        e.push(FieldError::new(
            "spec.autoscaler.minParallelism",
            AUTOSCALER_BOUNDS_MESSAGE,
        ));
    }
    if a.max_parallelism
        .is_some_and(|m| m > spec.max_parallelism())
    {
        e.push(FieldError::new(
            "spec.autoscaler.maxParallelism",
            AUTOSCALER_MAX_MESSAGE,
        ));
    }
    if a.min_parallelism
        .is_some_and(|m| m > spec.max_parallelism())
    {
        e.push(FieldError::new(
            "spec.autoscaler.minParallelism",
            AUTOSCALER_MIN_MESSAGE,
        ));
    }
    if a.enabled
        && let Some(r) = spec.task_manager.as_ref().and_then(|t| t.replicas)
        && i64::from(r) * i64::from(spec.slots())
            < i64::from(a.max_parallelism.unwrap_or_else(|| spec.max_parallelism()))
    {
        e.push(FieldError::new(
            "spec.taskManager.replicas",
            AUTOSCALER_SLOTS_MESSAGE,
        ));
    }
    e
}

/// Evaluate the CRD schema's CEL rules (`x-kubernetes-validations`) against the object, as the
/// API server would on `kubectl apply`. Defaults from the Rust types are applied first, as the
/// API server applies schema defaults before validating.
pub fn validate_cel(job: &StreamJob) -> Vec<FieldError> {
    let crd = crate::crd::crd();
    let Some(schema) = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        return vec![FieldError::new("", "the generated CRD has no schema")];
    };
    let schema = serde_json::to_value(schema).expect("a schema serializes to JSON");
    let object = serde_json::to_value(job).expect("a StreamJob serializes to JSON");
    match kube::core::cel::Validator::new().validate(&schema, &object, None) {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|err| {
                let field = err.field_path.trim_start_matches('.').to_string();
                FieldError::new(field, err.message)
            })
            .collect(),
    }
}

/// Fields of the manifest that the StreamJob schema does not have (typos such as `paralelism`),
/// which the API server would reject under `kubectl apply`'s strict field validation and which
/// would otherwise be ignored silently.
pub fn unknown_fields(manifest: &serde_json::Value) -> Vec<FieldError> {
    let crd = crate::crd::crd();
    let Some(schema) = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        return Vec::new();
    };
    let schema = serde_json::to_value(schema).expect("a schema serializes to JSON");
    let mut errors = Vec::new();
    for key in ["spec", "status"] {
        if let Some(v) = manifest.get(key) {
            walk_unknown(v, &schema["properties"][key], key, &mut errors);
        }
    }
    if let Some(obj) = manifest.as_object() {
        for k in obj.keys() {
            if !["apiVersion", "kind", "metadata", "spec", "status"].contains(&k.as_str()) {
                errors.push(FieldError::new(k.clone(), "unknown field"));
            }
        }
    }
    errors
}

fn walk_unknown(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&serde_json::Value::Bool(true)) {
        return;
    }
    match value {
        serde_json::Value::Object(map) => {
            let props = schema.get("properties").and_then(|p| p.as_object());
            let additional = schema.get("additionalProperties");
            for (k, v) in map {
                let child_path = format!("{path}.{k}");
                if let Some(child) = props.and_then(|p| p.get(k)) {
                    walk_unknown(v, child, &child_path, errors);
                } else if let Some(add) = additional.filter(|a| a.is_object()) {
                    walk_unknown(v, add, &child_path, errors);
                } else if props.is_some() || additional.is_none() {
                    errors.push(FieldError::new(child_path, "unknown field"));
                }
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    walk_unknown(v, item_schema, &format!("{path}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
