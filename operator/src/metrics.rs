//! The operator's Prometheus metrics, rendered in the text exposition format on `/metrics`:
//! reconciles, failures by reason, reconcile durations, and StreamJobs by lifecycle state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use fjord_crds::LifecycleState;

/// Upper bounds (seconds) of the reconcile duration histogram.
const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default)]
struct Inner {
    reconciles: u64,
    status_writes: u64,
    failures: BTreeMap<String, u64>,
    bucket_counts: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    states: BTreeMap<String, LifecycleState>,
}

/// Operator metrics, shared between the controller and the HTTP server.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Record one reconcile: its duration and, if it failed, the error's label.
    pub fn reconciled(&self, duration: Duration, failure: Option<&str>) {
        let mut m = self.inner.lock().expect("metrics lock");
        m.reconciles += 1;
        if let Some(f) = failure {
            *m.failures.entry(f.to_string()).or_default() += 1;
        }
        let secs = duration.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                m.bucket_counts[i] += 1;
            }
        }
        m.duration_sum += secs;
        m.duration_count += 1;
    }

    /// Record one write of a StreamJob's status (passes that change nothing write none).
    pub fn status_written(&self) {
        self.inner.lock().expect("metrics lock").status_writes += 1;
    }

    /// Record the lifecycle state of a StreamJob (`namespace/name`); `None` forgets it.
    pub fn job_state(&self, key: &str, state: Option<LifecycleState>) {
        let mut m = self.inner.lock().expect("metrics lock");
        match state {
            Some(s) => {
                m.states.insert(key.to_string(), s);
            }
            None => {
                m.states.remove(key);
            }
        }
    }

    /// Render every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let m = self.inner.lock().expect("metrics lock");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP fjord_operator_reconciles_total Reconcile passes."
        );
        let _ = writeln!(out, "# TYPE fjord_operator_reconciles_total counter");
        let _ = writeln!(out, "fjord_operator_reconciles_total {}", m.reconciles);
        let _ = writeln!(
            out,
            "# HELP fjord_operator_status_writes_total StreamJob status writes (only passes that change the status write it)."
        );
        let _ = writeln!(out, "# TYPE fjord_operator_status_writes_total counter");
        let _ = writeln!(
            out,
            "fjord_operator_status_writes_total {}",
            m.status_writes
        );
        let _ = writeln!(
            out,
            "# HELP fjord_operator_reconcile_failures_total Failed reconcile passes by reason."
        );
        let _ = writeln!(
            out,
            "# TYPE fjord_operator_reconcile_failures_total counter"
        );
        for (reason, n) in &m.failures {
            let _ = writeln!(
                out,
                "fjord_operator_reconcile_failures_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP fjord_operator_reconcile_duration_seconds Duration of reconcile passes."
        );
        let _ = writeln!(
            out,
            "# TYPE fjord_operator_reconcile_duration_seconds histogram"
        );
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "fjord_operator_reconcile_duration_seconds_bucket{{le=\"{b}\"}} {}",
                m.bucket_counts[i]
            );
        }
        let _ = writeln!(
            out,
            "fjord_operator_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            m.duration_count
        );
        let _ = writeln!(
            out,
            "fjord_operator_reconcile_duration_seconds_sum {}",
            m.duration_sum
        );
        let _ = writeln!(
            out,
            "fjord_operator_reconcile_duration_seconds_count {}",
            m.duration_count
        );
        let _ = writeln!(
            out,
            "# HELP fjord_operator_streamjobs StreamJobs by lifecycle state."
        );
        let _ = writeln!(out, "# TYPE fjord_operator_streamjobs gauge");
        for state in LifecycleState::ALL {
            let n = m.states.values().filter(|s| **s == state).count();
            let _ = writeln!(
                out,
                "fjord_operator_streamjobs{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_histogram_and_states() {
        let m = Metrics::default();
        m.reconciled(Duration::from_millis(30), None);
        m.reconciled(Duration::from_secs(3), Some("kube"));
        m.job_state("ns/a", Some(LifecycleState::Running));
        m.job_state("ns/b", Some(LifecycleState::Running));
        m.job_state("ns/c", Some(LifecycleState::Failed));
        m.job_state("ns/c", None);
        let text = m.render();
        for line in [
            "fjord_operator_reconciles_total 2",
            "fjord_operator_reconcile_failures_total{reason=\"kube\"} 1",
            "fjord_operator_reconcile_duration_seconds_bucket{le=\"0.05\"} 1",
            "fjord_operator_reconcile_duration_seconds_bucket{le=\"5\"} 2",
            "fjord_operator_reconcile_duration_seconds_count 2",
            "fjord_operator_streamjobs{state=\"Running\"} 2",
            "fjord_operator_streamjobs{state=\"Failed\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
