//! Which partition a record goes to: Kafka's default partitioning (murmur2 of the key, as the
//! Java client's `BuiltInPartitioner`/`DefaultPartitioner`, sticky batches for records
//! without key), by key, round-robin, Flink's fixed partitioner, or a function of the user.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Kafka's murmur2 hash (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit, so a
/// key lands in the partition a Java producer would choose.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition of a key among `partitions`, as Kafka's default partitioner computes it:
/// `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// A partitioning function of the user: `(record, serialized key, topic, partition count)` →
/// partition in `0..count`.
pub type PartitionFn<T> = dyn Fn(&T, Option<&[u8]>, &str, i32) -> i32 + Send + Sync;

/// How the sink picks a record's partition (Flink's `setPartitioner`, Kafka's
/// `partitioner.class`).
pub enum KafkaPartitioner<T> {
    /// Kafka's default: records with a key by murmur2 of the key (the partition a Java producer
    /// picks), records without key stick to one partition per topic until `batch.size` bytes
    /// went there, then move to the next (Kafka's sticky partitioning, KIP-480/794).
    Default,
    /// murmur2 of the key, like `Default`; a record without key is an error (configure a key
    /// serializer).
    ByKey,
    /// Each topic's partitions in turn, record by record (Kafka's `RoundRobinPartitioner`).
    RoundRobin,
    /// Every parallel sink instance writes to one partition, `subtask % partitions` (Flink's
    /// `FlinkFixedPartitioner`).
    Fixed,
    /// A function of the user.
    Custom(Arc<PartitionFn<T>>),
}

impl<T> KafkaPartitioner<T> {
    /// A partitioner from a function `(record, serialized key, topic, partition count)` →
    /// partition; an answer outside `0..count` fails the job.
    pub fn custom(f: impl Fn(&T, Option<&[u8]>, &str, i32) -> i32 + Send + Sync + 'static) -> Self {
        KafkaPartitioner::Custom(Arc::new(f))
    }

    /// Whether this partitioner needs every record to have a key.
    pub(crate) fn needs_key(&self) -> bool {
        matches!(self, KafkaPartitioner::ByKey)
    }
}

impl<T> Clone for KafkaPartitioner<T> {
    fn clone(&self) -> Self {
        match self {
            KafkaPartitioner::Default => KafkaPartitioner::Default,
            KafkaPartitioner::ByKey => KafkaPartitioner::ByKey,
            KafkaPartitioner::RoundRobin => KafkaPartitioner::RoundRobin,
            KafkaPartitioner::Fixed => KafkaPartitioner::Fixed,
            KafkaPartitioner::Custom(f) => KafkaPartitioner::Custom(f.clone()),
        }
    }
}

impl<T> fmt::Debug for KafkaPartitioner<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KafkaPartitioner::Default => "Default",
            KafkaPartitioner::ByKey => "ByKey",
            KafkaPartitioner::RoundRobin => "RoundRobin",
            KafkaPartitioner::Fixed => "Fixed",
            KafkaPartitioner::Custom(_) => "Custom",
        })
    }
}

/// Where the sticky partitioner of one topic writes now.
#[derive(Debug, Clone, Copy)]
struct Sticky {
    partition: i32,
    bytes: usize,
}

/// The per-writer state of a partitioner (sticky and round-robin positions per topic).
pub(crate) struct PartitionChooser<T> {
    partitioner: KafkaPartitioner<T>,
    subtask: usize,
    /// Bytes after which an unkeyed sticky partition moves on (`batch.size`).
    batch_size: usize,
    sticky: HashMap<String, Sticky>,
    round_robin: HashMap<String, i32>,
}

impl<T> PartitionChooser<T> {
    pub(crate) fn new(partitioner: KafkaPartitioner<T>, subtask: usize, batch_size: usize) -> Self {
        PartitionChooser {
            partitioner,
            subtask,
            batch_size: batch_size.max(1),
            sticky: HashMap::new(),
            round_robin: HashMap::new(),
        }
    }

    /// The partition of a record of `size` bytes (key + value) for `topic` with `partitions`
    /// partitions.
    ///
    /// Errors: a keyless record under [`KafkaPartitioner::ByKey`], a custom partition out of
    /// range.
    pub(crate) fn choose(
        &mut self,
        record: &T,
        key: Option<&[u8]>,
        size: usize,
        topic: &str,
        partitions: i32,
    ) -> Result<i32, String> {
        let partitions = partitions.max(1);
        match (&self.partitioner, key) {
            (KafkaPartitioner::Default | KafkaPartitioner::ByKey, Some(key)) => {
                Ok(partition_for_key(key, partitions))
            }
            (KafkaPartitioner::ByKey, None) => Err(format!(
                "a record for topic {topic} has no key, but the sink partitions by key; give the record serializer a key"
            )),
            (KafkaPartitioner::Default, None) => {
                let start = (self.subtask as i32) % partitions;
                let s = self.sticky.entry(topic.to_string()).or_insert(Sticky {
                    partition: start,
                    bytes: 0,
                });
                if s.partition >= partitions {
                    s.partition = start;
                }
                if s.bytes >= self.batch_size {
                    s.partition = (s.partition + 1) % partitions;
                    s.bytes = 0;
                }
                s.bytes += size;
                Ok(s.partition)
            }
            (KafkaPartitioner::RoundRobin, _) => {
                let next = self
                    .round_robin
                    .entry(topic.to_string())
                    .or_insert((self.subtask as i32) % partitions);
                let p = *next % partitions;
                *next = (p + 1) % partitions;
                Ok(p)
            }
            (KafkaPartitioner::Fixed, _) => Ok((self.subtask as i32) % partitions),
            (KafkaPartitioner::Custom(f), key) => {
                let p = f(record, key, topic, partitions);
                if (0..partitions).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!(
                        "the custom partitioner chose partition {p} of topic {topic}, which has partitions 0..{partitions}"
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values from Kafka 4.4.0's `Utils.murmur2` and `Utils.toPositive(h) % n`, printed
    /// by a Java program run against `kafka-clients-4.4.0.jar` (see the commit that added this
    /// test): (key as UTF-8, murmur2, partition of 3, partition of 7).
    const JAVA: &[(&str, i32, i32, i32)] = &[
        ("", 275646681, 0, 2),
        ("a", -1563381124, 1, 5),
        ("ab", 316155434, 2, 0),
        ("abc", 479470107, 0, 4),
        ("21", -973932308, 0, 3),
        ("foobar", -790332482, 0, 0),
        ("a-little-bit-long-string", -985981536, 2, 1),
        ("a-little-bit-longer-string", -1486304829, 2, 0),
        (
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
            2,
            3,
        ),
        ("key-0", 29210041, 1, 0),
        ("key-1", 193331640, 0, 5),
        ("hello", 2132663229, 0, 4),
        ("wörd", 2058331899, 0, 1),
    ];

    /// `murmur2(bytes 250-len .. 250)` from the same Java program: bytes >= 0x80 are signed in
    /// Java, which the tail handling must reproduce.
    const JAVA_HIGH_BYTES: &[i32] = &[
        275646681,
        -1205017352,
        344659154,
        -1434370548,
        1137596757,
        1099721188,
        -370672401,
        -1984025185,
        455417110,
    ];

    #[test]
    fn murmur2_and_partitions_equal_the_java_clients() {
        for (key, hash, p3, p7) in JAVA {
            assert_eq!(murmur2(key.as_bytes()), *hash, "murmur2({key:?})");
            assert_eq!(partition_for_key(key.as_bytes(), 3), *p3, "{key:?} of 3");
            assert_eq!(partition_for_key(key.as_bytes(), 7), *p7, "{key:?} of 7");
        }
        let bytes: Vec<u8> = (0..=255u8).collect();
        for (len, hash) in JAVA_HIGH_BYTES.iter().enumerate() {
            assert_eq!(murmur2(&bytes[250 - len..250]), *hash, "length {len}");
        }
    }

    fn chooser(p: KafkaPartitioner<u32>, subtask: usize) -> PartitionChooser<u32> {
        PartitionChooser::new(p, subtask, 100)
    }

    #[test]
    fn default_partitioner_hashes_keys_and_sticks_without_key() {
        let mut c = chooser(KafkaPartitioner::Default, 1);
        assert_eq!(c.choose(&0, Some(b"key-1"), 10, "t", 7).unwrap(), 5);
        // Unkeyed: 100 bytes on the subtask's partition, then the next one.
        let seq: Vec<i32> = (0..25)
            .map(|_| c.choose(&0, None, 10, "t", 3).unwrap())
            .collect();
        assert_eq!(&seq[..10], &[1; 10]);
        assert_eq!(&seq[10..20], &[2; 10]);
        assert_eq!(&seq[20..], &[0; 5]);
        // Topics stick independently.
        assert_eq!(c.choose(&0, None, 10, "u", 3).unwrap(), 1);
    }

    #[test]
    fn by_key_needs_a_key() {
        let mut c = chooser(KafkaPartitioner::ByKey, 0);
        assert_eq!(c.choose(&0, Some(b"foobar"), 1, "t", 3).unwrap(), 0);
        let err = c.choose(&0, None, 1, "orders", 3).unwrap_err();
        assert!(err.contains("orders") && err.contains("key"), "{err}");
    }

    #[test]
    fn round_robin_and_fixed() {
        let mut c = chooser(KafkaPartitioner::RoundRobin, 2);
        let seq: Vec<i32> = (0..5)
            .map(|_| c.choose(&0, Some(b"k"), 1, "t", 3).unwrap())
            .collect();
        assert_eq!(seq, vec![2, 0, 1, 2, 0]);
        let mut f = chooser(KafkaPartitioner::Fixed, 5);
        assert_eq!(f.choose(&0, None, 1, "t", 3).unwrap(), 2);
        assert_eq!(f.choose(&0, Some(b"x"), 1, "t", 3).unwrap(), 2);
    }

    #[test]
    fn custom_partitions_are_checked() {
        let mut c = chooser(
            KafkaPartitioner::custom(|v: &u32, _, _, n| *v as i32 % n),
            0,
        );
        assert_eq!(c.choose(&7, None, 1, "t", 4).unwrap(), 3);
        let mut bad = chooser(KafkaPartitioner::custom(|_: &u32, _, _, n| n), 0);
        let err = bad.choose(&7, None, 1, "t", 4).unwrap_err();
        assert!(err.contains("partition 4") && err.contains("0..4"), "{err}");
    }
}
