//! TLS (`security.protocol=SSL`) with rustls, configured from Kafka's `ssl.*` properties in
//! their PEM forms (Kafka's KIP-651): trust from `ssl.truststore.location` (a PEM file) or
//! `ssl.truststore.certificates` (PEM text), else the Mozilla roots; a client certificate for
//! mutual TLS from `ssl.keystore.location` (PEM with key and chain) or
//! `ssl.keystore.certificate.chain` + `ssl.keystore.key`; `ssl.endpoint.identification.algorithm`
//! empty turns the host name check off (the chain is still verified). JKS and PKCS12 stores and
//! encrypted keys are refused with what to do instead.

use super::Result;
use crate::error::KafkaError;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The rustls configuration for `props` (called when `security.protocol=SSL`).
pub(crate) fn client_config(props: &BTreeMap<String, String>) -> Result<Arc<rustls::ClientConfig>> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if get("ssl.key.password").is_some() || get("ssl.keystore.password").is_some() {
        return Err(config(
            "ssl.key.password / ssl.keystore.password given: this client reads unencrypted PEM keys only; \
             decrypt the key (openssl pkcs8 -nocrypt) and give it as ssl.keystore.location (ssl.keystore.type=PEM)",
        ));
    }
    for store in ["ssl.truststore.type", "ssl.keystore.type"] {
        if let Some(t) = get(store)
            && !t.eq_ignore_ascii_case("PEM")
        {
            return Err(config(&format!(
                "{store}={t} is not supported: this client reads PEM stores only; convert it \
                 (keytool -exportcert -rfc, or openssl pkcs12 -nodes) and set {store}=PEM"
            )));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    let trusted: Vec<CertificateDer<'static>> = match (
        get("ssl.truststore.location"),
        get("ssl.truststore.certificates"),
    ) {
        (Some(path), _) => certificates(
            &read(path, "ssl.truststore.location")?,
            "ssl.truststore.location",
        )?,
        (None, Some(pem)) => certificates(pem.as_bytes(), "ssl.truststore.certificates")?,
        (None, None) => Vec::new(),
    };
    if trusted.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        for cert in trusted {
            roots
                .add(cert)
                .map_err(|e| config(&format!("a trusted certificate is not usable: {e}")))?;
        }
    }
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config(&format!("TLS set-up: {e}")))?;
    let check_host = get("ssl.endpoint.identification.algorithm").is_some()
        || !props.contains_key("ssl.endpoint.identification.algorithm");
    let builder = if check_host {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| config(&format!("TLS set-up: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(fjord::tls::AnyHostName(inner)))
    };
    let identity = match (
        get("ssl.keystore.location"),
        get("ssl.keystore.certificate.chain"),
        get("ssl.keystore.key"),
    ) {
        (Some(path), _, _) => {
            let pem = read(path, "ssl.keystore.location")?;
            Some((
                certificates(&pem, "ssl.keystore.location")?,
                key(&pem, "ssl.keystore.location")?,
            ))
        }
        (None, Some(chain), Some(k)) => Some((
            certificates(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            key(k.as_bytes(), "ssl.keystore.key")?,
        )),
        (None, None, None) => None,
        _ => {
            return Err(config(
                "give both ssl.keystore.certificate.chain and ssl.keystore.key (or ssl.keystore.location)",
            ));
        }
    };
    let tls = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| config(&format!("the client certificate or key is not usable: {e}")))?,
    };
    Ok(Arc::new(tls))
}

/// The server name to check for `host` (a DNS name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|e| config(&format!("`{host}` is not a valid TLS server name: {e}")))
}

fn config(message: &str) -> KafkaError {
    KafkaError::Config(message.to_string())
}

fn read(path: &str, key: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| config(&format!("{key}={path} cannot be read: {e}")))
}

fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| config(&format!("{key}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(config(&format!(
            "{key} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

fn key(pem: &[u8], key: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        config(&format!(
            "{key} holds no unencrypted PEM private key ({e}); encrypted keys are not supported"
        ))
    })
}
