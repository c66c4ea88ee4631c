//! Which reader reads which shard, without a central enumerator: every reader computes the
//! owner of every shard it lists, the same way, so every shard has exactly one reader.
//!
//! A shard goes to the reader of its *lineage root*: follow `ParentShardId` up to a shard
//! without a parent (one of the stream's first shards). The stream's first shards go
//! round-robin over the readers (by the number in `shardId-<n>`, from a start chosen by the
//! stream name's hash, as Flink spreads Kafka partitions), so the children of a split are read
//! by the reader that read their parent, after it. A merged shard goes with its first parent;
//! its adjacent parent may belong to another reader (see `docs/connectors/kinesis.md`).

use crate::client::ShardInfo;
use std::collections::BTreeMap;

/// Java's `String.hashCode()` over UTF-16 code units, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The root of `shard_id`'s lineage among `shards` (itself if it has no listed parent; a
/// parent no longer listed, past the retention period, is taken as the root).
pub fn root_of<'a>(shard_id: &'a str, shards: &'a BTreeMap<String, ShardInfo>) -> &'a str {
    let mut id = shard_id;
    // Bounded: a lineage is at most as long as the listing (guards against a cycle).
    for _ in 0..=shards.len() {
        match shards.get(id).and_then(|s| s.parent.as_deref()) {
            Some(parent) => id = parent,
            None => return id,
        }
    }
    id
}

/// The reader (0-based) of `readers` that reads the lineage rooted at `root`.
pub fn root_owner(stream: &str, root: &str, readers: usize) -> usize {
    let n = readers.max(1) as i64;
    let start = i64::from(java_string_hash(stream).wrapping_mul(31) & 0x7FFF_FFFF) % n;
    match root
        .strip_prefix("shardId-")
        .and_then(|d| d.parse::<i64>().ok())
    {
        Some(index) => ((start + index % n) % n) as usize,
        None => (i64::from(java_string_hash(root) & 0x7FFF_FFFF) % n) as usize,
    }
}

/// The reader of `shard_id`.
pub fn owner_of(
    stream: &str,
    shard_id: &str,
    shards: &BTreeMap<String, ShardInfo>,
    readers: usize,
) -> usize {
    root_owner(stream, root_of(shard_id, shards), readers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: u32, parent: Option<u32>, adjacent: Option<u32>) -> (String, ShardInfo) {
        let name = |n: u32| format!("shardId-{n:012}");
        (
            name(id),
            ShardInfo {
                shard_id: name(id),
                parent: parent.map(name),
                adjacent_parent: adjacent.map(name),
                ending_sequence_number: None,
                starting_hash_key: "0".into(),
                ending_hash_key: "1".into(),
            },
        )
    }

    #[test]
    fn first_shards_spread_evenly_and_children_follow_their_parent() {
        // 4 shards; 0 split into 4 and 5; 5 split into 6 and 7; 1 and 2 merged into 8.
        let shards: BTreeMap<_, _> = [
            shard(0, None, None),
            shard(1, None, None),
            shard(2, None, None),
            shard(3, None, None),
            shard(4, Some(0), None),
            shard(5, Some(0), None),
            shard(6, Some(5), None),
            shard(7, Some(5), None),
            shard(8, Some(1), Some(2)),
        ]
        .into_iter()
        .collect();
        for readers in [1, 2, 3, 4] {
            let owner = |n: u32| owner_of("orders", &format!("shardId-{n:012}"), &shards, readers);
            let mut counts = vec![0; readers];
            for n in 0..4 {
                counts[owner(n)] += 1;
            }
            assert!(
                counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
                "{counts:?}"
            );
            for child in [4, 5, 6, 7] {
                assert_eq!(
                    owner(child),
                    owner(0),
                    "{child} follows its root over {readers}"
                );
            }
            assert_eq!(owner(8), owner(1), "a merge follows its first parent");
        }
        assert_eq!(
            root_of("shardId-000000000007", &shards),
            "shardId-000000000000"
        );
        // A parent past retention: the missing parent is the root.
        let orphan: BTreeMap<_, _> = [shard(9, Some(3), None)].into_iter().collect();
        assert_eq!(
            root_of("shardId-000000000009", &orphan),
            "shardId-000000000003"
        );
        assert!(root_owner("s", "custom-id", 3) < 3);
    }
}
