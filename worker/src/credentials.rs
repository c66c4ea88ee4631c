//! The start-up check of S3 credentials: a Pod whose storage is `s3://` must not start with
//! half a key pair, or with none when its StreamJob names a credentials Secret. Without it the
//! S3 client falls back to the instance metadata service (169.254.169.254) and the job fails
//! minutes later with a 403 from an address the user never configured.

use crate::WorkerError;

/// The environment variable the operator sets to the name of the Secret in
/// `spec.storageCredentials`.
pub const SECRET_ENV: &str = "FJORD_STORAGE_CREDENTIALS";

/// Checks the S3 keys for a process whose storage is `s3` (`None` when it does not know, as a
/// TaskManager). `lookup` reads a storage option key or, failing that, environment variables
/// (as the storage client does).
///
/// # Errors
/// [`WorkerError::Config`] naming the Secret (from [`SECRET_ENV`]) and the missing key when
/// exactly one of the access key and the secret key is given, or when the storage is S3, a
/// Secret is named and neither is given.
pub fn check(
    s3: Option<bool>,
    lookup: impl Fn(&str, &str) -> Option<String>,
) -> Result<(), WorkerError> {
    let access = lookup("s3.access-key", "AWS_ACCESS_KEY_ID").is_some();
    let secret = lookup("s3.secret-key", "AWS_SECRET_ACCESS_KEY").is_some();
    let from = match lookup("", SECRET_ENV) {
        Some(name) => format!("the Secret {name} (spec.storageCredentials)"),
        None => "the environment or the configuration".to_string(),
    };
    let missing: Vec<&str> = match (access, secret) {
        (true, true) => return Ok(()),
        (true, false) => vec!["AWS_SECRET_ACCESS_KEY (s3.secret-key)"],
        (false, true) => vec!["AWS_ACCESS_KEY_ID (s3.access-key)"],
        (false, false) if s3 == Some(true) && lookup("", SECRET_ENV).is_some() => vec![
            "AWS_ACCESS_KEY_ID (s3.access-key)",
            "AWS_SECRET_ACCESS_KEY (s3.secret-key)",
        ],
        (false, false) => return Ok(()),
    };
    Err(WorkerError::Config(format!(
        "S3 credentials are incomplete: {from} gives no {}; without both keys the S3 client would \
         fall back to the instance metadata service (169.254.169.254) and fail later. Add the \
         missing key to {from}",
        missing.join(" and no ")
    )))
}

/// [`check`] on this process's environment and `options` (the `s3.*` configuration keys).
///
/// # Errors
/// As [`check`].
pub fn check_env(
    s3: Option<bool>,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<(), WorkerError> {
    check(s3, |key, env| {
        options
            .get(key)
            .cloned()
            .or_else(|| std::env::var(env).ok())
            .filter(|v| !v.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> impl Fn(&str, &str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |_key, env| vars.iter().find(|(k, _)| k == env).map(|(_, v)| v.clone())
    }

    #[test]
    fn both_keys_or_no_secret_pass() {
        let both = with(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")]);
        assert!(check(Some(true), both).is_ok());
        // No Secret named: instance credentials (IAM roles) are the user's choice.
        assert!(check(Some(true), with(&[])).is_ok());
        assert!(check(Some(false), with(&[(SECRET_ENV, "creds")])).is_ok());
        assert!(check(None, with(&[(SECRET_ENV, "creds")])).is_ok());
    }

    #[test]
    fn a_missing_key_is_named_with_the_secret() {
        let e = check(
            None,
            with(&[
                (SECRET_ENV, "minio-credentials"),
                ("AWS_ACCESS_KEY_ID", "a"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("the Secret minio-credentials"), "{e}");
        assert!(e.contains("no AWS_SECRET_ACCESS_KEY"), "{e}");
        assert!(e.contains("169.254.169.254"), "{e}");
        let e = check(Some(true), with(&[(SECRET_ENV, "minio-credentials")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no AWS_ACCESS_KEY_ID (s3.access-key) and no AWS_SECRET_ACCESS_KEY"),
            "{e}"
        );
    }
}
