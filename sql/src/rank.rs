//! Top-N and deduplication over a whole stream (no window; Flink's `Rank` with its
//! `AppendOnlyTopNFunction` and `RetractableTopNFunction`): per partition key, the rows in
//! keyed state in rank order, and for every input change the changes of the key's top N.
//!
//! - With the rank selected, each rank whose row changed is updated: `-U[old, k]` then
//!   `+U[new, k]`; a rank filled for the first time is `+I[row, k]`, one emptied `-D`.
//! - Without it, rows entering the top N are `+I`, rows leaving it `-D`.
//! - Appended input keeps only the best N rows (a row beyond them can never come back);
//!   input with retractions keeps every row, so a row can move up when a better one is taken
//!   back.
//! - Equal rows by the sort keys rank in arrival order (the new one after the old ones).

use crate::changelog::{Change, RowKind};
use crate::plan::SortKey;
use crate::topn::compare_rows;
use crate::types::{Row, Value};
use fjord::state::{StateTtlConfig, ValueState, ValueStateDescriptor};
use fjord::{BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// The Top-N function of a [`crate::plan::Step::TopN`].
#[derive(Clone)]
pub struct RankFn {
    order: Arc<Vec<SortKey>>,
    limit: usize,
    /// The rank is part of the output: changes are per rank.
    with_rank: bool,
    /// The input has retractions: keep every row.
    retracts: bool,
    state_ttl: Option<Duration>,
    state: Option<ValueState<Vec<Row>>>,
}

impl RankFn {
    /// The best `limit` rows by `order`.
    pub fn new(
        order: Vec<SortKey>,
        limit: usize,
        with_rank: bool,
        retracts: bool,
        state_ttl: Option<Duration>,
    ) -> Self {
        RankFn {
            order: Arc::new(order),
            limit,
            with_rank,
            retracts,
            state_ttl,
            state: None,
        }
    }

    /// Applies one change to the rows of a key (in rank order) and emits the changes of the
    /// top N, each row with its rank appended.
    pub fn on_change(
        &self,
        rows: &mut Vec<Row>,
        change: Change,
        emit: &mut impl FnMut(RowKind, Row),
    ) {
        let before: Vec<Row> = rows.iter().take(self.limit).cloned().collect();
        if change.kind.is_accumulate() {
            // After every row that is not worse: equal rows keep arrival order.
            let at = rows.partition_point(|r| compare_rows(&self.order, r, &change.row).is_le());
            if at >= self.limit && !self.retracts {
                return;
            }
            rows.insert(at, change.row);
            if !self.retracts {
                rows.truncate(self.limit);
            }
        } else {
            match rows.iter().position(|r| *r == change.row) {
                Some(at) => {
                    rows.remove(at);
                }
                // Not in the state (beyond the top N of appended rows, or expired).
                None => return,
            }
        }
        let after = &rows[..rows.len().min(self.limit)];
        // The rank appended (NULL when it is not part of the output).
        let ranked = |row: &Row, k: Option<usize>| {
            let mut r = row.clone();
            r.push(k.map_or(Value::Null, |k| Value::BigInt(k as i64 + 1)));
            r
        };
        if self.with_rank {
            for k in 0..self.limit.max(before.len()).max(after.len()) {
                match (before.get(k), after.get(k)) {
                    (Some(old), Some(new)) if old != new => {
                        emit(RowKind::UpdateBefore, ranked(old, Some(k)));
                        emit(RowKind::UpdateAfter, ranked(new, Some(k)));
                    }
                    (None, Some(new)) => emit(RowKind::Insert, ranked(new, Some(k))),
                    (Some(old), None) => emit(RowKind::Delete, ranked(old, Some(k))),
                    _ => {}
                }
            }
        } else {
            // Rows out, then rows in (multisets: a row twice leaves or enters once per copy).
            let mut entering: Vec<&Row> = after.iter().collect();
            for old in &before {
                match entering.iter().position(|r| *r == old) {
                    Some(i) => {
                        entering.remove(i);
                    }
                    None => emit(RowKind::Delete, ranked(old, None)),
                }
            }
            for new in entering {
                emit(RowKind::Insert, ranked(new, None));
            }
        }
    }
}

impl KeyedProcessFunction<Vec<Value>, Change, Change> for RankFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let mut descriptor = ValueStateDescriptor::new("rank");
        if let Some(ttl) = self.state_ttl {
            descriptor = descriptor.with_ttl(StateTtlConfig::new(ttl));
        }
        self.state = Some(ctx.get_state(&descriptor)?);
        Ok(())
    }

    fn process_element(
        &mut self,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Change>,
    ) -> Result<(), BoxError> {
        let state = self.state.as_ref().ok_or("rank not opened")?;
        let mut rows = state.value().unwrap_or_default();
        let mut out = Vec::new();
        self.on_change(&mut rows, change, &mut |kind, row| {
            out.push(Change { kind, row })
        });
        if rows.is_empty() {
            state.clear();
        } else {
            state.update(rows);
        }
        for c in out {
            ctx.collect(c);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: &RankFn, changes: &[(RowKind, i32)]) -> Vec<String> {
        let mut rows = Vec::new();
        let mut out = Vec::new();
        for (kind, v) in changes {
            let change = Change {
                kind: *kind,
                row: vec![Value::Int(*v)],
            };
            f.on_change(&mut rows, change, &mut |k, r| {
                out.push(format!("{}{:?}", k.short(), r));
            });
        }
        out
    }

    fn desc() -> Vec<SortKey> {
        vec![SortKey {
            column: 0,
            descending: true,
            nulls_first: false,
        }]
    }

    #[test]
    fn ranks_shift_as_better_rows_arrive_and_leave() {
        use RowKind::*;
        let f = RankFn::new(desc(), 2, true, true, None);
        let out = run(
            &f,
            &[
                (Insert, 5),
                (Insert, 7),
                (Insert, 1),
                (Insert, 6),
                (Delete, 7),
            ],
        );
        assert_eq!(
            out,
            vec![
                "+I[Int(5), BigInt(1)]",
                "-U[Int(5), BigInt(1)]",
                "+U[Int(7), BigInt(1)]",
                "+I[Int(5), BigInt(2)]",
                // 1 is third: nothing changes in the top 2.
                "-U[Int(5), BigInt(2)]",
                "+U[Int(6), BigInt(2)]",
                // 7 taken back: 6 moves up, 5 comes back (kept because input retracts).
                "-U[Int(7), BigInt(1)]",
                "+U[Int(6), BigInt(1)]",
                "-U[Int(6), BigInt(2)]",
                "+U[Int(5), BigInt(2)]",
            ]
        );
    }

    #[test]
    fn without_the_rank_rows_enter_and_leave_the_top_n() {
        use RowKind::*;
        let f = RankFn::new(desc(), 2, false, false, None);
        let out = run(&f, &[(Insert, 5), (Insert, 7), (Insert, 1), (Insert, 6)]);
        assert_eq!(
            out,
            vec![
                "+I[Int(5), Null]",
                "+I[Int(7), Null]",
                "-D[Int(5), Null]",
                "+I[Int(6), Null]",
            ]
        );
    }
}
