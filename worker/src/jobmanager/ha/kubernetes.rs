//! The Kubernetes lease: leader election on a `coordination.k8s.io/v1` Lease, as client-go's
//! leader election and Flink's Kubernetes HA do it.
//!
//! - **Taking it**: create the Lease (absent), or, once this contender saw its
//!   `resourceVersion` unchanged for the lease duration (or its holder empty: released),
//!   replace it naming this holder, with `leaseTransitions` incremented; the replace carries
//!   the `resourceVersion` read, so of two contenders exactly one succeeds (the other gets a
//!   409 conflict). The epoch is `leaseTransitions + 1`.
//! - **Renewing**: read it; another holder means leadership is lost; else replace it with a new
//!   `renewTime` (conflicts are retried until the renew deadline).
//! - **Releasing**: clear `holderIdentity`, so a contender takes it at once.
//! - **Routing**: with `high-availability.kubernetes.leader-label` (`key=value`), a contender
//!   first sets that label to `false` on its own Pod (`FJORD_POD_NAME`), and the leader sets it
//!   to the value once elected; the operator's JobManager Service selects the label, so
//!   TaskManagers and REST clients reach the leader only.
//!
//! RBAC the JobManager's ServiceAccount needs (the operator creates it): `get`, `create`,
//! `update` on `leases` in the namespace, and `get`, `patch` on `pods` for the leader label.

use super::{HaConfig, HaMode, LeaseStore};
use crate::WorkerError;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use std::time::{Duration, Instant};

/// The lease store of `config` (which must be Kubernetes mode): a [`KubeLease`].
///
/// # Errors
/// As [`KubeLease::new`].
pub fn store(config: &HaConfig) -> Result<Box<dyn LeaseStore>, WorkerError> {
    Ok(Box::new(KubeLease::new(config)?))
}

/// A contender for a Lease.
pub struct KubeLease {
    runtime: tokio::runtime::Runtime,
    leases: Api<Lease>,
    pods: Api<Pod>,
    name: String,
    holder: String,
    lease_duration: Duration,
    leader_label: Option<(String, String)>,
    /// The Lease's resourceVersion as last seen, and since when.
    observed: Option<(String, Instant)>,
    /// The term held.
    epoch: Option<u64>,
    /// The own Pod's label was set to `false` (done once, before the first attempt).
    label_reset: bool,
}

impl std::fmt::Debug for KubeLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeLease")
            .field("name", &self.name)
            .field("holder", &self.holder)
            .finish()
    }
}

fn kube_error(what: &str, e: kube::Error) -> String {
    format!("cannot {what}: {e}")
}

fn is_code(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == code)
}

impl KubeLease {
    /// A contender for the Lease of `config` (which must be Kubernetes mode), using the
    /// in-cluster configuration (or the kubeconfig outside a cluster).
    ///
    /// # Errors
    /// [`WorkerError::HighAvailability`] without a usable Kubernetes configuration.
    pub fn new(config: &HaConfig) -> Result<Self, WorkerError> {
        let HaMode::Kubernetes {
            lease,
            namespace,
            leader_label,
        } = &config.mode
        else {
            return Err(WorkerError::HighAvailability(
                "not a Kubernetes HA configuration".into(),
            ));
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| WorkerError::HighAvailability(format!("cannot start a runtime: {e}")))?;
        let client = runtime.block_on(kube::Client::try_default()).map_err(|e| {
            WorkerError::HighAvailability(format!(
                "high-availability.type = kubernetes, but no Kubernetes configuration was \
                     found (in-cluster service account or kubeconfig): {e}"
            ))
        })?;
        let ns = namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        Ok(KubeLease {
            leases: Api::namespaced(client.clone(), &ns),
            pods: Api::namespaced(client, &ns),
            runtime,
            name: lease.clone(),
            holder: config.holder.clone(),
            lease_duration: config.lease_duration,
            leader_label: leader_label.clone(),
            observed: None,
            epoch: None,
            label_reset: false,
        })
    }

    fn now() -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::now())
    }

    fn spec(&self, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder.clone()),
            lease_duration_seconds: Some(self.lease_duration.as_secs().max(1) as i32),
            acquire_time: acquired.or_else(|| Some(Self::now())),
            renew_time: Some(Self::now()),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Sets the leader label on this process's Pod to `value`.
    fn label_own_pod(&self, value: &str) -> Result<(), String> {
        let Some((key, _)) = &self.leader_label else {
            return Ok(());
        };
        let patch = serde_json::json!({"metadata": {"labels": {key: value}}});
        self.runtime
            .block_on(
                self.pods
                    .patch(&self.holder, &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .map(|_| ())
            .map_err(|e| kube_error(&format!("label Pod {}", self.holder), e))
    }
}

impl LeaseStore for KubeLease {
    fn try_acquire(&mut self) -> Result<Option<u64>, String> {
        if !self.label_reset {
            // A restarted container of the old leader's Pod must not keep the leader label.
            self.label_own_pod("false")?;
            self.label_reset = true;
        }
        let current = self
            .runtime
            .block_on(self.leases.get_opt(&self.name))
            .map_err(|e| kube_error(&format!("read Lease {}", self.name), e))?;
        let (epoch, result) = match current {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.spec(0, None)),
                };
                (
                    1,
                    self.runtime
                        .block_on(self.leases.create(&PostParams::default(), &lease)),
                )
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let version = lease.metadata.resource_version.clone().unwrap_or_default();
                let released = spec.holder_identity.as_deref().is_none_or(str::is_empty);
                if !released {
                    match &self.observed {
                        Some((v, since)) if *v == version => {
                            if since.elapsed() < self.lease_duration {
                                return Ok(None);
                            }
                        }
                        _ => {
                            self.observed = Some((version, Instant::now()));
                            return Ok(None);
                        }
                    }
                }
                let transitions = spec.lease_transitions.unwrap_or(0) + 1;
                lease.spec = Some(self.spec(transitions, None));
                (
                    transitions as u64 + 1,
                    self.runtime.block_on(self.leases.replace(
                        &self.name,
                        &PostParams::default(),
                        &lease,
                    )),
                )
            }
        };
        match result {
            Ok(_) => {
                self.epoch = Some(epoch);
                if let Err(e) = self.label_own_pod(self.leader_label.as_ref().map_or("", |l| &l.1))
                {
                    eprintln!("JobManager '{}': {e}", self.holder);
                }
                Ok(Some(epoch))
            }
            // Another contender was faster.
            Err(e) if is_code(&e, 409) => {
                self.observed = None;
                Ok(None)
            }
            Err(e) => Err(kube_error(&format!("take Lease {}", self.name), e)),
        }
    }

    fn renew(&mut self) -> Result<bool, String> {
        let mut lease = self
            .runtime
            .block_on(self.leases.get(&self.name))
            .map_err(|e| kube_error(&format!("read Lease {}", self.name), e))?;
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.holder.as_str()) {
            self.epoch = None;
            return Ok(false);
        }
        spec.renew_time = Some(Self::now());
        lease.spec = Some(spec);
        self.runtime
            .block_on(
                self.leases
                    .replace(&self.name, &PostParams::default(), &lease),
            )
            .map(|_| true)
            .map_err(|e| kube_error(&format!("renew Lease {}", self.name), e))
    }

    fn release(&mut self) -> Result<(), String> {
        let mut lease = self
            .runtime
            .block_on(self.leases.get(&self.name))
            .map_err(|e| kube_error(&format!("read Lease {}", self.name), e))?;
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.holder.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        lease.spec = Some(spec);
        // Releasing the Lease matters more; a leader label left on this Pod keeps selecting it
        // for traffic meant for the leader, so the failure is logged.
        if let Err(e) = self.label_own_pod("false") {
            tracing::warn!(pod = %self.holder, error = %e, "could not remove the leader label");
        }
        self.runtime
            .block_on(
                self.leases
                    .replace(&self.name, &PostParams::default(), &lease),
            )
            .map(|_| ())
            .map_err(|e| kube_error(&format!("release Lease {}", self.name), e))
    }
}
