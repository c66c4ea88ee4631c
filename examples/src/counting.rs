//! Counting per key with state: the job the operator's examples and end-to-end tests run.
//!
//! ```text
//! fjord run counting --keys 100 --rate 1000 [--count N] [--output path]
//! fjord run counting --keys 100 --rate-steps 50x20s,800x60s,50 --work-us 2000
//! ```
//!
//! Record `i` belongs to key `key-(i % keys)`; the job keeps a count per key in keyed state and
//! emits `(key,count)` after every record. With checkpoints or a savepoint the counts (and the
//! source position) carry over a restart or an upgrade, so a restored job continues its counts
//! instead of starting from one. `--rate` limits records per second (all keys together);
//! without `--count` the job runs until stopped.
//!
//! For autoscaling: `--rate-steps R1xD1,R2xD2,...,Rn` replaces `--rate` with a schedule (R1
//! records per second for D1, and so on; the last step, without a duration, holds for good).
//! The schedule follows the source's position (step 1 covers its first R1 × D1 records), so
//! a job rescaled through a savepoint continues in the step it reached. `--work-us N` makes
//! counting each record take N microseconds (spent waiting, so it costs no CPU but shows as
//! busy time, like a call to an external service), in an operator `work` after `counts`.

use std::time::Duration;

use fjord::sources::{GeneratorSource, RateStep};
use fjord::{FjordError, JobArgs, Result, StreamExecutionEnvironment};

/// Builds the counting job. Operators have stable uids (`events`, `counts`), so savepoints map.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let keys: u64 = args.get_parsed("keys", 10)?;
    let rate: f64 = args.get_parsed("rate", 100.0)?;
    if keys == 0 || rate <= 0.0 {
        return Err(FjordError::BadArguments(
            "--keys and --rate must be positive".into(),
        ));
    }
    let steps = match args.get("rate-steps") {
        Some(text) if args.get("rate").is_some() => {
            return Err(FjordError::BadArguments(format!(
                "--rate-steps {text}: give --rate or --rate-steps, not both"
            )));
        }
        Some(text) => parse_rate_steps(text)?,
        None => vec![RateStep {
            records_per_second: rate,
            duration: None,
        }],
    };
    let work_us: u64 = args.get_parsed("work-us", 0)?;
    let count = match args.get("count") {
        None => None,
        Some(_) => Some(args.get_parsed("count", 0u64)?),
    };
    let counts = env
        .from_source(
            GeneratorSource::new(count, move |i| (format!("key-{}", i % keys), 1u64))
                .with_rate_steps(steps),
            "Source: events",
        )
        .uid("events")
        .set_parallelism(1)
        .key_by(|(k, _): &(String, u64)| k.clone())
        .sum::<1>()
        .name("counts")
        .uid("counts");
    if work_us == 0 {
        return crate::emit(&counts, args, "counts");
    }
    let work = Duration::from_micros(work_us);
    let worked = counts
        .map(move |record| {
            std::thread::sleep(work);
            record
        })
        .name("work")
        .uid("work");
    crate::emit(&worked, args, "counts")
}

/// Parses `R1xD1,R2xD2,...,Rn`: rates in records per second, durations such as `20s`,
/// `500ms` or `2m`; only the last step may (and should) omit its duration.
fn parse_rate_steps(text: &str) -> Result<Vec<RateStep>> {
    let bad = |why: &str| {
        FjordError::BadArguments(format!(
            "--rate-steps {text}: {why}; give steps such as 50x20s,800x60s,50"
        ))
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let mut steps = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let (rate, duration) = match part.split_once('x') {
            Some((r, d)) => (r, Some(d)),
            None => (*part, None),
        };
        let records_per_second: f64 = rate
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r > 0.0)
            .ok_or_else(|| bad(&format!("{rate:?} is not a positive rate")))?;
        let duration = match duration {
            Some(d) => Some(parse_duration(d).ok_or_else(|| {
                bad(&format!("{d:?} is not a duration such as 20s, 500ms or 2m"))
            })?),
            None if i + 1 < parts.len() => {
                return Err(bad("only the last step may omit its duration"));
            }
            None => None,
        };
        steps.push(RateStep {
            records_per_second,
            duration,
        });
    }
    Ok(steps)
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_every_key() {
        let lines = crate::run_for_test(
            build,
            2,
            &["--keys", "3", "--rate", "1000000", "--count", "9"],
        );
        let mut finals: Vec<&String> = lines.iter().filter(|l| l.ends_with(",3)")).collect();
        finals.sort();
        assert_eq!(finals, vec!["(key-0,3)", "(key-1,3)", "(key-2,3)"]);
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn rate_steps_parse_and_bad_ones_are_refused() {
        let steps = parse_rate_steps("50x20s,800x1m,2.5").unwrap();
        assert_eq!(
            steps,
            vec![
                RateStep {
                    records_per_second: 50.0,
                    duration: Some(Duration::from_secs(20))
                },
                RateStep {
                    records_per_second: 800.0,
                    duration: Some(Duration::from_secs(60))
                },
                RateStep {
                    records_per_second: 2.5,
                    duration: None
                },
            ]
        );
        for bad in ["50,800x1m", "0x1s", "50x1y", "x", "50x"] {
            assert!(parse_rate_steps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rate_schedule_with_work_counts_every_record() {
        let lines = crate::run_for_test(
            build,
            2,
            &[
                "--keys",
                "2",
                "--rate-steps",
                "100000x1ms,100000",
                "--work-us",
                "10",
                "--count",
                "10",
            ],
        );
        assert_eq!(lines.len(), 10);
        assert!(lines.contains(&"(key-0,5)".to_string()), "{lines:?}");
    }

    #[test]
    fn bad_arguments_are_refused() {
        let env = StreamExecutionEnvironment::new();
        let err = build(&env, &JobArgs::parse(["--keys", "0"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}
