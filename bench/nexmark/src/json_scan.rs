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

/// `"name":`, the text before a value (one comparison instead of three).
macro_rules! key {
    ($name:literal) => {
        concat!("\"", $name, "\":")
    };
}

// Every method is inlined into `scan_event`, so each comparison is with a text of known length,
// which the compiler turns into a few loads instead of a call of `memcmp` (the calls were a
// tenth of the scanner's time).
impl<'a> Cursor<'a> {
    /// Steps over `text` if the line continues with it.
    #[inline(always)]
    fn expect(&mut self, text: &str) -> Option<()> {
        let rest = &self.line.as_bytes()[self.at..];
        (rest.len() >= text.len() && rest[..text.len()] == *text.as_bytes()).then(|| {
            self.at += text.len();
        })
    }

    /// `key` (from [`key!`]) then a string without escapes, then `,` (or nothing when `last`).
    #[inline(always)]
    fn string(&mut self, key: &str, last: bool) -> Option<&'a str> {
        self.expect(key)?;
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

    /// `key` then an unsigned integer that fits in `u64` (no sign, no leading zero), then
    /// the separator. The digits are read once, overflow checked as they are added.
    #[inline(always)]
    fn number(&mut self, key: &str, last: bool) -> Option<u64> {
        self.expect(key)?;
        let digits = &self.line.as_bytes()[self.at..];
        let mut n: u64 = 0;
        let mut len = 0;
        while let Some(d) = digits.get(len).filter(|d| d.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            len += 1;
        }
        if len == 0 || (len > 1 && digits[0] == b'0') {
            return None;
        }
        self.at += len;
        self.separator(last)?;
        Some(n)
    }

    /// `key` then a timestamp string, as UTC milliseconds.
    #[inline(always)]
    fn timestamp(&mut self, key: &str, last: bool) -> Option<i64> {
        parse_timestamp(self.string(key, last)?)
    }

    /// `tail`, which closes the row and the line, then the end of the line.
    #[inline(always)]
    fn end(&mut self, tail: &str) -> Option<()> {
        self.expect(tail)?;
        (self.at == self.line.len()).then_some(())
    }

    #[inline(always)]
    fn separator(&mut self, last: bool) -> Option<()> {
        if last { Some(()) } else { self.expect(",") }
    }
}

/// The event of `line` if it is in [`crate::json::write_event`]'s exact layout, else `None`.
#[inline]
pub fn scan_event(line: &str) -> Option<Event> {
    let mut c = Cursor { line, at: 0 };
    c.expect("{\"event_type\":")?;
    // Each kind's fields are read first (strings borrowed from the line) and the event is made
    // once the whole line is known to be in the layout: nothing is allocated for a line that
    // goes to `serde_json`, and the event is built where it is returned instead of moved there.
    if c.expect("2,\"person\":null,\"auction\":null,\"bid\":{")
        .is_some()
    {
        let auction = c.number(key!("auction"), false)?;
        let bidder = c.number(key!("bidder"), false)?;
        let price = c.number(key!("price"), false)?;
        let channel = c.string(key!("channel"), false)?;
        let url = c.string(key!("url"), false)?;
        let date_time = c.timestamp(key!("dateTime"), false)?;
        let extra = c.string(key!("extra"), true)?;
        c.end("}}")?;
        Some(Event::Bid(Bid {
            auction,
            bidder,
            price,
            channel: channel.to_owned(),
            url: url.to_owned(),
            date_time,
            extra: extra.to_owned(),
        }))
    } else if c.expect("1,\"person\":null,\"auction\":{").is_some() {
        let id = c.number(key!("id"), false)?;
        let item_name = c.string(key!("itemName"), false)?;
        let description = c.string(key!("description"), false)?;
        let initial_bid = c.number(key!("initialBid"), false)?;
        let reserve = c.number(key!("reserve"), false)?;
        let date_time = c.timestamp(key!("dateTime"), false)?;
        let expires = c.timestamp(key!("expires"), false)?;
        let seller = c.number(key!("seller"), false)?;
        let category = c.number(key!("category"), false)?;
        let extra = c.string(key!("extra"), true)?;
        c.end("},\"bid\":null}")?;
        Some(Event::Auction(Auction {
            id,
            item_name: item_name.to_owned(),
            description: description.to_owned(),
            initial_bid,
            reserve,
            date_time,
            expires,
            seller,
            category,
            extra: extra.to_owned(),
        }))
    } else {
        c.expect("0,\"person\":{")?;
        let id = c.number(key!("id"), false)?;
        let name = c.string(key!("name"), false)?;
        let email_address = c.string(key!("emailAddress"), false)?;
        let credit_card = c.string(key!("creditCard"), false)?;
        let city = c.string(key!("city"), false)?;
        let state = c.string(key!("state"), false)?;
        let date_time = c.timestamp(key!("dateTime"), false)?;
        let extra = c.string(key!("extra"), true)?;
        c.end("},\"auction\":null,\"bid\":null}")?;
        Some(Event::Person(Person {
            id,
            name: name.to_owned(),
            email_address: email_address.to_owned(),
            credit_card: credit_card.to_owned(),
            city: city.to_owned(),
            state: state.to_owned(),
            date_time,
            extra: extra.to_owned(),
        }))
    }
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
