//! Helpers the SQL job tests share.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use fjord::StreamExecutionEnvironment;
use std::path::Path;
use std::time::{Duration, Instant};

/// The sorted lines of every file in a sink directory (none while it does not exist).
pub fn lines_in(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.sort();
    lines
}

/// The lines, owned and sorted.
pub fn sorted(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Starts `env`, waits (bounded) until windows have fired and reached the files in `out`,
/// then stops it with a savepoint into `savepoints`; returns the savepoint's path.
pub fn stop_once_windows_fired(
    env: StreamExecutionEnvironment,
    out: &Path,
    savepoints: &Path,
) -> String {
    stop_once(env, savepoints, "window output", || {
        !lines_in(out).is_empty()
    })
}

/// Starts `env`, waits (at most 60 s) until `ready` holds (`what` names it in the failure),
/// then stops the job with a savepoint into `savepoints`; returns the savepoint's path.
pub fn stop_once(
    env: StreamExecutionEnvironment,
    savepoints: &Path,
    what: &str,
    ready: impl Fn() -> bool,
) -> String {
    let client = env.execute_async("first half").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "no {what} within 60 s");
        assert!(!client.is_finished(), "the job ended before it was stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    client
        .stop_with_savepoint(&format!("file://{}", savepoints.display()), false)
        .unwrap()
}

/// The `n`-th (from 1) `sql` code block of docs/sql.md's section `heading` (the text from
/// that heading to the next heading of its level or above): examples are run as written.
pub fn docs_sql_block(heading: &str, n: usize) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let docs = std::fs::read_to_string(root.join("docs/sql.md")).unwrap();
    let at = docs
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("docs/sql.md has no heading {heading:?}"));
    let section = &docs[at + heading.len()..];
    let level = heading.chars().take_while(|&c| c == '#').count();
    let end = section
        .match_indices("\n#")
        .find(|(i, _)| {
            let hashes = section[i + 1..].chars().take_while(|&c| c == '#').count();
            hashes <= level && section[i + 1 + hashes..].starts_with(' ')
        })
        .map_or(section.len(), |(i, _)| i);
    section[..end]
        .split("```sql\n")
        .nth(n)
        .and_then(|b| b.split("\n```").next())
        .unwrap_or_else(|| panic!("{heading}: no sql block {n}"))
        .to_string()
}
