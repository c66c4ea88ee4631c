//! Planning `UNION ALL`: two or more SELECTs whose rows are merged, as in Flink SQL.
//!
//! - The branches must have the same number of columns; the result takes the first branch's
//!   column names.
//! - Each column has the branches' common type (Flink's widening: the wider integer, a
//!   DECIMAL that holds every branch's values, FLOAT/DOUBLE over exact numbers, the longest
//!   TIME precision); a branch whose column is narrower is cast. A bare NULL is refused (as
//!   Flink: `CAST(NULL AS type)`). Any other mix is refused at the branch's line and column.
//! - A column stays a time attribute (rowtime) only when it is one in every branch; the
//!   union's watermark is the minimum of the branches' (the runtime's rule for a task with
//!   several inputs), so windows over a union fire once every branch has passed them.
//! - `UNION` (distinct), `INTERSECT` and `EXCEPT` need an updating result or state over all
//!   rows and are refused.

use crate::bind::coerce;
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::Expr;
use crate::plan::{Pipeline, Source, Step};
use crate::planner::{Catalog, plan_set_expr, unsupported};
use crate::types::{Column, DataType, Schema, Value};
use sqlparser::ast::{self, Spanned};

/// Plans a `SetExpr::SetOperation`: only `UNION ALL` (nested ones are flattened into one
/// union of all their branches).
pub(crate) fn plan_union(catalog: &Catalog, body: &ast::SetExpr) -> Result<Pipeline> {
    let mut branches = Vec::new();
    flatten(body, &mut branches)?;
    let mut planned = Vec::with_capacity(branches.len());
    for b in &branches {
        planned.push((
            plan_set_expr(catalog, b, Pos::of(b.span()))?,
            Pos::of(b.span()),
        ));
    }
    let (first, _) = &planned[0];
    let width = first.schema.columns.len();
    for (p, pos) in &planned[1..] {
        if p.schema.columns.len() != width {
            return Err(SqlError::at(
                ErrorKind::TypeMismatch,
                *pos,
                format!(
                    "Column count mismatch in UNION ALL: the first SELECT has {width} columns [{}] but this one has {} [{}]; every branch must select the same number of columns",
                    first.schema.names(),
                    p.schema.columns.len(),
                    p.schema.names()
                ),
            ));
        }
    }
    // The union's columns: the first branch's names, the common types, rowtime only where
    // every branch has it.
    let mut columns: Vec<Column> = first.schema.columns.clone();
    for (i, column) in columns.iter_mut().enumerate() {
        let mut common: Option<DataType> = None;
        for (p, pos) in &planned {
            column.rowtime &= p.schema.columns[i].rowtime;
            if is_null_column(p, i) {
                return Err(SqlError::at(
                    ErrorKind::TypeMismatch,
                    *pos,
                    format!(
                        "Illegal use of 'NULL': column {} ('{}') of this UNION ALL branch is a NULL without a type; write CAST(NULL AS <type>), as Flink requires",
                        i + 1,
                        p.schema.columns[i].name
                    ),
                ));
            }
            let t = p.schema.columns[i].data_type;
            common = Some(match common {
                None => t,
                Some(c) => union_type(c, t).ok_or_else(|| {
                    SqlError::at(
                        ErrorKind::TypeMismatch,
                        *pos,
                        format!(
                            "Type mismatch in column {} of UNION ALL: '{}' is {c} in an earlier branch but {t} in this one; CAST it in one branch so both have the same type (CAST({} AS {c}))",
                            i + 1,
                            column.name,
                            p.schema.columns[i].name
                        ),
                    )
                })?,
            });
        }
        column.data_type = common.unwrap_or(column.data_type);
    }
    let mut inputs = Vec::with_capacity(planned.len());
    for (mut p, _) in planned {
        let projection: Vec<Expr> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let e = Expr::Column(i, p.schema.columns[i].data_type);
                // union_type only gives types every branch casts to implicitly.
                coerce(e.clone(), c.data_type).unwrap_or(e)
            })
            .collect();
        let cast = projection
            .iter()
            .enumerate()
            .any(|(i, e)| !matches!(e, Expr::Column(j, _) if *j == i));
        if cast {
            p.steps.push(Step::Calc {
                filter: None,
                projection,
            });
        }
        p.schema = Schema {
            columns: columns.clone(),
        };
        inputs.push(p);
    }
    Ok(Pipeline {
        source: Source::UnionAll(inputs),
        steps: Vec::new(),
        schema: Schema { columns },
    })
}

/// The branches of a chain of `UNION ALL`s, left to right.
fn flatten<'q>(body: &'q ast::SetExpr, out: &mut Vec<&'q ast::SetExpr>) -> Result<()> {
    match body {
        ast::SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } => {
            let pos = Pos::of(body.span());
            if *op != ast::SetOperator::Union {
                return Err(unsupported(
                    pos,
                    format!(
                        "{op} is not supported yet (it needs state over all rows and an updating result); UNION ALL is"
                    ),
                ));
            }
            if *set_quantifier != ast::SetQuantifier::All {
                return Err(unsupported(
                    pos,
                    "UNION without ALL (removing duplicates) is not supported yet: it needs an updating result; write UNION ALL to keep every row",
                ));
            }
            flatten(left, out)?;
            flatten(right, out)
        }
        other => {
            out.push(other);
            Ok(())
        }
    }
}

/// Whether column `i` of a branch is a bare `NULL` (the binder types it STRING; Flink
/// refuses it in a union).
fn is_null_column(p: &Pipeline, i: usize) -> bool {
    matches!(
        p.steps.last(),
        Some(Step::Calc { projection, .. })
            if matches!(projection[i], Expr::Literal(Value::Null, DataType::String))
    )
}

/// The common type of one column of two branches (Flink's widening); `None` when they do not
/// mix.
fn union_type(a: DataType, b: DataType) -> Option<DataType> {
    match (a, b) {
        _ if a == b => Some(a),
        (DataType::Time(p), DataType::Time(q)) => Some(DataType::Time(p.max(q))),
        _ => DataType::wider_numeric(a, b),
    }
}
