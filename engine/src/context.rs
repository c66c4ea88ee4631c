//! The runtime context user functions see (Flink's `RuntimeContext`).

use crate::error::{FjordError, Result, TaskLocation};
use crate::keygroup::KeyGroupRange;
use crate::metrics::{Counter, Gauge, MetricGroup, MetricRegistry};
use crate::state::keyed::AggregateFunction;
use crate::state::{
    AggregatingState, AggregatingStateDescriptor, KeyedStateHandle, ListState, ListStateDescriptor,
    MapState, MapStateDescriptor, ReducingState, ReducingStateDescriptor, ValueState,
    ValueStateDescriptor,
};
use crate::time::clock::{Clock, SystemClock, WakeupSchedule};
use crate::types::Timestamp;
use crate::types::{Data, Key};
use std::fmt;
use std::sync::Arc;

/// Per-task services shared by the operators of one chain: the processing-time clock, the
/// schedule of processing-time wake-ups, and the job's metric registry.
#[derive(Clone)]
pub(crate) struct TaskServices {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wakeups: WakeupSchedule,
    pub(crate) metrics: MetricRegistry,
    /// Milliseconds between periodic watermarks; 0 disables them.
    pub(crate) watermark_interval: i64,
    /// The checkpoint participants of the task and the state it was restored from.
    pub(crate) checkpointing: crate::checkpoint::participant::TaskCheckpointing,
    /// The keyed state backend the job's keyed operators create.
    pub(crate) state_backend: crate::state::factory::StateBackendSettings,
}

impl Default for TaskServices {
    fn default() -> Self {
        TaskServices {
            clock: Arc::new(SystemClock),
            wakeups: WakeupSchedule::default(),
            metrics: MetricRegistry::default(),
            watermark_interval: 200,
            checkpointing: Default::default(),
            state_backend: Default::default(),
        }
    }
}

impl fmt::Debug for TaskServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskServices")
            .field("clock", &self.clock)
            .field("wakeups", &self.wakeups)
            .finish()
    }
}

/// Facts about the parallel instance a user function runs in, and access to its state.
///
/// Passed to `open` of every rich function, source reader and sink writer. Inside keyed
/// operators (process functions on keyed streams, windows, joins) it also hands out keyed state
/// through [`get_state`](Self::get_state) and friends; outside them those calls fail like in
/// Flink ("keyed state can only be used on a keyed stream").
#[derive(Clone)]
pub struct RuntimeContext {
    /// Name of the job, as passed to `execute`.
    pub job_name: String,
    /// Name of the operator (its `.name(..)` or default name).
    pub task_name: String,
    /// Zero-based index of this parallel instance.
    pub subtask_index: usize,
    /// Number of parallel instances of this operator.
    pub parallelism: usize,
    /// Maximum parallelism (the number of key groups) of this operator.
    pub max_parallelism: usize,
    /// How many times the job has been restarted before this attempt (0 for the first run).
    pub attempt_number: u32,
    pub(crate) services: TaskServices,
    pub(crate) keyed: Option<crate::state::KeyedStateHandle>,
    /// The operator's id in snapshots: its uid, or one derived from its position.
    pub(crate) operator_id: String,
    /// Whether `operator_id` is a user-given uid.
    pub(crate) has_uid: bool,
}

impl fmt::Debug for RuntimeContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeContext")
            .field("job_name", &self.job_name)
            .field("task_name", &self.task_name)
            .field("subtask_index", &self.subtask_index)
            .field("parallelism", &self.parallelism)
            .field("max_parallelism", &self.max_parallelism)
            .field("attempt_number", &self.attempt_number)
            .field("keyed", &self.keyed.is_some())
            .finish()
    }
}

impl RuntimeContext {
    /// The location used in error messages.
    pub fn location(&self) -> TaskLocation {
        TaskLocation {
            operator: self.task_name.clone(),
            subtask: self.subtask_index,
            parallelism: self.parallelism,
        }
    }

    /// Flink's "task name with subtasks": `name (2/4)`.
    pub fn task_name_with_subtasks(&self) -> String {
        format!(
            "{} ({}/{})",
            self.task_name,
            self.subtask_index + 1,
            self.parallelism
        )
    }

    /// The current processing time from the job's clock (milliseconds since the epoch).
    pub fn current_processing_time(&self) -> Timestamp {
        self.services.clock.now()
    }

    /// The event time of a record in an operator that needs one.
    ///
    /// # Errors
    /// [`FjordError::MissingTimestamp`] naming this operator when the record has none.
    #[inline]
    pub(crate) fn event_time(&self, timestamp: Option<Timestamp>) -> Result<Timestamp> {
        timestamp.ok_or_else(|| FjordError::MissingTimestamp {
            operator: self.task_name.clone(),
        })
    }

    /// The job's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.services.clock.clone()
    }

    /// The counter `name` of this operator's subtask (created on first use). Its value is in
    /// [`JobExecutionResult::metrics`](crate::JobExecutionResult) after the job ends.
    pub fn counter(&self, name: &str) -> Counter {
        self.services
            .metrics
            .counter(&self.task_name_with_subtasks(), name)
    }

    /// The gauge `name` of this operator's subtask (created on first use): a value that goes
    /// up and down, like a consumer lag. Its last value is in
    /// [`JobExecutionResult::metrics`](crate::JobExecutionResult) beside the counters.
    pub fn gauge(&self, name: &str) -> Gauge {
        self.services
            .metrics
            .gauge(&self.task_name_with_subtasks(), name)
    }

    /// This operator subtask's root metric group (Flink's `getMetricGroup`): metrics in
    /// key/value subgroups (`add_group_kv("partition", "3")`) are exported to Prometheus with
    /// the value as a label. [`counter`](Self::counter) and [`gauge`](Self::gauge) are
    /// shorthands for metrics in this group.
    pub fn metric_group(&self) -> MetricGroup {
        self.services.metrics.group(&self.task_name_with_subtasks())
    }

    /// The ID of the checkpoint or savepoint the job was restored from in this execution
    /// (Flink's `InitContext.getRestoredCheckpointId`), also for a subtask that received no
    /// state of its own (one added by scaling up); `None` when the job started without one.
    pub fn restored_checkpoint_id(&self) -> Option<u64> {
        self.services.checkpointing.restored_checkpoint_id()
    }

    /// How often periodic watermarks are generated (Flink's auto-watermark interval); zero
    /// when periodic watermarks are disabled. For sources that generate watermarks
    /// themselves.
    pub fn auto_watermark_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.services.watermark_interval.max(0) as u64)
    }

    fn keyed_state(&self) -> Result<&KeyedStateHandle> {
        self.keyed.as_ref().ok_or_else(|| FjordError::NotKeyed {
            what: "keyed state".into(),
            operator: self.task_name.clone(),
        })
    }

    /// A [`ValueState`] of the current key (Flink's `getState`).
    ///
    /// # Errors
    /// [`FjordError::NotKeyed`] outside keyed operators; [`FjordError::StateTypeMismatch`] if
    /// the name is used by a state of another type.
    pub fn get_state<V: Data>(
        &self,
        descriptor: &ValueStateDescriptor<V>,
    ) -> Result<ValueState<V>> {
        ValueState::new(self.keyed_state()?, descriptor)
    }

    /// A [`ListState`] of the current key (Flink's `getListState`).
    pub fn get_list_state<V: Data>(
        &self,
        descriptor: &ListStateDescriptor<V>,
    ) -> Result<ListState<V>> {
        ListState::new(self.keyed_state()?, descriptor)
    }

    /// A [`ReducingState`] of the current key (Flink's `getReducingState`).
    pub fn get_reducing_state<V: Data>(
        &self,
        descriptor: &ReducingStateDescriptor<V>,
    ) -> Result<ReducingState<V>> {
        ReducingState::new(self.keyed_state()?, descriptor)
    }

    /// An [`AggregatingState`] of the current key (Flink's `getAggregatingState`).
    pub fn get_aggregating_state<
        IN: 'static,
        ACC: Data,
        OUT: 'static,
        F: AggregateFunction<IN, ACC, OUT> + Clone,
    >(
        &self,
        descriptor: &AggregatingStateDescriptor<IN, ACC, OUT, F>,
    ) -> Result<AggregatingState<IN, ACC, OUT>> {
        AggregatingState::new(self.keyed_state()?, descriptor)
    }

    /// A [`MapState`] of the current key (Flink's `getMapState`).
    pub fn get_map_state<UK: Key, UV: Data>(
        &self,
        descriptor: &MapStateDescriptor<UK, UV>,
    ) -> Result<MapState<UK, UV>> {
        MapState::new(self.keyed_state()?, descriptor)
    }

    /// The identity of this operator subtask in checkpoints.
    pub(crate) fn operator_key(&self) -> crate::checkpoint::participant::OperatorKey {
        crate::checkpoint::participant::OperatorKey {
            id: self.operator_id.clone(),
            name: self.task_name.clone(),
            has_uid: self.has_uid,
            subtask: self.subtask_index,
            parallelism: self.parallelism,
            max_parallelism: self.max_parallelism,
        }
    }

    /// The same context with a fresh keyed state backend for this subtask's key groups that
    /// is neither restored nor registered as a checkpoint participant: the operator snapshots
    /// and restores it together with its own keyed parts (see `operators::shared`). The
    /// backend is the job's (heap, RocksDB, ...), and is told of each snapshot so a backend
    /// with native snapshots can take them.
    ///
    /// # Errors
    /// The backend cannot be created (for example RocksDB cannot open its local directory).
    pub(crate) fn with_unregistered_keyed_state(&self) -> Result<RuntimeContext> {
        let mut ctx = self.clone();
        let handle = self.new_keyed_state_handle()?;
        self.services.checkpointing.register_keyed(handle.clone());
        ctx.keyed = Some(handle);
        Ok(ctx)
    }

    /// A new, empty keyed state backend of the job's kind for this subtask's key groups.
    fn new_keyed_state_handle(&self) -> Result<KeyedStateHandle> {
        let range =
            KeyGroupRange::for_subtask(self.max_parallelism, self.parallelism, self.subtask_index);
        let backend = &self.services.state_backend;
        let (factory, local_dir) = backend.kind.factory()?;
        let created = factory.create(&crate::state::factory::BackendContext {
            job_name: self.job_name.clone(),
            operator_id: self.operator_id.clone(),
            subtask: self.subtask_index,
            key_groups: range,
            max_parallelism: self.max_parallelism,
            local_dir,
            storage_options: backend.storage_options.clone(),
        })?;
        Ok(KeyedStateHandle::with_backend(
            created,
            self.max_parallelism,
            self.services.clock.clone(),
        ))
    }

    /// The state this operator subtask was restored with, if any.
    ///
    /// # Errors
    /// Restored state that cannot be read or redistributed.
    pub(crate) fn restored_state(
        &self,
    ) -> Result<Option<crate::checkpoint::participant::OperatorState>> {
        self.services.checkpointing.restored(&self.operator_key())
    }

    /// The key groups this subtask owns.
    pub(crate) fn key_group_range(&self) -> KeyGroupRange {
        KeyGroupRange::for_subtask(self.max_parallelism, self.parallelism, self.subtask_index)
    }

    /// Asks the task to call the chain's processing-time hook at `time`.
    pub(crate) fn request_wakeup(&self, time: Timestamp) {
        self.services.wakeups.register(time);
    }
}
