//! The queries over bids joined with their auction: q4 (average winning price per category),
//! q9 (the winning bid of each auction) and q20 (bids on category-10 auctions with the
//! auction's columns).
//!
//! The SQL joins `auction` and `bid` on `A.id = B.auction` without a window (a regular join),
//! so a bid that arrives before its auction waits for it. Here the join is one
//! [`KeyedCoProcessFunction`] keyed by auction id: the auction in a value state, bids that
//! came first in a list state. Auction ids are unique, so once the auction is there its bids
//! are joined as they come and need no state (Flink's plan keeps both sides, not knowing ids
//! are unique). q4 and q9 keep the bids with `B.dateTime BETWEEN A.dateTime AND A.expires`;
//! their results are updating (see [`crate::changelog`]).

use crate::changelog::changes;
use crate::model::{Auction, Bid, Event, write_timestamp};
use crate::queries::{auctions, bids};
use fjord::state::{ListStateDescriptor, ValueStateDescriptor};
use fjord::{
    BoxError, DataStream, KeyedCoProcessFunction, KeyedProcessContext, KeyedProcessFunction,
    RuntimeContext,
};
use std::fmt::Write;

/// A bid with its auction.
type Joined = (Auction, Bid);

/// Joins each bid with its auction (`A.id = B.auction`), whichever comes first.
pub(crate) fn join(auctions: &DataStream<Auction>, bids: &DataStream<Bid>) -> DataStream<Joined> {
    (*auctions
        .connect(bids)
        .key_by(|a: &Auction| a.id, |b: &Bid| b.auction)
        .process(AuctionBidJoin::default())
        .uid("auction-bid-join")
        .name("join auction and bid"))
    .clone()
}

/// Per auction id: the auction once seen, and the bids that came before it.
#[derive(Clone, Default)]
struct AuctionBidJoin {
    rt: Option<RuntimeContext>,
}

fn auction_state() -> ValueStateDescriptor<Auction> {
    ValueStateDescriptor::new("auction")
}

fn early_bids_state() -> ListStateDescriptor<Bid> {
    ListStateDescriptor::new("early-bids")
}

impl KeyedCoProcessFunction<u64, Auction, Bid, Joined> for AuctionBidJoin {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element1(
        &mut self,
        a: Auction,
        ctx: &mut KeyedProcessContext<'_, u64, Joined>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let early = rt.get_list_state(&early_bids_state())?;
        for b in early.get() {
            ctx.collect((a.clone(), b));
        }
        early.clear();
        rt.get_state(&auction_state())?.update(a);
        Ok(())
    }

    fn process_element2(
        &mut self,
        b: Bid,
        ctx: &mut KeyedProcessContext<'_, u64, Joined>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        match rt.get_state(&auction_state())?.value() {
            Some(a) => ctx.collect((a, b)),
            None => rt.get_list_state(&early_bids_state())?.add(b),
        }
        Ok(())
    }
}

/// The SQL's `B.dateTime BETWEEN A.dateTime AND A.expires` (both ends included).
fn while_open((a, b): &Joined) -> bool {
    (a.date_time..=a.expires).contains(&b.date_time)
}

/// q4: `SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final, A.category FROM
/// auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
/// GROUP BY A.id, A.category) Q GROUP BY Q.category`: `(category, avg)`, the average an
/// integer (Flink's `AVG` of a `BIGINT` is a `BIGINT`, the quotient truncated). Updating: the
/// maximum per auction changes as bids come, and with it the category's average.
pub fn q4(events: &DataStream<Event>) -> DataStream<String> {
    let maxima = join(&auctions(events), &bids(events))
        .filter(while_open)
        .key_by(|(a, _): &Joined| a.id)
        .process(MaxPrice::default())
        .uid("q4-max")
        .name("q4 max price per auction");
    (*maxima
        .key_by(|m: &MaxChange| m.category)
        .process(AveragePerCategory::default())
        .uid("q4-avg")
        .name("q4 average per category"))
    .clone()
}

/// An auction's maximum price went from `old` (none before its first bid) to `new`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MaxChange {
    category: u64,
    old: Option<u64>,
    new: u64,
}

/// q4's inner `MAX(B.price) ... GROUP BY A.id, A.category`, emitting each change of the maximum.
#[derive(Clone, Default)]
struct MaxPrice {
    rt: Option<RuntimeContext>,
}

impl KeyedProcessFunction<u64, Joined, MaxChange> for MaxPrice {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        (a, b): Joined,
        ctx: &mut KeyedProcessContext<'_, u64, MaxChange>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let max = rt.get_state(&ValueStateDescriptor::<u64>::new("max"))?;
        let old = max.value();
        if old.is_none_or(|m| b.price > m) {
            max.update(b.price);
            ctx.collect(MaxChange {
                category: a.category,
                old,
                new: b.price,
            });
        }
        Ok(())
    }
}

/// q4's outer `AVG(Q.final) ... GROUP BY Q.category`: the sum and count of the auctions'
/// maxima, updated by each change of a maximum.
#[derive(Clone, Default)]
struct AveragePerCategory {
    rt: Option<RuntimeContext>,
}

impl KeyedProcessFunction<u64, MaxChange, String> for AveragePerCategory {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        m: MaxChange,
        ctx: &mut KeyedProcessContext<'_, u64, String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let acc = rt.get_state(&ValueStateDescriptor::<(u64, u64)>::new("sum-count"))?;
        let (sum, count) = acc.value().unwrap_or((0, 0));
        let row =
            |sum: u64, count: u64| (count > 0).then(|| format!("{},{}", m.category, sum / count));
        let before = row(sum, count);
        let (sum, count) = match m.old {
            Some(old) => (sum - old + m.new, count),
            None => (sum + m.new, count + 1),
        };
        acc.update((sum, count));
        for c in changes(before.as_deref(), row(sum, count).as_deref()) {
            ctx.collect(c);
        }
        Ok(())
    }
}

/// q9: per auction the bid with the highest price (the earliest of equal ones) among those
/// between the auction's `dateTime` and `expires` (`ROW_NUMBER() OVER (PARTITION BY A.id ORDER
/// BY B.price DESC, B.dateTime ASC) <= 1`): the auction's columns, then `auction, bidder,
/// price, bid_dateTime, bid_extra`. Updating: a higher bid replaces the winner.
pub fn q9(events: &DataStream<Event>) -> DataStream<String> {
    (*join(&auctions(events), &bids(events))
        .filter(while_open)
        .key_by(|(a, _): &Joined| a.id)
        .process(WinningBid::default())
        .uid("q9-winner")
        .name("q9 winning bid per auction"))
    .clone()
}

/// q9's rank: the winning bid so far (price, time) and its row.
#[derive(Clone, Default)]
struct WinningBid {
    rt: Option<RuntimeContext>,
}

impl KeyedProcessFunction<u64, Joined, String> for WinningBid {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        (a, b): Joined,
        ctx: &mut KeyedProcessContext<'_, u64, String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let best = rt.get_state(&ValueStateDescriptor::<(u64, i64, String)>::new("winner"))?;
        let old = best.value();
        // Only a strictly better bid wins: of equal ones the first stays (ROW_NUMBER keeps
        // the row already ranked first).
        let better = old.as_ref().is_none_or(|(price, time, _)| {
            b.price > *price || (b.price == *price && b.date_time < *time)
        });
        if better {
            let mut row = auction_columns(&a);
            let _ = write!(row, ",{},{},{},", b.auction, b.bidder, b.price);
            write_timestamp(&mut row, b.date_time);
            row.push(',');
            row.push_str(&b.extra);
            for c in changes(old.as_ref().map(|o| o.2.as_str()), Some(&row)) {
                ctx.collect(c);
            }
            best.update((b.price, b.date_time, row));
        }
        Ok(())
    }
}

/// `id, itemName, description, initialBid, reserve, dateTime, expires, seller, category,
/// extra` of an auction.
fn auction_columns(a: &Auction) -> String {
    let mut s = format!(
        "{},{},{},{},{},",
        a.id, a.item_name, a.description, a.initial_bid, a.reserve
    );
    write_timestamp(&mut s, a.date_time);
    s.push(',');
    write_timestamp(&mut s, a.expires);
    let _ = write!(s, ",{},{},{}", a.seller, a.category, a.extra);
    s
}

/// q20: bids on auctions of category 10 with the auction's columns: `auction, bidder, price,
/// channel, url, B.dateTime, B.extra, itemName, description, initialBid, reserve, A.dateTime,
/// expires, seller, category, A.extra` (an insert-only regular join).
pub fn q20(events: &DataStream<Event>) -> DataStream<String> {
    let category_10 = auctions(events).filter(|a: &Auction| a.category == 10);
    (*join(&category_10, &bids(events)).map(|(a, b): Joined| {
        let mut s = format!(
            "{},{},{},{},{},",
            b.auction, b.bidder, b.price, b.channel, b.url
        );
        write_timestamp(&mut s, b.date_time);
        let _ = write!(
            s,
            ",{},{},{},{},{},",
            b.extra, a.item_name, a.description, a.initial_bid, a.reserve
        );
        write_timestamp(&mut s, a.date_time);
        s.push(',');
        write_timestamp(&mut s, a.expires);
        let _ = write!(s, ",{},{},{}", a.seller, a.category, a.extra);
        s
    }))
    .clone()
}
