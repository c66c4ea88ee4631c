//! Side outputs: one pass over a stream, several typed results (what Flink uses instead of
//! the removed `split`/`select`).

use fjord::{JobArgs, OutputTag, ProcessContext, Result, StreamExecutionEnvironment};

/// Builds the job: even numbers on the main output, odd ones and negative ones on side
/// outputs of other types.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let odd: OutputTag<String> = OutputTag::new("odd");
    let negative: OutputTag<(i64, bool)> = OutputTag::new("negative");
    let (o, n) = (odd.clone(), negative.clone());
    let evens = env
        .from_collection(vec![-3i64, -2, 0, 1, 4, 7])
        .process(move |x: i64, ctx: &mut ProcessContext<'_, i64>| {
            if x < 0 {
                ctx.output(&n, (x, x % 2 == 0));
            }
            if x % 2 == 0 {
                ctx.collect(x);
            } else {
                ctx.output(&o, format!("odd {x}"));
            }
        })
        .name("splitter");
    let main = evens.map(|x: i64| format!("even {x}"));
    let odds = evens.get_side_output(&odd);
    let negatives = evens
        .get_side_output(&negative)
        .map(|(x, even): (i64, bool)| format!("negative {x} even={even}"));
    crate::emit(&main.union(&[&odds, &negatives]), args, "split")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_typed_side_outputs() {
        let mut lines = crate::run_for_test(build, 1, &[]);
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "even -2",
                "even 0",
                "even 4",
                "negative -2 even=true",
                "negative -3 even=false",
                "odd -3",
                "odd 1",
                "odd 7"
            ]
        );
    }
}
