//! Exit codes of the `fjord` binary.

use std::process::ExitCode;

/// The job finished (bounded input fully processed).
pub const SUCCESS: u8 = 0;
/// The job failed; the error names the operator and subtask.
pub const JOB_FAILED: u8 = 1;
/// Bad usage: unknown job, bad arguments, invalid manifest, a SQL script that does not plan,
/// a capability the binary was built without (`fjord sql` without the `sql` feature, say).
pub const USAGE: u8 = 2;
/// `fjord jobmanager` could not serve its REST or RPC port, or `fjord taskmanager` its data
/// or RPC port (port in use, bad address).
pub const SERVE_FAILED: u8 = 3;
/// Not enough task slots: the JobManager's `jobmanager.wait-for-slots` passed before
/// TaskManagers offered the job's slots, or a TaskManager could not register within
/// `taskmanager.registration.timeout-ms`.
pub const NO_SLOTS: u8 = 4;
/// The JobManager refused the TaskManager (incompatible version: run the same image), or
/// another TaskManager process registered under the same ID and superseded this one.
pub const REFUSED: u8 = 5;
/// `fjord jobmanager` with high availability: it lost leadership (it could not renew its
/// lease within the renew deadline, or another JobManager took it) and stopped acting, so a
/// standby carries on; or the leader-election storage could not be set up.
pub const LEADERSHIP_LOST: u8 = 6;
/// The job was cancelled by SIGINT (Ctrl-C) or SIGTERM and stopped cleanly (for
/// `fjord jobmanager` also: the job was cancelled through the REST API). `fjord taskmanager`
/// exits with [`SUCCESS`] on SIGTERM or SIGINT after cancelling its tasks: the job is the
/// JobManager's, which restarts it elsewhere.
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
            | WorkerError::Sql { .. }
            | WorkerError::NotBuiltIn { .. }
            | WorkerError::Config(_),
        ) => USAGE,
        Err(WorkerError::Serve { .. }) => SERVE_FAILED,
        Err(WorkerError::NotEnoughSlots { .. } | WorkerError::RegistrationTimeout { .. }) => {
            NO_SLOTS
        }
        Err(WorkerError::Refused(_)) => REFUSED,
        Err(WorkerError::HighAvailability(_)) => LEADERSHIP_LOST,
    })
}
