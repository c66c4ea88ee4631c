//! [`super`] in a binary built without the `sql` feature: the built-in `sql` job and
//! `fjord sql` fail with an error naming the feature.

use super::SqlRun;
use crate::WorkerError;
use fjord::StreamExecutionEnvironment;
use std::path::Path;

/// No script is ever planned here, so no planning error exists.
pub type SqlError = std::convert::Infallible;

/// The error both entry points give.
fn not_built_in(what: &'static str) -> WorkerError {
    WorkerError::NotBuiltIn {
        feature: "sql",
        what,
    }
}

/// The built-in `sql` job without a planner: refuses, naming the feature (a StreamJob's
/// `spec.job.sql` on an image built without it).
///
/// # Errors
/// Always [`fjord::FjordError::BadArguments`].
pub fn job(_env: &StreamExecutionEnvironment, _args: &fjord::JobArgs) -> fjord::Result<()> {
    Err(fjord::FjordError::BadArguments(
        not_built_in("the sql job (a StreamJob's spec.job.sql)").to_string(),
    ))
}

/// No SQL, so no user-defined functions (`fjord list`).
pub fn describe_functions() -> Vec<String> {
    Vec::new()
}

/// `fjord sql` without a planner.
///
/// # Errors
/// Always [`WorkerError::NotBuiltIn`].
pub fn run(
    _file: &Path,
    _run: &SqlRun,
    _on_start: impl FnOnce(Box<dyn Fn() + Send + Sync>),
) -> Result<(), WorkerError> {
    Err(not_built_in("`fjord sql`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fjord_sql_names_the_feature_to_enable() {
        let err = run(Path::new("job.sql"), &SqlRun::default(), |_| {}).unwrap_err();
        assert!(matches!(
            err,
            WorkerError::NotBuiltIn { feature: "sql", .. }
        ));
        let message = err.to_string();
        assert!(message.contains("`fjord sql`"), "{message}");
        assert!(
            message.contains("`sql` feature of fjord-worker"),
            "{message}"
        );
    }

    #[test]
    fn the_sql_job_fails_as_bad_arguments_naming_the_feature() {
        let env = StreamExecutionEnvironment::new();
        let args = fjord::JobArgs::parse(["--script=SELECT 1"]).unwrap();
        match job(&env, &args) {
            Err(fjord::FjordError::BadArguments(message)) => {
                assert!(message.contains("`sql` feature"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
