//! The Events of a StreamSessionJob's lifecycle, as a StreamJob has them: derived from the
//! status before and after a pass (one per lifecycle step: submitted, running, stopping,
//! suspended, finished, a savepoint taken, the job lost and submitted again), plus the
//! Warnings a pass reports where it learns the cause (see [`Cause`]). Pure: the controller
//! publishes what these return, and the publisher folds repeats of one reason and note.

use crate::lifecycle::EventNote;
use fjord_crds::{StopReason, StreamSessionJobStatus};

/// A problem a pass met, with the reason its Warning carries. Every one of them leaves its
/// message in `status.error` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The StreamCluster named by spec.clusterName does not exist (or is being deleted).
    ClusterNotFound,
    /// The StreamCluster's JobManager does not answer.
    ClusterUnreachable,
    /// The session has too few free slots for the job's parallelism.
    NotEnoughSlots,
    /// The JobManager refused the submission (an unknown job, bad arguments, a restore path
    /// it cannot read).
    SubmitFailed,
    /// spec.job.sql does not plan; nothing was submitted.
    InvalidSql,
    /// A stop-with-savepoint failed; the job keeps running.
    SavepointFailed,
    /// The job failed on its own (its restart strategy gave up).
    JobFailed,
    /// A JobManager call of this pass failed (it is retried).
    JobManagerActionFailed,
    /// spec.job.initialSavepointSnapshot names a snapshot that is missing, not COMPLETED yet
    /// or FAILED; nothing is submitted until it is COMPLETED.
    InitialSnapshotNotReady,
}

impl Cause {
    /// The Event reason.
    pub fn reason(self) -> &'static str {
        match self {
            Cause::ClusterNotFound => "ClusterNotFound",
            Cause::ClusterUnreachable => "ClusterUnreachable",
            Cause::NotEnoughSlots => "NotEnoughSlots",
            Cause::SubmitFailed => "SubmitFailed",
            Cause::InvalidSql => "InvalidSql",
            Cause::SavepointFailed => "SavepointFailed",
            Cause::JobFailed => "JobFailed",
            Cause::JobManagerActionFailed => "JobManagerActionFailed",
            Cause::InitialSnapshotNotReady => "InitialSnapshotNotReady",
        }
    }

    /// The Warning for this cause with `message`.
    pub fn event(self, message: &str) -> EventNote {
        EventNote::warning(self.reason(), message.to_string())
    }
}

fn stop_reason(reason: StopReason) -> (&'static str, &'static str) {
    match reason {
        StopReason::Upgrade => ("UpgradeStarted", "the spec changed"),
        StopReason::Suspend => ("Suspending", "spec.job.state is suspended"),
        StopReason::Delete => ("Deleting", "the StreamSessionJob is being deleted"),
    }
}

/// The Normal Events of the step from `old` to `new` (the status this pass wrote last) on
/// StreamCluster `cluster`.
pub fn lifecycle_events(
    old: &StreamSessionJobStatus,
    new: &StreamSessionJobStatus,
    cluster: &str,
) -> Vec<EventNote> {
    let mut out = Vec::new();
    let job = new.job_id.as_deref().unwrap_or("(none)");
    if new.submissions > old.submissions {
        let from = match &new.restored_from {
            Some(path) => format!(", restoring from {path}"),
            None => ", without state".into(),
        };
        out.push(EventNote::normal(
            "Submitted",
            format!(
                "job {job} (submission {}) submitted to StreamCluster {cluster}{from}",
                new.submissions
            ),
        ));
    } else if old.lifecycle_state.as_deref() != Some("Submitted")
        && new.lifecycle_state.as_deref() == Some("Submitted")
        && old.job_id.is_some()
        && old.job_id == new.job_id
    {
        out.push(EventNote::warning(
            "JobLost",
            format!(
                "the JobManager of StreamCluster {cluster} no longer knows job {job} (its Pod \
                 restarted); submitted again under the same ID, resuming from its latest \
                 checkpoint"
            ),
        ));
    }
    if let Some(stop) = &new.stopping
        && old.stopping.as_ref().map(|s| &s.job_id) != Some(&stop.job_id)
    {
        let (reason, why) = stop_reason(stop.reason);
        let how = if stop.trigger_id.is_some() {
            "stopping it with a savepoint"
        } else {
            "cancelling it"
        };
        out.push(EventNote::normal(
            reason,
            format!("{why}: {how} (job {})", stop.job_id),
        ));
    }
    // A stop's savepoint (the next job's restore point); a manual or periodic one has its
    // Event where it is followed (`follow_snapshots`).
    if new.last_savepoint.is_some()
        && new.last_savepoint != old.last_savepoint
        && new.restore_path == new.last_savepoint
    {
        out.push(EventNote::normal(
            "SavepointCompleted",
            format!(
                "job {job} stopped with savepoint {}",
                new.last_savepoint.as_deref().unwrap_or_default()
            ),
        ));
    }
    if new.lifecycle_state != old.lifecycle_state {
        match new.lifecycle_state.as_deref() {
            Some("Running") => out.push(EventNote::normal(
                "Running",
                format!("job {job} runs on StreamCluster {cluster}"),
            )),
            Some("Suspended") => out.push(EventNote::normal(
                "Suspended",
                match &new.restore_path {
                    Some(path) => format!("job {job} stopped; it resumes from {path}"),
                    None => format!("job {job} stopped"),
                },
            )),
            Some("Finished") => {
                out.push(EventNote::normal("Finished", format!("job {job} finished")))
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_crds::SessionJobStop;

    fn status(state: &str, job: &str, submissions: i64) -> StreamSessionJobStatus {
        StreamSessionJobStatus {
            lifecycle_state: Some(state.into()),
            job_id: Some(job.into()),
            submissions,
            ..Default::default()
        }
    }

    fn reasons(events: &[EventNote]) -> Vec<&'static str> {
        events.iter().map(|e| e.reason).collect()
    }

    #[test]
    fn one_event_per_lifecycle_step() {
        let none = StreamSessionJobStatus::default();
        let submitted = status("Submitted", "j1", 1);
        assert_eq!(
            reasons(&lifecycle_events(&none, &submitted, "shared")),
            ["Submitted"]
        );
        let running = status("Running", "j1", 1);
        let events = lifecycle_events(&submitted, &running, "shared");
        assert_eq!(reasons(&events), ["Running"]);
        assert!(events[0].message.contains("j1") && events[0].message.contains("shared"));
        // Nothing changed: nothing to say.
        assert!(lifecycle_events(&running, &running, "shared").is_empty());

        let mut stopping = status("Stopping", "j1", 1);
        stopping.stopping = Some(SessionJobStop {
            job_id: "j1".into(),
            reason: StopReason::Upgrade,
            trigger_id: Some("stop-1-upgrade".into()),
        });
        let events = lifecycle_events(&running, &stopping, "shared");
        assert_eq!(reasons(&events), ["UpgradeStarted"]);
        assert!(events[0].message.contains("savepoint"), "{events:?}");

        let mut saved = stopping.clone();
        saved.last_savepoint = Some("s3://b/sp-1".into());
        saved.restore_path = Some("s3://b/sp-1".into());
        assert_eq!(
            reasons(&lifecycle_events(&stopping, &saved, "shared")),
            ["SavepointCompleted"]
        );
        let mut upgraded = status("Submitted", "j2", 2);
        upgraded.restored_from = Some("s3://b/sp-1".into());
        upgraded.last_savepoint = saved.last_savepoint.clone();
        let events = lifecycle_events(&saved, &upgraded, "shared");
        assert_eq!(reasons(&events), ["Submitted"]);
        assert!(events[0].message.contains("restoring from s3://b/sp-1"));
    }

    #[test]
    fn suspend_finish_and_a_lost_job() {
        let running = status("Running", "j1", 1);
        let mut suspended = status("Suspended", "j1", 1);
        suspended.restore_path = Some("s3://b/sp".into());
        let events = lifecycle_events(&running, &suspended, "s");
        assert_eq!(reasons(&events), ["Suspended"]);
        assert!(events[0].message.contains("resumes from s3://b/sp"));
        assert_eq!(
            reasons(&lifecycle_events(
                &running,
                &status("Finished", "j1", 1),
                "s"
            )),
            ["Finished"]
        );
        // The JobManager lost it: submitted again under the same ID, same submission.
        let events = lifecycle_events(&running, &status("Submitted", "j1", 1), "s");
        assert_eq!(reasons(&events), ["JobLost"]);
        assert!(events[0].warning);
    }

    #[test]
    fn causes_are_warnings_with_their_reason() {
        let e = Cause::NotEnoughSlots.event("2 slots wanted, 1 free");
        assert!(e.warning);
        assert_eq!(e.reason, "NotEnoughSlots");
        assert_eq!(e.message, "2 slots wanted, 1 free");
    }
}
