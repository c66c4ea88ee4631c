//! The `filesystem` connector's `raw` format and continuous directory monitoring
//! (`source.monitor-interval`): files added while the job runs are read, and after a restore
//! from a checkpoint at another parallelism no file is read twice or missed. Also reading a
//! `path` given as a `file:///` URL.

use fjord::checkpoint::CheckpointType;
use fjord::{FjordError, JobClient, StreamExecutionEnvironment};
use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{lines_in, sorted};

/// Flink's raw reading (probed on Flink 2.3's filesystem connector): a `\r` before `\n` is
/// dropped, an empty line is an empty value, the last line needs no `\n`; BYTES get the
/// bytes. Written back with `raw`, each value is a line. The source path is a `file:///`
/// URL.
#[test]
fn raw_lines_are_read_as_strings_and_bytes_and_written_back() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(
        input.join("a.txt"),
        b"hello, world\n\n  spaced  \r\nno newline at the end",
    )
    .unwrap();
    std::fs::write(input.join("b.txt"), b"\xffbyte\n").unwrap();
    let (text, bytes, copy) = (
        dir.path().join("text"),
        dir.path().join("bytes"),
        dir.path().join("copy"),
    );
    let script = format!(
        "SET 'parallelism.default' = '2';
         CREATE TABLE lines (line STRING)
           WITH ('connector' = 'filesystem', 'path' = 'file://{input}', 'format' = 'raw');
         CREATE TABLE blobs (b BYTES)
           WITH ('connector' = 'filesystem', 'path' = '{input}', 'format' = 'raw',
                 'raw.charset' = 'UTF-8');
         CREATE TABLE text (line STRING, n INT)
           WITH ('connector' = 'filesystem', 'path' = '{text}', 'format' = 'csv');
         CREATE TABLE bytes (b BYTES)
           WITH ('connector' = 'filesystem', 'path' = '{bytes}', 'format' = 'csv');
         CREATE TABLE copy (line STRING)
           WITH ('connector' = 'filesystem', 'path' = '{copy}', 'format' = 'raw');
         INSERT INTO text SELECT line, CHAR_LENGTH(line) FROM lines;
         INSERT INTO bytes SELECT b FROM blobs;
         INSERT INTO copy SELECT UPPER(line) FROM lines WHERE line <> '';",
        input = input.display(),
        text = text.display(),
        bytes = bytes.display(),
        copy = copy.display(),
    );
    let job = fjord_sql::plan(&script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).unwrap();
    env.execute("raw").unwrap();
    assert_eq!(
        lines_in(&text),
        sorted(&[
            "\"hello, world\",12",
            ",0",
            "  spaced  ,10",
            "no newline at the end,21",
            "\u{fffd}byte,5",
        ])
    );
    // BYTES are base64 in CSV: "  spaced  " without its \r, 0xff kept as it is; the empty
    // line is an empty value, which a one-column CSV line quotes.
    assert_eq!(
        lines_in(&bytes),
        sorted(&[
            "aGVsbG8sIHdvcmxk",
            "\"\"",
            "ICBzcGFjZWQgIA==",
            "bm8gbmV3bGluZSBhdCB0aGUgZW5k",
            "/2J5dGU=",
        ])
    );
    assert_eq!(
        lines_in(&copy),
        sorted(&[
            "HELLO, WORLD",
            "  SPACED  ",
            "NO NEWLINE AT THE END",
            "\u{fffd}BYTE"
        ])
    );
}

#[test]
fn raw_tables_and_monitoring_options_that_cannot_work_are_refused() {
    let cases = [
        (
            "CREATE TABLE t (a STRING, b STRING) WITH ('connector' = 'filesystem', 'path' = '/tmp', 'format' = 'raw');",
            "exactly one physical column",
        ),
        (
            "CREATE TABLE t (a INT) WITH ('connector' = 'filesystem', 'path' = '/tmp', 'format' = 'raw');",
            "declare it STRING and CAST it",
        ),
        (
            "CREATE TABLE t (a STRING) WITH ('connector' = 'filesystem', 'path' = '/tmp', 'format' = 'raw', 'raw.charset' = 'ISO-8859-1');",
            "only UTF-8",
        ),
        (
            "CREATE TABLE t (a STRING) WITH ('connector' = 'filesystem', 'path' = 'file:///no/such/dir', 'format' = 'raw');",
            "path 'file:///no/such/dir' does not exist; create it or fix 'path'",
        ),
        (
            "CREATE TABLE t (a STRING) WITH ('connector' = 'filesystem', 'path' = '/tmp', 'format' = 'raw', 'source.monitor-interval' = 'often');",
            "'source.monitor-interval' = 'often' is not a positive duration",
        ),
    ];
    for (ddl, text) in cases {
        let script = format!(
            "{ddl}\nCREATE TABLE out (a STRING) WITH ('connector' = 'blackhole');\n\
             INSERT INTO out SELECT CAST(a AS STRING) FROM t;"
        );
        let err = fjord_sql::plan(&script).expect_err(ddl).to_string();
        assert!(err.contains(text), "{ddl}: {err}");
        assert!(err.starts_with("line 3, column "), "{ddl}: {err}");
    }
}

/// Writes a file of `ids` into `dir` as Flink expects of a monitored directory: under a
/// hidden name first, then renamed, so no reader sees it half written.
fn drop_file(dir: &Path, name: &str, ids: std::ops::Range<u32>) {
    let text: String = ids.map(|i| format!("line {i}\n")).collect();
    let hidden = dir.join(format!(".{name}.inprogress"));
    std::fs::write(&hidden, text).unwrap();
    std::fs::rename(hidden, dir.join(name)).unwrap();
}

/// Waits (at most 60 s) until `out` holds `n` lines.
fn wait_for_lines(out: &Path, n: usize, client: &JobClient) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines_in(out).len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} lines within 60 s",
            lines_in(out).len()
        );
        assert!(!client.is_finished(), "a monitoring source never finishes");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(script: &str, checkpoints: &Path, restore: Option<&str>) -> JobClient {
    let job = fjord_sql::plan(script).unwrap_or_else(|e| panic!("{e}"));
    let env = StreamExecutionEnvironment::new();
    env.checkpoint_config(|c| {
        c.storage = format!("file://{}", checkpoints.display());
        c.retain_on_cancellation = true;
    });
    fjord_sql::build(&job, &env).unwrap();
    if let Some(path) = restore {
        env.restore_from(path, false);
    }
    env.execute_async("monitoring").unwrap()
}

/// Checkpoints once the job runs (a trigger before is refused), bounded.
fn checkpoint(client: &JobClient) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.trigger_checkpoint(CheckpointType::Full) {
            Err(e) if e.to_string().contains("not running") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            other => return other.expect("the checkpoint completes").path,
        }
    }
}

#[test]
fn a_monitored_directory_reads_new_files_once_across_a_restore_at_another_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out, checkpoints) = (
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("checkpoints"),
    );
    std::fs::create_dir(&input).unwrap();
    drop_file(&input, "f0.txt", 0..50);
    let script = |parallelism: usize| {
        format!(
            "SET 'parallelism.default' = '{parallelism}';
             CREATE TABLE lines (line STRING)
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'raw',
                     'source.monitor-interval' = '100ms');
             CREATE TABLE out (line STRING, n INT)
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             INSERT INTO out SELECT line, CHAR_LENGTH(line) FROM lines;",
            input.display(),
            out.display()
        )
    };
    let client = start(&script(2), &checkpoints, None);
    wait_for_lines(&out, 50, &client);
    // Files that appear while the job runs are read.
    for k in 1..4 {
        drop_file(&input, &format!("f{k}.txt"), k * 100..k * 100 + 50);
    }
    wait_for_lines(&out, 200, &client);
    let chk = checkpoint(&client);
    // Nothing new arrives after the checkpoint, so the sink (written at once) holds exactly
    // what the checkpoint covers when the job stops.
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
    assert_eq!(lines_in(&out).len(), 200);

    // While it is down, one more file; restored at parallelism 3 from the checkpoint, the
    // files read before are not read again and the new ones are.
    drop_file(&input, "f4.txt", 400..450);
    let client = start(&script(3), &checkpoints, Some(&chk));
    wait_for_lines(&out, 250, &client);
    drop_file(&input, "f5.txt", 500..550);
    wait_for_lines(&out, 300, &client);
    // Another listing or two: nothing is read twice.
    std::thread::sleep(Duration::from_millis(300));
    client.cancel();
    assert!(matches!(client.wait(), Err(FjordError::Cancelled)));
    let mut expected: Vec<String> = (0..6u32)
        .flat_map(|k| k * 100..k * 100 + 50)
        .map(|i| format!("line {i},{}", format!("line {i}").len()))
        .collect();
    expected.sort();
    assert_eq!(lines_in(&out), expected);
}
