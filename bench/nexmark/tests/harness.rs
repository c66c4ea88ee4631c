//! The side-by-side harness itself, `bench/nexmark/compare.sh`, run as a user runs it, on a
//! small input: it generates the events, times each query on Fjord and on Apache Flink 2.3 at
//! parallelism 1 and 2, runs the verification (both engines writing rows at parallelism 2,
//! compared as multisets) and prints the table and `results.tsv` that BENCHMARKS.md quotes.
//!
//! The test passes its own (debug) `fjord-nexmark` through `FJORD_NEXMARK_BIN`, so the times in
//! the table mean nothing here and are only checked to be there; what it asserts is that every
//! query and parallelism has a row, that both engines ran, and that the verification found the
//! same rows on both sides — q0's rows are exactly the input's bids, counted here from the
//! event files.
//!
//! Needs Flink's jars (`scripts/infra/install-flink.sh`) and GNU time (`/usr/bin/time`,
//! `scripts/install-deps.sh`).

use std::path::Path;
use std::process::Command;

mod common;
use common::repo;

/// Bids in the harness's event files (the JSON lines with a bid).
fn bids_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .filter(|l| l.contains("\"bid\":{"))
                .count()
        })
        .sum()
}

#[test]
fn the_harness_times_both_engines_and_finds_the_same_rows() {
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(repo().join("bench/nexmark/compare.sh"))
        .args(["--events", "20000", "--tps", "1000", "--queries", "q0 q5"])
        .args(["--parallelism", "1 2", "--rounds", "1", "--work"])
        .arg(work.path())
        .env("FJORD_NEXMARK_BIN", env!("CARGO_BIN_EXE_fjord-nexmark"))
        .output()
        .expect("bench/nexmark/compare.sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compare.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    eprintln!("{stdout}");

    let bids = bids_in(&work.path().join("events-20000-1000-files-2"));
    assert!(bids > 15_000, "{bids} bids in 20 000 events");
    let tsv = std::fs::read_to_string(work.path().join("results.tsv")).unwrap();
    let rows: Vec<Vec<&str>> = tsv.lines().map(|l| l.split('\t').collect()).collect();
    let seen: Vec<(&str, &str)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        seen,
        [("q0", "1"), ("q0", "2"), ("q5", "1"), ("q5", "2")],
        "{tsv}"
    );
    for row in &rows {
        assert_eq!(row.len(), 13, "{row:?}");
        let number = |i: usize| -> f64 {
            row[i]
                .parse()
                .unwrap_or_else(|_| panic!("column {i} of {row:?}"))
        };
        // Fjord's and Flink's times, events/s per core and peak RSS: both engines ran.
        for column in [2, 3, 5, 6, 10, 11] {
            assert!(number(column) > 0.0, "column {column} of {row:?}");
        }
        let same = row[12];
        let verified: usize = same
            .strip_prefix("yes (")
            .and_then(|s| s.strip_suffix(" rows)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{} p={}: rows not the same: {same}", row[0], row[1]));
        if row[0] == "q0" {
            assert_eq!(verified, bids, "q0 passes every bid through");
        } else {
            assert!(verified > 0, "{row:?}");
        }
    }
    // The Markdown table carries the same rows.
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("| q") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count(),
        4,
        "{stdout}"
    );
}
