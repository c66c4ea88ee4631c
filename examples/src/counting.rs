//! Counting per key with state: the job the operator's examples and end-to-end tests run.
//!
//! ```text
//! fjord run counting --keys 100 --rate 1000 [--count N] [--output path]
//! ```
//!
//! Record `i` belongs to key `key-(i % keys)`; the job keeps a count per key in keyed state and
//! emits `(key,count)` after every record. With checkpoints or a savepoint the counts (and the
//! source position) carry over a restart or an upgrade, so a restored job continues its counts
//! instead of starting from one. `--rate` limits records per second (all keys together);
//! without `--count` the job runs until stopped.

use fjord::sources::GeneratorSource;
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
    let count = match args.get("count") {
        None => None,
        Some(_) => Some(args.get_parsed("count", 0u64)?),
    };
    let counts = env
        .from_source(
            GeneratorSource::new(count, move |i| (format!("key-{}", i % keys), 1u64))
                .with_rate(rate),
            "Source: events",
        )
        .uid("events")
        .set_parallelism(1)
        .key_by(|(k, _): &(String, u64)| k.clone())
        .sum::<1>()
        .name("counts")
        .uid("counts");
    crate::emit(&counts, args, "counts")
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
    fn bad_arguments_are_refused() {
        let env = StreamExecutionEnvironment::new();
        let err = build(&env, &JobArgs::parse(["--keys", "0"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("must be positive"), "{err}");
    }
}
