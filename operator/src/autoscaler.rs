//! Reactive autoscaling, after the Flink Kubernetes Operator's autoscaler, for Fjord's one
//! job-wide parallelism. Pure: the controller hands in the spec, the status, the job as the
//! JobManager just reported it (with its vertices' cumulative metrics) and the sample that
//! opened the current metrics window; [`step`] returns the next `status.autoscaler`, what to do
//! with the window, and the Event of a decision.
//!
//! The algorithm, per metrics window (two samples `spec.autoscaler.metricsWindow` apart, the
//! first taken no earlier than `stabilizationInterval` after the job started or was rescaled):
//!
//! 1. Per vertex and subtask, from the differences of the cumulative counters: busy ratio =
//!    busy / (busy + idle + backpressured) (Flink's busyTimeMsPerSecond / 1000), likewise the
//!    backpressured ratio (a subtask whose counters did not move has no fresh metrics and is
//!    left out; a vertex without any does not count). The vertex's busy ratio is the highest over its subtasks (Flink's
//!    default MAX aggregator, so a skewed subtask counts), the average is reported too. Its rate
//!    is the records it received (sources: emitted) per second, and its true processing rate
//!    that rate divided by its average busy ratio.
//! 2. A vertex needs `ceil(parallelism * busyRatio / targetUtilization)` subtasks. A vertex
//!    backpressured for more than [`BACKPRESSURED_RATIO`] of its time is held back by a slower
//!    vertex downstream: its busy time says nothing about its needs and it does not count (the
//!    slower vertex, which is busy, does); nor does a vertex whose parallelism differs from the
//!    job's (set by the job itself, the job-wide parallelism does not change it).
//! 3. A counted vertex within `targetUtilization ± targetUtilizationBoundary` keeps the current
//!    parallelism; the job's new parallelism is the largest any counted vertex needs, clamped
//!    to the autoscaler's bounds. No scale-down while a vertex is backpressured.
//! 4. A change waits for `scaleUpCooldown` / `scaleDownCooldown` after the last one.
//!
//! The chosen parallelism goes into `status.autoscaler.parallelism` and overrides
//! `spec.job.parallelism` through [`effective_spec`]; the lifecycle then rescales the job in
//! place (TaskManagers up, the running JobManager's rescale, surplus TaskManagers down) where it
//! can, and by a redeploy otherwise.

use std::time::Duration;

use fjord_crds::{
    AutoscalerSpec, AutoscalerStatus, JobState, LifecycleState, StreamJobSpec, StreamJobStatus,
    VertexScaling,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::jobmanager::{JobInfo, VertexMetrics};
use crate::lifecycle::EventNote;

/// A vertex backpressured for more than this share of its wall time (on its most
/// backpressured subtask) is held back by a slower vertex downstream.
pub const BACKPRESSURED_RATIO: f64 = 0.2;

/// Longest list of vertices named in an Event or decision (the rest are counted).
const MAX_VERTICES_NAMED: usize = 3;

/// The job's cumulative vertex metrics at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When it was taken.
    pub at: Timestamp,
    /// The job it belongs to.
    pub job_id: String,
    /// The job's restart count then (metrics start again with a restarted execution).
    pub restarts: Option<u32>,
    /// The vertices.
    pub vertices: Vec<VertexMetrics>,
}

impl Sample {
    /// The sample of `job` as reported at `at`.
    pub fn of(job: &JobInfo, at: Timestamp) -> Self {
        Self {
            at,
            job_id: job.id.clone(),
            restarts: job.restarts,
            vertices: job.vertices.clone(),
        }
    }

    /// Whether `later` continues this sample's counters: the same job and execution, the same
    /// vertices and subtasks, and no counter went back.
    pub fn continued_by(&self, later: &Sample) -> bool {
        self.job_id == later.job_id
            && self.restarts == later.restarts
            && later.at > self.at
            && self.vertices.len() == later.vertices.len()
            && self.vertices.iter().zip(&later.vertices).all(|(a, b)| {
                a.name == b.name
                    && a.subtasks.len() == b.subtasks.len()
                    && a.subtasks.iter().zip(&b.subtasks).all(|(x, y)| {
                        y.busy_ms >= x.busy_ms
                            && y.idle_ms >= x.idle_ms
                            && y.backpressured_ms >= x.backpressured_ms
                            && y.records_in >= x.records_in
                            && y.records_out >= x.records_out
                    })
            })
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// The smallest parallelism at which `busy_ratio` of `parallelism` subtasks becomes
/// `target_utilization` (at least 1).
pub fn needed_parallelism(parallelism: i32, busy_ratio: f64, target_utilization: f64) -> i32 {
    let exact = f64::from(parallelism.max(1)) * busy_ratio.max(0.0) / target_utilization.max(0.01);
    // A hair of tolerance, so 0.7 / 0.7 * 2 is 2 and not 3 after rounding errors.
    let needed = (exact - 1e-9).ceil();
    (needed as i32).max(1)
}

/// One vertex's figures over a window from `start` to `end` (`elapsed_ms` apart), at the job's
/// parallelism `job_parallelism`.
pub fn evaluate_vertex(
    start: &VertexMetrics,
    end: &VertexMetrics,
    elapsed_ms: f64,
    job_parallelism: i32,
    a: &AutoscalerSpec,
) -> VertexScaling {
    let mut busy = Vec::with_capacity(end.subtasks.len());
    let mut max_backpressured: f64 = 0.0;
    let mut records = 0u64;
    for (s, e) in start.subtasks.iter().zip(&end.subtasks) {
        records += if end.source {
            e.records_out.saturating_sub(s.records_out)
        } else {
            e.records_in.saturating_sub(s.records_in)
        };
        let db = e.busy_ms.saturating_sub(s.busy_ms) as f64;
        let di = e.idle_ms.saturating_sub(s.idle_ms) as f64;
        let dp = e.backpressured_ms.saturating_sub(s.backpressured_ms) as f64;
        let wall = db + di + dp;
        // A running subtask's time always moves; counters that did not are stale (no report
        // from its TaskManager in the window), not idle.
        if wall <= 0.0 {
            continue;
        }
        busy.push((db / wall).clamp(0.0, 1.0));
        max_backpressured = max_backpressured.max((dp / wall).clamp(0.0, 1.0));
    }
    let max_busy = busy.iter().copied().fold(0.0, f64::max);
    let avg_busy = if busy.is_empty() {
        0.0
    } else {
        busy.iter().sum::<f64>() / busy.len() as f64
    };
    let rate = records as f64 * 1000.0 / elapsed_ms.max(1.0);
    let parallelism = i32::try_from(end.parallelism).unwrap_or(i32::MAX);
    let ignored = if busy.is_empty() {
        Some("no new metrics in the window".to_string())
    } else if parallelism != job_parallelism {
        Some(format!(
            "runs at its own parallelism {parallelism}, which the job's parallelism does not change"
        ))
    } else if max_backpressured > BACKPRESSURED_RATIO {
        Some(format!(
            "{:.0}% backpressured: held back by a slower vertex downstream",
            max_backpressured * 100.0
        ))
    } else {
        None
    };
    let target = ignored
        .is_none()
        .then(|| needed_parallelism(parallelism, max_busy, a.target_utilization()));
    VertexScaling {
        name: end.name.clone(),
        parallelism,
        busy_ratio: round(max_busy, 3),
        average_busy_ratio: round(avg_busy, 3),
        backpressured_ratio: round(max_backpressured, 3),
        records_per_second: round(rate, 1),
        true_processing_rate: (avg_busy > 0.0).then(|| round(rate / avg_busy, 1)),
        target_parallelism: target,
        ignored,
    }
}

/// Every vertex's figures over the window from `start` to `end`, which must continue each
/// other ([`Sample::continued_by`]).
pub fn evaluate(
    start: &Sample,
    end: &Sample,
    job_parallelism: i32,
    a: &AutoscalerSpec,
) -> Vec<VertexScaling> {
    let elapsed_ms = (end.at.as_millisecond() - start.at.as_millisecond()).max(1) as f64;
    start
        .vertices
        .iter()
        .zip(&end.vertices)
        .map(|(s, e)| evaluate_vertex(s, e, elapsed_ms, job_parallelism, a))
        .collect()
}

/// The parallelism a window's evaluation asks for, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The job's new parallelism (equal to the current one for no change).
    pub parallelism: i32,
    /// Why, in words.
    pub reason: String,
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

fn describe(v: &VertexScaling) -> String {
    format!(
        "'{}' {} busy at parallelism {}",
        v.name,
        pct(v.busy_ratio),
        v.parallelism
    )
}

/// The parallelism the job needs given its vertices' figures, at `current` parallelism and
/// within `bounds` (inclusive).
pub fn propose(
    vertices: &[VertexScaling],
    current: i32,
    a: &AutoscalerSpec,
    bounds: (i32, i32),
) -> Proposal {
    let target = a.target_utilization();
    let (low, high) = (target - a.boundary(), target + a.boundary());
    let range = format!("{} ± {}", pct(target), pct(a.boundary()));
    let counted: Vec<&VertexScaling> = vertices
        .iter()
        .filter(|v| v.target_parallelism.is_some())
        .collect();
    let backpressured = vertices
        .iter()
        .any(|v| v.backpressured_ratio > BACKPRESSURED_RATIO);
    let wants = |v: &VertexScaling| {
        if v.busy_ratio > high || v.busy_ratio < low {
            v.target_parallelism.unwrap_or(current)
        } else {
            current
        }
    };
    let (min, max) = bounds;
    let Some(decisive) = counted.iter().copied().max_by(|x, y| {
        wants(x)
            .cmp(&wants(y))
            .then(x.busy_ratio.total_cmp(&y.busy_ratio))
    }) else {
        let parallelism = current.clamp(min, max);
        return Proposal {
            parallelism,
            reason: "no vertex can be judged by its busy time (backpressured, at their own parallelism or without fresh metrics)".into(),
        };
    };
    let mut needed = wants(decisive);
    let mut reason = if needed > current {
        format!(
            "{}, above the target {range}: needs {needed}",
            describe(decisive)
        )
    } else if needed < current {
        format!(
            "every vertex is below {} busy; the busiest, {}, needs {needed}",
            pct(low),
            describe(decisive)
        )
    } else {
        format!(
            "the busiest vertex, {}, is within the target {range} or needs no other parallelism",
            describe(decisive)
        )
    };
    if needed < current && backpressured {
        needed = current;
        reason = format!("{reason}, but a vertex is backpressured: not scaling down");
    }
    let parallelism = needed.clamp(min, max);
    if parallelism != needed {
        reason = format!("{reason} (within the bounds {min}..{max}: {parallelism})");
    }
    Proposal {
        parallelism,
        reason,
    }
}

/// What to do with the sample that opens the metrics window (kept by the controller in
/// memory, per StreamJob).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window {
    /// Keep the current window start.
    Keep,
    /// Open a new window with this sample.
    Start(Sample),
    /// Forget the window (not sampling now).
    Clear,
}

/// Everything [`step`] looks at.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The StreamJob's spec as the user wrote it.
    pub spec: &'a StreamJobSpec,
    /// The status as last written.
    pub status: &'a StreamJobStatus,
    /// The job as the JobManager reported it in this pass, if it answered.
    pub job: Option<&'a JobInfo>,
    /// The sample that opened the current window, if any.
    pub window_start: Option<&'a Sample>,
    /// The current time.
    pub now: Timestamp,
}

/// The outcome of [`step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The next `status.autoscaler` (`None`: the autoscaler is off).
    pub status: Option<AutoscalerStatus>,
    /// What to do with the window.
    pub window: Window,
    /// The Event of a scaling decision.
    pub event: Option<EventNote>,
    /// When the autoscaler wants to look again (the end of the window or of the
    /// stabilization interval).
    pub requeue: Option<Duration>,
}

fn elapsed(from: &Timestamp, to: &Timestamp) -> Duration {
    Duration::from_millis((to.as_millisecond() - from.as_millisecond()).max(0) as u64)
}

fn plus(t: &Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_millisecond(
        t.as_millisecond()
            .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)),
    )
    .unwrap_or(*t)
}

/// The spec as deployed: `spec.job.parallelism` replaced by the autoscaler's parallelism while
/// the autoscaler is enabled and the override was chosen under the current
/// `spec.job.parallelism`.
pub fn effective_spec(spec: &StreamJobSpec, status: Option<&AutoscalerStatus>) -> StreamJobSpec {
    let mut effective = spec.clone();
    if spec.enabled_autoscaler().is_some()
        && let Some(s) = status
        && let Some(p) = s.parallelism
        && s.spec_parallelism == Some(spec.job.parallelism)
    {
        effective.job.parallelism = p;
    }
    effective
}

/// One autoscaler pass: sample, and decide once a window is complete. Pure.
pub fn step(input: &Input<'_>) -> Outcome {
    let Some(a) = input.spec.enabled_autoscaler() else {
        return Outcome {
            status: None,
            window: Window::Clear,
            event: None,
            requeue: None,
        };
    };
    let spec = input.spec;
    let now = input.now;
    let mut st = input.status.autoscaler.clone().unwrap_or_default();
    if st.parallelism.is_some() && st.spec_parallelism != Some(spec.job.parallelism) {
        st.parallelism = None;
        st.spec_parallelism = None;
        st.last_decision = Some(format!(
            "spec.job.parallelism changed to {}: the autoscaler starts again from it",
            spec.job.parallelism
        ));
    }
    let idle = |st: AutoscalerStatus, requeue| Outcome {
        status: Some(st),
        window: Window::Clear,
        event: None,
        requeue,
    };
    let desired = effective_spec(spec, Some(&st)).job.parallelism;
    let status = input.status;
    let Some(job) = input.job.filter(|j| j.state == JobState::Running) else {
        return idle(st, None);
    };
    if status.lifecycle_state != LifecycleState::Running
        || status.upgrade.is_some()
        || status.pending_savepoint.is_some()
        || status.parallelism != Some(desired)
    {
        return idle(st, None);
    }
    let current = desired;
    // Stabilization: no sample counts from before the job settled after its (re)start or
    // the last rescale.
    let since = [
        status.lifecycle_state_since.as_ref(),
        job.start_time.as_ref(),
        st.last_scale_time.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|t| t.0)
    .max()
    .unwrap_or(now);
    let stable_at = plus(&since, a.stabilization_interval());
    if now < stable_at {
        return idle(st, Some(elapsed(&now, &stable_at)));
    }
    let window = a.metrics_window();
    let sample = Sample::of(job, now);
    let start = match input.window_start {
        Some(s) if s.continued_by(&sample) && s.at >= stable_at => s,
        _ => {
            return Outcome {
                status: Some(st),
                window: Window::Start(sample),
                event: None,
                requeue: Some(window),
            };
        }
    };
    let waited = elapsed(&start.at, &now);
    if waited < window {
        return Outcome {
            status: Some(st),
            window: Window::Keep,
            event: None,
            requeue: Some(window - waited),
        };
    }
    st.vertices = evaluate(start, &sample, current, a);
    st.last_evaluation_time = Some(Time(now));
    let proposal = propose(&st.vertices, current, a, spec.autoscaler_bounds());
    let mut event = None;
    let new = proposal.parallelism;
    if new == current {
        st.last_decision = Some(format!(
            "no change at parallelism {current}: {}",
            proposal.reason
        ));
    } else {
        let (up, cooldown, name) = if new > current {
            (true, a.scale_up_cooldown(), "scaleUpCooldown")
        } else {
            (false, a.scale_down_cooldown(), "scaleDownCooldown")
        };
        let ready_at = st
            .last_scale_time
            .as_ref()
            .map(|t| plus(&t.0, cooldown))
            .unwrap_or(now);
        if now < ready_at {
            st.last_decision = Some(format!(
                "would scale from {current} to {new} ({}), but spec.autoscaler.{name} ({}s) has not passed since the last rescale",
                proposal.reason,
                cooldown.as_secs()
            ));
        } else {
            let verb = if up { "scaled up" } else { "scaled down" };
            let message = format!(
                "{verb} from {current} to {new}: {}{}",
                proposal.reason,
                vertex_summary(&st.vertices)
            );
            st.parallelism = Some(new);
            st.spec_parallelism = Some(spec.job.parallelism);
            st.last_scale_time = Some(Time(now));
            st.last_decision = Some(message.clone());
            event = Some(EventNote {
                warning: false,
                reason: if up { "ScaledUp" } else { "ScaledDown" },
                message,
            });
        }
    }
    Outcome {
        status: Some(st),
        window: Window::Start(sample),
        event,
        requeue: Some(window),
    }
}

/// A short list of the vertices' busy ratios for a decision's message.
fn vertex_summary(vertices: &[VertexScaling]) -> String {
    let mut named: Vec<String> = vertices
        .iter()
        .take(MAX_VERTICES_NAMED)
        .map(|v| {
            format!(
                "'{}' {} busy, {} backpressured, {:.0} records/s",
                v.name,
                pct(v.busy_ratio),
                pct(v.backpressured_ratio),
                v.records_per_second
            )
        })
        .collect();
    if vertices.len() > MAX_VERTICES_NAMED {
        named.push(format!("{} more", vertices.len() - MAX_VERTICES_NAMED));
    }
    if named.is_empty() {
        String::new()
    } else {
        format!(" ({})", named.join("; "))
    }
}

#[cfg(test)]
mod tests;
