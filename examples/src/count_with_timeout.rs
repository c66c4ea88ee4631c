//! Flink's classic `ProcessFunction` example: count the elements of each key and emit
//! `(key, count)` once a key has seen no element for 100 ms of event time.
//!
//! Like in Flink's documentation, the count keeps growing after a timeout (the state is not
//! cleared), and a timer only emits if no newer element of the key arrived since it was set.

use fjord::state::{ValueState, ValueStateDescriptor};
use fjord::time::WatermarkStrategy;
use fjord::{BoxError, DataStream, KeyedProcessContext, KeyedProcessFunction, RuntimeContext};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a key must stay silent before its count is emitted.
pub const TIMEOUT_MS: i64 = 100;

/// The state kept per key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CountWithTimestamp {
    /// Elements seen.
    pub count: u64,
    /// Event time of the last element.
    pub last_modified: i64,
}

/// The process function: counts per key and emits on timeout.
#[derive(Clone, Default)]
pub struct CountWithTimeoutFunction {
    state: Option<ValueState<CountWithTimestamp>>,
}

impl KeyedProcessFunction<String, (String, i64), (String, u64)> for CountWithTimeoutFunction {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some(ctx.get_state(&ValueStateDescriptor::new("myState"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        value: (String, i64),
        ctx: &mut KeyedProcessContext<'_, String, (String, u64)>,
    ) -> Result<(), BoxError> {
        let state = self.state.as_ref().ok_or("not opened")?;
        let mut current = state.value().unwrap_or_default();
        current.count += 1;
        current.last_modified = ctx.timestamp().unwrap_or(value.1);
        state.update(current.clone());
        ctx.timer_service()
            .register_event_time_timer(current.last_modified + TIMEOUT_MS);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedProcessContext<'_, String, (String, u64)>,
    ) -> Result<(), BoxError> {
        let state = self.state.as_ref().ok_or("not opened")?;
        if let Some(result) = state.value()
            && timestamp == result.last_modified + TIMEOUT_MS
        {
            let key = ctx.current_key().clone();
            ctx.collect((key, result.count));
        }
        Ok(())
    }
}

/// Timestamps from the records' second field and periodic watermarks allowing no
/// out-of-orderness: what a source of `(key, event time)` records would use.
pub fn with_event_time(input: &DataStream<(String, i64)>) -> DataStream<(String, i64)> {
    input
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
                .with_timestamp_assigner(|e: &(String, i64), _| e.1),
        )
        .stream()
}

/// The job: `(key, event time)` records with timestamps and watermarks in (see
/// [`with_event_time`]), `(key, count)` out whenever a key was silent for 100 ms.
pub fn count_with_timeout(input: &DataStream<(String, i64)>) -> DataStream<(String, u64)> {
    input
        .key_by(|e: &(String, i64)| e.0.clone())
        .process(CountWithTimeoutFunction::default())
        .name("CountWithTimeout")
        .stream()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord::StreamExecutionEnvironment;

    #[test]
    fn emits_counts_of_keys_that_went_silent() {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(2);
        // A punctuated strategy makes the watermarks of this test exact: the watermark is the
        // timestamp of each element minus one.
        let input = env
            .from_collection(vec![
                ("a".to_string(), 0),
                ("b".to_string(), 10),
                ("a".to_string(), 50),
                ("a".to_string(), 140), // a's timers at 100 and 150 are stale now; 240 is live
                ("b".to_string(), 200), // watermark 199: b@110 fires (b, 1)
                ("c".to_string(), 300), // watermark 299: a@240 fires (a, 3)
                ("a".to_string(), 400), // watermark 399: b@300 fires (b, 2)
            ])
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_punctuated(|e: &(String, i64), _| Some(e.1 - 1))
                    .with_timestamp_assigner(|e: &(String, i64), _| e.1),
            )
            .set_parallelism(1)
            .stream();
        let out = count_with_timeout(&input).collect();
        env.execute("count with timeout").unwrap();
        let mut got = out.values();
        got.sort();
        // The end of input fires a@500 (a, 4) and c@400 (c, 1).
        let expected = [("a", 3), ("a", 4), ("b", 1), ("b", 2), ("c", 1)];
        assert_eq!(got, expected.map(|(k, n)| (k.to_string(), n)).to_vec());
    }
}
