//! Typed scalar expressions and their evaluation over rows, with Flink SQL's NULL semantics:
//! an operator or function with a NULL operand yields NULL (except the logical operators,
//! `IS [NOT] NULL`, `COALESCE` and `CASE`), `AND`/`OR`/`NOT` use three-valued logic, and a
//! `WHERE` or `WHEN` keeps only TRUE.

use crate::decimal::{self, Decimal, DecimalOp};
pub use crate::functions::Func;
use crate::types::{
    DataType, Value, date_of_timestamp, format_double, parse_date, parse_time, parse_timestamp,
    time_of_timestamp, timestamp_of_date, truncate_time,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integer division on integers, as in Flink)
    Div,
    /// `%` / `MOD`
    Mod,
}

/// A typed expression over the columns of one input row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// The input column at an index.
    Column(usize, DataType),
    /// A constant (NULL literals carry the type they are used as).
    Literal(Value, DataType),
    /// `NOT e`
    Not(Box<Expr>),
    /// `a AND b`
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`
    Or(Box<Expr>, Box<Expr>),
    /// `e IS NULL` (or `IS NOT NULL` when the flag is set).
    IsNull(Box<Expr>, bool),
    /// A comparison of two operands of one type.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Arithmetic with the result type.
    Arith(ArithOp, Box<Expr>, Box<Expr>, DataType),
    /// `-e`
    Neg(Box<Expr>, DataType),
    /// `CASE WHEN c THEN r ... ELSE e END` (a simple CASE is rewritten to this form).
    Case(Vec<(Expr, Expr)>, Option<Box<Expr>>, DataType),
    /// `CAST(e AS type)`; `true` for `TRY_CAST` (NULL instead of an error).
    Cast(Box<Expr>, DataType, bool),
    /// A scalar function call with its result type.
    Call(Func, Vec<Expr>, DataType),
    /// A call of a user-defined scalar function (arguments cast to its declared types).
    Udf(crate::udf::ScalarRef, Vec<Expr>),
    /// `row.field`: the field at an index of a ROW, with the field's type.
    Field(Box<Expr>, usize, DataType),
    /// `array[i]` (1-based; NULL out of range) or `map[key]` (NULL when absent).
    Subscript(Box<Expr>, Box<Expr>, DataType),
}

/// An error while evaluating an expression on a row (the job fails with it, as in Flink).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

impl Expr {
    /// The type of the expression's values.
    pub fn data_type(&self) -> DataType {
        match self {
            Expr::Column(_, t) | Expr::Literal(_, t) => *t,
            Expr::Not(_) | Expr::And(..) | Expr::Or(..) | Expr::IsNull(..) | Expr::Cmp(..) => {
                DataType::Boolean
            }
            Expr::Arith(.., t) | Expr::Neg(_, t) | Expr::Case(.., t) | Expr::Call(.., t) => *t,
            Expr::Cast(_, t, _) | Expr::Field(.., t) | Expr::Subscript(.., t) => *t,
            Expr::Udf(f, _) => f.function.result_type(),
        }
    }

    /// Evaluates on a row.
    ///
    /// # Errors
    /// A cast of a string that is not a number or timestamp, or integer division by zero
    /// (Flink fails the job for both; `TRY_CAST` gives NULL instead of a failed cast).
    /// Integer arithmetic wraps around on overflow, as Java's does.
    pub fn eval(&self, row: &[Value]) -> Result<Value, EvalError> {
        Ok(match self {
            Expr::Column(i, _) => row.get(*i).cloned().unwrap_or(Value::Null),
            // A path of fields into a column is read in place: only the field is copied.
            Expr::Field(inner, i, _) => match inner.borrow_in(row) {
                Some(v) => field_of(v, *i).clone(),
                None => field_of(&inner.eval(row)?, *i).clone(),
            },
            Expr::Subscript(container, key, _) => {
                let key = key.eval(row)?;
                match container.borrow_in(row) {
                    Some(v) => subscript(v, &key).clone(),
                    None => subscript(&container.eval(row)?, &key).clone(),
                }
            }
            Expr::Literal(v, _) => v.clone(),
            Expr::Not(e) => match e.eval(row)? {
                Value::Boolean(b) => Value::Boolean(!b),
                _ => Value::Null,
            },
            Expr::And(a, b) => match (a.eval(row)?, b.eval(row)?) {
                (Value::Boolean(false), _) | (_, Value::Boolean(false)) => Value::Boolean(false),
                (Value::Boolean(true), Value::Boolean(true)) => Value::Boolean(true),
                _ => Value::Null,
            },
            Expr::Or(a, b) => match (a.eval(row)?, b.eval(row)?) {
                (Value::Boolean(true), _) | (_, Value::Boolean(true)) => Value::Boolean(true),
                (Value::Boolean(false), Value::Boolean(false)) => Value::Boolean(false),
                _ => Value::Null,
            },
            Expr::IsNull(e, negated) => Value::Boolean(e.eval_cow(row)?.is_null() != *negated),
            Expr::Cmp(op, a, b) => {
                let (a, b) = (a.eval_cow(row)?, b.eval_cow(row)?);
                match compare(&a, &b) {
                    None => Value::Null,
                    Some(ord) => Value::Boolean(match op {
                        CmpOp::Eq => ord.is_eq(),
                        CmpOp::NotEq => !ord.is_eq(),
                        CmpOp::Lt => ord.is_lt(),
                        CmpOp::LtEq => ord.is_le(),
                        CmpOp::Gt => ord.is_gt(),
                        CmpOp::GtEq => ord.is_ge(),
                    }),
                }
            }
            Expr::Arith(op, a, b, t) => arith(*op, a.eval(row)?, b.eval(row)?, *t)?,
            Expr::Neg(e, _) => match e.eval(row)? {
                Value::TinyInt(i) => Value::TinyInt(i.wrapping_neg()),
                Value::SmallInt(i) => Value::SmallInt(i.wrapping_neg()),
                Value::Decimal(d) => Value::Decimal(Decimal {
                    unscaled: -d.unscaled,
                    ..d
                }),
                Value::Float(f) => Value::Float(-f),
                Value::Int(i) => Value::Int(i.wrapping_neg()),
                Value::BigInt(i) => Value::BigInt(i.wrapping_neg()),
                Value::Double(d) => Value::Double(-d),
                _ => Value::Null,
            },
            Expr::Case(whens, otherwise, _) => {
                for (cond, result) in whens {
                    if cond.eval(row)? == Value::Boolean(true) {
                        return result.eval(row);
                    }
                }
                match otherwise {
                    Some(e) => e.eval(row)?,
                    None => Value::Null,
                }
            }
            Expr::Cast(e, to, try_cast) => match cast(e.eval(row)?, *to) {
                Ok(v) => v,
                Err(_) if *try_cast => Value::Null,
                Err(e) => return Err(e),
            },
            Expr::Call(f, args, t) => crate::functions::call(*f, args, *t, row)?,
            Expr::Udf(f, args) => {
                let values = args
                    .iter()
                    .map(|a| a.eval(row))
                    .collect::<Result<Vec<_>, _>>()?;
                f.function
                    .call(&values)
                    .map_err(|e| EvalError(format!("user-defined function {}: {e}", f.name)))?
            }
        })
    }
}

impl Expr {
    /// This expression over the outputs of a projection: each `Column(i)` replaced by
    /// `inputs[i]` (for merging two `Calc` steps into one).
    pub fn substitute(&self, inputs: &[Expr]) -> Expr {
        let b = |e: &Expr| Box::new(e.substitute(inputs));
        let all = |es: &[Expr]| es.iter().map(|e| e.substitute(inputs)).collect::<Vec<_>>();
        match self {
            Expr::Column(i, t) => inputs
                .get(*i)
                .cloned()
                .unwrap_or(Expr::Literal(Value::Null, *t)),
            Expr::Literal(..) => self.clone(),
            Expr::Not(e) => Expr::Not(b(e)),
            Expr::And(x, y) => Expr::And(b(x), b(y)),
            Expr::Or(x, y) => Expr::Or(b(x), b(y)),
            Expr::IsNull(e, n) => Expr::IsNull(b(e), *n),
            Expr::Cmp(op, x, y) => Expr::Cmp(*op, b(x), b(y)),
            Expr::Arith(op, x, y, t) => Expr::Arith(*op, b(x), b(y), *t),
            Expr::Neg(e, t) => Expr::Neg(b(e), *t),
            Expr::Case(whens, otherwise, t) => Expr::Case(
                whens
                    .iter()
                    .map(|(c, r)| (c.substitute(inputs), r.substitute(inputs)))
                    .collect(),
                otherwise.as_deref().map(b),
                *t,
            ),
            Expr::Cast(e, t, try_cast) => Expr::Cast(b(e), *t, *try_cast),
            Expr::Call(f, args, t) => Expr::Call(*f, all(args), *t),
            Expr::Udf(f, args) => Expr::Udf(f.clone(), all(args)),
            Expr::Field(e, i, t) => Expr::Field(b(e), *i, *t),
            Expr::Subscript(e, k, t) => Expr::Subscript(b(e), b(k), *t),
        }
    }

    /// The expressions this one is made of (its operands and arguments).
    pub fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Column(..) | Expr::Literal(..) => Vec::new(),
            Expr::Not(e)
            | Expr::IsNull(e, _)
            | Expr::Neg(e, _)
            | Expr::Cast(e, ..)
            | Expr::Field(e, ..) => vec![e],
            Expr::And(x, y)
            | Expr::Or(x, y)
            | Expr::Cmp(_, x, y)
            | Expr::Arith(_, x, y, _)
            | Expr::Subscript(x, y, _) => vec![x, y],
            Expr::Case(whens, otherwise, _) => whens
                .iter()
                .flat_map(|(c, r)| [c, r])
                .chain(otherwise.as_deref())
                .collect(),
            Expr::Call(_, args, _) | Expr::Udf(_, args) => args.iter().collect(),
        }
    }

    /// Whether a user-defined function is called anywhere in the expression (such calls are
    /// not duplicated by merging steps: they may be costly or not deterministic).
    pub fn calls_udf(&self) -> bool {
        matches!(self, Expr::Udf(..)) || self.children().into_iter().any(Expr::calls_udf)
    }

    /// The input columns the expression reads, in order of first use.
    pub fn columns(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            if let Expr::Column(i, _) = e
                && !out.contains(i)
            {
                out.push(*i);
            }
            stack.extend(e.children().into_iter().rev());
        }
        out
    }

    /// The value, borrowed from the row or the expression where it is a column, a path of
    /// fields into one or a literal (no copy), else computed.
    fn eval_cow<'r>(&'r self, row: &'r [Value]) -> Result<std::borrow::Cow<'r, Value>, EvalError> {
        use std::borrow::Cow;
        Ok(match self {
            Expr::Literal(v, _) => Cow::Borrowed(v),
            _ => match self.borrow_in(row) {
                Some(v) => Cow::Borrowed(v),
                None => Cow::Owned(self.eval(row)?),
            },
        })
    }

    /// The value of a column, or of a path of fields into one, without copying it; `None`
    /// for other expressions.
    fn borrow_in<'r>(&self, row: &'r [Value]) -> Option<&'r Value> {
        match self {
            Expr::Column(i, _) => Some(row.get(*i).unwrap_or(&Value::Null)),
            Expr::Field(inner, i, _) => Some(field_of(inner.borrow_in(row)?, *i)),
            _ => None,
        }
    }
}

/// The field at `i` of a ROW value; NULL for a NULL row.
fn field_of(v: &Value, i: usize) -> &Value {
    match v {
        Value::Row(fields) => fields.get(i).unwrap_or(&Value::Null),
        _ => &Value::Null,
    }
}

/// `array[i]` (1-based) or `map[key]`; NULL out of range, for an absent key and for NULL.
fn subscript<'v>(v: &'v Value, key: &Value) -> &'v Value {
    match v {
        Value::Array(items) => key
            .as_i64()
            .and_then(|i| usize::try_from(i).ok()?.checked_sub(1))
            .and_then(|i| items.get(i))
            .unwrap_or(&Value::Null),
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&Value::Null, |(_, v)| v),
        _ => &Value::Null,
    }
}

/// Orders two non-NULL values of comparable types; `None` if either is NULL.
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    use Value::*;
    Some(match (a, b) {
        (Null, _) | (_, Null) => return None,
        (Boolean(a), Boolean(b)) => a.cmp(b),
        (Int(a), Int(b)) => a.cmp(b),
        (BigInt(a), BigInt(b)) | (Timestamp(a), Timestamp(b)) => a.cmp(b),
        (TimestampLtz(a), TimestampLtz(b)) => a.cmp(b),
        (Date(a), Date(b)) => a.cmp(b),
        (String(a), String(b)) => a.cmp(b),
        (Value::Decimal(a), Value::Decimal(b)) => a.cmp_value(*b),
        (Time(a, _), Time(b, _)) => a.cmp(b),
        (Bytes(a), Bytes(b)) => a.cmp(b),
        (TinyInt(_) | SmallInt(_), _) | (_, TinyInt(_) | SmallInt(_))
            if a.as_i64().is_some() && b.as_i64().is_some() =>
        {
            a.as_i64()?.cmp(&b.as_i64()?)
        }
        _ => a.as_f64()?.total_cmp(&b.as_f64()?),
    })
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64()
}

fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Decimal(d) => Some(*d),
        other => Some(Decimal {
            unscaled: i128::from(other.as_i64()?),
            scale: 0,
        }),
    }
}

/// Arithmetic in the result type `t` (operands are already of the result type, or an
/// interval next to a timestamp).
fn arith(op: ArithOp, a: Value, b: Value, t: DataType) -> Result<Value, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let div_zero = || EvalError("division by zero".into());
    Ok(match t {
        DataType::Decimal(p, s) => {
            let (Some(x), Some(y)) = (as_decimal(&a), as_decimal(&b)) else {
                return Ok(Value::Null);
            };
            let op = match op {
                ArithOp::Add => DecimalOp::Add,
                ArithOp::Sub => DecimalOp::Sub,
                ArithOp::Mul => DecimalOp::Mul,
                ArithOp::Div => DecimalOp::Div,
                ArithOp::Mod => DecimalOp::Rem,
            };
            // A result that needs more digits than its type is NULL, as in Flink.
            match decimal::arith(op, x, y, p, s).map_err(|e| EvalError(e.into()))? {
                Some(d) => Value::Decimal(d),
                None => Value::Null,
            }
        }
        DataType::Float => {
            let (x, y) = (
                as_f64(&a).unwrap_or(0.0) as f32,
                as_f64(&b).unwrap_or(0.0) as f32,
            );
            Value::Float(match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div => x / y,
                ArithOp::Mod => x % y,
            })
        }
        // TINYINT and SMALLINT compute in 64 bits and keep their low bits: Java's `(byte)`
        // and `(short)` of the int result, which is what Flink's generated code does.
        DataType::TinyInt | DataType::SmallInt => {
            let (x, y) = (as_i64(&a).unwrap_or(0), as_i64(&b).unwrap_or(0));
            let r = match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div | ArithOp::Mod if y == 0 => return Err(div_zero()),
                ArithOp::Div => x / y,
                ArithOp::Mod => x % y,
            };
            if t == DataType::TinyInt {
                Value::TinyInt(r as i8)
            } else {
                Value::SmallInt(r as i16)
            }
        }
        // TIME ± INTERVAL wraps around midnight, as in Flink.
        DataType::Time(p) => match (&a, &b, op) {
            (Value::Time(ms, _), Value::BigInt(iv), ArithOp::Add | ArithOp::Sub) => {
                let iv = if op == ArithOp::Sub { -iv } else { *iv };
                let ms = (i64::from(*ms) + iv).rem_euclid(86_400_000) as i32;
                Value::Time(ms, p)
            }
            _ => Value::Null,
        },
        DataType::Double => {
            let (x, y) = (as_f64(&a).unwrap_or(0.0), as_f64(&b).unwrap_or(0.0));
            Value::Double(match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div => x / y,
                ArithOp::Mod => x % y,
            })
        }
        // Integers wrap around on overflow, as Java's (and so Flink's generated code) do.
        DataType::Int => {
            let (x, y) = (
                as_i64(&a).unwrap_or(0) as i32,
                as_i64(&b).unwrap_or(0) as i32,
            );
            Value::Int(match op {
                ArithOp::Add => x.wrapping_add(y),
                ArithOp::Sub => x.wrapping_sub(y),
                ArithOp::Mul => x.wrapping_mul(y),
                ArithOp::Div if y == 0 => return Err(div_zero()),
                ArithOp::Mod if y == 0 => return Err(div_zero()),
                ArithOp::Div => x.wrapping_div(y),
                ArithOp::Mod => x.wrapping_rem(y),
            })
        }
        DataType::BigInt | DataType::Timestamp | DataType::TimestampLtz => {
            let (x, y) = (as_i64(&a).unwrap_or(0), as_i64(&b).unwrap_or(0));
            let r = match op {
                ArithOp::Add => x.wrapping_add(y),
                ArithOp::Sub => x.wrapping_sub(y),
                ArithOp::Mul => x.wrapping_mul(y),
                ArithOp::Div if y == 0 => return Err(div_zero()),
                ArithOp::Mod if y == 0 => return Err(div_zero()),
                ArithOp::Div => x.wrapping_div(y),
                ArithOp::Mod => x.wrapping_rem(y),
            };
            match t {
                DataType::Timestamp => Value::Timestamp(r),
                DataType::TimestampLtz => Value::TimestampLtz(r),
                _ => Value::BigInt(r),
            }
        }
        _ => Value::Null,
    })
}

/// Flink's CAST between the supported types.
///
/// # Errors
/// A string that does not read as the target type, or a number out of the target's range.
pub fn cast(v: Value, to: DataType) -> Result<Value, EvalError> {
    let bad = |v: &Value| {
        EvalError(format!(
            "cannot CAST '{}' to {to}; clean the input or use TRY_CAST to get NULL instead",
            v.to_sql_string().unwrap_or_default()
        ))
    };
    if !v.is_null() && to != DataType::String && is_new_numeric(&v, to) {
        return cast_number(v, to, bad);
    }
    Ok(match (&v, to) {
        (Value::Null, _) => Value::Null,
        (_, DataType::String) => Value::String(v.to_sql_string().unwrap_or_default()),
        (Value::Boolean(_), DataType::Boolean)
        | (Value::Int(_), DataType::Int)
        | (Value::BigInt(_), DataType::BigInt)
        | (Value::Double(_), DataType::Double)
        | (Value::Timestamp(_), DataType::Timestamp)
        | (Value::Date(_), DataType::Date) => v,
        (Value::Timestamp(ms), DataType::Date) => Value::Date(date_of_timestamp(*ms)),
        (Value::Time(ms, _), DataType::Time(p)) => Value::Time(truncate_time(*ms, p), p),
        (Value::Timestamp(ms), DataType::Time(p)) => {
            Value::Time(truncate_time(time_of_timestamp(*ms), p), p)
        }
        (Value::String(s), DataType::Time(p)) => {
            Value::Time(truncate_time(parse_time(s).ok_or_else(|| bad(&v))?, p), p)
        }
        (Value::Bytes(_), DataType::Bytes) => v,
        // As Flink 2.3: the string's UTF-8 bytes.
        (Value::String(s), DataType::Bytes) => Value::Bytes(s.as_bytes().to_vec()),
        (Value::Date(days), DataType::Timestamp) => Value::Timestamp(timestamp_of_date(*days)),
        (Value::String(s), DataType::Date) => Value::Date(parse_date(s).ok_or_else(|| bad(&v))?),
        (Value::Int(i), DataType::BigInt) => Value::BigInt(i64::from(*i)),
        (Value::Int(i), DataType::Double) => Value::Double(f64::from(*i)),
        (Value::BigInt(i), DataType::Double) => Value::Double(*i as f64),
        (Value::BigInt(i), DataType::Int) => Value::Int(*i as i32),
        (Value::Double(d), DataType::Int) => Value::Int(*d as i32),
        (Value::Double(d), DataType::BigInt) => Value::BigInt(*d as i64),
        (Value::Int(i), DataType::Boolean) => Value::Boolean(*i != 0),
        (Value::BigInt(i), DataType::Boolean) => Value::Boolean(*i != 0),
        (Value::Boolean(b), DataType::Int) => Value::Int(i32::from(*b)),
        (Value::Boolean(b), DataType::BigInt) => Value::BigInt(i64::from(*b)),
        (Value::String(s), DataType::Int) => Value::Int(s.trim().parse().map_err(|_| bad(&v))?),
        (Value::String(s), DataType::BigInt) => {
            Value::BigInt(s.trim().parse().map_err(|_| bad(&v))?)
        }
        (Value::String(s), DataType::Double) => {
            Value::Double(s.trim().parse().map_err(|_| bad(&v))?)
        }
        (Value::String(s), DataType::Boolean) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Value::Boolean(true),
            "false" => Value::Boolean(false),
            _ => return Err(bad(&v)),
        },
        (Value::String(s), DataType::Timestamp) => {
            Value::Timestamp(parse_timestamp(s).ok_or_else(|| bad(&v))?)
        }
        // The session time zone is UTC (see docs/sql.md): an instant and its local time
        // there have the same milliseconds.
        (Value::TimestampLtz(_), DataType::TimestampLtz) => v,
        (Value::TimestampLtz(ms), DataType::Timestamp) => Value::Timestamp(*ms),
        (Value::Timestamp(ms), DataType::TimestampLtz) => Value::TimestampLtz(*ms),
        (Value::TimestampLtz(ms), DataType::Date) => Value::Date(date_of_timestamp(*ms)),
        (Value::String(s), DataType::TimestampLtz) => {
            Value::TimestampLtz(parse_timestamp(s).ok_or_else(|| bad(&v))?)
        }
        // Composites cast field by field (ROW) or element by element (ARRAY, MAP).
        (Value::Row(values), DataType::Row(fields)) if values.len() == fields.len() => Value::Row(
            values
                .iter()
                .zip(fields.iter())
                .map(|(v, f)| cast(v.clone(), f.data_type))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Array(items), DataType::Array(element)) => Value::Array(
            items
                .iter()
                .map(|v| cast(v.clone(), *element))
                .collect::<Result<_, _>>()?,
        ),
        (Value::Map(entries), DataType::Map(kv)) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((cast(k.clone(), kv.0)?, cast(v.clone(), kv.1)?)))
                .collect::<Result<_, EvalError>>()?,
        ),
        _ => return Err(bad(&v)),
    })
}

/// Whether a cast involves TINYINT, SMALLINT, FLOAT or DECIMAL (as source or target).
fn is_new_numeric(v: &Value, to: DataType) -> bool {
    matches!(
        v,
        Value::TinyInt(_) | Value::SmallInt(_) | Value::Float(_) | Value::Decimal(_)
    ) || matches!(
        to,
        DataType::TinyInt | DataType::SmallInt | DataType::Float | DataType::Decimal(..)
    )
}

/// Casts between numbers, BOOLEAN and STRING for the types TINYINT, SMALLINT, FLOAT and
/// DECIMAL, as Flink 2.3 does (checked by the oracle): narrowing integers keep their low bits
/// (Java's `(byte)`), FLOAT/DOUBLE to an integer goes toward zero and saturates at INT/BIGINT
/// first, a DECIMAL is rounded `HALF_UP` and is NULL when it does not fit its precision, text
/// must read as the type (an integer out of range is an error).
fn cast_number(
    v: Value,
    to: DataType,
    bad: impl Fn(&Value) -> EvalError,
) -> Result<Value, EvalError> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    };
    Ok(match to {
        DataType::TinyInt | DataType::SmallInt | DataType::Int | DataType::BigInt => {
            let i: i64 = match &v {
                Value::Boolean(b) => i64::from(*b),
                Value::Decimal(d) => d.to_i64(),
                Value::Float(_) | Value::Double(_) => {
                    let d = as_f64(&v).unwrap_or(0.0);
                    if to == DataType::BigInt {
                        d as i64
                    } else {
                        i64::from(d as i32)
                    }
                }
                Value::String(_) => {
                    let parsed: i64 = text(&v)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad(&v))?;
                    let fits = match to {
                        DataType::TinyInt => i8::try_from(parsed).is_ok(),
                        DataType::SmallInt => i16::try_from(parsed).is_ok(),
                        DataType::Int => i32::try_from(parsed).is_ok(),
                        _ => true,
                    };
                    if !fits {
                        return Err(bad(&v));
                    }
                    parsed
                }
                other => as_i64(other).ok_or_else(|| bad(&v))?,
            };
            match to {
                DataType::TinyInt => Value::TinyInt(i as i8),
                DataType::SmallInt => Value::SmallInt(i as i16),
                DataType::Int => Value::Int(i as i32),
                _ => Value::BigInt(i),
            }
        }
        DataType::Float | DataType::Double => {
            let d: f64 = match &v {
                Value::Boolean(b) => f64::from(u8::from(*b)),
                Value::Float(f) if to == DataType::Float => return Ok(Value::Float(*f)),
                Value::String(_) if to == DataType::Float => {
                    let f: f32 = text(&v)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad(&v))?;
                    return Ok(Value::Float(f));
                }
                Value::String(_) => text(&v)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(&v))?,
                other => as_f64(other).ok_or_else(|| bad(&v))?,
            };
            if to == DataType::Float {
                Value::Float(d as f32)
            } else {
                Value::Double(d)
            }
        }
        DataType::Decimal(p, s) => {
            let d = match &v {
                Value::Boolean(b) => decimal::from_i64(i64::from(*b), p, s),
                Value::Decimal(d) => d.rescale(p, s),
                Value::Float(_) | Value::Double(_) => {
                    decimal::from_f64(as_f64(&v).unwrap_or(f64::NAN), p, s)
                }
                Value::String(t) => decimal::parse(t, p, s).map_err(|_| bad(&v))?,
                other => decimal::from_i64(as_i64(other).ok_or_else(|| bad(&v))?, p, s),
            };
            d.map_or(Value::Null, Value::Decimal)
        }
        DataType::Boolean => match &v {
            Value::Decimal(d) => Value::Boolean(d.unscaled != 0),
            other => Value::Boolean(as_i64(other).ok_or_else(|| bad(&v))? != 0),
        },
        _ => return Err(bad(&v)),
    })
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(i, _) => write!(f, "${i}"),
            Expr::Literal(v, t) => match v {
                Value::Null => write!(f, "NULL:{t}"),
                Value::String(s) => write!(f, "'{s}'"),
                Value::Double(d) => f.write_str(&format_double(*d)),
                Value::BigInt(ms) if *t == DataType::Interval => write!(f, "{ms}ms"),
                other => f.write_str(&other.to_sql_string().unwrap_or_default()),
            },
            Expr::Not(e) => write!(f, "NOT({e})"),
            Expr::And(a, b) => write!(f, "AND({a}, {b})"),
            Expr::Or(a, b) => write!(f, "OR({a}, {b})"),
            Expr::IsNull(e, false) => write!(f, "IS NULL({e})"),
            Expr::IsNull(e, true) => write!(f, "IS NOT NULL({e})"),
            Expr::Cmp(op, a, b) => {
                let s = match op {
                    CmpOp::Eq => "=",
                    CmpOp::NotEq => "<>",
                    CmpOp::Lt => "<",
                    CmpOp::LtEq => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::GtEq => ">=",
                };
                write!(f, "{s}({a}, {b})")
            }
            Expr::Arith(op, a, b, _) => {
                let s = match op {
                    ArithOp::Add => "+",
                    ArithOp::Sub => "-",
                    ArithOp::Mul => "*",
                    ArithOp::Div => "/",
                    ArithOp::Mod => "MOD",
                };
                write!(f, "{s}({a}, {b})")
            }
            Expr::Neg(e, _) => write!(f, "-({e})"),
            Expr::Case(whens, otherwise, _) => {
                f.write_str("CASE(")?;
                for (c, r) in whens {
                    write!(f, "{c}, {r}, ")?;
                }
                match otherwise {
                    Some(e) => write!(f, "{e})"),
                    None => f.write_str("NULL)"),
                }
            }
            Expr::Cast(e, t, false) => write!(f, "CAST({e} AS {t})"),
            Expr::Cast(e, t, true) => write!(f, "TRY_CAST({e} AS {t})"),
            Expr::Call(func, args, _) => {
                let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                write!(f, "{}({})", func.name(), args.join(", "))
            }
            Expr::Udf(func, args) => {
                let args: Vec<String> = args.iter().map(ToString::to_string).collect();
                write!(f, "{}({})", func.name, args.join(", "))
            }
            Expr::Field(e, i, _) => write!(f, "{e}.${i}"),
            Expr::Subscript(e, key, _) => write!(f, "{e}[{key}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: Value) -> Box<Expr> {
        let t = match v {
            Value::Boolean(_) | Value::Null => DataType::Boolean,
            Value::Int(_) => DataType::Int,
            _ => DataType::String,
        };
        Box::new(Expr::Literal(v, t))
    }

    #[test]
    fn logic_is_three_valued() {
        use Value::{Boolean as B, Null as N};
        let t = || B(true);
        let f = || B(false);
        // (a, b, a AND b, a OR b) as in the SQL standard's truth tables.
        for (a, b, and, or) in [
            (t(), N, N, t()),
            (f(), N, f(), N),
            (N, N, N, N),
            (t(), f(), f(), t()),
        ] {
            let e = Expr::And(lit(a.clone()), lit(b.clone()));
            assert_eq!(e.eval(&[]).unwrap(), and, "{a:?} AND {b:?}");
            let e = Expr::Or(lit(a.clone()), lit(b.clone()));
            assert_eq!(e.eval(&[]).unwrap(), or, "{a:?} OR {b:?}");
        }
        assert_eq!(Expr::Not(lit(N)).eval(&[]).unwrap(), N);
    }

    #[test]
    fn a_case_branch_is_taken_only_when_its_condition_is_true() {
        let e = Expr::Case(
            vec![(*lit(Value::Null), *lit(Value::Int(1)))],
            Some(lit(Value::Int(2))),
            DataType::Int,
        );
        assert_eq!(e.eval(&[]).unwrap(), Value::Int(2));
    }

    #[test]
    fn to_timestamp_gives_null_for_text_that_does_not_parse() {
        let f = |s: &str| {
            let arg = Expr::Literal(Value::String(s.into()), DataType::String);
            Expr::Call(Func::ToTimestamp, vec![arg], DataType::Timestamp)
                .eval(&[])
                .unwrap()
        };
        assert_eq!(
            f("2024-01-01 00:00:11.250"),
            Value::Timestamp(1_704_067_211_250)
        );
        assert_eq!(f("alice"), Value::Null);
    }

    #[test]
    fn casts_follow_flink() {
        assert_eq!(
            cast(Value::Double(-2.7), DataType::Int).unwrap(),
            Value::Int(-2)
        );
        assert_eq!(
            cast(Value::Boolean(true), DataType::String).unwrap(),
            Value::String("TRUE".into())
        );
        assert_eq!(
            cast(Value::String(" 42 ".into()), DataType::BigInt).unwrap(),
            Value::BigInt(42)
        );
        assert!(
            cast(Value::String("x".into()), DataType::Int)
                .unwrap_err()
                .0
                .contains("TRY_CAST")
        );
        let try_cast = Expr::Cast(lit(Value::String("x".into())), DataType::Int, true);
        assert_eq!(try_cast.eval(&[]).unwrap(), Value::Null);
    }

    #[test]
    fn integer_arithmetic_divides_and_fails_like_flink() {
        let div = |a, b| arith(ArithOp::Div, Value::Int(a), Value::Int(b), DataType::Int);
        assert_eq!(div(7, 2).unwrap(), Value::Int(3));
        assert_eq!(div(-7, 2).unwrap(), Value::Int(-3));
        assert!(div(1, 0).is_err());
        assert_eq!(
            arith(ArithOp::Mod, Value::Int(-7), Value::Int(3), DataType::Int).unwrap(),
            Value::Int(-1)
        );
        // Java's int arithmetic wraps, and so does Flink's.
        assert_eq!(
            arith(
                ArithOp::Add,
                Value::Int(i32::MAX),
                Value::Int(1),
                DataType::Int
            )
            .unwrap(),
            Value::Int(i32::MIN)
        );
    }
}
