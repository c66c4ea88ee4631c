//! `UNNEST(array_or_map) [WITH ORDINALITY] AS T(a, ...)` joined to a table (`FROM t CROSS
//! JOIN UNNEST(t.xs) AS T(x)`, `FROM t, UNNEST(...)`, `FROM t LEFT JOIN UNNEST(...) ON TRUE`):
//! planned as a built-in table function of the array's element type, so it runs as a
//! [`Step::Lateral`](crate::plan::Step::Lateral) does, as Flink runs it (a correlated
//! table function).
//!
//! Columns, as Flink's: an `ARRAY<ROW<...>>` gives the row's fields, any other array one
//! column, a `MAP<k, v>` two (key and value); `WITH ORDINALITY` adds the element's position
//! (an `INT` from 1) after them. A NULL array or map gives no rows.

use super::{TableFunction, TableRef};
use crate::bind::{Binder, pos_of};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::Expr;
use crate::planner::unsupported;
use crate::types::{DataType, Schema, Value};
use sqlparser::ast::{self, Spanned};
use std::sync::Arc;

/// What one element becomes.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// One column: the element.
    Element,
    /// The fields of a ROW element (`n` of them; a NULL element gives NULLs).
    Fields(usize),
    /// A MAP's entry: key, value.
    Entry,
}

/// The table function of `UNNEST(...)` in `factor` over rows of `input`, its bound argument,
/// the factor's alias and the argument's expression (for error positions).
pub(crate) fn plan<'a>(
    input: &Schema,
    factor: &'a ast::TableFactor,
) -> Result<(TableRef, Expr, Option<&'a ast::TableAlias>, &'a ast::Expr)> {
    let ast::TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset,
        with_ordinality,
        ..
    } = factor
    else {
        unreachable!("called for UNNEST");
    };
    let pos = Pos::of(factor.span());
    if *with_offset {
        return Err(unsupported(
            pos,
            "WITH OFFSET is not Flink SQL; write WITH ORDINALITY (positions from 1)",
        ));
    }
    let [array] = array_exprs.as_slice() else {
        return Err(unsupported(
            pos,
            "UNNEST takes one array or map; join a second UNNEST for another",
        ));
    };
    let arg = Binder::new(input).bind(array)?;
    let arg_type = arg.data_type();
    let (shape, mut columns) = match arg_type {
        DataType::Array(element) => match *element {
            DataType::Row(fields) => (
                Shape::Fields(fields.len()),
                fields
                    .iter()
                    .map(|f| (f.name.clone(), f.data_type))
                    .collect::<Vec<_>>(),
            ),
            other => (Shape::Element, vec![("EXPR$0".to_string(), other)]),
        },
        DataType::Map(kv) => (
            Shape::Entry,
            vec![("KEY".to_string(), kv.0), ("VALUE".to_string(), kv.1)],
        ),
        other => {
            return Err(SqlError::at(
                ErrorKind::TypeMismatch,
                pos_of(array),
                format!("UNNEST takes an ARRAY or a MAP, not {other}"),
            ));
        }
    };
    let ordinality = *with_ordinality;
    if ordinality {
        columns.push(("ORDINALITY".to_string(), DataType::Int));
    }
    let declared: Vec<(&str, DataType)> = columns.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    let function = TableFunction::new(&[arg_type], &declared, move |args, out| {
        expand(shape, ordinality, &args[0], out);
        Ok(())
    });
    let function = TableRef {
        name: "UNNEST".into(),
        function: Arc::new(function),
    };
    Ok((function, arg, alias.as_ref(), array))
}

/// The rows of one array or map.
fn expand(shape: Shape, ordinality: bool, value: &Value, out: &mut Vec<Vec<Value>>) {
    let position = |i: usize| Value::Int(i as i32 + 1);
    match (shape, value) {
        (Shape::Element, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                let mut row = vec![v.clone()];
                if ordinality {
                    row.push(position(i));
                }
                out.push(row);
            }
        }
        (Shape::Fields(n), Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                let mut row = match v {
                    Value::Row(fields) => fields.clone(),
                    _ => vec![Value::Null; n],
                };
                if ordinality {
                    row.push(position(i));
                }
                out.push(row);
            }
        }
        (Shape::Entry, Value::Map(entries)) => {
            for (i, (k, v)) in entries.iter().enumerate() {
                let mut row = vec![k.clone(), v.clone()];
                if ordinality {
                    row.push(position(i));
                }
                out.push(row);
            }
        }
        // NULL (or a value of another shape, which binding rules out): no rows.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(shape: Shape, ordinality: bool, v: Value) -> Vec<Vec<Value>> {
        let mut out = Vec::new();
        expand(shape, ordinality, &v, &mut out);
        out
    }

    #[test]
    fn arrays_rows_and_maps_expand_with_their_positions() {
        let xs = Value::Array(vec![Value::Int(3), Value::Null, Value::Int(5)]);
        assert_eq!(
            rows(Shape::Element, true, xs),
            vec![
                vec![Value::Int(3), Value::Int(1)],
                vec![Value::Null, Value::Int(2)],
                vec![Value::Int(5), Value::Int(3)],
            ]
        );
        let rs = Value::Array(vec![
            Value::Row(vec![Value::Int(1), Value::String("a".into())]),
            Value::Null,
        ]);
        assert_eq!(
            rows(Shape::Fields(2), false, rs),
            vec![
                vec![Value::Int(1), Value::String("a".into())],
                vec![Value::Null, Value::Null],
            ]
        );
        let m = Value::Map(vec![(Value::String("k".into()), Value::Int(7))]);
        assert_eq!(
            rows(Shape::Entry, false, m),
            vec![vec![Value::String("k".into()), Value::Int(7)]]
        );
        assert!(rows(Shape::Element, true, Value::Null).is_empty());
    }
}
