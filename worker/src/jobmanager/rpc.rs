//! The JobManager's gRPC control plane (`fjord.v1.JobManagerService`) on its RPC port:
//! TaskManager registration (refusing incompatible versions with the message of
//! [`fjord_proto::ProtoError`]), heartbeats and slot offers, all recorded in the
//! [`TaskManagerRegistry`]; task state updates, checkpoint acknowledgements and declines, and
//! the end of a TaskManager's part of an attempt, routed by the [`AttemptRouter`] to the
//! running attempt (reports of other attempts or epochs answer `fenced = true`). The task
//! metrics carried by heartbeats and attempt ends go to the router's
//! [`TaskMetricsStore`](super::task_metrics::TaskMetricsStore).

use super::deployer::AttemptRouter;
use super::registry::{HeartbeatAnswer, TaskManagerRegistry};
use crate::WorkerError;
use crate::control;
use fjord::cluster::TaskReport;
use fjord_proto::v1::job_manager_service_server::{JobManagerService, JobManagerServiceServer};
use fjord_proto::v1::*;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The service over a registry.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    registry: Arc<TaskManagerRegistry>,
    router: Arc<AttemptRouter>,
}

impl ControlPlane {
    /// Serves `registry`, routing task reports through `router`.
    pub fn new(registry: Arc<TaskManagerRegistry>, router: Arc<AttemptRouter>) -> Self {
        ControlPlane { registry, router }
    }
}

#[tonic::async_trait]
impl JobManagerService for ControlPlane {
    async fn register_task_manager(
        &self,
        request: Request<RegisterTaskManagerRequest>,
    ) -> Result<Response<RegisterTaskManagerResponse>, Status> {
        let request = request.into_inner();
        if request.task_manager_id.is_empty() {
            return Err(Status::invalid_argument(
                "task_manager_id is empty; give the TaskManager an ID (--id or FJORD_POD_NAME)",
            ));
        }
        Ok(Response::new(self.registry.register(&request)))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let answer =
            self.registry
                .heartbeat_of(&r.task_manager_id, r.job_manager_epoch, &r.incarnation);
        let known = answer == HeartbeatAnswer::Known;
        if known {
            self.registry
                .record_memory(&r.task_manager_id, r.memory_rss_bytes);
            self.router.record_task_metrics(
                &r.task_manager_id,
                &r.task_metrics,
                &r.operator_metrics,
            );
        }
        Ok(Response::new(HeartbeatResponse {
            known,
            superseded: answer == HeartbeatAnswer::Superseded,
        }))
    }

    async fn offer_slots(
        &self,
        request: Request<OfferSlotsRequest>,
    ) -> Result<Response<OfferSlotsResponse>, Status> {
        let r = request.into_inner();
        match self.registry.offer_slots(
            &r.task_manager_id,
            r.job_manager_epoch,
            r.slots.iter().map(|s| s.slot_index),
        ) {
            Some(accepted_slots) => Ok(Response::new(OfferSlotsResponse { accepted_slots })),
            None => Err(Status::failed_precondition(format!(
                "TaskManager '{}' is not registered with this JobManager (epoch {}); register again",
                r.task_manager_id,
                self.registry.epoch()
            ))),
        }
    }

    async fn update_task_state(
        &self,
        request: Request<UpdateTaskStateRequest>,
    ) -> Result<Response<UpdateTaskStateResponse>, Status> {
        let r = request.into_inner();
        let status = r.status.unwrap_or_default();
        let task = status.task.clone().unwrap_or_default();
        // Only the end of a task's input matters to the coordinator; the end of a
        // TaskManager's whole part comes as AttemptEnded.
        let fenced = if status.state() == TaskState::Finished {
            self.router.report(
                task.job.as_ref(),
                TaskReport::InputFinished {
                    task: task.task_index as usize,
                },
            )
        } else {
            false
        };
        Ok(Response::new(UpdateTaskStateResponse { fenced }))
    }

    async fn acknowledge_checkpoint(
        &self,
        request: Request<AcknowledgeCheckpointRequest>,
    ) -> Result<Response<AcknowledgeCheckpointResponse>, Status> {
        let r = request.into_inner();
        let job = r.task.as_ref().and_then(|t| t.job.clone());
        let fenced = self
            .router
            .report(job.as_ref(), control::report_from_ack(&r));
        Ok(Response::new(AcknowledgeCheckpointResponse { fenced }))
    }

    async fn decline_checkpoint(
        &self,
        request: Request<DeclineCheckpointRequest>,
    ) -> Result<Response<DeclineCheckpointResponse>, Status> {
        let r = request.into_inner();
        let job = r.task.as_ref().and_then(|t| t.job.clone());
        let fenced = self
            .router
            .report(job.as_ref(), control::report_from_decline(&r));
        Ok(Response::new(DeclineCheckpointResponse { fenced }))
    }

    async fn attempt_ended(
        &self,
        request: Request<AttemptEndedRequest>,
    ) -> Result<Response<AttemptEndedResponse>, Status> {
        let r = request.into_inner();
        let state = r.state();
        if r.job_manager_epoch == self.registry.epoch() {
            // Before the end is routed: once the attempt ends, its final counts are here.
            self.router.record_task_metrics(
                &r.task_manager_id,
                &r.task_metrics,
                &r.operator_metrics,
            );
        }
        let fenced = self.router.attempt_ended(
            &r.task_manager_id,
            r.job.as_ref(),
            r.job_manager_epoch,
            state,
            r.failure,
        );
        Ok(Response::new(AttemptEndedResponse { fenced }))
    }
}

/// The running gRPC server and the registry's liveness sweeper.
#[derive(Debug)]
pub struct RpcServer {
    /// Where it listens (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl RpcServer {
    /// Binds `address:port` and serves the control plane over `registry` in the background.
    ///
    /// # Errors
    /// [`WorkerError::Serve`] when the address cannot be resolved or bound.
    pub async fn start(
        address: &str,
        port: u16,
        registry: Arc<TaskManagerRegistry>,
        router: Arc<AttemptRouter>,
    ) -> Result<RpcServer, WorkerError> {
        Self::start_tls(address, port, registry, router, None).await
    }

    /// [`RpcServer::start`], requiring mutual TLS with `tls` when given: a TaskManager
    /// without a client certificate of the cluster's CA cannot even open a connection.
    ///
    /// # Errors
    /// [`WorkerError::Serve`] when the address cannot be resolved or bound.
    pub async fn start_tls(
        address: &str,
        port: u16,
        registry: Arc<TaskManagerRegistry>,
        router: Arc<AttemptRouter>,
        tls: Option<&fjord::tls::InternalTls>,
    ) -> Result<RpcServer, WorkerError> {
        let serve_error = |source| WorkerError::Serve {
            address: format!("{address}:{port} (RPC)"),
            source,
        };
        let listener = tokio::net::TcpListener::bind((address, port))
            .await
            .map_err(serve_error)?;
        let addr = listener.local_addr().map_err(serve_error)?;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let service = JobManagerServiceServer::new(ControlPlane::new(registry.clone(), router));
        let server = tonic::transport::Server::builder().add_service(service);
        let stop = async {
            // A dropped sender (the server dropped without `stop`) stops it as well.
            let _ = stop.await;
        };
        let task = match tls {
            None => tokio::spawn(server.serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                stop,
            )),
            Some(tls) => {
                let incoming = crate::tls::TlsIncoming::new(listener, tls.server_config(), "RPC")
                    .map_err(serve_error)?;
                tokio::spawn(server.serve_with_incoming_shutdown(incoming.into_stream(), stop))
            }
        };
        let sweeper = tokio::spawn(registry.run_sweeper());
        Ok(RpcServer {
            addr,
            shutdown,
            task,
            sweeper,
        })
    }

    /// Stops serving and returns.
    pub async fn stop(self) {
        self.sweeper.abort();
        // The server may have ended already (receiver gone); how it ended changes nothing
        // now that it is being stopped (a panic was reported by the panic hook).
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_proto::HeartbeatSettings;
    use fjord_proto::v1::job_manager_service_client::JobManagerServiceClient;

    #[tokio::test]
    async fn registration_offers_and_heartbeats_over_grpc_and_an_old_version_is_refused() {
        let registry = Arc::new(TaskManagerRegistry::new(
            5,
            HeartbeatSettings {
                interval_ms: 100,
                timeout_ms: 60_000,
            },
        ));
        let server = RpcServer::start("127.0.0.1", 0, registry.clone(), Arc::default())
            .await
            .unwrap();
        let mut client = JobManagerServiceClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        let mut request = RegisterTaskManagerRequest {
            task_manager_id: "tm-new".into(),
            protocol_version: Some(fjord_proto::PROTOCOL_VERSION),
            binary_version: "0.1.0".into(),
            data_address: "127.0.0.1:1".into(),
            slots: 2,
            ..Default::default()
        };
        let ok = client
            .register_task_manager(request.clone())
            .await
            .unwrap()
            .into_inner();
        assert!(ok.accepted && ok.job_manager_epoch == 5, "{ok:?}");
        let offered = client
            .offer_slots(OfferSlotsRequest {
                task_manager_id: "tm-new".into(),
                job_manager_epoch: 5,
                slots: (0..2)
                    .map(|slot_index| SlotOffer {
                        slot_index,
                        memory_bytes: 0,
                    })
                    .collect(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(offered.accepted_slots, vec![0, 1]);
        let beat = |id: &str| HeartbeatRequest {
            task_manager_id: id.into(),
            job_manager_epoch: 5,
            ..Default::default()
        };
        assert!(
            client
                .heartbeat(beat("tm-new"))
                .await
                .unwrap()
                .into_inner()
                .known
        );
        assert!(
            !client
                .heartbeat(beat("nobody"))
                .await
                .unwrap()
                .into_inner()
                .known
        );

        request.task_manager_id = "tm-old".into();
        request.binary_version = "7.0.0".into();
        request.protocol_version = Some(ProtocolVersion {
            major: fjord_proto::PROTOCOL_VERSION.major + 1,
            minor: 0,
        });
        let refused = client
            .register_task_manager(request)
            .await
            .unwrap()
            .into_inner();
        assert!(!refused.accepted);
        assert!(
            refused
                .refusal
                .contains("refusing TaskManager 'tm-old' (fjord 7.0.0)"),
            "{}",
            refused.refusal
        );
        let list = registry.list();
        assert_eq!(list.task_managers.len(), 1);
        assert_eq!(list.slots_available, 2);
        server.stop().await;
    }
}
