//! The Nexmark queries as Fjord DataStream jobs, each the counterpart of the Flink benchmark's
//! SQL text (`bench/nexmark/flink/qN.sql`), producing the same rows as CSV lines
//! (timestamps `yyyy-MM-dd HH:mm:ss.SSS`, UTC).
//!
//! | query | what | how |
//! | --- | --- | --- |
//! | q0 | pass-through of bids | map |
//! | q1 | bid prices in euro (`0.908 * price`, 3 decimals) | map |
//! | q2 | bids of auctions whose id is a multiple of 123 | filter + map |
//! | q3 | sellers in OR/ID/CA with auctions in category 10 | keyed co-process join with state |
//! | q5 | hot items: auctions with the most bids per 10 s window sliding by 2 s | sliding window count, then a per-window max |
//! | q7 | highest bid per 10 s window | bids keyed by window, the bids at the running maximum in state, emitted by an event-time timer |
//! | q8 | persons who opened an auction in the 10 s window they registered in | tumbling window co-group |
//! | q11 | bids per bidder session (gap 10 s) | session window count |
//! | q22 | bids with the first three directories of their URL | map |
//!
//! and, in their own modules: q4, q9, q20 over bids joined with their auction
//! ([`crate::auction_bids`]), q10, q13, q14, q21 computing columns ([`crate::projections`]),
//! q15–q17 daily reports ([`crate::stats`]), q18, q19 `ROW_NUMBER()` ranks
//! ([`crate::ranking`]). q4, q9 and q15–q19 give updating results: changelog rows
//! ([`crate::changelog`], [`UPDATING`]).

use crate::auction_bids::{q4, q9, q20};
use crate::error::NexmarkError;
use crate::model::{Auction, Bid, Event, Person, push_u64, write_timestamp};
use crate::projections::{PartitionedFiles, q10, q13, q14, q21};
use crate::ranking::{q18, q19};
use crate::source::events;
use crate::stats::{q15, q16, q17};
use fjord::state::{ListStateDescriptor, ValueStateDescriptor};
use fjord::windows::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    WindowContext,
};
use fjord::{
    AggregateFunction, BoxError, DataStream, JobArgs, JobFn, JobRegistry, KeyedCoProcessFunction,
    KeyedProcessContext, KeyedProcessFunction, RuntimeContext, StreamExecutionEnvironment,
    Timestamp, WriteMode,
};
use std::fmt::Write;
use std::time::Duration;

/// A query: builds the result rows from the events (and the job's arguments, for a query
/// that reads more than the events: q13's `--side-input`).
pub type QueryFn = fn(&DataStream<Event>, &JobArgs) -> Result<DataStream<String>, NexmarkError>;

/// Every query: name, description, builder.
pub const QUERIES: &[(&str, &str, QueryFn)] = &[
    ("q0", "pass-through of bids", |e, _| Ok(q0(e))),
    ("q1", "bid prices in euro", |e, _| Ok(q1(e))),
    (
        "q2",
        "bids on auctions whose id is a multiple of 123",
        |e, _| Ok(q2(e)),
    ),
    (
        "q3",
        "local sellers of category-10 auctions (join)",
        |e, _| Ok(q3(e)),
    ),
    (
        "q4",
        "average winning price per category (updating)",
        |e, _| Ok(q4(e)),
    ),
    (
        "q5",
        "hot items: most bids per sliding 10 s window",
        |e, _| Ok(q5(e)),
    ),
    ("q7", "highest bid per tumbling 10 s window", |e, _| {
        Ok(q7(e))
    }),
    (
        "q8",
        "new users who opened an auction (window join)",
        |e, _| Ok(q8(e)),
    ),
    ("q9", "winning bid of each auction (updating)", |e, _| {
        Ok(q9(e))
    }),
    (
        "q10",
        "bids into files partitioned by day and minute",
        |e, _| Ok(q10(e)),
    ),
    ("q11", "bids per bidder session, gap 10 s", |e, _| {
        Ok(q11(e))
    }),
    ("q13", "bids joined with a side input file", q13),
    (
        "q14",
        "bids in a price range with computed columns and a UDF",
        |e, _| Ok(q14(e)),
    ),
    ("q15", "bidding statistics per day (updating)", |e, _| {
        Ok(q15(e))
    }),
    ("q16", "channel statistics per day (updating)", |e, _| {
        Ok(q16(e))
    }),
    ("q17", "auction statistics per day (updating)", |e, _| {
        Ok(q17(e))
    }),
    (
        "q18",
        "last bid of each bidder on each auction (updating)",
        |e, _| Ok(q18(e)),
    ),
    ("q19", "top 10 bids of each auction (updating)", |e, _| {
        Ok(q19(e))
    }),
    (
        "q20",
        "bids on category-10 auctions with the auction (join)",
        |e, _| Ok(q20(e)),
    ),
    (
        "q21",
        "bids with the channel id from the channel or URL",
        |e, _| Ok(q21(e)),
    ),
    ("q22", "bids with the directories of their URL", |e, _| {
        Ok(q22(e))
    }),
];

/// The queries whose result is updating: their rows are a changelog (`+I,...`, `-U,...`,
/// `+U,...`, `-D,...`; see [`crate::changelog`]), compared with Flink's by the table they
/// leave ([`crate::compare::final_state`]).
pub const UPDATING: &[&str] = &["q4", "q9", "q15", "q16", "q17", "q18", "q19"];

/// Whether query `name` gives an updating result (see [`UPDATING`]).
pub fn is_updating(name: &str) -> bool {
    UPDATING.contains(&name)
}

/// For an updating query whose Flink plan emits an upsert changelog (`+I` and `+U` without
/// `-U`), the number of leading key columns its rows are upserted by: q9's rows by the
/// auction id. Such changelogs are compared with [`crate::compare::final_state_by_key`].
pub fn upsert_key(name: &str) -> Option<usize> {
    (name == "q9").then_some(1)
}

/// The builder of query `name`.
///
/// # Errors
/// [`NexmarkError::UnknownQuery`] listing the queries there are.
pub fn query(name: &str) -> Result<QueryFn, NexmarkError> {
    QUERIES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, f)| *f)
        .ok_or_else(|| {
            let names: Vec<&str> = QUERIES.iter().map(|(n, _, _)| *n).collect();
            NexmarkError::UnknownQuery(name.to_string(), names.join(", "))
        })
}

/// Builds the whole job of query `name`: events (see [`events`]), the query, and the sink:
/// `--output <path>` writes the rows as text (a file at parallelism 1, else a directory of
/// files; replaced if it exists; q10 writes files partitioned by day and minute, see
/// [`PartitionedFiles`]), `--blackhole` discards them (the benchmark's `blackhole`
/// connector), without either they are printed.
///
/// # Errors
/// As [`query`] and [`events`].
pub fn build_job(
    name: &str,
    env: &StreamExecutionEnvironment,
    args: &JobArgs,
) -> Result<(), NexmarkError> {
    let q = query(name)?;
    let rows = q(&events(env, args)?, args)?;
    if args.has("blackhole") {
        if args.has("output") {
            return Err(NexmarkError::Config(
                "give --output <path> or --blackhole, not both".into(),
            ));
        }
        rows.for_each(|_row: String| {})
            .name(&format!("Sink: nexmark {name} (blackhole)"));
        return Ok(());
    }
    match args.get("output") {
        Some(path) if name == "q10" => {
            rows.sink_to(
                PartitionedFiles::new(path),
                &format!("Sink: nexmark {name}"),
            );
        }
        Some(path) => {
            rows.write_as_text_with_mode(path, WriteMode::Overwrite)
                .name(&format!("Sink: nexmark {name}"));
        }
        None => {
            rows.print().name(&format!("Sink: nexmark {name}"));
        }
    }
    Ok(())
}

macro_rules! jobs {
    ($($q:ident),*) => {
        /// The registered jobs, one per query (named `nexmark-qN`).
        const JOBS: &[(&str, &str, JobFn)] = &[
            $((
                concat!("nexmark-", stringify!($q)),
                concat!(
                    "Nexmark ",
                    stringify!($q),
                    ": [--input <events file or dir> | generator keys --events.num N --tps R ...] [--output <path> | --blackhole] (docs/nexmark.md)"
                ),
                {
                    fn job(env: &StreamExecutionEnvironment, args: &JobArgs) -> fjord::Result<()> {
                        Ok(build_job(stringify!($q), env, args)?)
                    }
                    job
                },
            )),*
        ];
    };
}
jobs!(
    q0, q1, q2, q3, q4, q5, q7, q8, q9, q10, q11, q13, q14, q15, q16, q17, q18, q19, q20, q21, q22
);

/// Registers every query as the job `nexmark-qN`, and `nexmark-to-kafka`.
pub fn register(registry: &mut JobRegistry) -> &mut JobRegistry {
    for (name, description, job) in JOBS {
        registry.register(name, description, *job);
    }
    registry.register(
        crate::to_kafka::JOB,
        crate::to_kafka::DESCRIPTION,
        |env: &StreamExecutionEnvironment, args: &JobArgs| Ok(crate::to_kafka::build(env, args)?),
    );
    registry
}

pub(crate) fn bids(events: &DataStream<Event>) -> DataStream<Bid> {
    (*events.flat_map(|e: Event| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    }))
    .clone()
}

pub(crate) fn auctions(events: &DataStream<Event>) -> DataStream<Auction> {
    (*events.flat_map(|e: Event| match e {
        Event::Auction(a) => Some(a),
        _ => None,
    }))
    .clone()
}

fn persons(events: &DataStream<Event>) -> DataStream<Person> {
    (*events.flat_map(|e: Event| match e {
        Event::Person(p) => Some(p),
        _ => None,
    }))
    .clone()
}

fn ts(out: &mut String, millis: i64) {
    write_timestamp(out, millis);
}

/// q0: `SELECT auction, bidder, price, dateTime, extra FROM bid`.
pub fn q0(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events).map(|b: Bid| {
        let mut s = String::with_capacity(64 + b.extra.len());
        push_u64(&mut s, b.auction);
        s.push(',');
        push_u64(&mut s, b.bidder);
        s.push(',');
        push_u64(&mut s, b.price);
        s.push(',');
        ts(&mut s, b.date_time);
        s.push(',');
        s.push_str(&b.extra);
        s
    }))
    .clone()
}

/// q1: `SELECT auction, bidder, 0.908 * price, dateTime, extra FROM bid` (DECIMAL(23, 3)).
pub fn q1(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events).map(|b: Bid| {
        let milli_euro = b.price * 908;
        let mut s = String::with_capacity(64 + b.extra.len());
        push_u64(&mut s, b.auction);
        s.push(',');
        push_u64(&mut s, b.bidder);
        s.push(',');
        push_u64(&mut s, milli_euro / 1000);
        s.push('.');
        let frac = milli_euro % 1000;
        s.push_str(&"00"[..(frac < 100) as usize + (frac < 10) as usize]);
        push_u64(&mut s, frac);
        s.push(',');
        ts(&mut s, b.date_time);
        s.push(',');
        s.push_str(&b.extra);
        s
    }))
    .clone()
}

/// q2: `SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0`.
pub fn q2(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .filter(|b: &Bid| b.auction.is_multiple_of(123))
        .map(|b: Bid| format!("{},{}", b.auction, b.price)))
    .clone()
}

/// q3: `SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
/// WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')`: an unbounded inner join, so the
/// join keeps every matching person and every auction still waiting for its seller.
pub fn q3(events: &DataStream<Event>) -> DataStream<String> {
    let sellers = persons(events)
        .filter(|p: &Person| matches!(p.state.as_str(), "OR" | "ID" | "CA"))
        .map(|p: Person| (p.id, p.name, p.city, p.state));
    let category_10 = auctions(events)
        .filter(|a: &Auction| a.category == 10)
        .map(|a: Auction| (a.seller, a.id));
    (*sellers
        .connect(&category_10)
        .key_by(|p: &SellerRow| p.0, |a: &(u64, u64)| a.0)
        .process(LocalSellers::default())
        .uid("q3-join")
        .name("q3 join"))
    .clone()
}

type SellerRow = (u64, String, String, String);

/// q3's join: per person id, the person (once seen) and the auctions that came first.
#[derive(Clone, Default)]
struct LocalSellers {
    rt: Option<RuntimeContext>,
}

impl LocalSellers {
    fn rt(&self) -> &RuntimeContext {
        self.rt.as_ref().expect("open runs first")
    }
}

fn person_state() -> ValueStateDescriptor<SellerRow> {
    ValueStateDescriptor::new("person")
}

fn waiting_state() -> ListStateDescriptor<u64> {
    ListStateDescriptor::new("auctions")
}

impl KeyedCoProcessFunction<u64, SellerRow, (u64, u64), String> for LocalSellers {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element1(
        &mut self,
        p: SellerRow,
        ctx: &mut KeyedProcessContext<'_, u64, String>,
    ) -> Result<(), BoxError> {
        let waiting = self.rt().get_list_state(&waiting_state())?;
        for id in waiting.get() {
            ctx.collect(format!("{},{},{},{}", p.1, p.2, p.3, id));
        }
        waiting.clear();
        self.rt().get_state(&person_state())?.update(p);
        Ok(())
    }

    fn process_element2(
        &mut self,
        a: (u64, u64),
        ctx: &mut KeyedProcessContext<'_, u64, String>,
    ) -> Result<(), BoxError> {
        match self.rt().get_state(&person_state())?.value() {
            Some(p) => ctx.collect(format!("{},{},{},{}", p.1, p.2, p.3, a.1)),
            None => self.rt().get_list_state(&waiting_state())?.add(a.1),
        }
        Ok(())
    }
}

/// Counts elements.
#[derive(Clone, Copy)]
struct Count;

impl<T> AggregateFunction<T, u64, u64> for Count {
    fn create_accumulator(&mut self) -> u64 {
        0
    }
    fn add(&mut self, _: T, acc: u64) -> u64 {
        acc + 1
    }
    fn get_result(&mut self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&mut self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// q5: per `HOP(dateTime, 2 s, 10 s)` window the auctions whose bid count is the window's
/// highest: `(auction, num)`.
pub fn q5(events: &DataStream<Event>) -> DataStream<String> {
    let counts = bids(events)
        .map(|b: Bid| b.auction)
        .key_by(|a: &u64| *a)
        .window(SlidingEventTimeWindows::of(
            Duration::from_secs(10),
            Duration::from_secs(2),
        ))
        .aggregate_with_process(
            Count,
            |auction: &u64,
             ctx: &mut WindowContext<'_, TimeWindow, (u64, u64, i64)>,
             n: Vec<u64>| {
                let end = ctx.window().end;
                for n in n {
                    ctx.collect((*auction, n, end));
                }
            },
        )
        .uid("q5-counts")
        .name("q5 counts per auction and window");
    // The counts of one window carry timestamp end - 1, so a 2 s tumbling window keyed by the
    // window end gathers exactly one sliding window's counts.
    (*counts
        .key_by(|c: &(u64, u64, i64)| c.2)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(2)))
        .process(
            |_: &i64,
             ctx: &mut WindowContext<'_, TimeWindow, String>,
             all: Vec<(u64, u64, i64)>| {
                let max = all.iter().map(|c| c.1).max().unwrap_or(0);
                for (auction, n, _) in all {
                    if n >= max {
                        ctx.collect(format!("{auction},{n}"));
                    }
                }
            },
        )
        .uid("q5-max")
        .name("q5 max per window"))
    .clone()
}

/// q7: bids whose price is the highest of a `TUMBLE(dateTime, 10 s)` window, with
/// `dateTime BETWEEN window_end - 10 s AND window_end` (both ends included, as the SQL says):
/// `(auction, price, bidder, dateTime, extra)` — the SQL text selects price before bidder.
///
/// Flink's plan joins every bid with the window maxima by price and so keeps every bid in
/// state. Here bids are keyed by their window and each window keeps only the bids at its
/// running maximum, plus the bids at exactly its end time (the SQL's inclusive upper bound lets
/// them match too); an event-time timer at the window end emits the winners. Same rows, state
/// of a few bids per window.
pub fn q7(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .flat_map(|b: Bid| {
            let window = b.date_time.div_euclid(WINDOW_MS);
            // A bid at a window's end time also counts for the window that ends there.
            let boundary =
                (b.date_time.rem_euclid(WINDOW_MS) == 0).then(|| (window - 1, b.clone()));
            std::iter::once((window, b)).chain(boundary)
        })
        .key_by(|(window, _): &(i64, Bid)| *window)
        .process(HighestBids::default())
        .uid("q7-highest")
        .name("q7 highest bids per window"))
    .clone()
}

/// q7's per-window state: the running maximum, the bids at it, the bids at the window's end.
#[derive(Clone, Default)]
struct HighestBids {
    rt: Option<RuntimeContext>,
}

const WINDOW_MS: i64 = 10_000;

fn q7_best() -> ValueStateDescriptor<(u64, Vec<Bid>)> {
    ValueStateDescriptor::new("best")
}

fn q7_at_end() -> ListStateDescriptor<Bid> {
    ListStateDescriptor::new("at-end")
}

fn q7_row(b: &Bid) -> String {
    let mut s = String::with_capacity(64 + b.extra.len());
    let _ = write!(s, "{},{},{},", b.auction, b.price, b.bidder);
    ts(&mut s, b.date_time);
    s.push(',');
    s.push_str(&b.extra);
    s
}

impl KeyedProcessFunction<i64, (i64, Bid), String> for HighestBids {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        (window, b): (i64, Bid),
        ctx: &mut KeyedProcessContext<'_, i64, String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let end = (window + 1) * WINDOW_MS;
        // Timers are deduplicated per key and time: one per window.
        ctx.timer_service().register_event_time_timer(end);
        if b.date_time == end {
            rt.get_list_state(&q7_at_end())?.add(b);
            return Ok(());
        }
        let best = rt.get_state(&q7_best())?;
        match best.value() {
            Some((max, _)) if b.price < max => {}
            Some((max, mut bids)) if b.price == max => {
                bids.push(b);
                best.update((max, bids));
            }
            _ => best.update((b.price, vec![b])),
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        _end: Timestamp,
        ctx: &mut KeyedProcessContext<'_, i64, String>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().expect("open runs first");
        let best = rt.get_state(&q7_best())?;
        let at_end = rt.get_list_state(&q7_at_end())?;
        if let Some((max, bids)) = best.value() {
            for b in bids
                .iter()
                .chain(at_end.get().iter().filter(|b| b.price == max))
            {
                ctx.collect(q7_row(b));
            }
        }
        best.clear();
        at_end.clear();
        Ok(())
    }
}

/// q8: persons who opened an auction in the `TUMBLE(dateTime, 10 s)` window in which they
/// registered: `(id, name, window_start)`.
pub fn q8(events: &DataStream<Event>) -> DataStream<String> {
    let people = persons(events).map(|p: Person| (p.id, p.name));
    let sellers = auctions(events).map(|a: Auction| a.seller);
    (*people
        .co_group(&sellers)
        .where_key(|p: &(u64, String)| p.0)
        .equal_to(|s: &u64| *s)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
        .co_group(
            |_: &u64, mut ps: Vec<(u64, String)>, sellers: Vec<u64>, out: &mut Vec<String>| {
                if sellers.is_empty() {
                    return;
                }
                ps.sort();
                ps.dedup();
                for (id, name) in ps {
                    out.push(format!("{id},{name}"));
                }
            },
        )
        .uid("q8-join")
        .name("q8 window join")
        .process(AppendWindowStart))
    .clone()
}

/// Appends the start of the 10 s window a result belongs to (its timestamp is the window's
/// end − 1).
#[derive(Clone)]
struct AppendWindowStart;

impl fjord::ProcessFunction<String, String> for AppendWindowStart {
    fn process_element(
        &mut self,
        value: String,
        ctx: &mut fjord::ProcessContext<'_, String>,
    ) -> Result<(), BoxError> {
        let t = ctx
            .timestamp()
            .ok_or("a window result without a timestamp")?;
        let mut s = value;
        s.push(',');
        ts(&mut s, t + 1 - 10_000);
        ctx.collect(s);
        Ok(())
    }
}

/// q11: `SELECT bidder, count(*), SESSION_START(dateTime, 10 s), SESSION_END(dateTime, 10 s)
/// FROM bid GROUP BY bidder, SESSION(dateTime, INTERVAL '10' SECOND)`.
pub fn q11(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events)
        .map(|b: Bid| b.bidder)
        .key_by(|b: &u64| *b)
        .window(EventTimeSessionWindows::with_gap(Duration::from_secs(10)))
        .aggregate_with_process(
            Count,
            |bidder: &u64, ctx: &mut WindowContext<'_, TimeWindow, String>, n: Vec<u64>| {
                let (start, end) = (ctx.window().start, ctx.window().end);
                for n in n {
                    let mut s = format!("{bidder},{n},");
                    ts(&mut s, start);
                    s.push(',');
                    ts(&mut s, end);
                    ctx.collect(s);
                }
            },
        )
        .uid("q11-sessions")
        .name("q11 sessions"))
    .clone()
}

/// q22: `SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3), SPLIT_INDEX(url,
/// '/', 4), SPLIT_INDEX(url, '/', 5) FROM bid` (a missing part is NULL: an empty field).
pub fn q22(events: &DataStream<Event>) -> DataStream<String> {
    (*bids(events).map(|b: Bid| {
        let mut parts = b.url.split('/').skip(3);
        let mut s = format!("{},{},{},{}", b.auction, b.bidder, b.price, b.channel);
        for _ in 0..3 {
            s.push(',');
            s.push_str(parts.next().unwrap_or(""));
        }
        s
    }))
    .clone()
}
