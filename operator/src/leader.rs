//! Leader election on a `coordination.k8s.io/v1` Lease, so only one operator replica reconciles.
//!
//! The rules are those of client-go's leader election: a replica takes the Lease when it is free
//! or its holder has not renewed it within `leaseDurationSeconds`, renews it while it leads, and
//! updates it with the Lease's resourceVersion so two replicas cannot both win a race. A replica
//! that fails to renew in time stops (the process exits and its pod restarts as a follower)
//! rather than risk two leaders. [`decide`] holds the rules as a pure function.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

use crate::Error;

/// What to do with the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// Take it (it is free or expired): a new term.
    Acquire,
    /// We hold it: renew.
    Renew,
    /// Someone else holds it and it has not expired.
    Wait {
        /// The current holder.
        holder: String,
    },
}

/// Decide what to do with a Lease given its spec (if it exists), our identity and the time.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> LeaseDecision {
    let Some(spec) = spec else {
        return LeaseDecision::Acquire;
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return LeaseDecision::Renew;
    }
    if holder.is_empty() {
        return LeaseDecision::Acquire;
    }
    let duration_ms = i64::from(spec.lease_duration_seconds.unwrap_or(15)) * 1000;
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0.as_millisecond());
    match renewed {
        Some(t) if now.as_millisecond() - t <= duration_ms => LeaseDecision::Wait { holder },
        _ => LeaseDecision::Acquire,
    }
}

/// Leader election settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace (the operator's own).
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
    /// How often the leader renews and followers retry.
    pub retry_period: Duration,
}

/// Try once to acquire or renew the Lease. Returns whether we lead now.
///
/// # Errors
/// [`Error::Kube`] on API errors other than a lost update race (which returns `Ok(false)`).
pub async fn try_lead(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, Error> {
    let now = Timestamp::now();
    let existing = api
        .get_opt(&cfg.name)
        .await
        .map_err(Error::kube("reading the leader Lease"))?;
    let decision = decide(
        existing.as_ref().and_then(|l| l.spec.as_ref()),
        &cfg.identity,
        now,
    );
    let previous = existing
        .as_ref()
        .and_then(|l| l.spec.clone())
        .unwrap_or_default();
    let spec = match decision {
        LeaseDecision::Wait { .. } => return Ok(false),
        LeaseDecision::Renew => LeaseSpec {
            renew_time: Some(MicroTime(now)),
            ..previous
        },
        LeaseDecision::Acquire => LeaseSpec {
            holder_identity: Some(cfg.identity.clone()),
            lease_duration_seconds: Some(cfg.lease_duration.as_secs() as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(previous.lease_transitions.unwrap_or(0) + 1),
            ..Default::default()
        },
    };
    let result = match existing {
        Some(mut lease) => {
            // Replace carries the resourceVersion we read: a concurrent writer makes it fail.
            lease.spec = Some(spec);
            api.replace(&cfg.name, &PostParams::default(), &lease).await
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(Error::kube("writing the leader Lease")(e)),
    }
}

/// Give the Lease up if we hold it (client-go's `ReleaseOnCancel`): the holder is cleared, so
/// a waiting replica takes it on its next try instead of after the lease duration. Called on
/// shutdown, after the controller has stopped.
///
/// # Errors
/// [`Error::Kube`] if the Lease cannot be read or written (it then expires on its own).
pub async fn release(api: &Api<Lease>, cfg: &LeaseConfig) -> Result<bool, Error> {
    let Some(mut lease) = api
        .get_opt(&cfg.name)
        .await
        .map_err(Error::kube("reading the leader Lease"))?
    else {
        return Ok(false);
    };
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(false);
    };
    if spec.holder_identity.as_deref() != Some(cfg.identity.as_str()) {
        return Ok(false);
    }
    spec.holder_identity = None;
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api.replace(&cfg.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(Error::kube("releasing the leader Lease")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renewed_s: i64, duration_s: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(duration_s),
            renew_time: Some(MicroTime(Timestamp::from_second(renewed_s).unwrap())),
            ..Default::default()
        }
    }

    #[test]
    fn lease_decisions() {
        let now = Timestamp::from_second(100).unwrap();
        let cases = [
            ("no lease", None, LeaseDecision::Acquire),
            ("ours", Some(spec("me", 99, 15)), LeaseDecision::Renew),
            (
                "theirs, fresh",
                Some(spec("other", 90, 15)),
                LeaseDecision::Wait {
                    holder: "other".into(),
                },
            ),
            (
                "theirs, expired",
                Some(spec("other", 80, 15)),
                LeaseDecision::Acquire,
            ),
            ("released", Some(spec("", 99, 15)), LeaseDecision::Acquire),
        ];
        for (name, lease, expected) in cases {
            assert_eq!(decide(lease.as_ref(), "me", now), expected, "{name}");
        }
    }
}
