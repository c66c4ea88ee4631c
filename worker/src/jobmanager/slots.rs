//! Which task slots each job's running attempt holds, so several jobs of a session JobManager
//! share the TaskManagers' slots without two attempts being placed on the same slot.
//!
//! A job's attempt claims its slots before it is deployed and releases them when it ended; a
//! newer attempt of the same job (a restart or a rescale) replaces the older one's claim. The
//! claim and the free-slot count are computed under one lock, so two jobs deploying at once
//! cannot both take the last free slots. Placement over the free slots is round-robin over
//! TaskManagers, as [`ClusterDeployer`](super::deployer::ClusterDeployer) places subtasks, so
//! the slots claimed are exactly those the deployer uses.

use super::registry::LiveTaskManager;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// One job's claim: the attempt that holds it and the slots it holds per TaskManager.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    attempt: u64,
    /// Slots held per TaskManager ID.
    slots: BTreeMap<String, u32>,
}

/// The slots held by running attempts, by job ID.
#[derive(Debug, Default)]
pub struct SlotLedger {
    claims: Mutex<BTreeMap<String, Claim>>,
}

/// How many of `free` slots per TaskManager a job taking `required` of them round-robin
/// (slot 0 of each TaskManager, then slot 1 of each, ...) takes from each.
pub fn round_robin(free: &[u32], required: usize) -> Vec<u32> {
    let mut taken = vec![0u32; free.len()];
    let mut left = required;
    let most = free.iter().copied().max().unwrap_or(0);
    'fill: for k in 0..most {
        for (i, f) in free.iter().enumerate() {
            if left == 0 {
                break 'fill;
            }
            if k < *f {
                taken[i] += 1;
                left -= 1;
            }
        }
    }
    taken
}

impl SlotLedger {
    fn claims(&self) -> MutexGuard<'_, BTreeMap<String, Claim>> {
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `live` with each TaskManager's slots reduced to those no other job holds (TaskManagers
    /// without a free slot are left out).
    fn free_for(
        claims: &BTreeMap<String, Claim>,
        job_id: &str,
        live: &[LiveTaskManager],
    ) -> Vec<LiveTaskManager> {
        live.iter()
            .filter_map(|tm| {
                let held: u32 = claims
                    .iter()
                    .filter(|(job, _)| job.as_str() != job_id)
                    .filter_map(|(_, c)| c.slots.get(&tm.id))
                    .sum();
                let free = tm.slots.saturating_sub(held);
                (free > 0).then(|| LiveTaskManager {
                    slots: free,
                    ..tm.clone()
                })
            })
            .collect()
    }

    /// Claims `required` slots of `live` TaskManagers for attempt `attempt` of job `job_id`,
    /// replacing the job's earlier claim. Returns the TaskManagers with their slots reduced to
    /// those free for this job (place the attempt round-robin over them), or the number of
    /// free slots when there are fewer than `required` (nothing is claimed then).
    pub fn claim(
        &self,
        job_id: &str,
        attempt: u64,
        live: &[LiveTaskManager],
        required: usize,
    ) -> Result<Vec<LiveTaskManager>, usize> {
        let mut claims = self.claims();
        let free = Self::free_for(&claims, job_id, live);
        let offered: usize = free.iter().map(|t| t.slots as usize).sum();
        if offered < required {
            return Err(offered);
        }
        let counts: Vec<u32> = free.iter().map(|t| t.slots).collect();
        let taken = round_robin(&counts, required);
        let slots = free
            .iter()
            .zip(taken)
            .filter(|(_, n)| *n > 0)
            .map(|(tm, n)| (tm.id.clone(), n))
            .collect();
        claims.insert(job_id.to_string(), Claim { attempt, slots });
        Ok(free)
    }

    /// Releases the claim of attempt `attempt` of `job_id` (a newer attempt's claim stays).
    pub fn release(&self, job_id: &str, attempt: u64) {
        let mut claims = self.claims();
        if claims.get(job_id).is_some_and(|c| c.attempt == attempt) {
            claims.remove(job_id);
        }
    }

    /// Slots held by running attempts on the TaskManagers in `live`, in total.
    pub fn in_use(&self, live: &[LiveTaskManager]) -> u32 {
        let claims = self.claims();
        live.iter()
            .map(|tm| {
                let held: u32 = claims.values().filter_map(|c| c.slots.get(&tm.id)).sum();
                held.min(tm.slots)
            })
            .sum()
    }

    /// Slots free for job `job_id` on `live` TaskManagers now.
    pub fn free(&self, job_id: &str, live: &[LiveTaskManager]) -> usize {
        Self::free_for(&self.claims(), job_id, live)
            .iter()
            .map(|t| t.slots as usize)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm(id: &str, slots: u32) -> LiveTaskManager {
        LiveTaskManager {
            id: id.into(),
            data_address: format!("{id}:1"),
            rpc_address: format!("{id}:2"),
            slots,
            registration: 0,
        }
    }

    #[test]
    fn round_robin_takes_slot_k_of_every_task_manager_before_slot_k_plus_one() {
        assert_eq!(round_robin(&[2, 2], 3), vec![2, 1]);
        assert_eq!(round_robin(&[1, 4], 3), vec![1, 2]);
        assert_eq!(round_robin(&[3], 0), vec![0]);
        assert_eq!(round_robin(&[], 2), Vec::<u32>::new());
    }

    #[test]
    fn jobs_share_slots_without_overlap_and_release_them() {
        let ledger = SlotLedger::default();
        let live = [tm("a", 2), tm("b", 2)];
        let first = ledger.claim("j1", 0, &live, 3).unwrap();
        assert_eq!(first, live.to_vec(), "the first job sees every slot");
        assert_eq!(ledger.in_use(&live), 3);
        // One slot is left: on b (j1 took a:2, b:1).
        let second = ledger.claim("j2", 0, &live, 1).unwrap();
        assert_eq!(second, vec![tm("b", 1)]);
        assert_eq!(ledger.claim("j3", 0, &live, 1), Err(0), "nothing free");
        // A newer attempt of j1 replaces its claim instead of adding to it.
        assert!(ledger.claim("j1", 1, &live, 3).is_ok());
        assert_eq!(ledger.in_use(&live), 4);
        // The older attempt's release does not drop the newer claim.
        ledger.release("j1", 0);
        assert_eq!(ledger.in_use(&live), 4);
        ledger.release("j1", 1);
        assert_eq!(ledger.in_use(&live), 1);
        assert_eq!(ledger.free("j3", &live), 3);
    }
}
