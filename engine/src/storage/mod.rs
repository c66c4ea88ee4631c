//! Durable storage for checkpoints and savepoints, on the `object_store` crate.
//!
//! One [`SnapshotStore`] names a base location by URL:
//!
//! | URL | Store |
//! | --- | --- |
//! | `file:///var/fjord/checkpoints` | the local file system (or a mounted volume) |
//! | `s3://bucket/prefix` | Amazon S3 or any S3-compatible server (MinIO, ...); needs the `s3` feature |
//! | `memory://name` | memory shared by every store opened with the same name in this process (tests) |
//!
//! S3 settings come from [`StorageOptions`] with Flink's keys (`s3.endpoint`, `s3.access-key`,
//! `s3.secret-key`, `s3.region`, `s3.path-style-access`), falling back to the usual `AWS_*`
//! environment variables. The directory layout inside the base is described in [`layout`].

pub mod checksum;
pub mod layout;
mod location;
#[doc(hidden)]
pub mod test_hooks;

pub use location::{STORAGE_THREADS, SnapshotStore, StorageOptions};
