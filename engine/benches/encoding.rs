//! Speed of Fjord's own encoder (`fjord::encoding`, which writes bincode 1.x's bytes) against
//! bincode 1.3 itself, on the values the hot paths encode: a network batch of 1024
//! `(String, i64)` records, a keyed state access on RocksDB (a `u64` key and an `i64` value), and
//! a Nexmark-like bid struct (a window's or a join's state).
//!
//! ```text
//! cargo bench -p fjord --bench encoding [-- --runs R]
//! ```
//!
//! Each case encodes into a reused buffer and decodes into a fresh value, `R` runs (default 5)
//! of a fixed number of operations; the median run is reported in nanoseconds per value and in
//! MB/s of encoded bytes. Both encoders produce the same bytes (checked before timing).

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
struct Bid {
    auction: u64,
    bidder: u64,
    price: u64,
    channel: String,
    url: String,
    date_time: i64,
    extra: String,
}

/// Times `ops` calls of `f`, `runs` times, and returns the median run.
fn median_run(runs: usize, ops: u64, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ops {
                f();
            }
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// One row of the table: ns per value and MB/s for encoding and decoding `value` with both.
fn case<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &T,
    ops: u64,
    runs: usize,
) {
    let ours = fjord::encoding::to_vec(value).expect("encodes");
    let theirs = bincode::serialize(value).expect("encodes");
    assert_eq!(ours, theirs, "{name}: the two encoders disagree");
    let decoded: T = fjord::encoding::from_slice(&ours).expect("decodes");
    assert_eq!(&decoded, value, "{name}: the round trip changed the value");
    let bytes = ours.len() as f64;
    let row = |what: &str, t: Duration| {
        let ns = t.as_nanos() as f64 / ops as f64;
        println!(
            "| {name} | {what} | {} | {ns:.1} | {:.0} |",
            ours.len(),
            bytes / ns * 1000.0
        );
    };
    let mut buf = Vec::with_capacity(ours.len());
    row(
        "encode, fjord::encoding",
        median_run(runs, ops, || {
            buf.clear();
            fjord::encoding::write_into(&mut buf, black_box(value)).expect("encodes");
            black_box(&buf);
        }),
    );
    row(
        "encode, bincode 1.3",
        median_run(runs, ops, || {
            buf.clear();
            bincode::serialize_into(&mut buf, black_box(value)).expect("encodes");
            black_box(&buf);
        }),
    );
    row(
        "decode, fjord::encoding",
        median_run(runs, ops, || {
            let v: T = fjord::encoding::from_slice(black_box(&ours)).expect("decodes");
            black_box(v);
        }),
    );
    row(
        "decode, bincode 1.3",
        median_run(runs, ops, || {
            let v: T = bincode::deserialize(black_box(&theirs)).expect("decodes");
            black_box(v);
        }),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let words = ["fjord", "stream", "window", "state", "barrier", "watermark"];
    let batch: Vec<(String, i64)> = (0..1024)
        .map(|i| (words[i % words.len()].to_string(), i as i64))
        .collect();
    let bid = Bid {
        auction: 1_000_123,
        bidder: 2_001_456,
        price: 48_250,
        channel: "channel-7".into(),
        url: "https://www.nexmark.com/abc/def/ghi/item.htm?query=1&channel_id=7".into(),
        date_time: 1_700_000_000_123,
        extra: "x".repeat(40),
    };
    println!("| value | operation | bytes | ns per value | MB/s |");
    println!("| --- | --- | --- | --- | --- |");
    case("batch of 1024 (String, i64)", &batch, 2_000, runs);
    case("keyed state key (u64)", &42_424_242u64, 5_000_000, runs);
    case(
        "keyed state value (i64)",
        &-7_000_000_007i64,
        5_000_000,
        runs,
    );
    case("Nexmark-like bid struct", &bid, 1_000_000, runs);
}
