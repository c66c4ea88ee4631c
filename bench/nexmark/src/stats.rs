//! The daily statistics reports, unbounded group aggregations of bids per day (the UTC date
//! of `dateTime`, `DATE_FORMAT(dateTime, 'yyyy-MM-dd')`): q15 per day, q16 per channel and
//! day, q17 per auction and day. Counts are split in three price ranks (below $100, below
//! $10 000, the rest); q15 and q16 count distinct bidders and auctions, overall and per rank
//! (`count(distinct bidder) filter (where ...)`), with a map state per key of the ranks each
//! bidder or auction was seen in. Updating: every bid changes its group's row (see
//! [`crate::changelog`]).

use crate::changelog::emit_update;
use crate::model::{Bid, Event, format_timestamp, write_timestamp};
use crate::queries::bids;
use fjord::state::{MapState, MapStateDescriptor, ValueState, ValueStateDescriptor};
use fjord::{BoxError, DataStream, KeyedProcessContext, KeyedProcessFunction, RuntimeContext};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// The price rank of the reports: 1 below 10 000 (cents), 2 below 1 000 000, else 3.
pub fn rank(price: u64) -> usize {
    match price {
        0..10_000 => 1,
        10_000..1_000_000 => 2,
        _ => 3,
    }
}

/// `DATE_FORMAT(dateTime, 'yyyy-MM-dd')` and `DATE_FORMAT(dateTime, 'HH:mm')`.
pub fn day_and_minute(date_time: i64) -> (String, String) {
    let t = format_timestamp(date_time);
    (t[..10].to_string(), t[11..16].to_string())
}

/// Milliseconds per day.
const DAY: i64 = 86_400_000;

/// A bid as the daily reports read it: the UTC day (days since the epoch), its minute, and
/// the numbers. It is made where the bid is read, so the bid's strings (channel, URL, extra)
/// are freed by the thread that allocated them and the records crossing to the report hold no
/// heap memory: in q15's profile a quarter of the time went to one thread freeing what
/// another had allocated (BENCHMARKS.md, session 26).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct DailyBid {
    day: i64,
    minute: u16,
    auction: u64,
    bidder: u64,
    price: u64,
}

impl From<&Bid> for DailyBid {
    fn from(b: &Bid) -> Self {
        DailyBid {
            day: b.date_time.div_euclid(DAY),
            minute: (b.date_time.rem_euclid(DAY) / 60_000) as u16,
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
        }
    }
}

/// Appends `yyyy-MM-dd` of a day number (`DATE_FORMAT(dateTime, 'yyyy-MM-dd')`).
fn push_day(out: &mut String, day: i64) {
    let start = out.len();
    write_timestamp(out, day * DAY);
    out.truncate(start + 10);
}

/// Appends `HH:mm` of a minute of the day (`DATE_FORMAT(dateTime, 'HH:mm')`).
fn push_minute(out: &mut String, minute: u16) {
    let _ = write!(out, "{:02}:{:02}", minute / 60, minute % 60);
}

/// Appends `,n` for each number (`itoa`, not `write!`: `write!` was a quarter of q15's CPU
/// time).
fn push_numbers<'a>(out: &mut String, numbers: impl IntoIterator<Item = &'a u64>) {
    let mut digits = itoa::Buffer::new();
    for &n in numbers {
        out.push(',');
        out.push_str(digits.format(n));
    }
}

/// Counts overall (index 0) and per rank (1..=3).
type Ranked = [u64; 4];

/// The counts of q15 and q16: bids, distinct bidders, distinct auctions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Counts {
    bids: Ranked,
    bidders: Ranked,
    auctions: Ranked,
}

impl Counts {
    /// Appends `,n` for each count.
    fn write(&self, out: &mut String) {
        push_numbers(
            out,
            self.bids.iter().chain(&self.bidders).chain(&self.auctions),
        );
    }
}

/// Counts `id` once overall and once per rank: `seen` holds, per id, a bit per index of
/// `counts` it was already counted in.
fn count_distinct(seen: &MapState<u64, u8>, id: u64, rank: usize, counts: &mut Ranked) {
    let before = seen.get(&id).unwrap_or(0);
    let after = before | 1 | (1 << rank);
    if after != before {
        for (i, n) in counts.iter_mut().enumerate() {
            if after & !before & (1 << i) != 0 {
                *n += 1;
            }
        }
        seen.put(id, after);
    }
}

/// The distinct-count report of q15 (key: day) and q16 (key: channel and day): the state
/// handles, taken once in `open` as in Flink.
#[derive(Clone, Default)]
struct DistinctReport {
    counts: Option<ValueState<Counts>>,
    bidders: Option<MapState<u64, u8>>,
    auctions: Option<MapState<u64, u8>>,
}

impl DistinctReport {
    fn open(&mut self, rt: &RuntimeContext) -> Result<(), BoxError> {
        self.counts = Some(rt.get_state(&ValueStateDescriptor::new("counts"))?);
        self.bidders = Some(rt.get_map_state(&MapStateDescriptor::new("bidders"))?);
        self.auctions = Some(rt.get_map_state(&MapStateDescriptor::new("auctions"))?);
        Ok(())
    }

    /// Counts `b` in the current key's group: its counts before (none for the group's first
    /// bid) and after.
    fn count(&self, b: &DailyBid) -> Result<(Option<Counts>, Counts), BoxError> {
        let (Some(state), Some(bidders), Some(auctions)) =
            (&self.counts, &self.bidders, &self.auctions)
        else {
            return Err(NOT_OPENED.into());
        };
        let old = state.value();
        let mut counts = old.clone().unwrap_or_default();
        let r = rank(b.price);
        counts.bids[0] += 1;
        counts.bids[r] += 1;
        count_distinct(bidders, b.bidder, r, &mut counts.bidders);
        count_distinct(auctions, b.auction, r, &mut counts.auctions);
        state.update(counts.clone());
        Ok((old, counts))
    }
}

/// The error of a function whose `open` did not run.
const NOT_OPENED: &str = "the report's open did not run";

/// q15's group per day.
#[derive(Clone, Default)]
struct DayReport(DistinctReport);

impl KeyedProcessFunction<i64, DailyBid, String> for DayReport {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.0.open(ctx)
    }

    fn process_element(
        &mut self,
        b: DailyBid,
        ctx: &mut KeyedProcessContext<'_, i64, String>,
    ) -> Result<(), BoxError> {
        let (old, new) = self.0.count(&b)?;
        let row = |s: &mut String, c: &Counts| {
            push_day(s, b.day);
            c.write(s);
        };
        emit_update(old.as_ref(), &new, row, |r| ctx.collect(r));
        Ok(())
    }
}

/// q15: per day `day, total_bids, rank1_bids, rank2_bids, rank3_bids, total_bidders,
/// rank1_bidders, ..., total_auctions, rank1_auctions, ...` (distinct bidders and auctions).
pub fn q15(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .map(|b: Bid| DailyBid::from(&b))
        .key_by(|b: &DailyBid| b.day)
        .process(DayReport::default())
        .uid("q15-report")
        .name("q15 report per day"))
    .clone()
}

/// q16: per channel and day `channel, day, max(minute), total_bids, ...` as q15. The latest
/// minute is part of the row, so the group's state keeps it beside the counts.
pub fn q16(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .map(|b: Bid| (DailyBid::from(&b), b.channel))
        .key_by(|(b, channel): &(DailyBid, String)| (channel.clone(), b.day))
        .process(ChannelReport::default())
        .uid("q16-report")
        .name("q16 report per channel and day"))
    .clone()
}

/// q16's group: the latest minute and the counts of [`DistinctReport`].
#[derive(Clone, Default)]
struct ChannelReport {
    latest: Option<ValueState<u16>>,
    counts: DistinctReport,
}

impl KeyedProcessFunction<(String, i64), (DailyBid, String), String> for ChannelReport {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.latest = Some(ctx.get_state(&ValueStateDescriptor::new("max-minute"))?);
        self.counts.open(ctx)
    }

    fn process_element(
        &mut self,
        (b, channel): (DailyBid, String),
        ctx: &mut KeyedProcessContext<'_, (String, i64), String>,
    ) -> Result<(), BoxError> {
        let latest = self.latest.as_ref().ok_or(NOT_OPENED)?;
        let before = latest.value();
        let minute = before.map_or(b.minute, |m| m.max(b.minute));
        if before != Some(minute) {
            latest.update(minute);
        }
        let (old, new) = self.counts.count(&b)?;
        let row = |s: &mut String, (minute, c): &(u16, Counts)| {
            s.push_str(&channel);
            s.push(',');
            push_day(s, b.day);
            s.push(',');
            push_minute(s, *minute);
            c.write(s);
        };
        // The `-U` row shows the minute as it was before this bid.
        let old = old.zip(before).map(|(c, m)| (m, c));
        emit_update(old.as_ref(), &(minute, new), row, |r| ctx.collect(r));
        Ok(())
    }
}

/// q17: per auction and day `auction, day, total_bids, rank1_bids, rank2_bids, rank3_bids,
/// min_price, max_price, avg_price, sum_price` (the average an integer, the quotient
/// truncated, as Flink's `AVG` of a `BIGINT`).
pub fn q17(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .map(|b: Bid| DailyBid::from(&b))
        .key_by(|b: &DailyBid| (b.auction, b.day))
        .process(AuctionReport::default())
        .uid("q17-report")
        .name("q17 report per auction and day"))
    .clone()
}

/// q17's group: counts per rank, min, max, sum.
#[derive(Clone, Default)]
struct AuctionReport {
    stats: Option<ValueState<PriceStats>>,
}

/// `(bids per rank, min, max, sum)`.
type PriceStats = (Ranked, u64, u64, u64);

impl KeyedProcessFunction<(u64, i64), DailyBid, String> for AuctionReport {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.stats = Some(ctx.get_state(&ValueStateDescriptor::new("stats"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        b: DailyBid,
        ctx: &mut KeyedProcessContext<'_, (u64, i64), String>,
    ) -> Result<(), BoxError> {
        let state = self.stats.as_ref().ok_or(NOT_OPENED)?;
        let row = |s: &mut String, (bids, min, max, sum): &PriceStats| {
            s.push_str(itoa::Buffer::new().format(b.auction));
            s.push(',');
            push_day(s, b.day);
            let avg = sum / bids[0];
            push_numbers(s, bids.iter().chain([min, max, &avg, sum]));
        };
        let old = state.value();
        let mut new = old.unwrap_or(([0; 4], u64::MAX, 0, 0));
        new.0[0] += 1;
        new.0[rank(b.price)] += 1;
        new.1 = new.1.min(b.price);
        new.2 = new.2.max(b.price);
        new.3 += b.price;
        emit_update(old.as_ref(), &new, row, |r| ctx.collect(r));
        state.update(new);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_and_days_follow_the_sql() {
        assert_eq!(
            [0, 9_999, 10_000, 999_999, 1_000_000].map(rank),
            [1, 1, 2, 2, 3]
        );
        let t = crate::model::parse_timestamp("2026-01-01 23:59:59.999").unwrap();
        assert_eq!(day_and_minute(t), ("2026-01-01".into(), "23:59".into()));
        assert_eq!(day_and_minute(t + 1), ("2026-01-02".into(), "00:00".into()));
    }

    #[test]
    fn daily_bids_format_as_the_timestamps_they_come_from() {
        let start = crate::model::parse_timestamp("1969-12-30 00:00:00").unwrap();
        // Every 7 minutes and 13 seconds over four days, across the epoch.
        for t in (0..800).map(|i| start + i * 433_000) {
            let b = Bid {
                auction: 1,
                bidder: 2,
                price: 3,
                channel: "Google".into(),
                url: String::new(),
                date_time: t,
                extra: String::new(),
            };
            let d = DailyBid::from(&b);
            let mut text = String::new();
            push_day(&mut text, d.day);
            text.push(' ');
            push_minute(&mut text, d.minute);
            let (day, minute) = day_and_minute(t);
            assert_eq!(text, format!("{day} {minute}"), "at {t}");
        }
    }
}
