//! The Nexmark event generator: event number `n` → one person, auction or bid, a pure function
//! of the configuration and `n`, so any subtask can generate any share of the event numbers and
//! the events do not depend on the parallelism.
//!
//! It follows the generator of the Flink Nexmark benchmark (itself Apache Beam's): of every
//! `person + auction + bid` proportion events (1 : 3 : 46), the first are persons, then
//! auctions, then bids; ids grow with the event number; most bids go to the latest "hot"
//! auction and come from the latest hot bidder, most auctions are by the hot seller; prices are
//! log-uniform from $1 to $1 000 000; strings and the `extra` padding reach the configured average
//! sizes. Differences, on purpose: each event draws from a random generator seeded by the seed
//! and its id (Flink's draws from an unseeded one, so its events differ on every run), event
//! times count event numbers over the whole stream (Flink's count per source subtask, so its
//! timestamps change with the parallelism), and a bid's bidder id is offset by 1000 once (the
//! Flink port adds it twice).

use crate::config::NexmarkConfig;
use crate::model::{Auction, Bid, Event, Person};
use crate::rng::{Rng, mix64};
use std::sync::Arc;

const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const AUCTION_ID_LEAD: u64 = 10;
const PERSON_ID_LEAD: u64 = 10;
const HOT_SELLER_BATCH: u64 = 100;
const HOT_AUCTION_BATCH: u64 = 100;
const HOT_BIDDER_BATCH: u64 = 100;
const CHANNELS: usize = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
/// Length of the text `extra` fields are cut from.
const EXTRA_POOL: usize = 1 << 20;

/// What the generator builds once per seed: URLs and channels, the text `extra` is cut from.
#[derive(Debug)]
struct Tables {
    hot_urls: [String; 4],
    channels: Vec<(String, String)>,
    extra_pool: String,
}

/// Generates Nexmark events by event number. Cheap to clone (the tables are shared).
#[derive(Debug, Clone)]
pub struct Generator {
    config: NexmarkConfig,
    /// Microseconds of event time between two events.
    inter_event_delay_us: f64,
    tables: Arc<Tables>,
}

impl Generator {
    /// A generator for a checked configuration (see [`NexmarkConfig::validate`]).
    pub fn new(config: NexmarkConfig) -> Self {
        let mut rng = Rng::new(mix64(config.seed ^ 0x6e65_786d_6172_6b00));
        let hot_urls = std::array::from_fn(|_| base_url(&mut rng));
        let channels = (0..CHANNELS)
            .map(|i| {
                let mut url = base_url(&mut rng);
                if rng.next_below(10) > 0 {
                    // As the benchmark: Math.abs(Integer.reverse(i)).
                    url.push_str(&format!(
                        "&channel_id={}",
                        (i as i32).reverse_bits().wrapping_abs()
                    ));
                }
                (format!("channel-{i}"), url)
            })
            .collect();
        let extra_pool = (0..EXTRA_POOL)
            .map(|_| (b'a' + rng.next_below(26) as u8) as char)
            .collect();
        Generator {
            inter_event_delay_us: 1_000_000.0 / config.tps,
            config,
            tables: Arc::new(Tables {
                hot_urls,
                channels,
                extra_pool,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NexmarkConfig {
        &self.config
    }

    /// The event with event number `n` (0-based position in the stream). With an
    /// out-of-order group size of 1 its id is `n`; otherwise ids are shuffled within groups.
    pub fn event(&self, n: u64) -> Event {
        let id = self.adjusted_event_number(n);
        let ts = self.timestamp_for(id);
        let mut rng = Rng::for_event(self.config.seed, id);
        let rem = id % self.config.total_proportion();
        if rem < self.config.person_proportion {
            Event::Person(self.person(id, &mut rng, ts))
        } else if rem < self.config.person_proportion + self.config.auction_proportion {
            Event::Auction(self.auction(n, id, &mut rng, ts))
        } else {
            Event::Bid(self.bid(id, &mut rng, ts))
        }
    }

    /// The event id (and event-time position) of event number `n`: `n` itself, or `n`
    /// shuffled within its group of `out-of-order.group-size` numbers.
    pub fn adjusted_event_number(&self, n: u64) -> u64 {
        let g = self.config.out_of_order_group_size;
        (n / g) * g + (n.wrapping_mul(953)) % g
    }

    /// Event time of the event at position `number`: `base_time + number / tps`.
    pub fn timestamp_for(&self, number: u64) -> i64 {
        self.config.base_time + (number as f64 * self.inter_event_delay_us) as i64 / 1000
    }

    /// A timestamp no later event number (≥ `n`) goes below: the start of `n`'s group.
    pub fn watermark_for(&self, n: u64) -> i64 {
        let g = self.config.out_of_order_group_size;
        self.timestamp_for((n / g) * g)
    }

    fn last_base0_person_id(&self, event_id: u64) -> u64 {
        let c = &self.config;
        let epoch = event_id / c.total_proportion();
        let mut offset = event_id % c.total_proportion();
        if offset >= c.person_proportion {
            offset = c.person_proportion - 1;
        }
        epoch * c.person_proportion + offset
    }

    fn last_base0_auction_id(&self, event_id: u64) -> u64 {
        let c = &self.config;
        let mut epoch = event_id / c.total_proportion();
        let mut offset = event_id % c.total_proportion();
        if offset < c.person_proportion {
            // A person: the last auction of the previous epoch (none before the first).
            if epoch == 0 {
                return 0;
            }
            epoch -= 1;
            offset = c.auction_proportion - 1;
        } else if offset >= c.person_proportion + c.auction_proportion {
            offset = c.auction_proportion - 1;
        } else {
            offset -= c.person_proportion;
        }
        epoch * c.auction_proportion + offset
    }

    fn next_base0_person_id(&self, event_id: u64, rng: &mut Rng) -> u64 {
        let people = self.last_base0_person_id(event_id) + 1;
        let active = people.min(self.config.active_people);
        people - active + rng.next_below(active + PERSON_ID_LEAD)
    }

    fn next_base0_auction_id(&self, event_id: u64, rng: &mut Rng) -> u64 {
        let max = self.last_base0_auction_id(event_id);
        let min = max.saturating_sub(self.config.in_flight_auctions);
        min + rng.next_below(max - min + 1 + AUCTION_ID_LEAD)
    }

    fn person(&self, id: u64, rng: &mut Rng, ts: i64) -> Person {
        let name = format!(
            "{} {}",
            FIRST_NAMES[rng.next_below(FIRST_NAMES.len() as u64) as usize],
            LAST_NAMES[rng.next_below(LAST_NAMES.len() as u64) as usize]
        );
        let email_address = format!(
            "{}@{}.com",
            next_string(rng, 7, ' '),
            next_string(rng, 5, ' ')
        );
        let credit_card = (0..4)
            .map(|_| format!("{:04}", rng.next_below(10_000)))
            .collect::<Vec<_>>()
            .join(" ");
        let city = US_CITIES[rng.next_below(US_CITIES.len() as u64) as usize].to_string();
        let state = US_STATES[rng.next_below(US_STATES.len() as u64) as usize].to_string();
        let size =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        let extra = self.next_extra(rng, size as u64, self.config.person_avg_size);
        Person {
            id: self.last_base0_person_id(id) + FIRST_PERSON_ID,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time: ts,
            extra,
        }
    }

    fn auction(&self, n: u64, id: u64, rng: &mut Rng, ts: i64) -> Auction {
        let c = &self.config;
        let seller = if rng.next_below(c.hot_sellers_ratio) > 0 {
            (self.last_base0_person_id(id) / HOT_SELLER_BATCH) * HOT_SELLER_BATCH
        } else {
            self.next_base0_person_id(id, rng)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.next_below(NUM_CATEGORIES);
        let initial_bid = next_price(rng);
        // Auctions last on average until `in_flight_auctions` more auctions have opened.
        let events_for_auctions =
            c.in_flight_auctions * c.total_proportion() / c.auction_proportion;
        let future = self.timestamp_for(self.adjusted_event_number(n) + events_for_auctions);
        let horizon = (future - ts).max(0) as u64;
        let expires = ts + 1 + rng.next_below((horizon * 2).max(1)) as i64;
        let item_name = next_string(rng, 20, ' ');
        let description = next_string(rng, 100, ' ');
        let reserve = initial_bid + next_price(rng);
        let size = 8 + item_name.len() + description.len() + 40;
        let extra = self.next_extra(rng, size as u64, c.auction_avg_size);
        Auction {
            id: self.last_base0_auction_id(id) + FIRST_AUCTION_ID,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: ts,
            expires,
            seller,
            category,
            extra,
        }
    }

    fn bid(&self, id: u64, rng: &mut Rng, ts: i64) -> Bid {
        let c = &self.config;
        let auction = if rng.next_below(c.hot_auction_ratio) > 0 {
            (self.last_base0_auction_id(id) / HOT_AUCTION_BATCH) * HOT_AUCTION_BATCH
        } else {
            self.next_base0_auction_id(id, rng)
        } + FIRST_AUCTION_ID;
        let bidder = if rng.next_below(c.hot_bidders_ratio) > 0 {
            // The second person of the batch, so hot bidders and hot sellers differ.
            (self.last_base0_person_id(id) / HOT_BIDDER_BATCH) * HOT_BIDDER_BATCH + 1
        } else {
            self.next_base0_person_id(id, rng)
        } + FIRST_PERSON_ID;
        let price = next_price(rng);
        let (channel, url) = if rng.next_below(2) > 0 {
            let i = rng.next_below(HOT_CHANNELS.len() as u64) as usize;
            (HOT_CHANNELS[i].to_string(), self.tables.hot_urls[i].clone())
        } else {
            let (ch, url) = &self.tables.channels[rng.next_below(CHANNELS as u64) as usize];
            (ch.clone(), url.clone())
        };
        let extra = self.next_extra(rng, 32, c.bid_avg_size);
        Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time: ts,
            extra,
        }
    }

    /// Padding that brings an event of `current` bytes to `desired` bytes on average (±20 %).
    fn next_extra(&self, rng: &mut Rng, current: u64, desired: u64) -> String {
        if current > desired {
            return String::new();
        }
        let rest = desired - current;
        let delta = (rest as f64 * 0.2).round() as u64;
        let len = rest - delta
            + if delta == 0 {
                0
            } else {
                rng.next_below(2 * delta)
            };
        let len = len as usize;
        let pool = &self.tables.extra_pool;
        if len < pool.len() / 2 {
            let offset = rng.next_below((pool.len() - len) as u64) as usize;
            pool[offset..offset + len].to_string()
        } else {
            (0..len)
                .map(|_| (b'a' + rng.next_below(26) as u8) as char)
                .collect()
        }
    }
}

/// A price in cents, log-uniform between $1 and $1 000 000.
fn next_price(rng: &mut Rng) -> u64 {
    (10f64.powf(rng.next_f64() * 6.0) * 100.0).round() as u64
}

/// 3 to `max_len - 1` random lowercase letters, about one in 13 replaced by `special`
/// (trimmed when it is a space).
fn next_string(rng: &mut Rng, max_len: u64, special: char) -> String {
    let len = 3 + rng.next_below(max_len - 3);
    let s: String = (0..len)
        .map(|_| {
            if rng.next_below(13) == 0 {
                special
            } else {
                (b'a' + rng.next_below(26) as u8) as char
            }
        })
        .collect();
    if special == ' ' {
        s.trim().to_string()
    } else {
        s
    }
}

fn base_url(rng: &mut Rng) -> String {
    format!(
        "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
        next_string(rng, 5, '_'),
        next_string(rng, 5, '_'),
        next_string(rng, 5, '_')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn generator(events: u64) -> Generator {
        Generator::new(NexmarkConfig {
            events: Some(events),
            ..NexmarkConfig::default()
        })
    }

    #[test]
    fn proportions_are_1_3_46() {
        let g = generator(50_000);
        let mut counts = [0u64; 3];
        for n in 0..50_000 {
            counts[g.event(n).event_type() as usize] += 1;
        }
        assert_eq!(counts, [1_000, 3_000, 46_000]);
    }

    #[test]
    fn the_same_seed_gives_the_same_events_and_another_seed_others() {
        let a = generator(1000);
        let b = generator(1000);
        let other = Generator::new(NexmarkConfig {
            seed: 1,
            ..NexmarkConfig::default()
        });
        let mut differing = 0;
        for n in 0..1000 {
            assert_eq!(a.event(n), b.event(n));
            if a.event(n) != other.event(n) {
                differing += 1;
            }
            // Ids and times do not depend on the seed, the random fields do.
            assert_eq!(a.event(n).date_time(), other.event(n).date_time());
        }
        assert!(differing > 900, "{differing}");
    }

    #[test]
    fn ids_grow_and_bids_refer_to_existing_or_leading_ids() {
        let g = generator(10_000);
        let (mut persons, mut auctions) = (BTreeSet::new(), BTreeSet::new());
        let mut hot = 0;
        let mut bids = 0;
        for n in 0..10_000 {
            match g.event(n) {
                Event::Person(p) => assert!(persons.insert(p.id)),
                Event::Auction(a) => {
                    assert!(auctions.insert(a.id));
                    assert!((10..15).contains(&a.category));
                    assert!(a.expires > a.date_time && a.reserve >= a.initial_bid);
                    assert!(a.seller <= persons.last().unwrap() + PERSON_ID_LEAD);
                }
                Event::Bid(b) => {
                    bids += 1;
                    assert!(b.auction <= auctions.last().unwrap() + AUCTION_ID_LEAD);
                    assert!((100..=100_000_000).contains(&b.price), "{}", b.price);
                    if b.auction % HOT_AUCTION_BATCH == 0 {
                        hot += 1;
                    }
                }
            }
        }
        // Person ids 1000.., auction ids 1000.., without gaps.
        assert_eq!(persons.first(), Some(&1000));
        assert_eq!(*persons.last().unwrap(), 1000 + persons.len() as u64 - 1);
        assert_eq!(*auctions.last().unwrap(), 1000 + auctions.len() as u64 - 1);
        // With hot ratio 2 about half the bids (plus a few random ones) go to hot auctions.
        assert!(
            hot * 10 > bids * 4 && hot * 10 < bids * 7,
            "{hot} of {bids}"
        );
    }

    #[test]
    fn event_time_follows_tps_and_sizes_follow_the_averages() {
        let g = generator(100_000);
        assert_eq!(g.event(0).date_time(), crate::config::DEFAULT_BASE_TIME);
        // 10 000 events per second of event time.
        assert_eq!(
            g.event(20_000).date_time(),
            crate::config::DEFAULT_BASE_TIME + 2000
        );
        let mut bid_bytes = 0;
        let mut bids = 0;
        for n in 0..5000 {
            if let Event::Bid(b) = g.event(n) {
                bid_bytes += 32 + b.extra.len();
                bids += 1;
            }
        }
        let avg = bid_bytes / bids;
        assert!((90..=110).contains(&avg), "{avg}");
    }

    #[test]
    fn out_of_order_groups_shuffle_ids_but_keep_each_once() {
        let g = Generator::new(NexmarkConfig {
            out_of_order_group_size: 100,
            ..NexmarkConfig::default()
        });
        let ids: BTreeSet<u64> = (0..1000).map(|n| g.adjusted_event_number(n)).collect();
        assert_eq!(ids, (0..1000).collect());
        let times: Vec<i64> = (0..1000).map(|n| g.event(n).date_time()).collect();
        assert!(
            times.windows(2).any(|w| w[1] < w[0]),
            "some events are late"
        );
        for n in 0..1000u64 {
            let later_min = (n..1000).map(|m| g.event(m).date_time()).min().unwrap();
            assert!(g.watermark_for(n) <= later_min, "{n}");
        }
    }
}
