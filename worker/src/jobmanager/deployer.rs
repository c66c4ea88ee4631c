//! The JobManager's deployer: places every subtask of an attempt on the slots registered
//! TaskManagers offer, sends each TaskManager the plan, routes checkpoint commands to tasks and
//! task reports to the engine's coordinator, and ends the attempt when every TaskManager's part
//! ended, one failed, or one was lost (no heartbeat within `heartbeat.timeout`).
//!
//! Placement: slots are taken round-robin over the TaskManagers (slot 0 of each, then slot 1
//! of each, ...), so a job with parallelism 2 on two TaskManagers runs one subtask of every
//! vertex on each and its keyed exchange crosses processes. Subtask `s` of every vertex of one
//! slot sharing group goes to the group's `s`-th slot (Flink's slot sharing).

use super::registry::{LiveTaskManager, TaskManagerRegistry};
use super::task_metrics::TaskMetricsStore;
use crate::control::{self, job_attempt};
use fjord::FjordError;
use fjord::cluster::{
    AttemptPlan, AttemptSpec, CancelToken, Deployer, ReportSink, TaskCommand, TaskReport,
    WorkerAddress,
};
use fjord_proto::v1::task_manager_service_client::TaskManagerServiceClient;
use fjord_proto::v1::{
    CancelAttemptRequest, DeployAttemptRequest, JobAttempt, JobSettings, TaskState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// How long a TaskManager may take to confirm that a cancelled attempt's tasks ended.
const CANCEL_WAIT: Duration = Duration::from_secs(10);
/// Timeout of one control-plane call to a TaskManager.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A TaskManager's part of the running attempt.
struct Worker {
    id: String,
    registration: u64,
    client: TaskManagerServiceClient<Channel>,
}

/// The attempt running now.
struct Running {
    job: JobAttempt,
    epoch: u64,
    /// For every task: the index in `workers` of its TaskManager.
    owners: Vec<usize>,
    workers: Vec<Worker>,
    reports: ReportSink,
    /// How each TaskManager's part ended: (state, failure).
    ended: Mutex<BTreeMap<String, (TaskState, String)>>,
    changed: Condvar,
    /// When a part was first seen failed on a data exchange or cancelled (a peer of it may be
    /// the one lost).
    exchange_failure_seen: Mutex<Option<Instant>>,
}

/// Routes what TaskManagers report to the running attempt; reports of other attempts or
/// epochs are fenced. Shared by the deployer and the control-plane service. It also keeps the
/// task metrics TaskManagers report ([`task_metrics`](Self::task_metrics)) and which attempt
/// was deployed last, over every execution of the job in this JobManager (a rescale starts a
/// new execution whose attempt numbers continue those of the old one).
#[derive(Default)]
pub struct AttemptRouter {
    current: Mutex<Option<Arc<Running>>>,
    /// The attempt deployed last (running or ended).
    deployed: Mutex<Option<JobAttempt>>,
    /// Set once every TaskManager of an attempt accepted its tasks.
    tasks_deployed: std::sync::atomic::AtomicBool,
    /// The number the next execution's first attempt gets.
    next_attempt: std::sync::atomic::AtomicU32,
    metrics: TaskMetricsStore,
    /// In a session JobManager: the router of each submitted job, by job ID. Reports of a
    /// job found here go to its router; the others to this one.
    jobs: Mutex<BTreeMap<String, Arc<AttemptRouter>>>,
}

impl std::fmt::Debug for AttemptRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = lock(&self.current);
        f.debug_struct("AttemptRouter")
            .field("attempt", &current.as_ref().map(|r| r.job.attempt))
            .finish()
    }
}

impl AttemptRouter {
    /// The task metrics TaskManagers reported.
    pub fn task_metrics(&self) -> &TaskMetricsStore {
        &self.metrics
    }

    /// The attempt deployed last (running or ended), if any.
    pub fn deployed(&self) -> Option<JobAttempt> {
        lock(&self.deployed).clone()
    }

    /// Whether the tasks of some attempt were deployed to every TaskManager it uses (the
    /// JobManager reports the job `RUNNING` only from then on).
    pub fn tasks_deployed(&self) -> bool {
        self.tasks_deployed
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The number a new execution's first attempt must get so that it is newer than every
    /// attempt deployed so far (TaskManagers and data servers fence older ones).
    pub fn next_attempt(&self) -> u32 {
        self.next_attempt.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Routes the reports of job `job_id` to `router` from now on (a session JobManager gives
    /// every submitted job its own router; a job submitted again under its ID replaces it).
    pub fn add_job(&self, job_id: &str, router: Arc<AttemptRouter>) {
        lock(&self.jobs).insert(job_id.to_string(), router);
    }

    /// The router of a session job, if `job` belongs to one.
    fn job_router(&self, job: Option<&JobAttempt>) -> Option<Arc<AttemptRouter>> {
        let job = job?;
        lock(&self.jobs).get(&job.job_id).cloned()
    }

    /// Records the task and operator metrics a TaskManager reported, each job's in its own
    /// router's store.
    pub fn record_task_metrics(
        &self,
        task_manager: &str,
        metrics: &[fjord_proto::v1::TaskMetrics],
        operators: &[fjord_proto::v1::OperatorMetric],
    ) {
        let routers = lock(&self.jobs).clone();
        if routers.is_empty() {
            self.metrics.record_all(task_manager, metrics, operators);
            return;
        }
        let job_of = |j: &Option<JobAttempt>| j.as_ref().map(|j| j.job_id.clone());
        let mut ids: Vec<Option<String>> = metrics
            .iter()
            .map(|m| job_of(&m.job))
            .chain(operators.iter().map(|m| job_of(&m.job)))
            .collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let tasks: Vec<_> = metrics
                .iter()
                .filter(|m| job_of(&m.job) == id)
                .cloned()
                .collect();
            let ops: Vec<_> = operators
                .iter()
                .filter(|m| job_of(&m.job) == id)
                .cloned()
                .collect();
            match id.as_ref().and_then(|id| routers.get(id)) {
                Some(router) => router.metrics.record_all(task_manager, &tasks, &ops),
                None => self.metrics.record_all(task_manager, &tasks, &ops),
            }
        }
    }

    fn running(&self, job: Option<&JobAttempt>) -> Option<Arc<Running>> {
        let current = lock(&self.current);
        let running = current.as_ref()?;
        (Some(&running.job) == job).then(|| running.clone())
    }

    /// Hands a task report of attempt `job` to the coordinator. Returns `true` (fenced) when
    /// `job` is not the running attempt.
    pub fn report(&self, job: Option<&JobAttempt>, report: TaskReport) -> bool {
        if let Some(router) = self.job_router(job) {
            return router.report(job, report);
        }
        match self.running(job) {
            Some(r) => {
                r.reports.report(report);
                false
            }
            None => true,
        }
    }

    /// Records that TaskManager `task_manager_id`'s part of attempt `job` ended. Returns `true`
    /// (fenced) when `job` is not the running attempt.
    pub fn attempt_ended(
        &self,
        task_manager_id: &str,
        job: Option<&JobAttempt>,
        epoch: u64,
        state: TaskState,
        failure: String,
    ) -> bool {
        if let Some(router) = self.job_router(job) {
            return router.attempt_ended(task_manager_id, job, epoch, state, failure);
        }
        match self.running(job) {
            Some(r) if r.epoch == epoch => {
                lock(&r.ended).insert(task_manager_id.to_string(), (state, failure));
                r.changed.notify_all();
                false
            }
            _ => true,
        }
    }
}

/// What the deployer sends every TaskManager about the job.
#[derive(Debug, Clone)]
pub struct JobDescription {
    /// The registered job name.
    pub name: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Settings applied before building it.
    pub settings: JobSettings,
}

/// Deploys attempts onto registered TaskManagers.
pub struct ClusterDeployer {
    registry: Arc<TaskManagerRegistry>,
    router: Arc<AttemptRouter>,
    runtime: tokio::runtime::Handle,
    job: JobDescription,
    slot_wait: Duration,
    /// Added to the engine's attempt numbers (0, 1, ...): the attempts of earlier executions
    /// of the job in this JobManager (before a rescale) come first.
    attempt_base: u32,
    /// Mutual TLS to the TaskManagers' RPC ports, when the cluster uses it.
    tls: Option<fjord::tls::InternalTls>,
}

impl ClusterDeployer {
    /// Calls TaskManagers over mutual TLS with `tls` (`None`: plain text).
    pub fn with_tls(mut self, tls: Option<fjord::tls::InternalTls>) -> Self {
        self.tls = tls;
        self
    }

    /// A deployer over `registry`, calling TaskManagers on `runtime`, waiting at most
    /// `slot_wait` for enough slots before an attempt fails. Its attempts are numbered after
    /// every attempt `router` saw deployed.
    pub fn new(
        registry: Arc<TaskManagerRegistry>,
        router: Arc<AttemptRouter>,
        runtime: tokio::runtime::Handle,
        job: JobDescription,
        slot_wait: Duration,
    ) -> Self {
        let attempt_base = router.next_attempt();
        ClusterDeployer {
            registry,
            router,
            runtime,
            job,
            slot_wait,
            attempt_base,
            tls: None,
        }
    }

    /// Waits until live TaskManagers offer `required` slots no other job holds, and claims
    /// them for attempt `attempt` of job `job_id` (see [`SlotLedger`](super::slots::SlotLedger));
    /// returns the TaskManagers with their free slots.
    fn wait_for_slots(
        &self,
        job_id: &str,
        attempt: u64,
        required: usize,
        cancel: &CancelToken,
    ) -> fjord::Result<Vec<LiveTaskManager>> {
        let deadline = Instant::now() + self.slot_wait;
        loop {
            let live = self.registry.live();
            let offered = match self
                .registry
                .ledger()
                .claim(job_id, attempt, &live, required)
            {
                Ok(free) => return Ok(free),
                Err(free) => free,
            };
            if cancel.is_cancelled() {
                return Err(FjordError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(FjordError::Cluster(format!(
                    "the job needs {required} task slots, but live TaskManagers offer {offered} \
                     free ones after waiting {:?}; start more TaskManagers or give them more \
                     slots (taskmanager.slots), or stop other jobs of the session",
                    self.slot_wait
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn client(&self, tm: &LiveTaskManager) -> fjord::Result<TaskManagerServiceClient<Channel>> {
        let _guard = self.runtime.enter();
        let channel = crate::tls::grpc_channel(&tm.rpc_address, self.tls.as_ref(), |e| {
            e.connect_timeout(Duration::from_secs(2))
                .timeout(CALL_TIMEOUT)
        })
        .map_err(|e| {
            FjordError::Cluster(format!(
                "TaskManager '{}' registered a bad RPC address {:?}: {e}",
                tm.id, tm.rpc_address
            ))
        })?;
        Ok(TaskManagerServiceClient::new(channel))
    }

    /// Places the slots of `spec` on `live` TaskManagers, round-robin over TaskManagers.
    fn place(spec: &AttemptSpec, live: &[LiveTaskManager]) -> (Vec<usize>, Vec<Vec<usize>>) {
        let mut slots = Vec::new();
        let most = live.iter().map(|t| t.slots).max().unwrap_or(0);
        'fill: for k in 0..most {
            for (i, tm) in live.iter().enumerate() {
                if slots.len() == spec.required_slots {
                    break 'fill;
                }
                if k < tm.slots {
                    slots.push(i);
                }
            }
        }
        let placement: Vec<Vec<usize>> = spec
            .slots
            .iter()
            .map(|v| v.iter().map(|slot| slots[*slot]).collect())
            .collect();
        (slots, placement)
    }

    /// Asks every TaskManager of the attempt to cancel its part; returns those that could not
    /// be reached (the call failed as unavailable: no process listens at its address, as after
    /// a node drain evicted it together with this JobManager).
    fn cancel_all(&self, running: &Running) -> BTreeSet<String> {
        let calls = running.workers.iter().map(|w| {
            let mut client = w.client.clone();
            let request = CancelAttemptRequest {
                job: Some(running.job.clone()),
                job_manager_epoch: running.epoch,
            };
            let id = w.id.clone();
            async move {
                match client.cancel_attempt(request).await {
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(task_manager = %id, error = %e.message(), "cancel failed");
                        (e.code() == tonic::Code::Unavailable).then_some(id)
                    }
                }
            }
        });
        self.runtime
            .block_on(futures_join_all(calls.collect()))
            .into_iter()
            .flatten()
            .collect()
    }

    /// Waits until every TaskManager still alive confirmed its part ended (or `CANCEL_WAIT`).
    /// One in `unreachable` is not waited for: it received no cancel, so nothing it could
    /// confirm would be an answer to it, and waiting would only last until its heartbeat
    /// times out (it is treated as lost then, as it is now).
    fn await_ended(&self, running: &Running, unreachable: &BTreeSet<String>) {
        let deadline = Instant::now() + CANCEL_WAIT;
        let mut ended = lock(&running.ended);
        loop {
            let live = self.registry.live();
            let outstanding: Vec<&str> = running
                .workers
                .iter()
                .filter(|w| {
                    !ended.contains_key(&w.id) && !unreachable.contains(&w.id) && is_alive(w, &live)
                })
                .map(|w| w.id.as_str())
                .collect();
            if outstanding.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    task_managers = ?outstanding,
                    wait_ms = CANCEL_WAIT.as_millis() as u64,
                    "TaskManagers did not confirm the cancellation in time; going on without them"
                );
                return;
            }
            ended = running
                .changed
                .wait_timeout(ended, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Why the attempt cannot go on, if it cannot: a lost TaskManager, a failed part, or a
    /// cancelled one. A lost TaskManager is the root cause even when a part on another one
    /// failed first: killing a TaskManager breaks its peers' data connections at once, long
    /// before its heartbeat times out. So when a part failed on a data exchange, the verdict
    /// waits until every other TaskManager of the attempt was heard from since (then the
    /// failure is the cause) or one of them is lost (then it is), at most the heartbeat
    /// timeout plus one interval.
    fn trouble(&self, running: &Running) -> Option<FjordError> {
        let failed = {
            let ended = lock(&running.ended);
            running.workers.iter().find_map(|w| match ended.get(&w.id) {
                Some((state @ (TaskState::Failed | TaskState::Canceled), failure)) => {
                    Some((w.id.clone(), *state, failure.clone()))
                }
                _ => None,
            })
        };
        let live = self.registry.live();
        let heartbeat = self.registry.heartbeat();
        if let Some(w) = running.workers.iter().find(|w| !is_alive(w, &live)) {
            let mut message = format!(
                "TaskManager '{}' was lost (no heartbeat within {} ms, or it registered again)",
                w.id, heartbeat.timeout_ms
            );
            match &failed {
                Some((id, TaskState::Failed, failure)) if *id != w.id => message.push_str(
                    &format!("; a task on TaskManager '{id}' failed as a consequence: {failure}"),
                ),
                Some((id, _, _)) if *id != w.id => message.push_str(&format!(
                    "; the tasks on TaskManager '{id}' ended as a consequence"
                )),
                _ => {}
            }
            return Some(FjordError::Cluster(message));
        }
        let (id, state, failure) = failed?;
        // A part that failed on a data exchange, or was cancelled without this JobManager
        // asking (its tasks saw a peer's connection break), may be the consequence of another
        // TaskManager's loss.
        if state == TaskState::Canceled || failure.contains("data exchange failed") {
            let seen = *lock(&running.exchange_failure_seen).get_or_insert_with(Instant::now);
            let peers_heard = running.workers.iter().filter(|w| w.id != id).all(|w| {
                self.registry
                    .last_heard(&w.id, w.registration)
                    .is_some_and(|t| t > seen)
            });
            let patience = Duration::from_millis(heartbeat.timeout_ms + heartbeat.interval_ms);
            if !peers_heard && seen.elapsed() < patience {
                return None;
            }
        }
        Some(FjordError::Cluster(if state == TaskState::Canceled {
            format!(
                "the tasks on TaskManager '{id}' were cancelled (it re-registered or received a newer attempt)"
            )
        } else {
            format!("a task on TaskManager '{id}' failed: {failure}")
        }))
    }

    fn all_finished(running: &Running) -> bool {
        let ended = lock(&running.ended);
        running
            .workers
            .iter()
            .all(|w| matches!(ended.get(&w.id), Some((TaskState::Finished, _))))
    }

    fn deploy(&self, running: &Running, request: DeployAttemptRequest) -> fjord::Result<()> {
        let calls = running.workers.iter().map(|w| {
            let mut client = w.client.clone();
            let request = request.clone();
            let id = w.id.clone();
            async move {
                match client.deploy_attempt(request).await {
                    Ok(answer) if answer.get_ref().accepted => Ok(()),
                    Ok(answer) => Err(FjordError::Cluster(format!(
                        "TaskManager '{id}' refused the deployment: {}",
                        answer.get_ref().refusal
                    ))),
                    Err(e) => Err(FjordError::Cluster(format!(
                        "cannot deploy to TaskManager '{id}': {}",
                        e.message()
                    ))),
                }
            }
        });
        let results = self.runtime.block_on(futures_join_all(calls.collect()));
        results.into_iter().collect()
    }
}

/// Releases an attempt's slot claim when dropped.
struct ClaimGuard<'a> {
    registry: &'a TaskManagerRegistry,
    job_id: &'a str,
    attempt: u64,
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        self.registry.ledger().release(self.job_id, self.attempt);
    }
}

/// True when the TaskManager that runs `w`'s part is still registered and alive (not lost,
/// not replaced by a restarted process under the same ID).
fn is_alive(w: &Worker, live: &[LiveTaskManager]) -> bool {
    live.iter()
        .any(|t| t.id == w.id && t.registration == w.registration)
}

/// Runs futures concurrently and collects their outputs in order.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: Vec<F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

impl Deployer for ClusterDeployer {
    fn run_attempt(
        &self,
        spec: &AttemptSpec,
        reports: ReportSink,
        cancel: &CancelToken,
    ) -> fjord::Result<()> {
        let mut spec = spec.clone();
        spec.attempt += self.attempt_base;
        let spec = &spec;
        self.router
            .next_attempt
            .fetch_max(spec.attempt + 1, std::sync::atomic::Ordering::SeqCst);
        let live = self.wait_for_slots(
            &spec.job_id,
            u64::from(spec.attempt),
            spec.required_slots,
            cancel,
        )?;
        // The claim goes with the attempt, however it ends.
        let _claim = ClaimGuard {
            registry: &self.registry,
            job_id: &spec.job_id,
            attempt: u64::from(spec.attempt),
        };
        let (slots, placement) = Self::place(spec, &live);
        let mut in_use = BTreeMap::new();
        for &tm in &slots {
            *in_use.entry(live[tm].id.clone()).or_insert(0u32) += 1;
        }
        self.registry.set_in_use(&in_use);
        // Only TaskManagers with a slot in use take part.
        let mut used: Vec<usize> = slots.clone();
        used.sort_unstable();
        used.dedup();
        let index_of = |tm: usize| used.iter().position(|u| *u == tm).expect("used");
        let plan = AttemptPlan {
            job_id: spec.job_id.clone(),
            epoch: self.registry.epoch(),
            attempt: spec.attempt,
            workers: used
                .iter()
                .map(|&i| WorkerAddress {
                    id: live[i].id.clone(),
                    data_address: live[i].data_address.clone(),
                })
                .collect(),
            placement: placement
                .iter()
                .map(|v| v.iter().map(|tm| index_of(*tm)).collect())
                .collect(),
            restore: spec.restore.clone(),
            allow_non_restored_state: spec.allow_non_restored_state,
        };
        let workers = used
            .iter()
            .map(|&i| {
                Ok(Worker {
                    id: live[i].id.clone(),
                    registration: live[i].registration,
                    client: self.client(&live[i])?,
                })
            })
            .collect::<fjord::Result<Vec<_>>>()?;
        let running = Arc::new(Running {
            job: job_attempt(&spec.job_id, spec.attempt),
            epoch: plan.epoch,
            owners: plan.placement.iter().flatten().copied().collect(),
            workers,
            reports,
            ended: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            exchange_failure_seen: Mutex::new(None),
        });
        *lock(&self.router.current) = Some(running.clone());
        *lock(&self.router.deployed) = Some(running.job.clone());
        let (workers, placement) = control::plan_fields(&plan);
        let request = DeployAttemptRequest {
            job: Some(running.job.clone()),
            job_manager_epoch: plan.epoch,
            job_name: self.job.name.clone(),
            job_args: self.job.args.clone(),
            settings: Some(self.job.settings.clone()),
            workers,
            placement,
            restore_checkpoint_path: plan.restore.clone().unwrap_or_default(),
            allow_non_restored_state: plan.allow_non_restored_state,
            job_manager_address: String::new(),
        };
        tracing::info!(
            attempt = spec.attempt,
            task_managers = ?plan.workers.iter().map(|w| &w.id).collect::<Vec<_>>(),
            restore = ?plan.restore,
            "deploying"
        );
        let outcome = match self.deploy(&running, request) {
            Err(e) => Err(e),
            Ok(()) => {
                self.router
                    .tasks_deployed
                    .store(true, std::sync::atomic::Ordering::SeqCst);
                running.reports.tasks_running();
                loop {
                    if cancel.is_cancelled() {
                        break Err(FjordError::Cancelled);
                    }
                    if let Some(e) = self.trouble(&running) {
                        break Err(e);
                    }
                    if Self::all_finished(&running) {
                        break Ok(());
                    }
                    let ended = lock(&running.ended);
                    drop(
                        running
                            .changed
                            .wait_timeout(ended, Duration::from_millis(50))
                            .unwrap_or_else(|p| p.into_inner()),
                    );
                }
            }
        };
        if outcome.is_err() {
            let unreachable = self.cancel_all(&running);
            self.await_ended(&running, &unreachable);
        }
        *lock(&self.router.current) = None;
        outcome
    }

    fn send(&self, attempt: u32, task: usize, command: TaskCommand) {
        let running = {
            let current = lock(&self.router.current);
            match current.as_ref() {
                Some(r) if r.job.attempt == u64::from(attempt + self.attempt_base) => r.clone(),
                _ => return,
            }
        };
        let Some(worker) = running
            .owners
            .get(task)
            .and_then(|w| running.workers.get(*w))
        else {
            return;
        };
        let request = control::command_request(running.job.clone(), running.epoch, task, &command);
        let mut client = worker.client.clone();
        let id = worker.id.clone();
        self.runtime.spawn(async move {
            match client.send_task_command(request).await {
                Err(e) => {
                    tracing::warn!(task_manager = %id, task, error = %e.message(), "task command failed");
                }
                Ok(answer) if answer.get_ref().fenced => {
                    tracing::warn!(task_manager = %id, task, "task command fenced: the TaskManager runs another attempt");
                }
                Ok(_) => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(id: &str, slots: u32) -> LiveTaskManager {
        LiveTaskManager {
            id: id.into(),
            data_address: format!("{id}:1"),
            rpc_address: format!("{id}:2"),
            slots,
            registration: 0,
        }
    }

    #[test]
    fn slots_are_taken_round_robin_over_task_managers() {
        let spec = AttemptSpec {
            job_id: "j".into(),
            attempt: 0,
            parallelism: vec![1, 3],
            slots: vec![vec![0], vec![0, 1, 2]],
            required_slots: 3,
            restore: None,
            allow_non_restored_state: false,
        };
        let (slots, placement) = ClusterDeployer::place(&spec, &[tm("a", 2), tm("b", 2)]);
        assert_eq!(slots, vec![0, 1, 0]);
        assert_eq!(placement, vec![vec![0], vec![0, 1, 0]]);
        let (slots, _) = ClusterDeployer::place(&spec, &[tm("a", 1), tm("b", 4)]);
        assert_eq!(slots, vec![0, 1, 1]);
    }
}
