//! The Nexmark events: people, auctions and bids (the schema of the Flink benchmark's
//! `datagen` table), and the SQL timestamp text both engines read and write.

use fjord::time::calendar::{civil_from_days, days_from_civil};
use serde::{Deserialize, Serialize};

/// A new person registers (`event_type` 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Unique person id (from 1000).
    pub id: u64,
    /// "First Last".
    pub name: String,
    /// A made-up address.
    pub email_address: String,
    /// Four groups of four digits.
    pub credit_card: String,
    /// A US city.
    pub city: String,
    /// A US state (two letters).
    pub state: String,
    /// Event time, milliseconds since the epoch.
    pub date_time: i64,
    /// Padding to the configured average size.
    pub extra: String,
}

/// A new auction opens (`event_type` 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    /// Unique auction id (from 1000).
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Opening price (cents).
    pub initial_bid: u64,
    /// Reserve price (cents), at least the opening price.
    pub reserve: u64,
    /// Event time, milliseconds since the epoch.
    pub date_time: i64,
    /// When the auction closes, milliseconds since the epoch.
    pub expires: i64,
    /// The seller's person id.
    pub seller: u64,
    /// Category id (10..=14).
    pub category: u64,
    /// Padding to the configured average size.
    pub extra: String,
}

/// A bid on an auction (`event_type` 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's person id.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Where the bid came from ("Google", "channel-42", ...).
    pub channel: String,
    /// The URL of the bid.
    pub url: String,
    /// Event time, milliseconds since the epoch.
    pub date_time: i64,
    /// Padding to the configured average size.
    pub extra: String,
}

/// One Nexmark event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// `event_type` 0.
    Person(Person),
    /// `event_type` 1.
    Auction(Auction),
    /// `event_type` 2.
    Bid(Bid),
}

impl Event {
    /// The event time, milliseconds since the epoch.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The `event_type` column: 0 person, 1 auction, 2 bid.
    pub fn event_type(&self) -> u8 {
        match self {
            Event::Person(_) => 0,
            Event::Auction(_) => 1,
            Event::Bid(_) => 2,
        }
    }
}

/// Formats milliseconds since the epoch as Flink SQL's `TIMESTAMP(3)` text in UTC,
/// `yyyy-MM-dd HH:mm:ss.SSS`, appending to `out`.
pub fn write_timestamp(out: &mut String, millis: i64) {
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // Outside four-digit years: the general (slower) formatting.
        use std::fmt::Write;
        let _ = write!(out, "{y:04}-{m:02}-{d:02} ");
        push_time(out, ms_of_day);
        return;
    }
    // Written digit by digit: this runs once per row of most queries, and `write!` costs
    // several times more (profile of q0 in BENCHMARKS.md).
    let mut b = [0u8; 23];
    put(&mut b[0..4], y as u64);
    b[4] = b'-';
    put(&mut b[5..7], m as u64);
    b[7] = b'-';
    put(&mut b[8..10], d as u64);
    b[10] = b' ';
    out.push_str(std::str::from_utf8(&b[..11]).unwrap_or_default());
    push_time(out, ms_of_day);
}

/// Appends `HH:mm:ss.SSS` of a millisecond of the day.
fn push_time(out: &mut String, ms_of_day: i64) {
    let ms = ms_of_day as u64;
    let mut b = *b"00:00:00.000";
    put(&mut b[0..2], ms / 3_600_000);
    put(&mut b[3..5], ms / 60_000 % 60);
    put(&mut b[6..8], ms / 1000 % 60);
    put(&mut b[9..12], ms % 1000);
    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
}

/// Writes `v` as zero-padded decimal digits filling `dst`.
fn put(dst: &mut [u8], mut v: u64) {
    for slot in dst.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Appends the decimal digits of `v` (no allocation, no formatter).
pub fn push_u64(out: &mut String, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// [`write_timestamp`] into a new string.
pub fn format_timestamp(millis: i64) -> String {
    let mut s = String::with_capacity(23);
    write_timestamp(&mut s, millis);
    s
}

/// Parses `yyyy-MM-dd HH:mm:ss[.f{1,9}]` (also with `T` between date and time) as UTC
/// milliseconds since the epoch; digits beyond milliseconds are truncated. `None` if it is not
/// such a timestamp.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    thread_local! {
        /// The last date read and its day number: events of one file share a few dates, and
        /// checking and converting the date was a twentieth of reading an event.
        static LAST_DATE: std::cell::Cell<([u8; 10], i64)> =
            const { std::cell::Cell::new(([0; 10], 0)) };
    }
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let date: [u8; 10] = b[..10].try_into().expect("checked length");
    let days = match LAST_DATE.get() {
        (last, days) if last == date => days,
        _ => {
            let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
            if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
                return None;
            }
            let days = days_from_civil(y, mo, d);
            LAST_DATE.set((date, days));
            days
        }
    };
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut ms = 0;
    if b.len() > 19 {
        if b[19] != b'.' || b.len() == 20 || b.len() > 29 {
            return None;
        }
        // Milliseconds from the first three fraction digits (fewer are scaled up).
        let mut scale = 100;
        for &c in &b[20..] {
            if !c.is_ascii_digit() {
                return None;
            }
            ms += i64::from(c - b'0') * scale;
            scale /= 10;
        }
    }
    Some(days * 86_400_000 + h * 3_600_000 + mi * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_match_known_dates() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            format_timestamp(1_767_225_600_123),
            "2026-01-01 00:00:00.123"
        );
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29 00:00:00.000");
        for ms in [0, 1, 999, 86_399_999, 1_767_225_600_123, 4_102_444_799_999] {
            assert_eq!(parse_timestamp(&format_timestamp(ms)), Some(ms), "{ms}");
        }
        assert_eq!(
            parse_timestamp("2026-01-01 00:00:01"),
            Some(1_767_225_601_000)
        );
        assert_eq!(
            parse_timestamp("2026-01-01 00:00:01.5"),
            Some(1_767_225_601_500)
        );
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:01.250000"),
            Some(1_767_225_601_250)
        );
        assert_eq!(parse_timestamp("2026-13-01 00:00:01"), None);
        assert_eq!(parse_timestamp("hello world, not a time"), None);
        assert_eq!(parse_timestamp("2026-01-01 00:00:01."), None);
        assert_eq!(parse_timestamp("2026-01-01 00:00:01.12x"), None);
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59.999");
        assert_eq!(
            format_timestamp(253_402_300_800_000),
            "10000-01-01 00:00:00.000"
        );
        let mut s = String::new();
        for v in [0, 7, 10, 12_345, u64::MAX] {
            s.clear();
            push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
