//! Apache Flink is the oracle for the Nexmark queries: the same 20 000 generated events (two
//! JSON-lines files) go through each query on Fjord (embedded mini-cluster, parallelism 2,
//! exactly-once checkpoints every 10 s) and through the Flink Nexmark benchmark's own SQL text
//! on Flink 2.3 (`scripts/infra/flink.sh nexmark`, all queries as one job, parallelism 2,
//! checkpoints every 10 s), and the rows must be equal as multisets.
//!
//! Needs Flink's jars: `scripts/infra/install-flink.sh`.

use fjord::{JobArgs, StreamExecutionEnvironment};
use fjord_nexmark::compare::{compare_rows, read_rows};
use fjord_nexmark::{NexmarkConfig, QUERIES, build_job, write_files};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs every query on Flink and returns its rows per query (print rows `qN:k> +I[...]`).
fn flink(events: &Path, checkpoints: &Path) -> BTreeMap<String, Vec<String>> {
    let queries: Vec<PathBuf> = QUERIES
        .iter()
        .map(|(q, _, _)| repo().join(format!("bench/nexmark/flink/{q}.sql")))
        .collect();
    let output = Command::new(repo().join("scripts/infra/flink.sh"))
        .arg("nexmark")
        .arg(events)
        .args(["print", "2", "10000"])
        .arg(format!("file://{}", checkpoints.display()))
        .args(&queries)
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

#[test]
fn every_query_gives_flinks_rows() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    // 60 s of event time at 333 events/s: six tumbling windows, 34 sliding ones, sessions;
    // at this rate some bids fall exactly on a window's end (q7's inclusive bound).
    let config = NexmarkConfig::from_args(
        &JobArgs::parse(["--events.num", "20000", "--tps", "333", "--seed", "3"]).unwrap(),
    )
    .unwrap();
    write_files(&config, &events, 2).unwrap();
    let flink_rows = flink(&events, &dir.path().join("flink-checkpoints"));
    for (q, _, _) in QUERIES {
        let out = dir.path().join(format!("fjord-{q}"));
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        env.enable_checkpointing(Duration::from_secs(10));
        let storage = format!("file://{}", dir.path().join(format!("chk-{q}")).display());
        env.checkpoint_config(|c| c.storage = storage);
        let args = JobArgs::parse([
            "--input",
            events.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .unwrap();
        build_job(q, &env, &args).unwrap();
        env.execute(q).unwrap();
        let fjord = read_rows(&out).unwrap();
        let flink = flink_rows.get(*q).cloned().unwrap_or_default();
        assert!(!fjord.is_empty(), "{q}: no rows, so nothing is compared");
        let c = compare_rows(&fjord, &flink);
        assert!(c.same(), "{q}: Fjord (left) and Flink (right) differ: {c}");
        eprintln!("{q}: {} rows, the same on both", fjord.len());
    }
}
