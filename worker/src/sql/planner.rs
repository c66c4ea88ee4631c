//! The SQL planner behind [`super`] (the `sql` feature): plans scripts with `fjord-sql` and
//! builds their jobs.

use super::SqlRun;
use crate::WorkerError;
use fjord::StreamExecutionEnvironment;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

/// The user-defined functions of this worker binary (`crate::main_with_functions`), set once
/// before the command line is read: every role of the process plans scripts with them.
static FUNCTIONS: OnceLock<fjord_sql::FunctionRegistry> = OnceLock::new();

/// Makes `functions` callable from every SQL script this process plans (`fjord sql`, the
/// `sql` job in `run`, JobManager and TaskManager roles). The first call wins: a process has
/// one set of functions, as it has one set of jobs.
pub fn install_functions(functions: fjord_sql::FunctionRegistry) -> bool {
    FUNCTIONS.set(functions).is_ok()
}

/// The installed functions (none unless [`install_functions`] ran).
pub fn functions() -> &'static fjord_sql::FunctionRegistry {
    FUNCTIONS.get_or_init(fjord_sql::FunctionRegistry::new)
}

/// One line per installed function (`fjord list`).
pub fn describe_functions() -> Vec<String> {
    functions().describe()
}

/// Why a script did not plan (the message names line and column).
pub use fjord_sql::SqlError;

/// The built-in `sql` job: plans the script of `--script=<text>` (or the file of `--file`) and adds
/// its operators to `env`. The script's `SET` keys apply as with `fjord sql`; the JobManager
/// and TaskManagers plan the same text, so they build the same graph.
///
/// # Errors
/// [`fjord::FjordError::BadArguments`] for a missing script or a planning error (which names
/// the line and column).
pub fn job(env: &StreamExecutionEnvironment, args: &fjord::JobArgs) -> fjord::Result<()> {
    let bad = fjord::FjordError::BadArguments;
    if args.has("script") && args.get("script").is_none() {
        return Err(bad(
            "--script needs the script as its value in the same word: --script='<text>' (a script that starts with a -- comment would otherwise read as a flag)".into(),
        ));
    }
    let (origin, script) = match (args.get("script"), args.get("file")) {
        (Some(script), None) => ("the script".to_string(), script.to_string()),
        (None, Some(path)) => (
            path.to_string(),
            std::fs::read_to_string(path)
                .map_err(|e| bad(format!("cannot read the SQL script {path}: {e}")))?,
        ),
        _ => {
            return Err(bad(
                "the sql job takes a SQL script: --script=<text> or --file <path>".into(),
            ));
        }
    };
    let job = fjord_sql::plan_with_functions(&script, functions())
        .map_err(|e| bad(format!("{origin}: {e}")))?;
    fjord_sql::build(&job, env).map_err(|e| bad(format!("{origin}: {e}")))
}

/// Plans the script and builds its job on a fresh environment with the flags applied.
///
/// # Errors
/// An unreadable file ([`WorkerError::Read`]) or a planning error ([`WorkerError::Sql`],
/// which names the line and column).
pub fn prepare(
    file: &Path,
    run: &SqlRun,
) -> Result<(fjord_sql::SqlJob, StreamExecutionEnvironment), WorkerError> {
    let path = file.display().to_string();
    let script = std::fs::read_to_string(file).map_err(|source| WorkerError::Read {
        path: path.clone(),
        source,
    })?;
    let sql_error = |source| WorkerError::Sql {
        path: path.clone(),
        source,
    };
    let job = fjord_sql::plan_with_functions(&script, functions()).map_err(sql_error)?;
    let env = StreamExecutionEnvironment::new();
    fjord_sql::build(&job, &env).map_err(sql_error)?;
    if let Some(p) = run.parallelism {
        env.set_parallelism(p);
    }
    if let Some(m) = run.max_parallelism {
        env.set_max_parallelism(m);
    }
    run.fault_tolerance.apply(&env);
    Ok((job, env))
}

/// The `--explain` text: the SQL plan, then the DataStream job graph it becomes.
///
/// # Errors
/// The engine refusing the graph.
pub fn explain(
    job: &fjord_sql::SqlJob,
    env: &StreamExecutionEnvironment,
) -> Result<String, WorkerError> {
    let mut out = job.explain();
    let plan = env.get_execution_plan()?;
    let _ = writeln!(out, "\n== Job graph (chained tasks) ==");
    for v in &plan.vertices {
        let _ = writeln!(
            out,
            "[{}] {} (parallelism {}, max parallelism {})",
            v.id,
            v.operators.join(" -> "),
            v.parallelism,
            v.max_parallelism
        );
    }
    for e in &plan.edges {
        let _ = writeln!(out, "[{}] --{}--> [{}]", e.source, e.partitioner, e.target);
    }
    Ok(out)
}

/// Runs (or explains) a script. `on_start` gets a function that cancels the job.
///
/// # Errors
/// As [`prepare`], and the job's failure.
pub fn run(
    file: &Path,
    run: &SqlRun,
    on_start: impl FnOnce(Box<dyn Fn() + Send + Sync>),
) -> Result<(), WorkerError> {
    let (job, env) = prepare(file, run)?;
    if run.explain {
        print!("{}", explain(&job, &env)?);
        return Ok(());
    }
    let name = job.settings.pipeline_name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map_or("sql".into(), |s| s.to_string_lossy().into_owned())
    });
    let client = env.execute_async(&name)?;
    on_start(Box::new(client.canceller()));
    let result = client.wait()?;
    eprintln!(
        "Job '{}' finished in {:.3} s.",
        result.job_name,
        result.net_runtime.as_secs_f64()
    );
    Ok(())
}
