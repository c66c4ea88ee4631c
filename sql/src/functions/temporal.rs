//! Temporal functions over TIMESTAMP(3) values (milliseconds since the epoch, no time zone),
//! on the engine's calendar arithmetic (`fjord::time::calendar`).

use crate::expr::EvalError;
use fjord::time::calendar::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};

const MS_PER_DAY: i64 = 86_400_000;

/// A unit of `EXTRACT`, `FLOOR/CEIL(ts TO unit)`, `TIMESTAMPADD` and `TIMESTAMPDIFF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    /// `YEAR`
    Year,
    /// `QUARTER` (1 to 4)
    Quarter,
    /// `MONTH` (1 to 12)
    Month,
    /// `WEEK` (ISO-8601 week of the year)
    Week,
    /// `DAY` (of the month)
    Day,
    /// `HOUR`
    Hour,
    /// `MINUTE`
    Minute,
    /// `SECOND`
    Second,
    /// `MILLISECOND` (of the second)
    Millisecond,
    /// `DOW`: 1 (Sunday) to 7 (Saturday), as Flink
    DayOfWeek,
    /// `DOY`: 1 to 366
    DayOfYear,
}

impl TimeUnit {
    /// The unit's length in milliseconds, for the units of fixed length.
    fn fixed_ms(self) -> Option<i64> {
        Some(match self {
            TimeUnit::Week => 7 * MS_PER_DAY,
            TimeUnit::Day | TimeUnit::DayOfWeek | TimeUnit::DayOfYear => MS_PER_DAY,
            TimeUnit::Hour => 3_600_000,
            TimeUnit::Minute => 60_000,
            TimeUnit::Second => 1000,
            TimeUnit::Millisecond => 1,
            TimeUnit::Year | TimeUnit::Quarter | TimeUnit::Month => return None,
        })
    }

    /// Months per unit for `YEAR`, `QUARTER` and `MONTH`.
    fn months(self) -> i64 {
        match self {
            TimeUnit::Year => 12,
            TimeUnit::Quarter => 3,
            _ => 1,
        }
    }
}

fn split(ms: i64) -> (i64, (i64, i64, i64), i64) {
    let days = ms.div_euclid(MS_PER_DAY);
    (days, civil_from_days(days), ms.rem_euclid(MS_PER_DAY))
}

/// `EXTRACT(unit FROM ts)`.
pub fn extract(unit: TimeUnit, ms: i64) -> i64 {
    let (days, (y, m, d), rest) = split(ms);
    match unit {
        TimeUnit::Year => y,
        TimeUnit::Quarter => (m - 1) / 3 + 1,
        TimeUnit::Month => m,
        TimeUnit::Day => d,
        TimeUnit::Hour => rest / 3_600_000,
        TimeUnit::Minute => rest / 60_000 % 60,
        TimeUnit::Second => rest / 1000 % 60,
        TimeUnit::Millisecond => rest % 1000,
        // 1970-01-01 was a Thursday.
        TimeUnit::DayOfWeek => (days + 4).rem_euclid(7) + 1,
        TimeUnit::DayOfYear => days - days_from_civil(y, 1, 1) + 1,
        TimeUnit::Week => {
            let iso_weekday = (days + 3).rem_euclid(7) + 1;
            let thursday = days - iso_weekday + 4;
            let (iso_year, _, _) = civil_from_days(thursday);
            (thursday - days_from_civil(iso_year, 1, 1)) / 7 + 1
        }
    }
}

/// `FLOOR(ts TO unit)` (not for `WEEK`, `DOW`, `DOY`: the binder refuses them).
pub fn floor(unit: TimeUnit, ms: i64) -> i64 {
    if let Some(len) = unit.fixed_ms() {
        return ms - ms.rem_euclid(len);
    }
    let (_, (y, m, _), _) = split(ms);
    let first_month = match unit {
        TimeUnit::Year => 1,
        TimeUnit::Quarter => (m - 1) / 3 * 3 + 1,
        _ => m,
    };
    days_from_civil(y, first_month, 1) * MS_PER_DAY
}

/// `CEIL(ts TO unit)`: `ts` itself when it is on a unit boundary.
pub fn ceil(unit: TimeUnit, ms: i64) -> i64 {
    let f = floor(unit, ms);
    if f == ms { ms } else { add(unit, 1, f) }
}

fn add_months(ms: i64, months: i64) -> i64 {
    let (_, (y, m, d), rest) = split(ms);
    let total = y * 12 + (m - 1) + months;
    let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
    let last = days_from_civil(ny + nm / 12, nm % 12 + 1, 1) - days_from_civil(ny, nm, 1);
    days_from_civil(ny, nm, d.min(last)) * MS_PER_DAY + rest
}

/// `TIMESTAMPADD(unit, n, ts)`: months keep the day, or take the month's last day.
pub fn add(unit: TimeUnit, n: i64, ms: i64) -> i64 {
    match unit.fixed_ms() {
        Some(len) => ms.wrapping_add(n.wrapping_mul(len)),
        None => add_months(ms, n * unit.months()),
    }
}

/// Whole months from day `d1` to day `d0`, Calcite's `subtractMonths` on dates.
fn months_between_days(d0: i64, d1: i64) -> i64 {
    if d0 < d1 {
        return -months_between_days(d1, d0);
    }
    let add = |m: i64| add_months(d1 * MS_PER_DAY, m).div_euclid(MS_PER_DAY);
    let mut m = (d0 - d1) / 31;
    loop {
        if add(m) >= d0 || add(m + 1) > d0 {
            return m;
        }
        m += 1;
    }
}

/// Whole months from `t1` to `t0`, Calcite's `subtractMonths` on timestamps (which Flink's
/// `TIMESTAMPDIFF` uses): months between the dates, one less when the month lands on the
/// same day and `t0`'s time of day is earlier. Not symmetric: from `2024-01-31 00:00` back to
/// `2023-12-31 23:59:59.999` is -1 month, as in Flink.
fn months_between(t0: i64, t1: i64) -> i64 {
    let (d0, _, millis0) = split(t0);
    let (d1, _, millis1) = split(t1);
    let mut x = months_between_days(d0, d1);
    if add_months(d1 * MS_PER_DAY, x).div_euclid(MS_PER_DAY) == d0 && millis0 < millis1 {
        x -= 1;
    }
    x
}

/// `TIMESTAMPDIFF(unit, from, to)`: whole units from `from` to `to`, toward zero.
pub fn diff(unit: TimeUnit, from: i64, to: i64) -> i64 {
    match unit.fixed_ms() {
        Some(len) => (to - from) / len,
        None => months_between(to, from) / unit.months(),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `DATE_FORMAT(ts, format)` with Java's `DateTimeFormatter` letters `y M d H h m s S E a D`
/// (repeated for width, `MMM`/`MMMM` and `EEE`/`EEEE` for names) and `'quoted text'`.
///
/// # Errors
/// A pattern letter Fjord does not know (Java's formatter fails on it too, or means
/// something Fjord does not have, such as a time zone).
pub fn date_format(ms: i64, format: &str) -> Result<String, EvalError> {
    let (days, (y, m, d), rest) = split(ms);
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c && c.is_ascii_alphabetic() {
            n += 1;
        }
        let num = |v: i64| format!("{v:0n$}");
        match c {
            '\'' => {
                let end = chars[i + 1..].iter().position(|&q| q == '\'');
                match end {
                    Some(0) => out.push('\''),
                    Some(e) => out.extend(&chars[i + 1..i + 1 + e]),
                    None => out.extend(&chars[i + 1..]),
                }
                i += end.map_or(chars.len(), |e| e + 2);
                continue;
            }
            'y' | 'u' if n == 2 => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            'y' | 'u' => out.push_str(&num(y)),
            'M' | 'L' if n >= 4 => out.push_str(MONTHS[(m - 1) as usize]),
            'M' | 'L' if n == 3 => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            'M' | 'L' => out.push_str(&num(m)),
            'd' => out.push_str(&num(d)),
            'D' => out.push_str(&num(extract(TimeUnit::DayOfYear, ms))),
            'H' => out.push_str(&num(rest / 3_600_000)),
            'h' => out.push_str(&num((rest / 3_600_000 + 11) % 12 + 1)),
            'm' => out.push_str(&num(rest / 60_000 % 60)),
            's' => out.push_str(&num(rest / 1000 % 60)),
            'S' => {
                let millis = format!("{:03}", rest % 1000);
                out.push_str(&format!("{millis:0<n$}")[..n]);
            }
            'E' => {
                let name = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
                out.push_str(if n >= 4 { name } else { &name[..3] });
            }
            'a' => out.push_str(if rest < 12 * 3_600_000 { "AM" } else { "PM" }),
            c if c.is_ascii_alphabetic() => {
                return Err(EvalError(format!(
                    "DATE_FORMAT pattern letter '{c}' is not supported; use y M d H h m s S E a D and 'quoted text'"
                )));
            }
            c => out.push(c),
        }
        i += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::parse_timestamp;

    fn ts(s: &str) -> i64 {
        parse_timestamp(s).unwrap()
    }

    #[test]
    fn extract_fields_as_flink() {
        let t = ts("2024-03-05 13:45:30.250");
        let e = |u| extract(u, t);
        assert_eq!(
            [e(TimeUnit::Year), e(TimeUnit::Month), e(TimeUnit::Day)],
            [2024, 3, 5]
        );
        assert_eq!(
            [e(TimeUnit::Hour), e(TimeUnit::Minute), e(TimeUnit::Second)],
            [13, 45, 30]
        );
        assert_eq!(e(TimeUnit::Millisecond), 250);
        assert_eq!(e(TimeUnit::DayOfWeek), 3); // Tuesday
        assert_eq!(e(TimeUnit::DayOfYear), 65);
        assert_eq!(e(TimeUnit::Quarter), 1);
        assert_eq!(e(TimeUnit::Week), 10);
        let sunday = ts("2023-12-31 23:59:59.999");
        assert_eq!(extract(TimeUnit::DayOfWeek, sunday), 1);
        assert_eq!(extract(TimeUnit::Week, sunday), 52);
        assert_eq!(extract(TimeUnit::Week, ts("2021-01-03 00:00:00")), 53);
        assert_eq!(extract(TimeUnit::Year, ts("1969-12-31 23:00:00")), 1969);
    }

    #[test]
    fn floor_ceil_add_and_diff() {
        let t = ts("2024-03-05 13:45:30.250");
        assert_eq!(floor(TimeUnit::Hour, t), ts("2024-03-05 13:00:00"));
        assert_eq!(ceil(TimeUnit::Minute, t), ts("2024-03-05 13:46:00"));
        assert_eq!(floor(TimeUnit::Month, t), ts("2024-03-01 00:00:00"));
        assert_eq!(floor(TimeUnit::Quarter, t), ts("2024-01-01 00:00:00"));
        assert_eq!(ceil(TimeUnit::Year, t), ts("2025-01-01 00:00:00"));
        let midnight = ts("2024-02-29 00:00:00");
        assert_eq!(ceil(TimeUnit::Day, midnight), midnight);
        assert_eq!(
            add(TimeUnit::Month, 1, ts("2024-01-31 10:00:00")),
            ts("2024-02-29 10:00:00")
        );
        assert_eq!(add(TimeUnit::Year, -1, midnight), ts("2023-02-28 00:00:00"));
        assert_eq!(add(TimeUnit::Hour, 3, t), ts("2024-03-05 16:45:30.250"));
        let jan31 = ts("2024-01-31 00:00:00");
        assert_eq!(diff(TimeUnit::Month, jan31, midnight), 1);
        assert_eq!(diff(TimeUnit::Month, jan31, t), 1);
        assert_eq!(
            diff(TimeUnit::Month, jan31, ts("2023-12-31 23:59:59.999")),
            -1
        );
        assert_eq!(diff(TimeUnit::Year, ts("2020-02-29 00:00:00"), midnight), 4);
        assert_eq!(
            diff(TimeUnit::Second, ts("2024-01-01 00:00:00"), t),
            5_579_130
        );
        assert_eq!(diff(TimeUnit::Day, t, ts("2024-03-01 00:00:00")), -4);
    }

    #[test]
    fn date_format_pattern_letters() {
        let t = ts("2024-03-05 13:45:30.250");
        assert_eq!(
            date_format(t, "yyyy-MM-dd HH:mm:ss").unwrap(),
            "2024-03-05 13:45:30"
        );
        assert_eq!(
            date_format(t, "yyyyMMdd EEE SSS a hh").unwrap(),
            "20240305 Tue 250 PM 01"
        );
        assert_eq!(
            date_format(t, "yy/M/d H:m:s.S EEEE MMMM MMM D 'at' hh").unwrap(),
            "24/3/5 13:45:30.2 Tuesday March Mar 65 at 01"
        );
        assert_eq!(
            date_format(ts("2024-02-29 00:00:00"), "h a ''").unwrap(),
            "12 AM '"
        );
        assert!(date_format(t, "yyyy z").is_err());
    }
}
