//! Updating results as a changelog: the rows of queries whose result changes as events arrive
//! (an aggregate per key, the best bid of an auction, a top 10) are CSV lines whose first
//! field is the row's kind, as in Flink's `RowKind`: `+I` (insert), `-U` / `+U` (the old and
//! the new row of an update), `-D` (delete). Applying the changes in order gives the result
//! table; [`crate::compare::final_state`] does that for the comparison with Flink.

/// The changelog rows that turn a key's result row `old` into `new` (`None`: no row): nothing
/// when they are equal, `+I,new` for a first row, `-U,old` and `+U,new` for an update,
/// `-D,old` for a removal.
pub fn changes(old: Option<&str>, new: Option<&str>) -> Vec<String> {
    match (old, new) {
        (Some(o), Some(n)) if o == n => Vec::new(),
        (None, None) => Vec::new(),
        (None, Some(n)) => vec![format!("+I,{n}")],
        (Some(o), Some(n)) => vec![format!("-U,{o}"), format!("+U,{n}")],
        (Some(o), None) => vec![format!("-D,{o}")],
    }
}

/// The changelog rows that turn a group's row from `old` (none: a first row) into `new`:
/// `+I`, or `-U` and `+U`, built straight into the lines `out` receives (the aggregates of
/// the daily reports, which change with every event). `row` appends a row's columns.
pub fn emit_update<T>(
    old: Option<&T>,
    new: &T,
    row: impl Fn(&mut String, &T),
    mut out: impl FnMut(String),
) {
    let line = |kind: &str, values: &T| {
        let mut s = String::with_capacity(96);
        s.push_str(kind);
        row(&mut s, values);
        s
    };
    match old {
        None => out(line("+I,", new)),
        Some(old) => {
            out(line("-U,", old));
            out(line("+U,", new));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_turn_one_row_into_another() {
        assert!(changes(None, None).is_empty());
        assert!(changes(Some("a,1"), Some("a,1")).is_empty());
        assert_eq!(changes(None, Some("a,1")), ["+I,a,1"]);
        assert_eq!(changes(Some("a,1"), Some("a,2")), ["-U,a,1", "+U,a,2"]);
        assert_eq!(changes(Some("a,1"), None), ["-D,a,1"]);
    }

    #[test]
    fn updates_are_written_as_insert_or_retract_and_update() {
        let mut out = Vec::new();
        let row = |s: &mut String, n: &u32| s.push_str(&format!("a,{n}"));
        emit_update(None, &1, row, |r| out.push(r));
        emit_update(Some(&1), &2, row, |r| out.push(r));
        assert_eq!(out, ["+I,a,1", "-U,a,1", "+U,a,2"]);
    }
}
