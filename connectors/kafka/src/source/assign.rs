//! Which reader reads which partition, without a central enumerator: every reader computes the
//! owner of every partition it discovers with Flink's `KafkaSourceEnumerator.getSplitOwner`, so
//! the assignment is the same as Flink's, even over the readers, and deterministic.

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + ... + s[n-1]` over the UTF-16 code units,
/// in wrapping 32-bit arithmetic.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The reader (0-based) of `num_readers` that owns `partition` of `topic` (Flink's
/// `getSplitOwner`): the topic's partitions go round-robin over the readers, starting at a
/// reader chosen by the topic's hash, so several topics spread evenly too.
pub fn owner_of(topic: &str, partition: i32, num_readers: usize) -> usize {
    let n = num_readers.max(1) as i64;
    let start = i64::from(java_string_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) % n;
    ((start + i64::from(partition)) % n) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values from the JVM (OpenJDK 17), produced once by this program, which calls
    /// Flink's `getSplitOwner` verbatim (flink-connector-kafka 3.x, `KafkaSourceEnumerator`):
    ///
    /// ```java
    /// static int getSplitOwner(String topic, int partition, int numReaders) {
    ///     int startIndex = ((topic.hashCode() * 31) & 0x7FFFFFFF) % numReaders;
    ///     return (startIndex + partition) % numReaders;
    /// }
    /// // for each topic: print topic.hashCode() and, for readers in {1, 2, 3, 4, 7},
    /// // getSplitOwner(topic, p, readers) for p in 0..6
    /// ```
    #[allow(clippy::type_complexity)]
    #[rustfmt::skip]
    const GOLDEN: &[(&str, i32, &[(usize, [usize; 6])])] = &[
        ("", 0, &[(1, [0, 0, 0, 0, 0, 0]), (2, [0, 1, 0, 1, 0, 1]), (3, [0, 1, 2, 0, 1, 2]), (4, [0, 1, 2, 3, 0, 1]), (7, [0, 1, 2, 3, 4, 5])]),
        ("a", 97, &[(1, [0, 0, 0, 0, 0, 0]), (2, [1, 0, 1, 0, 1, 0]), (3, [1, 2, 0, 1, 2, 0]), (4, [3, 0, 1, 2, 3, 0]), (7, [4, 5, 6, 0, 1, 2])]),
        ("orders", -1008770331, &[(1, [0, 0, 0, 0, 0, 0]), (2, [1, 0, 1, 0, 1, 0]), (3, [0, 1, 2, 0, 1, 2]), (4, [3, 0, 1, 2, 3, 0]), (7, [3, 4, 5, 6, 0, 1])]),
        ("input-topic", -1393968788, &[(1, [0, 0, 0, 0, 0, 0]), (2, [0, 1, 0, 1, 0, 1]), (3, [1, 2, 0, 1, 2, 0]), (4, [0, 1, 2, 3, 0, 1]), (7, [1, 2, 3, 4, 5, 6])]),
        ("fjord.events.v2", 1000474208, &[(1, [0, 0, 0, 0, 0, 0]), (2, [0, 1, 0, 1, 0, 1]), (3, [1, 2, 0, 1, 2, 0]), (4, [0, 1, 2, 3, 0, 1]), (7, [4, 5, 6, 0, 1, 2])]),
        ("tópico-ü", 229090579, &[(1, [0, 0, 0, 0, 0, 0]), (2, [1, 0, 1, 0, 1, 0]), (3, [1, 2, 0, 1, 2, 0]), (4, [1, 2, 3, 0, 1, 2]), (7, [6, 0, 1, 2, 3, 4])]),
        ("emoji-\u{1F600}", 1164511306, &[(1, [0, 0, 0, 0, 0, 0]), (2, [0, 1, 0, 1, 0, 1]), (3, [2, 0, 1, 2, 0, 1]), (4, [2, 3, 0, 1, 2, 3]), (7, [3, 4, 5, 6, 0, 1])]),
        ("a-very-long-topic-name-with-many-characters-0123456789", 2016328611, &[(1, [0, 0, 0, 0, 0, 0]), (2, [1, 0, 1, 0, 1, 0]), (3, [2, 0, 1, 2, 0, 1]), (4, [1, 2, 3, 0, 1, 2]), (7, [0, 1, 2, 3, 4, 5])]),
    ];

    #[test]
    fn hash_and_owner_match_the_jvm_and_flink() {
        for (topic, hash, owners) in GOLDEN {
            assert_eq!(java_string_hash(topic), *hash, "hashCode of {topic:?}");
            for (readers, expected) in owners.iter() {
                let got: Vec<usize> = (0..6).map(|p| owner_of(topic, p, *readers)).collect();
                assert_eq!(got, expected.to_vec(), "{topic:?} over {readers} readers");
            }
        }
    }

    #[test]
    fn every_reader_gets_its_share() {
        // 3 topics x 8 partitions over 4 readers: 6 each.
        let mut counts = [0; 4];
        for topic in ["orders", "payments", "clicks"] {
            for p in 0..8 {
                counts[owner_of(topic, p, 4)] += 1;
            }
        }
        assert_eq!(counts, [6; 4]);
    }
}
