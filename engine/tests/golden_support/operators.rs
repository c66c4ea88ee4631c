//! The second golden job (`savepoint-operators-3`): the operators that keep their own contents
//! in keyed state under reserved names, each with contents pending at the savepoint —
//! session windows (`_fjord.windows`, merging), sliding windows (`_fjord.panes`), an interval
//! join (`_fjord.interval_join`: both sides' buffers and their cleanup timers) and a rolling
//! reduce (`_fjord.rolling`). Every line it emits says from its own fields whether an
//! uninterrupted run emits it after part 1 ([`after_part1`]).

use super::{PART1, Part, Rec};
use fjord::StreamExecutionEnvironment;
use fjord::joins::IntervalJoinContext;
use fjord::sinks::CollectedOutput;
use fjord::windows::{EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, WindowContext};
use std::time::Duration;

/// Sessions close after this gap. A key's records are 8 000 ms apart, and the sessions see
/// blocks of 25 records (every other block), so a key's session grows inside a block and
/// closes between blocks.
const SESSION_GAP: i64 = 9_000;
/// Sliding windows of 10 s every 2 s.
const SLIDE_SIZE: i64 = 10_000;
const SLIDE: i64 = 2_000;
/// Interval join bounds (ms, both inclusive): a record joins the other side's records of its
/// key 8 000 ms before and after it, not those 16 000 ms away.
const JOIN_BOUND: i64 = 10_000;
/// The last watermark of part 1 (record `PART1 - 1`'s timestamp).
const PART1_WATERMARK: i64 = (PART1 as i64 - 1) * 400;

/// Record `i` is in block `i / 20` (a block holds each key once); the join's left side reads
/// the even blocks, its right side the odd ones.
fn left_side(r: &Rec) -> bool {
    (r.2 / 20) % 2 == 0
}

/// The job over `source`: one output of lines per operator.
pub fn job(env: &StreamExecutionEnvironment, source: Part) -> Vec<CollectedOutput<String>> {
    let input = env.from_source(source, "input").uid("input");
    let sessions = input
        .filter(|r: &Rec| (r.2 / 25) % 2 == 0)
        .key_by(|r: &Rec| r.0.clone())
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            SESSION_GAP as u64,
        )))
        .reduce_with_process(
            |a: Rec, b: Rec| (a.0, a.1.max(b.1), a.2 + b.2),
            |key: &String, ctx: &mut WindowContext<'_, TimeWindow, String>, r: Vec<Rec>| {
                let w = *ctx.window();
                ctx.collect(format!("session {key} {} {} {}", w.start, w.end, r[0].2));
            },
        )
        .uid("sessions")
        .collect();
    let sliding = input
        .key_by(|r: &Rec| r.0.clone())
        .window(SlidingEventTimeWindows::of(
            Duration::from_millis(SLIDE_SIZE as u64),
            Duration::from_millis(SLIDE as u64),
        ))
        .reduce_with_process(
            |a: Rec, b: Rec| (a.0, a.1, a.2 + b.2),
            |key: &String, ctx: &mut WindowContext<'_, TimeWindow, String>, r: Vec<Rec>| {
                let end = ctx.window().end;
                ctx.collect(format!("slide {key} {end} {}", r[0].2));
            },
        )
        .uid("sliding")
        .collect();
    let left = input.filter(left_side).key_by(|r: &Rec| r.0.clone());
    let right = input
        .filter(|r: &Rec| !left_side(r))
        .key_by(|r: &Rec| r.0.clone());
    let joined = left
        .interval_join(&right)
        .between_millis(-JOIN_BOUND, JOIN_BOUND)
        .process(
            |a: &Rec, b: &Rec, ctx: &mut IntervalJoinContext<'_, String>| {
                ctx.collect(format!("join {} {} {}", a.0, a.2, b.2))
            },
        )
        .uid("join")
        .collect();
    let rolling = input
        .key_by(|r: &Rec| r.0.clone())
        .reduce(|a: Rec, b: Rec| (a.0, b.1, a.2 + b.2))
        .uid("rolling")
        .map(|r: Rec| format!("roll {} {} {}", r.0, r.1 / 400, r.2))
        .collect();
    vec![sessions, sliding, joined, rolling]
}

/// Whether an uninterrupted run emits `line` only after part 1: a window whose end the last
/// watermark of part 1 did not reach, a join pair or rolling sum of a record of part 2.
pub fn after_part1(line: &str) -> bool {
    let f: Vec<&str> = line.split(' ').collect();
    let num = |i: usize| f[i].parse::<i64>().unwrap();
    match f[0] {
        "session" => num(3) - 1 > PART1_WATERMARK,
        "slide" => num(2) - 1 > PART1_WATERMARK,
        "join" => num(2).max(num(3)) >= PART1 as i64,
        "roll" => num(2) >= PART1 as i64,
        other => panic!("unexpected line kind {other}"),
    }
}

/// The golden savepoint of this job.
pub const GOLDEN: &str = "savepoint-operators-3";

/// The sorted lines an uninterrupted run emits after part 1, checked to hold every kind of
/// line both before and after part 1 (so the savepoint held contents of every operator).
pub fn expected_after_part1() -> Vec<String> {
    let all = super::uninterrupted_of(&job);
    for kind in ["session", "slide", "join", "roll"] {
        let (after, before): (Vec<&String>, Vec<&String>) = all
            .iter()
            .filter(|l| l.starts_with(kind))
            .partition(|l| after_part1(l));
        assert!(!after.is_empty() && !before.is_empty(), "{kind}: {all:?}");
    }
    super::sorted(all.into_iter().filter(|l| after_part1(l)).collect())
}
