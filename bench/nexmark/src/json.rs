//! Events as JSON lines, in the row layout of the Flink benchmark's `datagen` table
//! (`event_type`, and one of the `person`, `auction`, `bid` rows, the others `null`), with
//! timestamps as `TIMESTAMP(3)` text in UTC, so Flink SQL's `json` format reads the file with
//! the benchmark's own DDL and Fjord reads it back into [`Event`]s.

use crate::error::NexmarkError;
use crate::model::{Auction, Bid, Event, Person, parse_timestamp, write_timestamp};
use serde::Deserialize;
use std::borrow::Cow;

/// Appends `event` as one JSON line (with the newline) to `out`.
pub fn write_event(out: &mut String, event: &Event) {
    fn field_str(out: &mut String, name: &str, value: &str) {
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        // Strings are escaped by serde_json (the generator's are plain, others may not be).
        out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into()));
        out.push(',');
    }
    fn field_num(out: &mut String, name: &str, value: u64) {
        use std::fmt::Write;
        let _ = write!(out, "\"{name}\":{value},");
    }
    fn field_ts(out: &mut String, name: &str, value: i64) {
        out.push('"');
        out.push_str(name);
        out.push_str("\":\"");
        write_timestamp(out, value);
        out.push_str("\",");
    }
    fn close(out: &mut String) {
        out.pop();
        out.push('}');
    }
    out.push_str("{\"event_type\":");
    match event {
        Event::Person(p) => {
            out.push_str("0,\"person\":{");
            field_num(out, "id", p.id);
            field_str(out, "name", &p.name);
            field_str(out, "emailAddress", &p.email_address);
            field_str(out, "creditCard", &p.credit_card);
            field_str(out, "city", &p.city);
            field_str(out, "state", &p.state);
            field_ts(out, "dateTime", p.date_time);
            field_str(out, "extra", &p.extra);
            close(out);
            out.push_str(",\"auction\":null,\"bid\":null}");
        }
        Event::Auction(a) => {
            out.push_str("1,\"person\":null,\"auction\":{");
            field_num(out, "id", a.id);
            field_str(out, "itemName", &a.item_name);
            field_str(out, "description", &a.description);
            field_num(out, "initialBid", a.initial_bid);
            field_num(out, "reserve", a.reserve);
            field_ts(out, "dateTime", a.date_time);
            field_ts(out, "expires", a.expires);
            field_num(out, "seller", a.seller);
            field_num(out, "category", a.category);
            field_str(out, "extra", &a.extra);
            close(out);
            out.push_str(",\"bid\":null}");
        }
        Event::Bid(b) => {
            out.push_str("2,\"person\":null,\"auction\":null,\"bid\":{");
            field_num(out, "auction", b.auction);
            field_num(out, "bidder", b.bidder);
            field_num(out, "price", b.price);
            field_str(out, "channel", &b.channel);
            field_str(out, "url", &b.url);
            field_ts(out, "dateTime", b.date_time);
            field_str(out, "extra", &b.extra);
            close(out);
            out.push('}');
        }
    }
    out.push('\n');
}

/// One line; timestamps are borrowed from it (they are parsed, never kept).
#[derive(Deserialize)]
struct Line<'a> {
    event_type: u8,
    #[serde(borrow)]
    person: Option<PersonRow<'a>>,
    #[serde(borrow)]
    auction: Option<AuctionRow<'a>>,
    #[serde(borrow)]
    bid: Option<BidRow<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersonRow<'a> {
    id: u64,
    name: String,
    email_address: String,
    credit_card: String,
    city: String,
    state: String,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    extra: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuctionRow<'a> {
    id: u64,
    item_name: String,
    description: String,
    initial_bid: u64,
    reserve: u64,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    #[serde(borrow)]
    expires: Cow<'a, str>,
    seller: u64,
    category: u64,
    extra: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BidRow<'a> {
    auction: u64,
    bidder: u64,
    price: u64,
    channel: String,
    url: String,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    extra: String,
}

/// Parses one JSON line written by [`write_event`]: lines in exactly that layout through
/// [`crate::json_scan`], any other JSON through `serde_json`.
///
/// # Errors
/// [`NexmarkError::BadEvent`] when the line is not JSON of that layout, the row for its
/// `event_type` is missing, or a timestamp does not parse.
pub fn parse_event(line: &str) -> Result<Event, NexmarkError> {
    if let Some(event) = crate::json_scan::scan_event(line) {
        return Ok(event);
    }
    let bad = |reason: String| NexmarkError::BadEvent { reason };
    let ts = |s: &str| parse_timestamp(s).ok_or_else(|| bad(format!("bad timestamp '{s}'")));
    let l: Line<'_> = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    match (l.event_type, l.person, l.auction, l.bid) {
        (0, Some(p), _, _) => Ok(Event::Person(Person {
            id: p.id,
            name: p.name,
            email_address: p.email_address,
            credit_card: p.credit_card,
            city: p.city,
            state: p.state,
            date_time: ts(&p.date_time)?,
            extra: p.extra,
        })),
        (1, _, Some(a), _) => Ok(Event::Auction(Auction {
            id: a.id,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid,
            reserve: a.reserve,
            date_time: ts(&a.date_time)?,
            expires: ts(&a.expires)?,
            seller: a.seller,
            category: a.category,
            extra: a.extra,
        })),
        (2, _, _, Some(b)) => Ok(Event::Bid(Bid {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            url: b.url,
            date_time: ts(&b.date_time)?,
            extra: b.extra,
        })),
        (t, ..) => Err(bad(format!(
            "event_type {t} without its row (0 needs person, 1 auction, 2 bid)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NexmarkConfig;
    use crate::generator::Generator;

    #[test]
    fn every_kind_of_event_round_trips() {
        let g = Generator::new(NexmarkConfig::default());
        let mut kinds = [false; 3];
        for n in 0..200 {
            let e = g.event(n);
            kinds[e.event_type() as usize] = true;
            let mut line = String::new();
            write_event(&mut line, &e);
            assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["event_type"], e.event_type());
            assert_eq!(parse_event(line.trim_end()).unwrap(), e);
        }
        assert_eq!(kinds, [true; 3]);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, needle) in [
            ("not json", "expected"),
            (
                "{\"event_type\":2,\"person\":null,\"auction\":null,\"bid\":null}",
                "without its row",
            ),
        ] {
            let err = parse_event(line).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
