//! The `kinesis` SQL connector (in `fjord-sql`) against a real kinesalite server: the two
//! scripts of docs/connectors/kinesis.md verbatim (placeholders replaced), the example
//! StreamJob manifest's script, malformed rows, and option errors.

mod support;

use fjord_e2e::jobs::{self, lines_in as lines, wait_for};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use support::Server;

const LONG: Duration = Duration::from_secs(120);

fn docs_scripts(server: &Server, out: &std::path::Path) -> Vec<String> {
    jobs::sql_blocks_of("docs/connectors/kinesis.md")
        .into_iter()
        .map(|s| {
            s.replace("${KINESIS_ENDPOINT}", server.endpoint())
                .replace("${OUT}", &out.display().to_string())
        })
        .collect()
}

#[test]
fn the_docs_scripts_write_and_read_a_stream() {
    let server = Server::shared();
    server.create_stream("sql-orders", 2);
    let out = jobs::scratch_dir("kinesis-sql", "docs");
    let scripts = docs_scripts(server, &out);
    assert_eq!(scripts.len(), 2, "a writing and a reading script");
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&scripts[0]).unwrap(), &env).unwrap();
    env.execute("write").unwrap();
    let stored = server.read_all("sql-orders");
    assert_eq!(stored.len(), 100);
    // The partition key is the customer column.
    for (_, key, payload) in &stored {
        assert!(
            payload.contains(&format!("\"customer\":\"{key}\"")),
            "{key}: {payload}"
        );
    }

    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&scripts[1]).unwrap(), &env).unwrap();
    let job = env.execute_async("read").unwrap();
    wait_for("every row", LONG, || lines(&out).len() >= 100);
    job.cancel();
    let _ = job.wait();
    let mut got = lines(&out);
    got.sort_by_key(|l| l.split(',').next().unwrap().parse::<u64>().unwrap());
    let expected: Vec<String> = (1..=100)
        .map(|i| format!("{i},{}", if i % 2 == 0 { "ANN" } else { "BOB" }))
        .collect();
    assert_eq!(got, expected);
    let _ = std::fs::remove_dir_all(&out);
}

/// A record that is not JSON fails a script with the position and what to do, or is skipped
/// with 'json.ignore-parse-errors' = 'true'.
#[test]
fn bad_json_fails_or_is_skipped_as_the_format_says() {
    let server = Server::shared();
    let stream = "sql-bad-json";
    server.create_stream(stream, 1);
    server.put(
        stream,
        &[
            ("a".into(), "{\"id\":1}".into()),
            ("a".into(), "{\"id\":".into()),
            ("a".into(), "{\"id\":3}".into()),
        ],
    );
    let out = jobs::scratch_dir("kinesis-sql", "bad-json");
    let script = |ignore: bool| {
        format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'kinesis', 'stream' = '{stream}',
               'aws.region' = 'us-east-1', 'aws.endpoint' = '{}',
               'aws.credentials.provider' = 'BASIC', 'aws.credentials.basic.accesskeyid' = 'k',
               'aws.credentials.basic.secretkey' = 's',
               'source.init.position' = 'TRIM_HORIZON', 'format' = 'json'{});
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             INSERT INTO out SELECT id FROM src;",
            server.endpoint(),
            if ignore { ", 'json.ignore-parse-errors' = 'true'" } else { "" },
            out.display()
        )
    };
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&script(false)).unwrap(), &env).unwrap();
    let err = env.execute("fail").unwrap_err().to_string();
    for part in [
        "malformed record",
        "not a JSON object",
        "ignore-parse-errors",
    ] {
        assert!(err.contains(part), "`{part}` in: {err}");
    }
    let _ = std::fs::remove_dir_all(&out);
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&script(true)).unwrap(), &env).unwrap();
    let job = env.execute_async("skip").unwrap();
    wait_for("the good rows", LONG, || lines(&out).len() >= 2);
    job.cancel();
    let _ = job.wait();
    let mut got = lines(&out);
    got.sort();
    assert_eq!(got, vec!["1", "3"]);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_options_fail_planning_with_what_to_do() {
    let plan = |with: &str| {
        let script = format!(
            "CREATE TABLE q (id BIGINT, c STRING) WITH ('connector' = 'kinesis'{with});
             CREATE TABLE out (id BIGINT, c STRING) WITH ('connector' = 'blackhole');
             INSERT INTO out SELECT id, c FROM q;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let base = ", 'format' = 'json', 'stream' = 's', 'aws.region' = 'eu-west-1'";
    for (with, expect) in [
        (", 'format' = 'json', 'aws.region' = 'r'", "set 'stream'"),
        (", 'format' = 'json', 'stream' = 's'", "set 'aws.region'"),
        (", 'stream' = 's', 'aws.region' = 'r'", "'format'"),
        (
            &format!("{base}, 'aws.endpoint' = 'localhost:4567'") as &str,
            "must be a URL",
        ),
        (
            &format!("{base}, 'source.init.position' = 'EARLIEST'"),
            "'LATEST', 'TRIM_HORIZON' or 'AT_TIMESTAMP'",
        ),
        (
            &format!("{base}, 'source.init.position' = 'AT_TIMESTAMP'"),
            "needs 'source.init.timestamp'",
        ),
        (
            &format!(
                "{base}, 'source.init.position' = 'AT_TIMESTAMP', 'source.init.timestamp' = 'yesterday'"
            ),
            "seconds since the epoch",
        ),
        (
            &format!("{base}, 'source.init.timestamp' = '1700000000'"),
            "needs 'source.init.position' = 'AT_TIMESTAMP'",
        ),
        (
            &format!("{base}, 'aws.credentials.provider' = 'BASIC'"),
            "need both",
        ),
        (
            &format!("{base}, 'aws.credentials.provider' = 'PROFILE'"),
            "'AUTO'",
        ),
        (
            &format!("{base}, 'source.shard.discovery.interval' = 'soon'"),
            "positive duration",
        ),
        (
            &format!("{base}, 'sink.batch.max-size' = '0'"),
            "positive number",
        ),
        (
            &format!("{base}, 'sink.partitioner-fields' = 'nope'"),
            "not a column",
        ),
        (
            &format!("{base}, 'topic' = 'x'"),
            "unsupported option 'topic'",
        ),
    ] {
        let e = plan(with);
        assert!(e.contains(expect), "{with}: expected `{expect}` in `{e}`");
    }
    assert_eq!(plan(base), "");
    assert_eq!(
        plan(&format!(
            "{base}, 'source.init.position' = 'AT_TIMESTAMP', 'source.init.timestamp' = '2024-05-01T10:00:00Z'"
        )),
        ""
    );
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

const MANIFEST_CHILD: &str = "FJORD_KINESIS_MANIFEST_ENDPOINT";

/// examples/streamjobs/kinesis-sql-orders.yaml's script, verbatim but for the endpoint, planned
/// and run as the stock worker runs `spec.job.sql` (checkpointing from the spec), with the
/// credentials from the environment as on a cluster (`AUTO`: this test runs itself again with
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` set): every order arrives shouted, keyed by
/// customer.
#[test]
fn the_example_manifest_shouts_every_order() {
    if let Ok(endpoint) = std::env::var(MANIFEST_CHILD) {
        return run_manifest(&endpoint);
    }
    let server = Server::start("manifest");
    server.create_stream("orders", 2);
    server.create_stream("orders-shouted", 2);
    let orders: Vec<(String, String)> = (0..100u64)
        .map(|i| {
            let customer = ["ann", "bob"][(i % 2) as usize];
            (
                customer.to_string(),
                format!("{{\"id\":{i},\"customer\":\"{customer}\"}}"),
            )
        })
        .collect();
    server.put("orders", &orders);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "the_example_manifest_shouts_every_order",
            "--exact",
            "--nocapture",
        ])
        .env(MANIFEST_CHILD, server.endpoint())
        .env("AWS_ACCESS_KEY_ID", "fjord-test")
        .env("AWS_SECRET_ACCESS_KEY", "fjord-test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the manifest run failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let shouted = server.read_all("orders-shouted");
    let mut ids: Vec<u64> = Vec::new();
    for (_, key, payload) in &shouted {
        let v: serde_json::Value = serde_json::from_str(payload).unwrap();
        let id = v["id"].as_u64().unwrap();
        let customer = if id.is_multiple_of(2) { "ANN" } else { "BOB" };
        assert_eq!(v["customer"], customer, "{payload}");
        assert_eq!(key, customer, "keyed by customer");
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids, (0..100).collect::<Vec<_>>(), "every order");
}

fn run_manifest(endpoint: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml =
        std::fs::read_to_string(root.join("examples/streamjobs/kinesis-sql-orders.yaml")).unwrap();
    let script = manifest_sql(&yaml);
    assert!(script.contains("INSERT INTO orders_shouted"), "{script}");
    let script = script.replace("https://kinesis.us-east-1.amazonaws.com", endpoint);
    let dir = jobs::scratch_dir("kinesis-manifest", "cp");
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_secs(1));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    let job = env.execute_async("kinesis-sql-orders").unwrap();
    let client = fjord_kinesis::KinesisClient::new(
        &fjord_kinesis::KinesisConfig::new("us-east-1")
            .endpoint(endpoint)
            .basic_credentials("fjord-test", "fjord-test-secret"),
    )
    .unwrap();
    let count = || {
        let mut n = 0;
        for shard in client.list_shards("orders-shouted").unwrap() {
            let mut it = client
                .shard_iterator(
                    "orders-shouted",
                    &shard.shard_id,
                    &fjord_kinesis::client::IteratorStart::TrimHorizon,
                )
                .unwrap();
            while let Some(i) = it {
                let f = client.get_records("orders-shouted", &i, 10_000).unwrap();
                n += f.records.len();
                it = if f.records.is_empty() {
                    None
                } else {
                    f.next_iterator
                };
            }
        }
        n
    };
    wait_for("every order shouted", LONG, || count() >= 100);
    job.cancel();
    let _ = job.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
