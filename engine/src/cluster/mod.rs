//! Running one job across processes, as a JobManager with TaskManagers does.
//!
//! The engine keeps everything that decides *what* runs: the job graph, the restart loop, the
//! checkpoint coordinator and its history. A [`Deployer`] (implemented by the JobManager on
//! the control plane) decides *where*: it places every subtask of an [`AttemptSpec`] on a
//! TaskManager slot, sends the resulting [`AttemptPlan`] to every TaskManager, forwards
//! [`TaskCommand`]s to tasks and hands their [`TaskReport`]s back to the coordinator.
//!
//! On a TaskManager, [`StreamExecutionEnvironment::start_tasks`](crate::StreamExecutionEnvironment::start_tasks)
//! builds the same job graph from the same job code and runs only the subtasks the plan puts
//! there ([`DeployedTasks`]). Channels between two local subtasks stay in-process queues
//! (records are passed as objects, never serialized); channels to or from another
//! TaskManager go through the data servers of [`crate::network`].
//!
//! The contract between the engine and a deployer (the [`Deployer`] trait, the attempt and its
//! placement, the commands and reports) is defined in the runtime, whose restart loop drives
//! it, and re-exported here; this module adds what a TaskManager runs.

mod tasks;

pub use crate::runtime::deployer::{CancelToken, Deployer, ReportSink};
pub use crate::runtime::messages::{StateFile, TaskCommand, TaskReport};
pub use crate::runtime::plan::{AttemptPlan, AttemptSpec, WorkerAddress};
pub use tasks::DeployedTasks;
