//! The `redis` SQL connector (in `fjord-sql`) against a real Redis server: the script of
//! docs/connectors/redis.md, verbatim, and option errors at planning time.

mod support;

use redis::Commands;
use std::collections::BTreeMap;
use support::RedisServer;

fn docs_script() -> String {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/redis.md")).unwrap();
    let start = docs.find("```sql\n").expect("a sql block") + "```sql\n".len();
    docs[start..start + docs[start..].find("```").unwrap()].to_string()
}

#[test]
fn the_docs_script_writes_a_hash_with_a_ttl() {
    let server = RedisServer::start("sql");
    let script = docs_script().replace("${REDIS_URL}", server.url());
    let job = fjord_sql::plan(&script).unwrap();
    let env = fjord::StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("sql").unwrap();
    let mut c = server.connection();
    let squares: BTreeMap<String, String> = c.hgetall("squares").unwrap();
    let expected: BTreeMap<String, String> = (1..=100i64)
        .map(|i| (i.to_string(), (i * i).to_string()))
        .collect();
    assert_eq!(squares, expected);
    let ttl: i64 = c.ttl("squares").unwrap();
    assert!(ttl > 0 && ttl <= 3600, "{ttl}");
}

#[test]
fn bad_options_fail_planning_with_what_to_do() {
    let plan = |with: &str, columns: &str| {
        let script = format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out ({columns}) WITH ('connector' = 'redis'{with});
             INSERT INTO out SELECT CAST(id AS STRING), id FROM src;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let two = "k STRING, v BIGINT";
    for (with, columns, expect) in [
        ("", two, "set 'url'"),
        (", 'url' = 'redis://h:1'", two, "set 'command'"),
        (
            ", 'url' = 'redis://h:1', 'command' = 'INCR'",
            two,
            "not one of SET",
        ),
        (
            ", 'url' = 'redis://h:1', 'command' = 'HSET'",
            two,
            "additional key",
        ),
        (
            ", 'url' = 'redis://h:1', 'command' = 'SET', 'ttl' = '1h'",
            two,
            "whole seconds",
        ),
        (
            ", 'url' = 'redis://h:1', 'command' = 'SET', 'colour' = 'red'",
            two,
            "unsupported option 'colour'",
        ),
        (
            ", 'url' = 'redis://h:1', 'command' = 'SET'",
            "k STRING",
            "two columns",
        ),
    ] {
        let e = plan(with, columns);
        assert!(e.contains(expect), "{with}: expected `{expect}` in `{e}`");
    }
    assert_eq!(plan(", 'url' = 'redis://h:1', 'command' = 'SET'", two), "");
}
