//! Planning calls of user-defined functions: a scalar call becomes [`Expr::Udf`], an
//! aggregate call an [`AggCall`] of the windowed `GROUP BY` it is in, and `LATERAL
//! TABLE(f(x)) AS T(a, b)` after a table a [`Step::Lateral`]. Arguments are checked against
//! the declared types here, with the call's line and column; unknown names get the closest
//! known ones.

use super::registry::{self, Registered};
use super::{TableRef, signature};
use crate::bind::{Binder, coerce, err, pos_of};
use crate::changelog::Change;
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::{EvalError, Expr};
use crate::plan::{AggCall, AggFunc, Pipeline, Step, UserAggregate};
use crate::planner::{Catalog, object_name, unsupported};
use crate::types::{Column, DataType, Row, Value};
use fjord::{BoxError, Collector, FlatMapFunction};
use sqlparser::ast::{self, Spanned};
use std::sync::Arc;

/// The error for a function that is neither built in nor registered: the closest names, the
/// built-ins, and how to register one.
pub(crate) fn unknown_function(e: &ast::Expr, name: &str) -> SqlError {
    let close = registry::close_names(name);
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", close.join(", "))
    };
    let registered = registry::known_names();
    let registered = if registered.is_empty() {
        "none (register Rust functions in your worker binary: docs/sql.md, \"User-defined functions\")".to_string()
    } else {
        registered.join(", ")
    };
    err(
        ErrorKind::UnknownFunction,
        e,
        format!(
            "function {name} is not supported yet{hint}; supported: UPPER, LOWER, CHAR_LENGTH, CONCAT, ABS, MOD, COALESCE, TO_TIMESTAMP, {}, the forms LIKE, SUBSTRING, TRIM, POSITION, EXTRACT, FLOOR/CEIL, and CAST, TRY_CAST, CASE and COUNT/SUM/MIN/MAX/AVG in windowed GROUP BY; user-defined functions of this worker binary: {registered}",
            crate::functions::signature::NAMES
        ),
    )
}

/// Binds the arguments of a call and casts them to the declared types.
fn arguments(
    binder: &mut Binder<'_, '_>,
    e: &ast::Expr,
    name: &str,
    declared: &[DataType],
    sig: &str,
    xs: &[&ast::Expr],
) -> Result<Vec<Expr>> {
    if xs.len() != declared.len() {
        return Err(err(
            ErrorKind::TypeMismatch,
            e,
            format!(
                "{name} takes {} argument(s) {sig}, found {}",
                declared.len(),
                xs.len()
            ),
        ));
    }
    xs.iter()
        .zip(declared)
        .enumerate()
        .map(|(i, (x, t))| {
            let bound = binder.bind(x)?;
            let found = bound.data_type();
            coerce(bound, *t).ok_or_else(|| {
                err(
                    ErrorKind::TypeMismatch,
                    x,
                    format!(
                        "argument {} of {name} {sig} must be {t}, found {found}; CAST it AS {t}",
                        i + 1
                    ),
                )
            })
        })
        .collect()
}

/// Binds a call of the registered function `name` (scalar or aggregate).
pub(crate) fn call(
    binder: &mut Binder<'_, '_>,
    e: &ast::Expr,
    name: &str,
    xs: &[&ast::Expr],
) -> Result<Expr> {
    let Some(f) = registry::lookup(name) else {
        return Err(unknown_function(e, name));
    };
    match f {
        Registered::Scalar(s) => {
            let sig = s.function.signature();
            let args = arguments(binder, e, name, s.function.argument_types(), &sig, xs)?;
            Ok(Expr::Udf(s, args))
        }
        Registered::Aggregate(a) => {
            let sig = signature(&a.argument_types(), &a.result_type().to_string());
            let Some(agg) = binder.agg.as_deref_mut() else {
                return Err(err(
                    ErrorKind::Unsupported,
                    e,
                    format!(
                        "{name} is a user-defined aggregate function; it needs a windowed GROUP BY: SELECT window_start, window_end, ..., {name}(x) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, ..."
                    ),
                ));
            };
            let input = agg.input;
            let args = arguments(
                &mut Binder::new(input),
                e,
                name,
                &a.argument_types(),
                &sig,
                xs,
            )?;
            let agg = binder.agg.as_deref_mut().expect("checked above");
            let call = AggCall {
                func: AggFunc::User,
                arg: None,
                data_type: a.result_type(),
                user: Some(UserAggregate { function: a, args }),
            };
            let index = match agg.aggs.iter().position(|c| *c == call) {
                Some(i) => i,
                None => {
                    agg.aggs.push(call.clone());
                    agg.aggs.len() - 1
                }
            };
            Ok(Expr::Column(agg.group.len() + index, call.data_type))
        }
        Registered::Table(_) => Err(err(
            ErrorKind::TypeMismatch,
            e,
            format!(
                "{name} is a user-defined table function; join it to a table: FROM t, LATERAL TABLE({name}(...)) AS T(a, b), or FROM t LEFT JOIN LATERAL TABLE({name}(...)) AS T(a, b) ON TRUE"
            ),
        )),
    }
}

/// The table factor `LATERAL TABLE(f(args))` and its alias, if `relation` is one.
fn lateral_call(relation: &ast::TableFactor) -> Option<(&ast::Expr, Option<&ast::TableAlias>)> {
    let ast::TableFactor::Function {
        lateral: true,
        name,
        args,
        alias,
        ..
    } = relation
    else {
        return None;
    };
    if !object_name(name).eq_ignore_ascii_case("TABLE") {
        return None;
    }
    match args.as_slice() {
        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(call @ ast::Expr::Function(_)))] => {
            Some((call, alias.as_ref()))
        }
        _ => None,
    }
}

/// The right side of a lateral join: `LATERAL TABLE(f(args))` or `UNNEST(array)`.
#[derive(Clone, Copy)]
enum LateralSide<'a> {
    Call(&'a ast::Expr, Option<&'a ast::TableAlias>),
    Unnest(&'a ast::TableFactor),
}

fn lateral_side(relation: &ast::TableFactor) -> Option<LateralSide<'_>> {
    if matches!(relation, ast::TableFactor::UNNEST { .. }) {
        return Some(LateralSide::Unnest(relation));
    }
    lateral_call(relation).map(|(call, alias)| LateralSide::Call(call, alias))
}

/// Plans `SELECT ... FROM t, LATERAL TABLE(f(x)) AS T(a, b) [WHERE ...]` and `SELECT ...
/// FROM t [LEFT] JOIN LATERAL TABLE(f(x)) AS T(a, b) ON TRUE [WHERE ...]` (also `CROSS JOIN
/// LATERAL TABLE(...)`); `None` when the `FROM` clause has no lateral table function.
pub(crate) fn plan_lateral(catalog: &Catalog, select: &ast::Select) -> Result<Option<Pipeline>> {
    let (left, lateral, left_outer) = match select.from.as_slice() {
        [left, right] if left.joins.is_empty() && right.joins.is_empty() => {
            match lateral_side(&right.relation) {
                Some(side) => (&left.relation, side, false),
                None => return Ok(None),
            }
        }
        [from] if from.joins.len() == 1 => {
            let join = &from.joins[0];
            let Some(side) = lateral_side(&join.relation) else {
                return Ok(None);
            };
            let pos = Pos::of(join.relation.span());
            let on_true = |c: &ast::JoinConstraint| match c {
                ast::JoinConstraint::On(ast::Expr::Value(v)) => {
                    v.value == ast::Value::Boolean(true)
                }
                ast::JoinConstraint::None => true,
                _ => false,
            };
            let left_outer = match &join.join_operator {
                ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) if on_true(c) => true,
                ast::JoinOperator::Join(c)
                | ast::JoinOperator::Inner(c)
                | ast::JoinOperator::CrossJoin(c)
                    if on_true(c) =>
                {
                    false
                }
                _ => {
                    return Err(unsupported(
                        pos,
                        "a join with LATERAL TABLE(...) takes ON TRUE: FROM t LEFT JOIN LATERAL TABLE(f(x)) AS T(a, b) ON TRUE (or FROM t, LATERAL TABLE(f(x)) AS T(a, b)); filter its rows in WHERE",
                    ));
                }
            };
            (&from.relation, side, left_outer)
        }
        _ => return Ok(None),
    };
    let mut input = match left {
        ast::TableFactor::Table {
            name, args: None, ..
        } => crate::planner::scan(catalog, &object_name(name), Pos::of(name.span()))?,
        ast::TableFactor::Derived {
            lateral: false,
            subquery,
            ..
        } => crate::planner::plan_query(catalog, subquery)?,
        other => {
            return Err(unsupported(
                Pos::of(other.span()),
                "LATERAL TABLE(...) joins a table, a view or a subquery; put a window TVF's rows in a view first",
            ));
        }
    };
    if let ast::GroupByExpr::Expressions(g, _) = &select.group_by
        && !g.is_empty()
    {
        return Err(unsupported(
            pos_of(&g[0]),
            "GROUP BY over LATERAL TABLE(...) is not supported; put the join in a view and aggregate over TABLE(TUMBLE(TABLE view, ...))",
        ));
    }
    if let Some(h) = &select.having {
        return Err(unsupported(pos_of(h), "HAVING needs a windowed GROUP BY"));
    }
    let (function, args) = match lateral {
        LateralSide::Call(call, alias) => {
            let (function, args) = table_call(&input, call)?;
            let columns = output_columns(&function, alias, call, &input)?;
            input.schema.columns.extend(columns);
            (function, args)
        }
        LateralSide::Unnest(factor) => {
            let (function, arg, alias, pos) = crate::udf::unnest::plan(&input.schema, factor)?;
            let columns = output_columns(&function, alias, pos, &input)?;
            input.schema.columns.extend(columns);
            (function, vec![arg])
        }
    };
    input.steps.push(Step::Lateral {
        function,
        args,
        left_outer,
    });
    crate::planner::plan_calc(input, select).map(Some)
}

/// The table function `call` names and its arguments bound over `input`'s rows.
fn table_call(input: &Pipeline, call: &ast::Expr) -> Result<(TableRef, Vec<Expr>)> {
    let ast::Expr::Function(f) = call else {
        unreachable!("lateral_call returns function calls")
    };
    let name = object_name(&f.name);
    let function = match registry::lookup(&name) {
        Some(Registered::Table(t)) => t,
        Some(other) => {
            return Err(err(
                ErrorKind::TypeMismatch,
                call,
                format!(
                    "{name} is a user-defined {} function, not a table function; LATERAL TABLE(...) calls a table function",
                    other.kind()
                ),
            ));
        }
        None => return Err(unknown_function(call, &name)),
    };
    let xs: Vec<&ast::Expr> = match &f.args {
        ast::FunctionArguments::None => Vec::new(),
        ast::FunctionArguments::List(list) if list.clauses.is_empty() => {
            let mut out = Vec::new();
            for a in &list.args {
                match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => out.push(x),
                    _ => {
                        return Err(err(
                            ErrorKind::Unsupported,
                            call,
                            "named arguments and * are not supported in a table function call",
                        ));
                    }
                }
            }
            out
        }
        _ => {
            return Err(err(
                ErrorKind::Unsupported,
                call,
                "only plain arguments are supported in a table function call",
            ));
        }
    };
    let sig = format!("{:?}", function);
    let sig = sig.trim_start_matches(function.name());
    let args = arguments(
        &mut Binder::new(&input.schema),
        call,
        &name,
        function.function.argument_types(),
        sig,
        &xs,
    )?;
    Ok((function, args))
}

/// The function's columns, renamed by `AS T(a, b)`; none may repeat an input column's name.
fn output_columns(
    function: &TableRef,
    alias: Option<&ast::TableAlias>,
    call: &ast::Expr,
    input: &Pipeline,
) -> Result<Vec<Column>> {
    let declared = function.function.columns();
    let names: Vec<(String, Pos)> = match alias {
        Some(a) if !a.columns.is_empty() => {
            if a.columns.len() != declared.len() {
                return Err(SqlError::at(
                    ErrorKind::TypeMismatch,
                    Pos::of(a.name.span),
                    format!(
                        "{} returns {} column(s) ({}), but AS {}(...) names {}",
                        function.name(),
                        declared.len(),
                        declared
                            .iter()
                            .map(|(n, t)| format!("{n} {t}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        a.name.value,
                        a.columns.len()
                    ),
                ));
            }
            a.columns
                .iter()
                .map(|c| (c.name.value.clone(), Pos::of(c.name.span)))
                .collect()
        }
        _ => declared
            .iter()
            .map(|(n, _)| (n.clone(), pos_of(call)))
            .collect(),
    };
    names
        .into_iter()
        .zip(declared)
        .map(|((name, pos), (_, t))| {
            if input.schema.index_of(&name).is_some() {
                return Err(SqlError::at(
                    ErrorKind::InvalidOption,
                    pos,
                    format!(
                        "the table already has a column '{name}'; name the table function's columns with AS T(a, b)"
                    ),
                ));
            }
            Ok(Column {
                name,
                data_type: *t,
                rowtime: false,
            })
        })
        .collect()
}

/// The lowering of [`Step::Lateral`]: each input row followed by each row the function
/// emits for it (or by NULLs, for a left outer join that got none).
#[derive(Clone)]
pub(crate) struct LateralFn {
    pub function: TableRef,
    pub args: Arc<Vec<Expr>>,
    pub left_outer: bool,
}

impl LateralFn {
    /// The joined rows of `row`: the row with each row the function returns, or with NULLs
    /// for a LEFT join the function returns nothing for.
    fn joined(&self, row: Row, mut emit: impl FnMut(Row)) -> Result<(), BoxError> {
        let name = &self.function.name;
        let fail = |e: EvalError| -> BoxError { format!("LATERAL TABLE({name}): {e}").into() };
        let args = self
            .args
            .iter()
            .map(|a| a.eval(&row))
            .collect::<Result<Vec<Value>, _>>()
            .map_err(fail)?;
        let rows = self
            .function
            .function
            .call(&args)
            .map_err(|e| -> BoxError { format!("user-defined function {name}: {e}").into() })?;
        if rows.is_empty() && self.left_outer {
            let width = self.function.function.columns().len();
            let mut r = row;
            r.extend(std::iter::repeat_n(Value::Null, width));
            emit(r);
            return Ok(());
        }
        for extra in rows {
            let mut r = Vec::with_capacity(row.len() + extra.len());
            r.extend(row.iter().cloned());
            r.extend(extra);
            emit(r);
        }
        Ok(())
    }
}

impl FlatMapFunction<Row, Row> for LateralFn {
    fn flat_map(&mut self, row: Row, out: &mut Collector<'_, Row>) -> Result<(), BoxError> {
        self.joined(row, |r| out.collect(r))
    }
}

/// On a changelog, each joined row carries the kind of the row it came from (the function
/// is deterministic, so a `-U` takes back what its `+I` added, as in Flink).
impl FlatMapFunction<Change, Change> for LateralFn {
    fn flat_map(
        &mut self,
        change: Change,
        out: &mut Collector<'_, Change>,
    ) -> Result<(), BoxError> {
        let kind = change.kind;
        self.joined(change.row, |row| out.collect(Change { kind, row }))
    }
}
