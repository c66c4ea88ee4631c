//! [`super`] in a binary built without the `manifests` feature: loading a manifest fails with
//! an error naming the feature.

use crate::WorkerError;
use crate::local::{FaultTolerance, LocalRun};
use std::path::Path;

/// No manifest is ever read here, so none is ever invalid.
pub type Error = std::convert::Infallible;

/// Refuses: this binary cannot read manifests.
///
/// # Errors
/// Always [`WorkerError::NotBuiltIn`].
pub fn load(path: &Path) -> Result<LocalRun, WorkerError> {
    Ok(load_with_fault_tolerance(path)?.0)
}

/// Refuses: this binary cannot read manifests.
///
/// # Errors
/// Always [`WorkerError::NotBuiltIn`].
pub fn load_with_fault_tolerance(_path: &Path) -> Result<(LocalRun, FaultTolerance), WorkerError> {
    Err(WorkerError::NotBuiltIn {
        feature: "manifests",
        what: "running a StreamJob manifest (`run <file>.yaml`)",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_names_the_feature_to_enable() {
        let err = load(Path::new("job.yaml")).unwrap_err();
        assert!(matches!(
            err,
            WorkerError::NotBuiltIn {
                feature: "manifests",
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("`manifests` feature of fjord-worker"),
            "{err}"
        );
    }
}
