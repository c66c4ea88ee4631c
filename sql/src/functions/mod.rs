//! Flink SQL's built-in scalar functions, one file per family: [`string`] (text, `LIKE`,
//! regular expressions), [`math`] (rounding, logarithms, `GREATEST`/`LEAST`), [`temporal`]
//! (`EXTRACT`, `FLOOR/CEIL(ts TO unit)`, `DATE_FORMAT`, `TIMESTAMPADD/DIFF`) and [`json`]
//! (`JSON_VALUE`); `signature` (internal) checks a call's arguments and gives its type.
//!
//! Semantics follow Flink 2.3, checked by `e2e/tests/flink_sql_oracle.rs`: a NULL argument
//! gives NULL unless the function says otherwise (`COALESCE`, `IF`, `NULLIF`, `CONCAT_WS`).
//! This module depends on [`crate::types`] and [`crate::expr`] only.

pub mod json;
pub mod math;
pub(crate) mod signature;
pub mod string;
pub mod temporal;

use crate::expr::{EvalError, Expr, compare};
use crate::types::{DataType, Value};
use serde::{Deserialize, Serialize};
pub use temporal::TimeUnit;

/// Which ends `TRIM` removes characters from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrimSide {
    /// `TRIM(BOTH ...)`, the default.
    Both,
    /// `TRIM(LEADING ...)` / `LTRIM`.
    Leading,
    /// `TRIM(TRAILING ...)` / `RTRIM`.
    Trailing,
}

/// A built-in scalar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// `UPPER(s)`
    Upper,
    /// `LOWER(s)`
    Lower,
    /// `CHAR_LENGTH(s)` / `CHARACTER_LENGTH(s)`
    CharLength,
    /// `CONCAT(s, ...)`: NULL if any argument is NULL.
    Concat,
    /// `ABS(n)`
    Abs,
    /// `COALESCE(a, b, ...)`: the first argument that is not NULL.
    Coalesce,
    /// `TO_TIMESTAMP(s)`: `yyyy-MM-dd HH:mm:ss[.SSS]` text as a TIMESTAMP(3); NULL when it
    /// does not parse (Flink's rule, unlike `CAST`, which fails).
    ToTimestamp,
    /// `s LIKE pattern [ESCAPE c]` (`%` any text, `_` one character; no default escape).
    Like,
    /// `SUBSTRING(s FROM pos [FOR len])` / `SUBSTR(s, pos [, len])`.
    Substring,
    /// `TRIM([BOTH|LEADING|TRAILING] [chars] FROM s)`, `LTRIM(s)`, `RTRIM(s)`.
    Trim(TrimSide),
    /// `REPLACE(s, search, replacement)`
    Replace,
    /// `POSITION(needle IN s)`: 1-based, 0 when absent.
    Position,
    /// `LEFT(s, n)`
    Left,
    /// `RIGHT(s, n)`
    Right,
    /// `LPAD(s, len, pad)`
    Lpad,
    /// `RPAD(s, len, pad)`
    Rpad,
    /// `INITCAP(s)`
    Initcap,
    /// `REVERSE(s)`
    Reverse,
    /// `REGEXP_REPLACE(s, regex, replacement)` (the replacement is literal text).
    RegexpReplace,
    /// `REGEXP_EXTRACT(s, regex [, group])`
    RegexpExtract,
    /// `SPLIT_INDEX(s, separator, index)` (0-based).
    SplitIndex,
    /// `CONCAT_WS(separator, s, ...)`: NULL arguments are skipped.
    ConcatWs,
    /// `REPEAT(s, n)`
    Repeat,
    /// `IF(condition, then, else)`: `else` when the condition is FALSE or NULL.
    If,
    /// `NULLIF(a, b)`: NULL when `a = b`, else `a`.
    Nullif,
    /// `GREATEST(a, ...)`: NULL if any argument is NULL.
    Greatest,
    /// `LEAST(a, ...)`: NULL if any argument is NULL.
    Least,
    /// `CEIL(x)` / `CEILING(x)` of a number.
    Ceil,
    /// `FLOOR(x)` of a number.
    Floor,
    /// `ROUND(x [, d])`: half away from zero, on the decimal digits Java prints.
    Round,
    /// `TRUNCATE(x [, d])`
    Truncate,
    /// `POWER(x, y)`
    Power,
    /// `SQRT(x)`
    Sqrt,
    /// `EXP(x)`
    Exp,
    /// `LN(x)` / `LOG(x)`
    Ln,
    /// `LOG10(x)`
    Log10,
    /// `LOG2(x)`
    Log2,
    /// `LOG(base, x)`: the logarithm of `x` to `base`, computed as Flink does,
    /// `ln(x) / ln(base)`.
    LogBase,
    /// `SIGN(x)`
    Sign,
    /// `EXTRACT(unit FROM ts)`, `YEAR(ts)`, `HOUR(ts)`, ...: a BIGINT.
    Extract(TimeUnit),
    /// `FLOOR(ts TO unit)`
    FloorTo(TimeUnit),
    /// `CEIL(ts TO unit)`
    CeilTo(TimeUnit),
    /// `DATE_FORMAT(ts, format)` with Java's `DateTimeFormatter` pattern letters.
    DateFormat,
    /// `TIMESTAMPADD(unit, n, ts)`
    TimestampAdd(TimeUnit),
    /// `TIMESTAMPDIFF(unit, ts1, ts2)`: whole units from `ts1` to `ts2`, an INT.
    TimestampDiff(TimeUnit),
    /// `JSON_VALUE(json, path [RETURNING type])`: the scalar at the path, NULL when there is
    /// none (Flink's default `NULL ON EMPTY`, `NULL ON ERROR`).
    JsonValue,
    /// `ROW(a, b, ...)`: a ROW of the arguments (NULL arguments are NULL fields).
    MakeRow,
    /// `ARRAY[a, b, ...]`: an ARRAY of the arguments (NULL arguments are NULL elements).
    MakeArray,
    /// `CARDINALITY(array | map)`: the number of elements or entries, an INT.
    Cardinality,
    /// `ELEMENT(array)`: the only element of a one-element array, NULL for an empty one; an
    /// error for more (as Flink).
    Element,
    /// `TO_TIMESTAMP_LTZ(n, precision)`: epoch seconds (precision 0) or milliseconds (3) as a
    /// TIMESTAMP_LTZ(3).
    ToTimestampLtz,
    /// `PROCTIME()`: the wall clock when the row is processed, a TIMESTAMP_LTZ(3) (Flink's
    /// processing-time attribute; declared as a computed column `pt AS PROCTIME()`, it is
    /// what a lookup join's `FOR SYSTEM_TIME AS OF` names).
    Proctime,
}

impl Func {
    /// The name the plan's explain text shows.
    pub fn name(self) -> String {
        let unit = |prefix: &str, u: TimeUnit| format!("{prefix}_{u:?}").to_uppercase();
        match self {
            Func::Trim(side) => format!("TRIM_{side:?}").to_uppercase(),
            Func::Extract(u) => unit("EXTRACT", u),
            Func::FloorTo(u) => unit("FLOOR_TO", u),
            Func::CeilTo(u) => unit("CEIL_TO", u),
            Func::TimestampAdd(u) => unit("TIMESTAMPADD", u),
            Func::TimestampDiff(u) => unit("TIMESTAMPDIFF", u),
            other => format!("{other:?}").to_uppercase(),
        }
    }
}

/// Evaluates a call. Functions that look at NULL arguments are evaluated here; for the
/// others a NULL argument gives NULL before the function runs.
///
/// # Errors
/// A `LIKE` pattern with a bad escape, a `DATE_FORMAT` pattern with an unknown letter, and
/// the errors of the arguments.
pub fn call(f: Func, args: &[Expr], t: DataType, row: &[Value]) -> Result<Value, EvalError> {
    match f {
        Func::Coalesce => {
            for a in args {
                let v = a.eval(row)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            return Ok(Value::Null);
        }
        Func::If => {
            let branch = if args[0].eval(row)? == Value::Boolean(true) {
                &args[1]
            } else {
                &args[2]
            };
            return branch.eval(row);
        }
        Func::Nullif => {
            let a = args[0].eval(row)?;
            let b = args[1].eval(row)?;
            return Ok(match compare(&a, &b) {
                Some(std::cmp::Ordering::Equal) => Value::Null,
                _ => a,
            });
        }
        Func::MakeRow | Func::MakeArray => {
            let values = args
                .iter()
                .map(|a| a.eval(row))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if f == Func::MakeRow {
                Value::Row(values)
            } else {
                Value::Array(values)
            });
        }
        Func::ConcatWs => {
            let Some(sep) = args[0].eval(row)?.to_sql_string() else {
                return Ok(Value::Null);
            };
            let mut parts = Vec::with_capacity(args.len() - 1);
            for a in &args[1..] {
                if let Some(s) = a.eval(row)?.to_sql_string() {
                    parts.push(s);
                }
            }
            return Ok(Value::String(parts.join(&sep)));
        }
        _ => {}
    }
    let mut values = Vec::with_capacity(args.len());
    for a in args {
        let v = a.eval(row)?;
        if v.is_null() {
            return Ok(Value::Null);
        }
        values.push(v);
    }
    strict(f, &values, t)
}

/// A value as text (non-NULL values only reach the functions).
pub(crate) fn text(v: &Value) -> String {
    v.to_sql_string().unwrap_or_default()
}

/// An integer argument.
pub(crate) fn int(v: &Value) -> i64 {
    match v {
        Value::Double(d) => *d as i64,
        other => other.as_i64().unwrap_or(0),
    }
}

fn strict(f: Func, v: &[Value], t: DataType) -> Result<Value, EvalError> {
    use Func as F;
    let s = |i: usize| text(&v[i]);
    let n = |i: usize| int(&v[i]);
    Ok(match f {
        F::Upper => Value::String(s(0).to_uppercase()),
        F::Lower => Value::String(s(0).to_lowercase()),
        F::CharLength => Value::Int(s(0).chars().count() as i32),
        F::Concat => Value::String(v.iter().map(text).collect()),
        F::Abs => match &v[0] {
            Value::Int(i) => Value::Int(i.wrapping_abs()),
            Value::BigInt(i) => Value::BigInt(i.wrapping_abs()),
            Value::Double(d) => Value::Double(d.abs()),
            Value::TinyInt(i) => Value::TinyInt(i.wrapping_abs()),
            Value::SmallInt(i) => Value::SmallInt(i.wrapping_abs()),
            Value::Float(f) => Value::Float(f.abs()),
            Value::Decimal(d) => Value::Decimal(crate::decimal::Decimal {
                unscaled: d.unscaled.abs(),
                ..*d
            }),
            _ => Value::Null,
        },
        // Evaluated in `call`.
        F::MakeRow | F::MakeArray => Value::Null,
        F::Cardinality => match &v[0] {
            Value::Array(items) => Value::Int(items.len() as i32),
            Value::Map(entries) => Value::Int(entries.len() as i32),
            _ => Value::Null,
        },
        F::Element => match &v[0] {
            Value::Array(items) if items.len() <= 1 => {
                items.first().cloned().unwrap_or(Value::Null)
            }
            Value::Array(items) => {
                return Err(EvalError(format!(
                    "ELEMENT needs an array of at most one element, found {}; use array[1] for the first",
                    items.len()
                )));
            }
            _ => Value::Null,
        },
        F::Proctime => Value::TimestampLtz(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        ),
        F::ToTimestampLtz => {
            let scale = if n(1) == 0 { 1000 } else { 1 };
            Value::TimestampLtz(n(0).wrapping_mul(scale))
        }
        F::ToTimestamp => {
            crate::types::parse_timestamp(&s(0)).map_or(Value::Null, Value::Timestamp)
        }
        F::Like => {
            let escape = v.get(2).map(text);
            Value::Boolean(string::like(&s(0), &s(1), escape.as_deref())?)
        }
        F::Substring => string::substring(&s(0), n(1), v.get(2).map(int)),
        F::Trim(side) => {
            let chars = v.get(1).map_or_else(|| " ".to_string(), text);
            Value::String(string::trim(&s(0), &chars, side))
        }
        F::Replace => Value::String(s(0).replace(&s(1), &s(2))),
        F::Position => Value::Int(string::position(&s(0), &s(1))),
        F::Left => Value::String(string::left(&s(0), n(1))),
        F::Right => Value::String(string::right(&s(0), n(1))),
        F::Lpad => string::pad(&s(0), n(1), &s(2), true),
        F::Rpad => string::pad(&s(0), n(1), &s(2), false),
        F::Initcap => Value::String(string::initcap(&s(0))),
        F::Reverse => Value::String(s(0).chars().rev().collect()),
        F::RegexpReplace => string::regexp_replace(&s(0), &s(1), &s(2)),
        F::RegexpExtract => string::regexp_extract(&s(0), &s(1), v.get(2).map_or(0, int)),
        F::SplitIndex => string::split_index(&s(0), &s(1), n(2)),
        F::Repeat => Value::String(s(0).repeat(n(1).clamp(0, i64::from(i32::MAX)) as usize)),
        F::Greatest | F::Least => {
            let mut best = &v[0];
            for x in &v[1..] {
                let ord = compare(x, best).unwrap_or(std::cmp::Ordering::Equal);
                if (f == F::Greatest && ord.is_gt()) || (f == F::Least && ord.is_lt()) {
                    best = x;
                }
            }
            best.clone()
        }
        F::Ceil | F::Floor | F::Sign => math::unary_exact(f, &v[0]),
        F::Round => math::round(&v[0], v.get(1).map_or(0, int), math::Rounding::HalfUp),
        F::Truncate => math::round(&v[0], v.get(1).map_or(0, int), math::Rounding::Down),
        F::Power | F::Sqrt | F::Exp | F::Ln | F::Log10 | F::Log2 | F::LogBase => math::double(f, v),
        F::Extract(unit) => Value::BigInt(temporal::extract(unit, n(0))),
        F::FloorTo(unit) => Value::Timestamp(temporal::floor(unit, n(0))),
        F::CeilTo(unit) => Value::Timestamp(temporal::ceil(unit, n(0))),
        F::DateFormat => {
            let ms = match &v[0] {
                Value::String(x) => match crate::types::parse_timestamp(x) {
                    Some(ms) => ms,
                    None => return Ok(Value::Null),
                },
                other => int(other),
            };
            Value::String(temporal::date_format(ms, &s(1))?)
        }
        F::TimestampAdd(unit) => Value::Timestamp(temporal::add(unit, n(0), n(1))),
        F::TimestampDiff(unit) => Value::Int(temporal::diff(unit, n(0), n(1)) as i32),
        F::JsonValue => match json::json_value(&s(0), &s(1)) {
            None => Value::Null,
            Some(x) => crate::expr::cast(Value::String(x), t).unwrap_or(Value::Null),
        },
        F::Coalesce | F::If | F::Nullif | F::ConcatWs => unreachable!("evaluated in call"),
    })
}
