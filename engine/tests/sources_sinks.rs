//! Built-in sources and sinks, including their errors on bad input.

use fjord::{FjordError, StreamExecutionEnvironment, WriteMode};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn read_text_file_reads_a_file_and_strips_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, "one\r\ntwo\n\nthree").unwrap();
    let env = env(1);
    let out = env.read_text_file(&file).collect();
    env.execute("file").unwrap();
    assert_eq!(out.values(), vec!["one", "two", "", "three"]);
}

#[test]
fn read_text_file_reads_a_directory_in_parallel_skipping_hidden_files() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(
            dir.path().join(format!("part-{i}")),
            format!("a{i}\nb{i}\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join(".hidden"), "secret\n").unwrap();
    std::fs::write(dir.path().join("_SUCCESS"), "marker\n").unwrap();
    let env = env(2);
    let out = env.read_text_file(dir.path()).collect();
    env.execute("dir").unwrap();
    let expected: Vec<String> = (0..5)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    assert_eq!(sorted(out.values()), sorted(expected));
}

#[test]
fn non_utf8_line_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.txt");
    std::fs::write(&file, b"ok\nalso ok\n\xff\xfe broken\n").unwrap();
    let env = env(1);
    env.read_text_file(&file).collect();
    let err = env.execute("bad file").unwrap_err();
    match &err {
        FjordError::Source {
            position, message, ..
        } => {
            assert!(position.ends_with("bad.txt line 3"), "{position}");
            assert!(message.contains("not valid UTF-8"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn read_text_file_with_decodes_each_line_and_names_the_line_it_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "1\r\n-2\n30").unwrap();
    let first = env(1);
    let out = first
        .read_text_file_with(&good, |line: &str| Ok(line.parse::<i64>()?))
        .collect();
    first.execute("decoded").unwrap();
    assert_eq!(out.values(), vec![1, -2, 30]);

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "1\n2\nthree\n4\n").unwrap();
    let env = env(1);
    let out = env
        .read_text_file_with(&bad, |line: &str| Ok(line.parse::<i64>()?))
        .collect();
    match env.execute("bad number").unwrap_err() {
        FjordError::Source {
            position, message, ..
        } => {
            assert!(position.ends_with("bad.txt line 3"), "{position}");
            assert!(message.contains("cannot decode the line"), "{message}");
            assert!(message.contains("invalid digit"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!out.values().contains(&4), "{:?}", out.values());
}

#[test]
fn missing_input_fails_with_a_clear_error() {
    let env = env(1);
    env.read_text_file("/definitely/not/here.txt").collect();
    let err = env.execute("missing").unwrap_err().to_string();
    assert!(err.contains("/definitely/not/here.txt"), "{err}");
    assert!(err.contains("check that it exists"), "{err}");
}

#[test]
fn socket_text_stream_reads_until_the_server_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(b"hello world\nsecond line\r\nlast without newline")
            .unwrap();
    });
    let env = env(1);
    let out = env.socket_text_stream("127.0.0.1", port).collect();
    env.execute("socket").unwrap();
    server.join().unwrap();
    assert_eq!(
        out.values(),
        vec!["hello world", "second line", "last without newline"]
    );
}

#[test]
fn refused_socket_fails_naming_the_address() {
    // Bind and drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = env(1);
    env.socket_text_stream("127.0.0.1", port).collect();
    let err = env.execute("refused").unwrap_err();
    match &err {
        FjordError::Source {
            position, message, ..
        } => {
            assert_eq!(position, &format!("127.0.0.1:{port}"));
            assert!(message.contains("cannot connect"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn write_as_text_single_file_and_parallel_directory() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("out.txt");
    let multi = dir.path().join("outdir");
    let env = env(1);
    env.from_collection(vec![("a".to_string(), 1u32), ("b".to_string(), 2)])
        .write_as_text(&single);
    env.from_sequence(1, 6)
        .rebalance()
        .map(|x: i64| x * 10)
        .set_parallelism(3)
        .write_as_text(&multi)
        .set_parallelism(3);
    env.execute("text out").unwrap();
    assert_eq!(std::fs::read_to_string(&single).unwrap(), "(a,1)\n(b,2)\n");
    let mut lines = Vec::new();
    for i in 1..=3 {
        let content = std::fs::read_to_string(multi.join(i.to_string())).unwrap();
        lines.extend(content.lines().map(|l| l.parse::<i64>().unwrap()));
    }
    assert_eq!(sorted(lines), vec![10, 20, 30, 40, 50, 60]);
}

#[test]
fn write_as_text_refuses_to_overwrite_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exists.txt");
    std::fs::write(&file, "old\n").unwrap();
    let env1 = env(1);
    env1.from_collection(vec![1]).write_as_text(&file);
    let err = env1.execute("no overwrite").unwrap_err();
    match &err {
        FjordError::Sink {
            target, message, ..
        } => {
            assert!(target.ends_with("exists.txt"));
            assert!(message.contains("WriteMode::Overwrite"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "old\n",
        "existing data untouched"
    );

    let env2 = env(1);
    env2.from_collection(vec![1])
        .write_as_text_with_mode(&file, WriteMode::Overwrite);
    env2.execute("overwrite").unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");
}

#[test]
fn write_as_csv_writes_tuples_and_structs() {
    #[derive(Clone, serde::Serialize, serde::Deserialize)]
    struct Row {
        name: String,
        score: f64,
    }
    let dir = tempfile::tempdir().unwrap();
    let tuples = dir.path().join("t.csv");
    let structs = dir.path().join("s.csv");
    let env = env(1);
    env.from_collection(vec![("x, y".to_string(), 1u8), ("z".to_string(), 2)])
        .write_as_csv(&tuples);
    env.from_collection(vec![Row {
        name: "n".into(),
        score: 1.5,
    }])
    .write_as_csv(&structs);
    env.execute("csv").unwrap();
    assert_eq!(
        std::fs::read_to_string(&tuples).unwrap(),
        "\"x, y\",1\nz,2\n"
    );
    assert_eq!(std::fs::read_to_string(&structs).unwrap(), "n,1.5\n");
}

#[test]
fn write_to_socket_sends_lines() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        BufReader::new(conn)
            .lines()
            .map(|l| l.unwrap())
            .collect::<Vec<_>>()
    });
    let env = env(1);
    env.from_collection(vec![("k".to_string(), 1u64), ("k".to_string(), 2)])
        .write_to_socket("127.0.0.1", port);
    env.execute("socket sink").unwrap();
    assert_eq!(reader.join().unwrap(), vec!["(k,1)", "(k,2)"]);
}

#[test]
fn write_to_socket_refused_fails_naming_the_address() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = env(1);
    env.from_collection(vec![1])
        .write_to_socket("127.0.0.1", port);
    let err = env.execute("refused sink").unwrap_err().to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("cannot connect"),
        "{err}"
    );
}

#[test]
fn generator_and_sequence_sources_cover_their_ranges_in_parallel() {
    let env = env(3);
    let seq = env.from_sequence(-5, 5).collect();
    let generated = env.from_generator(Some(100), |i| i * i).collect();
    env.execute("generated").unwrap();
    assert_eq!(sorted(seq.values()), (-5..=5).collect::<Vec<_>>());
    assert_eq!(
        sorted(generated.values()),
        (0..100u64).map(|i| i * i).collect::<Vec<_>>()
    );
}

#[test]
fn a_custom_parallel_source() {
    use fjord::{BoxError, RuntimeContext, Source, SourceOutput, SourceReader, SourceStatus};
    struct Countdown;
    struct Reader {
        left: u32,
        subtask: usize,
    }
    impl Source<(usize, u32)> for Countdown {
        fn create_reader(
            &self,
            ctx: &RuntimeContext,
        ) -> Result<Box<dyn SourceReader<(usize, u32)>>, BoxError> {
            Ok(Box::new(Reader {
                left: 3,
                subtask: ctx.subtask_index,
            }))
        }
    }
    impl SourceReader<(usize, u32)> for Reader {
        fn poll_next(
            &mut self,
            out: &mut SourceOutput<'_, (usize, u32)>,
        ) -> Result<SourceStatus, BoxError> {
            if self.left == 0 {
                return Ok(SourceStatus::Finished);
            }
            out.collect((self.subtask, self.left));
            self.left -= 1;
            Ok(SourceStatus::MoreAvailable)
        }
    }
    let env = env(2);
    let out = env.from_source(Countdown, "countdown").collect();
    env.execute("custom source").unwrap();
    assert_eq!(
        sorted(out.values()),
        vec![(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    );
}

#[test]
fn print_goes_to_stdout_with_subtask_prefix() {
    // The prefix logic is unit-tested in the sink; here the real process output is checked.
    let exe = std::env::current_exe().unwrap();
    if std::env::var("FJORD_PRINT_CHILD").is_ok() {
        let env = env(2);
        env.from_collection(vec![1, 2, 3, 4]).rebalance().print();
        env.from_collection(vec!["to-err".to_string()])
            .print_to_err()
            .set_parallelism(1);
        env.execute("print").unwrap();
        return;
    }
    let output = std::process::Command::new(exe)
        .args([
            "--exact",
            "print_goes_to_stdout_with_subtask_prefix",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FJORD_PRINT_CHILD", "1")
        .output()
        .unwrap();
    let mut stdout = String::new();
    output
        .stdout
        .as_slice()
        .read_to_string(&mut stdout)
        .unwrap();
    // The test harness may print its own text before the first record on the same line.
    let mut printed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.find("> ").map(|i| &l[i.saturating_sub(1)..]))
        .collect();
    printed.sort();
    assert_eq!(
        printed,
        vec!["1> 1", "1> 3", "2> 2", "2> 4"],
        "stdout was: {stdout}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().any(|l| l == "to-err"),
        "stderr was: {stderr}"
    );
}
