//! Writes the StreamJob CRD YAML (for `kubectl apply` and for the Helm chart) from the Rust types.
//!
//! Usage: `cargo run -p fjord-crds --bin crdgen` from anywhere in the repository, or
//! `crdgen --stdout` to print the plain CRD instead.

fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--stdout") {
        print!("{}", fjord_crds::crd::crd_yaml()?);
        return Ok(());
    }
    let root = fjord_crds::crd::repo_root();
    for path in fjord_crds::crd::write_generated_files(&root)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
