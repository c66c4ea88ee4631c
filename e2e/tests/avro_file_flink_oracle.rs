//! Apache Flink reads the Avro container files Fjord writes, and Fjord reads Flink's: Flink
//! 2.3's filesystem connector with its `avro` format (flink-sql-avro, `flink.sh sql`) is the
//! independent reader and writer.
//!
//! - A Fjord SQL job writes every column type as Avro with each codec Fjord has (null,
//!   deflate, snappy); Flink reads the directories and its rows equal the rows Fjord wrote as
//!   CSV from the same SELECT. In the same run Flink writes the table itself: Fjord reads
//!   Flink's files back to Flink's rows, and both write the same schema into the header.
//! - A Fjord DataStream job writes serde records as Avro exactly-once through a failure and a
//!   restore; Flink reads every record exactly once.
//! - examples/sql/avro_orders.sql, verbatim but for its directories: Flink reads its output.
//!
//! Needs Flink's jars: `scripts/infra/install-flink.sh` (flink-sql-avro is in its SQL libs).

use fjord::StreamExecutionEnvironment;
use fjord::sinks::{ExactlyOnceFileSink, RollingPolicy};
use fjord_avro::{AvroFileFormat, Codec};
use fjord_e2e::flink::run_sql_script;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

mod file_format_oracle;
use file_format_oracle::{
    COLUMNS, ORDERS, SELECT, csv_lines, failing_once_job, orders_ddl, run_fjord, visible_files,
};

/// Flink's rows of each `INSERT INTO sink SELECT ...` of a script, sorted.
fn flink_rows(dir: &Path, script: &str) -> BTreeMap<String, Vec<String>> {
    file_format_oracle::flink_rows(dir, script, run_sql_script)
}

/// Flink SQL reading an Avro directory as table `name` into sink `<name>_rows`.
fn flink_read_ddl(name: &str, avro_dir: &Path, columns: &str) -> String {
    format!(
        "CREATE TABLE {name} ({columns}) WITH ('connector' = 'filesystem',
                                               'path' = 'file://{}', 'format' = 'avro');
         CREATE TABLE {name}_rows ({columns}) WITH ('connector' = 'blackhole');
         INSERT INTO {name}_rows SELECT * FROM {name};\n",
        avro_dir.display()
    )
}

/// The `avro.schema` and `avro.codec` of a container file, the schema normalized (parsed
/// and written again by apache-avro) so two writers' JSON compare by meaning.
fn header(path: &Path) -> (serde_json::Value, String) {
    let metadata = fjord_avro::read_metadata(&std::fs::read(path).unwrap()).unwrap();
    let text = |key: &str| String::from_utf8(metadata[key].clone()).unwrap();
    let schema = fjord_avro::parse_schema(&text("avro.schema")).unwrap();
    (serde_json::to_value(&schema).unwrap(), text("avro.codec"))
}

#[test]
fn flink_and_fjord_read_each_others_avro_files_of_every_type_and_codec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    let codecs = ["null", "deflate", "snappy"];
    let mut script = format!(
        "{}
         CREATE TABLE expected ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/expected', 'format' = 'csv');
         INSERT INTO expected {SELECT};
         CREATE TABLE avro_default ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/avro_default', 'format' = 'avro');
         INSERT INTO avro_default {SELECT};\n",
        orders_ddl(&d)
    );
    for codec in codecs {
        script.push_str(&format!(
            "CREATE TABLE avro_{codec} ({COLUMNS})
               WITH ('connector' = 'filesystem', 'path' = 'file://{d}/avro_{codec}',
                     'format' = 'avro', 'avro.codec' = '{codec}');
             INSERT INTO avro_{codec} {SELECT};\n"
        ));
    }
    run_fjord(&script);
    let expected = csv_lines(&dir.path().join("expected"));
    assert_eq!(expected.len(), ORDERS.lines().count());

    // One Flink run: it reads Fjord's four directories, and writes the table itself (for
    // real: EXECUTE INSERT, Flink's default codec) and reads that back.
    let mut flink_script = orders_ddl(&d);
    for sub in ["avro_default", "avro_null", "avro_deflate", "avro_snappy"] {
        flink_script.push_str(&flink_read_ddl(sub, &dir.path().join(sub), COLUMNS));
    }
    flink_script.push_str(&format!(
        "CREATE TABLE by_flink ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = 'file://{d}/by_flink', 'format' = 'avro');
         EXECUTE INSERT INTO by_flink {SELECT};\n"
    ));
    flink_script.push_str(&flink_read_ddl(
        "flink_back",
        &dir.path().join("by_flink"),
        COLUMNS,
    ));
    let mut flink = flink_rows(dir.path(), &flink_script);
    for (sub, codec) in [
        ("avro_default", "snappy"),
        ("avro_null", "null"),
        ("avro_deflate", "deflate"),
        ("avro_snappy", "snappy"),
    ] {
        let parts = visible_files(&dir.path().join(sub));
        assert!(
            !parts.is_empty() && parts.iter().all(|n| n.ends_with(".avro")),
            "{sub}: {parts:?}"
        );
        for p in &parts {
            assert_eq!(header(&dir.path().join(sub).join(p)).1, codec, "{sub}/{p}");
        }
        assert_eq!(
            flink.remove(&format!("{sub}_rows")).unwrap(),
            expected,
            "{sub}: Flink's rows (left), Fjord's (right)"
        );
    }
    let flink_back = flink.remove("flink_back_rows").unwrap();
    assert_eq!(flink_back, expected, "Flink wrote the same rows");

    // Fjord reads Flink's files.
    run_fjord(&format!(
        "CREATE TABLE by_flink ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/by_flink', 'format' = 'avro');
         CREATE TABLE fjord_read ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/fjord_read', 'format' = 'csv');
         INSERT INTO fjord_read SELECT * FROM by_flink;"
    ));
    assert_eq!(
        csv_lines(&dir.path().join("fjord_read")),
        flink_back,
        "Fjord's rows of Flink's files (left), Flink's (right)"
    );

    // The same table's header, as each writes it.
    let first = |sub: &str| {
        let names = visible_files(&dir.path().join(sub));
        dir.path().join(sub).join(&names[0])
    };
    assert_eq!(
        header(&first("avro_default")),
        header(&first("by_flink")),
        "Fjord's schema and codec (left), Flink's (right)"
    );
}

/// A trade as a DataStream job writes it, in the record schema Flink derives for the table
/// `(id BIGINT, symbol STRING, qty INT, ts TIMESTAMP(3))`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Trade {
    id: i64,
    symbol: Option<String>,
    qty: Option<i32>,
    ts: i64,
}

const TRADE_SCHEMA: &str = r#"{"type": "record", "name": "record",
  "namespace": "org.apache.flink.avro.generated",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "symbol", "type": ["null", "string"], "default": null},
    {"name": "qty", "type": ["null", "int"], "default": null},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

fn trade(i: u64) -> Trade {
    Trade {
        id: i as i64,
        symbol: (!i.is_multiple_of(3)).then(|| format!("SYM{}", i % 17)),
        qty: (!i.is_multiple_of(7)).then(|| (i % 100) as i32 - 50),
        ts: 1_700_000_000_000 + i as i64 * 250,
    }
}

#[test]
fn flink_reads_every_record_of_an_exactly_once_avro_job_with_a_failure_once()
-> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("trades");
    let url = format!("file://{}", out.display());
    let records = 5000u64;
    // The block of docs/connectors/avro.md, verbatim:
    let format = AvroFileFormat::<Trade>::for_serde(TRADE_SCHEMA)?.with_codec(Codec::Deflate);
    let sink = ExactlyOnceFileSink::for_format(&url, format)
        .with_rolling_policy(
            RollingPolicy::on_checkpoint()
                .with_part_size(64 << 20)
                .with_inactivity_interval(Duration::from_secs(60)),
        )
        .with_bucket_check_interval(Duration::from_secs(10));
    let env = StreamExecutionEnvironment::new();
    failing_once_job(&env, dir.path(), records, 10_000.0, trade)
        .sink_to_transactional(sink, "avro")
        .uid("avro");
    let result = env.execute("avro exactly once")?;
    assert!(
        result.attempts > 1,
        "the injected failure restarted the job"
    );
    assert!(
        result.completed_checkpoints > 1,
        "parts were committed by checkpoints: {} completed",
        result.completed_checkpoints
    );
    let parts = visible_files(&out);
    assert!(parts.len() > 2, "parts rolled at checkpoints: {parts:?}");

    let columns = "id BIGINT, symbol STRING, qty INT, ts TIMESTAMP(3)";
    let flink = flink_rows(dir.path(), &flink_read_ddl("trades", &out, columns))
        .remove("trades_rows")
        .unwrap();
    let mut expected: Vec<String> = (0..records)
        .map(|i| {
            let t = trade(i);
            format!(
                "{},{},{},{}",
                t.id,
                t.symbol.unwrap_or_default(),
                t.qty.map(|q| q.to_string()).unwrap_or_default(),
                fjord_sql::types::format_timestamp_compact(t.ts)
            )
        })
        .collect();
    expected.sort();
    assert_eq!(flink.len(), expected.len(), "Flink read each record once");
    assert_eq!(flink, expected);
    // And Fjord's own reader agrees, part by part.
    let mut ids: Vec<i64> = Vec::new();
    for p in &parts {
        let bytes = std::fs::read(out.join(p)).unwrap();
        ids.extend(
            fjord_avro::read_serde::<Trade>(&bytes)
                .unwrap()
                .iter()
                .map(|t| t.id),
        );
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..records as i64).collect::<Vec<_>>());
    Ok(())
}

/// The ```rust block of the container files section of docs/connectors/avro.md is code of
/// the exactly-once test above, line for line (indentation aside).
#[test]
fn the_docs_block_is_the_tested_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let docs = std::fs::read_to_string(root.join("docs/connectors/avro.md")).unwrap();
    let section = &docs[docs
        .find("## Container files")
        .expect("a container files section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    assert!(
        fjord_e2e::jobs::is_code_of(block, include_str!("avro_file_flink_oracle.rs")),
        "docs/connectors/avro.md's container files example is not the tested code:\n{block}"
    );
}

/// examples/sql/avro_orders.sql verbatim but for its directories: Flink reads what it
/// wrote, the rows the same SELECT writes as CSV.
#[test]
fn the_avro_example_writes_orders_flink_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = std::fs::read_to_string(root.join("examples/sql/avro_orders.sql")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = dir.path().join("orders");
    let mut script = example.clone();
    for (from, to) in [
        (
            "'examples/sql/orders.csv'".to_string(),
            format!("'{}'", root.join("examples/sql/orders.csv").display()),
        ),
        (
            "'file:///tmp/fjord-avro/orders'".to_string(),
            format!("'file://{}'", out.display()),
        ),
    ] {
        assert!(
            script.contains(&from),
            "the example changed: {from} is gone"
        );
        script = script.replace(&from, &to);
    }
    let columns = "id INT, customer STRING, amount DECIMAL(10, 2), qty INT, ts TIMESTAMP(3), \
                   order_date DATE";
    script.push_str(&format!(
        "CREATE TABLE expected ({columns})
           WITH ('connector' = 'filesystem', 'path' = '{d}/expected', 'format' = 'csv');
         INSERT INTO expected
         SELECT id, customer, CAST(amount AS DECIMAL(10, 2)), qty, ts, CAST(ts AS DATE)
         FROM orders;"
    ));
    run_fjord(&script);
    let expected = csv_lines(&dir.path().join("expected"));
    let orders = std::fs::read_to_string(root.join("examples/sql/orders.csv")).unwrap();
    assert_eq!(expected.len(), orders.lines().count());
    for p in visible_files(&out) {
        assert_eq!(header(&out.join(&p)).1, "deflate", "{p}");
    }
    let flink = flink_rows(dir.path(), &flink_read_ddl("orders_avro", &out, columns))
        .remove("orders_avro_rows")
        .unwrap();
    assert_eq!(flink, expected);
}
