//! `spec.job.sqlFrom`: the SQL script in a ConfigMap the user owns, read on every pass. The
//! pass then works on the spec with the script inline ([`fjord_crds::sql_source::resolve`]), so
//! it is planned before anything is deployed, recorded in status.lastReconciledSpec with the
//! deployment, and a changed script is a spec change that upgrades the job.

use fjord_crds::manifest::FieldError;
use fjord_crds::sql_source::{absent_in_namespace, resolve};
use fjord_crds::{ConfigMapKeyReference, JobSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::error::Error;

/// `job` with the script of its `sqlFrom` ConfigMap inline (as it is without `sqlFrom`) and the
/// ConfigMap's resourceVersion, or what is wrong with the reference (no such ConfigMap or key,
/// an empty script).
///
/// # Errors
/// The outer error: reading the ConfigMap failed for another reason than its absence (the
/// pass is retried).
pub async fn resolve_sql(
    client: &kube::Client,
    ns: &str,
    job: &JobSpec,
) -> Result<Result<(JobSpec, Option<String>), FieldError>, Error> {
    let Some(from) = &job.sql_from else {
        return Ok(Ok((job.clone(), None)));
    };
    let name = &from.config_map_key_ref.name;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let config_map = api.get_opt(name).await.map_err(Error::kube(format!(
        "reading ConfigMap {name} (spec.job.sqlFrom)"
    )))?;
    let revision = config_map
        .as_ref()
        .and_then(|c| c.metadata.resource_version.clone());
    Ok(resolve(
        job,
        |_| config_map.map(|c| c.data.unwrap_or_default()),
        |r: &ConfigMapKeyReference| absent_in_namespace(r, ns),
    )
    .map(|job| (job, revision)))
}
