//! Union and connect: merging streams of one type, and processing two streams of different
//! types with one function (CoMap / CoFlatMap).

use fjord::{JobArgs, Result, StreamExecutionEnvironment};

/// Builds the job.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let small = env.from_collection(vec![1i64, 2]);
    let large = env.from_collection(vec![1000i64]);
    let merged = small.union(&[&large]).map(|n: i64| format!("union {n}"));
    let words = env.from_collection(vec!["hello world".to_string()]);
    let co_map = small.connect(&words).map(
        |n: i64| format!("co-map number {n}"),
        |w: String| format!("co-map text {w}"),
    );
    let co_flat = small.connect(&words).flat_map(
        |n: i64| {
            (0..n)
                .map(move |i| format!("co-flat-map number {n}.{i}"))
                .collect::<Vec<_>>()
        },
        |w: String| {
            w.split(' ')
                .map(|p| format!("co-flat-map word {p}"))
                .collect::<Vec<_>>()
        },
    );
    crate::emit(&merged.union(&[&co_map, &co_flat]), args, "connected")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_and_co_functions() {
        let mut lines = crate::run_for_test(build, 1, &[]);
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "co-flat-map number 1.0",
                "co-flat-map number 2.0",
                "co-flat-map number 2.1",
                "co-flat-map word hello",
                "co-flat-map word world",
                "co-map number 1",
                "co-map number 2",
                "co-map text hello world",
                "union 1",
                "union 1000",
                "union 2",
            ]
        );
    }
}
