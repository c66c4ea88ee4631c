//! The `sasl.jaas.config` property as Kafka's `JaasConfig` reads it: exactly one login module,
//! `<LoginModuleClass> <flag> [name=value ...];`, values as words or quoted strings with Java's
//! escapes, `//` and `/* */` comments allowed.
//!
//! Errors never quote option values (they hold passwords): they name the option or the
//! position instead.

use std::collections::BTreeMap;

/// One login module of a JAAS configuration.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct LoginModule {
    /// The class name, e.g. `org.apache.kafka.common.security.plain.PlainLoginModule`.
    pub class: String,
    /// The options, e.g. `username` and `password`.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for LoginModule {
    /// Option names only: their values may be secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginModule")
            .field("class", &self.class)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A token of the JAAS syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// An unquoted word.
    Word(String),
    /// A quoted string, escapes resolved.
    Quoted(String),
    Equals,
    Semicolon,
}

/// A token and the character position it starts at.
type Spanned = (usize, Token);

/// Parses `text` into its one login module. The error says what is wrong without quoting any
/// option value.
pub(crate) fn parse(text: &str) -> Result<LoginModule, String> {
    let tokens = tokenize(text)?;
    let mut modules = Vec::new();
    let mut rest = &tokens[..];
    while !rest.is_empty() {
        let (module, tail) = module(rest)?;
        modules.push(module);
        rest = tail;
    }
    match modules.len() {
        1 => Ok(modules.pop().expect("one")),
        0 => Err(
            "it holds no login module; write `<LoginModule> required username=\"...\" \
                  password=\"...\";`"
                .to_string(),
        ),
        n => Err(format!(
            "it holds {n} login modules where Kafka takes exactly one"
        )),
    }
}

/// One `<class> <flag> options... ;` from the start of `tokens`; returns the rest.
fn module(tokens: &[Spanned]) -> Result<(LoginModule, &[Spanned]), String> {
    let mut it = tokens.iter().enumerate();
    let class = match it.next() {
        Some((_, (_, Token::Word(w)))) => w.clone(),
        Some((_, (at, _))) => {
            return Err(format!(
                "expected a login module class name at character {at}"
            ));
        }
        None => unreachable!("called with tokens"),
    };
    match it.next() {
        Some((_, (_, Token::Word(flag))))
            if ["required", "requisite", "sufficient", "optional"]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(flag)) => {}
        Some((_, (_, Token::Word(flag)))) => {
            return Err(format!(
                "`{flag}` after `{class}` is not a control flag; write `{class} required ...;`"
            ));
        }
        _ => {
            return Err(format!(
                "expected the control flag `required` after `{class}`"
            ));
        }
    }
    let mut options = BTreeMap::new();
    loop {
        match it.next() {
            Some((i, (_, Token::Semicolon))) => {
                return Ok((LoginModule { class, options }, &tokens[i + 1..]));
            }
            Some((_, (at, Token::Word(name)))) => {
                match it.next() {
                    Some((_, (_, Token::Equals))) => {}
                    _ => {
                        return Err(format!(
                            "expected `=` after the option name at character {at}; quote values \
                             that hold spaces or punctuation (name=\"value\")"
                        ));
                    }
                }
                match it.next() {
                    Some((_, (_, Token::Word(v) | Token::Quoted(v)))) => {
                        if options.insert(name.clone(), v.clone()).is_some() {
                            return Err(format!("option `{name}` is given twice"));
                        }
                    }
                    _ => return Err(format!("option `{name}` has no value")),
                }
            }
            Some((_, (at, _))) => {
                return Err(format!(
                    "expected an option name or `;` at character {at}; quote values that hold \
                     spaces or punctuation (name=\"value\")"
                ));
            }
            None => {
                return Err(format!("the login module `{class}` does not end with `;`"));
            }
        }
    }
}

/// Splits `text` into tokens with their character positions.
fn tokenize(text: &str) -> Result<Vec<Spanned>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let start = i;
                i += 2;
                loop {
                    if i + 1 >= chars.len() {
                        return Err(format!("the comment at character {start} is not closed"));
                    }
                    if chars[i] == '*' && chars[i + 1] == '/' {
                        i += 2;
                        break;
                    }
                    i += 1;
                }
            }
            '=' => {
                out.push((i, Token::Equals));
                i += 1;
            }
            ';' => {
                out.push((i, Token::Semicolon));
                i += 1;
            }
            '"' | '\'' => {
                let (value, next) = quoted(&chars, i)?;
                out.push((i, Token::Quoted(value)));
                i = next;
            }
            _ => {
                let start = i;
                while i < chars.len() && !is_delimiter(chars[i]) {
                    i += 1;
                }
                out.push((start, Token::Word(chars[start..i].iter().collect())));
            }
        }
    }
    Ok(out)
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, '=' | ';' | '"' | '\'')
}

/// The quoted string starting at `chars[start]` (its quote character), with Java's escapes
/// (`\"`, `\\`, `\n`, `\t`, `\r`, `\b`, `\f`, `\a`, `\v`, octal `\0`..`\377`; any other escaped
/// character stands for itself), and the index after its closing quote.
fn quoted(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut value = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(format!(
                "the quoted value starting at character {start} is not closed with {quote}"
            ));
        };
        i += 1;
        if c == quote {
            return Ok((value, i));
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            continue;
        };
        i += 1;
        match e {
            'n' => value.push('\n'),
            't' => value.push('\t'),
            'r' => value.push('\r'),
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'a' => value.push('\u{7}'),
            'v' => value.push('\u{b}'),
            '0'..='7' => {
                // Up to three octal digits (at most \377), as java.io.StreamTokenizer reads them.
                let mut n = e.to_digit(8).expect("octal");
                let max_digits = if e <= '3' { 2 } else { 1 };
                for _ in 0..max_digits {
                    match chars.get(i).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(n).expect("below 256"));
            }
            other => value.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(text: &str) -> BTreeMap<String, String> {
        parse(text).unwrap().options
    }

    #[test]
    fn reads_what_flink_users_write() {
        let m = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="alice-secret";"#,
        )
        .unwrap();
        assert_eq!(
            m.class,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(m.options["username"], "alice");
        assert_eq!(m.options["password"], "alice-secret");
        // Unquoted words, other flags, line breaks, comments, single quotes.
        let o = options(
            "org.apache.kafka.common.security.scram.ScramLoginModule REQUIRED\n  // who\n  \
             username=bob /* and how */ password='p=w;d \"x\"'\n;",
        );
        assert_eq!(o["username"], "bob");
        assert_eq!(o["password"], "p=w;d \"x\"");
    }

    #[test]
    fn resolves_javas_escapes() {
        let o = options(r#"M required a="q\"uo\\te" b="tab\there" c="\101\60x" d="\q";"#);
        assert_eq!(o["a"], "q\"uo\\te");
        assert_eq!(o["b"], "tab\there");
        assert_eq!(o["c"], "A0x");
        assert_eq!(o["d"], "q");
    }

    #[test]
    fn malformed_configurations_are_explained_without_their_values() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("").contains("no login module"));
        assert!(
            err("M required username=\"u\" password=\"s3cret\"").contains("does not end with `;`")
        );
        assert!(err("M username=\"u\";").contains("not a control flag"));
        assert!(err("M required password=\"s3cret;").contains("not closed"));
        let e = err("M required password=s3cret more;");
        assert!(
            e.contains("expected `=`") && !e.contains("s3cret") && !e.contains("more"),
            "{e}"
        );
        assert!(err("M required password=;").contains("`password` has no value"));
        assert!(err("M required a=1 a=2;").contains("twice"));
        assert!(err("M required a=1; N required b=2;").contains("2 login modules"));
        assert!(err("M required /* open").contains("comment"));
    }
}
