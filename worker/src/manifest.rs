//! `fjord run <streamjob.yaml>`: a StreamJob manifest run on the local mini-cluster.
//!
//! Reading manifests is the `manifests` feature (`streamjob`, on the StreamJob types of
//! `fjord-crds`); without it a manifest path still reads as one, and loading it fails with
//! [`WorkerError::NotBuiltIn`](crate::WorkerError::NotBuiltIn) naming the feature
//! (`unavailable`).

#[cfg(feature = "manifests")]
mod streamjob;
#[cfg(feature = "manifests")]
pub use streamjob::{Error, load, load_with_fault_tolerance};

#[cfg(not(feature = "manifests"))]
mod unavailable;
#[cfg(not(feature = "manifests"))]
pub use unavailable::{Error, load, load_with_fault_tolerance};

/// True when the argument names a manifest file rather than a registered job.
pub fn is_manifest_path(arg: &str) -> bool {
    arg.ends_with(".yaml") || arg.ends_with(".yml")
}
