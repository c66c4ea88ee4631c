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

/// A computed column `name AS expr` found in a `CREATE TABLE` (Flink's virtual column,
/// computed from the physical and metadata columns when the table is read).
#[derive(Debug, Clone)]
pub struct ComputedClause {
    /// The table it belongs to (as written).
    pub table: String,
    /// The column name.
    pub column: String,
    /// Where the column name is.
    pub column_pos: Pos,
    /// The expression, parsed in place.
    pub expr: sqlparser::ast::Expr,
    /// How many columns left for sqlparser (physical and metadata) come before it, so it
    /// takes its declared place among them.
    pub after: usize,
}

/// The `METADATA [FROM 'key'] [VIRTUAL]` part of a column `name TYPE METADATA ...`; the
/// column itself (name and type) is left for sqlparser.
#[derive(Debug, Clone)]
pub struct MetadataClause {
    /// The table it belongs to (as written).
    pub table: String,
    /// The column name.
    pub column: String,
    /// The metadata key (`FROM 'key'`, else the column name).
    pub key: String,
    /// Where the key is (the `METADATA` keyword when there is no `FROM`).
    pub key_pos: Pos,
    /// `VIRTUAL`: read only, left out of INSERTs.
    pub is_virtual: bool,
}

/// A script after the pre-parse.
#[derive(Debug, Clone)]
pub struct Preparsed {
    /// The text to hand to sqlparser (same lines and columns as the script).
    pub text: String,
    /// The watermark clauses, in script order.
    pub watermarks: Vec<WatermarkClause>,
    /// The computed columns, in script order.
    pub computed: Vec<ComputedClause>,
    /// The metadata clauses of columns, in script order.
    pub metadata: Vec<MetadataClause>,
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

/// The script's tokens (no whitespace or comments) and its text being blanked.
struct Scan<'a> {
    script: &'a str,
    toks: Vec<&'a TokenWithSpan>,
    lines: Lines,
    out: Vec<u8>,
}

fn is_kw(t: &TokenWithSpan, k: Keyword) -> bool {
    matches!(&t.token, Token::Word(w) if w.keyword == k)
}

fn is_word(t: Option<&&TokenWithSpan>, word: &str) -> bool {
    matches!(t.map(|t| &t.token), Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

impl Scan<'_> {
    /// Byte offset of the start (or end) of token `i`.
    fn off(&self, i: usize, end: bool) -> usize {
        let t = self.toks[i];
        let loc = if end { t.span.end } else { t.span.start };
        self.lines.offset(self.script, loc.line, loc.column)
    }

    /// Blanks tokens `from..=to`.
    fn blank_tokens(&mut self, from: usize, to: usize) {
        let (a, b) = (self.off(from, false), self.off(to, true));
        blank(&mut self.out, a, b);
    }

    /// Parses tokens `from..to` as one expression, in a copy of the script where everything
    /// else is blank (so its spans point into the script).
    fn expr(&self, from: usize, to: usize, pos: Pos, what: &str) -> Result<sqlparser::ast::Expr> {
        let (a, b) = (self.off(from, false), self.off(to - 1, true));
        let mut only = self.script.as_bytes().to_vec();
        blank(&mut only, 0, a);
        blank(&mut only, b, self.script.len());
        let only = String::from_utf8(only).unwrap_or_default();
        let mut parser =
            crate::parse::parser(&only).map_err(|e| syntax(pos, format!("in {what}: {e}")))?;
        let expr = parser
            .parse_expr()
            .map_err(|e| syntax(pos, format!("in {what}: {e}")))?;
        let next = parser.peek_token();
        if next.token != Token::EOF {
            return Err(syntax(
                Pos::of(next.span),
                format!(
                    "in {what}: unexpected '{}' after the expression",
                    next.token
                ),
            ));
        }
        Ok(expr)
    }

    /// `WATERMARK FOR col AS expr` at token `i`, the clause ending before token `end`.
    fn watermark(&self, i: usize, end: usize, table: &str) -> Result<WatermarkClause> {
        let toks = &self.toks;
        let pos = Pos::of(toks[i].span);
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
        if end <= i + 4 {
            return Err(syntax(
                pos,
                "the WATERMARK clause has no expression: write WATERMARK FOR ts AS ts - INTERVAL '5' SECOND",
            ));
        }
        let expr = self.expr(i + 4, end, pos, "the WATERMARK expression")?;
        Ok(WatermarkClause {
            table: table.to_string(),
            column: col.value.clone(),
            column_pos,
            expr,
        })
    }

    /// The column list of a `CREATE TABLE` whose `(` is token `open`: lifts out watermark
    /// clauses, computed columns and the `METADATA ...` part of metadata columns, and blanks
    /// the commas that would be left dangling. Returns the index of the closing `)` (or of
    /// the token where the list breaks off, left for sqlparser to report).
    fn column_list(
        &mut self,
        open: usize,
        table: &str,
        lifted: &mut (
            Vec<WatermarkClause>,
            Vec<ComputedClause>,
            Vec<MetadataClause>,
        ),
    ) -> Result<usize> {
        // Entries as token ranges, split at the list's own commas (not those inside
        // parentheses or the angle brackets of `ROW<...>`, `MAP<...>`, `ARRAY<...>`).
        let mut entries = Vec::new();
        let (mut depth, mut start, mut k) = (0i32, open + 1, open + 1);
        let mut angle = 0i32;
        let close = loop {
            let Some(t) = self.toks.get(k) else {
                return Ok(k);
            };
            match t.token {
                Token::Lt
                    if ["ROW", "MAP", "ARRAY", "STRUCT"]
                        .iter()
                        .any(|w| is_word(self.toks.get(k.wrapping_sub(1)), w)) =>
                {
                    angle += 1
                }
                Token::Gt if angle > 0 => angle -= 1,
                Token::ShiftRight if angle > 0 => angle = (angle - 2).max(0),
                Token::LParen => depth += 1,
                Token::RParen if depth == 0 => {
                    entries.push((start, k));
                    break k;
                }
                Token::RParen => depth -= 1,
                Token::Comma if depth == 0 && angle == 0 => {
                    entries.push((start, k));
                    start = k + 1;
                }
                Token::SemiColon | Token::EOF => return Ok(k),
                _ => {}
            }
            k += 1;
        };
        let mut kept = vec![false; entries.len()];
        let mut columns = 0;
        for (n, &(s, e)) in entries.iter().enumerate() {
            if s == e {
                kept[n] = true;
                continue;
            }
            let first = self.toks[s];
            if is_word(Some(&first), "WATERMARK")
                && self.toks.get(s + 1).is_some_and(|t| is_kw(t, Keyword::FOR))
            {
                lifted.0.push(self.watermark(s, e, table)?);
                self.blank_tokens(s, e - 1);
                continue;
            }
            let second = self.toks.get(s + 1);
            if let Token::Word(name) = &first.token
                && second.is_some_and(|t| is_kw(t, Keyword::AS))
            {
                let pos = Pos::of(first.span);
                // A trailing COMMENT 'text' documents the column.
                let mut to = e;
                if to >= s + 4
                    && is_word(self.toks.get(to - 2), "COMMENT")
                    && matches!(self.toks[to - 1].token, Token::SingleQuotedString(_))
                {
                    to -= 2;
                }
                if to <= s + 2 {
                    return Err(syntax(
                        pos,
                        format!(
                            "computed column '{}' needs an expression after AS, e.g. {} AS price * qty",
                            name.value, name.value
                        ),
                    ));
                }
                let expr =
                    self.expr(s + 2, to, pos, &format!("computed column '{}'", name.value))?;
                lifted.1.push(ComputedClause {
                    table: table.to_string(),
                    column: name.value.clone(),
                    column_pos: pos,
                    expr,
                    after: columns,
                });
                self.blank_tokens(s, e - 1);
                continue;
            }
            kept[n] = true;
            let constraint = matches!(&first.token, Token::Word(w) if w.quote_style.is_none() && matches!(w.keyword, Keyword::PRIMARY | Keyword::CONSTRAINT | Keyword::UNIQUE | Keyword::FOREIGN | Keyword::CHECK));
            if constraint {
                continue;
            }
            columns += 1;
            // name TYPE METADATA [FROM 'key'] [VIRTUAL]
            let mut d = 0i32;
            let mut meta = None;
            for m in s + 1..e {
                match self.toks[m].token {
                    Token::LParen => d += 1,
                    Token::RParen => d -= 1,
                    _ if d == 0 && m >= s + 2 && is_word(Some(&self.toks[m]), "METADATA") => {
                        meta = Some(m);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(m) = meta else { continue };
            let Token::Word(name) = &first.token else {
                continue;
            };
            let mut key = (name.value.clone(), Pos::of(self.toks[m].span));
            let mut at = m + 1;
            if at < e && is_kw(self.toks[at], Keyword::FROM) {
                match self.toks.get(at + 1).map(|t| &t.token) {
                    Some(Token::SingleQuotedString(k)) if at + 1 < e => {
                        key = (k.clone(), Pos::of(self.toks[at + 1].span));
                        at += 2;
                    }
                    _ => {
                        return Err(syntax(
                            Pos::of(self.toks[at].span),
                            format!(
                                "METADATA FROM takes a quoted key, e.g. {} TIMESTAMP(3) METADATA FROM 'timestamp'",
                                name.value
                            ),
                        ));
                    }
                }
            }
            let mut is_virtual = false;
            if at < e && is_word(Some(&self.toks[at]), "VIRTUAL") {
                is_virtual = true;
                at += 1;
            }
            if at < e {
                return Err(syntax(
                    Pos::of(self.toks[at].span),
                    format!(
                        "unexpected '{}' in metadata column '{}'; write {} <type> METADATA [FROM 'key'] [VIRTUAL]",
                        self.toks[at].token, name.value, name.value
                    ),
                ));
            }
            lifted.2.push(MetadataClause {
                table: table.to_string(),
                column: name.value.clone(),
                key: key.0,
                key_pos: key.1,
                is_virtual,
            });
            self.blank_tokens(m, e - 1);
        }
        // The comma before an entry stays when that entry and an earlier one stay.
        let mut any_kept = false;
        for (n, &(s, _)) in entries.iter().enumerate() {
            if n > 0 && !(kept[n] && any_kept) {
                self.blank_tokens(s - 1, s - 1);
            }
            any_kept |= kept[n];
        }
        Ok(close)
    }
}

/// Pre-parses a script (see the module comment).
///
/// # Errors
/// A tokenizer error (unterminated string, bad character) or a malformed watermark clause,
/// computed column or metadata column, with its position.
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
    let mut scan = Scan {
        script,
        toks: tokens
            .iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect(),
        lines: Lines::new(script),
        out: script.as_bytes().to_vec(),
    };
    let mut lifted = (Vec::new(), Vec::new(), Vec::new());
    let mut current_table = String::new();
    // Where the open statement set began, and whether the next token starts a statement.
    let mut statement_set: Option<Pos> = None;
    let mut statement_start = true;
    let mut i = 0;
    while i < scan.toks.len() {
        let toks = &scan.toks;
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
                scan.blank_tokens(i, i + n - 1);
                i += n;
                statement_start = true;
                continue;
            }
            if statement_set.is_some() {
                if is_kw(t, Keyword::END) {
                    scan.blank_tokens(i, i);
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
        // CREATE [TEMPORARY] TABLE [IF NOT EXISTS] name (columns...)
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
                // The last part of a dotted name.
                while let Some(Token::Word(w)) = toks.get(k).map(|t| &t.token) {
                    current_table = w.value.clone();
                    if toks.get(k + 1).is_some_and(|t| t.token == Token::Period) {
                        k += 2;
                    } else {
                        k += 1;
                        break;
                    }
                }
                if toks.get(k).is_some_and(|t| t.token == Token::LParen) {
                    let table = current_table.clone();
                    i = scan.column_list(k, &table, &mut lifted)?;
                    continue;
                }
            }
        }
        let toks = &scan.toks;
        if let Token::Word(w) = &t.token {
            // TUMBLE(TABLE t, ...) → TUMBLE(      t, ...)
            let tvf_table = w.keyword == Keyword::TABLE
                && i >= 2
                && toks[i - 1].token == Token::LParen
                && matches!(&toks[i - 2].token, Token::Word(f) if WINDOW_TVFS.contains(&f.value.to_uppercase().as_str()));
            let watermark = w.value.eq_ignore_ascii_case("WATERMARK")
                && toks.get(i + 1).is_some_and(|t| is_kw(t, Keyword::FOR));
            // SESSION(TABLE t PARTITION BY k, ...) → SESSION(      t ,            k, ...):
            // the partition keys become the second argument.
            let partition_by = tvf_table.then(|| {
                let mut k = i + 1;
                while matches!(toks.get(k).map(|t| &t.token), Some(Token::Word(_)))
                    && toks.get(k + 1).is_some_and(|t| t.token == Token::Period)
                {
                    k += 2;
                }
                (is_word(toks.get(k + 1), "PARTITION")
                    && toks.get(k + 2).is_some_and(|t| is_kw(t, Keyword::BY)))
                .then_some(k + 1)
            });
            if tvf_table {
                scan.blank_tokens(i, i);
            }
            if let Some(Some(p)) = partition_by {
                let at = scan.off(p, false);
                scan.blank_tokens(p, p + 1);
                scan.out[at] = b',';
            }
            // A WATERMARK clause outside a column list.
            if watermark {
                return Err(syntax(
                    Pos::of(t.span),
                    "the WATERMARK clause belongs inside the column list of CREATE TABLE (...)",
                ));
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
    let text = String::from_utf8(scan.out)
        .map_err(|_| syntax(Pos::default(), "the script is not UTF-8"))?;
    let (watermarks, computed, metadata) = lifted;
    Ok(Preparsed {
        text,
        watermarks,
        computed,
        metadata,
    })
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
    fn a_session_partition_by_becomes_the_second_argument() {
        let sql = "SELECT * FROM TABLE(SESSION(TABLE db.t PARTITION BY (a, b), DESCRIPTOR(ts), INTERVAL '1' SECOND))";
        let text = preparse(sql).unwrap().text;
        assert_eq!(
            text,
            "SELECT * FROM TABLE(SESSION(      db.t ,            (a, b), DESCRIPTOR(ts), INTERVAL '1' SECOND))"
        );
        assert_eq!(text.len(), sql.len());
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

    #[test]
    fn computed_and_metadata_columns_are_lifted_out_keeping_positions() {
        let script = "CREATE TABLE k (\n  ms_text AS CAST(s AS BIGINT) COMMENT 'ms',\n  s STRING,\n  ts AS CAST(s AS TIMESTAMP(3)),\n  kts TIMESTAMP(3) METADATA FROM 'timestamp' VIRTUAL,\n  `offset` BIGINT METADATA,\n  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND,\n  n INT\n) WITH ('connector' = 'kafka');";
        let p = preparse(script).unwrap();
        let computed: Vec<_> = p
            .computed
            .iter()
            .map(|c| {
                (
                    c.table.as_str(),
                    c.column.as_str(),
                    c.after,
                    c.expr.to_string(),
                )
            })
            .collect();
        assert_eq!(
            computed,
            [
                ("k", "ms_text", 0, "CAST(s AS BIGINT)".to_string()),
                ("k", "ts", 1, "CAST(s AS TIMESTAMP(3))".to_string())
            ]
        );
        assert_eq!(p.computed[1].column_pos, Pos { line: 4, column: 3 });
        let meta: Vec<_> = p
            .metadata
            .iter()
            .map(|m| (m.column.as_str(), m.key.as_str(), m.is_virtual, m.key_pos))
            .collect();
        assert_eq!(
            meta,
            [
                (
                    "kts",
                    "timestamp",
                    true,
                    Pos {
                        line: 5,
                        column: 34
                    }
                ),
                (
                    "offset",
                    "offset",
                    false,
                    Pos {
                        line: 6,
                        column: 19
                    }
                )
            ]
        );
        assert_eq!(p.watermarks.len(), 1);
        // What sqlparser reads: the physical and metadata columns with single commas.
        let words: Vec<&str> = p.text.split_whitespace().collect();
        assert_eq!(
            words.join(" "),
            "CREATE TABLE k ( s STRING , kts TIMESTAMP(3) , `offset` BIGINT , n INT ) WITH ('connector' = 'kafka');"
        );
        assert_eq!(p.text.lines().count(), script.lines().count());
        sqlparser::parser::Parser::parse_sql(&GenericDialect {}, &p.text).unwrap();
    }

    #[test]
    fn malformed_computed_and_metadata_columns_name_their_place() {
        for (script, want) in [
            (
                "CREATE TABLE t (a INT, b AS ) WITH ()",
                "line 1, column 24: computed column 'b' needs an expression",
            ),
            (
                "CREATE TABLE t (a INT, b AS a + 1 a) WITH ()",
                "line 1, column 35: in computed column 'b': unexpected 'a'",
            ),
            (
                "CREATE TABLE t (a INT METADATA FROM timestamp) WITH ()",
                "line 1, column 32: METADATA FROM takes a quoted key",
            ),
            (
                "CREATE TABLE t (a INT METADATA VIRTUAL NOT NULL) WITH ()",
                "line 1, column 40: unexpected 'NOT' in metadata column 'a'",
            ),
        ] {
            let err = preparse(script).unwrap_err().to_string();
            assert!(err.starts_with(want), "{script:?}: {err}");
        }
    }
}
