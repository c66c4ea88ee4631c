//! Golden savepoints: savepoints written by earlier Fjord releases (checked in under
//! `tests/testdata/`) restore into this one with every key's state intact.
//!
//! The job keys records by a `String`: a keyed process function sums values per key in a
//! value state and holds an event-time timer per key, and a tumbling event-time window sums
//! them per key and window. Part 1 of the input (records 0..60, watermark 23600) ran at
//! parallelism 2 and was stopped with a savepoint while window [20000, 30000) still held its
//! contents and every timer was pending; the tests run part 2 (records 60..100, then the end
//! of input) from that savepoint and check that the output is exactly what an uninterrupted
//! run of parts 1 and 2 emits after part 1.
//!
//! - `savepoint-format-2`: written by Fjord with key groups from `std::hash::Hash` (format
//!   version 2). Its keyed state is bucketed by that old hash, so restoring it re-buckets every
//!   entry by the key group of its key's bytes.
//! - `savepoint-format-3`: written with key groups from the key's serialized bytes.
//! - `savepoint-operators-3` (format 3, written 2026-12-07): a second job
//!   (`golden_support/operators.rs`) of the operators that keep their own contents in keyed
//!   state — session windows, sliding windows' panes, an interval join's buffers and a
//!   rolling reduce — each with contents pending at the savepoint.
//!
//! Regenerate (only when a new format version is introduced, never to make a test pass):
//! `FJORD_WRITE_GOLDEN=<dir name> cargo test -p fjord --test savepoint_compat -- --ignored`.

mod golden_support;
use golden_support::*;

#[test]
#[ignore = "writes a golden savepoint; run by hand when a format version is introduced"]
fn write_golden_savepoint() {
    let Ok(name) = std::env::var("FJORD_WRITE_GOLDEN") else {
        return;
    };
    let (job, after): (Job<'_>, fn(&str) -> bool) = if name == operators::GOLDEN {
        (&operators::job, operators::after_part1)
    } else {
        (&keyed_sum, after_part1)
    };
    let part1: Vec<String> = uninterrupted_of(job)
        .into_iter()
        .filter(|l| !after(l))
        .collect();
    let written = write_golden(&name, job, part1.len());
    assert_eq!(sorted(written), sorted(part1));
}

#[test]
fn a_format_2_savepoint_restores_with_every_key_intact_at_parallelism_2_and_3() {
    let expected = expected_after_part1();
    for parallelism in [2, 3] {
        restore_and_check("savepoint-format-2", parallelism, &expected);
    }
}

#[test]
fn a_format_3_savepoint_restores_with_every_key_intact_at_parallelism_2_and_3() {
    let expected = expected_after_part1();
    for parallelism in [2, 3] {
        restore_and_check("savepoint-format-3", parallelism, &expected);
    }
}

#[test]
fn a_savepoint_of_sessions_sliding_windows_an_interval_join_and_a_rolling_reduce_restores() {
    let expected = operators::expected_after_part1();
    for parallelism in [2, 3] {
        restore_and_check_job(
            operators::GOLDEN,
            parallelism,
            &expected,
            |_| {},
            &operators::job,
        );
    }
}

#[test]
fn a_savepoint_of_a_job_keyed_by_a_copied_key_restores_into_one_that_borrows_it() {
    // The golden job was keyed with `key_by(|r| r.0.clone())`; `key_by_ref(|r| &r.0)` must
    // send every key to the subtask that holds its key group and find its state there.
    let expected = expected_after_part1();
    for parallelism in [2, 3] {
        restore_and_check_keyed("savepoint-format-3", parallelism, &expected, |_| {}, true);
    }
}

/// The key group format version 2 gave a key: its `std::hash::Hash` fed to `StableHasher`,
/// mixed with Murmur3's finalizer (as this Rust toolchain's `Hash` for `str` feeds it).
fn format_2_key_group(key: &str, max_parallelism: u64) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = fjord::keygroup::StableHasher::default();
    key.hash(&mut h);
    let mut k = h.finish();
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    (k % max_parallelism) as usize
}

#[test]
fn the_format_2_savepoint_has_keys_whose_subtask_changes_with_the_new_key_groups() {
    use fjord::keygroup::{assign_to_key_group, operator_index_for_key_group};
    let moved = (0..KEYS)
        .map(|k| format!("key-{k}"))
        .filter(|k| {
            let old = format_2_key_group(k, 128);
            let new = assign_to_key_group(k.as_str(), 128);
            operator_index_for_key_group(128, 2, old) != operator_index_for_key_group(128, 2, new)
        })
        .count();
    // Without re-bucketing, these keys' state would be restored into the wrong subtask.
    assert!(moved >= 3, "only {moved} keys move");
}
