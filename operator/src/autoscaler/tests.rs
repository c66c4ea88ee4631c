use fjord_crds::{UpgradeMode, UpgradeReason, UpgradeStatus, UpgradeStep};

use super::*;
use crate::jobmanager::SubtaskCounters;

const SPEC: &str = r#"
image: fjord/fjord:0.1.0
job: {name: counting, parallelism: 2, maxParallelism: 16}
checkpointing: {storage: "s3://b/cp"}
autoscaler:
  enabled: true
  maxParallelism: 8
  targetUtilization: 0.5
  targetUtilizationBoundary: 0.2
  metricsWindow: 10s
  stabilizationInterval: 30s
  scaleUpCooldown: 60s
  scaleDownCooldown: 300s
"#;

fn spec() -> StreamJobSpec {
    serde_yaml::from_str(SPEC).unwrap()
}

fn a() -> AutoscalerSpec {
    spec().autoscaler.unwrap()
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

/// A subtask that over `secs` seconds was busy, idle and backpressured in these shares and
/// received `records`.
fn sub(secs: f64, busy: f64, backpressured: f64, records: u64) -> SubtaskCounters {
    let ms = |share: f64| (secs * 1000.0 * share).round() as u64;
    SubtaskCounters {
        busy_ms: ms(busy),
        idle_ms: ms(1.0 - busy - backpressured),
        backpressured_ms: ms(backpressured),
        records_in: records,
        records_out: records,
    }
}

fn vertex(name: &str, parallelism: u32, subtasks: Vec<SubtaskCounters>) -> VertexMetrics {
    VertexMetrics {
        name: name.into(),
        parallelism,
        source: false,
        subtasks,
    }
}

fn zeroes(v: &VertexMetrics) -> VertexMetrics {
    VertexMetrics {
        subtasks: vec![SubtaskCounters::default(); v.subtasks.len()],
        ..v.clone()
    }
}

/// A job whose vertices ran with the given shares for 10 s (the window), as two samples.
fn window(vertices: Vec<VertexMetrics>) -> (Sample, Sample) {
    let start = Sample {
        at: t(100),
        job_id: "job-1".into(),
        restarts: Some(0),
        vertices: vertices.iter().map(zeroes).collect(),
    };
    let end = Sample {
        at: t(110),
        vertices,
        ..start.clone()
    };
    (start, end)
}

fn scaling(name: &str, parallelism: i32, busy: f64, bp: f64, target: Option<i32>) -> VertexScaling {
    VertexScaling {
        name: name.into(),
        parallelism,
        busy_ratio: busy,
        average_busy_ratio: busy,
        backpressured_ratio: bp,
        records_per_second: 100.0,
        true_processing_rate: None,
        target_parallelism: target,
        ignored: None,
    }
}

#[test]
fn needed_parallelism_follows_flinks_formula() {
    // (parallelism, busy ratio, target utilisation, needed)
    let table = [
        (2, 0.7, 0.7, 2),
        (2, 0.9, 0.7, 3),
        (4, 1.0, 0.7, 6),
        (4, 0.1, 0.7, 1),
        (3, 0.0, 0.7, 1),
        (1, 1.0, 0.5, 2),
        (10, 0.35, 0.7, 5),
        (8, 0.5, 1.0, 4),
    ];
    for (p, busy, target, want) in table {
        assert_eq!(
            needed_parallelism(p, busy, target),
            want,
            "p={p} busy={busy} target={target}"
        );
    }
}

#[test]
fn a_vertex_is_as_busy_as_its_busiest_subtask_and_its_rate_is_measured() {
    let (start, end) = window(vec![vertex(
        "counts",
        2,
        vec![sub(10.0, 0.8, 0.0, 4000), sub(10.0, 0.4, 0.0, 2000)],
    )]);
    let v = &evaluate(&start, &end, 2, &a())[0];
    assert_eq!(v.busy_ratio, 0.8);
    assert_eq!(v.average_busy_ratio, 0.6);
    assert_eq!(v.backpressured_ratio, 0.0);
    assert_eq!(v.records_per_second, 600.0);
    // 600 records/s at 60% busy: 1000 records/s when fully busy.
    assert_eq!(v.true_processing_rate, Some(1000.0));
    // ceil(2 * 0.8 / 0.5)
    assert_eq!(v.target_parallelism, Some(4));
    assert_eq!(v.ignored, None);
}

#[test]
fn a_source_counts_the_records_it_emits() {
    let mut source = vertex("Source: events", 2, vec![sub(10.0, 0.2, 0.0, 0); 2]);
    source.source = true;
    for s in &mut source.subtasks {
        s.records_in = 0;
        s.records_out = 500;
    }
    let (start, end) = window(vec![source]);
    let v = &evaluate(&start, &end, 2, &a())[0];
    assert_eq!(v.records_per_second, 100.0);
    assert_eq!(v.target_parallelism, Some(1));
}

#[test]
fn a_backpressured_vertex_or_one_at_its_own_parallelism_does_not_count() {
    let (start, end) = window(vec![
        vertex("Source: events", 1, vec![sub(10.0, 0.9, 0.0, 0)]),
        vertex(
            "map",
            2,
            vec![sub(10.0, 0.1, 0.8, 100), sub(10.0, 0.1, 0.0, 100)],
        ),
        vertex(
            "counts",
            2,
            vec![sub(10.0, 0.95, 0.0, 100), sub(10.0, 0.9, 0.0, 100)],
        ),
    ]);
    let vs = evaluate(&start, &end, 2, &a());
    assert_eq!(vs[0].target_parallelism, None);
    assert!(
        vs[0]
            .ignored
            .as_deref()
            .unwrap()
            .contains("own parallelism 1")
    );
    assert_eq!(vs[1].target_parallelism, None);
    assert!(vs[1].ignored.as_deref().unwrap().contains("backpressured"));
    assert_eq!(vs[2].target_parallelism, Some(4));
    let p = propose(&vs, 2, &a(), (1, 8));
    assert_eq!(p.parallelism, 4, "{}", p.reason);
    assert!(p.reason.contains("'counts' 95% busy"), "{}", p.reason);
}

#[test]
fn counters_that_did_not_move_are_stale_not_idle() {
    let (start, end) = window(vec![
        vertex("stale", 2, vec![SubtaskCounters::default(); 2]),
        vertex(
            "half",
            2,
            vec![sub(10.0, 0.6, 0.0, 100), SubtaskCounters::default()],
        ),
    ]);
    let vs = evaluate(&start, &end, 2, &a());
    assert_eq!(vs[0].target_parallelism, None);
    assert_eq!(vs[0].true_processing_rate, None);
    assert!(vs[0].ignored.as_deref().unwrap().contains("no new metrics"));
    // Only the subtask that reported counts.
    assert_eq!(vs[1].busy_ratio, 0.6);
    assert_eq!(vs[1].average_busy_ratio, 0.6);
    assert_eq!(vs[1].target_parallelism, Some(3));
    // Nothing fresh at all: no change.
    let p = propose(&vs[..1], 2, &a(), (1, 8));
    assert_eq!(p.parallelism, 2, "{}", p.reason);
}

#[test]
fn proposals_hold_within_the_boundary_and_scale_to_the_neediest_vertex() {
    // Target 50% ± 20%: between 30% and 70% nothing changes.
    struct Case {
        name: &'static str,
        vertices: Vec<VertexScaling>,
        current: i32,
        bounds: (i32, i32),
        want: i32,
    }
    let cases = [
        Case {
            name: "all within the boundary",
            vertices: vec![
                scaling("a", 4, 0.65, 0.0, Some(6)),
                scaling("b", 4, 0.35, 0.0, Some(3)),
            ],
            current: 4,
            bounds: (1, 8),
            want: 4,
        },
        Case {
            name: "one above: scale up to what it needs",
            vertices: vec![
                scaling("a", 4, 0.9, 0.0, Some(8)),
                scaling("b", 4, 0.5, 0.0, Some(4)),
            ],
            current: 4,
            bounds: (1, 16),
            want: 8,
        },
        Case {
            name: "above, but capped by the maximum",
            vertices: vec![scaling("a", 4, 1.0, 0.0, Some(8))],
            current: 4,
            bounds: (1, 6),
            want: 6,
        },
        Case {
            name: "one below while another is within: no change",
            vertices: vec![
                scaling("a", 4, 0.1, 0.0, Some(1)),
                scaling("b", 4, 0.4, 0.0, Some(4)),
            ],
            current: 4,
            bounds: (1, 8),
            want: 4,
        },
        Case {
            name: "all below: scale down to what the busiest needs",
            vertices: vec![
                scaling("a", 4, 0.1, 0.0, Some(1)),
                scaling("b", 4, 0.2, 0.0, Some(2)),
            ],
            current: 4,
            bounds: (1, 8),
            want: 2,
        },
        Case {
            name: "all below, but not under the minimum",
            vertices: vec![scaling("a", 4, 0.05, 0.0, Some(1))],
            current: 4,
            bounds: (3, 8),
            want: 3,
        },
        Case {
            name: "below, but a vertex is backpressured: no scale-down",
            vertices: vec![
                scaling("a", 4, 0.1, 0.0, Some(1)),
                scaling("source", 4, 0.05, 0.5, None),
            ],
            current: 4,
            bounds: (1, 8),
            want: 4,
        },
        Case {
            name: "nothing counts: only the bounds apply",
            vertices: vec![scaling("source", 1, 0.9, 0.9, None)],
            current: 12,
            bounds: (1, 8),
            want: 8,
        },
    ];
    for case in cases {
        let p = propose(&case.vertices, case.current, &a(), case.bounds);
        assert_eq!(p.parallelism, case.want, "{}: {}", case.name, p.reason);
    }
}

fn running_job(id: &str, vertices: Vec<VertexMetrics>) -> JobInfo {
    JobInfo {
        id: id.into(),
        state: JobState::Running,
        failure: None,
        restarts: Some(0),
        start_time: Some(Time(t(0))),
        vertices,
    }
}

fn running_status(parallelism: i32) -> StreamJobStatus {
    StreamJobStatus {
        lifecycle_state: LifecycleState::Running,
        lifecycle_state_since: Some(Time(t(0))),
        parallelism: Some(parallelism),
        ..Default::default()
    }
}

/// The counts vertex at parallelism 2 with each subtask `busy` busy over `secs` seconds.
fn busy_job(secs: f64, busy: f64) -> JobInfo {
    running_job(
        "job-1",
        vec![vertex("counts", 2, vec![sub(secs, busy, 0.0, 100); 2])],
    )
}

fn run(
    spec: &StreamJobSpec,
    status: &StreamJobStatus,
    job: &JobInfo,
    start: Option<&Sample>,
    now: i64,
) -> Outcome {
    step(&Input {
        spec,
        status,
        job: Some(job),
        window_start: start,
        now: t(now),
    })
}

#[test]
fn disabled_means_no_status_and_no_window() {
    let mut spec = spec();
    spec.autoscaler.as_mut().unwrap().enabled = false;
    let out = run(&spec, &running_status(2), &busy_job(100.0, 0.9), None, 100);
    assert_eq!(out.status, None);
    assert_eq!(out.window, Window::Clear);
    assert_eq!(out.event, None);
}

#[test]
fn no_sample_is_taken_within_the_stabilization_interval() {
    let out = run(&spec(), &running_status(2), &busy_job(10.0, 0.9), None, 10);
    assert_eq!(out.window, Window::Clear);
    // 30 s after the start at t(0).
    assert_eq!(out.requeue, Some(Duration::from_secs(20)));
}

#[test]
fn a_window_opens_is_kept_then_decides_a_scale_up_with_an_event() {
    let spec = spec();
    let status = running_status(2);
    // After stabilization: the first sample opens the window.
    let out = run(&spec, &status, &busy_job(40.0, 0.9), None, 40);
    let Window::Start(start) = out.window else {
        panic!("{:?}", out.window)
    };
    assert_eq!(out.requeue, Some(Duration::from_secs(10)));
    assert_eq!(out.event, None);
    // Within the window: kept, no decision.
    let out = run(&spec, &status, &busy_job(45.0, 0.9), Some(&start), 45);
    assert_eq!(out.window, Window::Keep);
    assert_eq!(out.requeue, Some(Duration::from_secs(5)));
    // At its end: 90% busy at parallelism 2 with target 50% needs ceil(3.6) = 4.
    let out = run(&spec, &status, &busy_job(50.0, 0.9), Some(&start), 50);
    assert!(matches!(out.window, Window::Start(_)));
    let st = out.status.unwrap();
    assert_eq!(st.parallelism, Some(4));
    assert_eq!(st.spec_parallelism, Some(2));
    assert_eq!(st.last_scale_time, Some(Time(t(50))));
    assert_eq!(st.vertices.len(), 1);
    assert_eq!(st.vertices[0].busy_ratio, 0.9);
    assert_eq!(st.vertices[0].target_parallelism, Some(4));
    let event = out.event.unwrap();
    assert_eq!(event.reason, "ScaledUp");
    assert!(
        event
            .message
            .starts_with("scaled up from 2 to 4: 'counts' 90% busy"),
        "{}",
        event.message
    );
    assert!(event.message.len() < 1024);
    // The override is what gets deployed.
    assert_eq!(effective_spec(&spec, Some(&st)).job.parallelism, 4);
}

#[test]
fn a_window_within_the_target_changes_nothing_and_says_so() {
    let spec = spec();
    let status = running_status(2);
    let (start, _) = (Sample::of(&busy_job(40.0, 0.5), t(40)), ());
    let out = run(&spec, &status, &busy_job(50.0, 0.5), Some(&start), 50);
    let st = out.status.unwrap();
    assert_eq!(st.parallelism, None);
    assert_eq!(out.event, None);
    assert!(
        st.last_decision
            .as_deref()
            .unwrap()
            .starts_with("no change at parallelism 2"),
        "{:?}",
        st.last_decision
    );
    assert_eq!(st.last_evaluation_time, Some(Time(t(50))));
}

#[test]
fn a_restarted_job_or_a_window_from_before_stabilization_opens_a_new_window() {
    let spec = spec();
    let status = running_status(2);
    let start = Sample::of(&busy_job(40.0, 0.9), t(40));
    let mut restarted = busy_job(50.0, 0.9);
    restarted.restarts = Some(1);
    let out = run(&spec, &status, &restarted, Some(&start), 50);
    assert!(matches!(out.window, Window::Start(_)), "{:?}", out.window);
    assert_eq!(out.event, None);
    let other = running_job("job-2", busy_job(50.0, 0.9).vertices);
    assert!(!start.continued_by(&Sample::of(&other, t(50))));
    // Counters that went back (a new execution) do not continue the window either.
    assert!(!start.continued_by(&Sample::of(&busy_job(5.0, 0.9), t(50))));
    let early = Sample::of(&busy_job(20.0, 0.9), t(20));
    let out = run(&spec, &status, &busy_job(50.0, 0.9), Some(&early), 50);
    assert!(matches!(out.window, Window::Start(_)));
    assert_eq!(out.event, None);
}

#[test]
fn cooldowns_hold_back_decisions_after_a_rescale() {
    let spec = spec();
    let mut status = running_status(4);
    status.autoscaler = Some(AutoscalerStatus {
        parallelism: Some(4),
        spec_parallelism: Some(2),
        last_scale_time: Some(Time(t(0))),
        ..Default::default()
    });
    let job = |secs, busy| {
        running_job(
            "job-1",
            vec![vertex("counts", 4, vec![sub(secs, busy, 0.0, 100); 4])],
        )
    };
    // Idle at 4 subtasks 50 s after the last rescale: the 300 s scale-down cooldown holds.
    let start = Sample::of(&job(40.0, 0.05), t(40));
    let out = run(&spec, &status, &job(50.0, 0.05), Some(&start), 50);
    let st = out.status.unwrap();
    assert_eq!(st.parallelism, Some(4));
    assert_eq!(out.event, None);
    assert!(
        st.last_decision
            .as_deref()
            .unwrap()
            .contains("scaleDownCooldown"),
        "{:?}",
        st.last_decision
    );
    // Busy 50 s after it: the 60 s scale-up cooldown holds too.
    let busy_start = Sample::of(&job(40.0, 0.99), t(40));
    let out = run(&spec, &status, &job(50.0, 0.99), Some(&busy_start), 50);
    assert!(
        out.status
            .unwrap()
            .last_decision
            .unwrap()
            .contains("scaleUpCooldown")
    );
    // After the cooldown the scale-down happens: ceil(4 * 0.05 / 0.5) = 1.
    let start = Sample::of(&job(300.0, 0.05), t(300));
    let out = run(&spec, &status, &job(310.0, 0.05), Some(&start), 310);
    assert_eq!(out.status.unwrap().parallelism, Some(1));
    assert_eq!(out.event.unwrap().reason, "ScaledDown");
}

#[test]
fn nothing_is_sampled_while_the_job_is_not_settled_at_the_chosen_parallelism() {
    let spec = spec();
    let mut status = running_status(2);
    status.autoscaler = Some(AutoscalerStatus {
        parallelism: Some(4),
        spec_parallelism: Some(2),
        last_scale_time: Some(Time(t(0))),
        ..Default::default()
    });
    // The rescale to 4 is not deployed yet.
    let out = run(&spec, &status, &busy_job(100.0, 0.9), None, 100);
    assert_eq!(out.window, Window::Clear);
    assert_eq!(out.status.as_ref().unwrap().parallelism, Some(4));
    // An upgrade in flight, or a job that does not run: no sample either.
    let mut upgrading = running_status(4);
    upgrading.upgrade = Some(UpgradeStatus {
        reason: UpgradeReason::Rescale,
        mode: UpgradeMode::Savepoint,
        step: UpgradeStep::StoppingWithSavepoint,
        target_generation: 1,
        savepoint_trigger_id: None,
        parallelism: None,
        restore_path: None,
        started_at: Time(t(0)),
        step_started_at: Time(t(0)),
    });
    upgrading.autoscaler = status.autoscaler.clone();
    let out = run(&spec, &upgrading, &busy_job(100.0, 0.9), None, 100);
    assert_eq!(out.window, Window::Clear);
    let mut failing = busy_job(100.0, 0.9);
    failing.state = JobState::Restarting;
    let out = run(&spec, &running_status(2), &failing, None, 100);
    assert_eq!(out.window, Window::Clear);
}

#[test]
fn changing_spec_parallelism_drops_the_override_and_disabling_reverts_to_the_spec() {
    let mut spec = spec();
    let chosen = AutoscalerStatus {
        parallelism: Some(4),
        spec_parallelism: Some(2),
        ..Default::default()
    };
    assert_eq!(effective_spec(&spec, Some(&chosen)).job.parallelism, 4);
    spec.job.parallelism = 3;
    assert_eq!(effective_spec(&spec, Some(&chosen)).job.parallelism, 3);
    let mut status = running_status(4);
    status.autoscaler = Some(chosen.clone());
    let out = run(&spec, &status, &busy_job(100.0, 0.5), None, 100);
    let st = out.status.unwrap();
    assert_eq!(st.parallelism, None);
    assert!(st.last_decision.unwrap().contains("changed to 3"));
    spec.job.parallelism = 2;
    spec.autoscaler.as_mut().unwrap().enabled = false;
    assert_eq!(effective_spec(&spec, Some(&chosen)).job.parallelism, 2);
}

#[test]
fn a_decision_becomes_a_rescale_through_the_lifecycle_and_settings_alone_do_not() {
    use crate::lifecycle::{self, JobManagerView, Observed, Settings};
    let spec = spec();
    let job = busy_job(50.0, 0.9);
    let mut status = running_status(2);
    status.job_state = Some(JobState::Running);
    status.job_id = Some("job-1".into());
    status.last_reconciled_spec = Some(serde_json::to_value(&spec).unwrap());
    status.last_reconciled_generation = Some(1);
    let start = Sample::of(&busy_job(40.0, 0.9), t(40));
    let out = run(&spec, &status, &job, Some(&start), 50);
    status.autoscaler = out.status.clone();
    let effective = effective_spec(&spec, out.status.as_ref());
    let observed = Observed {
        job_manager: JobManagerView::Job(job.clone()),
        cluster_present: true,
        savepoint: None,
        checkpoint: None,
        latest_checkpoint: None,
        task_managers: None,
        pod_problem: None,
        crash_loop: None,
    };
    let decide = |spec: &StreamJobSpec, status: &StreamJobStatus| {
        lifecycle::decide(&lifecycle::Input {
            spec,
            generation: 1,
            deleting: false,
            status,
            observed: &observed,
            spec_errors: &[],
            now: t(50),
            settings: &Settings::default(),
        })
    };
    let decision = decide(&effective, &status);
    let upgrade = decision.status.upgrade.expect("a rescale starts");
    assert_eq!(upgrade.reason, UpgradeReason::Rescale);
    // Applied in place: the running JobManager rescales the job, no redeploy.
    assert_eq!(upgrade.step, UpgradeStep::RescalingInPlace);
    assert_eq!(upgrade.parallelism, Some(4));
    assert_eq!(decision.status.autoscaler.unwrap().parallelism, Some(4));
    // Changing only the autoscaler's settings redeploys nothing.
    let mut tuned = spec.clone();
    tuned.autoscaler.as_mut().unwrap().target_utilization = Some(0.9);
    status.autoscaler = None;
    let decision = decide(&tuned, &status);
    assert!(
        decision.status.upgrade.is_none(),
        "{:?}",
        decision.status.upgrade
    );
}
