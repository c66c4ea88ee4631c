//! Planning `MATCH_RECOGNIZE`, Flink's shape:
//!
//! ```sql
//! SELECT * FROM ticker
//! MATCH_RECOGNIZE (
//!   PARTITION BY symbol
//!   ORDER BY ts
//!   MEASURES FIRST(DOWN.price) AS top, LAST(DOWN.price) AS bottom, UP.price AS rebound
//!   ONE ROW PER MATCH
//!   AFTER MATCH SKIP PAST LAST ROW
//!   PATTERN (DOWN{2,} UP)
//!   DEFINE DOWN AS DOWN.price < LAST(DOWN.price, 1) OR LAST(DOWN.price, 1) IS NULL,
//!          UP AS UP.price > LAST(DOWN.price)
//! ) AS t
//! ```
//!
//! `DEFINE` and `MEASURES` expressions are rewritten before binding: `v.col` of the variable
//! being defined (or a bare column) is the current row's column; `v.col` of another
//! variable, `LAST(v.col[, n])`, `FIRST(v.col[, n])` and aggregates over `v.col` / `v.*`
//! become navigations ([`crate::match_recognize::Nav`]), extra columns after the row's.

use crate::bind::{Binder, avg_type, pos_of, sum_type};
use crate::error::{ErrorKind, Pos, Result, SqlError};
use crate::expr::Expr;
use crate::match_recognize::{Nav, NavExpr, NavKind, PatternVar, Quantifier, Skip};
use crate::plan::{AggFunc, MatchSpec, Pipeline, Step, stable_hash};
use crate::planner::{Catalog, object_name, plan_query, scan, unsupported};
use crate::types::{Column, DataType, Schema};
use sqlparser::ast::{self, Spanned};

/// Rewrites a `DEFINE` or `MEASURES` expression: navigations become placeholder columns.
struct Rewrite<'a> {
    input: &'a Schema,
    symbols: &'a [String],
    /// The variable a `DEFINE` defines (`None` in `MEASURES`).
    current: Option<&'a str>,
    navs: Vec<Nav>,
}

impl Rewrite<'_> {
    fn placeholder(&mut self, nav: Nav) -> ast::Expr {
        let at = match self.navs.iter().position(|n| *n == nav) {
            Some(i) => i,
            None => {
                self.navs.push(nav);
                self.navs.len() - 1
            }
        };
        ast::Expr::Identifier(ast::Ident::new(format!("__nav{at}")))
    }

    /// `v.col` (or `col`, the universal variable in MEASURES): the variable and the column.
    fn column_ref(&self, e: &ast::Expr) -> Result<(Option<String>, Option<Expr>)> {
        let (symbol, column) = match e {
            ast::Expr::CompoundIdentifier(ids) if ids.len() == 2 => {
                (Some(ids[0].value.clone()), ids[1].value.clone())
            }
            ast::Expr::Identifier(id) => (None, id.value.clone()),
            ast::Expr::QualifiedWildcard(name, _) => {
                return Ok((Some(object_name(name)), None));
            }
            ast::Expr::Wildcard(_) => return Ok((None, None)),
            other => {
                return Err(unsupported(
                    pos_of(other),
                    "a navigation reads a column of a pattern variable: LAST(A.price, 1), FIRST(A.price), AVG(A.price)",
                ));
            }
        };
        if let Some(s) = &symbol
            && !self.symbols.contains(s)
        {
            return Err(SqlError::at(
                ErrorKind::UnknownColumn,
                pos_of(e),
                format!(
                    "'{s}' is not a pattern variable; the pattern has: {}",
                    self.symbols.join(", ")
                ),
            ));
        }
        let i = self.input.index_of(&column).ok_or_else(|| {
            SqlError::at(
                ErrorKind::UnknownColumn,
                pos_of(e),
                format!(
                    "column '{column}' not found; the input has columns: {}",
                    self.input.names()
                ),
            )
        })?;
        Ok((
            symbol,
            Some(Expr::Column(i, self.input.columns[i].data_type)),
        ))
    }

    fn nav(&mut self, kind: NavKind, symbol: Option<String>, arg: Option<Expr>) -> ast::Expr {
        let t = arg.as_ref().map_or(DataType::BigInt, Expr::data_type);
        let data_type = match kind {
            NavKind::Agg(AggFunc::Count | AggFunc::CountStar) => DataType::BigInt,
            NavKind::Agg(AggFunc::Sum) => sum_type(t),
            NavKind::Agg(AggFunc::Avg) => avg_type(t),
            _ => t,
        };
        self.placeholder(Nav {
            kind,
            symbol,
            arg,
            data_type,
        })
    }

    fn rewrite(&mut self, e: &ast::Expr) -> Result<ast::Expr> {
        crate::ast_map::try_map_expr(e, &mut |x| self.replace(x))
    }

    /// The placeholder of a navigation or column reference, `None` for anything else (whose
    /// operands are rewritten).
    fn replace(&mut self, e: &ast::Expr) -> Result<Option<ast::Expr>> {
        use ast::Expr as E;
        Ok(Some(match e {
            E::CompoundIdentifier(ids) if ids.len() == 2 => {
                let (symbol, arg) = self.column_ref(e)?;
                match symbol {
                    // The current row's column in the variable's own DEFINE.
                    Some(s) if Some(s.as_str()) == self.current => E::Identifier(ids[1].clone()),
                    other => self.nav(NavKind::Last(0), other, arg),
                }
            }
            E::Identifier(_) if self.current.is_none() => {
                let (_, arg) = self.column_ref(e)?;
                self.nav(NavKind::Last(0), None, arg)
            }
            E::Function(f) => {
                let name = f.name.to_string().to_uppercase();
                let args: Vec<&ast::Expr> = match &f.args {
                    ast::FunctionArguments::List(l) => l
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Some(x),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let star = matches!(&f.args, ast::FunctionArguments::List(l)
                    if matches!(l.args.as_slice(), [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard | ast::FunctionArgExpr::QualifiedWildcard(_))]));
                match name.as_str() {
                    "LAST" | "FIRST" if !args.is_empty() && args.len() <= 2 => {
                        let (symbol, arg) = self.column_ref(args[0])?;
                        if symbol.is_none() && self.current.is_some() {
                            return Err(unsupported(
                                pos_of(e),
                                "in DEFINE, qualify the column of LAST/FIRST with a pattern variable: LAST(A.price, 1)",
                            ));
                        }
                        let n = match args.get(1) {
                            None => 0,
                            Some(ast::Expr::Value(v)) => match &v.value {
                                ast::Value::Number(n, _) => n.parse().map_err(|_| {
                                    unsupported(
                                        pos_of(e),
                                        "the offset of LAST/FIRST is a whole number",
                                    )
                                })?,
                                _ => {
                                    return Err(unsupported(
                                        pos_of(e),
                                        "the offset of LAST/FIRST is a whole number",
                                    ));
                                }
                            },
                            Some(_) => {
                                return Err(unsupported(
                                    pos_of(e),
                                    "the offset of LAST/FIRST is a whole number",
                                ));
                            }
                        };
                        let kind = if name == "LAST" {
                            NavKind::Last(n)
                        } else {
                            NavKind::First(n)
                        };
                        self.nav(kind, symbol, arg)
                    }
                    "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" => {
                        let (symbol, arg) = if star {
                            match &f.args {
                                ast::FunctionArguments::List(l) => match &l.args[0] {
                                    ast::FunctionArg::Unnamed(
                                        ast::FunctionArgExpr::QualifiedWildcard(n),
                                    ) => (Some(object_name(n)), None),
                                    _ => (None, None),
                                },
                                _ => (None, None),
                            }
                        } else {
                            let [x] = args.as_slice() else {
                                return Err(unsupported(
                                    pos_of(e),
                                    format!("{name} takes one argument"),
                                ));
                            };
                            self.column_ref(x)?
                        };
                        let func = match (name.as_str(), arg.is_some()) {
                            ("COUNT", false) => AggFunc::CountStar,
                            ("COUNT", true) => AggFunc::Count,
                            ("SUM", true) => AggFunc::Sum,
                            ("AVG", true) => AggFunc::Avg,
                            ("MIN", true) => AggFunc::Min,
                            ("MAX", true) => AggFunc::Max,
                            _ => {
                                return Err(unsupported(
                                    pos_of(e),
                                    format!("{name}(*) is not valid; write {name}(A.col)"),
                                ));
                            }
                        };
                        if symbol.is_some() && arg.is_none() && func != AggFunc::CountStar {
                            return Err(unsupported(
                                pos_of(e),
                                format!("{name}(A.*) is not valid"),
                            ));
                        }
                        // A variable's own rows in its DEFINE include the current row.
                        self.nav(NavKind::Agg(func), symbol, arg)
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        }))
    }
}

/// Binds a rewritten expression over the row and its navigations.
fn bind_nav(input: &Schema, rewrite: Rewrite<'_>, e: &ast::Expr) -> Result<NavExpr> {
    let mut schema = input.clone();
    for (i, n) in rewrite.navs.iter().enumerate() {
        schema.columns.push(Column {
            name: format!("__nav{i}"),
            data_type: n.data_type,
            rowtime: false,
        });
    }
    Ok(NavExpr {
        expr: Binder::new(&schema).bind(e)?,
        navs: rewrite.navs,
    })
}

/// The variables of `PATTERN (...)` in order, with their quantifiers.
fn variables(p: &ast::MatchRecognizePattern, out: &mut Vec<(String, Quantifier)>) -> Result<()> {
    use ast::MatchRecognizePattern as P;
    let once = Quantifier {
        min: 1,
        max: Some(1),
        greedy: true,
    };
    let unsupported_shape = || {
        unsupported(
            Pos::default(),
            format!(
                "PATTERN ({p}) is not supported: write variables one after the other, each with an optional quantifier (*, +, ?, {{n}}, {{n,}}, {{n,m}}, reluctant with ?), as Flink supports; groups, alternation (|), PERMUTE and exclusions are not supported"
            ),
        )
    };
    match p {
        P::Symbol(ast::MatchRecognizeSymbol::Named(id)) => out.push((id.value.clone(), once)),
        P::Concat(parts) => {
            for part in parts {
                variables(part, out)?;
            }
        }
        P::Repetition(inner, q) => {
            let P::Symbol(ast::MatchRecognizeSymbol::Named(id)) = inner.as_ref() else {
                return Err(unsupported_shape());
            };
            let (q, greedy) = match q {
                ast::RepetitionQuantifier::Reluctant(q) => (q.as_ref(), false),
                q => (q, true),
            };
            use ast::RepetitionQuantifier as R;
            let (min, max) = match q {
                R::ZeroOrMore => (0, None),
                R::OneOrMore => (1, None),
                R::AtMostOne => (0, Some(1)),
                R::Exactly(n) => (*n, Some(*n)),
                R::AtLeast(n) => (*n, None),
                R::Range(n, m) => (*n, Some(*m)),
                _ => return Err(unsupported_shape()),
            };
            out.push((id.value.clone(), Quantifier { min, max, greedy }));
        }
        _ => return Err(unsupported_shape()),
    }
    Ok(())
}

/// The pattern's `WITHIN` bound, and the definitions without it.
fn within(
    symbols: &[ast::SymbolDefinition],
) -> Result<(Option<std::time::Duration>, Vec<ast::SymbolDefinition>)> {
    let mut within = None;
    let mut rest = Vec::new();
    for d in symbols {
        if d.symbol.value != crate::parse::WITHIN_MARKER {
            rest.push(d.clone());
            continue;
        }
        let ms = match &d.definition {
            ast::Expr::Interval(iv) => crate::bind::interval_ms(iv, &d.definition)?,
            other => {
                return Err(unsupported(
                    pos_of(other),
                    "WITHIN takes an interval literal, e.g. WITHIN INTERVAL '10' SECOND",
                ));
            }
        };
        if ms <= 0 {
            return Err(unsupported(
                pos_of(&d.definition),
                "WITHIN takes a positive interval, e.g. WITHIN INTERVAL '10' SECOND",
            ));
        }
        within = Some(std::time::Duration::from_millis(ms as u64));
    }
    Ok((within, rest))
}

/// Plans `t MATCH_RECOGNIZE (...)`: the input rows, then the pattern's output rows (the
/// partition columns, then the measures).
pub(crate) fn plan_match(catalog: &Catalog, factor: &ast::TableFactor) -> Result<Pipeline> {
    let ast::TableFactor::MatchRecognize {
        table,
        partition_by,
        order_by,
        measures,
        rows_per_match,
        after_match_skip,
        pattern,
        symbols,
        ..
    } = factor
    else {
        unreachable!("called for MATCH_RECOGNIZE");
    };
    let fpos = Pos::of(factor.span());
    let mut input = match table.as_ref() {
        ast::TableFactor::Table {
            name, args: None, ..
        } => scan(catalog, &object_name(name), Pos::of(name.span()))?,
        ast::TableFactor::Derived {
            lateral: false,
            subquery,
            ..
        } => plan_query(catalog, subquery)?,
        other => {
            return Err(unsupported(
                Pos::of(other.span()),
                "MATCH_RECOGNIZE reads a table, a view or a subquery",
            ));
        }
    };
    if let Some(origin) = input.changelog_origin() {
        return Err(unsupported(
            fpos,
            format!("MATCH_RECOGNIZE takes appended rows, but its input is updated ({origin})"),
        ));
    }
    if matches!(rows_per_match, Some(ast::RowsPerMatch::AllRows(_))) {
        return Err(unsupported(
            fpos,
            "ALL ROWS PER MATCH is not supported (nor in Flink); use ONE ROW PER MATCH",
        ));
    }
    let schema = input.schema.clone();
    let time_column = match order_by.as_slice() {
        [o] => match Binder::new(&schema).bind(&o.expr)? {
            Expr::Column(i, _)
                if schema.columns[i].rowtime
                    && !matches!(o.options.sort, Some(ast::OrderBySort::Desc)) =>
            {
                i
            }
            _ => {
                return Err(unsupported(
                    pos_of(&o.expr),
                    "MATCH_RECOGNIZE orders by a rowtime attribute (a column with a WATERMARK), ascending",
                ));
            }
        },
        _ => {
            return Err(unsupported(
                fpos,
                "MATCH_RECOGNIZE needs ORDER BY its rowtime attribute (one column, ascending)",
            ));
        }
    };
    let mut keys = Vec::new();
    for p in partition_by {
        match Binder::new(&schema).bind(p)? {
            Expr::Column(i, _) if !keys.contains(&i) => keys.push(i),
            Expr::Column(..) => {}
            _ => {
                return Err(unsupported(
                    pos_of(p),
                    "PARTITION BY takes columns (compute expressions in a view first)",
                ));
            }
        }
    }
    // `WITHIN <interval>` (read as the definition of `fjord_within`, see `crate::parse`).
    let (within, symbols) = within(symbols)?;
    let mut vars = Vec::new();
    variables(pattern, &mut vars)?;
    let names: Vec<String> = vars.iter().map(|(n, _)| n.clone()).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(unsupported(
                fpos,
                format!(
                    "pattern variable {n} appears twice in PATTERN; give each place its own name"
                ),
            ));
        }
    }
    for d in &symbols {
        if !names.contains(&d.symbol.value) {
            return Err(SqlError::at(
                ErrorKind::UnknownColumn,
                pos_of(&d.definition),
                format!(
                    "DEFINE {} names no variable of PATTERN ({})",
                    d.symbol.value,
                    names.join(" ")
                ),
            ));
        }
    }
    let mut pattern_vars = Vec::new();
    for (name, quantifier) in vars {
        let define = match symbols.iter().find(|d| d.symbol.value == name) {
            None => None,
            Some(d) => {
                let mut rw = Rewrite {
                    input: &schema,
                    symbols: &names,
                    current: Some(&name),
                    navs: Vec::new(),
                };
                let rewritten = rw.rewrite(&d.definition)?;
                let bound = bind_nav(&schema, rw, &rewritten)?;
                if bound.expr.data_type() != DataType::Boolean {
                    return Err(SqlError::at(
                        ErrorKind::TypeMismatch,
                        pos_of(&d.definition),
                        format!("DEFINE {name} needs a BOOLEAN condition"),
                    ));
                }
                Some(bound)
            }
        };
        pattern_vars.push(PatternVar {
            name,
            quantifier,
            define,
        });
    }
    // Without AFTER MATCH SKIP, Flink resumes at the row after the match's first row (not
    // the SQL standard's PAST LAST ROW): checked against Flink 2.3 by the oracle.
    let skip = match after_match_skip {
        Some(ast::AfterMatchSkip::PastLastRow) => Skip::PastLastRow,
        None | Some(ast::AfterMatchSkip::ToNextRow) => Skip::ToNextRow,
        Some(ast::AfterMatchSkip::ToFirst(v)) => Skip::ToFirst(v.value.clone()),
        Some(ast::AfterMatchSkip::ToLast(v)) => Skip::ToLast(v.value.clone()),
    };
    // The output: the partition columns, then the measures.
    let mut out = Schema {
        columns: keys
            .iter()
            .map(|&k| Column {
                rowtime: false,
                ..schema.columns[k].clone()
            })
            .collect(),
    };
    let mut bound_measures = Vec::new();
    for m in measures {
        let mut rw = Rewrite {
            input: &schema,
            symbols: &names,
            current: None,
            navs: Vec::new(),
        };
        let rewritten = rw.rewrite(&m.expr)?;
        let bound = bind_nav(&schema, rw, &rewritten)?;
        if out.columns.iter().any(|c| c.name == m.alias.value) {
            return Err(SqlError::at(
                ErrorKind::InvalidOption,
                pos_of(&m.expr),
                format!("the output has two columns named '{}'", m.alias.value),
            ));
        }
        out.columns.push(Column {
            name: m.alias.value.clone(),
            data_type: bound.expr.data_type(),
            rowtime: false,
        });
        bound_measures.push(bound);
    }
    // The pattern must compile (the CEP library's checks, Flink's messages).
    crate::match_recognize::pattern(&pattern_vars, &skip, within)
        .and_then(|p| fjord_cep::CEP::check(&p).map_err(|e| e.to_string()))
        .map_err(|m| unsupported(fpos, format!("the pattern cannot run: {m}")))?;
    let identity = format!(
        "{}|{:?}|{keys:?}|{time_column}|{pattern_vars:?}|{skip:?}|{bound_measures:?}{}",
        input.source.name(),
        input.steps,
        // Without WITHIN the uid stays what it was before WITHIN existed.
        within.map(|w| format!("|within {w:?}")).unwrap_or_default()
    );
    let uid = format!("sql-match-{:016x}", stable_hash(&identity));
    input.steps.push(Step::MatchRecognize(Box::new(MatchSpec {
        keys,
        time_column,
        vars: pattern_vars,
        skip,
        within,
        measures: bound_measures,
        uid,
    })));
    input.schema = out;
    Ok(input)
}
