//! `nexmark-to-kafka` against a real Apache Kafka broker (`scripts/infra/kafka.sh`): the `fjord`
//! binary runs the job at parallelism 2 with exactly-once checkpoints, and the topic then holds,
//! for `read_committed` consumers, exactly the events `fjord-nexmark generate` writes to files
//! for the same keys — each once, as the same JSON line — so Flink (or anything else) reading
//! the topic reads the same events as Fjord reading the files.
//!
//! Needs the broker's jars (`scripts/infra/install-kafka.sh`) and the `fjord` binary
//! (`cargo build -p fjord-worker --bins`).

use anyhow::{Context as _, ensure};
use fjord::JobArgs;
use fjord_e2e::{KafkaBroker, KafkaOptions};
use fjord_nexmark::{NexmarkConfig, write_files};

const KEYS: [&str; 6] = ["--events.num", "3000", "--tps", "1000", "--seed", "3"];

#[test]
fn the_topic_holds_exactly_the_generated_events() -> anyhow::Result<()> {
    let broker = KafkaBroker::start_with(KafkaOptions::new("nexmark-kafka"))?;
    broker.create_topic("nexmark", 2)?;
    let dir = tempfile::tempdir()?;
    let fjord = fjord_e2e::target_binary("fjord")
        .context("the fjord binary (cargo build -p fjord-worker --bins)")?;
    let checkpoints = format!("file://{}", dir.path().join("chk").display());
    let out = std::process::Command::new(fjord)
        .args([
            "run",
            "-p",
            "2",
            "--checkpoint-interval",
            "500ms",
            "--checkpoint-storage",
            &checkpoints,
            "nexmark-to-kafka",
            "--bootstrap-servers",
            broker.bootstrap(),
            "--topic",
            "nexmark",
        ])
        .args(KEYS)
        .output()?;
    ensure!(
        out.status.success(),
        "fjord run nexmark-to-kafka: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let mut got: Vec<String> = broker
        .read_committed("nexmark")?
        .iter()
        .filter(|r| r.value.is_some())
        .map(|r| r.value_str())
        .collect();
    let config = NexmarkConfig::from_args(&JobArgs::parse(KEYS)?)?;
    write_files(&config, &dir.path().join("files"), 1)?;
    let text = std::fs::read_to_string(dir.path().join("files/events-0.json"))?;
    let mut expected: Vec<String> = text.lines().map(str::to_string).collect();
    ensure!(
        expected.len() == 3000,
        "{} events in the file",
        expected.len()
    );
    got.sort();
    expected.sort();
    let missing = expected
        .iter()
        .filter(|l| got.binary_search(l).is_err())
        .count();
    ensure!(
        got == expected,
        "the topic holds {} records, the file {} events; {missing} events missing from the topic",
        got.len(),
        expected.len()
    );
    broker.shutdown()?;
    Ok(())
}
