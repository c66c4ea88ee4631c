//! The certificates the operator issues for a StreamJob's mutual TLS: one CA per StreamJob and
//! one leaf certificate, signed by it, that every JobManager and TaskManager Pod of the job
//! presents (as client and as server). Pure functions (apart from the random keys and serial
//! numbers); the Secrets that keep them are built and stored by [`crate::security`].
//!
//! Host names are not checked on internal connections (docs/security.md: TaskManagers advertise
//! Pod IPs that no certificate can list in advance), so one leaf fits every Pod; it still names
//! the JobManager Service, so the same certificate can serve the REST API.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

/// How long a CA the operator issues is valid (ten years; rotated a year before it ends, see
/// [`crate::ca_rotation`]).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a leaf certificate the operator issues is valid.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);
/// A leaf certificate is re-issued when it expires within this time.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A PEM certificate, its PEM (PKCS#8) private key and when it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The end of its validity.
    pub not_after: Timestamp,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Issued")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CertificateError(String);

fn err(what: &str) -> impl FnOnce(rcgen::Error) -> CertificateError + '_ {
    move |e| CertificateError(format!("{what}: {e}"))
}

fn offset(t: Timestamp) -> Result<OffsetDateTime, CertificateError> {
    OffsetDateTime::from_unix_timestamp(t.as_second())
        .map_err(|e| CertificateError(format!("time {t} out of range: {e}")))
}

fn later(t: Timestamp, by: Duration) -> Result<Timestamp, CertificateError> {
    let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
    Timestamp::from_second(t.as_second().saturating_add(secs))
        .map_err(|e| CertificateError(format!("time {t} + {by:?} out of range: {e}")))
}

/// The CA's parameters. Deterministic in everything an issuer needs (its name), so a leaf can be
/// signed from the stored CA key alone.
fn ca_params(namespace: &str, name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Fjord");
    dn.push(DnType::CommonName, format!("fjord {namespace}/{name} CA"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

/// The DNS names of the JobManager Service, which the leaf lists.
pub fn service_names(namespace: &str, name: &str) -> Vec<String> {
    let svc = crate::resources::workload_name(name, crate::resources::Component::JobManager);
    vec![
        svc.clone(),
        format!("{svc}.{namespace}"),
        format!("{svc}.{namespace}.svc"),
        format!("{svc}.{namespace}.svc.cluster.local"),
        "localhost".into(),
    ]
}

/// Issue a new CA for the StreamJob `namespace/name`, valid from `now` for [`CA_VALIDITY`].
///
/// # Errors
/// [`CertificateError`] if key generation or signing fails.
pub fn issue_ca(namespace: &str, name: &str, now: Timestamp) -> Result<Issued, CertificateError> {
    let key = KeyPair::generate().map_err(err("generating the CA key"))?;
    let mut params = ca_params(namespace, name);
    let not_after = later(now, CA_VALIDITY)?;
    params.not_before = offset(now)?;
    params.not_after = offset(not_after)?;
    let cert = params
        .self_signed(&key)
        .map_err(err("self-signing the CA"))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// Issue a leaf certificate for the StreamJob `namespace/name`, signed by its CA key
/// `ca_key_pem` (from [`issue_ca`]), valid from `now` for `validity`, for client and server
/// authentication, naming the JobManager Service ([`service_names`]).
///
/// # Errors
/// [`CertificateError`] if the CA key is not a PEM key, or key generation or signing fails.
pub fn issue_leaf(
    namespace: &str,
    name: &str,
    ca_key_pem: &str,
    now: Timestamp,
    validity: Duration,
) -> Result<Issued, CertificateError> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(err("reading the CA key"))?;
    let issuer = Issuer::new(ca_params(namespace, name), ca_key);
    let key = KeyPair::generate().map_err(err("generating the certificate key"))?;
    let mut params = CertificateParams::new(service_names(namespace, name))
        .map_err(err("naming the certificate"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Fjord");
    dn.push(DnType::CommonName, format!("fjord {namespace}/{name}"));
    params.distinguished_name = dn;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let not_after = later(now, validity)?;
    params.not_before = offset(now)?;
    params.not_after = offset(not_after)?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(err("signing the certificate"))?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

/// Whether a certificate that expires at `not_after` must be re-issued at `now`: it expires
/// within `renew_before` (or has expired).
pub fn needs_renewal(not_after: Timestamp, now: Timestamp, renew_before: Duration) -> bool {
    let secs = i64::try_from(renew_before.as_secs()).unwrap_or(i64::MAX);
    not_after.as_second().saturating_sub(now.as_second()) <= secs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn renewal_is_due_within_the_window_and_after_expiry() {
        let day = 24 * 3600;
        let not_after = at(1_800_000_000);
        let window = Duration::from_secs(30 * day as u64);
        for (now, due) in [
            (1_800_000_000 - 31 * day, false),
            (1_800_000_000 - 30 * day - 1, false),
            (1_800_000_000 - 30 * day, true),
            (1_800_000_000 - day, true),
            (1_800_000_000 + day, true),
        ] {
            assert_eq!(needs_renewal(not_after, at(now), window), due, "now {now}");
        }
    }

    #[test]
    fn a_short_lived_leaf_is_renewed_and_the_new_one_chains_to_the_same_ca() {
        let now = Timestamp::now();
        let ca = issue_ca("ns", "job", now).unwrap();
        let validity = Duration::from_secs(3600);
        let leaf = issue_leaf("ns", "job", &ca.key_pem, now, validity).unwrap();
        assert_eq!(leaf.not_after.as_second(), now.as_second() + 3600);
        // A one-hour certificate is due at once under the default window; a fresh 90-day one
        // is not.
        assert!(needs_renewal(leaf.not_after, now, RENEW_BEFORE));
        let renewed = issue_leaf("ns", "job", &ca.key_pem, now, LEAF_VALIDITY).unwrap();
        assert!(!needs_renewal(renewed.not_after, now, RENEW_BEFORE));
        assert_ne!(renewed.cert_pem, leaf.cert_pem);
        for l in [&leaf, &renewed] {
            verify_chain(&ca.cert_pem, &l.cert_pem, &l.key_pem).unwrap();
        }
    }

    /// The leaf verifies against the CA as a TLS client and server certificate (rustls' own
    /// verifiers, as the worker uses them), and its key loads.
    fn verify_chain(ca_pem: &str, leaf_pem: &str, key_pem: &str) -> Result<(), rustls::Error> {
        use rustls::client::danger::ServerCertVerifier as _;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let roots = std::sync::Arc::new(roots);
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).unwrap();
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let now = UnixTime::now();
        let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .unwrap();
        client_verifier.verify_client_cert(&leaf, &[], now)?;
        let server_verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .unwrap();
        server_verifier.verify_server_cert(
            &leaf,
            &[],
            &ServerName::try_from("job-jobmanager.ns.svc").unwrap(),
            &[],
            now,
        )?;
        Ok(())
    }

    #[test]
    fn a_leaf_of_the_next_ca_verifies_against_a_bundle_of_two_cas_of_the_same_name() {
        // During a rotation both CAs carry the same subject; the verifiers try each.
        let now = Timestamp::now();
        let old = issue_ca("ns", "job", now).unwrap();
        let next = issue_ca("ns", "job", now).unwrap();
        let bundle = format!("{}{}", old.cert_pem, next.cert_pem);
        for signer in [&old, &next] {
            let leaf = issue_leaf("ns", "job", &signer.key_pem, now, LEAF_VALIDITY).unwrap();
            verify_chain(&bundle, &leaf.cert_pem, &leaf.key_pem).unwrap();
        }
        let stranger = issue_ca("ns", "job", now).unwrap();
        let leaf = issue_leaf("ns", "job", &stranger.key_pem, now, LEAF_VALIDITY).unwrap();
        assert!(verify_chain(&bundle, &leaf.cert_pem, &leaf.key_pem).is_err());
    }

    #[test]
    fn a_leaf_signed_by_another_ca_is_refused() {
        let now = Timestamp::now();
        let ca = issue_ca("ns", "job", now).unwrap();
        let other = issue_ca("ns", "job", now).unwrap();
        let leaf = issue_leaf("ns", "job", &other.key_pem, now, LEAF_VALIDITY).unwrap();
        assert!(
            verify_chain(&ca.cert_pem, &leaf.cert_pem, &leaf.key_pem).is_err(),
            "a certificate of another CA must not verify"
        );
    }
}
