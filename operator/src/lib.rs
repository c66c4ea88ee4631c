//! The Fjord Kubernetes operator: turns StreamJobs into JobManager and TaskManager workloads and
//! drives their deployments, upgrades, savepoints, suspend/resume, rescaling and deletion.
//!
//! Modules, and which may use which:
//! - [`lifecycle`]: the state machine. A pure function from (spec, status, observations, time)
//!   to (next status, actions, events). Uses [`savepoints`], [`conditions`] and the data types
//!   of [`jobmanager`]; never performs I/O.
//! - [`autoscaler`]: reactive autoscaling: from two samples of the vertices' busy, idle and
//!   backpressured time, the parallelism the job needs; recorded in status and applied as an
//!   override of spec.job.parallelism (by [`lifecycle`], in place). Pure; uses the data types
//!   of [`jobmanager`] and [`lifecycle`]'s Event notes.
//! - [`savepoints`]: the savepoint history and its retention. Pure.
//! - [`conditions`]: the Ready / Progressing / Degraded conditions. Pure.
//! - [`resources`]: the desired child objects, built by pure functions. Uses [`podtemplate`].
//! - [`podtemplate`]: merging pod template overrides. Pure.
//! - [`podsecurity`]: the Pod Security `restricted` baseline of every generated Pod. Pure.
//! - [`pods`]: why the JobManager or TaskManager Pods do not run, or crash-loop under a
//!   running job, from their status. Pure.
//! - [`validation`]: checks the schema cannot express, reported as a Degraded condition.
//! - [`jobmanager`]: the [`jobmanager::JobManagerApi`] trait the operator drives the JobManager
//!   through, and its data types.
//! - [`controller`]: the kube-rs wiring: observe, decide, write status, act. The only module
//!   that talks to the Kubernetes API (with [`leader`]).
//! - [`snapshots`]: StreamJobSnapshots — savepoints as objects: recorded for the lifecycle's
//!   savepoints, taken for users' snapshots, disposed of on deletion. Talks to the Kubernetes
//!   API and the JobManager, like [`controller`].
//! - [`session`]: session clusters — StreamClusters (a JobManager in session mode and
//!   TaskManagers, built with [`resources`]) and the StreamSessionJobs submitted to them, with
//!   their pure lifecycle [`session::decide`]. Talks to the Kubernetes API and the JobManager.
//! - [`leader`]: leader election on a coordination.k8s.io Lease.
//! - [`events`]: Kubernetes Events, one per occurrence, with bounded notes.
//! - [`metrics`]: the operator's Prometheus metrics.
//! - [`certificates`]: the per-StreamJob CA and leaf certificate, and when to renew. Pure.
//! - [`ca_rotation`]: the state machine that rotates a StreamJob's CA through a bundle of old
//!   and new CA. Pure; uses [`certificates`]' renewal rule.
//! - [`security`]: `spec.security`'s configuration keys and Secret mounts (pure, used by
//!   [`resources`]), and the CA, certificate and token Secrets (API calls, from [`controller`];
//!   the steps of a CA rotation come from [`ca_rotation`]).
//! - [`error`]: the crate's one error type.

pub mod apply;
pub mod autoscaler;
pub mod ca_rotation;
pub mod certificates;
pub mod conditions;
pub mod controller;
pub mod error;
pub mod events;
pub mod finalizers;
pub mod jobmanager;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod pods;
pub mod podsecurity;
pub mod podtemplate;
pub mod resources;
pub mod savepoints;
pub mod security;
pub mod session;
pub mod snapshots;
pub mod sql_source;
pub mod validation;

pub use error::Error;

/// The field manager used for every server-side apply and status patch.
pub const FIELD_MANAGER: &str = "fjord-operator";

/// The finalizer the operator puts on StreamJobs.
pub const FINALIZER: &str = "fjord.dev/finalizer";
