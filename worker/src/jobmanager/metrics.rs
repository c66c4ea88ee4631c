//! The JobManager's `/metrics` in the Prometheus text exposition format (version 0.0.4),
//! written with the encoder in [`crate::prometheus`]: per task subtask records and bytes in
//! and out, backpressured / idle / busy time and watermarks ([`render_tasks`], shared with
//! the TaskManager), the operators' own counters and gauges ([`render_operator_metrics`]),
//! and per job its state, uptime, restarts, checkpoints and savepoints.
//! `docs/metrics.md` lists every metric.

use super::job::JobManager;
use crate::prometheus::{header, labels, render_operator_metrics, render_tasks};
use fjord_client::api::JobState;
use std::fmt::Write;

pub use crate::prometheus::CONTENT_TYPE;

/// The exposition for `job` (only the JobManager's own gauge before the job is built).
pub fn render(job: Option<&JobManager>) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "fjord_jobmanager_has_job",
        "gauge",
        "1 once the JobManager built its job.",
    );
    let _ = writeln!(out, "fjord_jobmanager_has_job {}", u8::from(job.is_some()));
    let Some(job) = job else {
        return out;
    };
    let id = job.id();
    let name = job.name();
    let job_labels = [("job_id", id), ("job_name", name)];

    header(
        &mut out,
        "fjord_job_state",
        "gauge",
        "1 for the job's current state, 0 for the others.",
    );
    let current = job.state();
    for state in JobState::ALL {
        let l = labels(&[
            ("job_id", id),
            ("job_name", name),
            ("state", state.as_str()),
        ]);
        let _ = writeln!(out, "fjord_job_state{l} {}", u8::from(state == current));
    }

    header(
        &mut out,
        "fjord_job_uptime_seconds",
        "gauge",
        "Seconds since the job was deployed (until it ended).",
    );
    let _ = writeln!(
        out,
        "fjord_job_uptime_seconds{} {:.3}",
        labels(&job_labels),
        job.uptime_seconds()
    );

    header(
        &mut out,
        "fjord_job_restarts_total",
        "counter",
        "Restarts of the job after a failure (execution attempts - 1).",
    );
    let _ = writeln!(
        out,
        "fjord_job_restarts_total{} {}",
        labels(&job_labels),
        job.restarts()
    );

    let history = job.checkpoints();
    let (completed, failed) = job.checkpoint_counts();
    for (metric, help, value) in [
        (
            "fjord_job_checkpoints_completed_total",
            "Checkpoints (not savepoints) that completed.",
            completed,
        ),
        (
            "fjord_job_checkpoints_failed_total",
            "Checkpoints and savepoints that failed or were aborted.",
            failed,
        ),
    ] {
        header(&mut out, metric, "counter", help);
        let _ = writeln!(out, "{metric}{} {value}", labels(&job_labels));
    }
    if let Some(last) = history.completed.iter().find(|c| !c.savepoint) {
        for (metric, help, value) in [
            (
                "fjord_job_last_checkpoint_id",
                "ID of the latest completed checkpoint.",
                last.id as f64,
            ),
            (
                "fjord_job_last_checkpoint_size_bytes",
                "State size of the latest completed checkpoint.",
                last.size_bytes as f64,
            ),
            (
                "fjord_job_last_checkpoint_duration_seconds",
                "Time from trigger to completion of the latest completed checkpoint.",
                last.duration_ms as f64 / 1000.0,
            ),
            (
                "fjord_job_last_checkpoint_timestamp_seconds",
                "When the latest checkpoint completed (Unix time).",
                last.completed_at_ms as f64 / 1000.0,
            ),
        ] {
            header(&mut out, metric, "gauge", help);
            let _ = writeln!(out, "{metric}{} {value}", labels(&job_labels));
        }
    }
    header(
        &mut out,
        "fjord_job_savepoints_total",
        "counter",
        "Savepoints requested through the REST API, by outcome.",
    );
    for (outcome, count) in job.savepoint_counts() {
        let l = labels(&[("job_id", id), ("job_name", name), ("outcome", outcome)]);
        let _ = writeln!(out, "fjord_job_savepoints_total{l} {count}");
    }

    let vertex_name = |o: &fjord::runtime::io_metrics::OperatorIo| {
        job.plan()
            .vertices
            .get(o.vertex)
            .map_or_else(|| o.operator.clone(), |v| v.name.clone())
    };
    render_tasks(&mut out, &job.io(), &job_labels, &vertex_name);
    render_operator_metrics(&mut out, &job.operator_metrics(), &job_labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_job_only_the_jobmanager_gauge_is_exported() {
        let text = render(None);
        assert!(text.contains("fjord_jobmanager_has_job 0\n"), "{text}");
        assert!(!text.contains("fjord_job_state"), "{text}");
    }
}
