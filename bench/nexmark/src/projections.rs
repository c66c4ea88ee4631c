//! The stateless queries over bids that compute columns: q10 (bids with their partition
//! columns, written to partitioned files), q13 (a lookup in a side input file), q14 (a price
//! in euro, a time-of-day type and a user-defined function) and q21 (the channel id from the
//! channel name or the URL).

use crate::error::NexmarkError;
use crate::model::{Bid, Event, push_u64, write_timestamp};
use crate::queries::bids;
use crate::stats::day_and_minute;
use fjord::{
    BoxError, Collector, FlatMapFunction, JobArgs, RuntimeContext, Sink, SinkError, SinkWriter,
    Timestamp,
};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// q10: `SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, 'yyyy-MM-dd'),
/// DATE_FORMAT(dateTime, 'HH:mm') FROM bid` into a file system table partitioned by the last
/// two columns, `dt` and `hm` (see [`PartitionedFiles`]).
pub fn q10(events: &fjord::DataStream<Event>) -> fjord::DataStream<String> {
    (*bids(events).map(|b: Bid| {
        let mut s = String::with_capacity(96 + b.extra.len());
        let _ = write!(s, "{},{},{},", b.auction, b.bidder, b.price);
        write_timestamp(&mut s, b.date_time);
        let (dt, hm) = day_and_minute(b.date_time);
        let _ = write!(s, ",{},{dt},{hm}", b.extra);
        s
    }))
    .clone()
}

/// q10's file system sink: a row goes to `<dir>/dt=<dt>/hm=<hm>/part-<subtask>.csv`, its
/// partition the values of its last two CSV fields (Flink's `PARTITIONED BY (dt, hm)`, with
/// `:` escaped as `%3A` as Flink writes partition paths). Unlike Flink's `filesystem`
/// connector the files keep the partition columns, so the rows read back are the query's rows.
/// Each subtask writes its own files, replacing files of the same name; other files in the
/// directory stay. Not transactional: after a restore from a checkpoint rows may repeat.
#[derive(Debug, Clone)]
pub struct PartitionedFiles {
    dir: PathBuf,
}

impl PartitionedFiles {
    /// A sink writing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PartitionedFiles { dir: dir.into() }
    }
}

impl Sink<String> for PartitionedFiles {
    fn create_writer(&self, ctx: &RuntimeContext) -> Result<Box<dyn SinkWriter<String>>, BoxError> {
        Ok(Box::new(PartitionWriter {
            dir: self.dir.clone(),
            subtask: ctx.location().subtask,
            files: HashMap::new(),
        }))
    }
}

struct PartitionWriter {
    dir: PathBuf,
    subtask: usize,
    files: HashMap<String, std::io::BufWriter<std::fs::File>>,
}

/// The partition directory of a q10 row: `dt=<second last field>/hm=<last field>`.
fn partition_of(row: &str) -> Option<String> {
    let mut fields = row.rsplitn(3, ',');
    let hm = fields.next()?;
    let dt = fields.next()?;
    fields.next()?;
    Some(format!("dt={dt}/hm={}", hm.replace(':', "%3A")))
}

impl SinkWriter<String> for PartitionWriter {
    fn write(&mut self, row: String, _: Option<Timestamp>) -> Result<(), BoxError> {
        let Some(partition) = partition_of(&row) else {
            return Err(SinkError::boxed(
                self.dir.display().to_string(),
                format!("row {row:?} has no dt and hm columns to partition by"),
            ));
        };
        if !self.files.contains_key(&partition) {
            let dir = self.dir.join(&partition);
            let path = dir.join(format!("part-{}.csv", self.subtask));
            let file = std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::File::create(&path))
                .map_err(|e| io_error(&path, e))?;
            self.files
                .insert(partition.clone(), std::io::BufWriter::new(file));
        }
        let out = self.files.get_mut(&partition).expect("inserted above");
        out.write_all(row.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| io_error(&self.dir.join(&partition), e))
    }

    fn flush(&mut self) -> Result<(), BoxError> {
        for (partition, out) in &mut self.files {
            out.flush()
                .map_err(|e| io_error(&self.dir.join(partition), e))?;
        }
        Ok(())
    }
}

fn io_error(path: &Path, e: std::io::Error) -> BoxError {
    SinkError::boxed(
        path.display().to_string(),
        format!("{e}; check that the directory is writable"),
    )
}

/// The number of rows of the benchmark's side input (its `side_input_gen.sh --num 10000`), and
/// the modulus of q13's `mod(B.auction, 10000)`.
pub const SIDE_INPUT_ROWS: u64 = 10_000;

/// Writes the benchmark's side input for q13 to `path`: the lines `i,i` for `i` in `0..rows`
/// (as its `SideInputGenerator`: "a number and its string representation").
///
/// # Errors
/// [`NexmarkError::Io`] when the file cannot be written.
pub fn write_side_input(path: &Path, rows: u64) -> Result<(), NexmarkError> {
    let mut text = String::with_capacity(rows as usize * 12);
    for i in 0..rows {
        let _ = writeln!(text, "{i},{i}");
    }
    std::fs::write(path, text).map_err(|source| NexmarkError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// q13: `SELECT B.auction, B.bidder, B.price, B.dateTime, S.value FROM bid B JOIN side_input
/// FOR SYSTEM_TIME AS OF B.p_time AS S ON mod(B.auction, 10000) = S.key`, the side input the
/// CSV file `--side-input <file>` (lines `key,value`; see [`write_side_input`]). The file does
/// not change while the job runs, so the processing-time lookup is a lookup in the file as
/// read when the job starts: each subtask loads it in `open` (Flink's usual rich function
/// for a small static side input). Bids without a row are dropped (an inner join).
///
/// # Errors
/// [`NexmarkError::Config`] without `--side-input`; the job fails when the file cannot be read
/// or a line is not `key,value`.
pub fn q13(
    events: &fjord::DataStream<Event>,
    args: &JobArgs,
) -> Result<fjord::DataStream<String>, NexmarkError> {
    let path = PathBuf::from(args.get("side-input").ok_or_else(|| {
        NexmarkError::Config(
            "q13 joins bids with a side input: give --side-input <file> (lines key,value; \
             `fjord-nexmark generate --side-input FILE` writes the benchmark's)"
                .into(),
        )
    })?);
    Ok((*bids(events)
        .flat_map(SideInputLookup {
            path,
            table: HashMap::new(),
        })
        .name("q13 side input lookup"))
    .clone())
}

/// q13's lookup: the side input file as a map from key to value, loaded in `open`.
#[derive(Clone)]
struct SideInputLookup {
    path: PathBuf,
    table: HashMap<u64, String>,
}

impl FlatMapFunction<Bid, String> for SideInputLookup {
    fn open(&mut self, _: &RuntimeContext) -> Result<(), BoxError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| NexmarkError::Io {
            action: "read",
            path: self.path.clone(),
            source,
        })?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
            let parsed = line
                .split_once(',')
                .and_then(|(k, v)| Some((k.trim().parse::<u64>().ok()?, v.to_string())));
            let Some((key, value)) = parsed else {
                return Err(NexmarkError::Config(format!(
                    "{} line {}: {line:?} is not `key,value` with a numeric key",
                    self.path.display(),
                    n + 1
                ))
                .into());
            };
            self.table.insert(key, value);
        }
        Ok(())
    }

    fn flat_map(&mut self, b: Bid, out: &mut Collector<'_, String>) -> Result<(), BoxError> {
        if let Some(value) = self.table.get(&(b.auction % SIDE_INPUT_ROWS)) {
            let mut s = format!("{},{},{},", b.auction, b.bidder, b.price);
            write_timestamp(&mut s, b.date_time);
            s.push(',');
            s.push_str(value);
            out.collect(s);
        }
        Ok(())
    }
}

/// q14's `CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime' WHEN
/// HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime' ELSE 'otherTime' END` (the
/// hour in UTC, as the timestamps are).
pub fn bid_time_type(date_time: i64) -> &'static str {
    match date_time.rem_euclid(86_400_000) / 3_600_000 {
        8..=18 => "dayTime",
        0..=6 | 20.. => "nightTime",
        _ => "otherTime",
    }
}

/// The benchmark's user-defined function `count_char(s, c)`: how many bytes of `s` equal the
/// first byte of `c` (`com.github.nexmark.flink.udf.CountChar`).
pub fn count_char(s: &str, c: &str) -> u64 {
    let Some(&chr) = c.as_bytes().first() else {
        return 0;
    };
    s.bytes().filter(|b| *b == chr).count() as u64
}

/// q14: bids with `0.908 * price` strictly between 1 000 000 and 50 000 000: `auction, bidder,
/// 0.908 * price (DECIMAL(23, 3)), bidTimeType, dateTime, extra, count_char(extra, 'c')`.
pub fn q14(events: &fjord::DataStream<Event>) -> fjord::DataStream<String> {
    (*bids(events)
        // 0.908 * price in thousandths, exactly.
        .filter(|b: &Bid| b.price * 908 > 1_000_000_000 && b.price * 908 < 50_000_000_000)
        .map(|b: Bid| {
            let milli_euro = b.price * 908;
            let mut s = String::with_capacity(96 + b.extra.len());
            let _ = write!(
                s,
                "{},{},{}.{:03},{},",
                b.auction,
                b.bidder,
                milli_euro / 1000,
                milli_euro % 1000,
                bid_time_type(b.date_time)
            );
            write_timestamp(&mut s, b.date_time);
            s.push(',');
            s.push_str(&b.extra);
            s.push(',');
            push_u64(&mut s, count_char(&b.extra, "c"));
            s
        }))
    .clone()
}

/// q21's channel id: `'0'` to `'3'` for the channels Apple, Google, Facebook and Baidu (any
/// case), else `REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)`: the value of the first
/// `channel_id` parameter at the start of the URL or after a `&`, up to the next `&`; `None`
/// (NULL) if there is none.
pub fn channel_id(channel: &str, url: &str) -> Option<String> {
    let known = ["apple", "google", "facebook", "baidu"]
        .iter()
        .position(|c| channel.eq_ignore_ascii_case(c));
    if let Some(i) = known {
        return Some(i.to_string());
    }
    const KEY: &str = "channel_id=";
    // The leftmost match: at the start, else after the first "&channel_id=".
    let value = match url.strip_prefix(KEY) {
        Some(rest) => rest,
        None => &url[url.find("&channel_id=")? + 1 + KEY.len()..],
    };
    Some(value.split('&').next().unwrap_or("").to_string())
}

/// q21: bids from a known channel or with a channel id in the URL: `auction, bidder, price,
/// channel, channel_id`.
pub fn q21(events: &fjord::DataStream<Event>) -> fjord::DataStream<String> {
    (*bids(events).flat_map(|b: Bid| {
        channel_id(&b.channel, &b.url)
            .map(|id| format!("{},{},{},{},{id}", b.auction, b.bidder, b.price, b.channel))
    }))
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_follow_the_case_and_the_regexp() {
        let cases = [
            ("Google", "https://x/?query=1&channel_id=5", Some("1")),
            ("BAIDU", "https://x/", Some("3")),
            ("channel-7", "https://x/?query=1&channel_id=42", Some("42")),
            (
                "channel-7",
                "https://x/?query=1&channel_id=42&b=1",
                Some("42"),
            ),
            ("channel-7", "channel_id=9&channel_id=8", Some("9")),
            ("channel-7", "https://x/?query=1&channel_id=", Some("")),
            ("channel-7", "https://x/?query=1&xchannel_id=3", None),
            ("channel-7", "https://x/?query=1", None),
            (
                "channel-7",
                "https://x/?a=1&channel_id=2&channel_id=3",
                Some("2"),
            ),
        ];
        for (channel, url, want) in cases {
            assert_eq!(channel_id(channel, url).as_deref(), want, "{channel} {url}");
        }
    }

    #[test]
    fn time_types_and_char_counts() {
        let hour = |h: i64| h * 3_600_000 + 59_999;
        let types: Vec<&str> = (0..24).map(|h| bid_time_type(hour(h))).collect();
        assert_eq!(&types[0..7], ["nightTime"; 7]);
        assert_eq!(types[7], "otherTime");
        assert_eq!(&types[8..19], ["dayTime"; 11]);
        assert_eq!(types[19], "otherTime");
        assert_eq!(&types[20..24], ["nightTime"; 4]);
        assert_eq!(count_char("abcabcc", "c"), 3);
        assert_eq!(count_char("", "c"), 0);
    }

    #[test]
    fn q10_rows_go_to_their_partition() {
        assert_eq!(
            partition_of("1,2,3,2026-01-01 23:59:00.000,x,2026-01-01,23:59").as_deref(),
            Some("dt=2026-01-01/hm=23%3A59")
        );
        assert_eq!(partition_of("a,b"), None);
    }
}
