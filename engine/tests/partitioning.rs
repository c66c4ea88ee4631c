//! Physical partitioning: which parallel instance receives which record.

use fjord::{BoxError, MapFunction, RuntimeContext, StreamExecutionEnvironment};
use std::collections::{BTreeMap, BTreeSet};

/// Tags each record with the index of the subtask that saw it.
#[derive(Clone, Default)]
struct Where(usize);

impl<T: Send + 'static> MapFunction<T, (usize, T)> for Where {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.0 = ctx.subtask_index;
        Ok(())
    }
    fn map(&mut self, value: T) -> Result<(usize, T), BoxError> {
        Ok((self.0, value))
    }
}

fn by_subtask(values: Vec<(usize, i64)>) -> BTreeMap<usize, Vec<i64>> {
    let mut m: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for (s, v) in values {
        m.entry(s).or_default().push(v);
    }
    m
}

fn env() -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env
}

#[test]
fn rebalance_is_round_robin() {
    let env = env();
    let out = env
        .from_collection((0..12i64).collect())
        .rebalance()
        .map(Where::default())
        .set_parallelism(3)
        .collect();
    env.execute("rebalance").unwrap();
    let m = by_subtask(out.values());
    // One producer starting at channel 0: record i goes to subtask i % 3.
    for (s, values) in &m {
        assert_eq!(
            values,
            &(0..12)
                .filter(|i| (i % 3) as usize == *s)
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(m.len(), 3);
}

#[test]
fn default_partitioning_between_different_parallelism_is_rebalance() {
    let env = env();
    let out = env
        .from_collection((0..8i64).collect())
        .map(Where::default())
        .set_parallelism(2)
        .collect();
    env.execute("default").unwrap();
    let m = by_subtask(out.values());
    assert_eq!(m[&0], vec![0, 2, 4, 6]);
    assert_eq!(m[&1], vec![1, 3, 5, 7]);
}

#[test]
fn forward_keeps_records_on_their_subtask() {
    let env = env();
    env.set_parallelism(3);
    let tagged = env.from_sequence(0, 29).map(Where::default());
    let out = tagged
        .forward()
        .map(|(s, v): (usize, i64)| (s, v))
        .map(Where::default())
        .collect();
    env.execute("forward").unwrap();
    for (second, (first, _)) in out.values() {
        assert_eq!(
            first, second,
            "record moved between subtasks on a forward edge"
        );
    }
}

#[test]
fn shuffle_delivers_everything_and_uses_all_subtasks() {
    let env = env();
    let out = env
        .from_sequence(0, 9_999)
        .shuffle()
        .map(Where::default())
        .set_parallelism(4)
        .collect();
    env.execute("shuffle").unwrap();
    let m = by_subtask(out.values());
    assert_eq!(m.len(), 4, "random partitioning reached every subtask");
    let all: BTreeSet<i64> = m.values().flatten().copied().collect();
    assert_eq!(all.len(), 10_000);
    for values in m.values() {
        // 10,000 records over 4 channels: each gets far more than a handful.
        assert!(
            values.len() > 1_500,
            "suspiciously uneven shuffle: {}",
            values.len()
        );
    }
}

#[test]
fn broadcast_sends_every_record_to_every_subtask() {
    let env = env();
    let out = env
        .from_collection(vec![1i64, 2, 3])
        .broadcast()
        .map(Where::default())
        .set_parallelism(3)
        .collect();
    env.execute("broadcast").unwrap();
    let m = by_subtask(out.values());
    assert_eq!(m.len(), 3);
    for values in m.values() {
        assert_eq!(values, &vec![1, 2, 3]);
    }
}

#[test]
fn rescale_sends_each_producer_to_a_local_subset() {
    let env = env();
    let sources = env
        .from_sequence(0, 399)
        .set_parallelism(2)
        .map(Where::default())
        .set_parallelism(2);
    let out = sources
        .rescale()
        .map(|(producer, v): (usize, i64)| (producer, v))
        .set_parallelism(4)
        .map(Where::default())
        .set_parallelism(4)
        .collect();
    env.execute("rescale").unwrap();
    let mut targets: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    for (consumer, (producer, _)) in out.values() {
        targets.entry(producer).or_default().insert(consumer);
    }
    // 2 -> 4 pointwise: producer 0 feeds consumers 0 and 1, producer 1 feeds 2 and 3.
    assert_eq!(targets[&0], BTreeSet::from([0, 1]));
    assert_eq!(targets[&1], BTreeSet::from([2, 3]));
}

#[test]
fn partition_custom_uses_the_user_partitioner() {
    let env = env();
    let out = env
        .from_collection((0..20i64).collect())
        .partition_custom(|key: &i64, n: usize| (*key as usize) % n, |v: &i64| v / 10)
        .map(Where::default())
        .set_parallelism(2)
        .collect();
    env.execute("custom").unwrap();
    let m = by_subtask(out.values());
    assert_eq!(m[&0], (0..10).collect::<Vec<_>>());
    assert_eq!(m[&1], (10..20).collect::<Vec<_>>());
}

#[test]
fn partition_custom_out_of_range_fails_with_clear_error() {
    let env = env();
    env.from_collection(vec![1i64])
        .partition_custom(|_: &i64, n: usize| n + 5, |v: &i64| *v)
        .map(|x: i64| x)
        .set_parallelism(2)
        .collect();
    let err = env.execute("bad custom").unwrap_err().to_string();
    assert!(
        err.contains("custom partitioner returned channel 7"),
        "{err}"
    );
}

#[test]
fn hash_partitioning_keeps_a_key_on_one_subtask_and_matches_key_groups() {
    let env = env();
    env.set_parallelism(3);
    let out = env
        .from_sequence(0, 2_999)
        .key_by(|v: &i64| v % 100)
        .map(Where::default())
        .collect();
    env.execute("hash").unwrap();
    let mut owner: BTreeMap<i64, usize> = BTreeMap::new();
    for (s, v) in out.values() {
        let key = v % 100;
        assert_eq!(
            *owner.entry(key).or_insert(s),
            s,
            "key {key} on two subtasks"
        );
        // The owner is the subtask whose key-group range holds the key's group.
        let kg = fjord::keygroup::assign_to_key_group(&key, 128);
        assert_eq!(fjord::keygroup::operator_index_for_key_group(128, 3, kg), s);
    }
    assert_eq!(owner.len(), 100);
    assert_eq!(owner.values().copied().collect::<BTreeSet<_>>().len(), 3);
}
