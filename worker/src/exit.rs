//! Exit codes of the `fjord` binary.

use std::process::ExitCode;

/// The job finished (bounded input fully processed).
pub const SUCCESS: u8 = 0;
/// The job failed; the error names the operator and subtask.
pub const JOB_FAILED: u8 = 1;
/// Bad usage: unknown job, bad arguments, invalid manifest.
pub const USAGE: u8 = 2;
/// The job was cancelled by SIGINT (Ctrl-C) or SIGTERM and stopped cleanly.
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
        Err(WorkerError::Manifest(_) | WorkerError::Read { .. } | WorkerError::Suspended) => USAGE,
    })
}
