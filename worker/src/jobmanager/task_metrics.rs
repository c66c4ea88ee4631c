//! The metrics of subtasks running on TaskManagers, as the JobManager last heard them.
//!
//! Every TaskManager sends the metrics of its tasks of its current attempt with every
//! heartbeat, and their final values when its part of an attempt ends (`AttemptEnded`). The
//! [`TaskMetricsStore`] keeps the latest report per TaskManager; [`TaskMetricsStore::merged`]
//! combines the reports of one attempt into what the REST API and `/metrics` show, as the
//! engine's [`OperatorIo`] (the same type the embedded scheduler's tasks report). Freshness is
//! the heartbeat interval (`heartbeat.interval-ms`): like Flink's metrics, the values are
//! samples, and the final ones are exact.
//!
//! Counters are cumulative within an attempt and watermarks only advance, so two reports of
//! the same task are combined by taking the larger value of every field: a heartbeat sampled
//! before the final report but delivered after it cannot make the numbers go back.
//!
//! The operators' own counters and gauges (user functions', connectors') come with the same
//! reports and are kept the same way: counters by their larger value, gauges by the latest.

use fjord::metrics::{MetricKind, MetricName, MetricSample};
use fjord::runtime::io_metrics::OperatorIo;
use fjord_proto::v1::{JobAttempt, OperatorMetric, TaskMetrics};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// One TaskManager's latest report: its attempt and its tasks by (vertex, subtask).
#[derive(Debug, Clone)]
struct Report {
    job: JobAttempt,
    tasks: BTreeMap<(usize, usize), OperatorIo>,
    /// Operator metrics by (operator, subtask, name).
    operators: BTreeMap<OperatorMetricKey, MetricSample>,
}

type OperatorMetricKey = (String, usize, MetricName);

/// `into` updated with a newer sample of the same metric: a counter keeps the larger value
/// (cumulative within an attempt), a gauge takes the newer one.
fn combine_sample(into: &mut MetricSample, from: &MetricSample) {
    into.value = match from.kind {
        MetricKind::Counter => into.value.max(from.value),
        MetricKind::Gauge => from.value,
    };
    into.kind = from.kind;
}

/// The latest task metrics reported by every TaskManager.
#[derive(Debug, Default)]
pub struct TaskMetricsStore {
    reports: Mutex<BTreeMap<String, Report>>,
}

/// `into` with the larger value of every field of `from` (both describe one task of one
/// attempt; every field only grows).
fn combine(into: &mut OperatorIo, from: &OperatorIo) {
    into.records_in = into.records_in.max(from.records_in);
    into.records_out = into.records_out.max(from.records_out);
    into.bytes_in = into.bytes_in.max(from.bytes_in);
    into.bytes_out = into.bytes_out.max(from.bytes_out);
    into.busy_ms = into.busy_ms.max(from.busy_ms);
    into.idle_ms = into.idle_ms.max(from.idle_ms);
    into.backpressured_ms = into.backpressured_ms.max(from.backpressured_ms);
    into.input_watermark = into.input_watermark.max(from.input_watermark);
    into.output_watermark = into.output_watermark.max(from.output_watermark);
}

impl TaskMetricsStore {
    fn reports(&self) -> MutexGuard<'_, BTreeMap<String, Report>> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records what TaskManager `task_manager` reported. A report of a newer attempt (or
    /// another job) replaces the TaskManager's earlier one; one of the same attempt is
    /// combined with it; one of an older attempt of the same job is ignored (a late
    /// heartbeat). An empty report changes nothing.
    pub fn record(&self, task_manager: &str, metrics: &[TaskMetrics]) {
        self.record_all(task_manager, metrics, &[]);
    }

    /// [`record`](Self::record) with the operators' own metrics of the same report.
    pub fn record_all(
        &self,
        task_manager: &str,
        metrics: &[TaskMetrics],
        operators: &[OperatorMetric],
    ) {
        // One attempt per report; should a report ever mix them, the newest wins.
        let Some(job) = metrics
            .iter()
            .filter_map(|m| m.job.clone())
            .chain(operators.iter().filter_map(|m| m.job.clone()))
            .max_by_key(|j| j.attempt)
        else {
            return;
        };
        let mut reports = self.reports();
        let report = match reports.get_mut(task_manager) {
            Some(r) if r.job.job_id == job.job_id && r.job.attempt > job.attempt => return,
            Some(r) if r.job == job => r,
            _ => {
                reports.insert(
                    task_manager.to_string(),
                    Report {
                        job: job.clone(),
                        tasks: BTreeMap::new(),
                        operators: BTreeMap::new(),
                    },
                );
                reports.get_mut(task_manager).expect("just inserted")
            }
        };
        for m in metrics.iter().filter(|m| m.job.as_ref() == Some(&job)) {
            let io = crate::control::operator_io(m);
            match report.tasks.get_mut(&(io.vertex, io.subtask)) {
                Some(existing) => combine(existing, &io),
                None => {
                    report.tasks.insert((io.vertex, io.subtask), io);
                }
            }
        }
        for m in operators.iter().filter(|m| m.job.as_ref() == Some(&job)) {
            let sample = crate::control::metric_sample(m);
            let key = (
                sample.operator.clone(),
                sample.subtask,
                sample.metric.clone(),
            );
            match report.operators.get_mut(&key) {
                Some(existing) => combine_sample(existing, &sample),
                None => {
                    report.operators.insert(key, sample);
                }
            }
        }
    }

    /// The operator metrics of attempt `job` reported by the TaskManagers for which `include`
    /// holds, ordered by operator, subtask and name.
    pub fn merged_operators(
        &self,
        job: &JobAttempt,
        include: impl Fn(&str) -> bool,
    ) -> Vec<MetricSample> {
        let reports = self.reports();
        let mut all: BTreeMap<OperatorMetricKey, MetricSample> = BTreeMap::new();
        for (_, report) in reports
            .iter()
            .filter(|(id, r)| r.job == *job && include(id))
        {
            for (key, sample) in &report.operators {
                match all.get_mut(key) {
                    Some(existing) => combine_sample(existing, sample),
                    None => {
                        all.insert(key.clone(), sample.clone());
                    }
                }
            }
        }
        all.into_values().collect()
    }

    /// Forgets what `task_manager` reported.
    pub fn forget(&self, task_manager: &str) {
        self.reports().remove(task_manager);
    }

    /// The tasks of attempt `job` that TaskManager `task_manager` reported last, ordered by
    /// vertex and subtask (empty when its last report is of another attempt).
    pub fn tasks_of(&self, task_manager: &str, job: &JobAttempt) -> Vec<OperatorIo> {
        self.reports()
            .get(task_manager)
            .filter(|r| r.job == *job)
            .map(|r| r.tasks.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The metrics of every task of attempt `job` reported by the TaskManagers for which
    /// `include` holds (the live ones), ordered by vertex and subtask. Reports of other
    /// attempts are left out.
    pub fn merged(&self, job: &JobAttempt, include: impl Fn(&str) -> bool) -> Vec<OperatorIo> {
        let reports = self.reports();
        let mut tasks: BTreeMap<(usize, usize), OperatorIo> = BTreeMap::new();
        for (_, report) in reports
            .iter()
            .filter(|(id, r)| r.job == *job && include(id))
        {
            for (key, io) in &report.tasks {
                match tasks.get_mut(key) {
                    Some(existing) => combine(existing, io),
                    None => {
                        tasks.insert(*key, io.clone());
                    }
                }
            }
        }
        tasks.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::job_attempt;

    fn metrics(job: &JobAttempt, vertex: u32, subtask: u32, records: u64) -> TaskMetrics {
        TaskMetrics {
            job: Some(job.clone()),
            vertex,
            subtask,
            operator: format!("op{vertex}"),
            records_in: records,
            records_out: records * 2,
            busy_ms: records,
            input_watermark: (records > 5).then_some(records as i64),
            ..Default::default()
        }
    }

    fn operator_metric(job: &JobAttempt, name: &str, gauge: bool, value: u64) -> OperatorMetric {
        OperatorMetric {
            job: Some(job.clone()),
            operator: "Kafka Source".into(),
            subtask: 1,
            groups: vec![fjord_proto::v1::MetricGroupPart {
                name: "partition".into(),
                value: Some("2".into()),
            }],
            name: name.into(),
            gauge,
            value,
        }
    }

    #[test]
    fn operator_counters_keep_the_larger_value_and_gauges_the_latest() {
        let store = TaskMetricsStore::default();
        let now = job_attempt("j", 1);
        let old = job_attempt("j", 0);
        store.record_all(
            "tm-a",
            &[],
            &[
                operator_metric(&now, "records", false, 10),
                operator_metric(&now, "lag", true, 50),
            ],
        );
        // Sampled earlier, delivered later: the counter does not go back; the gauge is newer.
        store.record_all(
            "tm-a",
            &[],
            &[
                operator_metric(&now, "records", false, 8),
                operator_metric(&now, "lag", true, 0),
            ],
        );
        store.record_all("tm-a", &[], &[operator_metric(&old, "records", false, 99)]);
        let merged = store.merged_operators(&now, |_| true);
        let seen: Vec<(String, u64, usize)> = merged
            .iter()
            .map(|s| (s.metric.identifier(), s.value, s.subtask))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("partition.2.lag".to_string(), 0, 1),
                ("partition.2.records".to_string(), 10, 1)
            ]
        );
        assert!(store.merged_operators(&now, |id| id != "tm-a").is_empty());
        assert!(store.merged_operators(&old, |_| true).is_empty());
    }

    #[test]
    fn reports_of_the_current_attempt_merge_and_others_are_left_out() {
        let store = TaskMetricsStore::default();
        let old = job_attempt("j", 0);
        let now = job_attempt("j", 1);
        store.record("tm-a", &[metrics(&now, 0, 0, 10), metrics(&now, 1, 0, 3)]);
        store.record("tm-b", &[metrics(&now, 1, 1, 7)]);
        store.record("tm-c", &[metrics(&old, 1, 1, 99)]);
        // A late heartbeat of an older attempt does not replace tm-a's newer report.
        store.record("tm-a", &[metrics(&old, 0, 0, 1000)]);
        // A heartbeat sampled before a later one but delivered after it changes nothing.
        store.record("tm-b", &[metrics(&now, 1, 1, 8)]);
        store.record("tm-b", &[metrics(&now, 1, 1, 6)]);
        // An empty heartbeat keeps what was reported.
        store.record("tm-b", &[]);

        let merged = store.merged(&now, |_| true);
        let seen: Vec<(usize, usize, u64, u64, Option<i64>)> = merged
            .iter()
            .map(|o| {
                (
                    o.vertex,
                    o.subtask,
                    o.records_in,
                    o.records_out,
                    o.input_watermark,
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (0, 0, 10, 20, Some(10)),
                (1, 0, 3, 6, None),
                (1, 1, 8, 16, Some(8))
            ]
        );
        assert_eq!(merged[0].operator, "op0");

        // Lost TaskManagers are left out; forgotten ones are gone.
        let without_b = store.merged(&now, |id| id != "tm-b");
        assert_eq!(without_b.len(), 2);
        store.forget("tm-a");
        assert_eq!(store.merged(&now, |_| true).len(), 1);
        // Per TaskManager: what it reported of the attempt.
        let of_b: Vec<(usize, usize)> = store
            .tasks_of("tm-b", &now)
            .iter()
            .map(|o| (o.vertex, o.subtask))
            .collect();
        assert_eq!(of_b, vec![(1, 1)]);
        assert!(store.tasks_of("tm-b", &old).is_empty());
        assert!(store.tasks_of("tm-unknown", &now).is_empty());
        // The old attempt's report is only seen for the old attempt.
        let old_view = store.merged(&old, |_| true);
        assert_eq!(old_view.len(), 1);
        assert_eq!(old_view[0].records_in, 99);

        // A new attempt replaces a TaskManager's report.
        let next = job_attempt("j", 2);
        store.record("tm-b", &[metrics(&next, 1, 0, 1)]);
        assert!(store.merged(&now, |_| true).is_empty());
        assert_eq!(store.merged(&next, |_| true)[0].records_in, 1);
    }
}
