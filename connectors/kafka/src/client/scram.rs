//! The client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka's
//! `ScramSaslClient` speaks it: no channel binding (`n,,`), user names with `=` and `,` escaped,
//! at least 4096 iterations, and the server's signature checked, so a broker that does not know
//! the password cannot pass for one that does.
//!
//! Pure: the messages go over the wire in `sasl`. Errors are plain sentences (without the
//! password) that `sasl` turns into [`KafkaError::Authentication`](crate::KafkaError).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// Kafka's `ScramMechanism.minIterations()`: a server asking fewer is refused.
const MIN_ITERATIONS: u32 = 4096;
/// A bound against a server that would keep the client hashing for minutes (Kafka stores at
/// most 16384).
const MAX_ITERATIONS: u32 = 1_000_000;

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            ScramHash::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha256 => hmac::HMAC_SHA256,
            ScramHash::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha256 => &digest::SHA256,
            ScramHash::Sha512 => &digest::SHA512,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac_algorithm(), key), data)
            .as_ref()
            .to_vec()
    }
}

/// One SCRAM exchange: [`client_first`](Self::client_first), then
/// [`client_final`](Self::client_final) with the server's first message, then
/// [`verify_server_final`](Self::verify_server_final) with its last.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: String,
    nonce: String,
    client_first_bare: String,
    /// What the server must send back in `v=`, known once the final message is built.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// An exchange for `username` with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Result<Self, String> {
        let mut bytes = [0u8; 24];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| "the system random generator failed".to_string())?;
        Ok(Self::with_nonce(
            hash,
            username,
            password,
            BASE64.encode(bytes),
        ))
    }

    /// An exchange with a given client nonce (printable, without `,`): tests use RFC 7677's.
    pub fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: String) -> Self {
        let name = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: password.to_string(),
            client_first_bare: format!("n={name},r={nonce}"),
            nonce,
            server_signature: None,
        }
    }

    /// The client-first message (`n,,n=user,r=nonce`).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message with the proof, for the server-first message `server_first`
    /// (`r=nonce,s=salt,i=iterations`).
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for (i, attribute) in server_first.split(',').enumerate() {
            let (key, value) = attribute.split_once('=').ok_or_else(|| {
                format!(
                    "the server's first message is malformed (attribute {})",
                    i + 1
                )
            })?;
            match key {
                "m" => {
                    return Err(
                        "the server requires a SCRAM extension this client does not know".into(),
                    );
                }
                "e" => return Err(format!("the server refused: {value}")),
                "r" => nonce = Some(value),
                "s" => salt = Some(value),
                "i" => iterations = Some(value),
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(
                "the server's first message lacks its nonce, salt or iteration count".into(),
            );
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("the server's nonce does not extend the client's".into());
        }
        let salt = BASE64
            .decode(salt)
            .map_err(|_| "the server's salt is not base64".to_string())?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| "the server's iteration count is not a number".to_string())?;
        if iterations < MIN_ITERATIONS {
            return Err(format!(
                "the server asks for {iterations} iterations, fewer than {MIN_ITERATIONS} \
                 ({} requires at least that many)",
                self.hash.mechanism()
            ));
        }
        if iterations > MAX_ITERATIONS {
            return Err(format!(
                "the server asks for {iterations} iterations, more than this client does ({MAX_ITERATIONS})"
            ));
        }
        let h = self.hash;
        let mut salted = vec![0u8; h.digest().output_len()];
        pbkdf2::derive(
            h.pbkdf2(),
            NonZeroU32::new(iterations).expect("at least MIN_ITERATIONS"),
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = digest::digest(h.digest(), &client_key);
        // "biws" is base64("n,,"): no channel binding, no authorisation id.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = h.hmac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.server_signature = Some(h.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)))
    }

    /// Checks the server-final message (`v=signature`): the server proved it knows the
    /// password's salted form.
    pub fn verify_server_final(&self, server_final: &str) -> Result<(), String> {
        let Some(expected) = &self.server_signature else {
            return Err("the server's final message came before the client's".into());
        };
        let mut signature = None;
        for attribute in server_final.split(',') {
            match attribute.split_once('=') {
                Some(("e", error)) => return Err(format!("the server refused: {error}")),
                Some(("v", v)) => signature = Some(v),
                _ => {}
            }
        }
        let signature = signature
            .ok_or_else(|| "the server's final message carries no signature".to_string())?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| "the server's signature is not base64".to_string())?;
        if !same(&signature, expected) {
            return Err(
                "the server's signature is wrong: it does not know this user's credentials \
                 (a broker that is not the one configured?)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Equality in time independent of where the bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    #[test]
    fn rfc_7677_test_vector() {
        let mut c = ScramClient::with_nonce(
            ScramHash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = c
            .client_final(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let err = c
            .verify_server_final("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(err.contains("signature is wrong"), "{err}");
        assert!(
            c.verify_server_final("e=invalid-proof")
                .unwrap_err()
                .contains("invalid-proof")
        );
    }

    /// SCRAM-SHA-512 against a server computed here from RFC 5802's definitions (the broker
    /// tests check it against Kafka itself).
    #[test]
    fn sha_512_proof_and_signature_follow_rfc_5802() {
        let (password, salt, iterations) = ("pencil", b"0123456789abcdef", 4096u32);
        let mut c = ScramClient::with_nonce(ScramHash::Sha512, "u,=v", password, "abc".into());
        assert_eq!(c.client_first(), "n,,n=u=2C=3Dv,r=abc");
        let server_first = format!("r=abcdef,s={},i={iterations}", BASE64.encode(salt));
        let last = c.client_final(&server_first).unwrap();
        // The server side: verify the proof with the stored key, sign with the server key.
        let h = ScramHash::Sha512;
        let mut salted = vec![0u8; 64];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA512,
            NonZeroU32::new(iterations).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let stored = digest::digest(&digest::SHA512, &h.hmac(&salted, b"Client Key"));
        let (without_proof, proof) = last.rsplit_once(",p=").unwrap();
        assert_eq!(without_proof, "c=biws,r=abcdef");
        let auth = format!("n=u=2C=3Dv,r=abc,{server_first},{without_proof}");
        let signature = h.hmac(stored.as_ref(), auth.as_bytes());
        let client_key: Vec<u8> = BASE64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(&signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(
            digest::digest(&digest::SHA512, &client_key).as_ref(),
            stored.as_ref()
        );
        let server = h.hmac(&h.hmac(&salted, b"Server Key"), auth.as_bytes());
        c.verify_server_final(&format!("v={}", BASE64.encode(server)))
            .unwrap();
    }

    #[test]
    fn refuses_servers_that_break_the_protocol() {
        let first = |s: &str| {
            ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "abc".into())
                .client_final(s)
                .unwrap_err()
        };
        assert!(first("r=xyz,s=AAAA,i=4096").contains("nonce"));
        assert!(first("r=abc,s=AAAA,i=4096").contains("nonce"));
        assert!(first("r=abcd,s=AAAA,i=1024").contains("fewer than 4096"));
        assert!(first("r=abcd,s=AAAA").contains("iteration"));
        assert!(first("m=ext,r=abcd,s=AAAA,i=4096").contains("extension"));
        assert!(first("r=abcd,s=!!,i=4096").contains("base64"));
        let c = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        assert!(
            c.verify_server_final("v=AAAA")
                .unwrap_err()
                .contains("before")
        );
        // Fresh nonces.
        let other = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        assert_ne!(c.client_first(), other.client_first());
    }
}
