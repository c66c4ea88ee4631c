//! Planning window Top-N and window deduplication, Flink's shape:
//!
//! ```sql
//! SELECT ... FROM (
//!   SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end[, k...]
//!                                ORDER BY c [ASC|DESC] [NULLS FIRST|LAST][, ...]) AS rownum
//!   FROM TABLE(TUMBLE(...))            -- or HOP, CUMULATE, SESSION, or a window aggregation
//! ) WHERE rownum <= N [AND ...]
//! ```
//!
//! Deduplication is the same shape with `ORDER BY <rowtime> ASC|DESC` and `rownum = 1` (or
//! `<= 1`, `< 2`): the best row is the first or the last one. Anything else that uses `OVER`
//! is refused with the shape above.

use crate::bind::{Binder, pos_of};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::Expr;
use crate::plan::{Pipeline, SortKey, Step, TopNWindow, stable_hash};
use crate::planner::{
    Catalog, column_name, object_name, output_name, partition_columns, plan_query, project,
    refuse_query_clauses, scan, unsupported, window_tvf,
};
use crate::types::{Column, DataType, Schema};
use sqlparser::ast::{self, Spanned};

/// The supported shape, for error messages.
const SHAPE: &str = "write SELECT ... FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end[, columns] ORDER BY column [ASC|DESC][, ...]) AS rownum FROM TABLE(TUMBLE(...)) (or HOP, CUMULATE, SESSION, or a subquery or view with a window aggregation)) WHERE rownum <= N";

/// The first select item of `query` that calls a function with `OVER (...)`, with its index.
pub(crate) fn row_number_of(query: &ast::Query) -> Option<(usize, &ast::Function)> {
    let ast::SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    select
        .projection
        .iter()
        .enumerate()
        .find_map(|(i, item)| match item {
            ast::SelectItem::UnnamedExpr(ast::Expr::Function(f))
            | ast::SelectItem::ExprWithAlias {
                expr: ast::Expr::Function(f),
                ..
            } if f.over.is_some() => Some((i, f)),
            _ => None,
        })
}

/// Plans `outer` (`SELECT ... FROM (inner) WHERE rownum <= N ...`) where `inner` selects
/// `ROW_NUMBER() OVER (...)` (see [`row_number_of`]).
///
/// # Errors
/// Every variation this slice does not support, at its line and column, with the shape that
/// is supported.
pub(crate) fn plan_top_n(
    catalog: &Catalog,
    outer: &ast::Select,
    inner: &ast::Query,
) -> Result<Pipeline> {
    let qpos = Pos::of(inner.span());
    refuse_query_clauses(
        inner,
        "WITH, ORDER BY, LIMIT and FETCH are not supported in a window Top-N's subquery",
    )?;
    let ast::SetExpr::Select(select) = inner.body.as_ref() else {
        return Err(unsupported(qpos, SHAPE));
    };
    let spos = Pos::of(select.span());
    if select.distinct.is_some()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || select.having.is_some()
        || !matches!(&select.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
    {
        return Err(unsupported(
            spos,
            format!(
                "ROW_NUMBER() cannot be combined with DISTINCT, GROUP BY, HAVING, WINDOW or QUALIFY in one SELECT; aggregate in a subquery and rank its rows: {SHAPE}"
            ),
        ));
    }
    let (rn_index, f) = row_number_of(inner).expect("called for a query with OVER");
    let spec = row_number_spec(f)?;
    if let Some(other) = select.projection.iter().skip(rn_index + 1).find(|i| {
        matches!(i, ast::SelectItem::UnnamedExpr(ast::Expr::Function(g))
            | ast::SelectItem::ExprWithAlias { expr: ast::Expr::Function(g), .. } if g.over.is_some())
    }) {
        return Err(unsupported(
            Pos::of(other.span()),
            "only one ROW_NUMBER() per SELECT is supported",
        ));
    }
    // A join in FROM (Nexmark q9's `FROM auction A, bid B WHERE ...`): its rows are ranked,
    // filtered first by the WHERE that is not the join's condition.
    let joined = crate::plan_join::plan_from_join(catalog, select)?;
    let selection = match &joined {
        Some((_, rest)) => *rest,
        None => select.selection.as_ref(),
    };

    // The rows ranked (`input`), where their windows come from, and the columns the OVER
    // clause and the select list see (`visible`: the Top-N's output row without rownum).
    // SESSION's PARTITION BY columns and where the TVF is.
    let mut session: Option<(Vec<String>, Pos)> = None;
    let from_relation = match (&joined, select.from.as_slice()) {
        (Some(_), _) => None,
        (None, [from]) => Some(&from.relation),
        (None, _) => {
            return Err(unsupported(
                spos,
                format!("a window Top-N reads exactly one table function or subquery; {SHAPE}"),
            ));
        }
    };
    let (mut input, window, visible, window_columns) = match (joined, from_relation) {
        (Some((p, _)), _) => over_rows(p),
        (None, None) => unreachable!("one of the two"),
        (None, Some(relation)) => match relation {
            ast::TableFactor::TableFunction {
                expr: ast::Expr::Function(tf),
                ..
            } => {
                let tvf = window_tvf(catalog, tf)?;
                if tvf.proctime {
                    return Err(unsupported(
                        Pos::of(tf.span()),
                        "a window Top-N runs in event time: window a rowtime attribute (a column with a WATERMARK); processing-time windows are supported in window aggregations",
                    ));
                }
                if tvf.name == "SESSION" {
                    session = Some((
                        tvf.partition_by
                            .map(partition_columns)
                            .transpose()?
                            .unwrap_or_default(),
                        Pos::of(tf.span()),
                    ));
                }
                let n = tvf.input.schema.columns.len();
                let mut visible = tvf.input.schema.clone();
                for name in ["window_start", "window_end", "window_time"] {
                    visible.columns.push(Column {
                        name: name.to_string(),
                        data_type: DataType::Timestamp,
                        rowtime: false,
                    });
                }
                let window = TopNWindow::Tvf {
                    window: tvf.window,
                    time_column: tvf.time_column,
                };
                (tvf.input, Some(window), visible, (n, n + 1))
            }
            ast::TableFactor::Table {
                name, args: None, ..
            } => {
                let p = scan(catalog, &object_name(name), Pos::of(name.span()))?;
                over_rows(p)
            }
            ast::TableFactor::Derived {
                lateral: false,
                subquery,
                ..
            } => {
                let p = plan_query(catalog, subquery)?;
                over_rows(p)
            }
            other => {
                return Err(unsupported(Pos::of(other.span()), SHAPE));
            }
        },
    };
    let is_tvf = matches!(window, Some(TopNWindow::Tvf { .. }));
    // Window columns the TVF adds are not in the ranked rows (they are added when the window
    // fires), and are the same for every row of a window.
    let added = |i: usize| is_tvf && i >= input.schema.columns.len();
    // The rowtime attributes do not survive the Top-N: its rows are emitted when the window
    // ends, so they cannot be windowed again by a column.
    let mut visible = visible;
    for c in &mut visible.columns {
        c.rowtime = false;
    }

    // The inner WHERE filters the rows before they are ranked.
    if let Some(w) = selection {
        let filter = Binder::new(&input.schema).bind_condition(w, "WHERE")?;
        let projection = identity(&input.schema);
        input.steps.push(Step::Calc {
            filter: Some(filter),
            projection,
        });
    }

    // PARTITION BY window_start, window_end[, keys].
    let column_of = |e: &ast::Expr, what: &str| -> Result<usize> {
        // `B.dateTime` of a join is the column so named.
        let Some(name) = column_name(e, &visible) else {
            return Err(unsupported(
                pos_of(e),
                format!(
                    "{what} of ROW_NUMBER() takes column names, not expressions; compute the expression in a view or subquery first"
                ),
            ));
        };
        visible.index_of(&name).ok_or_else(|| {
            SqlError::at(
                ErrorKind::UnknownColumn,
                pos_of(e),
                format!(
                    "{what} column '{name}' not found; the input has columns: {}",
                    visible.names()
                ),
            )
        })
    };
    let (mut has_start, mut has_end) = (false, false);
    let mut keys = Vec::new();
    for p in &spec.partition_by {
        let i = column_of(p, "PARTITION BY")?;
        if i == window_columns.0 {
            has_start = true;
        } else if i == window_columns.1 {
            has_end = true;
        } else if !added(i) && !keys.contains(&i) {
            keys.push(i);
        }
    }
    if let Some((partition, tpos)) = &session {
        // Sessions are per PARTITION BY key and the Top-N is keyed by its partition
        // columns, so the two must be the same columns (as for a SESSION aggregation).
        let mut ranked: Vec<&str> = keys
            .iter()
            .map(|&k| visible.columns[k].name.as_str())
            .collect();
        let mut wanted: Vec<&str> = partition.iter().map(String::as_str).collect();
        ranked.sort_unstable();
        wanted.sort_unstable();
        wanted.dedup();
        if ranked != wanted {
            return Err(unsupported(
                *tpos,
                format!(
                    "a window Top-N over SESSION windows must PARTITION BY window_start, window_end and exactly the SESSION's PARTITION BY columns ({}); found ({})",
                    wanted.join(", "),
                    ranked.join(", ")
                ),
            ));
        }
    }
    // Without both window columns in PARTITION BY it ranks the whole stream (Flink's Rank,
    // an updating result); a TVF's window columns exist only per window, so not over a TVF.
    let window = match window {
        Some(w) if has_start && has_end => Some(w),
        _ if is_tvf => {
            return Err(unsupported(
                Pos::of(f.span()),
                format!(
                    "a window Top-N must PARTITION BY window_start, window_end (and optionally more columns); {SHAPE}"
                ),
            ));
        }
        _ => {
            keys.clear();
            for p in &spec.partition_by {
                let i = column_of(p, "PARTITION BY")?;
                if !keys.contains(&i) {
                    keys.push(i);
                }
            }
            None
        }
    };

    // ORDER BY: columns, ASC (default) or DESC, NULLS FIRST/LAST (default as Flink: NULLs
    // are the smallest values, first ascending, last descending).
    let mut order = Vec::new();
    for o in &spec.order_by {
        let i = column_of(&o.expr, "ORDER BY")?;
        let descending = match &o.options.sort {
            None | Some(ast::OrderBySort::Asc) => false,
            Some(ast::OrderBySort::Desc) => true,
            Some(ast::OrderBySort::Using(_)) => {
                return Err(unsupported(
                    pos_of(&o.expr),
                    "ORDER BY ... USING is not supported; write ASC or DESC",
                ));
            }
        };
        if o.with_fill.is_some() {
            return Err(unsupported(pos_of(&o.expr), "WITH FILL is not supported"));
        }
        if !added(i) {
            order.push(SortKey {
                column: i,
                descending,
                nulls_first: o.options.nulls_first.unwrap_or(!descending),
            });
        }
    }
    if spec.order_by.is_empty() {
        return Err(unsupported(
            Pos::of(f.span()),
            format!("ROW_NUMBER() needs an ORDER BY in its OVER clause; {SHAPE}"),
        ));
    }

    // The inner select list over the Top-N's output row (visible columns, then rownum).
    let rownum_column = visible.columns.len();
    let mut inner_projection = Vec::new();
    let mut inner_schema = Schema::default();
    let mut rownum_name = String::new();
    for (n, item) in select.projection.iter().enumerate() {
        if n == rn_index {
            let e = match item {
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
                _ => unreachable!("row_number_of matched an expression"),
            };
            rownum_name = output_name(item, e, n);
            inner_projection.push(Expr::Column(rownum_column, DataType::BigInt));
            inner_schema.columns.push(Column {
                name: rownum_name.clone(),
                data_type: DataType::BigInt,
                rowtime: false,
            });
            continue;
        }
        let (p, s) = project(&visible, std::slice::from_ref(item), |e| {
            Binder::new(&visible).bind(e)
        })?;
        inner_projection.extend(p);
        inner_schema.columns.extend(s.columns);
    }
    for (i, c) in inner_schema.columns.iter().enumerate() {
        if inner_schema.columns[..i].iter().any(|d| d.name == c.name) {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                spos,
                format!(
                    "the subquery has two columns named '{}'; give one an alias with AS",
                    c.name
                ),
            ));
        }
    }

    // The outer query: WHERE rownum <= N [AND more], its select list.
    let opos = Pos::of(outer.span());
    if outer.distinct.is_some()
        || outer.having.is_some()
        || !outer.named_window.is_empty()
        || outer.qualify.is_some()
        || !matches!(&outer.group_by, ast::GroupByExpr::Expressions(g, _) if g.is_empty())
    {
        return Err(unsupported(
            opos,
            "DISTINCT, GROUP BY, HAVING, WINDOW and QUALIFY over a window Top-N are not supported yet",
        ));
    }
    let need_bound = || {
        unsupported(
            outer.selection.as_ref().map_or(opos, pos_of),
            format!(
                "a window Top-N needs WHERE {rownum_name} <= N (N an integer literal; {rownum_name} = 1 to deduplicate), as Flink; {SHAPE}"
            ),
        )
    };
    let Some(where_clause) = &outer.selection else {
        return Err(need_bound());
    };
    let mut conjuncts = Vec::new();
    split_and(where_clause, &mut conjuncts);
    let mut limit = None;
    let mut rest = Vec::new();
    for c in conjuncts {
        match (limit, rownum_bound(c, &rownum_name)) {
            (None, Some((n, keep))) => {
                if n < 1 {
                    return Err(SqlError::at(
                        ErrorKind::InvalidOption,
                        pos_of(c),
                        format!("this bound on {rownum_name} keeps no row; rownum starts at 1"),
                    ));
                }
                limit = Some(n as usize);
                if keep {
                    rest.push(c);
                }
            }
            _ => rest.push(c),
        }
    }
    let Some(limit) = limit else {
        return Err(need_bound());
    };
    let mut filter: Option<Expr> = None;
    for c in rest {
        let bound = Binder::new(&inner_schema).bind_condition(c, "WHERE")?;
        filter = Some(match filter {
            None => bound,
            Some(f) => Expr::And(Box::new(f), Box::new(bound)),
        });
    }
    let (outer_projection, mut outer_schema) = project(&inner_schema, &outer.projection, |e| {
        Binder::new(&inner_schema).bind(e)
    })?;

    let identity_text = format!(
        "{}|{:?}|{window:?}|{keys:?}|{order:?}|{limit}",
        input.source.name(),
        input.steps
    );
    match window {
        Some(window) => {
            let uid = format!("sql-window-topn-{:016x}", stable_hash(&identity_text));
            input.steps.push(Step::WindowTopN {
                window,
                keys,
                order,
                limit,
                uid,
            });
        }
        None => {
            // Whether the query reads rownum: then each rank's row is updated, else rows
            // enter and leave the top N.
            let rownum_at = inner_projection
                .iter()
                .position(|e| matches!(e, Expr::Column(c, _) if *c == rownum_column));
            let with_rank = rownum_at.is_some_and(|at| {
                outer_projection
                    .iter()
                    .chain(filter.iter())
                    .any(|e| e.columns().contains(&at))
            });
            // Keeping the last row per key by its rowtime (Flink's Deduplicate keep-last on
            // ROWTIME) keeps the rowtime attribute: the view is a versioned table.
            if let [k] = order.as_slice()
                && limit == 1
                && k.descending
                && input
                    .schema
                    .columns
                    .get(k.column)
                    .is_some_and(|c| c.rowtime)
            {
                let time = k.column;
                for (j, e) in inner_projection.iter().enumerate() {
                    if matches!(e, Expr::Column(c, _) if *c == time) {
                        inner_schema.columns[j].rowtime = true;
                        for (o, e) in outer_projection.iter().enumerate() {
                            if matches!(e, Expr::Column(c, _) if *c == j) {
                                outer_schema.columns[o].rowtime = true;
                            }
                        }
                    }
                }
            }
            let uid = format!("sql-topn-{:016x}", stable_hash(&identity_text));
            input.steps.push(Step::TopN {
                keys,
                order,
                limit,
                with_rank,
                uid,
            });
        }
    }
    input.steps.push(Step::Calc {
        filter: None,
        projection: inner_projection,
    });
    let is_identity = filter.is_none()
        && outer_projection.len() == inner_schema.columns.len()
        && outer_projection
            .iter()
            .enumerate()
            .all(|(i, e)| matches!(e, Expr::Column(j, _) if *j == i));
    if !is_identity {
        input.steps.push(Step::Calc {
            filter,
            projection: outer_projection,
        });
    }
    input.schema = outer_schema;
    Ok(input)
}

/// The `OVER (...)` of `ROW_NUMBER()`, refusing other functions and window specs.
fn row_number_spec(f: &ast::Function) -> Result<&ast::WindowSpec> {
    let fpos = Pos::of(f.span());
    let name = f.name.to_string().to_uppercase();
    if name != "ROW_NUMBER" {
        return Err(unsupported(
            fpos,
            format!(
                "{name}() OVER (...) is not supported; only ROW_NUMBER() in a window Top-N or deduplication: {SHAPE}"
            ),
        ));
    }
    let no_args = match &f.args {
        ast::FunctionArguments::None => true,
        ast::FunctionArguments::List(l) => l.args.is_empty(),
        ast::FunctionArguments::Subquery(_) => false,
    };
    if !no_args || f.filter.is_some() || f.null_treatment.is_some() {
        return Err(unsupported(fpos, "ROW_NUMBER() takes no arguments"));
    }
    match &f.over {
        Some(ast::WindowType::WindowSpec(spec))
            if spec.window_name.is_none() && spec.window_frame.is_none() =>
        {
            Ok(spec)
        }
        _ => Err(unsupported(
            fpos,
            format!(
                "ROW_NUMBER() takes OVER (PARTITION BY ... ORDER BY ...) without a frame or a named window; {SHAPE}"
            ),
        )),
    }
}

/// The input of a Top-N over a table, view or subquery: the window comes from the
/// window_start and window_end columns of a window aggregation's result, if it is one (a
/// window Top-N when they are partitioned by); else none (the whole stream is ranked).
fn over_rows(p: Pipeline) -> (Pipeline, Option<TopNWindow>, Schema, (usize, usize)) {
    let visible = p.schema.clone();
    match window_columns(&p) {
        Some((start, end)) => (
            p,
            Some(TopNWindow::Columns { start, end }),
            visible,
            (start, end),
        ),
        None => (p, None, visible, (usize::MAX, usize::MAX)),
    }
}

/// Where a pipeline ending in a window aggregation or a window TVF without aggregation (then
/// only projections) has its window_start and window_end columns.
fn window_columns(p: &Pipeline) -> Option<(usize, usize)> {
    let at = p
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::WindowAggregate { .. } | Step::WindowTvf { .. }))?;
    // The aggregation's output starts with window_start, window_end; the TVF's has them
    // after the input columns.
    let (mut start, mut end) = match &p.steps[at] {
        Step::WindowTvf { width, .. } => (*width, *width + 1),
        _ => (0, 1),
    };
    for step in &p.steps[at + 1..] {
        let Step::Calc { projection, .. } = step else {
            return None;
        };
        let find = |c: usize| {
            projection
                .iter()
                .position(|e| matches!(e, Expr::Column(i, _) if *i == c))
        };
        (start, end) = (find(start)?, find(end)?);
    }
    Some((start, end))
}

/// The identity projection of a schema.
pub(crate) fn identity(schema: &Schema) -> Vec<Expr> {
    schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| Expr::Column(i, c.data_type))
        .collect()
}

/// The operands of a tree of `AND`s.
fn split_and<'e>(e: &'e ast::Expr, out: &mut Vec<&'e ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: ast::BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        ast::Expr::Nested(inner) => split_and(inner, out),
        other => out.push(other),
    }
}

/// `rownum <= N` → (N, false), `rownum < N` → (N - 1, false), `rownum = N` → (N, true: the
/// condition stays as a filter), also with the operands swapped.
fn rownum_bound(e: &ast::Expr, rownum: &str) -> Option<(i64, bool)> {
    let ast::Expr::BinaryOp { left, op, right } = e else {
        return None;
    };
    let is_rownum = |e: &ast::Expr| match e {
        ast::Expr::Identifier(id) => id.value == rownum,
        ast::Expr::CompoundIdentifier(ids) => ids.last().is_some_and(|i| i.value == rownum),
        _ => false,
    };
    let number = |e: &ast::Expr| match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse::<i64>().ok(),
            _ => None,
        },
        _ => None,
    };
    use ast::BinaryOperator as B;
    if is_rownum(left) {
        let n = number(right)?;
        match op {
            B::LtEq => Some((n, false)),
            B::Lt => Some((n - 1, false)),
            B::Eq => Some((n, true)),
            _ => None,
        }
    } else if is_rownum(right) {
        let n = number(left)?;
        match op {
            B::GtEq => Some((n, false)),
            B::Gt => Some((n - 1, false)),
            B::Eq => Some((n, true)),
            _ => None,
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{SortKey, Step, TopNWindow, WindowKind};
    use crate::{ErrorKind, SqlError, plan_portable};

    const HEAD: &str = "CREATE TABLE bid (item STRING, price DOUBLE, supplier STRING, ts TIMESTAMP(3),
                          WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
                        WITH ('connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv');
                        CREATE TABLE out (a STRING, b DOUBLE, c BIGINT) WITH ('connector' = 'blackhole');
                        INSERT INTO out ";

    fn steps(query: &str) -> Vec<Step> {
        let job = plan_portable(&format!("{HEAD}{query};")).unwrap_or_else(|e| panic!("{e}"));
        job.inserts[0].pipeline.steps.clone()
    }

    fn error(query: &str) -> (ErrorKind, u64, String) {
        match plan_portable(&format!("{HEAD}\n{query};")) {
            Err(SqlError::Plan {
                kind,
                line,
                message,
                ..
            }) => (kind, line, message),
            other => panic!("expected a planning error for {query}, got {other:?}"),
        }
    }

    #[test]
    fn top_n_over_a_tvf_ranks_the_input_rows_and_adds_window_columns_and_rownum() {
        let steps = steps(
            "SELECT item, price, rownum FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, supplier
                                            ORDER BY price DESC, item NULLS LAST, window_end) AS rownum
               FROM TABLE(HOP(TABLE bid, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
               WHERE price > 0)
             WHERE rownum <= 3 AND item <> 'x'",
        );
        assert!(
            matches!(&steps[0], Step::Calc { filter: Some(_), projection } if projection.len() == 4),
            "the inner WHERE filters before ranking: {steps:?}"
        );
        let Step::WindowTopN {
            window,
            keys,
            order,
            limit,
            uid,
        } = &steps[1]
        else {
            panic!("{steps:?}")
        };
        assert_eq!(
            *window,
            TopNWindow::Tvf {
                window: WindowKind::Hop {
                    slide: 5000,
                    size: 10000
                },
                time_column: 3
            }
        );
        assert_eq!(keys, &[2], "supplier; the window is not part of the key");
        assert_eq!(
            order,
            &[
                SortKey {
                    column: 1,
                    descending: true,
                    nulls_first: false
                },
                SortKey {
                    column: 0,
                    descending: false,
                    nulls_first: false
                }
            ],
            "window_end is the same for every row of a window, so it orders nothing"
        );
        assert_eq!(*limit, 3);
        assert!(uid.starts_with("sql-window-topn-"), "{uid}");
        // Then the inner select list (4 columns + 3 window columns + rownum), the outer
        // filter and select list.
        assert!(
            matches!(&steps[2], Step::Calc { filter: None, projection } if projection.len() == 8)
        );
        assert!(
            matches!(&steps[3], Step::Calc { filter: Some(_), projection } if projection.len() == 3)
        );
    }

    #[test]
    fn top_n_after_a_window_aggregation_takes_the_window_from_its_columns() {
        let steps = steps(
            "SELECT supplier, price, rownum FROM (
               SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum
               FROM (SELECT window_end, supplier, window_start, SUM(price) AS price
                     FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))
                     GROUP BY window_start, window_end, supplier))
             WHERE rownum = 1",
        );
        let top = steps
            .iter()
            .find_map(|s| match s {
                Step::WindowTopN {
                    window,
                    keys,
                    limit,
                    ..
                } => Some((*window, keys.clone(), *limit)),
                _ => None,
            })
            .unwrap();
        assert_eq!(top, (TopNWindow::Columns { start: 2, end: 0 }, vec![], 1));
    }

    #[test]
    fn the_same_query_has_the_same_uid_and_another_order_another() {
        let q = |dir: &str| {
            let s = steps(&format!(
                "SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price {dir}) AS rn
                 FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))) WHERE rn <= 2"
            ));
            s.into_iter()
                .find_map(|s| match s {
                    Step::WindowTopN { uid, .. } => Some(uid),
                    _ => None,
                })
                .unwrap()
        };
        assert_eq!(q("DESC"), q("DESC"));
        assert_ne!(q("DESC"), q("ASC"));
    }

    #[test]
    fn a_top_n_without_window_columns_ranks_the_whole_stream() {
        let sql = |outer: &str| {
            format!(
                "CREATE TABLE bid (item STRING, price DOUBLE, supplier STRING, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'filesystem', 'path' = '/nowhere', 'format' = 'csv');
                 CREATE TABLE out (a STRING, b DOUBLE, c BIGINT) WITH ('connector' = 'blackhole');
                 CREATE TABLE two (a STRING, b DOUBLE) WITH ('connector' = 'blackhole');
                 {outer}"
            )
        };
        let job = plan_portable(&sql("INSERT INTO out SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY supplier ORDER BY price) AS rn FROM bid) WHERE rn <= 1;")).unwrap();
        let p = &job.inserts[0].pipeline;
        assert!(
            matches!(&p.steps[0], Step::TopN { keys, limit: 1, with_rank: true, .. } if *keys == vec![2]),
            "{:?}",
            p.steps
        );
        assert!(p.is_changelog());
        // rownum not read: rows enter and leave (no per-rank updates).
        let job = plan_portable(&sql("INSERT INTO two SELECT item, price FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY supplier ORDER BY price DESC) AS rn FROM bid) WHERE rn <= 3;")).unwrap();
        assert!(matches!(
            &job.inserts[0].pipeline.steps[0],
            Step::TopN {
                limit: 3,
                with_rank: false,
                ..
            }
        ));
    }

    #[test]
    fn other_shapes_are_refused_with_the_supported_one() {
        let tvf = "TABLE(TUMBLE(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))";
        for (query, kind, want) in [
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY supplier ORDER BY price) AS rn FROM {tvf}) WHERE rn <= 1"),
                ErrorKind::Unsupported,
                "must PARTITION BY window_start, window_end",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price) AS rn FROM {tvf})"),
                ErrorKind::Unsupported,
                "needs WHERE rn <= N",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price) AS rn FROM {tvf}) WHERE rn > 2"),
                ErrorKind::Unsupported,
                "needs WHERE rn <= N",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, RANK() OVER (PARTITION BY window_start, window_end ORDER BY price) AS rn FROM {tvf}) WHERE rn <= 2"),
                ErrorKind::Unsupported,
                "RANK() OVER (...) is not supported",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price * 2) AS rn FROM {tvf}) WHERE rn <= 2"),
                ErrorKind::Unsupported,
                "takes column names",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end) AS rn FROM {tvf}) WHERE rn <= 2"),
                ErrorKind::Unsupported,
                "needs an ORDER BY",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY cost) AS rn FROM {tvf}) WHERE rn <= 2"),
                ErrorKind::UnknownColumn,
                "ORDER BY column 'cost' not found",
            ),
            (
                "SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, supplier ORDER BY price) AS rn FROM TABLE(SESSION(TABLE bid, DESCRIPTOR(ts), INTERVAL '10' SECOND))) WHERE rn <= 2".to_string(),
                ErrorKind::Unsupported,
                "exactly the SESSION's PARTITION BY columns (); found (supplier)",
            ),
            (
                format!("SELECT item, price, rn FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price) AS rn FROM {tvf}) WHERE rn < 1"),
                ErrorKind::InvalidOption,
                "keeps no row",
            ),
            (
                format!("SELECT item, price, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price) FROM {tvf}"),
                ErrorKind::Unsupported,
                "ROW_NUMBER() OVER (...) is supported in a Top-N, as a column of a subquery",
            ),
        ] {
            let (k, line, message) = error(&query);
            assert_eq!((k, line), (kind, 6), "{query}: {message}");
            assert!(message.contains(want), "{query}: {message}");
        }
    }
}
