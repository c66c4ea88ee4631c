//! Settings of a test cluster's MinIO and an `object_store` client built from them.

use std::sync::Arc;

use futures::TryStreamExt as _;
use object_store::ObjectStore as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};

use crate::error::{Error, Result};

/// Endpoint, credentials and bucket of a test cluster's S3-compatible store (MinIO).
#[derive(Clone, Debug)]
pub struct S3Settings {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The bucket `up.sh` created.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region name to sign with (MinIO accepts any; `us-east-1`).
    pub region: String,
}

impl S3Settings {
    /// An `object_store` client for `bucket` (usually [`S3Settings::bucket`]) on this endpoint,
    /// with path-style addressing and plain HTTP allowed, as MinIO on loopback needs.
    ///
    /// Building the client does not contact the server; errors about a missing bucket or bad
    /// credentials surface on the first request.
    ///
    /// # Errors
    /// [`Error::ObjectStore`] if the builder rejects the settings.
    pub fn object_store_for(&self, bucket: &str) -> Result<Arc<AmazonS3>> {
        // object_store's HTTPS client brings rustls without a crypto provider of its own: use
        // ring, as Fjord does. Refused only if one is installed already, which then serves.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            drop(rustls::crypto::ring::default_provider().install_default());
        }
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(bucket)
            .with_access_key_id(&self.access_key_id)
            .with_secret_access_key(&self.secret_access_key)
            .with_region(&self.region)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .map(Arc::new)
            .map_err(|source| Error::ObjectStore {
                endpoint: self.endpoint.clone(),
                source,
            })
    }

    /// Creates bucket `name` with a signed `PUT` (curl's SigV4, as `scripts/infra/up.sh` makes
    /// its own bucket); a bucket that exists already is fine. A store that gives no HTTP answer
    /// at all (connection refused or closed: a MinIO whose Deployment is rolled out but whose
    /// Service does not route to it yet) is asked again, for up to 30 s.
    ///
    /// # Errors
    /// [`Error::Spawn`] without curl; [`Error::Command`] when the store answers anything but
    /// 200 or 409 (it exists), or never answers, with the status and curl's stderr.
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        let url = format!("{}/{name}", self.endpoint);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let out = std::process::Command::new("curl")
                .args([
                    "-sS",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-X",
                    "PUT",
                    "--aws-sigv4",
                    "aws:amz:us-east-1:s3",
                    "--user",
                    &format!("{}:{}", self.access_key_id, self.secret_access_key),
                    &url,
                ])
                .output()
                .map_err(|source| Error::Spawn {
                    program: "curl".into(),
                    source,
                })?;
            let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if code == "200" || code == "409" {
                return Ok(());
            }
            if code != "000" || std::time::Instant::now() >= deadline {
                return Err(Error::Command {
                    command: format!("curl -X PUT {url}"),
                    code: out.status.code(),
                    stderr: format!(
                        "creating bucket {name} answered {code}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    /// An `object_store` client for the cluster's bucket; see [`S3Settings::object_store_for`].
    ///
    /// # Errors
    /// [`Error::ObjectStore`] if the builder rejects the settings.
    pub fn object_store(&self) -> Result<Arc<AmazonS3>> {
        self.object_store_for(&self.bucket)
    }

    /// Check that `bucket` exists and the credentials work, with one LIST request.
    ///
    /// # Errors
    /// [`Error::BucketMissing`] if the server answers `NoSuchBucket`, [`Error::S3Request`] for
    /// any other failure, [`Error::ObjectStore`] if no client can be built.
    pub async fn verify_bucket(&self, bucket: &str) -> Result<()> {
        let store = self.object_store_for(bucket)?;
        let result = store.list(None).try_next().await;
        match result {
            Ok(_) => Ok(()),
            Err(source) if format!("{source:?}").contains("NoSuchBucket") => {
                Err(Error::BucketMissing {
                    bucket: bucket.to_string(),
                    endpoint: self.endpoint.clone(),
                    expected: self.bucket.clone(),
                })
            }
            Err(source) => Err(Error::S3Request {
                bucket: bucket.to_string(),
                endpoint: self.endpoint.clone(),
                source,
            }),
        }
    }

    /// The URL of the bucket in the form Fjord's storage configuration takes (`s3://bucket`).
    pub fn bucket_url(&self) -> String {
        format!("s3://{}", self.bucket)
    }
}
