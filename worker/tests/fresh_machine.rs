//! The README's first command on a machine with only a Rust toolchain.
//!
//! `cargo run -p fjord-worker -- run wordcount` must work where nothing but Rust (and the C
//! toolchain a Rust toolchain itself needs on Linux to link) is installed: no `protoc`, no
//! `cmake`, no `clang`, no `pkg-config`, no system RocksDB. This test builds the `fjord`
//! binary with a `PATH` that holds only the toolchain's `bin` directory and the C toolchain
//! (`cc`, `as`, `ld`, `ar`), and an environment cleared of `PROTOC`, `ROCKSDB_LIB_DIR` and the like, then runs the
//! README's command and checks WordCount's output.
//!
//! The build goes to its own target directory under `$FJORD_CACHE` (default
//! `~/.cache/fjord`), so only the first run on a machine is a cold build; `fjord-proto` is
//! cleaned first so its build script (the `.proto` compiler) really runs under the stripped
//! `PATH` every time.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Tools a Rust toolchain needs from the system on Linux: the C compiler driver used as the
/// linker, the assembler and linker it calls, and the archiver (crates such as `ring` and
/// `psm` compile a little C or assembly with them through the `cc` crate).
const LINKER_TOOLS: &[&str] = &["cc", "gcc", "as", "ld", "ar"];

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    })
}

fn toolchain_bin() -> PathBuf {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc --print sysroot");
    assert!(out.status.success(), "rustc --print sysroot failed");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("bin")
}

fn cache_dir() -> PathBuf {
    std::env::var_os("FJORD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/fjord"))
}

/// A command with a cleared environment: the stripped `PATH`, and only what cargo and rustup
/// need to find their homes.
fn bare_command(program: &Path, path: &Path, target: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_TERM_COLOR", "never")
        .current_dir(env!("CARGO_MANIFEST_DIR").to_string() + "/..");
    for var in [
        "HOME",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "TMPDIR",
    ] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd
}

#[test]
fn first_readme_command_needs_only_a_rust_toolchain() {
    let bin = tempfile::tempdir().unwrap();
    for tool in LINKER_TOOLS {
        let real = which(tool).unwrap_or_else(|| panic!("{tool} not found on PATH"));
        symlink(real, bin.path().join(tool)).unwrap();
    }
    let toolchain = toolchain_bin();
    let path = std::env::join_paths([toolchain.clone(), bin.path().to_path_buf()]).unwrap();
    let path = PathBuf::from(path);
    let cargo = toolchain.join("cargo");
    let target = cache_dir().join("fresh-machine-target");

    // Nothing else is reachable: the stripped PATH has no protoc, cmake, clang or pkg-config.
    for absent in ["protoc", "cmake", "clang", "pkg-config"] {
        let found = std::env::split_paths(&path).any(|dir| dir.join(absent).exists());
        assert!(!found, "{absent} must not be on the test's PATH");
    }

    let clean = bare_command(&cargo, &path, &target)
        .args(["clean", "-p", "fjord-proto"])
        .status()
        .expect("cargo clean");
    assert!(clean.success(), "cargo clean -p fjord-proto failed");

    // The README's first command, verbatim after `cargo`.
    let out = bare_command(&cargo, &path, &target)
        .args(["run", "-q", "-p", "fjord-worker", "--", "run", "wordcount"])
        .output()
        .expect("cargo run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "`cargo run -p fjord-worker -- run wordcount` failed with only a Rust toolchain:\n{stderr}"
    );
    // WordCount over the built-in Hamlet text: "be" occurs twice, so its running count reaches 2.
    assert!(
        stdout.lines().any(|l| l.ends_with("(be,2)")),
        "no (be,2) in WordCount's output:\n{stdout}"
    );
}
