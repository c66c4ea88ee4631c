//! Every transformation of the DataStream API, asserting exact output.

use fjord::{
    BoxError, Collector, FlatMapFunction, MapFunction, OutputTag, ProcessContext, RuntimeContext,
    StreamExecutionEnvironment,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn map_filter_flat_map_keep_order_at_parallelism_one() {
    let env = env(1);
    let out = env
        .from_collection(vec![1, 2, 3, 4, 5])
        .map(|x: i32| x * 10)
        .filter(|x: &i32| *x != 30)
        .flat_map(|x: i32| vec![x, x + 1])
        .collect();
    env.execute("basic").unwrap();
    assert_eq!(out.values(), vec![10, 11, 20, 21, 40, 41, 50, 51]);
}

#[test]
fn parallel_map_processes_every_record_once() {
    let env = env(4);
    let out = env.from_sequence(1, 10_000).map(|x: i64| x * 2).collect();
    env.execute("parallel").unwrap();
    let values = sorted(out.values());
    assert_eq!(values, (1..=10_000).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn union_merges_streams() {
    let env = env(2);
    let a = env.from_collection(vec![1, 2]);
    let b = env.from_collection(vec![3]);
    let c = env.from_sequence(10, 12).map(|x: i64| x as i32);
    let out = a.union(&[&b, &c]).collect();
    env.execute("union").unwrap();
    assert_eq!(sorted(out.values()), vec![1, 2, 3, 10, 11, 12]);
}

#[test]
fn connect_co_map_and_co_flat_map() {
    let env = env(1);
    let numbers = env.from_collection(vec![1, 2]);
    let words = env.from_collection(vec!["a b".to_string()]);
    let mapped = numbers
        .connect(&words)
        .map(|n: i32| format!("n{n}"), |w: String| format!("w{w}"))
        .collect();
    let flat = numbers
        .connect(&words)
        .flat_map(
            |n: i32| vec![n.to_string(); n as usize],
            |w: String| w.split(' ').map(str::to_string).collect::<Vec<_>>(),
        )
        .collect();
    env.execute("connect").unwrap();
    assert_eq!(sorted(mapped.values()), vec!["n1", "n2", "wa b"]);
    assert_eq!(sorted(flat.values()), vec!["1", "2", "2", "a", "b"]);
}

#[test]
fn keyed_connect_sends_same_keys_to_same_instance() {
    #[derive(Clone)]
    struct Tag(usize);
    impl fjord::CoMapFunction<(u32, char), (u32, i64), (u32, usize)> for Tag {
        fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
            self.0 = ctx.subtask_index;
            Ok(())
        }
        fn map1(&mut self, v: (u32, char)) -> Result<(u32, usize), BoxError> {
            Ok((v.0, self.0))
        }
        fn map2(&mut self, v: (u32, i64)) -> Result<(u32, usize), BoxError> {
            Ok((v.0, self.0))
        }
    }
    let env = env(3);
    let left = env.from_collection((0..50u32).map(|k| (k, 'x')).collect());
    let right = env.from_collection((0..50u32).map(|k| (k, k as i64)).collect());
    let out = left
        .connect(&right)
        .key_by(|l: &(u32, char)| l.0, |r: &(u32, i64)| r.0)
        .map_with(Tag(0))
        .collect();
    env.execute("keyed connect").unwrap();
    let mut by_key = std::collections::HashMap::new();
    for (k, subtask) in out.values() {
        let previous = by_key.insert(k, subtask);
        assert!(
            previous.is_none() || previous == Some(subtask),
            "key {k} seen on two subtasks"
        );
    }
    assert_eq!(by_key.len(), 50);
}

#[test]
fn side_outputs_route_records_by_tag() {
    let env = env(2);
    let odd: OutputTag<String> = OutputTag::new("odd");
    let big: OutputTag<i64> = OutputTag::new("big");
    let (odd2, big2) = (odd.clone(), big.clone());
    let main =
        env.from_sequence(1, 10)
            .process(move |x: i64, ctx: &mut ProcessContext<'_, i64>| {
                if x % 2 == 1 {
                    ctx.output(&odd2, format!("odd {x}"));
                } else {
                    ctx.collect(x);
                }
                if x > 8 {
                    ctx.output(&big2, x);
                }
            });
    let evens = main.collect();
    let odds = main.get_side_output(&odd).collect();
    let bigs = main.get_side_output(&big).map(|x: i64| x * 100).collect();
    env.execute("side outputs").unwrap();
    assert_eq!(sorted(evens.values()), vec![2, 4, 6, 8, 10]);
    assert_eq!(
        sorted(odds.values()),
        vec!["odd 1", "odd 3", "odd 5", "odd 7", "odd 9"]
    );
    assert_eq!(sorted(bigs.values()), vec![900, 1000]);
}

#[test]
fn side_output_with_two_types_for_one_id_is_rejected() {
    let env = env(1);
    let s = env
        .from_collection(vec![1])
        .process(|x: i32, ctx: &mut ProcessContext<'_, i32>| ctx.collect(x));
    s.get_side_output(&OutputTag::<String>::new("x")).collect();
    s.get_side_output(&OutputTag::<i64>::new("x")).collect();
    let err = env.execute("conflict").unwrap_err().to_string();
    assert!(
        err.contains("side output 'x' is used with two types"),
        "{err}"
    );
}

#[test]
fn project_selects_tuple_fields() {
    let env = env(1);
    let input = env.from_collection(vec![
        ("a".to_string(), 1u32, 2.5f64),
        ("b".to_string(), 2, 3.5),
    ]);
    let p2 = input.project2::<2, 0>().collect();
    let p1 = input.project1::<1>().collect();
    let p3 = input.project3::<1, 1, 0>().collect();
    env.execute("project").unwrap();
    assert_eq!(
        p2.values(),
        vec![(2.5, "a".to_string()), (3.5, "b".to_string())]
    );
    assert_eq!(p1.values(), vec![(1u32,), (2,)]);
    assert_eq!(
        p3.values(),
        vec![(1u32, 1u32, "a".to_string()), (2, 2, "b".to_string())]
    );
}

type Rec = (String, i64, String);

fn keyed_input() -> Vec<Rec> {
    [
        ("a", 5, "first-a"),
        ("b", 1, "first-b"),
        ("a", 3, "second-a"),
        ("a", 7, "third-a"),
        ("b", 1, "second-b"),
        ("a", 3, "fourth-a"),
    ]
    .into_iter()
    .map(|(k, v, t)| (k.to_string(), v, t.to_string()))
    .collect()
}

/// Runs one rolling aggregation with parallelism 2 and returns the updates per key, in order.
fn rolling(
    f: impl FnOnce(fjord::KeyedStream<Rec, String>) -> fjord::SingleOutputStreamOperator<Rec>,
) -> std::collections::BTreeMap<String, Vec<(i64, String)>> {
    rolling_keyed(f, false)
}

/// [`rolling`], keyed with `key_by_ref` when `by_ref`.
fn rolling_keyed(
    f: impl FnOnce(fjord::KeyedStream<Rec, String>) -> fjord::SingleOutputStreamOperator<Rec>,
    by_ref: bool,
) -> std::collections::BTreeMap<String, Vec<(i64, String)>> {
    let env = env(2);
    let input = env.from_collection(keyed_input());
    let keyed = if by_ref {
        input.key_by_ref(|t: &Rec| &t.0)
    } else {
        input.key_by(|t: &Rec| t.0.clone())
    };
    let out = f(keyed).collect();
    env.execute("rolling").unwrap();
    let mut per_key = std::collections::BTreeMap::<String, Vec<(i64, String)>>::new();
    for (k, v, tag) in out.values() {
        per_key.entry(k).or_default().push((v, tag));
    }
    per_key
}

fn ups(v: &[(i64, &str)]) -> Vec<(i64, String)> {
    v.iter().map(|(n, t)| (*n, t.to_string())).collect()
}

#[test]
fn rolling_sum_keeps_first_record_fields() {
    let r = rolling(|k| k.sum::<1>());
    assert_eq!(
        r["a"],
        ups(&[
            (5, "first-a"),
            (8, "first-a"),
            (15, "first-a"),
            (18, "first-a")
        ])
    );
    assert_eq!(r["b"], ups(&[(1, "first-b"), (2, "first-b")]));
}

type Aggregation = fn(fjord::KeyedStream<Rec, String>) -> fjord::SingleOutputStreamOperator<Rec>;

#[test]
fn rolling_aggregations_over_a_borrowed_key_equal_those_over_a_copied_one() {
    let aggregations: [(&str, Aggregation); 6] = [
        ("sum", |k| k.sum::<1>()),
        ("min", |k| k.min::<1>()),
        ("max_by", |k| k.max_by::<1>()),
        ("reduce", |k| {
            k.reduce(|a: Rec, b: Rec| (a.0, a.1 * 10 + b.1, format!("{}+{}", a.2, b.2)))
        }),
        // The reduce function's result carries another key: it is still the aggregate of
        // the record's key (Flink's semantics), which with a borrowed key is no longer in
        // any record when it is stored.
        ("reduce to another key", |k| {
            k.reduce(|a: Rec, b: Rec| (format!("{}!", a.0), a.1 + b.1, b.2))
        }),
        ("min_by", |k| k.min_by::<1>()),
    ];
    for (name, f) in aggregations {
        let copied = rolling_keyed(f, false);
        let borrowed = rolling_keyed(f, true);
        assert_eq!(borrowed, copied, "{name}");
        assert!(!copied.is_empty(), "{name}");
    }
    let renamed = rolling_keyed(aggregations[4].1, true);
    // a: 5, then 5+3 stored under "a" though named "a!", then 8+7 from the state of "a".
    assert_eq!(renamed["a"], ups(&[(5, "first-a")]));
    assert_eq!(renamed["a!"], ups(&[(8, "second-a")]));
    assert_eq!(renamed["a!!"], ups(&[(15, "third-a")]));
    assert_eq!(renamed["a!!!"], ups(&[(18, "fourth-a")]));
}

#[test]
fn rolling_min_versus_min_by() {
    // min: only the field changes; the tag stays the first record's.
    let min = rolling(|k| k.min::<1>());
    assert_eq!(
        min["a"],
        ups(&[
            (5, "first-a"),
            (3, "first-a"),
            (3, "first-a"),
            (3, "first-a")
        ])
    );
    // min_by: the whole record with the minimum; on a tie the earlier record stays.
    let min_by = rolling(|k| k.min_by::<1>());
    assert_eq!(
        min_by["a"],
        ups(&[
            (5, "first-a"),
            (3, "second-a"),
            (3, "second-a"),
            (3, "second-a")
        ])
    );
    assert_eq!(min_by["b"], ups(&[(1, "first-b"), (1, "first-b")]));
}

#[test]
fn rolling_max_versus_max_by() {
    let max = rolling(|k| k.max::<1>());
    assert_eq!(
        max["a"],
        ups(&[
            (5, "first-a"),
            (5, "first-a"),
            (7, "first-a"),
            (7, "first-a")
        ])
    );
    let max_by = rolling(|k| k.max_by::<1>());
    assert_eq!(
        max_by["a"],
        ups(&[
            (5, "first-a"),
            (5, "first-a"),
            (7, "third-a"),
            (7, "third-a")
        ])
    );
}

#[test]
fn rolling_reduce_and_accessor_aggregations_on_structs() {
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Reading {
        sensor: String,
        value: f64,
        seq: u32,
    }
    let input = vec![
        Reading {
            sensor: "s1".into(),
            value: 2.0,
            seq: 1,
        },
        Reading {
            sensor: "s1".into(),
            value: 1.0,
            seq: 2,
        },
        Reading {
            sensor: "s2".into(),
            value: 9.0,
            seq: 3,
        },
        Reading {
            sensor: "s1".into(),
            value: 4.0,
            seq: 4,
        },
    ];
    let env = env(2);
    let keyed = env
        .from_collection(input)
        .key_by(|r: &Reading| r.sensor.clone());
    let sums = keyed.sum_with(|r: &mut Reading| &mut r.value).collect();
    let max_by = keyed.max_by_with(|r: &mut Reading| &mut r.value).collect();
    let reduced = keyed
        .reduce(|a: Reading, b: Reading| Reading {
            seq: a.seq.max(b.seq),
            ..b
        })
        .collect();
    env.execute("structs").unwrap();
    let last = |v: Vec<Reading>, s: &str| v.into_iter().rfind(|r| r.sensor == s).unwrap();
    assert_eq!(
        last(sums.values(), "s1"),
        Reading {
            sensor: "s1".into(),
            value: 7.0,
            seq: 1
        }
    );
    assert_eq!(
        last(max_by.values(), "s1"),
        Reading {
            sensor: "s1".into(),
            value: 4.0,
            seq: 4
        }
    );
    assert_eq!(last(reduced.values(), "s2").value, 9.0);
    assert_eq!(
        reduced.values().iter().filter(|r| r.sensor == "s1").count(),
        3,
        "one update per record"
    );
}

#[test]
fn rich_functions_see_runtime_context_and_lifecycle() {
    static OPENED: AtomicUsize = AtomicUsize::new(0);
    static CLOSED: AtomicUsize = AtomicUsize::new(0);

    #[derive(Clone, Default)]
    struct Tagger {
        prefix: String,
    }
    impl MapFunction<i64, String> for Tagger {
        fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
            OPENED.fetch_add(1, Ordering::SeqCst);
            self.prefix = format!(
                "{}:{}/{}:{}",
                ctx.job_name, ctx.subtask_index, ctx.parallelism, ctx.task_name
            );
            Ok(())
        }
        fn map(&mut self, value: i64) -> Result<String, BoxError> {
            Ok(format!("{} {value}", self.prefix))
        }
        fn close(&mut self) -> Result<(), BoxError> {
            CLOSED.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    let env = env(3);
    let out = env
        .from_sequence(0, 5)
        .map(Tagger::default())
        .name("tagger")
        .collect();
    env.execute("rich job").unwrap();
    assert_eq!(OPENED.load(Ordering::SeqCst), 3);
    assert_eq!(CLOSED.load(Ordering::SeqCst), 3);
    let values = out.values();
    assert_eq!(values.len(), 6);
    for v in &values {
        assert!(v.starts_with("rich job:"), "{v}");
        assert!(v.contains("/3:tagger "), "{v}");
    }
    let subtasks: std::collections::BTreeSet<_> = values
        .iter()
        .map(|v| v.split(':').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        subtasks.len(),
        3,
        "each subtask got a share of the sequence"
    );
}

#[test]
fn rich_flat_map_with_collector() {
    #[derive(Clone)]
    struct Splitter;
    impl FlatMapFunction<String, String> for Splitter {
        fn flat_map(
            &mut self,
            value: String,
            out: &mut Collector<'_, String>,
        ) -> Result<(), BoxError> {
            for w in value.split_whitespace() {
                out.collect(w.to_uppercase());
            }
            Ok(())
        }
    }
    let env = env(1);
    let out = env
        .from_collection(vec!["a b".to_string(), "c".to_string()])
        .flat_map(Splitter)
        .collect();
    env.execute("splitter").unwrap();
    assert_eq!(out.values(), vec!["A", "B", "C"]);
}

#[test]
fn one_stream_feeding_two_operators_gets_every_record_twice() {
    let counter = Arc::new(AtomicUsize::new(0));
    let env = env(2);
    let src = env.from_sequence(1, 100);
    let a = src.map(|x: i64| x + 1).collect();
    let c = counter.clone();
    src.for_each(move |_x: i64| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    env.execute("fan out").unwrap();
    assert_eq!(a.len(), 100);
    assert_eq!(counter.load(Ordering::SeqCst), 100);
}
