//! The CEP operator (Flink's `CepOperator`) as a keyed process function: records are
//! buffered in keyed map state until the watermark passes them, then fed to the key's NFA in
//! timestamp order; the NFA's state is keyed value state. Both are checkpointed, savepointed
//! and moved between subtasks by key group like any other keyed state.

use crate::compiler::Graph;
use crate::matches::Match;
use crate::nfa::NfaState;
use fjord::state::{MapState, MapStateDescriptor, ValueState, ValueStateDescriptor};
use fjord::{
    BoxError, Data, Key, KeyedProcessContext, KeyedProcessFunction, OutputTag, RuntimeContext,
};
use std::sync::Arc;

/// What a pattern function can do with a match: emit records (stamped with the match's
/// timestamp), emit to side outputs, read the key.
pub struct PatternContext<'a, 'b, K, O> {
    inner: &'a mut KeyedProcessContext<'b, K, O>,
    timestamp: i64,
}

impl<K: Key, O> PatternContext<'_, '_, K, O> {
    /// The timestamp of the match: that of the event (or time) that completed or released it,
    /// or the timeout timestamp (first event + window) of a timed-out match.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The key of the match.
    pub fn current_key(&self) -> &K {
        self.inner.current_key()
    }

    /// Emits a record with the match's timestamp.
    pub fn collect(&mut self, value: O) {
        self.inner.collect_with_timestamp(value, self.timestamp);
    }

    /// Emits a record to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.inner.output(tag, value);
    }
}

/// Turns matches into output records (Flink's `PatternProcessFunction`, with
/// `TimedOutPartialMatchHandler` folded in as a method with a default).
pub trait PatternProcessFunction<K, T, O>: Send + 'static {
    /// Called for every match.
    fn process_match(
        &mut self,
        matched: Match<T>,
        ctx: &mut PatternContext<'_, '_, K, O>,
    ) -> Result<(), BoxError>;

    /// Called for every partial match that timed out (`within`); the default drops it.
    fn process_timed_out_match(
        &mut self,
        _matched: Match<T>,
        _ctx: &mut PatternContext<'_, '_, K, O>,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    /// Called once per parallel instance before the first record (Flink's `open`).
    fn open(&mut self, _ctx: &RuntimeContext) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The keyed process function that runs the NFA of every key.
pub(crate) struct CepFunction<T, F> {
    graph: Arc<Graph<T>>,
    f: F,
    late: Option<OutputTag<T>>,
    nfa: Option<ValueState<NfaState<T>>>,
    queue: Option<MapState<i64, Vec<T>>>,
}

impl<T, F: Clone> Clone for CepFunction<T, F> {
    fn clone(&self) -> Self {
        CepFunction {
            graph: self.graph.clone(),
            f: self.f.clone(),
            late: self.late.clone(),
            nfa: None,
            queue: None,
        }
    }
}

impl<T, F> CepFunction<T, F> {
    pub(crate) fn new(graph: Arc<Graph<T>>, f: F, late: Option<OutputTag<T>>) -> Self {
        CepFunction {
            graph,
            f,
            late,
            nfa: None,
            queue: None,
        }
    }
}

/// Registers an event-time timer at watermark + 1: the next watermark fires it.
fn timer_after_watermark<K: Key, O>(ctx: &mut KeyedProcessContext<'_, K, O>) {
    let watermark = ctx.current_watermark();
    if let Some(next) = watermark.checked_add(1) {
        ctx.timer_service().register_event_time_timer(next);
    }
}

impl<K: Key, T: Data, O: Data, F: PatternProcessFunction<K, T, O>> KeyedProcessFunction<K, T, O>
    for CepFunction<T, F>
{
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.nfa = Some(ctx.get_state(&ValueStateDescriptor::new("cep-nfa-state"))?);
        self.queue = Some(ctx.get_map_state(&MapStateDescriptor::new("cep-element-queue"))?);
        self.f.open(ctx)
    }

    fn process_element(
        &mut self,
        value: T,
        ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError> {
        let timestamp = ctx.timestamp().ok_or(crate::CepError::MissingTimestamp)?;
        if timestamp > ctx.current_watermark() {
            let queue = self.queue.as_ref().ok_or("CEP operator not opened")?;
            let mut events = queue.get(&timestamp).unwrap_or_default();
            events.push(value);
            queue.put(timestamp, events);
            timer_after_watermark(ctx);
        } else if let Some(tag) = &self.late {
            ctx.output(tag, value);
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        _timestamp: i64,
        ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError> {
        let (nfa_state, queue) = match (&self.nfa, &self.queue) {
            (Some(n), Some(q)) => (n.clone(), q.clone()),
            _ => return Err("CEP operator not opened".into()),
        };
        let graph = self.graph.clone();
        let watermark = ctx.current_watermark();
        let mut nfa = match nfa_state.value() {
            Some(n) => {
                n.check(&graph)?;
                n
            }
            None => NfaState::new(&graph),
        };
        let mut timestamps = queue.keys();
        timestamps.sort_unstable();
        let mut pending = false;
        for ts in timestamps {
            if ts > watermark {
                pending = true;
                break;
            }
            self.advance(&graph, &mut nfa, ts, ctx)?;
            for event in queue.get(&ts).unwrap_or_default() {
                for m in nfa.process(&graph, event, ts) {
                    let mut pctx = PatternContext {
                        inner: ctx,
                        timestamp: ts,
                    };
                    self.f.process_match(m, &mut pctx)?;
                }
            }
            queue.remove(&ts);
        }
        self.advance(&graph, &mut nfa, watermark, ctx)?;
        let idle = nfa.is_idle();
        if idle {
            nfa_state.clear();
        } else {
            nfa_state.update(nfa);
        }
        if pending || !idle {
            timer_after_watermark(ctx);
        }
        Ok(())
    }
}

impl<T: Data, F> CepFunction<T, F> {
    /// Advances the NFA's time to `timestamp` and hands out what that produced.
    fn advance<K: Key, O: Data>(
        &mut self,
        graph: &Graph<T>,
        nfa: &mut NfaState<T>,
        timestamp: i64,
        ctx: &mut KeyedProcessContext<'_, K, O>,
    ) -> Result<(), BoxError>
    where
        F: PatternProcessFunction<K, T, O>,
    {
        let advanced = nfa.advance_time(graph, timestamp);
        for (m, at) in advanced.timed_out {
            let mut pctx = PatternContext {
                inner: ctx,
                timestamp: at,
            };
            self.f.process_timed_out_match(m, &mut pctx)?;
        }
        for m in advanced.matches {
            let mut pctx = PatternContext {
                inner: ctx,
                timestamp,
            };
            self.f.process_match(m, &mut pctx)?;
        }
        Ok(())
    }
}
