//! Changelogs: the rows of an updating table (a `GROUP BY` without windows, say) carry one
//! of Flink's four change kinds, and whoever reads them applies the changes in order.
//!
//! - `+I` insert, `-U` the row before an update, `+U` the row after it, `-D` delete: Flink's
//!   `RowKind`, printed the same way (`+U[alice, 2]`).
//! - A [`Change`] is a row with its kind; an append-only stream is one of inserts only.
//! - What a sink takes is [`SinkChanges`]: append-only sinks refuse updating queries at
//!   planning time, as Flink's planner does.

use crate::types::Row;
use serde::{Deserialize, Serialize};

/// The kind of a change (Flink's `RowKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowKind {
    /// `+I`: a new row.
    Insert,
    /// `-U`: the previous content of an updated row (retracts it).
    UpdateBefore,
    /// `+U`: the new content of an updated row.
    UpdateAfter,
    /// `-D`: a deleted row (retracts it).
    Delete,
}

impl RowKind {
    /// `+I`, `-U`, `+U` or `-D`, as Flink prints them.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// `+I` and `+U` add a row; `-U` and `-D` take one back.
    pub fn is_accumulate(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }

    /// The kind of `short` (`+I`, `-U`, `+U`, `-D`).
    pub fn parse(short: &str) -> Option<RowKind> {
        Some(match short {
            "+I" => RowKind::Insert,
            "-U" => RowKind::UpdateBefore,
            "+U" => RowKind::UpdateAfter,
            "-D" => RowKind::Delete,
            _ => return None,
        })
    }
}

/// A row of a changelog with its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// What the row does to the table.
    pub kind: RowKind,
    /// The row.
    pub row: Row,
}

impl Change {
    /// An insert of `row`.
    pub fn insert(row: Row) -> Change {
        Change {
            kind: RowKind::Insert,
            row,
        }
    }
}

/// What a sink connector takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkChanges {
    /// Inserts only (files, message queues): an updating query is refused.
    AppendOnly,
    /// Every change kind, written as it comes (`print` shows the kinds, `blackhole` drops
    /// them).
    All,
    /// Every change kind, applied by a primary key (a `jdbc` table with `PRIMARY KEY`):
    /// `+I`/`+U` upsert the row, `-U`/`-D` delete its key (Flink's upsert sinks).
    Upsert,
}

/// The rows a changelog leaves in its table once every change is applied, as a multiset
/// (each row with its count): `+I`/`+U` add a row, `-U`/`-D` remove one. The counts are
/// summed, so the result does not depend on the order of the changes: two systems whose
/// subtasks interleaved independent keys differently compare equal exactly when they leave
/// the same table.
///
/// # Errors
/// A row taken back more often than it was added (a changelog that is not consistent).
pub fn materialize<R: Ord + Clone + std::fmt::Debug>(
    changes: impl IntoIterator<Item = (RowKind, R)>,
) -> Result<std::collections::BTreeMap<R, usize>, String> {
    let mut net: std::collections::BTreeMap<R, i64> = std::collections::BTreeMap::new();
    for (kind, row) in changes {
        *net.entry(row).or_insert(0) += if kind.is_accumulate() { 1 } else { -1 };
    }
    let mut table = std::collections::BTreeMap::new();
    for (row, n) in net {
        if n < 0 {
            return Err(format!(
                "a row is taken back {} more time(s) than it was added: {row:?}",
                -n
            ));
        }
        if n > 0 {
            table.insert(row, n as usize);
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_print_and_parse_as_flink_prints_them() {
        for k in [
            RowKind::Insert,
            RowKind::UpdateBefore,
            RowKind::UpdateAfter,
            RowKind::Delete,
        ] {
            assert_eq!(RowKind::parse(k.short()), Some(k));
        }
        assert_eq!(RowKind::parse("+X"), None);
    }

    #[test]
    fn materializing_applies_changes_in_any_interleaving_of_keys() {
        use RowKind::*;
        let a = vec![
            (Insert, "a1"),
            (Insert, "b1"),
            (UpdateBefore, "a1"),
            (UpdateAfter, "a2"),
            (Delete, "b1"),
        ];
        let b = vec![
            (Insert, "b1"),
            (Delete, "b1"),
            (Insert, "a1"),
            (UpdateBefore, "a1"),
            (UpdateAfter, "a2"),
        ];
        let want: std::collections::BTreeMap<_, _> = [("a2", 1)].into();
        assert_eq!(materialize(a).unwrap(), want);
        assert_eq!(materialize(b).unwrap(), want);
        assert!(
            materialize(vec![(Delete, "x")])
                .unwrap_err()
                .contains("taken back 1 more")
        );
    }
}
