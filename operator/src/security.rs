//! `spec.security`: what the operator adds to a StreamJob's cluster for mutual TLS and REST
//! authentication, and the Secrets it keeps for them.
//!
//! - Pure parts, used by [`crate::resources`]: the configuration keys (`security.ssl.internal.*`,
//!   `security.rest.token-file`), the Secret volumes and where they are mounted.
//! - [`ensure`] and [`rest_token`] talk to the Kubernetes API (like [`crate::controller`], which
//!   calls them): they create the StreamJob's CA Secret `<name>-ca` (keys `ca.crt`, `ca.key`),
//!   its certificate Secret `<name>-tls` (`tls.crt`, `tls.key`, `ca.crt`, the cert-manager
//!   layout, re-issued when it expires within [`certificates::RENEW_BEFORE`]) and its token
//!   Secret `<name>-rest-token` (`token`), all owned by the StreamJob. Secret values never go
//!   into logs, events, status or a ConfigMap.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use fjord_crds::{StreamJob, StreamJobSpec};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, SecretVolumeSource, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use tracing::info;

use crate::ca_rotation::{self, Ca, CaState, LeafState, Phase, Step, Timing};
use crate::certificates::{self, Issued};
use crate::jobmanager::JobManagerEndpoint;
use crate::resources::{Component, labels};
use crate::{Error, FIELD_MANAGER};

/// What the security Secrets belong to: a StreamJob or a StreamCluster (its name, namespace and
/// the controller owner reference the Secrets carry, so they go with it).
#[derive(Debug, Clone)]
pub struct SecretOwner {
    name: String,
    namespace: String,
    reference: OwnerReference,
}

impl SecretOwner {
    /// The owner `object` (a StreamJob or StreamCluster).
    ///
    /// # Errors
    /// [`Error::MissingMetadata`] without a namespace or uid.
    pub fn of<K: Resource<DynamicType = ()>>(object: &K) -> Result<Self, Error> {
        Ok(SecretOwner {
            name: object.meta().name.clone().unwrap_or_default(),
            namespace: object
                .meta()
                .namespace
                .clone()
                .ok_or(Error::MissingMetadata("metadata.namespace"))?,
            reference: object
                .controller_owner_ref(&())
                .ok_or(Error::MissingMetadata("metadata.uid"))?,
        })
    }
}

/// Where the TLS Secret is mounted in every Pod (`security.ssl.internal.dir`).
pub const TLS_DIR: &str = "/etc/fjord-tls";
/// Where the token Secret is mounted in the JobManager Pod.
pub const TOKEN_DIR: &str = "/etc/fjord-rest-token";
/// The key of the token in its Secret (and the file name in [`TOKEN_DIR`]).
pub const TOKEN_KEY: &str = "token";
/// Annotation on the certificate Secret the operator issues: when its certificate expires
/// (RFC 3339), so rotation needs no certificate parsing. Also on the CA Secret, for the CA.
pub const NOT_AFTER_ANNOTATION: &str = "fjord.dev/not-after";
/// Annotation on the certificate Secret: the fingerprint ([`ca_rotation::fingerprint`]) of the
/// CA that signed its leaf.
pub const ISSUER_ANNOTATION: &str = "fjord.dev/issuer";
/// Annotation on the CA Secret: the phase of a CA rotation (`trusting`, `switched`; absent:
/// none under way).
pub const ROTATION_ANNOTATION: &str = "fjord.dev/ca-rotation";
/// Annotation on the CA Secret: when the rotation's phase began (RFC 3339).
pub const ROTATION_SINCE_ANNOTATION: &str = "fjord.dev/ca-rotation-since";
/// Annotation on the CA Secret: when the next CA expires (RFC 3339).
pub const NEXT_NOT_AFTER_ANNOTATION: &str = "fjord.dev/next-not-after";
/// Annotation on a StreamJob or StreamCluster asking for a CA rotation now: any new value
/// (a date, a ticket number) starts one, which then runs its steps as a due CA's does
/// (docs/security.md, "Rotating the CA").
pub const ROTATE_CA_ANNOTATION: &str = "fjord.dev/rotate-ca";
/// Annotation on the CA Secret: the last value of [`ROTATE_CA_ANNOTATION`] a rotation answered.
pub const ROTATION_REQUEST_ANNOTATION: &str = "fjord.dev/ca-rotation-request";
/// Keys of the next CA in the CA Secret during a rotation.
const NEXT_CA_CERT: &str = "next-ca.crt";
const NEXT_CA_KEY: &str = "next-ca.key";

const TLS_VOLUME: &str = "fjord-tls";
const TOKEN_VOLUME: &str = "fjord-rest-token";

/// Name of the Secret with the CA the operator issued for StreamJob `job`.
pub fn ca_secret_name(job: &str) -> String {
    format!("{job}-ca")
}

/// Name of the Secret with the certificate the operator issues for StreamJob `job`.
pub fn issued_tls_secret_name(job: &str) -> String {
    format!("{job}-tls")
}

/// Name of the Secret with the REST token of StreamJob `job`.
pub fn token_secret_name(job: &str) -> String {
    format!("{job}-rest-token")
}

/// The Secret mounted for mutual TLS (the user's `tls.secretName` or the issued one), if on.
pub fn tls_secret(job: &str, spec: &StreamJobSpec) -> Option<String> {
    let tls = spec.security.as_ref()?.tls.as_ref().filter(|t| t.enabled)?;
    Some(
        tls.secret_name
            .clone()
            .unwrap_or_else(|| issued_tls_secret_name(job)),
    )
}

fn rest_auth(spec: &StreamJobSpec) -> bool {
    spec.security
        .as_ref()
        .is_some_and(|s| s.rest_auth_enabled())
}

/// Whether `spec` serves the REST API over HTTPS (`spec.security.tls.rest`).
pub fn rest_tls(spec: &StreamJobSpec) -> bool {
    spec.security.as_ref().is_some_and(|s| s.rest_tls_enabled())
}

/// The configuration keys `spec.security` sets (both roles read the same ConfigMap).
pub fn configuration(name: &str, spec: &StreamJobSpec) -> Vec<(&'static str, String)> {
    let mut c = Vec::new();
    if tls_secret(name, spec).is_some() {
        c.push(("security.ssl.internal.enabled", "true".to_string()));
        c.push(("security.ssl.internal.dir", TLS_DIR.to_string()));
        if rest_tls(spec) {
            c.push(("security.ssl.rest.enabled", "true".to_string()));
            c.push(("security.ssl.rest.dir", TLS_DIR.to_string()));
        }
    }
    if rest_auth(spec) {
        c.push((
            "security.rest.token-file",
            format!("{TOKEN_DIR}/{TOKEN_KEY}"),
        ));
    }
    c
}

/// The Secret volumes and mounts of `component`'s Pods: the TLS Secret in both, the token
/// Secret in the JobManager only.
pub fn volumes(
    name: &str,
    spec: &StreamJobSpec,
    component: Component,
) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    let mut add = |volume: &str, secret: String, dir: &str| {
        volumes.push(Volume {
            name: volume.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret),
                optional: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: volume.into(),
            mount_path: dir.into(),
            read_only: Some(true),
            ..Default::default()
        });
    };
    if let Some(secret) = tls_secret(name, spec) {
        add(TLS_VOLUME, secret, TLS_DIR);
    }
    if component == Component::JobManager && rest_auth(spec) {
        add(TOKEN_VOLUME, token_secret_name(name), TOKEN_DIR);
    }
    (volumes, mounts)
}

/// A new random REST token: 32 bytes from the system's secure generator, URL-safe base64.
///
/// # Errors
/// [`Error::Build`] if the system has no secure random source.
pub fn new_token(job: &str) -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).map_err(|_| {
        Error::Build {
            name: job.into(),
            object: "the REST token".into(),
            message: "the system's secure random generator failed".into(),
        }
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn secret_object(
    owner: &SecretOwner,
    secret_name: String,
    type_: &str,
    data: BTreeMap<String, Vec<u8>>,
    annotations: Option<BTreeMap<String, String>>,
) -> Result<Secret, Error> {
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(secret_name),
            namespace: Some(owner.namespace.clone()),
            labels: Some(labels(&owner.name, None)),
            annotations,
            owner_references: Some(vec![owner.reference.clone()]),
            ..Default::default()
        },
        type_: Some(type_.into()),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Default::default()
    })
}

/// The certificate Secret for `leaf`, signed by the CA whose certificate is `issuer_pem`,
/// publishing `bundle` as `ca.crt` (the issuer alone, or two CAs during a rotation).
///
/// # Errors
/// [`Error::MissingMetadata`] without a uid.
pub fn tls_secret_object(
    owner: &SecretOwner,
    bundle: &str,
    leaf: &Issued,
    issuer_pem: &str,
) -> Result<Secret, Error> {
    secret_object(
        owner,
        issued_tls_secret_name(&owner.name),
        "kubernetes.io/tls",
        BTreeMap::from([
            ("tls.crt".to_string(), leaf.cert_pem.clone().into_bytes()),
            ("tls.key".to_string(), leaf.key_pem.clone().into_bytes()),
            ("ca.crt".to_string(), bundle.as_bytes().to_vec()),
        ]),
        Some(BTreeMap::from([
            (NOT_AFTER_ANNOTATION.to_string(), leaf.not_after.to_string()),
            (
                ISSUER_ANNOTATION.to_string(),
                ca_rotation::fingerprint(issuer_pem),
            ),
        ])),
    )
}

fn value<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    secret
        .data
        .as_ref()?
        .get(key)
        .and_then(|b| std::str::from_utf8(&b.0).ok())
}

fn build_error(job: &str, object: &str, message: impl std::fmt::Display) -> Error {
    Error::Build {
        name: job.into(),
        object: object.into(),
        message: message.to_string(),
    }
}

fn annotation_time(secret: &Secret, key: &str) -> Option<Timestamp> {
    secret
        .annotations()
        .get(key)
        .and_then(|t| t.parse::<Timestamp>().ok())
}

/// What the certificate Secret holds, for the rotation's [`ca_rotation::plan`].
pub fn leaf_state(secret: &Secret) -> LeafState {
    LeafState {
        not_after: annotation_time(secret, NOT_AFTER_ANNOTATION),
        bundle: value(secret, "ca.crt").map(str::to_string),
        issuer: secret.annotations().get(ISSUER_ANNOTATION).cloned(),
        complete: value(secret, "tls.crt").is_some() && value(secret, "tls.key").is_some(),
    }
}

/// What the CA Secret records. A CA Secret from before its expiry was recorded expires
/// [`certificates::CA_VALIDITY`] after the Secret was created (the CA was issued then).
///
/// # Errors
/// A message naming what is missing (`ca.crt`, `ca.key`).
pub fn ca_state(secret: &Secret) -> Result<CaState, String> {
    let ca_name = secret.name_any();
    let (Some(cert), Some(key)) = (value(secret, "ca.crt"), value(secret, "ca.key")) else {
        return Err(format!(
            "Secret {ca_name} lacks ca.crt or ca.key: delete it and the operator issues a new CA"
        ));
    };
    let created = secret
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let not_after = annotation_time(secret, NOT_AFTER_ANNOTATION).unwrap_or_else(|| {
        created
            .checked_add(certificates::CA_VALIDITY)
            .unwrap_or(Timestamp::MAX)
    });
    let next = match (value(secret, NEXT_CA_CERT), value(secret, NEXT_CA_KEY)) {
        (Some(cert), Some(key)) => Some(Ca {
            cert_pem: cert.to_string(),
            key_pem: key.to_string(),
            not_after: annotation_time(secret, NEXT_NOT_AFTER_ANNOTATION).unwrap_or(Timestamp::MAX),
        }),
        _ => None,
    };
    let since = annotation_time(secret, ROTATION_SINCE_ANNOTATION);
    let phase = match (
        secret
            .annotations()
            .get(ROTATION_ANNOTATION)
            .map(String::as_str),
        since,
        &next,
    ) {
        (Some("trusting"), Some(since), Some(_)) => Phase::Trusting { since },
        (Some("switched"), Some(since), Some(_)) => Phase::Switched { since },
        // No rotation recorded, or a record that cannot be followed: start from Stable (a
        // rotation that is due starts again with a new next CA).
        _ => Phase::Stable,
    };
    Ok(CaState {
        current: Ca {
            cert_pem: cert.to_string(),
            key_pem: key.to_string(),
            not_after,
        },
        next: next.filter(|_| phase != Phase::Stable),
        phase,
        request: secret
            .annotations()
            .get(ROTATION_REQUEST_ANNOTATION)
            .cloned(),
    })
}

/// The data and annotations of the CA Secret recording `state`.
pub fn ca_record(state: &CaState) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, String>) {
    let mut data = BTreeMap::from([
        (
            "ca.crt".to_string(),
            state.current.cert_pem.clone().into_bytes(),
        ),
        (
            "ca.key".to_string(),
            state.current.key_pem.clone().into_bytes(),
        ),
    ]);
    let mut annotations = BTreeMap::from([(
        NOT_AFTER_ANNOTATION.to_string(),
        state.current.not_after.to_string(),
    )]);
    if let Some(request) = &state.request {
        annotations.insert(ROTATION_REQUEST_ANNOTATION.to_string(), request.clone());
    }
    let (phase, since) = match state.phase {
        Phase::Stable => (None, None),
        Phase::Trusting { since } => (Some("trusting"), Some(since)),
        Phase::Switched { since } => (Some("switched"), Some(since)),
    };
    if let (Some(phase), Some(since), Some(next)) = (phase, since, &state.next) {
        data.insert(NEXT_CA_CERT.to_string(), next.cert_pem.clone().into_bytes());
        data.insert(NEXT_CA_KEY.to_string(), next.key_pem.clone().into_bytes());
        annotations.insert(ROTATION_ANNOTATION.to_string(), phase.to_string());
        annotations.insert(ROTATION_SINCE_ANNOTATION.to_string(), since.to_string());
        annotations.insert(
            NEXT_NOT_AFTER_ANNOTATION.to_string(),
            next.not_after.to_string(),
        );
    }
    (data, annotations)
}

/// Writes `state` into the CA Secret `existing` (a replace: it fails if the Secret changed
/// since it was read, so two passes cannot both rotate).
async fn write_ca(api: &Api<Secret>, existing: &Secret, state: &CaState) -> Result<(), Error> {
    let name = existing.name_any();
    let (data, annotations) = ca_record(state);
    let mut secret = existing.clone();
    secret.data = Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect());
    let all = secret
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new);
    for key in [
        NOT_AFTER_ANNOTATION,
        ROTATION_ANNOTATION,
        ROTATION_SINCE_ANNOTATION,
        NEXT_NOT_AFTER_ANNOTATION,
        ROTATION_REQUEST_ANNOTATION,
    ] {
        all.remove(key);
    }
    all.extend(annotations);
    api.replace(&name, &PostParams::default(), &secret)
        .await
        .map_err(Error::kube(format!(
            "recording the CA rotation in Secret {name}"
        )))?;
    Ok(())
}

/// The certificate Secret and what the CA Secret records, before a pass.
struct Published<'a> {
    ca_secret: &'a Secret,
    state: &'a CaState,
    existing: Option<&'a Secret>,
}

/// Takes the one step [`ca_rotation::plan`] says for the CA Secret (recording the state) and
/// the certificate Secret of `published`, for the owner's rotation `request`: records the CA
/// state first, then publishes the certificate Secret. Returns the state recorded after it.
async fn rotate(
    api: &Api<Secret>,
    owner: &SecretOwner,
    published: Published<'_>,
    request: Option<&str>,
    now: Timestamp,
    timing: &Timing,
) -> Result<CaState, Error> {
    let Published {
        ca_secret,
        state,
        existing,
    } = published;
    let (name, ns) = (&owner.name, &owner.namespace);
    let leaf = existing.map(leaf_state);
    let step = ca_rotation::plan(state, leaf.as_ref(), now, timing, request);
    if step == Step::Nothing {
        return Ok(state.clone());
    }
    if step == Step::StartRotation && ca_rotation::requested(state, request) {
        info!(secret = %ca_secret.name_any(), request = ?request, "CA rotation requested");
    }
    let new_ca = if step == Step::StartRotation {
        let ca = certificates::issue_ca(ns, name, now)
            .map_err(|e| build_error(name, "the next CA", e))?;
        Some(Ca {
            cert_pem: ca.cert_pem,
            key_pem: ca.key_pem,
            not_after: ca.not_after,
        })
    } else {
        None
    };
    let after = match ca_rotation::record(state, step, now, new_ca, request) {
        Some(after) => {
            write_ca(api, ca_secret, &after).await?;
            after
        }
        None => state.clone(),
    };
    let signer = match (ca_rotation::signer(&after), &after.next) {
        (ca_rotation::Which::Next, Some(next)) => next,
        _ => &after.current,
    };
    let bundle = ca_rotation::bundle(&after);
    let tls_name = issued_tls_secret_name(name);
    let secret = match existing {
        Some(existing) if !ca_rotation::issues_leaf(&after, step, leaf.as_ref(), now, timing) => {
            // The leaf stays (with its recorded expiry and issuer); only the bundle changes.
            let mut data: BTreeMap<String, Vec<u8>> = ["tls.crt", "tls.key"]
                .into_iter()
                .filter_map(|k| value(existing, k).map(|v| (k.to_string(), v.as_bytes().to_vec())))
                .collect();
            data.insert("ca.crt".to_string(), bundle.into_bytes());
            let annotations = [NOT_AFTER_ANNOTATION, ISSUER_ANNOTATION]
                .into_iter()
                .filter_map(|k| {
                    existing
                        .annotations()
                        .get(k)
                        .map(|v| (k.to_string(), v.clone()))
                })
                .collect();
            secret_object(
                owner,
                tls_name.clone(),
                "kubernetes.io/tls",
                data,
                Some(annotations),
            )?
        }
        _ => {
            let leaf = certificates::issue_leaf(
                ns,
                name,
                &signer.key_pem,
                now,
                certificates::LEAF_VALIDITY,
            )
            .map_err(|e| build_error(name, "the TLS certificate", e))?;
            info!(secret = %tls_name, not_after = %leaf.not_after, "issued the TLS certificate");
            tls_secret_object(owner, &bundle, &leaf, &signer.cert_pem)?
        }
    };
    api.patch(
        &tls_name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&secret),
    )
    .await
    .map_err(Error::kube(format!("applying Secret {tls_name}")))?;
    if step != Step::IssueLeaf {
        info!(secret = %tls_name, step = ?step, phase = ?after.phase, "CA rotation step");
    }
    Ok(after)
}

/// Make sure the Secrets `deployed.security` needs exist: the CA and a certificate not due for
/// renewal (unless the user names a Secret), and the REST token. Creates the CA and the token
/// only if absent (a create, so two passes cannot overwrite each other's); re-issues the
/// certificate when due and rotates the CA when due or when the owner asks for it with a new
/// [`ROTATE_CA_ANNOTATION`] ([`ca_rotation`], with the thresholds `timing`). Running Pods pick
/// up the changed files without a restart (the worker reloads them).
///
/// Returns how long until a rotation under way may take its next step (call again then);
/// `None` when none is under way.
///
/// # Errors
/// [`Error::Kube`] when an API call fails, [`Error::Build`] when a certificate cannot be issued
/// or the stored CA is unreadable.
pub async fn ensure<K: Resource<DynamicType = ()>>(
    client: &Client,
    owner: &K,
    deployed: &StreamJobSpec,
    timing: &Timing,
) -> Result<Option<Duration>, Error> {
    ensure_at(client, owner, deployed, Timestamp::now(), timing).await
}

/// [`ensure`] as if the time were `now`, with the rotation's thresholds `timing` (tests step
/// through a CA rotation with it against a real API server).
///
/// # Errors
/// As [`ensure`].
pub async fn ensure_at<K: Resource<DynamicType = ()>>(
    client: &Client,
    owner: &K,
    deployed: &StreamJobSpec,
    now: Timestamp,
    timing: &Timing,
) -> Result<Option<Duration>, Error> {
    let Some(security) = &deployed.security else {
        return Ok(None);
    };
    let request = rotation_request(owner);
    let request = request.as_deref();
    let owner = SecretOwner::of(owner)?;
    let (name, ns) = (owner.name.clone(), owner.namespace.clone());
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let issue = security
        .tls
        .as_ref()
        .is_some_and(|t| t.enabled && t.secret_name.is_none());
    let mut next_step = None;
    if issue {
        let ca_name = ca_secret_name(&name);
        let ca = match api
            .get_opt(&ca_name)
            .await
            .map_err(Error::kube(format!("reading Secret {ca_name}")))?
        {
            Some(s) => s,
            None => {
                let ca = certificates::issue_ca(&ns, &name, now)
                    .map_err(|e| build_error(&name, "the CA", e))?;
                let state = CaState {
                    current: Ca {
                        cert_pem: ca.cert_pem,
                        key_pem: ca.key_pem,
                        not_after: ca.not_after,
                    },
                    next: None,
                    phase: Phase::Stable,
                    // A new CA answers any request the owner carries already.
                    request: request.map(str::to_string),
                };
                let (data, annotations) = ca_record(&state);
                let secret =
                    secret_object(&owner, ca_name.clone(), "Opaque", data, Some(annotations))?;
                info!(secret = %ca_name, "issued the CA");
                api.create(&PostParams::default(), &secret)
                    .await
                    .map_err(Error::kube(format!("creating Secret {ca_name}")))?
            }
        };
        let state =
            ca_state(&ca).map_err(|message| build_error(&name, "the TLS certificate", message))?;
        let tls_name = issued_tls_secret_name(&name);
        let existing = api
            .get_opt(&tls_name)
            .await
            .map_err(Error::kube(format!("reading Secret {tls_name}")))?;
        let published = Published {
            ca_secret: &ca,
            state: &state,
            existing: existing.as_ref(),
        };
        let after = rotate(&api, &owner, published, request, now, timing).await?;
        next_step = ca_rotation::next_step_in(&after, now, timing);
    }
    if security.rest_auth_enabled() {
        let token_name = token_secret_name(&name);
        if api
            .get_opt(&token_name)
            .await
            .map_err(Error::kube(format!("reading Secret {token_name}")))?
            .is_none()
        {
            let secret = secret_object(
                &owner,
                token_name.clone(),
                "Opaque",
                BTreeMap::from([(TOKEN_KEY.to_string(), new_token(&name)?.into_bytes())]),
                None,
            )?;
            api.create(&PostParams::default(), &secret)
                .await
                .map_err(Error::kube(format!("creating Secret {token_name}")))?;
            info!(secret = %token_name, "created the REST token");
        }
    }
    Ok(next_step)
}

/// The owner's rotation request: its [`ROTATE_CA_ANNOTATION`], if set.
pub fn rotation_request<K: Resource<DynamicType = ()>>(owner: &K) -> Option<String> {
    owner
        .meta()
        .annotations
        .as_ref()?
        .get(ROTATE_CA_ANNOTATION)
        .cloned()
}

/// Whether the operator must send a token to `job`'s JobManager: REST authentication is on in
/// its spec or in the deployed spec (`status.lastReconciledSpec`).
pub fn wants_token(job: &StreamJob) -> bool {
    rest_auth(&job.spec)
        || job
            .status
            .as_ref()
            .and_then(|s| s.last_reconciled_spec.as_ref())
            .and_then(|v| v.pointer("/security/restAuth/enabled"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
}

/// The REST token of `job`, if it wants one ([`wants_token`]) and its Secret exists (trimmed).
///
/// # Errors
/// [`Error::Kube`] when reading the Secret fails.
pub async fn rest_token(client: &Client, job: &StreamJob) -> Result<Option<String>, Error> {
    if !wants_token(job) {
        return Ok(None);
    }
    let ns = job
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    token_of(client, &job.name_any(), &ns).await
}

/// The token in the REST token Secret of `name` in `ns`, if it exists (trimmed).
async fn token_of(client: &Client, name: &str, ns: &str) -> Result<Option<String>, Error> {
    let name = token_secret_name(name);
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api
        .get_opt(&name)
        .await
        .map_err(Error::kube(format!("reading Secret {name}")))?;
    Ok(secret
        .as_ref()
        .and_then(|s| value(s, TOKEN_KEY))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty()))
}

/// The spec the running Pods were built from: `status.lastReconciledSpec`, or the spec before
/// the first deployment.
fn deployed_spec(job: &StreamJob) -> StreamJobSpec {
    job.status
        .as_ref()
        .and_then(|s| s.last_reconciled_spec.clone())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_else(|| job.spec.clone())
}

/// How the operator reaches `job`'s JobManager REST API: `https://` and the CA of its TLS
/// Secret when the deployed spec serves REST over TLS, `http://` otherwise; the token when
/// [`wants_token`].
///
/// # Errors
/// [`Error::Kube`] when reading a Secret fails.
pub async fn endpoint(client: &Client, job: &StreamJob) -> Result<JobManagerEndpoint, Error> {
    let ns = job
        .namespace()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let token = rest_token(client, job).await?;
    endpoint_with(client, &job.name_any(), &ns, &deployed_spec(job), token).await
}

/// How the operator reaches the JobManager of the cluster `name` in `ns` whose Pods were built
/// from `deployed` (a StreamCluster's): as [`endpoint`], with the token when `deployed` turns
/// REST authentication on.
///
/// # Errors
/// [`Error::Kube`] when reading a Secret fails.
pub async fn endpoint_of(
    client: &Client,
    name: &str,
    ns: &str,
    deployed: &StreamJobSpec,
) -> Result<JobManagerEndpoint, Error> {
    let token = if rest_auth(deployed) {
        token_of(client, name, ns).await?
    } else {
        None
    };
    endpoint_with(client, name, ns, deployed, token).await
}

async fn endpoint_with(
    client: &Client,
    name: &str,
    ns: &str,
    deployed: &StreamJobSpec,
    token: Option<String>,
) -> Result<JobManagerEndpoint, Error> {
    let plain = crate::resources::rest_base_url(name, ns);
    let (base_url, ca_pem) = match tls_secret(name, deployed).filter(|_| rest_tls(deployed)) {
        None => (plain, None),
        Some(secret) => {
            let api: Api<Secret> = Api::namespaced(client.clone(), ns);
            // No Secret (yet): no JobManager can serve with it either. Without a CA to trust,
            // a call fails as unreachable, which is what the lifecycle expects then.
            let ca = api
                .get_opt(&secret)
                .await
                .map_err(Error::kube(format!("reading Secret {secret}")))?
                .and_then(|s| value(&s, "ca.crt").map(|c| c.as_bytes().to_vec()));
            (plain.replacen("http://", "https://", 1), ca)
        }
    };
    Ok(JobManagerEndpoint {
        base_url,
        token,
        ca_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(security: &str) -> StreamJob {
        let yaml = format!(
            "apiVersion: fjord.dev/v1alpha1\nkind: StreamJob\nmetadata: {{name: j, namespace: ns, uid: u1}}\n\
             spec:\n  image: fjord:dev\n  job: {{name: wordcount, parallelism: 1}}\n{security}"
        );
        serde_yaml::from_str(&yaml).unwrap()
    }

    #[test]
    fn issued_tls_and_token_set_keys_and_mounts() {
        let j = job("  security:\n    tls: {enabled: true}\n    restAuth: {enabled: true}\n");
        let c = configuration("j", &j.spec);
        assert_eq!(
            c,
            vec![
                ("security.ssl.internal.enabled", "true".to_string()),
                ("security.ssl.internal.dir", TLS_DIR.to_string()),
                ("security.rest.token-file", format!("{TOKEN_DIR}/token")),
            ]
        );
        let (jm_volumes, jm_mounts) = volumes("j", &j.spec, Component::JobManager);
        let secrets: Vec<_> = jm_volumes
            .iter()
            .map(|v| v.secret.as_ref().unwrap().secret_name.clone().unwrap())
            .collect();
        assert_eq!(secrets, ["j-tls", "j-rest-token"]);
        assert_eq!(jm_mounts.len(), 2);
        let (tm_volumes, _) = volumes("j", &j.spec, Component::TaskManager);
        assert_eq!(tm_volumes.len(), 1, "the token stays in the JobManager");
        assert!(wants_token(&j));
    }

    #[test]
    fn rest_tls_serves_the_same_secret_and_needs_tls() {
        let j = job("  security:\n    tls: {enabled: true, rest: true}\n");
        let c = configuration("j", &j.spec);
        assert!(c.contains(&("security.ssl.rest.enabled", "true".to_string())));
        assert!(c.contains(&("security.ssl.rest.dir", TLS_DIR.to_string())));
        let off = job("  security:\n    tls: {enabled: false, rest: true}\n");
        assert!(configuration("j", &off.spec).is_empty());
    }

    #[test]
    fn a_user_secret_is_mounted_instead_and_nothing_is_set_when_off() {
        let j = job("  security:\n    tls: {enabled: true, secretName: my-certs}\n");
        assert_eq!(tls_secret("j", &j.spec).as_deref(), Some("my-certs"));
        assert_eq!(configuration("j", &j.spec).len(), 2);
        assert!(!wants_token(&j));
        let off = job("  security:\n    tls: {enabled: false}\n");
        assert!(configuration("j", &off.spec).is_empty());
        assert_eq!(volumes("j", &off.spec, Component::JobManager).0.len(), 0);
    }

    fn stable(ca: &Issued) -> CaState {
        CaState {
            current: Ca {
                cert_pem: ca.cert_pem.clone(),
                key_pem: ca.key_pem.clone(),
                not_after: ca.not_after,
            },
            next: None,
            phase: Phase::Stable,
            request: None,
        }
    }

    #[test]
    fn the_certificate_is_reissued_when_due_or_from_another_ca() {
        let j = job("");
        let now = Timestamp::now();
        let ca = certificates::issue_ca("ns", "j", now).unwrap();
        let short = std::time::Duration::from_secs(3600);
        let leaf = certificates::issue_leaf("ns", "j", &ca.key_pem, now, short).unwrap();
        let secret = tls_secret_object(
            &SecretOwner::of(&j).unwrap(),
            &ca.cert_pem,
            &leaf,
            &ca.cert_pem,
        )
        .unwrap();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let timing = |secs| Timing {
            leaf_renew_before: std::time::Duration::from_secs(secs),
            ..Timing::default()
        };
        let published = leaf_state(&secret);
        let plan = |state: &CaState, leaf: Option<&LeafState>, secs| {
            ca_rotation::plan(state, leaf, now, &timing(secs), None)
        };
        // Expires in an hour: due under a day's window, not under a minute's.
        assert_eq!(plan(&stable(&ca), Some(&published), 86400), Step::IssueLeaf);
        assert_eq!(plan(&stable(&ca), Some(&published), 60), Step::Nothing);
        assert_eq!(plan(&stable(&ca), None, 60), Step::IssueLeaf);
        let other = certificates::issue_ca("ns", "j", now).unwrap();
        assert_eq!(plan(&stable(&other), Some(&published), 60), Step::IssueLeaf);
        // A Secret written before the issuer was recorded: its ca.crt tells.
        let mut legacy = secret.clone();
        legacy
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .remove(ISSUER_ANNOTATION);
        assert_eq!(
            plan(&stable(&ca), Some(&leaf_state(&legacy)), 60),
            Step::Nothing
        );
        assert_eq!(
            plan(&stable(&other), Some(&leaf_state(&legacy)), 60),
            Step::IssueLeaf
        );
        // The Secret's Debug never shows the key (ByteString prints bytes, so check the
        // operator's own type instead).
        assert!(!format!("{leaf:?}").contains("PRIVATE KEY"));
        assert!(!format!("{:?}", stable(&ca)).contains("PRIVATE KEY"));
    }

    #[test]
    fn the_ca_secret_records_every_phase_for_a_restarted_operator() {
        let j = job("");
        let now = Timestamp::now();
        let ca = certificates::issue_ca("ns", "j", now).unwrap();
        let next = certificates::issue_ca("ns", "j", now).unwrap();
        let since = Timestamp::from_second(now.as_second() - 60).unwrap();
        for (phase, request) in [
            (Phase::Stable, None),
            (Phase::Trusting { since }, Some("2026-12-04")),
            (Phase::Switched { since }, None),
            (Phase::Stable, Some("ticket 7")),
        ] {
            let state = CaState {
                next: (phase != Phase::Stable).then(|| stable(&next).current),
                phase,
                request: request.map(str::to_string),
                ..stable(&ca)
            };
            let (data, annotations) = ca_record(&state);
            let secret = secret_object(
                &SecretOwner::of(&j).unwrap(),
                "j-ca".into(),
                "Opaque",
                data,
                Some(annotations),
            )
            .unwrap();
            assert_eq!(ca_state(&secret).unwrap(), state, "{phase:?}");
        }
        // A CA Secret from before the CA's expiry was recorded: ten years after its creation.
        let mut legacy = secret_object(
            &SecretOwner::of(&j).unwrap(),
            "j-ca".into(),
            "Opaque",
            BTreeMap::from([
                ("ca.crt".to_string(), ca.cert_pem.clone().into_bytes()),
                ("ca.key".to_string(), ca.key_pem.clone().into_bytes()),
            ]),
            None,
        )
        .unwrap();
        legacy.metadata.creation_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        let state = ca_state(&legacy).unwrap();
        assert_eq!(state.phase, Phase::Stable);
        assert_eq!(
            state.current.not_after,
            now.checked_add(certificates::CA_VALIDITY).unwrap()
        );
        // A phase without its next CA cannot be followed: Stable (a due CA rotates again).
        let mut torn = legacy.clone();
        torn.metadata.annotations = Some(BTreeMap::from([
            (ROTATION_ANNOTATION.to_string(), "switched".to_string()),
            (ROTATION_SINCE_ANNOTATION.to_string(), since.to_string()),
        ]));
        assert_eq!(ca_state(&torn).unwrap().phase, Phase::Stable);
        assert!(
            ca_state(
                &secret_object(
                    &SecretOwner::of(&j).unwrap(),
                    "j-ca".into(),
                    "Opaque",
                    BTreeMap::new(),
                    None
                )
                .unwrap()
            )
            .unwrap_err()
            .contains("lacks ca.crt")
        );
    }

    #[test]
    fn tokens_are_random_and_header_safe() {
        let a = new_token("j").unwrap();
        let b = new_token("j").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
