//! The `rabbitmq` SQL connector (in `fjord-sql`) against a real RabbitMQ node: the two scripts
//! of docs/connectors/rabbitmq.md, verbatim (addresses replaced), and option errors.

mod support;

use fjord_e2e::jobs::{self, lines_in as lines};
use std::time::{Duration, Instant};
use support::Broker;

fn docs_scripts() -> Vec<String> {
    jobs::sql_blocks_of("docs/connectors/rabbitmq.md")
}

#[test]
fn the_docs_scripts_write_and_read_a_queue() {
    let broker = Broker::start("sql");
    let out = std::env::temp_dir().join(format!("fjord-rmq-sql-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let scripts: Vec<String> = docs_scripts()
        .into_iter()
        .map(|s| {
            s.replace("${AMQP_URI}", broker.url())
                .replace("${OUT}", &out.display().to_string())
        })
        .collect();
    assert_eq!(scripts.len(), 2, "a writing and a reading script");
    let env = fjord::StreamExecutionEnvironment::new();
    fjord_sql::build(&fjord_sql::plan(&scripts[0]).unwrap(), &env).unwrap();
    env.execute("write").unwrap();

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
            "CREATE TABLE q (id BIGINT) WITH ('connector' = 'rabbitmq'{with});
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');
             INSERT INTO out SELECT id FROM q;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    let base = ", 'format' = 'json', 'uri' = 'amqp://h/%2f', 'queue' = 'q'";
    for (with, expect) in [
        (", 'format' = 'json'", "set 'uri'"),
        (", 'format' = 'json', 'uri' = 'amqp://h/%2f'", "set 'queue'"),
        (", 'uri' = 'amqp://h/%2f', 'queue' = 'q'", "'format'"),
        (
            &format!("{base}, 'scan.prefetch-count' = '0'") as &str,
            "from 1 to 65535",
        ),
        (
            &format!("{base}, 'sink.correlation-id-column' = 'nope'"),
            "not a column",
        ),
        (
            &format!("{base}, 'exchange' = 'x'"),
            "unsupported option 'exchange'",
        ),
    ] {
        let e = plan(with);
        assert!(e.contains(expect), "{with}: expected `{expect}` in `{e}`");
    }
    assert_eq!(plan(base), "");
}
