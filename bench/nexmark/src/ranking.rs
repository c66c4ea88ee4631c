//! The `ROW_NUMBER()` queries over bids: q18 keeps the last bid of each bidder on each auction
//! (a deduplication on event time), q19 the ten highest bids of each auction with their rank.
//! Both are updating (see [`crate::changelog`]): a later or a higher bid replaces a row.

use crate::changelog::changes;
use crate::model::{Bid, Event, write_timestamp};
use crate::queries::bids;
use fjord::state::ValueStateDescriptor;
use fjord::{BoxError, DataStream, KeyedProcessContext, KeyedProcessFunction, RuntimeContext};
use std::fmt::Write;

/// `auction, bidder, price, channel, url, dateTime, extra`: every column of the `bid` view.
fn bid_row(b: &Bid) -> String {
    let mut s = format!(
        "{},{},{},{},{},",
        b.auction, b.bidder, b.price, b.channel, b.url
    );
    write_timestamp(&mut s, b.date_time);
    s.push(',');
    s.push_str(&b.extra);
    s
}

/// q18: per bidder and auction the bid with the latest `dateTime` (`ROW_NUMBER() OVER
/// (PARTITION BY bidder, auction ORDER BY dateTime DESC) <= 1`), every column of the bid.
/// As Flink's event-time deduplication, a bid at the same time as the kept one replaces it,
/// and an earlier one is ignored.
pub fn q18(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .key_by(|b: &Bid| (b.bidder, b.auction))
        .process(LastBid::default())
        .uid("q18-last")
        .name("q18 last bid per bidder and auction"))
    .clone()
}

/// q18's deduplication: the kept bid's time and row.
#[derive(Clone, Default)]
struct LastBid {
    rt: Option<RuntimeContext>,
}

impl KeyedProcessFunction<(u64, u64), Bid, String> for LastBid {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        b: Bid,
        ctx: &mut KeyedProcessContext<'_, (u64, u64), String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let last = rt.get_state(&ValueStateDescriptor::<(i64, String)>::new("last"))?;
        let old = last.value();
        if old.as_ref().is_some_and(|(time, _)| b.date_time < *time) {
            return Ok(());
        }
        let row = bid_row(&b);
        for c in changes(old.as_ref().map(|o| o.1.as_str()), Some(&row)) {
            ctx.collect(c);
        }
        last.update((b.date_time, row));
        Ok(())
    }
}

/// How many bids q19 keeps per auction.
const TOP: usize = 10;

/// q19: per auction the ten bids with the highest price (`ROW_NUMBER() OVER (PARTITION BY
/// auction ORDER BY price DESC) <= 10`), every column of the bid and `rank_number`. Of bids
/// with equal prices the earlier arrived ranks first, as in Flink's append-only top-N.
pub fn q19(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .key_by(|b: &Bid| b.auction)
        .process(TopBids::default())
        .uid("q19-top")
        .name("q19 top 10 bids per auction"))
    .clone()
}

/// q19's top 10: `(price, row)` by falling price.
#[derive(Clone, Default)]
struct TopBids {
    rt: Option<RuntimeContext>,
}

impl KeyedProcessFunction<u64, Bid, String> for TopBids {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        b: Bid,
        ctx: &mut KeyedProcessContext<'_, u64, String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let state = rt.get_state(&ValueStateDescriptor::<Vec<(u64, String)>>::new("top"))?;
        let old = state.value().unwrap_or_default();
        // After every bid with a price at least as high.
        let at = old.partition_point(|(price, _)| *price >= b.price);
        if at >= TOP {
            return Ok(());
        }
        let mut new = old.clone();
        new.insert(at, (b.price, bid_row(&b)));
        new.truncate(TOP);
        let ranked = |top: &[(u64, String)], i: usize| {
            top.get(i).map(|(_, row)| {
                let mut s = row.clone();
                let _ = write!(s, ",{}", i + 1);
                s
            })
        };
        for i in at..new.len() {
            for c in changes(
                ranked(&old[..], i).as_deref(),
                ranked(&new[..], i).as_deref(),
            ) {
                ctx.collect(c);
            }
        }
        state.update(new);
        Ok(())
    }
}
