//! The TaskManager's configuration: flags (and their environment variables) over the config
//! file the operator writes (the same ConfigMap the JobManager reads) over documented defaults
//! (see `docs/configuration.md`). Keys of other roles are accepted and ignored.

use crate::WorkerError;
use crate::jobmanager::config::{parse, read_file, storage_options};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default JobManager RPC address.
pub const DEFAULT_JOBMANAGER_ADDRESS: &str = "127.0.0.1:6123";
/// Default data port.
pub const DEFAULT_DATA_PORT: u16 = 6121;
/// Default port of the TaskManager's control-plane service (Flink's `taskmanager.rpc.port`
/// range starts at 6122).
pub const DEFAULT_RPC_PORT: u16 = 6122;
/// Default host: the address the data port binds to and is advertised as.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port of the Prometheus metrics server (Flink's Prometheus reporter's).
pub const DEFAULT_METRICS_PORT: u16 = 9249;
/// Default registration timeout.
pub const DEFAULT_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(300);

/// `fjord taskmanager` flags. Every flag also reads the environment variable named in its
/// help; unset flags fall back to the config file, then to the default.
#[derive(Args, Debug, Clone, Default)]
pub struct TaskManagerArgs {
    /// Config file (flat YAML map, as the operator writes it).
    #[arg(long, env = "FJORD_CONFIG")]
    pub config: Option<PathBuf>,
    /// The JobManager's RPC address, host:port [key jobmanager.rpc.address, default
    /// 127.0.0.1:6123]; with standby JobManagers (high availability outside Kubernetes) a
    /// comma-separated list: connections go to the one that listens, the leader.
    #[arg(long, env = "FJORD_JOBMANAGER_RPC_ADDRESS")]
    pub jobmanager_address: Option<String>,
    /// This TaskManager's ID, unique in the cluster [env FJORD_POD_NAME (set by the
    /// operator), key taskmanager.id, default taskmanager-<host>-<data port>].
    #[arg(long, env = "FJORD_POD_NAME")]
    pub id: Option<String>,
    /// The address the data port binds to and is advertised at [env FJORD_POD_IP (set by the
    /// operator), key taskmanager.host, default 127.0.0.1].
    #[arg(long, env = "FJORD_POD_IP")]
    pub host: Option<String>,
    /// Number of task slots [key taskmanager.slots, default 1].
    #[arg(long, env = "FJORD_SLOTS")]
    pub slots: Option<u32>,
    /// Data port for the exchange between TaskManagers; it starts listening once the
    /// TaskManager is registered (the readiness probe) [key taskmanager.data.port, default
    /// 6121; 0 picks a free port].
    #[arg(long, env = "FJORD_DATA_PORT")]
    pub data_port: Option<u16>,
    /// Port of the TaskManager's control-plane service, where the JobManager deploys tasks
    /// and sends checkpoint commands [key taskmanager.rpc.port, default 6122; 0 picks a free
    /// port].
    #[arg(long, env = "FJORD_TM_RPC_PORT")]
    pub rpc_port: Option<u16>,
    /// Heartbeat interval in ms; overrides the interval the JobManager hands out at
    /// registration [key taskmanager.heartbeat.interval-ms, default: the JobManager's].
    #[arg(long, env = "FJORD_HEARTBEAT_INTERVAL_MS")]
    pub heartbeat_interval_ms: Option<u64>,
    /// Give up (exit code 4) when no JobManager accepts the registration within this many ms
    /// [key taskmanager.registration.timeout-ms, default 300000].
    #[arg(long, env = "FJORD_REGISTRATION_TIMEOUT_MS")]
    pub registration_timeout_ms: Option<u64>,
    /// Port of the Prometheus `GET /metrics` server, on the TaskManager's host [key
    /// taskmanager.metrics.port, default 9249; 0 picks a free port].
    #[arg(long, env = "FJORD_METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// The address the data and RPC ports bind to, when it differs from the advertised host
    /// (e.g. 0.0.0.0) [key taskmanager.bind-address, default: the host].
    #[arg(long, env = "FJORD_TM_BIND_ADDRESS")]
    pub bind_address: Option<String>,
    /// The cluster this TaskManager was started for: a JobManager of another cluster refuses
    /// it, and it keeps trying until its own answers (during an upgrade the old cluster's Pods
    /// terminate while the new one starts) [key cluster.id, set by the operator; default:
    /// none, it joins any JobManager].
    #[arg(long, env = "FJORD_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Transport security (the security.ssl.internal.* settings apply to TaskManagers).
    #[command(flatten)]
    pub security: crate::tls::SecurityArgs,
}

/// The effective TaskManager configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskManagerConfig {
    /// The JobManager's RPC address (host:port).
    pub jobmanager_address: String,
    /// The TaskManager's ID (`None`: derived from host and data port once bound).
    pub id: Option<String>,
    /// Bind and advertised address.
    pub host: String,
    /// Task slots.
    pub slots: u32,
    /// Data port (0 = any free port).
    pub data_port: u16,
    /// Control-plane port (0 = any free port).
    pub rpc_port: u16,
    /// Storage settings (`s3.*` keys of the config file) for checkpoint and savepoint
    /// targets; `AWS_*` environment variables apply as well.
    pub storage_options: BTreeMap<String, String>,
    /// Heartbeat interval override.
    pub heartbeat_interval: Option<Duration>,
    /// How long to try registering before giving up.
    pub registration_timeout: Duration,
    /// Port of the Prometheus metrics server (0 = any free port).
    pub metrics_port: u16,
    /// The address the data and RPC ports bind to.
    pub bind_address: String,
    /// Mutual TLS with the JobManager and the other TaskManagers.
    pub security: crate::tls::SecurityConfig,
    /// The cluster to join (`cluster.id`), if any.
    pub cluster_id: Option<String>,
}

fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

impl TaskManagerConfig {
    /// Merges flags (and their environment variables) over the config file over defaults.
    ///
    /// # Errors
    /// [`WorkerError::Config`] naming the key for an unreadable file, a malformed value, zero
    /// slots, or a JobManager address without a port.
    pub fn resolve(args: TaskManagerArgs) -> Result<Self, WorkerError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let text = |key: &str| file.get(key).cloned();
        let security = crate::tls::SecurityConfig::resolve(&args.security, &file)?;
        let jobmanager_address = pick(
            args.jobmanager_address,
            text("jobmanager.rpc.address"),
            DEFAULT_JOBMANAGER_ADDRESS.into(),
        );
        if jobmanager_address.split(',').any(|a| {
            a.trim()
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        }) {
            return Err(WorkerError::Config(format!(
                "jobmanager.rpc.address = {jobmanager_address:?} is not host:port (for example \
                 my-job-jobmanager:6123)"
            )));
        }
        let slots = pick(
            args.slots,
            parse(&file, "taskmanager.slots", "a positive integer")?,
            1,
        );
        if slots == 0 {
            return Err(WorkerError::Config(
                "taskmanager.slots must be at least 1".into(),
            ));
        }
        let interval: Option<u64> = args.heartbeat_interval_ms.or(parse(
            &file,
            "taskmanager.heartbeat.interval-ms",
            "a number of milliseconds",
        )?);
        let host = pick(args.host, text("taskmanager.host"), DEFAULT_HOST.into());
        Ok(TaskManagerConfig {
            jobmanager_address,
            bind_address: args
                .bind_address
                .or_else(|| text("taskmanager.bind-address"))
                .unwrap_or_else(|| host.clone()),
            security,
            cluster_id: args
                .cluster_id
                .or_else(|| text("cluster.id"))
                .filter(|id| !id.trim().is_empty()),
            id: args
                .id
                .or_else(|| text("taskmanager.id"))
                .filter(|id| !id.is_empty()),
            host,
            slots,
            data_port: pick(
                args.data_port,
                parse(&file, "taskmanager.data.port", "a port number")?,
                DEFAULT_DATA_PORT,
            ),
            rpc_port: pick(
                args.rpc_port,
                parse(&file, "taskmanager.rpc.port", "a port number")?,
                DEFAULT_RPC_PORT,
            ),
            storage_options: storage_options(&file),
            heartbeat_interval: interval.filter(|ms| *ms > 0).map(Duration::from_millis),
            registration_timeout: args
                .registration_timeout_ms
                .or(parse(
                    &file,
                    "taskmanager.registration.timeout-ms",
                    "a number of milliseconds",
                )?)
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_REGISTRATION_TIMEOUT),
            metrics_port: pick(
                args.metrics_port,
                parse(&file, "taskmanager.metrics.port", "a port number")?,
                DEFAULT_METRICS_PORT,
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_config_map_is_understood_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fjord-conf.yaml");
        // What operator/src/resources.rs `configuration` writes, in part.
        std::fs::write(
            &path,
            "\"jobmanager.rpc.address\": \"t-jobmanager:6123\"\n\"jobmanager.rest.port\": \"8081\"\n\
             \"job.name\": \"counting\"\n\"taskmanager.data.port\": \"6121\"\n\"taskmanager.slots\": \"2\"\n\
             \"taskmanager.metrics.port\": \"9250\"\n\"cluster.id\": \"7d3f\"\n",
        )
        .unwrap();
        let c = TaskManagerConfig::resolve(TaskManagerArgs {
            config: Some(path.clone()),
            id: Some("t-taskmanager-abc".into()),
            host: Some("10.0.0.7".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.jobmanager_address, "t-jobmanager:6123");
        assert_eq!((c.slots, c.data_port), (2, 6121));
        assert_eq!(c.id.as_deref(), Some("t-taskmanager-abc"));
        assert_eq!(c.host, "10.0.0.7");
        assert_eq!(c.heartbeat_interval, None, "the JobManager's interval");
        assert_eq!(c.registration_timeout, DEFAULT_REGISTRATION_TIMEOUT);
        assert_eq!(c.metrics_port, 9250, "from the file");
        assert_eq!(c.cluster_id.as_deref(), Some("7d3f"), "from the file");

        let c = TaskManagerConfig::resolve(TaskManagerArgs {
            config: Some(path),
            slots: Some(4),
            data_port: Some(0),
            metrics_port: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.metrics_port, 0, "the flag wins");
        assert_eq!(
            (c.slots, c.data_port, c.host.as_str()),
            (4, 0, DEFAULT_HOST)
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = TaskManagerConfig::resolve(TaskManagerArgs {
            jobmanager_address: Some("jobmanager".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("jobmanager.rpc.address") && err.contains("host:port"),
            "{err}"
        );
        let err = TaskManagerConfig::resolve(TaskManagerArgs {
            slots: Some(0),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("taskmanager.slots"), "{err}");
        assert_eq!(
            TaskManagerConfig::resolve(TaskManagerArgs::default())
                .unwrap()
                .metrics_port,
            DEFAULT_METRICS_PORT
        );
    }
}
