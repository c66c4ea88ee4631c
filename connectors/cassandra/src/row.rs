//! What one record becomes: a [`CqlRow`], one value per bind marker of the statement, in
//! order (`None` is CQL null). [`ToCqlValue`] turns Rust values into CQL values and
//! [`ToCqlRow`] turns tuples into rows positionally (Flink's Tuple/Row sinks). Before a row is
//! bound, [`coerce`] adapts integer widths and text to the column types the server reported
//! when it prepared the statement, so `(String, i64)` can fill a `(text, int)` row as long as
//! the value fits.

use scylla::cluster::metadata::{ColumnType, NativeType};
pub use scylla::value::CqlValue;
use scylla::value::{CqlDate, CqlDecimal, CqlTime, CqlTimestamp, CqlValue as V};

/// One row of bind values, in the statement's order; `None` binds CQL null.
pub type CqlRow = Vec<Option<CqlValue>>;

/// A Rust value that is one CQL value.
pub trait ToCqlValue {
    /// The value (`None`: CQL null).
    fn to_cql(&self) -> Option<CqlValue>;
}

macro_rules! to_cql {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl ToCqlValue for $t {
            fn to_cql(&self) -> Option<CqlValue> {
                let $v = self;
                Some($e)
            }
        }
    )*};
}

to_cql! {
    bool => |v| V::Boolean(*v),
    i8 => |v| V::TinyInt(*v),
    i16 => |v| V::SmallInt(*v),
    i32 => |v| V::Int(*v),
    i64 => |v| V::BigInt(*v),
    f32 => |v| V::Float(*v),
    f64 => |v| V::Double(*v),
    String => |v| V::Text(v.clone()),
    str => |v| V::Text(v.to_string()),
    Vec<u8> => |v| V::Blob(v.clone()),
    CqlValue => |v| v.clone(),
}

impl<T: ToCqlValue + ?Sized> ToCqlValue for &T {
    fn to_cql(&self) -> Option<CqlValue> {
        (**self).to_cql()
    }
}

impl<T: ToCqlValue> ToCqlValue for Option<T> {
    fn to_cql(&self) -> Option<CqlValue> {
        self.as_ref().and_then(ToCqlValue::to_cql)
    }
}

/// A CQL `decimal` from its digits as an integer and the number of digits after the point
/// (`decimal(1250, 2)` is 12.50).
pub fn decimal(unscaled: i128, scale: u8) -> CqlValue {
    let bytes = unscaled.to_be_bytes();
    // The shortest two's-complement big-endian form, as Java's BigInteger writes it.
    let sign = if unscaled < 0 { 0xff } else { 0x00 };
    let mut start = 0;
    while start + 1 < bytes.len()
        && bytes[start] == sign
        && (bytes[start + 1] & 0x80) == (sign & 0x80)
    {
        start += 1;
    }
    V::Decimal(CqlDecimal::from_signed_be_bytes_and_exponent(
        bytes[start..].to_vec(),
        i32::from(scale),
    ))
}

/// A CQL `time` from milliseconds of the day.
pub fn time_of_day(millis: i32) -> CqlValue {
    V::Time(CqlTime(i64::from(millis) * 1_000_000))
}

/// A CQL `timestamp` from milliseconds since the epoch (Fjord's event time).
pub fn timestamp(millis: i64) -> CqlValue {
    V::Timestamp(CqlTimestamp(millis))
}

/// A CQL `date` from days since 1970-01-01 (CQL counts from 2^31 days before the epoch).
pub fn date(days_since_epoch: i32) -> CqlValue {
    V::Date(CqlDate((days_since_epoch as i64 + (1i64 << 31)) as u32))
}

/// A value that is a whole row, positionally: tuples of [`ToCqlValue`]s (up to 12 fields),
/// and `Vec`s of them.
pub trait ToCqlRow {
    /// The row.
    fn to_cql_row(&self) -> CqlRow;
}

impl<T: ToCqlValue> ToCqlRow for Vec<T> {
    fn to_cql_row(&self) -> CqlRow {
        self.iter().map(ToCqlValue::to_cql).collect()
    }
}

macro_rules! tuple_row {
    ($($name:ident $idx:tt),+) => {
        impl<$($name: ToCqlValue),+> ToCqlRow for ($($name,)+) {
            fn to_cql_row(&self) -> CqlRow {
                vec![$(self.$idx.to_cql()),+]
            }
        }
    };
}

tuple_row!(A 0);
tuple_row!(A 0, B 1);
tuple_row!(A 0, B 1, C 2);
tuple_row!(A 0, B 1, C 2, D 3);
tuple_row!(A 0, B 1, C 2, D 3, E 4);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// Adapts `value` to the column type `typ` where that loses nothing: integers of another width
/// (if the value fits), `float`/`double` from each other and from integers, `text`/`ascii`/
/// `varchar` from each other, `timestamp` from `bigint` (milliseconds). Anything else is left
/// as it is, and the driver's type check reports a mismatch when the row is bound.
///
/// # Errors
/// An integer that does not fit the column's width, or non-ASCII text for an `ascii` column.
pub fn coerce(value: CqlValue, typ: &ColumnType<'_>) -> Result<CqlValue, String> {
    let ColumnType::Native(native) = typ else {
        return Ok(value);
    };
    let int = match &value {
        V::TinyInt(i) => Some(i64::from(*i)),
        V::SmallInt(i) => Some(i64::from(*i)),
        V::Int(i) => Some(i64::from(*i)),
        V::BigInt(i) => Some(*i),
        _ => None,
    };
    let out_of_range = |i: i64, t: &str| format!("{i} does not fit a CQL {t}");
    Ok(match (native, int, value) {
        (NativeType::TinyInt, Some(i), _) => {
            V::TinyInt(i8::try_from(i).map_err(|_| out_of_range(i, "tinyint"))?)
        }
        (NativeType::SmallInt, Some(i), _) => {
            V::SmallInt(i16::try_from(i).map_err(|_| out_of_range(i, "smallint"))?)
        }
        (NativeType::Int, Some(i), _) => {
            V::Int(i32::try_from(i).map_err(|_| out_of_range(i, "int"))?)
        }
        (NativeType::BigInt, Some(i), _) => V::BigInt(i),
        (NativeType::Timestamp, Some(i), _) => timestamp(i),
        (NativeType::Double, Some(i), _) => V::Double(i as f64),
        (NativeType::Double, None, V::Float(f)) => V::Double(f64::from(f)),
        (NativeType::Float, None, V::Double(f)) => V::Float(f as f32),
        (NativeType::Text, None, V::Ascii(s)) => V::Text(s),
        (NativeType::Ascii, None, V::Text(s)) => {
            if !s.is_ascii() {
                return Err(format!(
                    "{s:?} is not ASCII, which a CQL ascii column needs"
                ));
            }
            V::Ascii(s)
        }
        (_, _, value) => value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_become_rows_positionally_with_nulls() {
        let row = ("a".to_string(), 7i64, None::<i32>, 1.5f64).to_cql_row();
        assert_eq!(
            row,
            vec![
                Some(V::Text("a".into())),
                Some(V::BigInt(7)),
                None,
                Some(V::Double(1.5))
            ]
        );
    }

    #[test]
    fn coercion_fits_integers_and_refuses_overflow() {
        let int = ColumnType::Native(NativeType::Int);
        assert_eq!(coerce(V::BigInt(5), &int).unwrap(), V::Int(5));
        let e = coerce(V::BigInt(1 << 40), &int).unwrap_err();
        assert!(e.contains("does not fit a CQL int"), "{e}");
        let ts = ColumnType::Native(NativeType::Timestamp);
        assert_eq!(coerce(V::BigInt(9), &ts).unwrap(), timestamp(9));
        let ascii = ColumnType::Native(NativeType::Ascii);
        assert!(coerce(V::Text("é".into()), &ascii).is_err());
        // A mismatch coercion cannot fix is left for the driver's type check.
        assert_eq!(
            coerce(V::Text("x".into()), &int).unwrap(),
            V::Text("x".into())
        );
    }
}

#[cfg(test)]
mod sql_type_tests {
    use super::*;

    #[test]
    fn decimals_are_written_in_their_shortest_twos_complement_bytes() {
        let bytes = |v: CqlValue| match v {
            V::Decimal(d) => d.as_signed_be_bytes_slice_and_exponent().0.to_vec(),
            other => panic!("{other:?}"),
        };
        assert_eq!(bytes(decimal(1250, 2)), vec![0x04, 0xe2]);
        assert_eq!(bytes(decimal(0, 0)), vec![0x00]);
        assert_eq!(bytes(decimal(-1, 0)), vec![0xff]);
        assert_eq!(bytes(decimal(128, 0)), vec![0x00, 0x80]);
        assert_eq!(bytes(decimal(-129, 0)), vec![0xff, 0x7f]);
    }
}
