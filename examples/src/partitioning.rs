//! Physical partitioning: which parallel instance each record reaches.
//!
//! Emits `<partitioner> <record> -> <subtask>` lines for rebalance, rescale, broadcast and a
//! custom partitioner, with four consumer instances.

use fjord::{BoxError, JobArgs, MapFunction, Result, RuntimeContext, StreamExecutionEnvironment};

/// Appends the index of the subtask that saw the record.
#[derive(Clone)]
struct Arrival {
    label: &'static str,
    subtask: usize,
}

impl MapFunction<i64, String> for Arrival {
    fn open(&mut self, ctx: &RuntimeContext) -> std::result::Result<(), BoxError> {
        self.subtask = ctx.subtask_index;
        Ok(())
    }
    fn map(&mut self, value: i64) -> std::result::Result<String, BoxError> {
        Ok(format!("{} {value} -> {}", self.label, self.subtask))
    }
}

/// Builds the job.
pub fn build(env: &StreamExecutionEnvironment, args: &JobArgs) -> Result<()> {
    let numbers = env.from_collection((0..8i64).collect());
    let arrival = |label| Arrival { label, subtask: 0 };
    let rebalanced = numbers
        .rebalance()
        .map(arrival("rebalance"))
        .set_parallelism(4);
    let two = env.from_sequence(0, 7).set_parallelism(2);
    let rescaled = two.rescale().map(arrival("rescale")).set_parallelism(4);
    let broadcast = env
        .from_collection(vec![100i64])
        .broadcast()
        .map(arrival("broadcast"))
        .set_parallelism(4);
    let custom = numbers
        .partition_custom(|k: &i64, n: usize| (*k as usize) % n, |v: &i64| v / 2)
        .map(arrival("custom"))
        .set_parallelism(4);
    let all = rebalanced.union(&[&rescaled, &broadcast, &custom]);
    crate::emit(&all, args, "arrivals")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_arrive_where_each_partitioner_sends_them() {
        let lines = crate::run_for_test(build, 2, &[]);
        let has = |l: &str| lines.iter().any(|x| x == l);
        for i in 0..8 {
            assert!(has(&format!("rebalance {i} -> {}", i % 4)), "{lines:?}");
            assert!(has(&format!("custom {i} -> {}", (i / 2) % 4)), "{lines:?}");
        }
        for s in 0..4 {
            assert!(has(&format!("broadcast 100 -> {s}")));
        }
        // Rescale 2 -> 4: the first producer (0..=3) only reaches subtasks 0 and 1.
        for l in lines.iter().filter(|l| l.starts_with("rescale")) {
            let n: i64 = l.split(' ').nth(1).unwrap().parse().unwrap();
            let s: usize = l.rsplit(' ').next().unwrap().parse().unwrap();
            assert_eq!(n < 4, s < 2, "{l}");
        }
        assert_eq!(lines.len(), 8 + 8 + 4 + 8);
    }
}
