//! The Flink oracle: runs the same DataStream programs on Apache Flink (its local MiniCluster,
//! from the jars `scripts/infra/install-flink.sh` cached) so tests compare Fjord's output with
//! Flink's over the same input.
//!
//! The cases are Java programs in `scripts/infra/flink/src/fjord/oracle/` run by
//! `scripts/infra/flink.sh`; a test writes the Fjord side of each case with the same name.
//! SQL needs no twin: [`run_sql_script`] runs the very script Fjord runs on Flink's planner.

use crate::cluster::infra_dir;
use crate::error::Error;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One input line of the DataStream cases: a record or a watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OracleEvent {
    /// A record `(key, value, timestamp)`.
    Record(String, i64, i64),
    /// The watermark `ts`, emitted right after the records before it.
    Watermark(i64),
}

impl OracleEvent {
    fn line(&self) -> String {
        match self {
            OracleEvent::Record(k, v, ts) => format!("{k},{v},{ts}"),
            OracleEvent::Watermark(ts) => format!("#wm,{ts}"),
        }
    }
}

/// Runs the named cases of `DataStreamCases.java` on Flink over `input` (written to a file in
/// `dir`) and returns each case's output lines (`key,value,ts`, `late:` before late records)
/// in Flink's emission order.
///
/// # Errors
/// [`Error::Io`] when the input cannot be written; [`Error::Spawn`] when the script cannot
/// start; [`Error::Command`] when Flink fails or is not installed (the message says to run
/// `scripts/infra/install-flink.sh`).
pub fn run_datastream_cases(
    dir: &Path,
    input: &[OracleEvent],
    cases: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    run_cases("datastream", dir, input, cases)
}

/// Runs the named Flink CEP patterns of `CepCases.java` (`flink.sh cep`) over `input` (written
/// to a file in `dir`) and returns each case's lines: `key|a:v@ts,...;b:...` per match (parts
/// sorted by name), `timeout:key|...` per timed-out partial match, in Flink's emission order.
///
/// # Errors
/// As [`run_datastream_cases`].
pub fn run_cep_cases(
    dir: &Path,
    input: &[OracleEvent],
    cases: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    run_cases("cep", dir, input, cases)
}

/// Writes `input` to a file in `dir` and runs `flink.sh MODE file CASES...`.
fn run_cases(
    mode: &str,
    dir: &Path,
    input: &[OracleEvent],
    cases: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let path = dir.join("oracle-input.txt");
    let text: String = input.iter().map(|e| e.line() + "\n").collect();
    std::fs::write(&path, text).map_err(|source| Error::Io {
        action: "write",
        path: path.clone(),
        source,
    })?;
    let script = infra_dir().join("flink.sh");
    let mut cmd = Command::new(&script);
    cmd.arg(mode).arg(&path).args(cases);
    let output = cmd.output().map_err(|source| Error::Spawn {
        program: script.display().to_string(),
        source,
    })?;
    if !output.status.success() {
        return Err(Error::Command {
            command: format!("flink.sh {mode} {} {}", path.display(), cases.join(" ")),
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(parse_cases(&String::from_utf8_lossy(&output.stdout)))
}

/// Runs a Fjord SQL script on Flink's table planner (`flink.sh sql`, `SqlScript.java`): every
/// `INSERT INTO sink SELECT ...` is collected instead of written, and the result maps each sink
/// to its rows as CSV lines with Fjord's conventions (NULL empty, TIMESTAMP without trailing
/// zeros), in Flink's emission order. A changelog's rows start with their kind (`-U `, `+U `,
/// `-D `; inserts bare). Flink's Kafka SQL connector is on the classpath: `kafka` tables
/// (`debezium-json` included) and `upsert-kafka` tables read topics, bounded with
/// `'scan.bounded.mode' = 'latest-offset'`.
///
/// # Errors
/// [`Error::Spawn`] when the script cannot start; [`Error::Command`] when Flink refuses the
/// script, fails, or is not installed (the message says to run
/// `scripts/infra/install-flink.sh`).
pub fn run_sql_script(script: &Path) -> Result<BTreeMap<String, Vec<String>>, Error> {
    run_sql_script_in("sql", script)
}

/// Runs several scripts as [`run_sql_script`] does, one after the other in one JVM (`flink.sh
/// sql A B ...`): starting Flink's planner once instead of once per script. The results are in
/// the scripts' order.
///
/// # Errors
/// As [`run_sql_script`]; one failing script fails them all (stderr says which).
pub fn run_sql_scripts(scripts: &[PathBuf]) -> Result<Vec<BTreeMap<String, Vec<String>>>, Error> {
    let mut args = vec![OsString::from("sql")];
    args.extend(scripts.iter().map(OsString::from));
    let stdout = flink_sh(&args)?;
    let results = split_scripts(&stdout, scripts.len());
    if results.len() != scripts.len() {
        return Err(Error::Command {
            command: format!("flink.sh sql ({} scripts)", scripts.len()),
            code: Some(0),
            stderr: format!(
                "printed {} script sections for {} scripts",
                results.len(),
                scripts.len()
            ),
        });
    }
    Ok(results)
}

/// Runs `flink.sh ARGS...` and returns what it printed.
fn flink_sh(args: &[OsString]) -> Result<String, Error> {
    let runner = infra_dir().join("flink.sh");
    let output = Command::new(&runner)
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: runner.display().to_string(),
            source,
        })?;
    if !output.status.success() {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return Err(Error::Command {
            command: format!("flink.sh {}", shown.join(" ")),
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Splits the output of several scripts at their `=== SCRIPT` lines (one script prints none).
fn split_scripts(stdout: &str, scripts: usize) -> Vec<BTreeMap<String, Vec<String>>> {
    if scripts == 1 {
        return vec![parse_cases(stdout)];
    }
    let mut sections: Vec<String> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with("=== ") {
            sections.push(String::new());
        } else if let Some(section) = sections.last_mut() {
            section.push_str(line);
            section.push('\n');
        }
    }
    sections.iter().map(|s| parse_cases(s)).collect()
}

/// As [`run_sql_script`], with Flink's Parquet format on the classpath (`flink.sh
/// sql-parquet`): the script may read `'format' = 'parquet'` tables, such as the part files
/// Fjord's file sink wrote.
///
/// # Errors
/// As [`run_sql_script`].
pub fn run_parquet_sql_script(script: &Path) -> Result<BTreeMap<String, Vec<String>>, Error> {
    run_sql_script_in("sql-parquet", script)
}

fn run_sql_script_in(mode: &str, script: &Path) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let stdout = flink_sh(&[OsString::from(mode), OsString::from(script)])?;
    Ok(parse_cases(&stdout))
}

/// Splits the oracle's output at its `== case` lines.
fn parse_cases(stdout: &str) -> BTreeMap<String, Vec<String>> {
    let mut cases = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in stdout.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            current = Some(name.to_string());
            cases.insert(name.to_string(), Vec::new());
        } else if let Some(name) = &current {
            cases
                .get_mut(name)
                .expect("inserted with its header")
                .push(line.to_string());
        }
    }
    cases
}

/// Runs Flink's `avro` / `avro-confluent` SQL formats one record value at a time
/// (`flink.sh avro`, `AvroFormats.java`): `mode` is `schema` (prints the Avro schema Flink
/// derives for `row_type`, such as `` ROW<`id` INT, `name` STRING> ``), `write` (CSV rows with
/// NULL as `NULL` in, record values in hex out) or `read` (hex in, CSV rows out); `confluent`
/// uses the Confluent wire format with the schema as id 1. Returns stdout's lines.
///
/// # Errors
/// [`Error::Spawn`] when the script cannot start; [`Error::Command`] when Flink refuses the input
/// or is not installed.
pub fn run_avro_format(
    mode: &str,
    row_type: &str,
    confluent: bool,
    input: &[String],
) -> Result<Vec<String>, Error> {
    use std::io::Write as _;
    let runner = infra_dir().join("flink.sh");
    let mut cmd = Command::new(&runner);
    cmd.arg("avro").arg(mode).arg(row_type);
    if confluent {
        cmd.arg("confluent");
    }
    let command = format!("flink.sh avro {mode} '{row_type}'");
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: runner.display().to_string(),
            source,
        })?;
    let text: String = input.iter().map(|l| format!("{l}\n")).collect();
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output().map_err(|source| Error::Spawn {
        program: runner.display().to_string(),
        source,
    })?;
    let _ = writer.join();
    if !output.status.success() {
        return Err(Error::Command {
            command,
            code: output.status.code(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Runs a SQL script on Flink's table planner as written, INSERTs included and awaited
/// (`flink.sh sql-exec`, `SqlExec.java`): Flink SQL writing with its own connectors and formats,
/// such as its Kafka connector (`kafka`, `upsert-kafka`, `debezium-json`) and Avro formats.
///
/// # Errors
/// As [`run_sql_script`].
pub fn run_sql_exec(script: &Path) -> Result<(), Error> {
    flink_sh(&[OsString::from("sql-exec"), OsString::from(script)]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_split_per_case() {
        let parsed = parse_cases("== a\nx,1,2\ny,3,4\n== b\n== c\nlate:z,5,6\n");
        assert_eq!(parsed["a"], vec!["x,1,2", "y,3,4"]);
        assert!(parsed["b"].is_empty());
        assert_eq!(parsed["c"], vec!["late:z,5,6"]);
    }

    #[test]
    fn output_of_several_scripts_is_split_per_script() {
        let parsed = split_scripts("=== /a.sql\n== s\n1,x\n=== /b.sql\n== s\n== t\n2,y\n", 2);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0]["s"], vec!["1,x"]);
        assert!(parsed[1]["s"].is_empty());
        assert_eq!(parsed[1]["t"], vec!["2,y"]);
    }

    #[test]
    fn input_lines_match_the_java_reader() {
        assert_eq!(OracleEvent::Record("k".into(), -3, 17).line(), "k,-3,17");
        assert_eq!(OracleEvent::Watermark(9).line(), "#wm,9");
    }
}
