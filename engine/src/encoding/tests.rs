//! The encoding against bincode 1.3 (whose bytes every snapshot written so far holds), and
//! its errors.

use super::{from_slice, take_from, to_vec, write_into};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Newtype(i64);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Wrapped(String),
    Pair(u16, Option<i8>),
    Named { id: u128, ratio: f32, flag: bool },
}

/// Every shape of serde's data model that Fjord's state and records use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    small: (i8, i16, i32, u8, u16, u32),
    wide: (i64, u64, i128, u128),
    real: f64,
    letter: char,
    text: String,
    bytes: Vec<u8>,
    maybe: Option<Box<Everything>>,
    list: Vec<Shape>,
    map: BTreeMap<String, Vec<i32>>,
    unit: (),
    unit_struct: Unit,
    newtype: Newtype,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Empty),
        any::<String>().prop_map(Shape::Wrapped),
        (any::<u16>(), any::<Option<i8>>()).prop_map(|(a, b)| Shape::Pair(a, b)),
        (any::<u128>(), any::<f32>(), any::<bool>()).prop_map(|(id, ratio, flag)| Shape::Named {
            id,
            ratio,
            flag
        }),
    ]
}

fn everything() -> impl Strategy<Value = Everything> {
    let leaf = (
        any::<(i8, i16, i32, u8, u16, u32)>(),
        any::<(i64, u64, i128, u128)>(),
        any::<f64>(),
        any::<char>(),
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(shape(), 0..6),
        proptest::collection::btree_map(
            any::<String>(),
            proptest::collection::vec(any::<i32>(), 0..5),
            0..4,
        ),
        any::<i64>(),
    )
        .prop_map(
            |(small, wide, real, letter, text, bytes, list, map, n)| Everything {
                small,
                wide,
                real,
                letter,
                text,
                bytes,
                maybe: None,
                list,
                map,
                unit: (),
                unit_struct: Unit,
                newtype: Newtype(n),
            },
        );
    leaf.prop_recursive(2, 4, 1, |inner| {
        (inner.clone(), inner).prop_map(|(mut outer, nested)| {
            outer.maybe = Some(Box::new(nested));
            outer
        })
    })
}

/// Equality that treats NaN as equal to itself bit for bit (the encoding keeps the bits).
fn same(a: &Everything, b: &Everything) -> bool {
    bincode::serialize(a).unwrap() == bincode::serialize(b).unwrap()
}

proptest! {
    #[test]
    fn writes_the_bytes_bincode_1_writes(value in everything()) {
        let ours = to_vec(&value).unwrap();
        prop_assert_eq!(&ours, &bincode::serialize(&value).unwrap());
        let back: Everything = from_slice(&ours).unwrap();
        prop_assert!(same(&back, &value));
    }

    #[test]
    fn reads_what_bincode_1_wrote(value in everything()) {
        let theirs = bincode::serialize(&value).unwrap();
        let back: Everything = from_slice(&theirs).unwrap();
        prop_assert!(same(&back, &value));
    }

    #[test]
    fn a_truncated_input_is_an_error_not_a_panic(value in everything(), cut in any::<prop::sample::Index>()) {
        let bytes = to_vec(&value).unwrap();
        let cut = cut.index(bytes.len());
        prop_assert!(from_slice::<Everything>(&bytes[..cut]).is_err());
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_like_bincode(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let ours = from_slice::<Vec<(Shape, Option<String>, char)>>(&bytes);
        let theirs = bincode::deserialize::<Vec<(Shape, Option<String>, char)>>(&bytes);
        prop_assert_eq!(ours.is_ok(), theirs.is_ok());
        if let (Ok(a), Ok(b)) = (ours, theirs) {
            prop_assert_eq!(bincode::serialize(&a).unwrap(), bincode::serialize(&b).unwrap());
        }
    }
}

#[test]
fn values_written_one_after_another_are_taken_one_at_a_time() {
    let mut out = Vec::new();
    write_into(&mut out, &7u32).unwrap();
    write_into(&mut out, "key").unwrap();
    write_into(&mut out, &Some(-1i64)).unwrap();
    let mut rest = out.as_slice();
    assert_eq!(take_from::<u32>(&mut rest).unwrap(), 7);
    assert_eq!(take_from::<&str>(&mut rest).unwrap(), "key");
    assert_eq!(take_from::<Option<i64>>(&mut rest).unwrap(), Some(-1));
    assert!(rest.is_empty());
    let before = rest;
    assert!(take_from::<u8>(&mut rest).is_err());
    assert_eq!(rest, before, "a failed read leaves the input where it was");
}

#[test]
fn malformed_values_are_refused_with_what_was_wrong() {
    let bool_error = from_slice::<bool>(&[2]).unwrap_err().to_string();
    assert!(bool_error.contains("bool"), "{bool_error}");
    let option_error = from_slice::<Option<u8>>(&[7, 1]).unwrap_err().to_string();
    assert!(option_error.contains("Option"), "{option_error}");
    let utf8_error = from_slice::<String>(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff])
        .unwrap_err()
        .to_string();
    assert!(utf8_error.contains("UTF-8"), "{utf8_error}");
    let char_error = from_slice::<char>(&[0xff]).unwrap_err().to_string();
    assert!(char_error.contains("char"), "{char_error}");
    let short = from_slice::<u64>(&[1, 2, 3]).unwrap_err().to_string();
    assert!(short.contains("8 more bytes expected, 3 left"), "{short}");
    let variant = from_slice::<Shape>(&[9, 0, 0, 0]).unwrap_err().to_string();
    assert!(variant.contains('9'), "{variant}");
    let claimed = from_slice::<Vec<u8>>(&[255, 255, 255, 255, 0, 0, 0, 0, 1]).unwrap_err();
    assert!(claimed.to_string().contains("ends early"), "{claimed}");
}

#[test]
fn a_sequence_without_a_length_cannot_be_written() {
    struct Unsized;
    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq((0..3).filter(|i| i % 2 == 0))
        }
    }
    let error = to_vec(&Unsized).unwrap_err().to_string();
    assert!(error.contains("length"), "{error}");
}
