//! What the web dashboard reads about the job beyond `GET /v1/jobs/{job_id}`: the exception
//! history, the checkpoint overview, and the subtasks of one TaskManager. A child of [`super`]
//! so it reads the job's state directly; the REST handlers are in
//! [`rest_dashboard`](crate::jobmanager::rest_dashboard).

use super::{JobManager, lock};
use fjord::checkpoint::JobFailure;
use fjord::runtime::io_metrics::OperatorIo;
use fjord_client::api::{
    CheckpointOverview, CheckpointSettings, ExceptionHistory, JobException, JobState,
    SubtaskMetrics, TaskManagerSubtask,
};

fn exception(f: &JobFailure) -> JobException {
    JobException {
        timestamp_ms: f.at_ms,
        message: f.message.clone(),
        operator: f.operator.clone(),
        subtask: f.subtask,
        attempt: f.attempt,
        terminal: f.terminal,
    }
}

/// A subtask's metrics as `GET /v1/jobs/{job_id}` reports them.
pub(crate) fn subtask_metrics(o: &OperatorIo) -> SubtaskMetrics {
    SubtaskMetrics {
        subtask: o.subtask,
        records_in: o.records_in,
        records_out: o.records_out,
        bytes_in: o.bytes_in,
        bytes_out: o.bytes_out,
        backpressured_ms: o.backpressured_ms,
        idle_ms: o.idle_ms,
        busy_ms: o.busy_ms,
        input_watermark: o.input_watermark,
        output_watermark: o.output_watermark,
    }
}

impl JobManager {
    /// The failures of the job's execution attempts, newest first, and the root cause when
    /// the job failed.
    pub fn exceptions(&self) -> ExceptionHistory {
        let failures = match self.client() {
            Some(client) => client.failures(),
            None => lock(&self.final_checkpoints).failures.clone(),
        };
        let history: Vec<JobException> = failures.iter().rev().map(exception).collect();
        let (state, failure, end_time_ms) = {
            let s = self.status();
            (s.state, s.failure.clone(), s.end_time_ms)
        };
        let root_cause = match (state, failure) {
            (JobState::Failed, Some(message)) => Some(
                history
                    .iter()
                    .find(|e| e.terminal && e.message == message)
                    .cloned()
                    // The JobManager's own reason (a rescale that could not start again).
                    .unwrap_or(JobException {
                        timestamp_ms: end_time_ms.unwrap_or(self.start_time_ms),
                        message,
                        operator: None,
                        subtask: None,
                        attempt: self.restarts(),
                        terminal: true,
                    }),
            ),
            _ => None,
        };
        ExceptionHistory {
            root_cause,
            history,
        }
    }

    /// Checkpoint counts, configuration and restore point.
    pub fn checkpoint_overview(&self) -> CheckpointOverview {
        let (completed, failed) = self.checkpoint_counts();
        let counts = self.savepoint_counts();
        let count = |name: &str| {
            counts
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, c)| *c)
        };
        let config = self.launcher.config.to_api(0);
        let latest = match self.client() {
            Some(client) => client.latest_checkpoint(),
            None => lock(&self.final_checkpoints).latest.clone(),
        };
        CheckpointOverview {
            completed,
            failed,
            savepoints_in_progress: count("in_progress"),
            savepoints_completed: count("completed"),
            restarts: self.restarts(),
            restored_from: config.restore_path,
            latest,
            settings: CheckpointSettings {
                mode: if self.launcher.config.at_least_once {
                    "AT_LEAST_ONCE"
                } else {
                    "EXACTLY_ONCE"
                }
                .into(),
                interval_ms: self.checkpoint_interval_ms,
                storage: config.storage_url,
                retained: self.launcher.config.retained,
                savepoint_dir: config.savepoint_dir,
            },
        }
    }

    /// The subtasks of the current attempt that TaskManager `task_manager` runs, as it last
    /// reported them; empty when subtasks run in the JobManager.
    pub fn subtasks_on(&self, task_manager: &str) -> Vec<TaskManagerSubtask> {
        let Some((router, _)) = &self.remote_io else {
            return Vec::new();
        };
        let Some(attempt) = router.deployed() else {
            return Vec::new();
        };
        let plan = self.plan();
        router
            .task_metrics()
            .tasks_of(task_manager, &attempt)
            .iter()
            .map(|o| TaskManagerSubtask {
                vertex: o.vertex,
                vertex_name: plan
                    .vertices
                    .iter()
                    .find(|v| v.id == o.vertex)
                    .map_or_else(|| o.operator.clone(), |v| v.name.clone()),
                metrics: subtask_metrics(o),
            })
            .collect()
    }
}
