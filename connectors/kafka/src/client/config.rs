//! The Kafka properties this client honours, parsed once, with Kafka's defaults:
//! `security.protocol` PLAINTEXT, SSL (`tls`), SASL_PLAINTEXT or SASL_SSL (`sasl`, over `tls`
//! for SASL_SSL), bootstrap servers, timeouts, batching and compression. What it cannot honour
//! is refused with a [`KafkaError::Config`] naming the property; secrets (`sasl.jaas.config`,
//! passwords, private keys) are never printed ([`is_secret`]).

use super::sasl::SaslSettings;
use super::{ClientConfig, Result};
use crate::error::KafkaError;
use std::sync::Arc;
use std::time::Duration;

/// Compression of produced batches (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    None,
    Gzip,
    Snappy,
}

/// Parsed client settings.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `bootstrap.servers`, split.
    pub bootstrap: Vec<String>,
    /// `client.id` (default `fjord`).
    pub client_id: String,
    /// `request.timeout.ms` (default 30000): bound of every request and of its retries.
    pub request_timeout: Duration,
    /// `retry.backoff.ms` (default 100): first pause between retries (doubles, at most 1 s).
    pub retry_backoff: Duration,
    /// `batch.size` (default 16384 bytes).
    pub batch_size: usize,
    /// `linger.ms` (default 5, Kafka 4's default).
    pub linger: Duration,
    /// `transaction.timeout.ms` (default 60000).
    pub transaction_timeout_ms: i32,
    /// `max.block.ms` (default 60000): how long transactional initialisation and metadata
    /// waits of a producer may take.
    pub max_block: Duration,
    /// `compression.type` (default none).
    pub codec: Codec,
    /// `max.in.flight.requests.per.connection` (default 5, at most 5: the broker keeps the
    /// sequence numbers of 5 batches per producer for deduplication).
    pub max_in_flight: usize,
    /// TLS configuration when `security.protocol` is SSL or SASL_SSL.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL mechanism and credentials when `security.protocol` is SASL_PLAINTEXT or SASL_SSL
    /// (its `Debug` hides the password).
    pub sasl: Option<SaslSettings>,
}

impl Settings {
    /// Parses and validates `config`.
    pub fn parse(config: &ClientConfig) -> Result<Self> {
        let props = &config.properties;
        let get = |key: &str| props.get(key).map(|v| v.trim());
        let protocol = get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (None, None),
            "SSL" => (Some(super::tls::client_config(props)?), None),
            "SASL_PLAINTEXT" => (None, Some(super::sasl::settings(props)?)),
            "SASL_SSL" => (
                Some(super::tls::client_config(props)?),
                Some(super::sasl::settings(props)?),
            ),
            _ => {
                return Err(KafkaError::Config(format!(
                    "security.protocol={protocol} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, \
                     SASL_SSL"
                )));
            }
        };
        if sasl.is_none() {
            let given: Vec<&str> = props
                .keys()
                .filter(|k| k.starts_with("sasl."))
                .map(String::as_str)
                .collect();
            if !given.is_empty() {
                return Err(KafkaError::Config(format!(
                    "{} given, but security.protocol={protocol} does not authenticate with SASL; \
                     set security.protocol=SASL_SSL (or SASL_PLAINTEXT) to use them, or remove them",
                    given.join(", ")
                )));
            }
        }
        let bootstrap_raw = get("bootstrap.servers").unwrap_or("");
        let bootstrap: Vec<String> = bootstrap_raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if bootstrap.is_empty() {
            return Err(KafkaError::Config(
                "bootstrap.servers is missing or empty; give host:port[,host:port...] of the brokers".into(),
            ));
        }
        for server in &bootstrap {
            let ok = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return Err(KafkaError::Config(format!(
                    "bootstrap.servers entry `{server}` is not host:port"
                )));
            }
        }
        let codec = match get("compression.type")
            .unwrap_or("none")
            .to_ascii_lowercase()
            .as_str()
        {
            "none" | "" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            other => {
                return Err(KafkaError::Config(format!(
                    "compression.type={other} is not supported by this pure-Rust client; use none, gzip or snappy"
                )));
            }
        };
        Ok(Settings {
            bootstrap,
            client_id: get("client.id").unwrap_or("fjord").to_string(),
            request_timeout: millis(props, "request.timeout.ms", 30_000, 1)?,
            retry_backoff: millis(props, "retry.backoff.ms", 100, 0)?,
            batch_size: number(props, "batch.size", 16_384, 1)? as usize,
            linger: millis(props, "linger.ms", 5, 0)?,
            transaction_timeout_ms: number(props, "transaction.timeout.ms", 60_000, 1)? as i32,
            max_block: millis(props, "max.block.ms", 60_000, 0)?,
            codec,
            max_in_flight: number(props, "max.in.flight.requests.per.connection", 5, 1)?.min(5)
                as usize,
            tls,
            sasl,
        })
    }
}

/// A non-negative integer property (at least `min`), or `default`.
pub(crate) fn number(
    props: &std::collections::BTreeMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
) -> Result<i64> {
    match props.get(key).map(|v| v.trim()) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= min && n <= i64::from(i32::MAX) => Ok(n),
            _ => Err(KafkaError::Config(format!(
                "{key}={v} is not an integer between {min} and {}",
                i32::MAX
            ))),
        },
    }
}

/// Whether the value of property `key` is a secret that `Debug` output and errors must not show
/// (Kafka's `PASSWORD`-typed configurations: `sasl.jaas.config`, `ssl.keystore.key`, the
/// `*.password` ones, and anything named like a secret).
pub(crate) fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "sasl.jaas.config"
        || key == "ssl.keystore.key"
        || key.contains("password")
        || key.contains("secret")
}

fn millis(
    props: &std::collections::BTreeMap<String, String>,
    key: &str,
    default: i64,
    min: i64,
) -> Result<Duration> {
    Ok(Duration::from_millis(
        number(props, key, default, min)? as u64
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ClientConfig {
        ClientConfig {
            properties: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn defaults_are_kafkas() {
        let s = Settings::parse(&config(&[("bootstrap.servers", "a:9092, b:9093")])).unwrap();
        assert_eq!(s.bootstrap, vec!["a:9092", "b:9093"]);
        assert_eq!(s.batch_size, 16_384);
        assert_eq!(s.linger, Duration::from_millis(5));
        assert_eq!(s.request_timeout, Duration::from_secs(30));
        assert_eq!(s.transaction_timeout_ms, 60_000);
        assert_eq!(s.codec, Codec::None);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let err = |pairs: &[(&str, &str)]| Settings::parse(&config(pairs)).unwrap_err().to_string();
        assert!(
            err(&[
                ("bootstrap.servers", "a:1"),
                ("security.protocol", "SASL_SSL")
            ])
            .contains("sasl.mechanism is not set")
        );
        assert!(
            err(&[
                ("bootstrap.servers", "a:1"),
                ("security.protocol", "KERBEROS")
            ])
            .contains("not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")
        );
        let ssl = |k, v| {
            err(&[
                ("bootstrap.servers", "a:1"),
                ("security.protocol", "SSL"),
                (k, v),
            ])
        };
        assert!(ssl("ssl.truststore.type", "JKS").contains("PEM"));
        assert!(ssl("ssl.truststore.location", "/nonexistent.pem").contains("/nonexistent.pem"));
        assert!(ssl("ssl.key.password", "secret").contains("unencrypted"));
        let tls = Settings::parse(&config(&[
            ("bootstrap.servers", "a:1"),
            ("security.protocol", "SSL"),
        ]));
        assert!(tls.unwrap().tls.is_some());
        let e = err(&[("bootstrap.servers", "a:1"), ("sasl.mechanism", "PLAIN")]);
        assert!(
            e.contains("sasl.mechanism given") && e.contains("security.protocol=SASL_SSL"),
            "{e}"
        );
        assert!(err(&[]).contains("bootstrap.servers"));
        assert!(err(&[("bootstrap.servers", "nohost")]).contains("not host:port"));
        assert!(
            err(&[("bootstrap.servers", "a:1"), ("compression.type", "zstd")]).contains("zstd")
        );
        assert!(
            err(&[("bootstrap.servers", "a:1"), ("linger.ms", "soon")]).contains("linger.ms=soon")
        );
        assert!(
            Settings::parse(&config(&[
                ("bootstrap.servers", "a:1"),
                ("security.protocol", "plaintext")
            ]))
            .is_ok()
        );
    }

    #[test]
    fn sasl_over_plaintext_and_tls() {
        const JAAS: &str = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";"#;
        let parse = |protocol| {
            Settings::parse(&config(&[
                ("bootstrap.servers", "a:1"),
                ("security.protocol", protocol),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.jaas.config", JAAS),
            ]))
            .unwrap()
        };
        let plain = parse("SASL_PLAINTEXT");
        assert!(plain.tls.is_none());
        assert_eq!(plain.sasl.as_ref().unwrap().username, "alice");
        let tls = parse("sasl_ssl");
        assert!(tls.tls.is_some() && tls.sasl.is_some());
        let debug = format!("{tls:?}");
        assert!(
            debug.contains("alice") && !debug.contains("alice-secret"),
            "{debug}"
        );
    }

    #[test]
    fn debug_of_a_client_config_hides_secrets() {
        let c = config(&[
            ("bootstrap.servers", "a:1"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#,
            ),
            ("ssl.keystore.key", "-----BEGIN PRIVATE KEY-----xyz"),
            ("ssl.truststore.password", "changeit"),
        ]);
        let debug = format!("{c:?}");
        for secret in ["alice-secret", "PRIVATE KEY", "changeit"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(
            debug.contains("a:1") && debug.contains("sasl.jaas.config"),
            "{debug}"
        );
    }
}
