//! Rewriting sqlparser expressions before binding: `f` may replace a sub-expression (its
//! result is kept as is); otherwise the expression is rebuilt from its rewritten operands.
//! Used where Flink syntax names things the binder does not know: the navigations of
//! `MATCH_RECOGNIZE` and the window functions of legacy group windows (`TUMBLE_START(...)`).

use crate::error::Result;
use sqlparser::ast;

/// `e` with every sub-expression `f` replaces replaced, outermost first.
///
/// # Errors
/// What `f` returns.
pub(crate) fn try_map_expr(
    e: &ast::Expr,
    f: &mut dyn FnMut(&ast::Expr) -> Result<Option<ast::Expr>>,
) -> Result<ast::Expr> {
    use ast::Expr as E;
    if let Some(replaced) = f(e)? {
        return Ok(replaced);
    }
    let mut m = |x: &ast::Expr| try_map_expr(x, f).map(Box::new);
    Ok(match e {
        E::BinaryOp { left, op, right } => E::BinaryOp {
            left: m(left)?,
            op: op.clone(),
            right: m(right)?,
        },
        E::UnaryOp { op, expr } => E::UnaryOp {
            op: *op,
            expr: m(expr)?,
        },
        E::Nested(x) => E::Nested(m(x)?),
        E::IsNull(x) => E::IsNull(m(x)?),
        E::IsNotNull(x) => E::IsNotNull(m(x)?),
        E::IsTrue(x) => E::IsTrue(m(x)?),
        E::IsFalse(x) => E::IsFalse(m(x)?),
        E::Between {
            expr,
            negated,
            low,
            high,
        } => E::Between {
            expr: m(expr)?,
            negated: *negated,
            low: m(low)?,
            high: m(high)?,
        },
        E::Cast {
            kind,
            expr,
            data_type,
            format,
        } => E::Cast {
            kind: kind.clone(),
            expr: m(expr)?,
            data_type: data_type.clone(),
            format: format.clone(),
        },
        E::Function(func) => {
            let mut g = func.clone();
            if let ast::FunctionArguments::List(l) = &mut g.args {
                for a in &mut l.args {
                    if let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = a {
                        *x = try_map_expr(x, f)?;
                    }
                }
            }
            E::Function(g)
        }
        other => other.clone(),
    })
}

/// `e` with every sub-expression `f` replaces replaced (an infallible [`try_map_expr`]).
pub(crate) fn map_expr(
    e: &ast::Expr,
    f: &mut dyn FnMut(&ast::Expr) -> Option<ast::Expr>,
) -> ast::Expr {
    try_map_expr(e, &mut |x| Ok(f(x))).expect("an infallible rewrite")
}
