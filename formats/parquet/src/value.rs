//! The values of one row, as the writer takes them and the reader returns them.

/// One field of a row. Each column takes the variants of its type (see
/// [`ColumnType`](crate::ColumnType)); any column takes [`Value::Null`] if it is nullable.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL.
    Null,
    /// A BOOLEAN.
    Boolean(bool),
    /// A TINYINT, SMALLINT, INT or BIGINT (checked against the column's range).
    Integer(i64),
    /// A FLOAT.
    Float(f32),
    /// A DOUBLE.
    Double(f64),
    /// A STRING.
    String(String),
    /// A BYTES value.
    Bytes(Vec<u8>),
    /// A DECIMAL: `unscaled × 10^-scale` (rescaled to the column's scale if it differs and
    /// fits exactly).
    Decimal {
        /// The digits as an integer.
        unscaled: i128,
        /// Digits after the point.
        scale: u8,
    },
    /// A DATE: days since 1970-01-01.
    Date(i32),
    /// A TIME: milliseconds of the day.
    Time(i32),
    /// A TIMESTAMP without time zone: milliseconds since 1970-01-01 00:00:00.
    Timestamp(i64),
}

/// The Julian day of 1970-01-01.
const JULIAN_EPOCH_DAY: i64 = 2_440_588;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// A timestamp in milliseconds as INT96: nanoseconds of the day (low, high 32 bits) and the
/// Julian day, as Hive, Spark and Flink store it.
pub fn millis_to_int96(millis: i64) -> [u32; 3] {
    let day = millis.div_euclid(MILLIS_PER_DAY);
    let nanos = millis.rem_euclid(MILLIS_PER_DAY) * 1_000_000;
    [
        nanos as u32,
        (nanos >> 32) as u32,
        (day + JULIAN_EPOCH_DAY) as u32,
    ]
}

/// The milliseconds of an INT96 timestamp (sub-millisecond nanoseconds cut off, toward the
/// past).
pub fn int96_to_millis(v: [u32; 3]) -> i64 {
    let nanos = (i64::from(v[1]) << 32) | i64::from(v[0]);
    (i64::from(v[2]) - JULIAN_EPOCH_DAY) * MILLIS_PER_DAY + nanos.div_euclid(1_000_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads `YYYY-MM-DD` as days since 1970-01-01.
pub fn parse_date(text: &str) -> Option<i32> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    i32::try_from(days_from_civil(year, month, day)).ok()
}

/// Reads `YYYY-MM-DD[ T]HH:MM:SS[.fff]` as milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (date, time) = text.split_once([' ', 'T'])?;
    let days = i64::from(parse_date(date)?);
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, f),
        None => (time, ""),
    };
    let mut parts = hms.splitn(3, ':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let s: i64 = parts.next().unwrap_or("0").parse().ok()?;
    if h > 23 || m > 59 || s > 59 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: i64 = format!("{fraction:0<3}")[..3].parse().ok()?;
    Some(days * MILLIS_PER_DAY + ((h * 60 + m) * 60 + s) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int96_round_trips_and_matches_the_julian_calendar() {
        // 1970-01-01 00:00:00 is Julian day 2440588, 0 ns.
        assert_eq!(millis_to_int96(0), [0, 0, 2_440_588]);
        for millis in [0, 1, 86_399_999, 1_704_067_201_250, -1, -86_400_001] {
            assert_eq!(int96_to_millis(millis_to_int96(millis)), millis, "{millis}");
        }
        // One millisecond before the epoch: the day before, 86399.999 s into it.
        let v = millis_to_int96(-1);
        assert_eq!(v[2], 2_440_587);
        assert_eq!(
            (u64::from(v[1]) << 32) | u64::from(v[0]),
            86_399_999_000_000
        );
    }

    #[test]
    fn dates_and_timestamps_parse() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-03-01"), Some(19_783));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(
            parse_timestamp("2024-01-01 00:00:01.25"),
            Some(1_704_067_201_250)
        );
        assert_eq!(
            parse_timestamp("2024-01-01T00:00:01"),
            Some(1_704_067_201_000)
        );
        assert_eq!(parse_timestamp("2024-01-01"), None);
    }
}
