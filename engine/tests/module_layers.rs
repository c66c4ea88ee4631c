//! The engine's module layers (docs/architecture.md, "Module layers"): no top-level module of
//! `engine/src` refers to a module of a higher layer, and inside a layer the modules refer to
//! each other without a cycle.
//!
//! The references are read from the source text: every `crate::<module>` path (also
//! `$crate::` in macros), the modules named in a `use crate::{a, b::c}` group, and `super::`
//! paths that climb to the crate root, in non-test code. Test code (items and modules under
//! `#[cfg(test)]`, the files of `#[cfg(test)] mod x;` and `tests.rs` files) may reach anywhere;
//! comments (doc links included) and string literals are not code and are skipped. `lib.rs`,
//! the crate root, re-exports from every layer and is not checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One layer of the engine: a name for messages and its modules.
struct Layer {
    name: &'static str,
    modules: &'static [&'static str],
}

/// The layers from the foundation up: a module may refer to its own layer (without a cycle)
/// and to those below. Keep in step with "Module layers" in docs/architecture.md.
const LAYERS: &[Layer] = &[
    Layer {
        name: "foundation",
        modules: &[
            "error",
            "types",
            "printable",
            "metrics",
            "encoding",
            "time",
            "chain",
        ],
    },
    Layer {
        name: "keys, storage and TLS",
        modules: &["keygroup", "storage", "tls"],
    },
    Layer {
        name: "state",
        modules: &["state"],
    },
    Layer {
        name: "checkpoints",
        modules: &["checkpoint"],
    },
    Layer {
        name: "function context",
        modules: &["context", "functions", "timers"],
    },
    Layer {
        name: "operators",
        modules: &["operators"],
    },
    Layer {
        name: "connectors",
        modules: &["sources", "sinks"],
    },
    Layer {
        name: "data exchange",
        modules: &["exchange", "network"],
    },
    Layer {
        name: "tasks and the logical graph",
        modules: &["task", "graph"],
    },
    Layer {
        name: "runtime",
        modules: &["runtime", "cluster"],
    },
    Layer {
        name: "user API",
        modules: &["windows", "api", "joins", "job"],
    },
];

#[test]
fn engine_modules_respect_their_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_sources(&src, &src, &mut files);
    let report = check(&files, LAYERS);
    // A scanner that silently stopped finding references would pass everything.
    assert!(
        report.references.len() > 300,
        "only {} references between engine modules found: is the scanner broken?",
        report.references.len()
    );
    assert!(
        report.problems.is_empty(),
        "the engine's modules break their layers (docs/architecture.md, \"Module layers\"):\n{}",
        report.problems.join("\n")
    );
}

/// Every `.rs` file under `dir`, as (path relative to `root` with `/`, contents), sorted.
fn read_sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the root");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            out.push((rel, text));
        }
    }
}

/// A reference from non-test code of one top-level module to another.
#[derive(Debug, Clone)]
struct Reference {
    file: String,
    line: usize,
    from: String,
    to: String,
}

/// What [`check`] found: every reference between top-level modules, and what breaks the layers.
struct Report {
    references: Vec<Reference>,
    problems: Vec<String>,
}

/// Checks the sources of a crate (path relative to `src/`, text) against `layers`.
fn check(files: &[(String, String)], layers: &[Layer]) -> Report {
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(n, l)| l.modules.iter().map(move |m| (*m, n)))
        .collect();
    let modules: BTreeSet<&str> = layer_of.keys().copied().collect();
    let mut problems = Vec::new();

    // Files present, and which of them are test-only (`#[cfg(test)] mod x;`, `tests.rs`).
    let mut scanned = Vec::new();
    let mut test_dirs = Vec::new();
    let mut present = BTreeSet::new();
    for (file, text) in files {
        let path = module_path(file);
        let Some(top) = path.first() else { continue }; // lib.rs
        present.insert(top.clone());
        if file.ends_with("/tests.rs") || file == "tests.rs" {
            continue;
        }
        let found = scan(file, text, &modules);
        test_dirs.extend(found.test_children);
        scanned.push((file, top.clone(), found.references));
    }
    for top in &present {
        if !layer_of.contains_key(top.as_str()) {
            problems.push(format!(
                "module `{top}` is in no layer: add it to LAYERS in engine/tests/module_layers.rs \
                 and to \"Module layers\" in docs/architecture.md"
            ));
        }
    }
    for module in &modules {
        if !present.contains(*module) {
            problems.push(format!(
                "module `{module}` of LAYERS has no file in src/: remove it from LAYERS"
            ));
        }
    }

    let mut references = Vec::new();
    for (file, top, refs) in scanned {
        let test_only = test_dirs
            .iter()
            .any(|child| *file == format!("{child}.rs") || file.starts_with(&format!("{child}/")));
        if test_only {
            continue;
        }
        for (line, to) in refs {
            if to != top {
                references.push(Reference {
                    file: file.clone(),
                    line,
                    from: top.clone(),
                    to,
                });
            }
        }
    }

    // No reference up the layers.
    for r in &references {
        let (Some(&from), Some(&to)) = (layer_of.get(r.from.as_str()), layer_of.get(r.to.as_str()))
        else {
            continue;
        };
        if to > from {
            problems.push(format!(
                "src/{}:{}: `{}` (layer {} \"{}\") refers to `crate::{}` (layer {} \"{}\"), a \
                 higher layer: move what it uses down, or the reference up",
                r.file,
                r.line,
                r.from,
                from + 1,
                layers[from].name,
                r.to,
                to + 1,
                layers[to].name
            ));
        }
    }

    // No cycle inside a layer: peel off modules nobody left in the layer refers to; what
    // cannot be peeled lies on a cycle.
    for (n, layer) in layers.iter().enumerate() {
        let mut edges: BTreeMap<(&str, &str), &Reference> = BTreeMap::new();
        for r in &references {
            if layer_of.get(r.from.as_str()) == Some(&n) && layer_of.get(r.to.as_str()) == Some(&n)
            {
                edges.entry((r.from.as_str(), r.to.as_str())).or_insert(r);
            }
        }
        let mut left: BTreeSet<&str> = layer.modules.iter().copied().collect();
        loop {
            let free = left
                .iter()
                .copied()
                .find(|m| !edges.keys().any(|(a, b)| b == m && left.contains(a)));
            match free {
                Some(m) => {
                    left.remove(m);
                }
                None => break,
            }
        }
        if !left.is_empty() {
            let cycle: Vec<String> = edges
                .iter()
                .filter(|((a, b), _)| left.contains(a) && left.contains(b))
                .map(|((a, b), r)| format!("{a} -> {b} (src/{}:{})", r.file, r.line))
                .collect();
            problems.push(format!(
                "layer {} \"{}\": modules {:?} refer to each other in a cycle: {}",
                n + 1,
                layer.name,
                left,
                cycle.join(", ")
            ));
        }
    }

    Report {
        references,
        problems,
    }
}

/// The module path of a file under `src/`: `a/b.rs` and `a/b/mod.rs` are `a::b`, `lib.rs` is
/// the crate root (empty).
fn module_path(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// A token of Rust source, with comments, whitespace and literals left out.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier, keyword or number.
    Word(String),
    /// `::`
    PathSep,
    /// Any other punctuation, one character at a time.
    Punct(char),
}

/// Splits Rust source into tokens with their line numbers, dropping comments and string and
/// character literals (whose text is not code).
fn lex(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let newlines = |from: usize, to: usize| {
        c[from..to.min(c.len())]
            .iter()
            .filter(|&&x| x == '\n')
            .count()
    };
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch.is_whitespace() {
            if ch == '\n' {
                line += 1;
            }
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            // Block comments nest.
            let (start, mut depth) = (i, 0);
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            line += newlines(start, i);
        } else if let Some(end) = raw_string_end(&c, i) {
            line += newlines(i, end);
            i = end;
        } else if ch == '"' || (matches!(ch, 'b' | 'c') && next == Some('"')) {
            let start = i;
            i += if ch == '"' { 1 } else { 2 };
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            line += newlines(start, i);
        } else if ch == '\'' || (ch == 'b' && next == Some('\'')) {
            let quote = if ch == '\'' { i } else { i + 1 };
            if c.get(quote + 1) == Some(&'\\') {
                // An escaped character: '\n', '\'', '\u{1F600}'.
                let mut j = quote + 3;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if c.get(quote + 2) == Some(&'\'') {
                i = quote + 3; // 'x'
            } else {
                i = quote + 1; // a lifetime or label: its name follows as a word
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Word(c[start..i].iter().collect()), line));
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// If a raw string literal (`r"…"`, `r#"…"#`, `br"…"`, `cr"…"`) starts at `i`, the index just
/// after it.
fn raw_string_end(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if c.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < c.len() {
        if c[j] == '"' && (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(c.len())
}

/// What one file refers to.
struct Scan {
    /// (line, top-level module) of every reference to a module of `modules`.
    references: Vec<(usize, String)>,
    /// The files (as module paths `a/b`, without `.rs`) of `#[cfg(test)] mod x;` declarations.
    test_children: Vec<String>,
}

fn is_punct(t: Option<&(Tok, usize)>, ch: char) -> bool {
    matches!(t, Some((Tok::Punct(p), _)) if *p == ch)
}

fn is_word(t: Option<&(Tok, usize)>, word: &str) -> bool {
    matches!(t, Some((Tok::Word(w), _)) if w == word)
}

/// The index of the bracket closing the one at `open` (or the end).
fn closing(toks: &[(Tok, usize)], open: usize) -> usize {
    let mut depth = 0;
    for (i, (t, _)) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// The index just after the item starting at `i`: after its `;` or its closing `}`, or at a
/// bracket closing the block the item is in (a field or an arm).
fn skip_item(toks: &[(Tok, usize)], mut i: usize) -> usize {
    let mut depth = 0;
    while i < toks.len() {
        match toks[i].0 {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(close @ (')' | ']' | '}')) => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 && close == '}' {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Finds the references of one file (`file` relative to `src/`) to the top-level `modules`.
fn scan(file: &str, src: &str, modules: &BTreeSet<&str>) -> Scan {
    let toks = lex(src);
    let base = module_path(file);
    let mut scan = Scan {
        references: Vec::new(),
        test_children: Vec::new(),
    };
    // The directory of the files of this module's children.
    let child_dir = if file.ends_with("/mod.rs") || file == "lib.rs" {
        base.join("/")
    } else {
        file.trim_end_matches(".rs").to_string()
    };
    let mut inline: Vec<String> = Vec::new(); // names of the inline `mod x { … }` we are in
    let mut braces: Vec<bool> = Vec::new(); // per open `{`: does it open an inline module?
    let mut test_item = false;
    let mut i = 0;
    while i < toks.len() {
        // Attributes: note `#[cfg(test)]`; `#![cfg(test)]` makes the whole file test code.
        if is_punct(toks.get(i), '#') {
            let inner = is_punct(toks.get(i + 1), '!');
            let open = if inner { i + 2 } else { i + 1 };
            if is_punct(toks.get(open), '[') {
                let close = closing(&toks, open);
                let body: Vec<&Tok> = toks[open + 1..close.min(toks.len())]
                    .iter()
                    .map(|(t, _)| t)
                    .collect();
                let cfg_test = body
                    == [
                        &Tok::Word("cfg".into()),
                        &Tok::Punct('('),
                        &Tok::Word("test".into()),
                        &Tok::Punct(')'),
                    ];
                if cfg_test {
                    if inner {
                        scan.references.clear();
                        return scan;
                    }
                    test_item = true;
                }
                i = close + 1;
                continue;
            }
        }
        if test_item {
            test_item = false;
            // `#[cfg(test)] mod x;` (after an optional visibility) puts file `x.rs` in test code.
            let mut j = i;
            if is_word(toks.get(j), "pub") {
                j += 1;
                if is_punct(toks.get(j), '(') {
                    j = closing(&toks, j) + 1;
                }
            }
            if is_word(toks.get(j), "mod")
                && is_punct(toks.get(j + 2), ';')
                && let Some((Tok::Word(name), _)) = toks.get(j + 1)
            {
                let mut path: Vec<String> = if child_dir.is_empty() {
                    Vec::new()
                } else {
                    vec![child_dir.clone()]
                };
                path.extend(inline.iter().cloned());
                path.push(name.clone());
                scan.test_children.push(path.join("/"));
            }
            i = skip_item(&toks, i);
            continue;
        }
        let (tok, _) = &toks[i];
        let after_sep = i > 0 && toks[i - 1].0 == Tok::PathSep;
        match tok {
            Tok::Word(w) if w == "mod" && is_punct(toks.get(i + 2), '{') => {
                if let Some((Tok::Word(name), _)) = toks.get(i + 1) {
                    inline.push(name.clone());
                }
                braces.push(true);
                i += 3;
                continue;
            }
            Tok::Punct('{') => braces.push(false),
            Tok::Punct('}') => {
                let closes_module = braces.pop() == Some(true);
                if closes_module {
                    inline.pop();
                }
            }
            Tok::Word(w)
                if w == "crate"
                    && !after_sep
                    && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep) =>
            {
                i = record(&toks, i + 2, modules, &mut scan.references);
                continue;
            }
            Tok::Word(w) if w == "super" && !after_sep => {
                let mut j = i;
                let mut climbs = 0;
                while is_word(toks.get(j), "super")
                    && toks.get(j + 1).map(|t| &t.0) == Some(&Tok::PathSep)
                {
                    climbs += 1;
                    j += 2;
                }
                if climbs > 0 && climbs == base.len() + inline.len() {
                    i = record(&toks, j, modules, &mut scan.references);
                } else {
                    i = j.max(i + 1);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// Records the top-level module(s) a path names from the crate root, starting at token `i`
/// (just after `crate::`): a module name, or a `{ … }` group whose entries each start with
/// one. Returns where scanning goes on.
fn record(
    toks: &[(Tok, usize)],
    i: usize,
    modules: &BTreeSet<&str>,
    out: &mut Vec<(usize, String)>,
) -> usize {
    match toks.get(i) {
        Some((Tok::Word(name), line)) => {
            if modules.contains(name.as_str()) {
                out.push((*line, name.clone()));
            }
            i + 1
        }
        Some((Tok::Punct('{'), _)) => {
            let close = closing(toks, i);
            let mut depth = 0;
            let mut entry_start = true;
            for (t, line) in &toks[i..close.min(toks.len())] {
                match t {
                    Tok::Punct('{' | '(' | '[') => {
                        depth += 1;
                        entry_start = depth == 1;
                    }
                    Tok::Punct('}' | ')' | ']') => depth -= 1,
                    Tok::Punct(',') if depth == 1 => entry_start = true,
                    Tok::Word(name) if depth == 1 && entry_start => {
                        if modules.contains(name.as_str()) {
                            out.push((*line, name.clone()));
                        }
                        entry_start = false;
                    }
                    _ => {
                        if depth == 1 {
                            entry_start = false;
                        }
                    }
                }
            }
            close + 1
        }
        _ => i,
    }
}

// The checker itself, on small crates held in memory: it must really fail on a violation.

const TOY: &[Layer] = &[
    Layer {
        name: "low",
        modules: &["low", "side"],
    },
    Layer {
        name: "high",
        modules: &["high"],
    },
];

fn toy(files: &[(&str, &str)]) -> Report {
    let mut all: Vec<(String, String)> = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    for m in ["low", "side", "high"] {
        if !all
            .iter()
            .any(|(f, _)| module_path(f).first().map(String::as_str) == Some(m))
        {
            all.push((format!("{m}.rs"), String::new()));
        }
    }
    check(&all, TOY)
}

#[test]
fn checker_names_file_line_and_edge_of_a_reference_up() {
    let report = toy(&[
        ("low.rs", "//! A low module.\n\nuse crate::high::Thing;\n"),
        ("high.rs", "use crate::low::Base;\n"),
    ]);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert!(problem.starts_with("src/low.rs:3: `low`"), "{problem}");
    assert!(problem.contains("refers to `crate::high`"), "{problem}");
}

#[test]
fn checker_sees_groups_super_paths_and_macros() {
    let report = toy(&[
        ("side.rs", "use crate::{low::A, high::{B, C}};\n"),
        (
            "low/mod.rs",
            "mod inner;\nmod deep { fn f() { super::super::high::g(); } }\n",
        ),
        (
            "low/inner.rs",
            "fn f() {\n    super::super::high::g();\n    super::sibling();\n}\n",
        ),
        (
            "high.rs",
            "macro_rules! m { () => { $crate::low::f() }; }\n",
        ),
    ]);
    let mut found: Vec<&str> = report
        .problems
        .iter()
        .map(|p| p.split(": ").next().unwrap())
        .collect();
    found.sort();
    assert_eq!(
        found,
        ["src/low/inner.rs:2", "src/low/mod.rs:2", "src/side.rs:1"],
        "{:?}",
        report.problems
    );
    // `use crate::{low::A, …}` and `$crate::low` are references down: recorded, allowed.
    assert!(
        report
            .references
            .iter()
            .any(|r| r.from == "side" && r.to == "low")
    );
    assert!(
        report
            .references
            .iter()
            .any(|r| r.from == "high" && r.to == "low")
    );
}

#[test]
fn checker_skips_test_code_comments_and_literals() {
    let low = r###"
// use crate::high::A;
/* use crate::high::B; /* nested */ crate::high::C */
/// See [`crate::high`].
const S: &str = "use crate::high::D; \" crate::high";
const R: &str = r#"crate::high::E "quoted" "#;
fn quote<'a>(c: char, s: &'a str) -> bool { c == '\'' || c == '"' || s.is_empty() }
#[cfg(test)]
mod tests {
    use crate::high::F;
}
#[cfg(test)]
#[allow(dead_code)]
fn helper() { crate::high::g(); }
#[cfg(test)]
mod golden;
use crate::side::Fine;
"###;
    let report = toy(&[
        ("low.rs", low),
        ("low/golden.rs", "use crate::high::G;\n"),
        ("side/tests.rs", "use crate::high::H;\n"),
    ]);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let refs: Vec<(String, usize, String)> = report
        .references
        .iter()
        .map(|r| (r.file.clone(), r.line, r.to.clone()))
        .collect();
    assert_eq!(refs, [("low.rs".to_string(), 17, "side".to_string())]);
}

#[test]
fn checker_reports_a_cycle_inside_a_layer() {
    let report = toy(&[
        ("low.rs", "use crate::side::A;\n"),
        ("side.rs", "\nuse crate::low::B;\n"),
    ]);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert!(problem.contains("cycle"), "{problem}");
    assert!(problem.contains("low -> side (src/low.rs:1)"), "{problem}");
    assert!(problem.contains("side -> low (src/side.rs:2)"), "{problem}");
}

#[test]
fn checker_reports_modules_outside_the_layers() {
    let report = toy(&[("stray.rs", "")]);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("module `stray` is in no layer"));
}
