//! `POST /v1/jobs/{job_id}/checkpoints` and `GET /v1/jobs/{job_id}/checkpoints/{trigger_id}`
//! over real HTTP: Flink's request and response shapes, with periodic checkpoints off.

use super::{Harness, args, assert_api_error, counting_args, eventually, job_in_state};
use fjord::storage::{SnapshotStore, StorageOptions};
use fjord_client::Client;
use fjord_client::api::{
    CheckpointTriggerRequest, CheckpointTriggerStatus, CheckpointType, JobState, OperationState,
    codes,
};

async fn ended(client: &Client, job: &str, trigger: &str) -> CheckpointTriggerStatus {
    eventually(&format!("checkpoint {trigger}"), || async {
        let status = client
            .checkpoint_trigger_status(job, trigger)
            .await
            .unwrap();
        (status.status.id == OperationState::Completed).then_some(status)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_checkpoints_complete_with_flinks_shapes_without_periodic_ones() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("file://{}/checkpoints", dir.path().display());
    let (h, jm) = Harness::running(super::JobManagerArgs {
        storage_url: Some(storage.clone()),
        args: counting_args(&dir),
        ..args("counting")
    })
    .await;
    let id = jm.id().to_string();
    job_in_state(&h.client, &id, JobState::Running).await;
    assert_eq!(h.client.checkpoints(&id).await.unwrap().interval_ms, None);

    // Flink's body and answer, over plain HTTP. The tasks may still be deploying: the
    // checkpoint then fails with a message saying so, and a new trigger is the retry.
    let (http, base) = h.raw();
    let url = format!("{base}/v1/jobs/{id}/checkpoints");
    let (request_id, status) = eventually("a completed full checkpoint", || async {
        let answer = http
            .post(&url)
            .json(&serde_json::json!({"checkpointType": "FULL"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
        let body: serde_json::Value = answer.json().await.unwrap();
        let request_id = body["request-id"].as_str().unwrap().to_string();
        let status = ended(&h.client, &id, &request_id).await;
        status.failure().is_none().then_some((request_id, status))
    })
    .await;
    assert_eq!(request_id.len(), 32, "{request_id}");
    let raw: serde_json::Value = http
        .get(format!("{url}/{request_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["status"]["id"], "COMPLETED");
    let checkpoint_id = raw["operation"]["checkpointId"].as_u64().unwrap();
    let path = raw["operation"]["path"].as_str().unwrap().to_string();
    assert_eq!(status.operation.unwrap().checkpoint_id, Some(checkpoint_id));
    assert!(
        path.starts_with(&storage) && path.ends_with(&format!("/chk-{checkpoint_id}")),
        "{path}"
    );
    let dir = path.clone();
    let meta = tokio::task::spawn_blocking(move || {
        fjord::checkpoint::CheckpointMetadata::read(
            &SnapshotStore::open(&dir, &StorageOptions::default()).unwrap(),
        )
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(meta.checkpoint_id, checkpoint_id);
    assert!(!meta.savepoint);
    let latest = h.client.latest_checkpoint(&id).await.unwrap().checkpoint;
    assert_eq!(latest.map(|c| c.path), Some(path.clone()));

    // A caller-chosen trigger ID: the same ID again starts nothing.
    let request = CheckpointTriggerRequest {
        checkpoint_type: CheckpointType::Configured,
        trigger_id: Some("nonce-7".into()),
    };
    for _ in 0..2 {
        let accepted = h.client.trigger_checkpoint(&id, &request).await.unwrap();
        assert_eq!(accepted.request_id, "nonce-7");
    }
    let second = ended(&h.client, &id, "nonce-7").await;
    assert_eq!(second.failure(), None, "{second:?}");
    let second_id = second.operation.unwrap().checkpoint_id.unwrap();
    assert_eq!(
        second_id,
        checkpoint_id + 1,
        "one checkpoint for two requests"
    );
    let history = h.client.checkpoints(&id).await.unwrap();
    assert_eq!(history.completed.iter().filter(|c| !c.savepoint).count(), 2);

    // Bad input: an unknown type, a trigger ID the status path would shadow, an unknown ID.
    let answer = http
        .post(&url)
        .json(&serde_json::json!({"checkpointType": "DELTA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let shadowed = CheckpointTriggerRequest {
        trigger_id: Some("latest".into()),
        ..Default::default()
    };
    let err = h
        .client
        .trigger_checkpoint(&id, &shadowed)
        .await
        .unwrap_err();
    assert_api_error(err, 400, codes::BAD_REQUEST, "another checkpoint endpoint");
    let err = h
        .client
        .checkpoint_trigger_status(&id, "never-sent")
        .await
        .unwrap_err();
    assert_api_error(
        err,
        404,
        codes::UNKNOWN_TRIGGER,
        "triggering it again is safe",
    );

    // Once the job ended, a new trigger is refused; the old statuses stay.
    h.client.cancel(&id).await.unwrap();
    job_in_state(&h.client, &id, JobState::Canceled).await;
    let late = CheckpointTriggerRequest {
        trigger_id: Some("too-late".into()),
        ..Default::default()
    };
    let err = h.client.trigger_checkpoint(&id, &late).await.unwrap_err();
    assert_api_error(err, 409, codes::JOB_NOT_RUNNING, "needs a RUNNING job");
    assert_eq!(
        ended(&h.client, &id, "nonce-7")
            .await
            .operation
            .unwrap()
            .checkpoint_id,
        Some(second_id)
    );
}
