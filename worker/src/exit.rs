//! Exit codes of the `fjord` binary.

use std::process::ExitCode;

/// The job finished (bounded input fully processed).
pub const SUCCESS: u8 = 0;
/// The job failed; the error names the operator and subtask.
pub const JOB_FAILED: u8 = 1;
/// Bad usage: unknown job, bad arguments, invalid manifest.
pub const USAGE: u8 = 2;
/// `fjord jobmanager` could not serve its REST API (port in use, bad address).
pub const SERVE_FAILED: u8 = 3;
/// The job was cancelled by SIGINT (Ctrl-C) or SIGTERM and stopped cleanly (for
/// `fjord jobmanager` also: the job was cancelled through the REST API).
pub const CANCELLED: u8 = 130;

/// The exit code for an outcome.
pub fn code_for(result: &Result<(), crate::WorkerError>) -> ExitCode {
    use crate::WorkerError;
    use fjord::FjordError;
    ExitCode::from(match result {
        Ok(()) => SUCCESS,
        Err(WorkerError::Job(FjordError::Cancelled)) => CANCELLED,
        Err(WorkerError::Job(
            FjordError::UnknownJob { .. }
            | FjordError::BadArguments(_)
            | FjordError::InvalidGraph(_),
        )) => USAGE,
        Err(WorkerError::Job(_)) => JOB_FAILED,
        Err(
            WorkerError::Manifest(_)
            | WorkerError::Read { .. }
            | WorkerError::Suspended
            | WorkerError::Config(_),
        ) => USAGE,
        Err(WorkerError::Serve { .. }) => SERVE_FAILED,
    })
}
