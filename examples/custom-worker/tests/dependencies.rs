//! A worker binary of one's own compiles the worker roles and only the extras it asks for
//! (docs/custom-workers.md): the dependency graph cargo resolves for this crate, on its own
//! features (`sql`, for its user-defined SQL functions), has no Kubernetes client, no
//! StreamJob types and no stock jobs, while the stock `fjord-worker` on its default features
//! still has all of them.

use std::collections::BTreeSet;
use std::process::Command;

/// The names of the crates in `package`'s normal (non-build, non-dev) dependency graph, as
/// cargo resolves it for that package alone.
fn normal_dependencies(package: &str) -> BTreeSet<String> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["tree", "--manifest-path", manifest, "-p", package])
        .args(["-e", "normal", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// What only the stock binary needs, each with the feature that brings it.
const STOCK_ONLY: &[(&str, &str)] = &[
    ("kube", "kubernetes-ha"),
    ("kube-client", "kubernetes-ha"),
    ("k8s-openapi", "kubernetes-ha"),
    ("fjord-crds", "manifests"),
    ("kube-core", "manifests"),
    ("fjord-examples", "stock-jobs"),
    ("fjord-nexmark", "stock-jobs"),
];

/// What the example's `sql` feature brings (the stock binary has it too).
const SQL: &[&str] = &["fjord-sql", "sqlparser"];

#[test]
fn the_custom_worker_compiles_the_roles_without_the_stock_extras() {
    let deps = normal_dependencies("my-fjord-worker");
    for (krate, feature) in STOCK_ONLY {
        assert!(
            !deps.contains(*krate),
            "my-fjord-worker depends on {krate} (fjord-worker's `{feature}`), which its \
             default-features = false should leave out"
        );
    }
    // The roles are all there: the control plane, REST, TLS, metrics, the client commands;
    // and the SQL planner its user-defined functions need.
    for krate in SQL.iter().copied().chain([
        "fjord",
        "fjord-worker",
        "fjord-proto",
        "fjord-client",
        "tonic",
        "axum",
        "tokio-rustls",
    ]) {
        assert!(deps.contains(krate), "{krate} is missing: {deps:?}");
    }
}

#[test]
fn the_stock_worker_keeps_every_extra_by_default() {
    let deps = normal_dependencies("fjord-worker");
    for krate in STOCK_ONLY.iter().map(|(k, _)| k).chain(SQL) {
        assert!(
            deps.contains(*krate),
            "fjord-worker's default features lost {krate}"
        );
    }
}
