//! The generator's configuration, read from the keys of the Flink Nexmark benchmark's source
//! (`events.num`, `tps`, `person.proportion`, `bid.hot-ratio.auctions`, ...) given as job
//! arguments (`--events.num 1000000`). Unknown keys are refused by the job registry; values
//! are checked here.

use crate::error::NexmarkError;
use fjord::JobArgs;

/// Every generator key, for usage texts and docs.
pub const KEYS: &[&str] = &[
    "events.num",
    "tps",
    "first-event.rate",
    "rate.limited",
    "person.proportion",
    "auction.proportion",
    "bid.proportion",
    "person.avg-size",
    "auction.avg-size",
    "bid.avg-size",
    "bid.hot-ratio.auctions",
    "bid.hot-ratio.bidders",
    "auction.hot-ratio.sellers",
    "active-people",
    "in-flight-auctions",
    "out-of-order.group-size",
    "seed",
    "base-time",
];

/// How to generate events. [`Default`] is the Flink benchmark's defaults with an unbounded
/// stream, seed 0 and base time 2026-01-01T00:00:00Z.
#[derive(Debug, Clone, PartialEq)]
pub struct NexmarkConfig {
    /// Events in total (`events.num`); `None` (key value 0) generates forever.
    pub events: Option<u64>,
    /// Events per second of event time (`tps`, or its Flink name `first-event.rate`): event
    /// `n` happens at `base_time + n / tps` seconds. Also the wall-clock rate when
    /// `rate_limited`.
    pub tps: f64,
    /// Emit at `tps` per wall-clock second instead of full speed (`rate.limited`).
    pub rate_limited: bool,
    /// Persons per `person + auction + bid` events (`person.proportion`, default 1).
    pub person_proportion: u64,
    /// Auctions per epoch (`auction.proportion`, default 3).
    pub auction_proportion: u64,
    /// Bids per epoch (`bid.proportion`, default 46).
    pub bid_proportion: u64,
    /// Average size of a person in bytes, reached with the `extra` field (`person.avg-size`,
    /// default 200; `200b`, `1kb` accepted).
    pub person_avg_size: u64,
    /// Average size of an auction (`auction.avg-size`, default 500).
    pub auction_avg_size: u64,
    /// Average size of a bid (`bid.avg-size`, default 100).
    pub bid_avg_size: u64,
    /// One bid in this many goes to a random auction, the others to the hot one
    /// (`bid.hot-ratio.auctions`, default 2).
    pub hot_auction_ratio: u64,
    /// One bid in this many comes from a random person, the others from the hot bidder
    /// (`bid.hot-ratio.bidders`, default 4).
    pub hot_bidders_ratio: u64,
    /// One auction in this many has a random seller, the others the hot seller
    /// (`auction.hot-ratio.sellers`, default 4).
    pub hot_sellers_ratio: u64,
    /// Random bidders and sellers are chosen among the latest this many persons
    /// (`active-people`, default 1000).
    pub active_people: u64,
    /// Random bids go to the latest this many auctions (`in-flight-auctions`, default 100).
    pub in_flight_auctions: u64,
    /// Events are shuffled within groups of this many (`out-of-order.group-size`, default 1:
    /// in order); their event times follow the shuffled order, so a group of `g` events spans
    /// `g / tps` seconds of disorder. Must not be a multiple of 953.
    pub out_of_order_group_size: u64,
    /// Seed of the random choices (`seed`, default 0): the same seed gives the same events.
    pub seed: u64,
    /// Event time of event 0, ms since the epoch (`base-time`, a number or
    /// `yyyy-MM-dd HH:mm:ss`, UTC).
    pub base_time: i64,
}

/// 2026-01-01T00:00:00Z.
pub const DEFAULT_BASE_TIME: i64 = 1_767_225_600_000;

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            events: None,
            tps: 10_000.0,
            rate_limited: false,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            person_avg_size: 200,
            auction_avg_size: 500,
            bid_avg_size: 100,
            hot_auction_ratio: 2,
            hot_bidders_ratio: 4,
            hot_sellers_ratio: 4,
            active_people: 1000,
            in_flight_auctions: 100,
            out_of_order_group_size: 1,
            seed: 0,
            base_time: DEFAULT_BASE_TIME,
        }
    }
}

impl NexmarkConfig {
    /// Reads the generator keys from job arguments (absent keys keep their defaults) and
    /// checks them.
    ///
    /// # Errors
    /// [`NexmarkError::Args`] when a value does not parse (including `NaN` and infinities);
    /// [`NexmarkError::Config`] when it parses but cannot be used (a zero proportion, a
    /// negative rate, ...).
    pub fn from_args(args: &JobArgs) -> Result<Self, NexmarkError> {
        let d = NexmarkConfig::default();
        let events: u64 = args.get_parsed("events.num", 0)?;
        let tps = match (args.has("tps"), args.has("first-event.rate")) {
            (true, true) => {
                return Err(NexmarkError::Config(
                    "give --tps or --first-event.rate, not both (they are the same setting)".into(),
                ));
            }
            (false, true) => args.get_parsed("first-event.rate", d.tps)?,
            _ => args.get_parsed("tps", d.tps)?,
        };
        let base_time = match args.get("base-time") {
            None => d.base_time,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .or_else(|| crate::model::parse_timestamp(text))
                .ok_or_else(|| {
                    NexmarkError::Config(format!(
                        "--base-time {text}: give milliseconds since the epoch or 'yyyy-MM-dd HH:mm:ss'"
                    ))
                })?,
        };
        let config = NexmarkConfig {
            events: (events > 0).then_some(events),
            tps,
            rate_limited: args.get_parsed("rate.limited", false)?,
            person_proportion: args.get_parsed("person.proportion", d.person_proportion)?,
            auction_proportion: args.get_parsed("auction.proportion", d.auction_proportion)?,
            bid_proportion: args.get_parsed("bid.proportion", d.bid_proportion)?,
            person_avg_size: size(args, "person.avg-size", d.person_avg_size)?,
            auction_avg_size: size(args, "auction.avg-size", d.auction_avg_size)?,
            bid_avg_size: size(args, "bid.avg-size", d.bid_avg_size)?,
            hot_auction_ratio: args.get_parsed("bid.hot-ratio.auctions", d.hot_auction_ratio)?,
            hot_bidders_ratio: args.get_parsed("bid.hot-ratio.bidders", d.hot_bidders_ratio)?,
            hot_sellers_ratio: args.get_parsed("auction.hot-ratio.sellers", d.hot_sellers_ratio)?,
            active_people: args.get_parsed("active-people", d.active_people)?,
            in_flight_auctions: args.get_parsed("in-flight-auctions", d.in_flight_auctions)?,
            out_of_order_group_size: args
                .get_parsed("out-of-order.group-size", d.out_of_order_group_size)?,
            seed: args.get_parsed("seed", d.seed)?,
            base_time,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that the generator can use this configuration.
    ///
    /// # Errors
    /// [`NexmarkError::Config`] naming the key and what to give instead.
    pub fn validate(&self) -> Result<(), NexmarkError> {
        let bad = |m: String| Err(NexmarkError::Config(m));
        if !self.tps.is_finite() || self.tps <= 0.0 {
            return bad(format!(
                "tps = {}: give a positive, finite number of events per second",
                self.tps
            ));
        }
        for (key, v) in [
            ("person.proportion", self.person_proportion),
            ("auction.proportion", self.auction_proportion),
            ("bid.proportion", self.bid_proportion),
            ("bid.hot-ratio.auctions", self.hot_auction_ratio),
            ("bid.hot-ratio.bidders", self.hot_bidders_ratio),
            ("auction.hot-ratio.sellers", self.hot_sellers_ratio),
            ("active-people", self.active_people),
            ("in-flight-auctions", self.in_flight_auctions),
            ("out-of-order.group-size", self.out_of_order_group_size),
        ] {
            if v == 0 {
                return bad(format!("{key} = 0: give a positive number"));
            }
        }
        if self.out_of_order_group_size.is_multiple_of(953) {
            return bad(format!(
                "out-of-order.group-size = {}: must not be a multiple of 953 (the shuffle within a group multiplies by 953)",
                self.out_of_order_group_size
            ));
        }
        for (key, v) in [
            ("person.avg-size", self.person_avg_size),
            ("auction.avg-size", self.auction_avg_size),
            ("bid.avg-size", self.bid_avg_size),
        ] {
            if v > 1 << 20 {
                return bad(format!("{key} = {v}: at most 1 MiB per event"));
            }
        }
        Ok(())
    }

    /// `person + auction + bid` proportions: the events of one epoch.
    pub fn total_proportion(&self) -> u64 {
        self.person_proportion + self.auction_proportion + self.bid_proportion
    }
}

/// A byte size: `200`, `200b`, `2kb` (Flink's memory sizes, as the benchmark writes them).
fn size(args: &JobArgs, key: &str, default: u64) -> Result<u64, NexmarkError> {
    let Some(text) = args.get(key) else {
        return Ok(default);
    };
    let t = text.trim().to_ascii_lowercase();
    let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), ""),
    };
    let factor = match unit.trim() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" => 1024,
        "m" | "mb" => 1 << 20,
        _ => {
            return Err(NexmarkError::Config(format!(
                "--{key} {text}: give a size in bytes such as 200, 200b or 1kb"
            )));
        }
    };
    digits.parse::<u64>().map(|n| n * factor).map_err(|_| {
        NexmarkError::Config(format!(
            "--{key} {text}: give a size in bytes such as 200, 200b or 1kb"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<NexmarkConfig, NexmarkError> {
        NexmarkConfig::from_args(&JobArgs::parse(args.iter().copied()).unwrap())
    }

    #[test]
    fn defaults_are_flinks_and_keys_override_them() {
        assert_eq!(parse(&[]).unwrap(), NexmarkConfig::default());
        let c = parse(&[
            "--events.num",
            "5000",
            "--tps",
            "2000",
            "--bid.avg-size",
            "1kb",
            "--base-time",
            "2020-01-01 00:00:00",
            "--rate.limited",
        ])
        .unwrap();
        assert_eq!(c.events, Some(5000));
        assert_eq!(c.tps, 2000.0);
        assert_eq!(c.bid_avg_size, 1024);
        assert_eq!(c.base_time, 1_577_836_800_000);
        assert!(c.rate_limited);
        assert_eq!(parse(&["--first-event.rate", "7"]).unwrap().tps, 7.0);
    }

    #[test]
    fn bad_values_get_clear_errors() {
        for (args, needle) in [
            (vec!["--tps", "NaN"], "not a finite number"),
            (vec!["--tps", "-3"], "positive, finite"),
            (vec!["--tps", "0"], "positive, finite"),
            (vec!["--bid.proportion", "0"], "bid.proportion = 0"),
            (vec!["--out-of-order.group-size", "1906"], "multiple of 953"),
            (vec!["--bid.avg-size", "ten"], "size in bytes"),
            (vec!["--tps", "5", "--first-event.rate", "5"], "not both"),
            (vec!["--base-time", "yesterday"], "--base-time yesterday"),
        ] {
            let err = parse(&args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }
}
