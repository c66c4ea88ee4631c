//! Apache Flink reads the Parquet files Fjord writes, and Fjord reads Flink's: Flink 2.3's
//! `parquet` format (flink-sql-parquet with Hadoop's client classes, `flink.sh sql-parquet`)
//! is the independent reader and writer.
//!
//! - A Fjord SQL job writes every column type as Parquet (two option sets); Flink reads the
//!   directories and its rows equal the rows Fjord wrote as CSV from the same SELECT.
//! - A Fjord DataStream job writes Parquet exactly-once through a failure and a restore;
//!   Flink reads every record exactly once.
//! - Flink writes Parquet; Fjord's `filesystem` source reads it back to the rows Flink reads,
//!   and Fjord's Parquet schema for the same table equals Flink's, column by column.
//! - The script of docs/connectors/formats.md, verbatim.
//!
//! Needs Flink's jars: `scripts/infra/install-flink.sh` (resolves flink-sql-parquet and the
//! Hadoop client into `~/.cache/fjord/flink-<version>/parquet-libs`).

use fjord::StreamExecutionEnvironment;
use fjord::sinks::ExactlyOnceFileSink;
use fjord_e2e::flink::run_parquet_sql_script;
use fjord_parquet::{Column, ColumnType, ParquetFormat, ParquetOptions, ParquetSchema, SerdeRows};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

mod file_format_oracle;
use file_format_oracle::{
    COLUMNS, ORDERS, SELECT, csv_lines, failing_once_job, orders_ddl, run_fjord, visible_files,
};

/// Flink's rows of each `INSERT INTO sink SELECT ...` of a script, sorted.
fn flink_rows(dir: &Path, script: &str) -> BTreeMap<String, Vec<String>> {
    file_format_oracle::flink_rows(dir, script, run_parquet_sql_script)
}

/// Flink reading a Parquet directory into the rows it prints, for a table of `columns`.
fn flink_reads(dir: &Path, parquet_dir: &Path, columns: &str, options: &str) -> Vec<String> {
    let script = format!(
        "CREATE TABLE pq ({columns}) WITH ('connector' = 'filesystem', 'path' = 'file://{}',
                                         'format' = 'parquet'{options});
         CREATE TABLE read_back ({columns}) WITH ('connector' = 'blackhole');
         INSERT INTO read_back SELECT * FROM pq;",
        parquet_dir.display()
    );
    flink_rows(dir, &script).remove("read_back").unwrap()
}

#[test]
fn flink_reads_the_parquet_files_of_a_fjord_sql_job_as_the_rows_fjord_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    let script = format!(
        "{}
         CREATE TABLE expected ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/expected', 'format' = 'csv');
         CREATE TABLE pq_default ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = 'file://{d}/pq_default', 'format' = 'parquet');
         CREATE TABLE pq_int64 ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = 'file://{d}/pq_int64', 'format' = 'parquet',
                 'parquet.compression' = 'GZIP', 'parquet.write.int64.timestamp' = 'true',
                 'parquet.timestamp.time.unit' = 'millis', 'parquet.enable.dictionary' = 'false');
         CREATE TABLE pq_local ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/pq_local', 'format' = 'parquet',
                 'parquet.compression' = 'LZ4_RAW', 'parquet.write.int64.timestamp' = 'true');
         INSERT INTO expected {SELECT};
         INSERT INTO pq_default {SELECT};
         INSERT INTO pq_int64 {SELECT};
         INSERT INTO pq_local {SELECT};",
        orders_ddl(&d)
    );
    run_fjord(&script);
    let expected = csv_lines(&dir.path().join("expected"));
    assert_eq!(expected.len(), ORDERS.lines().count());
    // Fjord writes a TIMESTAMP's wall-clock value, as Flink does with 'parquet.utc-timezone'.
    let utc = ", 'parquet.utc-timezone' = 'true'";
    for (sink, options) in [("pq_default", utc), ("pq_int64", ""), ("pq_local", "")] {
        let parts = visible_files(&dir.path().join(sink));
        assert!(
            parts.iter().all(|n| n.ends_with(".parquet")),
            "{sink}: {parts:?}"
        );
        let flink = flink_reads(dir.path(), &dir.path().join(sink), COLUMNS, options);
        assert_eq!(
            flink, expected,
            "{sink}: Flink's rows (left), Fjord's (right)"
        );
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Trade {
    id: i64,
    symbol: Option<String>,
    price: String,
    ts: i64,
}

fn trade(i: u64) -> Trade {
    Trade {
        id: i as i64,
        symbol: (!i.is_multiple_of(3)).then(|| format!("SYM{}", i % 17)),
        price: format!("{}.{:02}", i / 7, i % 100),
        ts: 1_700_000_000_000 + i as i64 * 250,
    }
}

#[test]
fn flink_reads_every_record_of_an_exactly_once_parquet_job_with_a_failure_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trades");
    let url = format!("file://{}", out.display());
    let records = 5000u64;
    let schema = ParquetSchema::new(vec![
        Column::new("id", ColumnType::BigInt).required(),
        Column::new("symbol", ColumnType::String),
        Column::new(
            "price",
            ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
        ),
        Column::new("ts", ColumnType::Timestamp(Default::default())),
    ])
    .unwrap();
    let format = ParquetFormat::<Trade>::new(schema, ParquetOptions::default(), SerdeRows).unwrap();
    let env = StreamExecutionEnvironment::new();
    // About a second of input: checkpoints every 20 ms complete several times also on a
    // loaded machine (at 25 000/s one run saw a single one).
    failing_once_job(&env, dir.path(), records, 5_000.0, trade)
        .sink_to_transactional(ExactlyOnceFileSink::for_format(&url, format), "parquet")
        .uid("parquet");
    let result = env.execute("parquet exactly once").unwrap();
    assert!(
        result.attempts > 1,
        "the injected failure restarted the job"
    );
    assert!(
        result.completed_checkpoints > 1,
        "parts were committed by checkpoints"
    );
    let parts = visible_files(&out);
    assert!(parts.len() > 2, "parts rolled at checkpoints: {parts:?}");

    let flink = flink_reads(
        dir.path(),
        &out,
        "id BIGINT, symbol STRING, price DECIMAL(12, 2), ts TIMESTAMP(3)",
        ", 'parquet.utc-timezone' = 'true'",
    );
    let mut expected: Vec<String> = (0..records)
        .map(|i| {
            let t = trade(i);
            let price = fjord_sql::decimal::parse(&t.price, 12, 2)
                .unwrap()
                .unwrap()
                .to_format_string();
            format!(
                "{},{},{},{}",
                t.id,
                t.symbol.unwrap_or_default(),
                price,
                fjord_sql::types::format_timestamp_compact(t.ts)
            )
        })
        .collect();
    expected.sort();
    assert_eq!(flink.len(), expected.len(), "Flink read each record once");
    assert_eq!(flink, expected);
}

#[test]
fn fjord_reads_the_parquet_files_flink_writes_and_writes_flinks_schema() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    // Flink writes the table (for real: EXECUTE INSERT), then reads it back.
    let flink_script = format!(
        "{}
         CREATE TABLE by_flink ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = 'file://{d}/by_flink', 'format' = 'parquet',
                 'parquet.utc-timezone' = 'true');
         EXECUTE INSERT INTO by_flink {SELECT};
         CREATE TABLE read_back ({COLUMNS}) WITH ('connector' = 'blackhole');
         INSERT INTO read_back SELECT * FROM by_flink;",
        orders_ddl(&d)
    );
    let flink = flink_rows(dir.path(), &flink_script)
        .remove("read_back")
        .unwrap();
    assert_eq!(flink.len(), ORDERS.lines().count());

    // Fjord reads Flink's files, and writes the same table itself.
    let fjord_script = format!(
        "{}
         CREATE TABLE by_flink ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/by_flink', 'format' = 'parquet');
         CREATE TABLE fjord_read ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/fjord_read', 'format' = 'csv');
         CREATE TABLE by_fjord ({COLUMNS})
           WITH ('connector' = 'filesystem', 'path' = '{d}/by_fjord', 'format' = 'parquet');
         INSERT INTO fjord_read SELECT * FROM by_flink;
         INSERT INTO by_fjord {SELECT};",
        orders_ddl(&d)
    );
    run_fjord(&fjord_script);
    assert_eq!(
        csv_lines(&dir.path().join("fjord_read")),
        flink,
        "Fjord's rows of Flink's files (left), Flink's (right)"
    );

    // The same table's Parquet schema, as each writes it.
    let schema_of = |sub: &str| {
        let name = visible_files(&dir.path().join(sub))
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no file in {sub}"));
        let bytes = std::fs::read(dir.path().join(sub).join(name)).unwrap();
        let reader =
            parquet::file::reader::SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        meta.file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| {
                let t = c.self_type();
                let info = t.get_basic_info();
                format!(
                    "{} {:?} {:?} {:?} {:?} len={}",
                    c.name(),
                    info.repetition(),
                    c.physical_type(),
                    info.converted_type(),
                    c.logical_type_ref(),
                    c.type_length()
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        schema_of("by_fjord"),
        schema_of("by_flink"),
        "Fjord's Parquet schema (left), Flink's (right)"
    );
}

fn docs_script() -> String {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join("docs/connectors/formats.md")).unwrap();
    let start = docs.find("```sql\n").expect("a sql block") + "```sql\n".len();
    docs[start..start + docs[start..].find("```").unwrap()].to_string()
}

#[test]
fn the_docs_script_writes_parquet_that_flink_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    let columns =
        "id INT, customer STRING, amount DECIMAL(10, 2), ts TIMESTAMP(3), order_date DATE";
    // The docs script verbatim (its directory moved into the test's), and the same SELECT
    // into CSV for the expected rows.
    let script = format!(
        "{}
         CREATE TABLE expected ({columns})
           WITH ('connector' = 'filesystem', 'path' = '{d}/expected', 'format' = 'csv');
         INSERT INTO expected
         SELECT id, customer, CAST(amount AS DECIMAL(10, 2)), ts, CAST(ts AS DATE) FROM orders;",
        docs_script().replace("/tmp/fjord-formats", &d)
    );
    run_fjord(&script);
    let flink = flink_reads(
        dir.path(),
        &dir.path().join("orders-parquet"),
        columns,
        ", 'parquet.utc-timezone' = 'true'",
    );
    let expected = csv_lines(&dir.path().join("expected"));
    assert_eq!(expected.len(), ORDERS.lines().count());
    assert_eq!(flink, expected);
}

/// examples/streamjobs/parquet-sql-orders.yaml's script, verbatim but for the directory and
/// a bounded, faster source; with checkpoints every 50 ms. Flink reads every order once, and
/// Fjord reads the same rows as Flink.
#[test]
fn the_parquet_streamjob_script_writes_orders_flink_reads_once() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("examples/streamjobs/parquet-sql-orders.yaml")).unwrap(),
    )
    .unwrap();
    let sql = manifest["spec"]["job"]["sql"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = dir.path().join("orders-parquet");
    let script = sql
        .replace(
            "s3://fjord/orders-parquet",
            &format!("file://{}", out.display()),
        )
        .replace(
            "'fields.order_id.end' = '1000000'",
            "'fields.order_id.end' = '3000'",
        )
        .replace("'rows-per-second' = '100'", "'rows-per-second' = '20000'");
    assert_ne!(script, sql);
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(50));
    env.checkpoint_config(|c| c.storage = format!("file://{d}/checkpoints"));
    fjord_sql::build(&job, &env).unwrap();
    env.execute("parquet streamjob").unwrap();

    let columns = "order_id BIGINT, product STRING, amount DECIMAL(10, 2), ts TIMESTAMP(3), \
                   order_date DATE";
    let flink = flink_reads(
        dir.path(),
        &out,
        columns,
        ", 'parquet.utc-timezone' = 'true'",
    );
    let mut ids: Vec<u64> = flink
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=3000).collect::<Vec<u64>>(), "every order once");
    run_fjord(&format!(
        "CREATE TABLE pq ({columns})
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'parquet');
         CREATE TABLE back ({columns})
           WITH ('connector' = 'filesystem', 'path' = '{d}/back', 'format' = 'csv');
         INSERT INTO back SELECT * FROM pq;",
        out.display()
    ));
    assert_eq!(csv_lines(&dir.path().join("back")), flink);
}
