//! Golden key groups: the key group of a sample of every built-in key type, at max
//! parallelism 128 and 32768, written down once. A change of the key-group function fails
//! this test: it would put restored state under the wrong keys, so it needs a new snapshot
//! format version and a migration (see the module docs), never an update of these numbers.

use super::assign_to_key_group;
use serde::Serialize;

#[derive(Serialize)]
struct Account {
    tenant: u32,
    name: String,
    region: Option<char>,
}

#[derive(Serialize)]
enum Event {
    Click,
    View(u64),
    Purchase { item: String, cents: i64 },
    Pair(u8, bool),
}

/// (what, key group at 128, key group at 32768), for each sample key.
fn groups<K: Serialize + ?Sized>(what: &str, key: &K) -> (String, usize, usize) {
    (
        what.to_string(),
        assign_to_key_group(key, 128),
        assign_to_key_group(key, 32768),
    )
}

fn samples() -> Vec<(String, usize, usize)> {
    vec![
        groups("u8 0", &0u8),
        groups("u8 255", &255u8),
        groups("u16 4242", &4242u16),
        groups("u32 7", &7u32),
        groups("u32 4000000000", &4_000_000_000u32),
        groups("u64 0", &0u64),
        groups("u64 1", &1u64),
        groups("u64 42", &42u64),
        groups("u64 max", &u64::MAX),
        groups("u128 1<<100", &(1u128 << 100)),
        groups("usize 99", &99usize),
        groups("i8 -1", &-1i8),
        groups("i16 -300", &-300i16),
        groups("i32 -7", &-7i32),
        groups("i64 -42", &-42i64),
        groups("i64 min", &i64::MIN),
        groups("i128 -5", &-5i128),
        groups("bool false", &false),
        groups("bool true", &true),
        groups("char a", &'a'),
        groups("char ß", &'ß'),
        groups("char 🦀", &'🦀'),
        groups("str empty", ""),
        groups("str a", "a"),
        groups("str hello", "hello"),
        groups("String hello", &"hello".to_string()),
        groups("str long", "the quick brown fox jumps over the lazy dog"),
        groups("Vec<u8> 1,2,3", &vec![1u8, 2, 3]),
        groups("Vec<u8> empty", &Vec::<u8>::new()),
        groups("Vec<String>", &vec!["a".to_string(), "bc".to_string()]),
        groups("Option<u64> None", &None::<u64>),
        groups("Option<u64> Some 42", &Some(42u64)),
        groups("Option<String> Some x", &Some("x".to_string())),
        groups("(u64, u64)", &(1u64, 2u64)),
        groups("(String, u32)", &("user".to_string(), 7u32)),
        groups("(i32, bool, char)", &(-1i32, true, 'z')),
        groups(
            "(String, i64, Option<u8>)",
            &("a".to_string(), 3i64, Some(9u8)),
        ),
        groups(
            "struct",
            &Account {
                tenant: 3,
                name: "acme".into(),
                region: Some('e'),
            },
        ),
        groups("enum unit", &Event::Click),
        groups("enum newtype", &Event::View(5)),
        groups(
            "enum struct",
            &Event::Purchase {
                item: "book".into(),
                cents: 1299,
            },
        ),
        groups("enum tuple", &Event::Pair(1, false)),
    ]
}

/// The key groups at max parallelism 128 and 32768, computed once by this test's first
/// version and written down: never edit them to make the test pass.
const GOLDEN: &[(&str, usize, usize)] = &[
    ("u8 0", 82, 31954),
    ("u8 255", 26, 8474),
    ("u16 4242", 124, 27516),
    ("u32 7", 9, 32393),
    ("u32 4000000000", 96, 9952),
    ("u64 0", 2, 31362),
    ("u64 1", 48, 14256),
    ("u64 42", 119, 10231),
    ("u64 max", 52, 8884),
    ("u128 1<<100", 31, 4383),
    ("usize 99", 114, 20850),
    ("i8 -1", 26, 8474),
    ("i16 -300", 39, 10919),
    ("i32 -7", 100, 5220),
    ("i64 -42", 88, 14680),
    ("i64 min", 5, 18181),
    ("i128 -5", 18, 2194),
    ("bool false", 82, 31954),
    ("bool true", 37, 10661),
    ("char a", 54, 14646),
    ("char ß", 68, 16068),
    ("char 🦀", 68, 20420),
    ("str empty", 2, 31362),
    ("str a", 57, 15929),
    ("str hello", 1, 2561),
    ("String hello", 1, 2561),
    ("str long", 114, 28658),
    ("Vec<u8> 1,2,3", 52, 6836),
    ("Vec<u8> empty", 2, 31362),
    ("Vec<String>", 119, 23415),
    ("Option<u64> None", 82, 31954),
    ("Option<u64> Some 42", 4, 20868),
    ("Option<String> Some x", 22, 6806),
    ("(u64, u64)", 122, 17914),
    ("(String, u32)", 87, 25303),
    ("(i32, bool, char)", 37, 29093),
    ("(String, i64, Option<u8>)", 11, 23563),
    ("struct", 43, 21803),
    ("enum unit", 79, 13007),
    ("enum newtype", 125, 4093),
    ("enum struct", 38, 26150),
    ("enum tuple", 8, 29064),
];

#[test]
fn key_groups_of_every_built_in_key_type_are_pinned() {
    let got = samples();
    assert_eq!(got.len(), GOLDEN.len());
    for ((what, a, b), (want_what, want_a, want_b)) in got.iter().zip(GOLDEN) {
        assert_eq!(what, want_what);
        assert_eq!(
            (*a, *b),
            (*want_a, *want_b),
            "the key group of {what} changed: that moves restored state to other keys"
        );
    }
}

#[test]
fn key_groups_of_stored_key_bytes_are_the_key_groups_of_the_keys() {
    use super::key_group_of_bytes;
    let key = ("user".to_string(), 7u32);
    let bytes = crate::encoding::to_vec(&key).unwrap();
    for max in [1, 7, 128, 32768] {
        assert_eq!(
            key_group_of_bytes(&bytes, max),
            assign_to_key_group(&key, max)
        );
    }
}
