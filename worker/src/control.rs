//! Between the engine's cluster types ([`fjord::cluster`]) and their control-plane messages
//! ([`fjord_proto::v1`]): attempt plans, coordinator commands, task reports and task metrics.

use fjord::cluster::{AttemptPlan, StateFile, TaskCommand, TaskReport, WorkerAddress};
use fjord::metrics::{GroupPart, MetricKind, MetricName, MetricRegistry, MetricSample};
use fjord::runtime::io_metrics::OperatorIo;
use fjord_proto::v1::{
    AcknowledgeCheckpointRequest, CheckpointKind, DeclineCheckpointRequest, DeployAttemptRequest,
    JobAttempt, MetricGroupPart, OperatorMetric, StateHandle, TaskCommandKind, TaskCommandRequest,
    TaskId, TaskMetrics, TaskState, TaskStatus, UpdateTaskStateRequest, VertexPlacement,
    WorkerEndpoint,
};

/// The messages of every operator metric in `registry`, of attempt `job`.
pub fn operator_metrics(job: &JobAttempt, registry: &MetricRegistry) -> Vec<OperatorMetric> {
    registry
        .samples()
        .into_iter()
        .map(|s| OperatorMetric {
            job: Some(job.clone()),
            operator: s.operator,
            subtask: s.subtask as u32,
            groups: s
                .metric
                .groups
                .into_iter()
                .map(|g| match g {
                    GroupPart::Name(name) => MetricGroupPart { name, value: None },
                    GroupPart::KeyValue(name, value) => MetricGroupPart {
                        name,
                        value: Some(value),
                    },
                })
                .collect(),
            name: s.metric.name,
            gauge: s.kind == MetricKind::Gauge,
            value: s.value,
        })
        .collect()
}

/// The engine's view of an operator metric from its message.
pub fn metric_sample(m: &OperatorMetric) -> MetricSample {
    MetricSample {
        operator: m.operator.clone(),
        subtask: m.subtask as usize,
        metric: MetricName {
            groups: m
                .groups
                .iter()
                .map(|g| match &g.value {
                    None => GroupPart::Name(g.name.clone()),
                    Some(v) => GroupPart::KeyValue(g.name.clone(), v.clone()),
                })
                .collect(),
            name: m.name.clone(),
        },
        kind: if m.gauge {
            MetricKind::Gauge
        } else {
            MetricKind::Counter
        },
        value: m.value,
    }
}

/// The metrics message of one task subtask of attempt `job` (sent with heartbeats).
pub fn task_metrics(job: &JobAttempt, io: &OperatorIo) -> TaskMetrics {
    TaskMetrics {
        job: Some(job.clone()),
        vertex: io.vertex as u32,
        subtask: io.subtask as u32,
        operator: io.operator.clone(),
        records_in: io.records_in,
        records_out: io.records_out,
        bytes_in: io.bytes_in,
        bytes_out: io.bytes_out,
        busy_ms: io.busy_ms,
        idle_ms: io.idle_ms,
        backpressured_ms: io.backpressured_ms,
        input_watermark: io.input_watermark,
        output_watermark: io.output_watermark,
    }
}

/// The engine's view of a task subtask's metrics from its message.
pub fn operator_io(m: &TaskMetrics) -> OperatorIo {
    OperatorIo {
        vertex: m.vertex as usize,
        position: 0,
        operator: m.operator.clone(),
        subtask: m.subtask as usize,
        records_in: m.records_in,
        records_out: m.records_out,
        bytes_in: m.bytes_in,
        bytes_out: m.bytes_out,
        backpressured_ms: m.backpressured_ms,
        idle_ms: m.idle_ms,
        busy_ms: m.busy_ms,
        input_watermark: m.input_watermark,
        output_watermark: m.output_watermark,
    }
}

/// The attempt message for `job_id` / `attempt`.
pub fn job_attempt(job_id: &str, attempt: u32) -> JobAttempt {
    JobAttempt {
        job_id: job_id.to_string(),
        attempt: u64::from(attempt),
    }
}

/// The plan a TaskManager receives, as the engine's [`AttemptPlan`].
///
/// # Errors
/// A placement pointing at a worker the request does not list.
pub fn plan_from_request(r: &DeployAttemptRequest) -> Result<AttemptPlan, String> {
    let job = r.job.clone().unwrap_or_default();
    let workers: Vec<WorkerAddress> = r
        .workers
        .iter()
        .map(|w| WorkerAddress {
            id: w.task_manager_id.clone(),
            data_address: w.data_address.clone(),
        })
        .collect();
    let placement: Vec<Vec<usize>> = r
        .placement
        .iter()
        .map(|v| v.workers.iter().map(|w| *w as usize).collect())
        .collect();
    if placement.iter().flatten().any(|w| *w >= workers.len()) {
        return Err(format!(
            "the plan of attempt {} places a subtask on a TaskManager it does not list",
            job.attempt
        ));
    }
    Ok(AttemptPlan {
        job_id: job.job_id,
        epoch: r.job_manager_epoch,
        attempt: job.attempt as u32,
        workers,
        placement,
        restore: Some(r.restore_checkpoint_path.clone()).filter(|p| !p.is_empty()),
        allow_non_restored_state: r.allow_non_restored_state,
    })
}

/// The workers and placement of `plan` as message fields.
pub fn plan_fields(plan: &AttemptPlan) -> (Vec<WorkerEndpoint>, Vec<VertexPlacement>) {
    (
        plan.workers
            .iter()
            .map(|w| WorkerEndpoint {
                task_manager_id: w.id.clone(),
                data_address: w.data_address.clone(),
            })
            .collect(),
        plan.placement
            .iter()
            .map(|v| VertexPlacement {
                workers: v.iter().map(|w| *w as u32).collect(),
            })
            .collect(),
    )
}

/// A coordinator command as its message.
pub fn command_request(
    job: JobAttempt,
    epoch: u64,
    task: usize,
    command: &TaskCommand,
) -> TaskCommandRequest {
    let mut r = TaskCommandRequest {
        job: Some(job),
        job_manager_epoch: epoch,
        task_index: task as u32,
        ..Default::default()
    };
    match command {
        TaskCommand::TriggerCheckpoint {
            checkpoint_id,
            timestamp_ms,
            target,
            savepoint,
            stop,
            full,
        } => {
            r.set_kind(TaskCommandKind::Trigger);
            r.full = *full;
            r.checkpoint_id = *checkpoint_id as i64;
            r.timestamp_ms = *timestamp_ms;
            r.target_path = target.clone();
            r.set_checkpoint_kind(match (savepoint, stop) {
                (_, Some(_)) => CheckpointKind::SavepointAndStop,
                (true, None) => CheckpointKind::Savepoint,
                (false, None) => CheckpointKind::Checkpoint,
            });
            r.drain = stop.unwrap_or(false);
        }
        TaskCommand::CheckpointComplete { checkpoint_id } => {
            r.set_kind(TaskCommandKind::Complete);
            r.checkpoint_id = *checkpoint_id as i64;
        }
        TaskCommand::CheckpointAborted { checkpoint_id } => {
            r.set_kind(TaskCommandKind::Abort);
            r.checkpoint_id = *checkpoint_id as i64;
        }
    }
    r
}

/// The coordinator command a message carries.
///
/// # Errors
/// An unknown command kind.
pub fn command_from_request(r: &TaskCommandRequest) -> Result<TaskCommand, String> {
    let checkpoint_id = r.checkpoint_id.max(0) as u64;
    Ok(match r.kind() {
        TaskCommandKind::Trigger => {
            let kind = r.checkpoint_kind();
            TaskCommand::TriggerCheckpoint {
                checkpoint_id,
                timestamp_ms: r.timestamp_ms,
                target: r.target_path.clone(),
                savepoint: kind != CheckpointKind::Checkpoint,
                stop: (kind == CheckpointKind::SavepointAndStop).then_some(r.drain),
                full: r.full,
            }
        }
        TaskCommandKind::Complete => TaskCommand::CheckpointComplete { checkpoint_id },
        TaskCommandKind::Abort => TaskCommand::CheckpointAborted { checkpoint_id },
        TaskCommandKind::Unspecified => {
            return Err(format!(
                "task command for task {} has no kind; the JobManager speaks another protocol version",
                r.task_index
            ));
        }
    })
}

fn task_id(job: &JobAttempt, task: usize) -> TaskId {
    TaskId {
        job: Some(job.clone()),
        vertex: 0,
        subtask: 0,
        task_index: task as u32,
    }
}

/// A task report as the message a TaskManager sends.
pub enum ReportMessage {
    /// A snapshot is uploaded.
    Ack(AcknowledgeCheckpointRequest),
    /// A snapshot failed.
    Decline(DeclineCheckpointRequest),
    /// A task's input finished.
    Finished(UpdateTaskStateRequest),
}

/// The message for `report` of a task of `job`, from TaskManager `task_manager_id`.
pub fn report_message(
    job: &JobAttempt,
    task_manager_id: &str,
    report: TaskReport,
) -> ReportMessage {
    match report {
        TaskReport::Acknowledged {
            task,
            checkpoint_id,
            states,
        } => ReportMessage::Ack(AcknowledgeCheckpointRequest {
            task: Some(task_id(job, task)),
            checkpoint_id: checkpoint_id as i64,
            state: states
                .into_iter()
                .map(|s| StateHandle {
                    key_group_start: 0,
                    key_group_end: 0,
                    path: s.file,
                    size_bytes: s.size,
                    operator_id: s.operator_id,
                    operator_name: s.operator_name,
                    has_uid: s.has_uid,
                    subtask: s.subtask as u32,
                    parallelism: s.parallelism as u32,
                    max_parallelism: s.max_parallelism as u32,
                    checksum: s.checksum,
                })
                .collect(),
            duration_ms: 0,
        }),
        TaskReport::Declined {
            task,
            checkpoint_id,
            reason,
        } => ReportMessage::Decline(DeclineCheckpointRequest {
            task: Some(task_id(job, task)),
            checkpoint_id: checkpoint_id as i64,
            reason,
        }),
        TaskReport::InputFinished { task } => ReportMessage::Finished(UpdateTaskStateRequest {
            task_manager_id: task_manager_id.to_string(),
            status: Some(TaskStatus {
                task: Some(task_id(job, task)),
                state: TaskState::Finished as i32,
                failure: String::new(),
            }),
        }),
    }
}

/// The report an acknowledgement message carries.
pub fn report_from_ack(r: &AcknowledgeCheckpointRequest) -> TaskReport {
    TaskReport::Acknowledged {
        task: r.task.as_ref().map_or(0, |t| t.task_index as usize),
        checkpoint_id: r.checkpoint_id.max(0) as u64,
        states: r
            .state
            .iter()
            .map(|s| StateFile {
                operator_id: s.operator_id.clone(),
                operator_name: s.operator_name.clone(),
                has_uid: s.has_uid,
                subtask: s.subtask as usize,
                parallelism: s.parallelism as usize,
                max_parallelism: s.max_parallelism as usize,
                file: s.path.clone(),
                size: s.size_bytes,
                checksum: s.checksum.clone(),
            })
            .collect(),
    }
}

/// The report a decline message carries.
pub fn report_from_decline(r: &DeclineCheckpointRequest) -> TaskReport {
    TaskReport::Declined {
        task: r.task.as_ref().map_or(0, |t| t.task_index as usize),
        checkpoint_id: r.checkpoint_id.max(0) as u64,
        reason: r.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_survive_the_wire() {
        let job = job_attempt("j", 3);
        for command in [
            TaskCommand::TriggerCheckpoint {
                checkpoint_id: 4,
                timestamp_ms: 77,
                target: "s3://b/j/chk-4".into(),
                savepoint: false,
                stop: None,
                full: true,
            },
            TaskCommand::TriggerCheckpoint {
                checkpoint_id: 5,
                timestamp_ms: 78,
                target: "s3://b/sp".into(),
                savepoint: true,
                stop: Some(true),
                full: false,
            },
            TaskCommand::CheckpointComplete { checkpoint_id: 4 },
            TaskCommand::CheckpointAborted { checkpoint_id: 5 },
        ] {
            let r = command_request(job.clone(), 9, 2, &command);
            assert_eq!(r.task_index, 2);
            assert_eq!(command_from_request(&r).unwrap(), command);
        }
        assert!(command_from_request(&TaskCommandRequest::default()).is_err());
    }

    #[test]
    fn acknowledgements_survive_the_wire() {
        let job = job_attempt("j", 0);
        let report = TaskReport::Acknowledged {
            task: 3,
            checkpoint_id: 8,
            states: vec![StateFile {
                operator_id: "counts".into(),
                operator_name: "Keyed Aggregation".into(),
                has_uid: true,
                subtask: 1,
                parallelism: 2,
                max_parallelism: 128,
                file: "op-counts/1".into(),
                size: 42,
                checksum: "crc32:0badf00d".into(),
            }],
        };
        let ReportMessage::Ack(ack) = report_message(&job, "tm", report.clone()) else {
            panic!("not an ack");
        };
        assert_eq!(report_from_ack(&ack), report);
        let decline = TaskReport::Declined {
            task: 1,
            checkpoint_id: 8,
            reason: "bucket missing".into(),
        };
        let ReportMessage::Decline(d) = report_message(&job, "tm", decline.clone()) else {
            panic!("not a decline");
        };
        assert_eq!(report_from_decline(&d), decline);
    }

    #[test]
    fn plans_survive_the_wire() {
        let plan = AttemptPlan {
            job_id: "j".into(),
            epoch: 12,
            attempt: 2,
            workers: vec![
                WorkerAddress {
                    id: "a".into(),
                    data_address: "127.0.0.1:1".into(),
                },
                WorkerAddress {
                    id: "b".into(),
                    data_address: "127.0.0.1:2".into(),
                },
            ],
            placement: vec![vec![0, 1], vec![1, 0]],
            restore: Some("file:///tmp/chk-3".into()),
            allow_non_restored_state: true,
        };
        let (workers, placement) = plan_fields(&plan);
        let request = DeployAttemptRequest {
            job: Some(job_attempt("j", 2)),
            job_manager_epoch: 12,
            workers,
            placement,
            restore_checkpoint_path: "file:///tmp/chk-3".into(),
            allow_non_restored_state: true,
            ..Default::default()
        };
        assert_eq!(plan_from_request(&request).unwrap(), plan);
        let mut bad = request;
        bad.placement[0].workers[0] = 7;
        assert!(plan_from_request(&bad).is_err());
    }
}
