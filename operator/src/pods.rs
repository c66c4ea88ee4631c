//! Why a StreamJob's JobManager or TaskManager Pods do not run, read from Pod status: a Pod the
//! scheduler cannot place, an image that cannot be pulled, a container that cannot be created
//! (a missing Secret or ConfigMap), a container that keeps crashing. Pure: the controller lists
//! the Pods (and, for a crash, reads the last log lines) and [`diagnose`] names the first
//! problem, so the StreamJob says within seconds what the Pods say, instead of a generic
//! "unreachable" after the deploy timeout.
//!
//! A job can also run while its containers crash under it: a TaskManager killed by its memory
//! limit (`OOMKilled`, exit code 137) is restarted by the kubelet, the JobManager restarts the
//! job's tasks and keeps reporting `RUNNING`. [`crash_loop`] finds such a container from the
//! Pods the controller's watch holds, by one rule (also applied by [`diagnose`] when no Pod is
//! waiting on anything else):
//!
//! - the container's last termination was a crash: `OOMKilled`, or a non-zero exit code;
//! - it has restarted at least [`CRASH_LOOP_RESTARTS`] times: a single restart that recovers
//!   (a TaskManager that hit its limit once) is not reported;
//! - and the kubelet holds it in `CrashLoopBackOff` now, or its last crash ended less than
//!   [`CRASH_WINDOW`] ago. The kubelet's back-off between restarts grows to 5 minutes, so a
//!   container that keeps crashing stays reported between its back-offs instead of flapping, and
//!   one that has run for the whole window since its last crash is stable again (a new Pod, as
//!   after raising its memory limit, starts from 0 restarts and is stable at once).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

/// Restarts from which a crashing container counts as crash-looping (see the module
/// documentation).
pub const CRASH_LOOP_RESTARTS: i32 = 2;

/// How long after its last crash a crash-looping container is still reported: the default
/// `spec.healthCheck.restartsWindow`, twice the kubelet's longest back-off.
pub const CRASH_WINDOW: Duration = Duration::from_secs(600);

/// The termination reason of a container killed by its memory limit.
const OOM_KILLED: &str = "OOMKilled";

/// What is wrong with one of the Pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    /// The `Degraded` reason: `Unschedulable`, `ImagePullError`, `ContainerConfigError`,
    /// `StorageCredentialsIncomplete`, `ContainerCrashing`.
    pub reason: &'static str,
    /// The Pod's name.
    pub pod: String,
    /// The container's name, if the problem is a container's.
    pub container: Option<String>,
    /// What Kubernetes says, with what to do.
    pub message: String,
    /// Whether the container's last log lines would explain it (a crash).
    pub wants_logs: bool,
}

impl PodProblem {
    /// The message with the container's last log lines appended.
    pub fn with_logs(mut self, logs: &str) -> Self {
        let lines: Vec<&str> = logs
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if !lines.is_empty() {
            self.message = format!("{}; last log lines: {}", self.message, lines.join(" | "));
        }
        self
    }
}

/// Waiting reasons of a container that mean the image cannot be had.
const IMAGE_REASONS: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];
/// Waiting reasons of a container that cannot be created from its spec.
const CONFIG_REASONS: [&str; 3] = [
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The S3 keys the operator requires from the credentials Secret (see
/// [`crate::resources::S3_KEYS`]).
const S3_KEY_NAMES: [&str; 2] = crate::resources::S3_KEYS;

/// The first problem among `pods` (sorted by name, so the answer is stable), if any: a Pod or
/// container waiting on something it cannot get, else a container that crash-loops at `now`
/// ([`crash_loop`]). Pods being deleted are skipped; a Pod that is merely starting is not a
/// problem.
pub fn diagnose(pods: &[Pod], now: Timestamp) -> Option<PodProblem> {
    let pods = live_sorted(pods);
    pods.iter()
        .copied()
        .find_map(diagnose_pod)
        .or_else(|| crash_loop(pods, now))
}

/// The first container among `pods` (sorted by Pod name; Pods being deleted skipped) that
/// crash-loops at `now` by the rule of the module documentation, as a `ContainerCrashing`
/// problem. For a container killed by its memory limit the message names `OOMKilled`, the exit
/// code, the limit and the field of the spec to raise; for another crash it wants the
/// container's last log lines.
pub fn crash_loop<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    now: Timestamp,
) -> Option<PodProblem> {
    live_sorted(pods).into_iter().find_map(|pod| {
        let c = pod
            .status
            .as_ref()?
            .container_statuses
            .iter()
            .flatten()
            .find(|c| crash_looping(c, now))?;
        Some(crash_problem(pod, c))
    })
}

fn live_sorted<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> Vec<&'a Pod> {
    let mut pods: Vec<&Pod> = pods
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

fn diagnose_pod(pod: &Pod) -> Option<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    }) {
        return Some(PodProblem {
            reason: "Unschedulable",
            message: format!(
                "Pod {name} cannot be scheduled: {}; lower the resource requests, the parallelism or the slots per TaskManager, or add nodes",
                c.message.as_deref().unwrap_or("no reason given")
            ),
            pod: name,
            container: None,
            wants_logs: false,
        });
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    containers
        .into_iter()
        .find_map(|c| diagnose_container(pod, c))
}

fn diagnose_container(p: &Pod, c: &ContainerStatus) -> Option<PodProblem> {
    let name = p.metadata.name.clone().unwrap_or_default();
    let pod = name.as_str();
    let waiting = c.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    let detail = waiting.message.as_deref().unwrap_or("");
    let problem = |kind: &'static str, message: String, wants_logs: bool| PodProblem {
        reason: kind,
        pod: pod.to_string(),
        container: Some(c.name.clone()),
        message,
        wants_logs,
    };
    if IMAGE_REASONS.contains(&reason) {
        return Some(problem(
            "ImagePullError",
            format!(
                "Pod {pod}: the image {} cannot be pulled ({reason}{}); check spec.image and the image pull secrets",
                c.image,
                suffix(detail)
            ),
            false,
        ));
    }
    if CONFIG_REASONS.contains(&reason)
        && let Some(key) = S3_KEY_NAMES.iter().find(|k| detail.contains(*k))
    {
        return Some(problem(
            "StorageCredentialsIncomplete",
            format!(
                "Pod {pod}: the Secret named by spec.storageCredentials has no key {key} ({reason}{}); the S3 storage needs both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in it: add the missing key (kubectl create secret generic NAME --from-literal=... --dry-run=client -o yaml | kubectl apply -f -) and the Pods start by themselves",
                suffix(detail)
            ),
            false,
        ));
    }
    if CONFIG_REASONS.contains(&reason) {
        return Some(problem(
            "ContainerConfigError",
            format!(
                "Pod {pod}: container {} cannot be created ({reason}{}); if a Secret is missing, create the one spec.storageCredentials names",
                c.name,
                suffix(detail)
            ),
            false,
        ));
    }
    if reason == "CrashLoopBackOff" {
        return Some(crash_problem(p, c));
    }
    None
}

/// Whether container `c` crash-loops at `now` (the rule of the module documentation).
fn crash_looping(c: &ContainerStatus, now: Timestamp) -> bool {
    if c.restart_count < CRASH_LOOP_RESTARTS {
        return false;
    }
    if waiting_reason(c) == Some("CrashLoopBackOff") {
        return true;
    }
    let Some(t) = last_termination(c) else {
        return false;
    };
    // When the crash ended; without that, when the container started again after it.
    let ended = t
        .finished_at
        .as_ref()
        .or_else(|| c.state.as_ref()?.running.as_ref()?.started_at.as_ref());
    crashed(t)
        && ended.is_some_and(|e| {
            let ago = now.as_millisecond() - e.0.as_millisecond();
            ago < CRASH_WINDOW.as_millis() as i64
        })
}

fn waiting_reason(c: &ContainerStatus) -> Option<&str> {
    c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
}

/// The container's last termination: the current state if it is terminated, else the last state.
fn last_termination(c: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    c.state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| c.last_state.as_ref()?.terminated.as_ref())
}

/// Whether a termination was a crash: killed by its memory limit, or a non-zero exit code.
fn crashed(t: &ContainerStateTerminated) -> bool {
    t.reason.as_deref() == Some(OOM_KILLED) || t.exit_code != 0
}

/// `ContainerCrashing` for container `c` of `pod`: the restarts, the last termination and what
/// to do about it.
fn crash_problem(pod: &Pod, c: &ContainerStatus) -> PodProblem {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let last = last_termination(c);
    let finished = last.and_then(|t| t.finished_at.as_ref()).map(|t| t.0);
    let at = |lead: &str| finished.map(|t| format!("{lead}{t}")).unwrap_or_default();
    let restarts = c.restart_count;
    if let Some(t) = last.filter(|t| t.reason.as_deref() == Some(OOM_KILLED)) {
        let component = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::resources::COMPONENT_LABEL))
            .map(String::as_str);
        let field = match component {
            Some("jobmanager") => "spec.jobManager.resources.limits.memory",
            Some("taskmanager") => "spec.taskManager.resources.limits.memory",
            _ => {
                "spec.taskManager.resources.limits.memory (spec.jobManager.resources.limits.memory for a JobManager)"
            }
        };
        let limit = match memory_limit(pod, &c.name) {
            Some(limit) => format!("by its memory limit {limit}"),
            None => "without a memory limit of its own (the node ran short of memory)".into(),
        };
        let less = if component == Some("jobmanager") {
            ""
        } else {
            ", or make the TaskManagers need less: fewer spec.taskManager.slots, or the RocksDB state backend (state.backend.type: rocksdb in spec.configuration) with a smaller state.backend.rocksdb.memory.fixed-per-instance"
        };
        return PodProblem {
            reason: "ContainerCrashing",
            message: format!(
                "Pod {name}: container {} keeps crashing: {OOM_KILLED} (exit code {}) {limit}, {restarts} restarts{}; raise {field} (and the memory request with it){less}",
                c.name,
                t.exit_code,
                at(", the last at ")
            ),
            pod: name,
            container: Some(c.name.clone()),
            // The kernel killed it: its log lines do not say why.
            wants_logs: false,
        };
    }
    let exit = last
        .map(|t| {
            format!(
                ", last exit code {}{}",
                t.exit_code,
                t.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    PodProblem {
        reason: "ContainerCrashing",
        message: format!(
            "Pod {name}: container {} keeps crashing ({restarts} restarts{exit}{})",
            c.name,
            at(", at ")
        ),
        pod: name,
        container: Some(c.name.clone()),
        wants_logs: true,
    }
}

/// The memory limit of container `container` of `pod`, as written (`64Mi`).
fn memory_limit(pod: &Pod, container: &str) -> Option<String> {
    let c = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == container)?;
    Some(
        c.resources
            .as_ref()?
            .limits
            .as_ref()?
            .get("memory")?
            .0
            .clone(),
    )
}

fn suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "status": status,
        }))
        .unwrap()
    }

    /// The time the tests look at the Pods.
    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    /// `now()` minus `secs`, as the API writes times.
    fn ago(secs: i64) -> String {
        Timestamp::from_second(1_800_000_000 - secs)
            .unwrap()
            .to_string()
    }

    /// A Pod of the StreamJob `sj` of `component` whose container `fjord` has a 64Mi memory
    /// limit and the given status.
    fn member(name: &str, component: &str, container: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {
                "fjord.dev/streamjob": "sj",
                "app.kubernetes.io/component": component,
            }},
            "spec": {"containers": [{"name": "fjord", "image": "fjord/fjord:9",
                "resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "64Mi"}}}]},
            "status": {"phase": "Running", "containerStatuses": [container]},
        }))
        .unwrap()
    }

    /// The status of container `fjord` after `restarts` restarts, now in `state`, its last
    /// termination `reason`/`exit_code` `ended` seconds ago.
    fn after_crashes(
        restarts: i32,
        state: serde_json::Value,
        reason: &str,
        exit_code: i32,
        ended: i64,
    ) -> serde_json::Value {
        let ready = state.get("running").is_some();
        serde_json::json!({
            "name": "fjord", "image": "fjord/fjord:9", "imageID": "", "ready": ready,
            "restartCount": restarts,
            "state": state,
            "lastState": {"terminated": {"exitCode": exit_code, "reason": reason,
                "startedAt": ago(ended + 20), "finishedAt": ago(ended)}},
        })
    }

    fn running_since(secs: i64) -> serde_json::Value {
        serde_json::json!({"running": {"startedAt": ago(secs)}})
    }

    fn back_off() -> serde_json::Value {
        serde_json::json!({"waiting": {"reason": "CrashLoopBackOff",
            "message": "back-off 40s restarting failed container=fjord"}})
    }

    fn waiting(reason: &str, message: &str) -> serde_json::Value {
        serde_json::json!({"containerStatuses": [{
            "name": "fjord", "image": "fjord/fjord:9", "imageID": "", "ready": false,
            "restartCount": 4,
            "state": {"waiting": {"reason": reason, "message": message}},
            "lastState": {"terminated": {"exitCode": 2, "message": "unknown job"}}
        }]})
    }

    #[test]
    fn each_kind_of_problem_is_named() {
        let cases = [
            (
                waiting("ImagePullBackOff", "not found"),
                "ImagePullError",
                "fjord/fjord:9",
            ),
            (
                waiting("CreateContainerConfigError", "secret \"s3\" not found"),
                "ContainerConfigError",
                "secret \"s3\" not found",
            ),
            (
                waiting(
                    "CreateContainerConfigError",
                    "couldn't find key AWS_SECRET_ACCESS_KEY in Secret ns/minio-credentials",
                ),
                "StorageCredentialsIncomplete",
                "has no key AWS_SECRET_ACCESS_KEY (CreateContainerConfigError: couldn't find key AWS_SECRET_ACCESS_KEY in Secret ns/minio-credentials)",
            ),
            (
                waiting("CrashLoopBackOff", "back-off"),
                "ContainerCrashing",
                "last exit code 2: unknown job",
            ),
            (
                serde_json::json!({"conditions": [{"type": "PodScheduled", "status": "False",
                    "reason": "Unschedulable", "message": "0/2 nodes are available: 2 Insufficient cpu."}]}),
                "Unschedulable",
                "Insufficient cpu",
            ),
        ];
        for (status, reason, text) in cases {
            let p = diagnose(&[pod("sj-taskmanager-1", status)], now()).expect(reason);
            assert_eq!(p.reason, reason);
            assert!(p.message.contains(text), "{reason}: {}", p.message);
            assert!(p.message.contains("sj-taskmanager-1"), "{}", p.message);
        }
    }

    #[test]
    fn starting_pods_are_fine_and_crashes_get_their_logs() {
        assert_eq!(
            diagnose(&[pod("a", waiting("ContainerCreating", ""))], now()),
            None
        );
        assert_eq!(diagnose(&[pod("a", serde_json::json!({}))], now()), None);
        let p = diagnose(&[pod("b", waiting("CrashLoopBackOff", ""))], now())
            .unwrap()
            .with_logs("line one\n\nError: no job named x\n");
        assert!(p.wants_logs);
        assert!(
            p.message
                .ends_with("last log lines: line one | Error: no job named x"),
            "{}",
            p.message
        );
    }

    #[test]
    fn an_oom_killed_task_manager_names_the_limit_and_the_field_to_raise() {
        // Between two back-offs: running again, its last termination the OOM kill.
        let tm = member(
            "sj-taskmanager-7d9f-x2",
            "taskmanager",
            after_crashes(3, running_since(5), "OOMKilled", 137, 8),
        );
        let p = crash_loop([&tm], now()).expect("crash-looping");
        assert_eq!(p.reason, "ContainerCrashing");
        assert_eq!(p.pod, "sj-taskmanager-7d9f-x2");
        assert_eq!(p.container.as_deref(), Some("fjord"));
        assert!(
            !p.wants_logs,
            "the kernel killed it; its logs do not say why"
        );
        for text in [
            "Pod sj-taskmanager-7d9f-x2: container fjord keeps crashing: OOMKilled (exit code 137) by its memory limit 64Mi, 3 restarts, the last at ",
            "raise spec.taskManager.resources.limits.memory",
            "state.backend.rocksdb.memory.fixed-per-instance",
        ] {
            assert!(p.message.contains(text), "{text:?} in {}", p.message);
        }
        // The same from diagnose (a job that is not running), and for a JobManager.
        assert_eq!(diagnose(&[tm], now()).as_ref(), Some(&p));
        let jm = member(
            "sj-jobmanager-5c-q",
            "jobmanager",
            after_crashes(2, back_off(), "OOMKilled", 137, 3),
        );
        let p = crash_loop([&jm], now()).expect("crash-looping");
        assert!(
            p.message
                .contains("OOMKilled (exit code 137) by its memory limit 64Mi")
                && p.message
                    .contains("raise spec.jobManager.resources.limits.memory")
                && !p.message.contains("taskManager"),
            "{}",
            p.message
        );
    }

    #[test]
    fn crash_loop_back_off_under_a_running_job_is_crashing_with_its_exit_code() {
        let tm = member(
            "sj-taskmanager-1",
            "taskmanager",
            after_crashes(4, back_off(), "Error", 1, 30),
        );
        let p = crash_loop([&tm], now()).expect("crash-looping");
        assert_eq!(p.reason, "ContainerCrashing");
        assert!(p.wants_logs);
        assert!(
            p.message
                .starts_with("Pod sj-taskmanager-1: container fjord keeps crashing (4 restarts, last exit code 1, at "),
            "{}",
            p.message
        );
        // The kubelet's back-off says it crash-loops, however long ago the crash ended.
        let long_ago = member(
            "sj-taskmanager-1",
            "taskmanager",
            after_crashes(9, back_off(), "Error", 1, 3600),
        );
        assert!(crash_loop([&long_ago], now()).is_some());
    }

    /// The rule, case by case: restarts, what the last termination was, how long ago.
    #[test]
    fn only_repeated_recent_crashes_count() {
        let window = CRASH_WINDOW.as_secs() as i64;
        let cases = [
            // A single restart that recovered: not reported, even right after it.
            (
                "one OOM kill, running again",
                after_crashes(1, running_since(2), "OOMKilled", 137, 3),
                false,
            ),
            (
                "one crash, in its first back-off",
                after_crashes(1, back_off(), "Error", 1, 3),
                false,
            ),
            (
                "restarting, crashing again within the window",
                after_crashes(2, running_since(60), "OOMKilled", 137, 70),
                true,
            ),
            (
                "just inside the window",
                after_crashes(5, running_since(window - 20), "Error", 1, window - 1),
                true,
            ),
            // Stable again: no crash for the whole window.
            (
                "recovered: running, ready, last crash past the window",
                after_crashes(5, running_since(window), "OOMKilled", 137, window + 1),
                false,
            ),
            // Restarts that were no crash (a clean exit, restarted by the policy).
            (
                "exit code 0",
                after_crashes(3, running_since(5), "Completed", 0, 6),
                false,
            ),
            (
                "never restarted",
                serde_json::json!({"name": "fjord", "image": "i", "imageID": "", "ready": true,
                "restartCount": 0, "state": {"running": {"startedAt": ago(100)}}}),
                false,
            ),
            // The container is down right now after its third crash (before the back-off shows).
            (
                "terminated now",
                serde_json::json!({"name": "fjord", "image": "i", "imageID": "", "ready": false,
                "restartCount": 2, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(1)}}}),
                true,
            ),
        ];
        for (what, container, looping) in cases {
            let pod = member("sj-taskmanager-1", "taskmanager", container);
            assert_eq!(crash_loop([&pod], now()).is_some(), looping, "{what}");
        }
    }

    #[test]
    fn pods_being_deleted_are_not_looked_at_and_the_first_by_name_is_named() {
        let crashing = || after_crashes(3, back_off(), "OOMKilled", 137, 5);
        let mut old = member("sj-taskmanager-0", "taskmanager", crashing());
        old.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
        assert_eq!(crash_loop([&old], now()), None);
        let b = member("sj-taskmanager-b", "taskmanager", crashing());
        let a = member("sj-taskmanager-a", "taskmanager", crashing());
        assert_eq!(
            crash_loop([&old, &b, &a], now()).unwrap().pod,
            "sj-taskmanager-a"
        );
    }
}
