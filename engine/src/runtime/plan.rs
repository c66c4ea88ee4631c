//! Which subtask runs where: the attempt the engine asks a deployer to run, and the placement
//! the deployer sends to every TaskManager.

use crate::runtime::jobgraph::JobGraph;

/// One execution attempt of a job, as the engine hands it to a [`Deployer`](super::deployer::Deployer).
///
/// Tasks are numbered through the attempt: vertices in job-graph order, subtasks in order
/// within a vertex ([`task_index`](Self::task_index)). Checkpoint acknowledgements and
/// commands name tasks by this number, so every process computes the same numbering from the
/// same job graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptSpec {
    /// The job ID (stable across attempts and JobManager restarts).
    pub job_id: String,
    /// The attempt: 0 for the first, +1 for every restart.
    pub attempt: u32,
    /// Parallelism of every vertex, in job-graph order.
    pub parallelism: Vec<usize>,
    /// For every vertex and subtask: the shared slot (0..`required_slots`) it runs in.
    /// Subtask `s` of every vertex in one slot sharing group share slot `offset + s`, as in
    /// Flink, so a job needs as many slots as the sum of the largest parallelism per group.
    pub slots: Vec<Vec<usize>>,
    /// Number of slots the attempt needs.
    pub required_slots: usize,
    /// A checkpoint or savepoint URL to restore from.
    pub restore: Option<String>,
    /// With `restore`: drop state of operators the job no longer has.
    pub allow_non_restored_state: bool,
}

impl AttemptSpec {
    pub(crate) fn new(
        job: &JobGraph,
        job_id: &str,
        attempt: u32,
        restore: Option<(String, bool)>,
    ) -> Self {
        let mut groups: Vec<(&str, usize)> = Vec::new();
        for v in &job.vertices {
            let group = job.slot_group[v.head].as_str();
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, width)) => *width = (*width).max(v.parallelism),
                None => groups.push((group, v.parallelism)),
            }
        }
        let offset = |group: &str| -> usize {
            groups
                .iter()
                .take_while(|(g, _)| *g != group)
                .map(|(_, w)| w)
                .sum()
        };
        let slots = job
            .vertices
            .iter()
            .map(|v| {
                let base = offset(job.slot_group[v.head].as_str());
                (0..v.parallelism).map(|s| base + s).collect()
            })
            .collect();
        let (restore, allow_non_restored_state) = match restore {
            Some((path, allow)) => (Some(path), allow),
            None => (None, false),
        };
        AttemptSpec {
            job_id: job_id.to_string(),
            attempt,
            parallelism: job.vertices.iter().map(|v| v.parallelism).collect(),
            slots,
            required_slots: groups.iter().map(|(_, w)| w).sum(),
            restore,
            allow_non_restored_state,
        }
    }

    /// The number of the task running subtask `subtask` of vertex `vertex`.
    pub fn task_index(&self, vertex: usize, subtask: usize) -> usize {
        self.parallelism[..vertex].iter().sum::<usize>() + subtask
    }

    /// The number of tasks in the attempt.
    pub fn task_count(&self) -> usize {
        self.parallelism.iter().sum()
    }

    /// The (vertex, subtask) of task number `task`.
    pub fn task_of(&self, task: usize) -> Option<(usize, usize)> {
        let mut first = 0;
        for (v, p) in self.parallelism.iter().enumerate() {
            if task < first + p {
                return Some((v, task - first));
            }
            first += p;
        }
        None
    }
}

/// A TaskManager taking part in an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerAddress {
    /// The TaskManager's ID.
    pub id: String,
    /// Where its data server listens (host:port).
    pub data_address: String,
}

/// Where every subtask of an attempt runs; the deployer sends it to every TaskManager, which
/// runs its own subtasks and connects them to the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPlan {
    /// The job ID.
    pub job_id: String,
    /// The JobManager's epoch (fencing token): data connections and commands of older epochs
    /// are refused.
    pub epoch: u64,
    /// The attempt.
    pub attempt: u32,
    /// The TaskManagers taking part.
    pub workers: Vec<WorkerAddress>,
    /// For every vertex and subtask: the index in `workers` of the TaskManager running it.
    pub placement: Vec<Vec<usize>>,
    /// A checkpoint or savepoint URL to restore from.
    pub restore: Option<String>,
    /// With `restore`: drop state of operators the job no longer has.
    pub allow_non_restored_state: bool,
}

impl AttemptPlan {
    /// The worker index of the TaskManager with ID `id`.
    pub fn worker_index(&self, id: &str) -> Option<usize> {
        self.workers.iter().position(|w| w.id == id)
    }

    /// The tasks (by number, as in [`AttemptSpec::task_index`]) placed on worker `worker`.
    pub fn tasks_of(&self, worker: usize) -> Vec<usize> {
        let mut index = 0;
        let mut tasks = Vec::new();
        for subtasks in &self.placement {
            for &w in subtasks {
                if w == worker {
                    tasks.push(index);
                }
                index += 1;
            }
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(parallelism: Vec<usize>) -> AttemptSpec {
        AttemptSpec {
            job_id: "j".into(),
            attempt: 0,
            slots: parallelism.iter().map(|p| (0..*p).collect()).collect(),
            required_slots: parallelism.iter().copied().max().unwrap_or(0),
            parallelism,
            restore: None,
            allow_non_restored_state: false,
        }
    }

    #[test]
    fn task_numbers_count_through_vertices_in_order() {
        let s = spec(vec![1, 3, 2]);
        assert_eq!(s.task_count(), 6);
        assert_eq!(s.task_index(0, 0), 0);
        assert_eq!(s.task_index(1, 2), 3);
        assert_eq!(s.task_index(2, 0), 4);
        for t in 0..6 {
            let (v, st) = s.task_of(t).unwrap();
            assert_eq!(s.task_index(v, st), t);
        }
        assert_eq!(s.task_of(6), None);
    }

    #[test]
    fn a_plan_lists_the_tasks_of_each_worker() {
        let plan = AttemptPlan {
            job_id: "j".into(),
            epoch: 1,
            attempt: 0,
            workers: vec![
                WorkerAddress {
                    id: "a".into(),
                    data_address: "127.0.0.1:1".into(),
                },
                WorkerAddress {
                    id: "b".into(),
                    data_address: "127.0.0.1:2".into(),
                },
            ],
            placement: vec![vec![0], vec![0, 1], vec![1, 0]],
            restore: None,
            allow_non_restored_state: false,
        };
        assert_eq!(plan.tasks_of(0), vec![0, 1, 4]);
        assert_eq!(plan.tasks_of(1), vec![2, 3]);
        assert_eq!(plan.worker_index("b"), Some(1));
    }
}
