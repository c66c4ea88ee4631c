//! The operator's CA rotation against a real API server (issue 16): the Secrets `<name>-ca`
//! and `<name>-tls` of a StreamJob go through the three steps of a rotation
//! (`fjord_operator::ca_rotation`) as `fjord_operator::security::ensure_at` writes them, with a
//! clock the test moves forward and the rotation threshold forced to 20 years:
//!
//! 1. a pass issues the CA and a leaf (nothing else happens under the default thresholds);
//! 2. the forced pass starts the rotation: the next CA is recorded in `<name>-ca`, the leaf
//!    stays and `ca.crt` becomes the bundle of both CAs; a pass before the propagation wait
//!    changes nothing;
//! 3. after the wait, a leaf of the next CA, still with the bundle;
//! 4. after another wait, the next CA becomes the CA, published alone, the rotation record
//!    removed; a later pass under the default thresholds changes nothing.
//!
//! No Pods here: the reload in running processes is tested with real processes in
//! `worker/tests/tls_rotation.rs`, and a whole rotation that the running operator takes
//! through a secured StreamJob's running Pods (the node agent carries each step's Secret into
//! them) in `operator_security::a_requested_ca_rotation_reaches_the_running_pods_and_the_job_keeps_running`.
//! Run: `cargo test -p fjord-e2e --test operator_ca_rotation`.

use std::time::Duration;

use anyhow::{Context as _, ensure};
use fjord_crds::StreamJob;
use fjord_e2e::{ClusterOptions, TestCluster};
use fjord_operator::ca_rotation::{PROPAGATION, Timing, fingerprint};
use fjord_operator::security::{self, ISSUER_ANNOTATION, ROTATION_ANNOTATION};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, ResourceExt};

const JOB: &str = "rotated";

fn value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()?
        .get(key)
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

fn certs(pem: &str) -> usize {
    pem.matches("BEGIN CERTIFICATE").count()
}

fn later(t: Timestamp, by: Duration) -> Timestamp {
    t.checked_add(by).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_rotates_a_ca_through_a_bundle_on_a_real_api_server() -> anyhow::Result<()> {
    let cluster = TestCluster::start(
        ClusterOptions::new("operator-ca-rotation")
            .nodes(1)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent")),
    )?;
    let crd = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/streamjob.yaml");
    cluster.kubectl(&["apply", "-f", crd], None)?;
    // `kubectl wait` fails at once ("accessor error: <nil>") while the new CRD has no status
    // conditions yet instead of waiting for them: ask again, a bounded number of times.
    for attempt in 1.. {
        let waited = cluster.kubectl(
            &[
                "wait",
                "--for=condition=established",
                "crd/streamjobs.fjord.dev",
                "--timeout=60s",
            ],
            None,
        );
        match waited {
            Ok(_) => break,
            Err(e) if attempt < 30 && e.to_string().contains("accessor error") => {
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let manifest = format!(
        "apiVersion: fjord.dev/v1alpha1\nkind: StreamJob\nmetadata: {{name: {JOB}, namespace: default}}\n\
         spec:\n  image: fjord:dev\n  job: {{name: wordcount, parallelism: 1, upgradeMode: stateless}}\n  \
         security:\n    tls: {{enabled: true}}\n"
    );
    cluster.kubectl(&["apply", "-f", "-"], Some(&manifest))?;
    let client = cluster.client().await?;
    let job = Api::<StreamJob>::namespaced(client.clone(), "default")
        .get(JOB)
        .await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), "default");
    let read = || async {
        let ca = secrets.get(&format!("{JOB}-ca")).await?;
        let tls = secrets.get(&format!("{JOB}-tls")).await?;
        anyhow::Ok((ca, tls))
    };
    let forced = Timing {
        ca_renew_before: Duration::from_secs(20 * 365 * 24 * 3600),
        ..Timing::default()
    };
    let pass = |now: Timestamp, timing: Timing| {
        let (client, job) = (client.clone(), job.clone());
        async move { security::ensure_at(&client, &job, &job.spec, now, &timing).await }
    };

    // 1. The CA and its leaf.
    let t0 = Timestamp::now();
    pass(t0, Timing::default()).await?;
    let (ca0, tls0) = read().await?;
    let old = value(&ca0, "ca.crt").context("ca.crt")?;
    ensure!(value(&tls0, "ca.crt").as_deref() == Some(old.as_str()));
    ensure!(tls0.annotations().get(ISSUER_ANNOTATION) == Some(&fingerprint(&old)));
    ensure!(ca0.annotations().get(ROTATION_ANNOTATION).is_none());

    // 2. Forced: trust both; the leaf stays.
    pass(t0, forced).await?;
    let (ca1, tls1) = read().await?;
    ensure!(
        ca1.annotations()
            .get(ROTATION_ANNOTATION)
            .map(String::as_str)
            == Some("trusting"),
        "{:?}",
        ca1.annotations()
    );
    ensure!(
        value(&ca1, "ca.crt") == Some(old.clone()),
        "the old CA still signs"
    );
    let next = value(&ca1, "next-ca.crt").context("next-ca.crt")?;
    ensure!(next != old);
    let bundle = value(&tls1, "ca.crt").context("ca.crt")?;
    ensure!(certs(&bundle) == 2 && bundle.contains(old.trim()) && bundle.contains(next.trim()));
    ensure!(
        value(&tls1, "tls.crt") == value(&tls0, "tls.crt"),
        "same leaf"
    );
    ensure!(value(&tls1, "tls.key") == value(&tls0, "tls.key"));
    // Before the wait is over nothing is written.
    pass(later(t0, PROPAGATION / 2), forced).await?;
    let (ca1b, tls1b) = read().await?;
    ensure!(ca1b.resource_version() == ca1.resource_version());
    ensure!(tls1b.resource_version() == tls1.resource_version());

    // 3. A leaf of the next CA, still trusting both.
    let t1 = later(t0, PROPAGATION);
    pass(t1, forced).await?;
    let (ca2, tls2) = read().await?;
    ensure!(
        ca2.annotations()
            .get(ROTATION_ANNOTATION)
            .map(String::as_str)
            == Some("switched")
    );
    ensure!(
        value(&tls2, "tls.crt") != value(&tls1, "tls.crt"),
        "a new leaf"
    );
    ensure!(tls2.annotations().get(ISSUER_ANNOTATION) == Some(&fingerprint(&next)));
    ensure!(value(&tls2, "ca.crt") == Some(bundle.clone()));

    // 4. The next CA becomes the CA, alone.
    let t2 = later(t1, PROPAGATION);
    pass(t2, forced).await?;
    let (ca3, tls3) = read().await?;
    ensure!(value(&ca3, "ca.crt") == Some(next.clone()));
    ensure!(value(&ca3, "next-ca.crt").is_none() && value(&ca3, "next-ca.key").is_none());
    ensure!(ca3.annotations().get(ROTATION_ANNOTATION).is_none());
    ensure!(value(&tls3, "ca.crt") == Some(next.clone()));
    ensure!(
        value(&tls3, "tls.crt") == value(&tls2, "tls.crt"),
        "the new leaf stays"
    );
    ensure!(
        ca3.owner_references().first().map(|o| o.name.as_str()) == Some(JOB),
        "still owned by the StreamJob"
    );
    // Under the default thresholds the new CA (10 years) is not due: nothing more happens.
    pass(later(t2, PROPAGATION), Timing::default()).await?;
    let (ca4, tls4) = read().await?;
    ensure!(ca4.resource_version() == ca3.resource_version());
    ensure!(tls4.resource_version() == tls3.resource_version());
    cluster.stop()?;
    Ok(())
}
