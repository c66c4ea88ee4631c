//! The control-plane contract between the Fjord JobManager and its TaskManagers.
//!
//! [`v1`] is generated from `proto/fjord/v1/control.proto` (package `fjord.v1`): the messages,
//! the `JobManagerService` the JobManager serves (registration, heartbeats, slot offers, task
//! state updates, checkpoint acknowledgements) and the `TaskManagerService` each TaskManager
//! serves (attempt deployment and cancellation, checkpoint commands), with tonic
//! clients and servers for both. [`version`] decides whether a TaskManager's protocol version is
//! compatible with this JobManager's, and [`ProtoError`] says why not; [`registration`] turns
//! that into the answer to a `RegisterTaskManager` call.
//!
//! `fjord-worker` implements both sides: its `jobmanager::rpc` serves `JobManagerService` and
//! deploys attempts through the TaskManagers' `TaskManagerService`, which its `taskmanager`
//! role serves while it registers, heartbeats and reports task states and checkpoint
//! acknowledgements. The TaskManager works on whole attempts: `DeployAttempt`,
//! `CancelAttempt` and `SendTaskCommand` (checkpoint trigger, completion and abort for a task);
//! the per-task RPCs `DeployTask`, `CancelTask`, `TriggerCheckpoint` and
//! `NotifyCheckpointComplete` stay in the contract but are answered `UNIMPLEMENTED`.

pub mod registration;
pub mod version;

pub use registration::{HeartbeatSettings, answer_registration};
pub use version::{OLDEST_SUPPORTED_MINOR, PROTOCOL_VERSION, check_compatible};

/// The generated `fjord.v1` package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("fjord.v1");
}

/// Why the control plane refuses something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The TaskManager speaks a protocol version this JobManager cannot talk to.
    #[error(
        "refusing TaskManager '{task_manager}' (fjord {binary_version}): it speaks control protocol {theirs}, \
         this JobManager speaks {ours} and accepts {accepted}; run TaskManagers from the same \
         image (or release) as the JobManager"
    )]
    IncompatibleVersion {
        /// The TaskManager's ID.
        task_manager: String,
        /// The TaskManager's binary version, as it reported it.
        binary_version: String,
        /// The TaskManager's protocol version, `major.minor`.
        theirs: String,
        /// This JobManager's protocol version.
        ours: String,
        /// The range this JobManager accepts, e.g. `1.0 to 1.x`.
        accepted: String,
    },
    /// The registration carried no protocol version (a pre-release TaskManager or a bug).
    #[error(
        "refusing TaskManager '{task_manager}': its registration carries no protocol version; \
         run TaskManagers from the same image (or release) as the JobManager"
    )]
    MissingVersion {
        /// The TaskManager's ID.
        task_manager: String,
    },
}

#[cfg(test)]
mod tests {
    use super::v1;
    use prost::Message;

    #[test]
    fn a_registration_round_trips_through_the_wire_format() {
        let request = v1::RegisterTaskManagerRequest {
            task_manager_id: "tm-0".into(),
            protocol_version: Some(crate::PROTOCOL_VERSION),
            binary_version: "0.1.0".into(),
            data_address: "10.0.0.7:6121".into(),
            rpc_address: "10.0.0.7:6122".into(),
            slots: 4,
            memory_bytes: 1 << 30,
            incarnation: "4f1c2a".into(),
            cluster_id: "7d3f".into(),
        };
        let bytes = request.encode_to_vec();
        let decoded = v1::RegisterTaskManagerRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded, request);
    }

    #[test]
    fn a_deployment_with_nested_messages_round_trips() {
        let task = v1::TaskId {
            job: Some(v1::JobAttempt {
                job_id: "ab".repeat(16),
                attempt: 3,
            }),
            vertex: 1,
            subtask: 2,
            task_index: 5,
        };
        let request = v1::DeployTaskRequest {
            task: Some(task),
            job_manager_epoch: 9,
            job_name: "wordcount".into(),
            job_args: vec!["--input".into(), "in.txt".into()],
            slot_index: 0,
            key_group_start: 64,
            key_group_end: 127,
            inputs: vec![v1::InputChannelDescriptor {
                source_vertex: 0,
                source_subtask: 1,
                input: 0,
                data_address: String::new(),
            }],
            restore_checkpoint_path: String::new(),
        };
        let decoded = v1::DeployTaskRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, request);
        let status = v1::TaskStatus {
            task: decoded.task,
            state: v1::TaskState::Failed as i32,
            failure: "Map (2/4) failed".into(),
        };
        let back = v1::TaskStatus::decode(status.encode_to_vec().as_slice()).unwrap();
        assert_eq!(back.state(), v1::TaskState::Failed);
    }
}
