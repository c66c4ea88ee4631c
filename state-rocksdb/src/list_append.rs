//! Appending to a list state without reading it: RocksDB's merge operator for list states.
//!
//! A list state's value is the engine's encoding of a `Vec`: its number of elements as a
//! little-endian `u64`, then the elements (`fjord::encoding`). Two such lists concatenate by
//! adding the counts and appending the elements, whatever the element type, so an append is a
//! RocksDB `merge` of the new elements' list, and RocksDB concatenates the operands when the
//! value is read or compacted (Flink's RocksDB list state appends with a merge the same way).
//! An append then costs the new elements; reading the whole list and writing it back cost the
//! whole list, on every append.

use rocksdb::MergeOperands;

/// The merge operator's name, kept in the instance's OPTIONS file.
pub(crate) const NAME: &str = "fjord-list-append";

/// Concatenates `existing` (if any) and `operands`, each a list as encoded above. `None`
/// (RocksDB then reports the read or compaction as failed: corruption) when a part is shorter
/// than its count's eight bytes or the counts overflow.
pub(crate) fn concat(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &MergeOperands,
) -> Option<Vec<u8>> {
    let bytes = existing.map_or(0, <[u8]>::len) + operands.iter().map(<[u8]>::len).sum::<usize>();
    concat_parts(existing.into_iter().chain(operands.iter()), bytes)
}

/// [`concat`] of `parts`, whose lengths add up to about `bytes`.
fn concat_parts<'a>(parts: impl Iterator<Item = &'a [u8]>, bytes: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(8 + bytes);
    out.extend_from_slice(&[0; 8]);
    let mut count = 0u64;
    for part in parts {
        let (len, elements) = part.split_at_checked(8)?;
        count = count.checked_add(u64::from_le_bytes(len.try_into().ok()?))?;
        out.extend_from_slice(elements);
    }
    out[..8].copy_from_slice(&count.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
        fjord::encoding::to_vec(v).unwrap()
    }

    #[test]
    fn concatenated_lists_decode_as_one_list_of_every_element() {
        let a = vec![(1u32, "one".to_string()), (2, String::new())];
        let b = vec![(3u32, "three".to_string())];
        let c: Vec<(u32, String)> = vec![(4, "x".repeat(300)), (5, "five".into())];
        let parts = [encode(&a), encode(&b), encode(&c)];
        let joined = concat_parts(parts.iter().map(Vec::as_slice), 0).unwrap();
        let back: Vec<(u32, String)> = fjord::encoding::from_slice(&joined).unwrap();
        let want: Vec<_> = a.into_iter().chain(b).chain(c).collect();
        assert_eq!(back, want);
        // Associative: merging the merge of two with the third gives the same bytes.
        let ab = concat_parts(parts[..2].iter().map(Vec::as_slice), 0).unwrap();
        assert_eq!(
            concat_parts([ab.as_slice(), parts[2].as_slice()].into_iter(), 0).unwrap(),
            joined
        );
    }

    #[test]
    fn a_part_shorter_than_its_count_fails_the_merge() {
        assert_eq!(concat_parts([&[1u8, 0, 0][..]].into_iter(), 3), None);
        let max = u64::MAX.to_le_bytes();
        assert_eq!(concat_parts([&max[..], &max[..]].into_iter(), 16), None);
    }
}
