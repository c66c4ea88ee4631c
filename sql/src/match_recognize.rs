//! `MATCH_RECOGNIZE` at run time: the plan's pattern variables, `DEFINE` conditions and
//! `MEASURES` become a [`fjord_cep::Pattern`] over rows, run by the CEP library's keyed
//! operator (events buffered until the watermark, the NFA's partial matches in keyed state).
//!
//! A condition or measure is an expression over an *extended row*: the row's columns (the
//! current row in `DEFINE`; the match's last row in `MEASURES`), then one value per
//! navigation it uses (`LAST(A.price, 1)`, `FIRST(A.price)`, `A.price` of another variable,
//! `AVG(A.price)`, `COUNT(A.*)`), computed from the rows the pattern variables took so far.

use crate::expr::Expr;
use crate::group_agg::GroupAggregateFn;
use crate::plan::AggFunc;
use crate::types::{DataType, Row, Value};
use fjord_cep::{AfterMatchSkipStrategy, Condition, ConditionContext, Match, Pattern};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a navigation reads from a variable's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NavKind {
    /// `LAST(v.col, n)`: the n-th row from the last (0: the last).
    Last(usize),
    /// `FIRST(v.col, n)`: the n-th row from the first.
    First(usize),
    /// An aggregate over the rows (`COUNT`, `SUM`, `AVG`, `MIN`, `MAX`).
    Agg(AggFunc),
}

/// A navigation: a value computed from the rows of a pattern variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Nav {
    /// What is read.
    pub kind: NavKind,
    /// The variable (`None`: every row of the match, in order).
    pub symbol: Option<String>,
    /// The value read from a row (`None` for `COUNT(v.*)`).
    pub arg: Option<Expr>,
    /// The navigation's type.
    pub data_type: DataType,
}

impl Nav {
    /// The value over `rows` (in match order).
    fn eval(&self, rows: &[&Row]) -> Value {
        let value = |row: &Row| match &self.arg {
            Some(a) => a.eval(row).unwrap_or(Value::Null),
            None => Value::BigInt(1),
        };
        match self.kind {
            NavKind::Last(n) => rows
                .len()
                .checked_sub(n + 1)
                .map_or(Value::Null, |i| value(rows[i])),
            NavKind::First(n) => rows.get(n).map_or(Value::Null, |r| value(r)),
            NavKind::Agg(f) => {
                // The aggregate functions of GROUP BY, over the rows' values.
                let calls =
                    GroupAggregateFn::new(vec![(f, self.data_type)], Vec::new(), 0, false, None);
                let mut accs = calls.create();
                for row in rows {
                    let args = if f == AggFunc::CountStar {
                        Vec::new()
                    } else {
                        vec![value(row)]
                    };
                    if calls.apply(&mut accs, &args, 1).is_err() {
                        return Value::Null;
                    }
                }
                calls.result(&accs).pop().unwrap_or(Value::Null)
            }
        }
    }
}

/// An expression over an extended row and the navigations appended to the row.
#[derive(Debug, Clone, PartialEq)]
pub struct NavExpr {
    /// The expression: columns below the row's width are the row's, the next ones the
    /// navigations' values in order.
    pub expr: Expr,
    /// The navigations.
    pub navs: Vec<Nav>,
}

impl NavExpr {
    /// Evaluates over `row`, each navigation over the rows `rows_of` gives for its variable.
    fn eval<'r>(&self, row: &Row, rows_of: impl Fn(Option<&str>) -> Vec<&'r Row>) -> Value {
        let mut ext = row.clone();
        for nav in &self.navs {
            ext.push(nav.eval(&rows_of(nav.symbol.as_deref())));
        }
        self.expr.eval(&ext).unwrap_or(Value::Null)
    }
}

/// A quantifier of a pattern variable: `min` to `max` rows (`None`: unbounded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantifier {
    /// The fewest rows.
    pub min: u32,
    /// The most rows.
    pub max: Option<u32>,
    /// Greedy (the SQL default) rather than reluctant (`*?`, `+?`).
    pub greedy: bool,
}

/// A pattern variable of `PATTERN (...)` with its quantifier and `DEFINE` condition (none:
/// every row qualifies).
#[derive(Debug, Clone, PartialEq)]
pub struct PatternVar {
    /// Its name.
    pub name: String,
    /// How many rows it takes.
    pub quantifier: Quantifier,
    /// Its `DEFINE` condition.
    pub define: Option<NavExpr>,
}

/// `AFTER MATCH SKIP ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// `PAST LAST ROW`
    PastLastRow,
    /// `TO NEXT ROW`
    ToNextRow,
    /// `TO FIRST v`
    ToFirst(String),
    /// `TO LAST v`
    ToLast(String),
}

/// The condition of a variable: its `DEFINE` over the row, with the variable's own rows so
/// far followed by the row under test.
fn condition(name: &str, define: &NavExpr) -> Condition<Row> {
    let (name, define) = (name.to_string(), Arc::new(define.clone()));
    Condition::iterative(move |row: &Row, ctx: &dyn ConditionContext<Row>| {
        let value = define.eval(row, |symbol| match symbol {
            Some(s) if s == name => {
                let mut rows = ctx.events_for_pattern(s);
                rows.push(row);
                rows
            }
            Some(s) => ctx.events_for_pattern(s),
            None => vec![row],
        });
        value == Value::Boolean(true)
    })
}

/// The CEP pattern of the variables (strict contiguity between them, as SQL's pattern
/// concatenation; Flink's translation of quantifiers).
///
/// # Errors
/// A pattern the CEP library refuses (its message).
pub fn pattern(
    vars: &[PatternVar],
    skip: &Skip,
    within: Option<std::time::Duration>,
) -> Result<Pattern<Row>, String> {
    let skip = match skip {
        Skip::PastLastRow => AfterMatchSkipStrategy::skip_past_last_event(),
        Skip::ToNextRow => AfterMatchSkipStrategy::skip_to_next(),
        Skip::ToFirst(v) => AfterMatchSkipStrategy::skip_to_first(v.clone()),
        Skip::ToLast(v) => AfterMatchSkipStrategy::skip_to_last(v.clone()),
    };
    let mut p: Option<Pattern<Row>> = None;
    for var in vars {
        let mut next = match p {
            None => Pattern::begin_with_skip(var.name.clone(), skip.clone()),
            Some(p) => p.next(var.name.clone()),
        };
        let q = var.quantifier;
        let looping = q.max != Some(1);
        next = match (q.min, q.max) {
            (1, Some(1)) => next,
            (0, Some(1)) => next.optional(),
            (0, None) => next.one_or_more().optional().consecutive(),
            (1, None) => next.one_or_more().consecutive(),
            (n, None) => next.times_or_more(n).consecutive(),
            (n, Some(m)) if n == m => next.times(n).consecutive(),
            (n, Some(m)) => next.times_range(n, m).consecutive(),
        };
        if q.greedy && looping {
            next = next.greedy();
        }
        if let Some(define) = &var.define {
            next = next.where_condition(condition(&var.name, define));
        }
        p = Some(next);
    }
    let mut p = p.ok_or("PATTERN needs at least one variable")?;
    if let Some(w) = within {
        p = p.within(w);
    }
    Ok(p)
}

/// The output row of a match: the partition columns (`keys` of its last row), then the
/// measures over the match (bare columns read its last row).
pub fn measure(m: &Match<Row>, keys: &[usize], measures: &[NavExpr]) -> Row {
    let all: Vec<&Row> = m.events().collect();
    let Some(last) = all.last() else {
        return Vec::new();
    };
    let mut out: Row = keys.iter().map(|&k| last[k].clone()).collect();
    for me in measures {
        out.push(me.eval(last, |symbol| {
            match symbol {
                Some(s) => m
                    .get(s)
                    .map(|rows| rows.iter().collect())
                    .unwrap_or_default(),
                None => all.clone(),
            }
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn navigations_read_the_variables_rows() {
        let rows: Vec<Row> = [3, 5, 4].iter().map(|v| vec![Value::Int(*v)]).collect();
        let refs: Vec<&Row> = rows.iter().collect();
        let nav = |kind| Nav {
            kind,
            symbol: Some("A".into()),
            arg: Some(Expr::Column(0, DataType::Int)),
            data_type: DataType::Int,
        };
        assert_eq!(nav(NavKind::Last(0)).eval(&refs), Value::Int(4));
        assert_eq!(nav(NavKind::Last(1)).eval(&refs), Value::Int(5));
        assert_eq!(nav(NavKind::Last(3)).eval(&refs), Value::Null);
        assert_eq!(nav(NavKind::First(0)).eval(&refs), Value::Int(3));
        assert_eq!(nav(NavKind::Agg(AggFunc::Max)).eval(&refs), Value::Int(5));
        assert_eq!(nav(NavKind::Agg(AggFunc::Avg)).eval(&refs), Value::Int(4));
        assert_eq!(nav(NavKind::Agg(AggFunc::Sum)).eval(&refs), Value::Int(12));
    }
}
