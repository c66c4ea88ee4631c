//! Window TVFs without aggregation and window joins (Flink's `WindowTableFunction` and
//! `WindowJoin`).
//!
//! - [`WindowTvfFn`]: `TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), size))` (HOP, CUMULATE) on its
//!   own: each row once per window it falls in, with window_start, window_end and window_time
//!   (window_end - 1 ms) after its columns. Stateless; windows are assigned as the
//!   DataStream window assigners assign them, so they are the windows a window aggregation
//!   over the same TVF uses.
//! - [`WindowJoinFn`]: both inputs are such rows (or a window aggregation's) of the same
//!   windows, and `ON` equates their window_start and window_end. The operator is keyed by
//!   the equi-join key, which holds the window bounds, so one key is one window: its rows
//!   wait in keyed list state until the watermark passes window_end - 1 ms (an event-time
//!   timer), are joined then, and the state is cleared. Outer joins pad the rows without a
//!   match with NULLs at that moment, so the result only appends (unlike a regular outer
//!   join). A row whose window has fired already (window_end - 1 <= watermark) is late and
//!   dropped, as in Flink. A NULL in the key (besides the window) matches nothing.

use crate::expr::Expr;
use crate::plan::{JoinKind, WindowKind};
use crate::types::{Row, Value};
use fjord::state::{ListState, ListStateDescriptor};
use fjord::windows::{
    CumulativeEventTimeWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    WindowAssigner,
};
use fjord::{
    BoxError, Collector, FlatMapFunction, KeyedCoProcessFunction, KeyedProcessContext,
    RuntimeContext, Timestamp,
};
use std::sync::Arc;
use std::time::Duration;

/// The function of a window TVF without aggregation: a row out per window of each row.
#[derive(Clone)]
pub struct WindowTvfFn {
    window: WindowKind,
    time_column: usize,
    name: String,
    windows: Vec<TimeWindow>,
}

impl WindowTvfFn {
    /// Windows `window` over the rowtime column `time_column` (called `name`, for errors).
    ///
    /// # Panics
    /// A SESSION window: the planner refuses it on its own (it needs state).
    pub fn new(window: WindowKind, time_column: usize, name: String) -> Self {
        assert!(
            !matches!(window, WindowKind::Session { .. }),
            "a SESSION window TVF needs state"
        );
        WindowTvfFn {
            window,
            time_column,
            name,
            windows: Vec::new(),
        }
    }

    /// The windows of an event at `ts`, in `self.windows`.
    fn assign(&mut self, ts: i64) {
        let ms = |m: i64| Duration::from_millis(m as u64);
        self.windows.clear();
        let out = &mut self.windows;
        match self.window {
            WindowKind::Tumble { size } => {
                WindowAssigner::<(), _>::assign_windows(
                    &TumblingEventTimeWindows::of(ms(size)),
                    &(),
                    ts,
                    out,
                );
            }
            WindowKind::Hop { slide, size } => WindowAssigner::<(), _>::assign_windows(
                &SlidingEventTimeWindows::of(ms(size), ms(slide)),
                &(),
                ts,
                out,
            ),
            WindowKind::Cumulate { step, size } => WindowAssigner::<(), _>::assign_windows(
                &CumulativeEventTimeWindows::of(ms(size), ms(step)),
                &(),
                ts,
                out,
            ),
            WindowKind::Session { .. } => unreachable!("refused in new"),
        }
    }

    /// The output rows of `row`: one per window, the window's columns appended.
    ///
    /// # Errors
    /// A NULL (or non-time) rowtime: an event without a time cannot be windowed (the job
    /// fails, as for a window aggregation).
    pub fn rows(&mut self, row: Row) -> Result<Vec<Row>, BoxError> {
        let ts = match row.get(self.time_column).and_then(Value::epoch_ms) {
            Some(ms) => ms,
            None => {
                return Err(format!(
                    "the rowtime column '{}' is NULL in a row; a window TVF needs a time for every row (filter such rows in a view, or fix the input)",
                    self.name
                )
                .into());
            }
        };
        self.assign(ts);
        let mut out = Vec::with_capacity(self.windows.len());
        for w in &self.windows {
            let mut r = Vec::with_capacity(row.len() + 3);
            r.extend_from_slice(&row);
            r.push(Value::Timestamp(w.start));
            r.push(Value::Timestamp(w.end));
            r.push(Value::Timestamp(w.end - 1));
            out.push(r);
        }
        Ok(out)
    }
}

impl FlatMapFunction<Row, Row> for WindowTvfFn {
    fn flat_map(&mut self, row: Row, out: &mut Collector<'_, Row>) -> Result<(), BoxError> {
        for r in self.rows(row)? {
            out.collect(r);
        }
        Ok(())
    }
}

/// The rows of one window of one key, joined when the window fires: the matching pairs, then
/// (for outer joins) the rows of a kept side that matched nothing, padded with NULLs. Left
/// rows are visited in arrival order, each with the right rows in arrival order (Flink's
/// order). `matchable` is false when the key has a NULL (no row matches then).
///
/// # Errors
/// The condition fails to evaluate on a pair.
pub fn join_window(
    kind: JoinKind,
    widths: (usize, usize),
    condition: Option<&Expr>,
    left: &[Row],
    right: &[Row],
    matchable: bool,
) -> Result<Vec<Row>, BoxError> {
    let mut out = Vec::new();
    let mut right_matched = vec![false; right.len()];
    for l in left {
        let mut matched = false;
        if matchable {
            for (r, r_matched) in right.iter().zip(&mut right_matched) {
                let joined = [l.as_slice(), r.as_slice()].concat();
                let ok = crate::join::holds(condition, &joined)?;
                if ok {
                    matched = true;
                    *r_matched = true;
                    out.push(joined);
                }
            }
        }
        if !matched && kind.keeps_left() {
            let mut padded = l.clone();
            padded.extend(std::iter::repeat_n(Value::Null, widths.1));
            out.push(padded);
        }
    }
    if kind.keeps_right() {
        for (r, matched) in right.iter().zip(right_matched) {
            if !matched {
                let mut padded: Row = std::iter::repeat_n(Value::Null, widths.0).collect();
                padded.extend_from_slice(r);
                out.push(padded);
            }
        }
    }
    Ok(out)
}

/// The function of a window join, keyed by the equi-join key (window bounds included).
#[derive(Clone)]
pub struct WindowJoinFn {
    kind: JoinKind,
    widths: (usize, usize),
    ends: (usize, usize),
    condition: Option<Arc<Expr>>,
    state: Option<(ListState<Row>, ListState<Row>)>,
}

impl WindowJoinFn {
    /// The join of rows `widths` wide (left, right) whose window_end columns are `ends`
    /// (in a left row, in a right row), pairs filtered by `condition` (over the joined row).
    pub fn new(
        kind: JoinKind,
        widths: (usize, usize),
        ends: (usize, usize),
        condition: Option<Expr>,
    ) -> Self {
        WindowJoinFn {
            kind,
            widths,
            ends,
            condition: condition.map(Arc::new),
            state: None,
        }
    }

    fn process(
        &mut self,
        left: bool,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (ls, rs) = self.state.as_ref().ok_or("window join not opened")?;
        let end_column = if left { self.ends.0 } else { self.ends.1 };
        let Some(end) = row.get(end_column).and_then(Value::epoch_ms) else {
            return Err("a window join's window_end is NULL in a row".into());
        };
        let fires = end - 1;
        if fires <= ctx.current_watermark() {
            // Late: the window has fired (and its state is gone).
            return Ok(());
        }
        if left { ls } else { rs }.add(row);
        // One timer per key and time: the key holds one window.
        ctx.timer_service().register_event_time_timer(fires);
        Ok(())
    }
}

impl KeyedCoProcessFunction<Vec<Value>, Row, Row, Row> for WindowJoinFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some((
            ctx.get_list_state(&ListStateDescriptor::new("window-join-left"))?,
            ctx.get_list_state(&ListStateDescriptor::new("window-join-right"))?,
        ));
        Ok(())
    }

    fn process_element1(
        &mut self,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        self.process(true, row, ctx)
    }

    fn process_element2(
        &mut self,
        row: Row,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        self.process(false, row, ctx)
    }

    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        ctx: &mut KeyedProcessContext<'_, Vec<Value>, Row>,
    ) -> Result<(), BoxError> {
        let (ls, rs) = self.state.as_ref().ok_or("window join not opened")?;
        let (left, right) = (ls.get(), rs.get());
        ls.clear();
        rs.clear();
        let matchable = !ctx.current_key().iter().any(Value::is_null);
        let out = join_window(
            self.kind,
            self.widths,
            self.condition.as_deref(),
            &left,
            &right,
            matchable,
        )?;
        for r in out {
            ctx.collect(r);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::DataType;

    fn ts(ms: i64) -> Value {
        Value::Timestamp(ms)
    }

    fn row(k: i32, name: &str) -> Row {
        vec![Value::Int(k), Value::String(name.into())]
    }

    fn names(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        Value::Null => "-".to_string(),
                        Value::String(s) => s.to_string(),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    }

    #[test]
    fn tumble_hop_and_cumulate_put_a_row_in_each_of_its_windows() {
        let windows = |window: WindowKind, at: i64| {
            let mut f = WindowTvfFn::new(window, 0, "ts".into());
            let mut got: Vec<(Value, Value, Value)> = f
                .rows(vec![ts(at)])
                .unwrap()
                .into_iter()
                .map(|r| {
                    assert_eq!(r[0], ts(at), "the row's own columns come first");
                    (r[1].clone(), r[2].clone(), r[3].clone())
                })
                .collect();
            got.sort_by_key(|w| format!("{w:?}"));
            got
        };
        assert_eq!(
            windows(WindowKind::Tumble { size: 10_000 }, 12_345),
            vec![(ts(10_000), ts(20_000), ts(19_999))]
        );
        // Before the epoch: the window that holds it, not one rounded towards zero.
        assert_eq!(
            windows(WindowKind::Tumble { size: 10_000 }, -1),
            vec![(ts(-10_000), ts(0), ts(-1))]
        );
        let mut hop = windows(
            WindowKind::Hop {
                slide: 5_000,
                size: 10_000,
            },
            12_000,
        );
        hop.sort_by_key(|w| match w.0 {
            Value::Timestamp(s) => s,
            _ => 0,
        });
        assert_eq!(
            hop,
            vec![
                (ts(5_000), ts(15_000), ts(14_999)),
                (ts(10_000), ts(20_000), ts(19_999))
            ]
        );
        let mut cumulate = windows(
            WindowKind::Cumulate {
                step: 4_000,
                size: 12_000,
            },
            5_000,
        );
        cumulate.sort_by_key(|w| match w.1 {
            Value::Timestamp(e) => e,
            _ => 0,
        });
        assert_eq!(
            cumulate,
            vec![
                (ts(0), ts(8_000), ts(7_999)),
                (ts(0), ts(12_000), ts(11_999))
            ]
        );
    }

    #[test]
    fn a_null_rowtime_fails_with_the_column_named() {
        let mut f = WindowTvfFn::new(WindowKind::Tumble { size: 10 }, 1, "ts".into());
        let e = f.rows(vec![Value::Int(1), Value::Null]).unwrap_err();
        assert!(e.to_string().contains("'ts' is NULL"), "{e}");
    }

    #[test]
    fn inner_and_outer_joins_of_one_window_pair_rows_and_pad_the_unmatched() {
        let left = vec![row(1, "a"), row(1, "b")];
        let right = vec![row(1, "x"), row(1, "y")];
        // The pairs whose right row is not y: y matches nothing.
        let cond = Expr::Cmp(
            crate::expr::CmpOp::NotEq,
            Box::new(Expr::Column(3, DataType::String)),
            Box::new(Expr::Literal(Value::String("y".into()), DataType::String)),
        );
        let run = |kind, l: &[Row], r: &[Row], matchable| {
            names(&join_window(kind, (2, 2), Some(&cond), l, r, matchable).unwrap())
        };
        assert_eq!(
            run(JoinKind::Inner, &left, &right, true),
            ["Int(1),a,Int(1),x", "Int(1),b,Int(1),x"]
        );
        assert_eq!(
            run(JoinKind::Full, &left, &right, true),
            ["Int(1),a,Int(1),x", "Int(1),b,Int(1),x", "-,-,Int(1),y"]
        );
        let only_y = vec![row(1, "y")];
        assert_eq!(
            run(JoinKind::Left, &left, &only_y, true),
            ["Int(1),a,-,-", "Int(1),b,-,-"]
        );
        // One side empty: outer joins pad the other, inner joins emit nothing.
        assert_eq!(run(JoinKind::Inner, &left, &[], true), Vec::<String>::new());
        assert_eq!(
            run(JoinKind::Left, &left, &[], true),
            ["Int(1),a,-,-", "Int(1),b,-,-"]
        );
        assert_eq!(run(JoinKind::Left, &[], &right, true), Vec::<String>::new());
        assert_eq!(
            run(JoinKind::Right, &[], &right, true),
            ["-,-,Int(1),x", "-,-,Int(1),y"]
        );
        // A NULL key matches nothing; outer sides still come out padded.
        assert_eq!(
            run(JoinKind::Full, &left[..1], &right[..1], false),
            ["Int(1),a,-,-", "-,-,Int(1),x"]
        );
        assert_eq!(
            run(JoinKind::Inner, &left, &right, false),
            Vec::<String>::new()
        );
    }

    /// What the test feeds: `(time, Some(key))` a row, `(time, None)` a watermark.
    type Event = (i64, Option<i32>);

    /// A source the test feeds while the job runs (it ends when the sender is dropped), so
    /// the watermark each row meets is known rather than raced.
    struct Feed(std::sync::Mutex<Option<std::sync::mpsc::Receiver<Event>>>);

    struct FeedReader(std::sync::mpsc::Receiver<Event>);

    impl fjord::Source<(i64, Option<i32>)> for Feed {
        fn is_parallel(&self) -> bool {
            false
        }
        fn create_reader(
            &self,
            _ctx: &RuntimeContext,
        ) -> Result<Box<dyn fjord::SourceReader<(i64, Option<i32>)>>, BoxError> {
            let rx = self.0.lock().unwrap().take().ok_or("runs once")?;
            Ok(Box::new(FeedReader(rx)))
        }
    }

    impl fjord::SourceReader<(i64, Option<i32>)> for FeedReader {
        fn poll_next(
            &mut self,
            output: &mut fjord::SourceOutput<'_, (i64, Option<i32>)>,
        ) -> Result<fjord::SourceStatus, BoxError> {
            use std::sync::mpsc::RecvTimeoutError;
            match self.0.recv_timeout(Duration::from_millis(2)) {
                Ok(v) => {
                    output.collect(v);
                    Ok(fjord::SourceStatus::MoreAvailable)
                }
                Err(RecvTimeoutError::Timeout) => Ok(fjord::SourceStatus::NothingAvailable),
                Err(RecvTimeoutError::Disconnected) => Ok(fjord::SourceStatus::Finished),
            }
        }
    }

    /// One input of the operator, fed through the returned sender: `(time, Some(key))` is a
    /// row of that key in the 10 ms tumbling window of `time` (key, window_start,
    /// window_end), `(time, None)` a watermark.
    fn input(
        env: &fjord::StreamExecutionEnvironment,
        name: &str,
    ) -> (fjord::DataStream<Row>, std::sync::mpsc::Sender<Event>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let strategy =
            fjord::time::WatermarkStrategy::for_punctuated(|e: &(i64, Option<i32>), _| {
                e.1.is_none().then_some(e.0)
            })
            .with_timestamp_assigner(|e: &(i64, Option<i32>), _| e.0);
        let stream = env
            .from_source(Feed(std::sync::Mutex::new(Some(rx))), name)
            .stream()
            .assign_timestamps_and_watermarks(strategy)
            .set_parallelism(1)
            .flat_map(|(t, k): (i64, Option<i32>)| {
                k.map(|k| vec![Value::Int(k), ts(t - t % 10), ts(t - t % 10 + 10)])
            })
            .set_parallelism(1)
            .stream();
        (stream, tx)
    }

    fn text(r: &Row) -> String {
        r.iter()
            .map(|v| match v {
                Value::Int(i) => i.to_string(),
                Value::Timestamp(t) => t.to_string(),
                _ => "-".into(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn windows_fire_at_the_watermark_and_rows_of_fired_windows_are_dropped() {
        let env = fjord::StreamExecutionEnvironment::new();
        // One join subtask: the window's output then proves that this subtask has both
        // inputs' watermark 50. (At parallelism 2 the subtask of key 2 may not have the left
        // input's watermark yet when the right's late row arrives, and rightly keeps it: CI
        // saw "-,-,-,2,0,10" once.)
        env.set_parallelism(1);
        let (left, feed_left) = input(&env, "left");
        let (right, feed_right) = input(&env, "right");
        let key = |r: &Row| r.clone();
        let f = WindowJoinFn::new(JoinKind::Full, (3, 3), (2, 2), None);
        let (tx, out) = std::sync::mpsc::channel();
        left.connect(&right)
            .key_by(key, key)
            .process(f)
            .stream()
            .for_each(move |r: Row| {
                let _ = tx.send(text(&r));
            });
        let job = env.execute_async("window join lateness").unwrap();
        let next = || {
            out.recv_timeout(Duration::from_secs(20))
                .expect("a joined row in time")
        };
        feed_left.send((1, Some(1))).unwrap();
        feed_right.send((2, Some(1))).unwrap();
        // Nothing before the watermark passes 9 on both inputs; then window [0, 10) fires.
        for feed in [&feed_left, &feed_right] {
            feed.send((50, None)).unwrap();
        }
        assert_eq!(next(), "1,0,10,1,0,10");
        // Both inputs are at watermark 50 now: rows of [0, 10) are late and dropped, even
        // of a key that has no state there.
        feed_left.send((5, Some(1))).unwrap();
        feed_right.send((7, Some(2))).unwrap();
        feed_left.send((101, Some(1))).unwrap();
        feed_right.send((103, Some(3))).unwrap();
        drop((feed_left, feed_right));
        job.wait().unwrap();
        // At the end of input the watermark passes every window: [100, 110) fires, its
        // rows without a match padded.
        let mut rest: Vec<String> = out.try_iter().collect();
        rest.sort();
        assert_eq!(rest, ["-,-,-,3,100,110", "1,100,110,-,-,-"]);
    }
}
