//! The security settings every generated JobManager and TaskManager Pod starts from: Kubernetes
//! Pod Security Standards, level `restricted`.
//!
//! They are the base the pod templates merge onto (see [`crate::resources`]): a user's
//! `spec.podTemplate` or component template can tighten them further (or, deliberately,
//! change them, for example another `runAsUser`). The root filesystem is read-only; the worker
//! writes only below `/tmp` (RocksDB's local directory by default, temporary files), an
//! `emptyDir` volume.

use serde_json::{Value, json};

use crate::resources::MAIN_CONTAINER;

/// The user and group id the worker runs as (no name needed in the image; the distroless
/// `nonroot` id).
pub const RUN_AS_USER: i64 = 65532;

/// The writable scratch volume mounted at [`SCRATCH_DIR`].
pub const SCRATCH_VOLUME: &str = "fjord-tmp";

/// Where the scratch volume is mounted (the worker's temporary directory).
pub const SCRATCH_DIR: &str = "/tmp";

/// The `restricted` baseline as a partial pod spec (the `spec` of a pod template), in JSON so
/// that it merges with the user's templates like any other layer.
pub fn restricted_pod_spec() -> Value {
    json!({
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": MAIN_CONTAINER,
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [{"name": SCRATCH_VOLUME, "mountPath": SCRATCH_DIR}],
        }],
        "volumes": [{"name": SCRATCH_VOLUME, "emptyDir": {}}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks of the Pod Security Standards' `restricted` level (v1.25+) that a pod spec
    /// can fail, applied to the baseline: what the API server's PodSecurity admission checks.
    #[test]
    fn the_baseline_meets_every_restricted_check() {
        let spec = restricted_pod_spec();
        let pod = &spec["securityContext"];
        assert_eq!(pod["runAsNonRoot"], true);
        assert_ne!(pod["runAsUser"], 0);
        assert_eq!(pod["seccompProfile"]["type"], "RuntimeDefault");
        let c = &spec["containers"][0]["securityContext"];
        assert_eq!(c["allowPrivilegeEscalation"], false);
        assert_eq!(c["capabilities"]["drop"], json!(["ALL"]));
        assert!(c.get("privileged").is_none());
        assert!(spec.get("hostNetwork").is_none() && spec.get("hostPID").is_none());
        for v in spec["volumes"].as_array().unwrap() {
            assert!(v.get("hostPath").is_none(), "{v}");
        }
    }
}
