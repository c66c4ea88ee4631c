use fjord_crds::{CheckpointRecord, SnapshotState};
use serde_json::json;

use super::*;
use crate::jobmanager::fake::FakeJobManager;
use crate::jobmanager::{JobManagerApi, JobManagerEndpoint};

const BASE: &str = r#"
image: fjord/fjord:0.1.0
job: {name: counting, args: ["--rate", "1"], parallelism: 2, upgradeMode: savepoint}
checkpointing: {storage: "s3://b/cp"}
savepoints: {directory: "s3://b/sp", historyMaxCount: 3}
"#;

fn spec_with(pointer: &str, value: serde_json::Value) -> StreamJobSpec {
    let mut v: serde_json::Value = serde_yaml::from_str(BASE).unwrap();
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    serde_json::from_value(v).unwrap()
}

fn base() -> StreamJobSpec {
    serde_yaml::from_str(BASE).unwrap()
}

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn time(s: i64) -> Time {
    Time(t(s))
}

fn job(state: JobState) -> JobManagerView {
    JobManagerView::Job(JobInfo {
        id: "job-1".into(),
        state,
        failure: (state == JobState::Failed).then(|| "boom".into()),
        restarts: Some(0),
        start_time: None,
        vertices: Vec::new(),
    })
}

fn observed(jm: JobManagerView) -> Observed {
    Observed {
        cluster_present: !matches!(jm, JobManagerView::Unreachable(_)),
        job_manager: jm,
        savepoint: None,
        checkpoint: None,
        latest_checkpoint: None,
        task_managers: None,
        pod_problem: None,
        crash_loop: None,
    }
}

fn checkpoint(id: i64) -> CheckpointRecord {
    CheckpointRecord {
        id,
        path: format!("s3://b/cp/chk-{id}"),
        completed_at: None,
    }
}

/// The status of a job running `spec` deployed at generation 1.
fn running(spec: &StreamJobSpec) -> StreamJobStatus {
    StreamJobStatus {
        lifecycle_state: LifecycleState::Running,
        lifecycle_state_since: Some(time(0)),
        job_state: Some(JobState::Running),
        job_id: Some("job-1".into()),
        last_reconciled_spec: Some(serde_json::to_value(spec).unwrap()),
        last_reconciled_generation: Some(1),
        ..Default::default()
    }
}

fn upgrading(step: UpgradeStep, mode: UpgradeMode) -> StreamJobStatus {
    let mut s = running(&base());
    s.lifecycle_state = LifecycleState::Upgrading;
    s.upgrade = Some(UpgradeStatus {
        reason: UpgradeReason::SpecChange,
        mode,
        step,
        target_generation: 2,
        savepoint_trigger_id: (step == UpgradeStep::StoppingWithSavepoint)
            .then(|| "upgrade-2-1".into()),
        parallelism: None,
        restore_path: (step == UpgradeStep::TearingDown).then(|| "s3://b/sp/sp-1".into()),
        started_at: time(100),
        step_started_at: time(100),
    });
    s
}

struct Case {
    name: &'static str,
    spec: StreamJobSpec,
    generation: i64,
    deleting: bool,
    status: StreamJobStatus,
    observed: Observed,
    spec_errors: Vec<FieldError>,
    now: i64,
    expect_state: LifecycleState,
    expect_actions: Vec<&'static str>,
    check: fn(&Decision),
}

impl Default for Case {
    fn default() -> Self {
        Self {
            name: "",
            spec: base(),
            generation: 1,
            deleting: false,
            status: StreamJobStatus::default(),
            observed: observed(job(JobState::Running)),
            spec_errors: vec![],
            now: 200,
            expect_state: LifecycleState::Running,
            expect_actions: vec![],
            check: |_| {},
        }
    }
}

fn action_kind(a: &Action) -> &'static str {
    match a {
        Action::ApplyCluster => "apply",
        Action::DeleteCluster => "delete",
        Action::ReleaseCluster => "release",
        Action::StopWithSavepoint { .. } => "stop-with-savepoint",
        Action::TriggerSavepoint { .. } => "trigger-savepoint",
        Action::TriggerCheckpoint { .. } => "trigger-checkpoint",
        Action::CancelJob { .. } => "cancel",
        Action::DisposeSavepoints { .. } => "dispose",
        Action::RemoveFinalizer => "remove-finalizer",
        Action::RecordSnapshot(_) => "snapshot",
        Action::ScaleTaskManagers { .. } => "scale-task-managers",
        Action::RescaleInPlace { .. } => "rescale-in-place",
    }
}

fn run(case: &Case) -> Decision {
    let settings = Settings::default();
    decide(&Input {
        spec: &case.spec,
        generation: case.generation,
        deleting: case.deleting,
        status: &case.status,
        observed: &case.observed,
        spec_errors: &case.spec_errors,
        now: t(case.now),
        settings: &settings,
    })
}

fn degraded(d: &Decision) -> Option<(String, String)> {
    conditions::get(&d.status, conditions::DEGRADED)
        .filter(|c| c.status == "True")
        .map(|c| (c.reason.clone(), c.message.clone()))
}

fn cases() -> Vec<Case> {
    let changed = spec_with("/job/args", json!(["--rate", "2"]));
    let last_state = |s: StreamJobSpec| {
        let mut s = s;
        s.job.upgrade_mode = UpgradeMode::LastState;
        s
    };
    let stateless = |s: StreamJobSpec| {
        let mut s = s;
        s.job.upgrade_mode = UpgradeMode::Stateless;
        s
    };
    let suspended = {
        let mut s = base();
        s.job.state = DesiredJobState::Suspended;
        s
    };
    let deploying = StreamJobStatus {
        lifecycle_state: LifecycleState::Deploying,
        lifecycle_state_since: Some(time(190)),
        last_reconciled_spec: Some(serde_json::to_value(base()).unwrap()),
        last_reconciled_generation: Some(1),
        ..Default::default()
    };
    let crashing = Observed {
        cluster_present: true,
        pod_problem: Some(PodProblem {
            reason: "ContainerCrashing",
            pod: "counting-jobmanager-1".into(),
            container: Some("fjord".into()),
            message: "Pod counting-jobmanager-1: container fjord keeps crashing; last log lines: no job named countin".into(),
            wants_logs: true,
        }),
        ..observed(JobManagerView::Unreachable("connection refused".into()))
    };
    vec![
        Case {
            name: "the TaskManager Deployment's desired and ready Pods are recorded",
            status: running(&base()),
            observed: Observed {
                task_managers: Some(fjord_crds::TaskManagersStatus {
                    desired: 2,
                    ready: 1,
                }),
                ..observed(job(JobState::Running))
            },
            expect_state: LifecycleState::Running,
            expect_actions: vec!["apply"],
            check: |d| {
                assert_eq!(
                    d.status.task_managers,
                    Some(fjord_crds::TaskManagersStatus {
                        desired: 2,
                        ready: 1
                    })
                );
            },
            ..Default::default()
        },
        Case {
            name: "a new job's first checkpoint replaces the previous job's, whatever the IDs",
            status: StreamJobStatus {
                last_checkpoint: Some(CheckpointRecord {
                    id: 7,
                    path: "s3://b/cp/job-0/chk-7".into(),
                    completed_at: None,
                }),
                ..running(&base())
            },
            observed: Observed {
                latest_checkpoint: Some(CheckpointRecord {
                    id: 1,
                    path: "s3://b/cp/job-1/chk-1".into(),
                    completed_at: None,
                }),
                ..observed(job(JobState::Running))
            },
            expect_state: LifecycleState::Running,
            expect_actions: vec!["apply"],
            check: |d| {
                assert_eq!(
                    d.status.last_checkpoint.as_ref().map(|c| c.path.as_str()),
                    Some("s3://b/cp/job-1/chk-1")
                );
            },
            ..Default::default()
        },
        Case {
            name: "deploying, a Pod crash-loops: Degraded at once with the Pod's words, not after the timeout",
            status: deploying.clone(),
            observed: crashing.clone(),
            now: 195,
            expect_state: LifecycleState::Deploying,
            expect_actions: vec!["apply"],
            check: |d| {
                let (reason, message) = degraded(d).expect("Degraded");
                assert_eq!(reason, "ContainerCrashing");
                assert!(message.contains("no job named countin"), "{message}");
            },
            ..Default::default()
        },
        Case {
            name: "running job: a Pod problem elsewhere does not degrade it",
            status: running(&base()),
            observed: Observed {
                job_manager: job(JobState::Running),
                ..crashing.clone()
            },
            expect_state: LifecycleState::Running,
            expect_actions: vec!["apply"],
            check: |d| assert_eq!(degraded(d), None),
            ..Default::default()
        },
        Case {
            name: "created: records the spec before deploying from the initial savepoint",
            spec: spec_with("/job/args", json!(["--rate", "1"]))
                .tap(|s| s.job.initial_savepoint_path = Some("s3://b/sp/initial".into())),
            observed: observed(JobManagerView::Unreachable("none".into())),
            expect_state: LifecycleState::Deploying,
            expect_actions: vec!["apply"],
            check: |d| {
                assert!(d.status.last_reconciled_spec.is_some());
                assert_eq!(d.status.last_reconciled_generation, Some(1));
                assert_eq!(d.status.restore_path.as_deref(), Some("s3://b/sp/initial"));
            },
            ..Default::default()
        },
        Case {
            name: "created suspended: nothing is deployed",
            spec: suspended.clone(),
            observed: observed(JobManagerView::Unreachable("none".into())),
            expect_state: LifecycleState::Suspended,
            ..Default::default()
        },
        Case {
            name: "created with an invalid spec: Degraded, nothing deployed",
            spec_errors: vec![FieldError {
                field: "spec.configuration.s3.secret-key".into(),
                message: "looks like a credential".into(),
            }],
            observed: observed(JobManagerView::Unreachable("none".into())),
            expect_state: LifecycleState::Created,
            check: |d| {
                let (reason, msg) = degraded(d).unwrap();
                assert_eq!(reason, "InvalidSpec");
                assert!(msg.contains("spec.configuration.s3.secret-key"));
            },
            ..Default::default()
        },
        Case {
            name: "deploying: job runs",
            status: running(&base()).tap(|s| s.lifecycle_state = LifecycleState::Deploying),
            expect_actions: vec!["apply"],
            check: |d| {
                let ready = conditions::get(&d.status, conditions::READY).unwrap();
                assert_eq!(ready.status, "True");
            },
            ..Default::default()
        },
        Case {
            name: "deploying: job fails",
            status: running(&base()).tap(|s| s.lifecycle_state = LifecycleState::Deploying),
            observed: observed(job(JobState::Failed)),
            expect_state: LifecycleState::Failed,
            check: |d| assert_eq!(degraded(d).unwrap().0, "JobFailed"),
            ..Default::default()
        },
        Case {
            name: "deploying: stuck past the deploy timeout is Degraded, not a crash",
            status: running(&base()).tap(|s| s.lifecycle_state = LifecycleState::Deploying),
            observed: observed(JobManagerView::Unreachable("connection refused".into()))
                .tap(|o| o.cluster_present = true),
            now: 1000,
            expect_state: LifecycleState::Deploying,
            expect_actions: vec!["apply"],
            check: |d| assert_eq!(degraded(d).unwrap().0, "DeploymentStuck"),
            ..Default::default()
        },
        Case {
            name: "deploying: a spec change redeploys at once from the same restore point",
            spec: changed.clone(),
            generation: 2,
            status: running(&base()).tap(|s| {
                s.lifecycle_state = LifecycleState::Deploying;
                s.restore_path = Some("s3://b/sp/sp-0".into());
            }),
            observed: observed(JobManagerView::NoJob),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["delete"],
            check: |d| {
                let u = d.status.upgrade.as_ref().unwrap();
                assert_eq!(u.step, UpgradeStep::TearingDown);
                assert_eq!(u.restore_path.as_deref(), Some("s3://b/sp/sp-0"));
            },
            ..Default::default()
        },
        Case {
            name: "running, no change: re-applies children and stays",
            status: running(&base()),
            expect_actions: vec!["apply"],
            ..Default::default()
        },
        Case {
            name: "running, spec change, savepoint mode: trigger ID recorded with the stop",
            spec: changed.clone(),
            generation: 2,
            status: running(&base()),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["stop-with-savepoint"],
            check: |d| {
                let u = d.status.upgrade.as_ref().unwrap();
                assert_eq!(u.step, UpgradeStep::StoppingWithSavepoint);
                assert_eq!(u.reason, UpgradeReason::SpecChange);
                assert_eq!(u.target_generation, 2);
                let Action::StopWithSavepoint {
                    trigger_id,
                    directory,
                    job_id,
                } = &d.actions[0]
                else {
                    panic!()
                };
                assert_eq!(Some(trigger_id), u.savepoint_trigger_id.as_ref());
                assert_eq!(
                    (directory.as_str(), job_id.as_str()),
                    ("s3://b/sp", "job-1")
                );
                // The deployed spec is unchanged until the new one is deployed.
                assert_eq!(d.status.last_reconciled_generation, Some(1));
            },
            ..Default::default()
        },
        Case {
            name: "running, parallelism change: a rescale through a savepoint",
            spec: spec_with("/job/parallelism", json!(4)),
            generation: 2,
            status: running(&base()),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["stop-with-savepoint"],
            check: |d| {
                assert_eq!(
                    d.status.upgrade.as_ref().unwrap().reason,
                    UpgradeReason::Rescale
                )
            },
            ..Default::default()
        },
        Case {
            name: "running, restart nonce: restart",
            spec: base().tap(|s| s.job.restart_nonce = Some(7)),
            generation: 2,
            status: running(&base()),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["stop-with-savepoint"],
            check: |d| {
                assert_eq!(
                    d.status.upgrade.as_ref().unwrap().reason,
                    UpgradeReason::Restart
                )
            },
            ..Default::default()
        },
        Case {
            name: "running, savepoint settings change only: no redeploy",
            spec: base().tap(|s| s.savepoints.as_mut().unwrap().history_max_count = Some(9)),
            generation: 2,
            status: running(&base()),
            expect_actions: vec!["apply"],
            ..Default::default()
        },
        Case {
            name: "running, suspend: stop with savepoint",
            spec: suspended.clone(),
            generation: 2,
            status: running(&base()),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["stop-with-savepoint"],
            check: |d| {
                assert_eq!(
                    d.status.upgrade.as_ref().unwrap().reason,
                    UpgradeReason::Suspend
                )
            },
            ..Default::default()
        },
        Case {
            name: "running, savepoint mode, job restarting: waits, never degrades to stateless",
            spec: changed.clone(),
            generation: 2,
            status: running(&base()),
            observed: observed(job(JobState::Restarting)),
            expect_actions: vec!["apply"],
            check: |d| {
                let (reason, msg) = degraded(d).unwrap();
                assert_eq!(reason, "WaitingForRunningJob");
                assert!(msg.contains("upgradeMode"));
                assert!(d.status.upgrade.is_none());
            },
            ..Default::default()
        },
        Case {
            name: "running, last-state with a checkpoint: cancel",
            spec: last_state(changed.clone()),
            generation: 2,
            status: running(&base()),
            observed: observed(job(JobState::Running))
                .tap(|o| o.latest_checkpoint = Some(checkpoint(5))),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["cancel"],
            check: |d| {
                assert_eq!(
                    d.status.upgrade.as_ref().unwrap().step,
                    UpgradeStep::Cancelling
                );
                assert_eq!(d.status.last_checkpoint.as_ref().unwrap().id, 5);
            },
            ..Default::default()
        },
        Case {
            name: "running, last-state without any checkpoint: waits, Degraded",
            spec: last_state(changed.clone()),
            generation: 2,
            status: running(&base()),
            expect_actions: vec!["apply"],
            check: |d| assert_eq!(degraded(d).unwrap().0, "NoCheckpoint"),
            ..Default::default()
        },
        Case {
            name: "running, stateless: cancel",
            spec: stateless(changed.clone()),
            generation: 2,
            status: running(&base()),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["cancel"],
            ..Default::default()
        },
        Case {
            name: "running, job failed: Failed",
            status: running(&base()),
            observed: observed(job(JobState::Failed)),
            expect_state: LifecycleState::Failed,
            ..Default::default()
        },
        Case {
            name: "savepoint completed: restore path recorded before teardown",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::StoppingWithSavepoint, UpgradeMode::Savepoint),
            observed: observed(job(JobState::Suspended)).tap(|o| {
                o.savepoint = Some(SavepointStatus::Completed {
                    path: "s3://b/sp/sp-9".into(),
                })
            }),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["snapshot", "release"],
            check: |d| {
                let u = d.status.upgrade.as_ref().unwrap();
                assert_eq!(u.step, UpgradeStep::TearingDown);
                assert_eq!(u.restore_path.as_deref(), Some("s3://b/sp/sp-9"));
                let last = d.status.savepoint_history.last().unwrap();
                assert_eq!(
                    (last.path.as_str(), last.trigger),
                    ("s3://b/sp/sp-9", SavepointTrigger::Upgrade)
                );
                assert_eq!(d.status.last_savepoint.as_deref(), Some("s3://b/sp/sp-9"));
            },
            ..Default::default()
        },
        Case {
            name: "savepoint failed: old job keeps running, Degraded, no teardown",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::StoppingWithSavepoint, UpgradeMode::Savepoint),
            observed: observed(job(JobState::Running)).tap(|o| {
                o.savepoint = Some(SavepointStatus::Failed {
                    message: "disk full".into(),
                })
            }),
            expect_actions: vec!["snapshot", "apply"],
            check: |d| {
                assert!(d.status.upgrade.is_none());
                assert_eq!(d.status.failed_upgrade.as_ref().unwrap().generation, 2);
                let (reason, msg) = degraded(d).unwrap();
                assert_eq!(reason, "UpgradeFailed");
                assert!(msg.contains("disk full") && msg.contains("keeps running"));
                assert_eq!(d.status.last_reconciled_generation, Some(1));
                assert!(
                    d.events
                        .iter()
                        .any(|e| e.warning && e.reason == "UpgradeFailed")
                );
            },
            ..Default::default()
        },
        Case {
            name: "after a failed savepoint the same generation is not retried",
            spec: changed.clone(),
            generation: 2,
            status: running(&base()).tap(|s| {
                s.failed_upgrade = Some(FailedUpgrade {
                    generation: 2,
                    restart_nonce: None,
                    message: "savepoint failed".into(),
                })
            }),
            expect_actions: vec!["apply"],
            check: |d| assert_eq!(degraded(d).unwrap().0, "UpgradeFailed"),
            ..Default::default()
        },
        Case {
            name: "a new generation after a failed savepoint is tried again",
            spec: changed.clone().tap(|s| s.job.parallelism = 3),
            generation: 3,
            status: running(&base()).tap(|s| {
                s.failed_upgrade = Some(FailedUpgrade {
                    generation: 2,
                    restart_nonce: None,
                    message: "savepoint failed".into(),
                })
            }),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["stop-with-savepoint"],
            ..Default::default()
        },
        Case {
            name: "savepoint unknown to the JobManager: sent again with the same trigger ID",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::StoppingWithSavepoint, UpgradeMode::Savepoint),
            observed: observed(job(JobState::Running))
                .tap(|o| o.savepoint = Some(SavepointStatus::Unknown)),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["stop-with-savepoint"],
            check: |d| {
                let Action::StopWithSavepoint { trigger_id, .. } = &d.actions[0] else {
                    panic!()
                };
                assert_eq!(trigger_id, "upgrade-2-1");
            },
            ..Default::default()
        },
        Case {
            name: "savepoint in progress past the timeout: abort, never stateless",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::StoppingWithSavepoint, UpgradeMode::Savepoint),
            observed: observed(job(JobState::Running))
                .tap(|o| o.savepoint = Some(SavepointStatus::InProgress)),
            now: 100 + 601,
            expect_actions: vec!["apply"],
            check: |d| {
                assert!(d.status.failed_upgrade.is_some());
                assert!(d.status.restore_path.is_none());
            },
            ..Default::default()
        },
        Case {
            name: "tearing down: waits for the old pods to go",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::TearingDown, UpgradeMode::Savepoint),
            observed: observed(JobManagerView::NoJob),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["delete"],
            ..Default::default()
        },
        Case {
            name: "torn down: deploys the new spec from the recorded savepoint",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::TearingDown, UpgradeMode::Savepoint),
            observed: observed(JobManagerView::Unreachable("gone".into())),
            expect_state: LifecycleState::Deploying,
            expect_actions: vec!["apply"],
            check: |d| {
                assert_eq!(d.status.restore_path.as_deref(), Some("s3://b/sp/sp-1"));
                assert_eq!(d.status.last_reconciled_generation, Some(2));
                let deployed: StreamJobSpec =
                    serde_json::from_value(d.status.last_reconciled_spec.clone().unwrap()).unwrap();
                assert_eq!(deployed.job.args, ["--rate", "2"]);
                assert!(d.status.upgrade.is_none());
            },
            ..Default::default()
        },
        Case {
            name: "torn down while suspended: Suspended, resume point kept",
            spec: suspended.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::TearingDown, UpgradeMode::Savepoint),
            observed: observed(JobManagerView::Unreachable("gone".into())),
            expect_state: LifecycleState::Suspended,
            check: |d| assert_eq!(d.status.restore_path.as_deref(), Some("s3://b/sp/sp-1")),
            ..Default::default()
        },
        Case {
            name: "suspended, resumed: deploys from the suspend savepoint",
            spec: base(),
            generation: 3,
            status: StreamJobStatus {
                lifecycle_state: LifecycleState::Suspended,
                restore_path: Some("s3://b/sp/sp-1".into()),
                last_reconciled_spec: Some(serde_json::to_value(&suspended).unwrap()),
                ..Default::default()
            },
            observed: observed(JobManagerView::Unreachable("none".into())),
            expect_state: LifecycleState::Deploying,
            expect_actions: vec!["apply"],
            check: |d| assert_eq!(d.status.restore_path.as_deref(), Some("s3://b/sp/sp-1")),
            ..Default::default()
        },
        Case {
            name: "last-state cancelled: restore from the latest checkpoint",
            spec: last_state(changed.clone()),
            generation: 2,
            status: upgrading(UpgradeStep::Cancelling, UpgradeMode::LastState),
            observed: observed(job(JobState::Cancelled))
                .tap(|o| o.latest_checkpoint = Some(checkpoint(8))),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["release"],
            check: |d| {
                let u = d.status.upgrade.as_ref().unwrap();
                assert_eq!(u.restore_path.as_deref(), Some("s3://b/cp/chk-8"));
            },
            ..Default::default()
        },
        Case {
            name: "stateless cancelled: nothing to restore",
            spec: stateless(changed.clone()),
            generation: 2,
            status: upgrading(UpgradeStep::Cancelling, UpgradeMode::Stateless),
            observed: observed(job(JobState::Cancelled)),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["release"],
            check: |d| assert!(d.status.upgrade.as_ref().unwrap().restore_path.is_none()),
            ..Default::default()
        },
        Case {
            name: "savepoint completed, job suspended by the spec: the old pods go first",
            spec: changed
                .clone()
                .tap(|s| s.job.state = DesiredJobState::Suspended),
            generation: 2,
            status: upgrading(UpgradeStep::StoppingWithSavepoint, UpgradeMode::Savepoint),
            observed: observed(job(JobState::Finished)).tap(|o| {
                o.savepoint = Some(SavepointStatus::Completed {
                    path: "s3://b/sp/sp-9".into(),
                })
            }),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["snapshot", "delete"],
            ..Default::default()
        },
        Case {
            name: "cancel timed out with the job still running: the old pods go first",
            spec: stateless(changed.clone()),
            generation: 2,
            status: upgrading(UpgradeStep::Cancelling, UpgradeMode::Stateless),
            observed: observed(job(JobState::Cancelling)),
            now: 100_000,
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["delete"],
            ..Default::default()
        },
        Case {
            name: "tearing down the same generation (no new cluster ID): the old pods go first",
            spec: stateless(base()),
            generation: 1,
            status: upgrading(UpgradeStep::TearingDown, UpgradeMode::Stateless),
            observed: observed(job(JobState::Cancelled)),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["delete"],
            ..Default::default()
        },
        Case {
            name: "tearing down after the old job finished: released while the next one starts",
            spec: changed.clone(),
            generation: 2,
            status: upgrading(UpgradeStep::TearingDown, UpgradeMode::Savepoint),
            observed: observed(job(JobState::Finished)),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["release"],
            ..Default::default()
        },
        Case {
            name: "failed job, savepoint mode change: refused with the explicit alternatives",
            spec: changed.clone(),
            generation: 2,
            status: running(&base()).tap(|s| {
                s.lifecycle_state = LifecycleState::Failed;
                s.last_checkpoint = Some(checkpoint(3));
            }),
            observed: observed(job(JobState::Failed)),
            expect_state: LifecycleState::Failed,
            check: |d| {
                let (reason, msg) = degraded(d).unwrap();
                assert_eq!(reason, "CannotSavepointFailedJob");
                assert!(msg.contains("s3://b/cp/chk-3"), "{msg}");
            },
            ..Default::default()
        },
        Case {
            name: "failed job, last-state change: redeploy from the latest checkpoint",
            spec: last_state(changed.clone()),
            generation: 2,
            status: running(&base()).tap(|s| {
                s.lifecycle_state = LifecycleState::Failed;
                s.last_checkpoint = Some(checkpoint(3));
            }),
            observed: observed(job(JobState::Failed)),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["delete"],
            check: |d| {
                assert_eq!(
                    d.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
                    Some("s3://b/cp/chk-3")
                )
            },
            ..Default::default()
        },
        Case {
            name: "failed job, new initialSavepointPath: an explicit restore point",
            spec: changed
                .clone()
                .tap(|s| s.job.initial_savepoint_path = Some("s3://b/sp/old".into())),
            generation: 2,
            status: running(&base()).tap(|s| s.lifecycle_state = LifecycleState::Failed),
            observed: observed(job(JobState::Failed)),
            expect_state: LifecycleState::Upgrading,
            expect_actions: vec!["delete"],
            check: |d| {
                assert_eq!(
                    d.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
                    Some("s3://b/sp/old")
                )
            },
            ..Default::default()
        },
        Case {
            name: "manual savepoint nonce: pending savepoint recorded, then triggered",
            spec: base().tap(|s| s.job.savepoint_trigger_nonce = Some(1)),
            generation: 2,
            status: running(&base()),
            expect_actions: vec!["apply", "trigger-savepoint"],
            check: |d| {
                let p = d.status.pending_savepoint.as_ref().unwrap();
                assert_eq!((p.trigger, p.nonce), (SavepointTrigger::Manual, Some(1)));
            },
            ..Default::default()
        },
        Case {
            name: "manual savepoint completed: history, nonce handled",
            spec: base().tap(|s| s.job.savepoint_trigger_nonce = Some(1)),
            generation: 2,
            status: running(&base()).tap(|s| {
                s.pending_savepoint = Some(PendingSavepoint {
                    trigger_id: "manual-2-1".into(),
                    trigger: SavepointTrigger::Manual,
                    nonce: Some(1),
                    started_at: time(150),
                })
            }),
            observed: observed(job(JobState::Running)).tap(|o| {
                o.savepoint = Some(SavepointStatus::Completed {
                    path: "s3://b/sp/m1".into(),
                })
            }),
            expect_actions: vec!["apply", "snapshot"],
            check: |d| {
                assert!(d.status.pending_savepoint.is_none());
                assert_eq!(d.status.last_savepoint_trigger_nonce, Some(1));
                assert_eq!(
                    d.status.savepoint_history[0].trigger,
                    SavepointTrigger::Manual
                );
            },
            ..Default::default()
        },
        Case {
            name: "periodic savepoint due",
            spec: base().tap(|s| {
                s.savepoints.as_mut().unwrap().periodic_interval = Some("1m".parse().unwrap())
            }),
            status: running(&base()),
            now: 61,
            expect_actions: vec!["apply", "trigger-savepoint"],
            check: |d| {
                assert_eq!(
                    d.status.pending_savepoint.as_ref().unwrap().trigger,
                    SavepointTrigger::Periodic
                )
            },
            ..Default::default()
        },
        Case {
            name: "periodic savepoint after a failed attempt waits a full interval",
            spec: base().tap(|s| {
                s.savepoints.as_mut().unwrap().periodic_interval = Some("1m".parse().unwrap())
            }),
            status: running(&base()).tap(|s| s.last_periodic_savepoint_attempt = Some(time(50))),
            now: 61,
            expect_actions: vec!["apply"],
            ..Default::default()
        },
        Case {
            name: "periodic savepoint not yet due",
            spec: base().tap(|s| {
                s.savepoints.as_mut().unwrap().periodic_interval = Some("1m".parse().unwrap())
            }),
            status: running(&base()),
            now: 30,
            expect_actions: vec!["apply"],
            ..Default::default()
        },
        Case {
            name: "dropped savepoints are disposed of while the JobManager answers",
            status: running(&base())
                .tap(|s| s.savepoints_pending_disposal = vec!["s3://b/sp/old".into()]),
            expect_actions: vec!["apply", "dispose"],
            ..Default::default()
        },
        Case {
            name: "delete with savepoint on delete: stop with savepoint first",
            spec: base().tap(|s| s.savepoints.as_mut().unwrap().on_delete = Some(true)),
            deleting: true,
            status: running(&base()),
            expect_state: LifecycleState::Deleting,
            expect_actions: vec!["stop-with-savepoint"],
            check: |d| {
                assert!(
                    d.status
                        .deletion
                        .as_ref()
                        .unwrap()
                        .savepoint_trigger_id
                        .is_some()
                )
            },
            ..Default::default()
        },
        Case {
            name: "delete: savepoint done, finalizer removed",
            spec: base().tap(|s| s.savepoints.as_mut().unwrap().on_delete = Some(true)),
            deleting: true,
            status: running(&base()).tap(|s| {
                s.lifecycle_state = LifecycleState::Deleting;
                s.deletion = Some(DeletionStatus {
                    started_at: time(100),
                    savepoint_trigger_id: Some("delete-1-1".into()),
                });
            }),
            observed: observed(job(JobState::Suspended)).tap(|o| {
                o.savepoint = Some(SavepointStatus::Completed {
                    path: "s3://b/sp/final".into(),
                })
            }),
            expect_state: LifecycleState::Deleting,
            expect_actions: vec!["snapshot", "remove-finalizer"],
            check: |d| {
                assert!(
                    d.events
                        .iter()
                        .any(|e| e.message.contains("s3://b/sp/final"))
                );
                assert!(d.actions.iter().any(|a| matches!(a,
                    Action::RecordSnapshot(n) if n.trigger_id == "delete-1-1"
                        && n.trigger == SavepointTrigger::Delete
                        && n.path.as_deref() == Some("s3://b/sp/final"))));
            },
            ..Default::default()
        },
        Case {
            name: "delete: dead JobManager, bounded wait then finalizer removed",
            spec: base().tap(|s| {
                let sp = s.savepoints.as_mut().unwrap();
                sp.on_delete = Some(true);
                sp.on_delete_timeout = Some("1m".parse().unwrap());
            }),
            deleting: true,
            status: running(&base()).tap(|s| {
                s.lifecycle_state = LifecycleState::Deleting;
                s.deletion = Some(DeletionStatus {
                    started_at: time(100),
                    savepoint_trigger_id: Some("delete-1-1".into()),
                });
            }),
            observed: observed(JobManagerView::Unreachable("connection refused".into()))
                .tap(|o| o.cluster_present = true),
            now: 161,
            expect_state: LifecycleState::Deleting,
            expect_actions: vec!["remove-finalizer"],
            check: |d| {
                assert!(
                    d.events
                        .iter()
                        .any(|e| e.warning && e.reason == "SavepointOnDeleteSkipped")
                );
            },
            ..Default::default()
        },
        Case {
            name: "delete: dead JobManager within the wait: keeps waiting",
            spec: base().tap(|s| s.savepoints.as_mut().unwrap().on_delete = Some(true)),
            deleting: true,
            status: running(&base()).tap(|s| {
                s.lifecycle_state = LifecycleState::Deleting;
                s.deletion = Some(DeletionStatus {
                    started_at: time(100),
                    savepoint_trigger_id: Some("delete-1-1".into()),
                });
            }),
            observed: observed(JobManagerView::Unreachable("connection refused".into()))
                .tap(|o| o.cluster_present = true),
            now: 160,
            expect_state: LifecycleState::Deleting,
            ..Default::default()
        },
        Case {
            name: "delete without savepoint on delete: finalizer removed at once",
            deleting: true,
            status: running(&base()),
            expect_state: LifecycleState::Deleting,
            expect_actions: vec!["remove-finalizer"],
            ..Default::default()
        },
    ]
}

trait Tap: Sized {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}
impl<T> Tap for T {}

#[test]
fn decision_table() {
    for case in cases() {
        let d = run(&case);
        assert_eq!(
            d.status.lifecycle_state, case.expect_state,
            "{}: state (status {:?})",
            case.name, d.status
        );
        let kinds: Vec<&str> = d.actions.iter().map(action_kind).collect();
        assert_eq!(kinds, case.expect_actions, "{}: actions", case.name);
        assert_eq!(
            d.status.observed_generation,
            Some(case.generation),
            "{}",
            case.name
        );
        (case.check)(&d);
        // The same input gives the same decision: decide is pure.
        assert_eq!(run(&case), d, "{}: not deterministic", case.name);
    }
}

#[test]
fn a_running_job_reports_restarts_and_start_time_and_is_polled_closely() {
    let mut jm = job(JobState::Running);
    if let JobManagerView::Job(j) = &mut jm {
        j.restarts = Some(4);
        j.start_time = Some(time(50));
    }
    let case = Case {
        status: running(&base()),
        observed: observed(jm),
        expect_actions: vec!["apply"],
        ..Default::default()
    };
    let d = run(&case);
    assert_eq!(d.status.job_restarts, Some(4));
    assert_eq!(d.status.job_start_time, Some(time(50)));
    assert_eq!(d.requeue, Settings::default().running_poll);
    assert!(Settings::default().running_poll < Settings::default().steady_poll);

    // A finished job is not polled closely (the controller waits for a change).
    let case = Case {
        status: running(&base()),
        observed: observed(job(JobState::Finished)),
        expect_actions: vec!["apply"],
        ..Default::default()
    };
    let d = run(&case);
    assert_eq!(d.status.job_state, Some(JobState::Finished));
    assert_eq!(d.requeue, Settings::default().steady_poll);

    // A new deployment forgets the previous job's figures.
    let mut status = running(&base());
    status.lifecycle_state = LifecycleState::Suspended;
    status.job_restarts = Some(4);
    status.job_start_time = Some(time(50));
    let case = Case {
        status,
        observed: observed(JobManagerView::Unreachable("no JobManager".into())),
        expect_state: LifecycleState::Deploying,
        expect_actions: vec!["apply"],
        ..Default::default()
    };
    let d = run(&case);
    assert_eq!(d.status.job_restarts, None);
    assert_eq!(d.status.job_start_time, None);
}

/// A TaskManager Pod of the StreamJob `counting` with a 64Mi memory limit: its container
/// `fjord` restarted `restarts` times, is now in `state`, and was last terminated (`reason`,
/// `exit_code`) at test second `ended`.
fn task_manager_pod(
    restarts: i32,
    state: serde_json::Value,
    reason: &str,
    exit_code: i32,
    ended: i64,
) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "counting-taskmanager-5b7c9-k2x4p", "labels": {
            "fjord.dev/streamjob": "counting",
            "app.kubernetes.io/component": "taskmanager",
        }},
        "spec": {"containers": [{"name": "fjord", "image": "fjord/fjord:0.1.0",
            "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "fjord", "image": "fjord/fjord:0.1.0", "imageID": "",
            "ready": state.get("running").is_some(),
            "restartCount": restarts,
            "state": state,
            "lastState": {"terminated": {"exitCode": exit_code, "reason": reason,
                "startedAt": t(ended - 20).to_string(), "finishedAt": t(ended).to_string()}},
        }]},
    }))
    .unwrap()
}

fn running_since(s: i64) -> serde_json::Value {
    json!({"running": {"startedAt": t(s).to_string()}})
}

fn back_off() -> serde_json::Value {
    json!({"waiting": {"reason": "CrashLoopBackOff",
        "message": "back-off 20s restarting failed container=fjord"}})
}

/// The OOM kills of issue 15: both TaskManagers crash-loop on their memory limit while the
/// JobManager, restarting the tasks each time, reports the job RUNNING. The status decision
/// from the Pods the watch holds, pass after pass.
#[test]
fn task_managers_crash_looping_under_a_running_job_degrade_it_until_stable_again() {
    let mut status = running(&base());
    let pass = |pod: k8s_openapi::api::core::v1::Pod, now: i64, status: &mut StreamJobStatus| {
        let observed = Observed {
            crash_loop: crate::pods::crash_loop([&pod], t(now)),
            ..observed(job(JobState::Running))
        };
        let d = run(&Case {
            status: status.clone(),
            observed,
            now,
            ..Default::default()
        });
        assert_eq!(d.status.lifecycle_state, LifecycleState::Running);
        let ready = conditions::get(&d.status, conditions::READY).unwrap();
        assert_eq!(ready.status, "True", "Ready follows the job, which runs");
        *status = d.status.clone();
        d
    };
    let degraded_since = |status: &StreamJobStatus| {
        let c = conditions::get(status, conditions::DEGRADED).unwrap();
        (c.status.clone(), c.last_transition_time.clone())
    };

    // One OOM kill the TaskManager recovered from: no flap.
    let d = pass(
        task_manager_pod(1, running_since(205), "OOMKilled", 137, 204),
        210,
        &mut status,
    );
    assert_eq!(degraded(&d), None);

    // Killed again: the kubelet backs off. Degraded, in words that say what to do.
    let d = pass(
        task_manager_pod(2, back_off(), "OOMKilled", 137, 230),
        232,
        &mut status,
    );
    let (reason, message) = degraded(&d).expect("Degraded");
    assert_eq!(reason, "ContainerCrashing");
    for text in [
        "Pod counting-taskmanager-5b7c9-k2x4p: container fjord keeps crashing: OOMKilled (exit code 137) by its memory limit 64Mi, 2 restarts",
        "raise spec.taskManager.resources.limits.memory",
    ] {
        assert!(message.contains(text), "{text:?} in {message}");
    }
    assert_eq!(d.status.error.as_deref(), Some(message.as_str()));
    let since = degraded_since(&status);
    assert_eq!(since.0, "True");

    // Running between two back-offs: still Degraded, the transition time unchanged.
    pass(
        task_manager_pod(3, running_since(262), "OOMKilled", 137, 250),
        270,
        &mut status,
    );
    assert_eq!(degraded_since(&status), since);

    // Stable for the whole window since the last kill: no longer Degraded.
    let window = crate::pods::CRASH_WINDOW.as_secs() as i64;
    let d = pass(
        task_manager_pod(3, running_since(262), "OOMKilled", 137, 250),
        250 + window + 1,
        &mut status,
    );
    assert_eq!(degraded(&d), None);
    assert_eq!(d.status.error, None);

    // A TaskManager that keeps crashing with an error: CrashLoopBackOff while the job runs.
    let d = pass(
        task_manager_pod(5, back_off(), "Error", 1, 990),
        995,
        &mut status,
    );
    let (reason, message) = degraded(&d).expect("Degraded");
    assert_eq!(reason, "ContainerCrashing");
    assert!(
        message.contains("5 restarts, last exit code 1"),
        "{message}"
    );

    // A new Pod (the memory limit raised): healthy at once.
    let d = pass(
        task_manager_pod(0, running_since(1000), "", 0, 0).tap(|p| {
            p.status
                .as_mut()
                .unwrap()
                .container_statuses
                .as_mut()
                .unwrap()[0]
                .last_state = None;
        }),
        1010,
        &mut status,
    );
    assert_eq!(degraded(&d), None);
}

#[test]
fn a_crash_loop_gives_way_to_what_else_needs_attention() {
    let pod = task_manager_pod(4, back_off(), "OOMKilled", 137, 195);
    let crash_loop = crate::pods::crash_loop([&pod], t(200));
    assert!(crash_loop.is_some());
    // An upgrade that failed for this generation says so first.
    let mut status = running(&base());
    status.failed_upgrade = Some(FailedUpgrade {
        generation: 2,
        restart_nonce: None,
        message: "the savepoint failed".into(),
    });
    let d = run(&Case {
        spec: spec_with("/job/args", json!(["--rate", "2"])),
        generation: 2,
        status,
        observed: Observed {
            crash_loop: crash_loop.clone(),
            ..observed(job(JobState::Running))
        },
        expect_actions: vec!["apply"],
        ..Default::default()
    });
    assert_eq!(degraded(&d).unwrap().0, "UpgradeFailed");
    // A job that is not running is explained by pod_problem (the Pods listed), not crash_loop.
    let d = run(&Case {
        status: running(&base()),
        observed: Observed {
            crash_loop,
            ..observed(job(JobState::Restarting))
        },
        ..Default::default()
    });
    assert_eq!(degraded(&d), None);
}

#[test]
fn a_restart_loop_is_redeployed_from_the_latest_checkpoint() {
    let spec = base().tap(|s| {
        s.health_check = Some(fjord_crds::HealthCheckSpec {
            restarts_threshold: Some(3),
            restarts_window: Some("2m".parse().unwrap()),
        })
    });
    let with_restarts = |n: u32| {
        let mut jm = job(JobState::Running);
        if let JobManagerView::Job(j) = &mut jm {
            j.restarts = Some(n);
        }
        observed(jm).tap(|o| o.latest_checkpoint = Some(checkpoint(7)))
    };
    // The first look starts a window at the current count.
    let d = run(&Case {
        spec: spec.clone(),
        status: running(&spec),
        observed: with_restarts(2),
        expect_actions: vec!["apply"],
        ..Default::default()
    });
    let baseline = d.status.restart_baseline.clone().unwrap();
    assert_eq!((baseline.restarts, baseline.since.clone()), (2, time(200)));
    // Within the window, up to the threshold: nothing happens.
    let d = run(&Case {
        spec: spec.clone(),
        status: d.status.clone(),
        observed: with_restarts(5),
        now: 260,
        expect_actions: vec!["apply"],
        ..Default::default()
    });
    assert_eq!(d.status.restart_baseline, Some(baseline.clone()));
    // One more within the window: redeployed from the latest checkpoint, with an Event.
    let d = run(&Case {
        spec: spec.clone(),
        status: d.status.clone(),
        observed: with_restarts(6),
        now: 300,
        expect_state: LifecycleState::Upgrading,
        expect_actions: vec!["delete"],
        ..Default::default()
    });
    let u = d.status.upgrade.as_ref().unwrap();
    assert_eq!(u.reason, UpgradeReason::RestartLoop);
    assert_eq!(u.restore_path.as_deref(), Some("s3://b/cp/chk-7"));
    let e = d.events.iter().find(|e| e.reason == "RestartLoop").unwrap();
    assert!(
        e.warning && e.message.contains("restarted 4 times"),
        "{}",
        e.message
    );
    // The same count spread over two windows is no loop.
    let d = run(&Case {
        spec: spec.clone(),
        status: running(&spec).tap(|s| s.restart_baseline = Some(baseline.clone())),
        observed: with_restarts(6),
        now: 200 + 121,
        expect_actions: vec!["apply"],
        ..Default::default()
    });
    assert_eq!(d.status.restart_baseline.unwrap().restarts, 6);
    // Without spec.healthCheck nothing is checked.
    let d = run(&Case {
        status: running(&base()).tap(|s| s.restart_baseline = Some(baseline.clone())),
        observed: with_restarts(60),
        expect_actions: vec!["apply"],
        ..Default::default()
    });
    assert_eq!(d.status.restart_baseline, None);
}

#[test]
fn no_decision_degrades_a_stateful_upgrade_to_stateless() {
    // Across every case: a savepoint-mode upgrade never deploys without a restore point.
    for case in cases() {
        let d = run(&case);
        let savepoint_mode_upgrade = case
            .status
            .upgrade
            .as_ref()
            .is_some_and(|u| u.mode == UpgradeMode::Savepoint)
            || (case.status.lifecycle_state == LifecycleState::Running
                && case.spec.job.upgrade_mode == UpgradeMode::Savepoint);
        if savepoint_mode_upgrade && d.status.lifecycle_state == LifecycleState::Deploying {
            assert!(d.status.restore_path.is_some(), "{}", case.name);
        }
    }
}

/// A small world around the state machine: the StreamJob's status as stored by the API server,
/// whether the workloads exist, and a fake JobManager. `pass` does what the controller does:
/// observe, decide, store the status, then act — unless `crash_before_acting`, which models an
/// operator that died right after writing the status.
struct World {
    spec: StreamJobSpec,
    generation: i64,
    status: StreamJobStatus,
    cluster: bool,
    jm: FakeJobManager,
    deploys: Vec<Option<String>>,
    now: i64,
}

impl World {
    fn endpoint() -> JobManagerEndpoint {
        JobManagerEndpoint {
            base_url: "http://counting-jobmanager.ns.svc:8081/v1".into(),
            token: None,
            ca_pem: None,
        }
    }

    async fn pass(&mut self, crash_before_acting: bool) -> Decision {
        self.now += 5;
        let ep = Self::endpoint();
        let job_manager = if !self.cluster {
            JobManagerView::Unreachable("not deployed".into())
        } else {
            match self.jm.job(&ep).await {
                Ok(Some(j)) => JobManagerView::Job(j),
                Ok(None) => JobManagerView::NoJob,
                Err(e) => JobManagerView::Unreachable(e.to_string()),
            }
        };
        let mut savepoint = None;
        if let (JobManagerView::Job(j), Some(trigger)) =
            (&job_manager, watched_trigger(&self.status))
        {
            savepoint = self.jm.savepoint_status(&ep, &j.id, trigger).await.ok();
        }
        let mut checkpoint = None;
        if let (JobManagerView::Job(j), Some(trigger)) =
            (&job_manager, watched_checkpoint(&self.status))
        {
            checkpoint = self.jm.checkpoint_status(&ep, &j.id, trigger).await.ok();
        }
        let observed = Observed {
            cluster_present: self.cluster,
            job_manager,
            savepoint,
            checkpoint,
            latest_checkpoint: None,
            task_managers: None,
            pod_problem: None,
            crash_loop: None,
        };
        let settings = Settings::default();
        let d = decide(&Input {
            spec: &self.spec,
            generation: self.generation,
            deleting: false,
            status: &self.status,
            observed: &observed,
            spec_errors: &[],
            now: t(self.now),
            settings: &settings,
        });
        self.status = d.status.clone();
        if crash_before_acting {
            return d;
        }
        for a in &d.actions {
            match a {
                Action::ApplyCluster => {
                    if !self.cluster {
                        self.cluster = true;
                        self.deploys.push(self.status.restore_path.clone());
                        self.jm.state.lock().unwrap().job = Some(JobInfo {
                            id: format!("job-{}", self.deploys.len()),
                            state: JobState::Running,
                            failure: None,
                            restarts: Some(0),
                            start_time: None,
                            vertices: Vec::new(),
                        });
                    }
                }
                Action::DeleteCluster | Action::ReleaseCluster => {
                    self.cluster = false;
                    self.jm.state.lock().unwrap().job = None;
                }
                Action::StopWithSavepoint {
                    job_id,
                    trigger_id,
                    directory,
                } => self
                    .jm
                    .stop_with_savepoint(&ep, job_id, trigger_id, directory)
                    .await
                    .unwrap(),
                Action::TriggerSavepoint {
                    job_id,
                    trigger_id,
                    directory,
                } => self
                    .jm
                    .trigger_savepoint(&ep, job_id, trigger_id, directory)
                    .await
                    .unwrap(),
                Action::TriggerCheckpoint { job_id, trigger_id } => self
                    .jm
                    .trigger_checkpoint(
                        &ep,
                        job_id,
                        trigger_id,
                        fjord_crds::CheckpointType::Configured,
                    )
                    .await
                    .unwrap(),
                Action::CancelJob { job_id } => self.jm.cancel(&ep, job_id).await.unwrap(),
                Action::DisposeSavepoints { paths } => {
                    for p in paths {
                        self.jm.dispose_savepoint(&ep, p).await.unwrap();
                    }
                    self.status.savepoints_pending_disposal.clear();
                }
                Action::RescaleInPlace {
                    job_id,
                    trigger_id,
                    parallelism,
                } => self
                    .jm
                    .rescale(&ep, job_id, trigger_id, *parallelism)
                    .await
                    .unwrap(),
                Action::RemoveFinalizer
                | Action::RecordSnapshot(_)
                | Action::ScaleTaskManagers { .. } => {}
            }
        }
        d
    }
}

#[tokio::test]
async fn operator_restarted_mid_upgrade_continues_from_the_status() {
    let mut w = World {
        spec: base(),
        generation: 1,
        status: StreamJobStatus::default(),
        cluster: false,
        jm: FakeJobManager::default(),
        deploys: vec![],
        now: 0,
    };
    w.pass(false).await; // Created -> Deploying (apply)
    w.pass(false).await; // Deploying -> Running
    assert_eq!(w.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(w.deploys, [None]);

    // The user changes the job arguments.
    w.spec = spec_with("/job/args", json!(["--rate", "2"]));
    w.generation = 2;

    // The operator records the stop-with-savepoint and dies before sending it.
    let d = w.pass(true).await;
    let trigger = d
        .status
        .upgrade
        .as_ref()
        .unwrap()
        .savepoint_trigger_id
        .clone()
        .unwrap();
    assert!(
        w.jm.calls()
            .iter()
            .all(|c| !c.starts_with("stop_with_savepoint"))
    );

    // A new operator process: same trigger ID is sent, not a second savepoint.
    w.pass(false).await;
    let stops: Vec<String> =
        w.jm.calls()
            .into_iter()
            .filter(|c| c.starts_with("stop_with_savepoint"))
            .collect();
    assert_eq!(
        stops,
        [format!("stop_with_savepoint(job-1, {trigger}, s3://b/sp)")]
    );

    // The JobManager finishes the savepoint; the operator records it and dies before teardown.
    w.jm.complete_savepoint(&trigger, "s3://b/sp/savepoint-1");
    let d = w.pass(true).await;
    assert_eq!(
        d.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
        Some("s3://b/sp/savepoint-1")
    );
    assert!(w.cluster, "nothing torn down yet");

    // Restarted again: tears down (the old job is gone before a new one starts) ...
    w.pass(false).await;
    assert!(!w.cluster);
    assert_eq!(
        w.deploys.len(),
        1,
        "no second job while the first still runs"
    );
    // ... then deploys the new spec from the recorded savepoint, and it runs.
    w.pass(false).await;
    w.pass(false).await;
    assert_eq!(w.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(w.deploys, [None, Some("s3://b/sp/savepoint-1".to_string())]);
    assert_eq!(w.status.last_reconciled_generation, Some(2));
    assert_eq!(
        w.status
            .savepoint_history
            .iter()
            .map(|s| s.path.as_str())
            .collect::<Vec<_>>(),
        ["s3://b/sp/savepoint-1"]
    );
}

#[tokio::test]
async fn a_checkpoint_nonce_takes_one_checkpoint_recorded_in_status_and_as_a_snapshot() {
    // A nonce present when the StreamJob is created asks for nothing.
    let mut w = World {
        spec: base().tap(|s| s.job.checkpoint_trigger_nonce = Some(7)),
        generation: 1,
        status: StreamJobStatus::default(),
        cluster: false,
        jm: FakeJobManager::default(),
        deploys: vec![],
        now: 0,
    };
    w.pass(false).await;
    w.pass(false).await;
    w.pass(false).await;
    assert_eq!(w.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(w.status.last_checkpoint_trigger_nonce, Some(7));
    assert!(w.status.manual_checkpoint.is_none());
    let triggers = |w: &World| {
        w.jm.calls()
            .into_iter()
            .filter(|c| c.starts_with("trigger_checkpoint"))
            .collect::<Vec<_>>()
    };
    assert!(triggers(&w).is_empty());

    // A new nonce: recorded first; an operator that died before sending sends it on the
    // next pass under the same trigger ID.
    w.spec.job.checkpoint_trigger_nonce = Some(8);
    w.pass(true).await;
    let pending = w.status.manual_checkpoint.clone().unwrap();
    assert_eq!(pending.state, SnapshotState::InProgress);
    assert_eq!(pending.nonce, Some(8));
    assert_eq!(w.status.last_checkpoint_trigger_nonce, Some(8));
    assert!(triggers(&w).is_empty());
    let d = w.pass(false).await;
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::StopWithSavepoint { .. })),
        "a new checkpoint nonce is no upgrade: {:?}",
        d.actions
    );
    assert_eq!(
        triggers(&w),
        [format!(
            "trigger_checkpoint(job-1, {}, Configured)",
            pending.trigger_id
        )]
    );
    assert_eq!(d.requeue, Settings::default().fast_poll, "followed closely");

    w.jm.end_checkpoint(
        &pending.trigger_id,
        CheckpointStatus::Completed {
            id: 12,
            path: "s3://b/cp/job-1/chk-12".into(),
        },
    );
    let d = w.pass(false).await;
    let done = w.status.manual_checkpoint.clone().unwrap();
    assert_eq!(done.state, SnapshotState::Completed);
    assert_eq!(done.checkpoint_id, Some(12));
    assert_eq!(done.path.as_deref(), Some("s3://b/cp/job-1/chk-12"));
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::RecordSnapshot(n)
            if n.checkpoint && n.checkpoint_id == Some(12) && n.trigger_id == pending.trigger_id)),
        "{:?}",
        d.actions
    );
    assert!(d.events.iter().any(|e| e.reason == "CheckpointCompleted"));
    // Nothing more for the same nonce.
    for _ in 0..3 {
        w.pass(false).await;
    }
    assert_eq!(triggers(&w).len(), 1);

    // The next nonce fails: FAILED with the JobManager's words, a Warning, the job runs on.
    w.spec.job.checkpoint_trigger_nonce = Some(9);
    w.pass(false).await;
    let second = w.status.manual_checkpoint.clone().unwrap();
    assert_ne!(second.trigger_id, pending.trigger_id);
    w.jm.end_checkpoint(
        &second.trigger_id,
        CheckpointStatus::Failed {
            message: "task 0 declined".into(),
        },
    );
    let d = w.pass(false).await;
    let failed = w.status.manual_checkpoint.clone().unwrap();
    assert_eq!(failed.state, SnapshotState::Failed);
    assert_eq!(failed.error.as_deref(), Some("task 0 declined"));
    assert!(
        d.events
            .iter()
            .any(|e| e.warning && e.reason == "CheckpointFailed")
    );
    assert_eq!(w.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(triggers(&w).len(), 2);
}

#[tokio::test]
async fn failed_savepoint_keeps_the_old_job_running() {
    let mut w = World {
        spec: base(),
        generation: 1,
        status: StreamJobStatus::default(),
        cluster: false,
        jm: FakeJobManager::default(),
        deploys: vec![],
        now: 0,
    };
    w.pass(false).await;
    w.pass(false).await;
    w.spec = spec_with("/job/parallelism", json!(4));
    w.generation = 2;
    let d = w.pass(false).await;
    let trigger = d
        .status
        .upgrade
        .as_ref()
        .unwrap()
        .savepoint_trigger_id
        .clone()
        .unwrap();
    w.jm.fail_savepoint(&trigger, "storage unavailable");
    // The fake keeps the job running when a stop-with-savepoint fails.
    w.jm.state.lock().unwrap().job.as_mut().unwrap().state = JobState::Running;
    w.pass(false).await;
    for _ in 0..3 {
        w.pass(false).await;
    }
    assert_eq!(w.status.lifecycle_state, LifecycleState::Running);
    assert!(w.cluster);
    assert_eq!(w.deploys, [None], "never redeployed without the savepoint");
    assert_eq!(w.status.last_reconciled_generation, Some(1));
    assert!(
        w.status
            .error
            .as_deref()
            .unwrap()
            .contains("storage unavailable")
    );
    let stops =
        w.jm.calls()
            .into_iter()
            .filter(|c| c.starts_with("stop_with"))
            .count();
    assert_eq!(stops, 1, "not retried on its own");
}

#[tokio::test]
async fn suspend_and_resume_round_trip_through_a_savepoint() {
    let mut w = World {
        spec: base(),
        generation: 1,
        status: StreamJobStatus::default(),
        cluster: false,
        jm: FakeJobManager::default(),
        deploys: vec![],
        now: 0,
    };
    w.pass(false).await;
    w.pass(false).await;
    w.spec.job.state = DesiredJobState::Suspended;
    w.generation = 2;
    let d = w.pass(false).await;
    let trigger = d
        .status
        .upgrade
        .as_ref()
        .unwrap()
        .savepoint_trigger_id
        .clone()
        .unwrap();
    w.jm.complete_savepoint(&trigger, "s3://b/sp/suspend");
    w.pass(false).await; // teardown
    w.pass(false).await; // suspended
    assert_eq!(w.status.lifecycle_state, LifecycleState::Suspended);
    assert!(!w.cluster);
    w.spec.job.state = DesiredJobState::Running;
    w.generation = 3;
    w.pass(false).await;
    w.pass(false).await;
    assert_eq!(w.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(w.deploys, [None, Some("s3://b/sp/suspend".to_string())]);
}

/// A job at parallelism 1 whose autoscaler chose 3 (spec.job.parallelism stays 1).
fn autoscaled(mode: UpgradeMode) -> (StreamJobSpec, StreamJobStatus) {
    let mut written = spec_with("/job/parallelism", json!(1));
    written.job.upgrade_mode = mode;
    written.autoscaler = Some(serde_json::from_value(json!({"enabled": true})).unwrap());
    let mut status = running(&written);
    status.parallelism = Some(1);
    status.autoscaler = Some(fjord_crds::AutoscalerStatus {
        parallelism: Some(3),
        spec_parallelism: Some(1),
        ..Default::default()
    });
    let effective = crate::autoscaler::effective_spec(&written, status.autoscaler.as_ref());
    assert_eq!(effective.job.parallelism, 3);
    (effective, status)
}

fn decide_at(spec: &StreamJobSpec, status: &StreamJobStatus, observed: &Observed) -> Decision {
    let settings = Settings::default();
    decide(&Input {
        spec,
        generation: 1,
        deleting: false,
        status,
        observed,
        spec_errors: &[],
        now: t(200),
        settings: &settings,
    })
}

#[test]
fn an_autoscaler_decision_rescales_in_place_task_managers_first() {
    let (spec, status) = autoscaled(UpgradeMode::Savepoint);
    // 1. TaskManagers up first; nothing stops, nothing is deleted.
    let d = decide_at(&spec, &status, &observed(job(JobState::Running)));
    assert_eq!(d.status.lifecycle_state, LifecycleState::Upgrading);
    let upgrade = d.status.upgrade.clone().expect("recorded before acting");
    assert_eq!(upgrade.step, UpgradeStep::RescalingInPlace);
    assert_eq!(upgrade.parallelism, Some(3));
    assert_eq!(d.actions, [Action::ScaleTaskManagers { replicas: 3 }]);
    assert!(
        d.events
            .iter()
            .any(|e| e.reason == "UpgradeStarted" && e.message.contains("in place from 1 to 3"))
    );

    // 2. Until the TaskManagers are Ready the JobManager is not asked (it would refuse).
    let mut obs = observed(job(JobState::Running));
    obs.task_managers = Some(fjord_crds::TaskManagersStatus {
        desired: 3,
        ready: 2,
    });
    let d2 = decide_at(&spec, &d.status, &obs);
    assert_eq!(d2.actions, [Action::ScaleTaskManagers { replicas: 3 }]);

    // 3. Ready: the JobManager rescales the same job.
    obs.task_managers = Some(fjord_crds::TaskManagersStatus {
        desired: 3,
        ready: 3,
    });
    let d3 = decide_at(&spec, &d.status, &obs);
    let trigger = upgrade.savepoint_trigger_id.clone().unwrap();
    assert_eq!(
        d3.actions,
        [
            Action::ScaleTaskManagers { replicas: 3 },
            Action::RescaleInPlace {
                job_id: "job-1".into(),
                trigger_id: trigger.clone(),
                parallelism: 3,
            }
        ]
    );
    assert_eq!(watched_rescale(&d3.status), Some(trigger.as_str()));

    // 4. In progress: not sent again.
    obs.savepoint = Some(SavepointStatus::InProgress);
    let d4 = decide_at(&spec, &d3.status, &obs);
    assert_eq!(d4.actions, [Action::ScaleTaskManagers { replicas: 3 }]);

    // 5. Completed: the job runs at 3 without a redeploy; the cluster is applied (its
    // TaskManager count follows status.parallelism) and nothing more changes.
    obs.savepoint = Some(SavepointStatus::Completed {
        path: "s3://b/sp/rescale-1".into(),
    });
    let d5 = decide_at(&spec, &d4.status, &obs);
    assert_eq!(d5.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(d5.status.parallelism, Some(3));
    assert_eq!(d5.status.upgrade, None);
    assert_eq!(d5.actions, [Action::ApplyCluster]);
    assert!(d5.events.iter().any(|e| e.reason == "Rescaled"));
    let mut after = d5.status.clone();
    after.lifecycle_state_since = Some(time(0));
    obs.savepoint = None;
    let d6 = decide_at(&spec, &after, &obs);
    assert_eq!(d6.status.lifecycle_state, LifecycleState::Running);
    assert!(d6.status.upgrade.is_none(), "{:?}", d6.status.upgrade);
}

#[test]
fn a_failed_rescale_in_place_keeps_the_job_and_scales_back() {
    let (spec, status) = autoscaled(UpgradeMode::Savepoint);
    let d = decide_at(&spec, &status, &observed(job(JobState::Running)));
    let mut obs = observed(job(JobState::Running));
    obs.savepoint = Some(SavepointStatus::Failed {
        message: "too few slots".into(),
    });
    let d2 = decide_at(&spec, &d.status, &obs);
    assert_eq!(d2.status.lifecycle_state, LifecycleState::Running);
    assert_eq!(d2.status.parallelism, Some(1));
    assert_eq!(d2.actions, [Action::ApplyCluster]);
    assert!(d2.status.failed_upgrade.is_some());
}

#[test]
fn rescales_not_from_the_autoscaler_or_stateless_redeploy_as_before() {
    // Stateless: the autoscaler's choice is deployed anew (no state to carry).
    let (spec, status) = autoscaled(UpgradeMode::Stateless);
    let d = decide_at(&spec, &status, &observed(job(JobState::Running)));
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::CancelJob { .. })),
        "{:?}",
        d.actions
    );
    // A parallelism written in the spec: stop with a savepoint and redeploy.
    let written = spec_with("/job/parallelism", json!(4));
    let d = decide_at(
        &written,
        &running(&base()),
        &observed(job(JobState::Running)),
    );
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, Action::StopWithSavepoint { .. })),
        "{:?}",
        d.actions
    );
}
