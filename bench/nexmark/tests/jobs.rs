//! The generator as a parallel Fjord source and the queries as registered jobs, on the
//! embedded mini-cluster (no other system needed).

use fjord::{JobArgs, JobRegistry, StreamExecutionEnvironment};
use fjord_nexmark::{Generator, NexmarkConfig, events, register};
use std::collections::BTreeMap;

fn args(a: &[&str]) -> JobArgs {
    JobArgs::parse(a.iter().copied()).unwrap()
}

/// Every subtask generates its share of the event numbers: at parallelism 3 the source emits
/// each of the first 5 000 events exactly once, the same events one generator makes alone.
#[test]
fn parallel_generator_emits_each_event_once() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3);
    let a = args(&["--events.num", "5000", "--seed", "7"]);
    let out = events(&env, &a).unwrap().collect();
    a.check_used("test").unwrap();
    env.execute("nexmark source").unwrap();
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for e in out.values() {
        *got.entry(format!("{e:?}")).or_default() += 1;
    }
    let generator = Generator::new(NexmarkConfig {
        events: Some(5000),
        seed: 7,
        ..NexmarkConfig::default()
    });
    let want: BTreeMap<String, usize> = (0..5000)
        .map(|n| (format!("{:?}", generator.event(n)), 1))
        .collect();
    assert_eq!(got.len(), 5000);
    assert!(got == want, "the parallel source emitted other events");
}

/// The registered jobs run end to end from the generator and from event files, and give the
/// same rows either way; an updating query's changelogs (whose interleaving differs) leave the
/// same table, and are well formed (no retraction of a row not there).
#[test]
fn registered_jobs_run_from_the_generator_and_from_files() {
    let mut registry = JobRegistry::new();
    register(&mut registry);
    let names: Vec<&str> = registry.list().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"nexmark-q0") && names.contains(&"nexmark-q8"),
        "{names:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("events");
    let config =
        NexmarkConfig::from_args(&args(&["--events.num", "3000", "--tps", "500"])).unwrap();
    fjord_nexmark::write_files(&config, &files, 2).unwrap();
    for q in [
        "nexmark-q2",
        "nexmark-q5",
        "nexmark-q8",
        "nexmark-q4",
        "nexmark-q9",
        "nexmark-q16",
        "nexmark-q19",
    ] {
        let mut outputs = Vec::new();
        for source in [
            vec!["--events.num", "3000", "--tps", "500"],
            vec!["--input", files.to_str().unwrap()],
        ] {
            let out = dir.path().join(format!("{q}-{}", outputs.len()));
            let env = StreamExecutionEnvironment::new();
            env.set_parallelism(2);
            let mut a = source.clone();
            a.extend(["--output", out.to_str().unwrap()]);
            registry.build(q, &env, &args(&a)).unwrap();
            env.execute(q).unwrap();
            let mut rows = fjord_nexmark::compare::read_rows(&out).unwrap();
            if fjord_nexmark::is_updating(&q["nexmark-".len()..]) {
                rows = fjord_nexmark::compare::final_state(&rows).unwrap();
            }
            rows.sort();
            outputs.push(rows);
        }
        assert!(!outputs[0].is_empty(), "{q} produced no rows");
        assert_eq!(outputs[0], outputs[1], "{q}: generator and files differ");
    }
}

/// Bad configuration is refused with a message naming the key.
#[test]
fn bad_configuration_is_refused_clearly() {
    let mut registry = JobRegistry::new();
    register(&mut registry);
    for (a, needle) in [
        (vec!["--tps", "NaN"], "not a finite number"),
        (vec!["--events.nm", "10"], "does not take --events.nm"),
        (vec!["--bid.proportion", "0"], "bid.proportion = 0"),
        (vec!["--input", "x", "--tps", "5"], "does not take --tps"),
    ] {
        let env = StreamExecutionEnvironment::new();
        let err = registry.build("nexmark-q0", &env, &args(&a)).unwrap_err();
        assert!(err.to_string().contains(needle), "{a:?}: {err}");
    }
}

/// Event files hold the same events as the generator, and a damaged line fails the job with
/// its line number.
#[test]
fn event_files_round_trip_and_bad_lines_fail_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let config = NexmarkConfig {
        events: Some(1000),
        ..NexmarkConfig::default()
    };
    fjord_nexmark::write_files(&config, dir.path(), 1).unwrap();
    let path = dir.path().join("events-0.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let g = Generator::new(config);
    for (n, line) in text.lines().enumerate() {
        assert_eq!(
            fjord_nexmark::json::parse_event(line).unwrap(),
            g.event(n as u64)
        );
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines[41] = "{\"event_type\":2}";
    std::fs::write(&path, lines.join("\n")).unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    let out = events(&env, &args(&["--input", path.to_str().unwrap()]))
        .unwrap()
        .collect();
    let err = env.execute("bad file").unwrap_err().to_string();
    assert!(err.contains("events-0.json line 42"), "{err}");
    assert!(err.contains("not a Nexmark event"), "{err}");
    assert!(out.values().len() < 1000);
}

/// q10 writes each row into the partition of its day and minute (`dt=.../hm=...`, one file
/// per subtask), every bid once, across midnight.
#[test]
fn q10_writes_rows_into_their_partitions() {
    let mut registry = JobRegistry::new();
    register(&mut registry);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("q10");
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    let a = [
        "--events.num",
        "3000",
        "--tps",
        "20",
        "--base-time",
        "2026-01-01 23:59:00",
        "--output",
        out.to_str().unwrap(),
    ];
    registry.build("nexmark-q10", &env, &args(&a)).unwrap();
    env.execute("q10").unwrap();
    let generator = Generator::new(NexmarkConfig::from_args(&args(&a[..6])).unwrap());
    let bids = (0..3000)
        .filter(|n| matches!(generator.event(*n), fjord_nexmark::Event::Bid(_)))
        .count();
    let mut rows = 0;
    let mut partitions = std::collections::BTreeSet::new();
    for dt in std::fs::read_dir(&out).unwrap() {
        let dt = dt.unwrap();
        for hm in std::fs::read_dir(dt.path()).unwrap() {
            let hm = hm.unwrap();
            let (day, minute) = (
                dt.file_name().into_string().unwrap(),
                hm.file_name().into_string().unwrap(),
            );
            partitions.insert(format!("{day}/{minute}"));
            for row in fjord_nexmark::compare::read_rows(&hm.path()).unwrap() {
                let fields: Vec<&str> = row.rsplitn(3, ',').collect();
                assert_eq!(format!("dt={}", fields[1]), day, "{row}");
                assert_eq!(format!("hm={}", fields[0].replace(':', "%3A")), minute);
                rows += 1;
            }
        }
    }
    // 150 s of events from 23:59:00: three minutes over two days.
    let want: Vec<&str> = vec![
        "dt=2026-01-01/hm=23%3A59",
        "dt=2026-01-02/hm=00%3A00",
        "dt=2026-01-02/hm=00%3A01",
    ];
    assert_eq!(
        partitions.iter().map(String::as_str).collect::<Vec<_>>(),
        want
    );
    assert_eq!(rows, bids);
}
