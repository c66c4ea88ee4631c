//! The infra scripts' contracts that need no running cluster.

use std::path::PathBuf;
use std::process::Command;

use fjord_e2e::{ClusterOptions, Error, TestCluster};

fn infra() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/infra")
}

#[test]
fn up_without_installed_binaries_fails_and_names_install_sh() {
    let tmp = std::env::temp_dir().join(format!("fjord-e2e-noinstall-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(infra().join("up.sh"))
        .arg(tmp.join("run"))
        .env("FJORD_CACHE", tmp.join("empty-cache"))
        .env("FJORD_NODE_AGENT", "/bin/true")
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("scripts/infra/install.sh"), "{stderr}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn down_is_idempotent_on_missing_and_empty_run_dirs() {
    let tmp = std::env::temp_dir().join(format!("fjord-e2e-down-{}", std::process::id()));
    for _ in 0..2 {
        let out = Command::new("bash")
            .arg(infra().join("down.sh"))
            .arg(&tmp)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::create_dir_all(&tmp).unwrap();
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn test_cluster_without_installed_binaries_tells_the_user_to_run_install_sh() {
    let empty = std::env::temp_dir().join(format!("fjord-e2e-empty-cache-{}", std::process::id()));
    let err = TestCluster::start(
        ClusterOptions::new("not-installed")
            .cache_dir(&empty)
            .node_agent(env!("CARGO_BIN_EXE_fjord-node-agent")),
    )
    .expect_err("nothing is installed in an empty cache");
    assert!(matches!(err, Error::NotInstalled { .. }), "{err:?}");
    assert!(
        err.to_string().contains("scripts/infra/install.sh"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&empty);
}
