//! Job IDs derived from what identifies a job (32 hex digits, like Flink's `JobID`), so the
//! same job gets the same ID every time: the JobManager derives one from the job's name and
//! arguments, the operator one from the StreamJob's UID and deployed generation.

/// The job ID for `bytes`: two 64-bit FNV-1a hashes (with different offset bases) in hex.
pub fn derive(bytes: impl Iterator<Item = u8> + Clone) -> String {
    let hash = |seed: u64| {
        bytes.clone().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        hash(0xcbf2_9ce4_8422_2325),
        hash(0x8422_2325_cbf2_9ce4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_32_hex_digits_and_depends_on_every_byte() {
        let a = derive(b"job\0arg\0".iter().copied());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, derive(b"job\0arg\0".iter().copied()));
        assert_ne!(a, derive(b"job\0arh\0".iter().copied()));
    }
}
