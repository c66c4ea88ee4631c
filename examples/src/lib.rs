//! Example Fjord jobs, registered under the names `fjord run` knows.
//!
//! Every job takes Flink-style `--key value` arguments, prints its result to stdout, or
//! writes it with `--output <path>` (a file at parallelism 1, else a directory of files
//! `1`, `2`, ...).

pub mod cep_patterns;
pub mod connected;
pub mod counting;
pub mod kafka;
pub mod kafka_windowed_counts;
pub mod kafka_wordcount;
pub mod keyed_aggregations;
pub mod partitioning;
pub mod rabbitmq_redis_counts;
pub mod side_outputs;
pub mod socket_wordcount;
pub mod transformations;
pub mod windowed_counts;
pub mod wordcount;

use fjord::{DataStream, JobArgs, JobRegistry, Printable, Result, WriteMode};

/// All example jobs.
pub fn registry() -> JobRegistry {
    let mut r = JobRegistry::new();
    r.register(
        "counting",
        "counts records per key with keyed state (the operator examples' job): [--keys N] [--rate R | --rate-steps R1xD1,...,Rn] [--work-us N] [--count N] [--output <path>]",
        counting::build,
    )
    .register(
        "wordcount",
        "counts words of a file or directory: --input <path> [--output <path>] (Flink's WordCount)",
        wordcount::build,
    )
    .register(
        "socket-wordcount",
        "counts words read from a TCP socket: --hostname <host> --port <port> [--output <path>]",
        socket_wordcount::build,
    )
    .register("transformations", "map, filter and flat_map over a sequence: [--count N] [--output <path>]", transformations::build)
    .register(
        "keyed-aggregations",
        "rolling sum, min, min_by and max_by over sensor readings: [--output <path>]",
        keyed_aggregations::build,
    )
    .register(
        "partitioning",
        "which subtask sees which record under rebalance, rescale, broadcast and a custom partitioner: [--output <path>]",
        partitioning::build,
    )
    .register("connected-streams", "union and connect (CoMap, CoFlatMap) of two streams: [--output <path>]", connected::build)
    .register(
        "cep-patterns",
        "complex event processing (fjord-cep): three failed logins within a minute and three price rises in a row: [--output <path>]",
        cep_patterns::build,
    )
    .register("side-outputs", "splits a stream with side outputs: [--output <path>]", side_outputs::build)
    .register("windowed-counts", "counts per key and event-time window, exactly once: [--count N] [--keys K] [--rate R] [--window-ms W] [--output <url>]", windowed_counts::build)
    .register(
        "kafka-wordcount",
        "WordCount from a Kafka topic to a Kafka topic: [--bootstrap-servers localhost:9092] [--kafka-properties FILE] [--input-topic lines] [--output-topic word-counts] [--bounded] [--delivery-guarantee G]",
        kafka_wordcount::build,
    )
    .register(
        "kafka-windowed-counts",
        "counts per key and event-time window from a Kafka topic to a Kafka topic, exactly once: [--bootstrap-servers localhost:9092] [--kafka-properties FILE] [--input-topic events] [--output-topic window-counts] [--window-ms W] [--bounded]",
        kafka_windowed_counts::build,
    )
    .register(
        "rabbitmq-redis-counts",
        "orders per customer from a RabbitMQ queue (exactly once, by correlation id) into a Redis hash: [--amqp-uri amqp://guest:guest@localhost:5672/%2f] [--queue orders] [--redis-url redis://localhost:6379/0] [--hash order-counts]",
        rabbitmq_redis_counts::build,
    );
    r
}

/// Prints the stream, or writes it to `--output` when given.
pub fn emit<T: fjord::Data + Printable>(
    stream: &DataStream<T>,
    args: &JobArgs,
    name: &str,
) -> Result<()> {
    match args.get("output") {
        Some(path) => {
            let mode = if args.has("overwrite") {
                WriteMode::Overwrite
            } else {
                WriteMode::NoOverwrite
            };
            stream
                .write_as_text_with_mode(path, mode)
                .name(&format!("Sink: {name}"));
        }
        None => {
            stream.print().name(&format!("Sink: {name}"));
        }
    }
    Ok(())
}

/// Reads every file a text sink wrote (a file, or a directory of part files) as lines.
pub fn read_output(path: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)?.collect::<std::io::Result<Vec<_>>>()?;
        files.sort_by_key(|e| e.file_name());
        for f in files {
            lines.extend(
                std::fs::read_to_string(f.path())?
                    .lines()
                    .map(str::to_string),
            );
        }
    } else {
        lines.extend(std::fs::read_to_string(path)?.lines().map(str::to_string));
    }
    Ok(lines)
}
pub mod count_with_timeout;

/// Runs a job's build function at `parallelism` with `args` plus `--output <temp file>`, and
/// returns the output lines (for the examples' tests).
#[cfg(test)]
pub(crate) fn run_for_test(build: fjord::JobFn, parallelism: usize, args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let env = fjord::StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(["--output".to_string(), out.display().to_string()]);
    build(&env, &JobArgs::parse(all).expect("arguments")).expect("job builds");
    env.execute("example test").expect("job runs");
    read_output(&out).expect("output readable")
}
