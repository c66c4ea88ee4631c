//! Physical partitioning: which downstream channel(s) a record goes to.

use crate::error::{FjordError, Result};
use crate::keygroup::{key_group_of_hash, operator_index_for_key_group};
use rand::Rng;
use rand::rngs::SmallRng;
use std::any::Any;
use std::sync::Arc;

/// Computes the stable hash of a record's key (built by `key_by` from the key selector); the
/// writer turns it into a key group with the consumer's max parallelism.
pub(crate) type KeyHashFn<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;

/// Picks a channel for a record from `(record, number_of_channels)` (built by
/// `partition_custom`).
pub(crate) type CustomFn<T> = Arc<dyn Fn(&T, usize) -> usize + Send + Sync>;

/// The partitioning of an edge as declared in the API, with typed functions erased.
#[derive(Clone)]
pub(crate) enum PartitionSpec {
    /// Forward if parallelism matches, rebalance otherwise (Flink's default).
    Default,
    /// One-to-one to the downstream subtask with the same index.
    Forward,
    /// Uniformly random.
    Shuffle,
    /// Round-robin over all downstream subtasks.
    Rebalance,
    /// Round-robin over a local subset of downstream subtasks.
    Rescale,
    /// Every record to every downstream subtask.
    Broadcast,
    /// By key group of the key: a `KeyHashFn<T>`; the consumer's max parallelism is looked
    /// up at wiring time.
    Hash(Arc<dyn Any + Send + Sync>),
    /// A user partitioner: a `CustomFn<T>`.
    Custom(Arc<dyn Any + Send + Sync>),
}

impl PartitionSpec {
    /// Flink's name for the partitioner, used in plans and errors.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            PartitionSpec::Default => "DEFAULT",
            PartitionSpec::Forward => "FORWARD",
            PartitionSpec::Shuffle => "SHUFFLE",
            PartitionSpec::Rebalance => "REBALANCE",
            PartitionSpec::Rescale => "RESCALE",
            PartitionSpec::Broadcast => "BROADCAST",
            PartitionSpec::Hash(_) => "HASH",
            PartitionSpec::Custom(_) => "CUSTOM",
        }
    }

    /// Forward and rescale connect each producer to a subset of consumers; the others connect
    /// every producer to every consumer.
    pub(crate) fn is_pointwise(&self) -> bool {
        matches!(self, PartitionSpec::Forward | PartitionSpec::Rescale)
    }
}

/// Which consumers producer `index` of `producers` connects to on a pointwise edge with
/// `consumers` consumers (Flink's POINTWISE distribution).
pub(crate) fn pointwise_targets(producers: usize, consumers: usize, index: usize) -> Vec<usize> {
    if producers == consumers {
        vec![index]
    } else if producers < consumers {
        // Fan out: producer i feeds a contiguous block of consumers.
        let start = index * consumers / producers;
        let end = (index + 1) * consumers / producers;
        (start..end).collect()
    } else {
        // Fan in: several producers feed one consumer.
        vec![index * consumers / producers]
    }
}

/// Where one record goes.
pub(crate) enum Target {
    One(usize),
    All,
}

/// The runtime partitioner of one writer, typed on the record.
pub(crate) enum Partitioner<T> {
    /// One channel (forward), or round-robin over a subset (rescale), or over all (rebalance).
    RoundRobin {
        next: usize,
    },
    Shuffle(SmallRng),
    Broadcast,
    Hash {
        key_hash: KeyHashFn<T>,
        max_parallelism: usize,
    },
    Custom(CustomFn<T>),
}

impl<T: 'static> Partitioner<T> {
    /// Builds the runtime partitioner; `start` spreads round-robin starting points across
    /// producers as Flink does.
    pub(crate) fn new(spec: &PartitionSpec, max_parallelism: usize, start: usize) -> Result<Self> {
        use rand::SeedableRng;
        Ok(match spec {
            PartitionSpec::Default
            | PartitionSpec::Forward
            | PartitionSpec::Rebalance
            | PartitionSpec::Rescale => Partitioner::RoundRobin { next: start },
            PartitionSpec::Shuffle => Partitioner::Shuffle(SmallRng::from_os_rng()),
            PartitionSpec::Broadcast => Partitioner::Broadcast,
            PartitionSpec::Hash(f) => Partitioner::Hash {
                key_hash: f.downcast_ref::<KeyHashFn<T>>().cloned().ok_or_else(|| {
                    FjordError::Internal("key selector of another type on a hash edge".into())
                })?,
                max_parallelism,
            },
            PartitionSpec::Custom(f) => {
                Partitioner::Custom(f.downcast_ref::<CustomFn<T>>().cloned().ok_or_else(|| {
                    FjordError::Internal("custom partitioner of another type".into())
                })?)
            }
        })
    }

    /// Chooses the target channel(s) among `n`.
    #[inline]
    pub(crate) fn select(&mut self, value: &T, n: usize) -> Result<Target> {
        Ok(match self {
            Partitioner::RoundRobin { next } => {
                let i = *next % n;
                *next = i + 1;
                Target::One(i)
            }
            Partitioner::Shuffle(rng) => Target::One(rng.random_range(0..n)),
            Partitioner::Broadcast => Target::All,
            // One consumer (parallelism 1 after `key_by`) owns every key group: no key to hash.
            Partitioner::Hash { .. } if n == 1 => Target::One(0),
            Partitioner::Hash {
                key_hash,
                max_parallelism,
            } => {
                let key_group = key_group_of_hash(key_hash(value), *max_parallelism);
                Target::One(operator_index_for_key_group(*max_parallelism, n, key_group))
            }
            Partitioner::Custom(f) => {
                let i = f(value, n);
                if i >= n {
                    return Err(FjordError::InvalidGraph(format!(
                        "custom partitioner returned channel {i}, but there are only {n} \
                         downstream subtasks; return a value in 0..{n}"
                    )));
                }
                Target::One(i)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointwise_distribution_matches_flink() {
        // 2 -> 4: each producer feeds two consumers.
        assert_eq!(pointwise_targets(2, 4, 0), vec![0, 1]);
        assert_eq!(pointwise_targets(2, 4, 1), vec![2, 3]);
        // 4 -> 2: pairs of producers feed one consumer.
        let fan_in: Vec<_> = (0..4).map(|i| pointwise_targets(4, 2, i)).collect();
        assert_eq!(fan_in, vec![vec![0], vec![0], vec![1], vec![1]]);
        // 3 -> 3: one to one.
        assert_eq!(pointwise_targets(3, 3, 2), vec![2]);
        // 2 -> 3: every consumer has exactly one producer.
        let mut seen: Vec<usize> = (0..2).flat_map(|i| pointwise_targets(2, 3, i)).collect();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2]);
    }
}
