//! Compares the result rows of two engines: CSV lines or rows of Flink's `print` connector
//! (`2> +I[1000, Peter Shultz, 2026-01-01T00:00]`), compared as multisets (sorted), after
//! normalizing what two correct writers may spell differently — CSV quoting, timestamps
//! (`2026-01-01T00:00`, `2026-01-01 00:00:00` and `2026-01-01 00:00:00.000`) and decimals
//! (`908.000` and `908`). Rows of another kind than insert (`-U[...]`, `-D[...]`) keep their
//! kind, so they never equal an insert.
//!
//! Updating results (see [`crate::changelog`]) are compared by their final table: each side's
//! changelog (Flink's `+I[...]`/`-U[...]`/`+U[...]`/`-D[...]` rows, Fjord's `+I,...` CSV rows)
//! is applied to an empty table ([`final_state`]) and the two tables must be equal.

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
    format!("{kind}{}", to_csv(&fields))
}

/// Normalized fields written as one CSV line.
fn to_csv(fields: &[String]) -> String {
    fields
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
        .join(",")
}

/// Whether a changelog row adds its row to the table or takes it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Retract,
}

/// One changelog row: a Flink `print` row (`+I[...]`, `-U[...]`, `+U[...]`, `-D[...]`) or a CSV
/// line whose first field is the kind (`+I,...`), as a change and the normalized row.
fn changelog_entry(line: &str) -> Result<(Change, String), NexmarkError> {
    let (kind, fields) = match flink_print_row(line) {
        Some((kind, fields)) => (kind.trim().to_string(), fields),
        None => {
            let mut fields = split_csv(line);
            let kind = fields.remove(0);
            (kind, fields)
        }
    };
    let change = match kind.as_str() {
        "" | "+I" | "+U" => Change::Add,
        "-U" | "-D" => Change::Retract,
        other => {
            return Err(NexmarkError::BadChangelog(format!(
                "row kind '{other}' in {line:?}; a changelog row starts with +I, -U, +U or -D"
            )));
        }
    };
    Ok((change, to_csv(&fields)))
}

/// The table a changelog leaves: its rows applied in any order (`+I`/`+U` add a row, `-U`/`-D`
/// take one equal row away), normalized as by [`normalize`], sorted. Order does not matter
/// because the result is a multiset of counts; a changelog that takes away a row more often
/// than it adds it is an error, so a wrong or incomplete changelog cannot pass unseen.
///
/// # Errors
/// [`NexmarkError::BadChangelog`] for a row without a kind or with more retractions than
/// additions.
pub fn final_state(rows: &[String]) -> Result<Vec<String>, NexmarkError> {
    let mut table: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for row in rows {
        let (change, row) = changelog_entry(row)?;
        *table.entry(row).or_default() += match change {
            Change::Add => 1,
            Change::Retract => -1,
        };
    }
    let mut out = Vec::new();
    for (row, n) in table {
        if n < 0 {
            return Err(NexmarkError::BadChangelog(format!(
                "{} more retractions than insertions of the row {row}",
                -n
            )));
        }
        out.extend(std::iter::repeat_n(row, n as usize));
    }
    Ok(out)
}

/// The table an upsert changelog leaves, whose rows are identified by their first `key_len`
/// fields: the rows applied in order, `+I`/`+U` putting the row under its key (replacing the
/// row there), `-U`/`-D` taking the key's row away. Flink emits such a changelog where its plan
/// knows the key (q9's winning bid per auction id: `+I`, then `+U` rows without `-U`). A
/// retracting changelog in order leaves the same table as with [`final_state`]. Order matters,
/// so the changes of one key must be in the order they were made: true of both engines'
/// outputs, as one key's changes come from one subtask, which writes them in order (to its
/// file, or to Flink's stdout).
///
/// # Errors
/// [`NexmarkError::BadChangelog`] for a row without a kind or with fewer fields than the key,
/// and for a `-U`/`-D` of a row the table does not hold under its key.
pub fn final_state_by_key(rows: &[String], key_len: usize) -> Result<Vec<String>, NexmarkError> {
    let mut table: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for line in rows {
        let (change, row) = changelog_entry(line)?;
        let fields = split_csv(&row);
        if fields.len() < key_len {
            return Err(NexmarkError::BadChangelog(format!(
                "{line:?} has fewer than the {key_len} key fields"
            )));
        }
        let key = to_csv(&fields[..key_len]);
        match change {
            Change::Add => {
                table.insert(key, row);
            }
            Change::Retract => {
                if table.get(&key) != Some(&row) {
                    return Err(NexmarkError::BadChangelog(format!(
                        "{line:?} takes away a row the table does not hold under its key {key}"
                    )));
                }
                table.remove(&key);
            }
        }
    }
    Ok(table.into_values().collect())
}

/// Compares two changelogs by the tables they leave (see [`final_state`]).
///
/// # Errors
/// As [`final_state`], for either side.
pub fn compare_changelogs(left: &[String], right: &[String]) -> Result<Comparison, NexmarkError> {
    Ok(compare_rows(&final_state(left)?, &final_state(right)?))
}

/// Compares two changelogs by the tables they leave as upsert changelogs keyed by their
/// first `key_len` fields (see [`final_state_by_key`]).
///
/// # Errors
/// As [`final_state_by_key`], for either side.
pub fn compare_changelogs_by_key(
    left: &[String],
    right: &[String],
    key_len: usize,
) -> Result<Comparison, NexmarkError> {
    Ok(compare_rows(
        &final_state_by_key(left, key_len)?,
        &final_state_by_key(right, key_len)?,
    ))
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
    // Flink's csv format writes a DECIMAL as Java's BigDecimal after stripping trailing
    // zeros: 15890.000 as `1.589E+4`.
    let f = &plain_decimal(f).unwrap_or_else(|| f.to_string());
    if !f.contains('.') && f.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        return f.to_string();
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

/// A decimal in scientific notation (`1.589E+4`, `-2E+1`, `1.5E-2`) written out in plain
/// digits (`15890`, `-20`, `0.015`); `None` for any other text.
fn plain_decimal(f: &str) -> Option<String> {
    let (mantissa, exp) = f.split_once('E')?;
    let exp: i64 = exp.parse().ok()?;
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() || !(int.bytes().chain(frac.bytes())).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    // The decimal point sits after `point` digits.
    let point = int.len() as i64 + exp;
    let text = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (a, b) = digits.split_at(point as usize);
        format!("{a}.{b}")
    };
    Some(format!("{sign}{text}"))
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
        // Flink's csv format strips a DECIMAL's trailing zeros: 15890.000 is `1.589E+4`.
        let c = compare_rows(
            &rows(&["1.589E+4,-2E+1,1.5E-2,3E+0,1E10x"]),
            &rows(&["15890.000,-20,0.015,3,1E10x"]),
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
    fn changelogs_compare_by_the_table_they_leave() {
        // Fjord's CSV changelog and Flink's print changelog of the same updates, in another
        // order (another interleaving of parallel subtasks).
        let fjord = rows(&["+I,10,5", "-U,10,5", "+U,10,7", "+I,11,1.500"]);
        let flink = rows(&[
            "q4:1> +I[11, 1.5]",
            "q4:2> +I[10, 5]",
            "q4:2> -U[10, 5]",
            "q4:2> +U[10, 6]",
            "q4:2> -U[10, 6]",
            "q4:2> +U[10, 7]",
        ]);
        assert_eq!(final_state(&fjord).unwrap(), rows(&["10,7", "11,1.5"]));
        let c = compare_changelogs(&fjord, &flink).unwrap();
        assert!(c.same(), "{c}");
        // A retraction that comes before its insertion (another subtask printed first).
        let c = compare_changelogs(&rows(&["-U,1", "+I,1", "+U,2"]), &rows(&["+I[2]"])).unwrap();
        assert!(c.same(), "{c}");
        // A different final value differs, intermediate values do not matter.
        let c = compare_changelogs(&fjord, &rows(&["+I[10, 5]", "+I[11, 1.5]"])).unwrap();
        assert_eq!(c.only_left.0, rows(&["10,7"]));
        // Deletes remove the row.
        assert!(final_state(&rows(&["+I,a", "-D,a"])).unwrap().is_empty());
        // Taking away a row that is not there, or a row without a kind, is an error.
        assert!(final_state(&rows(&["-D,a"])).is_err());
        assert!(final_state(&rows(&["a,1"])).is_err());
    }

    #[test]
    fn upsert_changelogs_compare_by_the_last_row_of_each_key() {
        // Flink's upsert form (no -U) and Fjord's retracting form of the same changes.
        let flink = rows(&["1> +I[7, a, 5]", "2> +I[8, b, 1]", "1> +U[7, c, 9]"]);
        let fjord = rows(&["+I,7,a,5", "+I,8,b,1", "-U,7,a,5", "+U,7,c,9"]);
        assert_eq!(
            final_state_by_key(&flink, 1).unwrap(),
            rows(&["7,c,9", "8,b,1"])
        );
        let c = compare_changelogs_by_key(&fjord, &flink, 1).unwrap();
        assert!(c.same(), "{c}");
        // Folded as a multiset, the upsert form keeps every version of key 7.
        assert_eq!(final_state(&flink).unwrap().len(), 3);
        // A retraction must take away the row the key holds.
        assert!(final_state_by_key(&rows(&["+I,7,a", "-U,7,b"]), 1).is_err());
        assert!(final_state_by_key(&rows(&["-D,7,a"]), 1).is_err());
        assert!(final_state_by_key(&rows(&["+I,7"]), 2).is_err());
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
