//! What the Flink oracles of the file formats (`parquet_flink_oracle.rs`,
//! `avro_file_flink_oracle.rs`) share: the orders both write in every column type, running a
//! Fjord SQL script, reading a directory's parts, Flink's rows of a script, and a map function
//! that fails once.

use fjord::StreamExecutionEnvironment;
use fjord::checkpoint::RestartStrategy;
use fjord::sources::GeneratorSource;
use fjord::{BoxError, Data, MapFunction, RuntimeContext, SingleOutputStreamOperator};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Orders with NULLs in every column but the key, a multi-byte name, negative amounts and
/// times around midnight. No time before 1970: Flink 2.3 fails on them itself in Parquet (its
/// INT64 timestamp reader sets negative nanoseconds on java.sql.Timestamp; its CAST of such a
/// TIMESTAMP to TIME gives a negative time of day).
pub const ORDERS: &str = "\
1,alice,10.5,2,2024-01-01 00:00:01
2,bob,,3,2024-01-01 00:00:04.5
3,,7.25,,2024-02-29 23:59:59.999
4,zoë,-3.125,1,1970-01-01 00:00:00.001
5,carol,1234567.875,-7,
6,dave,0.0,127,2000-06-15 12:00:00
";

/// The columns of the format's tables: every type Fjord's tables have.
pub const COLUMNS: &str = "id INT, flag BOOLEAN, tiny TINYINT, small SMALLINT, big BIGINT, \
                       ratio FLOAT, amount DOUBLE, name STRING, bin BYTES, d5 DECIMAL(5, 2), \
                       d15 DECIMAL(15, 3), d30 DECIMAL(30, 4), dt DATE, tod TIME(3), \
                       ts TIMESTAMP(3)";

/// The SELECT producing them from `orders`.
pub const SELECT: &str = "SELECT id, amount > 5, CAST(qty AS TINYINT), CAST(qty * 100 AS SMALLINT),
       CAST(id AS BIGINT) * 3000000000, CAST(amount AS FLOAT), amount, name,
       CAST(name AS BYTES), CAST(amount / 100 AS DECIMAL(5, 2)), CAST(amount AS DECIMAL(15, 3)),
       CAST(amount AS DECIMAL(30, 4)), CAST(ts AS DATE), CAST(ts AS TIME(3)), ts
FROM orders";

/// The `orders` table over `{dir}/orders.csv` (write [`ORDERS`] there).
pub fn orders_ddl(dir: &str) -> String {
    format!(
        "CREATE TABLE orders (id INT, name STRING, amount DOUBLE, qty INT, ts TIMESTAMP(3))
           WITH ('connector' = 'filesystem', 'path' = '{dir}/orders.csv', 'format' = 'csv',
                 'csv.null-literal' = '');\n"
    )
}

/// Runs a Fjord SQL script on the embedded mini-cluster at parallelism 2.
pub fn run_fjord(script: &str) {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("Fjord refused the script: {e}"));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    fjord_sql::build(&job, &env).unwrap();
    env.execute("file format oracle").unwrap();
}

/// The lines of the visible files of a directory, sorted.
pub fn csv_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for name in visible_files(dir) {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

/// The visible file names of a directory (not `.`-hidden in-progress parts, not `_`-marker
/// files), sorted.
pub fn visible_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && !n.starts_with('_'))
        .collect();
    names.sort();
    names
}

/// Flink's rows of each `INSERT INTO sink SELECT ...` of a script, sorted; `run` is the
/// `fjord_e2e::flink` runner with the format's jars.
pub fn flink_rows<E: std::fmt::Display>(
    dir: &Path,
    script: &str,
    run: impl FnOnce(&Path) -> Result<BTreeMap<String, Vec<String>>, E>,
) -> BTreeMap<String, Vec<String>> {
    let path = dir.join(format!("flink-{}.sql", rand::random::<u32>()));
    std::fs::write(&path, script).unwrap();
    let mut rows = run(&path).unwrap_or_else(|e| panic!("{e}"));
    for r in rows.values_mut() {
        r.sort();
    }
    rows
}

/// Panics once, in the first attempt, at the `at`-th record of the subtask.
#[derive(Clone)]
pub struct FailOnce {
    /// The record (1-based, per subtask) the first attempt fails at.
    pub at: u64,
    /// The attempt this subtask runs in.
    pub attempt: u32,
    /// Records seen in this attempt.
    pub seen: u64,
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

/// The exactly-once job of the oracles, up to its sink: `records` generated records at
/// `rate` per second (one source subtask), rebalanced over two subtasks that fail once at
/// their 1200th record; checkpoints every 20 ms into `dir/checkpoints`, up to 5 restarts.
/// Keep `env` for `execute`.
pub fn failing_once_job<T: Data>(
    env: &StreamExecutionEnvironment,
    dir: &Path,
    records: u64,
    rate: f64,
    generate: impl Fn(u64) -> T + Send + Sync + 'static,
) -> SingleOutputStreamOperator<T> {
    env.set_parallelism(2);
    env.enable_checkpointing(Duration::from_millis(20));
    env.checkpoint_config(|c| c.storage = format!("file://{}/checkpoints", dir.display()));
    env.set_restart_strategy(RestartStrategy::FixedDelay {
        attempts: 5,
        delay: Duration::from_millis(10),
    });
    env.from_source(
        GeneratorSource::new(Some(records), generate).with_rate(rate),
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
}
