//! Transport security shared by the control plane, the data plane and the REST API: PEM files
//! in, rustls configurations out.
//!
//! Internal traffic (JobManager ↔ TaskManagers over gRPC, TaskManager ↔ TaskManager data
//! connections) uses mutual TLS with one CA per cluster, as Flink's
//! `security.ssl.internal.*` does: each side presents a certificate signed by the cluster's CA
//! and accepts only peers whose chain ends there. Host names are not checked on internal
//! connections (TaskManagers advertise Pod IPs that no certificate can list in advance); the
//! per-cluster CA is what proves membership. The REST API uses server-only TLS
//! ([`rest_server_config`]) and checks callers with a bearer token elsewhere.
//!
//! Both follow their files ([`reload`]): a re-issued certificate or a new CA bundle is used by
//! new handshakes of the running process, without a restart.
//!
//! Nothing here logs or formats key material: [`InternalTls`]'s `Debug` shows file paths only.
//! Depends on nothing else in the crate but [`crate::error`].

use crate::error::{FjordError, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod reload;

pub use reload::RELOAD_INTERVAL;
use reload::{
    Check as _, CurrentClientVerifier, CurrentKey, CurrentServerVerifier, InternalMaterial, Watched,
};

/// Where a process finds its certificate, key and the CA it trusts (PEM files; the
/// cert-manager Secret layout `tls.crt`, `tls.key`, `ca.crt` fits as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This process's certificate chain (leaf first).
    pub cert: PathBuf,
    /// Its unencrypted private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificates peers' chains must end at.
    pub ca: PathBuf,
}

impl TlsFiles {
    /// The three files of a directory in the cert-manager layout: `tls.crt`, `tls.key`,
    /// `ca.crt` (a mounted Kubernetes TLS Secret).
    pub fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
            ca: dir.join("ca.crt"),
        }
    }
}

/// Mutual-TLS configurations for internal connections, built from [`TlsFiles`] and following
/// them: when the files change (a re-issued certificate, a new CA bundle), new handshakes on
/// both sides use the new certificate, key and CA within [`RELOAD_INTERVAL`]
/// ([`reload`] says how; a set that does not fit is not used and the previous one stays).
#[derive(Clone)]
pub struct InternalTls {
    files: TlsFiles,
    material: Arc<Watched<InternalMaterial>>,
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for InternalTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths only: never the key.
        f.debug_struct("InternalTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

/// Makes ring the process's default rustls provider, unless one is installed already.
///
/// Clients that take the process default (object_store's S3 client through reqwest) need one;
/// Fjord's own TLS configurations pass ring explicitly and do not depend on this.
pub fn install_default_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Refused only when another thread installed a provider since the check: that one serves.
        drop(rustls::crypto::ring::default_provider().install_default());
    }
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The provider of internal connections: ring's suites with AES-128-GCM first. Both ends are
/// Fjord processes of one cluster, so the order decides the cipher (ring lists AES-256-GCM
/// first); AES-128-GCM is TLS 1.3's mandatory suite and costs less per byte, which is what
/// the data plane moves (BENCHMARKS.md, "Mutual TLS on the data plane"). Flink's internal
/// SSL default is an AES-128 suite too.
fn internal_provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TLS13_AES_128_GCM_SHA256,
    };
    let mut provider = rustls::crypto::ring::default_provider();
    // A stable sort: the other suites keep ring's order behind these.
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    Arc::new(provider)
}

/// Reads the certificate chain and key and checks that they belong together.
fn certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>> {
    let chain = certificates(cert)?;
    let key_der = private_key(key)?;
    let certified = CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| {
        tls(format!(
            "the key {} does not fit the certificate {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

/// Reads one consistent set of internal TLS files.
fn internal_material(files: &TlsFiles) -> Result<InternalMaterial> {
    let key = certified_key(&files.cert, &files.key)?;
    let roots = Arc::new(root_store(&files.ca)?);
    let unusable = |e: rustls::server::VerifierBuilderError| {
        tls(format!(
            "the CA in {} is not usable: {e}",
            files.ca.display()
        ))
    };
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(unusable)?;
    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(unusable)?;
    Ok(InternalMaterial {
        key,
        client_verifier,
        server_verifier,
    })
}

impl InternalTls {
    /// Reads the certificate, key and CA, builds both sides' configurations and follows the
    /// files from then on (see the type's documentation).
    ///
    /// # Errors
    /// [`FjordError::Tls`] naming the file that cannot be read, holds no PEM certificate or
    /// key, or whose key does not match the certificate.
    pub fn load(files: &TlsFiles) -> Result<InternalTls> {
        Self::build(files, true)
    }

    /// [`InternalTls::load`] without following the files (only [`Self::check_files_now`]
    /// looks at them): for tests that step through changes.
    #[doc(hidden)]
    pub fn load_unfollowed(files: &TlsFiles) -> Result<InternalTls> {
        Self::build(files, false)
    }

    fn build(files: &TlsFiles, follow: bool) -> Result<InternalTls> {
        let owned = files.clone();
        let paths = vec![files.cert.clone(), files.key.clone(), files.ca.clone()];
        let load = move || internal_material(&owned);
        let material = if follow {
            Watched::new("internal", paths, load)?
        } else {
            Watched::unfollowed("internal", paths, load)?
        };
        let key: fn(&InternalMaterial) -> Arc<CertifiedKey> = |m| m.key.clone();
        let mut server = rustls::ServerConfig::builder_with_provider(internal_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(format!("TLS set-up: {e}")))?
            .with_client_cert_verifier(Arc::new(CurrentClientVerifier(material.clone())))
            .with_cert_resolver(Arc::new(CurrentKey(material.clone(), key)));
        let mut client = rustls::ClientConfig::builder_with_provider(internal_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CurrentServerVerifier(material.clone())))
            .with_client_cert_resolver(Arc::new(CurrentKey(material.clone(), key)));
        // No session resumption: a resumed session skips the certificate checks, so a peer
        // whose CA was dropped from the bundle could come back on an old ticket. Internal
        // connections are long-lived; a full handshake each costs little.
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        server.send_tls13_tickets = 0;
        client.resumption = rustls::client::Resumption::disabled();
        Ok(InternalTls {
            files: files.clone(),
            material,
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The server side: requires a client certificate that chains to the current CA bundle,
    /// presents the current certificate.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// The client side: presents this process's current certificate and accepts a server whose
    /// chain ends at the current CA bundle, whatever host name it was reached by.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.clone()
    }

    /// The files this was loaded from (and follows).
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The certificate (leaf first) new handshakes present now.
    pub fn current_certificate(&self) -> Vec<CertificateDer<'static>> {
        self.material.current().key.cert.clone()
    }

    /// Looks at the files now instead of waiting for the reload thread (tests); returns
    /// whether a new set is in use.
    #[doc(hidden)]
    pub fn check_files_now(&self) -> bool {
        self.material.check() == reload::Outcome::Reloaded
    }

    /// The server name internal clients send (SNI); any name is accepted by [`AnyHostName`].
    pub fn server_name() -> ServerName<'static> {
        ServerName::try_from("fjord-internal").expect("a valid DNS name")
    }
}

/// A server-only TLS configuration (the REST API): certificate chain and key, no client
/// certificates asked for. It follows the two files like [`InternalTls`] does: new
/// connections get the current certificate.
///
/// # Errors
/// [`FjordError::Tls`] naming the file that cannot be read or does not fit.
pub fn rest_server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let (c, k) = (cert.to_path_buf(), key.to_path_buf());
    let watched = Watched::new(
        "rest",
        vec![cert.to_path_buf(), key.to_path_buf()],
        move || certified_key(&c, &k),
    )?;
    let pick: fn(&Arc<CertifiedKey>) -> Arc<CertifiedKey> = Arc::clone;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(format!("TLS set-up: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(CurrentKey(watched, pick)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn tls(message: String) -> FjordError {
    FjordError::Tls(message)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| tls(format!("cannot read {}: {e}", path.display())))
}

/// The PEM certificates of `path` (at least one).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| tls(format!("{} is not PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    // The error names the file only: rustls' PEM errors never echo key bytes, but be sure.
    PrivateKeyDer::from_pem_slice(&read(path)?).map_err(|_| {
        tls(format!(
            "{} holds no unencrypted PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))
    })
}

fn root_store(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots.add(cert).map_err(|e| {
            tls(format!(
                "a CA certificate in {} is not usable: {e}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

/// Verifies a server's chain and signatures like `inner` (rustls's WebPKI verifier) does, but
/// accepts any host name: for the cluster's internal connections membership is proven by the
/// CA, not by a name (TaskManagers advertise Pod IPs), and Kafka clients use it when
/// `ssl.endpoint.identification.algorithm` is empty.
#[derive(Debug)]
pub struct AnyHostName(pub Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Test certificates made with the `openssl` command (as the Kafka connector's tests do): a CA
/// and leaves signed by it. For tests only; the keys never leave the temporary directory.
#[doc(hidden)]
pub mod testing {
    use super::TlsFiles;
    use std::path::Path;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes a CA `<ca>.crt`/`<ca>.key` into `dir` (EC P-256, valid 2 days).
    pub fn ca(dir: &Path, ca: &str) {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
            ],
        );
    }

    /// Writes `<name>.crt`/`<name>.key` signed by CA `ca` (made by [`ca`]) for `localhost`
    /// and 127.0.0.1, and returns the files with the CA.
    pub fn leaf(dir: &Path, ca: &str, name: &str) -> TlsFiles {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(
            dir.join(format!("{name}.ext")),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
        TlsFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            ca: dir.join(format!("{ca}.crt")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a handshake between the two configurations in memory and returns the suite.
    fn negotiated(tls: &InternalTls) -> rustls::CipherSuite {
        let (client, server) = reload::tests::handshake_connections(tls, tls).unwrap();
        let suite = client.negotiated_cipher_suite().unwrap().suite();
        assert_eq!(server.negotiated_cipher_suite().unwrap().suite(), suite);
        suite
    }

    #[test]
    fn internal_connections_negotiate_aes_128_gcm() {
        let dir = tempfile::tempdir().unwrap();
        testing::ca(dir.path(), "ca");
        let tls = InternalTls::load_unfollowed(&testing::leaf(dir.path(), "ca", "peer")).unwrap();
        assert_eq!(
            negotiated(&tls),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        // The suites still offered behind it are ring's, AES-256-GCM included.
        let offered: Vec<_> = internal_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(offered[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        assert!(offered.contains(&rustls::CipherSuite::TLS13_AES_256_GCM_SHA384));
        assert_eq!(offered.len(), provider().cipher_suites.len());
    }
}
