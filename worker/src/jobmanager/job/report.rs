//! What the REST API and `/metrics` read about the job besides checkpoints: the summary and
//! details (vertices, edges), the task metrics and the operators' own metrics, live or as
//! they were when the job ended.

use super::{JobManager, lock};
use fjord::JobPlan;
use fjord::metrics::MetricSample;
use fjord::runtime::io_metrics::OperatorIo;
use fjord_client::api::{Edge, JobDetails, JobSummary, SubtaskMetrics, Vertex};
use std::sync::Arc;

impl JobManager {
    /// The metrics of every task subtask (records and bytes in and out, time, watermarks).
    /// With TaskManagers: what the live TaskManagers last reported for the attempt deployed
    /// last (see [`task_metrics`](crate::jobmanager::task_metrics)), as fresh as their heartbeats; after the job ended,
    /// the values at its end.
    pub fn io(&self) -> Vec<OperatorIo> {
        if let Some(io) = lock(&self.final_io).clone() {
            return io;
        }
        match &self.remote_io {
            None => lock(&self.execution).io.snapshot(),
            Some((router, registry)) => {
                let Some(attempt) = router.deployed() else {
                    return Vec::new();
                };
                let live = live_task_managers(registry);
                router
                    .task_metrics()
                    .merged(&attempt, |id| live.iter().any(|l| l == id))
            }
        }
    }

    /// The operators' own counters and gauges (user functions', connectors'): live from this
    /// process's scheduler, or as the TaskManagers of the deployed attempt reported them last
    /// (as fresh as their heartbeats); after the job ended, the values at its end.
    pub fn operator_metrics(&self) -> Vec<MetricSample> {
        if let Some(samples) = lock(&self.final_operator_metrics).clone() {
            return samples;
        }
        match &self.remote_io {
            None => lock(&self.execution).metrics.samples(),
            Some((router, registry)) => {
                let Some(attempt) = router.deployed() else {
                    return Vec::new();
                };
                let live = live_task_managers(registry);
                router
                    .task_metrics()
                    .merged_operators(&attempt, |id| live.iter().any(|l| l == id))
            }
        }
    }

    /// The job's plan (vertices and edges) of the current execution.
    pub fn plan(&self) -> Arc<JobPlan> {
        lock(&self.execution).plan.clone()
    }

    /// The registered job name.
    pub fn name(&self) -> &str {
        &self.run.job
    }

    /// The job in `GET /v1/jobs`.
    pub fn summary(&self) -> JobSummary {
        JobSummary {
            id: self.id.clone(),
            name: self.run.job.clone(),
            state: self.state(),
        }
    }

    /// The job in `GET /v1/jobs/{job_id}`.
    pub fn details(&self) -> JobDetails {
        let (state, failure, end_time_ms) = {
            let s = self.status();
            (s.state, s.failure.clone(), s.end_time_ms)
        };
        let io = self.io();
        let plan = self.plan();
        let vertices = plan.vertices.iter().map(|v| vertex(v, &io)).collect();
        JobDetails {
            id: self.id.clone(),
            name: self.run.job.clone(),
            args: self.run.args.clone(),
            state,
            failure,
            start_time_ms: self.start_time_ms,
            end_time_ms,
            duration_ms: (self.uptime_seconds() * 1000.0) as i64,
            restarts: self.restarts(),
            vertices,
            edges: plan
                .edges
                .iter()
                .map(|e| Edge {
                    source: e.source,
                    target: e.target,
                    partitioner: e.partitioner.clone(),
                    side_output: e.side_output.clone(),
                })
                .collect(),
        }
    }
}

/// A vertex with the metrics of its subtasks (Flink's task-level numRecordsIn/Out, ...). A
/// subtask not deployed yet reports zeros.
fn vertex(v: &fjord::graph_plan::VertexPlan, io: &[OperatorIo]) -> Vertex {
    let subtasks: Vec<SubtaskMetrics> = (0..v.parallelism)
        .map(|subtask| {
            let mut m = SubtaskMetrics {
                subtask,
                records_in: 0,
                records_out: 0,
                bytes_in: 0,
                bytes_out: 0,
                backpressured_ms: 0,
                idle_ms: 0,
                busy_ms: 0,
                input_watermark: None,
                output_watermark: None,
            };
            // One entry per task subtask today; sums should that ever change.
            for o in io
                .iter()
                .filter(|o| o.vertex == v.id && o.subtask == subtask)
            {
                m.records_in += o.records_in;
                m.records_out += o.records_out;
                m.bytes_in += o.bytes_in;
                m.bytes_out += o.bytes_out;
                m.backpressured_ms += o.backpressured_ms;
                m.idle_ms += o.idle_ms;
                m.busy_ms += o.busy_ms;
                m.input_watermark = m.input_watermark.max(o.input_watermark);
                m.output_watermark = m.output_watermark.max(o.output_watermark);
            }
            m
        })
        .collect();
    Vertex {
        id: v.id,
        name: v.name.clone(),
        parallelism: v.parallelism,
        max_parallelism: v.max_parallelism,
        records_in: subtasks.iter().map(|s| s.records_in).sum(),
        records_out: subtasks.iter().map(|s| s.records_out).sum(),
        subtasks,
        operators: v.operators.clone(),
    }
}

/// The IDs of the TaskManagers registered (not lost) with `registry`: whose last reports of
/// the deployed attempt count.
fn live_task_managers(registry: &crate::jobmanager::registry::TaskManagerRegistry) -> Vec<String> {
    registry
        .list()
        .task_managers
        .into_iter()
        .filter(|t| t.state == fjord_client::api::TaskManagerState::Registered)
        .map(|t| t.id)
        .collect()
}
