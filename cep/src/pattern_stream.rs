//! `CEP::pattern` and `PatternStream` (Flink's `CEP` and `PatternStream`): a pattern applied
//! to a keyed stream, turned into records by select, flat-select or a process function.

use crate::compiler::{Graph, compile};
use crate::error::CepError;
use crate::matches::Match;
use crate::operator::{CepFunction, PatternContext, PatternProcessFunction};
use crate::pattern::Pattern;
use fjord::{BoxError, Data, DataStream, Key, KeyedStream, OutputTag, SingleOutputStreamOperator};
use std::sync::Arc;

/// The entry point (Flink's `CEP` class).
#[allow(clippy::upper_case_acronyms)]
pub struct CEP;

impl CEP {
    /// Applies `pattern` to every key of `input` (Flink's `CEP.pattern`). Matching runs in
    /// event time: `input` needs timestamps and watermarks.
    ///
    /// # Errors
    /// [`CepError::MalformedPattern`] when the pattern cannot be compiled (what Flink rejects
    /// with a `MalformedPatternException`).
    pub fn pattern<T: Data, K: Key>(
        input: &KeyedStream<T, K>,
        pattern: Pattern<T>,
    ) -> Result<PatternStream<T, K>, CepError> {
        Ok(PatternStream {
            input: input.clone(),
            graph: Arc::new(compile(&pattern)?),
            late: None,
        })
    }
}

impl CEP {
    /// Checks that `pattern` compiles, without a stream (for planners that build patterns
    /// before the job, such as SQL's `MATCH_RECOGNIZE`).
    ///
    /// # Errors
    /// As [`CEP::pattern`].
    pub fn check<T: 'static>(pattern: &Pattern<T>) -> Result<(), CepError> {
        compile(pattern).map(|_| ())
    }
}

impl CEP {
    /// Applies `pattern` to a non-keyed stream (Flink's `CEP.pattern` on a `DataStream`): all
    /// records form one key, so one subtask matches them all, as in Flink.
    ///
    /// # Errors
    /// As [`CEP::pattern`].
    pub fn pattern_all<T: Data>(
        input: &DataStream<T>,
        pattern: Pattern<T>,
    ) -> Result<PatternStream<T, u8>, CepError> {
        CEP::pattern(&input.key_by(|_: &T| 0u8), pattern)
    }
}

/// A pattern applied to a keyed stream (Flink's `PatternStream`).
pub struct PatternStream<T, K> {
    input: KeyedStream<T, K>,
    graph: Arc<Graph<T>>,
    late: Option<OutputTag<T>>,
}

impl<T: Data, K: Key> PatternStream<T, K> {
    /// Sends records that arrive behind the watermark to `tag` instead of dropping them
    /// (Flink's `sideOutputLateData`).
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.late = Some(tag.clone());
        self
    }

    /// Turns matches (and, if the function handles them, timed-out partial matches) into
    /// records (Flink's `PatternStream.process`).
    pub fn process<O: Data, F: PatternProcessFunction<K, T, O> + Clone>(
        &self,
        f: F,
    ) -> SingleOutputStreamOperator<O> {
        self.input
            .process(CepFunction::new(self.graph.clone(), f, self.late.clone()))
            .name("CepOperator")
    }

    /// One record per match (Flink's `select`).
    pub fn select<O: Data>(
        &self,
        f: impl FnMut(&Match<T>) -> O + Clone + Send + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.process(Select {
            select: f,
            timeout: NoTimeout,
            tag: None,
        })
    }

    /// Any number of records per match (Flink's `flatSelect`): the function pushes them.
    pub fn flat_select<O: Data>(
        &self,
        f: impl FnMut(&Match<T>, &mut Vec<O>) + Clone + Send + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.process(FlatSelect {
            select: f,
            timeout: NoFlatTimeout,
            tag: None,
        })
    }

    /// One record per match, and one per timed-out partial match to the side output `tag`
    /// (Flink's `select(outputTag, timeoutFunction, selectFunction)`); the timeout function
    /// gets the timeout timestamp. Read it with `get_side_output(tag)` on the result.
    pub fn select_with_timeout<O: Data, X: Data>(
        &self,
        tag: &OutputTag<X>,
        timeout: impl FnMut(&Match<T>, i64) -> X + Clone + Send + 'static,
        select: impl FnMut(&Match<T>) -> O + Clone + Send + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.process(Select {
            select,
            timeout,
            tag: Some(tag.clone()),
        })
    }

    /// Any number of records per match, and per timed-out partial match to the side output
    /// `tag` (Flink's `flatSelect(outputTag, flatTimeoutFunction, flatSelectFunction)`).
    pub fn flat_select_with_timeout<O: Data, X: Data>(
        &self,
        tag: &OutputTag<X>,
        timeout: impl FnMut(&Match<T>, i64, &mut Vec<X>) + Clone + Send + 'static,
        select: impl FnMut(&Match<T>, &mut Vec<O>) + Clone + Send + 'static,
    ) -> SingleOutputStreamOperator<O> {
        self.process(FlatSelect {
            select,
            timeout,
            tag: Some(tag.clone()),
        })
    }
}

/// A timeout function that is never called (no side output).
#[derive(Clone)]
struct NoTimeout;

impl<T> FnOnceShim<T, ()> for NoTimeout {
    fn call(&mut self, _: &Match<T>, _: i64) {}
}

#[derive(Clone)]
struct NoFlatTimeout;

impl<T> FlatShim<T, ()> for NoFlatTimeout {
    fn call(&mut self, _: &Match<T>, _: i64, _: &mut Vec<()>) {}
}

/// A timeout function `(match, timestamp) -> X`.
trait FnOnceShim<T, X>: Clone + Send + 'static {
    fn call(&mut self, m: &Match<T>, ts: i64) -> X;
}

impl<T, X, F: FnMut(&Match<T>, i64) -> X + Clone + Send + 'static> FnOnceShim<T, X> for F {
    fn call(&mut self, m: &Match<T>, ts: i64) -> X {
        self(m, ts)
    }
}

/// A flat timeout function `(match, timestamp, out)`.
trait FlatShim<T, X>: Clone + Send + 'static {
    fn call(&mut self, m: &Match<T>, ts: i64, out: &mut Vec<X>);
}

impl<T, X, F: FnMut(&Match<T>, i64, &mut Vec<X>) + Clone + Send + 'static> FlatShim<T, X> for F {
    fn call(&mut self, m: &Match<T>, ts: i64, out: &mut Vec<X>) {
        self(m, ts, out)
    }
}

#[derive(Clone)]
struct Select<S, U, X> {
    select: S,
    timeout: U,
    tag: Option<OutputTag<X>>,
}

impl<K, T, O, X, S, U> PatternProcessFunction<K, T, O> for Select<S, U, X>
where
    K: Key,
    T: Data,
    O: Data,
    X: Data,
    S: FnMut(&Match<T>) -> O + Clone + Send + 'static,
    U: FnOnceShim<T, X>,
{
    fn process_match(
        &mut self,
        matched: Match<T>,
        ctx: &mut PatternContext<'_, '_, K, O>,
    ) -> Result<(), BoxError> {
        ctx.collect((self.select)(&matched));
        Ok(())
    }

    fn process_timed_out_match(
        &mut self,
        matched: Match<T>,
        ctx: &mut PatternContext<'_, '_, K, O>,
    ) -> Result<(), BoxError> {
        if let Some(tag) = &self.tag {
            let value = self.timeout.call(&matched, ctx.timestamp());
            ctx.output(tag, value);
        }
        Ok(())
    }
}

#[derive(Clone)]
struct FlatSelect<S, U, X> {
    select: S,
    timeout: U,
    tag: Option<OutputTag<X>>,
}

impl<K, T, O, X, S, U> PatternProcessFunction<K, T, O> for FlatSelect<S, U, X>
where
    K: Key,
    T: Data,
    O: Data,
    X: Data,
    S: FnMut(&Match<T>, &mut Vec<O>) + Clone + Send + 'static,
    U: FlatShim<T, X>,
{
    fn process_match(
        &mut self,
        matched: Match<T>,
        ctx: &mut PatternContext<'_, '_, K, O>,
    ) -> Result<(), BoxError> {
        let mut out = Vec::new();
        (self.select)(&matched, &mut out);
        out.into_iter().for_each(|o| ctx.collect(o));
        Ok(())
    }

    fn process_timed_out_match(
        &mut self,
        matched: Match<T>,
        ctx: &mut PatternContext<'_, '_, K, O>,
    ) -> Result<(), BoxError> {
        if let Some(tag) = &self.tag {
            let mut out = Vec::new();
            self.timeout.call(&matched, ctx.timestamp(), &mut out);
            out.into_iter().for_each(|x| ctx.output(tag, x));
        }
        Ok(())
    }
}
