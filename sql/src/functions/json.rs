//! `JSON_VALUE(json, path)`: the scalar at a simple JSON path (`$`, `.key`, `['key']`,
//! `[index]`, optionally after `lax`/`strict`), as Flink prints it: strings unquoted,
//! `true`/`false`, numbers as Java's `BigDecimal` writes the number's text (`2.50` stays
//! `2.50`, `1e3` is `1E+3`). NULL for JSON null, objects, arrays, a missing path, text that
//! is not JSON, and a path Fjord does not support (wildcards, filters).

enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix("lax ")
        .or_else(|| path.strip_prefix("strict "))
        .unwrap_or(path)
        .trim_start();
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() || key == "*" {
                return None;
            }
            steps.push(Step::Key(key.to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = r[..end].trim();
            let quoted = inner
                .strip_prefix('\'')
                .and_then(|k| k.strip_suffix('\''))
                .or_else(|| inner.strip_prefix('"').and_then(|k| k.strip_suffix('"')));
            steps.push(match quoted {
                Some(k) => Step::Key(k.to_string()),
                None => Step::Index(inner.parse().ok()?),
            });
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// A cursor over JSON text that is known to be valid.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn peek(&self) -> u8 {
        self.s.get(self.i).copied().unwrap_or(0)
    }

    /// Skips a string (at its opening quote) and returns its raw text with the quotes.
    fn string(&mut self) -> &str {
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            self.i += if self.s[self.i] == b'\\' { 2 } else { 1 };
        }
        self.i += 1;
        std::str::from_utf8(&self.s[start..self.i.min(self.s.len())]).unwrap_or("\"\"")
    }

    fn skip_value(&mut self) {
        self.ws();
        match self.peek() {
            b'"' => {
                self.string();
            }
            b'{' | b'[' => {
                let mut depth = 0;
                loop {
                    match self.peek() {
                        b'"' => {
                            self.string();
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        0 => return,
                        _ => {}
                    }
                    self.i += 1;
                    if depth == 0 {
                        return;
                    }
                }
            }
            _ => {
                while !matches!(self.peek(), b',' | b'}' | b']' | 0) {
                    self.i += 1;
                }
            }
        }
    }

    /// Moves into the object member `key`; false if there is none.
    fn member(&mut self, key: &str) -> bool {
        self.ws();
        if self.peek() != b'{' {
            return false;
        }
        self.i += 1;
        loop {
            self.ws();
            if self.peek() != b'"' {
                return false;
            }
            let name: String = serde_json::from_str(self.string()).unwrap_or_default();
            self.ws();
            self.i += 1; // ':'
            self.ws();
            if name == key {
                return true;
            }
            self.skip_value();
            self.ws();
            if self.peek() != b',' {
                return false;
            }
            self.i += 1;
        }
    }

    /// Moves into the array element `index`; false if there is none.
    fn element(&mut self, index: usize) -> bool {
        self.ws();
        if self.peek() != b'[' {
            return false;
        }
        self.i += 1;
        self.ws();
        if self.peek() == b']' {
            return false;
        }
        for _ in 0..index {
            self.skip_value();
            self.ws();
            if self.peek() != b',' {
                return false;
            }
            self.i += 1;
        }
        self.ws();
        true
    }
}

/// The text `JSON_VALUE(json, path)` returns, `None` for NULL.
pub fn json_value(json: &str, path: &str) -> Option<String> {
    serde_json::from_str::<serde::de::IgnoredAny>(json).ok()?;
    let steps = parse_path(path)?;
    let mut c = Cursor {
        s: json.as_bytes(),
        i: 0,
    };
    for step in &steps {
        let found = match step {
            Step::Key(k) => c.member(k),
            Step::Index(i) => c.element(*i),
        };
        if !found {
            return None;
        }
    }
    c.ws();
    match c.peek() {
        b'"' => serde_json::from_str(c.string()).ok(),
        b't' => Some("true".into()),
        b'f' => Some("false".into()),
        b'-' | b'0'..=b'9' => {
            let start = c.i;
            c.skip_value();
            Some(big_decimal_text(json[start..c.i].trim()))
        }
        _ => None,
    }
}

/// A JSON number's text as Java's `new BigDecimal(text).toString()` writes it.
fn big_decimal_text(number: &str) -> String {
    let (negative, rest) = match number.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, number),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let digits = match digits.trim_start_matches('0') {
        "" => "0",
        d => d,
    };
    let scale = frac.len() as i64 - exp;
    let sign = if negative && digits != "0" { "-" } else { "" };
    let len = digits.len() as i64;
    let adjusted = -scale + (len - 1);
    if scale == 0 {
        format!("{sign}{digits}")
    } else if scale > 0 && adjusted >= -6 {
        if len > scale {
            let (a, b) = digits.split_at((len - scale) as usize);
            format!("{sign}{a}.{b}")
        } else {
            let zeros = "0".repeat((scale - len) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let plus = if adjusted > 0 { "+" } else { "" };
        format!("{sign}{first}{point}E{plus}{adjusted}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_at_simple_paths() {
        let doc = r#"{"a":3,"b":[1,"x",{"c":2.50}],"s":"q\"t","o":{"z":true},"nul":null}"#;
        let v = |p| json_value(doc, p);
        assert_eq!(v("$.a").as_deref(), Some("3"));
        assert_eq!(v("$.b[1]").as_deref(), Some("x"));
        assert_eq!(v("$.b[2].c").as_deref(), Some("2.50"));
        assert_eq!(v("$.s").as_deref(), Some("q\"t"));
        assert_eq!(v("$.o.z").as_deref(), Some("true"));
        assert_eq!(v("lax $.a").as_deref(), Some("3"));
        assert_eq!(v("$['a']").as_deref(), Some("3"));
        for missing in ["$.o", "$.b", "$.nul", "$.zz", "$.a.b", "$.b[9]", "$.*", "a"] {
            assert_eq!(v(missing), None, "{missing}");
        }
        assert_eq!(json_value("[1,[2,3]]", "$[1][0]").as_deref(), Some("2"));
        assert_eq!(json_value("not json", "$.a"), None);
    }

    #[test]
    fn numbers_print_as_java_big_decimals() {
        for (text, java) in [
            ("3", "3"),
            ("2.50", "2.50"),
            ("0.50", "0.50"),
            ("-0", "0"),
            ("1e3", "1E+3"),
            ("1.0E10", "1.0E+10"),
            ("1e-7", "1E-7"),
            ("0.000001", "0.000001"),
            ("-12.5e1", "-125"),
            ("12345678901234567890", "12345678901234567890"),
        ] {
            assert_eq!(big_decimal_text(text), java, "{text}");
        }
    }
}
