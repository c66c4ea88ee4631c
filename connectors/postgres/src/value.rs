//! The SQL values the connector moves ([`PgValue`]), the column types it knows ([`PgType`]),
//! and the rows a lookup returns ([`PgRow`]).
//!
//! Values go over the wire in PostgreSQL's binary format. A value may be written to a column
//! of its own type or of a wider one (an `Int4` into a `bigint` column, an `Int8` into a
//! `numeric`, a `Float4` into a `double precision`, `Text` into `varchar`, `char`, `json`,
//! `jsonb`, a `Timestamp` into `timestamp` or `timestamptz`); anything else is a
//! [`TypeMismatch`](crate::PostgresError::TypeMismatch) naming the column before anything is
//! sent.

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use std::error::Error as StdError;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between the Unix epoch and PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;

/// One SQL value: a statement parameter or a column of a result row.
///
/// Floats compare and hash by their bits (so they can be cache keys); `Null` equals `Null`
/// here, though a lookup key with a `Null` matches no row (SQL's `=`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PgValue {
    /// SQL NULL (any column type).
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`.
    Int2(i16),
    /// `integer`.
    Int4(i32),
    /// `bigint`.
    Int8(i64),
    /// `real`.
    Float4(f32),
    /// `double precision`.
    Float8(f64),
    /// `text`, `varchar`, `char(n)`, `name`; also written to `json` and `jsonb` columns.
    Text(String),
    /// `bytea`.
    Bytea(Vec<u8>),
    /// `numeric`/`decimal` as its plain decimal text (`-12.340`, `NaN`): exact, any precision.
    Numeric(String),
    /// `timestamp(3)` (and `timestamptz`, read as UTC) as milliseconds since the Unix epoch;
    /// microseconds are truncated when read.
    Timestamp(i64),
    /// `date` as days since the Unix epoch (1970-01-01 is 0).
    Date(i32),
}

impl PartialEq for PgValue {
    fn eq(&self, other: &Self) -> bool {
        use PgValue::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int2(a), Int2(b)) => a == b,
            (Int4(a), Int4(b)) => a == b,
            (Int8(a), Int8(b)) => a == b,
            (Float4(a), Float4(b)) => a.to_bits() == b.to_bits(),
            (Float8(a), Float8(b)) => a.to_bits() == b.to_bits(),
            (Text(a), Text(b)) => a == b,
            (Bytea(a), Bytea(b)) => a == b,
            (Numeric(a), Numeric(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for PgValue {}

impl Hash for PgValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            PgValue::Null => {}
            PgValue::Bool(v) => v.hash(state),
            PgValue::Int2(v) => v.hash(state),
            PgValue::Int4(v) => v.hash(state),
            PgValue::Int8(v) => v.hash(state),
            PgValue::Float4(v) => v.to_bits().hash(state),
            PgValue::Float8(v) => v.to_bits().hash(state),
            PgValue::Text(v) | PgValue::Numeric(v) => v.hash(state),
            PgValue::Bytea(v) => v.hash(state),
            PgValue::Timestamp(v) => v.hash(state),
            PgValue::Date(v) => v.hash(state),
        }
    }
}

impl fmt::Display for PgValue {
    /// `BIGINT 42`, `TEXT 'abc'`, `NULL`: how errors name a value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgValue::Null => write!(f, "NULL"),
            PgValue::Bool(v) => write!(f, "BOOLEAN {v}"),
            PgValue::Int2(v) => write!(f, "SMALLINT {v}"),
            PgValue::Int4(v) => write!(f, "INTEGER {v}"),
            PgValue::Int8(v) => write!(f, "BIGINT {v}"),
            PgValue::Float4(v) => write!(f, "REAL {v}"),
            PgValue::Float8(v) => write!(f, "DOUBLE {v}"),
            PgValue::Text(v) => {
                let short: String = v.chars().take(40).collect();
                let more = if short.len() < v.len() { "..." } else { "" };
                write!(f, "TEXT '{short}{more}'")
            }
            PgValue::Bytea(v) => write!(f, "BYTEA of {} bytes", v.len()),
            PgValue::Numeric(v) => write!(f, "NUMERIC {v}"),
            PgValue::Timestamp(v) => write!(f, "TIMESTAMP {v} ms"),
            PgValue::Date(v) => write!(f, "DATE {v} days"),
        }
    }
}

impl PgValue {
    /// Text (`PgValue::Text`).
    pub fn text(s: impl Into<String>) -> PgValue {
        PgValue::Text(s.into())
    }

    /// `value`, or `Null` for `None`.
    pub fn nullable<V: Into<PgValue>>(value: Option<V>) -> PgValue {
        value.map_or(PgValue::Null, Into::into)
    }

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, PgValue::Null)
    }

    /// The value as an `i64` (any integer variant), if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            PgValue::Int2(v) => Some(v.into()),
            PgValue::Int4(v) => Some(v.into()),
            PgValue::Int8(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a `f64` (either float variant), if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            PgValue::Float4(v) => Some(v.into()),
            PgValue::Float8(v) => Some(v),
            _ => None,
        }
    }

    /// The text of a `Text` or `Numeric` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PgValue::Text(s) | PgValue::Numeric(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this value can be written to (or compared with) a column of type `ty`; if not,
    /// what to do instead.
    pub(crate) fn check(&self, ty: &Type) -> Result<(), String> {
        let ok = match self {
            PgValue::Null => true,
            PgValue::Bool(_) => *ty == Type::BOOL,
            PgValue::Int2(_) => [Type::INT2, Type::INT4, Type::INT8, Type::NUMERIC].contains(ty),
            PgValue::Int4(_) => [Type::INT4, Type::INT8, Type::NUMERIC].contains(ty),
            PgValue::Int8(_) => [Type::INT8, Type::NUMERIC].contains(ty),
            PgValue::Float4(_) => [Type::FLOAT4, Type::FLOAT8].contains(ty),
            PgValue::Float8(_) => *ty == Type::FLOAT8,
            PgValue::Text(_) => is_text(ty) || *ty == Type::JSON || *ty == Type::JSONB,
            PgValue::Bytea(_) => *ty == Type::BYTEA,
            PgValue::Numeric(s) => *ty == Type::NUMERIC && encode_numeric(s).is_ok(),
            PgValue::Timestamp(_) => [Type::TIMESTAMP, Type::TIMESTAMPTZ].contains(ty),
            PgValue::Date(_) => *ty == Type::DATE,
        };
        if ok {
            return Ok(());
        }
        if let PgValue::Numeric(s) = self
            && *ty == Type::NUMERIC
        {
            return Err(format!(
                "'{s}' is not a plain decimal number (digits, one optional point, an optional sign, or NaN)"
            ));
        }
        let fitting = PgType::from_type(ty).map_or_else(
            || "none: change the column's type, or write through a view".to_string(),
            |t| format!("PgValue::{}", t.value_variant()),
        );
        Err(format!(
            "give the column a value of its own type (for {ty}: {fitting}), or change the column's type"
        ))
    }
}

fn is_text(ty: &Type) -> bool {
    [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty)
}

impl From<bool> for PgValue {
    fn from(v: bool) -> Self {
        PgValue::Bool(v)
    }
}
impl From<i16> for PgValue {
    fn from(v: i16) -> Self {
        PgValue::Int2(v)
    }
}
impl From<i32> for PgValue {
    fn from(v: i32) -> Self {
        PgValue::Int4(v)
    }
}
impl From<i64> for PgValue {
    fn from(v: i64) -> Self {
        PgValue::Int8(v)
    }
}
impl From<f32> for PgValue {
    fn from(v: f32) -> Self {
        PgValue::Float4(v)
    }
}
impl From<f64> for PgValue {
    fn from(v: f64) -> Self {
        PgValue::Float8(v)
    }
}
impl From<String> for PgValue {
    fn from(v: String) -> Self {
        PgValue::Text(v)
    }
}
impl From<&str> for PgValue {
    fn from(v: &str) -> Self {
        PgValue::Text(v.to_string())
    }
}
impl From<Vec<u8>> for PgValue {
    fn from(v: Vec<u8>) -> Self {
        PgValue::Bytea(v)
    }
}

/// The error of a value that does not fit its parameter (the writer checks values first, so
/// it is not expected on the wire).
#[derive(Debug)]
struct Mismatch(String);

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Mismatch {}

type BoxedError = Box<dyn StdError + Sync + Send>;

impl ToSql for PgValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxedError> {
        self.check(ty)
            .map_err(|hint| Box::new(Mismatch(format!("{self} for a {ty} parameter: {hint}"))))?;
        match self {
            PgValue::Null => return Ok(IsNull::Yes),
            PgValue::Bool(v) => out.put_u8(u8::from(*v)),
            PgValue::Int2(_) | PgValue::Int4(_) | PgValue::Int8(_) => {
                let v = self.as_i64().expect("an integer");
                match *ty {
                    Type::INT2 => out.put_i16(v as i16),
                    Type::INT4 => out.put_i32(v as i32),
                    Type::INT8 => out.put_i64(v),
                    _ => out.put_slice(&encode_numeric(&v.to_string())?),
                }
            }
            PgValue::Float4(v) => match *ty {
                Type::FLOAT4 => out.put_f32(*v),
                _ => out.put_f64(f64::from(*v)),
            },
            PgValue::Float8(v) => out.put_f64(*v),
            PgValue::Text(s) => {
                if *ty == Type::JSONB {
                    out.put_u8(1);
                }
                out.put_slice(s.as_bytes());
            }
            PgValue::Bytea(b) => out.put_slice(b),
            PgValue::Numeric(s) => out.put_slice(&encode_numeric(s)?),
            PgValue::Timestamp(ms) => out.put_i64(ms.saturating_mul(1000) - PG_EPOCH_MICROS),
            PgValue::Date(days) => out.put_i32(days - PG_EPOCH_DAYS),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        // Checked per value (`check`), against the parameter's type.
        true
    }

    to_sql_checked!();
}

/// A column's type as the connector reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgType {
    /// `boolean` → [`PgValue::Bool`].
    Bool,
    /// `smallint` → [`PgValue::Int2`].
    Int2,
    /// `integer` → [`PgValue::Int4`].
    Int4,
    /// `bigint` → [`PgValue::Int8`].
    Int8,
    /// `real` → [`PgValue::Float4`].
    Float4,
    /// `double precision` → [`PgValue::Float8`].
    Float8,
    /// `text`, `varchar`, `char(n)`, `name`, `json`, `jsonb` → [`PgValue::Text`].
    Text,
    /// `bytea` → [`PgValue::Bytea`].
    Bytea,
    /// `numeric` → [`PgValue::Numeric`].
    Numeric,
    /// `timestamp` → [`PgValue::Timestamp`] (epoch milliseconds).
    Timestamp,
    /// `timestamptz` → [`PgValue::Timestamp`] (epoch milliseconds, UTC).
    TimestampTz,
    /// `date` → [`PgValue::Date`].
    Date,
}

/// The column types the connector reads, for error messages.
pub(crate) const READABLE_TYPES: &str = "boolean, smallint, integer, bigint, real, double precision, text, varchar, char, name, json, jsonb, bytea, numeric, timestamp, timestamptz, date";

impl PgType {
    /// The connector's type for a PostgreSQL type, if it reads it.
    pub fn from_type(ty: &Type) -> Option<PgType> {
        Some(match *ty {
            Type::BOOL => PgType::Bool,
            Type::INT2 => PgType::Int2,
            Type::INT4 => PgType::Int4,
            Type::INT8 => PgType::Int8,
            Type::FLOAT4 => PgType::Float4,
            Type::FLOAT8 => PgType::Float8,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::JSONB => {
                PgType::Text
            }
            Type::BYTEA => PgType::Bytea,
            Type::NUMERIC => PgType::Numeric,
            Type::TIMESTAMP => PgType::Timestamp,
            Type::TIMESTAMPTZ => PgType::TimestampTz,
            Type::DATE => PgType::Date,
            _ => return None,
        })
    }

    /// The [`PgValue`] variant of this type's values.
    pub fn value_variant(self) -> &'static str {
        match self {
            PgType::Bool => "Bool",
            PgType::Int2 => "Int2",
            PgType::Int4 => "Int4",
            PgType::Int8 => "Int8",
            PgType::Float4 => "Float4",
            PgType::Float8 => "Float8",
            PgType::Text => "Text",
            PgType::Bytea => "Bytea",
            PgType::Numeric => "Numeric",
            PgType::Timestamp | PgType::TimestampTz => "Timestamp",
            PgType::Date => "Date",
        }
    }
}

/// A column of a result: its name and type, from the server's row description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgColumn {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub pg_type: PgType,
    /// The PostgreSQL type's name (`int8`, `varchar`, `timestamptz`).
    pub type_name: String,
}

/// One row a lookup returned: its values in the lookup's column order, and the columns.
#[derive(Debug, Clone, PartialEq)]
pub struct PgRow {
    columns: Arc<[PgColumn]>,
    values: Vec<PgValue>,
}

impl PgRow {
    /// A row of `values` for `columns` (the same length).
    pub fn new(columns: Arc<[PgColumn]>, values: Vec<PgValue>) -> PgRow {
        debug_assert_eq!(columns.len(), values.len());
        PgRow { columns, values }
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[PgColumn] {
        &self.columns
    }

    /// The values, in column order.
    pub fn values(&self) -> &[PgValue] {
        &self.values
    }

    /// The values, in column order.
    pub fn into_values(self) -> Vec<PgValue> {
        self.values
    }

    /// The value of column `name`, if the row has that column.
    pub fn get(&self, name: &str) -> Option<&PgValue> {
        let i = self.columns.iter().position(|c| c.name == name)?;
        self.values.get(i)
    }

    /// Decodes column `i` of a server row whose type is `ty`.
    pub(crate) fn read_value(
        row: &tokio_postgres::Row,
        i: usize,
        ty: PgType,
    ) -> Result<PgValue, tokio_postgres::Error> {
        fn get<'a, T: FromSql<'a>>(
            row: &'a tokio_postgres::Row,
            i: usize,
            f: impl FnOnce(T) -> PgValue,
        ) -> Result<PgValue, tokio_postgres::Error> {
            Ok(row.try_get::<_, Option<T>>(i)?.map_or(PgValue::Null, f))
        }
        match ty {
            PgType::Bool => get(row, i, PgValue::Bool),
            PgType::Int2 => get(row, i, PgValue::Int2),
            PgType::Int4 => get(row, i, PgValue::Int4),
            PgType::Int8 => get(row, i, PgValue::Int8),
            PgType::Float4 => get(row, i, PgValue::Float4),
            PgType::Float8 => get(row, i, PgValue::Float8),
            PgType::Text => get(row, i, |t: Raw<'_>| {
                let bytes = if t.jsonb { &t.bytes[1..] } else { t.bytes };
                PgValue::Text(String::from_utf8_lossy(bytes).into_owned())
            }),
            PgType::Bytea => get(row, i, |b: Vec<u8>| PgValue::Bytea(b)),
            PgType::Numeric => get(row, i, |n: Raw<'_>| {
                PgValue::Numeric(decode_numeric(n.bytes).unwrap_or_else(|e| format!("<{e}>")))
            }),
            PgType::Timestamp | PgType::TimestampTz => get(row, i, |t: Raw<'_>| {
                let micros = be_i64(t.bytes).saturating_add(PG_EPOCH_MICROS);
                PgValue::Timestamp(micros.div_euclid(1000))
            }),
            PgType::Date => get(row, i, |d: Raw<'_>| {
                PgValue::Date((be_i64(d.bytes) as i32).saturating_add(PG_EPOCH_DAYS))
            }),
        }
    }
}

/// A column's raw binary value (for the types decoded here).
struct Raw<'a> {
    bytes: &'a [u8],
    jsonb: bool,
}

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxedError> {
        if *ty == Type::JSONB && raw.first() != Some(&1) {
            return Err("unknown jsonb version".into());
        }
        Ok(Raw {
            bytes: raw,
            jsonb: *ty == Type::JSONB,
        })
    }

    fn accepts(ty: &Type) -> bool {
        PgType::from_type(ty).is_some()
    }
}

/// A big-endian integer of 4 or 8 bytes (dates are 4, timestamps 8).
fn be_i64(b: &[u8]) -> i64 {
    match b.len() {
        4 => i64::from(i32::from_be_bytes(b.try_into().expect("4 bytes"))),
        8 => i64::from_be_bytes(b.try_into().expect("8 bytes")),
        _ => 0,
    }
}

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// PostgreSQL's binary NUMERIC of a plain decimal text (`-12.340`, `.5`, `7`, `NaN`):
/// base-10000 digits, the weight of the first, the sign and the display scale (the digits
/// after the point, as written).
pub(crate) fn encode_numeric(text: &str) -> Result<Vec<u8>, BoxedError> {
    let header = |ndigits: i16, weight: i16, sign: u16, dscale: u16| {
        let mut v = Vec::with_capacity(8 + 2 * ndigits.max(0) as usize);
        v.extend_from_slice(&ndigits.to_be_bytes());
        v.extend_from_slice(&weight.to_be_bytes());
        v.extend_from_slice(&sign.to_be_bytes());
        v.extend_from_slice(&dscale.to_be_bytes());
        v
    };
    let t = text.trim();
    match t.to_ascii_lowercase().as_str() {
        "nan" => return Ok(header(0, 0, NUMERIC_NAN, 0)),
        "infinity" | "+infinity" => return Ok(header(0, 0, NUMERIC_PINF, 0)),
        "-infinity" => return Ok(header(0, 0, NUMERIC_NINF, 0)),
        _ => {}
    }
    let bad = || -> BoxedError { format!("'{text}' is not a plain decimal number").into() };
    let (negative, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || frac_part.len() > 16383
    {
        return Err(bad());
    }
    let dscale = frac_part.len() as u16;
    let int_part = int_part.trim_start_matches('0');
    // Base-10000 groups: the integer part padded on the left, the fraction on the right.
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let digits_text = format!(
        "{}{int_part}{frac_part}{}",
        "0".repeat(int_pad),
        "0".repeat(frac_pad)
    );
    let mut groups: Vec<i16> = digits_text
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let int_groups = (int_part.len() + int_pad) / 4;
    let mut weight = int_groups as i32 - 1;
    // Leading and trailing zero groups carry nothing.
    let lead = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..lead);
    weight -= lead as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        return Ok(header(0, 0, NUMERIC_POS, dscale));
    }
    let weight = i16::try_from(weight).map_err(|_| bad())?;
    let ndigits = i16::try_from(groups.len()).map_err(|_| bad())?;
    let sign = if negative { NUMERIC_NEG } else { NUMERIC_POS };
    let mut v = header(ndigits, weight, sign, dscale);
    for g in groups {
        v.extend_from_slice(&g.to_be_bytes());
    }
    Ok(v)
}

/// The plain decimal text of PostgreSQL's binary NUMERIC (with its display scale).
pub(crate) fn decode_numeric(raw: &[u8]) -> Result<String, String> {
    if raw.len() < 8 {
        return Err("short numeric".into());
    }
    let word = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    let ndigits = word(0) as usize;
    let weight = word(2) as i16 as i32;
    let sign = word(4);
    let dscale = word(6) as usize;
    match sign {
        NUMERIC_NAN => return Ok("NaN".into()),
        NUMERIC_PINF => return Ok("Infinity".into()),
        NUMERIC_NINF => return Ok("-Infinity".into()),
        _ => {}
    }
    if raw.len() < 8 + 2 * ndigits {
        return Err("short numeric".into());
    }
    let digit = |i: i32| -> u16 {
        if i < 0 || i as usize >= ndigits {
            0
        } else {
            word(8 + 2 * i as usize)
        }
    };
    let mut s = String::new();
    if sign == NUMERIC_NEG {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                s.push_str(&digit(0).to_string());
            } else {
                s.push_str(&format!("{:04}", digit(i)));
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", digit(i)));
            i += 1;
        }
        s.push_str(&frac[..dscale]);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_round_trips_through_the_binary_format() {
        for (text, back) in [
            ("0", "0"),
            ("7", "7"),
            ("-12.340", "-12.340"),
            ("12345678.9", "12345678.9"),
            ("0.0001", "0.0001"),
            (".5", "0.5"),
            ("+10000", "10000"),
            ("100000000", "100000000"),
            ("-0.00", "0.00"),
            ("0.000012345", "0.000012345"),
            (
                "99999999999999999999999.99999",
                "99999999999999999999999.99999",
            ),
            ("NaN", "NaN"),
        ] {
            let raw = encode_numeric(text).unwrap();
            assert_eq!(decode_numeric(&raw).unwrap(), back, "{text}");
        }
        for bad in ["", "-", "1e5", "1.2.3", "12a", "."] {
            assert!(encode_numeric(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn numeric_binary_is_postgres_layout() {
        // 12345.678: groups 1 | 2345 . 6780, weight 1, dscale 3.
        let raw = encode_numeric("12345.678").unwrap();
        let words: Vec<u16> = raw
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(words, vec![3, 1, 0, 3, 1, 2345, 6780]);
    }

    #[test]
    fn values_fit_their_own_and_wider_column_types_only() {
        assert!(PgValue::Int4(1).check(&Type::INT8).is_ok());
        assert!(PgValue::Int8(1).check(&Type::NUMERIC).is_ok());
        assert!(PgValue::Null.check(&Type::DATE).is_ok());
        assert!(PgValue::text("{}").check(&Type::JSONB).is_ok());
        assert!(PgValue::Timestamp(0).check(&Type::TIMESTAMPTZ).is_ok());
        let e = PgValue::Int8(1).check(&Type::INT4).unwrap_err();
        assert!(e.contains("PgValue::Int4"), "{e}");
        let e = PgValue::text("x").check(&Type::INT8).unwrap_err();
        assert!(e.contains("PgValue::Int8"), "{e}");
        let e = PgValue::Numeric("1e3".into())
            .check(&Type::NUMERIC)
            .unwrap_err();
        assert!(e.contains("plain decimal"), "{e}");
    }

    #[test]
    fn timestamps_and_dates_count_from_the_unix_epoch() {
        let mut out = BytesMut::new();
        PgValue::Timestamp(0)
            .to_sql(&Type::TIMESTAMP, &mut out)
            .unwrap();
        assert_eq!(
            i64::from_be_bytes(out[..].try_into().unwrap()),
            -PG_EPOCH_MICROS
        );
        let mut out = BytesMut::new();
        PgValue::Date(PG_EPOCH_DAYS)
            .to_sql(&Type::DATE, &mut out)
            .unwrap();
        assert_eq!(i32::from_be_bytes(out[..].try_into().unwrap()), 0);
    }

    #[test]
    fn floats_are_cache_keys_by_bits() {
        use std::collections::HashSet;
        let set: HashSet<PgValue> = [PgValue::Float8(0.5), PgValue::Float8(0.5), PgValue::Int8(1)]
            .into_iter()
            .collect();
        assert_eq!(set.len(), 2);
        assert_ne!(PgValue::Int4(1), PgValue::Int8(1));
    }
}
