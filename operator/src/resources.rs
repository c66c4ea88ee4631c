//! Pure functions that build the desired child objects of a StreamJob: the ConfigMap with the
//! job configuration, the JobManager Deployment and Service, and the TaskManager Deployment.
//!
//! They are built from the spec recorded in `status.lastReconciledSpec` (what is deployed), not
//! from the current spec, so the pods change only when the lifecycle decides to redeploy. Every
//! object carries a controller owner reference to the StreamJob, so Kubernetes garbage-collects
//! them with it. Storage credentials reach the containers only through `envFrom` on the Secret;
//! no value of that Secret is ever read or written by the operator (the Secrets of
//! `spec.security` are mounted by name; [`crate::security`] keeps them).

use std::collections::BTreeMap;

use fjord_crds::{LoggingSpec, StreamJob, StreamJobSpec};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvFromSource, EnvVar,
    EnvVarSource, ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, SecretEnvSource,
    SecretKeySelector, Service, ServicePort, ServiceSpec, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use crate::Error;
use crate::podtemplate::merge_json;

pub mod high_availability;

/// Name of the main container in both pods; pod template overrides target it by this name.
pub const MAIN_CONTAINER: &str = "fjord";
/// Where the ConfigMap is mounted.
pub const CONFIG_DIR: &str = "/etc/fjord";
/// File name of the configuration inside the ConfigMap.
pub const CONFIG_FILE: &str = "fjord-conf.yaml";
/// JobManager REST port (JSON API under `/v1`).
pub const REST_PORT: i32 = 8081;
/// JobManager RPC port (gRPC from TaskManagers).
pub const RPC_PORT: i32 = 6123;
/// TaskManager data port.
pub const DATA_PORT: i32 = 6121;
/// The TaskManager's control-plane port (the JobManager deploys tasks to it).
pub const TASK_MANAGER_RPC_PORT: i32 = 6122;
/// The TaskManager's Prometheus port.
pub const TASK_MANAGER_METRICS_PORT: i32 = 9249;
/// Label naming the StreamJob an object belongs to.
pub const STREAMJOB_LABEL: &str = "fjord.dev/streamjob";
/// Label naming the component (jobmanager, taskmanager).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Annotation with a hash of the configuration, so a changed configuration rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "fjord.dev/config-hash";

/// The JobManager or a TaskManager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// The JobManager.
    JobManager,
    /// The TaskManagers.
    TaskManager,
}

impl Component {
    /// Label value and name suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobManager => "jobmanager",
            Self::TaskManager => "taskmanager",
        }
    }
}

/// Name of a component's workload (and, for the JobManager, its Service).
pub fn workload_name(job: &str, component: Component) -> String {
    format!("{job}-{}", component.as_str())
}

/// Name of the configuration ConfigMap.
pub fn config_map_name(job: &str) -> String {
    format!("{job}-config")
}

/// The JobManager REST base URL inside the cluster.
pub fn rest_base_url(job: &str, namespace: &str) -> String {
    format!(
        "http://{}.{namespace}.svc:{REST_PORT}/v1",
        workload_name(job, Component::JobManager)
    )
}

/// The URL of the job's web dashboard (`status.dashboardUrl`): with `spec.ingress` and a host,
/// the Ingress's (`https://` when it names a TLS Secret) with its path; otherwise the JobManager
/// Service's in-cluster URL, `https://` when the deployed spec serves REST over TLS. It ends in
/// `/`: the dashboard's URLs are relative to it. An Ingress without a host answers on the
/// ingress controller's address, which the spec does not say, so the Service URL is given then.
pub fn dashboard_url(
    job: &str,
    namespace: &str,
    spec: &StreamJobSpec,
    deployed: &StreamJobSpec,
) -> String {
    if let Some(ingress) = &spec.ingress
        && let Some(host) = &ingress.host
    {
        let scheme = if ingress.tls_secret_name.is_some() {
            "https"
        } else {
            "http"
        };
        let path = ingress.path.as_deref().unwrap_or("/");
        let slash = if path.ends_with('/') { "" } else { "/" };
        return format!("{scheme}://{host}{path}{slash}");
    }
    let scheme = if crate::security::rest_tls(deployed) {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme}://{}.{namespace}.svc:{REST_PORT}/",
        workload_name(job, Component::JobManager)
    )
}

/// Labels of every child object; the component label is added for pods.
pub fn labels(job: &str, component: Option<Component>) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "fjord".to_string()),
        ("app.kubernetes.io/instance".to_string(), job.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "fjord-operator".to_string(),
        ),
        (STREAMJOB_LABEL.to_string(), job.to_string()),
    ]);
    if let Some(c) = component {
        l.insert(COMPONENT_LABEL.to_string(), c.as_str().to_string());
    }
    l
}

/// The label selector of a component's pods.
pub fn selector(job: &str, component: Component) -> BTreeMap<String, String> {
    BTreeMap::from([
        (STREAMJOB_LABEL.to_string(), job.to_string()),
        (COMPONENT_LABEL.to_string(), component.as_str().to_string()),
    ])
}

/// The TaskManager selector as a string, for the scale subresource (`status.selector`).
pub fn selector_string(job: &str) -> String {
    selector(job, Component::TaskManager)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// All desired child objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The job configuration.
    pub config_map: ConfigMap,
    /// The JobManager Deployment (Recreate: never two generations of JobManagers; one
    /// replica, or `spec.jobManager.replicas` electing a leader with HA).
    pub jobmanager: Deployment,
    /// With `spec.jobManager.highAvailability`: the JobManagers' ServiceAccount, Role and
    /// RoleBinding for their leader Lease.
    pub jobmanager_rbac: Option<high_availability::Rbac>,
    /// The JobManager Service (REST and RPC).
    pub jobmanager_service: Service,
    /// The TaskManager Deployment.
    pub taskmanager: Deployment,
}

/// Build the desired objects for `job` deploying `deployed` and restoring from `restore_path`.
///
/// # Errors
/// [`Error::MissingMetadata`] if the StreamJob lacks name, namespace or uid, and
/// [`Error::Build`] if a pod template override does not form a valid pod template.
pub fn desired(
    job: &StreamJob,
    deployed: &StreamJobSpec,
    restore_path: Option<&str>,
    generation: i64,
) -> Result<Desired, Error> {
    desired_at(job, deployed, restore_path, (generation, None), None)
}

/// [`desired`] for a job that runs at `parallelism` after a rescale in place: the Pods stay
/// as `deployed` made them (their config hash does not change, so nothing restarts), the
/// ConfigMap says the parallelism the job runs at (a restarted JobManager recovers at it) and
/// the TaskManager Deployment has the replicas it needs.
///
/// # Errors
/// As [`desired`].
/// `deployment` is the deployed generation and ConfigMap script revision ([`job_id`]).
pub fn desired_at(
    job: &StreamJob,
    deployed: &StreamJobSpec,
    restore_path: Option<&str>,
    deployment: (i64, Option<&str>),
    parallelism: Option<i32>,
) -> Result<Desired, Error> {
    let (generation, sql_revision) = deployment;
    let name = job
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("metadata.name"))?;
    let namespace = job
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let owner = job
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata("metadata.uid"))?;

    let mut config = configuration(&name, deployed, restore_path);
    let id = job_id(
        job.metadata.uid.as_deref().unwrap_or(&name),
        generation,
        sql_revision,
    );
    // The cluster is that of this job ID (one per generation): TaskManagers of the previous
    // cluster, still terminating while this one starts, are refused by its JobManager.
    config.insert("cluster.id".into(), id.clone());
    config.insert("job.id".into(), id);
    desired_with_config(&name, &namespace, &owner, deployed, config, parallelism)
}

/// The desired objects of workload `name` in `namespace` owned by `owner`, with the pods of
/// `deployed` reading `config` (shared by StreamJobs and the session clusters of
/// [`crate::session`]); `parallelism` as in [`desired_at`].
///
/// # Errors
/// [`Error::Build`] if a pod template override does not form a valid pod template.
pub fn desired_with_config(
    name: &str,
    namespace: &str,
    owner: &OwnerReference,
    deployed: &StreamJobSpec,
    mut config: BTreeMap<String, String>,
    parallelism: Option<i32>,
) -> Result<Desired, Error> {
    let (name, namespace, owner) = (name.to_string(), namespace.to_string(), owner.clone());
    let mut config_text = serde_yaml_like(&config);
    let hash = fnv1a(&config_text);
    let mut running = deployed.clone();
    if let Some(p) = parallelism.filter(|p| *p != deployed.job.parallelism) {
        running.job.parallelism = p;
        config.insert("job.parallelism".into(), p.to_string());
        config_text = serde_yaml_like(&config);
    }
    let config_map = ConfigMap {
        metadata: meta(&name, &namespace, config_map_name(&name), None, &owner),
        data: Some(BTreeMap::from([(CONFIG_FILE.to_string(), config_text)])),
        ..Default::default()
    };

    let mut jm_pod = pod_template(&name, &namespace, deployed, Component::JobManager, &hash)?;
    let jobmanager_rbac = high_availability::rbac(&name, &namespace, &owner, deployed);
    if jobmanager_rbac.is_some()
        && let Some(pod) = jm_pod.spec.as_mut()
    {
        pod.service_account_name = Some(high_availability::service_account(&name, deployed));
    }
    let jobmanager = Deployment {
        metadata: meta(
            &name,
            &namespace,
            workload_name(&name, Component::JobManager),
            Some(Component::JobManager),
            &owner,
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(high_availability::replicas(deployed)),
            selector: LabelSelector {
                match_labels: Some(selector(&name, Component::JobManager)),
                ..Default::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            template: jm_pod,
            ..Default::default()
        }),
        ..Default::default()
    };

    let jobmanager_service = Service {
        metadata: meta(
            &name,
            &namespace,
            workload_name(&name, Component::JobManager),
            Some(Component::JobManager),
            &owner,
        ),
        spec: Some(ServiceSpec {
            // With HA: the leader only.
            selector: Some(high_availability::service_selector(
                selector(&name, Component::JobManager),
                deployed,
            )),
            // The JobManager is reachable as soon as its process listens, not only after its
            // readiness probe next passes (up to a probe period later): TaskManagers register
            // and the operator reads the job that much sooner, which is most of the time a
            // new deployment used to wait. It never routes to an old JobManager: there is one
            // JobManager Pod (Recreate), and an upgrade creates the new one only after the old
            // Pods are gone.
            publish_not_ready_addresses: Some(true),
            ports: Some(vec![
                service_port("rest", REST_PORT),
                service_port("rpc", RPC_PORT),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    };

    let tm_pod = pod_template(&name, &namespace, deployed, Component::TaskManager, &hash)?;
    let taskmanager = Deployment {
        metadata: meta(
            &name,
            &namespace,
            workload_name(&name, Component::TaskManager),
            Some(Component::TaskManager),
            &owner,
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(running.task_manager_replicas()),
            selector: LabelSelector {
                match_labels: Some(selector(&name, Component::TaskManager)),
                ..Default::default()
            },
            template: tm_pod,
            ..Default::default()
        }),
        ..Default::default()
    };

    Ok(Desired {
        config_map,
        jobmanager,
        jobmanager_rbac,
        jobmanager_service,
        taskmanager,
    })
}

/// The job ID of one deployment of a StreamJob: the same for every JobManager of the deployed
/// generation (a restarted JobManager Pod finds the job's checkpoints under it and resumes, as
/// Flink's HA does), and a new one for every new deployment (an upgrade or a resume starts a
/// new job, from its savepoint or empty). 32 hex digits, from the StreamJob's UID and the
/// generation, and for a script from a ConfigMap (spec.job.sqlFrom) its resourceVersion at the
/// deployment (`sql_revision`: an edited script is a new deployment of the same generation; a
/// resourceVersion never comes back, so neither does an ID whose checkpoints a JobManager
/// would resume from).
pub fn job_id(uid: &str, generation: i64, sql_revision: Option<&str>) -> String {
    let revision = sql_revision.map(|r| [&[0u8][..], r.as_bytes()].concat());
    fjord_client::job_id::derive(
        uid.bytes()
            .chain([0])
            .chain(generation.to_le_bytes())
            .chain(revision.unwrap_or_default()),
    )
}

/// The configuration entries written to the ConfigMap: the user's `spec.configuration` with the
/// operator-managed keys on top. Contains no credentials.
pub fn configuration(
    name: &str,
    spec: &StreamJobSpec,
    restore_path: Option<&str>,
) -> BTreeMap<String, String> {
    let mut c = spec.configuration.clone();
    let mut set = |k: &str, v: String| {
        c.insert(k.to_string(), v);
    };
    let (job, args) = spec.job.registered_job();
    set("job.name", job);
    set(
        "job.args",
        serde_json::to_string(&args).expect("strings serialize"),
    );
    set("job.parallelism", spec.job.parallelism.to_string());
    set("job.max-parallelism", spec.max_parallelism().to_string());
    set(
        "jobmanager.rpc.address",
        format!("{}:{RPC_PORT}", workload_name(name, Component::JobManager)),
    );
    set("jobmanager.rest.port", REST_PORT.to_string());
    set("taskmanager.slots", spec.slots().to_string());
    set("taskmanager.data.port", DATA_PORT.to_string());
    set("taskmanager.rpc.port", TASK_MANAGER_RPC_PORT.to_string());
    set(
        "taskmanager.metrics.port",
        TASK_MANAGER_METRICS_PORT.to_string(),
    );
    // Subtasks run on the TaskManagers, as in a Flink cluster.
    set("jobmanager.scheduler", "taskmanagers".into());
    let cp = spec.checkpointing.clone().unwrap_or_default();
    let interval = cp
        .interval
        .map(std::time::Duration::from)
        .unwrap_or(StreamJobSpec::DEFAULT_CHECKPOINT_INTERVAL);
    set(
        "checkpointing.interval-ms",
        interval.as_millis().to_string(),
    );
    set(
        "checkpointing.mode",
        cp.mode.unwrap_or_default().as_str().to_string(),
    );
    if let Some(s) = &cp.storage {
        set("checkpointing.storage", s.clone());
    }
    set(
        "checkpointing.retained",
        cp.retained.unwrap_or(3).to_string(),
    );
    // A cancelled job (a last-state upgrade, a JobManager Pod deleted with SIGTERM) keeps its
    // retained checkpoints, so the next deployment can restore the latest one: Flink's
    // RETAIN_ON_CANCELLATION, which its operator relies on for last-state.
    set("checkpointing.retain-on-cancellation", "true".into());
    if let Some(d) = spec.savepoint_directory() {
        set("savepoints.directory", d);
    }
    for (k, v) in crate::security::configuration(name, spec) {
        set(k, v);
    }
    for (k, v) in high_availability::configuration(name, spec) {
        set(k, v);
    }
    match restore_path {
        Some(p) => {
            set("restore.path", p.to_string());
            set(
                "restore.allow-non-restored-state",
                spec.job.allow_non_restored_state.to_string(),
            );
        }
        None => {
            c.remove("restore.path");
            c.remove("restore.allow-non-restored-state");
        }
    }
    c
}

/// Render a flat string map as YAML (`key: "value"` lines, sorted), quoting every value.
fn serde_yaml_like(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| {
            format!(
                "{}: {}\n",
                serde_json::to_string(k).expect("strings serialize"),
                serde_json::to_string(v).expect("strings serialize")
            )
        })
        .collect()
}

/// FNV-1a, enough to notice a configuration change (not a security boundary).
fn fnv1a(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn meta(
    job: &str,
    namespace: &str,
    name: String,
    component: Option<Component>,
    owner: &OwnerReference,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        labels: Some(labels(job, component)),
        owner_references: Some(vec![owner.clone()]),
        ..Default::default()
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        ..Default::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        ..Default::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The S3 keys every Pod must get from the Secret `spec.storageCredentials` names, when the
/// job's storage is S3: required `secretKeyRef`s, so a Secret that exists but lacks a key stops
/// the container from being created (`CreateContainerConfigError` naming the Secret and the
/// key, which the operator reports within seconds) instead of a storage client that falls back
/// to the instance metadata service (169.254.169.254) and fails minutes later. The operator
/// itself never reads the Secret. `FJORD_STORAGE_CREDENTIALS` carries the Secret's name, so
/// the worker's own start-up check can name it too.
pub fn storage_key_env(spec: &StreamJobSpec) -> Vec<EnvVar> {
    let Some(secret) = &spec.storage_credentials else {
        return Vec::new();
    };
    let s3 = spec
        .checkpoint_storage()
        .is_some_and(|s| s.starts_with("s3://"))
        || spec
            .savepoint_directory()
            .is_some_and(|s| s.starts_with("s3://"));
    let mut env = vec![EnvVar {
        name: "FJORD_STORAGE_CREDENTIALS".into(),
        value: Some(secret.name.clone()),
        ..Default::default()
    }];
    if s3 {
        for key in S3_KEYS {
            env.push(EnvVar {
                name: key.into(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.name.clone(),
                        key: key.into(),
                        optional: Some(false),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    env
}

/// The worker's log settings as its environment (`FJORD_LOG`, `FJORD_LOG_FORMAT`).
pub fn logging_env(logging: Option<&LoggingSpec>) -> Vec<EnvVar> {
    let Some(l) = logging else {
        return Vec::new();
    };
    let var = |name: &str, value: &str| EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    };
    let mut env = Vec::new();
    if let Some(level) = &l.level {
        env.push(var("FJORD_LOG", level));
    }
    if let Some(format) = l.format {
        env.push(var("FJORD_LOG_FORMAT", format.as_str()));
    }
    env
}

/// The name of the StreamJob's REST Ingress.
pub fn ingress_name(job: &str) -> String {
    format!("{job}-rest")
}

/// The Ingress of `spec.ingress`, routing to the JobManager Service's REST port; `None` when
/// the spec asks for none (the controller then deletes one left from before). Built from the
/// current spec, not the deployed one: it changes no Pod.
///
/// # Errors
/// [`Error::MissingMetadata`] if the StreamJob lacks name, namespace or uid.
pub fn ingress(job: &StreamJob) -> Result<Option<Ingress>, Error> {
    let Some(spec) = &job.spec.ingress else {
        return Ok(None);
    };
    let name = job
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("metadata.name"))?;
    let namespace = job
        .metadata
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("metadata.namespace"))?;
    let owner = job
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata("metadata.uid"))?;
    let mut metadata = meta(&name, &namespace, ingress_name(&name), None, &owner);
    if !spec.annotations.is_empty() {
        metadata.annotations = Some(spec.annotations.clone());
    }
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: workload_name(&name, Component::JobManager),
            port: Some(ServiceBackendPort {
                name: Some("rest".into()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    Ok(Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: spec.host.clone(),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some(spec.path.clone().unwrap_or_else(|| "/".into())),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: spec.host.clone().map(|h| vec![h]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

/// The keys an S3 credentials Secret must hold.
pub const S3_KEYS: [&str; 2] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

/// The pod template of a component: the user's `spec.podTemplate`, then the component's
/// `podTemplate`, then what the operator needs on top (it wins on conflicts; lists of named
/// items merge by name, so the user's extra env, volumes and sidecars stay).
fn pod_template(
    name: &str,
    namespace: &str,
    spec: &StreamJobSpec,
    component: Component,
    config_hash: &str,
) -> Result<PodTemplateSpec, Error> {
    let (resources, component_template, logging) = match component {
        Component::JobManager => {
            let jm = spec.job_manager.clone().unwrap_or_default();
            (jm.resources, jm.pod_template, jm.logging)
        }
        Component::TaskManager => {
            let tm = spec.task_manager.clone().unwrap_or_default();
            (tm.resources, tm.pod_template, tm.logging)
        }
    };
    let (role, ports) = match component {
        Component::JobManager => (
            "jobmanager",
            vec![
                container_port("rest", REST_PORT),
                container_port("rpc", RPC_PORT),
            ],
        ),
        Component::TaskManager => (
            "taskmanager",
            vec![
                container_port("data", DATA_PORT),
                container_port("rpc", TASK_MANAGER_RPC_PORT),
                container_port("metrics", TASK_MANAGER_METRICS_PORT),
            ],
        ),
    };
    let readiness_port = match component {
        Component::JobManager => "rest",
        Component::TaskManager => "data",
    };
    let mut env = vec![
        field_env("FJORD_POD_NAME", "metadata.name"),
        field_env("FJORD_POD_IP", "status.podIP"),
        EnvVar {
            name: "FJORD_NAMESPACE".into(),
            value: Some(namespace.into()),
            ..Default::default()
        },
        EnvVar {
            name: "FJORD_STREAMJOB".into(),
            value: Some(name.into()),
            ..Default::default()
        },
    ];
    env.extend(storage_key_env(spec));
    env.extend(logging_env(logging.as_ref()));
    if component == Component::JobManager {
        // `fjord jobmanager` binds its REST API to the Pod's own address (its flag
        // `--rest-address`), not 0.0.0.0: Pods that share a network stack (the e2e node agent)
        // must not collide on the port, and the Service and probes reach the Pod IP anyway.
        env.push(field_env("FJORD_REST_ADDRESS", "status.podIP"));
    }
    let (security_volumes, security_mounts) = crate::security::volumes(name, spec, component);
    let container = Container {
        name: MAIN_CONTAINER.into(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_string()),
        args: Some(vec![
            role.into(),
            "--config".into(),
            format!("{CONFIG_DIR}/{CONFIG_FILE}"),
        ]),
        ports: Some(ports),
        env: Some(env),
        env_from: spec.storage_credentials.as_ref().map(|s| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: s.name.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        }),
        resources,
        volume_mounts: Some(
            std::iter::once(VolumeMount {
                name: "fjord-config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..Default::default()
            })
            .chain(security_mounts)
            .collect(),
        ),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::String(readiness_port.into()),
                ..Default::default()
            }),
            // Checked every second from the start, so a ready JobManager is seen within a
            // second instead of up to five.
            period_seconds: Some(1),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        ..Default::default()
    };
    let operator_template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(name, Some(component))),
            annotations: Some(BTreeMap::from([(
                CONFIG_HASH_ANNOTATION.to_string(),
                config_hash.to_string(),
            )])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            service_account_name: spec.service_account.clone(),
            containers: vec![container],
            volumes: Some(
                std::iter::once(Volume {
                    name: "fjord-config".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: config_map_name(name),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .chain(security_volumes)
                .collect(),
            ),
            ..Default::default()
        }),
    };

    // Pod Security `restricted` first, so the templates can tighten (or change) it.
    let mut merged = serde_json::json!({"spec": crate::podsecurity::restricted_pod_spec()});
    for (field, template) in [
        ("spec.podTemplate", spec.pod_template.as_ref()),
        (
            match component {
                Component::JobManager => "spec.jobManager.podTemplate",
                Component::TaskManager => "spec.taskManager.podTemplate",
            },
            component_template.as_ref(),
        ),
    ] {
        if let Some(t) = template {
            if !t.is_object() {
                return Err(Error::Build {
                    name: format!("{namespace}/{name}"),
                    object: format!("the {} pod template", component.as_str()),
                    message: format!("{field} must be an object"),
                });
            }
            merge_json(&mut merged, t);
        }
    }
    let operator_json =
        serde_json::to_value(&operator_template).map_err(|source| Error::Serde {
            what: "pod template".into(),
            source,
        })?;
    merge_json(&mut merged, &operator_json);
    serde_json::from_value(merged).map_err(|e| Error::Build {
        name: format!("{namespace}/{name}"),
        object: format!("the {} pod template", component.as_str()),
        message: format!("the merged pod template overrides are not a valid pod template: {e}"),
    })
}

#[cfg(test)]
mod tests;
