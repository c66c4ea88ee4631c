//! The `opensearch` / `elasticsearch-7` SQL connectors (in `fjord-sql`) against a real
//! OpenSearch node: the script of docs/connectors/elasticsearch.md and the example StreamJob
//! manifest's, verbatim (the host replaced), and option errors at planning time.

mod support;

use fjord_e2e::jobs;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use support::Node;

#[test]
fn the_docs_script_upserts_squares_by_primary_key() {
    let node = Node::start("sql-docs");
    let scripts = jobs::sql_blocks_of("docs/connectors/elasticsearch.md");
    assert_eq!(scripts.len(), 1, "one SQL script in the docs");
    let script = scripts[0].replace("${OPENSEARCH_URL}", node.url());
    let env = fjord::StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
    env.execute("sql").unwrap();
    for (parity, rest) in [("even", 0i64), ("odd", 1)] {
        let expect: BTreeMap<String, Value> = (1..=100i64)
            .filter(|i| i % 2 == rest)
            .map(|i| {
                (
                    format!("{parity}-{i}"),
                    json!({"id": i, "parity": parity, "square": i * i}),
                )
            })
            .collect();
        assert_eq!(node.docs(&format!("squares-{parity}")), expect, "{parity}");
    }
}

/// `spec.job.sql` of a StreamJob manifest: the block scalar under `sql: |`, unindented.
fn manifest_sql(yaml: &str) -> String {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "sql: |").skip(1);
    let first = lines.clone().find(|l| !l.trim().is_empty()).unwrap_or("");
    let indent = first.len() - first.trim_start().len();
    let mut sql = String::new();
    for line in lines.by_ref() {
        if !line.trim().is_empty() && line.len() - line.trim_start().len() < indent {
            break;
        }
        sql.push_str(line.get(indent..).unwrap_or(""));
        sql.push('\n');
    }
    sql
}

/// examples/streamjobs/opensearch-sql-orders.yaml's script, verbatim but for the host, planned
/// and run as the stock worker runs `spec.job.sql` (plan, build, parallelism and checkpointing
/// from the spec): every order is one document under its id.
#[test]
fn the_example_manifest_upserts_every_order_once() {
    let node = Node::start("manifest");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml = std::fs::read_to_string(root.join("examples/streamjobs/opensearch-sql-orders.yaml"))
        .unwrap();
    let script = manifest_sql(&yaml);
    assert!(script.contains("INSERT INTO orders_index"), "{script}");
    let script = script.replace("http://opensearch:9200", node.url());
    let dir = jobs::scratch_dir("es-manifest", "checkpoints");
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_secs(1));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    env.execute("opensearch-sql-orders").unwrap();
    let docs = node.docs("orders");
    assert_eq!(docs.len(), 2000, "every order once");
    for i in 1..=2000i64 {
        let d = &docs[&i.to_string()];
        assert_eq!(d["order_id"], json!(i));
        assert_eq!(d["customer"], json!(format!("customer-{}", i % 10)));
        let amount = d["amount"].as_i64().unwrap();
        assert!((1..=500).contains(&amount), "order {i}: amount {amount}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_options_and_keys_fail_planning_with_what_to_do() {
    let plan = |columns: &str, with: &str| {
        let script = format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out ({columns}) WITH ('connector' = 'elasticsearch-7'{with});
             INSERT INTO out SELECT id, 'x' FROM src;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let cols = "id BIGINT, name STRING";
    let keyed = "id BIGINT, name STRING, PRIMARY KEY (id) NOT ENFORCED";
    let base = ", 'hosts' = 'http://h:9200', 'index' = 'i'";
    for (columns, with, expect) in [
        (cols, ", 'index' = 'i'", "set 'hosts'"),
        (cols, ", 'hosts' = 'http://h:9200'", "set 'index'"),
        (
            cols,
            ", 'hosts' = 'h:9200', 'index' = 'i'",
            "must start with http://",
        ),
        (
            cols,
            &format!("{base}, 'format' = 'csv'") as &str,
            "'format' = 'json'",
        ),
        (
            cols,
            &format!("{base}, 'sink.bulk-flush.max-size' = 'lots'"),
            "not a size",
        ),
        (
            cols,
            &format!("{base}, 'sink.bulk-flush.interval' = 'soon'"),
            "not a duration",
        ),
        (
            cols,
            &format!("{base}, 'sink.bulk-flush.backoff.strategy' = 'LINEAR'"),
            "DISABLED, CONSTANT or EXPONENTIAL",
        ),
        (
            cols,
            &format!("{base}, 'failure-handler' = 'shrug'"),
            "'fail' (the default), 'drop' or 'retry'",
        ),
        (
            cols,
            &format!("{base}, 'password' = 'x'"),
            "'password' needs 'username'",
        ),
        (
            cols,
            &format!("{base}, 'topic' = 'x'"),
            "unsupported option 'topic'",
        ),
        (
            cols,
            ", 'hosts' = 'http://h:9200', 'index' = 'i-{nope}'",
            "'nope'",
        ),
        (
            "id BIGINT, name STRING, PRIMARY KEY (id)",
            base,
            "NOT ENFORCED",
        ),
        (
            "id BIGINT, name STRING, PRIMARY KEY (nope) NOT ENFORCED",
            base,
            "'nope' is not a physical column",
        ),
    ] {
        let e = plan(columns, with);
        assert!(
            e.contains(expect),
            "{columns} {with}: expected `{expect}` in `{e}`"
        );
    }
    assert_eq!(plan(keyed, base), "");
    assert_eq!(
        plan("id BIGINT PRIMARY KEY NOT ENFORCED, name STRING", base),
        ""
    );
    // Other connectors accept the declaration and do not use it, as Flink's do; an
    // append-only Kafka table refuses it (Flink's rule).
    let keyed_source =
        "CREATE TABLE src (id BIGINT, PRIMARY KEY (id) NOT ENFORCED) WITH ('connector' = 'datagen');
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO out SELECT id FROM src;";
    assert!(fjord_sql::plan(keyed_source).is_ok());
    let e = match fjord_sql::plan(
        "CREATE TABLE k (id BIGINT, PRIMARY KEY (id) NOT ENFORCED)
           WITH ('connector' = 'kafka', 'topic' = 't', 'format' = 'json',
                 'properties.bootstrap.servers' = 'localhost:9092');",
    ) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("cannot declare a PRIMARY KEY"), "{e}");
}
