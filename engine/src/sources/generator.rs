//! Parallel generated input: `from_sequence` and `from_generator` (Flink's
//! `fromSequence` and `DataGeneratorSource`).

use super::{Source, SourceOutput, SourceReader, SourceStatus};
use crate::context::RuntimeContext;
use crate::error::BoxError;
use crate::types::Data;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BATCH: u64 = 1024;

/// The numbers `from..=to`, split into contiguous ranges over the parallel instances. Each
/// instance's remaining range is a split in checkpoints, so the source can be restored at
/// another parallelism (the ranges are redistributed; every number is emitted once overall).
#[derive(Debug, Clone, Copy)]
pub struct SequenceSource {
    from: i64,
    to: i64,
}

impl SequenceSource {
    /// A source of `from..=to` (empty when `to < from`).
    pub fn new(from: i64, to: i64) -> Self {
        SequenceSource { from, to }
    }
}

impl Source<i64> for SequenceSource {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<i64>>, BoxError> {
        let total = if self.to < self.from {
            0
        } else {
            (self.to - self.from) as u128 + 1
        };
        let p = ctx.parallelism as u128;
        let i = ctx.subtask_index as u128;
        let start = self.from as i128 + (total * i / p) as i128;
        let end = self.from as i128 + (total * (i + 1) / p) as i128; // exclusive
        Ok(Box::new(SequenceReader {
            ranges: VecDeque::from([(start, end)]),
        }))
    }
}

/// Reads its ranges (`next..end`, end exclusive) in order; the remaining part of each range is
/// one split.
struct SequenceReader {
    ranges: VecDeque<(i128, i128)>,
}

fn position_error(e: impl std::fmt::Display) -> BoxError {
    format!("cannot read the restored source position: {e}").into()
}

impl SourceReader<i64> for SequenceReader {
    fn snapshot_splits(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<Vec<u8>>>, BoxError> {
        let splits = self
            .ranges
            .iter()
            .filter(|(next, end)| next < end)
            .map(crate::encoding::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(splits))
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), BoxError> {
        self.ranges = splits
            .iter()
            .map(|b| crate::encoding::from_slice(b).map_err(position_error))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// A position written before sequence sources stored splits: one range.
    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        self.ranges = VecDeque::from([crate::encoding::from_slice(state).map_err(position_error)?]);
        Ok(())
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, i64>) -> Result<SourceStatus, BoxError> {
        let Some((next, end)) = self.ranges.front_mut() else {
            return Ok(SourceStatus::Finished);
        };
        let stop = (*end).min(*next + BATCH as i128);
        while *next < stop {
            output.collect(*next as i64);
            *next += 1;
        }
        if *next >= *end {
            self.ranges.pop_front();
        }
        Ok(if self.ranges.is_empty() {
            SourceStatus::Finished
        } else {
            SourceStatus::MoreAvailable
        })
    }
}

/// One step of a rate schedule: a total rate (over all parallel instances) for a duration, or
/// for good when `duration` is `None`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateStep {
    /// Records per second over all parallel instances.
    pub records_per_second: f64,
    /// How long the step lasts at that rate (the step covers `rate * duration` records), or
    /// `None` for the last step.
    pub duration: Option<Duration>,
}

/// Calls a function with the indices `0, 1, 2, ...` (up to a count, or forever) and emits
/// what it returns, optionally at a bounded rate or a schedule of rates. Index `n` is generated
/// by subtask `n % parallelism`. Because of that stride, its position cannot be rescaled: a job
/// restored from a snapshot must run the generator at the parallelism it had.
pub struct GeneratorSource<T> {
    generate: Arc<dyn Fn(u64) -> T + Send + Sync>,
    count: Option<u64>,
    steps: Vec<RateStep>,
}

impl<T> GeneratorSource<T> {
    /// A generator emitting `count` records (`None`: unbounded).
    pub fn new(count: Option<u64>, generate: impl Fn(u64) -> T + Send + Sync + 'static) -> Self {
        GeneratorSource {
            generate: Arc::new(generate),
            count,
            steps: Vec::new(),
        }
    }

    /// Limits the total rate over all parallel instances.
    pub fn with_rate(self, records_per_second: f64) -> Self {
        self.with_rate_steps(vec![RateStep {
            records_per_second,
            duration: None,
        }])
    }

    /// Limits the total rate by a schedule: each step's rate holds for the records it covers
    /// (`rate * duration`), so the schedule follows the source's position and a job restored
    /// from a snapshot continues in the step it had reached. After the last step with a
    /// duration the rate is no longer limited, unless the last step has none.
    pub fn with_rate_steps(mut self, steps: Vec<RateStep>) -> Self {
        self.steps = steps;
        self
    }
}

impl<T: Data> Source<T> for GeneratorSource<T> {
    fn create_reader(&self, ctx: &RuntimeContext) -> Result<Box<dyn SourceReader<T>>, BoxError> {
        let mut ends = Vec::with_capacity(self.steps.len());
        let mut start = 0u64;
        for step in &self.steps {
            let end = step.duration.map(|d| {
                start.saturating_add((step.records_per_second * d.as_secs_f64()).max(0.0) as u64)
            });
            ends.push((end, step.records_per_second / ctx.parallelism as f64));
            start = end.unwrap_or(u64::MAX);
        }
        Ok(Box::new(GeneratorReader {
            generate: self.generate.clone(),
            next: ctx.subtask_index as u64,
            stride: ctx.parallelism as u64,
            count: self.count,
            steps: ends,
            started: Instant::now(),
            next_due: 0.0,
            starved: false,
        }))
    }
}

struct GeneratorReader<T> {
    generate: Arc<dyn Fn(u64) -> T + Send + Sync>,
    next: u64,
    stride: u64,
    count: Option<u64>,
    /// The rate schedule: (first index after the step, this subtask's rate), in order.
    steps: Vec<(Option<u64>, f64)>,
    started: Instant,
    /// Seconds after `started` at which the next record is due (rate-limited only).
    next_due: f64,
    /// The last poll found nothing due.
    starved: bool,
}

impl<T> GeneratorReader<T> {
    /// This subtask's rate for global index `n`, or `None` when not limited.
    fn rate_at(&self, n: u64) -> Option<f64> {
        self.steps
            .iter()
            .find(|(end, _)| end.is_none_or(|e| n < e))
            .map(|(_, rate)| *rate)
    }
}

impl<T: Send> SourceReader<T> for GeneratorReader<T> {
    fn snapshot_state(&mut self, _checkpoint_id: u64) -> Result<Option<Vec<u8>>, BoxError> {
        Ok(Some(crate::encoding::to_vec(&(self.next, self.stride))?))
    }

    fn restore_state(&mut self, state: &[u8]) -> Result<(), BoxError> {
        let (next, stride): (u64, u64) =
            crate::encoding::from_slice(state).map_err(position_error)?;
        if stride != self.stride {
            return Err(format!(
                "the generator ran with parallelism {stride} and cannot continue with {}; restore it with `.set_parallelism({stride})` on the source",
                self.stride
            )
            .into());
        }
        self.next = next;
        Ok(())
    }

    fn open(&mut self, _ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.started = Instant::now();
        self.next_due = 0.0;
        Ok(())
    }

    fn poll_next(&mut self, output: &mut SourceOutput<'_, T>) -> Result<SourceStatus, BoxError> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut emitted = 0;
        while emitted < BATCH {
            if self.count.is_some_and(|c| self.next >= c) {
                return Ok(SourceStatus::Finished);
            }
            let rate = self.rate_at(self.next);
            if rate.is_some() && self.next_due > elapsed {
                break;
            }
            output.collect((self.generate)(self.next));
            if let Some(rate) = rate {
                self.next_due += 1.0 / rate.max(f64::MIN_POSITIVE);
            }
            self.next += self.stride;
            emitted += 1;
        }
        if emitted > 0 {
            self.starved = false;
            return Ok(SourceStatus::MoreAvailable);
        }
        // Nothing is due. The first such poll returns at once, so the task counts the wait
        // that follows as idle time (it starts its idle clock when a poll finds nothing);
        // later ones sleep until the next record is due (at most 20 ms, to stay responsive).
        if self.starved {
            let wait = (self.next_due - elapsed).clamp(0.0, 0.02);
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
        self.starved = true;
        Ok(SourceStatus::NothingAvailable)
    }
}
