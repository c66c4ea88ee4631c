//! The Kubernetes lease in a binary built without the `kubernetes-ha` feature: a JobManager
//! configured with `high-availability.type: kubernetes` (the operator's
//! `spec.jobManager.highAvailability`) stops at start-up with an error naming the feature.

use super::{HaConfig, LeaseStore};
use crate::WorkerError;

/// Refuses: this binary has no Kubernetes client.
///
/// # Errors
/// Always [`WorkerError::NotBuiltIn`].
pub fn store(_config: &HaConfig) -> Result<Box<dyn LeaseStore>, WorkerError> {
    Err(WorkerError::NotBuiltIn {
        feature: "kubernetes-ha",
        what: "high-availability.type = kubernetes (a StreamJob's spec.jobManager.highAvailability)",
    })
}
