//! JobManager high availability: leader election between JobManagers of one job, so a standby
//! takes over when the leader dies (see `docs/high-availability.md`).
//!
//! A JobManager started with `high-availability.type` set is a *contender*: [`acquire`] blocks
//! until it holds the job's lease, and only then does the JobManager bind its ports, recover
//! the job from the latest completed checkpoint and schedule it. While it leads, a renew thread
//! renews the lease every retry period; a leader that has not renewed within the renew
//! deadline, or that sees a newer leader, has lost leadership: [`Leadership::check`] fails from
//! then on (the checkpoint fence, so it completes no checkpoint and commits nothing) and the
//! `on_lost` callback runs (the JobManager exits so its Pod restarts as a standby).
//!
//! Safety rests on the usual lease argument (client-go's and Flink's): a contender takes over
//! only after it saw the lease unchanged for `lease-duration` on its own clock, and a leader
//! stops acting `renew-deadline` (< `lease-duration`) after the start of its last successful
//! renewal, so their acting periods do not overlap as long as clocks advance at the same rate
//! and no process pauses longer than `lease-duration - renew-deadline` between its fence check
//! and the write it guards.
//!
//! Backends ([`LeaseStore`]): [`file`] (a lock in a shared directory) and `kubernetes` (a
//! `coordination.k8s.io/v1` Lease, the `kubernetes-ha` feature; without it
//! `high-availability.type: kubernetes` fails at start-up naming the feature).

pub mod file;
#[cfg(feature = "kubernetes-ha")]
pub mod kubernetes;
#[cfg(not(feature = "kubernetes-ha"))]
mod kubernetes_unavailable;
#[cfg(not(feature = "kubernetes-ha"))]
use kubernetes_unavailable as kubernetes;

use crate::WorkerError;
use fjord::checkpoint::CheckpointFence;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default lease duration (client-go's; Flink's is 15 s too).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// Default renew deadline (client-go's).
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Default retry period (client-go's).
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// Where the lease lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaMode {
    /// A lock in a directory every JobManager of the job shares (`high-availability.storage-dir`).
    File {
        /// The directory.
        dir: PathBuf,
    },
    /// A `coordination.k8s.io/v1` Lease in the JobManager's namespace.
    Kubernetes {
        /// The Lease's name (`high-availability.kubernetes.lease-name`).
        lease: String,
        /// Its namespace (`high-availability.kubernetes.namespace`, else the Pod's).
        namespace: Option<String>,
        /// The label the leader puts on its own Pod (`key=value`), so a Service selecting it
        /// routes to the leader only (`high-availability.kubernetes.leader-label`).
        leader_label: Option<(String, String)>,
    },
}

/// The `high-availability.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// The backend.
    pub mode: HaMode,
    /// A contender takes over a lease not renewed for this long.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops acting (less than the lease duration).
    pub renew_deadline: Duration,
    /// How often the leader renews and a contender tries.
    pub retry_period: Duration,
    /// This JobManager's identity in the lease (`high-availability.holder-id`, else the Pod
    /// name, else `jobmanager-<random>`); unique per process.
    pub holder: String,
}

/// `high-availability.*` flags of `fjord jobmanager`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HaArgs {
    /// Leader election between JobManagers: `none`, `file` (a lock in
    /// --ha-storage-dir) or `kubernetes` (a Lease) [key high-availability.type, default none].
    #[arg(long = "ha", env = "FJORD_HA")]
    pub ha: Option<String>,
    /// Shared directory holding the leader lock (file mode) [key
    /// high-availability.storage-dir].
    #[arg(long, env = "FJORD_HA_STORAGE_DIR")]
    pub ha_storage_dir: Option<PathBuf>,
    /// Lease duration, e.g. 15s [key high-availability.leader-election.lease-duration].
    #[arg(long, env = "FJORD_HA_LEASE_DURATION", value_parser = crate::cli::parse_duration)]
    pub ha_lease_duration: Option<Duration>,
    /// Renew deadline, e.g. 10s [key high-availability.leader-election.renew-deadline].
    #[arg(long, env = "FJORD_HA_RENEW_DEADLINE", value_parser = crate::cli::parse_duration)]
    pub ha_renew_deadline: Option<Duration>,
    /// Retry period, e.g. 2s [key high-availability.leader-election.retry-period].
    #[arg(long, env = "FJORD_HA_RETRY_PERIOD", value_parser = crate::cli::parse_duration)]
    pub ha_retry_period: Option<Duration>,
}

fn duration(
    flag: Option<Duration>,
    file: &BTreeMap<String, String>,
    key: &str,
    default: Duration,
) -> Result<Duration, WorkerError> {
    if let Some(d) = flag {
        return Ok(d);
    }
    match file.get(key) {
        None => Ok(default),
        Some(v) => crate::cli::parse_duration(v).map_err(|_| {
            WorkerError::Config(format!(
                "configuration key {key} = {v:?} is not a duration like 15s"
            ))
        }),
    }
}

impl HaConfig {
    /// The HA settings of flags over the config file; `None` without `high-availability.type`
    /// (or with `none`).
    ///
    /// # Errors
    /// [`WorkerError::Config`] for an unknown type, file mode without a storage directory, a
    /// malformed duration, or timings that break the lease argument (renew deadline not
    /// shorter than the lease duration, retry period not shorter than the renew deadline).
    pub fn resolve(
        args: &HaArgs,
        file: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, WorkerError> {
        let kind = args
            .ha
            .clone()
            .or_else(|| file.get("high-availability.type").cloned())
            .unwrap_or_default();
        let mode = match kind.trim() {
            "" | "none" | "NONE" => return Ok(None),
            "file" => HaMode::File {
                dir: args
                    .ha_storage_dir
                    .clone()
                    .or_else(|| {
                        file.get("high-availability.storage-dir")
                            .map(|d| PathBuf::from(d.strip_prefix("file://").unwrap_or(d.as_str())))
                    })
                    .ok_or_else(|| {
                        WorkerError::Config(
                            "high-availability.type = file needs high-availability.storage-dir \
                             (--ha-storage-dir): a directory every JobManager of the job shares"
                                .into(),
                        )
                    })?,
            },
            "kubernetes" => HaMode::Kubernetes {
                lease: file
                    .get("high-availability.kubernetes.lease-name")
                    .cloned()
                    .or_else(|| std::env::var("FJORD_HA_LEASE_NAME").ok())
                    .ok_or_else(|| {
                        WorkerError::Config(
                            "high-availability.type = kubernetes needs \
                             high-availability.kubernetes.lease-name (the operator sets it)"
                                .into(),
                        )
                    })?,
                namespace: file
                    .get("high-availability.kubernetes.namespace")
                    .cloned()
                    .or_else(|| std::env::var("FJORD_NAMESPACE").ok()),
                leader_label: file
                    .get("high-availability.kubernetes.leader-label")
                    .map(|l| {
                        l.split_once('=')
                            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                            .ok_or_else(|| {
                                WorkerError::Config(format!(
                                    "high-availability.kubernetes.leader-label = {l:?} is not \
                                     key=value"
                                ))
                            })
                    })
                    .transpose()?,
            },
            other => {
                return Err(WorkerError::Config(format!(
                    "high-availability.type = {other:?} is not none, file or kubernetes"
                )));
            }
        };
        let lease_duration = duration(
            args.ha_lease_duration,
            file,
            "high-availability.leader-election.lease-duration",
            DEFAULT_LEASE_DURATION,
        )?;
        let renew_deadline = duration(
            args.ha_renew_deadline,
            file,
            "high-availability.leader-election.renew-deadline",
            DEFAULT_RENEW_DEADLINE,
        )?;
        let retry_period = duration(
            args.ha_retry_period,
            file,
            "high-availability.leader-election.retry-period",
            DEFAULT_RETRY_PERIOD,
        )?;
        if retry_period.is_zero() || renew_deadline <= retry_period {
            return Err(WorkerError::Config(format!(
                "high-availability.leader-election: the retry period ({retry_period:?}) must be \
                 positive and shorter than the renew deadline ({renew_deadline:?}), so a leader \
                 tries to renew more than once before it gives up"
            )));
        }
        if lease_duration <= renew_deadline {
            return Err(WorkerError::Config(format!(
                "high-availability.leader-election: the renew deadline ({renew_deadline:?}) must \
                 be shorter than the lease duration ({lease_duration:?}): a leader must stop \
                 acting before a standby may take over"
            )));
        }
        let holder = file
            .get("high-availability.holder-id")
            .cloned()
            .or_else(|| std::env::var("FJORD_POD_NAME").ok())
            .unwrap_or_else(|| format!("jobmanager-{:08x}", rand::random::<u32>()));
        Ok(Some(HaConfig {
            mode,
            lease_duration,
            renew_deadline,
            retry_period,
            holder,
        }))
    }

    /// What the logs call this mode.
    pub fn describe(&self) -> String {
        match &self.mode {
            HaMode::File { dir } => format!("lock in {}", dir.display()),
            HaMode::Kubernetes {
                lease, namespace, ..
            } => format!(
                "Lease {}/{lease}",
                namespace.as_deref().unwrap_or("<pod namespace>")
            ),
        }
    }
}

/// One backend's lease operations. Every call is one attempt; the caller times and retries.
pub trait LeaseStore: Send {
    /// Tries to take the lease: `Ok(Some(epoch))` when this process now holds it (`epoch`
    /// higher than every earlier holder's), `Ok(None)` when another holder's lease is still
    /// live.
    ///
    /// # Errors
    /// The storage could not be read or written (retried).
    fn try_acquire(&mut self) -> Result<Option<u64>, String>;
    /// Renews the held lease: `Ok(true)` renewed, `Ok(false)` another holder has it now.
    ///
    /// # Errors
    /// The storage could not be read or written (retried until the renew deadline).
    fn renew(&mut self) -> Result<bool, String>;
    /// Gives the held lease up so a contender takes it at once (after this process stopped
    /// acting).
    ///
    /// # Errors
    /// The storage could not be written (a contender then waits for the lease to expire).
    fn release(&mut self) -> Result<(), String>;
}

/// What the renew thread and the fence share.
#[derive(Debug)]
struct Shared {
    /// Leadership holds until then (the start of the last successful renewal plus the renew
    /// deadline).
    valid_until: Mutex<Instant>,
    /// Why leadership was lost, once it was.
    lost: Mutex<Option<String>>,
    /// Set to stop the renew thread (release).
    stop: AtomicBool,
}

/// Leadership of this process, from [`acquire`].
pub struct Leadership {
    epoch: u64,
    holder: String,
    shared: Arc<Shared>,
    store: Arc<Mutex<Box<dyn LeaseStore>>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("epoch", &self.epoch)
            .field("holder", &self.holder)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Leadership {
    /// The leadership term: higher than every earlier leader's.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The fencing epoch handed to TaskManagers: higher than every earlier leader's (and than
    /// any JobManager's without HA, whose epoch is its start time in ms), so TaskManagers
    /// cancel the tasks of the older leader and refuse its commands.
    pub fn task_manager_epoch(&self) -> u64 {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        (self.epoch << 42) | (now_ms & ((1 << 42) - 1))
    }

    /// `Ok(epoch)` while this process still leads; why not once it lost leadership (also when
    /// the renew deadline passed and the renew thread has not noticed yet).
    ///
    /// # Errors
    /// The reason leadership is lost.
    pub fn check(&self) -> Result<u64, String> {
        check(&self.shared, self.epoch)
    }

    /// The checkpoint fence over [`check`](Self::check).
    pub fn fence(&self) -> CheckpointFence {
        let (shared, epoch) = (self.shared.clone(), self.epoch);
        CheckpointFence::new(move || check(&shared, epoch))
    }

    /// Stops renewing and gives the lease up, so a standby takes over without waiting for it
    /// to expire. Call it only once this process stopped acting (its job suspended).
    pub fn release(mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.renewer.take() {
            // A panicked renewer stopped renewing, as intended now; the hook reported it.
            let _ = t.join();
        }
        *lock(&self.shared.lost) = Some("released".into());
        match lock(&self.store).release() {
            Ok(()) => eprintln!(
                "JobManager '{}' released leadership (epoch {})",
                self.holder, self.epoch
            ),
            Err(e) => eprintln!(
                "JobManager '{}' could not release leadership ({e}); a standby takes over once \
                 the lease expires",
                self.holder
            ),
        }
    }
}

fn check(shared: &Shared, epoch: u64) -> Result<u64, String> {
    if let Some(why) = lock(&shared.lost).clone() {
        return Err(format!("this JobManager is no longer the leader: {why}"));
    }
    if Instant::now() >= *lock(&shared.valid_until) {
        return Err(
            "this JobManager is no longer the leader: it could not renew its lease within the \
             renew deadline"
                .into(),
        );
    }
    Ok(epoch)
}

/// The leader's fence for checkpoints of this process (set once by the JobManager that won
/// leadership; one job per application-mode JobManager process).
static PROCESS_FENCE: OnceLock<CheckpointFence> = OnceLock::new();

/// Makes `fence` the fence of every job this process builds from now on.
pub fn set_process_fence(fence: CheckpointFence) {
    // One leadership per process: a second call (the same JobManager) keeps the first fence.
    let _ = PROCESS_FENCE.set(fence);
}

/// The fence set with [`set_process_fence`], if any.
pub fn process_fence() -> Option<CheckpointFence> {
    PROCESS_FENCE.get().cloned()
}

/// Blocks until this process holds the lease of `config` (trying every retry period), then
/// renews it in a background thread; `on_lost` runs there once leadership is lost (not after
/// [`Leadership::release`]). `address` (the RPC address) is recorded in the lease for
/// operators and logs.
///
/// # Errors
/// [`WorkerError::HighAvailability`] when the backend cannot be set up (no Kubernetes
/// configuration, an unusable directory); [`WorkerError::NotBuiltIn`] for Kubernetes HA in
/// a binary built without the `kubernetes-ha` feature.
pub fn acquire(
    config: &HaConfig,
    address: &str,
    on_lost: impl FnOnce(String) + Send + 'static,
) -> Result<Leadership, WorkerError> {
    let store: Box<dyn LeaseStore> = match &config.mode {
        HaMode::File { dir } => Box::new(file::FileLease::new(
            dir,
            &config.holder,
            address,
            config.lease_duration,
        )?),
        HaMode::Kubernetes { .. } => kubernetes::store(config)?,
    };
    acquire_with(config, store, on_lost)
}

/// [`acquire`] over a given store.
///
/// # Errors
/// None so far (the store's errors are retried); kept for backends that fail for good.
pub fn acquire_with(
    config: &HaConfig,
    mut store: Box<dyn LeaseStore>,
    on_lost: impl FnOnce(String) + Send + 'static,
) -> Result<Leadership, WorkerError> {
    let mut last_error = String::new();
    let (epoch, started) = loop {
        let started = Instant::now();
        match store.try_acquire() {
            Ok(Some(epoch)) => break (epoch, started),
            Ok(None) => {}
            Err(e) => {
                if e != last_error {
                    eprintln!("JobManager '{}': leader election: {e}", config.holder);
                }
                last_error = e;
            }
        }
        std::thread::sleep(config.retry_period);
    };
    let shared = Arc::new(Shared {
        valid_until: Mutex::new(started + config.renew_deadline),
        lost: Mutex::new(None),
        stop: AtomicBool::new(false),
    });
    let store = Arc::new(Mutex::new(store));
    let renewer = {
        let (shared, store) = (shared.clone(), store.clone());
        let (retry, deadline, holder) = (
            config.retry_period,
            config.renew_deadline,
            config.holder.clone(),
        );
        std::thread::Builder::new()
            .name("ha-renew".into())
            .spawn(move || renew_loop(&shared, &store, retry, deadline, &holder, on_lost))
            .map_err(|e| WorkerError::HighAvailability(format!("cannot start a thread: {e}")))?
    };
    Ok(Leadership {
        epoch,
        holder: config.holder.clone(),
        shared,
        store,
        renewer: Some(renewer),
    })
}

fn renew_loop(
    shared: &Shared,
    store: &Mutex<Box<dyn LeaseStore>>,
    retry: Duration,
    deadline: Duration,
    holder: &str,
    on_lost: impl FnOnce(String),
) {
    let why = loop {
        std::thread::sleep(retry);
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let started = Instant::now();
        match lock(store).renew() {
            Ok(true) => *lock(&shared.valid_until) = started + deadline,
            Ok(false) => break "another JobManager holds the lease now".to_string(),
            Err(e) => eprintln!("JobManager '{holder}': could not renew the lease: {e}"),
        }
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if Instant::now() >= *lock(&shared.valid_until) {
            break format!("the lease was not renewed within the renew deadline ({deadline:?})");
        }
    };
    *lock(&shared.lost) = Some(why.clone());
    on_lost(why);
}

#[cfg(test)]
mod tests;
