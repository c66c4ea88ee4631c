//! Helpers the SQL job tests share.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::path::Path;

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
