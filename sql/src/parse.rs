//! The sqlparser parser Fjord reads scripts with: `GenericDialect` over the script's own
//! tokens, with Flink's composite type syntax turned into the forms sqlparser knows.
//!
//! sqlparser's `GenericDialect` reads `ARRAY<t>` and `STRUCT<name type, ...>` but neither
//! Flink's `ROW<name type, ...>` nor `MAP<k, v>`. Rewriting the token stream (not the text)
//! keeps every token's line and column: `ROW <` becomes `STRUCT <`, and `MAP < k , v >`
//! becomes `STRUCT < fjord_map_key k , fjord_map_value v >`, which [`crate::bind`] reads back
//! as a MAP ([`MAP_KEY`], [`MAP_VALUE`]).

use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

/// The field name a rewritten `MAP<k, v>` gives its key type.
pub(crate) const MAP_KEY: &str = "fjord_map_key";
/// The field name a rewritten `MAP<k, v>` gives its value type.
pub(crate) const MAP_VALUE: &str = "fjord_map_value";

static DIALECT: GenericDialect = GenericDialect {};

/// A parser over `text`, with Flink's `ROW<...>` and `MAP<k, v>` types rewritten.
///
/// # Errors
/// The tokenizer's error (an unterminated string or comment).
pub(crate) fn parser(text: &str) -> Result<Parser<'static>, ParserError> {
    let tokens = Tokenizer::new(&DIALECT, text)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| ParserError::TokenizerError(e.to_string()))?;
    Ok(Parser::new(&DIALECT).with_tokens_with_locations(rewrite(tokens)))
}

/// Parses `text` as statements, as `Parser::parse_sql` does.
///
/// # Errors
/// sqlparser's error, with its position.
pub(crate) fn statements(text: &str) -> Result<Vec<sqlparser::ast::Statement>, ParserError> {
    parser(text)?.parse_statements()
}

fn word(value: &str, keyword: Keyword) -> Token {
    Token::Word(Word {
        value: value.into(),
        quote_style: None,
        keyword,
    })
}

/// The index of the next token after `i` that is not whitespace.
fn next_significant(tokens: &[TokenWithSpan], i: usize) -> Option<usize> {
    (i + 1..tokens.len()).find(|&j| !matches!(tokens[j].token, Token::Whitespace(_)))
}

fn rewrite(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut i = 0;
    while i < tokens.len() {
        let name = match &tokens[i].token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => {
                i += 1;
                continue;
            }
        };
        let Some(lt) = next_significant(&tokens, i).filter(|&j| tokens[j].token == Token::Lt)
        else {
            i += 1;
            continue;
        };
        match name.as_str() {
            "ROW" => tokens[i].token = word("STRUCT", Keyword::STRUCT),
            "MAP" => {
                let span = tokens[i].span;
                tokens[i].token = word("STRUCT", Keyword::STRUCT);
                let named = |n: &str| TokenWithSpan {
                    token: word(n, Keyword::NoKeyword),
                    span,
                };
                let space = || TokenWithSpan {
                    token: Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                    span,
                };
                // The comma between key and value: the first at angle depth 1 outside
                // parentheses (`MAP<DECIMAL(10, 2), ARRAY<INT>>`).
                let (mut angle, mut paren, mut comma) = (0i32, 0i32, None);
                for (j, t) in tokens.iter().enumerate().skip(lt) {
                    match t.token {
                        Token::Lt => angle += 1,
                        Token::Gt => angle -= 1,
                        Token::ShiftRight => angle -= 2,
                        Token::LParen => paren += 1,
                        Token::RParen => paren -= 1,
                        Token::Comma if angle == 1 && paren == 0 => {
                            comma = Some(j);
                            break;
                        }
                        _ => {}
                    }
                    if angle <= 0 {
                        break;
                    }
                }
                if let Some(c) = comma {
                    tokens.splice(c + 1..c + 1, [space(), named(MAP_VALUE), space()]);
                }
                tokens.splice(lt + 1..lt + 1, [space(), named(MAP_KEY), space()]);
            }
            _ => {}
        }
        i += 1;
    }
    rewrite_within(rewrite_system_time(tokens))
}

/// The variable a rewritten `PATTERN (...) WITHIN <interval>` defines as that interval:
/// `plan_match` reads `DEFINE fjord_within AS <interval>` back as the pattern's time bound.
pub(crate) const WITHIN_MARKER: &str = "fjord_within";

/// `PATTERN (...) WITHIN INTERVAL '5' SECOND DEFINE ...` to `PATTERN (...) DEFINE
/// fjord_within AS INTERVAL '5' SECOND, ...`: sqlparser's MATCH_RECOGNIZE has no WITHIN
/// clause, but it reads any expression in DEFINE. The moved tokens keep their positions.
fn rewrite_within(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is = |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    let mut i = 0;
    while i < tokens.len() {
        let Some(open) = Some(i)
            .filter(|&i| is(&tokens[i], Keyword::PATTERN))
            .and_then(|i| next_significant(&tokens, i))
            .filter(|&j| tokens[j].token == Token::LParen)
        else {
            i += 1;
            continue;
        };
        // The parenthesis closing the pattern.
        let mut depth = 0i32;
        let close = (open..tokens.len()).find(|&j| {
            match tokens[j].token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        let within = close
            .and_then(|c| next_significant(&tokens, c))
            .filter(|&w| is(&tokens[w], Keyword::WITHIN));
        let define =
            within.and_then(|w| (w + 1..tokens.len()).find(|&j| is(&tokens[j], Keyword::DEFINE)));
        let (Some(w), Some(d)) = (within, define) else {
            i += 1;
            continue;
        };
        let span = tokens[w].span;
        let interval: Vec<TokenWithSpan> = tokens.drain(w + 1..d).collect();
        let define_at = w; // DEFINE moved to where WITHIN was
        tokens.remove(w);
        let mut inserted = vec![
            TokenWithSpan {
                token: Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                span,
            },
            TokenWithSpan {
                token: word(WITHIN_MARKER, Keyword::NoKeyword),
                span,
            },
            TokenWithSpan {
                token: Token::Whitespace(sqlparser::tokenizer::Whitespace::Space),
                span,
            },
            TokenWithSpan {
                token: word("AS", Keyword::AS),
                span,
            },
        ];
        inserted.extend(interval);
        inserted.push(TokenWithSpan {
            token: Token::Comma,
            span,
        });
        tokens.splice(define_at + 1..define_at + 1, inserted);
        i = define_at + 1;
    }
    tokens
}

/// The first argument a rewritten `FOR SYSTEM_TIME AS OF col` gives its table:
/// `plan_join` reads `t(fjord_for_system_time_as_of, col)` back as the lookup join.
pub(crate) const SYSTEM_TIME_MARKER: &str = "fjord_for_system_time_as_of";

/// `t FOR SYSTEM_TIME AS OF a.b` to `t ( fjord_for_system_time_as_of , a.b )`: sqlparser's
/// `GenericDialect` reads no table versions, but it reads table arguments. Only a column
/// (`a.b`, `b`) follows `AS OF` (Flink's lookup joins name the probe side's processing-time
/// column); any other expression is left for sqlparser to refuse.
fn rewrite_system_time(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let is = |t: &TokenWithSpan, k: Keyword| matches!(&t.token, Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    let mut i = 0;
    while i < tokens.len() {
        if !is(&tokens[i], Keyword::FOR) {
            i += 1;
            continue;
        }
        let Some(st) =
            next_significant(&tokens, i).filter(|&j| is(&tokens[j], Keyword::SYSTEM_TIME))
        else {
            i += 1;
            continue;
        };
        let Some(as_) = next_significant(&tokens, st).filter(|&j| is(&tokens[j], Keyword::AS))
        else {
            i += 1;
            continue;
        };
        let Some(of) = next_significant(&tokens, as_).filter(|&j| is(&tokens[j], Keyword::OF))
        else {
            i += 1;
            continue;
        };
        // The column: Word (. Word)*.
        let Some(mut end) =
            next_significant(&tokens, of).filter(|&j| matches!(tokens[j].token, Token::Word(_)))
        else {
            i += 1;
            continue;
        };
        while end + 2 < tokens.len()
            && tokens[end + 1].token == Token::Period
            && matches!(tokens[end + 2].token, Token::Word(_))
        {
            end += 2;
        }
        let close = TokenWithSpan {
            token: Token::RParen,
            span: tokens[end].span,
        };
        tokens.insert(end + 1, close);
        tokens[i].token = Token::LParen;
        tokens[st].token = word(SYSTEM_TIME_MARKER, Keyword::NoKeyword);
        tokens[as_].token = Token::Comma;
        tokens[of].token = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
        i = end + 2;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column_type(ddl: &str) -> String {
        let stmts = statements(ddl).unwrap();
        let sqlparser::ast::Statement::CreateTable(t) = &stmts[0] else {
            panic!("a CREATE TABLE")
        };
        t.columns[0].data_type.to_string()
    }

    #[test]
    fn row_and_map_types_read_as_structs_and_keep_their_positions() {
        assert_eq!(
            column_type("CREATE TABLE t (r ROW<a INT, `b c` ARRAY<ROW<x STRING>>>)"),
            "STRUCT<a INT, `b c` ARRAY<STRUCT<x STRING>>>"
        );
        assert_eq!(
            column_type("CREATE TABLE t (m MAP<DECIMAL(10, 2), MAP<STRING, INT>>)"),
            "STRUCT<fjord_map_key DECIMAL(10,2), fjord_map_value STRUCT<fjord_map_key STRING, fjord_map_value INT>>"
        );
        // A column named `row` (quoted: ROW is reserved in Flink SQL) is not a type.
        assert!(statements("SELECT a FROM t WHERE `row` < 3").is_ok());
        let err = statements("CREATE TABLE t (r ROW<a INT,>)\n").unwrap_err();
        assert!(err.to_string().contains("Line: 1"), "{err}");
    }

    #[test]
    fn within_after_a_pattern_reads_as_a_definition() {
        let stmts = statements(
            "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts MEASURES A.x AS x \
             PATTERN (A (B C)+) WITHIN INTERVAL '5' SECOND DEFINE A AS A.x > 1)",
        )
        .unwrap();
        let text = stmts[0].to_string();
        assert!(
            text.contains(
                "PATTERN (A ( B C )+) DEFINE fjord_within AS INTERVAL '5' SECOND, A AS A.x > 1"
            ),
            "{text}"
        );
        // Without WITHIN nothing changes; a WITHIN elsewhere is left for sqlparser.
        let plain = "SELECT * FROM t MATCH_RECOGNIZE (ORDER BY ts MEASURES A.x AS x PATTERN (A) DEFINE A AS A.x > 1)";
        assert!(
            !statements(plain).unwrap()[0]
                .to_string()
                .contains(WITHIN_MARKER)
        );
    }

    #[test]
    fn for_system_time_as_of_a_column_reads_as_table_arguments() {
        let stmts =
            statements("SELECT * FROM o JOIN c FOR SYSTEM_TIME AS OF o.pt AS x ON o.k = x.id")
                .unwrap();
        let text = stmts[0].to_string();
        assert!(
            text.contains("JOIN c(fjord_for_system_time_as_of, o.pt) AS x ON"),
            "{text}"
        );
    }
}
