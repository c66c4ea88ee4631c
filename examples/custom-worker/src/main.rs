//! A user's own worker binary: the same `run`, `jobmanager` and `taskmanager` roles as the
//! `fjord` binary, carrying this crate's jobs. Build an image from it (see the worker
//! Dockerfile, with `PACKAGE=my-fjord-worker BIN=my-worker`) and name a job in a StreamJob.
//!
//! ```text
//! cargo run -p my-fjord-worker -- list
//! cargo run -p my-fjord-worker -- run temperature-alerts --threshold 30
//! ```

use fjord::{FjordError, JobArgs, JobRegistry, Result, StreamExecutionEnvironment};

/// Readings above a threshold, per sensor, with the highest reading so far.
fn temperature_alerts(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let threshold: i64 = args.get_parsed("threshold", 25)?;
    if !(-50..=150).contains(&threshold) {
        return Err(FjordError::BadArguments(format!(
            "--threshold {threshold} is not a plausible temperature"
        )));
    }
    env.from_generator(Some(1_000), |i| {
        (format!("sensor-{}", i % 3), ((i * 7) % 40) as i64)
    })
    .uid("readings")
    .filter(move |(_, t): &(String, i64)| *t > threshold)
    .key_by(|(sensor, _): &(String, i64)| sensor.clone())
    .max::<1>()
    .uid("highest")
    .print();
    Ok(())
}

fn main() -> std::process::ExitCode {
    let mut jobs = JobRegistry::new();
    jobs.register(
        "temperature-alerts",
        "readings above --threshold per sensor, with the maximum so far",
        temperature_alerts,
    );
    fjord_worker::main_with(jobs)
}
