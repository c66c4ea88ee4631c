//! What the Nexmark oracle tests share: the repository, the 20 000 events they read, and
//! running SQL texts on Flink.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use fjord::JobArgs;
use fjord_nexmark::compare::{
    compare_changelogs, compare_changelogs_by_key, compare_rows, final_state, final_state_by_key,
};
use fjord_nexmark::{NexmarkConfig, is_updating, upsert_key, write_files};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Writes the oracle tests' events into `dir` (two JSON-lines files): 60 s of event time at
/// 333 events/s: six tumbling windows, 34 sliding ones, sessions; at this rate some bids fall
/// exactly on a window's end (q7's inclusive bound). The events cross midnight, so the daily
/// reports (q15-q17) and partitions (q10) see two days.
pub fn write_events(dir: &Path) {
    let config = NexmarkConfig::from_args(
        &JobArgs::parse([
            "--events.num",
            "20000",
            "--tps",
            "333",
            "--seed",
            "3",
            "--base-time",
            "2026-01-01 23:59:30",
        ])
        .unwrap(),
    )
    .unwrap();
    write_files(&config, dir, 2).unwrap();
}

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the SQL texts `queries` as one job on Flink and returns its rows per query (print rows
/// `qN:k> +I[...]`, keyed by the file's stem); `flink_home` holds q13's side input,
/// `data/side_input.txt`.
pub fn flink(
    queries: &[PathBuf],
    events: &Path,
    checkpoints: &Path,
    flink_home: &Path,
) -> BTreeMap<String, Vec<String>> {
    let output = Command::new(repo().join("scripts/infra/flink.sh"))
        .arg("nexmark")
        .arg(events)
        .args(["print", "2", "10000"])
        .arg(format!("file://{}", checkpoints.display()))
        .args(queries)
        .env("FJORD_NEXMARK_FLINK_HOME", flink_home)
        .output()
        .expect("scripts/infra/flink.sh runs");
    assert!(
        output.status.success(),
        "Flink failed (is it installed? scripts/infra/install-flink.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut rows: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        let Some((query, _)) = line.split_once([':', '>']) else {
            panic!("not a print row: {line}");
        };
        rows.entry(query.to_string())
            .or_default()
            .push(line.to_string());
    }
    rows
}

/// Compares query `q`'s rows from Fjord and Flink: as multisets for an appending query; for
/// an updating one (`is_updating`) by the tables their changelogs leave (folded by the upsert
/// key where Flink gives an upsert changelog). `Ok` is a summary to print, `Err` what differs.
pub fn compare_query(q: &str, fjord: &[String], flink: &[String]) -> Result<String, String> {
    if is_updating(q) {
        let (table, c) = match upsert_key(q) {
            Some(key) => (
                final_state_by_key(fjord, key),
                compare_changelogs_by_key(fjord, flink, key),
            ),
            None => (final_state(fjord), compare_changelogs(fjord, flink)),
        };
        match (table, c) {
            (Ok(table), _) if table.is_empty() => Err("Fjord's changelog leaves no rows".into()),
            (Ok(table), Ok(c)) if c.same() => Ok(format!(
                "changelogs of {} (Fjord) and {} (Flink) rows leave the same {} rows",
                fjord.len(),
                flink.len(),
                table.len()
            )),
            (Ok(_), Ok(c)) => Err(format!("Fjord (left) and Flink (right) tables differ: {c}")),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        }
    } else {
        let c = compare_rows(fjord, flink);
        if fjord.is_empty() {
            Err("no rows, so nothing is compared".into())
        } else if c.same() {
            Ok(format!("{} rows, the same on both", fjord.len()))
        } else {
            Err(format!("Fjord (left) and Flink (right) differ: {c}"))
        }
    }
}
