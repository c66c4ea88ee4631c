//! Exactly-once output: the two-phase-commit sink framework (Flink's
//! `TwoPhaseCommitSinkFunction`, and the committer of the newer Sink API).
//!
//! A transactional writer collects records in an open transaction. At a checkpoint barrier it
//! *pre-commits*: the transaction is made durable but not visible, and its committable (a
//! small description, such as file names) is stored in the checkpoint. When the checkpoint
//! completes everywhere, the committables are *committed* (made visible). After a failure the
//! job restarts from the last completed checkpoint: committables stored in it are committed
//! again (commits must be idempotent), and everything written after it is thrown away and
//! replayed. Output thus appears once, exactly, at the latency of the checkpoint interval.

use crate::checkpoint::participant::{CheckpointParticipant, OperatorState};
use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::operators::output::{Lifecycle, Output, guard};
use crate::state::operator::{RedistributionMode, StoreSnapshot};
use crate::types::{StreamRecord, Timestamp};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A factory of transactional writers, one per parallel instance.
pub trait TransactionalSink<T>: Send + Sync + 'static {
    /// Creates the writer of one parallel instance. `recovered` holds the committables of
    /// this instance that the restored checkpoint had pre-committed but maybe not committed;
    /// the runtime commits them right after creating the writer.
    fn create_writer(
        &self,
        ctx: &RuntimeContext,
    ) -> Result<Box<dyn TransactionalWriter<T>>, BoxError>;
}

/// Writes the records of one parallel instance in transactions.
pub trait TransactionalWriter<T>: Send {
    /// Adds a record to the open transaction.
    fn write(&mut self, value: T, timestamp: Option<Timestamp>) -> Result<(), BoxError>;

    /// Closes the open transaction durably but invisibly and returns its committable; a new
    /// transaction starts. Called at every checkpoint barrier and at the end of input.
    fn pre_commit(&mut self, checkpoint_id: u64) -> Result<Vec<u8>, BoxError>;

    /// Makes pre-committed transactions visible. Must be idempotent: after a restore the same
    /// committable may be committed again, possibly after it was committed before.
    fn commit(&mut self, committables: &[Vec<u8>]) -> Result<(), BoxError>;

    /// State to keep in checkpoints besides the committables (for example a file counter).
    fn snapshot(&mut self) -> Result<Vec<u8>, BoxError> {
        Ok(Vec::new())
    }

    /// Restores what [`snapshot`](Self::snapshot) returned, before any record is written.
    /// After a rescale an instance may receive the states of several old instances (or none):
    /// this is called once per state, and must leave the writer able to write without
    /// colliding with anything those instances wrote.
    fn restore(&mut self, _state: &[u8]) -> Result<(), BoxError> {
        Ok(())
    }

    /// Deletes whatever this instance's earlier writers (earlier attempts of the same subtask,
    /// at the same parallelism) left pre-committed but never committed. Called after a
    /// restore or restart only when that is safe: every restored transaction of this subtask
    /// is committed by now and no other instance commits transactions of this subtask.
    fn discard_uncommitted(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// Throws the open transaction away (on failure or cancellation).
    fn abort(&mut self) -> Result<(), BoxError> {
        Ok(())
    }

    /// How often the runtime calls [`on_processing_time`](Self::on_processing_time) while
    /// the writer runs, on the task's thread between records (Flink's processing-time
    /// service); `None` (the default) never. Asked once, when the sink opens.
    fn processing_time_interval(&self) -> Option<Duration> {
        None
    }

    /// Processing time advanced by the [interval](Self::processing_time_interval) since the
    /// last call (or since the sink opened), whether or not records arrived meanwhile: the
    /// place for time-based work such as rolling an idle part file.
    fn on_processing_time(&mut self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The name of the even-split list state a transactional sink keeps its [`SinkState`] in: one
/// element per instance, so after a rescale every old instance's pending transactions are
/// committed by exactly one new instance.
const TRANSACTIONS: &str = "transactions";

/// What a transactional sink instance keeps in a checkpoint.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct SinkState {
    /// Pre-committed, not yet committed: checkpoint id -> committable.
    pending: BTreeMap<u64, Vec<u8>>,
    /// The writer's own state.
    writer: Vec<u8>,
    /// The instance that wrote it, and the parallelism then.
    subtask: usize,
    parallelism: usize,
}

/// [`SinkState`] as written before it was a list element (one instance, restored at the same
/// parallelism only).
#[derive(serde::Deserialize)]
struct LegacySinkState {
    pending: BTreeMap<u64, Vec<u8>>,
    writer: Vec<u8>,
}

struct Shared<T> {
    writer: Box<dyn TransactionalWriter<T>>,
    pending: BTreeMap<u64, Vec<u8>>,
    ctx: RuntimeContext,
}

impl<T> Shared<T> {
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut dyn TransactionalWriter<T>) -> Result<R, BoxError>,
    ) -> Result<R> {
        let writer = &mut self.writer;
        guard(&self.ctx, || f(writer.as_mut())).map_err(crate::sinks::sink_failure)
    }

    fn commit_up_to(&mut self, checkpoint_id: u64) -> Result<()> {
        let ready: Vec<u64> = self
            .pending
            .range(..=checkpoint_id)
            .map(|(id, _)| *id)
            .collect();
        if ready.is_empty() {
            return Ok(());
        }
        let committables: Vec<Vec<u8>> = ready.iter().map(|id| self.pending[id].clone()).collect();
        self.call(|w| w.commit(&committables))?;
        for id in ready {
            self.pending.remove(&id);
        }
        Ok(())
    }
}

/// Takes part in checkpoints for the sink: pre-commit at the barrier, commit on completion.
struct SinkParticipant<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

impl<T: Send + 'static> CheckpointParticipant for SinkParticipant<T> {
    fn snapshot(&mut self, checkpoint_id: u64) -> Result<OperatorState> {
        let mut s = self.shared.lock();
        let committable = s.call(|w| w.pre_commit(checkpoint_id))?;
        s.pending.insert(checkpoint_id, committable);
        let writer = s.call(|w| w.snapshot())?;
        let state = SinkState {
            pending: s.pending.clone(),
            writer,
            subtask: s.ctx.subtask_index,
            parallelism: s.ctx.parallelism,
        };
        let element = crate::encoding::to_vec(&state).map_err(|e| FjordError::Serialization {
            context: format!("sink state of {}", s.ctx.location()),
            message: e.to_string(),
        })?;
        let store = StoreSnapshot {
            states: vec![(
                TRANSACTIONS.to_string(),
                RedistributionMode::EvenSplit,
                vec![element],
            )],
        };
        Ok(OperatorState {
            keyed: Vec::new(),
            operator: Some(store.encode()?),
            ..OperatorState::default()
        })
    }

    fn notify_complete(&mut self, checkpoint_id: u64) -> Result<()> {
        self.shared.lock().commit_up_to(checkpoint_id)
    }
}

/// Runs a transactional writer at the end of a chain.
pub(crate) struct TwoPhaseSinkOp<T> {
    shared: Arc<Mutex<Shared<T>>>,
    finished: bool,
    /// The writer's processing-time interval in milliseconds, and when it is next due.
    timer: Option<(Timestamp, Timestamp)>,
}

impl<T: Send + 'static> TwoPhaseSinkOp<T> {
    /// Creates the writer, restores its state and commits what the restored checkpoint had
    /// pre-committed, and registers for checkpoints.
    pub(crate) fn new(ctx: &RuntimeContext, sink: &dyn TransactionalSink<T>) -> Result<Self> {
        let writer = guard(ctx, || sink.create_writer(ctx)).map_err(crate::sinks::sink_failure)?;
        let mut shared = Shared {
            writer,
            pending: BTreeMap::new(),
            ctx: ctx.clone(),
        };
        let key = ctx.operator_key();
        // Whether this instance owns everything its subtask index wrote before: a restart
        // without a checkpoint, or a restore of its own state at the same parallelism (after a
        // rescale other instances may be committing what this subtask index pre-committed).
        let mut owns_its_leftovers = ctx.attempt_number > 0;
        if let Some(OperatorState {
            operator: Some(bytes),
            ..
        }) = ctx.services.checkpointing.restored(&key)?
        {
            let error = |e: crate::encoding::EncodingError| FjordError::Serialization {
                context: format!("restoring sink state of {}", ctx.location()),
                message: e.to_string(),
            };
            let states: Vec<SinkState> = match StoreSnapshot::decode(&bytes) {
                Some(store) => store?
                    .states
                    .into_iter()
                    .filter(|(name, _, _)| name == TRANSACTIONS)
                    .flat_map(|(_, _, elements)| elements)
                    .map(|e| crate::encoding::from_slice(&e).map_err(error))
                    .collect::<Result<_>>()?,
                None => {
                    let legacy: LegacySinkState =
                        crate::encoding::from_slice(&bytes).map_err(error)?;
                    vec![SinkState {
                        pending: legacy.pending,
                        writer: legacy.writer,
                        subtask: ctx.subtask_index,
                        parallelism: ctx.parallelism,
                    }]
                }
            };
            owns_its_leftovers = states
                .iter()
                .all(|s| s.subtask == ctx.subtask_index && s.parallelism == ctx.parallelism);
            // The restored checkpoint completed, so everything it pre-committed is committed
            // now (again, if the commit had happened before the failure), also what old
            // instances that no longer exist pre-committed.
            for state in states {
                shared.call(|w| w.restore(&state.writer))?;
                let committables: Vec<Vec<u8>> = state.pending.into_values().collect();
                if !committables.is_empty() {
                    shared.call(|w| w.commit(&committables))?;
                }
            }
        }
        if owns_its_leftovers {
            shared.call(|w| w.discard_uncommitted())?;
        }
        let shared = Arc::new(Mutex::new(shared));
        ctx.services.checkpointing.register(
            key,
            Box::new(SinkParticipant {
                shared: shared.clone(),
            }),
        );
        Ok(TwoPhaseSinkOp {
            shared,
            finished: false,
            timer: None,
        })
    }
}

impl<T: Send + 'static> Lifecycle for TwoPhaseSinkOp<T> {
    fn open(&mut self) -> Result<()> {
        let s = self.shared.lock();
        if let Some(interval) = s.writer.processing_time_interval() {
            let interval = Timestamp::try_from(interval.as_millis())
                .unwrap_or(Timestamp::MAX)
                .max(1);
            let due = s.ctx.current_processing_time().saturating_add(interval);
            s.ctx.request_wakeup(due);
            self.timer = Some((interval, due));
        }
        Ok(())
    }
    /// Calls the writer's processing-time hook when its interval elapsed (other operators of
    /// the chain may wake the task earlier), and asks to be woken at the next one.
    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        let Some((interval, due)) = self.timer else {
            return Ok(());
        };
        if now < due || self.finished {
            return Ok(());
        }
        let mut s = self.shared.lock();
        s.call(|w| w.on_processing_time())?;
        let next = now.saturating_add(interval);
        s.ctx.request_wakeup(next);
        self.timer = Some((interval, next));
        Ok(())
    }
    fn emit_watermark(&mut self, _: Timestamp) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        let mut s = self.shared.lock();
        if s.ctx.services.checkpointing.awaits_final_checkpoint() {
            // End of input with checkpoints: the last transaction stays open until the final
            // checkpoint (Flink's FLIP-147) pre-commits it and commits it once that checkpoint
            // completed. A failure before then restores the last completed checkpoint and
            // replays; a failure after it restores the final checkpoint, which commits again
            // (idempotently) and replays nothing, so no record is written twice.
            return Ok(());
        }
        // Without checkpoints (or stopped by a savepoint, which is the last snapshot) the
        // last transaction is committed right away.
        let committable = s.call(|w| w.pre_commit(u64::MAX))?;
        s.pending.insert(u64::MAX, committable);
        s.commit_up_to(u64::MAX)?;
        self.finished = true;
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        // Throws away the open transaction: after a final checkpoint that is the empty one
        // its pre-commit started; otherwise what the job failed or was cancelled in.
        self.shared.lock().call(|w| w.abort())
    }
}

impl<T: Send + 'static> Output<T> for TwoPhaseSinkOp<T> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        self.shared
            .lock()
            .call(|w| w.write(record.value, record.timestamp))
    }
}
