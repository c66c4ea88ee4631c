//! The `parquet` format of the `filesystem` connector within Fjord: rows written as Parquet
//! read back equal to the rows written as CSV, part files roll by size, and bad options fail
//! planning with what to do. (Apache Flink reads and writes the same files in
//! e2e/tests/parquet_flink_oracle.rs.)

use std::path::Path;

const ORDERS: &str = "\
1,alice,10.5,2,2024-01-01 00:00:01
2,bob,,3,2024-01-01 00:00:04.5
3,,7.25,,2024-02-29 23:59:59.999
4,zoë,-3.125,1,1969-12-31 23:59:59.001
5,carol,1234567.875,-7,
";

const COLUMNS: &str = "id INT, flag BOOLEAN, tiny TINYINT, small SMALLINT, big BIGINT, \
                       ratio FLOAT, amount DOUBLE, name STRING, bin BYTES, d5 DECIMAL(5, 2), \
                       d30 DECIMAL(30, 4), dt DATE, tod TIME(3), ts TIMESTAMP(3)";

const SELECT: &str = "SELECT id, amount > 5, CAST(qty AS TINYINT), CAST(qty * 100 AS SMALLINT),
       CAST(id AS BIGINT) * 3000000000, CAST(amount AS FLOAT), amount, name,
       CAST(name AS BYTES), CAST(amount / 100 AS DECIMAL(5, 2)), CAST(amount AS DECIMAL(30, 4)),
       CAST(ts AS DATE), CAST(ts AS TIME(3)), ts
FROM orders";

fn run(script: &str) {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("{e}"));
    let env = fjord::StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("parquet").unwrap();
}

fn lines(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.extend(
                std::fs::read_to_string(p)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    out.sort();
    out
}

fn orders(d: &str) -> String {
    format!(
        "CREATE TABLE orders (id INT, name STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{d}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');"
    )
}

#[test]
fn rows_written_as_parquet_read_back_as_the_rows_written_as_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    for (name, options) in [
        ("int96", ""),
        (
            "int64",
            ", 'parquet.write.int64.timestamp' = 'true', 'parquet.compression' = 'UNCOMPRESSED'",
        ),
    ] {
        run(&format!(
            "{}
             CREATE TABLE direct ({COLUMNS})
               WITH ('connector' = 'filesystem', 'path' = '{d}/{name}-direct', 'format' = 'csv');
             CREATE TABLE pq ({COLUMNS})
               WITH ('connector' = 'filesystem', 'path' = 'file://{d}/{name}-pq',
                     'format' = 'parquet'{options});
             INSERT INTO direct {SELECT};
             INSERT INTO pq {SELECT};",
            orders(&d)
        ));
        run(&format!(
            "CREATE TABLE pq ({COLUMNS})
               WITH ('connector' = 'filesystem', 'path' = '{d}/{name}-pq', 'format' = 'parquet');
             CREATE TABLE back ({COLUMNS})
               WITH ('connector' = 'filesystem', 'path' = '{d}/{name}-back', 'format' = 'csv');
             INSERT INTO back SELECT * FROM pq;"
        ));
        let direct = lines(&dir.path().join(format!("{name}-direct")));
        assert_eq!(direct.len(), ORDERS.lines().count());
        assert_eq!(
            lines(&dir.path().join(format!("{name}-back"))),
            direct,
            "{name}"
        );
    }
}

#[test]
fn parquet_parts_roll_by_the_file_size_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    run(&format!(
        "CREATE TABLE src (id BIGINT, s STRING)
           WITH ('connector' = 'datagen', 'number-of-rows' = '20000', 'fields.s.length' = '20');
         CREATE TABLE pq (id BIGINT, s STRING)
           WITH ('connector' = 'filesystem', 'path' = '{d}/pq', 'format' = 'parquet',
                 'sink.rolling-policy.file-size' = '64kb', 'parquet.block.size' = '16384');
         INSERT INTO pq SELECT id, s FROM src;"
    ));
    let mut rows = 0;
    let mut parts = 0;
    for e in std::fs::read_dir(dir.path().join("pq")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            parts += 1;
            assert!(p.to_string_lossy().ends_with(".parquet"), "{}", p.display());
            rows += fjord_parquet::read_rows(std::fs::read(&p).unwrap())
                .unwrap()
                .len();
        }
    }
    assert_eq!(rows, 20000);
    assert!(parts > 2, "parts rolled at 64 kB: {parts}");
}

#[test]
fn bad_parquet_options_fail_planning_with_what_to_do() {
    let plan = |with: &str| {
        let script = format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE out (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 'file:///tmp/x',
                                                'format' = 'parquet'{with});
             INSERT INTO out SELECT id FROM src;"
        );
        match fjord_sql::plan(&script) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    };
    for (with, expect) in [
        (", 'parquet.compression' = 'ZSTD'", "pure-Rust codecs"),
        (", 'parquet.compression' = 'fast'", "unknown codec 'fast'"),
        (", 'parquet.block.size' = 'big'", "parquet.block.size"),
        (
            ", 'parquet.timestamp.time.unit' = 'days'",
            "millis, micros or nanos",
        ),
        (
            ", 'csv.field-delimiter' = ';'",
            "unsupported option 'csv.field-delimiter'",
        ),
        (
            ", 'sink.rolling-policy.file-size' = 'huge'",
            "sink.rolling-policy.file-size",
        ),
        (
            ", 'sink.rolling-policy.rollover-interval' = 'soon'",
            "sink.rolling-policy.rollover-interval",
        ),
    ] {
        let err = plan(with);
        assert!(err.contains(expect), "{with}: {err}");
    }
    assert_eq!(plan(", 'parquet.compression' = 'GZIP'"), "");
}
