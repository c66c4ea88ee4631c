//! SQL data types, values and rows, and their text forms (Flink's casting rules to STRING).

use crate::decimal::{self, Decimal};
use fjord::time::calendar::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::hash::{Hash, Hasher};

/// A SQL data type. Every type is nullable (`NOT NULL` is accepted in DDL and not enforced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `BOOLEAN`.
    Boolean,
    /// `TINYINT` (8 bits; arithmetic wraps at 8 bits, as Java's `byte` in Flink).
    TinyInt,
    /// `SMALLINT` (16 bits; arithmetic wraps at 16 bits).
    SmallInt,
    /// `INT` / `INTEGER` (32 bits).
    Int,
    /// `BIGINT` (64 bits).
    BigInt,
    /// `DECIMAL(precision, scale)` / `DEC` / `NUMERIC` (precision 1..=38, scale 0..=precision).
    Decimal(u8, u8),
    /// `FLOAT` (32-bit IEEE; printed as Java's `Float.toString`).
    Float,
    /// `DOUBLE` (64-bit IEEE).
    Double,
    /// `STRING` / `VARCHAR(n)` / `CHAR(n)` (length not enforced).
    String,
    /// `TIMESTAMP(3)`: milliseconds since the epoch, without time zone.
    Timestamp,
    /// `DATE`: days since 1970-01-01.
    Date,
    /// `TIME(p)`, p in 0..=3: milliseconds of the day (the fraction cut to `p` digits).
    Time(u8),
    /// `BYTES` / `VARBINARY(n)` / `BINARY(n)` (length not enforced).
    Bytes,
    /// An interval of milliseconds (`INTERVAL '5' SECOND`); only in expressions.
    Interval,
    /// `TIMESTAMP_LTZ(3)`: an instant, milliseconds since the epoch, shown in the session's
    /// time zone (`table.local-time-zone`).
    TimestampLtz,
    /// `ROW<name type, ...>`: named fields.
    Row(crate::composite::RowFields),
    /// `ARRAY<t>`: elements of one type, indexed from 1.
    Array(crate::composite::Interned<DataType>),
    /// `MAP<k, v>`: entries with distinct keys.
    Map(crate::composite::Interned<(DataType, DataType)>),
}

impl DataType {
    /// Whether values of this type are numbers.
    pub fn is_numeric(self) -> bool {
        self.numeric_rank().is_some()
    }

    /// Whether this is a ROW, ARRAY or MAP.
    pub fn is_composite(self) -> bool {
        matches!(
            self,
            DataType::Row(_) | DataType::Array(_) | DataType::Map(_)
        )
    }

    /// Whether this is TINYINT, SMALLINT, INT or BIGINT.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            DataType::TinyInt | DataType::SmallInt | DataType::Int | DataType::BigInt
        )
    }

    /// TINYINT < SMALLINT < INT < BIGINT < DECIMAL < FLOAT < DOUBLE.
    fn numeric_rank(self) -> Option<u8> {
        Some(match self {
            DataType::TinyInt => 0,
            DataType::SmallInt => 1,
            DataType::Int => 2,
            DataType::BigInt => 3,
            DataType::Decimal(..) => 4,
            DataType::Float => 5,
            DataType::Double => 6,
            _ => return None,
        })
    }

    /// The precision and scale of an exact number as a DECIMAL (Flink's: TINYINT is
    /// DECIMAL(3, 0), SMALLINT (5, 0), INT (10, 0), BIGINT (19, 0)).
    pub fn as_decimal(self) -> Option<(u8, u8)> {
        Some(match self {
            DataType::TinyInt => (3, 0),
            DataType::SmallInt => (5, 0),
            DataType::Int => (10, 0),
            DataType::BigInt => (19, 0),
            DataType::Decimal(p, s) => (p, s),
            _ => return None,
        })
    }

    /// The common type of two numeric types, as Flink's `LogicalTypeMerging`: the wider
    /// integer; a DECIMAL that holds both (integers as their DECIMAL form); FLOAT with
    /// integers; DOUBLE with DOUBLE, and FLOAT with DECIMAL. `None` unless both are numeric.
    pub fn wider_numeric(a: DataType, b: DataType) -> Option<DataType> {
        let (ra, rb) = (a.numeric_rank()?, b.numeric_rank()?);
        let decimal = |t: DataType| matches!(t, DataType::Decimal(..));
        if (decimal(a) && b == DataType::Float) || (decimal(b) && a == DataType::Float) {
            return Some(DataType::Double);
        }
        if (decimal(a) || decimal(b)) && ra <= 4 && rb <= 4 {
            let (p, s) = decimal::common_type(a.as_decimal()?, b.as_decimal()?);
            return Some(DataType::Decimal(p, s));
        }
        Some(if ra >= rb { a } else { b })
    }

    /// Whether a value of `self` may be given to `to` without a CAST (a sink column, a
    /// function argument): along TINYINT < ... < DOUBLE, and any DECIMAL to any DECIMAL
    /// (rounded; NULL when it does not fit, as Flink's implicit cast).
    pub fn casts_implicitly_to(self, to: DataType) -> bool {
        if self == to {
            return true;
        }
        match (self, to) {
            (DataType::Time(_), DataType::Time(_)) => return true,
            // Flink casts between TIMESTAMP and TIMESTAMP_LTZ implicitly (in the session time
            // zone, UTC in Fjord).
            (DataType::Timestamp, DataType::TimestampLtz)
            | (DataType::TimestampLtz, DataType::Timestamp) => return true,
            // Composites by structure: field names do not matter (`ROW(a, b)` goes into a
            // `ROW<name, city>` column), field and element types cast implicitly.
            (DataType::Row(a), DataType::Row(b)) => {
                return a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.data_type.casts_implicitly_to(y.data_type));
            }
            (DataType::Array(a), DataType::Array(b)) => return a.casts_implicitly_to(*b),
            (DataType::Map(a), DataType::Map(b)) => {
                return a.0.casts_implicitly_to(b.0) && a.1.casts_implicitly_to(b.1);
            }
            _ => {}
        }
        match (self.numeric_rank(), to.numeric_rank()) {
            (Some(a), Some(b)) => a < b || (a == 4 && b == 4),
            _ => false,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataType::Boolean => "BOOLEAN",
            DataType::TinyInt => "TINYINT",
            DataType::SmallInt => "SMALLINT",
            DataType::Int => "INT",
            DataType::BigInt => "BIGINT",
            DataType::Decimal(p, s) => return write!(f, "DECIMAL({p}, {s})"),
            DataType::Float => "FLOAT",
            DataType::Double => "DOUBLE",
            DataType::String => "STRING",
            DataType::Timestamp => "TIMESTAMP(3)",
            DataType::Date => "DATE",
            DataType::Time(p) => return write!(f, "TIME({p})"),
            DataType::Bytes => "BYTES",
            DataType::Interval => "INTERVAL",
            DataType::TimestampLtz => "TIMESTAMP_LTZ(3)",
            DataType::Row(fields) => {
                f.write_str("ROW<")?;
                crate::composite::fmt_fields(fields, f)?;
                return f.write_str(">");
            }
            DataType::Array(t) => return write!(f, "ARRAY<{}>", **t),
            DataType::Map(kv) => return write!(f, "MAP<{}, {}>", kv.0, kv.1),
        })
    }
}

/// One SQL value. `Null` is the SQL NULL of any type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A BOOLEAN.
    Boolean(bool),
    /// A TINYINT.
    TinyInt(i8),
    /// A SMALLINT.
    SmallInt(i16),
    /// An INT.
    Int(i32),
    /// A BIGINT, or an INTERVAL in milliseconds.
    BigInt(i64),
    /// A DECIMAL (its precision is its column's type).
    Decimal(Decimal),
    /// A FLOAT.
    Float(f32),
    /// A DOUBLE.
    Double(f64),
    /// A STRING.
    String(String),
    /// A TIMESTAMP(3) in milliseconds since the epoch.
    Timestamp(i64),
    /// A DATE in days since 1970-01-01.
    Date(i32),
    /// A TIME: milliseconds of the day and the precision of its type (for its text).
    Time(i32, u8),
    /// A BYTES value.
    Bytes(Vec<u8>),
    /// A TIMESTAMP_LTZ(3): milliseconds since the epoch (an instant).
    TimestampLtz(i64),
    /// A ROW: one value per field.
    Row(Vec<Value>),
    /// An ARRAY.
    Array(Vec<Value>),
    /// A MAP: its entries in the order they were read or built, keys distinct.
    Map(Vec<(Value, Value)>),
}

/// A row: one value per column of its schema.
pub type Row = Vec<Value>;

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Boolean(a), Value::Boolean(b)) => a == b,
            (Value::TinyInt(a), Value::TinyInt(b)) => a == b,
            (Value::SmallInt(a), Value::SmallInt(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::BigInt(a), Value::BigInt(b)) => a == b,
            (Value::Decimal(a), Value::Decimal(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            // Keys group equal doubles together; bitwise keeps Eq and Hash consistent.
            (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            (Value::Date(a), Value::Date(b)) => a == b,
            (Value::Time(a, _), Value::Time(b, _)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::TimestampLtz(a), Value::TimestampLtz(b)) => a == b,
            (Value::Row(a), Value::Row(b)) | (Value::Array(a), Value::Array(b)) => a == b,
            // Maps are equal when they hold the same entries, in any order (as Flink's).
            (Value::Map(a), Value::Map(b)) => a.len() == b.len() && a.iter().all(|e| b.contains(e)),
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Boolean(b) => b.hash(state),
            Value::TinyInt(i) => i.hash(state),
            Value::SmallInt(i) => i.hash(state),
            Value::Int(i) => i.hash(state),
            Value::BigInt(i) | Value::Timestamp(i) => i.hash(state),
            Value::Decimal(d) => d.hash(state),
            Value::Float(f) => f.to_bits().hash(state),
            Value::Double(d) => d.to_bits().hash(state),
            Value::String(s) => s.hash(state),
            Value::Date(d) => d.hash(state),
            Value::Time(ms, _) => ms.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::TimestampLtz(i) => i.hash(state),
            Value::Row(vs) | Value::Array(vs) => vs.hash(state),
            // Order-independent, as equality: the number of entries only.
            Value::Map(entries) => entries.len().hash(state),
        }
    }
}

impl Value {
    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The milliseconds since the epoch of a `TIMESTAMP(3)` or `TIMESTAMP_LTZ(3)` (what a
    /// rowtime or window bound holds); `None` for NULL or any other value.
    pub fn epoch_ms(&self) -> Option<i64> {
        match self {
            Value::Timestamp(ms) | Value::TimestampLtz(ms) => Some(*ms),
            _ => None,
        }
    }

    /// The value as Flink's `CAST(x AS STRING)` writes it; `None` for NULL.
    pub fn to_sql_string(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Value::TinyInt(i) => i.to_string(),
            Value::SmallInt(i) => i.to_string(),
            Value::Int(i) => i.to_string(),
            Value::BigInt(i) => i.to_string(),
            Value::Decimal(d) => d.to_plain_string(),
            Value::Float(f) => format_float(*f),
            Value::Double(d) => format_double(*d),
            Value::String(s) => s.clone(),
            Value::Timestamp(ms) => format_timestamp(*ms),
            Value::Date(days) => format_date(*days),
            Value::Time(ms, p) => format_time(*ms, *p),
            // As Flink 2.3: the bytes read as UTF-8.
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::TimestampLtz(ms) => format_timestamp(*ms),
            Value::Row(_) | Value::Array(_) | Value::Map(_) => {
                return crate::composite::composite_text(self);
            }
        })
    }

    /// The value as a DOUBLE, for numbers.
    pub fn as_f64(&self) -> Option<f64> {
        Some(match self {
            Value::TinyInt(i) => f64::from(*i),
            Value::SmallInt(i) => f64::from(*i),
            Value::Int(i) => f64::from(*i),
            Value::BigInt(i) => *i as f64,
            Value::Decimal(d) => d.to_f64(),
            Value::Float(f) => f64::from(*f),
            Value::Double(d) => *d,
            _ => return None,
        })
    }

    /// The value as a 64-bit integer, for integers and timestamps (milliseconds).
    pub fn as_i64(&self) -> Option<i64> {
        Some(match self {
            Value::TinyInt(i) => i64::from(*i),
            Value::SmallInt(i) => i64::from(*i),
            Value::Int(i) => i64::from(*i),
            Value::BigInt(i) | Value::Timestamp(i) | Value::TimestampLtz(i) => *i,
            _ => return None,
        })
    }
}

/// A float as Java 17's `Float.toString` writes it (`1.5`, `0.1`, `1.0E10`, `1.2345678E7`,
/// and `3.33333325E9`): the shortest digits that read back as the same float, except for
/// whole numbers of at least 2^26, which Java 17 (the JVM Flink 2.3 runs on; Java 19 changed
/// it) prints from the exact integer, dropping only `floor(log10(2^(e-25)))` digits.
pub fn format_float(f: f32) -> String {
    java_number_text(
        f.is_nan(),
        f.is_infinite(),
        f > 0.0,
        f64::from(f.abs()),
        || match java17_integer_float_digits(f) {
            Some((digits, exp)) => {
                let zeros = (exp + 1).saturating_sub(digits.len());
                let plain = format!("{}{digits}{}", sign(f), "0".repeat(zeros));
                let (first, rest) = digits.split_at(1);
                let point = if rest.is_empty() { "" } else { "." };
                (plain, format!("{}{first}{point}{rest}e{exp}", sign(f)))
            }
            None => (format!("{f}"), format!("{f:e}")),
        },
    )
}

fn sign(f: f32) -> &'static str {
    if f < 0.0 { "-" } else { "" }
}

/// Java 17's `FloatingDecimal` fast path for a float that is a whole number below 2^63:
/// the integer's digits, rounded half up after dropping the "insignificant" ones, without
/// trailing zeros, and the decimal exponent of the first digit. `None` for other floats.
fn java17_integer_float_digits(f: f32) -> Option<(String, usize)> {
    let a = f.abs();
    if a == 0.0 || !a.is_finite() || a.fract() != 0.0 || a >= 9.223_372e18 {
        return None;
    }
    let v = a as u64;
    let bin_exp = 63 - v.leading_zeros();
    // insignificantDigitsForPow2(binExp - 24 - 1): digits of 2^p minus one, for p > 1.
    let p = bin_exp.saturating_sub(25);
    let insignificant = if bin_exp > 24 && p > 1 {
        (1u64 << p).to_string().len() - 1
    } else {
        0
    };
    let pow10 = 10u64.pow(insignificant as u32);
    let mut kept = v / pow10;
    if v % pow10 >= pow10 / 2 && insignificant > 0 {
        kept += 1;
    }
    let text = kept.to_string();
    let exp = text.len() - 1 + insignificant;
    Some((text.trim_end_matches('0').to_string(), exp))
}

/// A double as Java's `Double.toString` writes it (`1.5`, `100.0`, `1.0E10`, `NaN`).
pub fn format_double(d: f64) -> String {
    java_number_text(d.is_nan(), d.is_infinite(), d > 0.0, d.abs(), || {
        (format!("{d}"), format!("{d:e}"))
    })
}

/// Java's layout of the shortest digits: plain for 10^-3 <= |x| < 10^7, else `d.dddEn`.
fn java_number_text(
    nan: bool,
    infinite: bool,
    positive: bool,
    abs: f64,
    texts: impl Fn() -> (String, String),
) -> String {
    if nan {
        return "NaN".into();
    }
    if infinite {
        return if positive { "Infinity" } else { "-Infinity" }.into();
    }
    let (plain, scientific) = texts();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = plain;
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = scientific;
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_string()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// `yyyy-MM-dd`, as Flink casts a DATE to STRING (and its formats and print connector write it).
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(i64::from(days));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `yyyy-MM-dd` (month and day may have one digit) into days since 1970-01-01;
/// `None` if it is not such a date.
pub fn parse_date(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.contains([' ', 'T', ':']) {
        return None;
    }
    let days = parse_timestamp(text)? / MS_PER_DAY;
    let (y, m, d) = civil_from_days(days);
    // parse_timestamp accepts day 31 of any month; a date must exist.
    let written: Vec<i64> = text.split('-').filter_map(|p| p.parse().ok()).collect();
    (written == [y, m, d]).then_some(days as i32)
}

/// As Flink 2.3 casts a TIME(p) to STRING: `HH:mm:ss`, and for p > 0 the fraction without
/// trailing zeros but at least one digit (`00:00:01.0`, `00:00:11.25`).
pub fn format_time(ms: i32, precision: u8) -> String {
    let (h, m, s, millis) = time_fields(ms);
    let mut out = format!("{h:02}:{m:02}:{s:02}");
    if precision > 0 {
        let frac = format!("{millis:03}");
        let frac = frac.trim_end_matches('0');
        out.push('.');
        out.push_str(if frac.is_empty() { "0" } else { frac });
    }
    out
}

/// `HH:mm:ss` and the fraction without trailing zeros, as Flink's CSV and JSON formats
/// write a TIME (`01:02:03.5`, `00:00:00`).
pub fn format_time_compact(ms: i32) -> String {
    let (h, m, s, millis) = time_fields(ms);
    let mut out = format!("{h:02}:{m:02}:{s:02}");
    if millis != 0 {
        let frac = format!("{millis:03}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out
}

/// As Java's `LocalTime.toString` (Flink's print connector): `12:00`, `12:34:56`,
/// `01:02:03.500`.
pub fn format_time_iso(ms: i32) -> String {
    let (h, m, s, millis) = time_fields(ms);
    match (s, millis) {
        (0, 0) => format!("{h:02}:{m:02}"),
        (_, 0) => format!("{h:02}:{m:02}:{s:02}"),
        _ => format!("{h:02}:{m:02}:{s:02}.{millis:03}"),
    }
}

fn time_fields(ms: i32) -> (i32, i32, i32, i32) {
    let ms = ms.rem_euclid(MS_PER_DAY as i32);
    (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// Parses `HH:mm[:ss[.fraction]]` into milliseconds of the day (digits past milliseconds
/// are cut); `None` if it is not such a time.
pub fn parse_time(text: &str) -> Option<i32> {
    let text = text.trim();
    let (hms, frac) = match text.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let mut fields = hms.split(':');
    let mut field = |max: i32| -> Option<i32> {
        let f = fields.next()?;
        if f.len() != 2 || !f.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i32 = f.parse().ok()?;
        (v <= max).then_some(v)
    };
    let h = field(23)?;
    let m = field(59)?;
    let s = field(59).unwrap_or(0);
    if fields.next().is_some() {
        return None;
    }
    let mut ms = ((h * 60 + m) * 60 + s) * 1000;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) || hms.len() != 8 {
            return None;
        }
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        ms += digits.parse::<i32>().ok()?;
    }
    Some(ms)
}

/// A TIME cut to `precision` fraction digits (Flink truncates).
pub fn truncate_time(ms: i32, precision: u8) -> i32 {
    let unit = 10i32.pow(3 - u32::from(precision.min(3)));
    ms - ms.rem_euclid(unit)
}

/// The time of day of a TIMESTAMP(3), in milliseconds.
pub fn time_of_timestamp(ms: i64) -> i32 {
    ms.rem_euclid(MS_PER_DAY) as i32
}

/// The day of a TIMESTAMP(3) (its date part).
pub fn date_of_timestamp(ms: i64) -> i32 {
    ms.div_euclid(MS_PER_DAY) as i32
}

/// The TIMESTAMP(3) of midnight at the start of a DATE.
pub fn timestamp_of_date(days: i32) -> i64 {
    i64::from(days) * MS_PER_DAY
}

/// `yyyy-MM-dd HH:mm:ss.SSS`, as Flink casts a TIMESTAMP(3) to STRING.
pub fn format_timestamp(ms: i64) -> String {
    let (date, millis) = split_timestamp(ms);
    format!("{date}.{millis:03}")
}

/// `yyyy-MM-dd HH:mm:ss` with the fraction only when it is not zero and without trailing
/// zeros, as Flink's CSV and JSON formats write a TIMESTAMP(3).
pub fn format_timestamp_compact(ms: i64) -> String {
    let (date, millis) = split_timestamp(ms);
    if millis == 0 {
        date
    } else {
        let frac = format!("{millis:03}");
        format!("{date}.{}", frac.trim_end_matches('0'))
    }
}

/// As Java's `LocalDateTime.toString` (which Flink's print connector shows):
/// `2024-01-01T00:00`, `2024-01-01T00:00:10`, `2024-01-01T00:00:10.500`.
pub fn format_timestamp_iso(ms: i64) -> String {
    let (date, millis) = split_timestamp(ms);
    let (day, time) = date.split_once(' ').unwrap_or((&date, "00:00:00"));
    let (hm, secs) = time.rsplit_once(':').unwrap_or((time, "00"));
    let mut out = format!("{day}T{hm}");
    if secs != "00" || millis != 0 {
        out.push(':');
        out.push_str(secs);
    }
    if millis != 0 {
        out.push_str(&format!(".{millis:03}"));
    }
    out
}

fn split_timestamp(ms: i64) -> (String, i64) {
    let days = ms.div_euclid(MS_PER_DAY);
    let rest = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rest / 1000;
    (
        format!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ),
        rest % 1000,
    )
}

/// Parses `yyyy-MM-dd[ HH:mm[:ss[.fraction]]]` (a `T` may separate date and time) into
/// milliseconds since the epoch; digits past milliseconds are truncated. `None` if it is
/// not such a timestamp.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = match text.find([' ', 'T']) {
        Some(i) => (&text[..i], Some(text[i + 1..].trim())),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, m, d) * MS_PER_DAY;
    if let Some(time) = time {
        let (hms, frac) = match time.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (time, None),
        };
        let mut fields = hms.split(':');
        let h: i64 = fields.next()?.parse().ok()?;
        let min: i64 = fields.next()?.parse().ok()?;
        let s: i64 = match fields.next() {
            Some(s) => s.parse().ok()?,
            None => 0,
        };
        if fields.next().is_some() || h > 23 || min > 59 || s > 59 {
            return None;
        }
        ms += ((h * 60 + min) * 60 + s) * 1000;
        if let Some(frac) = frac {
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            ms += digits.parse::<i64>().ok()?;
        }
    }
    Some(ms)
}

/// A column of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// The column's name (case-sensitive, as in Flink SQL).
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Whether it is an event-time attribute (a rowtime column with a watermark).
    pub rowtime: bool,
}

/// The columns of a table or of an intermediate result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schema {
    /// The columns in order.
    pub columns: Vec<Column>,
}

impl Schema {
    /// A schema of named columns of these types (none of them a rowtime).
    pub fn of(columns: &[(&str, DataType)]) -> Schema {
        Schema {
            columns: columns
                .iter()
                .map(|(name, data_type)| Column {
                    name: name.to_string(),
                    data_type: *data_type,
                    rowtime: false,
                })
                .collect(),
        }
    }

    /// The index of a column by exact name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.columns.iter().position(|c| c.name == name) {
            return Some(i);
        }
        // The columns of a join are named `qualifier.column`; a bare name finds the one
        // column of that name (several: ambiguous, see `ambiguous`).
        match self.qualified(name).as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }

    /// The join columns (`a.name`, `b.name`) a bare `name` could mean.
    fn qualified(&self, name: &str) -> Vec<usize> {
        if name.contains('.') {
            return Vec::new();
        }
        let suffix = format!(".{name}");
        (0..self.columns.len())
            .filter(|&i| self.columns[i].name.ends_with(&suffix))
            .collect()
    }

    /// The qualified names a bare `name` could mean when it is ambiguous (two joined tables
    /// both have it), else nothing.
    pub fn ambiguous(&self, name: &str) -> Vec<&str> {
        let found = self.qualified(name);
        if found.len() < 2 || self.columns.iter().any(|c| c.name == name) {
            return Vec::new();
        }
        found
            .iter()
            .map(|&i| self.columns[i].name.as_str())
            .collect()
    }

    /// The column names, comma-separated (for error messages).
    pub fn names(&self) -> String {
        self.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let attr = if c.rowtime { " *ROWTIME*" } else { "" };
                format!("{} {}{attr}", c.name, c.data_type)
            })
            .collect();
        write!(f, "[{}]", cols.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_their_text_forms() {
        for (text, ms) in [
            ("1970-01-01 00:00:00.000", 0),
            ("2024-02-29 23:59:59.999", 1_709_251_199_999),
            ("1969-12-31 23:59:59.000", -1000),
        ] {
            assert_eq!(parse_timestamp(text), Some(ms), "{text}");
            assert_eq!(format_timestamp(ms), text);
        }
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:10.5"),
            Some(1_704_067_210_500)
        );
        assert_eq!(
            format_timestamp_compact(1_704_067_210_500),
            "2024-01-01 00:00:10.5"
        );
        assert_eq!(
            format_timestamp_compact(1_704_067_210_000),
            "2024-01-01 00:00:10"
        );
        assert_eq!(format_timestamp_iso(1_704_067_200_000), "2024-01-01T00:00");
        assert_eq!(
            format_timestamp_iso(1_704_067_210_000),
            "2024-01-01T00:00:10"
        );
        assert_eq!(
            format_timestamp_iso(1_704_067_210_500),
            "2024-01-01T00:00:10.500"
        );
        assert_eq!(parse_timestamp("2024-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn times_read_and_write_as_flink_does() {
        // Flink 2.3: CAST(TIME(3) AS STRING), its csv format and its print connector.
        let t = parse_time("00:00:11.25").unwrap();
        assert_eq!(t, 11_250);
        assert_eq!(format_time(t, 3), "00:00:11.25");
        assert_eq!(format_time(1000, 3), "00:00:01.0");
        assert_eq!(format_time(1000, 0), "00:00:01");
        assert_eq!(format_time_compact(1000), "00:00:01");
        assert_eq!(format_time_compact(3_723_500), "01:02:03.5");
        assert_eq!(format_time_iso(0), "00:00");
        assert_eq!(format_time_iso(45_296_000), "12:34:56");
        assert_eq!(format_time_iso(3_723_500), "01:02:03.500");
        assert_eq!(parse_time("12:34"), Some(45_240_000));
        assert_eq!(parse_time("23:59:59.999"), Some(86_399_999));
        assert_eq!(truncate_time(45_296_789, 0), 45_296_000);
        assert_eq!(time_of_timestamp(-1), 86_399_999);
        for bad in [
            "24:00",
            "12",
            "12:60",
            "1:00",
            "12:00:00.",
            "12:00.5",
            "alice",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates_round_trip_and_must_exist() {
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(format_date(19_782), "2024-02-29");
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(format_date(-1), "1969-12-31");
        assert_eq!(parse_date("2024-1-5"), parse_date("2024-01-05"));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-02-29 00:00:00"), None);
        assert_eq!(parse_date("today"), None);
        assert_eq!(date_of_timestamp(-1), -1);
        assert_eq!(timestamp_of_date(1), 86_400_000);
    }

    #[test]
    fn floats_print_as_java_17_does() {
        // What Flink 2.3 on Java 17 printed for these FLOAT values.
        for (f, text) in [
            (1.5f32, "1.5"),
            (0.1, "0.1"),
            (-4.5, "-4.5"),
            (1e10, "1.0E10"),
            (-1e10, "-1.0E10"),
            (12_345_678.0, "1.2345678E7"),
            (3.0e10, "3.0000001E10"),
            (3_333_333_248.0, "3.33333325E9"),
            (10_012_345_344.0, "1.00123453E10"),
            (2.416_666_7, "2.4166667"),
            (0.333_333_34, "0.33333334"),
            (20.0, "20.0"),
        ] {
            assert_eq!(format_float(f), text, "{f:?}");
        }
    }

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(100.0), "100.0");
        assert_eq!(format_double(1e10), "1.0E10");
        assert_eq!(format_double(1.25e-5), "1.25E-5");
        assert_eq!(format_double(0.0), "0.0");
    }
}
