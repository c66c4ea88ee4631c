//! OVER aggregations in event time (Flink's `OverAggregate` with its `RowTime*Function`s):
//! every row gets aggregates over the rows of its partition that precede it in rowtime order.
//!
//! - Rows wait in keyed state until the watermark passes their rowtime (an event-time timer),
//!   then are processed in rowtime order; a row whose rowtime is not after the last one
//!   processed for its key is late and dropped, as Flink drops it.
//! - `ROWS BETWEEN n PRECEDING AND CURRENT ROW`: the row and the `n` rows before it (rows of
//!   the same rowtime in arrival order); `RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT
//!   ROW`: every row whose rowtime is at most that much earlier, and all rows of the same
//!   rowtime get the same result; `UNBOUNDED PRECEDING` for both: every row so far.
//! - The output is the input row with the aggregates appended, with its rowtime: appended
//!   rows, still a time attribute.

use crate::group_agg::{GroupAcc, GroupAggregateFn};
use crate::types::{Row, Value};
use fjord::state::{
    MapState, MapStateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
};
use fjord::{BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// The frame of an OVER window (its end is always the current row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OverFrame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW` (`None`: `UNBOUNDED PRECEDING`).
    Rows(Option<u64>),
    /// `RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT ROW`, in ms (`None`: unbounded).
    Range(Option<i64>),
}

impl std::fmt::Display for OverFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OverFrame::Rows(None) => write!(f, "ROWS UNBOUNDED PRECEDING"),
            OverFrame::Rows(Some(n)) => write!(f, "ROWS {n} PRECEDING"),
            OverFrame::Range(None) => write!(f, "RANGE UNBOUNDED PRECEDING"),
            OverFrame::Range(Some(ms)) => write!(f, "RANGE {ms} ms PRECEDING"),
        }
    }
}

/// A key's processed state: the accumulators, the rows in the frame (bounded frames), and
/// the last rowtime processed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OverState {
    accs: Vec<GroupAcc>,
    frame: VecDeque<(i64, Row)>,
    last: Option<i64>,
}

/// The function of a [`crate::plan::Step::OverAggregate`], over rows whose first `width`
/// columns are the input row and whose next columns are the calls' arguments.
#[derive(Clone)]
pub struct OverAggregateFn {
    aggs: GroupAggregateFn,
    width: usize,
    time_column: usize,
    frame: OverFrame,
    state_ttl: Option<Duration>,
    state: Option<KeyState>,
}

/// A key's rows waiting for the watermark (by rowtime) and its processed state.
type KeyState = (MapState<i64, Vec<Row>>, ValueState<OverState>);

impl OverAggregateFn {
    /// The function: `aggs` reads its arguments after the first `width` columns.
    pub fn new(
        aggs: GroupAggregateFn,
        width: usize,
        time_column: usize,
        frame: OverFrame,
        state_ttl: Option<Duration>,
    ) -> Self {
        OverAggregateFn {
            aggs,
            width,
            time_column,
            frame,
            state_ttl,
            state: None,
        }
    }

    /// Processes the rows of one rowtime `ts` (in arrival order) against a key's state; each
    /// output row (the input columns and the aggregates) goes to `emit`.
    pub fn process_rows(
        &self,
        state: &mut OverState,
        ts: i64,
        rows: Vec<Row>,
        emit: &mut impl FnMut(Row),
    ) -> Result<(), BoxError> {
        if state.accs.is_empty() {
            state.accs = self.aggs.create();
        }
        let output = |row: &Row, accs: &[GroupAcc]| {
            let mut out = row[..self.width].to_vec();
            out.extend(self.aggs.result(accs));
            out
        };
        match self.frame {
            OverFrame::Rows(bound) => {
                for row in rows {
                    self.aggs.apply(&mut state.accs, &row, 1)?;
                    if let Some(n) = bound {
                        state.frame.push_back((ts, row.clone()));
                        if state.frame.len() as u64 > n + 1
                            && let Some((_, old)) = state.frame.pop_front()
                        {
                            self.aggs.apply(&mut state.accs, &old, -1)?;
                        }
                    }
                    emit(output(&row, &state.accs));
                }
            }
            OverFrame::Range(bound) => {
                for row in &rows {
                    self.aggs.apply(&mut state.accs, row, 1)?;
                    if bound.is_some() {
                        state.frame.push_back((ts, row.clone()));
                    }
                }
                if let Some(ms) = bound {
                    while state.frame.front().is_some_and(|(t, _)| *t < ts - ms) {
                        if let Some((_, old)) = state.frame.pop_front() {
                            self.aggs.apply(&mut state.accs, &old, -1)?;
                        }
                    }
                }
                for row in &rows {
                    emit(output(row, &state.accs));
                }
            }
        }
        state.last = Some(ts);
        Ok(())
    }
}

impl KeyedProcessFunction<Vec<Value>, Row, Row> for OverAggregateFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let ttl = self.state_ttl.map(StateTtlConfig::new);
        let mut pending = MapStateDescriptor::new("over-pending");
        let mut processed = ValueStateDescriptor::new("over-state");
        if let Some(ttl) = ttl {
            pending = pending.with_ttl(ttl);
            processed = processed.with_ttl(ttl);
        }
        self.state = Some((ctx.get_map_state(&pending)?, ctx.get_state(&processed)?));
        Ok(())
    }

    fn process_element(
        &mut self,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (pending, processed) = self.state.as_ref().ok_or("over aggregate not opened")?;
        let ts = match row[self.time_column] {
            Value::Timestamp(ms) | Value::TimestampLtz(ms) => ms,
            _ => return Err("the OVER window's rowtime is NULL in a row".into()),
        };
        if processed
            .value()
            .and_then(|s| s.last)
            .is_some_and(|last| ts <= last)
        {
            // Late: its key's rows up to a later rowtime were emitted already (Flink drops it).
            return Ok(());
        }
        let mut rows = pending.get(&ts).unwrap_or_default();
        if rows.is_empty() {
            ctx.timer_service().register_event_time_timer(ts);
        }
        rows.push(row);
        pending.put(ts, rows);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (pending, processed) = self.state.as_ref().ok_or("over aggregate not opened")?;
        let Some(rows) = pending.get(&timestamp) else {
            return Ok(());
        };
        pending.remove(&timestamp);
        let mut state = processed.value().unwrap_or_default();
        let mut out = Vec::new();
        self.process_rows(&mut state, timestamp, rows, &mut |r| out.push(r))?;
        processed.update(state);
        for r in out {
            ctx.collect_with_timestamp(r, timestamp);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AggFunc;
    use crate::types::DataType;

    /// Rows of (rowtime, value): output per row the value and its SUM and MAX over the frame.
    fn run(frame: OverFrame, batches: &[(i64, &[i32])]) -> Vec<(i32, Value, Value)> {
        let calls = vec![(AggFunc::Sum, DataType::Int), (AggFunc::Max, DataType::Int)];
        let bounded = !matches!(frame, OverFrame::Rows(None) | OverFrame::Range(None));
        let aggs = GroupAggregateFn::new(calls, vec![], 2, bounded, None);
        let f = OverAggregateFn::new(aggs, 2, 0, frame, None);
        let mut state = OverState::default();
        let mut out = Vec::new();
        for (ts, values) in batches {
            let rows = values
                .iter()
                .map(|v| {
                    vec![
                        Value::Timestamp(*ts),
                        Value::Int(*v),
                        Value::Int(*v),
                        Value::Int(*v),
                    ]
                })
                .collect();
            f.process_rows(&mut state, *ts, rows, &mut |r| {
                let Value::Int(v) = r[1] else { panic!() };
                out.push((v, r[2].clone(), r[3].clone()));
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn rows_frames_count_rows_and_range_frames_take_peers_and_times() {
        let input: &[(i64, &[i32])] = &[(1000, &[5, 1]), (2000, &[3]), (4000, &[2])];
        let (i, s) = (|v| Value::Int(v), |v| Value::Int(v));
        assert_eq!(
            run(OverFrame::Rows(Some(1)), input),
            vec![
                (5, i(5), s(5)),
                (1, i(6), s(5)),
                (3, i(4), s(3)),
                (2, i(5), s(3))
            ]
        );
        // Peers of the same rowtime share the result; 1000 leaves the 1-second range at 2001.
        assert_eq!(
            run(OverFrame::Range(Some(1000)), input),
            vec![
                (5, i(6), s(5)),
                (1, i(6), s(5)),
                (3, i(9), s(5)),
                (2, i(2), s(2))
            ]
        );
        assert_eq!(
            run(OverFrame::Rows(None), input),
            vec![
                (5, i(5), s(5)),
                (1, i(6), s(5)),
                (3, i(9), s(5)),
                (2, i(11), s(5))
            ]
        );
        assert_eq!(
            run(OverFrame::Range(None), input),
            vec![
                (5, i(6), s(5)),
                (1, i(6), s(5)),
                (3, i(9), s(5)),
                (2, i(11), s(5))
            ]
        );
    }
}
