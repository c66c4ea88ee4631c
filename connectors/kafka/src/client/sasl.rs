//! SASL authentication (`security.protocol=SASL_PLAINTEXT` or `SASL_SSL`) as Kafka's Java
//! client does it: the mechanism from `sasl.mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
//! the credentials from `sasl.jaas.config` (`jaas`), and on every new connection, right after
//! ApiVersions, a SaslHandshake (v1) naming the mechanism and SaslAuthenticate requests carrying
//! its messages (`scram` for SCRAM).
//!
//! A failure is a [`KafkaError::Authentication`] naming the broker, the mechanism and the
//! broker's message; it is not retriable, so no retry loop hides it. The password is kept out of
//! every `Debug` output and error.

use super::Result;
use super::connection::Connection;
use super::jaas;
use super::scram::{ScramClient, ScramHash};
use crate::error::{KafkaError, code_name};
use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// Kafka's `UNSUPPORTED_SASL_MECHANISM`.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
/// Kafka's `ILLEGAL_SASL_STATE` (also the answer of a listener that does not speak SASL).
const ILLEGAL_SASL_STATE: i16 = 34;

/// Kafka's `SASL_AUTHENTICATION_FAILED`: the credentials were refused.
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// The mechanisms this client implements, as `sasl.mechanism` names them.
const SUPPORTED: &str = "PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512";

/// A SASL mechanism this client implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// PLAIN (RFC 4616): user name and password in the clear (use it over SASL_SSL).
    Plain,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    Scram(ScramHash),
}

impl Mechanism {
    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(hash) => hash.mechanism(),
        }
    }

    /// The Kafka login module whose options carry this mechanism's credentials.
    fn login_module(self) -> &'static str {
        match self {
            Mechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
            Mechanism::Scram(_) => "org.apache.kafka.common.security.scram.ScramLoginModule",
        }
    }
}

/// The mechanism and credentials of a SASL client.
#[derive(Clone)]
pub(crate) struct SaslSettings {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The user name (`username` of the login module).
    pub username: String,
    /// The password (`password` of the login module); never printed.
    password: String,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"[hidden]")
            .finish()
    }
}

/// Reads `sasl.mechanism` and `sasl.jaas.config` (called when `security.protocol` is
/// `SASL_PLAINTEXT` or `SASL_SSL`).
///
/// Errors: [`KafkaError::Config`] naming the property when the mechanism is not one of PLAIN,
/// SCRAM-SHA-256, SCRAM-SHA-512 (Kafka's default, GSSAPI, included), when `sasl.jaas.config`
/// is missing or malformed, names another login module than the mechanism's, or lacks
/// `username` or `password`, and for the Java callback-handler properties.
pub(crate) fn settings(props: &BTreeMap<String, String>) -> Result<SaslSettings> {
    let get = |k: &str| props.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    for key in [
        "sasl.client.callback.handler.class",
        "sasl.login.callback.handler.class",
        "sasl.login.class",
    ] {
        if get(key).is_some() {
            return Err(config(format!(
                "{key} is not supported: this client loads no Java classes; give the credentials \
                 in sasl.jaas.config (mechanisms {SUPPORTED})"
            )));
        }
    }
    let mechanism = match get("sasl.mechanism") {
        Some(m) if m.eq_ignore_ascii_case("PLAIN") => Mechanism::Plain,
        Some(m) if m.eq_ignore_ascii_case("SCRAM-SHA-256") => Mechanism::Scram(ScramHash::Sha256),
        Some(m) if m.eq_ignore_ascii_case("SCRAM-SHA-512") => Mechanism::Scram(ScramHash::Sha512),
        None => {
            return Err(config(format!(
                "sasl.mechanism is not set, and Kafka's default GSSAPI (Kerberos) is not supported \
                 by this client; set sasl.mechanism to one of {SUPPORTED}"
            )));
        }
        Some(m) => {
            let what = if m.eq_ignore_ascii_case("GSSAPI") {
                " (Kerberos)"
            } else if m.eq_ignore_ascii_case("OAUTHBEARER") {
                " (OAuth 2 tokens)"
            } else {
                ""
            };
            return Err(config(format!(
                "sasl.mechanism={m}{what} is not supported; this client implements {SUPPORTED}"
            )));
        }
    };
    let want = mechanism.login_module();
    let Some(text) = get("sasl.jaas.config") else {
        return Err(config(format!(
            "sasl.jaas.config is missing; sasl.mechanism={} takes \
             `{want} required username=\"...\" password=\"...\";`",
            mechanism.name()
        )));
    };
    let module = jaas::parse(text).map_err(|e| config(format!("sasl.jaas.config: {e}")))?;
    // Flink's SQL connector jar relocates Kafka's classes (org.apache.flink.kafka.shaded.org...),
    // so a relocated name is the same module.
    if module.class != want && !module.class.ends_with(&format!(".{want}")) {
        return Err(config(format!(
            "sasl.jaas.config names the login module {}, but sasl.mechanism={} takes {want}",
            module.class,
            mechanism.name()
        )));
    }
    if module.options.contains_key("tokenauth") {
        return Err(config(
            "sasl.jaas.config: tokenauth (delegation tokens) is not supported by this client"
                .to_string(),
        ));
    }
    let option = |name: &str| {
        module.options.get(name).cloned().ok_or_else(|| {
            config(format!(
                "sasl.jaas.config has no {name}=\"...\" option; {want} takes username and password"
            ))
        })
    };
    Ok(SaslSettings {
        mechanism,
        username: option("username")?,
        password: option("password")?,
    })
}

fn config(message: String) -> KafkaError {
    KafkaError::Config(message)
}

/// Authenticates `conn` (just opened, API versions known) with `sasl`.
///
/// Errors: [`KafkaError::Authentication`] when the listener does not enable the mechanism or
/// does not speak SASL, when the broker refuses the credentials (its message included), or when
/// a SCRAM server cannot prove it knows them; I/O and protocol errors as for any request.
pub(crate) fn authenticate(conn: &mut Connection, sasl: &SaslSettings) -> Result<()> {
    let mechanism = sasl.mechanism.name();
    let broker = conn.addr().to_string();
    let failed = |message: String| KafkaError::Authentication {
        broker: broker.clone(),
        mechanism,
        message,
    };
    let not_sasl = "the listener does not expect SASL authentication (a PLAINTEXT or SSL \
                    listener?); check that security.protocol matches the listener \
                    bootstrap.servers points at";
    // v1: the tokens travel in SaslAuthenticate requests (v0 would send them raw).
    let version = conn
        .version::<SaslHandshakeRequest>(&(1..=1))
        .map_err(|e| failed(format!("{e}; {not_sasl}")))?;
    let mut handshake = SaslHandshakeRequest::default();
    handshake.mechanism = StrBytes::from_static_str(mechanism);
    let response = conn.call(&handshake, version, Duration::ZERO)?;
    match response.error_code {
        0 => {}
        UNSUPPORTED_SASL_MECHANISM => {
            let enabled: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(format!(
                "the listener does not enable {mechanism} (it enables {}); set sasl.mechanism to \
                 one of them, or enable {mechanism} on the broker (sasl.enabled.mechanisms)",
                if enabled.is_empty() {
                    "none".to_string()
                } else {
                    enabled.join(", ")
                }
            )));
        }
        ILLEGAL_SASL_STATE => return Err(failed(not_sasl.to_string())),
        code => return Err(failed(format!("SaslHandshake failed: {}", code_name(code)))),
    }
    let version = conn.version::<SaslAuthenticateRequest>(&(0..=2))?;
    // Set by the broker's last answer when it limits sessions (connections.max.reauth.ms).
    let mut session_lifetime_ms = 0;
    let mut round = |token: Vec<u8>| -> Result<Bytes> {
        let mut request = SaslAuthenticateRequest::default();
        request.auth_bytes = Bytes::from(token);
        let response: SaslAuthenticateResponse = conn.call(&request, version, Duration::ZERO)?;
        if response.error_code != 0 {
            let said = response
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| code_name(response.error_code));
            if response.error_code != SASL_AUTHENTICATION_FAILED {
                return Err(failed(said));
            }
            let user = &sasl.username;
            return Err(failed(format!(
                "{said}; check the username and password in sasl.jaas.config{}",
                match sasl.mechanism {
                    Mechanism::Plain => String::new(),
                    Mechanism::Scram(_) => format!(
                        ", and that user {user} has {mechanism} credentials on the cluster \
                         (kafka-configs.sh --alter --add-config '{mechanism}=[password=...]' \
                         --entity-type users --entity-name {user})"
                    ),
                }
            )));
        }
        session_lifetime_ms = response.session_lifetime_ms;
        Ok(response.auth_bytes)
    };
    match sasl.mechanism {
        Mechanism::Plain => {
            // RFC 4616: authorisation id (empty: the user's own), user name, password.
            let mut token = Vec::with_capacity(2 + sasl.username.len() + sasl.password.len());
            token.push(0);
            token.extend_from_slice(sasl.username.as_bytes());
            token.push(0);
            token.extend_from_slice(sasl.password.as_bytes());
            round(token)?;
        }
        Mechanism::Scram(hash) => {
            let mut scram =
                ScramClient::new(hash, &sasl.username, &sasl.password).map_err(&failed)?;
            let server_first = round(scram.client_first().into_bytes())?;
            let server_first = std::str::from_utf8(&server_first)
                .map_err(|_| failed("the server's first SCRAM message is not UTF-8".into()))?;
            let client_final = scram.client_final(server_first).map_err(&failed)?;
            let server_final = round(client_final.into_bytes())?;
            let server_final = std::str::from_utf8(&server_final)
                .map_err(|_| failed("the server's final SCRAM message is not UTF-8".into()))?;
            scram.verify_server_final(server_final).map_err(&failed)?;
        }
    }
    // No re-authentication in place (KIP-368): when the session ends, the broker closes the
    // connection at its next use and the request is retried on a new connection.
    tracing::debug!(
        broker = %conn.addr(),
        mechanism,
        user = %sasl.username,
        session_lifetime_ms,
        "SASL authenticated"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const PLAIN: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#;
    const SCRAM: &str = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="bob-secret";"#;

    #[test]
    fn reads_mechanism_and_credentials() {
        let s = settings(&props(&[
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", PLAIN),
        ]))
        .unwrap();
        assert_eq!(s.mechanism, Mechanism::Plain);
        assert_eq!(
            (s.username.as_str(), s.password.as_str()),
            ("alice", "alice-secret")
        );
        let debug = format!("{s:?}");
        assert!(
            debug.contains("alice") && !debug.contains("alice-secret"),
            "{debug}"
        );
        for (m, hash) in [
            ("SCRAM-SHA-256", ScramHash::Sha256),
            ("scram-sha-512", ScramHash::Sha512),
        ] {
            let s = settings(&props(&[
                ("sasl.mechanism", m),
                ("sasl.jaas.config", SCRAM),
            ]))
            .unwrap();
            assert_eq!(s.mechanism, Mechanism::Scram(hash));
        }
        // Flink's SQL connector jar relocates the Kafka classes.
        let shaded = SCRAM.replace(
            "org.apache.kafka",
            "org.apache.flink.kafka.shaded.org.apache.kafka",
        );
        assert!(
            settings(&props(&[
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.jaas.config", &shaded)
            ]))
            .is_ok()
        );
    }

    #[test]
    fn explains_what_it_cannot_use() {
        let err = |pairs: &[(&str, &str)]| settings(&props(pairs)).unwrap_err().to_string();
        let e = err(&[("sasl.jaas.config", PLAIN)]);
        assert!(
            e.contains("sasl.mechanism is not set") && e.contains("GSSAPI"),
            "{e}"
        );
        for (m, what) in [
            ("GSSAPI", "Kerberos"),
            ("OAUTHBEARER", "OAuth"),
            ("DIGEST-MD5", ""),
        ] {
            let e = err(&[("sasl.mechanism", m), ("sasl.jaas.config", PLAIN)]);
            assert!(
                e.contains(&format!("sasl.mechanism={m}"))
                    && e.contains(what)
                    && e.contains("PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"),
                "{e}"
            );
        }
        let e = err(&[("sasl.mechanism", "PLAIN")]);
        assert!(
            e.contains("sasl.jaas.config is missing") && e.contains("PlainLoginModule"),
            "{e}"
        );
        let e = err(&[
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", PLAIN),
        ]);
        assert!(
            e.contains(
                "names the login module org.apache.kafka.common.security.plain.PlainLoginModule"
            ) && e.contains("takes org.apache.kafka.common.security.scram.ScramLoginModule")
                && !e.contains("alice-secret"),
            "{e}"
        );
        let e = err(&[
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\"",
            ),
        ]);
        assert!(
            e.contains("sasl.jaas.config: ") && e.contains("`;`") && !e.contains("alice-secret"),
            "{e}"
        );
        let e = err(&[
            ("sasl.mechanism", "PLAIN"),
            (
                "sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\";",
            ),
        ]);
        assert!(e.contains("no password="), "{e}");
        let e = err(&[
            ("sasl.mechanism", "PLAIN"),
            ("sasl.jaas.config", PLAIN),
            ("sasl.login.callback.handler.class", "com.example.Handler"),
        ]);
        assert!(e.contains("sasl.login.callback.handler.class"), "{e}");
    }
}
