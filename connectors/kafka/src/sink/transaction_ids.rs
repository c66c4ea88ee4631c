//! Transactional ids of the exactly-once sink and the rule for finding lingering ones.
//!
//! # Naming (Flink's `TransactionalIdFactory`)
//! The transaction a subtask writes between checkpoints `n - 1` and `n` is
//! `{prefix}-{subtask}-{n}`: `n` is the id of the checkpoint expected to pre-commit it (the last
//! checkpoint the writer pre-committed, or restored from, plus one).
//!
//! # Density
//! After a restore from checkpoint `c` (or a start without state, `c = 0`), a writer keeps the
//! ids it has initialised a contiguous range `c+1 ..= x`: when a checkpoint passes without an
//! open transaction, or checkpoint ids were skipped (a checkpoint that never reached this
//! subtask), the ids in between are initialised empty. So the ids any attempt since `c` used
//! are found by probing upward from `c + 1` until an id that was never used (Flink's
//! `TransactionAborter`): initialising an id aborts its open transaction and answers its new
//! epoch, 0 for an id never used before.
//!
//! # Who probes what (rescaling)
//! New subtask `i` of parallelism `p` probes subtasks `i, i + p, i + 2p, ...`: every id of an
//! old subtask `k` is probed by exactly the new subtask `k mod p`, so no two instances probe the
//! same ids, and no instance probes ids another live instance writes (those are `< p`, and only
//! `i` itself among them). It goes on while `k` is below the largest parallelism found in the
//! restored state, and beyond that while the first id of `k` had been used (for older, larger
//! parallelisms the state no longer names).

/// The transactional id of transaction `n` of `subtask` (`{prefix}-{subtask}-{n}`).
pub fn transactional_id(prefix: &str, subtask: usize, n: u64) -> String {
    format!("{prefix}-{subtask}-{n}")
}

/// The old subtask indexes new subtask `subtask` of `parallelism` is responsible for, in
/// probing order, as far as they are known to be needed: `subtask`, then `subtask +
/// parallelism`, ... while below `known_parallelism` (the largest parallelism the restored
/// state names). Beyond that the caller goes on with [`next_candidate`] while the first probe
/// of a subtask finds a used id.
pub fn owned_old_subtasks(
    subtask: usize,
    parallelism: usize,
    known_parallelism: usize,
) -> Vec<usize> {
    let step = parallelism.max(1);
    let mut out = vec![subtask];
    let mut k = subtask + step;
    while k < known_parallelism {
        out.push(k);
        k += step;
    }
    out
}

/// The next old subtask after `last` that new subtask `last mod parallelism` probes.
pub fn next_candidate(last: usize, parallelism: usize) -> usize {
    last + parallelism.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_follow_flinks_naming() {
        assert_eq!(transactional_id("orders-sink", 3, 17), "orders-sink-3-17");
    }

    #[test]
    fn every_old_subtask_is_probed_by_exactly_one_new_one_and_never_a_live_one() {
        for old in 1..12usize {
            for new in 1..12usize {
                let mut seen = BTreeSet::new();
                for i in 0..new {
                    let owned = owned_old_subtasks(i, new, old);
                    assert_eq!(owned[0], i, "a subtask probes itself first");
                    for k in &owned[1..] {
                        assert!(*k >= new, "{k} is written by a live subtask of {new}");
                    }
                    for k in owned {
                        assert!(seen.insert(k), "{k} probed twice ({old} -> {new})");
                        assert_eq!(k % new, i);
                    }
                }
                let all: BTreeSet<usize> = (0..old.max(new)).collect();
                assert_eq!(seen, all, "{old} -> {new}");
            }
        }
        assert_eq!(next_candidate(6, 4), 10);
    }
}
