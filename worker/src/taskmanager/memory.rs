//! The TaskManager process's resident memory, reported with every heartbeat (protocol 1.4)
//! so the JobManager's dashboard can show it per TaskManager.

/// The resident set size of this process in bytes, from `/proc/self/status` (`VmRSS`);
/// `None` where the system has no `/proc` or the line is missing.
pub fn rss_bytes() -> Option<u64> {
    parse_vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// `VmRSS:   123456 kB` in a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_bytes() {
        let status = "Name:\tfjord\nVmPeak:\t  9000 kB\nVmRSS:\t   2048 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_resident_memory() {
        assert!(rss_bytes().is_some_and(|b| b > 0));
    }
}
