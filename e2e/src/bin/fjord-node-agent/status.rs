//! PodStatus from the containers' state, as the kubelet reports it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::container::{ContainerRun, State, now_time};

/// Pod phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not all containers started yet.
    Pending,
    /// At least one container running or restarting.
    Running,
    /// All containers exited 0 and will not restart.
    Succeeded,
    /// All containers exited, one with an error, none will restart.
    Failed,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        }
    }
}

/// Condition statuses with stable transition times.
#[derive(Debug, Default)]
pub struct Conditions {
    map: BTreeMap<&'static str, (bool, Time)>,
}

impl Conditions {
    fn set(&mut self, kind: &'static str, value: bool) -> PodCondition {
        let entry = self.map.entry(kind).or_insert_with(|| (value, now_time()));
        if entry.0 != value {
            *entry = (value, now_time());
        }
        PodCondition {
            type_: kind.to_string(),
            status: if value { "True".into() } else { "False".into() },
            last_transition_time: Some(entry.1.clone()),
            ..Default::default()
        }
    }
}

/// What the status is built from.
pub struct Snapshot<'a> {
    /// The phase.
    pub phase: Phase,
    /// Pod address (once assigned).
    pub pod_ip: Option<&'a str>,
    /// Node address.
    pub host_ip: &'a str,
    /// When the agent accepted the Pod.
    pub start_time: &'a Time,
    /// All init containers completed.
    pub initialized: bool,
    /// Init containers.
    pub init: &'a [ContainerRun],
    /// Regular containers.
    pub containers: &'a [ContainerRun],
    /// Pod-level reason/message (e.g. why it cannot start).
    pub message: Option<&'a str>,
}

fn container_state(state: &State) -> ContainerState {
    match state {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        State::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(started_at.clone()),
            }),
            ..Default::default()
        },
        State::Terminated {
            exit_code,
            signal,
            reason,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: *exit_code,
                signal: *signal,
                reason: Some(reason.clone()),
                started_at: Some(started_at.clone()),
                finished_at: Some(finished_at.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn container_status(c: &ContainerRun) -> ContainerStatus {
    ContainerStatus {
        name: c.spec.name.clone(),
        image: c.spec.image.clone().unwrap_or_default(),
        image_id: String::new(),
        container_id: c.pid.map(|p| format!("fjord-node-agent://{p}")),
        ready: c.ready,
        started: Some(c.running() && c.started),
        restart_count: c.restart_count,
        state: Some(container_state(&c.state)),
        last_state: Some(
            c.last_state
                .as_ref()
                .map(container_state)
                .unwrap_or_default(),
        ),
        ..Default::default()
    }
}

/// The PodStatus for `s`; `conditions` keeps transition times across calls.
pub fn build(s: &Snapshot<'_>, conditions: &mut Conditions) -> PodStatus {
    let containers_ready = !s.containers.is_empty() && s.containers.iter().all(|c| c.ready);
    let ready = containers_ready && s.phase == Phase::Running;
    PodStatus {
        phase: Some(s.phase.as_str().into()),
        conditions: Some(vec![
            conditions.set("PodScheduled", true),
            conditions.set("Initialized", s.initialized),
            conditions.set("ContainersReady", containers_ready),
            conditions.set("Ready", ready),
        ]),
        host_ip: Some(s.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: s.host_ip.to_string(),
        }]),
        pod_ip: s.pod_ip.map(str::to_string),
        pod_ips: s.pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(s.start_time.clone()),
        init_container_statuses: (!s.init.is_empty())
            .then(|| s.init.iter().map(container_status).collect()),
        container_statuses: Some(s.containers.iter().map(container_status).collect()),
        message: s.message.map(str::to_string),
        ..Default::default()
    }
}
