//! The command line of the `fjord` binary.

use crate::exit;
use crate::local::{self, LocalRun};
use crate::{WorkerError, manifest};
use clap::{Parser, Subcommand};
use fjord::JobRegistry;
use std::path::Path;
use std::process::ExitCode;

/// Fjord: a stateful stream processor in the spirit of Apache Flink.
#[derive(Parser, Debug)]
#[command(name = "fjord", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a job on the embedded mini-cluster (no cluster needed): a registered job name with
    /// its arguments, or a StreamJob manifest file. Ctrl-C stops the job cleanly.
    Run {
        /// Default parallelism (defaults to the number of cores, or the manifest's).
        #[arg(short = 'p', long)]
        parallelism: Option<usize>,
        /// Max parallelism (number of key groups).
        #[arg(long)]
        max_parallelism: Option<usize>,
        /// Checkpoint interval, e.g. `10s`, `500ms`, `1min` (a bare number is milliseconds, as in
        /// Flink; default: off, or the manifest's).
        #[arg(long, value_parser = parse_duration)]
        checkpoint_interval: Option<std::time::Duration>,
        /// Checkpoint storage URL: `file:///dir`, `s3://bucket/prefix` (S3 settings from
        /// `AWS_*` variables) or `memory://name`.
        #[arg(long)]
        checkpoint_storage: Option<String>,
        /// Start from this savepoint or checkpoint directory (Flink's `-s`).
        #[arg(short = 's', long)]
        from_savepoint: Option<String>,
        /// With --from-savepoint: drop state of operators the job no longer has.
        #[arg(long)]
        allow_non_restored_state: bool,
        /// A registered job name (see `fjord list`) or a path to a StreamJob YAML manifest.
        job: String,
        /// The job's arguments, e.g. `--input words.txt`. After a manifest they follow its
        /// `spec.job.args`, so `--key value` here overrides the manifest's value.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a SQL script (CREATE TABLE / CREATE VIEW / SET / INSERT INTO) on the embedded
    /// mini-cluster, or print its plan with --explain. See docs/sql.md. A script that does not
    /// plan exits with 2 and names the line and column.
    Sql {
        /// The script.
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        /// Print the plan (operators, keys, parallelism, state, uids) and do not run.
        #[arg(long)]
        explain: bool,
        /// Default parallelism (wins over the script's SET 'parallelism.default').
        #[arg(short = 'p', long)]
        parallelism: Option<usize>,
        /// Max parallelism (number of key groups).
        #[arg(long)]
        max_parallelism: Option<usize>,
        /// Checkpoint interval, e.g. `10s` (a bare number is milliseconds, as in Flink; wins
        /// over SET 'execution.checkpointing.interval').
        #[arg(long, value_parser = parse_duration)]
        checkpoint_interval: Option<std::time::Duration>,
        /// Checkpoint storage URL: `file:///dir`, `s3://bucket/prefix` or `memory://name`.
        #[arg(long)]
        checkpoint_storage: Option<String>,
        /// Start from this savepoint or checkpoint directory.
        #[arg(short = 's', long)]
        from_savepoint: Option<String>,
        /// With --from-savepoint: drop state of operators the job no longer has.
        #[arg(long)]
        allow_non_restored_state: bool,
    },
    /// List the jobs this binary can run.
    List,
    /// Run the JobManager in application mode: build the named job, run it (every subtask in
    /// this process, or on TaskManagers with `--scheduler taskmanagers`), and serve the REST
    /// API under /v1 and /metrics. SIGTERM or
    /// SIGINT stops it cleanly. See docs/configuration.md.
    Jobmanager(Box<crate::jobmanager::config::JobManagerArgs>),
    /// Run a TaskManager: register with the JobManager (jobmanager.rpc.address), offer its
    /// slots, run the subtasks the JobManager deploys to it and send heartbeats until SIGTERM
    /// (the JobManager deploys to TaskManagers with `--scheduler taskmanagers`). See
    /// docs/distributed-runtime.md.
    Taskmanager(Box<crate::taskmanager::config::TaskManagerArgs>),
    /// Take a savepoint of a running job through its JobManager's REST API and print its
    /// path (Flink's `flink savepoint`).
    Savepoint {
        /// The JobManager and job.
        #[command(flatten)]
        target: crate::remote::Target,
        /// Where to write it (a URL); default: the JobManager's savepoint directory.
        #[arg(long)]
        directory: Option<String>,
        /// How long to wait for it, e.g. `10m`.
        #[arg(long, value_parser = parse_duration, default_value = "10m")]
        timeout: std::time::Duration,
    },
    /// Take a checkpoint of a running job now through its JobManager's REST API and print its
    /// path (Flink's `flink checkpoint`), whether periodic checkpoints are on or off.
    Checkpoint {
        /// The JobManager and job.
        #[command(flatten)]
        target: crate::remote::Target,
        /// A full checkpoint, even with an incremental state backend (Flink's `-full`).
        #[arg(long)]
        full: bool,
        /// How long to wait for it, e.g. `10m`.
        #[arg(long, value_parser = parse_duration, default_value = "10m")]
        timeout: std::time::Duration,
    },
    /// Stop a running job with a savepoint and print its path (Flink's `flink stop`).
    Stop {
        /// The JobManager and job.
        #[command(flatten)]
        target: crate::remote::Target,
        /// Where to write it (a URL); default: the JobManager's savepoint directory.
        #[arg(long)]
        directory: Option<String>,
        /// Emit the final watermark first, so event-time windows fire (for jobs that will not
        /// be resumed; Flink's `--drain`).
        #[arg(long)]
        drain: bool,
        /// How long to wait for it, e.g. `10m`.
        #[arg(long, value_parser = parse_duration, default_value = "10m")]
        timeout: std::time::Duration,
    },
    /// Cancel a running job without a savepoint (Flink's `flink cancel`).
    Cancel {
        /// The JobManager and job.
        #[command(flatten)]
        target: crate::remote::Target,
    },
}

/// Logs at `FJORD_LOG` (an `EnvFilter`), by default warnings only, or, for the long-running
/// roles (`jobmanager`, `taskmanager`), also their lifecycle at info level (deployments,
/// completed checkpoints, restarts), as Flink's processes log.
fn init_logging(role: bool) {
    let default = if role {
        "info,h2=warn,hyper=warn,tower=warn,tonic=warn"
    } else {
        "warn"
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FJORD_LOG").unwrap_or_else(|_| default.into());
    // Logs go to stderr so job output on stdout stays clean. FJORD_LOG_FORMAT=json writes one
    // JSON object per line (the operator's spec.*.logging.format); colour codes only on a
    // terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Fails only when a subscriber is already installed (an embedding program, tests): keep it.
    let _ = if std::env::var("FJORD_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// The entry point of a worker binary: parses the command line and runs `registry`'s jobs.
/// Returns the documented exit code (see [`exit`]).
///
/// With the `rocksdb` feature it registers the RocksDB state backend first, so
/// `FJORD_STATE_BACKEND=rocksdb` (or a job's `set_state_backend`) selects it in every worker
/// binary built on this function, the stock `fjord` and users' own alike; without the feature
/// only the heap backend exists. The other features (`sql`, `manifests`, `kubernetes-ha`)
/// keep their commands and settings in every binary; without them those fail with an error
/// naming the feature (docs/custom-workers.md).
pub fn main_with(mut registry: JobRegistry) -> ExitCode {
    #[cfg(feature = "rocksdb")]
    fjord_rocksdb::register();
    if registry.get(crate::sql::SQL_JOB).is_err() {
        registry.register(
            crate::sql::SQL_JOB,
            crate::sql::SQL_JOB_DESCRIPTION,
            crate::sql::job,
        );
    }
    let cli = Cli::parse();
    init_logging(matches!(
        cli.command,
        Command::Jobmanager(_) | Command::Taskmanager(_)
    ));
    match cli.command {
        Command::List => {
            for (name, description) in registry.list() {
                println!("{name:<20} {description}");
            }
            let functions = crate::sql::describe_functions();
            if !functions.is_empty() {
                println!("\nSQL functions (user-defined):");
                for f in functions {
                    println!("  {f}");
                }
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            parallelism,
            max_parallelism,
            checkpoint_interval,
            checkpoint_storage,
            from_savepoint,
            allow_non_restored_state,
            job,
            args,
        } => {
            let overrides = local::FaultTolerance {
                checkpoint_interval,
                checkpoint_storage,
                restore_from: from_savepoint,
                allow_non_restored_state,
                ..Default::default()
            };
            let result = run_command(
                &registry,
                parallelism,
                max_parallelism,
                &overrides,
                job,
                args,
            );
            match &result {
                Ok(()) => {}
                Err(WorkerError::Job(fjord::FjordError::Cancelled)) => eprintln!("Job cancelled."),
                Err(e) => eprintln!("error: {e}"),
            }
            exit::code_for(&result)
        }
        Command::Sql {
            file,
            explain,
            parallelism,
            max_parallelism,
            checkpoint_interval,
            checkpoint_storage,
            from_savepoint,
            allow_non_restored_state,
        } => {
            let run = crate::sql::SqlRun {
                explain,
                parallelism,
                max_parallelism,
                fault_tolerance: local::FaultTolerance {
                    checkpoint_interval,
                    checkpoint_storage,
                    restore_from: from_savepoint,
                    allow_non_restored_state,
                    ..Default::default()
                },
            };
            let result = crate::sql::run(&file, &run, install_ctrlc);
            match &result {
                Ok(()) => {}
                Err(WorkerError::Job(fjord::FjordError::Cancelled)) => eprintln!("Job cancelled."),
                Err(e) => eprintln!("error: {e}"),
            }
            exit::code_for(&result)
        }
        Command::Taskmanager(args) => run_task_manager(&registry, *args),
        Command::Savepoint {
            target,
            directory,
            timeout,
        } => report(
            crate::remote::savepoint(&target, directory, None, timeout).map(|p| println!("{p}")),
        ),
        Command::Checkpoint {
            target,
            full,
            timeout,
        } => report(crate::remote::checkpoint(&target, full, timeout).map(|p| println!("{p}"))),
        Command::Stop {
            target,
            directory,
            drain,
            timeout,
        } => report(
            crate::remote::savepoint(&target, directory, Some(drain), timeout)
                .map(|p| println!("{p}")),
        ),
        Command::Cancel { target } => {
            report(crate::remote::cancel(&target).map(|state| println!("{}", state.as_str())))
        }
        Command::Jobmanager(args) => {
            let result = crate::state_backend::configure_from(args.config.as_deref())
                .and_then(|()| crate::jobmanager::config::JobManagerConfig::resolve(*args))
                .and_then(|config| crate::jobmanager::run(&registry, config));
            match result {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::code_for(&Err(e))
                }
            }
        }
    }
}

fn run_task_manager(
    registry: &JobRegistry,
    args: crate::taskmanager::config::TaskManagerArgs,
) -> ExitCode {
    let result = crate::state_backend::configure_from(args.config.as_deref())
        .and_then(|()| crate::taskmanager::config::TaskManagerConfig::resolve(args))
        .and_then(|config| crate::taskmanager::run(registry, config));
    if let Err(e) = &result {
        eprintln!("error: {e}");
    }
    exit::code_for(&result)
}

/// The name of a job argument word (`--key`, `--key=value`, `-k`), if it is one.
fn arg_key(word: &str) -> Option<&str> {
    let key = word.strip_prefix("--").or_else(|| word.strip_prefix('-'))?;
    Some(key.split_once('=').map_or(key, |(k, _)| k))
}

/// `base` without the keys `overrides` sets, followed by `overrides`, reading `--key value`,
/// `--key=value` and bare `--flag` as `JobArgs::parse` does.
fn override_args(base: Vec<String>, overrides: Vec<String>) -> Vec<String> {
    let replaced: std::collections::BTreeSet<String> = overrides
        .iter()
        .filter_map(|w| arg_key(w).map(str::to_string))
        .collect();
    let mut kept = Vec::with_capacity(base.len() + overrides.len());
    let mut words = base.into_iter().peekable();
    while let Some(word) = words.next() {
        let takes_value = !word.contains('=');
        match arg_key(&word) {
            Some(key) if replaced.contains(key) => {
                if takes_value && words.peek().is_some_and(|next| !next.starts_with("--")) {
                    words.next();
                }
            }
            _ => kept.push(word),
        }
    }
    kept.extend(overrides);
    kept
}

fn run_command(
    registry: &JobRegistry,
    parallelism: Option<usize>,
    max_parallelism: Option<usize>,
    overrides: &local::FaultTolerance,
    job: String,
    args: Vec<String>,
) -> Result<(), WorkerError> {
    let (mut request, mut fault_tolerance) = if manifest::is_manifest_path(&job) {
        let (mut run, fault_tolerance) = manifest::load_with_fault_tolerance(Path::new(&job))?;
        // A `--key value` given after a manifest replaces the manifest's value for that key
        // (a local broker address, say); the job sees each key once.
        run.args = override_args(std::mem::take(&mut run.args), args);
        (run, fault_tolerance)
    } else {
        let run = LocalRun {
            job,
            args,
            parallelism: None,
            max_parallelism: None,
        };
        (run, local::FaultTolerance::default())
    };
    // Flags win over the manifest.
    if overrides.checkpoint_interval.is_some() {
        fault_tolerance.checkpoint_interval = overrides.checkpoint_interval;
    }
    if overrides.checkpoint_storage.is_some() {
        fault_tolerance.checkpoint_storage = overrides.checkpoint_storage.clone();
    }
    if overrides.restore_from.is_some() {
        fault_tolerance.restore_from = overrides.restore_from.clone();
    }
    fault_tolerance.allow_non_restored_state |= overrides.allow_non_restored_state;
    request.parallelism = parallelism.or(request.parallelism);
    request.max_parallelism = max_parallelism.or(request.max_parallelism);
    let result = local::run_with(registry, &request, &fault_tolerance, install_ctrlc)?;
    eprintln!(
        "Job '{}' finished in {:.3} s.",
        result.job_name,
        result.net_runtime.as_secs_f64()
    );
    Ok(())
}

/// Cancels the job on Ctrl-C; a second Ctrl-C while stopping kills the process the usual way.
fn install_ctrlc(cancel: Box<dyn Fn() + Send + Sync>) {
    let mut pressed = false;
    let installed = ctrlc::set_handler(move || {
        if pressed {
            std::process::exit(exit::CANCELLED as i32);
        }
        pressed = true;
        eprintln!("Stopping the job (Ctrl-C again to kill)...");
        cancel();
    });
    if let Err(e) = installed {
        // Then Ctrl-C kills the process at once: no cancellation, no final commit of sinks.
        tracing::warn!(
            error = %e,
            "cannot handle Ctrl-C; it will kill the job without stopping it"
        );
    }
}

pub(crate) use fjord::time::parse_duration;

/// Prints an error and returns the documented exit code.
fn report(result: Result<(), WorkerError>) -> ExitCode {
    if let Err(e) = &result {
        eprintln!("error: {e}");
    }
    exit::code_for(&result)
}

#[cfg(test)]
mod override_tests {
    use super::override_args;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn arguments_after_a_manifest_replace_its_values_for_the_same_keys() {
        let merged = override_args(
            words("--bootstrap-servers kafka:9092 --topic in --verbose --rate=5"),
            words("--bootstrap-servers 127.0.0.1:39092 --rate 7"),
        );
        assert_eq!(
            merged,
            words("--topic in --verbose --bootstrap-servers 127.0.0.1:39092 --rate 7")
        );
        assert_eq!(override_args(words("--a 1"), vec![]), words("--a 1"));
    }
}
