//! `StreamExecutionEnvironment`: where a job is built and from where it is executed.

use crate::api::datastream::SingleOutputStreamOperator;
use crate::checkpoint::coordinator::CoordinatorEvent;
use crate::checkpoint::{CheckpointConfig, RestartStrategy};
use crate::cluster::{AttemptPlan, DeployedTasks, Deployer, TaskReport};
use crate::error::{BoxError, FjordError, Result};
use crate::graph::{ChainingStrategy, InEdge, NodeId, NodeKind, StreamGraph, StreamNode};
use crate::metrics::MetricRegistry;
use crate::operators::output::unerase;
use crate::runtime::channel::CancelFlag;
use crate::runtime::io_metrics::IoMetrics;
use crate::runtime::jobgraph::{GraphSettings, JobGraph, JobPlan};
use crate::runtime::minicluster::{
    self, Execution, JobControl, JobExecutionResult, RestoreSettings, RunSettings,
};
use crate::runtime::stream_type::{StreamType, TypeOps};
use crate::runtime::task::SourceTask;
use crate::sources::{
    CollectionSource, GeneratorSource, IterSource, SequenceSource, SocketTextSource, Source,
    TextFileSource, source_failure,
};
use crate::state::factory::{StateBackendKind, StateBackendSettings};
use crate::storage::{SnapshotStore, StorageOptions};
use crate::time::clock::{Clock, SystemClock};
use crate::types::Data;
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Settings of a job's execution (Flink's `ExecutionConfig` plus the network settings that
/// matter for the embedded runtime).
#[derive(Debug, Clone)]
pub struct ExecutionConfig {
    /// Parallelism of operators that do not set their own.
    pub parallelism: usize,
    /// Max parallelism (number of key groups) unless an operator sets its own; `None` uses
    /// Flink's default (128 for parallelism up to 85).
    pub max_parallelism: Option<usize>,
    /// Whether operators are chained (Flink's `disableOperatorChaining` sets this to false).
    pub chaining: bool,
    /// Longest time a partly filled batch waits before it is sent (Flink's buffer timeout).
    pub buffer_timeout: Duration,
    /// Records per batch between tasks.
    pub batch_size: usize,
    /// Batches a channel between two tasks holds before the producer blocks (backpressure).
    pub channel_capacity: usize,
    /// Where processing time comes from: the system clock by default; tests inject a
    /// [`ManualClock`](crate::time::ManualClock) to drive processing-time timers, periodic
    /// watermarks, idleness and state TTL without sleeping.
    pub clock: Arc<dyn Clock>,
    /// How often periodic watermark generators are asked for a watermark (Flink's
    /// `setAutoWatermarkInterval`, default 200 ms). Zero disables periodic watermarks.
    pub auto_watermark_interval: Duration,
    /// Checkpointing (off unless an interval is set, as in Flink).
    pub checkpoints: CheckpointConfig,
    /// What to do when a task fails; `None` means Flink's default: no restarts without
    /// checkpointing, exponential-delay restarts with it.
    pub restart_strategy: Option<RestartStrategy>,
    /// A checkpoint or savepoint directory (URL) to start from.
    pub restore_from: Option<String>,
    /// With `restore_from`: drop state of operators the job no longer has instead of failing.
    pub allow_non_restored_state: bool,
    /// The keyed state backend; `None` takes the process default, then
    /// `FJORD_STATE_BACKEND`, then the heap (see [`crate::state::factory`]).
    pub state_backend: Option<StateBackendKind>,
    /// The job ID (32 hex digits by convention); `None` draws a random one per execution. A
    /// JobManager sets a stable one so that after its own restart it finds the job's
    /// checkpoints under `<storage>/<job id>/`.
    pub job_id: Option<String>,
}

impl Default for ExecutionConfig {
    fn default() -> Self {
        ExecutionConfig {
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_parallelism: None,
            chaining: true,
            buffer_timeout: Duration::from_millis(100),
            batch_size: 1024,
            channel_capacity: 8,
            clock: Arc::new(SystemClock),
            auto_watermark_interval: Duration::from_millis(200),
            checkpoints: CheckpointConfig::default(),
            restart_strategy: None,
            restore_from: None,
            allow_non_restored_state: false,
            state_backend: None,
            job_id: None,
        }
    }
}

pub(crate) struct EnvInner {
    pub(crate) graph: StreamGraph,
    pub(crate) config: ExecutionConfig,
    /// Mistakes found while building (reported by `execute` as `InvalidGraph`).
    pub(crate) errors: Vec<String>,
}

/// The context in which a streaming program is built and executed (Flink's
/// `StreamExecutionEnvironment`).
///
/// ```
/// use fjord::StreamExecutionEnvironment;
/// let env = StreamExecutionEnvironment::new();
/// env.set_parallelism(1);
/// let doubled = env.from_collection(vec![1, 2, 3]).map(|x: i32| x * 2).collect();
/// env.execute("doubling").unwrap();
/// assert_eq!(doubled.values(), vec![2, 4, 6]);
/// ```
#[derive(Clone)]
pub struct StreamExecutionEnvironment {
    pub(crate) inner: Rc<RefCell<EnvInner>>,
}

impl Default for StreamExecutionEnvironment {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamExecutionEnvironment {
    /// A new environment for the embedded mini-cluster, with parallelism = number of cores.
    pub fn new() -> Self {
        Self::with_config(ExecutionConfig::default())
    }

    /// Flink's name for [`StreamExecutionEnvironment::new`].
    pub fn get_execution_environment() -> Self {
        Self::new()
    }

    /// A new environment with these settings.
    pub fn with_config(config: ExecutionConfig) -> Self {
        StreamExecutionEnvironment {
            inner: Rc::new(RefCell::new(EnvInner {
                graph: StreamGraph::default(),
                config,
                errors: Vec::new(),
            })),
        }
    }

    /// Sets the default parallelism of operators.
    pub fn set_parallelism(&self, parallelism: usize) -> &Self {
        if parallelism == 0 {
            self.record_error("environment parallelism must be at least 1".into());
        } else {
            self.inner.borrow_mut().config.parallelism = parallelism;
        }
        self
    }

    /// The default parallelism of operators.
    pub fn get_parallelism(&self) -> usize {
        self.inner.borrow().config.parallelism
    }

    /// Sets the default max parallelism (number of key groups) of the job.
    pub fn set_max_parallelism(&self, max_parallelism: usize) -> &Self {
        self.inner.borrow_mut().config.max_parallelism = Some(max_parallelism);
        self
    }

    /// Turns operator chaining off for the whole job (Flink's `disableOperatorChaining`).
    pub fn disable_operator_chaining(&self) -> &Self {
        self.inner.borrow_mut().config.chaining = false;
        self
    }

    /// Sets how long a partly filled batch may wait before it is sent.
    pub fn set_buffer_timeout(&self, timeout: Duration) -> &Self {
        self.inner.borrow_mut().config.buffer_timeout = timeout;
        self
    }

    /// Sets where processing time comes from (see [`ExecutionConfig::clock`]).
    pub fn set_clock(&self, clock: impl Clock + 'static) -> &Self {
        self.inner.borrow_mut().config.clock = Arc::new(clock);
        self
    }

    /// Sets the interval of periodic watermark emission (Flink's `setAutoWatermarkInterval`).
    pub fn set_auto_watermark_interval(&self, interval: Duration) -> &Self {
        self.inner.borrow_mut().config.auto_watermark_interval = interval;
        self
    }

    /// A copy of the current settings.
    pub fn config(&self) -> ExecutionConfig {
        self.inner.borrow().config.clone()
    }

    /// Changes settings in place.
    pub fn configure(&self, f: impl FnOnce(&mut ExecutionConfig)) -> &Self {
        f(&mut self.inner.borrow_mut().config);
        self
    }

    pub(crate) fn record_error(&self, message: String) {
        self.inner.borrow_mut().errors.push(message);
    }

    /// Adds a node and returns its id.
    pub(crate) fn add_node(
        &self,
        name: String,
        kind: NodeKind,
        inputs: Vec<InEdge>,
        out_type: Arc<dyn StreamType>,
    ) -> NodeId {
        let mut inner = self.inner.borrow_mut();
        let id = inner.graph.nodes.len();
        inner.graph.nodes.push(StreamNode {
            id,
            name,
            uid: None,
            parallelism: None,
            max_parallelism: None,
            kind,
            inputs,
            chaining: ChainingStrategy::Always,
            slot_sharing_group: None,
            out_type,
            side_types: Vec::new(),
        });
        id
    }

    /// Changes a node.
    pub(crate) fn with_node<R>(&self, id: NodeId, f: impl FnOnce(&mut StreamNode) -> R) -> R {
        f(&mut self.inner.borrow_mut().graph.nodes[id])
    }

    // ----- sources -----

    /// Adds a source (Flink's `fromSource` / `addSource`). The source runs with the
    /// environment's parallelism unless it is not parallel.
    pub fn from_source<T: Data, S: Source<T>>(
        &self,
        source: S,
        name: &str,
    ) -> SingleOutputStreamOperator<T> {
        let parallel = source.is_parallel();
        let source = Arc::new(source);
        let factory: crate::graph::SourceFactory =
            Arc::new(move |ctx, main, _sides, buffer_timeout| {
                let out = unerase::<T>(main, "source output")?;
                let reader = crate::operators::output::guard(ctx, || source.create_reader(ctx))
                    .map_err(source_failure)?;
                Ok(Box::new(SourceTask {
                    ctx: ctx.clone(),
                    services: ctx.services.clone(),
                    reader,
                    out,
                    buffer_timeout,
                }))
            });
        let id = self.add_node(
            name.to_string(),
            NodeKind::Source { factory, parallel },
            Vec::new(),
            Arc::new(TypeOps::<T>::new()),
        );
        SingleOutputStreamOperator::new(self.clone(), id)
    }

    /// Flink's `addSource`, the same as [`from_source`](Self::from_source).
    pub fn add_source<T: Data, S: Source<T>>(
        &self,
        source: S,
        name: &str,
    ) -> SingleOutputStreamOperator<T> {
        self.from_source(source, name)
    }

    /// The elements of a vector, in order (non-parallel).
    pub fn from_collection<T: Data + Sync>(&self, items: Vec<T>) -> SingleOutputStreamOperator<T> {
        self.from_source(CollectionSource::new(items), "Source: Collection Source")
    }

    /// The items of an iterator (non-parallel). The iterator is cloned for every run.
    pub fn from_iter<T: Data, I>(&self, iter: I) -> SingleOutputStreamOperator<T>
    where
        I: Iterator<Item = T> + Clone + Send + 'static,
    {
        self.from_source(IterSource::new(iter), "Source: Iterator Source")
    }

    /// The numbers `from..=to`, read in parallel (Flink's `fromSequence`).
    pub fn from_sequence(&self, from: i64, to: i64) -> SingleOutputStreamOperator<i64> {
        self.from_source(SequenceSource::new(from, to), "Source: Sequence Source")
    }

    /// Records made by a generator function from their index, in parallel (Flink's
    /// `DataGeneratorSource`). `count: None` is unbounded.
    pub fn from_generator<T: Data>(
        &self,
        count: Option<u64>,
        generate: impl Fn(u64) -> T + Send + Sync + 'static,
    ) -> SingleOutputStreamOperator<T> {
        self.from_source(
            GeneratorSource::new(count, generate),
            "Source: Generator Source",
        )
    }

    /// The lines of a text file, or of the files in a directory (Flink's `readTextFile`).
    pub fn read_text_file(&self, path: impl Into<PathBuf>) -> SingleOutputStreamOperator<String> {
        self.text_file(TextFileSource::new(path))
    }

    /// The lines of a text file, or of the files in a directory, each turned into a record by
    /// `decode` where it is read (Flink's `FileSource.forRecordStreamFormat` with a
    /// line-oriented format): no `String` per line is made on the way. A line `decode` refuses
    /// fails the job with the file, the line number and the decoder's message.
    ///
    /// ```
    /// # use fjord::StreamExecutionEnvironment;
    /// let env = StreamExecutionEnvironment::new();
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("numbers.txt");
    /// # std::fs::write(&path, "1\n2\n3\n").unwrap();
    /// let numbers = env.read_text_file_with(&path, |line: &str| Ok(line.parse::<i64>()?));
    /// # let out = numbers.collect();
    /// # env.execute("numbers").unwrap();
    /// # assert_eq!(out.values(), vec![1, 2, 3]);
    /// ```
    pub fn read_text_file_with<T: Data>(
        &self,
        path: impl Into<PathBuf>,
        decode: impl Fn(&str) -> std::result::Result<T, BoxError> + Send + Sync + 'static,
    ) -> SingleOutputStreamOperator<T> {
        self.text_file(TextFileSource::with_decoder(path, decode))
    }

    /// A text file source named after its path, as Flink names `readTextFile`'s.
    fn text_file<T: Data>(&self, source: TextFileSource<T>) -> SingleOutputStreamOperator<T> {
        let name = format!("Source: {}", source.path().display());
        self.from_source(source, &name)
    }

    /// Newline-delimited text from a TCP socket (Flink's `socketTextStream`).
    pub fn socket_text_stream(&self, host: &str, port: u16) -> SingleOutputStreamOperator<String> {
        self.from_source(SocketTextSource::new(host, port), "Source: Socket Stream")
    }

    // ----- execution -----

    fn job_graph(&self) -> Result<JobGraph> {
        let inner = self.inner.borrow();
        if !inner.errors.is_empty() {
            return Err(FjordError::InvalidGraph(inner.errors.join("; ")));
        }
        let settings = GraphSettings {
            default_parallelism: inner.config.parallelism,
            max_parallelism: inner.config.max_parallelism,
            chaining: inner.config.chaining,
        };
        JobGraph::build(inner.graph.clone(), &settings)
    }

    /// How the job will run: its chains, parallelism and network edges (Flink's
    /// `getExecutionPlan`, as data). `serde_json::to_string(&plan)` gives JSON.
    pub fn get_execution_plan(&self) -> Result<JobPlan> {
        Ok(self.job_graph()?.plan())
    }

    fn run_settings(&self, job_name: &str) -> Result<RunSettings> {
        let config = &self.inner.borrow().config;
        Ok(RunSettings {
            job_name: job_name.to_string(),
            batch_size: config.batch_size,
            channel_capacity: config.channel_capacity,
            buffer_timeout: config.buffer_timeout,
            attempt: 0,
            clock: config.clock.clone(),
            metrics: MetricRegistry::default(),
            watermark_interval: config.auto_watermark_interval.as_millis() as i64,
            io: IoMetrics::default(),
            checkpoints: config.checkpoints.clone(),
            restart: config.restart_strategy.clone().unwrap_or_else(|| {
                if config.checkpoints.interval.is_some() {
                    RestartStrategy::flink_default()
                } else {
                    RestartStrategy::None
                }
            }),
            restore: config.restore_from.as_ref().map(|path| RestoreSettings {
                path: path.clone(),
                options: config.checkpoints.storage_options.clone(),
                allow_non_restored_state: config.allow_non_restored_state,
            }),
            state_backend: StateBackendSettings {
                kind: StateBackendKind::effective(config.state_backend.as_ref())?,
                storage_options: config.checkpoints.storage_options.clone(),
            },
            job_id: config.job_id.clone(),
        })
    }

    /// Chooses the keyed state backend of this job (Flink's `setStateBackend`); it wins over
    /// the configuration file and `FJORD_STATE_BACKEND`.
    ///
    /// ```
    /// use fjord::StreamExecutionEnvironment;
    /// use fjord::state::StateBackendKind;
    /// let env = StreamExecutionEnvironment::new();
    /// env.set_state_backend(StateBackendKind::Heap);
    /// ```
    pub fn set_state_backend(&self, kind: StateBackendKind) -> &Self {
        self.inner.borrow_mut().config.state_backend = Some(kind);
        self
    }

    /// Runs the job on the embedded mini-cluster and waits for it to finish.
    ///
    /// Returns when every source finished and all records were processed, or with the first
    /// error of any task (naming the operator and subtask), after stopping every other task.
    pub fn execute(&self, job_name: &str) -> Result<JobExecutionResult> {
        let job = self.job_graph()?;
        minicluster::execute(
            &job,
            &self.run_settings(job_name)?,
            &CancelFlag::default(),
            &JobControl::default(),
            &Execution::Local,
        )
    }

    /// Takes a checkpoint every `interval` (Flink's `enableCheckpointing`), exactly-once by
    /// default. Set storage and other settings with [`checkpoint_config`](Self::checkpoint_config).
    pub fn enable_checkpointing(&self, interval: Duration) -> &Self {
        self.inner.borrow_mut().config.checkpoints.interval = Some(interval);
        self
    }

    /// Changes checkpoint settings in place.
    pub fn checkpoint_config(&self, f: impl FnOnce(&mut CheckpointConfig)) -> &Self {
        f(&mut self.inner.borrow_mut().config.checkpoints);
        self
    }

    /// Sets the restart strategy (Flink's `setRestartStrategy`).
    pub fn set_restart_strategy(&self, strategy: RestartStrategy) -> &Self {
        self.inner.borrow_mut().config.restart_strategy = Some(strategy);
        self
    }

    /// Starts the job from a checkpoint or savepoint directory (Flink's `-s <path>`).
    pub fn restore_from(&self, path: &str, allow_non_restored_state: bool) -> &Self {
        let mut inner = self.inner.borrow_mut();
        inner.config.restore_from = Some(path.to_string());
        inner.config.allow_non_restored_state = allow_non_restored_state;
        self
    }

    /// Starts the job on the embedded mini-cluster in the background.
    pub fn execute_async(&self, job_name: &str) -> Result<JobClient> {
        self.start(job_name, Execution::Local)
    }

    /// Starts the job in the background with its tasks deployed by `deployer` (a JobManager
    /// placing them on TaskManagers). The restart loop, the checkpoint coordinator and
    /// savepoints run here, exactly as for [`execute_async`](Self::execute_async).
    pub fn execute_async_on(
        &self,
        job_name: &str,
        deployer: Arc<dyn Deployer>,
    ) -> Result<JobClient> {
        self.start(job_name, Execution::Remote(deployer))
    }

    /// Sets the job ID (see [`ExecutionConfig::job_id`]).
    pub fn set_job_id(&self, job_id: &str) -> &Self {
        self.inner.borrow_mut().config.job_id = Some(job_id.to_string());
        self
    }

    /// On a TaskManager: builds the job and starts the subtasks `plan` places on the worker
    /// with ID `worker_id`, connected to the other workers through `server`. What the tasks
    /// report for the checkpoint coordinator goes to `reports`.
    ///
    /// # Errors
    /// The worker is not in the plan, the plan does not match the job this process built
    /// (another image or other arguments), the restore path cannot be read, or a task cannot
    /// be built.
    pub fn start_tasks(
        &self,
        job_name: &str,
        plan: &AttemptPlan,
        worker_id: &str,
        server: &crate::network::DataServer,
        reports: Arc<dyn Fn(TaskReport) + Send + Sync>,
    ) -> Result<DeployedTasks> {
        let job = self.job_graph()?;
        let settings = self.run_settings(job_name)?;
        let me = plan.worker_index(worker_id).ok_or_else(|| {
            FjordError::Internal(format!(
                "TaskManager {worker_id} is not part of the plan of attempt {}",
                plan.attempt
            ))
        })?;
        DeployedTasks::start(&job, &settings, plan, me, server, reports)
    }

    fn start(&self, job_name: &str, execution: Execution) -> Result<JobClient> {
        let job = self.job_graph()?;
        let settings = self.run_settings(job_name)?;
        let io = settings.io.clone();
        let metrics = settings.metrics.clone();
        let cancel = CancelFlag::default();
        let flag = cancel.clone();
        let control = JobControl::default();
        let job_control = control.clone();
        let savepoint_timeout = settings.checkpoints.timeout;
        let storage_options = settings.checkpoints.storage_options.clone();
        let handle = std::thread::Builder::new()
            .name(format!("job {job_name}"))
            .spawn(move || minicluster::execute(&job, &settings, &flag, &job_control, &execution))
            .map_err(|e| FjordError::io("cannot start the job thread", e))?;
        Ok(JobClient {
            cancel,
            handle,
            io,
            metrics,
            control,
            savepoint_timeout,
            storage_options,
        })
    }
}

/// A handle on a job started with [`StreamExecutionEnvironment::execute_async`].
pub struct JobClient {
    cancel: CancelFlag,
    handle: JoinHandle<Result<JobExecutionResult>>,
    io: IoMetrics,
    metrics: MetricRegistry,
    control: JobControl,
    savepoint_timeout: Duration,
    storage_options: StorageOptions,
}

impl JobClient {
    /// Asks every task to stop; `wait` then returns `Err(FjordError::Cancelled)`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A function that cancels the job, for signal handlers.
    pub fn canceller(&self) -> impl Fn() + Send + Sync + 'static {
        let flag = self.cancel.clone();
        move || flag.cancel()
    }

    /// A function that suspends the job (Flink's SUSPENDED): its tasks stop like on
    /// [`cancel`](Self::cancel), but its completed checkpoints are kept even without
    /// `retain_on_cancellation`, so the next process of the same job resumes from the latest.
    /// For a JobManager that receives SIGTERM: its Pod is evicted, the job is not over.
    pub fn suspender(&self) -> impl Fn() + Send + Sync + 'static {
        let flag = self.cancel.clone();
        let suspended = self.control.suspended.clone();
        move || {
            suspended.store(true, std::sync::atomic::Ordering::SeqCst);
            flag.cancel()
        }
    }

    /// Records in and out of every task subtask, live while the job runs (empty until
    /// its tasks are deployed). Keep the returned handle to read the counts after `wait`.
    pub fn io_metrics(&self) -> IoMetrics {
        self.io.clone()
    }

    /// The job's counters (user and operator counters), live while the job runs.
    pub fn metrics(&self) -> MetricRegistry {
        self.metrics.clone()
    }

    /// Takes a savepoint into a new `savepoint-...` directory under `directory` (a storage
    /// URL) and returns the savepoint's URL. The job keeps running.
    ///
    /// # Errors
    /// The job is not running (yet, or any more), a stateful operator has no uid, storage
    /// failed, or the savepoint did not complete within the checkpoint timeout.
    pub fn trigger_savepoint(&self, directory: &str) -> Result<String> {
        self.savepoint(directory, None)
    }

    fn savepoint(&self, directory: &str, stop: Option<bool>) -> Result<String> {
        let target = SnapshotStore::open(directory, &self.storage_options)?;
        let coordinator = self.control.coordinator.lock().clone().ok_or_else(|| {
            FjordError::CheckpointFailed("the job is not running; no savepoint can be taken".into())
        })?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        coordinator
            .send(CoordinatorEvent::Savepoint {
                target,
                reply,
                stop,
            })
            .map_err(|_| {
                FjordError::CheckpointFailed("the job ended before the savepoint started".into())
            })?;
        answer
            .recv_timeout(self.savepoint_timeout)
            .map_err(|_| {
                FjordError::CheckpointFailed(format!(
                    "no savepoint within {:?}",
                    self.savepoint_timeout
                ))
            })?
            .map(|completed| completed.path)
    }

    /// Takes a checkpoint now (Flink's manual checkpoint), whether periodic checkpoints are
    /// on or off, into the configured checkpoint storage, and returns it once completed. It
    /// becomes the latest checkpoint (a restart restores from it) and counts for retention.
    /// While `max_concurrent` checkpoints are in flight it waits for one to end, as Flink
    /// queues it.
    ///
    /// # Errors
    /// The job is not running (yet, or any more) or is finishing, storage failed, a task
    /// declined, or the checkpoint did not complete within the checkpoint timeout.
    pub fn trigger_checkpoint(
        &self,
        kind: crate::checkpoint::CheckpointType,
    ) -> Result<crate::checkpoint::CompletedCheckpoint> {
        let coordinator = self.control.coordinator.lock().clone().ok_or_else(|| {
            FjordError::CheckpointFailed(
                "the job is not running; no checkpoint can be taken".into(),
            )
        })?;
        let (reply, answer) = crossbeam_channel::bounded(1);
        coordinator
            .send(CoordinatorEvent::Checkpoint { kind, reply })
            .map_err(|_| {
                FjordError::CheckpointFailed("the job ended before the checkpoint started".into())
            })?;
        // The coordinator answers every request (a queued one after those ahead of it, each
        // bounded by the timeout); this bound only guards against a lost coordinator.
        let bound = self.savepoint_timeout.saturating_mul(2);
        match answer.recv_timeout(bound) {
            Ok(result) => result,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(FjordError::CheckpointFailed(
                format!("no checkpoint within {bound:?}"),
            )),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(FjordError::CheckpointFailed(
                    "the job's execution ended (it finished, failed or restarted) before the \
                     checkpoint completed"
                        .into(),
                ))
            }
        }
    }

    /// Stops the job with a savepoint (Flink's `stop`): sources stop right after the
    /// savepoint barrier, the savepoint completes, and the job finishes, so exactly-once
    /// sinks hold everything up to the savepoint and nothing after it. With `drain` the
    /// sources first emit the final watermark, so event-time windows fire before the
    /// savepoint (Flink's `--drain`, for jobs that will not resume). Returns the savepoint's
    /// URL once the job has finished.
    ///
    /// # Errors
    /// As [`trigger_savepoint`](Self::trigger_savepoint); the job keeps running when the
    /// savepoint fails.
    pub fn stop_with_savepoint(self, directory: &str, drain: bool) -> Result<String> {
        let path = self.savepoint(directory, Some(drain))?;
        self.wait()?;
        Ok(path)
    }

    /// Like [`stop_with_savepoint`](Self::stop_with_savepoint), but keeps the client and does
    /// not wait for the job to finish: returns the savepoint's URL once the savepoint completed
    /// (the job then finishes by itself; [`wait`](Self::wait) for it). For servers that hold
    /// the client shared, such as the JobManager's REST API.
    ///
    /// # Errors
    /// As [`trigger_savepoint`](Self::trigger_savepoint); the job keeps running when the
    /// savepoint fails.
    pub fn trigger_stop_with_savepoint(&self, directory: &str, drain: bool) -> Result<String> {
        self.savepoint(directory, Some(drain))
    }

    /// True while the job's tasks are deployed (between start and end, and between
    /// restarts it is briefly false).
    pub fn is_running(&self) -> bool {
        self.control.coordinator.lock().is_some()
    }

    /// The most recent completed checkpoints and savepoints (oldest first, at most 100) and
    /// the number of failed ones.
    pub fn checkpoint_history(&self) -> (Vec<crate::checkpoint::CompletedCheckpoint>, u64) {
        let h = self.control.history.lock();
        (h.recent.iter().cloned().collect(), h.failed_count)
    }

    /// The most recent failed or aborted checkpoints and savepoints (at most 100), oldest
    /// first, with why each failed.
    pub fn failed_checkpoints(&self) -> Vec<crate::checkpoint::FailedCheckpoint> {
        self.control
            .history
            .lock()
            .failed_recent
            .iter()
            .cloned()
            .collect()
    }

    /// The checkpoints and savepoints in flight, oldest first, with their acknowledgements
    /// per vertex so far.
    pub fn in_flight_checkpoints(&self) -> Vec<crate::checkpoint::InFlightCheckpoint> {
        self.control.history.lock().in_flight.clone()
    }

    /// URL of the latest completed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<String> {
        self.control.history.lock().latest.clone()
    }

    /// True once the job ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for the job to end.
    pub fn wait(self) -> Result<JobExecutionResult> {
        self.handle
            .join()
            .unwrap_or_else(|_| Err(FjordError::Internal("job thread panicked".into())))
    }
}

impl JobClient {
    /// How often the job restarted after a failure so far (execution attempts − 1), live
    /// while the job runs.
    pub fn restarts(&self) -> u32 {
        self.control.history.lock().attempts.saturating_sub(1)
    }

    /// The failures of execution attempts so far, oldest first (at most 100): each restart's
    /// cause, and the final one when the job failed.
    pub fn failures(&self) -> Vec<crate::checkpoint::JobFailure> {
        self.control
            .history
            .lock()
            .failures
            .iter()
            .cloned()
            .collect()
    }

    /// Checkpoints (not savepoints) completed and failed so far, over all attempts: totals,
    /// unlike [`checkpoint_history`](Self::checkpoint_history), which keeps the last 100.
    pub fn checkpoint_counts(&self) -> (u64, u64) {
        let h = self.control.history.lock();
        (h.completed_count, h.failed_count)
    }
}
