//! The window Top-N operator's parts (Flink's `WindowRank` and window deduplication): the
//! ordering of rows by a Top-N's `ORDER BY`, the accumulator that keeps a window's best `N`
//! rows of a partition (an `AggregateFunction`, so it lives in the window operator's keyed
//! state, is checkpointed with its key group and moves with it on rescaling), and the window
//! assigner that reads a row's window from its `window_start`/`window_end` columns (a Top-N
//! after a window aggregation). The planner side is `plan_topn`.

use crate::expr::compare;
use crate::plan::SortKey;
use crate::types::{Row, Value};
use fjord::AggregateFunction;
use fjord::windows::{EventTimeTrigger, TimeWindow, Trigger, WindowAssigner};
use std::cmp::Ordering;
use std::sync::Arc;

/// The order of two rows by sort keys: per key ascending or descending, NULLs first or last
/// (Flink's default: NULLs first ascending, last descending); equal rows compare `Equal`.
pub fn compare_rows(order: &[SortKey], a: &Row, b: &Row) -> Ordering {
    for key in order {
        let (x, y) = (&a[key.column], &b[key.column]);
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) if key.nulls_first => Ordering::Less,
            (true, false) => Ordering::Greater,
            (false, true) if key.nulls_first => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let o = compare(x, y).unwrap_or(Ordering::Equal);
                if key.descending { o.reverse() } else { o }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Keeps the first `limit` rows of a window and partition in `order`: the accumulator is
/// those rows, sorted. Among rows with equal sort keys the earlier added one ranks first (as
/// Flink's Top-N buffer does for the rows of one subtask), so deduplication `ORDER BY ts ASC`
/// keeps the first of rows with the same time and `DESC` the first added of the last ones.
#[derive(Debug, Clone)]
pub struct TopN {
    /// The sort keys over the input row.
    pub order: Arc<Vec<SortKey>>,
    /// How many rows to keep (the `N` of `rownum <= N`), at least 1.
    pub limit: usize,
}

impl TopN {
    /// Inserts `row` after every row that does not rank below it; drops what falls past
    /// `limit`.
    fn insert(&self, rows: &mut Vec<Row>, row: Row) {
        let at = rows.partition_point(|r| compare_rows(&self.order, r, &row) != Ordering::Greater);
        if at < self.limit {
            rows.insert(at, row);
            rows.truncate(self.limit);
        }
    }
}

impl AggregateFunction<Row, Vec<Row>, Vec<Row>> for TopN {
    fn create_accumulator(&mut self) -> Vec<Row> {
        Vec::new()
    }

    fn add(&mut self, row: Row, mut acc: Vec<Row>) -> Vec<Row> {
        self.insert(&mut acc, row);
        acc
    }

    fn get_result(&mut self, acc: &Vec<Row>) -> Vec<Row> {
        acc.clone()
    }

    fn merge(&mut self, mut a: Vec<Row>, b: Vec<Row>) -> Vec<Row> {
        for row in b {
            self.insert(&mut a, row);
        }
        a
    }
}

/// The window of a row that carries it in two TIMESTAMP columns (`window_start`,
/// `window_end` of a window aggregation's result). The window fires when the watermark
/// reaches `window_end - 1`, after the aggregation emitted every row of that window (it
/// emits them before it forwards that watermark), so no row of the window is late.
#[derive(Debug, Clone, Copy)]
pub struct WindowFromColumns {
    /// The `window_start` column.
    pub start: usize,
    /// The `window_end` column.
    pub end: usize,
}

impl WindowAssigner<Row, TimeWindow> for WindowFromColumns {
    fn assign_windows(&self, row: &Row, _timestamp: i64, out: &mut Vec<TimeWindow>) {
        // Both are never NULL: a window aggregation sets them.
        if let (Value::Timestamp(s), Value::Timestamp(e)) = (&row[self.start], &row[self.end]) {
            out.push(TimeWindow::new(*s, *e));
        }
    }

    fn default_trigger(&self) -> Box<dyn Trigger<Row, TimeWindow>> {
        Box::new(EventTimeTrigger)
    }

    fn is_event_time(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(column: usize, descending: bool) -> SortKey {
        SortKey {
            column,
            descending,
            nulls_first: !descending,
        }
    }

    fn top(order: Vec<SortKey>, limit: usize, rows: &[Row]) -> Vec<Row> {
        let mut f = TopN {
            order: Arc::new(order),
            limit,
        };
        let mut acc = f.create_accumulator();
        for r in rows {
            acc = f.add(r.clone(), acc);
        }
        f.get_result(&acc)
    }

    fn row(a: Option<i32>, b: i32) -> Row {
        vec![a.map_or(Value::Null, Value::Int), Value::Int(b)]
    }

    #[test]
    fn descending_puts_nulls_last_and_ascending_first_as_flink() {
        let rows = [
            row(Some(2), 1),
            row(None, 2),
            row(Some(7), 3),
            row(Some(5), 4),
        ];
        assert_eq!(
            top(vec![key(0, true)], 2, &rows),
            vec![row(Some(7), 3), row(Some(5), 4)]
        );
        assert_eq!(
            top(vec![key(0, false)], 2, &rows),
            vec![row(None, 2), row(Some(2), 1)]
        );
        let nulls_last = SortKey {
            column: 0,
            descending: false,
            nulls_first: false,
        };
        assert_eq!(
            top(vec![nulls_last], 4, &rows)[3],
            row(None, 2),
            "explicit NULLS LAST"
        );
    }

    #[test]
    fn second_key_breaks_ties_and_equal_rows_keep_arrival_order() {
        let rows = [
            row(Some(4), 6),
            row(Some(4), 9),
            row(Some(1), 1),
            row(Some(4), 9),
        ];
        assert_eq!(
            top(vec![key(0, true), key(1, true)], 3, &rows),
            vec![row(Some(4), 9), row(Some(4), 9), row(Some(4), 6)]
        );
        let a = vec![Value::Int(1), Value::String("first".into())];
        let b = vec![Value::Int(1), Value::String("second".into())];
        assert_eq!(
            top(vec![key(0, false)], 1, &[a.clone(), b.clone()]),
            vec![a]
        );
    }

    #[test]
    fn merged_accumulators_keep_the_best_rows_of_both() {
        let mut f = TopN {
            order: Arc::new(vec![key(1, false)]),
            limit: 2,
        };
        let a = [row(None, 5), row(None, 1)]
            .into_iter()
            .fold(f.create_accumulator(), |acc, r| f.add(r, acc));
        let b = [row(None, 3), row(None, 0), row(None, 9)]
            .into_iter()
            .fold(f.create_accumulator(), |acc, r| f.add(r, acc));
        assert_eq!(f.merge(a, b), vec![row(None, 0), row(None, 1)]);
    }
}
