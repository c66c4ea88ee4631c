//! The watermark valve: combines the watermarks and idleness of the channels of one logical
//! input into one watermark and status (Flink's `StatusWatermarkValve`).

use crate::types::{MIN_WATERMARK, Timestamp};

/// One input channel as the valve sees it.
#[derive(Clone, Copy)]
struct ChannelStatus {
    watermark: Timestamp,
    idle: bool,
    /// An active channel counts for the minimum once its watermark caught up with the valve's
    /// output (a channel coming back from idleness must not pull the watermark back).
    aligned: bool,
}

/// Tracks the watermark and idleness of each channel of one logical input and yields the
/// minimum over active channels when it advances (Flink's `StatusWatermarkValve`).
pub(crate) struct WatermarkValve {
    channels: Vec<ChannelStatus>,
    current: Timestamp,
    idle: bool,
}

/// What a valve tells its task after an update.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ValveOutput {
    /// The combined watermark advanced to this value.
    pub(crate) watermark: Option<Timestamp>,
    /// The combined status changed: `Some(true)` idle, `Some(false)` active again.
    pub(crate) idle: Option<bool>,
}

impl WatermarkValve {
    pub(crate) fn new(channels: usize) -> Self {
        let status = ChannelStatus {
            watermark: MIN_WATERMARK,
            idle: false,
            aligned: true,
        };
        WatermarkValve {
            channels: vec![status; channels],
            current: MIN_WATERMARK,
            idle: false,
        }
    }

    fn advance_to_min(&mut self) -> Option<Timestamp> {
        let min = self
            .channels
            .iter()
            .filter(|c| !c.idle && c.aligned)
            .map(|c| c.watermark)
            .min()?;
        (min > self.current).then(|| {
            self.current = min;
            min
        })
    }

    /// A watermark arrived on `channel`. Watermarks of idle channels are ignored, as in Flink.
    pub(crate) fn update(&mut self, channel: usize, watermark: Timestamp) -> Option<Timestamp> {
        let c = &mut self.channels[channel];
        if c.idle || watermark <= c.watermark {
            return None;
        }
        c.watermark = watermark;
        if !c.aligned && watermark >= self.current {
            c.aligned = true;
        }
        self.advance_to_min()
    }

    /// `channel` became idle or active.
    pub(crate) fn update_status(&mut self, channel: usize, idle: bool) -> ValveOutput {
        let mut out = ValveOutput::default();
        let current = self.current;
        let c = &mut self.channels[channel];
        if idle == c.idle {
            return out;
        }
        if idle {
            c.idle = true;
            c.aligned = false;
            if self.channels.iter().all(|c| c.idle) {
                // The last active channel went idle: emit the highest watermark seen, then idle.
                let max = self
                    .channels
                    .iter()
                    .map(|c| c.watermark)
                    .max()
                    .unwrap_or(MIN_WATERMARK);
                if max > self.current {
                    self.current = max;
                    out.watermark = Some(max);
                }
                if !self.idle {
                    self.idle = true;
                    out.idle = Some(true);
                }
            } else {
                out.watermark = self.advance_to_min();
            }
        } else {
            c.idle = false;
            c.aligned = c.watermark >= current;
            if self.idle {
                self.idle = false;
                out.idle = Some(false);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_channels_do_not_hold_back_the_watermark() {
        let mut v = WatermarkValve::new(2);
        assert_eq!(v.update(0, 10), None);
        assert_eq!(
            v.update_status(1, true),
            ValveOutput {
                watermark: Some(10),
                idle: None
            }
        );
        assert_eq!(v.update(0, 15), Some(15));
        assert_eq!(
            v.update(1, 40),
            None,
            "watermarks of idle channels are ignored"
        );
        // Back from idleness behind the current watermark: not aligned, does not hold back.
        assert_eq!(v.update_status(1, false), ValveOutput::default());
        assert_eq!(v.update(0, 20), Some(20));
        assert_eq!(v.update(1, 18), None);
        assert_eq!(
            v.update(1, 25),
            None,
            "aligned again at 25, channel 0 at 20 is the minimum"
        );
        assert_eq!(v.update(0, 30), Some(25));
    }

    #[test]
    fn all_idle_emits_max_watermark_and_idle_status() {
        let mut v = WatermarkValve::new(2);
        v.update(0, 5);
        v.update(1, 9);
        assert_eq!(
            v.update_status(0, true),
            ValveOutput {
                watermark: Some(9),
                idle: None
            }
        );
        assert_eq!(
            v.update_status(1, true),
            ValveOutput {
                watermark: None,
                idle: Some(true)
            }
        );
        assert_eq!(
            v.update_status(0, false),
            ValveOutput {
                watermark: None,
                idle: Some(false)
            }
        );
    }

    #[test]
    fn valve_takes_minimum_over_channels() {
        let mut v = WatermarkValve::new(2);
        assert_eq!(v.update(0, 10), None);
        assert_eq!(v.update(1, 5), Some(5));
        assert_eq!(v.update(1, 20), Some(10));
        assert_eq!(v.update(0, 8), None, "watermarks never go back");
        assert_eq!(v.update(0, 30), Some(20));
    }
}
