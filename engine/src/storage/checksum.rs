//! Checksums of snapshot files (CRC-32, IEEE polynomial), written into `_metadata` and
//! verified on restore, so a file changed on storage (a flipped bit, a truncated upload, an
//! edit) is reported naming the file instead of restoring wrong state. CRC-32 detects every
//! single-bit and every burst error up to 32 bits.

/// The checksum of `bytes` as stored in metadata: `crc32:` and eight hex digits.
pub fn checksum(bytes: &[u8]) -> String {
    format!("crc32:{:08x}", crc32fast::hash(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-32 by its definition, a bit at a time (reflected polynomial `0xEDB88320`): what
    /// every checksum in `_metadata` written so far holds.
    fn bitwise(bytes: &[u8]) -> String {
        let mut crc = 0xFFFF_FFFFu32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    0xEDB8_8320 ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        format!("crc32:{:08x}", crc ^ 0xFFFF_FFFF)
    }

    #[test]
    fn equals_the_bitwise_definition_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..5003u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..300).chain([1023, 1024, 1025, 4096, 4999]) {
            for start in [0, 1, 3] {
                let slice = &data[start..start + len];
                assert_eq!(checksum(slice), bitwise(slice), "len {len} at {start}");
            }
        }
    }

    #[test]
    fn matches_the_standard_check_value_and_sees_every_single_bit_flip() {
        // The CRC-32 check value of "123456789".
        assert_eq!(checksum(b"123456789"), "crc32:cbf43926");
        let data = b"state of subtask 0".to_vec();
        let good = checksum(&data);
        for bit in 0..data.len() * 8 {
            let mut flipped = data.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(checksum(&flipped), good, "bit {bit}");
        }
    }
}
