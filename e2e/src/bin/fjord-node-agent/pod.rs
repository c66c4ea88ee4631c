//! One Pod's lifecycle on the agent, in one task:
//! prepare (address, volumes, hosts file) → init containers in order → containers, probes,
//! restarts → terminal phase or deletion (SIGTERM, grace period, SIGKILL) → final delete.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, watch};

use crate::container::{ContainerRun, ExitEvent, State, now_time, resolve_command};
use crate::env::{PodFacts, pod_hostname};
use crate::images::ImageMap;
use crate::ipam::Ipam;
use crate::launch::{Bind, LaunchSpec};
use crate::resolver::{Owner, Resolver};
use crate::status::{Conditions, Phase, Snapshot};

/// Mount point of the service-account files in every container (as in a real cluster).
const SA_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// How often the Pod loop wakes for probes, restarts and kill deadlines.
const TICK: Duration = Duration::from_millis(200);

/// What the agent shares with every pod task.
pub struct Shared {
    /// API client.
    pub client: Client,
    /// Image → binary.
    pub images: ImageMap,
    /// Pod addresses.
    pub ipam: Mutex<Ipam>,
    /// Hosts files.
    pub resolver: Resolver,
    /// `--root`.
    pub root: PathBuf,
    /// This executable, for the launch step.
    pub agent_exe: PathBuf,
    /// API server port on 127.0.0.1.
    pub apiserver_port: u16,
    /// Log files of running containers (the kubelet API stops following a log once its
    /// container is gone).
    pub live_logs: LiveLogs,
    /// Node capacity, for resourceFieldRef defaults.
    pub node_cpu: String,
    /// See `node_cpu`.
    pub node_memory: String,
}

/// Log files whose container process is running.
pub type LiveLogs = Arc<Mutex<std::collections::HashSet<PathBuf>>>;

/// The latest word from the API server about a Pod.
#[derive(Clone, Debug)]
pub enum Update {
    /// The Pod object as last seen.
    Present(Arc<Pod>),
    /// The Pod object is gone from the API server.
    Gone,
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn grace_period(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs.max(0)).unwrap_or(0))
}

fn wants_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// Where the Pod is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Waiting for volumes/config that are not there yet.
    Preparing,
    /// Running init container `i`.
    Init(usize),
    /// Running the containers.
    Main,
    /// Finished (phase Succeeded/Failed); waiting for deletion.
    Done(Phase),
}

struct Runner {
    shared: Arc<Shared>,
    pod: Arc<Pod>,
    api: Api<Pod>,
    name: String,
    ns: String,
    uid: String,
    node: String,
    ip: Option<IpAddr>,
    host_ip: String,
    dir: PathBuf,
    hosts_file: PathBuf,
    log_dir: PathBuf,
    init: Vec<ContainerRun>,
    containers: Vec<ContainerRun>,
    stage: Stage,
    message: Option<String>,
    conditions: Conditions,
    start_time: Time,
    last_status: Option<serde_json::Value>,
    /// The Pod was already terminal when the agent saw it: report nothing, only finalize.
    frozen: bool,
    exits_tx: mpsc::UnboundedSender<ExitEvent>,
    /// When the volumes are next compared with their ConfigMaps and Secrets.
    next_volume_sync: Instant,
}

/// Run the Pod whose updates arrive on `updates` until it is deleted or the agent shuts down.
pub async fn run(
    shared: Arc<Shared>,
    node: String,
    host_ip: String,
    mut updates: watch::Receiver<Update>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Update::Present(pod) = updates.borrow_and_update().clone() else {
        return;
    };
    let ns = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let already_done = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    let (exits_tx, mut exits_rx) = mpsc::unbounded_channel();
    let dir = shared
        .root
        .join("pods")
        .join(format!("{ns}_{name}_{}", &uid[..uid.len().min(8)]));
    let spec = pod.spec.clone().unwrap_or_default();
    let mut r = Runner {
        api: Api::namespaced(shared.client.clone(), &ns),
        hosts_file: dir.join("etc").join("hosts"),
        log_dir: shared.root.join("logs"),
        dir,
        init: spec
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .map(|c| ContainerRun::new(c, true))
            .collect(),
        containers: spec
            .containers
            .into_iter()
            .map(|c| ContainerRun::new(c, false))
            .collect(),
        shared,
        pod,
        name,
        ns,
        uid,
        node,
        ip: None,
        host_ip,
        stage: Stage::Preparing,
        message: None,
        conditions: Conditions::default(),
        start_time: now_time(),
        last_status: None,
        frozen: already_done,
        exits_tx,
        next_volume_sync: Instant::now() + crate::volumes::SYNC_PERIOD,
    };
    tracing::info!(pod = %r.key(), node = %r.node, "pod assigned");
    if already_done {
        r.stage = Stage::Done(Phase::Succeeded);
    }

    let mut next_prepare = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some(pod) = r.deleting() {
            r.terminate(&pod, &mut exits_rx).await;
            r.finalize().await;
            break;
        }
        if r.stage == Stage::Preparing && Instant::now() >= next_prepare {
            match r.prepare().await {
                Ok(()) => {
                    r.message = None;
                    r.advance_from_init(0).await;
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    tracing::warn!(pod = %r.key(), error = %msg, "cannot start pod yet");
                    for c in r.init.iter_mut().chain(r.containers.iter_mut()) {
                        c.state = State::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(msg.clone()),
                        };
                    }
                    r.message = Some(msg);
                    next_prepare = Instant::now() + Duration::from_secs(2);
                }
            }
        }
        r.publish_status().await;
        tokio::select! {
            changed = updates.changed() => {
                match changed.map(|()| updates.borrow_and_update().clone()) {
                    Ok(Update::Present(pod)) => r.pod = pod,
                    Ok(Update::Gone) | Err(_) => {
                        // Deleted without grace (or the agent dropped it): stop at once.
                        r.kill_all_now(&mut exits_rx).await;
                        break;
                    }
                }
            }
            _ = shutdown.changed() => {
                r.kill_all_now(&mut exits_rx).await;
                break;
            }
            Some(event) = exits_rx.recv() => r.on_exit(event).await,
            _ = ticker.tick() => r.tick().await,
        }
    }
    r.cleanup();
    tracing::info!(pod = %r.key(), "pod finished on this node");
}

impl Runner {
    fn key(&self) -> String {
        format!("{}/{}", self.ns, self.name)
    }

    fn deleting(&self) -> Option<Arc<Pod>> {
        self.pod
            .metadata
            .deletion_timestamp
            .is_some()
            .then(|| self.pod.clone())
    }

    fn facts(&self) -> PodFacts {
        PodFacts {
            pod_ip: self.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_ip: self.host_ip.clone(),
            apiserver_port: self.shared.apiserver_port,
            home: self.dir.join("home").display().to_string(),
            node_cpu: self.shared.node_cpu.clone(),
            node_memory: self.shared.node_memory.clone(),
        }
    }

    /// Address, directories, hosts file and a check that volumes can be materialized.
    async fn prepare(&mut self) -> anyhow::Result<()> {
        if self.ip.is_none() {
            let ip = self
                .shared
                .ipam
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allocate();
            self.ip = Some(IpAddr::V4(
                ip.context("no free pod address left in this run's /24 block")?,
            ));
        }
        std::fs::create_dir_all(self.dir.join("etc"))?;
        std::fs::create_dir_all(self.dir.join("launch"))?;
        std::fs::create_dir_all(self.dir.join("home"))?;
        std::fs::create_dir_all(&self.log_dir)?;
        let mut hostnames = vec![pod_hostname(&self.pod)];
        if let Some(sub) = self.pod.spec.as_ref().and_then(|s| s.subdomain.clone()) {
            hostnames.insert(
                0,
                format!("{}.{sub}.{}.svc.cluster.local", hostnames[0], self.ns),
            );
        }
        self.shared.resolver.register(
            self.hosts_file.clone(),
            Owner {
                namespace: self.ns.clone(),
                ip: self.ip.map(|i| i.to_string()).unwrap_or_default(),
                hostnames,
            },
        );
        crate::volumes::materialize(&self.shared.client, &self.pod, &self.facts(), &self.dir)
            .await?;
        Ok(())
    }

    /// Start init container `i`, or the containers when all init containers are done.
    async fn advance_from_init(&mut self, i: usize) {
        if i < self.init.len() {
            self.stage = Stage::Init(i);
            self.start_container(i).await;
        } else {
            self.stage = Stage::Main;
            for i in 0..self.containers.len() {
                self.start_container(self.init.len() + i).await;
            }
        }
    }

    fn container_mut(&mut self, index: usize) -> &mut ContainerRun {
        let n = self.init.len();
        if index < n {
            &mut self.init[index]
        } else {
            &mut self.containers[index - n]
        }
    }

    async fn start_container(&mut self, index: usize) {
        let shared = self.shared.clone();
        let result = self.try_start(index, &shared).await;
        if let Err(e) = result {
            let msg = format!("{e:#}");
            tracing::warn!(pod = %self.key(), error = %msg, "container failed to start");
            let c = self.container_mut(index);
            c.state = State::Waiting {
                reason: "CreateContainerError".into(),
                message: Some(msg),
            };
            c.restart_at = Some(Instant::now() + c.backoff);
            c.backoff = (c.backoff * 2).min(crate::container::MAX_BACKOFF);
        }
    }

    async fn try_start(&mut self, index: usize, shared: &Shared) -> anyhow::Result<()> {
        let pod = self.pod.clone();
        let facts = self.facts();
        let dir = self.dir.clone();
        let hosts = self.hosts_file.clone();
        let container_name = self.container_mut(index).spec.name.clone();
        let log_path = self
            .log_dir
            .join(format!("{}_{}_{container_name}.log", self.ns, self.name));
        let exits = self.exits_tx.clone();
        let spec_of_container = self.container_mut(index).spec.clone();
        let env = crate::env::build(&shared.client, &pod, &spec_of_container, &facts).await?;
        let c = self.container_mut(index);
        let (program, args) = resolve_command(&c.spec, &shared.images, &env)?;
        let mut binds = vec![Bind {
            source: hosts,
            target: "/etc/hosts".into(),
            read_only: false,
        }];
        let mut has_sa_mount = false;
        for m in c.spec.volume_mounts.iter().flatten() {
            let source = dir.join("volumes").join(&m.name);
            let source = match &m.sub_path {
                Some(sub) if !sub.is_empty() => source.join(sub),
                _ => source,
            };
            let source = host_path_source(&pod, &m.name).unwrap_or(source);
            has_sa_mount |= m.mount_path == SA_MOUNT;
            binds.push(Bind {
                source,
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only == Some(true),
            });
        }
        if !has_sa_mount {
            tracing::debug!("container has no service-account mount");
        }
        let spec = LaunchSpec {
            program,
            args,
            env: env.clone(),
            cwd: c.spec.working_dir.as_ref().map(PathBuf::from),
            binds,
        };
        let spec_path = dir.join("launch").join(format!("{}.json", c.spec.name));
        std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
        c.env = env;
        c.start(index, &shared.agent_exe, &spec_path, &log_path, &exits)?;
        shared
            .live_logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(log_path);
        tracing::info!(pod = %format!("{}/{}", pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default()),
            container = %c.spec.name, pid = ?c.pid, "container started");
        Ok(())
    }

    async fn on_exit(&mut self, event: ExitEvent) {
        let policy = restart_policy(&self.pod).to_string();
        let stage = self.stage;
        let n_init = self.init.len();
        let c = self.container_mut(event.index);
        if event.generation != c.generation {
            return;
        }
        c.exited(&event.status);
        let name = c.spec.name.clone();
        let code = c.exit_code().unwrap_or(255);
        self.log_ended(&name);
        tracing::info!(container = %name, code, "container exited");
        if event.index < n_init {
            // Init containers restart on failure unless the policy is Never.
            if code == 0 {
                if stage == Stage::Init(event.index) {
                    self.advance_from_init(event.index + 1).await;
                }
            } else if policy == "Never" {
                self.stage = Stage::Done(Phase::Failed);
            } else {
                self.container_mut(event.index).schedule_restart();
            }
            return;
        }
        if wants_restart(&policy, code) {
            self.container_mut(event.index).schedule_restart();
        } else if self
            .containers
            .iter()
            .all(|c| !c.running() && c.restart_at.is_none())
        {
            let ok = self.containers.iter().all(|c| c.exit_code() == Some(0));
            self.stage = Stage::Done(if ok { Phase::Succeeded } else { Phase::Failed });
        }
    }

    async fn tick(&mut self) {
        let now = Instant::now();
        if matches!(self.stage, Stage::Init(_) | Stage::Main) && now >= self.next_volume_sync {
            self.next_volume_sync = now + crate::volumes::SYNC_PERIOD;
            let updated =
                crate::volumes::refresh(&self.shared.client, &self.pod, &self.facts(), &self.dir)
                    .await;
            if !updated.is_empty() {
                tracing::info!(pod = %self.key(), volumes = ?updated, "volumes updated from their sources");
            }
        }
        let ip = self.ip;
        for index in 0..self.init.len() + self.containers.len() {
            let c = self.container_mut(index);
            if c.kill_at.is_some_and(|t| now >= t) {
                c.signal(Signal::SIGKILL);
                c.kill_at = None;
            }
            if c.restart_at.is_some_and(|t| now >= t) && !c.running() {
                c.restart_at = None;
                self.start_container(index).await;
                continue;
            }
            let (Some(ip), true) = (ip, c.running()) else {
                continue;
            };
            crate::container::run_probes(c, ip, now).await;
        }
    }

    fn phase(&self) -> Phase {
        match self.stage {
            Stage::Preparing | Stage::Init(_) => Phase::Pending,
            Stage::Done(p) => p,
            Stage::Main => {
                let never_started = self.containers.iter().any(|c| {
                    !c.running()
                        && c.restart_count == 0
                        && !matches!(c.state, State::Terminated { .. })
                });
                if never_started {
                    Phase::Pending
                } else {
                    Phase::Running
                }
            }
        }
    }

    async fn publish_status(&mut self) {
        if self.frozen {
            return;
        }
        let ip = self.ip.map(|i| i.to_string());
        let phase = self.phase();
        let status = crate::status::build(
            &Snapshot {
                phase,
                pod_ip: ip.as_deref(),
                host_ip: &self.host_ip,
                start_time: &self.start_time,
                initialized: matches!(self.stage, Stage::Main | Stage::Done(_)),
                init: &self.init,
                containers: &self.containers,
                message: self.message.as_deref(),
            },
            &mut self.conditions,
        );
        let value = match serde_json::to_value(&status) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize status");
                return;
            }
        };
        if self.last_status.as_ref() == Some(&value) {
            return;
        }
        let patch = serde_json::json!({ "status": value });
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => self.last_status = Some(value),
            Err(kube::Error::Api(s)) if s.code == 404 => self.last_status = Some(value),
            Err(e) => {
                tracing::warn!(pod = %self.key(), error = %e, "status update failed; will retry")
            }
        }
    }

    /// Graceful stop for a deleted Pod: SIGTERM, wait for exits up to the grace period, SIGKILL.
    async fn terminate(&mut self, pod: &Pod, exits: &mut mpsc::UnboundedReceiver<ExitEvent>) {
        let grace = grace_period(pod);
        tracing::info!(pod = %self.key(), ?grace, "pod deleted; stopping containers");
        self.signal_all(Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while self.any_running() {
            match tokio::time::timeout_at(deadline, exits.recv()).await {
                Ok(Some(event)) => self.record_exit_only(event),
                Ok(None) => break,
                Err(_) => {
                    tracing::info!(pod = %self.key(), "grace period over; SIGKILL");
                    self.kill_all_now(exits).await;
                    break;
                }
            }
        }
        // Like the kubelet, a deleted Pod ends in a terminal phase chosen by its exit codes, so
        // controllers that read it (Job pod-failure policies) see how it ended.
        if !matches!(self.stage, Stage::Done(_)) && self.stage != Stage::Preparing {
            let ok = self.containers.iter().all(|c| c.exit_code() == Some(0));
            self.stage = Stage::Done(if ok { Phase::Succeeded } else { Phase::Failed });
        }
        self.publish_status().await;
    }

    fn record_exit_only(&mut self, event: ExitEvent) {
        let c = self.container_mut(event.index);
        if event.generation == c.generation {
            c.exited(&event.status);
            c.restart_at = None;
            let name = c.spec.name.clone();
            self.log_ended(&name);
        }
    }

    fn log_path(&self, container: &str) -> PathBuf {
        self.log_dir
            .join(format!("{}_{}_{container}.log", self.ns, self.name))
    }

    fn log_ended(&self, container: &str) {
        let path = self.log_path(container);
        self.shared
            .live_logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&path);
    }

    fn any_running(&self) -> bool {
        self.init
            .iter()
            .chain(self.containers.iter())
            .any(ContainerRun::running)
    }

    fn signal_all(&mut self, signal: Signal) {
        for c in self.init.iter_mut().chain(self.containers.iter_mut()) {
            c.restart_at = None;
            c.signal(signal);
        }
    }

    /// SIGKILL everything and wait (bounded) until the kernel confirms the exits.
    async fn kill_all_now(&mut self, exits: &mut mpsc::UnboundedReceiver<ExitEvent>) {
        self.signal_all(Signal::SIGKILL);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.any_running() {
            match tokio::time::timeout_at(deadline, exits.recv()).await {
                Ok(Some(event)) => self.record_exit_only(event),
                _ => break,
            }
        }
    }

    /// Remove the Pod object for good, as the kubelet does once its containers are gone.
    async fn finalize(&self) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.api.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %self.key(), error = %e, "final delete failed"),
        }
    }

    fn cleanup(&mut self) {
        let names: Vec<String> = self
            .init
            .iter()
            .chain(self.containers.iter())
            .map(|c| c.spec.name.clone())
            .collect();
        for name in names {
            self.log_ended(&name);
        }
        self.shared.resolver.unregister(&self.hosts_file);
        if let Some(IpAddr::V4(ip)) = self.ip.take() {
            self.shared
                .ipam
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(ip);
        }
    }
}

fn host_path_source(pod: &Pod, volume: &str) -> Option<PathBuf> {
    pod.spec
        .as_ref()?
        .volumes
        .as_ref()?
        .iter()
        .find(|v| v.name == volume)?
        .host_path
        .as_ref()
        .map(|h| Path::new(&h.path).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert!(wants_restart("Always", 0));
        assert!(wants_restart("OnFailure", 1));
        assert!(!wants_restart("OnFailure", 0));
        assert!(!wants_restart("Never", 1));
    }
}
