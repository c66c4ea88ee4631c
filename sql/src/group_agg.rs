//! A `GROUP BY` without windows (Flink's `GroupAggregate`): per key, accumulators in keyed
//! state, and for every input change the change of the key's result row, as Flink's
//! `GroupAggFunction` emits it:
//!
//! - the key's first row: `+I[key, result]`;
//! - later rows: `-U[key, previous]` then `+U[key, new]`, or nothing when the result did not
//!   change (and no state time-to-live is set: with one, Flink emits anyway, so the sink's copy
//!   is refreshed);
//! - a retraction that empties the key: `-D[key, previous]`, and its state is cleared;
//! - a retraction for a key without state (expired, say) is ignored.
//!
//! Accumulators take retractions when the input is a changelog: SUM and AVG keep the count
//! of their non-NULL values, MIN/MAX and DISTINCT aggregates keep the values with their
//! counts (Flink's `MinWithRetractAggFunction` and distinct map views). In a `GroupAggregate`
//! those counts are keyed map state apart from the accumulators ([`ValueCounts`]), so a change
//! reads and writes one value's entry, not every value of the key.

use crate::agg::{add_values, average, widened};
use crate::changelog::{Change, RowKind};
use crate::expr::compare;
use crate::plan::AggFunc;
use crate::types::{DataType, Value};
use fjord::state::{
    MapState, MapStateDescriptor, StateTtlConfig, ValueState, ValueStateDescriptor,
};
use fjord::{BoxError, KeyedProcessContext, KeyedProcessFunction, RuntimeContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The state of one aggregate call of a group aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupAcc {
    /// COUNT(*), COUNT(x).
    Count(i64),
    /// SUM and AVG: the sum of the non-NULL values (widened for AVG) and their number.
    Sum(Value, i64),
    /// MIN/MAX when the input has no retractions: the value so far.
    Extreme(Value),
    /// MIN/MAX with retractions and the DISTINCT aggregates: the non-NULL values with their
    /// counts, ascending (OVER and MATCH_RECOGNIZE, whose accumulators are small).
    Values(Vec<(Value, i64)>),
    /// A user-defined aggregate's accumulator (append-only input only).
    User(Vec<u8>),
    /// The DISTINCT aggregates of a `GroupAggregate`, their values counted apart
    /// ([`ValueCounts`]): the number of distinct non-NULL values and their sum (widened for
    /// AVG). Last, so the variants before keep their positions in stored state.
    Distinct(i64, Value),
}

/// A key's state: the accumulators and the number of rows counted (inserts minus
/// retractions); the key is gone when it reaches 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    accs: Vec<GroupAcc>,
    rows: i64,
}

/// `a - b` in the type of a sum (wrapping for integers, as sums wrap).
fn sub_values(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (x, Value::Null) => x.clone(),
        (Value::Int(x), Value::Int(y)) => Value::Int(x.wrapping_sub(*y)),
        (Value::BigInt(x), Value::BigInt(y)) => Value::BigInt(x.wrapping_sub(*y)),
        (Value::BigInt(x), Value::Int(y)) => Value::BigInt(x.wrapping_sub(i64::from(*y))),
        (Value::Double(x), Value::Double(y)) => Value::Double(x - y),
        (Value::TinyInt(x), Value::TinyInt(y)) => Value::TinyInt(x.wrapping_sub(*y)),
        (Value::SmallInt(x), Value::SmallInt(y)) => Value::SmallInt(x.wrapping_sub(*y)),
        (Value::Float(x), Value::Float(y)) => Value::Float(x - y),
        (Value::Decimal(x), Value::Decimal(y)) => match crate::decimal::arith(
            crate::decimal::DecimalOp::Sub,
            *x,
            *y,
            crate::decimal::MAX_PRECISION,
            x.scale.max(y.scale),
        ) {
            Ok(Some(d)) => Value::Decimal(d),
            _ => Value::Decimal(*x),
        },
        (x, _) => x.clone(),
    }
}

/// Adds `delta` to the count of `v` in the ascending `values`; a value whose count reaches
/// 0 is removed.
fn count_value(values: &mut Vec<(Value, i64)>, v: &Value, delta: i64) {
    let at = values.binary_search_by(|(p, _)| compare(p, v).unwrap_or(std::cmp::Ordering::Less));
    match at {
        Ok(i) => {
            values[i].1 += delta;
            if values[i].1 <= 0 {
                values.remove(i);
            }
        }
        Err(i) if delta > 0 => values.insert(i, (v.clone(), delta)),
        Err(_) => {}
    }
}

/// The counts of the values of the DISTINCT aggregates and of MIN/MAX with retractions, per
/// call, kept apart from a key's accumulators (Flink's map views).
pub trait ValueCounts {
    /// Adds `delta` to the count of `v` for call `call`; returns the count it had before.
    fn add(&mut self, call: usize, v: &Value, delta: i64) -> i64;
    /// The values of call `call` counted (a positive count), in any order.
    fn values(&self, call: usize) -> Vec<Value>;
}

fn count_key(call: usize, v: &Value) -> Vec<Value> {
    vec![Value::Int(call as i32), v.clone()]
}

/// A key's counts in keyed map state (the entry of a value whose count reaches 0 is removed).
impl ValueCounts for CountsState {
    fn add(&mut self, call: usize, v: &Value, delta: i64) -> i64 {
        let key = count_key(call, v);
        let before = self.get(&key).unwrap_or(0);
        if before + delta > 0 {
            self.put(key, before + delta);
        } else if before > 0 {
            self.remove(&key);
        }
        before
    }

    fn values(&self, call: usize) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|(k, _)| k.first() == Some(&Value::Int(call as i32)))
            .filter_map(|(mut k, _)| k.pop())
            .collect()
    }
}

/// The aggregate calls of one `GroupAggregate`, over rows whose first `keys` columns are the
/// key and whose next columns are the calls' arguments.
#[derive(Clone)]
pub struct GroupAggregateFn {
    /// Function and result type per call.
    pub calls: Arc<Vec<(AggFunc, DataType)>>,
    /// Per call, the user-defined aggregate of an [`AggFunc::User`] call.
    pub user: Arc<Vec<Option<crate::udf::AggregateRef>>>,
    /// The number of key columns (the arguments follow them).
    pub keys: usize,
    /// The input has retractions: MIN/MAX keep every value.
    pub retracts: bool,
    /// `table.exec.state.ttl`: a key's state expires this long after its last change.
    pub state_ttl: Option<Duration>,
    /// The DISTINCT aggregates and MIN/MAX with retractions count their values apart
    /// ([`ValueCounts`], a `GroupAggregate`'s map state) instead of in the accumulators.
    pub counts_apart: bool,
    state: Option<(ValueState<GroupState>, CountsState)>,
}

/// A key's value counts in keyed state (see [`ValueCounts`]).
type CountsState = MapState<Vec<Value>, i64>;

impl GroupAggregateFn {
    /// The function for `calls` after `keys` key columns.
    pub fn new(
        calls: Vec<(AggFunc, DataType)>,
        user: Vec<Option<crate::udf::AggregateRef>>,
        keys: usize,
        retracts: bool,
        state_ttl: Option<Duration>,
    ) -> Self {
        GroupAggregateFn {
            calls: Arc::new(calls),
            user: Arc::new(user),
            keys,
            retracts,
            state_ttl,
            counts_apart: false,
            state: None,
        }
    }

    /// This function with its value counts apart (see [`Self::counts_apart`]): a
    /// `GroupAggregate`'s.
    pub fn counting_apart(mut self) -> Self {
        self.counts_apart = true;
        self
    }

    /// The function of planned aggregate calls, their arguments after the first `keys`
    /// columns.
    pub fn of_calls(
        aggs: &[crate::plan::AggCall],
        keys: usize,
        retracts: bool,
        state_ttl: Option<Duration>,
    ) -> Self {
        GroupAggregateFn::new(
            aggs.iter().map(|a| (a.func, a.data_type)).collect(),
            aggs.iter()
                .map(|a| a.user.as_ref().map(|u| u.function.clone()))
                .collect(),
            keys,
            retracts,
            state_ttl,
        )
    }

    fn user(&self, call: usize) -> &crate::udf::AggregateRef {
        self.user
            .get(call)
            .and_then(Option::as_ref)
            .expect("a user-defined aggregate call has its function")
    }

    /// Fresh accumulators, one per call.
    pub(crate) fn create(&self) -> Vec<GroupAcc> {
        self.calls
            .iter()
            .enumerate()
            .map(|(i, (f, _))| match f {
                AggFunc::User => GroupAcc::User(self.user(i).function.create()),
                AggFunc::CountStar | AggFunc::Count => GroupAcc::Count(0),
                AggFunc::Sum | AggFunc::Avg => GroupAcc::Sum(Value::Null, 0),
                AggFunc::Min | AggFunc::Max if !self.retracts || self.counts_apart => {
                    GroupAcc::Extreme(Value::Null)
                }
                _ if self.counts_apart => GroupAcc::Distinct(0, Value::Null),
                _ => GroupAcc::Values(Vec::new()),
            })
            .collect()
    }

    /// Adds (`sign` 1) or retracts (`sign` -1) one row's arguments.
    pub(crate) fn apply(
        &self,
        accs: &mut [GroupAcc],
        row: &[Value],
        sign: i64,
    ) -> Result<(), BoxError> {
        self.apply_counting(accs, row, sign, None)
    }

    /// [`Self::apply`], the values of the calls that count them apart counted in `counts`.
    fn apply_counting(
        &self,
        accs: &mut [GroupAcc],
        row: &[Value],
        sign: i64,
        mut counts: Option<&mut dyn ValueCounts>,
    ) -> Result<(), BoxError> {
        let mut col = self.keys;
        for (i, ((f, _), acc)) in self.calls.iter().zip(accs.iter_mut()).enumerate() {
            if let GroupAcc::User(bytes) = acc {
                let n = self.user(i).argument_types().len();
                if sign < 0 {
                    return Err(format!(
                        "the user-defined aggregate {} cannot take back a row (its input is updated)",
                        self.user(i).name()
                    )
                    .into());
                }
                self.user(i).function.accumulate(bytes, &row[col..col + n]);
                col += n;
                continue;
            }
            let v = if *f == AggFunc::CountStar {
                &Value::Null
            } else {
                col += 1;
                &row[col - 1]
            };
            match (f, acc) {
                (AggFunc::CountStar, GroupAcc::Count(n)) => *n += sign,
                _ if v.is_null() => {}
                (AggFunc::Min | AggFunc::Max, GroupAcc::Extreme(m)) if self.retracts => {
                    let counts = counts
                        .as_deref_mut()
                        .ok_or("MIN/MAX over an updating input need their value counts")?;
                    let before = counts.add(i, v, sign);
                    let better = |a: &Value, b: &Value| {
                        compare(a, b).is_some_and(|o| {
                            if *f == AggFunc::Min {
                                o.is_lt()
                            } else {
                                o.is_gt()
                            }
                        })
                    };
                    if sign > 0 && (m.is_null() || better(v, m)) {
                        *m = v.clone();
                    } else if sign < 0 && before + sign <= 0 && v == m {
                        // The extreme's last copy went: the next best value counted.
                        *m = counts.values(i).into_iter().fold(Value::Null, |best, x| {
                            if best.is_null() || better(&x, &best) {
                                x
                            } else {
                                best
                            }
                        });
                    }
                }
                (_, GroupAcc::Distinct(n, sum)) => {
                    let counts = counts
                        .as_deref_mut()
                        .ok_or("a DISTINCT aggregate needs its value counts")?;
                    let before = counts.add(i, v, sign);
                    let w = if *f == AggFunc::AvgDistinct {
                        widened(v)
                    } else {
                        v.clone()
                    };
                    if sign > 0 && before == 0 {
                        *n += 1;
                        *sum = add_values(sum, &w);
                    } else if sign < 0 && before > 0 && before + sign <= 0 {
                        *n -= 1;
                        *sum = sub_values(sum, &w);
                    }
                }
                (AggFunc::Count, GroupAcc::Count(n)) => *n += sign,
                (AggFunc::Sum, GroupAcc::Sum(s, n)) => {
                    *s = if sign > 0 {
                        add_values(s, v)
                    } else {
                        sub_values(s, v)
                    };
                    *n += sign;
                }
                (AggFunc::Avg, GroupAcc::Sum(s, n)) => {
                    let w = widened(v);
                    *s = if sign > 0 {
                        add_values(s, &w)
                    } else {
                        sub_values(s, &w)
                    };
                    *n += sign;
                }
                (AggFunc::Min, GroupAcc::Extreme(m))
                    if m.is_null() || compare(v, m).is_some_and(|o| o.is_lt()) =>
                {
                    *m = v.clone();
                }
                (AggFunc::Max, GroupAcc::Extreme(m))
                    if m.is_null() || compare(v, m).is_some_and(|o| o.is_gt()) =>
                {
                    *m = v.clone();
                }
                (_, GroupAcc::Values(values)) => count_value(values, v, sign),
                _ => {}
            }
        }
        Ok(())
    }

    /// The calls' results.
    pub(crate) fn result(&self, accs: &[GroupAcc]) -> Vec<Value> {
        self.calls
            .iter()
            .zip(accs)
            .enumerate()
            .map(|(i, ((f, t), a))| match a {
                GroupAcc::User(bytes) => self.user(i).function.get_value(bytes),
                GroupAcc::Count(n) => Value::BigInt(*n),
                GroupAcc::Sum(_, 0) => Value::Null,
                GroupAcc::Sum(s, n) if *f == AggFunc::Avg => average(s, *n, *t),
                GroupAcc::Sum(s, _) => s.clone(),
                GroupAcc::Extreme(v) => v.clone(),
                GroupAcc::Distinct(n, sum) => match f {
                    AggFunc::CountDistinct => Value::BigInt(*n),
                    _ if *n == 0 => Value::Null,
                    AggFunc::SumDistinct => sum.clone(),
                    _ => average(sum, *n, *t),
                },
                GroupAcc::Values(values) => match f {
                    AggFunc::Min => values.first().map_or(Value::Null, |(v, _)| v.clone()),
                    AggFunc::Max => values.last().map_or(Value::Null, |(v, _)| v.clone()),
                    AggFunc::CountDistinct => Value::BigInt(values.len() as i64),
                    AggFunc::SumDistinct if values.is_empty() => Value::Null,
                    AggFunc::SumDistinct => values
                        .iter()
                        .fold(Value::Null, |s, (v, _)| add_values(&s, v)),
                    _ => {
                        let sum = values
                            .iter()
                            .fold(Value::Null, |s, (v, _)| add_values(&s, &widened(v)));
                        average(&sum, values.len() as i64, *t)
                    }
                },
            })
            .collect()
    }

    /// What one input change does to a key's state (`None`: no state) and the changes of the
    /// key's result it emits (the key's columns are prepended by the caller). Returns the new
    /// state (`None`: clear it).
    pub fn on_change(
        &self,
        state: Option<GroupState>,
        change: &Change,
        counts: &mut dyn ValueCounts,
        emit: &mut impl FnMut(RowKind, Vec<Value>),
    ) -> Result<Option<GroupState>, BoxError> {
        let accumulate = change.kind.is_accumulate();
        let first = state.is_none();
        if first && !accumulate {
            // Flink: a retraction for a key without state (expired, or never seen) is dropped.
            return Ok(None);
        }
        let mut state = state.unwrap_or_else(|| GroupState {
            accs: self.create(),
            rows: 0,
        });
        let previous = (!first).then(|| self.result(&state.accs));
        let sign = if accumulate { 1 } else { -1 };
        self.apply_counting(&mut state.accs, &change.row, sign, Some(counts))?;
        state.rows += sign;
        if state.rows <= 0 {
            if let Some(previous) = previous {
                emit(RowKind::Delete, previous);
            }
            return Ok(None);
        }
        let current = self.result(&state.accs);
        match previous {
            None => emit(RowKind::Insert, current),
            Some(previous) if previous == current && self.state_ttl.is_none() => {}
            Some(previous) => {
                emit(RowKind::UpdateBefore, previous);
                emit(RowKind::UpdateAfter, current);
            }
        }
        Ok(Some(state))
    }
}

impl KeyedProcessFunction<Vec<Value>, Change, Change> for GroupAggregateFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        let mut descriptor = ValueStateDescriptor::new("group-aggregate");
        let mut counts = MapStateDescriptor::new("group-aggregate-value-counts");
        if let Some(ttl) = self.state_ttl {
            descriptor = descriptor.with_ttl(StateTtlConfig::new(ttl));
            counts = counts.with_ttl(StateTtlConfig::new(ttl));
        }
        self.state = Some((ctx.get_state(&descriptor)?, ctx.get_map_state(&counts)?));
        Ok(())
    }

    fn process_element(
        &mut self,
        change: Change,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Change>,
    ) -> Result<(), BoxError> {
        let (handle, counts) = self.state.as_ref().ok_or("group aggregate not opened")?;
        let mut counts = counts.clone();
        let key = ctx.current_key().clone();
        let mut out = Vec::new();
        let next = self.on_change(handle.value(), &change, &mut counts, &mut |kind, result| {
            let mut row = Vec::with_capacity(key.len() + result.len());
            row.extend(key.iter().cloned());
            row.extend(result);
            out.push(Change { kind, row });
        })?;
        match next {
            Some(s) => handle.update(s),
            None => {
                handle.clear();
                counts.clear();
            }
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

    /// Counts in memory, as the map state keeps them.
    impl ValueCounts for std::collections::HashMap<Vec<Value>, i64> {
        fn add(&mut self, call: usize, v: &Value, delta: i64) -> i64 {
            let key = count_key(call, v);
            let before = self.get(&key).copied().unwrap_or(0);
            if before + delta > 0 {
                self.insert(key, before + delta);
            } else {
                self.remove(&key);
            }
            before
        }

        fn values(&self, call: usize) -> Vec<Value> {
            self.keys()
                .filter(|k| k.first() == Some(&Value::Int(call as i32)))
                .filter_map(|k| k.last().cloned())
                .collect()
        }
    }

    /// The changes `f` emits, the same whether its value counts are in its accumulators (as
    /// OVER keeps them) or apart (as a GroupAggregate keeps them, in map state).
    fn run(f: &GroupAggregateFn, changes: &[(RowKind, Vec<Value>)]) -> Vec<String> {
        let inline = run_one(f, changes);
        assert_eq!(inline, run_one(&f.clone().counting_apart(), changes));
        inline
    }

    fn run_one(f: &GroupAggregateFn, changes: &[(RowKind, Vec<Value>)]) -> Vec<String> {
        let mut state = None;
        let mut counts = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (kind, row) in changes {
            let change = Change {
                kind: *kind,
                row: row.clone(),
            };
            state = f
                .on_change(state, &change, &mut counts, &mut |k, r| {
                    out.push(format!("{}{:?}", k.short(), r));
                })
                .unwrap();
        }
        out
    }

    #[test]
    fn a_key_is_inserted_updated_and_deleted_as_flink_emits_it() {
        use RowKind::*;
        // Key column, then the arguments of COUNT(*), SUM(x), MIN(x), MAX(x).
        let calls = vec![
            (AggFunc::CountStar, DataType::BigInt),
            (AggFunc::Sum, DataType::Int),
            (AggFunc::Min, DataType::Int),
            (AggFunc::Max, DataType::Int),
        ];
        let f = GroupAggregateFn::new(calls, vec![], 1, true, None);
        let row = |x: i32| {
            vec![
                Value::String("k".into()),
                Value::Int(x),
                Value::Int(x),
                Value::Int(x),
            ]
        };
        let out = run(
            &f,
            &[
                (Delete, row(9)), // no state: dropped
                (Insert, row(3)),
                (Insert, row(5)),
                (UpdateBefore, row(3)),
                (UpdateAfter, row(3)),
                (Delete, row(5)),
                (Delete, row(3)),
            ],
        );
        // Each change is applied on its own: the -U of an update changes the result once,
        // its +U again (MIN goes 3 -> 5 -> 3 as the value 3 is taken back and returns).
        assert_eq!(
            out,
            vec![
                "+I[BigInt(1), Int(3), Int(3), Int(3)]",
                "-U[BigInt(1), Int(3), Int(3), Int(3)]",
                "+U[BigInt(2), Int(8), Int(3), Int(5)]",
                "-U[BigInt(2), Int(8), Int(3), Int(5)]",
                "+U[BigInt(1), Int(5), Int(5), Int(5)]",
                "-U[BigInt(1), Int(5), Int(5), Int(5)]",
                "+U[BigInt(2), Int(8), Int(3), Int(5)]",
                "-U[BigInt(2), Int(8), Int(3), Int(5)]",
                "+U[BigInt(1), Int(3), Int(3), Int(3)]",
                "-D[BigInt(1), Int(3), Int(3), Int(3)]",
            ]
        );
        // An unchanged result emits nothing (without a state time-to-live).
        let calls = vec![(AggFunc::Max, DataType::Int)];
        let f = GroupAggregateFn::new(calls, vec![], 0, false, None);
        let out = run(
            &f,
            &[(Insert, vec![Value::Int(5)]), (Insert, vec![Value::Int(2)])],
        );
        assert_eq!(out, vec!["+I[Int(5)]"]);
    }

    #[test]
    fn distinct_aggregates_and_extremes_follow_duplicates_and_retractions() {
        use RowKind::*;
        let calls = vec![
            (AggFunc::CountDistinct, DataType::BigInt),
            (AggFunc::SumDistinct, DataType::Int),
            (AggFunc::AvgDistinct, DataType::Int),
            (AggFunc::Min, DataType::Int),
            (AggFunc::Max, DataType::Int),
        ];
        let f = GroupAggregateFn::new(calls, vec![], 0, true, None);
        let row = |x: i32| vec![Value::Int(x); 5];
        let out = run(
            &f,
            &[
                (Insert, row(4)),
                (Insert, row(4)),
                (Insert, row(8)),
                (Delete, row(8)), // the max goes: back to 4
                (Delete, row(4)), // one copy of 4 stays
                (Insert, row(2)),
            ],
        );
        assert_eq!(
            out,
            vec![
                "+I[BigInt(1), Int(4), Int(4), Int(4), Int(4)]",
                "-U[BigInt(1), Int(4), Int(4), Int(4), Int(4)]",
                "+U[BigInt(2), Int(12), Int(6), Int(4), Int(8)]",
                "-U[BigInt(2), Int(12), Int(6), Int(4), Int(8)]",
                "+U[BigInt(1), Int(4), Int(4), Int(4), Int(4)]",
                "-U[BigInt(1), Int(4), Int(4), Int(4), Int(4)]",
                "+U[BigInt(2), Int(6), Int(3), Int(2), Int(4)]",
            ]
        );
    }

    #[test]
    fn sums_of_retracted_values_become_null_and_distinct_counts_follow_retractions() {
        use RowKind::*;
        let calls = vec![
            (AggFunc::Sum, DataType::Double),
            (AggFunc::Avg, DataType::Int),
            (AggFunc::CountDistinct, DataType::BigInt),
        ];
        let f = GroupAggregateFn::new(calls, vec![], 0, true, Some(Duration::from_secs(1)));
        let row = |x: Value, d: i32| vec![x.clone(), Value::Int(4), Value::Int(d)];
        let out = run(
            &f,
            &[
                (Insert, row(Value::Double(1.5), 7)),
                (Insert, row(Value::Null, 7)),
                (Delete, row(Value::Double(1.5), 7)),
            ],
        );
        // With a state TTL, an unchanged result is emitted again (Flink refreshes the sink).
        assert_eq!(
            out,
            vec![
                "+I[Double(1.5), Int(4), BigInt(1)]",
                "-U[Double(1.5), Int(4), BigInt(1)]",
                "+U[Double(1.5), Int(4), BigInt(1)]",
                "-U[Double(1.5), Int(4), BigInt(1)]",
                "+U[Null, Int(4), BigInt(1)]",
            ]
        );
    }
}
