//! An event-time temporal join (Flink's `TemporalRowTimeJoinOperator`): `FROM o JOIN v FOR
//! SYSTEM_TIME AS OF o.ts ON o.k = v.k` joins each row of `o` with the version of `v`'s row
//! of its key that was current at the row's time `o.ts`.
//!
//! - The right input (the versioned table) is a changelog by its key: `+I`/`+U` make the row
//!   the version from its rowtime on, `-D` ends the key's version at its rowtime, `-U` says
//!   nothing new (the `+U` that follows does). An appending right input is the same with
//!   every row an upsert of its key.
//! - Left rows wait in keyed state until the watermark (the lesser of both inputs') passes
//!   their time; then each joins the version with the greatest rowtime at or before its own
//!   (if that version is not a deletion, and the rest of `ON` holds for the pair) or, in a
//!   LEFT join, comes out padded with NULLs. The result appends and keeps the left time.
//! - Versions older than the one current at the watermark are dropped then: a left row that
//!   comes later than the watermark joins the versions still kept.

use crate::changelog::{Change, RowKind};
use crate::types::{Row, Value};
use fjord::state::{MapState, MapStateDescriptor};
use fjord::{BoxError, KeyedCoProcessFunction, KeyedProcessContext, RuntimeContext, Timestamp};
use std::sync::Arc;

/// Left rows by time, waiting for the watermark; the right key's versions by rowtime
/// (`None`: deleted from then on).
type State = (MapState<i64, Vec<Row>>, MapState<i64, Option<Row>>);

/// The function of a temporal join.
#[derive(Clone)]
pub struct TemporalJoinFn {
    left_outer: bool,
    right_width: usize,
    left_time: usize,
    right_time: usize,
    condition: Option<Arc<crate::expr::Expr>>,
    state: Option<State>,
}

fn time_of(row: &Row, col: usize) -> Option<i64> {
    row.get(col).and_then(Value::epoch_ms)
}

impl TemporalJoinFn {
    /// The join of left rows (time in column `left_time`) with the versions of right rows
    /// `right_width` wide (time in `right_time`), pairs filtered by `condition` (over the
    /// joined row); `left_outer` keeps left rows without a version, padded.
    pub fn new(
        left_outer: bool,
        right_width: usize,
        (left_time, right_time): (usize, usize),
        condition: Option<crate::expr::Expr>,
    ) -> Self {
        TemporalJoinFn {
            left_outer,
            right_width,
            left_time,
            right_time,
            condition: condition.map(Arc::new),
            state: None,
        }
    }

    fn opened(&self) -> Result<&State, BoxError> {
        self.state
            .as_ref()
            .ok_or_else(|| "temporal join not opened".into())
    }

    /// The joined row of `left` with `version`, if the pair meets the condition.
    fn pair(&self, left: &Row, version: &Row) -> Result<Option<Row>, BoxError> {
        let joined = [left.as_slice(), version.as_slice()].concat();
        let ok = crate::join::holds(self.condition.as_deref(), &joined)?;
        Ok(ok.then_some(joined))
    }
}

/// The version current at `t`: the greatest of `times` at or before it.
fn current_at(times: &[i64], t: i64) -> Option<i64> {
    times.iter().copied().filter(|&v| v <= t).max()
}

impl KeyedCoProcessFunction<Vec<Value>, Row, Change, Row> for TemporalJoinFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some((
            ctx.get_map_state(&MapStateDescriptor::new("temporal-join-left"))?,
            ctx.get_map_state(&MapStateDescriptor::new("temporal-join-versions"))?,
        ));
        Ok(())
    }

    fn process_element1(
        &mut self,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let Some(t) = time_of(&row, self.left_time) else {
            return Err("a temporal join's left rowtime is NULL in a row".into());
        };
        let (left, _) = self.opened()?;
        let mut rows = left.get(&t).unwrap_or_default();
        if rows.is_empty() {
            // A time the watermark passed already fires with the next watermark.
            ctx.timer_service().register_event_time_timer(t);
        }
        rows.push(row);
        left.put(t, rows);
        Ok(())
    }

    fn process_element2(
        &mut self,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        if change.kind == RowKind::UpdateBefore {
            return Ok(());
        }
        let Some(t) = time_of(&change.row, self.right_time) else {
            return Err("a temporal join's versioned table has a NULL rowtime in a row".into());
        };
        let (_, versions) = self.opened()?;
        let version = (change.kind != RowKind::Delete).then_some(change.row);
        versions.put(t, version);
        // So older versions are dropped once this one is current, even if no left row of
        // this key comes.
        ctx.timer_service().register_event_time_timer(t);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (left, versions) = self.opened()?;
        let null_key = ctx.current_key().iter().any(Value::is_null);
        let times: Vec<i64> = versions.keys();
        let mut due: Vec<i64> = left.keys();
        due.retain(|&t| t <= timestamp);
        due.sort_unstable();
        let mut out = Vec::new();
        for t in due {
            let version = match current_at(&times, t) {
                Some(v) if !null_key => versions.get(&v).flatten(),
                _ => None,
            };
            for row in left.get(&t).unwrap_or_default() {
                let joined = match &version {
                    Some(v) => self.pair(&row, v)?,
                    None => None,
                };
                match joined {
                    Some(j) => out.push(j),
                    None if self.left_outer => {
                        let mut padded = row;
                        padded.extend(std::iter::repeat_n(Value::Null, self.right_width));
                        out.push(padded);
                    }
                    None => {}
                }
            }
            left.remove(&t);
        }
        // The version current at the watermark serves every left row still to come; older
        // ones serve none.
        if let Some(current) = current_at(&times, timestamp) {
            for v in times.iter().filter(|&&v| v < current) {
                versions.remove(v);
            }
        }
        for r in out {
            ctx.collect(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_version_is_the_latest_at_or_before_the_time() {
        let times = [5, 1, 9];
        assert_eq!(current_at(&times, 0), None);
        assert_eq!(current_at(&times, 1), Some(1));
        assert_eq!(current_at(&times, 8), Some(5));
        assert_eq!(current_at(&times, 9), Some(9));
        assert_eq!(current_at(&[], 9), None);
    }
}
