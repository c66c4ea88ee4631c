//! `docs/nexmark.md`'s commands, run as written: every `cargo run` line of its `sh` blocks,
//! with `/tmp/` replaced by a temporary directory. `fjord-nexmark` lines run this package's
//! binary; `fjord-worker` lines run the workspace's `fjord` binary (built by
//! `cargo test --workspace`, or `cargo build -p fjord-worker`); the commands run from the
//! repository root. The comparison harnesses (`compare.sh`, `compare-sql.sh`: release builds
//! and Flink) are run by `tests/flink_oracle.rs`'s and `tests/sql_oracle.rs`'s queries instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `cargo run ... -- <args>` lines of the page's `sh` blocks, as (package, args).
fn documented_commands() -> Vec<(String, Vec<String>)> {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/nexmark.md");
    let text = std::fs::read_to_string(&page).expect("docs/nexmark.md");
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh && l.starts_with("cargo run") => {
                let words: Vec<&str> = l.split_whitespace().collect();
                let package = words
                    .iter()
                    .position(|w| *w == "-p")
                    .map(|i| words[i + 1].to_string())
                    .expect("a -p <package>");
                let dashes = words.iter().position(|w| *w == "--").expect("-- <args>");
                let args = words[dashes + 1..].iter().map(|w| w.to_string()).collect();
                commands.push((package, args));
            }
            _ => {}
        }
    }
    commands
}

/// The workspace's `fjord` binary next to this test's directory.
fn fjord_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let fjord = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("fjord"))
        .expect("target directory");
    assert!(
        fjord.is_file(),
        "{} is missing: run `cargo build -p fjord-worker` (cargo test --workspace builds it)",
        fjord.display()
    );
    fjord
}

#[test]
fn the_pages_commands_run_as_written() {
    let commands = documented_commands();
    let packages: Vec<&str> = commands.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        packages,
        [
            "fjord-nexmark",
            "fjord-worker",
            "fjord-worker",
            "fjord-nexmark",
            "fjord-nexmark",
            "fjord-nexmark"
        ],
        "the page's commands changed: update this test"
    );
    let dir = tempfile::tempdir().unwrap();
    let tmp = format!("{}/", dir.path().display());
    for (package, args) in &commands {
        let args: Vec<String> = args.iter().map(|a| a.replace("/tmp/", &tmp)).collect();
        let program = match package.as_str() {
            "fjord-nexmark" => PathBuf::from(env!("CARGO_BIN_EXE_fjord-nexmark")),
            "fjord-worker" => fjord_binary(),
            other => panic!("unexpected package {other}"),
        };
        let out = Command::new(&program)
            .args(&args)
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{package} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // What the commands say they write: two event files of the 1 M events (one line each),
    // q5's rows from both subtasks, q3's checkpoints' directory, q20's rows from RocksDB.
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();
    let events = dir.path().join("nexmark");
    assert_eq!(
        lines(&events.join("events-0.json")) + lines(&events.join("events-1.json")),
        1_000_000
    );
    let q5: usize = std::fs::read_dir(dir.path().join("q5"))
        .unwrap()
        .map(|f| lines(&f.unwrap().path()))
        .sum();
    assert!(q5 > 0, "q5 wrote no rows");
    let q7_sql: usize = std::fs::read_dir(dir.path().join("q7-sql"))
        .unwrap()
        .map(|f| lines(&f.unwrap().path()))
        .sum();
    // One highest bid per 10 s window of the 10 s of events (1 M at 100 000/s).
    assert!(q7_sql > 0, "the SQL q7 wrote no rows");
    assert!(dir.path().join("chk").is_dir());
    // q20 on RocksDB: its rows; its instances lived under the directory given (the heap
    // backend would not create it) and were removed when the job ended.
    let q20: usize = std::fs::read_dir(dir.path().join("q20"))
        .unwrap()
        .map(|f| lines(&f.unwrap().path()))
        .sum();
    assert!(q20 > 0, "q20 on RocksDB wrote no rows");
    let rocksdb = std::fs::read_dir(dir.path().join("rocksdb"))
        .expect("RocksDB's directory under --state-backend-dir")
        .count();
    assert_eq!(rocksdb, 0, "RocksDB instances left behind");
}
