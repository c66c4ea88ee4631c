//! Time: processing-time clocks and event-time watermarks.
//!
//! - [`clock`]: the [`Clock`] jobs read processing time from ([`SystemClock`], and
//!   [`ManualClock`] for tests) and the per-task wake-up schedule behind processing-time
//!   timers.
//! - [`watermarks`]: [`WatermarkStrategy`], [`WatermarkGenerator`] and the built-in
//!   generators (bounded out-of-orderness, monotonous, punctuated), with idleness.
//! - [`calendar`]: day counts since 1970-01-01 to and from civil dates.
//! - [`duration`]: durations as Flink writes them (`10 s`, `500ms`; a bare number is
//!   milliseconds, as in Flink).
//!
//! The operator behind `DataStream::assign_timestamps_and_watermarks` is an operator like the
//! others (`operators::assigner`); this module holds only what it and the lower layers share.
//!
//! Event time is `i64` milliseconds since the epoch. A watermark `w` means "no more records
//! with timestamp `<= w`"; an operator's watermark is the minimum over its input channels,
//! leaving out idle ones.

pub mod calendar;
pub mod clock;
pub mod duration;
pub mod watermarks;

pub use clock::{Clock, ManualClock, SystemClock};
pub use duration::parse_duration;
pub use watermarks::{
    BoundedOutOfOrdernessWatermarks, PunctuatedWatermarks, WatermarkGenerator, WatermarkOutput,
    WatermarkStrategy,
};
