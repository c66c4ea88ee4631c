//! Windows: assigners, triggers, evictors, window functions and the window operators.
//!
//! - [`window`]: [`TimeWindow`] and [`GlobalWindow`].
//! - [`assigners`]: tumbling, sliding, session (static and dynamic gap) and global windows,
//!   in event and processing time, and the [`WindowAssigner`] trait for custom ones.
//! - [`triggers`]: the [`Trigger`] trait and the event-time, processing-time, count and
//!   purging triggers.
//! - [`evictors`]: count, time and delta evictors.
//! - [`functions`]: [`ProcessWindowFunction`] and the internal window logics (reduce,
//!   aggregate, buffer-and-process).
//! - `operator` (internal): Flink's `WindowOperator` semantics, including allowed lateness,
//!   late side outputs, the `numLateRecordsDropped` counter and merging windows.
//! - `panes` (internal): sliding event-time windows with `reduce`/`aggregate` computed from
//!   non-overlapping panes, so the cost per element does not grow with `size / slide`.
//!
//! The API entry points are [`KeyedStream::window`](crate::KeyedStream::window),
//! `count_window`, and [`DataStream::window_all`](crate::DataStream::window_all); see
//! [`WindowedStream`](crate::api::windowed::WindowedStream).

pub mod assigners;
pub mod evictors;
pub mod functions;
pub(crate) mod operator;
pub(crate) mod panes;
pub mod triggers;
pub mod window;

pub use assigners::{
    CumulativeEventTimeWindows, EventTimeSessionWindows, GlobalWindows,
    ProcessingTimeSessionWindows, SlidingEventTimeWindows, SlidingProcessingTimeWindows,
    TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowAssigner,
};
pub use evictors::{CountEvictor, DeltaEvictor, Evictor, TimeEvictor};
pub use functions::{ProcessWindowFunction, WindowContext};
pub use operator::LATE_ELEMENTS_DROPPED;
pub use triggers::{
    CountTrigger, EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger, PurgingTrigger, Trigger,
    TriggerContext, TriggerResult,
};
pub use window::{GlobalWindow, TimeWindow, Window};
