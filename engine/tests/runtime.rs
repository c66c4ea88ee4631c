//! Runtime behaviour: bounded jobs finish, backpressure bounds memory, failures name their
//! operator and subtask, cancellation stops everything.

use fjord::sources::GeneratorSource;
use fjord::{BoxError, FjordError, MapFunction, RuntimeContext, StreamExecutionEnvironment};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn env(parallelism: usize) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env
}

#[test]
fn a_slow_sink_slows_the_source_instead_of_buffering() {
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicI64::new(0));
    let env = env(1);
    env.configure(|c| {
        c.batch_size = 16;
        c.channel_capacity = 2;
    });
    let p = produced.clone();
    let (c, m) = (consumed.clone(), max_in_flight.clone());
    let p2 = produced.clone();
    env.from_source(
        GeneratorSource::new(Some(3_000), move |i| {
            p.fetch_add(1, Ordering::SeqCst);
            i
        }),
        "gen",
    )
    .disable_chaining()
    .map(|x: u64| x)
    .disable_chaining()
    .for_each(move |_x: u64| {
        let done = c.fetch_add(1, Ordering::SeqCst) + 1;
        let in_flight = p2.load(Ordering::SeqCst) as i64 - done as i64;
        m.fetch_max(in_flight, Ordering::SeqCst);
        if done % 100 == 0 {
            std::thread::sleep(Duration::from_millis(1)); // a slow sink
        }
    });
    env.execute("backpressure").unwrap();
    assert_eq!(consumed.load(Ordering::SeqCst), 3_000);
    // Two channels of 2 batches of 16, plus one batch being filled and one being processed at
    // each of three tasks, plus the generator's poll batch (1024): the bound is what the
    // buffers can hold, far below the 3,000 records produced.
    let bound = 2 * (2 * 16) + 3 * 2 * 16 + 1024;
    let seen = max_in_flight.load(Ordering::SeqCst);
    assert!(
        seen <= bound,
        "{seen} records in flight, more than the buffers hold ({bound})"
    );
}

#[test]
fn a_panic_in_a_user_function_fails_the_job_naming_operator_and_subtask() {
    let env = env(2);
    env.from_sequence(0, 100_000)
        .map(|x: i64| {
            if x == 77_777 {
                panic!("boom at {x}");
            }
            x
        })
        .name("exploding map")
        .collect();
    let started = Instant::now();
    let err = env.execute("panicky").unwrap_err();
    match &err {
        FjordError::UserPanic { location, message } => {
            assert_eq!(location.operator, "exploding map");
            assert_eq!(location.parallelism, 2);
            assert_eq!(
                location.subtask, 1,
                "77,777 is in the second half of the sequence"
            );
            assert_eq!(message, "boom at 77777");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("'exploding map' (2/2)"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "failure must not hang"
    );
}

#[test]
fn an_error_from_a_rich_function_fails_the_job() {
    #[derive(Clone)]
    struct Picky;
    impl MapFunction<i64, i64> for Picky {
        fn map(&mut self, v: i64) -> Result<i64, BoxError> {
            if v == 3 {
                Err(format!("cannot handle {v}").into())
            } else {
                Ok(v)
            }
        }
    }
    let env = env(1);
    env.from_sequence(0, 10).map(Picky).name("picky").collect();
    let err = env.execute("errors").unwrap_err().to_string();
    assert_eq!(
        err,
        "user function in operator 'picky' (1/1) failed: cannot handle 3"
    );
}

#[test]
fn an_error_in_open_fails_the_job() {
    #[derive(Clone)]
    struct BadOpen;
    impl MapFunction<i64, i64> for BadOpen {
        fn open(&mut self, ctx: &RuntimeContext) -> Result<(), BoxError> {
            Err(format!("missing config on subtask {}", ctx.subtask_index).into())
        }
        fn map(&mut self, v: i64) -> Result<i64, BoxError> {
            Ok(v)
        }
    }
    let env = env(1);
    env.from_sequence(0, 10)
        .map(BadOpen)
        .name("needs config")
        .collect();
    let err = env.execute("open errors").unwrap_err().to_string();
    assert!(
        err.contains("'needs config' (1/1) failed: missing config on subtask 0"),
        "{err}"
    );
}

#[test]
fn a_failing_sink_downstream_of_a_shuffle_fails_the_job() {
    let env = env(2);
    env.from_sequence(0, 50_000)
        .rebalance()
        .for_each(|x: i64| assert!(x != 40_000, "sink cannot take {x}"))
        .name("strict sink");
    let err = env.execute("sink failure").unwrap_err().to_string();
    assert!(
        err.contains("'strict sink'") && err.contains("sink cannot take 40000"),
        "{err}"
    );
}

#[test]
fn an_unbounded_job_runs_until_cancelled() {
    let seen = Arc::new(AtomicU64::new(0));
    let s = seen.clone();
    let env = env(2);
    env.from_generator(None, |i| i)
        .rebalance()
        .for_each(move |_x: u64| {
            s.fetch_add(1, Ordering::Relaxed);
        });
    let client = env.execute_async("forever").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::Relaxed) < 10_000 {
        assert!(Instant::now() < deadline, "job did not start processing");
        assert!(!client.is_finished(), "unbounded job ended by itself");
        std::thread::yield_now();
    }
    client.cancel();
    match client.wait() {
        Err(FjordError::Cancelled) => {}
        other => panic!("expected cancellation, got {other:?}"),
    }
}

#[test]
fn a_bounded_job_finishes_after_draining_every_task() {
    let env = env(2);
    let out = env
        .from_sequence(1, 50_000)
        .rebalance()
        .map(|x: i64| x % 7)
        .key_by(|x: &i64| *x)
        .reduce(|a: i64, b: i64| a.max(b))
        .collect();
    let result = env.execute("drain").unwrap();
    assert_eq!(
        out.len(),
        50_000,
        "every record reached the sink before execute returned"
    );
    assert_eq!(result.job_name, "drain");
    assert_eq!(result.tasks, 2 + 2 + 2);
}

#[test]
fn an_empty_job_is_rejected() {
    let env = env(1);
    let err = env.execute("nothing").unwrap_err().to_string();
    assert!(err.contains("the job has no sources"), "{err}");
}
