//! The Prometheus text exposition format (version 0.0.4), written by a tiny encoder shared by
//! the JobManager's `/metrics` and the TaskManager's metrics server: label escaping, `# HELP` /
//! `# TYPE` headers, and [`render_tasks`], the per-task-subtask metrics both roles export.
//!
//! Names follow Prometheus conventions: counters end in `_total`, the unit is part of the name
//! (`_ms`, `_bytes`). Times are milliseconds, as in Flink's `busyTimeMsPerSecond` family, so a
//! dashboard gets Flink's ratios with `rate(fjord_task_busy_ms_total[1m]) / 1000`.

use fjord::metrics::{GroupPart, MetricKind, MetricSample};
use fjord::runtime::io_metrics::OperatorIo;
use std::collections::BTreeMap;
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

/// `text` as a Prometheus metric or label name: characters other than ASCII letters, digits
/// and `_` become `_`, and a leading digit gets a `_` before it.
pub fn sanitize_name(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// The exported name of an operator metric: `fjord_operator_`, its plain groups and the keys
/// of its key/value groups, and its name, joined with `_` (Flink's Prometheus reporter's
/// rule); counters end in `_total`.
pub fn operator_metric_name(sample: &MetricSample) -> String {
    let mut parts: Vec<&str> = sample
        .metric
        .groups
        .iter()
        .map(|g| match g {
            GroupPart::Name(n) | GroupPart::KeyValue(n, _) => n.as_str(),
        })
        .collect();
    parts.push(&sample.metric.name);
    let mut name = format!("fjord_operator_{}", sanitize_name(&parts.join("_")));
    if sample.kind == MetricKind::Counter && !name.ends_with("_total") {
        name.push_str("_total");
    }
    name
}

/// Writes the operators' own counters and gauges (user functions', connectors'), one series
/// per operator subtask and metric: labels `common`, then `operator` and `subtask`, then one
/// per key/value group (`topic`, `partition` for the Kafka connector's per-partition metrics;
/// a key equal to one of the labels before gets a `group_` prefix).
pub fn render_operator_metrics(
    out: &mut String,
    samples: &[MetricSample],
    common: &[(&str, &str)],
) {
    let mut by_name: BTreeMap<String, (MetricKind, Vec<String>)> = BTreeMap::new();
    for s in samples {
        let subtask = s.subtask.to_string();
        let mut pairs: Vec<(String, String)> = common
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.push(("operator".into(), s.operator.clone()));
        pairs.push(("subtask".into(), subtask));
        for g in &s.metric.groups {
            if let GroupPart::KeyValue(k, v) = g {
                let mut key = sanitize_name(k);
                if pairs.iter().any(|(p, _)| *p == key) {
                    key = format!("group_{key}");
                }
                pairs.push((key, v.clone()));
            }
        }
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let name = operator_metric_name(s);
        let line = format!("{name}{} {}", labels(&borrowed), s.value);
        by_name
            .entry(name)
            .or_insert_with(|| (s.kind, Vec::new()))
            .1
            .push(line);
    }
    for (name, (kind, lines)) in by_name {
        let (kind, help) = match kind {
            MetricKind::Counter => ("counter", "An operator's counter (see docs/metrics.md)."),
            MetricKind::Gauge => ("gauge", "An operator's gauge (see docs/metrics.md)."),
        };
        header(out, &name, kind, help);
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord::metrics::MetricRegistry;

    #[test]
    fn operator_metrics_get_flinks_names_and_key_value_groups_become_labels() {
        let registry = MetricRegistry::default();
        let reader = registry
            .group("Kafka \"in\" (2/2)")
            .add_group("KafkaSourceReader");
        let partition = reader
            .add_group_kv("topic", "orders.eu")
            .add_group_kv("partition", "0");
        partition.counter("records").add(5);
        partition.gauge("lag").set(2);
        reader.counter("commitsFailed");
        registry.counter("Map (1/2)", "my.late-records").inc();
        registry
            .group("Map (1/2)")
            .add_group_kv("operator", "x")
            .counter("n");
        let mut out = String::new();
        render_operator_metrics(&mut out, &registry.samples(), &[("job_id", "j")]);
        let l = "{job_id=\"j\",operator=\"Kafka \\\"in\\\"\",subtask=\"1\",topic=\"orders.eu\",partition=\"0\"}";
        assert!(
            out.contains(&format!(
                "# TYPE fjord_operator_KafkaSourceReader_topic_partition_records_total counter\nfjord_operator_KafkaSourceReader_topic_partition_records_total{l} 5\n"
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "# TYPE fjord_operator_KafkaSourceReader_topic_partition_lag gauge\nfjord_operator_KafkaSourceReader_topic_partition_lag{l} 2\n"
            )),
            "{out}"
        );
        assert!(out.contains(
            "fjord_operator_KafkaSourceReader_commitsFailed_total{job_id=\"j\",operator=\"Kafka \\\"in\\\"\",subtask=\"1\"} 0\n"
        ), "{out}");
        assert!(out.contains(
            "fjord_operator_my_late_records_total{job_id=\"j\",operator=\"Map\",subtask=\"0\"} 1\n"
        ), "{out}");
        assert!(out.contains(
            "fjord_operator_operator_n_total{job_id=\"j\",operator=\"Map\",subtask=\"0\",group_operator=\"x\"} 0\n"
        ), "{out}");
    }

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
