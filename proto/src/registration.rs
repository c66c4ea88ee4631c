//! The JobManager's answer to a TaskManager registration: accepted with the heartbeat
//! settings, or refused with a message the TaskManager logs before it exits.

use crate::v1::{RegisterTaskManagerRequest, RegisterTaskManagerResponse};
use crate::{OLDEST_SUPPORTED_MINOR, PROTOCOL_VERSION, check_compatible};

/// Heartbeat settings a JobManager hands to every TaskManager it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatSettings {
    /// How often TaskManagers send heartbeats, in milliseconds.
    pub interval_ms: u64,
    /// After how many milliseconds without a heartbeat a TaskManager is considered lost.
    pub timeout_ms: u64,
}

/// Answers `request` for a JobManager of fencing epoch `epoch` in cluster `cluster_id` (empty:
/// none set): refused (with [`ProtoError`](crate::ProtoError)'s message) when the
/// TaskManager's protocol version is incompatible; refused with `retry` when this JobManager
/// has a cluster and the TaskManager names another or none (a TaskManager of an earlier
/// release, which cannot name one, is then refused too: the operator runs one image per
/// cluster, and an older image's TaskManager is the previous cluster's); accepted otherwise.
/// Pure: the caller records the TaskManager.
pub fn answer_registration(
    request: &RegisterTaskManagerRequest,
    epoch: u64,
    heartbeat: HeartbeatSettings,
    cluster_id: &str,
) -> RegisterTaskManagerResponse {
    let theirs = request.cluster_id.as_str();
    let (accepted, refusal, retry) =
        match check_compatible(&PROTOCOL_VERSION, OLDEST_SUPPORTED_MINOR, request) {
            Err(e) => (false, e.to_string(), false),
            Ok(()) if !cluster_id.is_empty() && theirs != cluster_id => (
                false,
                format!(
                    "TaskManager '{}' belongs to {}, this JobManager to cluster '{cluster_id}' \
                     (during an upgrade the previous cluster's Pods terminate while the new one \
                     starts); it keeps trying until the JobManager of its own cluster answers. \
                     Outside the operator, start it with --cluster-id {cluster_id}",
                    request.task_manager_id,
                    if theirs.is_empty() {
                        "no cluster (no cluster.id, or an earlier release)".to_string()
                    } else {
                        format!("cluster '{theirs}'")
                    }
                ),
                true,
            ),
            Ok(()) => (true, String::new(), false),
        };
    RegisterTaskManagerResponse {
        accepted,
        refusal,
        protocol_version: Some(PROTOCOL_VERSION),
        job_manager_epoch: epoch,
        heartbeat_interval_ms: heartbeat.interval_ms,
        heartbeat_timeout_ms: heartbeat.timeout_ms,
        retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::job_manager_service_client::JobManagerServiceClient;
    use crate::v1::job_manager_service_server::{JobManagerService, JobManagerServiceServer};
    use crate::v1::*;
    use tonic::{Request, Response, Status};

    const HB: HeartbeatSettings = HeartbeatSettings {
        interval_ms: 1000,
        timeout_ms: 10_000,
    };

    fn request(major: u32) -> RegisterTaskManagerRequest {
        RegisterTaskManagerRequest {
            task_manager_id: "tm-0".into(),
            protocol_version: Some(ProtocolVersion {
                major,
                minor: PROTOCOL_VERSION.minor,
            }),
            binary_version: "9.0.0".into(),
            slots: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_compatible_task_manager_is_accepted_with_the_heartbeat_settings() {
        let r = answer_registration(&request(PROTOCOL_VERSION.major), 7, HB, "");
        assert!(r.accepted && r.refusal.is_empty() && !r.retry);
        assert_eq!((r.job_manager_epoch, r.heartbeat_timeout_ms), (7, 10_000));
        assert_eq!(r.protocol_version, Some(PROTOCOL_VERSION));
    }

    #[test]
    fn a_task_manager_of_another_cluster_is_refused_until_its_own_answers() {
        let of = |cluster: &str| RegisterTaskManagerRequest {
            cluster_id: cluster.into(),
            ..request(PROTOCOL_VERSION.major)
        };
        let r = answer_registration(&of("job-b"), 7, HB, "job-a");
        assert!(!r.accepted && r.retry, "{r:?}");
        assert!(
            r.refusal.contains("cluster 'job-b'") && r.refusal.contains("cluster 'job-a'"),
            "{}",
            r.refusal
        );
        // A JobManager with a cluster also refuses a TaskManager that names none (an earlier
        // release's, or one started without cluster.id).
        let r = answer_registration(&of(""), 7, HB, "job-a");
        assert!(
            !r.accepted && r.retry && r.refusal.contains("no cluster"),
            "{r:?}"
        );
        // The same cluster, or a JobManager without one, registers as before.
        for (tm, jm) in [("job-a", "job-a"), ("job-b", ""), ("", "")] {
            let r = answer_registration(&of(tm), 7, HB, jm);
            assert!(r.accepted && !r.retry, "{tm:?} at {jm:?}: {r:?}");
        }
        // An incompatible version is final, whatever the cluster.
        let old = RegisterTaskManagerRequest {
            cluster_id: "job-b".into(),
            ..request(PROTOCOL_VERSION.major + 1)
        };
        let r = answer_registration(&old, 7, HB, "job-a");
        assert!(!r.accepted && !r.retry, "{r:?}");
    }

    /// Only registration, to prove the generated service and client talk over loopback.
    struct RegistrationOnly;

    #[tonic::async_trait]
    impl JobManagerService for RegistrationOnly {
        async fn register_task_manager(
            &self,
            request: Request<RegisterTaskManagerRequest>,
        ) -> Result<Response<RegisterTaskManagerResponse>, Status> {
            Ok(Response::new(answer_registration(
                request.get_ref(),
                1,
                HB,
                "",
            )))
        }
        async fn heartbeat(
            &self,
            _: Request<HeartbeatRequest>,
        ) -> Result<Response<HeartbeatResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn offer_slots(
            &self,
            _: Request<OfferSlotsRequest>,
        ) -> Result<Response<OfferSlotsResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn update_task_state(
            &self,
            _: Request<UpdateTaskStateRequest>,
        ) -> Result<Response<UpdateTaskStateResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn acknowledge_checkpoint(
            &self,
            _: Request<AcknowledgeCheckpointRequest>,
        ) -> Result<Response<AcknowledgeCheckpointResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn decline_checkpoint(
            &self,
            _: Request<DeclineCheckpointRequest>,
        ) -> Result<Response<DeclineCheckpointResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
        async fn attempt_ended(
            &self,
            _: Request<AttemptEndedRequest>,
        ) -> Result<Response<AttemptEndedResponse>, Status> {
            Err(Status::unimplemented("not in this test"))
        }
    }

    #[tokio::test]
    async fn an_incompatible_task_manager_is_refused_over_grpc() {
        let incoming =
            tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = incoming.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(JobManagerServiceServer::new(RegistrationOnly))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stopped.await;
                }),
        );
        let mut client = JobManagerServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let ok = client
            .register_task_manager(request(PROTOCOL_VERSION.major))
            .await
            .unwrap()
            .into_inner();
        assert!(ok.accepted, "{ok:?}");
        let refused = client
            .register_task_manager(request(PROTOCOL_VERSION.major + 1))
            .await
            .unwrap()
            .into_inner();
        assert!(!refused.accepted);
        assert!(
            refused.refusal.contains(&format!(
                "speaks control protocol {}.{}",
                PROTOCOL_VERSION.major + 1,
                PROTOCOL_VERSION.minor
            )) && refused.refusal.contains("fjord 9.0.0"),
            "{}",
            refused.refusal
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
