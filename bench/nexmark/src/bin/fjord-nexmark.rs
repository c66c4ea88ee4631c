//! `fjord-nexmark`: writes Nexmark events to files, runs a query on Fjord's embedded
//! mini-cluster and times it, and compares two engines' results (docs/nexmark.md).
//!
//! ```text
//! fjord-nexmark generate --dir DIR [--files N] [--side-input FILE] --events.num N [generator keys]
//! fjord-nexmark run QUERY [--parallelism P] [--checkpoint-interval-ms MS --checkpoint-storage URL]
//!                         [--state-backend heap|rocksdb [--state-backend-dir DIR]]
//!                         (--input DIR | generator keys) [--output PATH]
//! fjord-nexmark sql QUERY_FILE --input DIR [--parallelism P] [--checkpoint-interval-ms MS
//!                              --checkpoint-storage URL] [--state-backend ...] [--output DIR]
//! fjord-nexmark compare LEFT RIGHT [QUERY]
//! ```
//!
//! `sql` runs a query's SQL text (e.g. `bench/nexmark/flink/q1.sql`) with `fjord-sql` over the
//! event files, after the benchmark's `nexmark` table and views; `--output` writes its rows as
//! CSV files instead of the text's `blackhole` sink.
//!
//! `--state-backend` picks the keyed state backend as `state.backend.type` does (default: the
//! `FJORD_STATE_BACKEND` variable, else the heap); RocksDB checkpoints incrementally, its files
//! under `--state-backend-dir` (default: the system's temporary directory).
//!
//! `run` prints one JSON line: query, parallelism, seconds (the job's net runtime),
//! checkpoints completed. `compare` with an updating QUERY (q4, q9, q15–q19) compares the
//! tables the two changelogs leave. Exit codes: 0 done (for `compare`: the same rows), 1 failed or
//! different rows, 2 bad usage.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use fjord::state::StateBackendKind;
use fjord::{JobArgs, StreamExecutionEnvironment};
use fjord_nexmark::compare::{
    compare_changelogs, compare_changelogs_by_key, compare_rows, read_rows,
};
use fjord_nexmark::projections::{SIDE_INPUT_ROWS, write_side_input};
use fjord_nexmark::{NexmarkConfig, build_job, is_updating, upsert_key, write_files};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "usage:
  fjord-nexmark generate --dir DIR [--files N] [--side-input FILE] --events.num N [generator keys: --tps, --seed, ...]
  fjord-nexmark run QUERY [--parallelism P] [--checkpoint-interval-ms MS --checkpoint-storage URL] [--state-backend heap|rocksdb [--state-backend-dir DIR]] (--input DIR | generator keys) [--output PATH]
  fjord-nexmark sql QUERY_FILE --input DIR [--parallelism P] [--checkpoint-interval-ms MS --checkpoint-storage URL] [--state-backend heap|rocksdb [--state-backend-dir DIR]] [--output DIR]
  fjord-nexmark compare LEFT RIGHT [QUERY]";

fn main() -> ExitCode {
    #[cfg(feature = "rocksdb")]
    fjord_rocksdb::register();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => generate(&args[1..]),
        Some("run") if args.len() >= 2 => run(&args[1], &args[2..]),
        Some("sql") if args.len() >= 2 => sql(&args[1], &args[2..]),
        Some("compare") if (3..=4).contains(&args.len()) => {
            compare(&args[1], &args[2], args.get(3).map(String::as_str))
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e.downcast_ref::<fjord::FjordError>() {
                Some(fjord::FjordError::BadArguments(_)) => 2,
                _ => 1,
            })
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn generate(raw: &[String]) -> Result<ExitCode> {
    let args = JobArgs::parse(raw.iter().cloned())?;
    let dir = args.required("dir")?.to_string();
    let files: usize = args.get_parsed("files", 1)?;
    let config = NexmarkConfig::from_args(&args)?;
    let side_input = args.get("side-input").map(str::to_string);
    args.check_used("generate")?;
    if let Some(path) = side_input {
        write_side_input(Path::new(&path), SIDE_INPUT_ROWS)?;
    }
    let started = Instant::now();
    let events = write_files(&config, Path::new(&dir), files)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"events\":{events},\"files\":{files},\"seconds\":{secs:.3},\"dir\":{}}}",
        serde_json::to_string(&dir)?
    );
    Ok(ExitCode::SUCCESS)
}

/// An environment with the `--parallelism`, checkpointing and state backend arguments applied.
fn environment(args: &JobArgs) -> Result<(StreamExecutionEnvironment, usize)> {
    let env = StreamExecutionEnvironment::new();
    let parallelism: usize = args.get_parsed("parallelism", 1)?;
    if parallelism == 0 {
        return Err("--parallelism 0: give at least 1".into());
    }
    env.set_parallelism(parallelism);
    let interval: u64 = args.get_parsed("checkpoint-interval-ms", 0)?;
    if interval > 0 {
        let storage = args.required("checkpoint-storage")?.to_string();
        env.enable_checkpointing(Duration::from_millis(interval));
        env.checkpoint_config(|c| c.storage = storage);
    }
    let dir = args.get("state-backend-dir").map(PathBuf::from);
    match args.get("state-backend") {
        Some(name) => {
            env.set_state_backend(StateBackendKind::parse(name, dir)?);
        }
        None if dir.is_some() => {
            return Err("--state-backend-dir needs --state-backend rocksdb".into());
        }
        None => {}
    }
    Ok((env, parallelism))
}

/// Runs the job built in `env` and prints its one JSON line.
fn execute(
    env: &StreamExecutionEnvironment,
    engine: &str,
    query: &str,
    parallelism: usize,
) -> Result<ExitCode> {
    let result = env.execute(&format!("nexmark {query}"))?;
    println!(
        "{{\"engine\":\"{engine}\",\"query\":\"{query}\",\"parallelism\":{parallelism},\"seconds\":{:.3},\"checkpoints\":{}}}",
        result.net_runtime.as_secs_f64(),
        result.completed_checkpoints
    );
    Ok(ExitCode::SUCCESS)
}

fn run(query: &str, raw: &[String]) -> Result<ExitCode> {
    let args = JobArgs::parse(raw.iter().cloned())?;
    let (env, parallelism) = environment(&args)?;
    build_job(query, &env, &args)?;
    args.check_used(&format!("nexmark {query}"))?;
    execute(&env, "fjord", query, parallelism)
}

fn sql(query_file: &str, raw: &[String]) -> Result<ExitCode> {
    let args = JobArgs::parse(raw.iter().cloned())?;
    let (env, parallelism) = environment(&args)?;
    let input = args.required("input")?.to_string();
    let output = args.get("output").map(std::path::PathBuf::from);
    args.check_used("nexmark sql")?;
    let text = std::fs::read_to_string(query_file)
        .map_err(|e| format!("cannot read {query_file}: {e}"))?;
    let script = fjord_nexmark::sql::script(&text, Path::new(&input), output.as_deref())?;
    let job = fjord_sql::plan(&script)?;
    fjord_sql::build(&job, &env)?;
    let query = Path::new(query_file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sql");
    execute(&env, "fjord-sql", query, parallelism)
}

fn compare(left: &str, right: &str, query: Option<&str>) -> Result<ExitCode> {
    let l = read_rows(Path::new(left))?;
    let r = read_rows(Path::new(right))?;
    let c = match query {
        Some(q) if upsert_key(q).is_some() => {
            compare_changelogs_by_key(&l, &r, upsert_key(q).unwrap_or(1))?
        }
        Some(q) if is_updating(q) => compare_changelogs(&l, &r)?,
        _ => compare_rows(&l, &r),
    };
    println!("{c}");
    Ok(if c.same() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
