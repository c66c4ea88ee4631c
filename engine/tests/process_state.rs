//! Keyed process functions, timers and keyed state (with TTL), asserting exact outputs.

mod event_support;

use event_support::{FeedSource, channel_sink, next, r, sorted, timed, w};
use fjord::state::{
    AggregatingStateDescriptor, ListState, ListStateDescriptor, MapState, MapStateDescriptor,
    ReducingState, ReducingStateDescriptor, StateTtlConfig, StateVisibility, UpdateType,
    ValueState, ValueStateDescriptor,
};
use fjord::time::ManualClock;
use fjord::{
    AggregateFunction, BoxError, KeyedProcessContext, KeyedProcessFunction, OutputTag,
    RuntimeContext, StreamExecutionEnvironment, TimeDomain,
};
use std::time::Duration;

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

/// Emits `(key, timer timestamp, domain)` for each timer; registers the timers a record asks
/// for in its value: event-time timer at `value`, and deletes the one at `value + 1`.
#[derive(Clone)]
struct TimerRecorder;

impl KeyedProcessFunction<String, (String, i64, i64), (String, i64, String)> for TimerRecorder {
    fn process_element(
        &mut self,
        v: (String, i64, i64),
        ctx: &mut KeyedProcessContext<'_, String, (String, i64, String)>,
    ) -> Result<(), BoxError> {
        let mut timers = ctx.timer_service();
        timers.register_event_time_timer(v.2);
        timers.register_event_time_timer(v.2 + 1);
        timers.delete_event_time_timer(v.2 + 1);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedProcessContext<'_, String, (String, i64, String)>,
    ) -> Result<(), BoxError> {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::EventTime));
        assert_eq!(ctx.timestamp(), Some(timestamp));
        let key = ctx.current_key().clone();
        ctx.collect((
            key,
            timestamp,
            format!("wm<{}", ctx.current_watermark() + 1),
        ));
        Ok(())
    }
}

#[test]
fn event_time_timers_fire_in_timestamp_order_once_per_key_and_timestamp() {
    let env = env(1);
    let input = vec![
        r("a", 1, 30),
        r("b", 2, 10),
        r("a", 3, 10),
        r("a", 4, 30), // duplicate of a@30: one timer
        r("b", 5, 20),
        w(15),
        r("c", 16, 5), // already due: fires at the next watermark
        w(25),
        w(100),
    ];
    let out = timed(&env, input)
        .key_by(|e: &(String, i64, i64)| e.0.clone())
        .process(TimerRecorder)
        .collect();
    env.execute("timers").unwrap();
    let got: Vec<(String, i64, String)> = out.values();
    let expected = vec![
        ("b", 10, "wm<16"), // registered before a@10
        ("a", 10, "wm<16"),
        ("c", 5, "wm<26"),
        ("b", 20, "wm<26"),
        ("a", 30, "wm<101"),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(k, t, s)| (k.to_string(), t, s.to_string()))
        .collect();
    assert_eq!(got, expected);
}

/// Count per key with a value state; emits the count from a processing-time timer 100 ms
/// after the last element of the key, and "seen" acknowledgements to a side output.
#[derive(Clone)]
struct ProcessingTimeout {
    count: Option<ValueState<(u64, i64)>>,
}

const SEEN: &str = "seen";

impl KeyedProcessFunction<String, String, (String, u64)> for ProcessingTimeout {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.count = Some(ctx.get_state(&ValueStateDescriptor::new("count"))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        v: String,
        ctx: &mut KeyedProcessContext<'_, String, (String, u64)>,
    ) -> Result<(), BoxError> {
        let state = self.count.as_ref().unwrap();
        let now = ctx.timer_service().current_processing_time();
        let (count, _) = state.value().unwrap_or((0, 0));
        state.update((count + 1, now));
        ctx.timer_service()
            .register_processing_time_timer(now + 100);
        ctx.output(&OutputTag::<String>::new(SEEN), v);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut KeyedProcessContext<'_, String, (String, u64)>,
    ) -> Result<(), BoxError> {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::ProcessingTime));
        assert_eq!(ctx.timestamp(), None);
        let state = self.count.as_ref().unwrap();
        let (count, last) = state.value().unwrap();
        if timestamp == last + 100 {
            let key = ctx.current_key().clone();
            ctx.collect((key, count));
        }
        Ok(())
    }
}

#[test]
fn processing_time_timers_fire_when_the_injected_clock_advances() {
    let clock = ManualClock::new(1_000);
    let env = env(1);
    env.set_clock(clock.clone());
    let (source, feed) = FeedSource::<String>::new();
    let counted = env
        .from_source(source, "feed")
        .key_by(|s: &String| s.clone())
        .process(ProcessingTimeout { count: None });
    let results = channel_sink(&counted);
    let seen = channel_sink(&counted.get_side_output(&OutputTag::<String>::new(SEEN)));
    let job = env.execute_async("processing timers").unwrap();

    feed.send("a".into()).unwrap();
    assert_eq!(next(&seen), "a"); // timer for a at 1100
    clock.advance(50);
    feed.send("a".into()).unwrap();
    assert_eq!(next(&seen), "a"); // a: count 2, timer at 1150 (1100 stays but is stale)
    feed.send("b".into()).unwrap();
    assert_eq!(next(&seen), "b"); // b: timer at 1150
    clock.advance(60); // 1110: a's first timer fires but is stale
    clock.advance(40); // 1150: both fire
    let mut fired = vec![next(&results), next(&results)];
    fired.sort();
    assert_eq!(fired, vec![("a".to_string(), 2), ("b".to_string(), 1)]);
    drop(feed);
    job.wait().unwrap();
    assert!(results.try_recv().is_err(), "nothing else fired");
}

/// Exercises every keyed state type per key.
#[derive(Clone)]
struct AllStates {
    list: Option<ListState<i64>>,
    reducing: Option<ReducingState<i64>>,
    map: Option<MapState<i64, u32>>,
    agg: Option<fjord::state::AggregatingState<i64, (i64, i64), f64>>,
}

#[derive(Clone)]
struct Average;

impl AggregateFunction<i64, (i64, i64), f64> for Average {
    fn create_accumulator(&mut self) -> (i64, i64) {
        (0, 0)
    }
    fn add(&mut self, v: i64, acc: (i64, i64)) -> (i64, i64) {
        (acc.0 + v, acc.1 + 1)
    }
    fn get_result(&mut self, acc: &(i64, i64)) -> f64 {
        acc.0 as f64 / acc.1 as f64
    }
    fn merge(&mut self, a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

type Summary = (String, Vec<i64>, i64, Vec<(i64, u32)>, f64);

impl KeyedProcessFunction<String, (String, i64, i64), Summary> for AllStates {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.list = Some(ctx.get_list_state(&ListStateDescriptor::new("list"))?);
        self.reducing = Some(
            ctx.get_reducing_state(&ReducingStateDescriptor::new("max", |a: i64, b: i64| {
                a.max(b)
            }))?,
        );
        self.map = Some(ctx.get_map_state(&MapStateDescriptor::new("histogram"))?);
        self.agg =
            Some(ctx.get_aggregating_state(&AggregatingStateDescriptor::new("avg", Average))?);
        Ok(())
    }

    fn process_element(
        &mut self,
        v: (String, i64, i64),
        ctx: &mut KeyedProcessContext<'_, String, Summary>,
    ) -> Result<(), BoxError> {
        let (list, reducing, map, agg) = (
            self.list.as_ref().unwrap(),
            self.reducing.as_ref().unwrap(),
            self.map.as_ref().unwrap(),
            self.agg.as_ref().unwrap(),
        );
        list.add(v.2);
        reducing.add(v.2);
        map.put(v.2 % 3, map.get(&(v.2 % 3)).unwrap_or(0) + 1);
        agg.add(v.2);
        let mut hist = map.entries();
        hist.sort();
        ctx.collect((
            v.0,
            list.get(),
            reducing.get().unwrap(),
            hist,
            agg.get().unwrap(),
        ));
        Ok(())
    }
}

#[test]
fn keyed_state_is_scoped_to_the_current_key() {
    let env = env(2);
    let input = vec![
        r("a", 1, 4),
        r("b", 1, 9),
        r("a", 2, 7),
        r("a", 3, 1),
        r("b", 4, 3),
    ];
    let out = timed(&env, input)
        .key_by(|e: &(String, i64, i64)| e.0.clone())
        .process(AllStates {
            list: None,
            reducing: None,
            map: None,
            agg: None,
        })
        .collect();
    env.execute("states").unwrap();
    let mut last_a = None;
    let mut last_b = None;
    for s in out.values() {
        if s.0 == "a" {
            last_a = Some(s);
        } else {
            last_b = Some(s);
        }
    }
    assert_eq!(
        last_a.unwrap(),
        ("a".to_string(), vec![4, 7, 1], 7, vec![(1, 3)], 4.0)
    );
    assert_eq!(
        last_b.unwrap(),
        ("b".to_string(), vec![9, 3], 9, vec![(0, 2)], 6.0)
    );
}

/// Gets its state handle on every record (not once in `open`): a count per key; a record
/// with value 0 asks for the same name with another type.
#[derive(Clone, Default)]
struct HandlePerRecord {
    rt: Option<RuntimeContext>,
}

impl KeyedProcessFunction<String, (String, i64, i64), (String, u64)> for HandlePerRecord {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }

    fn process_element(
        &mut self,
        v: (String, i64, i64),
        ctx: &mut KeyedProcessContext<'_, String, (String, u64)>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().ok_or("open did not run")?;
        if v.2 == 0 {
            rt.get_state(&ValueStateDescriptor::<String>::new("count"))?;
        }
        let count = rt.get_state(&ValueStateDescriptor::<u64>::new("count"))?;
        let n = count.value().unwrap_or(0) + 1;
        count.update(n);
        ctx.collect((v.0, n));
        Ok(())
    }
}

#[test]
fn state_handles_got_per_record_share_the_state_and_check_its_type() {
    let env = env(1);
    let input = vec![r("a", 1, 4), r("b", 1, 9), r("a", 2, 7), r("a", 3, 1)];
    let out = timed(&env, input)
        .key_by(|e: &(String, i64, i64)| e.0.clone())
        .process(HandlePerRecord::default())
        .collect();
    env.execute("handles").unwrap();
    let got: Vec<_> = out.values();
    let want = [("a", 1), ("b", 1), ("a", 2), ("a", 3)].map(|(k, n)| (k.to_string(), n));
    assert_eq!(got, want);

    let env2 = self::env(1);
    timed(&env2, vec![r("a", 1, 4), r("a", 2, 0)])
        .key_by(|e: &(String, i64, i64)| e.0.clone())
        .process(HandlePerRecord::default())
        .collect();
    let err = env2.execute("handles").unwrap_err().to_string();
    assert!(err.contains("count") && err.contains("String"), "{err}");
}

#[test]
fn keyed_state_outside_a_keyed_stream_fails_clearly() {
    #[derive(Clone)]
    struct Bad;
    impl fjord::MapFunction<i32, i32> for Bad {
        fn map(&mut self, v: i32) -> Result<i32, BoxError> {
            Ok(v)
        }
        fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
            ctx.get_state(&ValueStateDescriptor::<u8>::new("x"))?;
            Ok(())
        }
    }
    let env = env(1);
    env.from_collection(vec![1]).map(Bad).collect();
    let err = env.execute("not keyed").unwrap_err().to_string();
    assert!(err.contains("can only be used on a keyed stream"), "{err}");
}

/// Reads a TTL'd value state on every record ("get" reads, "put" writes) and reports it.
#[derive(Clone)]
struct TtlProbe {
    ttl: StateTtlConfig,
    state: Option<ValueState<i64>>,
}

impl KeyedProcessFunction<String, (String, String, i64), (String, Option<i64>)> for TtlProbe {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.state = Some(ctx.get_state(&ValueStateDescriptor::new("v").with_ttl(self.ttl))?);
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (String, String, i64),
        ctx: &mut KeyedProcessContext<'_, String, (String, Option<i64>)>,
    ) -> Result<(), BoxError> {
        let state = self.state.as_ref().unwrap();
        if v.1 == "put" {
            state.update(v.2);
            ctx.collect((v.1, None));
        } else {
            ctx.collect((v.1, state.value()));
        }
        Ok(())
    }
}

/// Runs a TTL scenario: each step is (advance clock by, operation, value) on key "k"; returns
/// the read results.
fn ttl_scenario(ttl: StateTtlConfig, steps: &[(i64, &str, i64)]) -> Vec<Option<i64>> {
    let clock = ManualClock::new(0);
    let env = env(1);
    env.set_clock(clock.clone());
    let (source, feed) = FeedSource::<(String, String, i64)>::new();
    let out = env
        .from_source(source, "feed")
        .key_by(|_: &(String, String, i64)| "k".to_string())
        .process(TtlProbe { ttl, state: None });
    let rx = channel_sink(&out);
    let job = env.execute_async("ttl").unwrap();
    let mut reads = Vec::new();
    for (advance, op, v) in steps {
        clock.advance(*advance);
        feed.send(("k".into(), op.to_string(), *v)).unwrap();
        let (kind, value) = next(&rx);
        if kind == "get" {
            reads.push(value);
        }
    }
    drop(feed);
    job.wait().unwrap();
    reads
}

#[test]
fn ttl_expiry_update_types_and_visibility() {
    let base = StateTtlConfig::new(Duration::from_millis(100));
    // (name, config, steps, expected reads)
    type Case = (
        &'static str,
        StateTtlConfig,
        Vec<(i64, &'static str, i64)>,
        Vec<Option<i64>>,
    );
    let cases: Vec<Case> = vec![
        (
            "alive before ttl",
            base,
            vec![(0, "put", 1), (99, "get", 0)],
            vec![Some(1)],
        ),
        (
            "expired at ttl",
            base,
            vec![(0, "put", 1), (100, "get", 0)],
            vec![None],
        ),
        (
            "reads do not refresh with OnCreateAndWrite",
            base,
            vec![(0, "put", 1), (60, "get", 0), (60, "get", 0)],
            vec![Some(1), None],
        ),
        (
            "reads refresh with OnReadAndWrite",
            base.update_type(UpdateType::OnReadAndWrite),
            vec![
                (0, "put", 1),
                (60, "get", 0),
                (60, "get", 0),
                (99, "get", 0),
                (100, "get", 0),
            ],
            vec![Some(1), Some(1), Some(1), None],
        ),
        (
            "writes refresh",
            base,
            vec![(0, "put", 1), (60, "put", 2), (60, "get", 0)],
            vec![Some(2)],
        ),
        (
            "expired returned once if not cleaned up",
            base.visibility(StateVisibility::ReturnExpiredIfNotCleanedUp)
                .disable_cleanup_in_background(),
            vec![(0, "put", 1), (150, "get", 0), (0, "get", 0)],
            vec![Some(1), None],
        ),
    ];
    for (name, ttl, steps, expected) in cases {
        assert_eq!(ttl_scenario(ttl, &steps), expected, "case: {name}");
    }
}

#[test]
fn ttl_background_cleanup_removes_expired_entries_without_reads() {
    use fjord::state::KeyedStateHandle;
    let _ = std::marker::PhantomData::<KeyedStateHandle>;
    // Covered by the unit tests of the backend (state::backend) through cleanup_step; here we
    // check the visible effect: an expired value is gone even with ReturnExpiredIfNotCleanedUp
    // once background cleanup ran (every access sweeps one key group with `every = 1`).
    let ttl = StateTtlConfig::new(Duration::from_millis(100))
        .visibility(StateVisibility::ReturnExpiredIfNotCleanedUp)
        .cleanup_incrementally(1);
    // 128 key groups: 130 accesses after expiry sweep every key group at least once.
    let mut steps = vec![(0, "put", 1), (200, "get-other", 0)];
    steps.extend(std::iter::repeat_n((0, "get-other", 0), 130));
    steps.push((0, "get", 0));
    assert_eq!(ttl_scenario(ttl, &steps), vec![None]);
}

#[test]
fn keyed_state_is_sorted_per_key_in_parallel() {
    // Parallel keyed counting with a value state gives exact per-key totals.
    #[derive(Clone)]
    struct Count(Option<ValueState<u64>>);
    impl KeyedProcessFunction<i64, i64, (i64, u64)> for Count {
        fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
            self.0 = Some(ctx.get_state(&ValueStateDescriptor::new("n"))?);
            Ok(())
        }
        fn process_element(
            &mut self,
            v: i64,
            ctx: &mut KeyedProcessContext<'_, i64, (i64, u64)>,
        ) -> Result<(), BoxError> {
            let s = self.0.as_ref().unwrap();
            let n = s.value().unwrap_or(0) + 1;
            s.update(n);
            if n == 100 {
                ctx.collect((v, n));
            }
            Ok(())
        }
    }
    let env = env(2);
    let out = env
        .from_sequence(0, 9_999)
        .map(|x: i64| x % 100)
        .key_by(|x: &i64| *x)
        .process(Count(None))
        .collect();
    env.execute("count").unwrap();
    assert_eq!(
        sorted(out.values()),
        (0..100).map(|k| (k, 100)).collect::<Vec<_>>()
    );
}

/// A non-keyed process function (and co-process function) reads the operator's current
/// watermark and the job's processing time through its context or `timer_service()`, as
/// Flink's `ctx.timerService().currentWatermark()` outside a keyed stream: the minimum
/// before the first watermark, then the latest one. (Flink's own output for the same input
/// is compared in `e2e/tests/flink_oracle.rs`, case `process-watermark`.)
#[test]
fn a_non_keyed_process_function_reads_the_current_watermark_and_processing_time() {
    let clock = ManualClock::new(7_000);
    let env = env(1);
    env.set_clock(clock.clone());
    let input = || {
        timed(
            &env,
            vec![r("k", 1, 1), w(5), r("k", 7, 2), w(10), r("k", 12, 3)],
        )
    };
    let out = input()
        .process(
            |e: (String, i64, i64), ctx: &mut fjord::ProcessContext<'_, (i64, i64, i64, i64)>| {
                let service = ctx.timer_service();
                assert_eq!(service.current_watermark(), ctx.current_watermark());
                let now = ctx.current_processing_time();
                ctx.collect((
                    e.2,
                    service.current_watermark(),
                    now,
                    service.current_processing_time(),
                ))
            },
        )
        .collect();
    let co = input().connect(&input()).process(CoWatermarks).collect();
    env.execute("non-keyed process watermark").unwrap();
    let min = fjord::types::MIN_WATERMARK;
    assert_eq!(
        out.values(),
        vec![
            (1, min, 7_000, 7_000),
            (2, 5, 7_000, 7_000),
            (3, 10, 7_000, 7_000)
        ]
    );
    // A co-process function's watermark is the smaller of its inputs' (here equal), so each
    // record sees at most the watermark that preceded it on its own input.
    let co = co.values();
    assert_eq!(co.len(), 6);
    for (value, watermark) in co {
        let preceding = [min, 5, 10][value as usize - 1];
        assert!(
            watermark <= preceding,
            "record {value} saw watermark {watermark}, after only {preceding} on its input"
        );
    }
}

#[derive(Clone)]
struct CoWatermarks;

impl fjord::CoProcessFunction<(String, i64, i64), (String, i64, i64), (i64, i64)> for CoWatermarks {
    fn process_element1(
        &mut self,
        e: (String, i64, i64),
        ctx: &mut fjord::ProcessContext<'_, (i64, i64)>,
    ) -> Result<(), BoxError> {
        value_and_watermark(e, ctx)
    }
    fn process_element2(
        &mut self,
        e: (String, i64, i64),
        ctx: &mut fjord::ProcessContext<'_, (i64, i64)>,
    ) -> Result<(), BoxError> {
        value_and_watermark(e, ctx)
    }
}

/// Emits the record's value with the watermark the operator has when it sees it.
fn value_and_watermark(
    e: (String, i64, i64),
    ctx: &mut fjord::ProcessContext<'_, (i64, i64)>,
) -> Result<(), BoxError> {
    let watermark = ctx.current_watermark();
    ctx.collect((e.2, watermark));
    Ok(())
}
