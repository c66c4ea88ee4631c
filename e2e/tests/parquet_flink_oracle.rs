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
use fjord::checkpoint::RestartStrategy;
use fjord::sinks::ExactlyOnceFileSink;
use fjord::sources::GeneratorSource;
use fjord::{BoxError, MapFunction, RuntimeContext};
use fjord_e2e::flink::run_parquet_sql_script;
use fjord_parquet::{Column, ColumnType, ParquetFormat, ParquetOptions, ParquetSchema, SerdeRows};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Orders with NULLs in every column but the key, a multi-byte name, negative amounts and
/// times around midnight. No time before 1970: Flink 2.3 fails on them itself (its INT64
/// timestamp reader sets negative nanoseconds on java.sql.Timestamp; its CAST of such a
/// TIMESTAMP to TIME gives a negative time of day), while INT96 reads them back right.
const ORDERS: &str = "\
1,alice,10.5,2,2024-01-01 00:00:01
2,bob,,3,2024-01-01 00:00:04.5
3,,7.25,,2024-02-29 23:59:59.999
4,zoë,-3.125,1,1970-01-01 00:00:00.001
5,carol,1234567.875,-7,
6,dave,0.0,127,2000-06-15 12:00:00
";

/// The columns of the Parquet tables: every type Fjord's tables have.
const COLUMNS: &str = "id INT, flag BOOLEAN, tiny TINYINT, small SMALLINT, big BIGINT, \
                       ratio FLOAT, amount DOUBLE, name STRING, bin BYTES, d5 DECIMAL(5, 2), \
                       d15 DECIMAL(15, 3), d30 DECIMAL(30, 4), dt DATE, tod TIME(3), \
                       ts TIMESTAMP(3)";

/// The SELECT producing them from `orders`.
const SELECT: &str = "SELECT id, amount > 5, CAST(qty AS TINYINT), CAST(qty * 100 AS SMALLINT),
       CAST(id AS BIGINT) * 3000000000, CAST(amount AS FLOAT), amount, name,
       CAST(name AS BYTES), CAST(amount / 100 AS DECIMAL(5, 2)), CAST(amount AS DECIMAL(15, 3)),
       CAST(amount AS DECIMAL(30, 4)), CAST(ts AS DATE), CAST(ts AS TIME(3)), ts
FROM orders";

fn orders_ddl(dir: &str) -> String {
    format!(
        "CREATE TABLE orders (id INT, name STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');\n"
    )
}

/// Runs a Fjord SQL script on the embedded mini-cluster.
fn run_fjord(script: &str) {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("Fjord refused the script: {e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("parquet oracle").unwrap();
}

/// The lines of the (visible) files of a directory, sorted.
fn csv_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let hidden = path.file_name().unwrap().to_string_lossy().starts_with('.');
        if path.is_file() && !hidden {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(text.lines().map(str::to_string));
        }
    }
    lines.sort();
    lines
}

/// Flink's rows of each `INSERT INTO sink SELECT ...` of a script, sorted.
fn flink_rows(dir: &Path, script: &str) -> BTreeMap<String, Vec<String>> {
    let path = dir.join(format!("flink-{}.sql", rand::random::<u32>()));
    std::fs::write(&path, script).unwrap();
    let mut rows = run_parquet_sql_script(&path).unwrap_or_else(|e| panic!("{e}"));
    for r in rows.values_mut() {
        r.sort();
    }
    rows
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
        let parts = csv_lines_names(&dir.path().join(sink));
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

/// The visible file names of a directory.
fn csv_lines_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect()
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

/// Panics once, in the first attempt, at the `at`-th record of the subtask.
#[derive(Clone)]
struct FailOnce {
    at: u64,
    attempt: u32,
    seen: u64,
}

impl<T: Send + 'static> MapFunction<T, T> for FailOnce {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.attempt = ctx.attempt_number;
        self.seen = 0;
        Ok(())
    }

    fn map(&mut self, v: T) -> Result<T, BoxError> {
        self.seen += 1;
        if self.attempt == 0 && self.seen == self.at {
            panic!("injected failure at record {}", self.seen);
        }
        Ok(v)
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
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(20));
    env.checkpoint_config(|c| c.storage = format!("file://{}/checkpoints", dir.path().display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 5,
        delay: Duration::from_millis(10),
    });
    env.from_source(
        // About a second of input: checkpoints every 20 ms complete several times also on a
        // loaded machine (at 25 000/s one run saw a single one).
        GeneratorSource::new(Some(records), trade).with_rate(5_000.0),
        "trades",
    )
    .uid("trades")
    .set_parallelism(1)
    .rebalance()
    .map(FailOnce {
        at: 1200,
        attempt: 0,
        seen: 0,
    })
    .uid("fail")
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
    let parts = csv_lines_names(&out);
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
        let name = csv_lines_names(&dir.path().join(sub))
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
