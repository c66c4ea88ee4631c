//! Binding calls of the built-in functions: argument types (with Flink's implicit numeric
//! widening), the result type, and Flink's special call syntax (`LIKE`, `SUBSTRING(s FROM a
//! FOR n)`, `TRIM(LEADING c FROM s)`, `POSITION(a IN b)`, `EXTRACT(unit FROM ts)`,
//! `FLOOR/CEIL(x [TO unit])`).

use super::{Func, TimeUnit, TrimSide};
use crate::bind::{Binder, coerce, common_type, err};
use crate::error::{ErrorKind, Result};
use crate::expr::Expr;
use crate::types::{DataType, Value};
use sqlparser::ast;

/// The names `function` resolves, for the error that lists what is supported.
pub(crate) const NAMES: &str = "SUBSTR, LTRIM, RTRIM, REPLACE, LEFT, RIGHT, LPAD, RPAD, INITCAP, REVERSE, REGEXP_REPLACE, REGEXP_EXTRACT, SPLIT_INDEX, CONCAT_WS, REPEAT, IF, NULLIF, GREATEST, LEAST, CEILING, ROUND, TRUNCATE, POWER, SQRT, EXP, LN, LOG, LOG10, LOG2, SIGN, YEAR, QUARTER, MONTH, WEEK, DAYOFYEAR, DAYOFMONTH, DAYOFWEEK, HOUR, MINUTE, SECOND, DATE_FORMAT, TIMESTAMPADD, TIMESTAMPDIFF, JSON_VALUE, PROCTIME";

fn unit_of(field: &ast::DateTimeField) -> Option<TimeUnit> {
    use ast::DateTimeField as F;
    Some(match field {
        F::Year | F::Years => TimeUnit::Year,
        F::Quarter => TimeUnit::Quarter,
        F::Month | F::Months => TimeUnit::Month,
        F::Week(_) | F::Weeks => TimeUnit::Week,
        F::Day | F::Days => TimeUnit::Day,
        F::Hour | F::Hours => TimeUnit::Hour,
        F::Minute | F::Minutes => TimeUnit::Minute,
        F::Second | F::Seconds => TimeUnit::Second,
        F::Millisecond | F::Milliseconds => TimeUnit::Millisecond,
        F::Dow | F::DayOfWeek => TimeUnit::DayOfWeek,
        F::Doy | F::DayOfYear => TimeUnit::DayOfYear,
        _ => return None,
    })
}

fn unit_named(name: &str) -> Option<TimeUnit> {
    Some(match name.to_ascii_uppercase().as_str() {
        "YEAR" => TimeUnit::Year,
        "QUARTER" => TimeUnit::Quarter,
        "MONTH" => TimeUnit::Month,
        "WEEK" => TimeUnit::Week,
        "DAY" => TimeUnit::Day,
        "HOUR" => TimeUnit::Hour,
        "MINUTE" => TimeUnit::Minute,
        "SECOND" => TimeUnit::Second,
        _ => return None,
    })
}

/// Rounding functions over DECIMAL (Flink gives them their own result precision and scale)
/// and ROUND/TRUNCATE over FLOAT are not implemented yet: refused rather than guessed.
fn refuse_unverified(name: &str, t: DataType, x: &ast::Expr) -> Result<()> {
    let digits = matches!(name, "ROUND" | "TRUNCATE");
    if matches!(t, DataType::Decimal(..)) || (digits && t == DataType::Float) {
        return Err(err(
            ErrorKind::Unsupported,
            x,
            format!("{name} over {t} is not supported yet; CAST the argument AS DOUBLE"),
        ));
    }
    Ok(())
}

impl Binder<'_, '_> {
    fn typed(&mut self, x: &ast::Expr, want: &str, ok: impl Fn(DataType) -> bool) -> Result<Expr> {
        let bound = self.bind(x)?;
        let t = bound.data_type();
        if let Expr::Literal(crate::types::Value::Null, _) = bound {
            return Ok(bound);
        }
        if ok(t) {
            Ok(bound)
        } else {
            Err(err(
                ErrorKind::TypeMismatch,
                x,
                format!("expected {want}, found {t}; CAST it"),
            ))
        }
    }

    fn integer(&mut self, x: &ast::Expr) -> Result<Expr> {
        let e = self.typed(x, "an integer", DataType::is_integer)?;
        Ok(coerce(e.clone(), DataType::BigInt).unwrap_or(e))
    }

    fn number(&mut self, x: &ast::Expr) -> Result<Expr> {
        let e = self.typed(x, "a number", DataType::is_numeric)?;
        Ok(match e {
            Expr::Literal(crate::types::Value::Null, _) => {
                coerce(e, DataType::Double).expect("null")
            }
            e => e,
        })
    }

    fn timestamp(&mut self, x: &ast::Expr) -> Result<Expr> {
        let e = self.typed(x, "a TIMESTAMP(3)", |t| t == DataType::Timestamp)?;
        Ok(coerce(e, DataType::Timestamp).expect("timestamp or null"))
    }

    /// A TIMESTAMP(3), or a DATE read as its midnight (for the functions that read fields).
    fn timestamp_or_date(&mut self, x: &ast::Expr) -> Result<Expr> {
        let e = self.typed(x, "a TIMESTAMP(3) or DATE", |t| {
            matches!(t, DataType::Timestamp | DataType::Date)
        })?;
        Ok(match e.data_type() {
            DataType::Date => Expr::Cast(Box::new(e), DataType::Timestamp, false),
            _ => coerce(e, DataType::Timestamp).expect("timestamp or null"),
        })
    }

    fn strings(&mut self, xs: &[&ast::Expr]) -> Result<Vec<Expr>> {
        xs.iter().map(|x| self.string_arg(x)).collect()
    }

    /// Binds a call of one of the functions of this module by name; `None` if the name is
    /// not one of them.
    pub(crate) fn builtin(
        &mut self,
        e: &ast::Expr,
        name: &str,
        xs: &[&ast::Expr],
        returning: Option<&ast::DataType>,
    ) -> Result<Option<Expr>> {
        let arity = |range: std::ops::RangeInclusive<usize>| -> Result<()> {
            if range.contains(&xs.len()) {
                return Ok(());
            }
            let want = if range.start() == range.end() {
                range.start().to_string()
            } else if *range.end() == usize::MAX {
                format!("at least {}", range.start())
            } else {
                format!("{} to {}", range.start(), range.end())
            };
            Err(err(
                ErrorKind::TypeMismatch,
                e,
                format!("{name} takes {want} argument(s), found {}", xs.len()),
            ))
        };
        let call = |f, args, t| Ok(Some(Expr::Call(f, args, t)));
        let s = DataType::String;
        match name {
            "SUBSTR" => {
                arity(2..=3)?;
                let mut args = vec![self.string_arg(xs[0])?];
                for x in &xs[1..] {
                    args.push(self.integer(x)?);
                }
                call(Func::Substring, args, s)
            }
            "LTRIM" | "RTRIM" => {
                arity(1..=1)?;
                let side = if name == "LTRIM" {
                    TrimSide::Leading
                } else {
                    TrimSide::Trailing
                };
                call(Func::Trim(side), self.strings(xs)?, s)
            }
            "REPLACE" | "REGEXP_REPLACE" => {
                arity(3..=3)?;
                let f = if name == "REPLACE" {
                    Func::Replace
                } else {
                    Func::RegexpReplace
                };
                call(f, self.strings(xs)?, s)
            }
            "LEFT" | "RIGHT" | "REPEAT" => {
                arity(2..=2)?;
                let args = vec![self.string_arg(xs[0])?, self.integer(xs[1])?];
                let f = match name {
                    "LEFT" => Func::Left,
                    "RIGHT" => Func::Right,
                    _ => Func::Repeat,
                };
                call(f, args, s)
            }
            "LPAD" | "RPAD" => {
                arity(3..=3)?;
                let args = vec![
                    self.string_arg(xs[0])?,
                    self.integer(xs[1])?,
                    self.string_arg(xs[2])?,
                ];
                call(
                    if name == "LPAD" {
                        Func::Lpad
                    } else {
                        Func::Rpad
                    },
                    args,
                    s,
                )
            }
            "INITCAP" | "REVERSE" => {
                arity(1..=1)?;
                let f = if name == "INITCAP" {
                    Func::Initcap
                } else {
                    Func::Reverse
                };
                call(f, self.strings(xs)?, s)
            }
            "REGEXP_EXTRACT" => {
                arity(2..=3)?;
                let mut args = self.strings(&xs[..2])?;
                if let Some(x) = xs.get(2) {
                    args.push(self.integer(x)?);
                }
                call(Func::RegexpExtract, args, s)
            }
            "SPLIT_INDEX" => {
                arity(3..=3)?;
                let mut args = self.strings(&xs[..2])?;
                args.push(self.integer(xs[2])?);
                call(Func::SplitIndex, args, s)
            }
            "CONCAT_WS" => {
                arity(1..=usize::MAX)?;
                call(Func::ConcatWs, self.strings(xs)?, s)
            }
            "IF" => {
                arity(3..=3)?;
                let cond = self.bind_condition(xs[0], "IF")?;
                let (a, b) = (self.bind(xs[1])?, self.bind(xs[2])?);
                let t = common_type(&[&a, &b]).ok_or_else(|| {
                    err(
                        ErrorKind::TypeMismatch,
                        e,
                        format!(
                            "the two results of IF are {} and {}; CAST them to one type",
                            a.data_type(),
                            b.data_type()
                        ),
                    )
                })?;
                let args = vec![
                    cond,
                    coerce(a, t).expect("common"),
                    coerce(b, t).expect("common"),
                ];
                call(Func::If, args, t)
            }
            "NULLIF" | "GREATEST" | "LEAST" => {
                if name == "NULLIF" {
                    arity(2..=2)?;
                } else {
                    arity(1..=usize::MAX)?;
                }
                let args = xs
                    .iter()
                    .map(|x| self.bind(x))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Expr> = args.iter().collect();
                let t = common_type(&refs).filter(|t| *t != DataType::Interval).ok_or_else(|| {
                    err(ErrorKind::TypeMismatch, e, format!("the arguments of {name} have types that do not fit together; CAST them to one type"))
                })?;
                let args = args
                    .into_iter()
                    .map(|a| coerce(a, t).expect("common"))
                    .collect();
                let f = match name {
                    "NULLIF" => Func::Nullif,
                    "GREATEST" => Func::Greatest,
                    _ => Func::Least,
                };
                call(f, args, t)
            }
            "CEILING" | "ROUND" | "TRUNCATE" | "SIGN" => {
                let digits = matches!(name, "ROUND" | "TRUNCATE");
                arity(if digits { 1..=2 } else { 1..=1 })?;
                let x = self.number(xs[0])?;
                let t = x.data_type();
                refuse_unverified(name, t, xs[0])?;
                let mut args = vec![x];
                if let Some(d) = xs.get(1) {
                    args.push(self.integer(d)?);
                }
                let f = match name {
                    "CEILING" => Func::Ceil,
                    "ROUND" => Func::Round,
                    "TRUNCATE" => Func::Truncate,
                    _ => Func::Sign,
                };
                call(f, args, t)
            }
            "POWER" | "SQRT" | "EXP" | "LN" | "LOG" | "LOG10" | "LOG2" => {
                arity(match name {
                    "POWER" => 2..=2,
                    "LOG" => 1..=2,
                    _ => 1..=1,
                })?;
                let args = xs
                    .iter()
                    .map(|x| self.number(x))
                    .collect::<Result<Vec<_>>>()?;
                let f = match name {
                    "POWER" => Func::Power,
                    "SQRT" => Func::Sqrt,
                    "EXP" => Func::Exp,
                    "LOG" if xs.len() == 2 => Func::LogBase,
                    "LN" | "LOG" => Func::Ln,
                    "LOG10" => Func::Log10,
                    _ => Func::Log2,
                };
                call(f, args, DataType::Double)
            }
            "YEAR" | "QUARTER" | "MONTH" | "WEEK" | "DAYOFYEAR" | "DAYOFMONTH" | "DAYOFWEEK"
            | "HOUR" | "MINUTE" | "SECOND" => {
                arity(1..=1)?;
                let unit = match name {
                    "DAYOFYEAR" => TimeUnit::DayOfYear,
                    "DAYOFMONTH" => TimeUnit::Day,
                    "DAYOFWEEK" => TimeUnit::DayOfWeek,
                    n => unit_named(n).expect("a unit name"),
                };
                call(
                    Func::Extract(unit),
                    vec![self.timestamp_or_date(xs[0])?],
                    DataType::BigInt,
                )
            }
            "DATE_FORMAT" => {
                arity(2..=2)?;
                let x = self.typed(xs[0], "a TIMESTAMP(3), DATE or STRING", |t| {
                    matches!(t, DataType::Timestamp | DataType::Date | DataType::String)
                })?;
                let x = match x.data_type() {
                    DataType::Date => Expr::Cast(Box::new(x), DataType::Timestamp, false),
                    _ => x,
                };
                call(Func::DateFormat, vec![x, self.string_arg(xs[1])?], s)
            }
            "TIMESTAMPADD" | "TIMESTAMPDIFF" => {
                arity(3..=3)?;
                let unit = match xs[0] {
                    ast::Expr::Identifier(id) => unit_named(&id.value),
                    _ => None,
                }
                .ok_or_else(|| {
                    err(ErrorKind::TypeMismatch, xs[0], format!("{name} needs a unit first: SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER or YEAR"))
                })?;
                if name == "TIMESTAMPADD" {
                    let args = vec![self.integer(xs[1])?, self.timestamp(xs[2])?];
                    call(Func::TimestampAdd(unit), args, DataType::Timestamp)
                } else {
                    let args = vec![self.timestamp(xs[1])?, self.timestamp(xs[2])?];
                    call(Func::TimestampDiff(unit), args, DataType::Int)
                }
            }
            "CARDINALITY" | "ELEMENT" => {
                arity(1..=1)?;
                let x = self.bind(xs[0])?;
                let t = match (name, x.data_type()) {
                    ("CARDINALITY", DataType::Array(_) | DataType::Map(_)) => DataType::Int,
                    ("ELEMENT", DataType::Array(element)) => *element,
                    (_, other) => {
                        return Err(err(
                            ErrorKind::TypeMismatch,
                            xs[0],
                            format!(
                                "{name} needs an {}, but this is {other}",
                                if name == "ELEMENT" {
                                    "ARRAY"
                                } else {
                                    "ARRAY or a MAP"
                                }
                            ),
                        ));
                    }
                };
                let f = if name == "ELEMENT" {
                    Func::Element
                } else {
                    Func::Cardinality
                };
                call(f, vec![x], t)
            }
            "ROW" => {
                arity(1..=usize::MAX)?;
                let args = xs
                    .iter()
                    .map(|x| self.bind(x))
                    .collect::<Result<Vec<_>>>()?;
                let fields = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| crate::composite::Field {
                        name: format!("EXPR${i}"),
                        data_type: a.data_type(),
                    })
                    .collect();
                call(Func::MakeRow, args, DataType::row(fields))
            }
            "PROCTIME" => {
                arity(0..=0)?;
                call(Func::Proctime, Vec::new(), DataType::TimestampLtz)
            }
            "TO_TIMESTAMP_LTZ" => {
                arity(1..=2)?;
                let mut args = vec![self.integer(xs[0])?];
                let precision = match xs.get(1) {
                    None => 3,
                    Some(x) => match self.bind(x)? {
                        Expr::Literal(Value::Int(p @ (0 | 3)), _) => p,
                        _ => {
                            return Err(err(
                                ErrorKind::Unsupported,
                                x,
                                "TO_TIMESTAMP_LTZ's precision must be the literal 0 (epoch seconds) or 3 (epoch milliseconds)",
                            ));
                        }
                    },
                };
                args.push(Expr::Literal(Value::Int(precision), DataType::Int));
                call(Func::ToTimestampLtz, args, DataType::TimestampLtz)
            }
            "JSON_VALUE" => {
                arity(2..=2)?;
                let t = match returning {
                    None => s,
                    Some(t) => crate::bind::map_type(t, crate::bind::pos_of(e))?,
                };
                call(Func::JsonValue, self.strings(xs)?, t)
            }
            _ => Ok(None),
        }
    }

    /// Binds Flink's special call syntax; `None` for any other expression.
    pub(crate) fn special_syntax(&mut self, e: &ast::Expr) -> Result<Option<Expr>> {
        use ast::Expr as E;
        let s = DataType::String;
        let call = |f, args, t| Ok(Some(Expr::Call(f, args, t)));
        match e {
            E::Like {
                negated,
                any: false,
                expr,
                pattern,
                escape_char,
            } => {
                let mut args = vec![self.string_arg(expr)?, self.string_arg(pattern)?];
                if let Some(c) = escape_char {
                    args.push(self.string_arg(c)?);
                }
                let like = Expr::Call(Func::Like, args, DataType::Boolean);
                Ok(Some(if *negated {
                    Expr::Not(Box::new(like))
                } else {
                    like
                }))
            }
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.string_arg(expr)?];
                let Some(from) = substring_from else {
                    return Err(err(
                        ErrorKind::Syntax,
                        e,
                        "SUBSTRING needs a start: SUBSTRING(s FROM 2 [FOR 3])",
                    ));
                };
                args.push(self.integer(from)?);
                if let Some(n) = substring_for {
                    args.push(self.integer(n)?);
                }
                call(Func::Substring, args, s)
            }
            E::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                if trim_characters.is_some() {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        "TRIM(s, chars) is not Flink syntax; write TRIM(BOTH 'chars' FROM s)",
                    ));
                }
                let side = match trim_where {
                    None | Some(ast::TrimWhereField::Both) => TrimSide::Both,
                    Some(ast::TrimWhereField::Leading) => TrimSide::Leading,
                    Some(ast::TrimWhereField::Trailing) => TrimSide::Trailing,
                };
                let mut args = vec![self.string_arg(expr)?];
                if let Some(w) = trim_what {
                    args.push(self.string_arg(w)?);
                }
                call(Func::Trim(side), args, s)
            }
            E::Position { expr, r#in } => {
                let args = vec![self.string_arg(expr)?, self.string_arg(r#in)?];
                call(Func::Position, args, DataType::Int)
            }
            E::Extract { field, expr, .. } => {
                let unit = unit_of(field).ok_or_else(|| {
                    err(ErrorKind::Unsupported, e, format!("EXTRACT({field} FROM ...) is not supported yet; use YEAR, QUARTER, MONTH, WEEK, DAY, HOUR, MINUTE, SECOND, MILLISECOND, DOW or DOY"))
                })?;
                call(
                    Func::Extract(unit),
                    vec![self.timestamp_or_date(expr)?],
                    DataType::BigInt,
                )
            }
            E::Ceil { expr, field } | E::Floor { expr, field } => {
                let ceil = matches!(e, E::Ceil { .. });
                match field {
                    ast::CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) => {
                        let x = self.number(expr)?;
                        let t = x.data_type();
                        refuse_unverified(if ceil { "CEIL" } else { "FLOOR" }, t, expr)?;
                        call(if ceil { Func::Ceil } else { Func::Floor }, vec![x], t)
                    }
                    ast::CeilFloorKind::DateTimeField(field) => {
                        let unit = unit_of(field)
                            .filter(|u| !matches!(u, TimeUnit::Week | TimeUnit::DayOfWeek | TimeUnit::DayOfYear))
                            .ok_or_else(|| {
                                err(ErrorKind::Unsupported, e, format!("FLOOR/CEIL(ts TO {field}) is not supported yet; use YEAR, QUARTER, MONTH, DAY, HOUR, MINUTE, SECOND or MILLISECOND"))
                            })?;
                        let f = if ceil {
                            Func::CeilTo(unit)
                        } else {
                            Func::FloorTo(unit)
                        };
                        call(f, vec![self.timestamp(expr)?], DataType::Timestamp)
                    }
                    ast::CeilFloorKind::Scale(_) => Err(err(
                        ErrorKind::Unsupported,
                        e,
                        "CEIL/FLOOR(x, scale) is not Flink syntax; use ROUND or TRUNCATE(x, digits)",
                    )),
                }
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::bind::Binder;
    use crate::error::ErrorKind;
    use crate::types::{Column, DataType, Schema, Value, parse_timestamp};
    use sqlparser::ast::{SelectItem, SetExpr, Statement};
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    fn schema() -> Schema {
        let col = |name: &str, data_type| Column {
            name: name.into(),
            data_type,
            rowtime: false,
        };
        Schema {
            columns: vec![
                col("s", DataType::String),
                col("n", DataType::Int),
                col("d", DataType::Double),
                col("ts", DataType::Timestamp),
                col("b", DataType::BigInt),
            ],
        }
    }

    fn bind(text: &str) -> crate::Result<crate::expr::Expr> {
        let sql = format!("SELECT {text} FROM t");
        let stmt = Parser::parse_sql(&GenericDialect {}, &sql)
            .unwrap()
            .remove(0);
        let Statement::Query(q) = stmt else {
            panic!("a query")
        };
        let SetExpr::Select(select) = *q.body else {
            panic!("a select")
        };
        let SelectItem::UnnamedExpr(e) = &select.projection[0] else {
            panic!("an expression")
        };
        let schema = schema();
        Binder::new(&schema).bind(e)
    }

    /// Evaluates over a row of values and over a row of NULLs, as text ("NULL" for NULL).
    fn eval(text: &str) -> (String, String, DataType) {
        let e = bind(text).unwrap_or_else(|err| panic!("{text}: {err}"));
        let row = vec![
            Value::String("Hello World".into()),
            Value::Int(3),
            Value::Double(2.5),
            Value::Timestamp(parse_timestamp("2024-03-05 13:45:30.250").unwrap()),
            Value::BigInt(-15),
        ];
        let show = |v: Value| v.to_sql_string().unwrap_or_else(|| "NULL".into());
        let on_values = show(e.eval(&row).unwrap_or_else(|err| panic!("{text}: {err}")));
        let on_nulls = show(e.eval(&vec![Value::Null; 5]).unwrap());
        (on_values, on_nulls, e.data_type())
    }

    #[test]
    fn every_function_binds_evaluates_and_gives_null_for_null() {
        use DataType::*;
        let null = "NULL";
        for (text, value, type_) in [
            ("s LIKE 'H%o_ld'", "TRUE", Boolean),
            ("s NOT LIKE '%x%'", "TRUE", Boolean),
            ("s LIKE 'H!%' ESCAPE '!'", "FALSE", Boolean),
            ("SUBSTRING(s FROM 2 FOR n)", "ell", String),
            ("SUBSTRING(s FROM -5)", "World", String),
            ("SUBSTR(s, 7)", "World", String),
            ("TRIM(BOTH 'Hd' FROM s)", "ello Worl", String),
            ("TRIM(TRAILING FROM CONCAT(s, '  '))", "Hello World", String),
            ("LTRIM(CONCAT(' ', s))", "Hello World", String),
            ("RTRIM(s)", "Hello World", String),
            ("REPLACE(s, 'o', '0')", "Hell0 W0rld", String),
            ("POSITION('W' IN s)", "7", Int),
            ("LEFT(s, n)", "Hel", String),
            ("RIGHT(s, b)", "", String),
            ("LPAD(s, 13, '*')", "**Hello World", String),
            ("RPAD(s, n, '*')", "Hel", String),
            ("INITCAP(LOWER(s))", "Hello World", String),
            ("REVERSE(s)", "dlroW olleH", String),
            ("REGEXP_REPLACE(s, 'l+', 'L')", "HeLo WorLd", String),
            ("REGEXP_EXTRACT(s, '(\\w+) (\\w+)', 2)", "World", String),
            ("REGEXP_EXTRACT(s, 'W.')", "Wo", String),
            ("SPLIT_INDEX(s, ' ', 1)", "World", String),
            ("REPEAT(s, 0)", "", String),
            ("NULLIF(n, 3)", null, Int),
            ("GREATEST(n, b, 1)", "3", BigInt),
            ("LEAST(d, n)", "2.5", Double),
            ("CEIL(d)", "3.0", Double),
            ("FLOOR(n)", "3", Int),
            ("CEILING(d)", "3.0", Double),
            ("ROUND(d)", "3.0", Double),
            ("ROUND(b, -1)", "-20", BigInt),
            ("TRUNCATE(d)", "2.0", Double),
            ("POWER(n, 2)", "9.0", Double),
            ("SQRT(d * 10)", "5.0", Double),
            ("EXP(n - 3)", "1.0", Double),
            ("LN(n - 2)", "0.0", Double),
            ("LOG10(n * 100 / 3)", "2.0", Double),
            ("LOG2(n + 5)", "3.0", Double),
            ("SIGN(b)", "-1", BigInt),
            ("EXTRACT(YEAR FROM ts)", "2024", BigInt),
            ("EXTRACT(DOW FROM ts)", "3", BigInt),
            ("MINUTE(ts)", "45", BigInt),
            ("CAST(ts AS DATE)", "2024-03-05", Date),
            ("DAYOFMONTH(CAST(ts AS DATE))", "5", BigInt),
            ("EXTRACT(DOY FROM CAST(ts AS DATE))", "65", BigInt),
            ("CAST(ts AS DATE) = DATE '2024-03-05'", "TRUE", Boolean),
            ("CAST(ts AS DATE) > DATE '2024-03-05'", "FALSE", Boolean),
            (
                "CAST(CAST(ts AS DATE) AS TIMESTAMP(3))",
                "2024-03-05 00:00:00.000",
                Timestamp,
            ),
            (
                "DATE_FORMAT(CAST(ts AS DATE), 'yyyy/MM/dd HH')",
                "2024/03/05 00",
                String,
            ),
            ("TRY_CAST(s AS DATE)", null, Date),
            ("DAYOFYEAR(ts)", "65", BigInt),
            ("DATE_FORMAT(ts, 'HH:mm')", "13:45", String),
            ("FLOOR(ts TO DAY)", "2024-03-05 00:00:00.000", Timestamp),
            ("CEIL(ts TO HOUR)", "2024-03-05 14:00:00.000", Timestamp),
            (
                "TIMESTAMPADD(DAY, n, ts)",
                "2024-03-08 13:45:30.250",
                Timestamp,
            ),
            ("TIMESTAMPDIFF(HOUR, ts, ts + INTERVAL '1' DAY)", "24", Int),
            (
                "JSON_VALUE(CONCAT('{\"a\": [', s, ']}'), '$.a[0]')",
                null,
                String,
            ),
            (
                "JSON_VALUE(CONCAT('{\"a\": ', CAST(n AS STRING), '}'), '$.a')",
                "3",
                String,
            ),
            (
                "JSON_VALUE(CONCAT('{\"a\": ', CAST(n AS STRING), '}'), '$.a' RETURNING INT)",
                "3",
                Int,
            ),
        ] {
            let (on_values, on_nulls, t) = eval(text);
            assert_eq!((on_values.as_str(), t), (value, type_), "{text}");
            assert_eq!(on_nulls, null, "{text} over NULLs");
        }
    }

    #[test]
    fn functions_that_look_at_nulls() {
        // (expression, over values, over NULLs)
        for (text, value, nulls) in [
            ("IF(n > 2, 'big', 'small')", "big", "small"),
            ("NULLIF(n, 4)", "3", "NULL"),
            (
                "CONCAT_WS('-', s, 'x', CAST(n AS STRING))",
                "Hello World-x-3",
                "x",
            ),
            ("CONCAT_WS(CAST(NULL AS STRING), 'a')", "NULL", "NULL"),
            ("COALESCE(s, 'none')", "Hello World", "none"),
        ] {
            let (on_values, on_nulls, _) = eval(text);
            assert_eq!(
                (on_values.as_str(), on_nulls.as_str()),
                (value, nulls),
                "{text}"
            );
        }
    }

    #[test]
    fn wrong_arguments_and_unknown_functions_name_the_place() {
        for (text, kind, needle) in [
            (
                "LEFT(s)",
                ErrorKind::TypeMismatch,
                "LEFT takes 2 argument(s), found 1",
            ),
            ("LEFT(n, 1)", ErrorKind::TypeMismatch, "expected a STRING"),
            ("SQRT(s)", ErrorKind::TypeMismatch, "expected a number"),
            (
                "YEAR(s)",
                ErrorKind::TypeMismatch,
                "expected a TIMESTAMP(3)",
            ),
            (
                "TIMESTAMPADD(EON, 1, ts)",
                ErrorKind::TypeMismatch,
                "needs a unit",
            ),
            (
                "FLOOR(ts TO WEEK)",
                ErrorKind::Unsupported,
                "not supported yet",
            ),
            (
                "IF(n > 1, s, n)",
                ErrorKind::TypeMismatch,
                "CAST them to one type",
            ),
            (
                "SOUNDEX(s)",
                ErrorKind::UnknownFunction,
                "function SOUNDEX is not supported yet",
            ),
        ] {
            let e = bind(text).expect_err(text);
            assert_eq!(e.kind(), Some(kind), "{text}: {e}");
            let message = e.to_string();
            assert!(message.contains(needle), "{text}: {message}");
            assert!(message.starts_with("line 1, column "), "{text}: {message}");
        }
    }
}
