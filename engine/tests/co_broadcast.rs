//! CoProcessFunction, KeyedCoProcessFunction and the broadcast state pattern, with exact
//! outputs.

mod event_support;

use event_support::{FeedSource, channel_sink, next, r, sorted, timed, w};
use fjord::state::{ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor};
use fjord::{
    BoxError, BroadcastContext, BroadcastProcessFunction, CoProcessFunction,
    KeyedBroadcastProcessFunction, KeyedCoProcessFunction, KeyedProcessContext,
    KeyedReadOnlyContext, OutputTag, ProcessContext, ReadOnlyContext, RuntimeContext,
    StreamExecutionEnvironment,
};

type Rec = (String, i64, i64);

/// Tags each record with its input and timestamp; odd values of input 1 also go to a side
/// output.
#[derive(Clone)]
struct Tagger;

impl CoProcessFunction<Rec, Rec, String> for Tagger {
    fn process_element1(
        &mut self,
        (k, _, v): Rec,
        ctx: &mut ProcessContext<'_, String>,
    ) -> Result<(), BoxError> {
        let ts = ctx.timestamp().expect("timestamped");
        ctx.collect(format!("1:{k}:{v}@{ts}"));
        if v % 2 == 1 {
            ctx.output(&OutputTag::<i64>::new("odd"), v);
        }
        Ok(())
    }
    fn process_element2(
        &mut self,
        (k, _, v): Rec,
        ctx: &mut ProcessContext<'_, String>,
    ) -> Result<(), BoxError> {
        let ts = ctx.timestamp().expect("timestamped");
        ctx.collect(format!("2:{k}:{v}@{ts}"));
        Ok(())
    }
}

#[test]
fn co_process_function_sees_both_inputs_timestamps_and_side_outputs() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let one = timed(&env, vec![r("a", 1, 1), r("b", 2, 2), r("a", 3, 3)]);
    let two = timed(&env, vec![r("x", 7, 10), r("y", 8, 11)]);
    let processed = one.connect(&two).process(Tagger);
    let odd = processed
        .get_side_output(&OutputTag::<i64>::new("odd"))
        .collect();
    let main = processed.collect();
    env.execute("co-process").unwrap();
    assert_eq!(
        sorted(main.values()),
        vec!["1:a:1@1", "1:a:3@3", "1:b:2@2", "2:x:10@7", "2:y:11@8"]
    );
    assert_eq!(sorted(odd.values()), vec![1, 3]);
}

/// Per key, sums each side's values with timestamps before the end of their 10 ms bucket and
/// emits `(key, bucket end, left sum, right sum)` when the watermark passes the bucket end.
#[derive(Clone)]
struct BucketSums;

fn side(i: usize) -> ListStateDescriptor<(i64, i64)> {
    ListStateDescriptor::new(if i == 1 { "left" } else { "right" })
}

fn bucket_end(ts: i64) -> i64 {
    ts - ts.rem_euclid(10) + 10
}

impl BucketSums {
    fn add(
        &self,
        i: usize,
        (_, ts, v): Rec,
        ctx: &mut KeyedProcessContext<'_, String, (String, i64, i64, i64)>,
        rt: &RuntimeContext,
    ) -> Result<(), BoxError> {
        rt.get_list_state(&side(i))?.add((ts, v));
        ctx.timer_service()
            .register_event_time_timer(bucket_end(ts));
        if v >= 200 {
            let key = ctx.current_key().clone();
            ctx.output(&OutputTag::<(String, i64)>::new("big"), (key, v));
        }
        Ok(())
    }
}

#[derive(Clone, Default)]
struct BucketSumsFn {
    rt: Option<RuntimeContext>,
}

impl KeyedCoProcessFunction<String, Rec, Rec, (String, i64, i64, i64)> for BucketSumsFn {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }
    fn process_element1(
        &mut self,
        value: Rec,
        ctx: &mut KeyedProcessContext<'_, String, (String, i64, i64, i64)>,
    ) -> Result<(), BoxError> {
        BucketSums.add(1, value, ctx, self.rt.as_ref().unwrap())
    }
    fn process_element2(
        &mut self,
        value: Rec,
        ctx: &mut KeyedProcessContext<'_, String, (String, i64, i64, i64)>,
    ) -> Result<(), BoxError> {
        BucketSums.add(2, value, ctx, self.rt.as_ref().unwrap())
    }
    fn on_timer(
        &mut self,
        t: i64,
        ctx: &mut KeyedProcessContext<'_, String, (String, i64, i64, i64)>,
    ) -> Result<(), BoxError> {
        let rt = self.rt.as_ref().unwrap();
        let mut sums = [0i64; 2];
        for (i, sum) in sums.iter_mut().enumerate() {
            let state = rt.get_list_state(&side(i + 1))?;
            let (due, later): (Vec<_>, Vec<_>) =
                state.get().into_iter().partition(|(ts, _)| *ts < t);
            *sum = due.iter().map(|(_, v)| v).sum();
            state.update(later);
        }
        assert_eq!(ctx.timestamp(), Some(t));
        let key = ctx.current_key().clone();
        ctx.collect((key, t, sums[0], sums[1]));
        Ok(())
    }
}

#[test]
fn keyed_co_process_function_shares_keyed_state_and_timers_between_inputs() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let left = timed(
        &env,
        vec![r("a", 1, 10), r("b", 2, 20), w(10), r("a", 12, 1), w(30)],
    );
    let right = timed(&env, vec![r("a", 3, 100), w(11), r("b", 14, 200), w(30)]);
    let processed = left
        .connect(&right)
        .key_by(|r: &Rec| r.0.clone(), |r: &Rec| r.0.clone())
        .process(BucketSumsFn::default());
    let big = processed
        .get_side_output(&OutputTag::<(String, i64)>::new("big"))
        .collect();
    let out = processed.collect();
    env.execute("keyed co-process").unwrap();
    let s = |k: &str| k.to_string();
    assert_eq!(
        sorted(out.values()),
        vec![
            (s("a"), 10, 10, 100),
            (s("a"), 20, 1, 0),
            (s("b"), 10, 20, 0),
            (s("b"), 20, 0, 200),
        ]
    );
    assert_eq!(big.values(), vec![(s("b"), 200)]);
}

fn rules() -> MapStateDescriptor<String, i64> {
    MapStateDescriptor::new("rules")
}

/// Multiplies elements by the broadcast rule "mult"; elements that come before the rule wait
/// in the instance, so the result does not depend on how the inputs interleave.
#[derive(Clone, Default)]
struct Multiply {
    pending: Vec<i64>,
    subtask: usize,
}

impl BroadcastProcessFunction<i64, (String, i64), String> for Multiply {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.subtask = ctx.subtask_index;
        Ok(())
    }
    fn process_element(
        &mut self,
        v: i64,
        ctx: &mut ReadOnlyContext<'_, '_, String>,
    ) -> Result<(), BoxError> {
        match ctx.broadcast_state(&rules())?.get(&"mult".to_string()) {
            Some(m) => ctx.collect(format!("{}", v * m)),
            None => self.pending.push(v),
        }
        Ok(())
    }
    fn process_broadcast_element(
        &mut self,
        (name, m): (String, i64),
        ctx: &mut BroadcastContext<'_, '_, (), String>,
    ) -> Result<(), BoxError> {
        ctx.broadcast_state(&rules())?.put(name, m);
        ctx.collect(format!("rule at subtask {}", self.subtask));
        for v in std::mem::take(&mut self.pending) {
            ctx.collect(format!("{}", v * m));
        }
        // Keyed state does not exist on a non-keyed stream.
        let err = ctx
            .apply_to_keyed_state(&ValueStateDescriptor::<i64>::new("x"), |_, _| Ok(()))
            .unwrap_err();
        assert!(err.to_string().contains("keyed stream"), "{err}");
        Ok(())
    }
}

#[test]
fn broadcast_state_reaches_every_instance_of_a_non_keyed_stream() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let rules_stream = env
        .from_collection(vec![("mult".to_string(), 10i64)])
        .broadcast_with(&[&rules()]);
    let out = env
        .from_collection((1..=6).collect::<Vec<i64>>())
        .rebalance()
        .connect_broadcast(&rules_stream)
        .process(Multiply::default())
        .collect();
    env.execute("broadcast").unwrap();
    let mut expected: Vec<String> = (1..=6).map(|v| format!("{}", v * 10)).collect();
    expected.push("rule at subtask 0".into());
    expected.push("rule at subtask 1".into());
    assert_eq!(sorted(out.values()), sorted(expected));
}

#[test]
fn unknown_broadcast_state_is_a_clear_error() {
    #[derive(Clone)]
    struct Wrong;
    impl BroadcastProcessFunction<i64, i64, i64> for Wrong {
        fn process_element(
            &mut self,
            _: i64,
            _: &mut ReadOnlyContext<'_, '_, i64>,
        ) -> Result<(), BoxError> {
            Ok(())
        }
        fn process_broadcast_element(
            &mut self,
            _: i64,
            ctx: &mut BroadcastContext<'_, '_, (), i64>,
        ) -> Result<(), BoxError> {
            ctx.broadcast_state(&MapStateDescriptor::<String, i64>::new("typo"))?;
            Ok(())
        }
    }
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let b = env.from_collection(vec![1i64]).broadcast_with(&[&rules()]);
    env.from_collection(vec![1i64])
        .connect_broadcast(&b)
        .process(Wrong)
        .collect();
    let err = env.execute("typo").unwrap_err().to_string();
    assert!(
        err.contains("has no state 'typo' (it declares: rules)"),
        "{err}"
    );
}

fn count() -> ValueStateDescriptor<i64> {
    ValueStateDescriptor::new("count")
}

/// Keeps a running sum per key and reports it plus the broadcast "bonus"; the rule "bonus"
/// reports every key's sum, the rule "reset" clears them all (apply_to_keyed_state).
#[derive(Clone, Default)]
struct Bonus {
    rt: Option<RuntimeContext>,
}

impl KeyedBroadcastProcessFunction<String, (String, i64), (String, i64), String> for Bonus {
    fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
        self.rt = Some(ctx.clone());
        Ok(())
    }
    fn process_element(
        &mut self,
        (key, v): (String, i64),
        ctx: &mut KeyedReadOnlyContext<'_, '_, String, String>,
    ) -> Result<(), BoxError> {
        let state = self.rt.as_ref().unwrap().get_state(&count())?;
        let sum = state.value().unwrap_or(0) + v;
        state.update(sum);
        let bonus = ctx
            .broadcast_state(&rules())?
            .get(&"bonus".to_string())
            .unwrap_or(0);
        assert_eq!(ctx.current_key(), &key);
        ctx.collect(format!("{key}={}", sum + bonus));
        Ok(())
    }
    fn process_broadcast_element(
        &mut self,
        (name, value): (String, i64),
        ctx: &mut BroadcastContext<'_, '_, String, String>,
    ) -> Result<(), BoxError> {
        let subtask = self.rt.as_ref().unwrap().subtask_index;
        ctx.collect(format!("rule {name}={value} at subtask {subtask}"));
        let mut reports = Vec::new();
        if name == "reset" {
            ctx.apply_to_keyed_state(&count(), |k, s| {
                reports.push(format!("cleared {k}"));
                s.clear();
                Ok(())
            })?;
        } else {
            ctx.broadcast_state(&rules())?.put(name.clone(), value);
            ctx.apply_to_keyed_state(&count(), |k, s| {
                reports.push(format!("{k}:{} {name} {value}", s.value().unwrap_or(0)));
                Ok(())
            })?;
        }
        for r in reports {
            ctx.collect(r);
        }
        Ok(())
    }
}

fn take(rx: &std::sync::mpsc::Receiver<String>, n: usize) -> Vec<String> {
    sorted((0..n).map(|_| next(rx)).collect())
}

#[test]
fn keyed_broadcast_process_function_reads_rules_and_applies_to_keyed_state() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let (events, send_event) = FeedSource::<(String, i64)>::new();
    let (rule_src, send_rule) = FeedSource::<(String, i64)>::new();
    let rules_stream = env
        .from_source(rule_src, "rules")
        .broadcast_with(&[&rules()]);
    let out = env
        .from_source(events, "events")
        .key_by(|e: &(String, i64)| e.0.clone())
        .connect_broadcast(&rules_stream)
        .process(Bonus::default())
        .uid("bonus");
    let rx = channel_sink(&out.stream());
    let client = env.execute_async("keyed broadcast").unwrap();
    let ev = |k: &str, v: i64| (k.to_string(), v);

    for e in [ev("a", 1), ev("b", 2), ev("a", 3)] {
        send_event.send(e).unwrap();
    }
    assert_eq!(take(&rx, 3), vec!["a=1", "a=4", "b=2"]);

    send_rule.send(ev("bonus", 100)).unwrap();
    assert_eq!(
        take(&rx, 4),
        vec![
            "a:4 bonus 100",
            "b:2 bonus 100",
            "rule bonus=100 at subtask 0",
            "rule bonus=100 at subtask 1"
        ]
    );

    send_event.send(ev("b", 1)).unwrap();
    assert_eq!(take(&rx, 1), vec!["b=103"]);

    send_rule.send(ev("reset", 0)).unwrap();
    assert_eq!(
        take(&rx, 4),
        vec![
            "cleared a",
            "cleared b",
            "rule reset=0 at subtask 0",
            "rule reset=0 at subtask 1"
        ]
    );

    send_event.send(ev("a", 5)).unwrap();
    assert_eq!(take(&rx, 1), vec!["a=105"]);

    drop(send_event);
    drop(send_rule);
    client.wait().unwrap();
    assert!(rx.try_recv().is_err(), "no further output");
}
