//! Checks on a StreamJob spec that the CRD schema cannot express. They run in the operator on
//! every pass; a failure becomes a `Degraded` condition and an Event, and the operator keeps the
//! running job as it is (never a crash loop, never a half-applied spec).

use fjord_crds::{FieldError, StreamJobSpec, UpgradeMode};

/// Substrings of configuration keys that name credentials; those belong in the Secret of
/// `spec.storageCredentials`, never in a ConfigMap.
const SECRET_KEY_MARKERS: [&str; 5] = ["secret", "password", "token", "access-key", "credential"];

/// Every problem with `spec` for running it in a cluster: the rules of
/// [`fjord_crds::validate_spec`] plus cluster-only ones.
pub fn validate(spec: &StreamJobSpec) -> Vec<FieldError> {
    let mut errors = fjord_crds::validate_spec(spec);
    for key in spec.configuration.keys() {
        let lower = key.to_ascii_lowercase();
        if SECRET_KEY_MARKERS.iter().any(|m| lower.contains(m)) {
            errors.push(FieldError {
                field: format!("spec.configuration.{key}"),
                message: "looks like a credential; the configuration goes into a ConfigMap, so put credentials in the Secret named by spec.storageCredentials instead".into(),
            });
        }
    }
    let in_memory = |s: Option<&str>| s.is_some_and(|s| s.starts_with("memory://"));
    if spec.job.upgrade_mode != UpgradeMode::Stateless
        && (in_memory(spec.checkpoint_storage())
            || in_memory(spec.savepoint_directory().as_deref()))
    {
        errors.push(FieldError {
            field: "spec.checkpointing.storage".into(),
            message: format!(
                "memory:// storage does not outlive the pods, so upgradeMode {} would lose state; use s3:// in a cluster, or upgradeMode stateless",
                spec.job.upgrade_mode.as_str()
            ),
        });
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> StreamJobSpec {
        serde_yaml::from_str(&format!(
            "image: i\njob: {{name: j}}\ncheckpointing: {{storage: 's3://b/cp'}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn credentials_in_configuration_are_rejected() {
        let errors = validate(&spec(
            "configuration: {s3.secret-key: hunter2, s3.region: x}\n",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.configuration.s3.secret-key");
        assert!(
            !errors[0].message.contains("hunter2"),
            "never echo the value"
        );
    }

    #[test]
    fn memory_storage_with_a_stateful_mode_is_rejected() {
        let mut s = spec("");
        s.checkpointing.as_mut().unwrap().storage = Some("memory://cp".into());
        assert_eq!(validate(&s)[0].field, "spec.checkpointing.storage");
        s.job.upgrade_mode = UpgradeMode::Stateless;
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn a_good_spec_passes() {
        assert!(validate(&spec("")).is_empty());
    }
}
