use super::*;
use fjord_client::api::JobState as S;

fn spec(yaml: &str) -> SessionJobSpec {
    serde_yaml::from_str(yaml).unwrap()
}

fn counting() -> SessionJobSpec {
    spec("name: counting\nargs: [--keys, '4']\nparallelism: 1\n")
}

/// Runs `decide` for a live job (not deleting).
fn step(
    spec: &SessionJobSpec,
    status: &StreamSessionJobStatus,
    observed: Observed,
) -> (StreamSessionJobStatus, SessionAction) {
    decide("uid-1", spec, false, false, status, &observed)
}

#[test]
fn the_first_submission_restores_the_initial_savepoint_and_gets_its_own_job_id() {
    let mut s = counting();
    s.initial_savepoint_path = Some("s3://b/sp-1".into());
    let (status, action) = step(&s, &Default::default(), Observed::NoJob);
    let id = submission_job_id("uid-1", 1);
    assert_eq!(
        action,
        SessionAction::Submit {
            job_id: id.clone(),
            restore_path: Some("s3://b/sp-1".into())
        }
    );
    assert_eq!(status.job_id.as_deref(), Some(id.as_str()));
    assert_eq!(status.deployed_spec.as_ref(), Some(&s));
    assert_eq!(status.lifecycle_state.as_deref(), Some("Submitted"));
    // Once RUNNING it stays put.
    let (running, action) = step(&s, &status, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
    assert_eq!(running.lifecycle_state.as_deref(), Some("Running"));
    assert_eq!(running.job_state.as_deref(), Some("RUNNING"));
}

#[test]
fn a_savepoint_upgrade_stops_with_a_savepoint_then_submits_a_new_job_from_it() {
    let old = counting();
    let (status, _) = step(&old, &Default::default(), Observed::NoJob);
    let first = status.job_id.clone().unwrap();
    let mut new = old.clone();
    new.args.push("--rate".into());
    new.args.push("50".into());
    // The stop is recorded in the status with the action that starts it.
    let (stopping, action) = step(&new, &status, Observed::Job(S::Running));
    let trigger = "stop-1-upgrade".to_string();
    assert_eq!(
        action,
        SessionAction::StopWithSavepoint {
            job_id: first.clone(),
            trigger_id: trigger.clone()
        }
    );
    assert_eq!(
        stopping.stopping.as_ref().unwrap().reason,
        StopReason::Upgrade
    );
    // While the job runs, the savepoint is polled.
    let (still, action) = step(&new, &stopping, Observed::Job(S::Running));
    assert!(matches!(action, SessionAction::PollSavepoint { .. }));
    // The poll recorded the path; the job finished: a new job from the savepoint.
    let mut done = still.clone();
    done.restore_path = Some("s3://b/sp-2".into());
    let (next, action) = step(&new, &done, Observed::Job(S::Finished));
    let second = submission_job_id("uid-1", 2);
    assert_ne!(first, second);
    assert_eq!(
        action,
        SessionAction::Submit {
            job_id: second,
            restore_path: Some("s3://b/sp-2".into())
        }
    );
    assert_eq!(next.restored_from.as_deref(), Some("s3://b/sp-2"));
    assert_eq!(next.stopping, None);
    assert_eq!(next.deployed_spec.as_ref(), Some(&new));
}

#[test]
fn a_finished_stop_without_its_savepoint_path_polls_before_anything_else() {
    let s = counting();
    let (status, _) = step(&s, &Default::default(), Observed::NoJob);
    let mut suspended = s.clone();
    suspended.state = DesiredJobState::Suspended;
    let (stopping, _) = step(&suspended, &status, Observed::Job(S::Running));
    let (_, action) = step(&suspended, &stopping, Observed::Job(S::Finished));
    assert!(
        matches!(action, SessionAction::PollSavepoint { .. }),
        "{action:?}"
    );
}

#[test]
fn suspend_and_resume_keep_the_state_through_the_savepoint() {
    let s = counting();
    let (status, _) = step(&s, &Default::default(), Observed::NoJob);
    let mut suspended = s.clone();
    suspended.state = DesiredJobState::Suspended;
    let (mut stopping, action) = step(&suspended, &status, Observed::Job(S::Running));
    assert!(matches!(action, SessionAction::StopWithSavepoint { .. }));
    stopping.restore_path = Some("s3://b/sp".into());
    let (parked, action) = step(&suspended, &stopping, Observed::Job(S::Finished));
    assert_eq!(action, SessionAction::Wait);
    assert_eq!(parked.lifecycle_state.as_deref(), Some("Suspended"));
    // Back to running: resubmitted from the savepoint (state is not a deployment change).
    let (_, action) = step(&s, &parked, Observed::Job(S::Finished));
    assert!(
        matches!(&action, SessionAction::Submit { restore_path: Some(p), .. } if p == "s3://b/sp"),
        "{action:?}"
    );
}

#[test]
fn stateless_and_last_state_cancel_and_last_state_keeps_the_checkpoint() {
    for (mode, keep) in [
        (UpgradeMode::Stateless, false),
        (UpgradeMode::LastState, true),
    ] {
        let mut s = counting();
        s.upgrade_mode = mode;
        let (status, _) = step(&s, &Default::default(), Observed::NoJob);
        let mut changed = s.clone();
        changed.parallelism = 2;
        let (stopping, action) = step(&changed, &status, Observed::Job(S::Running));
        assert_eq!(
            action,
            SessionAction::Cancel {
                job_id: status.job_id.clone().unwrap(),
                keep_checkpoint: keep
            }
        );
        let mut cancelled = stopping.clone();
        cancelled.restore_path = keep.then(|| "s3://b/chk-7".to_string());
        let (_, action) = step(&changed, &cancelled, Observed::Job(S::Canceled));
        let SessionAction::Submit { restore_path, .. } = action else {
            panic!("{action:?}")
        };
        assert_eq!(restore_path.is_some(), keep, "{mode:?}");
    }
}

#[test]
fn a_job_that_ended_on_its_own_is_reported_not_resubmitted() {
    let s = counting();
    let (status, _) = step(&s, &Default::default(), Observed::NoJob);
    let (failed, action) = step(&s, &status, Observed::Job(S::Failed));
    assert_eq!(action, SessionAction::Wait);
    assert_eq!(failed.lifecycle_state.as_deref(), Some("Failed"));
    let (finished, _) = step(&s, &status, Observed::Job(S::Finished));
    assert_eq!(finished.lifecycle_state.as_deref(), Some("Finished"));
}

#[test]
fn a_job_the_jobmanager_lost_is_submitted_again_under_its_id() {
    let s = counting();
    let (status, _) = step(&s, &Default::default(), Observed::NoJob);
    let (_, action) = step(&s, &status, Observed::Lost);
    assert_eq!(
        action,
        SessionAction::Submit {
            job_id: status.job_id.clone().unwrap(),
            restore_path: None
        }
    );
}

#[test]
fn deletion_cancels_or_stops_with_a_savepoint_then_releases() {
    let s = counting();
    let (status, _) = step(&s, &Default::default(), Observed::NoJob);
    let id = status.job_id.clone().unwrap();
    let (_, action) = decide(
        "uid-1",
        &s,
        true,
        false,
        &status,
        &Observed::Job(S::Running),
    );
    assert_eq!(
        action,
        SessionAction::Cancel {
            job_id: id.clone(),
            keep_checkpoint: false
        }
    );
    let (stopping, action) = decide("uid-1", &s, true, true, &status, &Observed::Job(S::Running));
    assert!(matches!(action, SessionAction::StopWithSavepoint { .. }));
    let mut saved = stopping.clone();
    saved.restore_path = Some("s3://b/sp".into());
    let (_, action) = decide("uid-1", &s, true, true, &saved, &Observed::Job(S::Finished));
    assert_eq!(action, SessionAction::Release);
    // A cluster that is gone has nothing left to stop.
    let (_, action) = decide(
        "uid-1",
        &s,
        true,
        false,
        &stopping,
        &Observed::Unreachable("gone".into()),
    );
    assert_eq!(action, SessionAction::Release);
}

#[test]
fn a_cluster_is_built_in_session_mode_owned_by_the_streamcluster() {
    let cluster: StreamCluster = serde_yaml::from_str(
        "apiVersion: fjord.dev/v1alpha1\nkind: StreamCluster\nmetadata: {name: shared, namespace: ns, uid: u-1}\n\
         spec:\n  image: fjord/fjord:test\n  taskManager: {replicas: 2, slots: 3}\n  \
         checkpointing: {storage: 's3://b/chk'}\n",
    )
    .unwrap();
    let d = cluster_desired(&cluster).unwrap();
    let config = &d.config_map.data.as_ref().unwrap()[resources::CONFIG_FILE];
    assert!(
        config.contains("\"jobmanager.mode\": \"session\""),
        "{config}"
    );
    assert!(config.contains("\"taskmanager.slots\": \"3\""), "{config}");
    assert!(
        config.contains("\"savepoints.directory\": \"s3://b/chk/savepoints\""),
        "{config}"
    );
    assert!(!config.contains("job.name"), "{config}");
    assert_eq!(d.taskmanager.spec.as_ref().unwrap().replicas, Some(2));
    for owners in [
        &d.config_map.metadata.owner_references,
        &d.jobmanager.metadata.owner_references,
        &d.taskmanager.metadata.owner_references,
        &d.jobmanager_service.metadata.owner_references,
    ] {
        let owner = &owners.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("StreamCluster", "shared")
        );
    }
    // Pods meet Pod Security restricted, as a StreamJob's do.
    let pod = d
        .jobmanager
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
}

#[test]
fn a_job_lost_mid_stop_is_submitted_again_under_its_id_before_it_is_stopped() {
    let s = counting();
    let (status, _) = step(&s, &Default::default(), Observed::NoJob);
    let id = status.job_id.clone().unwrap();
    let mut suspended = s.clone();
    suspended.state = DesiredJobState::Suspended;
    let (stopping, _) = step(&suspended, &status, Observed::Job(S::Running));
    // The JobManager restarted before the savepoint completed: no savepoint path, so the
    // job comes back under its ID (from its checkpoints) instead of being dropped.
    let (back, action) = step(&suspended, &stopping, Observed::Lost);
    assert_eq!(
        action,
        SessionAction::Submit {
            job_id: id.clone(),
            restore_path: None
        }
    );
    assert_eq!(back.stopping, None);
    // Once it runs, the suspend starts again.
    let (_, action) = step(&suspended, &back, Observed::Job(S::Running));
    assert!(
        matches!(action, SessionAction::StopWithSavepoint { .. }),
        "{action:?}"
    );
}

/// The status of `spec`'s first job, RUNNING.
fn running(spec: &SessionJobSpec) -> StreamSessionJobStatus {
    let (submitted, _) = step(spec, &Default::default(), Observed::NoJob);
    let (running, action) = step(spec, &submitted, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
    running
}

#[test]
fn trigger_nonces_present_before_the_first_submission_take_no_snapshot() {
    let mut s = counting();
    s.savepoint_trigger_nonce = Some(3);
    s.checkpoint_trigger_nonce = Some(4);
    // The first submission records them as seen ...
    let (mut submitted, action) = step(&s, &Default::default(), Observed::NoJob);
    assert!(matches!(action, SessionAction::Submit { .. }), "{action:?}");
    assert_eq!(submitted.last_savepoint_trigger_nonce, Some(3));
    assert_eq!(submitted.last_checkpoint_trigger_nonce, Some(4));
    assert_eq!(
        nonce_snapshots("counts-a", &s, &mut submitted, now()),
        vec![]
    );
    // ... so they ask for nothing once the job runs either.
    let (mut running, _) = step(&s, &submitted, Observed::Job(S::Running));
    assert_eq!(nonce_snapshots("counts-a", &s, &mut running, now()), vec![]);
    // A later submission (an upgrade) does not adopt a changed nonce: it is a request.
    let mut changed = s.clone();
    changed.savepoint_trigger_nonce = Some(5);
    changed.args.push("--rate".into());
    let mut stopped = running.clone();
    stopped.stopped = true;
    let (mut second, action) = step(&changed, &stopped, Observed::Job(S::Finished));
    assert!(matches!(action, SessionAction::Submit { .. }), "{action:?}");
    assert_eq!(second.last_savepoint_trigger_nonce, Some(3));
    let (mut runs, _) = step(&changed, &second, Observed::Job(S::Running));
    assert_eq!(
        nonce_snapshots("counts-a", &changed, &mut second, now()),
        vec![]
    );
    assert_eq!(
        nonce_snapshots("counts-a", &changed, &mut runs, now()).len(),
        1
    );
}

#[test]
fn a_changed_savepoint_nonce_asks_for_one_snapshot_of_the_running_job() {
    let old = counting();
    let mut status = running(&old);
    let mut new = old.clone();
    new.savepoint_trigger_nonce = Some(2);
    // A nonce is not a new deployment: the job keeps running.
    let (mut next, action) = step(&new, &status, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
    let asked = nonce_snapshots("counts-a", &new, &mut next, now());
    let job: String = status.job_id.clone().unwrap().chars().take(8).collect();
    let name = format!("counts-a-savepoint-2-{job}");
    assert_eq!(
        asked,
        vec![SnapshotRequest {
            name: name.clone(),
            checkpoint: false,
            trigger: SavepointTrigger::Manual
        }]
    );
    assert_eq!(next.last_savepoint_trigger_nonce, Some(2));
    assert_eq!(next.last_triggered_snapshot, Some(name));
    // Asked once only.
    assert_eq!(nonce_snapshots("counts-a", &new, &mut next, now()), vec![]);
    // The same for a checkpoint, and a negative nonce still makes a valid name.
    new.checkpoint_trigger_nonce = Some(-7);
    status = next;
    let asked = nonce_snapshots("counts-a", &new, &mut status, now());
    assert_eq!(
        asked,
        vec![SnapshotRequest {
            name: format!("counts-a-checkpoint-m7-{job}"),
            checkpoint: true,
            trigger: SavepointTrigger::Manual
        }]
    );
    assert_eq!(status.last_checkpoint_trigger_nonce, Some(-7));
    // The same nonces on a StreamSessionJob of the same name created again (another UID, so
    // other job IDs) name other snapshots.
    let (again, _) = decide(
        "uid-2",
        &old,
        false,
        false,
        &Default::default(),
        &Observed::NoJob,
    );
    let (mut again, _) = decide(
        "uid-2",
        &new,
        false,
        false,
        &again,
        &Observed::Job(S::Running),
    );
    again.last_checkpoint_trigger_nonce = None;
    let renamed = nonce_snapshots("counts-a", &new, &mut again, now());
    assert_eq!(renamed.len(), 2, "{renamed:?}");
    assert!(
        renamed.iter().all(|r| !r.name.ends_with(&job)),
        "{renamed:?}"
    );
}

#[test]
fn a_changed_nonce_waits_until_the_job_runs() {
    let s = counting();
    let (submitted, _) = step(&s, &Default::default(), Observed::NoJob);
    let mut new = s.clone();
    new.savepoint_trigger_nonce = Some(1);
    // Submitted but not RUNNING yet: nothing asked, nothing recorded.
    let (mut created, _) = step(&new, &submitted, Observed::Job(S::Created));
    assert_eq!(
        nonce_snapshots("counts-a", &new, &mut created, now()),
        vec![]
    );
    assert_eq!(created.last_savepoint_trigger_nonce, None);
    let (mut runs, _) = step(&new, &created, Observed::Job(S::Running));
    assert_eq!(nonce_snapshots("counts-a", &new, &mut runs, now()).len(), 1);
}

#[test]
fn the_first_restore_point_is_read_once_and_changing_it_redeploys_nothing() {
    let s = counting();
    let status = running(&s);
    let mut new = s.clone();
    new.initial_savepoint_snapshot = Some("counts-a-savepoint-2".into());
    let (_, action) = step(&new, &status, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
    new.initial_savepoint_path = Some("s3://b/sp-9".into());
    let (_, action) = step(&new, &status, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
}

#[test]
fn stop_savepoints_are_recorded_as_upgrade_or_delete_snapshots_named_per_job() {
    let stop = |job_id: &str, reason| SessionJobStop {
        job_id: job_id.into(),
        reason,
        trigger_id: Some("stop-1-upgrade".into()),
    };
    let upgrade = stop_note(
        &stop("0a1b2c3d4e5f", StopReason::Upgrade),
        Some("s3://b/sp-1".into()),
        None,
    );
    assert_eq!(upgrade.trigger, SavepointTrigger::Upgrade);
    assert_eq!(upgrade.trigger_id, "stop-1-upgrade");
    assert_eq!(upgrade.job_id.as_deref(), Some("0a1b2c3d4e5f"));
    assert_eq!(upgrade.path.as_deref(), Some("s3://b/sp-1"));
    assert!(!upgrade.checkpoint);
    let suspend = stop_note(&stop("x", StopReason::Suspend), None, Some("no".into()));
    assert_eq!(suspend.trigger, SavepointTrigger::Upgrade);
    assert_eq!(suspend.error.as_deref(), Some("no"));
    let delete = stop_note(&stop("x", StopReason::Delete), Some("p".into()), None);
    assert_eq!(delete.trigger, SavepointTrigger::Delete);
    // Two StreamSessionJobs of the same name, one after the other, record apart.
    let first = stop_snapshot_name("counts-a", &stop("0a1b2c3d4e5f", StopReason::Upgrade));
    let second = stop_snapshot_name("counts-a", &stop("9f8e7d6c5b4a", StopReason::Upgrade));
    assert_eq!(first, "counts-a-stop-1-upgrade-0a1b2c3d");
    assert_ne!(first, second);
}

/// A fixed "now" for the snapshot tests.
fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// `now()` plus `secs` (negative: before).
fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + secs).unwrap()
}

/// A session job with periodic savepoints every hour.
fn hourly() -> StreamSessionJobSpec {
    serde_yaml::from_str(
        "clusterName: shared\njob: {name: counting, parallelism: 1}\nsavepoints: {periodicInterval: 1h}\n",
    )
    .unwrap()
}

/// The status of `spec`'s first job, RUNNING since `now()`.
fn running_since_now(spec: &StreamSessionJobSpec) -> StreamSessionJobStatus {
    let mut s = running(&spec.job);
    s.job_start_time = Some(Time(now()));
    s
}

#[test]
fn a_periodic_savepoint_is_asked_for_once_its_interval_passed() {
    let spec = hourly();
    assert_eq!(
        spec.periodic_savepoint_interval(),
        Some(Duration::from_secs(3600))
    );
    let mut status = running_since_now(&spec);
    let job: String = status.job_id.clone().unwrap().chars().take(8).collect();
    let later = at(3600);
    let asked = snapshot_requests("counts-a", &spec, &mut status, later);
    let name = format!("counts-a-periodic-{}-{job}", later.as_millisecond());
    assert_eq!(
        asked,
        vec![SnapshotRequest {
            name: name.clone(),
            checkpoint: false,
            trigger: SavepointTrigger::Periodic
        }]
    );
    // Recorded before the snapshot is created: in flight, and the attempt's time.
    let pending = status.pending_savepoint.clone().unwrap();
    assert_eq!(pending.trigger, SavepointTrigger::Periodic);
    assert_eq!(pending.trigger_id, name);
    assert_eq!(pending.nonce, None);
    assert_eq!(status.last_periodic_savepoint_attempt, Some(Time(later)));
    assert_eq!(
        status.last_triggered_snapshot.as_deref(),
        Some(name.as_str())
    );
}

#[test]
fn no_periodic_savepoint_before_the_interval_or_without_one() {
    let spec = hourly();
    let mut status = running_since_now(&spec);
    let before = status.clone();
    assert_eq!(
        periodic_savepoint(
            "counts-a",
            spec.periodic_savepoint_interval(),
            &mut status,
            at(3599)
        ),
        None
    );
    assert_eq!(status, before);
    // Without spec.savepoints.periodicInterval: never.
    assert_eq!(
        periodic_savepoint("counts-a", None, &mut status, at(86_400)),
        None
    );
    // A job that is not running (submitted, not RUNNING yet): not yet.
    let (mut submitted, _) = step(&spec.job, &Default::default(), Observed::NoJob);
    assert_eq!(
        periodic_savepoint(
            "counts-a",
            spec.periodic_savepoint_interval(),
            &mut submitted,
            at(86_400)
        ),
        None
    );
    // The last attempt counts too: the next one waits a full interval after it.
    let mut attempted = running_since_now(&spec);
    attempted.last_periodic_savepoint_attempt = Some(Time(at(3600)));
    assert_eq!(
        periodic_savepoint(
            "counts-a",
            spec.periodic_savepoint_interval(),
            &mut attempted,
            at(7199)
        ),
        None
    );
    assert!(
        periodic_savepoint(
            "counts-a",
            spec.periodic_savepoint_interval(),
            &mut attempted,
            at(7200)
        )
        .is_some()
    );
}

#[test]
fn one_savepoint_at_a_time() {
    let spec = hourly();
    let interval = spec.periodic_savepoint_interval();
    // A manual savepoint in flight: no periodic one.
    let mut status = running_since_now(&spec);
    status.pending_savepoint = Some(PendingSavepoint {
        trigger_id: "counts-a-savepoint-1-abcdefgh".into(),
        trigger: SavepointTrigger::Manual,
        nonce: Some(1),
        started_at: Time(at(3000)),
    });
    assert_eq!(
        periodic_savepoint("counts-a", interval, &mut status, at(3600)),
        None
    );
    // A periodic one in flight: a changed savepoint nonce waits for it (a checkpoint nonce
    // does not: the JobManager queues one behind the other).
    let mut job = spec.job.clone();
    job.savepoint_trigger_nonce = Some(2);
    job.checkpoint_trigger_nonce = Some(3);
    let mut periodic = running_since_now(&spec);
    assert!(periodic_savepoint("counts-a", interval, &mut periodic, at(3600)).is_some());
    let asked = nonce_snapshots("counts-a", &job, &mut periodic, at(3601));
    assert_eq!(asked.len(), 1);
    assert!(asked[0].checkpoint, "{asked:?}");
    assert_eq!(periodic.last_savepoint_trigger_nonce, None);
    // Both due at once: the manual one goes first, the periodic one waits.
    let mut both = running_since_now(&spec);
    let mut with_nonce = spec.clone();
    with_nonce.job.savepoint_trigger_nonce = Some(2);
    let asked = snapshot_requests("counts-a", &with_nonce, &mut both, at(3600));
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].trigger, SavepointTrigger::Manual);
    assert_eq!(both.last_periodic_savepoint_attempt, None);
    // An upgrade's (or suspend's) stop-with-savepoint in flight: no periodic one either.
    let mut changed = spec.job.clone();
    changed.parallelism = 2;
    let plain = running_since_now(&spec);
    let (mut stopping, action) = step(&changed, &plain, Observed::Job(S::Running));
    assert!(
        matches!(action, SessionAction::StopWithSavepoint { .. }),
        "{action:?}"
    );
    assert_eq!(
        periodic_savepoint("counts-a", interval, &mut stopping, at(7200)),
        None
    );
    // And an upgrade waits for the manual or periodic savepoint in flight.
    let (held, action) = step(&changed, &status, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
    assert_eq!(held.stopping, None);
    let mut suspended = spec.job.clone();
    suspended.state = DesiredJobState::Suspended;
    let (_, action) = step(&suspended, &status, Observed::Job(S::Running));
    assert_eq!(action, SessionAction::Wait);
    // Deletion does not wait.
    let (_, action) = decide(
        "uid-1",
        &spec.job,
        true,
        true,
        &status,
        &Observed::Job(S::Running),
    );
    assert!(
        matches!(action, SessionAction::StopWithSavepoint { .. }),
        "{action:?}"
    );
}

#[test]
fn a_completed_periodic_savepoint_is_recorded_and_the_next_may_follow() {
    let spec = hourly();
    let interval = spec.periodic_savepoint_interval();
    let mut status = running_since_now(&spec);
    let request = periodic_savepoint("counts-a", interval, &mut status, at(3600)).unwrap();
    // Still being taken: nothing changes.
    let before = status.clone();
    let (events, again) = follow_snapshots(&mut status, &Seen::Taking, &Seen::Missing, at(3610));
    assert!(events.is_empty() && again.is_empty());
    assert_eq!(status, before);
    // Completed: the last savepoint, with an Event as a StreamJob's.
    let done = Seen::Completed {
        path: "s3://b/sp/savepoint-7".into(),
        checkpoint_id: None,
    };
    let (events, again) = follow_snapshots(&mut status, &done, &Seen::Missing, at(3620));
    assert!(again.is_empty());
    assert_eq!(status.pending_savepoint, None);
    assert_eq!(
        status.last_savepoint.as_deref(),
        Some("s3://b/sp/savepoint-7")
    );
    assert_eq!(
        events,
        vec![EventNote::normal(
            "SavepointCompleted",
            "periodic savepoint completed: s3://b/sp/savepoint-7".into()
        )]
    );
    // It is not a stop's savepoint: no lifecycle Event for it, and no restore point.
    assert!(events::lifecycle_events(&before, &status, "shared").is_empty());
    assert_eq!(status.restore_path, None);
    // The next one an interval after the attempt.
    assert_eq!(
        periodic_savepoint("counts-a", interval, &mut status, at(7199)),
        None
    );
    let next = periodic_savepoint("counts-a", interval, &mut status, at(7200)).unwrap();
    assert_ne!(next.name, request.name);
}

#[test]
fn a_failed_missing_or_overdue_periodic_savepoint() {
    let spec = hourly();
    let interval = spec.periodic_savepoint_interval();
    let mut status = running_since_now(&spec);
    let request = periodic_savepoint("counts-a", interval, &mut status, at(3600)).unwrap();
    // Named in the status but not created (the operator stopped in between): created again.
    let mut missing = status.clone();
    let (events, again) = follow_snapshots(&mut missing, &Seen::Missing, &Seen::Missing, at(3605));
    assert!(events.is_empty());
    assert_eq!(again, vec![request.clone()]);
    assert!(missing.pending_savepoint.is_some());
    // Failed: a Warning, and the next one waits a full interval after the attempt.
    let mut failed = status.clone();
    let (events, _) = follow_snapshots(
        &mut failed,
        &Seen::Failed("no space left".into()),
        &Seen::Missing,
        at(3610),
    );
    assert_eq!(failed.pending_savepoint, None);
    assert_eq!(events.len(), 1);
    assert!(events[0].warning && events[0].reason == "SavepointFailed");
    assert!(events[0].message.contains("periodic") && events[0].message.contains("no space left"));
    assert_eq!(
        periodic_savepoint("counts-a", interval, &mut failed, at(3700)),
        None
    );
    // Never seen to end: given up after FOLLOW_LIMIT.
    let mut stuck = status.clone();
    let late = at(3600 + FOLLOW_LIMIT.as_secs() as i64 + 1);
    let (events, again) = follow_snapshots(&mut stuck, &Seen::Taking, &Seen::Missing, late);
    assert!(again.is_empty());
    assert_eq!(stuck.pending_savepoint, None);
    assert_eq!(events[0].reason, "SavepointTimedOut");
}

#[test]
fn a_manual_checkpoint_is_reported_in_status_manual_checkpoint() {
    let s = counting();
    let mut status = running(&s);
    let mut new = s.clone();
    new.checkpoint_trigger_nonce = Some(4);
    let asked = nonce_snapshots("counts-a", &new, &mut status, now());
    assert_eq!(asked.len(), 1);
    let c = status.manual_checkpoint.clone().unwrap();
    assert_eq!(c.state, SnapshotState::InProgress);
    assert_eq!(c.nonce, Some(4));
    assert_eq!(c.trigger_id, asked[0].name);
    assert_eq!(c.triggered_at, Time(now()));
    // Another nonce waits for it.
    new.checkpoint_trigger_nonce = Some(5);
    assert_eq!(
        nonce_snapshots("counts-a", &new, &mut status, now()),
        vec![]
    );
    let done = Seen::Completed {
        path: "s3://b/chk/job/chk-9".into(),
        checkpoint_id: Some(9),
    };
    let (events, _) = follow_snapshots(&mut status, &Seen::Missing, &done, at(5));
    let c = status.manual_checkpoint.clone().unwrap();
    assert_eq!(c.state, SnapshotState::Completed);
    assert_eq!(c.checkpoint_id, Some(9));
    assert_eq!(c.path.as_deref(), Some("s3://b/chk/job/chk-9"));
    assert_eq!(c.result_at, Some(Time(at(5))));
    assert_eq!(events[0].reason, "CheckpointCompleted");
    // Done: the waiting nonce is asked for now.
    assert_eq!(
        nonce_snapshots("counts-a", &new, &mut status, at(6)).len(),
        1
    );
    // A failed one keeps its reason.
    let (events, _) = follow_snapshots(
        &mut status,
        &Seen::Missing,
        &Seen::Failed("refused".into()),
        at(7),
    );
    let c = status.manual_checkpoint.clone().unwrap();
    assert_eq!(c.state, SnapshotState::Failed);
    assert_eq!(c.error.as_deref(), Some("refused"));
    assert_eq!(events[0].reason, "CheckpointFailed");
}

#[test]
fn what_a_snapshot_says() {
    assert_eq!(Seen::of(None), Seen::Missing);
    let mut snapshot: StreamJobSnapshot = serde_yaml::from_str(
        "apiVersion: fjord.dev/v1alpha1\nkind: StreamJobSnapshot\nmetadata: {name: s, namespace: ns}\n\
         spec: {jobReference: {kind: StreamSessionJob, name: counts-a}}\n",
    )
    .unwrap();
    assert_eq!(Seen::of(Some(&snapshot)), Seen::Taking);
    snapshot.status = Some(fjord_crds::StreamJobSnapshotStatus {
        state: Some(SnapshotState::Completed),
        path: Some("s3://b/sp".into()),
        ..Default::default()
    });
    assert_eq!(
        Seen::of(Some(&snapshot)),
        Seen::Completed {
            path: "s3://b/sp".into(),
            checkpoint_id: None
        }
    );
}
