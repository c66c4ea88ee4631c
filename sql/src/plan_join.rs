//! Planning regular joins: `FROM a [INNER|LEFT|RIGHT|FULL] JOIN b ON ...` (chains of them,
//! left-deep) and `FROM a, b WHERE ...`. The joined rows are the left columns, then the right
//! ones, named `qualifier.column` (the alias, else the table's name), so `a.id` and `b.id`
//! stay apart and a bare `id` finds the only column of that name. The `=` conditions of `ON`
//! between one side and the other become the equi-join key; the rest is checked per pair.

use crate::bind::Binder;
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::{CmpOp, Expr};
use crate::plan::{Join, JoinKind, Pipeline, Source, stable_hash};
use crate::planner::{Catalog, object_name, plan_query, scan, unsupported};
use crate::types::{Column, Schema, Value};
use sqlparser::ast::{self, Spanned};

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

/// A table, view or subquery in FROM, its columns named `qualifier.column`.
fn relation(catalog: &Catalog, factor: &ast::TableFactor) -> Result<Pipeline> {
    let (mut p, qualifier) = match factor {
        ast::TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let table = object_name(name);
            let p = scan(catalog, &table, Pos::of(name.span()))?;
            let q = alias.as_ref().map_or_else(
                || table.rsplit('.').next().unwrap_or(&table).to_string(),
                |a| a.name.value.clone(),
            );
            (p, q)
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
        ast::TableFactor::NestedJoin { .. } => {
            return Err(unsupported(
                Pos::of(factor.span()),
                "parenthesized joins are not supported; write the joins one after the other",
            ));
        }
        other => {
            return Err(unsupported(
                Pos::of(other.span()),
                "a join reads tables, views and subqueries (window joins of TABLE(TUMBLE(...)) are not supported yet)",
            ));
        }
    };
    for c in &mut p.schema.columns {
        if !c.name.contains('.') {
            c.name = format!("{qualifier}.{}", c.name);
        }
    }
    Ok(p)
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
    for c in &schema.columns {
        if schema.columns.iter().filter(|o| o.name == c.name).count() > 1 {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                on.map_or(Pos::default(), |e| Pos::of(e.span())),
                format!(
                    "two joined inputs are both called '{}'; give one an alias (JOIN t AS t2)",
                    c.name.split('.').next().unwrap_or_default()
                ),
            ));
        }
    }
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
    let condition = rest
        .into_iter()
        .reduce(|a, b| Expr::And(Box::new(a), Box::new(b)));
    let identity = format!(
        "{}|{:?}|{}|{:?}|{:?}|{left_keys:?}|{right_keys:?}|{condition:?}",
        left.source.name(),
        left.steps,
        right.source.name(),
        right.steps,
        kind
    );
    let uid = format!("sql-join-{:016x}", stable_hash(&identity));
    Ok(Pipeline {
        source: Source::Join(Box::new(Join {
            left,
            right,
            kind,
            left_keys,
            right_keys,
            condition,
            uid,
        })),
        steps: Vec::new(),
        schema,
    })
}
