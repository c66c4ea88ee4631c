//! Planning regular joins: `FROM a [INNER|LEFT|RIGHT|FULL] JOIN b ON ...` (chains of them,
//! left-deep) and `FROM a, b WHERE ...`. The joined rows are the left columns, then the right
//! ones, named `qualifier.column` (the alias, else the table's name), so `a.id` and `b.id`
//! stay apart and a bare `id` finds the only column of that name. The `=` conditions of `ON`
//! between one side and the other become the equi-join key; the rest is checked per pair.
//!
//! `JOIN t FOR SYSTEM_TIME AS OF o.proc_time [AS] c ON ...` on a `jdbc` table is a lookup join
//! (Flink's `LookupJoin`, [`crate::plan::LookupJoin`]): the `=` conditions of `ON` between a
//! column of `t` and the input (or a constant) are the lookup key, the rest filters the pairs.
//! `parse` rewrote the clause into the table arguments `t(fjord_for_system_time_as_of, col)`.
//! The same clause naming a rowtime of the input is an event-time temporal join of a
//! versioned table or view (`crate::temporal_join`).

use crate::bind::Binder;
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::{ArithOp, CmpOp, Expr};
use crate::plan::{
    IntervalBounds, Join, JoinKind, LookupJoin, Pipeline, Source, Step, TableDef, TemporalTimes,
    WindowJoinSpec, WindowKind, stable_hash,
};
use crate::planner::{Catalog, object_name, plan_query, scan, unsupported};
use crate::types::{Column, DataType, Schema, Value};
use sqlparser::ast::{self, Spanned};
use std::sync::Arc;

/// The joined rows of a SELECT's FROM when it joins tables (not LATERAL TABLE, which
/// `udf::bind::plan_lateral` plans), and the WHERE that is left to apply to them; `None` when
/// FROM reads one table.
pub(crate) fn plan_from_join<'s>(
    catalog: &Catalog,
    select: &'s ast::Select,
) -> Result<Option<(Pipeline, Option<&'s ast::Expr>)>> {
    match select.from.as_slice() {
        [from] if !from.joins.is_empty() => {
            let mut left = relation(catalog, &from.relation)?;
            for join in &from.joins {
                let pos = Pos::of(join.relation.span());
                let (kind, constraint) = match &join.join_operator {
                    ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => {
                        (JoinKind::Inner, c)
                    }
                    ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => {
                        (JoinKind::Left, c)
                    }
                    ast::JoinOperator::Right(c) | ast::JoinOperator::RightOuter(c) => {
                        (JoinKind::Right, c)
                    }
                    ast::JoinOperator::FullOuter(c) => (JoinKind::Full, c),
                    _ => {
                        return Err(unsupported(
                            pos,
                            "only [INNER], LEFT [OUTER], RIGHT [OUTER] and FULL [OUTER] JOIN ... ON are supported",
                        ));
                    }
                };
                let on = match constraint {
                    ast::JoinConstraint::On(e) => e,
                    _ => {
                        return Err(unsupported(
                            pos,
                            "a join needs ON <condition> (USING and NATURAL are not supported yet)",
                        ));
                    }
                };
                if let Some(st) = system_time(&join.relation) {
                    left = match as_of_rowtime(&left, st.as_of)? {
                        Some(time) => temporal_join(catalog, left, time, st, kind, on, pos)?,
                        None => lookup_join(catalog, left, st, kind, on, pos)?,
                    };
                    continue;
                }
                let right = relation(catalog, &join.relation)?;
                left = join_on(left, right, kind, Some(on))?;
            }
            Ok(Some((left, select.selection.as_ref())))
        }
        [a, b] if a.joins.is_empty() && b.joins.is_empty() => {
            // `FROM a, b WHERE ...`: an inner join whose condition is the WHERE.
            let left = relation(catalog, &a.relation)?;
            let right = relation(catalog, &b.relation)?;
            let joined = join_on(left, right, JoinKind::Inner, select.selection.as_ref())?;
            Ok(Some((joined, None)))
        }
        _ => Ok(None),
    }
}

/// A `t FOR SYSTEM_TIME AS OF col [AS] alias` in FROM: the table's name, its alias and the
/// `AS OF` expression.
struct SystemTime<'a> {
    name: &'a ast::ObjectName,
    alias: Option<&'a ast::TableAlias>,
    as_of: &'a ast::Expr,
}

/// The `FOR SYSTEM_TIME AS OF` of a table in FROM, as sqlparser reads it (a version) or as
/// `parse` rewrote it (table arguments led by the marker).
fn system_time(factor: &ast::TableFactor) -> Option<SystemTime<'_>> {
    let ast::TableFactor::Table {
        name,
        alias,
        args,
        version,
        ..
    } = factor
    else {
        return None;
    };
    let as_of = match (version, args) {
        (Some(ast::TableVersion::ForSystemTimeAsOf(e)), _) => e,
        (_, Some(a)) => match a.args.as_slice() {
            [
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Identifier(m))),
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)),
            ] if m.value == crate::parse::SYSTEM_TIME_MARKER => e,
            _ => return None,
        },
        _ => return None,
    };
    Some(SystemTime {
        name,
        alias: alias.as_ref(),
        as_of,
    })
}

/// The rowtime attribute of `input` that `FOR SYSTEM_TIME AS OF` names, if it names one (a
/// temporal join of a versioned table; a processing-time column makes a lookup join).
fn as_of_rowtime(input: &Pipeline, as_of: &ast::Expr) -> Result<Option<usize>> {
    Ok(match Binder::new(&input.schema).bind(as_of)? {
        Expr::Column(i, _) if input.schema.columns[i].rowtime => Some(i),
        _ => None,
    })
}

/// The columns of `p` that are a unique key of its rows, if it has one: a table's PRIMARY
/// KEY, or the partition columns of a deduplication (`ROW_NUMBER() ... = 1`), followed
/// through the projections after it.
fn unique_key(catalog: &Catalog, name: &str, p: &Pipeline) -> Option<Vec<usize>> {
    let (mut key, from) = match p
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::TopN { limit: 1, .. }))
    {
        Some(at) => match &p.steps[at] {
            Step::TopN { keys, .. } => (keys.clone(), at + 1),
            _ => unreachable!("found above"),
        },
        None => {
            let table = catalog.table(name)?;
            let key: Option<Vec<usize>> = table
                .primary_key
                .iter()
                .map(|k| table.columns.index_of(k))
                .collect();
            (key.filter(|k| !k.is_empty())?, 0)
        }
    };
    for step in &p.steps[from..] {
        let Step::Calc { projection, .. } = step else {
            return None;
        };
        key = key
            .iter()
            .map(|k| {
                projection
                    .iter()
                    .position(|e| matches!(e, Expr::Column(c, _) if c == k))
            })
            .collect::<Option<Vec<usize>>>()?;
    }
    Some(key)
}

/// `input JOIN v FOR SYSTEM_TIME AS OF input.rowtime [AS] r ON ...` (`left_time` the input's
/// rowtime column it names): an event-time temporal join of `input` with the versioned table
/// or view `v` (a unique key, which `ON` equates, and a rowtime attribute, as Flink requires).
fn temporal_join(
    catalog: &Catalog,
    input: Pipeline,
    left_time: usize,
    st: SystemTime<'_>,
    kind: JoinKind,
    on: &ast::Expr,
    pos: Pos,
) -> Result<Pipeline> {
    let name = object_name(st.name);
    let tpos = Pos::of(st.name.span());
    if !matches!(kind, JoinKind::Inner | JoinKind::Left) {
        return Err(unsupported(
            pos,
            "a temporal join (FOR SYSTEM_TIME AS OF) is [INNER] JOIN or LEFT [OUTER] JOIN, as in Flink",
        ));
    }
    if let Some(origin) = input.changelog_origin() {
        return Err(unsupported(
            pos,
            format!(
                "a temporal join's left input appends, but this one is updated ({origin}); join the versioned table to the appended rows first"
            ),
        ));
    }
    let mut right = scan(catalog, &name, tpos)?;
    qualify(&mut right, &qualifier(&name, st.alias));
    let Some(right_time) = right.schema.columns.iter().position(|c| c.rowtime) else {
        return Err(unsupported(
            tpos,
            format!(
                "'{name}' has no event-time attribute: a versioned table declares WATERMARK FOR its time column (FOR SYSTEM_TIME AS OF a rowtime joins the version current at that time)"
            ),
        ));
    };
    let Some(key) = unique_key(catalog, &name, &right) else {
        return Err(unsupported(
            tpos,
            format!(
                "'{name}' is not a versioned table: declare its PRIMARY KEY (...) NOT ENFORCED, or make it a view that keeps the last row per key (ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) = 1), as in Flink"
            ),
        ));
    };
    let key_names: Vec<String> = key
        .iter()
        .map(|&k| right.schema.columns[k].name.clone())
        .collect();
    let mut joined = join_on(input, right, kind, Some(on))?;
    let Source::Join(j) = &mut joined.source else {
        unreachable!("join_on makes a join");
    };
    let equated = key.iter().all(|&k| {
        j.right_keys
            .iter()
            .any(|e| matches!(e, Expr::Column(c, _) if *c == k))
    });
    if !equated {
        return Err(unsupported(
            Pos::of(on.span()),
            format!(
                "the versioned table's key [{}] must be equated in ON (as in Flink: the version is looked up by it)",
                key_names.join(", ")
            ),
        ));
    }
    j.interval = None;
    j.window = None;
    j.temporal = Some(TemporalTimes {
        left_time,
        right_time,
    });
    j.uid = format!("sql-temporal-join-{:016x}", stable_hash(&j.uid));
    // The result appends in the left rows' time: it keeps the left rowtime attribute.
    joined.schema.columns[left_time].rowtime = true;
    Ok(joined)
}

/// `input JOIN t FOR SYSTEM_TIME AS OF col AS c ON ...`: a lookup join of `input` with the
/// `jdbc` table `t`.
fn lookup_join(
    catalog: &Catalog,
    input: Pipeline,
    st: SystemTime<'_>,
    kind: JoinKind,
    on: &ast::Expr,
    pos: Pos,
) -> Result<Pipeline> {
    let table_name = object_name(st.name);
    let tpos = Pos::of(st.name.span());
    let left_outer = match kind {
        JoinKind::Inner => false,
        JoinKind::Left => true,
        _ => {
            return Err(unsupported(
                pos,
                "a lookup join (FOR SYSTEM_TIME AS OF) is [INNER] JOIN or LEFT [OUTER] JOIN, as in Flink",
            ));
        }
    };
    let table: Arc<TableDef> = match catalog.table(&table_name) {
        Some(t) => t,
        None if catalog.has_view(&table_name) => {
            return Err(unsupported(
                tpos,
                format!(
                    "'{table_name}' is a view; FOR SYSTEM_TIME AS OF joins a lookup table ('connector' = 'jdbc') directly"
                ),
            ));
        }
        None => {
            // The usual message, with the known tables.
            return scan(catalog, &table_name, tpos).map(|_| unreachable!("no such table"));
        }
    };
    crate::connectors::jdbc::check_lookup(&table).map_err(|m| {
        SqlError::at(
            ErrorKind::InvalidOption,
            tpos,
            format!("table '{table_name}': {m}"),
        )
    })?;
    // The AS OF column: the input's processing-time attribute (PROCTIME()).
    let as_of = Binder::new(&input.schema).bind(st.as_of)?;
    let apos = Pos::of(st.as_of.span());
    match &as_of {
        Expr::Column(i, crate::types::DataType::TimestampLtz)
            if !input.schema.columns[*i].rowtime => {}
        _ => {
            return Err(unsupported(
                apos,
                "FOR SYSTEM_TIME AS OF names the input's processing-time column: declare proc_time AS PROCTIME() in its CREATE TABLE and write FOR SYSTEM_TIME AS OF o.proc_time",
            ));
        }
    }
    let qualifier = qualifier(&table_name, st.alias);
    let nl = input.schema.columns.len();
    let mut columns = input.schema.columns.clone();
    columns.extend(table.columns.columns.iter().map(|c| Column {
        name: format!("{qualifier}.{}", c.name),
        rowtime: false,
        ..c.clone()
    }));
    let schema = Schema { columns };
    refuse_duplicate_names(&schema, Pos::of(on.span()))?;
    let mut parts = Vec::new();
    conjuncts(Binder::new(&schema).bind_condition(on, "ON")?, &mut parts);
    let lookup_column = |e: &Expr| match e {
        Expr::Column(c, _) if *c >= nl => Some((c - nl, true)),
        Expr::Cast(inner, _, _) => match **inner {
            Expr::Column(c, _) if c >= nl => Some((c - nl, false)),
            _ => None,
        },
        _ => None,
    };
    let probe = |e: &Expr| e.columns().iter().all(|&c| c < nl) && !e.calls_udf();
    let (mut keys, mut rest): (Vec<(usize, Expr)>, Vec<Expr>) = (Vec::new(), Vec::new());
    for part in parts {
        if let Expr::Cmp(CmpOp::Eq, a, b) = &part {
            let found = match (lookup_column(a), lookup_column(b)) {
                (Some(c), None) if probe(b) => Some((c, (**b).clone())),
                (None, Some(c)) if probe(a) => Some((c, (**a).clone())),
                _ => None,
            };
            if let Some(((c, bare), value)) = found
                && !keys.iter().any(|(k, _)| *k == c)
            {
                let t = table.columns.columns[c].data_type;
                // A value of another type: widened, else cast (NULL when it does not fit:
                // no match), and the equality checked again on the pair.
                let (value, exact) = match crate::bind::coerce(value.clone(), t) {
                    Some(v) => (v, bare),
                    None => (Expr::Cast(Box::new(value), t, true), false),
                };
                keys.push((c, value));
                if exact {
                    continue;
                }
            }
        }
        rest.push(part);
    }
    if keys.is_empty() {
        return Err(unsupported(
            Pos::of(on.span()),
            format!(
                "a lookup join needs an equality between a column of '{table_name}' and the input in ON (such as o.customer_id = {qualifier}.id): it is the key the table is queried by"
            ),
        ));
    }
    let condition = rest
        .into_iter()
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    Ok(Pipeline {
        source: Source::Lookup(Box::new(LookupJoin {
            input,
            table,
            keys,
            condition,
            left_outer,
        })),
        steps: Vec::new(),
        schema,
    })
}

/// Refuses a joined schema in which a qualified name occurs twice (both sides named alike).
fn refuse_duplicate_names(schema: &Schema, pos: Pos) -> Result<()> {
    for c in &schema.columns {
        if schema.columns.iter().filter(|o| o.name == c.name).count() > 1 {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                pos,
                format!(
                    "two joined inputs are both called '{}'; give one an alias (JOIN t AS t2)",
                    c.name.split('.').next().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// A table, view or subquery in FROM, its columns named `qualifier.column`.
fn relation(catalog: &Catalog, factor: &ast::TableFactor) -> Result<Pipeline> {
    if system_time(factor).is_some() {
        return Err(unsupported(
            Pos::of(factor.span()),
            "FOR SYSTEM_TIME AS OF goes on the right of JOIN ... ON (a lookup join: FROM orders AS o JOIN customers FOR SYSTEM_TIME AS OF o.proc_time AS c ON o.customer_id = c.id)",
        ));
    }
    let (mut p, qualifier) = match factor {
        ast::TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let table = object_name(name);
            let p = scan(catalog, &table, Pos::of(name.span()))?;
            (p, qualifier(&table, alias.as_ref()))
        }
        ast::TableFactor::Derived {
            lateral: false,
            subquery,
            alias,
            ..
        } => {
            let Some(alias) = alias else {
                return Err(unsupported(
                    Pos::of(factor.span()),
                    "a subquery in a join needs an alias: (SELECT ...) AS name",
                ));
            };
            (plan_query(catalog, subquery)?, alias.name.value.clone())
        }
        ast::TableFactor::TableFunction {
            expr: ast::Expr::Function(f),
            alias,
        } => {
            // `TABLE(TUMBLE(...)) AS L`: the TVF's rows, for a window join.
            let Some(alias) = alias else {
                return Err(unsupported(
                    Pos::of(factor.span()),
                    "a window TVF in a join needs an alias: TABLE(TUMBLE(...)) AS name",
                ));
            };
            let tvf = crate::planner::window_tvf(catalog, f)?;
            (
                crate::planner::window_rows(tvf, Pos::of(f.span()))?,
                alias.name.value.clone(),
            )
        }
        ast::TableFactor::NestedJoin { .. } => {
            return Err(unsupported(
                Pos::of(factor.span()),
                "parenthesized joins are not supported; write the joins one after the other",
            ));
        }
        other => {
            return Err(unsupported(
                Pos::of(other.span()),
                "a join reads tables, views, subqueries and window TVFs (TABLE(TUMBLE(...)) AS name)",
            ));
        }
    };
    qualify(&mut p, &qualifier);
    Ok(p)
}

/// What a table's columns are qualified with in a join: its alias, else its name's last part.
fn qualifier(table: &str, alias: Option<&ast::TableAlias>) -> String {
    alias.map_or_else(
        || table.rsplit('.').next().unwrap_or(table).to_string(),
        |a| a.name.value.clone(),
    )
}

/// Names `p`'s columns `qualifier.column` (those not qualified yet).
fn qualify(p: &mut Pipeline, qualifier: &str) {
    for c in &mut p.schema.columns {
        if !c.name.contains('.') {
            c.name = format!("{qualifier}.{}", c.name);
        }
    }
}

/// The conjuncts of a condition (`a AND b AND c`).
fn conjuncts(e: Expr, out: &mut Vec<Expr>) {
    match e {
        Expr::And(a, b) => {
            conjuncts(*a, out);
            conjuncts(*b, out);
        }
        other => out.push(other),
    }
}

/// `left JOIN right ON on`: the equi-join keys taken out of `on`, the rest kept as the
/// condition of each pair.
fn join_on(
    left: Pipeline,
    right: Pipeline,
    kind: JoinKind,
    on: Option<&ast::Expr>,
) -> Result<Pipeline> {
    let nl = left.schema.columns.len();
    let columns: Vec<Column> = left
        .schema
        .columns
        .iter()
        .chain(&right.schema.columns)
        .map(|c| Column {
            // A regular join keeps no time attribute (its rows leave in any order).
            rowtime: false,
            ..c.clone()
        })
        .collect();
    let schema = Schema { columns };
    refuse_duplicate_names(&schema, on.map_or(Pos::default(), |e| Pos::of(e.span())))?;
    let mut parts = Vec::new();
    if let Some(on) = on {
        conjuncts(Binder::new(&schema).bind_condition(on, "ON")?, &mut parts);
    }
    // Right columns renumbered from 0, for the right key over a right row.
    let shift: Vec<Expr> = (0..schema.columns.len())
        .map(|i| match i.checked_sub(nl) {
            Some(r) => Expr::Column(r, schema.columns[i].data_type),
            None => Expr::Literal(Value::Null, schema.columns[i].data_type),
        })
        .collect();
    let side = |e: &Expr| {
        let cols = e.columns();
        if cols.is_empty() || e.calls_udf() {
            None
        } else if cols.iter().all(|&c| c < nl) {
            Some(true)
        } else if cols.iter().all(|&c| c >= nl) {
            Some(false)
        } else {
            None
        }
    };
    let (mut left_keys, mut right_keys, mut rest) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        if let Expr::Cmp(CmpOp::Eq, a, b) = &part {
            match (side(a), side(b)) {
                (Some(true), Some(false)) => {
                    left_keys.push((**a).clone());
                    right_keys.push(b.substitute(&shift));
                    continue;
                }
                (Some(false), Some(true)) => {
                    left_keys.push((**b).clone());
                    right_keys.push(a.substitute(&shift));
                    continue;
                }
                _ => {}
            }
        }
        rest.push(part);
    }
    // Bounds between the two rowtimes make an interval join when both inputs append (the
    // conditions stay in `condition` too: they are checked per pair as well).
    let rowtime = |p: &Pipeline, i: usize| p.schema.columns.get(i).is_some_and(|c| c.rowtime);
    let interval = if left.is_changelog() || right.is_changelog() {
        None
    } else {
        interval_bounds(&rest, nl)
            .filter(|b| rowtime(&left, b.left_time) && rowtime(&right, b.right_time))
    };
    let window = if left.is_changelog() || right.is_changelog() {
        None
    } else {
        window_join(&left, &right, &left_keys, &right_keys, on)?
    };
    // A window join needs no interval: its rows meet per window.
    let interval = interval.filter(|_| window.is_none());
    let condition = rest
        .into_iter()
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    let identity = format!(
        "{}|{:?}|{}|{:?}|{:?}|{left_keys:?}|{right_keys:?}|{condition:?}|{interval:?}",
        left.source.name(),
        left.steps,
        right.source.name(),
        right.steps,
        kind
    );
    // A window join's uid is its own (its state is not a regular join's); the others keep
    // the uids they had before window joins existed.
    let uid = match &window {
        None => format!("sql-join-{:016x}", stable_hash(&identity)),
        Some(w) => format!(
            "sql-window-join-{:016x}",
            stable_hash(&format!("{identity}|{w:?}"))
        ),
    };
    Ok(Pipeline {
        source: Source::Join(Box::new(Join {
            left,
            right,
            kind,
            left_keys,
            right_keys,
            condition,
            interval,
            window,
            temporal: None,
            uid,
        })),
        steps: Vec::new(),
        schema,
    })
}

/// The window of a pipeline's rows and whether its column `c` is that window's end (else its
/// start), when the rows come from a window TVF (TUMBLE, HOP, CUMULATE) or a window
/// aggregation (not SESSION, whose windows differ per key) and `c` is its window_start or
/// window_end passed on unchanged by the projections after it (q8's `window_start AS
/// starttime`).
fn window_bound(p: &Pipeline, mut c: usize) -> Option<(WindowKind, bool)> {
    let bound = |window: WindowKind, c: usize| match c {
        0 => Some((window, false)),
        1 => Some((window, true)),
        _ => None,
    };
    for step in p.steps.iter().rev() {
        match step {
            Step::Calc { projection, .. } => match projection.get(c)? {
                Expr::Column(i, _) => c = *i,
                _ => return None,
            },
            Step::WindowTvf { window, width, .. } => return bound(*window, c.checked_sub(*width)?),
            Step::WindowAggregate { window, .. }
                if !matches!(window, WindowKind::Session { .. }) =>
            {
                return bound(*window, c);
            }
            _ => return None,
        }
    }
    None
}

/// A window join when the equi-join keys equate both inputs' window_start and window_end
/// (Flink's `WindowJoin` condition); `None` for any other join.
///
/// # Errors
/// The two inputs' windows differ (Flink refuses that too).
fn window_join(
    left: &Pipeline,
    right: &Pipeline,
    left_keys: &[Expr],
    right_keys: &[Expr],
    on: Option<&ast::Expr>,
) -> Result<Option<WindowJoinSpec>> {
    let (mut start, mut end) = (None, None);
    for (l, r) in left_keys.iter().zip(right_keys) {
        let (Expr::Column(lc, _), Expr::Column(rc, _)) = (l, r) else {
            continue;
        };
        let (Some((lw, l_end)), Some((rw, r_end))) =
            (window_bound(left, *lc), window_bound(right, *rc))
        else {
            continue;
        };
        match (l_end, r_end) {
            (false, false) => start = Some((lw, rw)),
            (true, true) => end = Some((lw, rw, *lc, *rc)),
            _ => {}
        }
    }
    let (Some((lw, rw)), Some((lw2, rw2, left_end, right_end))) = (start, end) else {
        return Ok(None);
    };
    if lw != rw || lw2 != lw || rw2 != rw {
        return Err(unsupported(
            on.map_or(Pos::default(), |e| Pos::of(e.span())),
            format!(
                "a window join needs the same windows on both sides (as in Flink); the left input has {lw}, the right one {rw}"
            ),
        ));
    }
    Ok(Some(WindowJoinSpec {
        window: lw,
        left_end,
        right_end,
    }))
}

/// A rowtime plus a constant: `ts`, `ts + INTERVAL ...`, `ts - INTERVAL ...`.
fn time_plus(e: &Expr) -> Option<(usize, i64)> {
    let ms = |e: &Expr| match e {
        Expr::Literal(Value::BigInt(ms), DataType::Interval) => Some(*ms),
        _ => None,
    };
    match e {
        Expr::Column(c, DataType::Timestamp | DataType::TimestampLtz) => Some((*c, 0)),
        Expr::Arith(ArithOp::Add, a, b, _) => match (a.as_ref(), ms(b)) {
            (Expr::Column(c, _), Some(m)) => Some((*c, m)),
            _ => match (ms(a), b.as_ref()) {
                (Some(m), Expr::Column(c, _)) => Some((*c, m)),
                _ => None,
            },
        },
        Expr::Arith(ArithOp::Sub, a, b, _) => match (a.as_ref(), ms(b)) {
            (Expr::Column(c, _), Some(m)) => Some((*c, -m)),
            _ => None,
        },
        _ => None,
    }
}

/// The bounds `lower <= l.ts - r.ts <= upper` that `conditions` put between a left and a
/// right time column (the same two columns in every bound), if there are both.
fn interval_bounds(conditions: &[Expr], nl: usize) -> Option<IntervalBounds> {
    let (mut lower, mut upper): (Option<i64>, Option<i64>) = (None, None);
    let mut columns: Option<(usize, usize)> = None;
    for c in conditions {
        let Expr::Cmp(op, a, b) = c else { continue };
        let (Some((ca, ma)), Some((cb, mb))) = (time_plus(a), time_plus(b)) else {
            continue;
        };
        // l + ma OP r + mb  <=>  l - r OP mb - ma (and mirrored when the right side is first).
        let (l, r, op, k) = if ca < nl && cb >= nl {
            (ca, cb - nl, *op, mb - ma)
        } else if cb < nl && ca >= nl {
            let flipped = match op {
                CmpOp::Lt => CmpOp::Gt,
                CmpOp::LtEq => CmpOp::GtEq,
                CmpOp::Gt => CmpOp::Lt,
                CmpOp::GtEq => CmpOp::LtEq,
                other => *other,
            };
            (cb, ca - nl, flipped, ma - mb)
        } else {
            continue;
        };
        if columns.is_some_and(|cols| cols != (l, r)) {
            return None;
        }
        columns = Some((l, r));
        match op {
            CmpOp::GtEq => lower = Some(lower.map_or(k, |x| x.max(k))),
            CmpOp::Gt => lower = Some(lower.map_or(k + 1, |x| x.max(k + 1))),
            CmpOp::LtEq => upper = Some(upper.map_or(k, |x| x.min(k))),
            CmpOp::Lt => upper = Some(upper.map_or(k - 1, |x| x.min(k - 1))),
            CmpOp::Eq => {
                lower = Some(lower.map_or(k, |x| x.max(k)));
                upper = Some(upper.map_or(k, |x| x.min(k)));
            }
            CmpOp::NotEq => {}
        }
    }
    let ((left_time, right_time), lower, upper) = (columns?, lower?, upper?);
    Some(IntervalBounds {
        left_time,
        right_time,
        lower,
        upper,
    })
}

#[cfg(test)]
mod interval_tests {
    use crate::plan::{IntervalBounds, Source};

    fn bounds(on: &str) -> Option<IntervalBounds> {
        let job = crate::plan(&format!(
            "CREATE TABLE a (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
             CREATE TABLE b (k INT, t TIMESTAMP(3), WATERMARK FOR t AS t) WITH ('connector' = 'datagen');
             CREATE TABLE out (k INT) WITH ('connector' = 'blackhole');
             INSERT INTO out SELECT a.k FROM a JOIN b ON a.k = b.k AND {on};"
        ))
        .unwrap();
        match &job.inserts[0].pipeline.source {
            Source::Join(j) => j.interval,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bounds_between_the_two_rowtimes_make_an_interval_join() {
        let b = |lower, upper| {
            Some(IntervalBounds {
                left_time: 1,
                right_time: 1,
                lower,
                upper,
            })
        };
        assert_eq!(
            bounds("a.ts BETWEEN b.t - INTERVAL '5' SECOND AND b.t + INTERVAL '2' SECOND"),
            b(-5000, 2000)
        );
        // Mirrored and strict: b.t >= a.ts - 3 s is a.ts - b.t <= 3 s; b.t < a.ts + 4 s is
        // a.ts - b.t > -4 s, so >= -3999 ms.
        assert_eq!(
            bounds("b.t >= a.ts - INTERVAL '3' SECOND AND b.t < a.ts + INTERVAL '4' SECOND"),
            b(-3999, 3000)
        );
        // One bound only, or no rowtime: a regular join.
        assert_eq!(bounds("a.ts >= b.t"), None);
        assert_eq!(bounds("a.k > 1"), None);
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::Source;

    const TABLES: &str = "
        CREATE TABLE o (id BIGINT, k INT, ts TIMESTAMP(3), pt AS PROCTIME(),
          WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen');
        CREATE TABLE c (id BIGINT, name STRING) WITH ('connector' = 'jdbc',
          'url' = 'jdbc:postgresql://127.0.0.1:1/db', 'table-name' = 'c');
        CREATE TABLE out (id BIGINT, name STRING) WITH ('connector' = 'blackhole');";

    fn plan(query: &str) -> crate::Result<crate::SqlJob> {
        crate::plan(&format!("{TABLES} INSERT INTO out {query};"))
    }

    #[test]
    fn equalities_on_the_lookup_table_are_the_key_and_the_rest_filters_pairs() {
        let job = plan(
            "SELECT o.id, x.name FROM o LEFT JOIN c FOR SYSTEM_TIME AS OF o.pt AS x
             ON x.id = o.k AND x.name <> 'b' AND o.id > 1",
        )
        .unwrap();
        let Source::Lookup(l) = &job.inserts[0].pipeline.source else {
            panic!("a lookup join: {:?}", job.inserts[0].pipeline.source)
        };
        assert!(l.left_outer);
        // c.id (BIGINT) by o.k (INT) widened.
        assert_eq!(l.keys.len(), 1);
        assert_eq!(l.keys[0].0, 0);
        assert_eq!(l.keys[0].1.to_string(), "CAST($1 AS BIGINT)");
        let rest = l.condition.as_ref().unwrap().to_string();
        assert_eq!(rest, "AND(<>($5, 'b'), >($0, CAST(1 AS BIGINT)))");
        // The probe's rowtime stays a time attribute after the (stateless) join.
        assert!(l.input.schema.columns[2].rowtime);
    }

    #[test]
    fn lookup_joins_that_are_not_refuse_with_the_shape_to_write() {
        let err = |q: &str| plan(q).unwrap_err().to_string();
        let e =
            err("SELECT o.id, x.name FROM o JOIN c FOR SYSTEM_TIME AS OF o.ts AS x ON x.id = o.id");
        assert!(e.contains("event-time attribute"), "{e}");
        let e = err(
            "SELECT o.id, x.name FROM o FULL JOIN c FOR SYSTEM_TIME AS OF o.pt AS x ON x.id = o.id",
        );
        assert!(e.contains("[INNER] JOIN or LEFT [OUTER] JOIN"), "{e}");
        let e =
            err("SELECT x.id, x.name FROM c FOR SYSTEM_TIME AS OF o.pt AS x JOIN o ON x.id = o.id");
        assert!(e.contains("goes on the right of JOIN"), "{e}");
        let e =
            err("SELECT o.id, x.name FROM o JOIN c FOR SYSTEM_TIME AS OF o.id AS x ON x.id = o.id");
        assert!(e.contains("processing-time column"), "{e}");
    }
}
