//! The custom worker's user-defined SQL functions (src/main.rs) in the SQL script it runs,
//! `sql/readings.sql`, run verbatim through the binary's `sql` command as docs/sql.md shows;
//! `list` names the functions. The expected rows are worked out by hand from
//! `sql/readings.csv`.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn my_worker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_my-worker"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("my-worker runs")
}

/// The rows printed under `identifier`, sorted, without the `identifier> ` prefix.
fn printed(stdout: &str, identifier: &str) -> Vec<String> {
    let prefix = format!("{identifier}> ");
    let mut rows: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .collect();
    rows.sort();
    rows
}

#[test]
fn the_readings_script_calls_the_binarys_functions() {
    let out = my_worker(&["sql", "-f", "examples/custom-worker/sql/readings.sql"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // 10-second windows: roof has 21.5 and 23.0 (and a NULL, which MAX and spread skip),
    // cellar 12.0 in the first window and 11.0 in the second; fahrenheit(c) = c * 9 / 5 + 32.
    assert_eq!(
        printed(&stdout, "windows"),
        [
            "+I[2024-01-01T00:00, cellar, 53.6, 0.0]",
            "+I[2024-01-01T00:00, roof, 73.4, 1.5]",
            "+I[2024-01-01T00:00:10, cellar, 51.8, 0.0]",
        ],
        "{stdout}"
    );
    // One row per tag; the reading without tags stays (LEFT JOIN) with a NULL tag; the NULL
    // reading gives a NULL temperature through the alias to_f.
    assert_eq!(
        printed(&stdout, "tags"),
        [
            "+I[cellar, inside, 51.8]",
            "+I[cellar, null, 53.6]",
            "+I[roof, north, 70.7]",
            "+I[roof, north, 73.4]",
            "+I[roof, north, null]",
            "+I[roof, outside, 70.7]",
            "+I[roof, outside, 73.4]",
            "+I[roof, outside, null]",
        ],
        "{stdout}"
    );
}

#[test]
fn list_shows_the_functions_with_their_signatures() {
    let out = my_worker(&["list"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "temperature-alerts",
        "FAHRENHEIT(DOUBLE) -> DOUBLE (scalar)",
        "SPREAD(DOUBLE) -> DOUBLE (aggregate)",
        "SPLIT_TAGS(STRING) -> TABLE(tag STRING) (table)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing '{expected}' in:\n{stdout}"
        );
    }
}

#[test]
fn a_misspelt_function_exits_2_naming_the_place_and_the_close_name() {
    let script = std::env::temp_dir().join(format!("my-worker-typo-{}.sql", std::process::id()));
    let text = std::fs::read_to_string(repo_root().join("examples/custom-worker/sql/readings.sql"))
        .unwrap()
        .replace("spread(celsius)", "sprad(celsius)");
    std::fs::write(&script, text).unwrap();
    let out = my_worker(&["sql", "-f", script.to_str().unwrap()]);
    std::fs::remove_file(&script).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 31, column 56: function SPRAD"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean SPREAD?"), "{stderr}");
}

/// The fenced blocks of `lang` in docs/sql.md's "User-defined functions" section.
fn docs_blocks(lang: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(repo_root().join("docs/sql.md")).unwrap();
    let start = docs
        .find("\n## User-defined functions\n")
        .expect("docs/sql.md has the section");
    let section = &docs[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .map(|rest| rest[..rest.find("```\n").expect("closed block")].to_string())
        .collect()
}

#[test]
fn the_docs_show_the_example_verbatim() {
    let main =
        std::fs::read_to_string(repo_root().join("examples/custom-worker/src/main.rs")).unwrap();
    let rust = docs_blocks("rust");
    assert_eq!(rust.len(), 2, "the imports and the functions");
    for block in &rust {
        assert!(
            main.contains(block.as_str()),
            "docs/sql.md shows Rust that src/main.rs does not have:\n{block}"
        );
    }
    assert!(rust[1].contains("fjord_worker::main_with_functions(jobs, functions())"));
    let script =
        std::fs::read_to_string(repo_root().join("examples/custom-worker/sql/readings.sql"))
            .unwrap();
    assert_eq!(docs_blocks("sql"), [script]);
}
