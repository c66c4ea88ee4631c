//! String functions, `LIKE` and regular expressions, as Flink 2.3 evaluates them (the odd
//! cases were checked against Flink: see `docs/sql.md`).

use crate::expr::EvalError;
use crate::types::Value;
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;

/// `s LIKE pattern [ESCAPE escape]`: `%` matches any text, `_` one character; the escape
/// character makes the next `%`, `_` or escape character literal.
///
/// # Errors
/// An escape that is not one character, or a pattern with the escape character followed by
/// anything else or at its end (Flink fails the same way).
pub fn like(s: &str, pattern: &str, escape: Option<&str>) -> Result<bool, EvalError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Any,
        One,
        Lit(char),
    }
    let escape = match escape {
        None => None,
        Some(e) => {
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => {
                    return Err(EvalError(format!(
                        "the ESCAPE of LIKE must be one character, found '{e}'"
                    )));
                }
            }
        }
    };
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            c if Some(c) == escape => match chars.next() {
                Some(n) if n == '%' || n == '_' || Some(n) == escape => Tok::Lit(n),
                _ => {
                    return Err(EvalError(format!(
                        "invalid escape sequence in LIKE pattern '{pattern}': the escape character must precede %, _ or itself"
                    )));
                }
            },
            '%' => Tok::Any,
            '_' => Tok::One,
            c => Tok::Lit(c),
        });
    }
    // Greedy matching with backtracking to the last `%`: O(len(s) * len(pattern)).
    let s: Vec<char> = s.chars().collect();
    let (mut i, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match toks.get(p) {
            Some(Tok::One) => (i, p) = (i + 1, p + 1),
            Some(Tok::Lit(c)) if *c == s[i] => (i, p) = (i + 1, p + 1),
            Some(Tok::Any) => {
                star = Some((p, i));
                p += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    star = Some((sp, si + 1));
                    (i, p) = (si + 1, sp + 1);
                }
                None => return Ok(false),
            },
        }
    }
    Ok(toks[p..].iter().all(|t| *t == Tok::Any))
}

/// `SUBSTRING(s FROM pos [FOR len])`: `pos` is 1-based, negative counts from the end, 0 is
/// read as 1 (Flink); a negative `len` gives NULL, a start outside the text the empty text.
pub fn substring(s: &str, pos: i64, len: Option<i64>) -> Value {
    if len.is_some_and(|l| l < 0) {
        return Value::Null;
    }
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i64;
    let start = match pos {
        p if p > 0 => p - 1,
        p if p < 0 => n + p,
        _ => 0,
    };
    if start < 0 || start >= n {
        return Value::String(String::new());
    }
    let end = len.map_or(n, |l| start.saturating_add(l).min(n));
    Value::String(chars[start as usize..end as usize].iter().collect())
}

/// Removes the characters of `chars` from one or both ends.
pub fn trim(s: &str, chars: &str, side: super::TrimSide) -> String {
    use super::TrimSide as T;
    let set = |c: char| chars.contains(c);
    match side {
        T::Both => s.trim_matches(set),
        T::Leading => s.trim_start_matches(set),
        T::Trailing => s.trim_end_matches(set),
    }
    .to_string()
}

/// `POSITION(needle IN s)`: the 1-based character position of the first occurrence, 0 if
/// none (1 for the empty needle).
pub fn position(needle: &str, s: &str) -> i32 {
    s.find(needle)
        .map_or(0, |byte| s[..byte].chars().count() as i32 + 1)
}

/// `LEFT(s, n)`: the first `n` characters (empty for `n <= 0`).
pub fn left(s: &str, n: i64) -> String {
    s.chars().take(n.max(0) as usize).collect()
}

/// `RIGHT(s, n)`: the last `n` characters (empty for `n <= 0`).
pub fn right(s: &str, n: i64) -> String {
    let count = s.chars().count();
    s.chars()
        .skip(count.saturating_sub(n.max(0) as usize))
        .collect()
}

/// `LPAD`/`RPAD(s, len, pad)`: `s` cut or padded with `pad` repeated to `len` characters;
/// NULL for a negative `len` or an empty `pad` (Flink).
pub fn pad(s: &str, len: i64, pad: &str, left: bool) -> Value {
    if len < 0 || pad.is_empty() {
        return Value::Null;
    }
    let len = len as usize;
    let chars: Vec<char> = s.chars().collect();
    if chars.len() >= len {
        return Value::String(chars[..len].iter().collect());
    }
    let fill: String = pad.chars().cycle().take(len - chars.len()).collect();
    Value::String(if left { fill + s } else { format!("{s}{fill}") })
}

/// `INITCAP(s)`: as Flink, a word is a run of ASCII letters and digits; its first character
/// is upper-cased and the others lower-cased; every other character (also non-ASCII letters)
/// is kept as it is and starts a new word.
pub fn initcap(s: &str) -> String {
    let mut start = true;
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                let out = if start {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                };
                start = false;
                out
            } else {
                start = true;
                c
            }
        })
        .collect()
}

thread_local! {
    static REGEXES: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// Runs `f` with `pattern` compiled, once per thread (patterns are nearly always constants);
/// `None` if it does not compile. The compiled expression is used in place: a clone of a
/// `Regex` would search with a new scratch cache, allocated on every call.
fn with_regex<T>(pattern: &str, f: impl FnOnce(&Regex) -> T) -> Option<T> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if !cache.contains_key(pattern) {
            if cache.len() >= 256 {
                cache.clear();
            }
            cache.insert(pattern.to_string(), Regex::new(pattern).ok());
        }
        cache.get(pattern).and_then(Option::as_ref).map(f)
    })
}

/// `REGEXP_REPLACE(s, regex, replacement)`: every match replaced by the replacement taken
/// literally (Flink quotes it: `$1` is not a group reference); NULL for a bad regex.
pub fn regexp_replace(s: &str, pattern: &str, replacement: &str) -> Value {
    with_regex(pattern, |r| {
        Value::String(r.replace_all(s, regex::NoExpand(replacement)).into_owned())
    })
    .unwrap_or(Value::Null)
}

/// `REGEXP_EXTRACT(s, regex, group)`: the group of the first match; NULL without a match,
/// for a group that did not take part or does not exist, or for a bad regex.
pub fn regexp_extract(s: &str, pattern: &str, group: i64) -> Value {
    let Ok(group) = usize::try_from(group) else {
        return Value::Null;
    };
    with_regex(pattern, |r| {
        r.captures(s)
            .and_then(|c| c.get(group))
            .map_or(Value::Null, |m| Value::String(m.as_str().to_string()))
    })
    .unwrap_or(Value::Null)
}

/// `SPLIT_INDEX(s, separator, index)`: the 0-based `index`th part of `s` split at every
/// `separator` (empty parts kept); an empty separator splits at whitespace (Flink, from
/// commons-lang); NULL when there is no such part.
pub fn split_index(s: &str, sep: &str, index: i64) -> Value {
    let Ok(index) = usize::try_from(index) else {
        return Value::Null;
    };
    if s.is_empty() {
        return Value::Null;
    }
    let part = if sep.is_empty() {
        s.split(char::is_whitespace).nth(index)
    } else {
        s.split(sep).nth(index)
    };
    part.map_or(Value::Null, |p| Value::String(p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Value {
        Value::String(s.into())
    }

    #[test]
    fn like_matches_percent_underscore_and_escapes() {
        let m = |s, p| like(s, p, None).unwrap();
        assert!(m("Hello World", "H%"));
        assert!(m("Hello World", "_ello%"));
        assert!(m("", "%"));
        assert!(!m("", "_"));
        assert!(m("abcbc", "a%bc"));
        assert!(!m("abcb", "a%bc"));
        assert!(m("a%b", "a%%b"));
        // No default escape: a backslash is a literal (Flink 2.3).
        assert!(!m("foo%bar", "foo\\%bar"));
        assert!(m("foo\\%bar", "foo\\%bar"));
        assert!(like("foo%bar", "foo!%%", Some("!")).unwrap());
        assert!(!like("foox", "foo!%", Some("!")).unwrap());
        assert!(like("a!b", "a!!b", Some("!")).unwrap());
        assert!(like("x", "!x", Some("!")).is_err());
        assert!(like("x", "x!", Some("!")).is_err());
        assert!(like("x", "x", Some("ab")).is_err());
    }

    #[test]
    fn substring_follows_flink_at_the_edges() {
        let f = |p, l| substring("Hello World", p, l);
        assert_eq!(f(2, Some(3)), st("ell"));
        assert_eq!(f(-3, None), st("rld"));
        assert_eq!(f(0, Some(2)), st("He"));
        assert_eq!(f(2, Some(-1)), Value::Null);
        assert_eq!(f(-20, Some(3)), st(""));
        assert_eq!(f(20, None), st(""));
        assert_eq!(f(7, Some(100)), st("World"));
    }

    #[test]
    fn trims_pads_and_slices() {
        use super::super::TrimSide as T;
        assert_eq!(trim(" ab c ", " ", T::Both), "ab c");
        assert_eq!(trim(" ab c ", " ", T::Leading), "ab c ");
        assert_eq!(trim(" ab c ", " ", T::Trailing), " ab c");
        assert_eq!(trim("xxaxx", "x", T::Leading), "axx");
        assert_eq!(position("o", "Hello World"), 5);
        assert_eq!(position("", "abc"), 1);
        assert_eq!(position("z", "abc"), 0);
        assert_eq!(left("Hello", 3), "Hel");
        assert_eq!(left("Hello", -1), "");
        assert_eq!(right("Hello", 3), "llo");
        assert_eq!(right("Hello", 9), "Hello");
        assert_eq!(pad("Hello World", 8, "ab", true), st("Hello Wo"));
        assert_eq!(pad(" ab c ", 8, "ab", true), st("ab ab c "));
        assert_eq!(pad(" ab c ", 8, "ab", false), st(" ab c ab"));
        assert_eq!(pad("x", 8, "", true), Value::Null);
        assert_eq!(pad("x", -1, "a", false), Value::Null);
    }

    #[test]
    fn initcap_words_are_ascii_letters_and_digits() {
        assert_eq!(
            initcap("hello wORLD foo-bar x1y 1ab"),
            "Hello World Foo-Bar X1y 1ab"
        );
        assert_eq!(initcap("foo%bar_x"), "Foo%Bar_X");
        assert_eq!(initcap("ÉCOLE élan"), "ÉCole éLan");
    }

    #[test]
    fn regular_expressions_and_splits() {
        assert_eq!(regexp_replace("Hello", "(l+)", "[$1]"), st("He[$1]o"));
        assert_eq!(regexp_replace("Hello", "(", "x"), Value::Null);
        assert_eq!(regexp_extract("foo123bar", "([a-z]+)(\\d+)", 2), st("123"));
        assert_eq!(regexp_extract("Hello World", "o.", 0), st("o "));
        assert_eq!(regexp_extract("ab", "a(x)?b", 1), Value::Null);
        assert_eq!(regexp_extract("ab", "a(x)?b", 3), Value::Null);
        assert_eq!(regexp_extract("ab", "z", 0), Value::Null);
        assert_eq!(split_index("a,b,c", ",", 1), st("b"));
        assert_eq!(split_index("a,b,c", ",", 5), Value::Null);
        assert_eq!(split_index("a,b,c", ",", -1), Value::Null);
        assert_eq!(split_index("Hello World", "", 0), st("Hello"));
        assert_eq!(split_index(" ab c ", "", 0), st(""));
        assert_eq!(split_index("a,,b", ",", 1), st(""));
    }
}
