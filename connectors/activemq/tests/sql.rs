//! The `activemq` SQL connector (in `fjord-sql`) against a real ActiveMQ broker: the two
//! scripts of docs/connectors/activemq.md, verbatim (addresses replaced), and option errors.

mod support;

use fjord_e2e::jobs::{self, lines_in as lines};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::Broker;

fn docs_scripts() -> Vec<String> {
    jobs::sql_blocks_of("docs/connectors/activemq.md")
}

#[test]
fn the_docs_scripts_write_and_read_a_queue() {
    let broker = Broker::start("sql");
    let out = std::env::temp_dir().join(format!("fjord-amq-sql-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let scripts: Vec<String> = docs_scripts()
        .into_iter()
        .map(|s| {
            s.replace("${STOMP_URL}", broker.url())
                .replace("${OUT}", &out.display().to_string())
        })
        .collect();
    assert_eq!(scripts.len(), 2, "a writing and a reading script");
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&scripts[0]).unwrap(), &env).unwrap();
    env.execute("write").unwrap();
    assert_eq!(broker.depth("sql-orders"), 100);

    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&scripts[1]).unwrap(), &env).unwrap();
    let job = env.execute_async("read").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while lines(&out).len() < 100 || broker.depth("sql-orders") > 0 {
        assert!(Instant::now() < deadline, "read {} rows", lines(&out).len());
        std::thread::sleep(Duration::from_millis(100));
    }
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

#[test]
fn bad_options_fail_planning_with_what_to_do() {
    let plan = |with: &str| {
        let script = format!(
            "CREATE TABLE q (id BIGINT) WITH ('connector' = 'activemq'{with});
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
             INSERT INTO out SELECT id FROM q;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let base = ", 'format' = 'json', 'url' = 'stomp://h:61613', 'queue' = 'q'";
    for (with, expect) in [
        (", 'format' = 'json'", "set 'url'"),
        (", 'format' = 'json', 'url' = 'amqp://h:1'", "set 'url'"),
        (
            ", 'format' = 'json', 'url' = 'stomp://h:61613'",
            "set 'queue'",
        ),
        (", 'url' = 'stomp://h:61613', 'queue' = 'q'", "'format'"),
        (
            &format!("{base}, 'scan.prefetch' = '0'") as &str,
            "must be a positive number",
        ),
        (
            &format!("{base}, 'scan.dedupe-by' = 'body'"),
            "'none', 'message-id' or 'correlation-id'",
        ),
        (
            &format!("{base}, 'scan.dedupe-by' = 'message-id', 'scan.ack-on-receipt' = 'true'"),
            "one or the other",
        ),
        (
            &format!("{base}, 'sink.correlation-id-column' = 'nope'"),
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

/// examples/streamjobs/activemq-sql-orders.yaml's script, verbatim but for the broker address,
/// planned and run as the stock worker runs `spec.job.sql` (plan, build, checkpointing from
/// the spec): every order is shouted once and every input message acknowledged.
#[test]
fn the_example_manifest_shouts_every_order_once() {
    let broker = Broker::start("manifest");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml =
        std::fs::read_to_string(root.join("examples/streamjobs/activemq-sql-orders.yaml")).unwrap();
    let script = manifest_sql(&yaml);
    assert!(script.contains("INSERT INTO orders_shouted"), "{script}");
    let script = script.replace("stomp://localhost:61613", broker.url());
    let orders: Vec<(Option<String>, String)> = (0..100u64)
        .map(|i| {
            let customer = ["ann", "bob"][(i % 2) as usize];
            (None, format!("{{\"id\":{i},\"customer\":\"{customer}\"}}"))
        })
        .collect();
    broker.publish("orders", &orders);
    let dir = std::env::temp_dir().join(format!("fjord-amq-manifest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&script).unwrap(), &env).unwrap();
    env.set_parallelism(1);
    env.enable_checkpointing(Duration::from_secs(1));
    env.checkpoint_config(|c| c.storage = format!("file://{}", dir.display()));
    let job = env.execute_async("activemq-sql-orders").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while broker.depth("orders-shouted") < 100 || broker.depth("orders") > 0 {
        assert!(
            Instant::now() < deadline,
            "{} shouted, {} left",
            broker.depth("orders-shouted"),
            broker.depth("orders")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    job.cancel();
    let _ = job.wait();
    let shouted = broker.drain("orders-shouted");
    assert_eq!(shouted.len(), 100, "every order once");
    for (id, body) in shouted {
        let id = id.expect("the order id as correlation id");
        let customer = if id.parse::<u64>().unwrap() % 2 == 0 {
            "ANN"
        } else {
            "BOB"
        };
        assert_eq!(body, format!("{{\"id\":{id},\"customer\":\"{customer}\"}}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
