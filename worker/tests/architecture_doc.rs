//! `docs/architecture.md` names the file that implements each step of the data, checkpoint and
//! control paths. This test keeps those names true: every repository path the page mentions
//! must exist, so moving or renaming a file without updating the page fails here.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Tokens of the page that look like repository paths: contain a `/` and end in `.rs`,
/// `.yaml`, `.md` or `/`, made of path characters only.
fn path_tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "/_.-*".contains(c)))
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| {
            t.contains('/') && !t.contains("//") && !t.starts_with("..") && !t.contains('*')
        })
        .filter(|t| {
            t.ends_with(".rs") || t.ends_with(".yaml") || t.ends_with(".md") || t.ends_with('/')
        })
        .map(str::to_string)
        .collect()
}

/// A path on the page is either relative to the repository root or, inside a block that is
/// about one crate, relative to a source directory the page introduced before.
fn resolves(root: &Path, token: &str) -> bool {
    let bases = [
        "",
        "engine/src/",
        "engine/src/runtime/",
        "engine/src/checkpoint/",
        "worker/src/jobmanager/",
        "worker/src/taskmanager/",
        "operator/src/",
        "connectors/kafka/src/",
        "connectors/",
        "docs/",
    ];
    bases.iter().any(|b| root.join(b).join(token).exists())
}

#[test]
fn every_path_named_in_the_architecture_page_exists() {
    let root = repo_root();
    let page =
        std::fs::read_to_string(root.join("docs/architecture.md")).expect("docs/architecture.md");
    let tokens = path_tokens(&page);
    assert!(
        tokens.len() > 40,
        "the page should name the files of each step; found only {tokens:?}"
    );
    let missing: Vec<_> = tokens.iter().filter(|t| !resolves(&root, t)).collect();
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist: {missing:?}"
    );
}

#[test]
fn a_renamed_file_is_caught() {
    let root = repo_root();
    assert!(resolves(&root, "engine/src/task/writer.rs"));
    assert!(!resolves(&root, "engine/src/task/no_such_writer.rs"));
}
