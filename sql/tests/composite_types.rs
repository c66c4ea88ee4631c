//! ROW, ARRAY, MAP and TIMESTAMP_LTZ end to end: nested JSON in, fields, elements and casts
//! out, the Nexmark benchmark's own DDL and views over its event files. Flink's results for
//! the same scripts are compared in `e2e/tests/flink_sql_oracle.rs`.

use fjord::StreamExecutionEnvironment;
use fjord_sql::ErrorKind;
use std::path::Path;

mod common;
use common::{lines_in, sorted};

/// The orders of `examples/sql/nested_orders.json` (docs/sql.md's example data): a nested
/// customer, an array of tags and a map of attributes; one order has NULL for each composite,
/// one a NULL address inside, one an empty array and map, one a NULL element.
fn orders_table() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    format!(
        "CREATE TABLE orders (
           id INT,
           customer ROW<name STRING, address ROW<city STRING, zip STRING>>,
           tags ARRAY<STRING>,
           attrs MAP<STRING, STRING>,
           ts BIGINT
         ) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');",
        root.join("examples/sql/nested_orders.json").display()
    )
}

fn run(script: &str, out: &Path) -> Vec<String> {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("composite types").unwrap();
    lines_in(out)
}

#[test]
fn fields_elements_entries_and_casts_of_nested_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE result (id INT, name STRING, city STRING, zip STRING, first_tag STRING,
                              second_tag STRING, n_tags INT, color STRING, n_attrs INT,
                              customer_text STRING, tags_text STRING, ltz TIMESTAMP_LTZ(3))
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO result
         SELECT id, customer.name, orders.customer.address.city, customer.address.zip,
                tags[1], tags[2], CARDINALITY(tags), attrs['color'], CARDINALITY(attrs),
                CAST(customer AS STRING), CAST(tags AS STRING), TO_TIMESTAMP_LTZ(ts, 3)
         FROM orders;",
        orders_table(),
        out.display()
    );
    assert_eq!(
        run(&script, &out),
        sorted(&[
            "1,alice,Oslo,0150,new,gift,2,red,1,\"(alice, (Oslo, 0150))\",\"[new, gift]\",2024-01-01 00:00:01Z",
            "2,bob,,,,,0,,0,\"(bob, NULL)\",[],2024-01-01 00:00:02.5Z",
            "3,,,,,,,,,,,2024-01-01 00:00:03Z",
            "4,carol,Bergen,5003,x,,3,blue,1,\"(carol, (Bergen, 5003))\",\"[x, NULL, z]\",2024-01-01 00:00:12Z",
        ])
    );
}

#[test]
fn composite_values_are_built_and_written_as_nested_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE result (id INT, who ROW<name STRING, city STRING>, tags ARRAY<STRING>,
                              attrs MAP<STRING, STRING>, nums ARRAY<INT>)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json');
         INSERT INTO result
         SELECT id, ROW(customer.name, customer.address.city), tags, attrs, ARRAY[id, id * 10]
         FROM orders WHERE id IN (1, 3);",
        orders_table(),
        out.display()
    );
    assert_eq!(
        run(&script, &out),
        sorted(&[
            r#"{"id":1,"who":{"name":"alice","city":"Oslo"},"tags":["new","gift"],"attrs":{"color":"red"},"nums":[1,10]}"#,
            r#"{"id":3,"who":{"name":null,"city":null},"tags":null,"attrs":null,"nums":[3,30]}"#,
        ])
    );
}

#[test]
fn wrong_uses_of_composites_name_the_place_and_the_fix() {
    let table = orders_table();
    let cases = [
        (
            "SELECT customer.nme FROM orders",
            "the ROW has no field 'nme'; its fields are: name, address",
        ),
        (
            "SELECT tags['a'] FROM orders",
            "an ARRAY index must be an integer",
        ),
        (
            "SELECT id.x FROM orders",
            "'.x' needs a ROW, but this is INT",
        ),
        (
            "SELECT CARDINALITY(id) FROM orders",
            "CARDINALITY needs an ARRAY or a MAP",
        ),
    ];
    for (query, message) in cases {
        let script = format!(
            "{table}
             CREATE TABLE sink (x STRING) WITH ('connector' = 'blackhole');
             INSERT INTO sink {query};"
        );
        let e = fjord_sql::plan(&script).unwrap_err();
        assert!(e.to_string().contains(message), "{query}: {e}");
        assert!(
            matches!(e, fjord_sql::SqlError::Plan { line: 3.., .. }),
            "{query}: no position in {e}"
        );
    }
    let e = fjord_sql::plan(
        "CREATE TABLE t (r ROW<a INT, a STRING>) WITH ('connector' = 'blackhole');",
    )
    .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Syntax), "{e}");
    assert!(e.to_string().contains("two fields named 'a'"), "{e}");
}

/// docs/sql.md's UNNEST example, verbatim, over the example orders, and the rows the docs
/// name (Flink's, case `unnest-arrays-and-maps`).
#[test]
fn the_unnest_example_gives_a_row_per_element() {
    let query = common::docs_sql_block("### UNNEST: a row per element", 1);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "{}
         CREATE TABLE result (id INT, tag STRING, pos INT)
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO result {query};",
        orders_table(),
        out.display()
    );
    assert_eq!(
        run(&script, &out),
        sorted(&["1,new,1", "1,gift,2", "4,x,1", "4,,2", "4,z,3"])
    );
    // A value that is no array or map, and two arrays at once, are refused with what to do.
    for (bad, want) in [
        ("UNNEST(id)", "UNNEST takes an ARRAY or a MAP, not INT"),
        ("UNNEST(tags, tags)", "join a second UNNEST"),
    ] {
        let e = fjord_sql::plan(&script.replace("UNNEST(tags)", bad)).unwrap_err();
        assert!(e.to_string().contains(want), "{bad}: {e}");
    }
}

/// `examples/sql/nested_orders.sql` (docs/sql.md's example of nested data) with its `print`
/// sinks written to files and its input path made absolute; the rest verbatim.
#[test]
fn the_nested_data_example_runs_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(root.join("examples/sql/nested_orders.sql")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (flat, window) = (dir.path().join("flat"), dir.path().join("window"));
    // docs/sql.md shows the example's first statements: they must be the file's, verbatim.
    let docs = std::fs::read_to_string(root.join("docs/sql.md")).unwrap();
    let section = &docs[docs.find("## Nested data and TIMESTAMP_LTZ").unwrap()..];
    let block = section
        .split("```sql\n")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap();
    assert!(
        example.contains(block),
        "docs/sql.md's nested-data snippet is not a part of the example file:\n{block}"
    );
    let mut script = example.clone();
    for (from, to) in [
        (
            "'examples/sql/nested_orders.json'".to_string(),
            format!(
                "'{}'",
                root.join("examples/sql/nested_orders.json").display()
            ),
        ),
        (
            "'connector' = 'print', 'print-identifier' = 'flat'".to_string(),
            format!(
                "'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'",
                flat.display()
            ),
        ),
        (
            "'connector' = 'print', 'print-identifier' = 'window'".to_string(),
            format!(
                "'connector' = 'filesystem', 'path' = '{}', 'format' = 'json'",
                window.display()
            ),
        ),
    ] {
        assert!(
            script.contains(&from),
            "the example changed: {from} is gone"
        );
        script = script.replace(&from, &to);
    }
    assert_eq!(
        run(&script, &flat),
        sorted(&[
            "1,alice,Oslo,new,2,red,\"(alice, (Oslo, 0150))\"",
            "2,bob,,,0,,\"(bob, NULL)\"",
            "3,,,,,,",
            "4,carol,Bergen,x,3,blue,\"(carol, (Bergen, 5003))\"",
        ])
    );
    assert_eq!(
        lines_in(&window),
        sorted(&[
            r#"{"window_start":"2024-01-01 00:00:00","window_end":"2024-01-01 00:00:10","orders":3,"cities":["Oslo","Oslo"]}"#,
            r#"{"window_start":"2024-01-01 00:00:10","window_end":"2024-01-01 00:00:20","orders":1,"cities":["Bergen","Bergen"]}"#,
        ])
    );
}
