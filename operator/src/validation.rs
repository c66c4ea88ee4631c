//! The operator's checks of a StreamJob spec. They run on every pass; a failure becomes a
//! `Degraded` condition (`InvalidSpec`) and an Event, and the operator keeps the running job as
//! it is (never a crash loop, never a half-applied spec).
//!
//! Every rule is also in the CRD schema (CEL), so the API server refuses such a spec before it
//! is stored, and `fjord run` refuses it locally with the same words: the operator's pass only
//! catches objects stored before a rule existed.

use fjord_crds::{FieldError, StreamJobSpec};

/// Every problem with `spec` for running it in a cluster: the rules of
/// [`fjord_crds::validate_spec`] (credential-looking configuration keys, `memory://` storage with
/// a stateful upgrade mode and parallelism bounds included).
pub fn validate(spec: &StreamJobSpec) -> Vec<FieldError> {
    fjord_crds::validate_spec(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_crds::UpgradeMode;

    fn spec(extra: &str) -> StreamJobSpec {
        serde_yaml::from_str(&format!(
            "image: i\njob: {{name: j}}\ncheckpointing: {{storage: 's3://b/cp'}}\n{extra}"
        ))
        .unwrap()
    }

    #[test]
    fn credentials_in_configuration_are_rejected() {
        let errors = validate(&spec(
            "configuration: {s3.Secret-Key: hunter2, s3.region: x}\n",
        ));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.configuration");
        assert!(
            errors[0]
                .message
                .contains("spec.configuration.s3.Secret-Key"),
            "{errors:?}"
        );
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
    fn parallelism_above_the_default_max_parallelism_is_rejected() {
        let mut s = spec("");
        s.job.parallelism = 1000;
        let errors = validate(&s);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "spec.job.parallelism");
        assert!(errors[0].message.contains("128"), "{errors:?}");
        s.job.max_parallelism = Some(1000);
        assert!(validate(&s).is_empty());
    }

    #[test]
    fn a_good_spec_passes() {
        assert!(validate(&spec("")).is_empty());
    }
}
