//! Why a StreamJob's JobManager or TaskManager Pods do not run, read from Pod status: a Pod the
//! scheduler cannot place, an image that cannot be pulled, a container that cannot be created
//! (a missing Secret or ConfigMap), a container that keeps crashing. Pure: the controller lists
//! the Pods (and, for a crash, reads the last log lines) and [`diagnose`] names the first
//! problem, so the StreamJob says within seconds what the Pods say, instead of a generic
//! "unreachable" after the deploy timeout.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

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

/// The first problem among `pods` (sorted by name, so the answer is stable), if any. Pods being
/// deleted are skipped; a Pod that is merely starting is not a problem.
pub fn diagnose(pods: &[Pod]) -> Option<PodProblem> {
    let mut pods: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods.into_iter().find_map(diagnose_pod)
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
        .find_map(|c| diagnose_container(&name, c))
}

fn diagnose_container(pod: &str, c: &ContainerStatus) -> Option<PodProblem> {
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
        let exit = c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
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
        return Some(problem(
            "ContainerCrashing",
            format!(
                "Pod {pod}: container {} keeps crashing ({} restarts{exit})",
                c.name, c.restart_count
            ),
            true,
        ));
    }
    None
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
            let p = diagnose(&[pod("sj-taskmanager-1", status)]).expect(reason);
            assert_eq!(p.reason, reason);
            assert!(p.message.contains(text), "{reason}: {}", p.message);
            assert!(p.message.contains("sj-taskmanager-1"), "{}", p.message);
        }
    }

    #[test]
    fn starting_pods_are_fine_and_crashes_get_their_logs() {
        assert_eq!(
            diagnose(&[pod("a", waiting("ContainerCreating", ""))]),
            None
        );
        assert_eq!(diagnose(&[pod("a", serde_json::json!({}))]), None);
        let p = diagnose(&[pod("b", waiting("CrashLoopBackOff", ""))])
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
}
