//! Manual checkpoints: `POST /v1/jobs/{job_id}/checkpoints` and
//! `GET /v1/jobs/{job_id}/checkpoints/{trigger_id}`. Unlike the rest of the API these bodies
//! use Flink's field names (`checkpointType`, `request-id`, `checkpointId`,
//! `failure-cause`), so tools written against Flink's REST API read them unchanged.

use serde::{Deserialize, Serialize};

/// The kind of checkpoint to take (Flink's `checkpointType`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointType {
    /// What periodic checkpoints take (incremental with an incremental state backend).
    #[default]
    Configured,
    /// A self-contained checkpoint; the next incremental one reuses nothing from before it.
    Full,
    /// Incremental where the state backend supports it, else full.
    Incremental,
}

/// `POST /v1/jobs/{job_id}/checkpoints` (Flink's `CheckpointTriggerRequestBody`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointTriggerRequest {
    /// The kind of checkpoint; `CONFIGURED` when absent.
    #[serde(rename = "checkpointType", default)]
    pub checkpoint_type: CheckpointType,
    /// The caller's ID for this request (1 to 128 characters of `[A-Za-z0-9._-]`, not
    /// `latest` or `overview`): a repeated request with the same ID starts nothing. The
    /// JobManager picks one when absent.
    #[serde(rename = "triggerId", default, skip_serializing_if = "Option::is_none")]
    pub trigger_id: Option<String>,
}

/// The answer to `POST /v1/jobs/{job_id}/checkpoints` (HTTP 202, Flink's `TriggerResponse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointTriggerAccepted {
    /// The ID to poll `GET /v1/jobs/{job_id}/checkpoints/{trigger_id}` with.
    #[serde(rename = "request-id")]
    pub request_id: String,
}

/// Whether an asynchronous operation ended (Flink's `QueueStatus.Id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperationState {
    /// Queued or being taken.
    InProgress,
    /// Ended: the operation holds the checkpoint or the failure.
    Completed,
}

/// `{"id": ...}` (Flink's `QueueStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// The state.
    pub id: OperationState,
}

/// Why a manual checkpoint failed (Flink's `SerializedThrowable` as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCause {
    /// The kind of error (`CheckpointException` for failed checkpoints).
    pub class: String,
    /// What went wrong, for a person.
    #[serde(rename = "stack-trace")]
    pub stack_trace: String,
}

/// The result of a manual checkpoint: its id and path, or the failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointOperation {
    /// The completed checkpoint's id.
    #[serde(
        rename = "checkpointId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub checkpoint_id: Option<u64>,
    /// Where the completed checkpoint is (Fjord's addition: Flink reports it in the
    /// checkpoint statistics); `restore.path` and `initialSavepointPath` take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Why the checkpoint failed.
    #[serde(
        rename = "failure-cause",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_cause: Option<FailureCause>,
}

/// `GET /v1/jobs/{job_id}/checkpoints/{trigger_id}` (Flink's
/// `AsynchronousOperationResult<CheckpointInfo>`): `IN_PROGRESS` without an operation, then
/// `COMPLETED` with the checkpoint id or the failure cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointTriggerStatus {
    /// In progress or ended.
    pub status: QueueStatus,
    /// Set once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<CheckpointOperation>,
}

impl CheckpointTriggerStatus {
    /// Queued or being taken.
    pub fn in_progress() -> Self {
        CheckpointTriggerStatus {
            status: QueueStatus {
                id: OperationState::InProgress,
            },
            operation: None,
        }
    }

    /// Completed as checkpoint `id` at `path`.
    pub fn completed(id: u64, path: String) -> Self {
        CheckpointTriggerStatus {
            status: QueueStatus {
                id: OperationState::Completed,
            },
            operation: Some(CheckpointOperation {
                checkpoint_id: Some(id),
                path: Some(path),
                failure_cause: None,
            }),
        }
    }

    /// Failed with `message`.
    pub fn failed(message: String) -> Self {
        CheckpointTriggerStatus {
            status: QueueStatus {
                id: OperationState::Completed,
            },
            operation: Some(CheckpointOperation {
                checkpoint_id: None,
                path: None,
                failure_cause: Some(FailureCause {
                    class: "CheckpointException".into(),
                    stack_trace: message,
                }),
            }),
        }
    }

    /// The failure message, once it failed.
    pub fn failure(&self) -> Option<&str> {
        self.operation
            .as_ref()?
            .failure_cause
            .as_ref()
            .map(|c| c.stack_trace.as_str())
    }
}

/// Checks a manual checkpoint's trigger ID: the savepoint rules, and not a word the
/// checkpoint paths use (`latest`, `overview`), which its status path would shadow.
///
/// # Errors
/// A message saying what is wrong.
pub fn validate_checkpoint_trigger_id(id: &str) -> Result<(), String> {
    super::validate_trigger_id(id)?;
    if matches!(id, "latest" | "overview") {
        return Err(format!(
            "trigger_id '{id}' names another checkpoint endpoint; choose another ID"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_flinks_shapes() {
        let request: CheckpointTriggerRequest =
            serde_json::from_str(r#"{"checkpointType":"FULL"}"#).unwrap();
        assert_eq!(request.checkpoint_type, CheckpointType::Full);
        assert_eq!(request.trigger_id, None);
        let empty: CheckpointTriggerRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.checkpoint_type, CheckpointType::Configured);
        assert!(
            serde_json::from_str::<CheckpointTriggerRequest>(r#"{"checkpointType":"X"}"#).is_err()
        );
        assert_eq!(
            serde_json::to_value(CheckpointTriggerStatus::completed(
                5,
                "file:///c/chk-5".into()
            ))
            .unwrap(),
            serde_json::json!({"status": {"id": "COMPLETED"},
                "operation": {"checkpointId": 5, "path": "file:///c/chk-5"}})
        );
        assert_eq!(
            serde_json::to_value(CheckpointTriggerStatus::in_progress()).unwrap(),
            serde_json::json!({"status": {"id": "IN_PROGRESS"}})
        );
        let failed = CheckpointTriggerStatus::failed("task 0 declined".into());
        assert_eq!(failed.failure(), Some("task 0 declined"));
        assert_eq!(
            serde_json::to_value(&failed).unwrap()["operation"]["failure-cause"]["stack-trace"],
            "task 0 declined"
        );
        assert!(validate_checkpoint_trigger_id("latest").is_err());
        assert!(validate_checkpoint_trigger_id("nonce-3").is_ok());
    }
}
