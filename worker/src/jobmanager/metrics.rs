//! The JobManager's `/metrics` in the Prometheus text exposition format (version 0.0.4),
//! written by a tiny encoder: records in and out per task subtask, job uptime, restarts,
//! job state, checkpoints and savepoints.

use super::job::JobManager;
use fjord_client::api::JobState;
use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

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
        "Restarts of the job (always 0 until restart strategies land).",
    );
    let _ = writeln!(out, "fjord_job_restarts_total{} 0", labels(&job_labels));

    let history = job.checkpoints();
    header(
        &mut out,
        "fjord_job_checkpoints_failed_total",
        "counter",
        "Checkpoints that failed or were aborted.",
    );
    let _ = writeln!(
        out,
        "fjord_job_checkpoints_failed_total{} {}",
        labels(&job_labels),
        history.failed
    );
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

    let io = job.io();
    let vertex_name = |v: usize| {
        job.plan()
            .vertices
            .get(v)
            .map(|v| v.name.clone())
            .unwrap_or_default()
    };
    for (metric, help, pick) in [
        (
            "fjord_task_records_in_total",
            "Records a task subtask received from other tasks.",
            (|o: &fjord::runtime::io_metrics::OperatorIo| o.records_in) as fn(&_) -> u64,
        ),
        (
            "fjord_task_records_out_total",
            "Records a task subtask sent to other tasks.",
            |o| o.records_out,
        ),
    ] {
        header(&mut out, metric, "counter", help);
        for o in &io {
            let vertex = o.vertex.to_string();
            let task = vertex_name(o.vertex);
            let subtask = o.subtask.to_string();
            let l = labels(&[
                ("job_id", id),
                ("job_name", name),
                ("vertex", &vertex),
                ("task", &task),
                ("subtask", &subtask),
            ]);
            let _ = writeln!(out, "{metric}{l} {}", pick(o));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("a", "x\"y\\z\nw")]),
            "{a=\"x\\\"y\\\\z\\nw\"}".to_string()
        );
    }

    #[test]
    fn without_a_job_only_the_jobmanager_gauge_is_exported() {
        let text = render(None);
        assert!(text.contains("fjord_jobmanager_has_job 0\n"), "{text}");
        assert!(!text.contains("fjord_job_state"), "{text}");
    }
}
