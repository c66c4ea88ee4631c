//! The JobManager's registry of TaskManagers: who registered (with the protocol-version check
//! of [`fjord_proto::answer_registration`]), which slots each offered, when each last sent a
//! heartbeat, and which are lost because they stopped.
//!
//! Liveness is decided by [`TaskManagerRegistry::sweep`]: a TaskManager whose last heartbeat is
//! older than the heartbeat timeout is marked [`TaskManagerState::Lost`] and its slots stop
//! counting. The RPC server runs the sweep periodically ([`TaskManagerRegistry::run_sweeper`]);
//! reads sweep first, so what the REST API shows is never staler than the timeout. A lost
//! TaskManager that registers again is `REGISTERED` again.
//!
//! With `jobmanager.scheduler: taskmanagers` the deployer places subtasks on the slots of the
//! live TaskManagers ([`TaskManagerRegistry::live`]); otherwise every subtask runs inside the
//! JobManager and the registry only reports who registered.

use fjord_client::api::{TaskManagerInfo, TaskManagerList, TaskManagerState};
use fjord_proto::HeartbeatSettings;
use fjord_proto::v1::{RegisterTaskManagerRequest, RegisterTaskManagerResponse};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Where subtasks run with the embedded scheduler, as `GET /v1/taskmanagers` reports it.
pub const SUBTASKS_RUN_IN: &str = "jobmanager";
/// Where subtasks run with `jobmanager.scheduler: taskmanagers`.
pub const SUBTASKS_RUN_IN_TASK_MANAGERS: &str = "taskmanagers";

#[derive(Debug, Clone)]
struct Entry {
    info: TaskManagerInfo,
    last_heartbeat: Instant,
    /// Where its `TaskManagerService` listens.
    rpc_address: String,
    /// Increases with every registration, so a TaskManager that restarted under the same ID
    /// is told apart from the one that ran the tasks.
    registration: u64,
    /// The registered process's incarnation (empty from TaskManagers before protocol 1.3).
    incarnation: String,
    /// Its resident memory as of its last heartbeat (0: unknown, before protocol 1.4).
    memory_rss_bytes: u64,
}

/// What a heartbeat is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatAnswer {
    /// The TaskManager is registered: its heartbeat counts.
    Known,
    /// It must register again (unknown, lost, or another JobManager's epoch).
    Unknown,
    /// Another process registered under its ID since: it must stop.
    Superseded,
}

/// A registered TaskManager that is alive and offers slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTaskManager {
    /// Its ID.
    pub id: String,
    /// Its data address.
    pub data_address: String,
    /// Its RPC address.
    pub rpc_address: String,
    /// Slots it offered.
    pub slots: u32,
    /// Which registration of the ID this is.
    pub registration: u64,
}

/// The TaskManagers known to this JobManager. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct TaskManagerRegistry {
    epoch: u64,
    heartbeat: HeartbeatSettings,
    /// The cluster registrations must name, if any (`cluster.id`).
    cluster_id: String,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// True when subtasks are deployed to TaskManagers.
    deploys: std::sync::atomic::AtomicBool,
    /// Registrations so far (numbers every registration).
    registrations: std::sync::atomic::AtomicU64,
    /// Slots offered by registered (not lost) TaskManagers, for waiters.
    available: watch::Sender<u32>,
    /// The slots each job's running attempt holds.
    ledger: super::slots::SlotLedger,
}

/// Why [`TaskManagerRegistry::wait_for_slots`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotEnoughSlots {
    /// Slots the job needs.
    pub required: u32,
    /// Slots offered when the wait ended.
    pub available: u32,
    /// How long it waited.
    pub waited: Duration,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TaskManagerRegistry {
    /// An empty registry of a JobManager with fencing epoch `epoch`, handing `heartbeat` to
    /// every TaskManager it accepts.
    pub fn new(epoch: u64, heartbeat: HeartbeatSettings) -> Self {
        TaskManagerRegistry {
            epoch,
            heartbeat,
            cluster_id: String::new(),
            entries: Mutex::new(BTreeMap::new()),
            registrations: std::sync::atomic::AtomicU64::new(0),
            deploys: std::sync::atomic::AtomicBool::new(false),
            available: watch::channel(0).0,
            ledger: super::slots::SlotLedger::default(),
        }
    }

    /// Refuses (retryably) TaskManagers that name another cluster than `cluster_id`.
    pub fn for_cluster(mut self, cluster_id: Option<&str>) -> Self {
        self.cluster_id = cluster_id.unwrap_or_default().to_string();
        self
    }

    /// The slots each job's running attempt holds (jobs of a session share the TaskManagers).
    pub fn ledger(&self) -> &super::slots::SlotLedger {
        &self.ledger
    }

    /// Records that subtasks are deployed to the registered TaskManagers (reported by
    /// [`list`](Self::list)).
    pub fn set_deploys_to_task_managers(&self) {
        self.deploys
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The JobManager's fencing epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The heartbeat settings.
    pub fn heartbeat(&self) -> HeartbeatSettings {
        self.heartbeat
    }

    fn entries(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Recomputes the available slots from `entries` and tells waiters.
    fn publish(&self, entries: &BTreeMap<String, Entry>) {
        let available = entries
            .values()
            .filter(|e| e.info.state == TaskManagerState::Registered)
            .map(|e| e.info.slots_offered)
            .sum();
        self.available.send_if_modified(|old| {
            let changed = *old != available;
            *old = available;
            changed
        });
    }

    /// Answers a registration: refused with the version message when incompatible (nothing is
    /// recorded then), otherwise recorded as `REGISTERED` with no slots offered yet, replacing
    /// any earlier registration under the same ID (a restarted TaskManager).
    pub fn register(&self, request: &RegisterTaskManagerRequest) -> RegisterTaskManagerResponse {
        let answer =
            fjord_proto::answer_registration(request, self.epoch, self.heartbeat, &self.cluster_id);
        if !answer.accepted {
            tracing::warn!(task_manager = %request.task_manager_id, refusal = %answer.refusal, "TaskManager refused");
            return answer;
        }
        let now = now_ms();
        let mut entries = self.entries();
        let replaced = entries
            .get(&request.task_manager_id)
            .map(|e| e.incarnation.clone());
        entries.insert(
            request.task_manager_id.clone(),
            Entry {
                info: TaskManagerInfo {
                    id: request.task_manager_id.clone(),
                    data_address: request.data_address.clone(),
                    version: request.binary_version.clone(),
                    state: TaskManagerState::Registered,
                    slots: request.slots,
                    slots_offered: 0,
                    slots_in_use: 0,
                    registered_at_ms: now,
                    last_heartbeat_ms: now,
                },
                last_heartbeat: Instant::now(),
                rpc_address: request.rpc_address.clone(),
                registration: self
                    .registrations
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                incarnation: request.incarnation.clone(),
                memory_rss_bytes: 0,
            },
        );
        if let Some(previous) = &replaced
            && !previous.is_empty()
            && *previous != request.incarnation
        {
            tracing::warn!(
                task_manager = %request.task_manager_id,
                "a new TaskManager process registered under this ID; the previous one (if it still runs) is told to stop"
            );
        }
        self.publish(&entries);
        tracing::info!(task_manager = %request.task_manager_id, slots = request.slots, "TaskManager registered");
        answer
    }

    /// Records a heartbeat. Returns `false` (the TaskManager must register again) when the ID
    /// is unknown, the TaskManager was marked lost, or `epoch` is not this JobManager's.
    pub fn heartbeat_from(&self, task_manager_id: &str, epoch: u64) -> bool {
        self.heartbeat_of(task_manager_id, epoch, "") == HeartbeatAnswer::Known
    }

    /// Records a heartbeat of process `incarnation` (empty when the TaskManager does not say):
    /// [`HeartbeatAnswer::Superseded`] when another process registered under the ID since, so
    /// a second process cannot keep the ID alive for the one the JobManager deploys to.
    pub fn heartbeat_of(
        &self,
        task_manager_id: &str,
        epoch: u64,
        incarnation: &str,
    ) -> HeartbeatAnswer {
        let mut entries = self.entries();
        match entries.get_mut(task_manager_id) {
            Some(e)
                if !incarnation.is_empty()
                    && !e.incarnation.is_empty()
                    && e.incarnation != incarnation =>
            {
                HeartbeatAnswer::Superseded
            }
            Some(e) if epoch == self.epoch && e.info.state == TaskManagerState::Registered => {
                e.last_heartbeat = Instant::now();
                e.info.last_heartbeat_ms = now_ms();
                HeartbeatAnswer::Known
            }
            _ => HeartbeatAnswer::Unknown,
        }
    }

    /// Records the resident memory a registered TaskManager reported with its heartbeat.
    pub fn record_memory(&self, task_manager_id: &str, rss_bytes: u64) {
        if let Some(e) = self.entries().get_mut(task_manager_id) {
            e.memory_rss_bytes = rss_bytes;
        }
    }

    /// The resident memory TaskManager `task_manager_id` last reported, if it reports it.
    pub fn memory_of(&self, task_manager_id: &str) -> Option<u64> {
        self.entries()
            .get(task_manager_id)
            .map(|e| e.memory_rss_bytes)
            .filter(|bytes| *bytes > 0)
    }

    /// Accepts the offered slot indexes that exist on the TaskManager (below its slot count),
    /// and returns them; `None` when the TaskManager is not registered under this epoch (it
    /// must register again). Offers replace earlier ones.
    pub fn offer_slots(
        &self,
        task_manager_id: &str,
        epoch: u64,
        slots: impl IntoIterator<Item = u32>,
    ) -> Option<Vec<u32>> {
        let mut entries = self.entries();
        let e = entries.get_mut(task_manager_id)?;
        if epoch != self.epoch || e.info.state != TaskManagerState::Registered {
            return None;
        }
        let mut accepted: Vec<u32> = slots.into_iter().filter(|s| *s < e.info.slots).collect();
        accepted.sort_unstable();
        accepted.dedup();
        e.info.slots_offered = accepted.len() as u32;
        self.publish(&entries);
        Some(accepted)
    }

    /// When TaskManager `task_manager_id` (registration `registration`) was last heard from
    /// (registration or heartbeat); `None` when that registration is not the current one.
    pub fn last_heard(&self, task_manager_id: &str, registration: u64) -> Option<Instant> {
        let entries = self.entries();
        let e = entries.get(task_manager_id)?;
        (e.registration == registration).then_some(e.last_heartbeat)
    }

    /// Marks every TaskManager whose last heartbeat is older than the timeout at `now` as
    /// lost; returns the IDs newly marked.
    pub fn sweep(&self, now: Instant) -> Vec<String> {
        let timeout = Duration::from_millis(self.heartbeat.timeout_ms);
        let mut entries = self.entries();
        let mut lost = Vec::new();
        for (id, e) in entries.iter_mut() {
            if e.info.state == TaskManagerState::Registered
                && now.saturating_duration_since(e.last_heartbeat) > timeout
            {
                e.info.state = TaskManagerState::Lost;
                lost.push(id.clone());
            }
        }
        if !lost.is_empty() {
            self.publish(&entries);
            tracing::warn!(task_managers = ?lost, timeout_ms = self.heartbeat.timeout_ms, "TaskManagers lost: no heartbeat within the timeout");
        }
        lost
    }

    /// Sweeps every quarter of the timeout (at least every 10 ms) until dropped with its task.
    pub async fn run_sweeper(self: std::sync::Arc<Self>) {
        let period = Duration::from_millis((self.heartbeat.timeout_ms / 4).max(10));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.sweep(Instant::now());
        }
    }

    /// What `GET /v1/taskmanagers` shows (after a sweep).
    pub fn list(&self) -> TaskManagerList {
        let live = self.live();
        let entries = self.entries();
        let task_managers: Vec<TaskManagerInfo> =
            entries.values().map(|e| e.info.clone()).collect();
        TaskManagerList {
            slots_in_use: self.ledger.in_use(&live),
            slots_available: *self.available.borrow(),
            task_managers,
            subtasks_run_in: if self.deploys.load(std::sync::atomic::Ordering::Relaxed) {
                SUBTASKS_RUN_IN_TASK_MANAGERS.into()
            } else {
                SUBTASKS_RUN_IN.into()
            },
            heartbeat_timeout_ms: self.heartbeat.timeout_ms,
        }
    }

    /// Records the slots the current attempt uses per TaskManager ID (every other TaskManager
    /// uses none), as `GET /v1/taskmanagers` reports them.
    pub fn set_in_use(&self, in_use: &BTreeMap<String, u32>) {
        for (id, e) in self.entries().iter_mut() {
            e.info.slots_in_use = in_use.get(id).copied().unwrap_or(0);
        }
    }

    /// The TaskManagers alive now that offer slots and serve tasks (have an RPC address), in
    /// ID order (after a sweep).
    pub fn live(&self) -> Vec<LiveTaskManager> {
        self.sweep(Instant::now());
        self.entries()
            .values()
            .filter(|e| {
                e.info.state == TaskManagerState::Registered
                    && e.info.slots_offered > 0
                    && !e.rpc_address.is_empty()
            })
            .map(|e| LiveTaskManager {
                id: e.info.id.clone(),
                data_address: e.info.data_address.clone(),
                rpc_address: e.rpc_address.clone(),
                slots: e.info.slots_offered,
                registration: e.registration,
            })
            .collect()
    }

    /// Slots offered by registered TaskManagers now.
    pub fn slots_available(&self) -> u32 {
        *self.available.borrow()
    }

    /// Waits until registered TaskManagers offer at least `required` slots, for at most
    /// `timeout`.
    ///
    /// # Errors
    /// [`NotEnoughSlots`] with the counts when the timeout passes first.
    pub async fn wait_for_slots(
        &self,
        required: u32,
        timeout: Duration,
    ) -> Result<(), NotEnoughSlots> {
        let started = Instant::now();
        let mut rx = self.available.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|n| *n >= required)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(NotEnoughSlots {
                required,
                available: self.slots_available(),
                waited: started.elapsed(),
            }),
        }
    }

    /// Prometheus gauges: TaskManagers by state, their slots, and the slots offered.
    pub fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let list = self.list();
        let count = |state: TaskManagerState| {
            list.task_managers
                .iter()
                .filter(|t| t.state == state)
                .count()
        };
        let live_slots: u32 = list
            .task_managers
            .iter()
            .filter(|t| t.state == TaskManagerState::Registered)
            .map(|t| t.slots)
            .sum();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP fjord_taskmanagers TaskManagers known to the JobManager, by state.\n\
             # TYPE fjord_taskmanagers gauge"
        );
        for state in [TaskManagerState::Registered, TaskManagerState::Lost] {
            let _ = writeln!(
                out,
                "fjord_taskmanagers{{state=\"{}\"}} {}",
                state.as_str(),
                count(state)
            );
        }
        for (name, help, value) in [
            (
                "fjord_taskmanager_slots_total",
                "Task slots of registered (not lost) TaskManagers.",
                live_slots,
            ),
            (
                "fjord_taskmanager_slots_available",
                "Task slots offered by registered TaskManagers (no subtasks are deployed to them yet).",
                list.slots_available,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_proto::v1::ProtocolVersion;
    use std::sync::Arc;

    const HB: HeartbeatSettings = HeartbeatSettings {
        interval_ms: 100,
        timeout_ms: 1_000,
    };

    fn request(id: &str, major: u32, slots: u32) -> RegisterTaskManagerRequest {
        RegisterTaskManagerRequest {
            task_manager_id: id.into(),
            protocol_version: Some(ProtocolVersion {
                major,
                minor: fjord_proto::PROTOCOL_VERSION.minor,
            }),
            binary_version: "9.9.9".into(),
            data_address: "127.0.0.1:6121".into(),
            slots,
            ..Default::default()
        }
    }

    #[test]
    fn a_task_manager_of_another_cluster_is_refused_retryably_and_not_recorded() {
        let r = TaskManagerRegistry::new(3, HB).for_cluster(Some("new"));
        let old = RegisterTaskManagerRequest {
            cluster_id: "old".into(),
            ..request("tm-old", fjord_proto::PROTOCOL_VERSION.major, 2)
        };
        let answer = r.register(&old);
        assert!(!answer.accepted && answer.retry, "{answer:?}");
        assert!(r.list().task_managers.is_empty());
        let new = RegisterTaskManagerRequest {
            cluster_id: "new".into(),
            ..request("tm-new", fjord_proto::PROTOCOL_VERSION.major, 2)
        };
        assert!(r.register(&new).accepted);
        assert_eq!(r.list().task_managers.len(), 1);
    }

    #[test]
    fn an_incompatible_task_manager_is_refused_and_not_recorded() {
        let r = TaskManagerRegistry::new(3, HB);
        let answer = r.register(&request(
            "tm-old",
            fjord_proto::PROTOCOL_VERSION.major + 1,
            2,
        ));
        assert!(!answer.accepted);
        assert!(
            answer
                .refusal
                .contains("refusing TaskManager 'tm-old' (fjord 9.9.9)")
                && answer.refusal.contains("same image"),
            "{}",
            answer.refusal
        );
        assert!(r.list().task_managers.is_empty());
    }

    #[test]
    fn offered_slots_count_until_the_task_manager_is_lost() {
        let r = TaskManagerRegistry::new(3, HB);
        assert!(r.register(&request("a", 1, 2)).accepted);
        assert!(r.register(&request("b", 1, 3)).accepted);
        assert_eq!(r.slots_available(), 0, "registered but nothing offered yet");
        assert_eq!(r.offer_slots("a", 3, [0, 1, 7, 1]), Some(vec![0, 1]));
        assert_eq!(r.offer_slots("b", 3, 0..3), Some(vec![0, 1, 2]));
        assert_eq!(r.offer_slots("b", 2, 0..3), None, "wrong epoch");
        assert_eq!(r.offer_slots("c", 3, 0..3), None, "unknown");
        assert_eq!(r.slots_available(), 5);

        // `b` keeps heartbeating past the timeout, `a` does not.
        let later = Instant::now() + Duration::from_millis(HB.timeout_ms + 1);
        {
            let mut entries = r.entries();
            entries.get_mut("b").unwrap().last_heartbeat = later;
        }
        assert_eq!(r.sweep(later), vec!["a".to_string()]);
        assert_eq!(r.slots_available(), 3);
        assert!(
            !r.heartbeat_from("a", 3),
            "a lost TaskManager must register again"
        );
        assert!(r.heartbeat_from("b", 3));
        assert!(!r.heartbeat_from("b", 4), "another JobManager's epoch");

        // A second process registering under b's ID takes it over; the first is superseded.
        let mut first = request("b", 1, 3);
        first.incarnation = "first".into();
        let mut second = request("b", 1, 3);
        second.incarnation = "second".into();
        assert!(r.register(&first).accepted);
        assert_eq!(r.heartbeat_of("b", 3, "first"), HeartbeatAnswer::Known);
        assert!(r.register(&second).accepted);
        assert_eq!(
            r.heartbeat_of("b", 3, "first"),
            HeartbeatAnswer::Superseded,
            "the first process cannot keep the ID alive"
        );
        assert_eq!(r.heartbeat_of("b", 3, "second"), HeartbeatAnswer::Known);
        r.offer_slots("b", 3, 0..3);

        // Registering again revives it, with no slots offered until it offers them.
        assert!(r.register(&request("a", 1, 2)).accepted);
        let list = r.list();
        assert_eq!(list.subtasks_run_in, "jobmanager");
        let a = &list.task_managers[0];
        assert_eq!(
            (a.state, a.slots, a.slots_offered),
            (TaskManagerState::Registered, 2, 0)
        );
    }

    #[tokio::test]
    async fn waiting_for_slots_ends_when_enough_are_offered_or_times_out() {
        let r = Arc::new(TaskManagerRegistry::new(1, HB));
        let err = r
            .wait_for_slots(2, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!((err.required, err.available), (2, 0));

        let waiter = {
            let r = r.clone();
            tokio::spawn(async move { r.wait_for_slots(3, Duration::from_secs(30)).await })
        };
        r.register(&request("a", 1, 2));
        r.offer_slots("a", 1, 0..2);
        r.register(&request("b", 1, 1));
        r.offer_slots("b", 1, 0..1);
        waiter.await.unwrap().unwrap();
    }

    #[test]
    fn memory_is_what_the_last_heartbeat_reported() {
        let r = TaskManagerRegistry::new(1, HB);
        r.register(&request("a", 1, 1));
        assert_eq!(r.memory_of("a"), None, "nothing reported yet");
        r.record_memory("a", 5_000_000);
        r.record_memory("a", 7_000_000);
        assert_eq!(r.memory_of("a"), Some(7_000_000));
        // A TaskManager before protocol 1.4 sends 0: unknown.
        r.record_memory("a", 0);
        assert_eq!(r.memory_of("a"), None);
        r.record_memory("unknown", 1);
        assert_eq!(r.memory_of("unknown"), None);
    }

    #[test]
    fn metrics_show_task_managers_and_slots() {
        let r = TaskManagerRegistry::new(1, HB);
        r.register(&request("a", 1, 4));
        r.offer_slots("a", 1, 0..4);
        let text = r.render_metrics();
        assert!(
            text.contains("fjord_taskmanagers{state=\"REGISTERED\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("fjord_taskmanagers{state=\"LOST\"} 0"),
            "{text}"
        );
        assert!(text.contains("fjord_taskmanager_slots_total 4"), "{text}");
        assert!(
            text.contains("fjord_taskmanager_slots_available 4"),
            "{text}"
        );
    }
}
