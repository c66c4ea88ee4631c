//! The `fjord` binary as a user runs it: exit codes, output, Ctrl-C.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fjord() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fjord"))
}

#[test]
fn runs_wordcount_on_a_file_and_prints_updates() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "b a\nA b!\n").unwrap();
    let out = fjord()
        .args(["run", "-p", "1", "wordcount", "--input"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, "(b,1)\n(a,1)\n(a,2)\n(b,2)\n");
}

#[test]
fn a_streamjob_manifest_runs_like_the_named_job() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.txt");
    let manifest = dir.path().join("job.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: fjord.dev/v1alpha1\nkind: StreamJob\nmetadata:\n  name: t\nspec:\n  image: fjord/worker:dev\n  job:\n    name: transformations\n    args: [\"--count\", \"4\", \"--output\", \"{}\"]\n    parallelism: 1\n    upgradeMode: stateless\n",
            output.display()
        ),
    )
    .unwrap();
    let out = fjord().arg("run").arg(&manifest).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(output).unwrap(), "4\n-4\n16\n-16\n");
}

#[test]
fn bad_usage_exits_with_2_and_a_message() {
    let out = fjord().args(["run", "no-such-job"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("available jobs: "), "{stderr}");
    assert!(stderr.contains("connected-streams"), "{stderr}");

    let out = fjord()
        .args(["run", "wordcount", "stray"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument 'stray'"));
}

/// Inputs that cannot run are refused before anything runs, with exit code 2 and a message
/// that names the input and what to give instead.
#[test]
fn bad_inputs_exit_with_2_naming_the_input() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "run", "-p", "1", "counting", "--rate", "NaN", "--count", "5",
            ],
            "--rate NaN: not a finite number",
        ),
        (
            &[
                "run",
                "--checkpoint-interval",
                "99999999999999999h",
                "counting",
            ],
            "is too long",
        ),
        (
            &["run", "-p", "1", "wordcount", "--output"],
            "--output needs a value",
        ),
        (
            &["run", "-p", "1", "counting", "--count", "5", "--rte", "7"],
            "job 'counting' does not take --rte",
        ),
        (
            &["run", "-p", "1", "counting", "--count", "5", "--count", "6"],
            "--count is given twice",
        ),
        (
            &["run", "-p", "5000", "windowed-counts", "--count", "5"],
            "Use a lower -p",
        ),
    ];
    for (args, message) in cases {
        let out = fjord().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "fjord {}: {stderr}",
            args.join(" ")
        );
        assert!(
            stderr.contains(message),
            "fjord {}: {stderr}",
            args.join(" ")
        );
    }
}

#[test]
fn a_failing_job_exits_with_1_naming_the_source() {
    let out = fjord()
        .args(["run", "wordcount", "--input", "/no/such/file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/no/such/file") && stderr.contains("check that it exists"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_an_unbounded_job_cleanly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = fjord()
        .args([
            "run",
            "-p",
            "1",
            "socket-wordcount",
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.write_all(b"hello hello\n").unwrap();
    // Wait until the job has processed the line: the second update is printed.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lines.len() < 2 && Instant::now() < deadline {
        let mut l = String::new();
        if stdout.read_line(&mut l).unwrap() == 0 {
            break;
        }
        lines.push(l.trim_end().to_string());
    }
    assert_eq!(lines, vec!["(hello,1)", "(hello,2)"]);
    // The connection stays open: the job would run forever. Ctrl-C it.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Job cancelled."));
    drop(conn);
}

#[test]
fn run_from_a_savepoint_continues_the_counts() {
    use std::time::{Duration, Instant};
    // Take a savepoint of the counting job through the library, as a JobManager would.
    let savepoints = tempfile::tempdir().unwrap();
    let first_output = savepoints.path().join("first-run-output");
    let env = fjord::StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let args = fjord::JobArgs::parse([
        "--keys",
        "4",
        "--rate",
        "2000",
        "--count",
        "4000",
        "--output",
        first_output.to_str().unwrap(),
    ])
    .unwrap();
    fjord_examples::counting::build(&env, &args).unwrap();
    let client = env.execute_async("counting").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Let the first run count a part of the input before stopping it.
    loop {
        let read: u64 = client
            .io_metrics()
            .snapshot()
            .iter()
            .filter(|o| o.operator == "counts")
            .map(|o| o.records_in)
            .sum();
        if read >= 500 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first run did not start counting"
        );
        std::thread::yield_now();
    }
    let savepoint = client
        .stop_with_savepoint(&format!("file://{}", savepoints.path().display()), false)
        .unwrap();

    // `fjord run -s <savepoint>` continues from there: the final count of every key is the
    // total, not just what the second run read.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.txt");
    let out = fjord()
        .args([
            "run", "-p", "1", "-s", &savepoint, "counting", "--keys", "4", "--rate", "1000000",
            "--count", "4000", "--output",
        ])
        .arg(&output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&output).unwrap();
    for k in 0..4 {
        assert!(
            text.lines().any(|l| l == format!("(key-{k},1000)")),
            "key-{k} did not reach 1000:\n{text}"
        );
    }
    assert!(
        text.lines().count() < 4000,
        "the second run read only what the first had not"
    );
}

#[test]
fn checkpoint_flags_write_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("cp");
    let out = fjord()
        .args([
            "run",
            "-p",
            "1",
            "--checkpoint-interval",
            "50ms",
            "--checkpoint-storage",
        ])
        .arg(format!("file://{}", checkpoints.display()))
        .args([
            "counting", "--keys", "2", "--rate", "4000", "--count", "2000", "--output",
        ])
        .arg(dir.path().join("out.txt"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A finished job removes its checkpoints; the job directory was created for them.
    assert!(checkpoints.is_dir());
    let bad = fjord()
        .args(["run", "--checkpoint-interval", "soon", "counting"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a duration"));
}
