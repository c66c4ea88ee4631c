//! Complex event processing with `fjord-cep` (Flink CEP's classic examples):
//!
//! - three failed logins of one user in a row within a minute raise an alert;
//! - a price that rises three times in a row within ten seconds raises an alert.
//!
//! Both run in event time over built-in sample events; `fjord run cep-patterns` prints the
//! alerts (or writes them to `--output`).

use fjord::time::WatermarkStrategy;
use fjord::{DataStream, JobArgs, Result, StreamExecutionEnvironment};
use fjord_cep::{AfterMatchSkipStrategy, CEP, Pattern};
use std::time::Duration;

/// A login attempt: (user, succeeded, event time in ms).
pub type Login = (String, bool, i64);
/// A price tick: (symbol, price in cents, event time in ms).
pub type Tick = (String, i64, i64);

/// Event time from the third field; the sample events are in order per key.
fn timestamped<T: fjord::Data>(input: &DataStream<T>, ts: fn(&T) -> i64) -> DataStream<T> {
    input
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
                .with_timestamp_assigner(move |e: &T, _| ts(e)),
        )
        .stream()
}

/// Alerts for three failed logins of a user in a row within a minute. After an alert the
/// next one needs three new failures (skip past the last event).
pub fn failed_logins(logins: &DataStream<Login>) -> Result<DataStream<String>> {
    let keyed = timestamped(logins, |e| e.2).key_by(|e: &Login| e.0.clone());
    let pattern = Pattern::begin_with_skip("fail", AfterMatchSkipStrategy::skip_past_last_event())
        .where_(|e: &Login| !e.1)
        .times(3)
        .consecutive()
        .within(Duration::from_secs(60));
    let alerts = CEP::pattern(&keyed, pattern)
        .map_err(|e| fjord::FjordError::InvalidGraph(e.to_string()))?
        .select(|m| {
            let fails = m.get("fail").unwrap_or_default();
            let (first, last) = (&fails[0], &fails[fails.len() - 1]);
            format!(
                "ALERT {}: {} failed logins between {} ms and {} ms",
                first.0,
                fails.len(),
                first.2,
                last.2
            )
        });
    Ok(alerts.stream())
}

/// Alerts for a price that rises three times in a row within ten seconds.
pub fn price_rises(ticks: &DataStream<Tick>) -> Result<DataStream<String>> {
    let keyed = timestamped(ticks, |e| e.2).key_by(|e: &Tick| e.0.clone());
    let pattern = Pattern::begin_with_skip("start", AfterMatchSkipStrategy::skip_past_last_event())
        .next("rise")
        .where_iterative(|e: &Tick, ctx| {
            let rises = ctx.events_for_pattern("rise");
            let start = ctx.events_for_pattern("start");
            let previous = rises.last().or(start.last());
            previous.is_some_and(|p| e.1 > p.1)
        })
        .times(3)
        .consecutive()
        .within(Duration::from_secs(10));
    let alerts = CEP::pattern(&keyed, pattern)
        .map_err(|e| fjord::FjordError::InvalidGraph(e.to_string()))?
        .select(|m| {
            let start = m.first("start").expect("a start event");
            let rises = m.get("rise").unwrap_or_default();
            let top = &rises[rises.len() - 1];
            format!(
                "ALERT {}: price rose {} times from {} to {} by {} ms",
                start.0,
                rises.len(),
                start.1,
                top.1,
                top.2
            )
        });
    Ok(alerts.stream())
}

/// Sample logins: alice fails three times within a minute twice, bob's failures are spread
/// over more than a minute, carol succeeds in between.
pub fn sample_logins() -> Vec<Login> {
    let l = |u: &str, ok: bool, s: i64| (u.to_string(), ok, s * 1000);
    vec![
        l("alice", false, 0),
        l("bob", false, 0),
        l("carol", false, 5),
        l("alice", false, 10),
        l("carol", true, 12),
        l("alice", false, 20),
        l("carol", false, 15),
        l("bob", false, 30),
        l("carol", false, 40),
        l("bob", false, 70),
        l("alice", false, 100),
        l("alice", false, 110),
        l("alice", false, 115),
        l("alice", true, 120),
    ]
}

/// Sample ticks: ACME rises four times in a row, XYZ twice, then falls.
pub fn sample_ticks() -> Vec<Tick> {
    let t = |s: &str, p: i64, ms: i64| (s.to_string(), p, ms);
    vec![
        t("ACME", 1000, 0),
        t("XYZ", 500, 0),
        t("ACME", 1010, 1000),
        t("XYZ", 510, 1000),
        t("ACME", 1020, 2000),
        t("XYZ", 520, 2000),
        t("ACME", 1030, 3000),
        t("XYZ", 490, 3000),
        t("ACME", 1040, 4000),
        t("XYZ", 495, 4000),
    ]
}

/// Builds the job: both patterns over the sample events, alerts printed or written.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let logins = env.from_collection(sample_logins());
    let ticks = env.from_collection(sample_ticks());
    let alerts = failed_logins(&logins)?.union(&[&price_rises(&ticks)?]);
    crate::emit(&alerts, args, "CEP alerts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_raises_the_expected_alerts() {
        let mut out = crate::run_for_test(build, 2, &[]);
        out.sort();
        assert_eq!(
            out,
            vec![
                "ALERT ACME: price rose 3 times from 1000 to 1030 by 3000 ms",
                "ALERT alice: 3 failed logins between 0 ms and 20000 ms",
                "ALERT alice: 3 failed logins between 100000 ms and 115000 ms",
            ]
        );
    }
}
