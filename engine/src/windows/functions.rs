//! Window functions: what is computed when a window fires.
//!
//! Users write a [`ProcessWindowFunction`] (all elements plus the window), or use `reduce`
//! and `aggregate`, optionally combined with a process function. Internally every variant is
//! a `WindowLogic`: how contents grow (`add`), merge (sessions, panes) and turn into output.

use crate::context::RuntimeContext;
use crate::error::{BoxError, FjordError, Result};
use crate::functions::{AggregateFunction, ReduceFunction, lifecycle_hooks};
use crate::operators::output::{Emitter, Output, SideOutputs, guard};
use crate::types::OutputTag;
use crate::types::{Data, StreamRecord, Timestamp};
use crate::windows::evictors::Evictor;
use crate::windows::window::Window;
use std::marker::PhantomData;

/// What a [`ProcessWindowFunction`] sees besides the elements: the window, the times, and the
/// outputs. Records it emits carry the window's `max_timestamp()` (end − 1).
pub struct WindowContext<'a, W, O> {
    pub(crate) window: &'a W,
    pub(crate) watermark: Timestamp,
    /// The job's clock, read on the first `current_processing_time` call of this firing: most
    /// window functions never ask, and reading the clock was a per-key cost of every firing.
    clock: &'a RuntimeContext,
    processing_time: std::cell::Cell<Option<Timestamp>>,
    pub(crate) emit: Emitter<'a, O>,
    /// The operator's keyed state (for `window_state` and `global_state`).
    pub(crate) keyed: Option<&'a crate::state::KeyedStateHandle>,
}

impl<'a, W: Window, O> WindowContext<'a, W, O> {
    /// A context for firing `window`; results go to `out` and `sides` stamped with the
    /// window's `max_timestamp()`.
    pub(crate) fn new(
        window: &'a W,
        watermark: Timestamp,
        clock: &'a RuntimeContext,
        out: &'a mut dyn Output<O>,
        sides: &'a mut SideOutputs,
        keyed: Option<&'a crate::state::KeyedStateHandle>,
    ) -> Self {
        WindowContext {
            window,
            watermark,
            clock,
            processing_time: std::cell::Cell::new(None),
            emit: Emitter::new(out, sides, Some(window.max_timestamp())),
            keyed,
        }
    }
}

impl<W: Window, O> WindowContext<'_, W, O> {
    /// Keyed state of the current key scoped to this window (Flink's `windowState()`). It
    /// lives as long as you keep it: clear it when the window is done with it.
    ///
    /// # Errors
    /// [`FjordError::NotKeyed`] for windows without keyed state (`window_all`, pane-based
    /// sliding windows).
    pub fn window_state(&self) -> crate::error::Result<crate::state::KeyedStateStore> {
        let mut ns = Vec::new();
        crate::state::keyed_encode(self.window, &mut ns);
        Ok(crate::state::KeyedStateStore::new(
            self.keyed_handle()?.clone(),
            ns,
        ))
    }

    /// Keyed state of the current key shared by all its windows (Flink's `globalState()`).
    ///
    /// # Errors
    /// As [`window_state`](Self::window_state).
    pub fn global_state(&self) -> crate::error::Result<crate::state::KeyedStateStore> {
        Ok(crate::state::KeyedStateStore::new(
            self.keyed_handle()?.clone(),
            Vec::new(),
        ))
    }

    fn keyed_handle(&self) -> crate::error::Result<&crate::state::KeyedStateHandle> {
        self.keyed.ok_or_else(|| FjordError::NotKeyed {
            what: "window state".into(),
            operator: "this window operator".into(),
        })
    }

    /// The window being evaluated.
    pub fn window(&self) -> &W {
        self.window
    }
    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }
    /// The current processing time (read once per firing: later calls return the same).
    pub fn current_processing_time(&self) -> Timestamp {
        match self.processing_time.get() {
            Some(t) => t,
            None => {
                let t = self.clock.current_processing_time();
                self.processing_time.set(Some(t));
                t
            }
        }
    }
    /// Emits a result (timestamp: window end − 1).
    pub fn collect(&mut self, value: O) {
        self.emit.collect(value);
    }
    /// Emits to a side output.
    pub fn output<X: Data>(&mut self, tag: &OutputTag<X>, value: X) {
        self.emit.output(tag.id(), value);
    }
}

/// Evaluates a window from all its elements (Flink's `ProcessWindowFunction`; with `()` keys
/// it is also the `ProcessAllWindowFunction` of `window_all`).
pub trait ProcessWindowFunction<I, O, K, W>: Send + 'static {
    /// Evaluates the window of `key`; emit results with `ctx.collect`.
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, W, O>,
        elements: Vec<I>,
    ) -> Result<(), BoxError>;
    lifecycle_hooks!();
}

impl<I, O, K, W, F> ProcessWindowFunction<I, O, K, W> for F
where
    F: FnMut(&K, &mut WindowContext<'_, W, O>, Vec<I>) + Send + 'static,
{
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, W, O>,
        elements: Vec<I>,
    ) -> Result<(), BoxError> {
        self(key, ctx, elements);
        Ok(())
    }
}

/// Emits every element unchanged (the process step of a plain `reduce`/`aggregate`).
#[derive(Clone, Copy, Default)]
pub struct PassThrough;

impl<I: 'static, K: 'static, W: Window> ProcessWindowFunction<I, I, K, W> for PassThrough {
    #[inline]
    fn process(
        &mut self,
        _: &K,
        ctx: &mut WindowContext<'_, W, I>,
        elements: Vec<I>,
    ) -> Result<(), BoxError> {
        for e in elements {
            ctx.collect(e);
        }
        Ok(())
    }
}

/// How a window operator keeps and evaluates window contents.
pub(crate) trait WindowLogic<T, K, W: Window, O>: Send + 'static {
    type Acc: Data;
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()>;
    fn close(&mut self, ctx: &RuntimeContext) -> Result<()>;
    fn add(
        &mut self,
        ctx: &RuntimeContext,
        acc: Option<Self::Acc>,
        record: StreamRecord<T>,
    ) -> Result<Self::Acc>;
    fn merge(&mut self, ctx: &RuntimeContext, a: Self::Acc, b: Self::Acc) -> Result<Self::Acc>;
    /// Evaluates a firing window. May change the contents (evictors).
    fn emit(
        &mut self,
        ctx: &RuntimeContext,
        key: &K,
        acc: &mut Self::Acc,
        wctx: &mut WindowContext<'_, W, O>,
    ) -> Result<()>;
}

fn finish<W, O>(wctx: &mut WindowContext<'_, W, O>) -> Result<()> {
    wctx.emit.take_error()
}

/// Implements `open` and `close` of a `WindowLogic` whose user function is the process
/// window function `self.p`.
macro_rules! process_function_hooks {
    () => {
        fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
            let p = &mut self.p;
            guard(ctx, || p.open(ctx))
        }
        fn close(&mut self, ctx: &RuntimeContext) -> Result<()> {
            let p = &mut self.p;
            guard(ctx, || p.close())
        }
    };
}

/// Incremental `reduce`, then a process function over the single result.
pub(crate) struct ReduceLogic<F, P, T> {
    pub(crate) f: F,
    pub(crate) p: P,
    pub(crate) _t: PhantomData<fn(T)>,
}

impl<
    T: Data,
    K: 'static,
    W: Window,
    O: 'static,
    F: ReduceFunction<T>,
    P: ProcessWindowFunction<T, O, K, W>,
> WindowLogic<T, K, W, O> for ReduceLogic<F, P, T>
{
    type Acc = T;
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        let (f, p) = (&mut self.f, &mut self.p);
        guard(ctx, || f.open(ctx))?;
        guard(ctx, || p.open(ctx))
    }
    fn close(&mut self, ctx: &RuntimeContext) -> Result<()> {
        let (f, p) = (&mut self.f, &mut self.p);
        let a = guard(ctx, || f.close());
        a.and(guard(ctx, || p.close()))
    }
    #[inline]
    fn add(&mut self, ctx: &RuntimeContext, acc: Option<T>, record: StreamRecord<T>) -> Result<T> {
        match acc {
            None => Ok(record.value),
            Some(a) => {
                let f = &mut self.f;
                guard(ctx, || f.reduce(a, record.value))
            }
        }
    }
    fn merge(&mut self, ctx: &RuntimeContext, a: T, b: T) -> Result<T> {
        let f = &mut self.f;
        guard(ctx, || f.reduce(a, b))
    }
    fn emit(
        &mut self,
        ctx: &RuntimeContext,
        key: &K,
        acc: &mut T,
        wctx: &mut WindowContext<'_, W, O>,
    ) -> Result<()> {
        let p = &mut self.p;
        guard(ctx, || p.process(key, wctx, vec![acc.clone()]))?;
        finish(wctx)
    }
}

/// Incremental `aggregate`, then a process function over the single result.
pub(crate) struct AggregateLogic<A, P, T, ACC, V> {
    pub(crate) f: A,
    pub(crate) p: P,
    pub(crate) _t: PhantomData<fn(T, ACC, V)>,
}

impl<T: 'static, ACC: Data, V: 'static, K: 'static, W: Window, O: 'static, A, P>
    WindowLogic<T, K, W, O> for AggregateLogic<A, P, T, ACC, V>
where
    A: AggregateFunction<T, ACC, V>,
    P: ProcessWindowFunction<V, O, K, W>,
{
    type Acc = ACC;
    process_function_hooks!();
    #[inline]
    fn add(
        &mut self,
        ctx: &RuntimeContext,
        acc: Option<ACC>,
        record: StreamRecord<T>,
    ) -> Result<ACC> {
        let f = &mut self.f;
        guard(ctx, || {
            let acc = acc.unwrap_or_else(|| f.create_accumulator());
            Ok(f.add(record.value, acc))
        })
    }
    fn merge(&mut self, ctx: &RuntimeContext, a: ACC, b: ACC) -> Result<ACC> {
        let f = &mut self.f;
        guard(ctx, || Ok(f.merge(a, b)))
    }
    fn emit(
        &mut self,
        ctx: &RuntimeContext,
        key: &K,
        acc: &mut ACC,
        wctx: &mut WindowContext<'_, W, O>,
    ) -> Result<()> {
        let (f, p) = (&mut self.f, &mut self.p);
        let result = guard(ctx, || Ok(f.get_result(acc)))?;
        guard(ctx, || p.process(key, wctx, vec![result]))?;
        finish(wctx)
    }
}

/// Reduces all elements of a window at once, then hands the result on (reduce with an
/// evictor).
pub(crate) struct ReduceAll<F, P> {
    pub(crate) f: F,
    pub(crate) p: P,
}

impl<
    T: 'static,
    O: 'static,
    K: 'static,
    W: Window,
    F: ReduceFunction<T>,
    P: ProcessWindowFunction<T, O, K, W>,
> ProcessWindowFunction<T, O, K, W> for ReduceAll<F, P>
{
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, W, O>,
        elements: Vec<T>,
    ) -> Result<(), BoxError> {
        let mut it = elements.into_iter();
        let Some(mut acc) = it.next() else {
            return Ok(());
        };
        for e in it {
            acc = self.f.reduce(acc, e)?;
        }
        self.p.process(key, ctx, vec![acc])
    }
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.f.open(ctx)?;
        self.p.open(ctx)
    }
    fn close(&mut self) -> Result<(), BoxError> {
        self.f.close()?;
        self.p.close()
    }
}

/// Aggregates all elements of a window at once (aggregate with an evictor).
pub(crate) struct AggregateAll<A, P, ACC, V> {
    pub(crate) f: A,
    pub(crate) p: P,
    pub(crate) _t: PhantomData<fn(ACC, V)>,
}

impl<T: 'static, ACC: 'static, V: 'static, O: 'static, K: 'static, W: Window, A, P>
    ProcessWindowFunction<T, O, K, W> for AggregateAll<A, P, ACC, V>
where
    A: AggregateFunction<T, ACC, V>,
    P: ProcessWindowFunction<V, O, K, W>,
{
    fn process(
        &mut self,
        key: &K,
        ctx: &mut WindowContext<'_, W, O>,
        elements: Vec<T>,
    ) -> Result<(), BoxError> {
        let mut acc = self.f.create_accumulator();
        for e in elements {
            acc = self.f.add(e, acc);
        }
        let result = self.f.get_result(&acc);
        self.p.process(key, ctx, vec![result])
    }
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.p.open(ctx)
    }
    fn close(&mut self) -> Result<(), BoxError> {
        self.p.close()
    }
}

/// Keeps every element; evaluates a process function over them, with an optional evictor.
pub(crate) struct BufferLogic<P, T, W> {
    pub(crate) p: P,
    pub(crate) evictor: Option<Box<dyn Evictor<T, W>>>,
}

impl<T: Data, K: 'static, W: Window, O: 'static, P: ProcessWindowFunction<T, O, K, W>>
    WindowLogic<T, K, W, O> for BufferLogic<P, T, W>
{
    type Acc = Vec<StreamRecord<T>>;
    process_function_hooks!();
    #[inline]
    fn add(
        &mut self,
        _: &RuntimeContext,
        acc: Option<Self::Acc>,
        record: StreamRecord<T>,
    ) -> Result<Self::Acc> {
        let mut acc = acc.unwrap_or_default();
        acc.push(record);
        Ok(acc)
    }
    fn merge(&mut self, _: &RuntimeContext, mut a: Self::Acc, b: Self::Acc) -> Result<Self::Acc> {
        a.extend(b);
        Ok(a)
    }
    fn emit(
        &mut self,
        ctx: &RuntimeContext,
        key: &K,
        acc: &mut Self::Acc,
        wctx: &mut WindowContext<'_, W, O>,
    ) -> Result<()> {
        let window = wctx.window.clone();
        if let Some(e) = self.evictor.as_mut() {
            e.evict_before(acc, &window);
        }
        let values: Vec<T> = acc.iter().map(|r| r.value.clone()).collect();
        let p = &mut self.p;
        guard(ctx, || p.process(key, wctx, values))?;
        finish(wctx)?;
        if let Some(e) = self.evictor.as_mut() {
            e.evict_after(acc, &window);
        }
        Ok(())
    }
}
