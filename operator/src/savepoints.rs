//! The savepoint history: recording completed savepoints and retention.
//!
//! Retention keeps the newest `spec.savepoints.historyMaxCount` savepoints and drops those older
//! than `historyMaxAge`, but never the newest one and never a savepoint the current or next
//! deployment restores from. Dropped savepoints move to `status.savepointsPendingDisposal` and
//! their files are disposed of through the JobManager (so none leaks, unlike savepoints that
//! merely vanish from a list).

use fjord_crds::{SavepointRecord, StreamJobSpec, StreamJobStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Whether a periodic savepoint is due at `now`: `interval` is set and has passed since the
/// latest of `marks` (savepoints taken, the job's start, the last periodic attempt: a failed
/// attempt also waits a full interval before the next one). Without any mark it is due. The
/// rule of StreamJobs and StreamSessionJobs alike.
pub fn periodic_due(
    interval: Option<std::time::Duration>,
    marks: impl IntoIterator<Item = Time>,
    now: Timestamp,
) -> bool {
    let Some(interval) = interval else {
        return false;
    };
    marks.into_iter().max().is_none_or(|last| {
        let ms = now.as_millisecond() - last.0.as_millisecond();
        ms.max(0) as u128 >= interval.as_millis()
    })
}

/// Add a completed savepoint to the history and apply retention.
pub fn record(
    status: &mut StreamJobStatus,
    savepoint: SavepointRecord,
    spec: &StreamJobSpec,
    now: Timestamp,
) {
    status.last_savepoint = Some(savepoint.path.clone());
    if !status
        .savepoint_history
        .iter()
        .any(|s| s.path == savepoint.path)
    {
        status.savepoint_history.push(savepoint);
    }
    apply_retention(status, spec, now);
}

/// Drop savepoints beyond the count and age limits into the disposal list.
pub fn apply_retention(status: &mut StreamJobStatus, spec: &StreamJobSpec, now: Timestamp) {
    let max_count = spec.history_max_count();
    let max_age_ms = spec.history_max_age().map(|d| d.as_millis() as i64);
    let protected: Vec<String> = [
        status.restore_path.clone(),
        status.upgrade.as_ref().and_then(|u| u.restore_path.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let n = status.savepoint_history.len();
    let mut kept = Vec::with_capacity(n);
    for (i, sp) in std::mem::take(&mut status.savepoint_history)
        .into_iter()
        .enumerate()
    {
        let newest = i + 1 == n;
        let excess = i + max_count < n;
        let too_old =
            max_age_ms.is_some_and(|max| now.as_millisecond() - sp.time.0.as_millisecond() > max);
        if !newest && (excess || too_old) && !protected.contains(&sp.path) {
            if !status.savepoints_pending_disposal.contains(&sp.path) {
                status.savepoints_pending_disposal.push(sp.path);
            }
        } else {
            kept.push(sp);
        }
    }
    status.savepoint_history = kept;
}

#[cfg(test)]
mod tests {
    use fjord_crds::SavepointTrigger;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn spec(max_count: i32, max_age: Option<&str>) -> StreamJobSpec {
        let yaml = format!(
            "image: i\njob: {{name: j}}\nsavepoints: {{directory: 's3://b/sp', historyMaxCount: {max_count}{}}}\n",
            max_age
                .map(|a| format!(", historyMaxAge: '{a}'"))
                .unwrap_or_default()
        );
        serde_yaml::from_str(&yaml).unwrap()
    }

    fn sp(path: &str, secs: i64) -> SavepointRecord {
        SavepointRecord {
            path: path.into(),
            time: Time(Timestamp::from_second(secs).unwrap()),
            trigger: SavepointTrigger::Periodic,
        }
    }

    fn paths(s: &StreamJobStatus) -> Vec<&str> {
        s.savepoint_history
            .iter()
            .map(|s| s.path.as_str())
            .collect()
    }

    #[test]
    fn count_limit_drops_oldest_into_disposal() {
        let mut status = StreamJobStatus::default();
        let spec = spec(2, None);
        let now = Timestamp::from_second(1000).unwrap();
        for (i, p) in ["a", "b", "c"].iter().enumerate() {
            record(&mut status, sp(p, i as i64), &spec, now);
        }
        assert_eq!(paths(&status), ["b", "c"]);
        assert_eq!(status.savepoints_pending_disposal, ["a"]);
        assert_eq!(status.last_savepoint.as_deref(), Some("c"));
    }

    #[test]
    fn age_limit_keeps_the_newest_even_if_old() {
        let mut status = StreamJobStatus {
            savepoint_history: vec![sp("a", 0), sp("b", 10)],
            ..Default::default()
        };
        let now = Timestamp::from_second(100_000).unwrap();
        apply_retention(&mut status, &spec(10, Some("1h")), now);
        assert_eq!(paths(&status), ["b"]);
        assert_eq!(status.savepoints_pending_disposal, ["a"]);
    }

    #[test]
    fn the_restore_point_is_never_dropped() {
        let mut status = StreamJobStatus {
            restore_path: Some("a".into()),
            savepoint_history: vec![sp("a", 0), sp("b", 1), sp("c", 2)],
            ..Default::default()
        };
        apply_retention(
            &mut status,
            &spec(1, None),
            Timestamp::from_second(5).unwrap(),
        );
        assert_eq!(paths(&status), ["a", "c"]);
        assert_eq!(status.savepoints_pending_disposal, ["b"]);
    }

    #[test]
    fn recording_the_same_path_twice_keeps_one_entry() {
        let mut status = StreamJobStatus::default();
        let spec = spec(5, None);
        let now = Timestamp::from_second(10).unwrap();
        record(&mut status, sp("a", 1), &spec, now);
        record(&mut status, sp("a", 2), &spec, now);
        assert_eq!(paths(&status), ["a"]);
    }
}
