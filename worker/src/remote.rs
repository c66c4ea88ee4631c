//! Client commands against a running JobManager's REST API (Flink's `flink savepoint`,
//! `flink checkpoint`, `flink stop`, `flink cancel`): `fjord savepoint`, `fjord checkpoint`,
//! `fjord stop`, `fjord cancel`.

use crate::WorkerError;
use fjord_client::api::{
    CheckpointTriggerRequest, CheckpointType, JobState, OperationState, SavepointRequest,
    SavepointState,
};
use fjord_client::{Client, Security};
use std::time::{Duration, Instant};

/// Where the JobManager is and which job to act on.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The JobManager's REST address, e.g. `http://localhost:8081`.
    #[arg(
        long,
        short = 'm',
        env = "FJORD_JOBMANAGER",
        default_value = "http://localhost:8081"
    )]
    pub jobmanager: String,
    /// The job ID; defaults to the JobManager's only job (application mode).
    #[arg(long)]
    pub job: Option<String>,
    /// File holding the JobManager's REST bearer token, sent as `Authorization: Bearer`.
    #[arg(long, env = "FJORD_REST_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// PEM CA file to trust for an `https://` JobManager (e.g. the ca.crt of the StreamJob's
    /// certificate Secret).
    #[arg(long, env = "FJORD_REST_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

fn fail(what: &str, e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Job(fjord::FjordError::CheckpointFailed(format!("{what}: {e}")))
}

fn runtime() -> Result<tokio::runtime::Runtime, WorkerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| WorkerError::Job(fjord::FjordError::io("cannot start the client runtime", e)))
}

async fn connect(target: &Target) -> Result<(Client, String), WorkerError> {
    let root = format!(
        "{}/v1",
        target
            .jobmanager
            .trim_end_matches('/')
            .trim_end_matches("/v1")
    );
    let security = Security::from_files(target.token_file.as_deref(), target.ca_file.as_deref())
        .map_err(|e| fail("client settings", e))?;
    let client =
        Client::secured(&root, &security).map_err(|e| fail("bad JobManager address", e))?;
    let job = match &target.job {
        Some(id) => id.clone(),
        None => {
            let jobs = client
                .jobs()
                .await
                .map_err(|e| fail(&format!("cannot reach the JobManager at {root}"), e))?;
            match jobs.jobs.as_slice() {
                [one] => one.id.clone(),
                [] => {
                    return Err(fail(
                        "no job",
                        format!("the JobManager at {root} runs no job"),
                    ));
                }
                _ => return Err(fail("several jobs", "pass --job <id>")),
            }
        }
    };
    Ok((client, job))
}

/// Triggers a savepoint (or stop-with-savepoint) and waits for it; returns its path.
///
/// # Errors
/// The JobManager cannot be reached, rejects the request, the savepoint fails, or it does not
/// complete within `timeout`.
pub fn savepoint(
    target: &Target,
    directory: Option<String>,
    stop: Option<bool>,
    timeout: Duration,
) -> Result<String, WorkerError> {
    runtime()?.block_on(async {
        let (client, job) = connect(target).await?;
        let request = SavepointRequest {
            trigger_id: format!("cli-{:016x}", rand_id()),
            directory,
            drain: stop.unwrap_or(false),
        };
        let accepted = match stop {
            None => client.trigger_savepoint(&job, &request).await,
            Some(_) => client.stop_with_savepoint(&job, &request).await,
        }
        .map_err(|e| fail("the JobManager refused the savepoint", e))?;
        let deadline = Instant::now() + timeout;
        loop {
            let status = client
                .savepoint_status(&job, &accepted.trigger_id)
                .await
                .map_err(|e| fail("cannot read the savepoint status", e))?;
            match status.state {
                SavepointState::Completed => return Ok(status.path.unwrap_or_default()),
                SavepointState::Failed => {
                    return Err(fail("savepoint failed", status.failure.unwrap_or_default()));
                }
                SavepointState::InProgress if Instant::now() > deadline => {
                    return Err(fail(
                        "savepoint",
                        format!(
                            "not complete after {timeout:?}; it may still complete (trigger {})",
                            accepted.trigger_id
                        ),
                    ));
                }
                SavepointState::InProgress => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Triggers a checkpoint (full with `full`, else the job's configured kind) and waits for it;
/// returns its path.
///
/// # Errors
/// The JobManager cannot be reached, rejects the request, the checkpoint fails, or it does
/// not complete within `timeout`.
pub fn checkpoint(target: &Target, full: bool, timeout: Duration) -> Result<String, WorkerError> {
    runtime()?.block_on(async {
        let (client, job) = connect(target).await?;
        let request = CheckpointTriggerRequest {
            checkpoint_type: if full {
                CheckpointType::Full
            } else {
                CheckpointType::Configured
            },
            trigger_id: Some(format!("cli-{:016x}", rand_id())),
        };
        let accepted = client
            .trigger_checkpoint(&job, &request)
            .await
            .map_err(|e| fail("the JobManager refused the checkpoint", e))?;
        let deadline = Instant::now() + timeout;
        loop {
            let status = client
                .checkpoint_trigger_status(&job, &accepted.request_id)
                .await
                .map_err(|e| fail("cannot read the checkpoint status", e))?;
            if let Some(failure) = status.failure() {
                return Err(fail("checkpoint failed", failure));
            }
            match (status.status.id, status.operation) {
                (OperationState::Completed, Some(op)) => return Ok(op.path.unwrap_or_default()),
                _ if Instant::now() > deadline => {
                    return Err(fail(
                        "checkpoint",
                        format!(
                            "not complete after {timeout:?}; it may still complete (trigger {})",
                            accepted.request_id
                        ),
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Cancels the job; returns its state afterwards.
///
/// # Errors
/// The JobManager cannot be reached or rejects the request.
pub fn cancel(target: &Target) -> Result<JobState, WorkerError> {
    runtime()?.block_on(async {
        let (client, job) = connect(target).await?;
        let answer = client
            .cancel(&job)
            .await
            .map_err(|e| fail("the JobManager refused to cancel", e))?;
        Ok(answer.state)
    })
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}
