//! Reading a script: the small pre-parse step that turns Flink SQL into SQL sqlparser's
//! `GenericDialect` reads, keeping every line and column where it was.
//!
//! Three Flink constructs have no sqlparser grammar: the `WATERMARK FOR col AS expr` clause of
//! `CREATE TABLE`, the `TABLE t` argument of the window table-valued functions
//! (`TUMBLE(TABLE t, ...)`), and statement sets (`EXECUTE STATEMENT SET BEGIN ... END;`, and
//! the SQL client's `BEGIN STATEMENT SET; ... END;`). The pre-parse finds them in sqlparser's
//! own token stream (so strings and comments are never mistaken for them), records the
//! watermark clauses, and blanks them out with spaces, so positions in error messages still
//! point into the user's script. A statement set's inserts are then ordinary inserts: every
//! insert of a script runs in one job anyway, as a statement set does in Flink.

use crate::error::{ErrorKind, Pos, Result, SqlError};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// The window table-valued functions whose first argument is `TABLE name`.
const WINDOW_TVFS: &[&str] = &["TUMBLE", "HOP", "CUMULATE", "SESSION"];

/// A `WATERMARK FOR col AS expr` clause found in a `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct WatermarkClause {
    /// The table it belongs to (as written).
    pub table: String,
    /// The rowtime column.
    pub column: String,
    /// Where the column name is.
    pub column_pos: Pos,
    /// The watermark expression, parsed in place.
    pub expr: sqlparser::ast::Expr,
}

/// A script after the pre-parse.
#[derive(Debug, Clone)]
pub struct Preparsed {
    /// The text to hand to sqlparser (same lines and columns as the script).
    pub text: String,
    /// The watermark clauses, in script order.
    pub watermarks: Vec<WatermarkClause>,
}

/// Byte offsets of line starts, to turn (line, column) into an offset.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    /// Byte offset of a 1-based (line, column), columns counted in characters.
    fn offset(&self, text: &str, line: u64, column: u64) -> usize {
        let start = self.starts[(line as usize).saturating_sub(1).min(self.starts.len() - 1)];
        text[start..]
            .char_indices()
            .nth((column as usize).saturating_sub(1))
            .map_or(text.len(), |(i, _)| start + i)
    }
}

/// Replaces `text[from..to]` by spaces, keeping line breaks.
fn blank(text: &mut [u8], from: usize, to: usize) {
    for b in &mut text[from..to] {
        if *b != b'\n' && *b != b'\r' {
            *b = b' ';
        }
    }
}

fn syntax(pos: Pos, message: impl Into<String>) -> SqlError {
    SqlError::at(ErrorKind::Syntax, pos, message)
}

/// Pre-parses a script (see the module comment).
///
/// # Errors
/// A tokenizer error (unterminated string, bad character) or a malformed watermark clause,
/// with its position.
pub fn preparse(script: &str) -> Result<Preparsed> {
    let tokens = Tokenizer::new(&GenericDialect {}, script)
        .tokenize_with_location()
        .map_err(|e| {
            SqlError::at(
                ErrorKind::Syntax,
                Pos {
                    line: e.location.line,
                    column: e.location.column,
                },
                e.message,
            )
        })?;
    // Positions of meaningful tokens (no whitespace or comments).
    let toks: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let lines = Lines::new(script);
    let off = |t: &TokenWithSpan, end: bool| {
        let loc = if end { t.span.end } else { t.span.start };
        lines.offset(script, loc.line, loc.column)
    };
    let mut out = script.as_bytes().to_vec();
    let mut watermarks = Vec::new();
    let mut current_table = String::new();
    let is_kw =
        |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.keyword == k);
    let is_word = |t: Option<&&TokenWithSpan>, word: &str| matches!(t.map(|t| &t.token), Some(Token::Word(w)) if w.value.eq_ignore_ascii_case(word));
    // Where the open statement set began, and whether the next token starts a statement.
    let mut statement_set: Option<Pos> = None;
    let mut statement_start = true;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if statement_start && !matches!(t.token, Token::SemiColon | Token::EOF) {
            statement_start = false;
            // EXECUTE STATEMENT SET BEGIN / BEGIN STATEMENT SET ;
            let opener = if is_word(Some(&t), "EXECUTE")
                && is_word(toks.get(i + 1), "STATEMENT")
                && is_word(toks.get(i + 2), "SET")
                && is_word(toks.get(i + 3), "BEGIN")
            {
                Some(4)
            } else if is_word(Some(&t), "BEGIN")
                && is_word(toks.get(i + 1), "STATEMENT")
                && is_word(toks.get(i + 2), "SET")
            {
                Some(3)
            } else {
                None
            };
            if let Some(n) = opener {
                if let Some(open) = statement_set {
                    return Err(syntax(
                        Pos::of(t.span),
                        format!(
                            "a statement set is already open (line {}, column {}); close it with END; first",
                            open.line, open.column
                        ),
                    ));
                }
                statement_set = Some(Pos::of(t.span));
                blank(&mut out, off(t, false), off(toks[i + n - 1], true));
                i += n;
                statement_start = true;
                continue;
            }
            if statement_set.is_some() {
                if is_kw(t, Keyword::END) {
                    blank(&mut out, off(t, false), off(t, true));
                    statement_set = None;
                    i += 1;
                    continue;
                }
                if !is_kw(t, Keyword::INSERT) {
                    return Err(syntax(
                        Pos::of(t.span),
                        "only INSERT INTO statements go in a statement set; close it with END; before other statements",
                    ));
                }
            }
        }
        if t.token == Token::SemiColon {
            statement_start = true;
        }
        // Remember the table a CREATE [TEMPORARY] TABLE names.
        if is_kw(t, Keyword::CREATE) {
            let mut j = i + 1;
            if toks.get(j).is_some_and(|t| is_kw(t, Keyword::TEMPORARY)) {
                j += 1;
            }
            if toks.get(j).is_some_and(|t| is_kw(t, Keyword::TABLE)) {
                let mut k = j + 1;
                if toks.get(k).is_some_and(|t| is_kw(t, Keyword::IF)) {
                    k += 3;
                }
                if let Some(Token::Word(w)) = toks.get(k).map(|t| &t.token) {
                    current_table = w.value.clone();
                }
            }
        }
        if let Token::Word(w) = &t.token {
            // TUMBLE(TABLE t, ...) → TUMBLE(      t, ...)
            if w.keyword == Keyword::TABLE
                && i >= 2
                && toks[i - 1].token == Token::LParen
                && matches!(&toks[i - 2].token, Token::Word(f) if WINDOW_TVFS.contains(&f.value.to_uppercase().as_str()))
            {
                blank(&mut out, off(t, false), off(t, true));
            }
            // , WATERMARK FOR col AS expr
            if w.value.eq_ignore_ascii_case("WATERMARK")
                && toks.get(i + 1).is_some_and(|t| is_kw(t, Keyword::FOR))
            {
                let pos = Pos::of(t.span);
                let Some(Token::Word(col)) = toks.get(i + 2).map(|t| &t.token) else {
                    return Err(syntax(pos, "expected a column name after WATERMARK FOR"));
                };
                let column_pos = Pos::of(toks[i + 2].span);
                if !toks.get(i + 3).is_some_and(|t| is_kw(t, Keyword::AS)) {
                    return Err(syntax(
                        pos,
                        format!(
                            "expected AS after WATERMARK FOR {}: write WATERMARK FOR {} AS {} - INTERVAL '5' SECOND",
                            col.value, col.value, col.value
                        ),
                    ));
                }
                // The expression runs to the ',' or ')' that closes the column list.
                let first = i + 4;
                let mut depth = 0i32;
                let mut end = first;
                while end < toks.len() {
                    match toks[end].token {
                        Token::LParen => depth += 1,
                        Token::RParen if depth == 0 => break,
                        Token::RParen => depth -= 1,
                        Token::Comma if depth == 0 => break,
                        Token::SemiColon | Token::EOF => break,
                        _ => {}
                    }
                    end += 1;
                }
                if end == first || end >= toks.len() || toks[end].token == Token::SemiColon {
                    return Err(syntax(
                        pos,
                        "the WATERMARK clause is not closed; it belongs inside the column list of CREATE TABLE (...)",
                    ));
                }
                let (from, to) = (off(toks[first], false), off(toks[end - 1], true));
                // Parse the expression in a copy where everything else is blank.
                let mut only = script.as_bytes().to_vec();
                blank(&mut only, 0, from);
                blank(&mut only, to, script.len());
                let only = String::from_utf8(only).unwrap_or_default();
                let expr = sqlparser::parser::Parser::new(&GenericDialect {})
                    .try_with_sql(&only)
                    .and_then(|mut p| p.parse_expr())
                    .map_err(|e| syntax(pos, format!("in the WATERMARK expression: {e}")))?;
                watermarks.push(WatermarkClause {
                    table: current_table.clone(),
                    column: col.value.clone(),
                    column_pos,
                    expr,
                });
                // Blank the clause with the comma before it (or after it, if it comes first).
                let (bf, bt) = if i > 0 && toks[i - 1].token == Token::Comma {
                    (off(toks[i - 1], false), to)
                } else if toks[end].token == Token::Comma {
                    (off(t, false), off(toks[end], true))
                } else {
                    (off(t, false), to)
                };
                blank(&mut out, bf, bt);
                i = end;
                continue;
            }
        }
        i += 1;
    }
    if let Some(open) = statement_set {
        return Err(syntax(
            open,
            "the statement set is not closed: end it with END;",
        ));
    }
    let text =
        String::from_utf8(out).map_err(|_| syntax(Pos::default(), "the script is not UTF-8"))?;
    Ok(Preparsed { text, watermarks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_clauses_are_lifted_out_keeping_positions() {
        let script = "CREATE TABLE t (\n  ts TIMESTAMP(3),\n  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND\n) WITH ('connector' = 'datagen');\nSELECT 'WATERMARK FOR x AS y' FROM t";
        let p = preparse(script).unwrap();
        assert_eq!(p.watermarks.len(), 1);
        assert_eq!(p.watermarks[0].table, "t");
        assert_eq!(p.watermarks[0].column, "ts");
        assert_eq!(
            p.watermarks[0].column_pos,
            Pos {
                line: 3,
                column: 17
            }
        );
        assert_eq!(p.watermarks[0].expr.to_string(), "ts - INTERVAL '5' SECOND");
        assert_eq!(p.text.lines().count(), script.lines().count());
        assert!(!p.text.contains("WATERMARK FOR ts"));
        assert!(
            p.text.contains("'WATERMARK FOR x AS y'"),
            "strings are left alone"
        );
        assert!(
            p.text.contains("ts TIMESTAMP(3) \n"),
            "the comma before the clause goes with it"
        );
    }

    #[test]
    fn the_table_argument_of_window_functions_is_blanked() {
        let p =
            preparse("SELECT * FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))")
                .unwrap();
        assert_eq!(
            p.text,
            "SELECT * FROM TABLE(TUMBLE(      t, DESCRIPTOR(ts), INTERVAL '1' SECOND))"
        );
    }

    #[test]
    fn statement_sets_are_blanked_keeping_their_inserts() {
        for (script, want) in [
            (
                "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT * FROM s;\nINSERT INTO b SELECT * FROM s;\nEND;",
                "                           \nINSERT INTO a SELECT * FROM s;\nINSERT INTO b SELECT * FROM s;\n   ;",
            ),
            (
                "begin statement set;\nINSERT INTO a SELECT * FROM s;\nend;\nSET 'pipeline.name' = 'x';",
                "                   ;\nINSERT INTO a SELECT * FROM s;\n   ;\nSET 'pipeline.name' = 'x';",
            ),
        ] {
            assert_eq!(preparse(script).unwrap().text, want);
        }
        // A column named `end` or a string is not the end of a set.
        let p = preparse(
            "EXECUTE STATEMENT SET BEGIN INSERT INTO a SELECT x AS \"end\", 'END' FROM s; END;",
        )
        .unwrap();
        assert!(p.text.contains("AS \"end\", 'END' FROM s;") && !p.text.contains("BEGIN"));
    }

    #[test]
    fn statement_sets_take_inserts_only_and_must_close() {
        for (script, want) in [
            (
                "EXECUTE STATEMENT SET BEGIN\nCREATE VIEW v AS SELECT 1;\nEND;",
                "line 2, column 1: only INSERT INTO statements go in a statement set",
            ),
            (
                "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT * FROM s;",
                "line 1, column 1: the statement set is not closed",
            ),
            (
                "BEGIN STATEMENT SET;\nBEGIN STATEMENT SET;\nEND;",
                "line 2, column 1: a statement set is already open (line 1, column 1)",
            ),
        ] {
            let err = preparse(script).unwrap_err().to_string();
            assert!(err.starts_with(want), "{script:?}: {err}");
        }
    }

    #[test]
    fn a_watermark_without_as_is_a_syntax_error_with_a_hint() {
        let err =
            preparse("CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts) WITH ()").unwrap_err();
        assert!(
            err.to_string().contains("line 1, column 34")
                && err.to_string().contains("expected AS"),
            "{err}"
        );
    }
}
