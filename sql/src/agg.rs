//! The aggregate functions of a windowed GROUP BY as one DataStream `AggregateFunction`:
//! the accumulator is a vector with one small state per aggregate call, kept in the window
//! operator's keyed state (so it is checkpointed and rescaled with its key group).

use crate::expr::compare;
use crate::plan::AggFunc;
use crate::types::{DataType, Row, Value};
use fjord::AggregateFunction;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The state of one aggregate call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Acc {
    /// COUNT
    Count(i64),
    /// SUM, MIN, MAX: the value so far (NULL before the first non-NULL input).
    Value(Value),
    /// AVG: sum (as i64 or f64) and count of non-NULL inputs.
    Avg(Value, i64),
    /// COUNT/SUM/AVG(DISTINCT x): the distinct non-NULL values so far, in ascending order
    /// (Flink keeps them in a map view of the accumulator, as here in the keyed state).
    Distinct(Vec<Value>),
    /// A user-defined aggregate's accumulator, encoded (`crate::udf::AggregateFunction`).
    User(Vec<u8>),
}

/// Evaluates a list of aggregate calls over rows whose columns `first_arg..` are the
/// calls' arguments (computed before the window, so adding never fails).
#[derive(Debug, Clone)]
pub struct SqlAggregate {
    /// Function and result type per call.
    pub calls: Arc<Vec<(AggFunc, DataType)>>,
    /// The column of the first call's argument (calls without argument take none).
    pub first_arg: usize,
    /// Per call, the user-defined aggregate of an [`AggFunc::User`] call (empty when there
    /// is none).
    pub user: Arc<Vec<Option<crate::udf::AggregateRef>>>,
}

impl SqlAggregate {
    fn user(&self, call: usize) -> &crate::udf::AggregateRef {
        self.user
            .get(call)
            .and_then(Option::as_ref)
            .expect("a user-defined aggregate call has its function")
    }

    /// The argument columns of each call: `(first, count)` (none for COUNT(*), one for
    /// the built-ins, the declared arguments of a user-defined aggregate).
    fn arg_columns(&self) -> Vec<(usize, usize)> {
        let mut next = self.first_arg;
        let mut out = Vec::with_capacity(self.calls.len());
        for (i, (f, _)) in self.calls.iter().enumerate() {
            let n = match f {
                AggFunc::CountStar => 0,
                AggFunc::User => self.user(i).argument_types().len(),
                _ => 1,
            };
            out.push((next, n));
            next += n;
        }
        out
    }
}

pub(crate) fn add_values(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Null, x) | (x, Value::Null) => x.clone(),
        // SUM(INT) is an INT that wraps, as in Flink.
        (Value::Int(x), Value::Int(y)) => Value::Int(x.wrapping_add(*y)),
        (Value::BigInt(x), Value::BigInt(y)) => Value::BigInt(x.wrapping_add(*y)),
        (Value::Int(x), Value::BigInt(y)) | (Value::BigInt(y), Value::Int(x)) => {
            Value::BigInt(y.wrapping_add(i64::from(*x)))
        }
        (Value::Double(x), Value::Double(y)) => Value::Double(x + y),
        // SUM(TINYINT) and SUM(SMALLINT) keep their type and wrap, as in Flink.
        (Value::TinyInt(x), Value::TinyInt(y)) => Value::TinyInt(x.wrapping_add(*y)),
        (Value::SmallInt(x), Value::SmallInt(y)) => Value::SmallInt(x.wrapping_add(*y)),
        (Value::Float(x), Value::Float(y)) => Value::Float(x + y),
        // A DECIMAL sum is DECIMAL(38, s) of inputs of scale s; beyond 38 digits it is NULL
        // in Flink, which this keeps as the largest value reached (not expected in practice).
        (Value::Decimal(x), Value::Decimal(y)) => {
            match crate::decimal::arith(
                crate::decimal::DecimalOp::Add,
                *x,
                *y,
                crate::decimal::MAX_PRECISION,
                x.scale.max(y.scale),
            ) {
                Ok(Some(d)) => Value::Decimal(d),
                _ => Value::Decimal(*x),
            }
        }
        _ => Value::Null,
    }
}

/// Integer averages sum in BIGINT and FLOAT averages in DOUBLE, as Flink's AvgAggFunction
/// does.
pub(crate) fn widened(v: &Value) -> Value {
    match v {
        Value::TinyInt(_) | Value::SmallInt(_) | Value::Int(_) => {
            Value::BigInt(v.as_i64().unwrap_or(0))
        }
        Value::Float(f) => Value::Double(f64::from(*f)),
        other => other.clone(),
    }
}

/// `sum / n` in the argument's type `t` (integer division for integers, as Flink); NULL
/// for no values.
pub(crate) fn average(sum: &Value, n: i64, t: DataType) -> Value {
    if n == 0 {
        return Value::Null;
    }
    match (sum, t) {
        (Value::Decimal(s), DataType::Decimal(p, scale)) => {
            crate::decimal::average(*s, n, p, scale).map_or(Value::Null, Value::Decimal)
        }
        (Value::BigInt(s), DataType::TinyInt) => Value::TinyInt((s / n) as i8),
        (Value::BigInt(s), DataType::SmallInt) => Value::SmallInt((s / n) as i16),
        (Value::Double(s), DataType::Float) => Value::Float((s / n as f64) as f32),
        (Value::BigInt(s), DataType::Int) => Value::Int((s / n) as i32),
        (Value::BigInt(s), _) => Value::BigInt(s / n),
        (Value::Double(s), _) => Value::Double(s / n as f64),
        _ => Value::Null,
    }
}

/// Adds a non-NULL `v` to the ascending distinct values `set` unless it is there.
fn insert_distinct(set: &mut Vec<Value>, v: Value) {
    if v.is_null() {
        return;
    }
    if let Err(at) = set.binary_search_by(|p| compare(p, &v).unwrap_or(std::cmp::Ordering::Less)) {
        set.insert(at, v);
    }
}

impl AggregateFunction<Row, Vec<Acc>, Vec<Value>> for SqlAggregate {
    fn create_accumulator(&mut self) -> Vec<Acc> {
        self.calls
            .iter()
            .enumerate()
            .map(|(i, (f, _))| match f {
                AggFunc::User => Acc::User(self.user(i).function.create()),
                AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
                AggFunc::Avg => Acc::Avg(Value::Null, 0),
                AggFunc::CountDistinct | AggFunc::SumDistinct | AggFunc::AvgDistinct => {
                    Acc::Distinct(Vec::new())
                }
                _ => Acc::Value(Value::Null),
            })
            .collect()
    }

    fn add(&mut self, row: Row, mut acc: Vec<Acc>) -> Vec<Acc> {
        let args = self.arg_columns();
        for (i, (((f, _), a), (col, n))) in
            self.calls.iter().zip(acc.iter_mut()).zip(args).enumerate()
        {
            if let Acc::User(bytes) = a {
                self.user(i).function.accumulate(bytes, &row[col..col + n]);
                continue;
            }
            let v = if n == 0 { &Value::Null } else { &row[col] };
            match (f, a) {
                (AggFunc::CountStar, Acc::Count(n)) => *n += 1,
                (_, _) if v.is_null() => {}
                (AggFunc::Count, Acc::Count(n)) => *n += 1,
                (AggFunc::Sum, Acc::Value(s)) => *s = add_values(s, v),
                (AggFunc::Min, Acc::Value(m))
                    if m.is_null() || compare(v, m).is_some_and(|o| o.is_lt()) =>
                {
                    *m = v.clone();
                }
                (AggFunc::Max, Acc::Value(m))
                    if m.is_null() || compare(v, m).is_some_and(|o| o.is_gt()) =>
                {
                    *m = v.clone();
                }
                (AggFunc::Avg, Acc::Avg(s, n)) => {
                    *s = add_values(s, &widened(v));
                    *n += 1;
                }
                (_, Acc::Distinct(set)) => insert_distinct(set, v.clone()),
                _ => {}
            }
        }
        acc
    }

    fn get_result(&mut self, acc: &Vec<Acc>) -> Vec<Value> {
        self.calls
            .iter()
            .zip(acc)
            .enumerate()
            .map(|(i, ((f, t), a))| match a {
                Acc::User(bytes) => self.user(i).function.get_value(bytes),
                Acc::Count(n) => Value::BigInt(*n),
                Acc::Value(v) => v.clone(),
                Acc::Avg(s, n) => average(s, *n, *t),
                Acc::Distinct(set) => match f {
                    AggFunc::CountDistinct => Value::BigInt(set.len() as i64),
                    AggFunc::SumDistinct if set.is_empty() => Value::Null,
                    AggFunc::SumDistinct => set.iter().fold(Value::Null, |s, v| add_values(&s, v)),
                    _ => {
                        let sum = set
                            .iter()
                            .fold(Value::Null, |s, v| add_values(&s, &widened(v)));
                        average(&sum, set.len() as i64, *t)
                    }
                },
            })
            .collect()
    }

    fn merge(&mut self, a: Vec<Acc>, b: Vec<Acc>) -> Vec<Acc> {
        self.calls
            .iter()
            .zip(a.into_iter().zip(b))
            .enumerate()
            .map(|(i, ((f, _), (x, y)))| match (x, y) {
                (Acc::User(mut x), Acc::User(y)) => {
                    self.user(i).function.merge(&mut x, &y);
                    Acc::User(x)
                }
                (Acc::Count(m), Acc::Count(n)) => Acc::Count(m + n),
                (Acc::Avg(s, m), Acc::Avg(t, n)) => Acc::Avg(add_values(&s, &t), m + n),
                (Acc::Distinct(mut set), Acc::Distinct(other)) => {
                    for v in other {
                        insert_distinct(&mut set, v);
                    }
                    Acc::Distinct(set)
                }
                (Acc::Value(v), Acc::Value(w)) => Acc::Value(match f {
                    AggFunc::Sum => add_values(&v, &w),
                    AggFunc::Min if v.is_null() || compare(&w, &v).is_some_and(|o| o.is_lt()) => w,
                    AggFunc::Max if v.is_null() || compare(&w, &v).is_some_and(|o| o.is_gt()) => w,
                    _ => v,
                }),
                (x, _) => x,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_skip_nulls_and_average_integers_as_flink() {
        let calls = vec![
            (AggFunc::CountStar, DataType::BigInt),
            (AggFunc::Count, DataType::BigInt),
            (AggFunc::Sum, DataType::Int),
            (AggFunc::Min, DataType::Int),
            (AggFunc::Max, DataType::Int),
            (AggFunc::Avg, DataType::Int),
        ];
        let mut f = SqlAggregate {
            calls: Arc::new(calls),
            first_arg: 0,
            user: Arc::new(Vec::new()),
        };
        let rows = [Value::Int(3), Value::Null, Value::Int(4)];
        let mut acc = f.create_accumulator();
        for v in rows {
            acc = f.add(vec![v.clone(); 5], acc);
        }
        assert_eq!(
            f.get_result(&acc),
            vec![
                Value::BigInt(3),
                Value::BigInt(2),
                Value::Int(7),
                Value::Int(3),
                Value::Int(4),
                Value::Int(3)
            ]
        );
        let empty = f.create_accumulator();
        let merged = f.merge(acc.clone(), empty.clone());
        assert_eq!(f.get_result(&merged), f.get_result(&acc));
        let all_null = f.add(vec![Value::Null; 5], empty);
        assert_eq!(
            f.get_result(&all_null),
            vec![
                Value::BigInt(1),
                Value::BigInt(0),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null
            ]
        );
    }
}
