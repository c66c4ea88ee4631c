//! Flink's `CREATE [TEMPORARY [SYSTEM]] FUNCTION [IF NOT EXISTS] name AS 'identifier'
//! [LANGUAGE JAVA|SCALA|PYTHON|RUST]` in Fjord: Flink loads the class `identifier` names; a
//! Fjord worker cannot load code at run time, so the statement gives a function registered
//! in the worker binary another name for this script (`AS 'mask_email'` names the
//! registered function). Anything else — an unregistered name, a Java class, `LANGUAGE
//! JAVA/SCALA/PYTHON`, `USING JAR` — is refused with what to do instead. sqlparser has no
//! grammar for Flink's form, so the statements are read from the token stream and blanked
//! out (positions in later errors stay where they were).

use super::registry;
use crate::error::{ErrorKind, Pos, Result, SqlError};
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

fn word(t: Option<&&TokenWithSpan>, w: &str) -> bool {
    matches!(t.map(|t| &t.token), Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

fn offset(text: &str, line: u64, column: u64) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    text[start..]
        .char_indices()
        .nth((column as usize).saturating_sub(1))
        .map_or(text.len(), |(i, _)| start + i)
}

fn refuse(pos: Pos, kind: ErrorKind, message: impl Into<String>) -> SqlError {
    SqlError::at(kind, pos, message)
}

/// Finds the `CREATE FUNCTION` statements of a (pre-parsed) script, registers their aliases
/// in the planning context and blanks them out of `text`.
///
/// # Errors
/// A statement of another form than the one above, a name that is not registered, or an
/// alias used twice, with its line and column.
pub(crate) fn lift(text: &mut String) -> Result<()> {
    let tokens = match Tokenizer::new(&GenericDialect {}, text).tokenize_with_location() {
        Ok(t) => t,
        // The pre-parse tokenized the same text already; leave errors to it.
        Err(_) => return Ok(()),
    };
    let toks: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut blanks = Vec::new();
    let mut start = true;
    let mut i = 0;
    while i < toks.len() {
        let at_start = start;
        start = matches!(toks[i].token, Token::SemiColon);
        if !(at_start && word(toks.get(i), "CREATE")) {
            i += 1;
            continue;
        }
        let first = i;
        let mut j = i + 1;
        if word(toks.get(j), "TEMPORARY") {
            j += 1;
            if word(toks.get(j), "SYSTEM") {
                j += 1;
            }
        }
        if !word(toks.get(j), "FUNCTION") {
            i += 1;
            continue;
        }
        let pos = Pos::of(toks[first].span);
        j += 1;
        let if_not_exists = word(toks.get(j), "IF")
            && word(toks.get(j + 1), "NOT")
            && word(toks.get(j + 2), "EXISTS");
        if if_not_exists {
            j += 3;
        }
        let usage = "write CREATE [TEMPORARY] FUNCTION name AS 'registered_name', where registered_name is a function registered in the worker binary's FunctionRegistry (docs/sql.md, \"User-defined functions\")";
        let (alias, alias_pos) = match toks.get(j).map(|t| (&t.token, t.span)) {
            Some((Token::Word(w), span)) => (w.value.clone(), Pos::of(span)),
            _ => return Err(refuse(pos, ErrorKind::Syntax, usage)),
        };
        j += 1;
        if !word(toks.get(j), "AS") {
            return Err(refuse(
                toks.get(j).map_or(pos, |t| Pos::of(t.span)),
                ErrorKind::Unsupported,
                format!("{usage} (Fjord has no SQL-defined function bodies)"),
            ));
        }
        j += 1;
        let (target, target_pos) = match toks.get(j).map(|t| (&t.token, t.span)) {
            Some((Token::SingleQuotedString(s), span)) => (s.clone(), Pos::of(span)),
            _ => return Err(refuse(pos, ErrorKind::Syntax, usage)),
        };
        j += 1;
        if word(toks.get(j), "LANGUAGE") {
            let lang_pos = toks.get(j + 1).map_or(pos, |t| Pos::of(t.span));
            if !word(toks.get(j + 1), "RUST") {
                return Err(refuse(
                    lang_pos,
                    ErrorKind::Unsupported,
                    "Fjord runs user-defined functions written in Rust and compiled into the worker binary, not Java, Scala or Python classes; register the function in your worker binary's FunctionRegistry and write LANGUAGE RUST or leave LANGUAGE out",
                ));
            }
            j += 2;
        }
        if !matches!(
            toks.get(j).map(|t| &t.token),
            Some(Token::SemiColon | Token::EOF) | None
        ) {
            return Err(refuse(
                toks.get(j).map_or(pos, |t| Pos::of(t.span)),
                ErrorKind::Unsupported,
                format!(
                    "{usage}; USING JAR and other clauses are not supported (Fjord does not load code at run time)"
                ),
            ));
        }
        if target.contains('.') && !registry::is_registered(&target) {
            return Err(refuse(
                target_pos,
                ErrorKind::UnknownFunction,
                format!(
                    "'{target}' looks like a Java class; Fjord cannot load classes. Write the function in Rust, register it in your worker binary's FunctionRegistry, and {usage}"
                ),
            ));
        }
        if !registry::is_registered(&target) {
            let known = registry::known_names();
            return Err(refuse(
                target_pos,
                ErrorKind::UnknownFunction,
                format!(
                    "no function '{target}' is registered in this worker binary (registered: {}); register it in the binary's FunctionRegistry and run the script with that binary, then {usage}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
        let taken = registry::builtin_names().any(|b| b.eq_ignore_ascii_case(&alias))
            || (registry::lookup(&alias).is_some() && !alias.eq_ignore_ascii_case(&target));
        if taken && !if_not_exists {
            return Err(refuse(
                alias_pos,
                ErrorKind::InvalidOption,
                format!("a function named '{alias}' exists already; choose another name"),
            ));
        }
        if !taken && !alias.eq_ignore_ascii_case(&target) && !registry::add_alias(&alias, &target) {
            return Err(refuse(
                alias_pos,
                ErrorKind::InvalidOption,
                format!("a function named '{alias}' exists already; choose another name"),
            ));
        }
        let end = match toks.get(j) {
            Some(t) if matches!(t.token, Token::SemiColon) => {
                offset(text, t.span.end.line, t.span.end.column)
            }
            _ => text.len(),
        };
        blanks.push((
            offset(
                text,
                toks[first].span.start.line,
                toks[first].span.start.column,
            ),
            end,
        ));
        start = true;
        i = j + 1;
    }
    let mut bytes = std::mem::take(text).into_bytes();
    for (from, to) in blanks {
        for b in &mut bytes[from..to] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }
    *text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(())
}
