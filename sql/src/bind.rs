//! Binding: turning sqlparser expressions into typed [`Expr`]s over a schema, with Flink's
//! implicit numeric widening, and collecting aggregate calls of a windowed `GROUP BY`.

use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::{ArithOp, CmpOp, Expr, Func};
use crate::plan::{AggCall, AggFunc};
use crate::types::{DataType, Schema, Value, parse_timestamp};
use sqlparser::ast::{self, Spanned};

/// The grouping context of a windowed aggregation: names that are grouped (in output order:
/// window_start, window_end, keys) and the aggregates found so far.
pub(crate) struct AggContext<'a> {
    /// The schema the aggregates' arguments are bound in.
    pub input: &'a Schema,
    /// Grouped names and types, in output order.
    pub group: Vec<(String, DataType)>,
    /// Aggregates, in output order after the grouped columns.
    pub aggs: Vec<AggCall>,
}

/// Binds expressions over `schema`, or in an aggregation context.
pub(crate) struct Binder<'a, 'c> {
    /// The columns names resolve to (ignored in an aggregation context).
    pub schema: &'a Schema,
    /// The aggregation context, for `SELECT`/`HAVING` of a windowed `GROUP BY`.
    pub agg: Option<&'c mut AggContext<'a>>,
}

pub(crate) fn pos_of(e: &ast::Expr) -> Pos {
    Pos::of(e.span())
}

pub(crate) fn err(kind: ErrorKind, e: &ast::Expr, message: impl Into<String>) -> SqlError {
    SqlError::at(kind, pos_of(e), message)
}

/// Maps a SQL type of the script to a supported type.
pub(crate) fn map_type(t: &ast::DataType, pos: Pos) -> Result<DataType> {
    use ast::DataType as T;
    Ok(match t {
        T::Boolean | T::Bool => DataType::Boolean,
        T::TinyInt(_) => DataType::TinyInt,
        T::SmallInt(_) => DataType::SmallInt,
        T::Int(_) | T::Integer(_) => DataType::Int,
        T::BigInt(_) => DataType::BigInt,
        T::Float(ast::ExactNumberInfo::None) | T::Real => DataType::Float,
        T::Decimal(info) | T::Dec(info) | T::Numeric(info) => {
            // Flink's defaults: DECIMAL is DECIMAL(10, 0), DECIMAL(p) is DECIMAL(p, 0).
            let (p, s) = match info {
                ast::ExactNumberInfo::None => (10, 0),
                ast::ExactNumberInfo::Precision(p) => (*p, 0),
                ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
            };
            if !(1..=38).contains(&p) || s < 0 || s as u64 > p {
                return Err(SqlError::at(
                    ErrorKind::TypeMismatch,
                    pos,
                    format!(
                        "DECIMAL({p}, {s}) is not a valid type: the precision must be between 1 and 38 and the scale between 0 and the precision"
                    ),
                ));
            }
            DataType::Decimal(p as u8, s as u8)
        }
        T::Double(_) | T::DoublePrecision => DataType::Double,
        T::String(_) | T::Varchar(_) | T::Char(_) | T::Text | T::CharVarying(_) => DataType::String,
        T::Date => DataType::Date,
        T::Bytes(_) | T::Varbinary(_) | T::Binary(_) => DataType::Bytes,
        T::Time(p, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => match p {
            // Flink's TIME is TIME(0).
            None => DataType::Time(0),
            Some(p @ 0..=3) => DataType::Time(*p as u8),
            Some(p) => {
                return Err(SqlError::at(
                    ErrorKind::Unsupported,
                    pos,
                    format!("TIME({p}) is not supported yet; use TIME(0) to TIME(3)"),
                ));
            }
        },
        T::Timestamp(p, ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone) => match p {
            None | Some(0..=3) => DataType::Timestamp,
            Some(p) => {
                return Err(SqlError::at(
                    ErrorKind::Unsupported,
                    pos,
                    format!(
                        "TIMESTAMP({p}) is not supported yet; use TIMESTAMP(3) (millisecond precision)"
                    ),
                ));
            }
        },
        T::Custom(name, modifiers)
            if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") && modifiers.len() <= 1 =>
        {
            match modifiers.first().map(|m| m.to_string().parse::<u8>()) {
                None | Some(Ok(0..=3)) => DataType::TimestampLtz,
                Some(_) => {
                    return Err(SqlError::at(
                        ErrorKind::Unsupported,
                        pos,
                        format!(
                            "{t} is not supported yet; use TIMESTAMP_LTZ(3) (millisecond precision)"
                        ),
                    ));
                }
            }
        }
        T::Array(ast::ArrayElemTypeDef::AngleBracket(element)) => {
            DataType::array(map_type(element, pos)?)
        }
        T::Struct(fields, _) => composite_type(fields, pos)?,
        other => {
            return Err(SqlError::at(
                ErrorKind::Unsupported,
                pos,
                format!(
                    "type {other} is not supported yet; use BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, DECIMAL(p, s), FLOAT, DOUBLE, STRING, BYTES, DATE, TIME, TIMESTAMP(3), TIMESTAMP_LTZ(3), ROW<name type, ...>, ARRAY<type> or MAP<key type, value type>"
                ),
            ));
        }
    })
}

/// A `ROW<name type, ...>`, or a `MAP<k, v>` (which [`crate::parse`] hands over as a STRUCT
/// with two marked fields).
fn composite_type(fields: &[ast::StructField], pos: Pos) -> Result<DataType> {
    let name_of = |f: &ast::StructField| f.field_name.as_ref().map(|n| n.value.clone());
    if let [k, v] = fields
        && name_of(k).as_deref() == Some(crate::parse::MAP_KEY)
        && name_of(v).as_deref() == Some(crate::parse::MAP_VALUE)
    {
        return Ok(DataType::map(
            map_type(&k.field_type, pos)?,
            map_type(&v.field_type, pos)?,
        ));
    }
    let mut out = Vec::with_capacity(fields.len());
    for f in fields {
        let Some(name) = name_of(f) else {
            return Err(SqlError::at(
                ErrorKind::Syntax,
                pos,
                format!("a ROW field needs a name: ROW<name {}, ...>", f.field_type),
            ));
        };
        if out.iter().any(|o: &crate::composite::Field| o.name == name) {
            return Err(SqlError::at(
                ErrorKind::Syntax,
                pos,
                format!("the ROW type has two fields named '{name}'; rename one"),
            ));
        }
        out.push(crate::composite::Field {
            name,
            data_type: map_type(&f.field_type, pos)?,
        });
    }
    Ok(DataType::row(out))
}

/// Gives an expression type `to`: unchanged, a typed NULL, or a widening numeric cast.
pub(crate) fn coerce(e: Expr, to: DataType) -> Option<Expr> {
    let from = e.data_type();
    if from == to {
        return Some(e);
    }
    if let Expr::Literal(Value::Null, _) = e {
        return Some(Expr::Literal(Value::Null, to));
    }
    if from.casts_implicitly_to(to) {
        return Some(Expr::Cast(Box::new(e), to, false));
    }
    None
}

fn is_null_literal(e: &Expr) -> bool {
    matches!(e, Expr::Literal(Value::Null, _))
}

/// The common type of operands (equal types, NULL literals, numeric widening).
pub(crate) fn common_type(exprs: &[&Expr]) -> Option<DataType> {
    let mut t: Option<DataType> = None;
    for e in exprs.iter().filter(|e| !is_null_literal(e)) {
        let et = e.data_type();
        t = Some(match (t, et) {
            (None, _) => et,
            (Some(t), et) if t == et => t,
            (Some(DataType::Time(a)), DataType::Time(b)) => DataType::Time(a.max(b)),
            (Some(t), et) => DataType::wider_numeric(t, et)?,
        });
    }
    Some(t.unwrap_or(DataType::String))
}

/// A literal without exponent as the DECIMAL of exactly its digits (`0.10` is
/// DECIMAL(3, 2), `.5` DECIMAL(1, 1)); `None` for `1e3` (a DOUBLE) or more than 38 digits.
fn decimal_literal(text: &str) -> Option<(crate::decimal::Decimal, u8, u8)> {
    if text.contains(['e', 'E']) {
        return None;
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let int = int.trim_start_matches('0');
    let s = frac.len();
    let p = (int.len() + s).max(1).max(s);
    if p > 38 {
        return None;
    }
    let d = crate::decimal::parse(text, p as u8, s as u8).ok()??;
    Some((d, p as u8, s as u8))
}

/// The arithmetic `a op b` with Flink's result type, or `None` if the operands are not
/// numbers: in the common type of both, except that a DECIMAL result gets its own precision
/// and scale (`DECIMAL(5, 3) / INT` is `DECIMAL(16, 14)`), the operands keeping theirs.
pub(crate) fn arith_expr(op: ArithOp, a: Expr, b: Expr) -> Option<Expr> {
    let t = common_type(&[&a, &b]).filter(|t| t.is_numeric())?;
    if let DataType::Decimal(..) = t {
        let to_decimal = |e: Expr| {
            let et = match &e {
                Expr::Literal(Value::Null, _) => t,
                e => e.data_type(),
            };
            let (p, s) = et.as_decimal().unwrap_or((38, 0));
            coerce(e, DataType::Decimal(p, s)).expect("an exact number")
        };
        let (a, b) = (to_decimal(a), to_decimal(b));
        let dec = |e: &Expr| e.data_type().as_decimal().expect("decimal");
        let dop = match op {
            ArithOp::Add => crate::decimal::DecimalOp::Add,
            ArithOp::Sub => crate::decimal::DecimalOp::Sub,
            ArithOp::Mul => crate::decimal::DecimalOp::Mul,
            ArithOp::Div => crate::decimal::DecimalOp::Div,
            ArithOp::Mod => crate::decimal::DecimalOp::Rem,
        };
        let (p, s) = crate::decimal::result_type(dop, dec(&a), dec(&b));
        return Some(Expr::Arith(
            op,
            Box::new(a),
            Box::new(b),
            DataType::Decimal(p, s),
        ));
    }
    Some(Expr::Arith(
        op,
        Box::new(coerce(a, t).expect("common")),
        Box::new(coerce(b, t).expect("common")),
        t,
    ))
}

pub(crate) fn interval_ms(iv: &ast::Interval, e: &ast::Expr) -> Result<i64> {
    let text = match iv.value.as_ref() {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::Number(s, _) => s.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    let n: i64 = text.trim().parse().map_err(|_| {
        err(ErrorKind::Unsupported, e, format!("interval value '{text}' is not supported; write a whole number, e.g. INTERVAL '10' SECOND"))
    })?;
    use ast::DateTimeField as F;
    let unit = match &iv.leading_field {
        Some(F::Millisecond | F::Milliseconds) => 1,
        Some(F::Second | F::Seconds) => 1000,
        Some(F::Minute | F::Minutes) => 60_000,
        Some(F::Hour | F::Hours) => 3_600_000,
        Some(F::Day | F::Days) => 86_400_000,
        _ => {
            return Err(err(
                ErrorKind::Unsupported,
                e,
                "write the interval with one unit: SECOND, MINUTE, HOUR or DAY, e.g. INTERVAL '10' SECOND",
            ));
        }
    };
    if iv.last_field.is_some() {
        return Err(err(
            ErrorKind::Unsupported,
            e,
            "interval ranges (e.g. DAY TO SECOND) are not supported yet; use one unit",
        ));
    }
    Ok(n * unit)
}

impl<'a> Binder<'a, '_> {
    /// A binder over a schema.
    pub fn new(schema: &'a Schema) -> Self {
        Binder { schema, agg: None }
    }

    fn column(&mut self, name: &str, e: &ast::Expr) -> Result<Expr> {
        if let Some(agg) = self.agg.as_deref() {
            let suffix = format!(".{name}");
            let grouped = agg.group.iter().position(|(n, _)| n == name).or_else(|| {
                let mut q = agg
                    .group
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| !name.contains('.') && n.ends_with(&suffix));
                match (q.next(), q.next()) {
                    (Some((i, _)), None) => Some(i),
                    _ => None,
                }
            });
            if let Some(i) = grouped {
                return Ok(Expr::Column(i, agg.group[i].1));
            }
            if agg.input.index_of(name).is_some() {
                return Err(err(
                    ErrorKind::TypeMismatch,
                    e,
                    format!(
                        "column '{name}' is neither grouped nor aggregated; add it to GROUP BY or use it inside an aggregate such as MAX({name})"
                    ),
                ));
            }
            return Err(unknown_column(name, agg.input, e));
        }
        match self.schema.index_of(name) {
            Some(i) => Ok(Expr::Column(i, self.schema.columns[i].data_type)),
            None => Err(unknown_column(name, self.schema, e)),
        }
    }

    /// `a.b.c`: a column with fields of its ROW (`person.id`), or a qualified column
    /// (`t.col`, `t.col.field`) when the first name is not a column.
    fn compound(&mut self, ids: &[ast::Ident], e: &ast::Expr) -> Result<Expr> {
        let names: Vec<&str> = ids.iter().map(|i| i.value.as_str()).collect();
        // `t.col` of a join: the column named so (then fields of it, `t.col.field`).
        if names.len() >= 2 {
            let qualified = format!("{}.{}", names[0], names[1]);
            let found = match self.agg.as_deref() {
                Some(agg) => agg.group.iter().any(|(n, _)| *n == qualified),
                None => self.schema.columns.iter().any(|c| c.name == qualified),
            };
            if found {
                let mut x = self.column(&qualified, e)?;
                for field in &names[2..] {
                    x = field_access(x, field, e)?;
                }
                return Ok(x);
            }
        }
        let is_column = |name: &str| match self.agg.as_deref() {
            Some(agg) => agg.group.iter().any(|(n, _)| n == name),
            None => self.schema.index_of(name).is_some(),
        };
        // The longest run of trailing names that starts at a column, qualifiers dropped.
        let start = (0..names.len())
            .find(|&i| is_column(names[i]))
            .unwrap_or(names.len() - 1);
        let mut x = self.column(names[start], e)?;
        for field in &names[start + 1..] {
            x = field_access(x, field, e)?;
        }
        Ok(x)
    }

    /// `x[index]` on an ARRAY (an integer, from 1) or a MAP (a key).
    fn subscript(&mut self, x: Expr, index: &ast::Expr, e: &ast::Expr) -> Result<Expr> {
        let key = self.bind(index)?;
        match x.data_type() {
            DataType::Array(element) => {
                let key = coerce(key.clone(), DataType::BigInt)
                    .filter(|_| key.data_type().is_integer())
                    .ok_or_else(|| {
                        err(
                            ErrorKind::TypeMismatch,
                            index,
                            format!(
                                "an ARRAY index must be an integer, but this is {}",
                                key.data_type()
                            ),
                        )
                    })?;
                Ok(Expr::Subscript(Box::new(x), Box::new(key), *element))
            }
            DataType::Map(kv) => {
                let key = coerce(key.clone(), kv.0).ok_or_else(|| {
                    err(
                        ErrorKind::TypeMismatch,
                        index,
                        format!(
                            "the map's keys are {}, but this is {}",
                            kv.0,
                            key.data_type()
                        ),
                    )
                })?;
                Ok(Expr::Subscript(Box::new(x), Box::new(key), kv.1))
            }
            other => Err(err(
                ErrorKind::TypeMismatch,
                e,
                format!("[...] needs an ARRAY or a MAP, but this is {other}"),
            )),
        }
    }

    /// Binds an expression that must be BOOLEAN (WHERE, HAVING, WHEN).
    pub fn bind_condition(&mut self, e: &ast::Expr, clause: &str) -> Result<Expr> {
        let bound = self.bind(e)?;
        coerce(bound.clone(), DataType::Boolean).ok_or_else(|| {
            err(
                ErrorKind::TypeMismatch,
                e,
                format!(
                    "{clause} needs a BOOLEAN condition, but this is {}; compare it, e.g. x > 0",
                    bound.data_type()
                ),
            )
        })
    }

    /// Binds an expression.
    pub fn bind(&mut self, e: &ast::Expr) -> Result<Expr> {
        use ast::Expr as E;
        Ok(match e {
            E::Identifier(id) => self.column(&id.value, e)?,
            E::CompoundIdentifier(ids) => self.compound(ids, e)?,
            E::CompoundFieldAccess { root, access_chain } => {
                let mut x = self.bind(root)?;
                for access in access_chain {
                    x = match access {
                        ast::AccessExpr::Dot(ast::Expr::Identifier(id)) => {
                            field_access(x, &id.value, e)?
                        }
                        ast::AccessExpr::Subscript(ast::Subscript::Index { index }) => {
                            self.subscript(x, index, e)?
                        }
                        other => {
                            return Err(err(
                                ErrorKind::Unsupported,
                                e,
                                format!(
                                    "'{other}' is not supported; use array[i], map[key] or row.field"
                                ),
                            ));
                        }
                    };
                }
                x
            }
            E::Array(array) => {
                let items = array
                    .elem
                    .iter()
                    .map(|x| self.bind(x))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Expr> = items.iter().collect();
                let t = common_type(&refs).ok_or_else(|| {
                    err(
                        ErrorKind::TypeMismatch,
                        e,
                        "the elements of an ARRAY[...] need one common type; CAST them",
                    )
                })?;
                let items = items
                    .into_iter()
                    .map(|x| coerce(x, t).expect("common type"))
                    .collect();
                Expr::Call(Func::MakeArray, items, DataType::array(t))
            }
            E::Nested(inner) => self.bind(inner)?,
            E::Value(v) => match &v.value {
                ast::Value::Number(n, _) => {
                    if let Ok(i) = n.parse::<i32>() {
                        Expr::Literal(Value::Int(i), DataType::Int)
                    } else if let Ok(i) = n.parse::<i64>() {
                        Expr::Literal(Value::BigInt(i), DataType::BigInt)
                    } else if let Some((d, p, s)) = decimal_literal(n) {
                        // `1.5` is DECIMAL(2, 1) in Flink, as are integers beyond BIGINT.
                        Expr::Literal(Value::Decimal(d), DataType::Decimal(p, s))
                    } else if let Ok(d) = n.parse::<f64>() {
                        Expr::Literal(Value::Double(d), DataType::Double)
                    } else {
                        return Err(err(ErrorKind::Syntax, e, format!("'{n}' is not a number")));
                    }
                }
                ast::Value::SingleQuotedString(s) => {
                    Expr::Literal(Value::String(s.clone()), DataType::String)
                }
                ast::Value::Boolean(b) => Expr::Literal(Value::Boolean(*b), DataType::Boolean),
                ast::Value::HexStringLiteral(hex) => match decode_hex(hex) {
                    Some(bytes) => Expr::Literal(Value::Bytes(bytes), DataType::Bytes),
                    None => {
                        return Err(err(
                            ErrorKind::Syntax,
                            e,
                            format!(
                                "X'{hex}' is not a binary literal; write an even number of hex digits, e.g. X'CAFE'"
                            ),
                        ));
                    }
                },
                ast::Value::Null => Expr::Literal(Value::Null, DataType::String),
                other => {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        format!("literal {other} is not supported yet"),
                    ));
                }
            },
            E::TypedString(ts) => {
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                match ts.data_type {
                    ast::DataType::Timestamp(..) => match parse_timestamp(&text) {
                        Some(ms) => Expr::Literal(Value::Timestamp(ms), DataType::Timestamp),
                        None => {
                            return Err(err(
                                ErrorKind::TypeMismatch,
                                e,
                                format!(
                                    "'{text}' is not a timestamp; write TIMESTAMP '2024-01-31 12:00:00.000'"
                                ),
                            ));
                        }
                    },
                    ast::DataType::Time(..) => match crate::types::parse_time(&text) {
                        Some(ms) => {
                            // The literal's precision is its number of fraction digits.
                            let digits = text.trim().split_once('.').map_or(0, |(_, f)| f.len());
                            let p = digits.min(3) as u8;
                            Expr::Literal(Value::Time(ms, p), DataType::Time(p))
                        }
                        None => {
                            return Err(err(
                                ErrorKind::TypeMismatch,
                                e,
                                format!("'{text}' is not a time; write TIME '12:34:56'"),
                            ));
                        }
                    },
                    ast::DataType::Date => match crate::types::parse_date(&text) {
                        Some(days) => Expr::Literal(Value::Date(days), DataType::Date),
                        None => {
                            return Err(err(
                                ErrorKind::TypeMismatch,
                                e,
                                format!("'{text}' is not a date; write DATE '2024-01-31'"),
                            ));
                        }
                    },
                    _ => {
                        return Err(err(
                            ErrorKind::Unsupported,
                            e,
                            format!("{} literals are not supported yet", ts.data_type),
                        ));
                    }
                }
            }
            E::Interval(iv) => {
                Expr::Literal(Value::BigInt(interval_ms(iv, e)?), DataType::Interval)
            }
            E::IsNull(x) => Expr::IsNull(Box::new(self.bind(x)?), false),
            E::IsNotNull(x) => Expr::IsNull(Box::new(self.bind(x)?), true),
            E::IsTrue(x) | E::IsNotFalse(x) | E::IsFalse(x) | E::IsNotTrue(x) => {
                let c = self.bind_condition(x, "IS TRUE/FALSE")?;
                let c = if matches!(e, E::IsFalse(_) | E::IsNotFalse(_)) {
                    Expr::Not(Box::new(c))
                } else {
                    c
                };
                let never_null = Expr::Call(
                    Func::Coalesce,
                    vec![c, Expr::Literal(Value::Boolean(false), DataType::Boolean)],
                    DataType::Boolean,
                );
                if matches!(e, E::IsNotFalse(_) | E::IsNotTrue(_)) {
                    Expr::Not(Box::new(never_null))
                } else {
                    never_null
                }
            }
            E::UnaryOp { op, expr } => match op {
                ast::UnaryOperator::Not => Expr::Not(Box::new(self.bind_condition(expr, "NOT")?)),
                ast::UnaryOperator::Minus => {
                    let x = self.bind(expr)?;
                    let t = x.data_type();
                    if !t.is_numeric() {
                        return Err(err(
                            ErrorKind::TypeMismatch,
                            e,
                            format!("cannot negate a {t}"),
                        ));
                    }
                    Expr::Neg(Box::new(x), t)
                }
                ast::UnaryOperator::Plus => self.bind(expr)?,
                other => {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        format!("operator {other} is not supported yet"),
                    ));
                }
            },
            E::BinaryOp { left, op, right } => self.binary(e, left, op, right)?,
            E::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let ge = self.compare(e, CmpOp::GtEq, expr, low)?;
                let le = self.compare(e, CmpOp::LtEq, expr, high)?;
                let both = Expr::And(Box::new(ge), Box::new(le));
                if *negated {
                    Expr::Not(Box::new(both))
                } else {
                    both
                }
            }
            E::In {
                expr,
                target,
                negated,
                ..
            } => {
                let ast::InTarget::List(list) = target else {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        "IN with a subquery is not supported yet; list the values",
                    ));
                };
                let mut any: Option<Expr> = None;
                for item in list {
                    let eq = self.compare(e, CmpOp::Eq, expr, item)?;
                    any = Some(match any {
                        None => eq,
                        Some(prev) => Expr::Or(Box::new(prev), Box::new(eq)),
                    });
                }
                let any = any.unwrap_or(Expr::Literal(Value::Boolean(false), DataType::Boolean));
                if *negated {
                    Expr::Not(Box::new(any))
                } else {
                    any
                }
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let mut whens = Vec::new();
                for c in conditions {
                    let cond = match operand {
                        Some(op) => self.compare(e, CmpOp::Eq, op, &c.condition)?,
                        None => self.bind_condition(&c.condition, "WHEN")?,
                    };
                    whens.push((cond, self.bind(&c.result)?));
                }
                let otherwise = else_result.as_deref().map(|x| self.bind(x)).transpose()?;
                let mut results: Vec<&Expr> = whens.iter().map(|(_, r)| r).collect();
                results.extend(otherwise.iter());
                let t = common_type(&results).ok_or_else(|| {
                    err(ErrorKind::TypeMismatch, e, "the THEN/ELSE results of CASE have types that do not fit together; CAST them to one type")
                })?;
                let whens = whens
                    .into_iter()
                    .map(|(c, r)| (c, coerce(r, t).expect("common type")))
                    .collect();
                let otherwise = otherwise.map(|o| Box::new(coerce(o, t).expect("common type")));
                Expr::Case(whens, otherwise, t)
            }
            E::Cast {
                kind,
                expr,
                data_type,
                ..
            } => {
                let to = map_type(data_type, pos_of(e))?;
                let x = self.bind(expr)?;
                let try_cast = matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast);
                if x.data_type() == DataType::Interval {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        "casting an INTERVAL is not supported",
                    ));
                }
                Expr::Cast(Box::new(x), to, try_cast)
            }
            E::Function(f) => self.function(e, f)?,
            other => match self.special_syntax(e)? {
                Some(x) => x,
                None => {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        format!(
                            "expression '{other}' is not supported yet (see docs/sql.md for what is)"
                        ),
                    ));
                }
            },
        })
    }

    fn compare(&mut self, e: &ast::Expr, op: CmpOp, l: &ast::Expr, r: &ast::Expr) -> Result<Expr> {
        let (a, b) = (self.bind(l)?, self.bind(r)?);
        let t = common_type(&[&a, &b]).ok_or_else(|| {
            err(
                ErrorKind::TypeMismatch,
                e,
                format!(
                    "cannot compare {} with {}; CAST one side to the other's type",
                    a.data_type(),
                    b.data_type()
                ),
            )
        })?;
        Ok(Expr::Cmp(
            op,
            Box::new(coerce(a, t).expect("common")),
            Box::new(coerce(b, t).expect("common")),
        ))
    }

    fn binary(
        &mut self,
        e: &ast::Expr,
        l: &ast::Expr,
        op: &ast::BinaryOperator,
        r: &ast::Expr,
    ) -> Result<Expr> {
        use ast::BinaryOperator as B;
        let cmp = match op {
            B::Eq => Some(CmpOp::Eq),
            B::NotEq => Some(CmpOp::NotEq),
            B::Lt => Some(CmpOp::Lt),
            B::LtEq => Some(CmpOp::LtEq),
            B::Gt => Some(CmpOp::Gt),
            B::GtEq => Some(CmpOp::GtEq),
            _ => None,
        };
        if let Some(c) = cmp {
            return self.compare(e, c, l, r);
        }
        match op {
            B::And => {
                return Ok(Expr::And(
                    Box::new(self.bind_condition(l, "AND")?),
                    Box::new(self.bind_condition(r, "AND")?),
                ));
            }
            B::Or => {
                return Ok(Expr::Or(
                    Box::new(self.bind_condition(l, "OR")?),
                    Box::new(self.bind_condition(r, "OR")?),
                ));
            }
            B::StringConcat => {
                let args = vec![self.string_arg(l)?, self.string_arg(r)?];
                return Ok(Expr::Call(Func::Concat, args, DataType::String));
            }
            _ => {}
        }
        let arith = match op {
            B::Plus => ArithOp::Add,
            B::Minus => ArithOp::Sub,
            B::Multiply => ArithOp::Mul,
            B::Divide => ArithOp::Div,
            B::Modulo => ArithOp::Mod,
            other => {
                return Err(err(
                    ErrorKind::Unsupported,
                    e,
                    format!("operator {other} is not supported yet"),
                ));
            }
        };
        let (a, b) = (self.bind(l)?, self.bind(r)?);
        let (ta, tb) = (a.data_type(), b.data_type());
        if let DataType::Time(_) = ta
            && tb == DataType::Interval
            && matches!(arith, ArithOp::Add | ArithOp::Sub)
        {
            return Ok(Expr::Arith(arith, Box::new(a), Box::new(b), ta));
        }
        if matches!(ta, DataType::Timestamp | DataType::TimestampLtz)
            && tb == DataType::Interval
            && matches!(arith, ArithOp::Add | ArithOp::Sub)
        {
            return Ok(Expr::Arith(arith, Box::new(a), Box::new(b), ta));
        }
        arith_expr(arith, a, b).ok_or_else(|| {
            err(ErrorKind::TypeMismatch, e, format!("cannot apply {op} to {ta} and {tb}; arithmetic needs numbers (CAST strings first), or TIMESTAMP +/- INTERVAL"))
        })
    }

    pub(crate) fn string_arg(&mut self, e: &ast::Expr) -> Result<Expr> {
        let x = self.bind(e)?;
        coerce(x.clone(), DataType::String).ok_or_else(|| {
            err(
                ErrorKind::TypeMismatch,
                e,
                format!(
                    "expected a STRING, found {}; CAST it AS STRING",
                    x.data_type()
                ),
            )
        })
    }

    fn function(&mut self, e: &ast::Expr, f: &ast::Function) -> Result<Expr> {
        let name = f.name.to_string().to_uppercase();
        if f.over.is_some() {
            return Err(err(
                ErrorKind::Unsupported,
                e,
                format!(
                    "{name}() OVER (...) is not supported here; ROW_NUMBER() OVER (...) is supported only in a window Top-N, as a column of a subquery: SELECT ... FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY ...) AS rownum FROM TABLE(TUMBLE(...))) WHERE rownum <= N"
                ),
            ));
        }
        let mut distinct = false;
        let mut returning = None;
        let args: Vec<&ast::FunctionArgExpr> = match &f.args {
            ast::FunctionArguments::None => Vec::new(),
            ast::FunctionArguments::List(list) => {
                distinct = matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                for clause in &list.clauses {
                    match clause {
                        ast::FunctionArgumentClause::JsonReturningClause(r)
                            if name == "JSON_VALUE" =>
                        {
                            returning = Some(&r.data_type);
                        }
                        other => {
                            return Err(err(
                                ErrorKind::Unsupported,
                                e,
                                format!("'{other}' in {name}(...) is not supported"),
                            ));
                        }
                    }
                }
                let mut out = Vec::new();
                for a in &list.args {
                    match a {
                        ast::FunctionArg::Unnamed(x) => out.push(x),
                        _ => {
                            return Err(err(
                                ErrorKind::Unsupported,
                                e,
                                "named function arguments are not supported",
                            ));
                        }
                    }
                }
                out
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(err(
                    ErrorKind::Unsupported,
                    e,
                    "subqueries are not supported yet",
                ));
            }
        };
        let exprs = || -> Result<Vec<&ast::Expr>> {
            args.iter()
                .map(|a| match a {
                    ast::FunctionArgExpr::Expr(x) => Ok(x),
                    _ => Err(err(
                        ErrorKind::Unsupported,
                        e,
                        format!("* is only allowed in COUNT(*), not in {name}"),
                    )),
                })
                .collect()
        };
        let arity = |n: usize| -> Result<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(err(
                    ErrorKind::TypeMismatch,
                    e,
                    format!("{name} takes {n} argument(s), found {}", args.len()),
                ))
            }
        };
        if matches!(name.as_str(), "COUNT" | "SUM" | "MIN" | "MAX" | "AVG") {
            arity(1)?;
            if distinct && matches!(args[0], ast::FunctionArgExpr::Wildcard) {
                return Err(err(
                    ErrorKind::Syntax,
                    e,
                    "COUNT(DISTINCT *) is not valid SQL; write COUNT(DISTINCT column)",
                ));
            }
            let Some(agg) = self.agg.as_deref_mut() else {
                return Err(err(
                    ErrorKind::Unsupported,
                    e,
                    format!(
                        "{name} needs a windowed GROUP BY: SELECT window_start, window_end, ..., {name}(x) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, ... (unbounded GROUP BY is not supported yet)"
                    ),
                ));
            };
            // `agg(x) FILTER (WHERE c)` aggregates x where c holds: `agg(CASE WHEN c THEN x
            // END)`, the same for every built-in aggregate (they skip NULLs; COUNT(*) counts
            // the rows where c holds).
            let only_where = match &f.filter {
                Some(c) => Some(Binder::new(agg.input).bind_condition(c, "FILTER (WHERE ...)")?),
                None => None,
            };
            let filtered = |x: Expr| match &only_where {
                Some(c) => {
                    let t = x.data_type();
                    Expr::Case(vec![(c.clone(), x)], None, t)
                }
                None => x,
            };
            let call = if matches!(args[0], ast::FunctionArgExpr::Wildcard) && name == "COUNT" {
                match only_where {
                    None => AggCall {
                        func: AggFunc::CountStar,
                        arg: None,
                        data_type: DataType::BigInt,
                        user: None,
                    },
                    Some(_) => AggCall {
                        func: AggFunc::Count,
                        arg: Some(filtered(Expr::Literal(Value::Int(1), DataType::Int))),
                        data_type: DataType::BigInt,
                        user: None,
                    },
                }
            } else {
                let x = exprs()?[0];
                let arg = filtered(Binder::new(agg.input).bind(x)?);
                let t = arg.data_type();
                let (func, data_type) = match name.as_str() {
                    "COUNT" if distinct => (AggFunc::CountDistinct, DataType::BigInt),
                    "COUNT" => (AggFunc::Count, DataType::BigInt),
                    "SUM" | "AVG" if !t.is_numeric() => {
                        return Err(err(
                            ErrorKind::TypeMismatch,
                            e,
                            format!("{name} needs a number, found {t}; CAST it to a numeric type"),
                        ));
                    }
                    // Flink: SUM over DECIMAL(p, s) is DECIMAL(38, s), AVG DECIMAL(38, max(s, 6)).
                    "SUM" if distinct => (AggFunc::SumDistinct, sum_type(t)),
                    "SUM" => (AggFunc::Sum, sum_type(t)),
                    "AVG" if distinct => (AggFunc::AvgDistinct, avg_type(t)),
                    "AVG" => (AggFunc::Avg, avg_type(t)),
                    _ if t == DataType::Interval => {
                        return Err(err(
                            ErrorKind::TypeMismatch,
                            e,
                            format!("{name} of an INTERVAL is not supported"),
                        ));
                    }
                    // MIN/MAX(DISTINCT x) equal MIN/MAX(x).
                    "MIN" => (AggFunc::Min, t),
                    _ => (AggFunc::Max, t),
                };
                AggCall {
                    func,
                    arg: Some(arg),
                    data_type,
                    user: None,
                }
            };
            let index = match agg.aggs.iter().position(|a| *a == call) {
                Some(i) => i,
                None => {
                    agg.aggs.push(call.clone());
                    agg.aggs.len() - 1
                }
            };
            return Ok(Expr::Column(agg.group.len() + index, call.data_type));
        }
        if distinct {
            return Err(err(
                ErrorKind::Unsupported,
                e,
                format!("DISTINCT is not allowed in {name}"),
            ));
        }
        if f.filter.is_some() {
            return Err(err(
                ErrorKind::Unsupported,
                e,
                format!(
                    "FILTER (WHERE ...) applies to the built-in aggregates COUNT, SUM, AVG, MIN and MAX, not to {name}"
                ),
            ));
        }
        let xs = exprs()?;
        Ok(match name.as_str() {
            "UPPER" | "LOWER" | "CHAR_LENGTH" | "CHARACTER_LENGTH" => {
                arity(1)?;
                let s = self.string_arg(xs[0])?;
                match name.as_str() {
                    "UPPER" => Expr::Call(Func::Upper, vec![s], DataType::String),
                    "LOWER" => Expr::Call(Func::Lower, vec![s], DataType::String),
                    _ => Expr::Call(Func::CharLength, vec![s], DataType::Int),
                }
            }
            "CONCAT" => {
                if xs.is_empty() {
                    return Err(err(
                        ErrorKind::TypeMismatch,
                        e,
                        "CONCAT needs at least one argument",
                    ));
                }
                let args = xs
                    .iter()
                    .map(|x| self.string_arg(x))
                    .collect::<Result<Vec<_>>>()?;
                Expr::Call(Func::Concat, args, DataType::String)
            }
            "ABS" => {
                arity(1)?;
                let x = self.bind(xs[0])?;
                let t = x.data_type();
                if !t.is_numeric() {
                    return Err(err(
                        ErrorKind::TypeMismatch,
                        e,
                        format!("ABS needs a number, found {t}"),
                    ));
                }
                Expr::Call(Func::Abs, vec![x], t)
            }
            "MOD" => {
                arity(2)?;
                let (a, b) = (self.bind(xs[0])?, self.bind(xs[1])?);
                let (ta, tb) = (a.data_type(), b.data_type());
                common_type(&[&a, &b])
                    .filter(|t| t.as_decimal().is_some())
                    .and_then(|_| arith_expr(ArithOp::Mod, a, b))
                    .ok_or_else(|| {
                        err(
                            ErrorKind::TypeMismatch,
                            e,
                            format!(
                                "MOD needs two exact numbers (integers or DECIMAL), found {ta} and {tb}"
                            ),
                        )
                    })?
            }
            "COALESCE" => {
                if xs.is_empty() {
                    return Err(err(
                        ErrorKind::TypeMismatch,
                        e,
                        "COALESCE needs at least one argument",
                    ));
                }
                let args = xs
                    .iter()
                    .map(|x| self.bind(x))
                    .collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Expr> = args.iter().collect();
                let t = common_type(&refs).ok_or_else(|| err(ErrorKind::TypeMismatch, e, "the arguments of COALESCE have types that do not fit together; CAST them to one type"))?;
                Expr::Call(
                    Func::Coalesce,
                    args.into_iter()
                        .map(|a| coerce(a, t).expect("common"))
                        .collect(),
                    t,
                )
            }
            "TO_TIMESTAMP" => {
                if xs.len() == 2 {
                    return Err(err(
                        ErrorKind::Unsupported,
                        e,
                        "TO_TIMESTAMP with a format is not supported yet; give text in the default format yyyy-MM-dd HH:mm:ss[.SSS]",
                    ));
                }
                arity(1)?;
                let s = self.string_arg(xs[0])?;
                Expr::Call(Func::ToTimestamp, vec![s], DataType::Timestamp)
            }
            other => match self.builtin(e, other, &xs, returning)? {
                Some(x) => x,
                None if crate::udf::registry::lookup(other).is_some() => {
                    crate::udf::bind::call(self, e, other, &xs)?
                }
                None => return Err(crate::udf::bind::unknown_function(e, other)),
            },
        })
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn sum_type(t: DataType) -> DataType {
    match t {
        DataType::Decimal(_, s) => {
            let (p, s) = crate::decimal::sum_type(s);
            DataType::Decimal(p, s)
        }
        t => t,
    }
}

pub(crate) fn avg_type(t: DataType) -> DataType {
    match t {
        DataType::Decimal(_, s) => {
            let (p, s) = crate::decimal::avg_type(s);
            DataType::Decimal(p, s)
        }
        t => t,
    }
}

/// `x.name` on a ROW.
fn field_access(x: Expr, name: &str, e: &ast::Expr) -> Result<Expr> {
    let DataType::Row(fields) = x.data_type() else {
        return Err(err(
            ErrorKind::TypeMismatch,
            e,
            format!("'.{name}' needs a ROW, but this is {}", x.data_type()),
        ));
    };
    match fields.iter().position(|f| f.name == name) {
        Some(i) => Ok(Expr::Field(Box::new(x), i, fields[i].data_type)),
        None => Err(err(
            ErrorKind::UnknownColumn,
            e,
            format!(
                "the ROW has no field '{name}'; its fields are: {}",
                fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn unknown_column(name: &str, schema: &Schema, e: &ast::Expr) -> SqlError {
    let ambiguous = schema.ambiguous(name);
    if !ambiguous.is_empty() {
        return err(
            ErrorKind::UnknownColumn,
            e,
            format!(
                "column '{name}' is ambiguous: it could be {}; qualify it with its table's name or alias",
                ambiguous.join(" or ")
            ),
        );
    }
    let hint = schema
        .columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .map(|c| format!("; did you mean '{}'? (names are case-sensitive)", c.name))
        .unwrap_or_default();
    err(
        ErrorKind::UnknownColumn,
        e,
        format!(
            "column '{name}' not found; the input has columns: {}{hint}",
            schema.names()
        ),
    )
}
