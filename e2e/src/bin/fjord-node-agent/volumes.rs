//! Pod volumes as host directories under `<pod dir>/volumes/<name>`, later bind-mounted at each
//! container's `mountPath` by the launch step.
//!
//! Supported: `configMap`, `secret`, `emptyDir`, `hostPath`, `downwardAPI`, and `projected`
//! (serviceAccountToken through the TokenRequest API, configMap, secret, downwardAPI) — which
//! covers the `kube-api-access-*` volume the API server adds to every Pod. Contents are written
//! once when the Pod starts; later ConfigMap/Secret changes are not propagated.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, VolumeProjection,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::env::{PodFacts, field_value};

/// Volume name → host directory (or file, for hostPath files).
pub type VolumeDirs = HashMap<String, PathBuf>;

fn safe_join(dir: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        bail!(
            "volume item path {} must be relative without '..'",
            rel.display()
        );
    }
    Ok(dir.join(rel))
}

fn write_file(dir: &Path, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let path = safe_join(dir, rel)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Write `data` (key → bytes) into `dir`, all keys or only `items`.
fn write_keys(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    what: &str,
) -> anyhow::Result<()> {
    match items {
        None => {
            for (k, v) in data {
                write_file(dir, k, v)?;
            }
        }
        Some(items) => {
            for item in items {
                let v = data
                    .get(&item.key)
                    .with_context(|| format!("{what} has no key {}", item.key))?;
                write_file(dir, &item.path, v)?;
            }
        }
    }
    Ok(())
}

fn config_map_bytes(cm: ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    out.extend(
        cm.binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0)),
    );
    out
}

fn secret_bytes(s: Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    out.extend(
        s.string_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    out
}

fn write_downward(
    dir: &Path,
    pod: &Pod,
    facts: &PodFacts,
    items: &[DownwardAPIVolumeFile],
) -> anyhow::Result<()> {
    for item in items {
        let value = match (&item.field_ref, &item.resource_field_ref) {
            (Some(f), _) => field_value(pod, facts, f)?,
            (None, Some(_)) => {
                bail!("downwardAPI volume resourceFieldRef is not supported by the test node agent")
            }
            (None, None) => String::new(),
        };
        write_file(dir, &item.path, value.as_bytes())?;
    }
    Ok(())
}

struct Ctx<'a> {
    client: &'a Client,
    pod: &'a Pod,
    ns: String,
    facts: &'a PodFacts,
}

impl Ctx<'_> {
    async fn config_map(
        &self,
        name: &str,
        optional: Option<bool>,
    ) -> anyhow::Result<Option<ConfigMap>> {
        let cm = Api::<ConfigMap>::namespaced(self.client.clone(), &self.ns)
            .get_opt(name)
            .await?;
        if cm.is_none() && optional != Some(true) {
            bail!("configmap {}/{name} not found", self.ns);
        }
        Ok(cm)
    }

    async fn secret(&self, name: &str, optional: Option<bool>) -> anyhow::Result<Option<Secret>> {
        let s = Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .get_opt(name)
            .await?;
        if s.is_none() && optional != Some(true) {
            bail!("secret {}/{name} not found", self.ns);
        }
        Ok(s)
    }

    async fn token(
        &self,
        audience: Option<&str>,
        expiration: Option<i64>,
    ) -> anyhow::Result<String> {
        let spec = self.pod.spec.as_ref();
        let sa = spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
                expiration_seconds: expiration,
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: self.pod.metadata.name.clone(),
                    uid: self.pod.metadata.uid.clone(),
                }),
            },
            ..Default::default()
        };
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &self.ns);
        let response = api
            .create_token_request(&sa, &PostParams::default(), &request)
            .await
            .with_context(|| format!("requesting a token for serviceaccount {}/{sa}", self.ns))?;
        Ok(response.status.map(|s| s.token).unwrap_or_default())
    }

    async fn projection(&self, dir: &Path, source: &VolumeProjection) -> anyhow::Result<()> {
        if let Some(t) = &source.service_account_token {
            let token = self
                .token(t.audience.as_deref(), t.expiration_seconds)
                .await?;
            write_file(dir, &t.path, token.as_bytes())?;
        }
        if let Some(c) = &source.config_map
            && let Some(cm) = self.config_map(&c.name, c.optional).await?
        {
            write_keys(
                dir,
                &config_map_bytes(cm),
                c.items.as_ref(),
                &format!("configmap {}", c.name),
            )?;
        }
        if let Some(s) = &source.secret
            && let Some(secret) = self.secret(&s.name, s.optional).await?
        {
            write_keys(
                dir,
                &secret_bytes(secret),
                s.items.as_ref(),
                &format!("secret {}", s.name),
            )?;
        }
        if let Some(d) = &source.downward_api {
            write_downward(
                dir,
                self.pod,
                self.facts,
                d.items.as_deref().unwrap_or_default(),
            )?;
        }
        if source.cluster_trust_bundle.is_some() || source.pod_certificate.is_some() {
            bail!(
                "projected clusterTrustBundle/podCertificate sources are not supported by the test node agent"
            );
        }
        Ok(())
    }
}

/// Materialize every volume of `pod` under `pod_dir/volumes`.
pub async fn materialize(
    client: &Client,
    pod: &Pod,
    facts: &PodFacts,
    pod_dir: &Path,
) -> anyhow::Result<VolumeDirs> {
    let ctx = Ctx {
        client,
        pod,
        ns: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        facts,
    };
    let mut dirs = VolumeDirs::new();
    for volume in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        let name = &volume.name;
        if let Some(hp) = &volume.host_path {
            let path = PathBuf::from(&hp.path);
            if matches!(hp.type_.as_deref(), Some("DirectoryOrCreate")) {
                std::fs::create_dir_all(&path)?;
            }
            dirs.insert(name.clone(), path);
            continue;
        }
        let dir = pod_dir.join("volumes").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        if let Some(c) = &volume.config_map {
            if let Some(cm) = ctx.config_map(&c.name, c.optional).await? {
                write_keys(
                    &dir,
                    &config_map_bytes(cm),
                    c.items.as_ref(),
                    &format!("configmap {}", c.name),
                )?;
            }
        } else if let Some(s) = &volume.secret {
            let secret_name = s.secret_name.clone().unwrap_or_default();
            if let Some(secret) = ctx.secret(&secret_name, s.optional).await? {
                write_keys(
                    &dir,
                    &secret_bytes(secret),
                    s.items.as_ref(),
                    &format!("secret {secret_name}"),
                )?;
            }
        } else if volume.empty_dir.is_some() {
            // nothing to write
        } else if let Some(d) = &volume.downward_api {
            write_downward(&dir, pod, facts, d.items.as_deref().unwrap_or_default())?;
        } else if let Some(p) = &volume.projected {
            for source in p.sources.iter().flatten() {
                ctx.projection(&dir, source).await?;
            }
        } else {
            bail!(
                "volume {name}: unsupported type; the test node agent supports configMap, secret, emptyDir, \
                 hostPath, downwardAPI and projected volumes"
            );
        }
        dirs.insert(name.clone(), dir);
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_paths_cannot_escape_the_volume() {
        let dir = Path::new("/tmp/v");
        assert!(safe_join(dir, "a/b").is_ok());
        assert!(safe_join(dir, "../etc/passwd").is_err());
        assert!(safe_join(dir, "/etc/passwd").is_err());
    }

    #[test]
    fn writes_selected_keys_only() {
        let tmp = std::env::temp_dir().join(format!("fjord-volumes-test-{}", std::process::id()));
        let data = BTreeMap::from([
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]);
        let items = vec![KeyToPath {
            key: "b".into(),
            path: "sub/b.txt".into(),
            mode: None,
        }];
        write_keys(&tmp, &data, Some(&items), "cm").unwrap();
        assert_eq!(std::fs::read(tmp.join("sub/b.txt")).unwrap(), b"2");
        assert!(!tmp.join("a").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
