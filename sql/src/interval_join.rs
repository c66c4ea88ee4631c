//! An interval join (Flink's `TimeIntervalJoin` in event time): both inputs append, `ON`
//! bounds the two rowtimes (`lower <= left.ts - right.ts <= upper`), so each side's rows are
//! kept only until the watermark says no row of the other side can still match them.
//!
//! - A left row of time `t` matches right rows of times in `[t - upper, t - lower]`; it is
//!   kept until the watermark passes `t - lower`. A right row of time `s` matches left rows in
//!   `[s + lower, s + upper]` and is kept until the watermark passes `s + upper`.
//! - Outer joins: a row that leaves without having matched comes out padded with NULLs
//!   then, so the result is appended rows, never taken back (unlike a regular outer join).
//! - A row whose matches can no longer arrive when it comes (behind the watermark) joins the
//!   rows still kept and is not kept itself.

use crate::plan::{IntervalBounds, JoinKind};
use crate::types::{Row, Value};
use fjord::state::MapState;
use fjord::state::MapStateDescriptor;
use fjord::{BoxError, KeyedCoProcessFunction, KeyedProcessContext, RuntimeContext, Timestamp};
use std::sync::Arc;

/// The rows of one side kept by rowtime, each with whether it matched.
type Kept = MapState<i64, Vec<(Row, bool)>>;

/// The function of an interval join.
#[derive(Clone)]
pub struct IntervalJoinFn {
    kind: JoinKind,
    widths: (usize, usize),
    bounds: IntervalBounds,
    condition: Option<Arc<crate::expr::Expr>>,
    state: Option<(Kept, Kept)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

impl IntervalJoinFn {
    /// The join of rows `widths` wide (left, right) within `bounds`, pairs filtered by
    /// `condition` (over the joined row).
    pub fn new(
        kind: JoinKind,
        widths: (usize, usize),
        bounds: IntervalBounds,
        condition: Option<crate::expr::Expr>,
    ) -> Self {
        IntervalJoinFn {
            kind,
            widths,
            bounds,
            condition: condition.map(Arc::new),
            state: None,
        }
    }

    fn time(&self, side: Side, row: &Row) -> Option<i64> {
        let col = match side {
            Side::Left => self.bounds.left_time,
            Side::Right => self.bounds.right_time,
        };
        row.get(col).and_then(Value::epoch_ms)
    }

    fn padded(&self, side: Side, row: &Row) -> Row {
        let (l, r) = self.widths;
        match side {
            Side::Left => {
                let mut out = row.clone();
                out.extend(std::iter::repeat_n(Value::Null, r));
                out
            }
            Side::Right => {
                let mut out: Row = std::iter::repeat_n(Value::Null, l).collect();
                out.extend_from_slice(row);
                out
            }
        }
    }

    fn keeps(&self, side: Side) -> bool {
        match side {
            Side::Left => self.kind.keeps_left(),
            Side::Right => self.kind.keeps_right(),
        }
    }

    /// When a row of `side` at time `t` can no longer match (the watermark passed it).
    fn expiry(&self, side: Side, t: i64) -> i64 {
        match side {
            Side::Left => t - self.bounds.lower,
            Side::Right => t + self.bounds.upper,
        }
    }

    fn process(
        &mut self,
        side: Side,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (left, right) = self.state.as_ref().ok_or("interval join not opened")?;
        let (mine, others) = match side {
            Side::Left => (left, right),
            Side::Right => (right, left),
        };
        let Some(t) = self.time(side, &row) else {
            return Err("an interval join's rowtime is NULL in a row".into());
        };
        // The other side's times this row matches.
        let (from, to) = match side {
            Side::Left => (t - self.bounds.upper, t - self.bounds.lower),
            Side::Right => (t + self.bounds.lower, t + self.bounds.upper),
        };
        let null_key = ctx.current_key().iter().any(Value::is_null);
        let mut matched = false;
        let mut out = Vec::new();
        if !null_key {
            for ts in others.keys() {
                if ts < from || ts > to {
                    continue;
                }
                let mut rows = others.get(&ts).unwrap_or_default();
                let mut changed = false;
                for (other, other_matched) in &mut rows {
                    let joined = match side {
                        Side::Left => [row.as_slice(), other.as_slice()].concat(),
                        Side::Right => [other.as_slice(), row.as_slice()].concat(),
                    };
                    let ok = crate::join::holds(self.condition.as_deref(), &joined)?;
                    if ok {
                        matched = true;
                        if !*other_matched {
                            *other_matched = true;
                            changed = true;
                        }
                        out.push(joined);
                    }
                }
                if changed {
                    others.put(ts, rows);
                }
            }
        }
        let expires = self.expiry(side, t);
        if !null_key && expires > ctx.current_watermark() {
            let mut rows = mine.get(&t).unwrap_or_default();
            if rows.is_empty() {
                ctx.timer_service().register_event_time_timer(expires);
            }
            rows.push((row, matched));
            mine.put(t, rows);
        } else if !matched && self.keeps(side) {
            out.push(self.padded(side, &row));
        }
        for r in out {
            ctx.collect(r);
        }
        Ok(())
    }
}

impl KeyedCoProcessFunction<Vec<Value>, Row, Row, Row> for IntervalJoinFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some((
            ctx.get_map_state(&MapStateDescriptor::new("interval-join-left"))?,
            ctx.get_map_state(&MapStateDescriptor::new("interval-join-right"))?,
        ));
        Ok(())
    }

    fn process_element1(
        &mut self,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        self.process(Side::Left, row, ctx)
    }

    fn process_element2(
        &mut self,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        self.process(Side::Right, row, ctx)
    }

    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (left, right) = self.state.as_ref().ok_or("interval join not opened")?;
        let mut out = Vec::new();
        for (side, kept) in [(Side::Left, left), (Side::Right, right)] {
            for ts in kept.keys() {
                if self.expiry(side, ts) > timestamp {
                    continue;
                }
                for (row, matched) in kept.get(&ts).unwrap_or_default() {
                    if !matched && self.keeps(side) {
                        out.push(self.padded(side, &row));
                    }
                }
                kept.remove(&ts);
            }
        }
        for r in out {
            ctx.collect(r);
        }
        Ok(())
    }
}
