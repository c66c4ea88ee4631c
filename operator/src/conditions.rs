//! The `Ready`, `Progressing` and `Degraded` conditions that GitOps tools read.
//!
//! A condition's lastTransitionTime changes only when its status does, so tools that watch for
//! transitions see real ones.

use fjord_crds::{JobState, LifecycleState, StreamJobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition type: the job runs.
pub const READY: &str = "Ready";
/// Condition type: the operator is deploying, upgrading or deleting.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: something needs the user's attention (the message says what).
pub const DEGRADED: &str = "Degraded";

/// Recompute the three conditions from the status and this pass's degradation, if any.
pub fn update(
    status: &mut StreamJobStatus,
    degraded: Option<&(&'static str, String)>,
    now: Timestamp,
) {
    let state = status.lifecycle_state;
    let generation = status.observed_generation;
    let ready = state == LifecycleState::Running && status.job_state == Some(JobState::Running);
    let (ready_reason, ready_message) = if ready {
        ("JobRunning", "the job is running".to_string())
    } else {
        (
            state.as_str(),
            format!(
                "lifecycle state {}, job state {}",
                state.as_str(),
                status
                    .job_state
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_else(|| "none".into())
            ),
        )
    };
    set(
        &mut status.conditions,
        READY,
        ready,
        ready_reason,
        ready_message,
        generation,
        now,
    );

    let progressing = matches!(
        state,
        LifecycleState::Created
            | LifecycleState::Deploying
            | LifecycleState::Upgrading
            | LifecycleState::Deleting
    );
    let (p_reason, p_message) = match (&status.upgrade, progressing) {
        (Some(u), _) => (
            "Upgrading",
            format!("{:?} ({:?}, {})", u.step, u.reason, u.mode.as_str()),
        ),
        (None, true) => (
            state.as_str(),
            format!("lifecycle state {}", state.as_str()),
        ),
        (None, false) => ("Stable", format!("lifecycle state {}", state.as_str())),
    };
    set(
        &mut status.conditions,
        PROGRESSING,
        progressing,
        p_reason,
        p_message,
        generation,
        now,
    );

    let (d_status, d_reason, d_message) = match degraded {
        Some((reason, message)) => (true, *reason, message.clone()),
        None => (false, "AsExpected", String::new()),
    };
    set(
        &mut status.conditions,
        DEGRADED,
        d_status,
        d_reason,
        d_message,
        generation,
        now,
    );
}

fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: String,
    observed_generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let existing = conditions.iter_mut().find(|c| c.type_ == type_);
    let transition = match &existing {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation,
        last_transition_time: transition,
    };
    match existing {
        Some(c) => *c = condition,
        None => conditions.push(condition),
    }
}

/// The condition of the given type, if set.
pub fn get<'a>(status: &'a StreamJobStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut status = StreamJobStatus {
            lifecycle_state: LifecycleState::Deploying,
            ..Default::default()
        };
        let t0 = Timestamp::from_second(100).unwrap();
        let t1 = Timestamp::from_second(200).unwrap();
        let t2 = Timestamp::from_second(300).unwrap();
        update(&mut status, None, t0);
        assert_eq!(get(&status, READY).unwrap().status, "False");
        update(&mut status, None, t1);
        assert_eq!(get(&status, READY).unwrap().last_transition_time, Time(t0));
        status.lifecycle_state = LifecycleState::Running;
        status.job_state = Some(JobState::Running);
        update(&mut status, None, t2);
        let ready = get(&status, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), &ready.last_transition_time),
            ("True", &Time(t2))
        );
        assert_eq!(get(&status, PROGRESSING).unwrap().status, "False");
        assert_eq!(get(&status, DEGRADED).unwrap().status, "False");
    }

    #[test]
    fn degraded_carries_reason_and_message() {
        let mut status = StreamJobStatus::default();
        let d = ("UpgradeFailed", "the savepoint failed".to_string());
        update(&mut status, Some(&d), Timestamp::from_second(1).unwrap());
        let c = get(&status, DEGRADED).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "UpgradeFailed")
        );
        assert_eq!(c.message, "the savepoint failed");
    }
}
