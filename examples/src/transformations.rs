//! Stateless transformations: `map`, `filter`, `flat_map`.
//!
//! `fjord run transformations [--count N]` emits, for each even number `n` in `1..=N`, the
//! lines `n^2` and `-n^2`.

use fjord::{JobArgs, Result, StreamExecutionEnvironment};

/// Builds the job.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let count: i64 = args.get_parsed("count", 10)?;
    let out = env
        .from_sequence(1, count)
        .filter(|n: &i64| n % 2 == 0)
        .name("evens")
        .map(|n: i64| n * n)
        .name("square")
        .flat_map(|sq: i64| [sq, -sq])
        .name("plus and minus");
    crate::emit(&out, args, "numbers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squares_of_even_numbers_with_both_signs() {
        let mut values: Vec<i64> = crate::run_for_test(build, 2, &["--count", "6"])
            .iter()
            .map(|l| l.parse().unwrap())
            .collect();
        values.sort();
        assert_eq!(values, vec![-36, -16, -4, 4, 16, 36]);
    }
}
