//! The operator that assigns timestamps and generates watermarks (Flink's
//! `TimestampsAndWatermarksOperator`).

#![allow(clippy::collapsible_if, clippy::too_many_arguments)]

use crate::context::RuntimeContext;
use crate::error::Result;
use crate::operators::output::{Lifecycle, Output};
use crate::time::watermarks::{WatermarkGenerator, WatermarkOutput, WatermarkStrategy};
use crate::types::{MAX_WATERMARK, MIN_WATERMARK, StreamRecord, Timestamp};

pub(crate) struct TimestampsAndWatermarksOp<T> {
    ctx: RuntimeContext,
    strategy: WatermarkStrategy<T>,
    generator: Option<Box<dyn WatermarkGenerator<T>>>,
    out: Box<dyn Output<T>>,
    current: Timestamp,
    idle: bool,
    interval: i64,
    next_periodic: Timestamp,
    /// Events since the last periodic check, and when activity was last seen (idleness).
    events: u64,
    seen_events: u64,
    last_active: Timestamp,
    wm_out: WatermarkOutput,
}

impl<T> TimestampsAndWatermarksOp<T> {
    pub(crate) fn new(
        ctx: &RuntimeContext,
        strategy: WatermarkStrategy<T>,
        out: Box<dyn Output<T>>,
    ) -> Self {
        TimestampsAndWatermarksOp {
            interval: ctx.services.watermark_interval,
            ctx: ctx.clone(),
            strategy,
            generator: None,
            out,
            current: MIN_WATERMARK,
            idle: false,
            next_periodic: MAX_WATERMARK,
            events: 0,
            seen_events: 0,
            last_active: 0,
            wm_out: WatermarkOutput::default(),
        }
    }

    fn apply_output(&mut self) -> Result<()> {
        let out = std::mem::take(&mut self.wm_out);
        if let Some(w) = out.watermark {
            if self.idle {
                self.idle = false;
                self.out.emit_watermark_status(false)?;
            }
            if w > self.current {
                self.current = w;
                self.out.emit_watermark(w)?;
            }
        } else if let Some(idle) = out.idle {
            if idle != self.idle {
                self.idle = idle;
                self.out.emit_watermark_status(idle)?;
            }
        }
        Ok(())
    }

    fn schedule(&mut self, now: Timestamp) {
        if self.interval > 0 {
            self.next_periodic = now + self.interval;
            self.ctx.request_wakeup(self.next_periodic);
        }
    }
}

impl<T: Send + 'static> Lifecycle for TimestampsAndWatermarksOp<T> {
    fn open(&mut self) -> Result<()> {
        self.out.open()?;
        self.generator = Some((self.strategy.generator)());
        let now = self.ctx.current_processing_time();
        self.last_active = now;
        self.schedule(now);
        Ok(())
    }

    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        // Upstream watermarks are replaced by ours, except the end of event time.
        if watermark == MAX_WATERMARK && self.current < MAX_WATERMARK {
            self.current = MAX_WATERMARK;
            if self.idle {
                self.idle = false;
                self.out.emit_watermark_status(false)?;
            }
            self.out.emit_watermark(MAX_WATERMARK)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush()
    }

    fn finish(&mut self) -> Result<()> {
        self.out.finish()
    }

    fn close(&mut self) -> Result<()> {
        self.out.close()
    }

    fn notify_checkpoint(
        &mut self,
        notice: crate::operators::output::CheckpointNotice,
    ) -> Result<()> {
        self.out.notify_checkpoint(notice)
    }

    fn advance_processing_time(&mut self, now: Timestamp) -> Result<()> {
        if now >= self.next_periodic {
            if let Some(g) = self.generator.as_mut() {
                g.on_periodic_emit(&mut self.wm_out);
            }
            if let Some(timeout) = self.strategy.idleness {
                if self.events != self.seen_events {
                    self.seen_events = self.events;
                    self.last_active = now;
                } else if now - self.last_active >= timeout.as_millis() as i64 {
                    // No event for the whole timeout: idle, whatever the generator said.
                    self.wm_out = WatermarkOutput::default();
                    self.wm_out.mark_idle();
                }
            }
            self.apply_output()?;
            self.schedule(now);
        }
        self.out.advance_processing_time(now)
    }

    fn emit_watermark_status(&mut self, _idle: bool) -> Result<()> {
        // Our own idleness detection replaces upstream's.
        Ok(())
    }
}

impl<T: Send + 'static> Output<T> for TimestampsAndWatermarksOp<T> {
    #[inline]
    fn emit(&mut self, record: StreamRecord<T>) -> Result<()> {
        let ts = match &self.strategy.timestamps {
            Some(f) => f(&record.value, record.timestamp),
            None => record.timestamp.unwrap_or(MIN_WATERMARK),
        };
        self.events += 1;
        if self.idle {
            self.idle = false;
            self.out.emit_watermark_status(false)?;
        }
        let generator = self.generator.as_mut().expect("opened");
        generator.on_event(&record.value, ts, &mut self.wm_out);
        let punctuated = self.wm_out.watermark.is_some();
        // The record goes first, then a watermark it caused (as in Flink).
        let StreamRecord { value, .. } = record;
        self.out.emit(StreamRecord {
            value,
            timestamp: Some(ts),
        })?;
        if punctuated {
            self.apply_output()?;
        } else {
            self.wm_out = WatermarkOutput::default();
        }
        Ok(())
    }
}
