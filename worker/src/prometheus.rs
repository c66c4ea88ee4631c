//! The Prometheus text exposition format (version 0.0.4), written by a tiny encoder shared by
//! the JobManager's `/metrics` and the TaskManager's metrics server: label escaping, `# HELP` /
//! `# TYPE` headers, and [`render_tasks`], the per-task-subtask metrics both roles export.
//!
//! Names follow Prometheus conventions: counters end in `_total`, the unit is part of the name
//! (`_ms`, `_bytes`). Times are milliseconds, as in Flink's `busyTimeMsPerSecond` family, so a
//! dashboard gets Flink's ratios with `rate(fjord_task_busy_ms_total[1m]) / 1000`.

use fjord::runtime::io_metrics::OperatorIo;
use std::fmt::Write;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (backslash, double quote, newline).
pub fn escape(value: &str) -> String {
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

/// `{k="v",...}` with escaped values (`{}` for no labels).
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Writes the `# HELP` and `# TYPE` lines of a metric.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A value of one task subtask, or `None` when it has none (a gauge without a value yet).
type Pick = fn(&OperatorIo) -> Option<i128>;

/// The per-task metrics: name, type, help, value.
const TASK_METRICS: [(&str, &str, &str, Pick); 9] = [
    (
        "fjord_task_records_in_total",
        "counter",
        "Records a task subtask received from other tasks.",
        |o| Some(o.records_in.into()),
    ),
    (
        "fjord_task_records_out_total",
        "counter",
        "Records a task subtask sent to other tasks.",
        |o| Some(o.records_out.into()),
    ),
    (
        "fjord_task_received_bytes_total",
        "counter",
        "Bytes a task subtask received over the network (0 between tasks of one process: they pass objects).",
        |o| Some(o.bytes_in.into()),
    ),
    (
        "fjord_task_sent_bytes_total",
        "counter",
        "Bytes a task subtask sent over the network (0 between tasks of one process: they pass objects).",
        |o| Some(o.bytes_out.into()),
    ),
    (
        "fjord_task_backpressured_ms_total",
        "counter",
        "Milliseconds a task subtask was blocked because an output channel was full.",
        |o| Some(o.backpressured_ms.into()),
    ),
    (
        "fjord_task_idle_ms_total",
        "counter",
        "Milliseconds a task subtask waited for input with nothing to do.",
        |o| Some(o.idle_ms.into()),
    ),
    (
        "fjord_task_busy_ms_total",
        "counter",
        "Milliseconds a task subtask worked: wall time minus idle and backpressured time.",
        |o| Some(o.busy_ms.into()),
    ),
    (
        "fjord_task_input_watermark_ms",
        "gauge",
        "Current input watermark of a task subtask (event time in ms; the minimum over its inputs). Absent before the first watermark.",
        |o| o.input_watermark.map(i128::from),
    ),
    (
        "fjord_task_output_watermark_ms",
        "gauge",
        "Last watermark a task subtask sent to other tasks (event time in ms). Absent before the first one.",
        |o| o.output_watermark.map(i128::from),
    ),
];

/// Writes the metrics of every task subtask in `tasks`: records and bytes in and out,
/// backpressured, idle and busy time, and input and output watermarks.
///
/// Every sample carries the `common` labels (for example `job_id` and `job_name`, or a
/// TaskManager's ID), then `vertex`, `task` (`task_name` of the subtask: the chain's name when
/// the caller knows the plan, else [`OperatorIo::operator`], the chain head's name) and
/// `subtask`. Both the JobManager and the TaskManager call this, so their series have the same
/// names.
pub fn render_tasks(
    out: &mut String,
    tasks: &[OperatorIo],
    common: &[(&str, &str)],
    task_name: &dyn Fn(&OperatorIo) -> String,
) {
    let task_labels: Vec<String> = tasks
        .iter()
        .map(|o| {
            let (vertex, task, subtask) =
                (o.vertex.to_string(), task_name(o), o.subtask.to_string());
            let mut pairs = common.to_vec();
            pairs.extend([
                ("vertex", vertex.as_str()),
                ("task", task.as_str()),
                ("subtask", subtask.as_str()),
            ]);
            labels(&pairs)
        })
        .collect();
    for (metric, kind, help, pick) in TASK_METRICS {
        header(out, metric, kind, help);
        for (o, l) in tasks.iter().zip(&task_labels) {
            if let Some(value) = pick(o) {
                let _ = writeln!(out, "{metric}{l} {value}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(subtask: usize, input_watermark: Option<i64>) -> OperatorIo {
        OperatorIo {
            vertex: 1,
            position: 0,
            operator: "Map \"x\"".into(),
            subtask,
            records_in: 10 + subtask as u64,
            records_out: 3,
            bytes_in: 0,
            bytes_out: 0,
            backpressured_ms: 7,
            idle_ms: 20,
            busy_ms: 5,
            input_watermark,
            output_watermark: None,
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("a", "x\"y\\z\nw")]),
            "{a=\"x\\\"y\\\\z\\nw\"}".to_string()
        );
    }

    #[test]
    fn every_task_metric_has_a_header_and_a_sample_per_subtask() {
        let mut out = String::new();
        render_tasks(
            &mut out,
            &[io(0, Some(1_700_000_000_000)), io(1, None)],
            &[("job_id", "j1")],
            &|o| o.operator.clone(),
        );
        for (metric, kind, _, _) in TASK_METRICS {
            assert!(out.contains(&format!("# TYPE {metric} {kind}\n")), "{out}");
        }
        let l = |s: usize| {
            format!("{{job_id=\"j1\",vertex=\"1\",task=\"Map \\\"x\\\"\",subtask=\"{s}\"}}")
        };
        assert!(
            out.contains(&format!("fjord_task_records_in_total{} 11\n", l(1))),
            "{out}"
        );
        assert!(out.contains(&format!("fjord_task_backpressured_ms_total{} 7\n", l(0))));
        assert!(out.contains(&format!("fjord_task_idle_ms_total{} 20\n", l(0))));
        assert!(out.contains(&format!("fjord_task_busy_ms_total{} 5\n", l(0))));
        assert!(out.contains(&format!("fjord_task_received_bytes_total{} 0\n", l(0))));
        // A gauge without a value has no sample (rather than i64::MIN).
        assert!(out.contains(&format!(
            "fjord_task_input_watermark_ms{} 1700000000000\n",
            l(0)
        )));
        assert!(!out.contains(&format!("fjord_task_input_watermark_ms{}", l(1))));
        assert!(!out.contains("fjord_task_output_watermark_ms{"));
    }
}
