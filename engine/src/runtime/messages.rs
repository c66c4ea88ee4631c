//! What travels between the checkpoint coordinator (in the JobManager) and the tasks (in the
//! TaskManagers): commands to tasks and reports from them. The control plane carries these
//! over gRPC; inside one process they are channel messages.

use crate::checkpoint::CheckpointBarrier;
use crate::checkpoint::coordinator::{CoordinatorEvent, TaskControl, WrittenState};
use crate::checkpoint::participant::OperatorKey;
use crate::error::Result;
use crate::storage::{SnapshotStore, StorageOptions};

/// What the coordinator tells one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCommand {
    /// (Sources only) inject a checkpoint barrier now.
    TriggerCheckpoint {
        /// Checkpoint id, increasing within the job.
        checkpoint_id: u64,
        /// When it was triggered (ms since the epoch).
        timestamp_ms: i64,
        /// URL of the directory the snapshot files go to.
        target: String,
        /// True for savepoints.
        savepoint: bool,
        /// For stop-with-savepoint: `Some(drain)`.
        stop: Option<bool>,
        /// A full checkpoint: no incremental snapshot (Flink's `CheckpointType.FULL`).
        full: bool,
    },
    /// The checkpoint completed everywhere: transactional sinks may commit.
    CheckpointComplete {
        /// The completed checkpoint.
        checkpoint_id: u64,
    },
    /// The checkpoint was given up (sources waiting to stop after it carry on).
    CheckpointAborted {
        /// The aborted checkpoint.
        checkpoint_id: u64,
    },
}

/// One state file a task wrote for a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    /// The operator id (uid or derived).
    pub operator_id: String,
    /// The operator's name.
    pub operator_name: String,
    /// Whether `operator_id` is a user-given uid.
    pub has_uid: bool,
    /// The subtask that wrote the file.
    pub subtask: usize,
    /// The operator's parallelism.
    pub parallelism: usize,
    /// The operator's max parallelism (number of key groups).
    pub max_parallelism: usize,
    /// Path of the file relative to the checkpoint directory.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Checksum of the file's bytes (`crc32:` and eight hex digits).
    pub checksum: String,
}

/// What a task tells the coordinator. `task` is the task's index in its execution attempt:
/// vertices in job-graph order, subtasks in order within a vertex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskReport {
    /// The task's snapshot for a checkpoint is uploaded.
    Acknowledged {
        /// The task.
        task: usize,
        /// The checkpoint.
        checkpoint_id: u64,
        /// The files it wrote.
        states: Vec<StateFile>,
    },
    /// The task could not take or upload its snapshot.
    Declined {
        /// The task.
        task: usize,
        /// The checkpoint.
        checkpoint_id: u64,
        /// Why.
        reason: String,
    },
    /// The task finished its input; no checkpoint can complete any more.
    InputFinished {
        /// The task.
        task: usize,
    },
}

impl TaskCommand {
    /// The command for a task-control message.
    pub(crate) fn from_control(control: &TaskControl) -> Self {
        match control {
            TaskControl::Trigger(b) => TaskCommand::TriggerCheckpoint {
                checkpoint_id: b.id,
                timestamp_ms: b.timestamp,
                target: b.target.url().to_string(),
                savepoint: b.savepoint,
                stop: b.stop,
                full: b.full,
            },
            TaskControl::Complete(id) => TaskCommand::CheckpointComplete { checkpoint_id: *id },
            TaskControl::Abort(id) => TaskCommand::CheckpointAborted { checkpoint_id: *id },
        }
    }

    /// The task-control message, opening a trigger's target with `options`.
    ///
    /// # Errors
    /// The target URL cannot be opened.
    pub(crate) fn into_control(self, options: &StorageOptions) -> Result<TaskControl> {
        Ok(match self {
            TaskCommand::TriggerCheckpoint {
                checkpoint_id,
                timestamp_ms,
                target,
                savepoint,
                stop,
                full,
            } => TaskControl::Trigger(CheckpointBarrier {
                id: checkpoint_id,
                timestamp: timestamp_ms,
                target: SnapshotStore::open(&target, options)?,
                savepoint,
                stop,
                full,
            }),
            TaskCommand::CheckpointComplete { checkpoint_id } => {
                TaskControl::Complete(checkpoint_id)
            }
            TaskCommand::CheckpointAborted { checkpoint_id } => TaskControl::Abort(checkpoint_id),
        })
    }
}

impl TaskReport {
    /// The report for a coordinator event a task sent; `None` for events tasks never send.
    pub(crate) fn from_event(event: CoordinatorEvent) -> Option<Self> {
        match event {
            CoordinatorEvent::Ack {
                checkpoint_id,
                task,
                states,
            } => Some(TaskReport::Acknowledged {
                task,
                checkpoint_id,
                states: states.into_iter().map(StateFile::from_written).collect(),
            }),
            CoordinatorEvent::Decline {
                checkpoint_id,
                task,
                reason,
            } => Some(TaskReport::Declined {
                task,
                checkpoint_id,
                reason,
            }),
            CoordinatorEvent::TaskFinished { task } => Some(TaskReport::InputFinished { task }),
            _ => None,
        }
    }

    /// The coordinator event for this report.
    pub(crate) fn into_event(self) -> CoordinatorEvent {
        match self {
            TaskReport::Acknowledged {
                task,
                checkpoint_id,
                states,
            } => CoordinatorEvent::Ack {
                checkpoint_id,
                task,
                states: states.into_iter().map(StateFile::into_written).collect(),
            },
            TaskReport::Declined {
                task,
                checkpoint_id,
                reason,
            } => CoordinatorEvent::Decline {
                checkpoint_id,
                task,
                reason,
            },
            TaskReport::InputFinished { task } => CoordinatorEvent::TaskFinished { task },
        }
    }
}

impl StateFile {
    fn from_written(w: WrittenState) -> Self {
        StateFile {
            operator_id: w.key.id,
            operator_name: w.key.name,
            has_uid: w.key.has_uid,
            subtask: w.key.subtask,
            parallelism: w.key.parallelism,
            max_parallelism: w.key.max_parallelism,
            file: w.file,
            size: w.size,
            checksum: w.checksum,
        }
    }

    fn into_written(self) -> WrittenState {
        WrittenState {
            key: OperatorKey {
                id: self.operator_id,
                name: self.operator_name,
                has_uid: self.has_uid,
                subtask: self.subtask,
                parallelism: self.parallelism,
                max_parallelism: self.max_parallelism,
            },
            file: self.file,
            size: self.size,
            checksum: self.checksum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_the_round_trip_through_task_control() {
        let options = StorageOptions::default();
        for command in [
            TaskCommand::TriggerCheckpoint {
                checkpoint_id: 7,
                timestamp_ms: 1234,
                target: "memory:///cluster-test/chk-7".into(),
                savepoint: true,
                stop: Some(false),
                full: false,
            },
            TaskCommand::TriggerCheckpoint {
                checkpoint_id: 8,
                timestamp_ms: 1235,
                target: "memory:///cluster-test/chk-8".into(),
                savepoint: false,
                stop: None,
                full: true,
            },
            TaskCommand::CheckpointComplete { checkpoint_id: 3 },
            TaskCommand::CheckpointAborted { checkpoint_id: 4 },
        ] {
            let control = command.clone().into_control(&options).unwrap();
            assert_eq!(TaskCommand::from_control(&control), command);
        }
    }

    #[test]
    fn reports_survive_the_round_trip_through_coordinator_events() {
        let ack = TaskReport::Acknowledged {
            task: 2,
            checkpoint_id: 9,
            states: vec![StateFile {
                operator_id: "counts".into(),
                operator_name: "Keyed Aggregation".into(),
                has_uid: true,
                subtask: 1,
                parallelism: 2,
                max_parallelism: 128,
                file: "counts/1".into(),
                size: 99,
                checksum: "crc32:0badf00d".into(),
            }],
        };
        let back = TaskReport::from_event(ack.clone().into_event()).unwrap();
        assert_eq!(back, ack);
        let decline = TaskReport::Declined {
            task: 1,
            checkpoint_id: 9,
            reason: "disk full".into(),
        };
        assert_eq!(
            TaskReport::from_event(decline.clone().into_event()).unwrap(),
            decline
        );
        assert_eq!(
            TaskReport::from_event(TaskReport::InputFinished { task: 5 }.into_event()),
            Some(TaskReport::InputFinished { task: 5 })
        );
    }
}
