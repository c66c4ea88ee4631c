//! The fast path of [`crate::json::parse_event`]: a scanner of exactly the layout
//! [`crate::json::write_event`] writes (keys in its order, no whitespace, strings without
//! escapes). Anything else — another key order, spaces, an escaped character, a number out of
//! range — gives `None` and the caller parses the line with `serde_json` instead, so the
//! scanner only decides how fast a line is read, never what it means. Why: `serde_json` took
//! a quarter to a third of the CPU time of the simple queries (q0, q15; BENCHMARKS.md).

use crate::model::{Auction, Bid, Event, Person, parse_timestamp};

/// A position in one line.
struct Cursor<'a> {
    line: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `text` if the line continues with it.
    fn expect(&mut self, text: &str) -> Option<()> {
        self.line[self.at..].starts_with(text).then(|| {
            self.at += text.len();
        })
    }

    /// `"name":` then a string without escapes, then `,` (or nothing when `last`).
    fn string(&mut self, name: &str, last: bool) -> Option<&'a str> {
        self.key(name)?;
        self.expect("\"")?;
        let rest = &self.line[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest.as_bytes())?;
        if rest.as_bytes()[end] != b'"' {
            return None;
        }
        self.at += end + 1;
        self.separator(last)?;
        // The quote is ASCII, so both ends are character boundaries.
        Some(&rest[..end])
    }

    /// `"name":` then an unsigned integer that fits in `u64`, then the separator.
    fn number(&mut self, name: &str, last: bool) -> Option<u64> {
        self.key(name)?;
        let digits = self.line[self.at..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if digits == 0 || (digits > 1 && self.line.as_bytes()[self.at] == b'0') {
            return None;
        }
        let n = self.line[self.at..self.at + digits].parse().ok()?;
        self.at += digits;
        self.separator(last)?;
        Some(n)
    }

    /// `"name":` then a timestamp string, as UTC milliseconds.
    fn timestamp(&mut self, name: &str, last: bool) -> Option<i64> {
        parse_timestamp(self.string(name, last)?)
    }

    fn key(&mut self, name: &str) -> Option<()> {
        self.expect("\"")?;
        self.expect(name)?;
        self.expect("\":")
    }

    fn separator(&mut self, last: bool) -> Option<()> {
        if last { Some(()) } else { self.expect(",") }
    }
}

/// The event of `line` if it is in [`crate::json::write_event`]'s exact layout, else `None`.
pub fn scan_event(line: &str) -> Option<Event> {
    let mut c = Cursor { line, at: 0 };
    c.expect("{\"event_type\":")?;
    // Each kind's row, then what closes the row and the line.
    let (event, tail) = if c
        .expect("2,\"person\":null,\"auction\":null,\"bid\":{")
        .is_some()
    {
        let b = Event::Bid(Bid {
            auction: c.number("auction", false)?,
            bidder: c.number("bidder", false)?,
            price: c.number("price", false)?,
            channel: c.string("channel", false)?.to_owned(),
            url: c.string("url", false)?.to_owned(),
            date_time: c.timestamp("dateTime", false)?,
            extra: c.string("extra", true)?.to_owned(),
        });
        (b, "}}")
    } else if c.expect("1,\"person\":null,\"auction\":{").is_some() {
        let a = Event::Auction(Auction {
            id: c.number("id", false)?,
            item_name: c.string("itemName", false)?.to_owned(),
            description: c.string("description", false)?.to_owned(),
            initial_bid: c.number("initialBid", false)?,
            reserve: c.number("reserve", false)?,
            date_time: c.timestamp("dateTime", false)?,
            expires: c.timestamp("expires", false)?,
            seller: c.number("seller", false)?,
            category: c.number("category", false)?,
            extra: c.string("extra", true)?.to_owned(),
        });
        (a, "},\"bid\":null}")
    } else {
        c.expect("0,\"person\":{")?;
        let p = Event::Person(Person {
            id: c.number("id", false)?,
            name: c.string("name", false)?.to_owned(),
            email_address: c.string("emailAddress", false)?.to_owned(),
            credit_card: c.string("creditCard", false)?.to_owned(),
            city: c.string("city", false)?.to_owned(),
            state: c.string("state", false)?.to_owned(),
            date_time: c.timestamp("dateTime", false)?,
            extra: c.string("extra", true)?.to_owned(),
        });
        (p, "},\"auction\":null,\"bid\":null}")
    };
    c.expect(tail)?;
    (c.at == line.len()).then_some(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NexmarkConfig;
    use crate::generator::Generator;
    use crate::json::{parse_event, write_event};

    fn lines(n: u64) -> Vec<(Event, String)> {
        let g = Generator::new(NexmarkConfig::default());
        (0..n)
            .map(|i| {
                let e = g.event(i);
                let mut line = String::new();
                write_event(&mut line, &e);
                line.pop();
                (e, line)
            })
            .collect()
    }

    #[test]
    fn the_written_layout_scans_to_the_same_event() {
        let mut kinds = [0; 3];
        for (e, line) in lines(500) {
            kinds[e.event_type() as usize] += 1;
            assert_eq!(scan_event(&line).as_ref(), Some(&e), "{line}");
        }
        assert!(kinds.iter().all(|&k| k > 0), "{kinds:?}");
    }

    #[test]
    fn any_other_layout_is_left_to_serde_json_and_reads_the_same() {
        for (e, line) in lines(60) {
            let variants = [
                // Whitespace, an escape that means the same text, keys in another order.
                line.replacen(":", ": ", 1),
                line.replacen("\"dateTime\"", "\"date\\u0054ime\"", 1),
                line.replacen("{\"event_type\":", "{\"x\":null,\"event_type\":", 1),
            ];
            for v in &variants {
                assert_eq!(scan_event(v), None, "{v}");
            }
            // serde_json reads the first two as the same event (unknown keys are ignored too).
            for v in &variants {
                assert_eq!(parse_event(v).unwrap(), e, "{v}");
            }
        }
    }

    #[test]
    fn truncated_or_trailing_text_and_bad_numbers_are_not_scanned() {
        let (_, line) = lines(3).pop().unwrap();
        for cut in 0..line.len() {
            assert_eq!(scan_event(&line[..cut]), None, "cut at {cut}");
        }
        assert_eq!(scan_event(&format!("{line} ")), None);
        let bid = lines(60)
            .into_iter()
            .find(|(e, _)| matches!(e, Event::Bid(_)))
            .unwrap()
            .1;
        let price = |p: &str| {
            let start = bid.find("\"price\":").unwrap() + 8;
            let end = start + bid[start..].find(',').unwrap();
            format!("{}{p}{}", &bid[..start], &bid[end..])
        };
        for p in ["-1", "01", "18446744073709551616", "1.5", ""] {
            assert_eq!(scan_event(&price(p)), None, "price {p}");
        }
        let max = price("18446744073709551615");
        match scan_event(&max) {
            Some(Event::Bid(b)) => assert_eq!(b.price, u64::MAX),
            other => panic!("{other:?}"),
        }
    }
}
