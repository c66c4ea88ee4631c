//! `WindowedStream`: a keyed (or, with `window_all`, non-keyed) stream cut into windows, and
//! the window functions applied to it (Flink's `WindowedStream` / `AllWindowedStream`).

use crate::api::Template;
use crate::api::datastream::SingleOutputStreamOperator;
use crate::api::keyed::KeyedStream;
use crate::api::side_output::OutputTag;
use crate::functions::{AggregateFunction, ReduceFunction};
use crate::operators::shared::Shared;
use crate::types::{Data, Key};
use crate::windows::assigners::WindowAssigner;
use crate::windows::evictors::Evictor;
use crate::windows::functions::{
    AggregateAll, AggregateLogic, BufferLogic, PassThrough, ProcessWindowFunction, ReduceAll,
    ReduceLogic, WindowLogic,
};
use crate::windows::operator::{WindowOperator, WindowSpec};
use crate::windows::panes::PaneOperator;
use crate::windows::triggers::Trigger;
use crate::windows::window::Window;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

type TriggerFactory<T, W> = Arc<dyn Fn() -> Box<dyn Trigger<T, W>> + Send + Sync>;
type EvictorFactory<T, W> = Arc<dyn Fn() -> Box<dyn Evictor<T, W>> + Send + Sync>;

/// A stream of windows per key (Flink's `WindowedStream`). Configure it with
/// [`trigger`](Self::trigger), [`evictor`](Self::evictor),
/// [`allowed_lateness`](Self::allowed_lateness) and
/// [`side_output_late_data`](Self::side_output_late_data), then apply a window function.
pub struct WindowedStream<T, K, W> {
    keyed: KeyedStream<T, K>,
    assigner: Arc<dyn WindowAssigner<T, W>>,
    trigger: Option<TriggerFactory<T, W>>,
    evictor: Option<EvictorFactory<T, W>>,
    lateness: i64,
    late_tag: Option<String>,
    all: bool,
}

impl<T: Data, K: Key, W: Window> WindowedStream<T, K, W> {
    pub(crate) fn new(
        keyed: KeyedStream<T, K>,
        assigner: Arc<dyn WindowAssigner<T, W>>,
        all: bool,
    ) -> Self {
        WindowedStream {
            keyed,
            assigner,
            trigger: None,
            evictor: None,
            lateness: 0,
            late_tag: None,
            all,
        }
    }

    /// Replaces the assigner's default trigger.
    pub fn trigger<X: Trigger<T, W> + Clone + Sync>(mut self, trigger: X) -> Self {
        self.trigger = Some(Arc::new(move || Box::new(trigger.clone())));
        self
    }

    /// Adds an evictor; the window then keeps all its elements.
    pub fn evictor<E: Evictor<T, W> + Clone + Sync>(mut self, evictor: E) -> Self {
        self.evictor = Some(Arc::new(move || Box::new(evictor.clone())));
        self
    }

    /// Keeps windows `lateness` past their end (in event time), so late elements fire them
    /// again (Flink's `allowedLateness`; default 0).
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness.as_millis() as i64;
        self
    }

    /// Sends elements that arrive after their windows' lateness to a side output instead of
    /// dropping them (Flink's `sideOutputLateData`).
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.late_tag = Some(tag.id().to_string());
        self
    }

    fn parts(&self) -> SpecParts<T, W> {
        SpecParts {
            assigner: self.assigner.clone(),
            trigger: self.trigger.clone(),
            lateness: self.lateness,
            late_tag: self.late_tag.clone(),
        }
    }

    fn build<O: Data, L, F>(
        &self,
        name: &str,
        make: F,
        panes: Option<PaneFactory<T, K, O>>,
    ) -> SingleOutputStreamOperator<O>
    where
        L: WindowLogic<T, K, W, O>,
        F: Fn() -> L + Send + Sync + 'static,
    {
        let key = self.keyed.selector();
        let parts = self.parts();
        let geometry = self.assigner.sliding_geometry();
        let use_panes = panes.is_some()
            && geometry.is_some()
            && self.trigger.is_none()
            && self.evictor.is_none()
            && self.lateness == 0;
        let name_owned = name.to_string();
        let op = self.keyed.stream().one_input(
            name,
            Box::new(move |ctx, out, sides| {
                if use_panes {
                    let geometry = geometry.expect("sliding");
                    let late = parts.late_tag.clone();
                    return (panes.as_ref().expect("panes"))(ctx, key.clone(), geometry, late, out, sides);
                }
                let spec = parts.spec();
                if spec.assigner.is_merging() && !spec.trigger.can_merge() {
                    return Err(crate::error::FjordError::InvalidGraph(format!(
                        "the trigger of '{name_owned}' cannot be used with merging (session) windows"
                    )));
                }
                let op = WindowOperator::new(ctx, key.clone(), spec, make(), out, sides)?;
                Ok(Box::new(Shared::register(ctx, op)))
            }),
        );
        if self.all {
            op.set_parallelism(1).set_max_parallelism(1)
        } else {
            op
        }
    }

    /// An incremental window operator (reduce, aggregate) from one logic factory: the
    /// pane-based operator where the assigner and settings allow it (see [`Self::build`]),
    /// otherwise the general one, both creating their logic with `make`.
    fn incremental<O: Data, L, F>(&self, name: &str, make: F) -> SingleOutputStreamOperator<O>
    where
        L: WindowLogic<T, K, W, O>,
        F: Fn() -> L + Send + Sync + 'static,
    {
        let make = Arc::new(make);
        let for_panes = make.clone();
        let panes: PaneFactory<T, K, O> = Arc::new(move |ctx, key, geometry, late, out, sides| {
            let op = PaneOperator::<T, K, W, O, L>::new(
                ctx,
                key,
                geometry,
                late,
                for_panes(),
                out,
                sides,
            )?;
            Ok(Box::new(Shared::register(ctx, op)))
        });
        self.build(name, move || make(), Some(panes))
    }

    fn evictor_factory(&self) -> Option<EvictorFactory<T, W>> {
        self.evictor.clone()
    }

    /// Evaluates each window with a process function over all its elements.
    pub fn process<O: Data, P: ProcessWindowFunction<T, O, K, W> + Clone>(
        &self,
        f: P,
    ) -> SingleOutputStreamOperator<O> {
        let template = Template::new(f);
        let evictor = self.evictor_factory();
        self.build(
            "Window(Process)",
            move || BufferLogic {
                p: template.instance(),
                evictor: evictor.as_ref().map(|e| e()),
            },
            None,
        )
    }

    /// Reduces each window incrementally (Flink's `reduce`); the result has timestamp
    /// window end − 1.
    pub fn reduce<F: ReduceFunction<T> + Clone>(&self, f: F) -> SingleOutputStreamOperator<T> {
        self.reduce_with_process(f, PassThrough)
    }

    /// Reduces incrementally, then hands the single result to a process function that also
    /// sees the window.
    pub fn reduce_with_process<O: Data, F, P>(&self, f: F, p: P) -> SingleOutputStreamOperator<O>
    where
        F: ReduceFunction<T> + Clone,
        P: ProcessWindowFunction<T, O, K, W> + Clone,
    {
        let tf = Template::new(f);
        let tp = Template::new(p);
        if let Some(evictor) = self.evictor_factory() {
            return self.build(
                "Window(Reduce)",
                move || BufferLogic {
                    p: ReduceAll {
                        f: tf.instance(),
                        p: tp.instance(),
                    },
                    evictor: Some(evictor()),
                },
                None,
            );
        }
        self.incremental("Window(Reduce)", move || ReduceLogic {
            f: tf.instance(),
            p: tp.instance(),
            _t: PhantomData,
        })
    }

    /// Aggregates each window incrementally with an accumulator (Flink's `aggregate`).
    pub fn aggregate<ACC: Data, V: Data, A: AggregateFunction<T, ACC, V> + Clone>(
        &self,
        f: A,
    ) -> SingleOutputStreamOperator<V>
    where
        PassThrough: ProcessWindowFunction<V, V, K, W>,
    {
        self.aggregate_with_process(f, PassThrough)
    }

    /// Aggregates incrementally, then hands the result to a process function that also sees
    /// the window.
    pub fn aggregate_with_process<ACC: Data, V: Data, O: Data, A, P>(
        &self,
        f: A,
        p: P,
    ) -> SingleOutputStreamOperator<O>
    where
        A: AggregateFunction<T, ACC, V> + Clone,
        P: ProcessWindowFunction<V, O, K, W> + Clone,
    {
        let tf = Template::new(f);
        let tp = Template::new(p);
        if let Some(evictor) = self.evictor_factory() {
            return self.build(
                "Window(Aggregate)",
                move || BufferLogic {
                    p: AggregateAll {
                        f: tf.instance(),
                        p: tp.instance(),
                        _t: PhantomData,
                    },
                    evictor: Some(evictor()),
                },
                None,
            );
        }
        self.incremental("Window(Aggregate)", move || AggregateLogic {
            f: tf.instance(),
            p: tp.instance(),
            _t: PhantomData,
        })
    }
}

/// The window settings a parallel instance needs.
struct SpecParts<T, W> {
    assigner: Arc<dyn WindowAssigner<T, W>>,
    trigger: Option<TriggerFactory<T, W>>,
    lateness: i64,
    late_tag: Option<String>,
}

impl<T: 'static, W: Window> SpecParts<T, W> {
    fn spec(&self) -> WindowSpec<T, W> {
        WindowSpec {
            assigner: self.assigner.clone(),
            trigger: match &self.trigger {
                Some(f) => f(),
                None => self.assigner.default_trigger(),
            },
            lateness: self.lateness,
            late_tag: self.late_tag.clone(),
        }
    }
}

/// Builds a pane-based sliding window operator for one subtask.
pub(crate) type PaneFactory<T, K, O> = Arc<
    dyn Fn(
            &crate::context::RuntimeContext,
            crate::operators::key_selector::KeySelector<T, K>,
            (i64, i64, i64),
            Option<String>,
            Box<dyn crate::operators::output::Output<O>>,
            crate::operators::output::SideOutputs,
        ) -> crate::error::Result<Box<dyn crate::operators::output::Output<T>>>
        + Send
        + Sync,
>;
