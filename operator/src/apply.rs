//! Server-side apply under [`crate::FIELD_MANAGER`], shared by every controller: a child
//! object as the operator wants it, and the status of one of its custom resources (the whole
//! status, so fields the operator stops setting are removed).

use crate::{Error, FIELD_MANAGER};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::json;

/// Applies `object` in namespace `ns` (forcing ownership of its fields).
///
/// # Errors
/// [`Error::Serde`] if the object does not serialize, [`Error::Kube`] if the API server refuses it.
pub async fn apply<K>(client: &Client, ns: &str, object: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let name = object.meta().name.clone().unwrap_or_default();
    let mut value = serde_json::to_value(object).map_err(|source| Error::Serde {
        what: format!("{} {name}", K::kind(&())),
        source,
    })?;
    value["apiVersion"] = json!(K::api_version(&()));
    value["kind"] = json!(K::kind(&()));
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await
    .map_err(Error::kube(format!("applying {} {name}", K::kind(&()))))?;
    Ok(())
}

/// Applies the JobManagers' RBAC of `desired` (with high availability: their ServiceAccount,
/// Role and RoleBinding for the leader Lease), so the permissions exist before the JobManager
/// Pods start. Nothing without HA.
///
/// # Errors
/// As [`apply`].
pub async fn apply_jobmanager_rbac(
    client: &Client,
    ns: &str,
    desired: &crate::resources::Desired,
) -> Result<(), Error> {
    if let Some(rbac) = &desired.jobmanager_rbac {
        if let Some(account) = &rbac.service_account {
            apply(client, ns, account).await?;
        }
        apply(client, ns, &rbac.role).await?;
        apply(client, ns, &rbac.role_binding).await?;
    }
    Ok(())
}

/// Applies `status` as the status of the `kind` object `name` through `api`.
///
/// # Errors
/// [`Error::Kube`] if the API server refuses it.
pub async fn write_status<K>(
    api: &Api<K>,
    name: &str,
    kind: &str,
    status: impl serde::Serialize,
) -> Result<(), Error>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({
        "apiVersion": "fjord.dev/v1alpha1",
        "kind": kind,
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(Error::kube(format!("writing the status of {kind} {name}")))?;
    Ok(())
}
