//! The JobManager's configuration: command-line flags, environment variables and a config file,
//! in that order of precedence, over documented defaults (see `docs/configuration.md`).
//!
//! The config file is the flat YAML map the operator writes into the job's ConfigMap
//! (`key: "value"` lines); values may also be plain YAML scalars, and `job.args` a YAML list or
//! a JSON array in a string. `s3.*` keys configure the storage; keys this version does not use
//! (TaskManager keys) are accepted and ignored. The `heartbeat.*` keys are shared with the
//! TaskManagers, which read the same file.

use crate::WorkerError;
use crate::local::LocalRun;
use clap::Args;
use fjord_client::api::ClusterConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default REST port.
pub const DEFAULT_REST_PORT: u16 = 8081;
/// Default RPC port (the gRPC control plane TaskManagers register with).
pub const DEFAULT_RPC_PORT: u16 = 6123;
/// Default REST bind address.
pub const DEFAULT_REST_ADDRESS: &str = "0.0.0.0";
/// Default largest REST request body: 10 MiB (Flink's 100 MiB is sized for jar uploads, which
/// Fjord's REST API does not take; its largest body is a session job's SQL script).
pub const DEFAULT_REST_MAX_CONTENT_LENGTH: u64 = 10 << 20;

/// `fjord jobmanager` flags. Every flag also reads the environment variable named in its help;
/// unset flags fall back to the config file, then to the default.
#[derive(Args, Debug, Clone, Default)]
pub struct JobManagerArgs {
    /// Config file (flat YAML map, as the operator writes it).
    #[arg(long, env = "FJORD_CONFIG")]
    pub config: Option<PathBuf>,
    /// REST port [key jobmanager.rest.port, default 8081; 0 picks a free port].
    #[arg(long, env = "FJORD_REST_PORT")]
    pub rest_port: Option<u16>,
    /// REST bind address [key jobmanager.rest.address, default 0.0.0.0].
    #[arg(long, env = "FJORD_REST_ADDRESS")]
    pub rest_address: Option<String>,
    /// Largest REST request body in bytes; larger requests are answered 413 [key
    /// rest.server.max-content-length, default 10485760 = 10 MiB].
    #[arg(long, env = "FJORD_REST_MAX_CONTENT_LENGTH")]
    pub rest_max_content_length: Option<u64>,
    /// Address the gRPC port binds to [key jobmanager.rpc.bind-address, default: the REST
    /// address].
    #[arg(long, env = "FJORD_RPC_BIND_ADDRESS")]
    pub rpc_bind_address: Option<String>,
    /// gRPC port TaskManagers register with [key
    /// jobmanager.rpc.port, default: the port of jobmanager.rpc.address, else 6123; 0 picks a
    /// free port].
    #[arg(long, env = "FJORD_RPC_PORT")]
    pub rpc_port: Option<u16>,
    /// How often TaskManagers send heartbeats, in ms [key heartbeat.interval-ms, default 1000].
    #[arg(long, env = "FJORD_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// A TaskManager without a heartbeat for this many ms is marked lost [key
    /// heartbeat.timeout-ms, default 10000].
    #[arg(long, env = "FJORD_HEARTBEAT_TIMEOUT_MS")]
    pub heartbeat_timeout_ms: Option<u64>,
    /// Before starting the job, wait up to this long (e.g. 60s) until registered TaskManagers
    /// offer the slots the job needs; fail if they do not [key jobmanager.wait-for-slots,
    /// default 0 = do not wait].
    #[arg(long, env = "FJORD_WAIT_FOR_SLOTS", value_parser = crate::cli::parse_duration)]
    pub wait_for_slots: Option<Duration>,
    /// Default parallelism [key job.parallelism, default: number of cores].
    #[arg(short = 'p', long, env = "FJORD_PARALLELISM")]
    pub parallelism: Option<usize>,
    /// Max parallelism (key groups) [key job.max-parallelism, default: Flink's rule].
    #[arg(long, env = "FJORD_MAX_PARALLELISM")]
    pub max_parallelism: Option<usize>,
    /// Checkpoint storage URL: file:///path, s3://bucket/prefix or memory://name [key
    /// checkpointing.storage, default memory://fjord-checkpoints].
    #[arg(long, env = "FJORD_STORAGE_URL")]
    pub storage_url: Option<String>,
    /// Checkpoint interval in ms; unset or 0 disables checkpoints [key checkpointing.interval-ms].
    #[arg(long, env = "FJORD_CHECKPOINT_INTERVAL_MS")]
    pub checkpoint_interval_ms: Option<u64>,
    /// Default savepoint directory (a URL) [key savepoints.directory].
    #[arg(long, env = "FJORD_SAVEPOINT_DIR")]
    pub savepoint_dir: Option<String>,
    /// Start from this savepoint or checkpoint (a URL) [key restore.path].
    #[arg(long, env = "FJORD_RESTORE_PATH")]
    pub restore_path: Option<String>,
    /// With a restore path: drop state of operators the job no longer has instead of failing
    /// [key restore.allow-non-restored-state, default false].
    #[arg(long, env = "FJORD_ALLOW_NON_RESTORED_STATE")]
    pub allow_non_restored_state: bool,
    /// Exit when the job ends, with its exit code, instead of serving its final state until
    /// SIGTERM [key jobmanager.exit-on-finish, default false].
    #[arg(long, env = "FJORD_EXIT_ON_FINISH")]
    pub exit_on_finish: bool,
    /// Where subtasks run: `taskmanagers` deploys them to registered TaskManagers (as the
    /// operator's clusters do), `embedded` runs them all in this process [key
    /// jobmanager.scheduler, default embedded].
    #[arg(long, env = "FJORD_SCHEDULER")]
    pub scheduler: Option<String>,
    /// The job ID (32 hex digits): checkpoints go to <storage>/<job id>/, and a restarted
    /// JobManager resumes from the latest one found there [key job.id, default: random with
    /// the embedded scheduler, derived from the job name and arguments with taskmanagers].
    #[arg(long, env = "FJORD_JOB_ID")]
    pub job_id: Option<String>,
    /// The cluster this JobManager belongs to: TaskManagers started for another cluster (or
    /// none) are refused (they keep trying), so the Pods of a cluster being replaced cannot join the new
    /// one [key cluster.id, set by the operator; default: none, any TaskManager may register].
    #[arg(long, env = "FJORD_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Transport security (TLS, REST token).
    #[command(flatten)]
    pub security: crate::tls::SecurityArgs,
    /// High availability (leader election between JobManagers).
    #[command(flatten)]
    pub ha: super::ha::HaArgs,
    /// Session mode: start no job; run the jobs submitted with `POST /v1/jobs`, sharing the
    /// TaskManagers' slots between them (Flink's session cluster) [key jobmanager.mode:
    /// session, default application].
    #[arg(long, env = "FJORD_SESSION")]
    pub session: bool,
    /// The registered job to run (not in session mode) [key job.name; env FJORD_JOB_NAME].
    #[arg(env = "FJORD_JOB_NAME")]
    pub job: Option<String>,
    /// The job's arguments [key job.args; env FJORD_JOB_ARGS as a JSON array].
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The effective JobManager configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobManagerConfig {
    /// REST bind address.
    pub rest_address: String,
    /// REST port (0 = any free port).
    pub rest_port: u16,
    /// Largest REST request body in bytes (`rest.server.max-content-length`).
    pub rest_max_content_length: u64,
    /// RPC bind address (gRPC control plane).
    pub rpc_address: String,
    /// RPC port (gRPC control plane; 0 = any free port).
    pub rpc_port: u16,
    /// TLS and REST authentication.
    pub security: crate::tls::SecurityConfig,
    /// Heartbeat interval and timeout handed to TaskManagers.
    pub heartbeat: fjord_proto::HeartbeatSettings,
    /// How long to wait for enough slots before starting the job (zero: do not wait).
    pub wait_for_slots: Duration,
    /// The job to run, with its arguments and parallelism.
    pub job: LocalRun,
    /// Checkpoint storage URL (`None`: the engine's default, `memory://fjord-checkpoints`).
    pub storage_url: Option<String>,
    /// Checkpoint interval in ms (`None` or 0: no periodic checkpoints).
    pub checkpoint_interval_ms: Option<u64>,
    /// At-least-once instead of exactly-once checkpoints.
    pub at_least_once: bool,
    /// Completed checkpoints to keep in storage.
    pub retained: Option<usize>,
    /// Keep the retained checkpoints when the job is cancelled (SIGTERM included), so a new
    /// JobManager can restore the latest one (the operator's `last-state` upgrades).
    pub retain_on_cancellation: bool,
    /// Default savepoint directory.
    pub savepoint_dir: Option<String>,
    /// Savepoint or checkpoint to start from.
    pub restore_path: Option<String>,
    /// Drop state of operators the job no longer has when restoring.
    pub allow_non_restored_state: bool,
    /// Storage settings (`s3.*` keys of the config file).
    pub storage_options: BTreeMap<String, String>,
    /// Exit when the job ends instead of serving its final state.
    pub exit_on_finish: bool,
    /// Deploy subtasks to TaskManagers (true) or run them in this process.
    pub on_task_managers: bool,
    /// The configured job ID, if any.
    pub job_id: Option<String>,
    /// The cluster ID TaskManagers must match (`cluster.id`), if any.
    pub cluster_id: Option<String>,
    /// Session mode: no job of its own; jobs are submitted over REST (see
    /// [`session`](super::session)).
    pub session: bool,
    /// High availability: leader election before the job starts (`None`: this JobManager
    /// leads at once, alone).
    pub ha: Option<super::ha::HaConfig>,
}

fn bad(key: &str, value: &str, expected: &str) -> WorkerError {
    WorkerError::Config(format!(
        "configuration key {key} = {value:?} is not {expected}"
    ))
}

/// The config file as a flat map of string values.
pub(crate) fn read_file(path: &Path) -> Result<BTreeMap<String, String>, WorkerError> {
    let text = std::fs::read_to_string(path).map_err(|source| WorkerError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        WorkerError::Config(format!(
            "{} is not valid YAML: {e}; expected a flat map of keys such as jobmanager.rest.port",
            path.display()
        ))
    })?;
    let mut out = BTreeMap::new();
    let serde_yaml::Value::Mapping(map) = value else {
        if value.is_null() {
            return Ok(out); // an empty file
        }
        return Err(WorkerError::Config(format!(
            "{} must be a flat YAML map of keys such as jobmanager.rest.port",
            path.display()
        )));
    };
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            return Err(WorkerError::Config(format!(
                "{}: keys must be strings, found {k:?}",
                path.display()
            )));
        };
        let text = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Null => continue,
            seq @ serde_yaml::Value::Sequence(_) if key == "job.args" => {
                let items: Vec<String> = serde_yaml::from_value(seq).map_err(|e| {
                    WorkerError::Config(format!("job.args must be a list of strings: {e}"))
                })?;
                serde_json::to_string(&items).unwrap_or_default()
            }
            other => {
                return Err(WorkerError::Config(format!(
                    "{}: key {key} must have a scalar value, found {other:?}",
                    path.display()
                )));
            }
        };
        out.insert(key.to_string(), text);
    }
    Ok(out)
}

/// The object-store settings of a config file: its `s3.*` keys (shared by the JobManager and
/// TaskManagers, which open the same checkpoint and savepoint locations).
pub(crate) fn storage_options(file: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    file.iter()
        .filter(|(k, _)| k.starts_with("s3."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) fn parse<T: std::str::FromStr>(
    file: &BTreeMap<String, String>,
    key: &str,
    expected: &str,
) -> Result<Option<T>, WorkerError> {
    file.get(key)
        .map(|v| v.trim().parse::<T>().map_err(|_| bad(key, v, expected)))
        .transpose()
}

fn json_args(key: &str, text: &str) -> Result<Vec<String>, WorkerError> {
    serde_json::from_str(text).map_err(|_| bad(key, text, "a JSON array of strings"))
}

impl JobManagerConfig {
    /// Merges flags (and their environment variables) over the config file over defaults.
    ///
    /// # Errors
    /// [`WorkerError::Config`] naming the key for an unreadable file or a malformed value, when
    /// no job is named (outside session mode), or when high availability is asked for without
    /// what it needs (one job, a stable job ID, durable checkpoint storage).
    pub fn resolve(args: JobManagerArgs) -> Result<Self, WorkerError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let at_least_once = match file.get("checkpointing.mode").map(|m| m.trim()) {
            None | Some("exactly-once") | Some("exactly_once") => false,
            Some("at-least-once") | Some("at_least_once") => true,
            Some(other) => {
                return Err(bad(
                    "checkpointing.mode",
                    other,
                    "exactly-once or at-least-once",
                ));
            }
        };
        let security = crate::tls::SecurityConfig::resolve(&args.security, &file)?;
        let rest_address = args
            .rest_address
            .clone()
            .or_else(|| file.get("jobmanager.rest.address").cloned())
            .unwrap_or_else(|| DEFAULT_REST_ADDRESS.into());
        let rpc_address = args
            .rpc_bind_address
            .clone()
            .or_else(|| file.get("jobmanager.rpc.bind-address").cloned())
            .unwrap_or_else(|| rest_address.clone());
        let rpc_from_address = file
            .get("jobmanager.rpc.address")
            .and_then(|a| a.rsplit_once(':'))
            .map(|(_, port)| {
                port.parse::<u16>()
                    .map_err(|_| bad("jobmanager.rpc.address", port, "host:port"))
            })
            .transpose()?;
        let session = args.session
            || match file.get("jobmanager.mode").map(|m| m.trim()) {
                None | Some("application") => false,
                Some("session") => true,
                Some(other) => return Err(bad("jobmanager.mode", other, "application or session")),
            };
        let job_name = args
            .job
            .or_else(|| file.get("job.name").cloned())
            .or_else(|| session.then(String::new))
            .ok_or_else(|| {
                WorkerError::Config(
                    "no job to run: name one as `fjord jobmanager <job> [args]`, with \
                     FJORD_JOB_NAME, or with job.name in the config file (see `fjord list`)"
                        .into(),
                )
            })?;
        let job_args = if !args.args.is_empty() {
            args.args
        } else if let Ok(env) = std::env::var("FJORD_JOB_ARGS") {
            json_args("FJORD_JOB_ARGS", &env)?
        } else if let Some(text) = file.get("job.args") {
            json_args("job.args", text)?
        } else {
            Vec::new()
        };
        let parallelism = args.parallelism.map(Some).unwrap_or(parse(
            &file,
            "job.parallelism",
            "a positive integer",
        )?);
        let max_parallelism = args.max_parallelism.map(Some).unwrap_or(parse(
            &file,
            "job.max-parallelism",
            "a positive integer",
        )?);
        if parallelism == Some(0) || max_parallelism == Some(0) {
            return Err(WorkerError::Config(
                "parallelism and max parallelism must be at least 1".into(),
            ));
        }
        let rest_max_content_length = match args.rest_max_content_length {
            Some(n) => n,
            None => parse(&file, "rest.server.max-content-length", "a number of bytes")?
                .unwrap_or(DEFAULT_REST_MAX_CONTENT_LENGTH),
        };
        if rest_max_content_length == 0 {
            return Err(bad(
                "rest.server.max-content-length",
                "0",
                "a positive number of bytes (default 10485760)",
            ));
        }
        let ha = super::ha::HaConfig::resolve(&args.ha, &file)?;
        let config = JobManagerConfig {
            ha,
            rest_address,
            rpc_address,
            security,
            rest_max_content_length,
            rest_port: args
                .rest_port
                .map(Some)
                .unwrap_or(parse(&file, "jobmanager.rest.port", "a port number")?)
                .unwrap_or(DEFAULT_REST_PORT),
            rpc_port: args
                .rpc_port
                .map(Some)
                .unwrap_or(parse(&file, "jobmanager.rpc.port", "a port number")?)
                .or(rpc_from_address)
                .unwrap_or(DEFAULT_RPC_PORT),
            heartbeat: heartbeat_settings(
                &file,
                args.heartbeat_interval_ms,
                args.heartbeat_timeout_ms,
            )?,
            wait_for_slots: match args.wait_for_slots {
                Some(d) => d,
                None => file
                    .get("jobmanager.wait-for-slots")
                    .map(|v| {
                        crate::cli::parse_duration(v)
                            .map_err(|_| bad("jobmanager.wait-for-slots", v, "a duration like 60s"))
                    })
                    .transpose()?
                    .unwrap_or(Duration::ZERO),
            },
            job: LocalRun {
                job: job_name,
                args: job_args,
                parallelism,
                max_parallelism,
            },
            storage_url: args
                .storage_url
                .or_else(|| file.get("checkpointing.storage").cloned()),
            checkpoint_interval_ms: args.checkpoint_interval_ms.map(Some).unwrap_or(parse(
                &file,
                "checkpointing.interval-ms",
                "a number of milliseconds",
            )?),
            at_least_once,
            retained: parse(&file, "checkpointing.retained", "a positive integer")?,
            retain_on_cancellation: parse(
                &file,
                "checkpointing.retain-on-cancellation",
                "true or false",
            )?
            .unwrap_or(false),
            savepoint_dir: args
                .savepoint_dir
                .or_else(|| file.get("savepoints.directory").cloned()),
            restore_path: args
                .restore_path
                .or_else(|| file.get("restore.path").cloned()),
            allow_non_restored_state: args.allow_non_restored_state
                || parse(&file, "restore.allow-non-restored-state", "true or false")?
                    .unwrap_or(false),
            storage_options: storage_options(&file),
            on_task_managers: match args
                .scheduler
                .or_else(|| file.get("jobmanager.scheduler").cloned())
                .as_deref()
                .map(str::trim)
            {
                None | Some("embedded") => false,
                Some("taskmanagers") => true,
                Some(other) => {
                    return Err(bad(
                        "jobmanager.scheduler",
                        other,
                        "embedded or taskmanagers",
                    ));
                }
            },
            job_id: match args.job_id.or_else(|| file.get("job.id").cloned()) {
                Some(id) if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) => {
                    Some(id.to_ascii_lowercase())
                }
                Some(id) => return Err(bad("job.id", &id, "32 hex digits")),
                None => None,
            },
            cluster_id: args
                .cluster_id
                .or_else(|| file.get("cluster.id").cloned())
                .filter(|id| !id.trim().is_empty()),
            exit_on_finish: args.exit_on_finish
                || parse(&file, "jobmanager.exit-on-finish", "true or false")?.unwrap_or(false),
            session,
        };
        config.check_ha()?;
        Ok(config)
    }

    /// What high availability needs: a stable job ID (outside session mode) and durable
    /// checkpoint storage, or a standby would have nothing to recover (a session's accepted
    /// submissions are recorded there too).
    fn check_ha(&self) -> Result<(), WorkerError> {
        if self.ha.is_none() {
            return Ok(());
        }
        if !self.session && !self.on_task_managers && self.job_id.is_none() {
            return Err(WorkerError::Config(
                "high-availability.type needs a stable job ID: set job.id (--job-id), or run the subtasks on TaskManagers (jobmanager.scheduler: taskmanagers)"
                    .into(),
            ));
        }
        if self
            .storage_url
            .as_deref()
            .is_none_or(|u| u.starts_with("memory://"))
        {
            return Err(WorkerError::Config(
                "high-availability.type needs durable checkpoint storage every JobManager reaches (checkpointing.storage: file:// on a shared directory or s3://): a standby recovers the job from its latest checkpoint"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The configuration as the REST API shows it, with credentials removed from URLs.
    pub fn to_api(&self, rest_port: u16) -> ClusterConfig {
        ClusterConfig {
            version: env!("CARGO_PKG_VERSION").into(),
            execution: if self.on_task_managers {
                "taskmanagers".into()
            } else {
                "embedded".into()
            },
            rest_port,
            rpc_port: self.rpc_port,
            job_name: self.job.job.clone(),
            job_args: self.job.args.clone(),
            parallelism: self.job.parallelism,
            max_parallelism: self.job.max_parallelism,
            storage_url: self.storage_url.as_deref().map(redact_url),
            checkpoint_interval_ms: self.checkpoint_interval_ms,
            savepoint_dir: self.savepoint_dir.as_deref().map(redact_url),
            restore_path: self.restore_path.as_deref().map(redact_url),
        }
    }
}

/// Default heartbeat interval in ms.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 1_000;
/// Default heartbeat timeout in ms.
pub const DEFAULT_HEARTBEAT_TIMEOUT_MS: u64 = 10_000;

/// The `heartbeat.*` keys (shared by JobManager and TaskManager): flags over the file over
/// the defaults.
///
/// # Errors
/// [`WorkerError::Config`] for a malformed value, a zero interval, or a timeout not longer
/// than the interval.
pub fn heartbeat_settings(
    file: &BTreeMap<String, String>,
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
) -> Result<fjord_proto::HeartbeatSettings, WorkerError> {
    let interval_ms = interval_ms
        .map(Some)
        .unwrap_or(parse(
            file,
            "heartbeat.interval-ms",
            "a number of milliseconds",
        )?)
        .unwrap_or(DEFAULT_HEARTBEAT_INTERVAL_MS);
    let timeout_ms = timeout_ms
        .map(Some)
        .unwrap_or(parse(
            file,
            "heartbeat.timeout-ms",
            "a number of milliseconds",
        )?)
        .unwrap_or(DEFAULT_HEARTBEAT_TIMEOUT_MS);
    if interval_ms == 0 || timeout_ms <= interval_ms {
        return Err(WorkerError::Config(format!(
            "heartbeat.interval-ms = {interval_ms} and heartbeat.timeout-ms = {timeout_ms}: the \
             interval must be at least 1 and the timeout longer than the interval (Flink uses \
             10000 and 50000)"
        )));
    }
    Ok(fjord_proto::HeartbeatSettings {
        interval_ms,
        timeout_ms,
    })
}

/// Replaces the user-info part of a URL (`s3://key:secret@host/...`) with `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the operator writes (operator/src/resources.rs `configuration`).
    const OPERATOR_FILE: &str = r#""checkpointing.interval-ms": "10000"
"checkpointing.mode": "exactly-once"
"checkpointing.retained": "3"
"checkpointing.storage": "s3://bucket/ckpt"
"job.args": "[\"--count\",\"4\"]"
"job.max-parallelism": "128"
"job.name": "transformations"
"job.parallelism": "2"
"jobmanager.rest.port": "8081"
"jobmanager.rpc.address": "t-jobmanager:6124"
"s3.endpoint": "http://minio:9000"
"savepoints.directory": "s3://bucket/sp"
"taskmanager.data.port": "6121"
"taskmanager.slots": "2"
"#;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fjord-conf.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_operators_config_map_is_understood() {
        let (_d, path) = file(OPERATOR_FILE);
        let c = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.rest_port, 8081);
        assert_eq!(c.rpc_port, 6124, "taken from jobmanager.rpc.address");
        assert_eq!(c.job.job, "transformations");
        assert_eq!(c.job.args, vec!["--count", "4"]);
        assert_eq!(c.job.parallelism, Some(2));
        assert_eq!(c.job.max_parallelism, Some(128));
        assert_eq!(c.storage_url.as_deref(), Some("s3://bucket/ckpt"));
        assert_eq!(c.checkpoint_interval_ms, Some(10_000));
        assert!(!c.exit_on_finish);
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let (_d, path) = file("jobmanager.rest.port: 9000\njob.name: a\njob.args: [x, y]\n");
        let c = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            rest_port: Some(0),
            job: Some("b".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((c.rest_port, c.job.job.as_str()), (0, "b"));
        assert_eq!(c.job.args, vec!["x", "y"], "plain YAML list accepted");
        assert_eq!(c.rpc_port, DEFAULT_RPC_PORT);
        assert_eq!(c.rest_address, DEFAULT_REST_ADDRESS);
        assert_eq!(c.job.parallelism, None);
    }

    #[test]
    fn bad_values_name_the_key() {
        let (_d, path) = file("job.name: a\njob.parallelism: two\n");
        let err = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("job.parallelism") && err.contains("\"two\""),
            "{err}"
        );
    }

    #[test]
    fn a_missing_job_says_how_to_name_one() {
        let err = JobManagerConfig::resolve(JobManagerArgs::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FJORD_JOB_NAME") && err.contains("job.name"),
            "{err}"
        );
    }

    #[test]
    fn session_mode_needs_no_job_and_a_bad_mode_names_the_key() {
        let (_d, path) = file("jobmanager.mode: session\njobmanager.scheduler: taskmanagers\n");
        let c = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert!(c.session && c.on_task_managers);
        let c = JobManagerConfig::resolve(JobManagerArgs {
            session: true,
            ..Default::default()
        })
        .unwrap();
        assert!(c.session && !c.on_task_managers);
        let (_d, path) = file("jobmanager.mode: cluster\n");
        let err = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("jobmanager.mode"), "{err}");
    }

    #[test]
    fn restore_and_checkpoint_keys_are_read() {
        let (_d, path) = file(
            "job.name: a\nrestore.path: s3://b/sp-1\nrestore.allow-non-restored-state: \"true\"\n\
             checkpointing.mode: at-least-once\ncheckpointing.retained: 2\ns3.endpoint: http://m:9000\n\
             checkpointing.retain-on-cancellation: \"true\"\n",
        );
        let c = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.restore_path.as_deref(), Some("s3://b/sp-1"));
        assert!(c.allow_non_restored_state && c.at_least_once);
        assert_eq!(c.retained, Some(2));
        assert!(c.retain_on_cancellation);
        assert_eq!(c.storage_options["s3.endpoint"], "http://m:9000");
    }

    #[test]
    fn an_unknown_checkpoint_mode_names_the_choices() {
        let (_d, path) = file("job.name: a\ncheckpointing.mode: sometimes\n");
        let err = JobManagerConfig::resolve(JobManagerArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("exactly-once or at-least-once"), "{err}");
    }

    #[test]
    fn credentials_are_removed_from_urls() {
        assert_eq!(redact_url("s3://k:s@host/b"), "s3://***@host/b");
        assert_eq!(redact_url("file:///tmp/x"), "file:///tmp/x");
        assert_eq!(redact_url("s3://bucket/a@b"), "s3://bucket/a@b");
    }
}
