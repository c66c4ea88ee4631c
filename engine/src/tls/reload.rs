//! Certificates that follow their files: a [`Watched`] value is built from a set of PEM files
//! and rebuilt when they change, so a running process picks up a re-issued certificate or a
//! new CA bundle (a Kubernetes Secret volume swaps its `..data` symlink atomically) without a
//! restart.
//!
//! - One background thread (`fjord-tls-reload`, started with the first [`Watched`]) looks at
//!   every live watch every [`RELOAD_INTERVAL`]: it compares each file's identity (device,
//!   inode, size, modification and change times, following symlinks) with what was loaded, and
//!   only when one differs reads and parses the files again. Handshakes never do file IO: they
//!   read the current value under a lock held for a pointer copy.
//! - A set that cannot be read or does not fit (a missing file, no PEM, a key that does not
//!   match the certificate) is not used: the previous value stays, and one warning names the
//!   file (never its content). The same broken set is not read again until a file changes.
//! - Connections already established keep the keys they were made with; only new handshakes
//!   see the new value.
//!
//! The resolvers and verifiers at the bottom adapt a watched value to rustls' traits.

use super::AnyHostName;
use crate::error::Result;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// How often the files of every watch are looked at.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// The stamps of a watch's files (`None`: the file cannot be looked at).
type Stamps = Vec<Option<FileStamp>>;

fn stamps(paths: &[PathBuf]) -> Stamps {
    use std::os::unix::fs::MetadataExt;
    paths
        .iter()
        .map(|p| {
            // `metadata` follows symlinks: a swapped `..data` link gives the new file's inode.
            std::fs::metadata(p).ok().map(|m| FileStamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            })
        })
        .collect()
}

type Loader<T> = Box<dyn Fn() -> Result<T> + Send + Sync>;

struct Seen {
    /// The stamps of the files the current value was built from.
    loaded: Stamps,
    /// The stamps of a set that failed to load (warned about once, not read again).
    failed: Option<Stamps>,
}

/// A value built from files, rebuilt by the reload thread when they change (see the module
/// documentation).
pub struct Watched<T> {
    what: &'static str,
    paths: Vec<PathBuf>,
    load: Loader<T>,
    current: RwLock<Arc<T>>,
    seen: Mutex<Seen>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths only: the value holds keys.
        f.debug_struct("Watched")
            .field("what", &self.what)
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Loads the value once (`load` reads `paths`) and registers it with the reload thread,
    /// which follows the files for as long as the returned `Arc` lives. `what` names the
    /// certificate in logs.
    ///
    /// # Errors
    /// What `load` returns: a set that cannot be used at start is an error, not a warning.
    pub fn new(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: impl Fn() -> Result<T> + Send + Sync + 'static,
    ) -> Result<Arc<Watched<T>>> {
        let watched = Self::unfollowed(what, paths, load)?;
        let weak: Weak<dyn Check> = Arc::downgrade(&(watched.clone() as Arc<dyn Check>));
        register(weak);
        Ok(watched)
    }

    /// Like [`Watched::new`] without the reload thread: the files are looked at only when
    /// [`Check::check`] is called (tests that step through changes).
    pub(crate) fn unfollowed(
        what: &'static str,
        paths: Vec<PathBuf>,
        load: impl Fn() -> Result<T> + Send + Sync + 'static,
    ) -> Result<Arc<Watched<T>>> {
        let before = stamps(&paths);
        let value = load()?;
        let watched = Arc::new(Watched {
            what,
            paths,
            load: Box::new(load),
            current: RwLock::new(Arc::new(value)),
            seen: Mutex::new(Seen {
                loaded: before,
                failed: None,
            }),
        });
        Ok(watched)
    }

    /// The value built from the files as they were at the latest successful load.
    pub fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the reload thread calls on every live watch.
pub(crate) trait Check: Send + Sync {
    /// Looks at the files and rebuilds the value if they changed; returns what happened.
    fn check(&self) -> Outcome;
}

/// What one [`Check::check`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The files are as loaded (or as they were when they last failed).
    Unchanged,
    /// The files changed and the new value is in use.
    Reloaded,
    /// The files changed but do not give a usable value: the previous one stays.
    Kept,
}

impl<T: Send + Sync + 'static> Check for Watched<T> {
    fn check(&self) -> Outcome {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamps(&self.paths);
        if now == seen.loaded || seen.failed.as_ref() == Some(&now) {
            return Outcome::Unchanged;
        }
        match (self.load)() {
            Ok(value) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
                seen.loaded = now;
                seen.failed = None;
                tracing::info!(
                    certificate = self.what,
                    files = ?self.paths,
                    "reloaded TLS certificate files: new connections use them"
                );
                Outcome::Reloaded
            }
            Err(e) => {
                // The error names the file and what is wrong with it, never its content.
                tracing::warn!(
                    certificate = self.what,
                    error = %e,
                    "the TLS certificate files changed but cannot be used: keeping the \
                     previous certificate until they are fixed"
                );
                seen.failed = Some(now);
                Outcome::Kept
            }
        }
    }
}

static WATCHES: Mutex<Vec<Weak<dyn Check>>> = Mutex::new(Vec::new());

fn register(watch: Weak<dyn Check>) {
    let mut watches = WATCHES.lock().unwrap_or_else(|e| e.into_inner());
    if watches.is_empty() {
        start_thread();
    }
    watches.push(watch);
}

/// Starts the reload thread once per process.
fn start_thread() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("fjord-tls-reload".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(RELOAD_INTERVAL);
                    let live: Vec<Arc<dyn Check>> = {
                        let mut watches = WATCHES.lock().unwrap_or_else(|e| e.into_inner());
                        watches.retain(|w| w.strong_count() > 0);
                        watches.iter().filter_map(Weak::upgrade).collect()
                    };
                    for watch in live {
                        watch.check();
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the TLS reload thread: certificate files are not followed");
        }
    });
}

/// This process's certificate (with its key) and the CA bundle peers must chain to, as one
/// consistent set.
pub(crate) struct InternalMaterial {
    pub(crate) key: Arc<CertifiedKey>,
    pub(crate) client_verifier: Arc<dyn ClientCertVerifier>,
    pub(crate) server_verifier: Arc<WebPkiServerVerifier>,
}

/// Presents the current certificate, as a server and as a client (the function picks it out
/// of the watched value).
pub(crate) struct CurrentKey<T>(
    pub(crate) Arc<Watched<T>>,
    pub(crate) fn(&T) -> Arc<CertifiedKey>,
);

impl<T> std::fmt::Debug for CurrentKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CurrentKey").field(&self.0).finish()
    }
}

impl<T: Send + Sync + 'static> ResolvesServerCert for CurrentKey<T> {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some((self.1)(&self.0.current()))
    }
}

impl<T: Send + Sync + 'static> rustls::client::ResolvesClientCert for CurrentKey<T> {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some((self.1)(&self.0.current()))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Checks a client's certificate against the current CA bundle.
#[derive(Debug)]
pub(crate) struct CurrentClientVerifier(pub(crate) Arc<Watched<InternalMaterial>>);

impl ClientCertVerifier for CurrentClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The bundle changes; no hints (clients present their one certificate anyway).
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.0
            .current()
            .client_verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .client_verifier
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .current()
            .client_verifier
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.current().client_verifier.supported_verify_schemes()
    }
}

/// Checks a server's certificate against the current CA bundle, any host name
/// ([`AnyHostName`]).
#[derive(Debug)]
pub(crate) struct CurrentServerVerifier(pub(crate) Arc<Watched<InternalMaterial>>);

impl CurrentServerVerifier {
    fn inner(&self) -> AnyHostName {
        AnyHostName(self.0.current().server_verifier.clone())
    }
}

impl ServerCertVerifier for CurrentServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner()
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner().supported_verify_schemes()
    }
}

impl std::fmt::Debug for InternalMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("InternalMaterial").finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::Outcome;
    use crate::tls::reload::Check as _;
    use crate::tls::{InternalTls, TlsFiles, certificates, testing};
    use std::path::Path;
    use std::sync::Arc;

    /// A mounted-Secret directory: `tls.crt`, `tls.key`, `ca.crt` are links into `..data`,
    /// itself a link to a versioned directory, as the kubelet writes it.
    fn mount(root: &Path) -> TlsFiles {
        let dir = root.join("mount");
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["tls.crt", "tls.key", "ca.crt"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        TlsFiles::in_dir(&dir)
    }

    /// Writes `version` (a leaf of `ca`, trusting the concatenation of `bundle`) and swaps
    /// `..data` to it atomically.
    fn publish(root: &Path, version: &str, leaf: &str, bundle: &[&str]) {
        let data = root.join("mount").join(format!("..{version}"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::copy(root.join(format!("{leaf}.crt")), data.join("tls.crt")).unwrap();
        std::fs::copy(root.join(format!("{leaf}.key")), data.join("tls.key")).unwrap();
        let pem: String = bundle
            .iter()
            .map(|ca| std::fs::read_to_string(root.join(format!("{ca}.crt"))).unwrap())
            .collect();
        std::fs::write(data.join("ca.crt"), pem).unwrap();
        let tmp = root.join("mount").join("..data_tmp");
        std::os::unix::fs::symlink(format!("..{version}"), &tmp).unwrap();
        std::fs::rename(&tmp, root.join("mount").join("..data")).unwrap();
    }

    fn der(root: &Path, leaf: &str) -> Vec<u8> {
        certificates(&root.join(format!("{leaf}.crt"))).unwrap()[0].to_vec()
    }

    fn presented(tls: &InternalTls) -> Vec<u8> {
        tls.current_certificate()[0].to_vec()
    }

    /// A full handshake in memory between `client` and `server`.
    fn handshake(client: &InternalTls, server: &InternalTls) -> Result<(), rustls::Error> {
        handshake_connections(client, server).map(drop)
    }

    /// A full handshake in memory between `client` and `server`; both ends after it.
    pub(crate) fn handshake_connections(
        client: &InternalTls,
        server: &InternalTls,
    ) -> Result<(rustls::ClientConnection, rustls::ServerConnection), rustls::Error> {
        let mut c =
            rustls::ClientConnection::new(client.client_config(), InternalTls::server_name())
                .unwrap();
        let mut s = rustls::ServerConnection::new(server.server_config()).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                // The client's certificate travels in its last flight: let the server see it.
                let mut buf = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut buf).unwrap();
                }
                s.read_tls(&mut buf.as_slice()).unwrap();
                s.process_new_packets()?;
                return Ok((c, s));
            }
        }
        panic!("the handshake did not finish");
    }

    fn cas(root: &Path) {
        for ca in ["old-ca", "new-ca", "other-ca"] {
            testing::ca(root, ca);
        }
        testing::leaf(root, "old-ca", "old-leaf");
        testing::leaf(root, "new-ca", "new-leaf");
        testing::leaf(root, "other-ca", "other-leaf");
    }

    /// The steps of a CA rotation (docs/security.md): the leaf and the CAs trusted.
    const STEPS: [(&str, &[&str]); 4] = [
        ("old-leaf", &["old-ca"]),
        ("old-leaf", &["old-ca", "new-ca"]),
        ("new-leaf", &["old-ca", "new-ca"]),
        ("new-leaf", &["new-ca"]),
    ];

    /// A process that stays at `step` (its own copy of the files).
    fn at_step(root: &Path, step: usize) -> InternalTls {
        let (leaf, bundle) = STEPS[step];
        let dir = root.join(format!("step-{step}"));
        std::fs::create_dir_all(&dir).unwrap();
        let files = TlsFiles::in_dir(&dir);
        std::fs::copy(root.join(format!("{leaf}.crt")), &files.cert).unwrap();
        std::fs::copy(root.join(format!("{leaf}.key")), &files.key).unwrap();
        let pem: String = bundle
            .iter()
            .map(|ca| std::fs::read_to_string(root.join(format!("{ca}.crt"))).unwrap())
            .collect();
        std::fs::write(&files.ca, pem).unwrap();
        InternalTls::load_unfollowed(&files).unwrap()
    }

    #[test]
    fn a_rotation_through_a_bundle_is_followed_step_by_step_and_strangers_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cas(root);
        let files = mount(root);
        publish(root, "0", STEPS[0].0, STEPS[0].1);
        let moving = InternalTls::load_unfollowed(&files).unwrap();
        let fixed: Vec<InternalTls> = (0..STEPS.len()).map(|k| at_step(root, k)).collect();
        let stranger = InternalTls::load(&testing::leaf(root, "other-ca", "stranger")).unwrap();
        assert!(!moving.check_files_now(), "nothing changed yet");
        // Skipping the steps would break the cluster: the first and the last do not talk.
        assert!(handshake(&fixed[0], &fixed[3]).is_err());
        assert!(handshake(&fixed[3], &fixed[0]).is_err());
        for (step, (leaf, bundle)) in STEPS.iter().enumerate() {
            if step > 0 {
                publish(root, &step.to_string(), leaf, bundle);
                assert!(moving.check_files_now(), "step {step} is picked up");
            }
            assert_eq!(presented(&moving), der(root, leaf), "step {step}");
            // A process one step behind or ahead (the kubelet updates Pods at different
            // moments) is accepted both ways, as client and as server.
            let neighbours = fixed
                .iter()
                .enumerate()
                .filter(|(k, _)| k.abs_diff(step) <= 1);
            for (other, peer) in neighbours {
                assert!(
                    handshake(peer, &moving).is_ok(),
                    "step {step} accepts a client at step {other}"
                );
                assert!(
                    handshake(&moving, peer).is_ok(),
                    "step {step} trusts a server at step {other}"
                );
            }
            assert!(
                handshake(&stranger, &moving).is_err(),
                "a stranger is refused"
            );
            assert!(
                handshake(&moving, &stranger).is_err(),
                "a stranger server is not trusted"
            );
        }
        assert!(
            handshake(&fixed[0], &moving).is_err(),
            "after the last step the old CA is no longer trusted"
        );
    }

    #[test]
    fn a_key_that_does_not_fit_keeps_the_previous_set_and_is_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cas(root);
        let files = mount(root);
        publish(root, "1", "old-leaf", &["old-ca"]);
        let tls = InternalTls::load_unfollowed(&files).unwrap();
        // The new leaf's certificate with the old leaf's key.
        std::fs::copy(root.join("old-leaf.key"), root.join("mixed.key")).unwrap();
        std::fs::copy(root.join("new-leaf.crt"), root.join("mixed.crt")).unwrap();
        publish(root, "2", "mixed", &["old-ca", "new-ca"]);
        assert_eq!(tls.material.check(), Outcome::Kept);
        assert_eq!(presented(&tls), der(root, "old-leaf"), "the old set stays");
        let peer = InternalTls::load(&testing::leaf(root, "new-ca", "peer")).unwrap();
        assert!(
            handshake(&peer, &tls).is_err(),
            "the CA bundle of the broken set is not used either"
        );
        assert_eq!(
            tls.material.check(),
            Outcome::Unchanged,
            "the same broken files are neither read nor reported again"
        );
        let e = load_error(&files);
        assert!(
            e.contains("does not fit") && e.contains("tls.key") && !e.contains("PRIVATE"),
            "{e}"
        );
        // Fixed: used at the next look.
        publish(root, "3", "new-leaf", &["old-ca", "new-ca"]);
        assert_eq!(tls.material.check(), Outcome::Reloaded);
        assert_eq!(presented(&tls), der(root, "new-leaf"));
    }

    fn load_error(files: &TlsFiles) -> String {
        InternalTls::load(files).unwrap_err().to_string()
    }

    #[test]
    fn missing_or_unreadable_files_keep_the_previous_set() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cas(root);
        // Plain files this time (no symlinks), rewritten in place.
        let files = TlsFiles {
            cert: root.join("live.crt"),
            key: root.join("live.key"),
            ca: root.join("live-ca.crt"),
        };
        std::fs::copy(root.join("old-leaf.crt"), &files.cert).unwrap();
        std::fs::copy(root.join("old-leaf.key"), &files.key).unwrap();
        std::fs::copy(root.join("old-ca.crt"), &files.ca).unwrap();
        let tls = InternalTls::load_unfollowed(&files).unwrap();
        std::fs::remove_file(&files.key).unwrap();
        assert_eq!(tls.material.check(), Outcome::Kept);
        assert_eq!(presented(&tls), der(root, "old-leaf"));
        assert!(load_error(&files).contains("cannot read"));
        // Garbage instead of a key (not PEM): still the old set.
        std::fs::write(&files.key, "not a key").unwrap();
        assert_eq!(tls.material.check(), Outcome::Kept);
        let e = load_error(&files);
        assert!(e.contains("live.key") && !e.contains("not a key"), "{e}");
        std::fs::write(&files.ca, "").unwrap();
        assert_eq!(tls.material.check(), Outcome::Kept);
        // All three rewritten with a consistent set: used.
        std::fs::copy(root.join("new-leaf.crt"), &files.cert).unwrap();
        std::fs::copy(root.join("new-leaf.key"), &files.key).unwrap();
        std::fs::copy(root.join("new-ca.crt"), &files.ca).unwrap();
        assert_eq!(tls.material.check(), Outcome::Reloaded);
        assert_eq!(presented(&tls), der(root, "new-leaf"));
    }

    #[test]
    fn the_rest_certificate_follows_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        cas(root);
        let (cert, key) = (root.join("rest.crt"), root.join("rest.key"));
        std::fs::copy(root.join("old-leaf.crt"), &cert).unwrap();
        std::fs::copy(root.join("old-leaf.key"), &key).unwrap();
        let config = crate::tls::rest_server_config(&cert, &key).unwrap();
        let client = |ca: &str| {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(&root.join(format!("{ca}.crt"))).unwrap() {
                roots.add(c).unwrap();
            }
            Arc::new(
                rustls::ClientConfig::builder_with_provider(crate::tls::provider())
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        };
        let https = |client: Arc<rustls::ClientConfig>| -> Result<(), rustls::Error> {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut c = rustls::ClientConnection::new(client, name).unwrap();
            let mut s = rustls::ServerConnection::new(config.clone()).unwrap();
            while c.is_handshaking() || s.is_handshaking() {
                let mut buf = Vec::new();
                while c.wants_write() {
                    c.write_tls(&mut buf).unwrap();
                }
                s.read_tls(&mut buf.as_slice()).unwrap();
                s.process_new_packets()?;
                let mut buf = Vec::new();
                while s.wants_write() {
                    s.write_tls(&mut buf).unwrap();
                }
                c.read_tls(&mut buf.as_slice()).unwrap();
                c.process_new_packets()?;
            }
            Ok(())
        };
        assert!(https(client("old-ca")).is_ok());
        assert!(https(client("new-ca")).is_err());
        std::fs::copy(root.join("new-leaf.crt"), &cert).unwrap();
        std::fs::copy(root.join("new-leaf.key"), &key).unwrap();
        // The reload thread picks the files up within a few intervals.
        let deadline = std::time::Instant::now() + 10 * super::RELOAD_INTERVAL;
        while https(client("new-ca")).is_err() {
            assert!(std::time::Instant::now() < deadline, "not reloaded");
            std::thread::park_timeout(std::time::Duration::from_millis(50));
        }
        assert!(https(client("old-ca")).is_err());
    }
}
