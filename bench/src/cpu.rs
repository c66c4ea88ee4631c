//! The CPU time of the benchmark process, shared by the benchmark binaries.

use std::time::Duration;

/// CPU time of this process so far: user and system, every thread, ended ones included.
pub fn process_cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
