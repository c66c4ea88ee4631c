//! The daily statistics reports, unbounded group aggregations of bids per day (the UTC date
//! of `dateTime`, `DATE_FORMAT(dateTime, 'yyyy-MM-dd')`): q15 per day, q16 per channel and
//! day, q17 per auction and day. Counts are split in three price ranks (below $100, below
//! $10 000, the rest); q15 and q16 count distinct bidders and auctions, overall and per rank
//! (`count(distinct bidder) filter (where ...)`), with a map state per key of the ranks each
//! bidder or auction was seen in. Updating: every bid changes its group's row (see
//! [`crate::changelog`]).

use crate::changelog::changes;
use crate::model::{Bid, Event, format_timestamp};
use crate::queries::bids;
use fjord::state::{MapStateDescriptor, ValueStateDescriptor};
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
    /// Appends `,n` for each count (`itoa`, not `write!`: this formatting was a quarter of
    /// q15's CPU time).
    fn write(&self, out: &mut String) {
        let mut digits = itoa::Buffer::new();
        for &n in self.bids.iter().chain(&self.bidders).chain(&self.auctions) {
            out.push(',');
            out.push_str(digits.format(n));
        }
    }
}

/// Counts `id` once overall and once per rank: `seen` holds, per id, a bit per index of
/// `counts` it was already counted in.
fn count_distinct(
    seen: &fjord::state::MapState<u64, u8>,
    id: u64,
    rank: usize,
    counts: &mut Ranked,
) {
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

/// The distinct-count report of q15 (key: day) and q16 (key: channel and day).
#[derive(Clone, Default)]
struct DistinctReport {
    rt: Option<RuntimeContext>,
}

impl<K: fjord::Key> KeyedProcessFunction<K, (String, Bid), String> for DistinctReport {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    /// `(prefix, bid)`: the row starts with the prefix (the group's columns), then the counts.
    fn process_element(
        &mut self,
        (prefix, b): (String, Bid),
        ctx: &mut KeyedProcessContext<'_, K, String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        // The row last emitted (prefix and counts) beside the counts, so that the update's
        // `-U` row is not formatted again.
        let state = rt.get_state(&ValueStateDescriptor::<(String, Counts)>::new("row"))?;
        let old = state.value();
        let mut counts = old.as_ref().map(|o| o.1.clone()).unwrap_or_default();
        let r = rank(b.price);
        counts.bids[0] += 1;
        counts.bids[r] += 1;
        let bidders = rt.get_map_state(&MapStateDescriptor::<u64, u8>::new("bidders"))?;
        count_distinct(&bidders, b.bidder, r, &mut counts.bidders);
        let auctions = rt.get_map_state(&MapStateDescriptor::<u64, u8>::new("auctions"))?;
        count_distinct(&auctions, b.auction, r, &mut counts.auctions);
        let mut row = prefix;
        counts.write(&mut row);
        for c in changes(old.as_ref().map(|o| o.0.as_str()), Some(&row)) {
            ctx.collect(c);
        }
        state.update((row, counts));
        Ok(())
    }
}

/// q15: per day `day, total_bids, rank1_bids, rank2_bids, rank3_bids, total_bidders,
/// rank1_bidders, ..., total_auctions, rank1_auctions, ...` (distinct bidders and auctions).
pub fn q15(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .map(|b: Bid| (day_and_minute(b.date_time).0, b))
        .key_by(|(day, _): &(String, Bid)| day.clone())
        .process(DistinctReport::default())
        .uid("q15-report")
        .name("q15 report per day"))
    .clone()
}

/// q16: per channel and day `channel, day, max(minute), total_bids, ...` as q15. The latest
/// minute is part of the row, so the group's state keeps it with the counts.
pub fn q16(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .key_by(|b: &Bid| (b.channel.clone(), day_and_minute(b.date_time).0))
        .process(ChannelReport::default())
        .uid("q16-report")
        .name("q16 report per channel and day"))
    .clone()
}

/// q16's group: the latest minute and the counts of [`DistinctReport`].
#[derive(Clone, Default)]
struct ChannelReport {
    rt: Option<RuntimeContext>,
    counts: DistinctReport,
}

impl KeyedProcessFunction<(String, String), Bid, String> for ChannelReport {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        KeyedProcessFunction::<(String, String), (String, Bid), String>::open(&mut self.counts, ctx)
    }

    fn process_element(
        &mut self,
        b: Bid,
        ctx: &mut KeyedProcessContext<'_, (String, String), String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let latest = rt.get_state(&ValueStateDescriptor::<String>::new("max-minute"))?;
        let (day, minute) = day_and_minute(b.date_time);
        let minute = match latest.value() {
            Some(m) if m >= minute => m,
            _ => {
                latest.update(minute.clone());
                minute
            }
        };
        let prefix = format!("{},{day},{minute}", b.channel);
        self.counts.process_element((prefix, b), ctx)
    }
}

/// q17: per auction and day `auction, day, total_bids, rank1_bids, rank2_bids, rank3_bids,
/// min_price, max_price, avg_price, sum_price` (the average an integer, the quotient
/// truncated, as Flink's `AVG` of a `BIGINT`).
pub fn q17(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .key_by(|b: &Bid| (b.auction, day_and_minute(b.date_time).0))
        .process(AuctionReport::default())
        .uid("q17-report")
        .name("q17 report per auction and day"))
    .clone()
}

/// q17's group: counts per rank, min, max, sum.
#[derive(Clone, Default)]
struct AuctionReport {
    rt: Option<RuntimeContext>,
}

/// `(bids per rank, min, max, sum)`.
type PriceStats = (Ranked, u64, u64, u64);

impl KeyedProcessFunction<(u64, String), Bid, String> for AuctionReport {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        b: Bid,
        ctx: &mut KeyedProcessContext<'_, (u64, String), String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let state = rt.get_state(&ValueStateDescriptor::<PriceStats>::new("stats"))?;
        let (auction, day) = ctx.current_key().clone();
        let row = |(bids, min, max, sum): &PriceStats| {
            let mut s = format!("{auction},{day}");
            for n in bids {
                let _ = write!(s, ",{n}");
            }
            let _ = write!(s, ",{min},{max},{},{sum}", sum / bids[0]);
            s
        };
        let old = state.value();
        let mut new = old.unwrap_or(([0; 4], u64::MAX, 0, 0));
        new.0[0] += 1;
        new.0[rank(b.price)] += 1;
        new.1 = new.1.min(b.price);
        new.2 = new.2.max(b.price);
        new.3 += b.price;
        for c in changes(old.as_ref().map(row).as_deref(), Some(&row(&new))) {
            ctx.collect(c);
        }
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
}
