//! A regular join on unbounded inputs (Flink's `StreamingJoinOperator`): both inputs are
//! keyed by the equi-join key, each side's rows are kept in keyed state (a map from row to its
//! number of copies and, for a side whose unmatched rows are kept, how many rows of the other
//! side it matches), and every change of one side joins the other side's rows as they are
//! then:
//!
//! - an added row emits `+I` of each pair it makes; a taken-back row (`-U`, `-D`) emits `-D`
//!   of each pair it made;
//! - outer joins: a row without a match emits `+I` of itself padded with NULLs; when its first
//!   match arrives that padded row is taken back (`-D`) before the pair is added, and when its
//!   last match goes the padded row comes back (`+I`);
//! - a row with a NULL in its key matches nothing (`NULL = NULL` is not true) and is not kept.

use crate::changelog::{Change, RowKind};
use crate::expr::Expr;
use crate::plan::JoinKind;
use crate::types::{Row, Value};
use fjord::state::{MapState, MapStateDescriptor, StateTtlConfig};
use fjord::{BoxError, KeyedCoProcessFunction, KeyedProcessContext, RuntimeContext};
use std::sync::Arc;
use std::time::Duration;

/// Whether a joined row meets the rest of a join's `ON` (`None`: there is none), as every
/// join operator checks its pairs: only TRUE holds (NULL and FALSE do not).
///
/// # Errors
/// The condition fails to evaluate on the pair.
pub(crate) fn holds(condition: Option<&Expr>, joined: &[Value]) -> Result<bool, BoxError> {
    match condition {
        None => Ok(true),
        Some(c) => Ok(c
            .eval(joined)
            .map_err(|e| -> BoxError { format!("join condition: {e}").into() })?
            == Value::Boolean(true)),
    }
}

/// A row in a side's state: its copies and its matches on the other side (per copy).
type Entry = (i64, i64);

/// Which input a change came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

/// The join function of a [`crate::plan::Join`].
#[derive(Clone)]
pub struct JoinFn {
    kind: JoinKind,
    /// Columns of a left row, of a right row.
    widths: (usize, usize),
    /// The non-equi part of `ON`, over a joined row.
    condition: Option<Arc<Expr>>,
    state_ttl: Option<Duration>,
    state: Option<(MapState<Row, Entry>, MapState<Row, Entry>)>,
}

impl JoinFn {
    /// A join of rows `widths.0` and `widths.1` columns wide.
    pub fn new(
        kind: JoinKind,
        widths: (usize, usize),
        condition: Option<Expr>,
        state_ttl: Option<Duration>,
    ) -> Self {
        JoinFn {
            kind,
            widths,
            condition: condition.map(Arc::new),
            state_ttl,
            state: None,
        }
    }

    fn keeps(&self, side: Side) -> bool {
        match side {
            Side::Left => self.kind.keeps_left(),
            Side::Right => self.kind.keeps_right(),
        }
    }

    /// The joined row of `row` (from `side`) and `other` (from the other side; `None`: NULLs).
    fn joined(&self, side: Side, row: &[Value], other: Option<&[Value]>) -> Row {
        let (l, r) = self.widths;
        let mut out = Vec::with_capacity(l + r);
        let pad = |out: &mut Row, n: usize| out.extend(std::iter::repeat_n(Value::Null, n));
        match (side, other) {
            (Side::Left, Some(o)) => {
                out.extend_from_slice(row);
                out.extend_from_slice(o);
            }
            (Side::Right, Some(o)) => {
                out.extend_from_slice(o);
                out.extend_from_slice(row);
            }
            (Side::Left, None) => {
                out.extend_from_slice(row);
                pad(&mut out, r);
            }
            (Side::Right, None) => {
                pad(&mut out, l);
                out.extend_from_slice(row);
            }
        }
        out
    }

    fn matches(&self, joined: &[Value]) -> Result<bool, BoxError> {
        holds(self.condition.as_deref(), joined)
    }

    /// One change of `side` against the states (this side's, the other side's); the joined
    /// changes go to `emit`. `null_key`: the row's key has a NULL, so it matches nothing.
    fn on_change(
        &self,
        side: Side,
        change: Change,
        null_key: bool,
        mine: &MapState<Row, Entry>,
        others: &MapState<Row, Entry>,
        emit: &mut impl FnMut(RowKind, Row),
    ) -> Result<(), BoxError> {
        let add = change.kind.is_accumulate();
        let row = change.row;
        let (kind, undo) = if add {
            (RowKind::Insert, RowKind::Delete)
        } else {
            (RowKind::Delete, RowKind::Insert)
        };
        let other_side = if side == Side::Left {
            Side::Right
        } else {
            Side::Left
        };
        let mut matched = 0i64;
        if !null_key {
            for (other, (copies, assoc)) in others.entries() {
                let pair = self.joined(side, &row, Some(&other));
                if !self.matches(&pair)? {
                    continue;
                }
                matched += copies;
                if self.keeps(other_side) {
                    // The other row's padded copy goes when its first match comes and comes
                    // back when its last match goes.
                    let now = if add { assoc + 1 } else { assoc - 1 };
                    if add && assoc == 0 {
                        for _ in 0..copies {
                            emit(undo, self.joined(other_side, &other, None));
                        }
                    }
                    for _ in 0..copies {
                        emit(kind, pair.clone());
                    }
                    if !add && now == 0 {
                        for _ in 0..copies {
                            emit(undo, self.joined(other_side, &other, None));
                        }
                    }
                    others.put(other, (copies, now.max(0)));
                } else {
                    for _ in 0..copies {
                        emit(kind, pair.clone());
                    }
                }
            }
        }
        if matched == 0 && self.keeps(side) {
            emit(kind, self.joined(side, &row, None));
        }
        if null_key {
            return Ok(());
        }
        let (copies, _) = mine.get(&row).unwrap_or((0, 0));
        let copies = if add { copies + 1 } else { copies - 1 };
        if copies > 0 {
            mine.put(row, (copies, matched));
        } else {
            mine.remove(&row);
        }
        Ok(())
    }

    fn process(
        &mut self,
        side: Side,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Change>,
    ) -> Result<(), BoxError> {
        let (left, right) = self.state.as_ref().ok_or("join not opened")?;
        let (mine, others) = match side {
            Side::Left => (left, right),
            Side::Right => (right, left),
        };
        let null_key = ctx.current_key().iter().any(Value::is_null);
        let mut out = Vec::new();
        self.on_change(side, change, null_key, mine, others, &mut |kind, row| {
            out.push(Change { kind, row });
        })?;
        for c in out {
            ctx.collect(c);
        }
        Ok(())
    }
}

impl KeyedCoProcessFunction<Vec<Value>, Change, Change, Change> for JoinFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let descriptor = |name: &str| {
            let d = MapStateDescriptor::new(name);
            match self.state_ttl {
                Some(ttl) => d.with_ttl(StateTtlConfig::new(ttl)),
                None => d,
            }
        };
        self.state = Some((
            ctx.get_map_state(&descriptor("join-left"))?,
            ctx.get_map_state(&descriptor("join-right"))?,
        ));
        Ok(())
    }

    fn process_element1(
        &mut self,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Change>,
    ) -> Result<(), BoxError> {
        self.process(Side::Left, change, ctx)
    }

    fn process_element2(
        &mut self,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Change>,
    ) -> Result<(), BoxError> {
        self.process(Side::Right, change, ctx)
    }
}
