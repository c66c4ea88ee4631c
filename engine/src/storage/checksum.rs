//! Checksums of snapshot files (CRC-32, IEEE polynomial), written into `_metadata` and
//! verified on restore, so a file changed on storage (a flipped bit, a truncated upload, an
//! edit) is reported naming the file instead of restoring wrong state. CRC-32 detects every
//! single-bit and every burst error up to 32 bits.

/// The lookup table of the reflected IEEE polynomial `0xEDB88320`.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The checksum of `bytes` as stored in metadata: `crc32:` and eight hex digits.
pub fn checksum(bytes: &[u8]) -> String {
    let mut crc = 0xFFFF_FFFFu32;
    for b in bytes {
        crc = TABLE[((crc ^ u32::from(*b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    format!("crc32:{:08x}", crc ^ 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

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
