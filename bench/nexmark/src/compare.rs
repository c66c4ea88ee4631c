//! Compares the result rows of two engines: CSV lines or rows of Flink's `print` connector
//! (`2> +I[1000, Peter Shultz, 2026-01-01T00:00]`), compared as multisets (sorted), after
//! normalizing what two correct writers may spell differently — CSV quoting, timestamps
//! (`2026-01-01T00:00`, `2026-01-01 00:00:00` and `2026-01-01 00:00:00.000`) and decimals
//! (`908.000` and `908`). Rows of another kind than insert (`-U[...]`, `-D[...]`) keep their
//! kind, so they never equal an insert.

use crate::error::NexmarkError;
use crate::model::{format_timestamp, parse_timestamp};
use std::path::Path;

/// How two sets of rows differ.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Comparison {
    /// Rows on both sides (counted with multiplicity).
    pub common: usize,
    /// Rows only on the left (normalized), at most 10 kept, and how many there were.
    pub only_left: (Vec<String>, usize),
    /// Rows only on the right.
    pub only_right: (Vec<String>, usize),
}

impl Comparison {
    /// True when both sides hold the same rows.
    pub fn same(&self) -> bool {
        self.only_left.1 == 0 && self.only_right.1 == 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows in common, {} only left {:?}, {} only right {:?}",
            self.common, self.only_left.1, self.only_left.0, self.only_right.1, self.only_right.0
        )
    }
}

/// One row (a CSV line or a Flink `print` row) with quoting removed and each field
/// normalized, written back as CSV.
pub fn normalize(line: &str) -> String {
    let (kind, fields) = match flink_print_row(line) {
        Some((kind, fields)) => (kind, fields),
        None => ("", split_csv(line)),
    };
    let csv = fields
        .iter()
        .map(|f| {
            let f = normalize_field(f);
            if f.contains([',', '"']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    format!("{kind}{csv}")
}

/// The kind (`""` for an insert, else `-U `, `+U ` or `-D `) and fields of a row of Flink's
/// `print` connector: an optional `n> ` or `id:n> ` prefix, then `+I[f1, f2, ...]`.
fn flink_print_row(line: &str) -> Option<(&'static str, Vec<String>)> {
    let row = match line.find("> ") {
        Some(i) if !line[..i].contains([',', '[']) => &line[i + 2..],
        _ => line,
    };
    let kind = match row.get(..3)? {
        "+I[" => "",
        "-U[" => "-U ",
        "+U[" => "+U ",
        "-D[" => "-D ",
        _ => return None,
    };
    let body = row[3..].strip_suffix(']')?;
    Some((kind, body.split(", ").map(str::to_string).collect()))
}

fn normalize_field(f: &str) -> String {
    // Java's LocalDateTime.toString leaves out zero seconds: 2026-01-01T00:00.
    let minutes_only = f.len() == 16 && f.as_bytes()[10] == b'T' && f.as_bytes()[13] == b':';
    let f = &if minutes_only {
        format!("{f}:00")
    } else {
        f.to_string()
    };
    if let Some(ms) = parse_timestamp(f) {
        return format_timestamp(ms);
    }
    let numeric = !f.is_empty()
        && f.bytes()
            .all(|c| c.is_ascii_digit() || c == b'.' || c == b'-')
        && f.bytes().filter(|c| *c == b'.').count() == 1;
    if numeric {
        return f.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    f.to_string()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Compares two multisets of rows after [`normalize`].
pub fn compare_rows(left: &[String], right: &[String]) -> Comparison {
    let mut l: Vec<String> = left.iter().map(|r| normalize(r)).collect();
    let mut r: Vec<String> = right.iter().map(|r| normalize(r)).collect();
    l.sort_unstable();
    r.sort_unstable();
    let (mut i, mut j) = (0, 0);
    let mut out = Comparison::default();
    let keep = |side: &mut (Vec<String>, usize), row: &String| {
        side.1 += 1;
        if side.0.len() < 10 {
            side.0.push(row.clone());
        }
    };
    while i < l.len() || j < r.len() {
        if j == r.len() || (i < l.len() && l[i] < r[j]) {
            keep(&mut out.only_left, &l[i]);
            i += 1;
        } else if i == l.len() || r[j] < l[i] {
            keep(&mut out.only_right, &r[j]);
            j += 1;
        } else {
            out.common += 1;
            i += 1;
            j += 1;
        }
    }
    out
}

/// The non-empty lines of a file, or of every visible file under a directory (recursively;
/// names starting with `.` or `_` are skipped, as in-progress files of sinks).
///
/// # Errors
/// [`NexmarkError::Io`] when a file or directory cannot be read.
pub fn read_rows(path: &Path) -> Result<Vec<String>, NexmarkError> {
    let io = |source| NexmarkError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut rows = Vec::new();
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            rows.extend(read_rows(&e.path())?);
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(io)?;
        rows.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn spellings_of_the_same_row_are_equal() {
        let c = compare_rows(
            &rows(&["1,908.000,2026-01-01 00:00:00.000,x", "2,\"a,b\""]),
            &rows(&["2,a,b", "1,908,2026-01-01 00:00:00,x"]),
        );
        // "a,b" quoted is one field and differs from two fields a and b.
        assert_eq!(c.common, 1, "{c}");
        let c = compare_rows(
            &rows(&["1,908.500,2026-01-01 00:00:00.500,Peter Shultz"]),
            &rows(&["1,908.5,2026-01-01 00:00:00.5,\"Peter Shultz\""]),
        );
        assert!(c.same(), "{c}");
    }

    #[test]
    fn flink_print_rows_equal_csv_rows() {
        let c = compare_rows(
            &rows(&[
                "1000,Peter Shultz,2026-01-01 00:00:00.000",
                "1001,Kate Smith,2026-01-01 00:00:10.250",
                "7,908.000",
            ]),
            &rows(&[
                "2> +I[1000, Peter Shultz, 2026-01-01T00:00]",
                "+I[1001, Kate Smith, 2026-01-01T00:00:10.250]",
                "1> +I[7, 908.000]",
            ]),
        );
        assert!(c.same(), "{c}");
        let c = compare_rows(&rows(&["7,1"]), &rows(&["1> -U[7, 1]"]));
        assert_eq!(c.only_right.0, rows(&["-U 7,1"]));
    }

    #[test]
    fn multiplicity_counts() {
        let c = compare_rows(&rows(&["a", "a", "b"]), &rows(&["a", "b", "c"]));
        assert_eq!(c.common, 2);
        assert_eq!(c.only_left, (rows(&["a"]), 1));
        assert_eq!(c.only_right, (rows(&["c"]), 1));
        assert!(!c.same());
    }
}
