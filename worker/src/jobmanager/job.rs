//! The job a JobManager runs: its lifecycle as an explicit state machine, and what the REST
//! API and `/metrics` read about it.
//!
//! All subtasks run in this process on the embedded mini-cluster for now; TaskManager
//! processes and the network exchange come later and will replace only [`JobManager::start`]'s
//! deployment, not the state machine or what the API reports.

use crate::WorkerError;
use crate::local::{self, LocalRun};
use fjord::runtime::io_metrics::{IoMetrics, OperatorIo};
use fjord::{FjordError, JobPlan, JobRegistry};
use fjord_client::api::{
    Edge, JobDetails, JobState, JobSummary, OperatorMetrics, SubtaskMetrics, Vertex,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// What happens to a job; [`transition`] decides the next state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// Its tasks were deployed.
    Deployed,
    /// Someone asked to cancel it (REST or signal).
    CancelRequested,
    /// Every task ended successfully.
    Finished,
    /// A task failed; the message is the root cause.
    Failed(String),
    /// The tasks stopped after a cancel request.
    Cancelled,
}

/// The job lifecycle in one place: the state after `event` in state `from`, or `None` when the
/// event does not apply (for example a cancel request after the job finished).
pub fn transition(from: JobState, event: &JobEvent) -> Option<JobState> {
    use JobEvent as E;
    use JobState as S;
    match (from, event) {
        (S::Created, E::Deployed) => Some(S::Running),
        (S::Created | S::Running, E::CancelRequested) => Some(S::Cancelling),
        (S::Created | S::Running | S::Cancelling, E::Finished) => Some(S::Finished),
        (S::Created | S::Running | S::Cancelling, E::Failed(_)) => Some(S::Failed),
        (S::Created | S::Running | S::Cancelling, E::Cancelled) => Some(S::Canceled),
        _ => None,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn new_job_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

struct Status {
    state: JobState,
    failure: Option<String>,
    end_time_ms: Option<i64>,
    ended: Option<Instant>,
}

/// The JobManager's one job.
pub struct JobManager {
    id: String,
    run: LocalRun,
    plan: JobPlan,
    io: IoMetrics,
    cancel: Box<dyn Fn() + Send + Sync>,
    start_time_ms: i64,
    started: Instant,
    status: Mutex<Status>,
    state_tx: watch::Sender<JobState>,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager")
            .field("id", &self.id)
            .field("job", &self.run.job)
            .field("state", &self.state())
            .finish()
    }
}

impl JobManager {
    /// Builds the job from `registry` and starts it on the embedded mini-cluster (every subtask
    /// in this process). Returns once the tasks are deployed; the job runs in the background.
    ///
    /// # Errors
    /// An unknown job name (listing the registered ones), malformed arguments, or an error the
    /// job's build function returns; nothing runs then.
    pub fn start(registry: &JobRegistry, run: &LocalRun) -> Result<Arc<Self>, WorkerError> {
        let env = local::prepare(registry, run)?;
        let plan = env.get_execution_plan()?;
        let (state_tx, _) = watch::channel(JobState::Created);
        let client = env.execute_async(&run.job)?;
        let job = Arc::new(JobManager {
            id: new_job_id(),
            run: run.clone(),
            plan,
            io: client.io_metrics(),
            cancel: Box::new(client.canceller()),
            start_time_ms: now_ms(),
            started: Instant::now(),
            status: Mutex::new(Status {
                state: JobState::Created,
                failure: None,
                end_time_ms: None,
                ended: None,
            }),
            state_tx,
        });
        job.apply(JobEvent::Deployed);
        let waiter = job.clone();
        std::thread::Builder::new()
            .name("job waiter".into())
            .spawn(move || {
                let event = match client.wait() {
                    Ok(_) => JobEvent::Finished,
                    Err(FjordError::Cancelled) => JobEvent::Cancelled,
                    Err(e) => JobEvent::Failed(e.to_string()),
                };
                waiter.apply(event);
            })
            .map_err(|e| FjordError::io("cannot start the job waiter thread", e))?;
        tracing::info!(job = %run.job, id = %job.id, "job deployed on the embedded mini-cluster");
        Ok(job)
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `event`; returns the new state, or `None` if the event did not apply.
    fn apply(&self, event: JobEvent) -> Option<JobState> {
        let mut s = self.status();
        let next = transition(s.state, &event)?;
        s.state = next;
        if let JobEvent::Failed(message) = &event {
            tracing::error!(job = %self.run.job, error = %message, "job failed");
            s.failure = Some(message.clone());
        }
        if next.is_terminal() {
            s.end_time_ms = Some(now_ms());
            s.ended = Some(Instant::now());
            tracing::info!(job = %self.run.job, state = %next, "job ended");
        }
        drop(s);
        self.state_tx.send_replace(next);
        Some(next)
    }

    /// The job ID (32 hex digits).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current state.
    pub fn state(&self) -> JobState {
        self.status().state
    }

    /// The failure cause when the job failed.
    pub fn failure(&self) -> Option<String> {
        self.status().failure.clone()
    }

    /// Asks the job to stop without a savepoint; returns the state after the request. A job that
    /// already ended keeps its terminal state.
    pub fn cancel(&self) -> JobState {
        match self.apply(JobEvent::CancelRequested) {
            Some(state) => {
                tracing::info!(job = %self.run.job, "cancelling the job");
                (self.cancel)();
                state
            }
            None => self.state(),
        }
    }

    /// Waits until the job reached a terminal state and returns it.
    pub async fn terminated(&self) -> JobState {
        let mut rx = self.state_tx.subscribe();
        match rx.wait_for(|s| s.is_terminal()).await {
            Ok(state) => *state,
            Err(_) => self.state(),
        }
    }

    /// Seconds the job has been running (until it ended).
    pub fn uptime_seconds(&self) -> f64 {
        let end = self.status().ended.unwrap_or_else(Instant::now);
        end.duration_since(self.started).as_secs_f64()
    }

    /// Records in and out of every operator subtask.
    pub fn io(&self) -> Vec<OperatorIo> {
        self.io.snapshot()
    }

    /// The job's plan (vertices and edges).
    pub fn plan(&self) -> &JobPlan {
        &self.plan
    }

    /// The registered job name.
    pub fn name(&self) -> &str {
        &self.run.job
    }

    /// The job in `GET /v1/jobs`.
    pub fn summary(&self) -> JobSummary {
        JobSummary {
            id: self.id.clone(),
            name: self.run.job.clone(),
            state: self.state(),
        }
    }

    /// The job in `GET /v1/jobs/{job_id}`.
    pub fn details(&self) -> JobDetails {
        let (state, failure, end_time_ms) = {
            let s = self.status();
            (s.state, s.failure.clone(), s.end_time_ms)
        };
        let io = self.io();
        let vertices = self.plan.vertices.iter().map(|v| vertex(v, &io)).collect();
        JobDetails {
            id: self.id.clone(),
            name: self.run.job.clone(),
            args: self.run.args.clone(),
            state,
            failure,
            start_time_ms: self.start_time_ms,
            end_time_ms,
            duration_ms: (self.uptime_seconds() * 1000.0) as i64,
            restarts: 0,
            vertices,
            edges: self
                .plan
                .edges
                .iter()
                .map(|e| Edge {
                    source: e.source,
                    target: e.target,
                    partitioner: e.partitioner.clone(),
                    side_output: e.side_output.clone(),
                })
                .collect(),
        }
    }
}

/// A vertex with its counts: a subtask's records in are its chain head's, its records out its
/// chain's last operator's (Flink's task-level numRecordsIn/Out).
fn vertex(v: &fjord::graph_plan::VertexPlan, io: &[OperatorIo]) -> Vertex {
    let last = v.operators.len().saturating_sub(1);
    let of = |position: usize, subtask: usize| {
        io.iter()
            .find(|o| o.vertex == v.id && o.position == position && o.subtask == subtask)
    };
    let subtasks: Vec<SubtaskMetrics> = (0..v.parallelism)
        .map(|subtask| SubtaskMetrics {
            subtask,
            records_in: of(0, subtask).map_or(0, |o| o.records_in),
            records_out: of(last, subtask).map_or(0, |o| o.records_out),
        })
        .collect();
    let operators = v
        .operators
        .iter()
        .enumerate()
        .map(|(position, name)| {
            let mine = io
                .iter()
                .filter(|o| o.vertex == v.id && o.position == position);
            let (records_in, records_out) =
                mine.fold((0, 0), |(i, o), e| (i + e.records_in, o + e.records_out));
            OperatorMetrics {
                name: name.clone(),
                records_in,
                records_out,
            }
        })
        .collect();
    Vertex {
        id: v.id,
        name: v.name.clone(),
        parallelism: v.parallelism,
        max_parallelism: v.max_parallelism,
        records_in: subtasks.iter().map(|s| s.records_in).sum(),
        records_out: subtasks.iter().map(|s| s.records_out).sum(),
        subtasks,
        operators,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_table() {
        use JobEvent as E;
        use JobState as S;
        let failed = E::Failed("boom".into());
        let cases: &[(S, &JobEvent, Option<S>)] = &[
            (S::Created, &E::Deployed, Some(S::Running)),
            (S::Running, &E::Finished, Some(S::Finished)),
            (S::Running, &failed, Some(S::Failed)),
            (S::Running, &E::CancelRequested, Some(S::Cancelling)),
            (S::Cancelling, &E::Cancelled, Some(S::Canceled)),
            // A job that finished while a cancel was under way finished.
            (S::Cancelling, &E::Finished, Some(S::Finished)),
            (S::Finished, &E::CancelRequested, None),
            (S::Failed, &E::Cancelled, None),
            (S::Canceled, &E::Deployed, None),
            (S::Running, &E::Deployed, None),
        ];
        for (from, event, to) in cases {
            assert_eq!(transition(*from, event), *to, "{from} + {event:?}");
        }
    }
}
