//! The JobManager's side of a distributed execution: the engine keeps the restart loop and
//! the checkpoint coordinator, and a [`Deployer`] runs each attempt's tasks somewhere else.

use super::messages::{TaskCommand, TaskReport};
use super::plan::AttemptSpec;
use crate::checkpoint::coordinator::CoordinatorEvent;
use crate::error::Result;
use crate::runtime::channel::CancelFlag;
use crossbeam_channel::Sender;

/// Runs the tasks of execution attempts in other processes (TaskManagers).
///
/// The engine calls [`run_attempt`](Self::run_attempt) once per attempt, from the job's
/// thread, and [`send`](Self::send) from the checkpoint coordinator's thread while the attempt
/// runs.
pub trait Deployer: Send + Sync {
    /// Places and deploys every task of `spec`, feeds what tasks report into `reports`, and
    /// blocks until every task ended: `Ok` when all finished, the first failure otherwise (a
    /// failed task, a lost TaskManager). When `cancel` is set, cancels the tasks and returns
    /// `Err(FjordError::Cancelled)` once they are gone or a bounded wait passed.
    ///
    /// # Errors
    /// The root cause of the attempt's failure.
    fn run_attempt(
        &self,
        spec: &AttemptSpec,
        reports: ReportSink,
        cancel: &CancelToken,
    ) -> Result<()>;

    /// Sends `command` to task `task` of attempt `attempt`. Must not block for long; a command
    /// that is lost fails at most its checkpoint (which then times out).
    fn send(&self, attempt: u32, task: usize, command: TaskCommand);
}

/// Where task reports go: the checkpoint coordinator of the running attempt.
#[derive(Clone)]
pub struct ReportSink(pub(crate) Sender<CoordinatorEvent>);

impl ReportSink {
    /// Hands a report to the coordinator (dropped when the attempt already ended).
    pub fn report(&self, report: TaskReport) {
        let _ = self.0.send(report.into_event());
    }

    /// Tells the coordinator that every task of the attempt is deployed and running, so
    /// periodic checkpoints may start (a deployer must call this once the deployment is
    /// accepted everywhere; until then no checkpoint is triggered and savepoints are refused).
    pub fn tasks_running(&self) {
        let _ = self.0.send(CoordinatorEvent::TasksRunning);
    }
}

/// A cancellation flag shared with the engine.
#[derive(Clone, Default)]
pub struct CancelToken(pub(crate) CancelFlag);

impl CancelToken {
    /// A new, unset flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Cancels.
    pub fn cancel(&self) {
        self.0.cancel();
    }
}
