//! The Dockerfiles are not built here (no Docker daemon; the tests build the same images with
//! `scripts/images/build.sh` and run them in e2e/tests/images.rs, which also checks that the
//! Dockerfiles' USER, ENTRYPOINT, CMD and EXPOSE equal the script's image config). These checks
//! keep them in step with the workspace: multi-stage, non-root, and naming packages and binaries
//! that exist.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dockerfile(name: &str) -> String {
    std::fs::read_to_string(repo().join("docker").join(name)).unwrap()
}

fn check(name: &str, package: &str, bin: &str) {
    let text = dockerfile(name);
    let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "{name}: a build stage and a runtime stage");
    let user = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap_or_else(|| panic!("{name}: the runtime stage sets no USER"));
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "{name}: runs as {user}"
    );
    assert!(text.contains(package), "{name} builds {package}");
    assert!(
        text.contains(&format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]")),
        "{name} runs {bin}"
    );
    // The package exists with that binary.
    let manifest = std::fs::read_to_string(
        repo()
            .join(package.trim_start_matches("fjord-"))
            .join("Cargo.toml"),
    )
    .unwrap();
    assert!(manifest.contains(&format!("name = \"{package}\"")));
    assert!(
        manifest.contains(&format!("name = \"{bin}\"")),
        "{package} has bin {bin}"
    );
}

#[test]
fn the_worker_image_runs_the_fjord_binary_as_non_root() {
    check("worker.Dockerfile", "fjord-worker", "fjord");
    // The operator starts JobManager pods as `<entrypoint> jobmanager --config <file>`.
    assert!(env!("CARGO_BIN_EXE_fjord").ends_with("fjord"));
}

#[test]
fn the_operator_image_runs_the_operator_as_non_root() {
    check("operator.Dockerfile", "fjord-operator", "fjord-operator");
}
