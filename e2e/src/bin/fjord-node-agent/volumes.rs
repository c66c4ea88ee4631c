//! Pod volumes as host directories under `<pod dir>/volumes/<name>`, later bind-mounted at each
//! container's `mountPath` by the launch step.
//!
//! Supported: `configMap`, `secret`, `emptyDir`, `hostPath`, `downwardAPI`, and `projected`
//! (serviceAccountToken through the TokenRequest API, configMap, secret, downwardAPI) — which
//! covers the `kube-api-access-*` volume the API server adds to every Pod.
//!
//! ConfigMap, Secret, downwardAPI and projected volumes are laid out as the kubelet's atomic
//! writer lays them out: the files in a timestamped directory `..<stamp>`, a symlink `..data`
//! to it, and each top-level name a symlink into `..data`. [`refresh`] (every
//! [`SYNC_PERIOD`] while the Pod runs) reads the sources again and, when they changed,
//! writes a new directory and swaps `..data` in one rename, so a running process sees the
//! old set or the new one, never a mix, as under a kubelet (which takes up to its sync period
//! plus its cache's TTL, about a minute each). A source that has gone keeps the last files;
//! service-account tokens are requested once (the test clusters live shorter than a token).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
    VolumeProjection,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::env::{PodFacts, field_value};

/// Volume name → host directory (or file, for hostPath files).
pub type VolumeDirs = HashMap<String, PathBuf>;

/// How often a running Pod's ConfigMap/Secret volumes are compared with their sources.
pub const SYNC_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// A volume's files: path relative to the volume → contents.
type Files = BTreeMap<String, Vec<u8>>;

/// The kubelet's name of the symlink to the current files.
const DATA: &str = "..data";

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

fn write_file(files: &mut Files, rel: &str, bytes: &[u8]) -> anyhow::Result<()> {
    safe_join(Path::new("."), rel)?;
    files.insert(rel.to_string(), bytes.to_vec());
    Ok(())
}

/// Add `data` (key → bytes) to `dir`'s files, all keys or only `items`.
fn write_keys(
    dir: &mut Files,
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
    dir: &mut Files,
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

    /// Adds `source`'s files to `dir`; a token already in `current` is kept.
    async fn projection(
        &self,
        dir: &mut Files,
        source: &VolumeProjection,
        current: &Files,
    ) -> anyhow::Result<()> {
        if let Some(t) = &source.service_account_token {
            let token = match current.get(&t.path) {
                Some(token) => token.clone(),
                None => self
                    .token(t.audience.as_deref(), t.expiration_seconds)
                    .await?
                    .into_bytes(),
            };
            write_file(dir, &t.path, &token)?;
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

impl<'a> Ctx<'a> {
    fn new(client: &'a Client, pod: &'a Pod, facts: &'a PodFacts) -> Self {
        Ctx {
            client,
            pod,
            ns: pod
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            facts,
        }
    }

    /// The files of `volume` now, if it is one the atomic writer lays out (`None`: emptyDir or
    /// hostPath); `current` holds its files as written before (tokens are kept from there).
    async fn files(&self, volume: &Volume, current: &Files) -> anyhow::Result<Option<Files>> {
        let mut files = Files::new();
        if let Some(c) = &volume.config_map {
            if let Some(cm) = self.config_map(&c.name, c.optional).await? {
                write_keys(
                    &mut files,
                    &config_map_bytes(cm),
                    c.items.as_ref(),
                    &format!("configmap {}", c.name),
                )?;
            }
        } else if let Some(s) = &volume.secret {
            let secret_name = s.secret_name.clone().unwrap_or_default();
            if let Some(secret) = self.secret(&secret_name, s.optional).await? {
                write_keys(
                    &mut files,
                    &secret_bytes(secret),
                    s.items.as_ref(),
                    &format!("secret {secret_name}"),
                )?;
            }
        } else if let Some(d) = &volume.downward_api {
            write_downward(
                &mut files,
                self.pod,
                self.facts,
                d.items.as_deref().unwrap_or_default(),
            )?;
        } else if let Some(p) = &volume.projected {
            for source in p.sources.iter().flatten() {
                self.projection(&mut files, source, current).await?;
            }
        } else {
            return Ok(None);
        }
        Ok(Some(files))
    }
}

fn pod_volumes(pod: &Pod) -> impl Iterator<Item = &Volume> {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
}

/// Materialize every volume of `pod` under `pod_dir/volumes`.
pub async fn materialize(
    client: &Client,
    pod: &Pod,
    facts: &PodFacts,
    pod_dir: &Path,
) -> anyhow::Result<VolumeDirs> {
    let ctx = Ctx::new(client, pod, facts);
    let mut dirs = VolumeDirs::new();
    for volume in pod_volumes(pod) {
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
        if let Some(files) = ctx.files(volume, &Files::new()).await? {
            publish(&dir, &files)?;
        } else if volume.empty_dir.is_none() {
            bail!(
                "volume {name}: unsupported type; the test node agent supports configMap, secret, emptyDir, \
                 hostPath, downwardAPI and projected volumes"
            );
        }
        dirs.insert(name.clone(), dir);
    }
    Ok(dirs)
}

/// Reads the sources of `pod`'s ConfigMap, Secret, downwardAPI and projected volumes again
/// and publishes those that changed (see the module documentation); returns the names of the
/// volumes it updated. A source that cannot be read now keeps its last files (logged).
pub async fn refresh(client: &Client, pod: &Pod, facts: &PodFacts, pod_dir: &Path) -> Vec<String> {
    let ctx = Ctx::new(client, pod, facts);
    let mut updated = Vec::new();
    for volume in pod_volumes(pod) {
        let dir = pod_dir.join("volumes").join(&volume.name);
        if volume.host_path.is_some() || !dir.join(DATA).exists() {
            continue;
        }
        let current = match read_files(&dir.join(DATA)) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(volume = %volume.name, error = %format!("{e:#}"), "cannot read the volume's files");
                continue;
            }
        };
        let result = match ctx.files(volume, &current).await {
            Ok(Some(files)) if files != current => {
                publish(&dir, &files).map(|()| updated.push(volume.name.clone()))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(volume = %volume.name, error = %format!("{e:#}"), "volume not updated; its files stay");
        }
    }
    updated
}

/// Every regular file under `dir` (following no symlinks), by path relative to it.
fn read_files(dir: &Path) -> anyhow::Result<Files> {
    fn walk(root: &Path, dir: &Path, out: &mut Files) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path)?);
            }
        }
        Ok(())
    }
    let mut out = Files::new();
    walk(dir, dir, &mut out)?;
    Ok(out)
}

/// Writes `files` into `dir` as the kubelet's atomic writer does: a new `..<stamp>`
/// directory, `..data` swapped to it by a rename, a symlink per top-level name into `..data`;
/// then the names and the directory no longer in use are removed.
fn publish(dir: &Path, files: &Files) -> anyhow::Result<()> {
    let stamp = format!(
        "..{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let target = dir.join(&stamp);
    for (rel, bytes) in files {
        let path = safe_join(&target, rel)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::create_dir_all(&target)?;
    let tmp = dir.join("..data_tmp");
    if tmp.symlink_metadata().is_ok() {
        std::fs::remove_file(&tmp)?;
    }
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, dir.join(DATA)).context("swapping ..data")?;
    let top: std::collections::BTreeSet<&str> = files
        .keys()
        .filter_map(|rel| rel.split('/').next())
        .collect();
    for name in &top {
        let link = dir.join(name);
        if link.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(Path::new(DATA).join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale_link = !name.starts_with("..") && !top.contains(name.as_str());
        let old_dir = name.starts_with("..") && name != DATA && name != stamp;
        if stale_link && entry.file_type()?.is_symlink() {
            std::fs::remove_file(entry.path())?;
        } else if old_dir && entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
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
        std::fs::create_dir_all(&tmp).unwrap();
        let data = BTreeMap::from([
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]);
        let items = vec![KeyToPath {
            key: "b".into(),
            path: "sub/b.txt".into(),
            mode: None,
        }];
        let mut files = Files::new();
        write_keys(&mut files, &data, Some(&items), "cm").unwrap();
        publish(&tmp, &files).unwrap();
        assert_eq!(std::fs::read(tmp.join("sub/b.txt")).unwrap(), b"2");
        assert!(!tmp.join("a").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_changed_set_replaces_the_old_one_in_one_swap() {
        let tmp = std::env::temp_dir().join(format!("fjord-volumes-swap-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let first = Files::from([
            ("tls.crt".to_string(), b"old cert".to_vec()),
            ("ca.crt".to_string(), b"old ca".to_vec()),
            ("gone".to_string(), b"x".to_vec()),
        ]);
        publish(&tmp, &first).unwrap();
        assert_eq!(read_files(&tmp.join(DATA)).unwrap(), first);
        // A reader holding the old directory open keeps reading the old set.
        let old_target = std::fs::read_link(tmp.join(DATA)).unwrap();
        let second = Files::from([
            ("tls.crt".to_string(), b"new cert".to_vec()),
            ("ca.crt".to_string(), b"new ca".to_vec()),
        ]);
        publish(&tmp, &second).unwrap();
        assert_ne!(std::fs::read_link(tmp.join(DATA)).unwrap(), old_target);
        assert_eq!(std::fs::read(tmp.join("tls.crt")).unwrap(), b"new cert");
        assert_eq!(std::fs::read(tmp.join("ca.crt")).unwrap(), b"new ca");
        assert!(
            tmp.join("gone").symlink_metadata().is_err(),
            "a dropped key is removed"
        );
        assert!(
            !tmp.join(&old_target).exists(),
            "the old directory is removed"
        );
        assert_eq!(read_files(&tmp.join(DATA)).unwrap(), second);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
