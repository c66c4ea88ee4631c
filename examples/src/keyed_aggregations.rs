//! Rolling aggregations per key and the difference between `min` and `min_by`.
//!
//! Readings are `(sensor, temperature, reading id)`. `min::<1>()` keeps the sensor's first
//! reading id and only lowers the temperature; `min_by::<1>()` reports the whole reading that
//! had the lowest temperature.

use fjord::{JobArgs, Result, StreamExecutionEnvironment};

/// The sample readings.
pub fn readings() -> Vec<(String, i32, u32)> {
    [
        ("kitchen", 21, 1),
        ("garage", 9, 2),
        ("kitchen", 19, 3),
        ("kitchen", 23, 4),
        ("garage", 7, 5),
    ]
    .into_iter()
    .map(|(s, t, id)| (s.to_string(), t, id))
    .collect()
}

/// Builds the job.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let keyed = env
        .from_collection(readings())
        .key_by(|r: &(String, i32, u32)| r.0.clone());
    let tag = |kind: &'static str| {
        move |r: (String, i32, u32)| format!("{kind} {} {} #{}", r.0, r.1, r.2)
    };
    let sum = keyed.sum::<1>().name("sum").map(tag("sum"));
    let min = keyed.min::<1>().name("min").map(tag("min"));
    let min_by = keyed.min_by::<1>().name("min_by").map(tag("min_by"));
    let max_by = keyed.max_by::<1>().name("max_by").map(tag("max_by"));
    let all = sum.union(&[&min, &min_by, &max_by]);
    crate::emit(&all, args, "aggregates")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_keeps_first_record_and_min_by_keeps_the_minimum_record() {
        let lines = crate::run_for_test(build, 2, &[]);
        let last = |prefix: &str| {
            lines
                .iter()
                .rfind(|l| l.starts_with(prefix))
                .unwrap()
                .clone()
        };
        assert_eq!(last("sum kitchen"), "sum kitchen 63 #1");
        assert_eq!(last("min kitchen"), "min kitchen 19 #1");
        assert_eq!(last("min_by kitchen"), "min_by kitchen 19 #3");
        assert_eq!(last("max_by kitchen"), "max_by kitchen 23 #4");
        assert_eq!(last("min_by garage"), "min_by garage 7 #5");
        assert_eq!(
            lines.len(),
            20,
            "every aggregation emits one update per reading"
        );
    }
}
