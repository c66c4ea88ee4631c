//! Opening a storage URL and reading and writing objects under it.

use crate::error::{CREDENTIALS_HINT, FjordError, NO_BUCKET_HINT, Result};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

/// Settings for a storage URL, with Flink's key names.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// `s3.endpoint`, `s3.access-key`, `s3.secret-key`, `s3.region`, `s3.path-style-access`.
    pub values: BTreeMap<String, String>,
}

impl StorageOptions {
    /// Options from key/value pairs.
    pub fn from_pairs<I: IntoIterator<Item = (K, V)>, K: Into<String>, V: Into<String>>(
        pairs: I,
    ) -> Self {
        StorageOptions {
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A value, or the first environment variable that is set.
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    fn get(&self, key: &str, env: &[&str]) -> Option<String> {
        self.values
            .get(key)
            .cloned()
            .or_else(|| env.iter().find_map(|v| std::env::var(v).ok()))
    }
}

/// A base location for snapshots: every path is relative to it.
///
/// Cheap to clone; safe to use from many threads. The blocking methods must not be called
/// from inside an async runtime; use the `*_async` ones there.
#[derive(Clone)]
pub struct SnapshotStore {
    url: String,
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    /// For `file://` stores: the directory, so emptied directories can be removed too.
    local: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotStore({})", self.url)
    }
}

/// Threads of the process-wide storage runtime (named `fjord-storage`), at most: its 2
/// workers plus the blocking threads that run local-file operations (`file://` stores do
/// every read and write on one). Without the bound tokio's default (512) would let a burst of
/// concurrent checkpoint writes leave hundreds of idle threads behind for their keep-alive;
/// with it, writes beyond the bound wait for a thread.
pub const STORAGE_THREADS: usize = 2 + STORAGE_BLOCKING_THREADS;

const STORAGE_BLOCKING_THREADS: usize = 8;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(STORAGE_BLOCKING_THREADS)
            .thread_name("fjord-storage")
            .enable_all()
            .build()
            .expect("cannot start the storage runtime")
    })
}

fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("memory store registry");
    stores
        .entry(name.to_string())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

fn storage_error(url: &str, operation: &str, message: impl Into<String>) -> FjordError {
    FjordError::Storage {
        url: url.to_string(),
        operation: operation.to_string(),
        message: message.into(),
    }
}

/// Adds what to do next for the failures people hit most.
fn explain(error: &object_store::Error) -> String {
    let text = error.to_string();
    // hdfs-native-object-store names itself "HFDS" (sic) or "HdfsObjectStore" in its errors.
    let hdfs = matches!(error, object_store::Error::Generic { store, .. }
        if store.to_ascii_lowercase().contains("hdfs") || *store == "HFDS");
    let hint = if hdfs && (text.contains("Connection refused") || text.contains("os error 111")) {
        "; the HDFS NameNode cannot be reached: check the host and RPC port in the hdfs:// URL \
         (the NameNode's fs.defaultFS, usually port 8020) and that the NameNode is running"
    } else if hdfs && text.contains("SafeMode") {
        "; the NameNode is in safe mode (starting, or too few DataNodes have reported): \
         wait for it to leave safe mode (`hdfs dfsadmin -safemode get`)"
    } else if text.contains("NoSuchBucket") {
        NO_BUCKET_HINT
    } else if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("AccessDenied")
    {
        CREDENTIALS_HINT
    } else if text.contains("Connection refused")
        || text.contains("error sending request")
        || text.contains("dns error")
    {
        "; the storage server cannot be reached: check s3.endpoint and that the server is running"
    } else {
        ""
    };
    format!("{text}{hint}")
}

impl SnapshotStore {
    /// Opens the location a URL names.
    ///
    /// # Errors
    /// An unsupported scheme, an `s3://` URL without bucket, or (without the `s3` feature) any
    /// `s3://` URL. Nothing is contacted yet; see [`SnapshotStore::check_access`].
    pub fn open(url: &str, options: &StorageOptions) -> Result<Self> {
        let bad = |m: &str| storage_error(url, "open", m);
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            bad("not a URL; use file:///path, s3://bucket/prefix or memory://name")
        })?;
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad(
                        "file URLs need an absolute path: file:///var/fjord/checkpoints",
                    ));
                }
                std::fs::create_dir_all(rest)
                    .map_err(|e| bad(&format!("cannot create directory {rest}: {e}")))?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(rest)
                    .map_err(|e| bad(&explain(&e)))?;
                Ok(SnapshotStore {
                    url: url.to_string(),
                    store: Arc::new(store),
                    root: ObjectPath::default(),
                    local: Some(std::path::PathBuf::from(rest)),
                })
            }
            "memory" => {
                let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                Ok(SnapshotStore {
                    url: url.to_string(),
                    store: memory_store(name),
                    root: ObjectPath::from(prefix),
                    local: None,
                })
            }
            "s3" => Self::open_s3(url, rest, options),
            "hdfs" => Self::open_hdfs(url, rest, options),
            other => Err(bad(&format!(
                "unsupported scheme '{other}'; use file://, s3://, hdfs:// or memory://"
            ))),
        }
    }

    #[cfg(feature = "s3")]
    fn open_s3(url: &str, rest: &str, options: &StorageOptions) -> Result<Self> {
        use object_store::aws::AmazonS3Builder;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(storage_error(
                url,
                "open",
                "s3 URLs need a bucket: s3://bucket/prefix",
            ));
        }
        // object_store's HTTPS client brings rustls without a crypto provider of its own.
        crate::tls::install_default_provider();
        let mut builder = AmazonS3Builder::new().with_bucket_name(bucket);
        if let Some(endpoint) = options.get("s3.endpoint", &["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]) {
            builder = builder
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        if let Some(key) = options.get("s3.access-key", &["AWS_ACCESS_KEY_ID"]) {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = options.get("s3.secret-key", &["AWS_SECRET_ACCESS_KEY"]) {
            builder = builder.with_secret_access_key(secret);
        }
        let region = options
            .get("s3.region", &["AWS_REGION", "AWS_DEFAULT_REGION"])
            .unwrap_or_else(|| "us-east-1".into());
        builder = builder.with_region(region);
        let path_style = options
            .get("s3.path-style-access", &[])
            .map(|v| v != "false")
            .unwrap_or(true);
        builder = builder.with_virtual_hosted_style_request(!path_style);
        let store = builder
            .build()
            .map_err(|e| storage_error(url, "open", explain(&e)))?;
        Ok(SnapshotStore {
            url: url.to_string(),
            store: Arc::new(store),
            root: ObjectPath::from(prefix),
            local: None,
        })
    }

    #[cfg(not(feature = "s3"))]
    fn open_s3(url: &str, _rest: &str, _options: &StorageOptions) -> Result<Self> {
        Err(storage_error(
            url,
            "open",
            "this build has no S3 support; build with the `s3` feature of the fjord crate",
        ))
    }

    /// `hdfs://namenode:port/path` or `hdfs://nameservice/path`: the client reads
    /// `core-site.xml`/`hdfs-site.xml` from `HADOOP_CONF_DIR` (a nameservice's NameNodes are
    /// named there), and options whose keys start with `dfs.`, `fs.` or `hadoop.` override them.
    #[cfg(feature = "hdfs")]
    fn open_hdfs(url: &str, rest: &str, options: &StorageOptions) -> Result<Self> {
        use hdfs_native_object_store::HdfsObjectStoreBuilder;
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(storage_error(
                url,
                "open",
                "hdfs URLs need a NameNode address or nameservice: hdfs://namenode:8020/path",
            ));
        }
        let config: Vec<(String, String)> = options
            .values
            .iter()
            .filter(|(k, _)| {
                k.starts_with("dfs.") || k.starts_with("fs.") || k.starts_with("hadoop.")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let store = HdfsObjectStoreBuilder::new()
            .with_url(format!("hdfs://{authority}"))
            .with_config(config)
            .with_io_runtime(runtime().handle().clone())
            .build()
            .map_err(|e| storage_error(url, "open", explain(&e)))?;
        Ok(SnapshotStore {
            url: url.to_string(),
            store: Arc::new(store),
            root: ObjectPath::from(prefix),
            local: None,
        })
    }

    #[cfg(not(feature = "hdfs"))]
    fn open_hdfs(url: &str, _rest: &str, _options: &StorageOptions) -> Result<Self> {
        Err(storage_error(
            url,
            "open",
            "this build has no HDFS support; build with the `hdfs` feature of the fjord crate \
             (the stock worker image has it)",
        ))
    }

    /// The URL this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store rooted at a sub-directory of this one.
    pub fn child(&self, dir: &str) -> SnapshotStore {
        SnapshotStore {
            url: format!(
                "{}/{}",
                self.url.trim_end_matches('/'),
                dir.trim_matches('/')
            ),
            store: self.store.clone(),
            root: self.path(dir),
            local: self.local.as_ref().map(|l| l.join(dir.trim_matches('/'))),
        }
    }

    /// The store of the directory that holds this one; `None` at the top of a bucket, an
    /// in-memory store or the file system.
    pub fn parent(&self) -> Option<SnapshotStore> {
        let mut parts: Vec<String> = self.root.parts().map(|p| p.as_ref().to_string()).collect();
        if parts.pop().is_some() {
            let (url, _) = self.url.trim_end_matches('/').rsplit_once('/')?;
            return Some(SnapshotStore {
                url: url.to_string(),
                store: self.store.clone(),
                root: ObjectPath::from_iter(parts),
                local: self
                    .local
                    .as_ref()
                    .and_then(|l| l.parent())
                    .map(|p| p.to_path_buf()),
            });
        }
        let parent = self.local.as_ref()?.parent()?;
        SnapshotStore::open(
            &format!("file://{}", parent.display()),
            &StorageOptions::default(),
        )
        .ok()
    }

    fn path(&self, relative: &str) -> ObjectPath {
        let mut parts: Vec<String> = self.root.parts().map(|p| p.as_ref().to_string()).collect();
        parts.extend(
            relative
                .split('/')
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        );
        ObjectPath::from_iter(parts)
    }

    fn relative(&self, path: &ObjectPath) -> String {
        let root_parts = self.root.parts().count();
        path.parts()
            .skip(root_parts)
            .map(|p| p.as_ref().to_string())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn err(&self, operation: &str, path: &str, e: object_store::Error) -> FjordError {
        storage_error(&self.url, &format!("{operation} {path}"), explain(&e))
    }

    /// Writes an object, replacing it if present.
    pub async fn put_async(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(path), PutPayload::from(bytes))
            .await
            .map_err(|e| self.err("put", path, e))?;
        Ok(())
    }

    /// Reads an object.
    pub async fn get_async(&self, path: &str) -> Result<Vec<u8>> {
        let result = self
            .store
            .get(&self.path(path))
            .await
            .map_err(|e| self.err("get", path, e))?;
        Ok(result
            .bytes()
            .await
            .map_err(|e| self.err("get", path, e))?
            .to_vec())
    }

    /// Moves an object (atomically on a file system; copy and delete on object stores).
    pub async fn rename_async(&self, from: &str, to: &str) -> Result<()> {
        self.store
            .rename(&self.path(from), &self.path(to))
            .await
            .map_err(|e| self.err("rename", &format!("{from} -> {to}"), e))
    }

    /// Blocking [`rename_async`](Self::rename_async).
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        runtime().block_on(self.rename_async(from, to))
    }

    /// Whether an object exists.
    pub async fn exists_async(&self, path: &str) -> Result<bool> {
        match self.store.head(&self.path(path)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err("head", path, e)),
        }
    }

    /// Every object under a prefix, as paths relative to this store, sorted.
    pub async fn list_async(&self, prefix: &str) -> Result<Vec<String>> {
        let base = self.path(prefix);
        let listed: Vec<_> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| self.err("list", prefix, e))?;
        let mut paths: Vec<String> = listed.iter().map(|m| self.relative(&m.location)).collect();
        paths.sort();
        Ok(paths)
    }

    /// HDFS keeps directories: after their files are deleted, removes the directories under
    /// `prefix` that held `deleted` and `prefix` itself (this store's root for ""), deepest
    /// first. A non-recursive delete refuses a directory that is not empty, so files
    /// written there meanwhile stay (with their directory).
    async fn remove_emptied_directories(&self, prefix: &str, deleted: &[String]) {
        let prefix = prefix.trim_matches('/');
        let mut dirs: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for path in deleted {
            let mut dir = path.as_str();
            while let Some((parent, _)) = dir.rsplit_once('/') {
                if parent.len() < prefix.len() {
                    break;
                }
                dirs.insert(parent);
                dir = parent;
            }
        }
        // The prefix's own directory too; for "" that is this store's root, as the local file
        // system's `delete_prefix("")` removes its directory (a discarded `chk-N`).
        dirs.insert(prefix);
        let mut dirs: Vec<&str> = dirs.into_iter().collect();
        // Deepest first; the root ("") last of all, after the top-level directories in it.
        dirs.sort_by_key(|d| (d.is_empty(), std::cmp::Reverse(d.matches('/').count())));
        for dir in dirs {
            if let Err(e) = self.store.delete(&self.path(dir)).await
                && !matches!(e, object_store::Error::NotFound { .. })
            {
                tracing::debug!(url = %self.url, dir, error = %e, "an emptied directory stays");
            }
        }
    }

    /// Deletes every object under a prefix; returns how many.
    pub async fn delete_prefix_async(&self, prefix: &str) -> Result<usize> {
        let paths = self.list_async(prefix).await?;
        for p in &paths {
            match self.store.delete(&self.path(p)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err("delete", p, e)),
            }
        }
        if self.url.starts_with("hdfs://") {
            self.remove_emptied_directories(prefix, &paths).await;
        }
        if let Some(local) = &self.local {
            // Object stores have no directories; a file system keeps the empty ones.
            let dir = local.join(prefix.trim_matches('/'));
            if dir.is_dir()
                && let Err(e) = std::fs::remove_dir_all(&dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                // The objects are gone; what is left behind is the directory (and whatever
                // was written into it meanwhile): visible here rather than silently on disk.
                tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "could not remove a deleted prefix's local directory; it is left behind"
                );
            }
        }
        Ok(paths.len())
    }

    /// Deletes one object; a missing object is not an error.
    pub async fn delete_async(&self, path: &str) -> Result<()> {
        match self.store.delete(&self.path(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err("delete", path, e)),
        }
    }

    /// Blocking [`delete_async`](Self::delete_async).
    pub fn delete(&self, path: &str) -> Result<()> {
        runtime().block_on(self.delete_async(path))
    }

    /// Writes, reads back and deletes a probe object, so a missing bucket, refused
    /// credentials or an unreachable server are reported before a job relies on the store.
    pub async fn check_access_async(&self) -> Result<()> {
        let probe = format!("_fjord_probe_{}", std::process::id());
        self.put_async(&probe, b"probe".to_vec()).await?;
        let back = self.get_async(&probe).await?;
        self.delete_async(&probe).await?;
        if back != b"probe" {
            return Err(storage_error(
                &self.url,
                "check",
                "read back different bytes than written",
            ));
        }
        Ok(())
    }

    /// Blocking [`put_async`](Self::put_async).
    pub fn put(&self, path: &str, bytes: Vec<u8>) -> Result<()> {
        super::test_hooks::before_put(&self.url, path);
        runtime().block_on(self.put_async(path, bytes))
    }

    /// Blocking [`get_async`](Self::get_async).
    pub fn get(&self, path: &str) -> Result<Vec<u8>> {
        runtime().block_on(self.get_async(path))
    }

    /// Blocking [`exists_async`](Self::exists_async).
    pub fn exists(&self, path: &str) -> Result<bool> {
        runtime().block_on(self.exists_async(path))
    }

    /// Blocking [`list_async`](Self::list_async).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>> {
        runtime().block_on(self.list_async(prefix))
    }

    /// Blocking [`delete_prefix_async`](Self::delete_prefix_async).
    pub fn delete_prefix(&self, prefix: &str) -> Result<usize> {
        runtime().block_on(self.delete_prefix_async(prefix))
    }

    /// Blocking [`check_access_async`](Self::check_access_async).
    pub fn check_access(&self) -> Result<()> {
        runtime().block_on(self.check_access_async())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &SnapshotStore) {
        store.put("job/chk-1/op/0.state", b"zero".to_vec()).unwrap();
        store.put("job/chk-1/_metadata", b"meta".to_vec()).unwrap();
        store.put("job/chk-2/op/0.state", b"two".to_vec()).unwrap();
        assert_eq!(store.get("job/chk-1/op/0.state").unwrap(), b"zero");
        assert!(store.exists("job/chk-1/_metadata").unwrap());
        assert!(!store.exists("job/chk-2/_metadata").unwrap());
        assert_eq!(
            store.list("job/chk-1").unwrap(),
            vec!["job/chk-1/_metadata", "job/chk-1/op/0.state"]
        );
        let child = store.child("job");
        assert_eq!(child.get("chk-2/op/0.state").unwrap(), b"two");
        assert_eq!(child.list("chk-2").unwrap(), vec!["chk-2/op/0.state"]);
        assert_eq!(store.delete_prefix("job/chk-1").unwrap(), 2);
        assert!(store.list("job/chk-1").unwrap().is_empty());
        store.check_access().unwrap();
        let missing = store.get("job/nope").unwrap_err().to_string();
        assert!(missing.contains("get job/nope"), "{missing}");
    }

    #[test]
    fn file_store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::open(
            &format!("file://{}", dir.path().display()),
            &StorageOptions::default(),
        )
        .unwrap();
        exercise(&store);
        assert!(
            dir.path().join("job/chk-2/op/0.state").is_file(),
            "objects are plain files"
        );
    }

    #[test]
    fn memory_store_round_trip_and_sharing_by_name() {
        let store =
            SnapshotStore::open("memory://layout-test/base", &StorageOptions::default()).unwrap();
        exercise(&store);
        let again =
            SnapshotStore::open("memory://layout-test/base", &StorageOptions::default()).unwrap();
        assert_eq!(
            again.get("job/chk-2/op/0.state").unwrap(),
            b"two",
            "same name, same memory"
        );
    }

    #[test]
    fn bad_urls_say_what_to_use() {
        let e = SnapshotStore::open("ftp://x", &StorageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported scheme 'ftp'"), "{e}");
        let e = SnapshotStore::open("/tmp/x", &StorageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a URL"), "{e}");
        let e = SnapshotStore::open("file://relative", &StorageOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute path"), "{e}");
    }
}
