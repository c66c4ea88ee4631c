//! Joins: window join and co-group (Flink's `JoinedStreams` / `CoGroupedStreams`), and the
//! interval join of keyed streams (Flink's `IntervalJoin`).
//!
//! - [`window`]: both inputs are tagged, unioned, keyed and windowed with any assigner
//!   (tumbling, sliding, session); a firing window joins (inner, every pair) or co-groups its
//!   elements, exactly like Flink.
//! - [`interval`]: `a.ts + lower <= b.ts <= a.ts + upper`, with optionally exclusive bounds;
//!   elements are buffered per key and cleaned up by event-time timers once the watermark
//!   makes further matches impossible.

pub mod interval;
mod interval_buffer;
pub mod window;

pub use interval::{IntervalJoin, IntervalJoinContext, IntervalJoined, ProcessJoinFunction};
pub use window::{CoGroupedStreams, JoinedStreams, TaggedUnion};
