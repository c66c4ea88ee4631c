//! Planning OVER aggregations, Flink's shape:
//!
//! ```sql
//! SELECT id, amount,
//!        SUM(amount) OVER (PARTITION BY customer ORDER BY ts
//!                          RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW) AS recent
//! FROM orders
//! ```
//!
//! Every `OVER` of one SELECT is the same window (inline, or `OVER w` with `WINDOW w AS (...)`),
//! ordered by the input's rowtime ascending; the frame is `ROWS` or `RANGE` from `n PRECEDING`
//! or `UNBOUNDED PRECEDING` to `CURRENT ROW` (without a frame: `RANGE UNBOUNDED PRECEDING`, as
//! in Flink). The aggregates are the built-in ones.

use crate::bind::{Binder, pos_of};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::Expr;
use crate::over_agg::OverFrame;
use crate::plan::{Pipeline, Step, stable_hash};
use crate::planner::{bind_aggregation, filter_before_grouping, grouped_name, unsupported};
use crate::types::Schema;
use sqlparser::ast::{self, Spanned};

/// The shape, for error messages.
const SHAPE: &str = "write agg(x) OVER (PARTITION BY k ORDER BY rowtime ROWS BETWEEN n PRECEDING AND CURRENT ROW), or RANGE BETWEEN INTERVAL '10' SECOND PRECEDING AND CURRENT ROW, or UNBOUNDED PRECEDING";

/// The `OVER` call of a select item (not `ROW_NUMBER()`, which is a Top-N's).
fn over_call(item: &ast::SelectItem) -> Option<&ast::Function> {
    match item {
        ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))
        | ast::SelectItem::ExprWithAlias {
            expr: ast::Expr::Function(f),
            ..
        } if f.over.is_some() && !f.name.to_string().eq_ignore_ascii_case("ROW_NUMBER") => Some(f),
        _ => None,
    }
}

/// Whether a SELECT has OVER aggregations.
pub(crate) fn has_over_aggregate(select: &ast::Select) -> bool {
    select.projection.iter().any(|i| over_call(i).is_some())
}

/// The window spec of an `OVER`, named windows resolved.
fn window_spec<'s>(select: &'s ast::Select, f: &'s ast::Function) -> Result<&'s ast::WindowSpec> {
    let fpos = Pos::of(f.span());
    match f.over.as_ref().expect("an OVER call") {
        ast::WindowType::WindowSpec(spec) if spec.window_name.is_none() => Ok(spec),
        ast::WindowType::NamedWindow(name) => select
            .named_window
            .iter()
            .find_map(|ast::NamedWindowDefinition(n, e)| match e {
                ast::NamedWindowExpr::WindowSpec(spec) if n.value == name.value => Some(spec),
                _ => None,
            })
            .ok_or_else(|| {
                SqlError::at(
                    ErrorKind::Syntax,
                    fpos,
                    format!(
                        "window '{}' is not defined; add WINDOW {} AS (PARTITION BY ... ORDER BY ...)",
                        name.value, name.value
                    ),
                )
            }),
        _ => Err(unsupported(fpos, SHAPE)),
    }
}

/// The frame of a window spec.
fn frame(spec: &ast::WindowSpec, input: &Schema, pos: Pos) -> Result<OverFrame> {
    let Some(frame) = &spec.window_frame else {
        return Ok(OverFrame::Range(None));
    };
    if !matches!(
        frame.end_bound,
        None | Some(ast::WindowFrameBound::CurrentRow)
    ) {
        return Err(unsupported(
            pos,
            format!(
                "an OVER window ends at CURRENT ROW (FOLLOWING rows are not supported, as in Flink); {SHAPE}"
            ),
        ));
    }
    let preceding = match &frame.start_bound {
        ast::WindowFrameBound::Preceding(p) => p.as_deref(),
        ast::WindowFrameBound::CurrentRow => {
            return Ok(match frame.units {
                ast::WindowFrameUnits::Rows => OverFrame::Rows(Some(0)),
                _ => OverFrame::Range(Some(0)),
            });
        }
        ast::WindowFrameBound::Following(_) => return Err(unsupported(pos, SHAPE)),
    };
    match (frame.units, preceding) {
        (ast::WindowFrameUnits::Rows, None) => Ok(OverFrame::Rows(None)),
        (ast::WindowFrameUnits::Range, None) => Ok(OverFrame::Range(None)),
        (ast::WindowFrameUnits::Rows, Some(e)) => match e {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::Number(n, _) => n
                    .parse::<u64>()
                    .map(|n| OverFrame::Rows(Some(n)))
                    .map_err(|_| {
                        unsupported(pos_of(e), "ROWS ... PRECEDING takes a whole number of rows")
                    }),
                _ => Err(unsupported(
                    pos_of(e),
                    "ROWS ... PRECEDING takes a whole number of rows",
                )),
            },
            _ => Err(unsupported(
                pos_of(e),
                "ROWS ... PRECEDING takes a whole number of rows",
            )),
        },
        (ast::WindowFrameUnits::Range, Some(e)) => match Binder::new(input).bind(e)? {
            Expr::Literal(crate::types::Value::BigInt(ms), crate::types::DataType::Interval)
                if ms >= 0 =>
            {
                Ok(OverFrame::Range(Some(ms)))
            }
            _ => Err(unsupported(
                pos_of(e),
                "RANGE ... PRECEDING over a rowtime takes an INTERVAL, such as INTERVAL '10' SECOND",
            )),
        },
        (ast::WindowFrameUnits::Groups, _) => Err(unsupported(pos, SHAPE)),
    }
}

/// Plans a SELECT with OVER aggregations over `input` (a table, view or subquery).
pub(crate) fn plan_over(mut input: Pipeline, select: &ast::Select) -> Result<Pipeline> {
    let spos = Pos::of(select.span());
    if let Some(origin) = input.changelog_origin() {
        return Err(unsupported(
            spos,
            format!("OVER aggregations take appended rows, but the input is updated ({origin})"),
        ));
    }
    if select.having.is_some()
        || !matches!(&select.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
    {
        return Err(unsupported(
            spos,
            "OVER aggregations cannot be combined with GROUP BY or HAVING in one SELECT; aggregate in a subquery first",
        ));
    }
    // One window for every OVER of the SELECT.
    let calls: Vec<&ast::Function> = select.projection.iter().filter_map(over_call).collect();
    let spec = window_spec(select, calls[0])?;
    for f in &calls[1..] {
        if window_spec(select, f)?.to_string() != spec.to_string() {
            return Err(unsupported(
                Pos::of(f.span()),
                "every OVER of one SELECT must be the same window (as in Flink); compute the others in another query",
            ));
        }
    }
    let fpos = Pos::of(calls[0].span());
    filter_before_grouping(&mut input, select)?;
    let schema = input.schema.clone();
    let [order] = spec.order_by.as_slice() else {
        return Err(unsupported(
            fpos,
            format!("an OVER window orders by exactly one column, the rowtime; {SHAPE}"),
        ));
    };
    let time_column = match Binder::new(&schema).bind(&order.expr)? {
        Expr::Column(i, _) if schema.columns[i].rowtime => i,
        _ => {
            return Err(unsupported(
                pos_of(&order.expr),
                format!(
                    "an OVER window orders by a rowtime attribute (a column with a WATERMARK), ascending; processing time is not supported yet; {SHAPE}"
                ),
            ));
        }
    };
    if matches!(order.options.sort, Some(ast::OrderBySort::Desc)) {
        return Err(unsupported(
            pos_of(&order.expr),
            "an OVER window orders by its rowtime ascending (as in Flink)",
        ));
    }
    let frame = frame(spec, &schema, fpos)?;
    let mut keys = Vec::new();
    for p in &spec.partition_by {
        let name = grouped_name(p, &schema)?;
        let i = schema.index_of(&name).ok_or_else(|| {
            SqlError::at(
                ErrorKind::UnknownColumn,
                pos_of(p),
                format!(
                    "PARTITION BY column '{name}' not found; the input has columns: {}",
                    schema.names()
                ),
            )
        })?;
        if !keys.contains(&i) {
            keys.push(i);
        }
    }
    // Bound as an aggregation whose groups are all input columns: a column is itself, an
    // aggregate the column after them.
    let mut stripped = select.clone();
    for item in &mut stripped.projection {
        if let ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))
        | ast::SelectItem::ExprWithAlias {
            expr: ast::Expr::Function(f),
            ..
        } = item
            && !f.name.to_string().eq_ignore_ascii_case("ROW_NUMBER")
        {
            f.over = None;
        }
    }
    stripped.selection = None;
    let group = schema
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.data_type))
        .collect();
    let mut bound = bind_aggregation(
        &schema,
        group,
        &stripped,
        "SELECT * is not supported with OVER aggregations yet; list the columns",
    )?;
    let distinct_calls = {
        let mut texts: Vec<String> = calls.iter().map(|f| f.to_string()).collect();
        texts.sort();
        texts.dedup();
        texts.len()
    };
    if bound.aggs.len() > distinct_calls {
        return Err(unsupported(
            spos,
            "an aggregate without OVER cannot be in the same SELECT as OVER aggregations; give it the OVER window too",
        ));
    }
    if bound.aggs.iter().any(|a| a.user.is_some()) {
        return Err(unsupported(
            fpos,
            "user-defined aggregates over OVER windows are not supported yet",
        ));
    }
    // The rowtime stays a time attribute: OVER emits each row once, at its rowtime.
    for (e, c) in bound.projection.iter().zip(&mut bound.schema.columns) {
        if let Expr::Column(i, _) = e
            && schema.columns.get(*i).is_some_and(|s| s.rowtime)
        {
            c.rowtime = true;
        }
    }
    let width = schema.columns.len();
    let identity = format!(
        "{}|{:?}|{keys:?}|{time_column}|{frame:?}|{:?}",
        input.source.name(),
        input.steps,
        bound.aggs
    );
    let uid = format!("sql-over-agg-{:016x}", stable_hash(&identity));
    let naggs = bound.aggs.len();
    input.steps.push(Step::OverAggregate {
        keys,
        width,
        time_column,
        frame,
        aggs: bound.aggs,
        uid,
    });
    let is_identity = bound.projection.len() == width + naggs
        && bound
            .projection
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Expr::Column(j, _) if *j == i));
    if !is_identity {
        input.steps.push(Step::Calc {
            filter: None,
            projection: bound.projection,
        });
    }
    input.schema = bound.schema;
    Ok(input)
}
