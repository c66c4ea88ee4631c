//! JobManager high availability (`spec.jobManager.highAvailability`): what the operator adds
//! for standby JobManagers. The JobManager Pods elect a leader on a Lease
//! (`<name>-jobmanager-leader`); the leader labels its own Pod [`LEADER_LABEL`]`=true` and the
//! JobManager Service selects that label, so TaskManagers, the operator and REST clients reach
//! the leader only. The JobManagers run under a ServiceAccount (`spec.serviceAccount`, else
//! `<name>-jobmanager`, created here) bound to a Role that allows exactly that: the Lease
//! (`get`, `create`, `update`) and the Pods' labels (`get`, `patch`).

use std::collections::BTreeMap;

use fjord_crds::{HighAvailabilitySpec, StreamJobSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{Component, labels, workload_name};

/// The label the leading JobManager sets to `true` on its own Pod (`false` on standbys).
pub const LEADER_LABEL: &str = "fjord.dev/jobmanager-leader";

/// The HA settings of a deployed spec, if HA is on.
pub fn spec(deployed: &StreamJobSpec) -> Option<&HighAvailabilitySpec> {
    deployed.job_manager.as_ref()?.high_availability.as_ref()
}

/// The Lease the JobManagers of StreamJob `name` elect their leader on.
pub fn lease_name(name: &str) -> String {
    format!("{}-leader", workload_name(name, Component::JobManager))
}

/// The ServiceAccount the JobManager Pods run under with HA: the spec's, else one per
/// StreamJob (created by [`rbac`]).
pub fn service_account(name: &str, deployed: &StreamJobSpec) -> String {
    deployed
        .service_account
        .clone()
        .unwrap_or_else(|| workload_name(name, Component::JobManager))
}

/// The JobManager Deployment's replicas: `spec.jobManager.replicas` with HA, else 1.
pub fn replicas(deployed: &StreamJobSpec) -> i32 {
    match spec(deployed) {
        Some(_) => deployed
            .job_manager
            .as_ref()
            .and_then(|j| j.replicas)
            .unwrap_or(1),
        None => 1,
    }
}

/// The `high-availability.*` configuration keys of StreamJob `name` (none without HA).
pub fn configuration(name: &str, deployed: &StreamJobSpec) -> Vec<(&'static str, String)> {
    let Some(ha) = spec(deployed) else {
        return Vec::new();
    };
    let seconds = |s: Option<i32>, default: i32| format!("{}s", s.unwrap_or(default));
    vec![
        ("high-availability.type", "kubernetes".into()),
        ("high-availability.kubernetes.lease-name", lease_name(name)),
        (
            "high-availability.kubernetes.leader-label",
            format!("{LEADER_LABEL}=true"),
        ),
        (
            "high-availability.leader-election.lease-duration",
            seconds(ha.lease_duration_seconds, 15),
        ),
        (
            "high-availability.leader-election.renew-deadline",
            seconds(ha.renew_deadline_seconds, 10),
        ),
        (
            "high-availability.leader-election.retry-period",
            seconds(ha.retry_period_seconds, 2),
        ),
    ]
}

/// The JobManagers' RBAC with HA: a ServiceAccount (when the spec names none), the Role and
/// its RoleBinding, all owned by the StreamJob.
#[derive(Debug, Clone, PartialEq)]
pub struct Rbac {
    /// `<name>-jobmanager`, unless `spec.serviceAccount` is set.
    pub service_account: Option<ServiceAccount>,
    /// Leases get/create/update, Pods get/patch.
    pub role: Role,
    /// The Role bound to the JobManagers' ServiceAccount.
    pub role_binding: RoleBinding,
}

/// The RBAC objects of StreamJob `name` in `namespace` (`None` without HA).
pub fn rbac(
    name: &str,
    namespace: &str,
    owner: &OwnerReference,
    deployed: &StreamJobSpec,
) -> Option<Rbac> {
    spec(deployed)?;
    let object = workload_name(name, Component::JobManager);
    let meta = |object: String| ObjectMeta {
        name: Some(object),
        namespace: Some(namespace.to_string()),
        labels: Some(labels(name, Some(Component::JobManager))),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    };
    let account = service_account(name, deployed);
    Some(Rbac {
        service_account: deployed.service_account.is_none().then(|| ServiceAccount {
            metadata: meta(account.clone()),
            ..Default::default()
        }),
        role: Role {
            metadata: meta(format!("{object}-ha")),
            rules: Some(vec![
                PolicyRule {
                    api_groups: Some(vec!["coordination.k8s.io".into()]),
                    resources: Some(vec!["leases".into()]),
                    verbs: vec!["get".into(), "create".into(), "update".into()],
                    ..Default::default()
                },
                PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["pods".into()]),
                    verbs: vec!["get".into(), "patch".into()],
                    ..Default::default()
                },
            ]),
        },
        role_binding: RoleBinding {
            metadata: meta(format!("{object}-ha")),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: format!("{object}-ha"),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: account,
                namespace: Some(namespace.to_string()),
                ..Default::default()
            }]),
        },
    })
}

/// The JobManager Service's selector with HA: the leader only.
pub fn service_selector(
    mut selector: BTreeMap<String, String>,
    deployed: &StreamJobSpec,
) -> BTreeMap<String, String> {
    if spec(deployed).is_some() {
        selector.insert(LEADER_LABEL.into(), "true".into());
    }
    selector
}
