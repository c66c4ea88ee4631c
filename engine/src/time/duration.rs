//! Durations as Flink's configuration writes them (`TimeUtils.parseDuration`): `500ms`,
//! `10 s`, `2min`, `1h`, `1d`; a bare number is milliseconds. One parser for every flag,
//! configuration key and SQL `SET` value that takes a duration.

/// The longest duration a flag takes: longer ones are typos, and would overflow deadlines.
const MAX_DURATION_DAYS: u64 = 365;

/// Nanoseconds per unit label, as Flink's `TimeUtils.parseDuration` reads them (labels are
/// case-insensitive; a number without a label is milliseconds).
const DURATION_UNITS: &[(&[&str], u128)] = &[
    (&["ns", "nano", "nanos", "nanosecond", "nanoseconds"], 1),
    (
        &["µs", "us", "micro", "micros", "microsecond", "microseconds"],
        1_000,
    ),
    (
        &["", "ms", "milli", "millis", "millisecond", "milliseconds"],
        1_000_000,
    ),
    (&["s", "sec", "secs", "second", "seconds"], 1_000_000_000),
    (&["m", "min", "minute", "minutes"], 60_000_000_000),
    (&["h", "hour", "hours"], 3_600_000_000_000),
    (&["d", "day", "days"], 86_400_000_000_000),
];

/// Parses a duration as Flink's configuration does: a whole number, optional blanks and an
/// optional unit (`500ms`, `10 s`, `2min`, `1h`, `1d`; a bare number is **milliseconds**, as in
/// Flink), at most a year.
///
/// # Errors
/// A message naming the text and what is accepted, for text without a number, an unknown
/// unit, or more than a year.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let too_long =
        || format!("'{text}' is too long; give at most {MAX_DURATION_DAYS} days (for example 24h)");
    if number.is_empty() {
        return Err(format!(
            "'{text}' is not a duration; use for example 500ms, 10s, 2min or 1h (a bare number is milliseconds)"
        ));
    }
    let unit = unit.trim().to_lowercase();
    let Some((_, factor)) = DURATION_UNITS
        .iter()
        .find(|(labels, _)| labels.contains(&unit.as_str()))
    else {
        return Err(format!(
            "unknown unit '{unit}' in '{text}'; use ns, us, ms, s, min (or m), h or d"
        ));
    };
    let n: u128 = number.parse().map_err(|_| too_long())?;
    let nanos = n
        .checked_mul(*factor)
        .filter(|ns| *ns <= u128::from(MAX_DURATION_DAYS) * 86_400_000_000_000)
        .ok_or_else(too_long)?;
    let nanos = u64::try_from(nanos).map_err(|_| too_long())?;
    Ok(std::time::Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_like_flink_config_values() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_millis(7)));
        assert_eq!(parse_duration("10 s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2 MIN"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3 hours"), Ok(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("42ns"), Ok(Duration::from_nanos(42)));
        assert!(
            parse_duration("10 parsecs")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("not a duration")
        );
        for huge in [
            "99999999999999999h",
            "999999999999999999999999s",
            "366d",
            "9000h",
        ] {
            let err = parse_duration(huge).unwrap_err();
            assert!(
                err.contains("too long") || err.contains("unknown unit"),
                "{huge}: {err}"
            );
        }
        assert_eq!(
            parse_duration("8760h"),
            Ok(Duration::from_secs(365 * 86_400))
        );
    }
}
