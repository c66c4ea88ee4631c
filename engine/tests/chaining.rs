//! Chaining rules and slot sharing, asserted on the execution plan (Flink's rules).

use fjord::StreamExecutionEnvironment;

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

fn chains(env: &StreamExecutionEnvironment) -> Vec<Vec<String>> {
    env.get_execution_plan().unwrap().chains()
}

fn names(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect()
}

#[test]
fn forward_operators_with_equal_parallelism_chain() {
    let env = env(2);
    env.from_sequence(0, 10)
        .map(|x: i64| x)
        .filter(|_: &i64| true)
        .print();
    assert_eq!(
        chains(&env),
        names(&[&[
            "Source: Sequence Source",
            "Map",
            "Filter",
            "Sink: Print to Std. Out"
        ]])
    );
}

#[test]
fn key_by_and_parallelism_changes_break_chains() {
    let env = env(2);
    env.from_collection(vec![1i64])
        .map(|x: i64| x)
        .key_by(|x: &i64| *x)
        .sum_with(|x: &mut i64| x)
        .print();
    let plan = env.get_execution_plan().unwrap();
    assert_eq!(
        plan.chains(),
        names(&[
            &["Source: Collection Source"],
            &["Map"],
            &["Keyed Aggregation", "Sink: Print to Std. Out"]
        ])
    );
    let partitioners: Vec<_> = plan.edges.iter().map(|e| e.partitioner.as_str()).collect();
    assert_eq!(partitioners, vec!["REBALANCE", "HASH"]);
    assert_eq!(
        plan.vertices[0].parallelism, 1,
        "collection source is not parallel"
    );
}

#[test]
fn start_new_chain_and_disable_chaining() {
    let env = env(1);
    env.from_collection(vec![1i64])
        .map(|x: i64| x)
        .name("a")
        .map(|x: i64| x)
        .name("b")
        .start_new_chain()
        .map(|x: i64| x)
        .name("c")
        .map(|x: i64| x)
        .name("d")
        .disable_chaining()
        .map(|x: i64| x)
        .name("e")
        .print();
    assert_eq!(
        chains(&env),
        names(&[
            &["Source: Collection Source", "a"],
            &["b", "c"],
            &["d"],
            &["e", "Sink: Print to Std. Out"]
        ])
    );
}

#[test]
fn environment_wide_chaining_off() {
    let env = env(1);
    env.disable_operator_chaining();
    env.from_collection(vec![1i64]).map(|x: i64| x).print();
    assert_eq!(chains(&env).len(), 3);
    let out = env
        .from_collection(vec![1i64, 2])
        .map(|x: i64| x + 1)
        .collect();
    env.execute("unchained").unwrap();
    assert_eq!(out.values(), vec![2, 3]);
}

#[test]
fn union_inputs_are_never_chained() {
    let env = env(1);
    let a = env.from_collection(vec![1i64]);
    let b = env.from_collection(vec![2i64]);
    a.union(&[&b]).map(|x: i64| x).print();
    assert_eq!(
        chains(&env),
        names(&[
            &["Source: Collection Source"],
            &["Source: Collection Source"],
            &["Map", "Sink: Print to Std. Out"]
        ])
    );
}

#[test]
fn slot_sharing_groups_follow_flinks_inheritance() {
    let env = env(2);
    let src = env.from_sequence(0, 1).slot_sharing_group("ingest");
    // Inherits "ingest" from its only input, so it may chain with the source.
    let m = src.map(|x: i64| x).name("inherits");
    // An explicit other group breaks the chain.
    let heavy = m
        .map(|x: i64| x)
        .name("heavy")
        .slot_sharing_group("heavy")
        .set_parallelism(3);
    // Inputs from two groups: falls back to "default".
    let other = env.from_sequence(0, 1).name("other source");
    heavy.union(&[&other]).map(|x: i64| x).name("mixed").print();
    let plan = env.get_execution_plan().unwrap();
    let group_of = |op: &str| {
        plan.vertices
            .iter()
            .find(|v| v.operators.iter().any(|o| o == op))
            .unwrap()
            .slot_sharing_group
            .clone()
    };
    assert_eq!(group_of("inherits"), "ingest");
    assert_eq!(group_of("heavy"), "heavy");
    assert_eq!(group_of("other source"), "default");
    assert_eq!(group_of("mixed"), "default");
    assert_eq!(
        plan.chains()[0],
        vec![
            "Source: Sequence Source".to_string(),
            "inherits".to_string()
        ]
    );
    // ingest: 2 slots, heavy: 3, default: 2 -> 7.
    assert_eq!(plan.required_slots(), 7);
}

#[test]
fn forward_with_different_parallelism_is_rejected() {
    let env = env(2);
    env.from_sequence(0, 1)
        .forward()
        .map(|x: i64| x)
        .set_parallelism(3)
        .print();
    let err = env.execute("bad forward").unwrap_err().to_string();
    assert!(
        err.contains("forward partitioning does not allow a change of parallelism"),
        "{err}"
    );
}

#[test]
fn non_parallel_source_refuses_parallelism() {
    let env = env(2);
    env.from_collection(vec![1i64]).set_parallelism(2).print();
    let err = env.execute("bad source").unwrap_err().to_string();
    assert!(err.contains("is not parallel"), "{err}");
}

#[test]
fn plan_serializes_to_json() {
    let env = env(1);
    env.from_collection(vec![1i64])
        .map(|x: i64| x)
        .uid("m")
        .print();
    let json = serde_json::to_value(env.get_execution_plan().unwrap()).unwrap();
    assert_eq!(
        json["vertices"][0]["name"],
        "Source: Collection Source -> Map -> Sink: Print to Std. Out"
    );
}
