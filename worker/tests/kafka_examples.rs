//! The Kafka example manifests, run verbatim with `fjord run examples/streamjobs/kafka-*.yaml`
//! against a real Kafka broker (its address given on the command line, which overrides the
//! manifest's `--bootstrap-servers localhost:9092`), judged by Kafka's Java consumer.

use fjord_e2e::kafka::{KafkaBroker, KafkaOptions, KafkaRecord, ProducerRecord};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `fjord run --checkpoint-storage <tmp> <manifest> --bootstrap-servers <broker>`.
fn run_manifest(manifest: &str, broker: &KafkaBroker, checkpoints: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fjord"))
        .current_dir(repo())
        .args(["run", "--checkpoint-storage"])
        .arg(format!("file://{}", checkpoints.display()))
        .arg(manifest)
        .args(["--bootstrap-servers", broker.bootstrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fjord")
}

/// Reads `topic` (read_committed) until `done` holds, at most ~2 minutes.
fn wait_for(
    broker: &KafkaBroker,
    topic: &str,
    job: &mut Child,
    done: impl Fn(&[KafkaRecord]) -> bool,
) -> Vec<KafkaRecord> {
    let mut records = Vec::new();
    for _ in 0..60 {
        if let Some(status) = job.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            job.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("fjord exited early ({status}):\n{err}");
        }
        records = broker.read_committed(topic).unwrap();
        if done(&records) {
            return records;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("{topic} never held the expected records; last read: {records:?}");
}

/// Ctrl-C, as a user stops `fjord run`; the exit code says cancelled.
fn interrupt(mut job: Child) {
    let status = Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = job.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit code of a cancelled run");
}

#[test]
fn kafka_wordcount_manifest_counts_words_from_topic_to_topic() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("kafka-wordcount")).unwrap();
    broker.create_topic("lines", 3).unwrap();
    broker.create_topic("word-counts", 3).unwrap();
    broker
        .produce_lines(
            "lines",
            &["To be, or not to be", "that is the question", "to BE"],
        )
        .unwrap();
    let dir = std::env::temp_dir().join(format!("fjord-kafka-wordcount-{}", std::process::id()));
    let mut job = run_manifest("examples/streamjobs/kafka-wordcount.yaml", &broker, &dir);
    // One update per word occurrence: 6 + 4 + 2.
    let records = wait_for(&broker, "word-counts", &mut job, |r| r.len() >= 12);
    interrupt(job);
    assert_eq!(records.len(), 12, "{records:?}");
    // Updates of a word share its key, so its partition; the last is its count.
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for r in &records {
        let key = r.key_str().expect("keyed by word");
        assert!(r.value_str().starts_with(&format!("{key},")), "{r:?}");
        last.insert(key, r.value_str());
    }
    let to: Vec<(i32, i64, String)> = records
        .iter()
        .filter(|r| r.key_str().as_deref() == Some("to"))
        .map(|r| (r.partition, r.offset, r.value_str()))
        .collect();
    assert_eq!(
        last["to"], "to,3",
        "updates of `to` in partition order: {to:?}"
    );
    assert_eq!(last["be"], "be,3");
    assert_eq!(last["question"], "question,1");
    assert_eq!(last.len(), 8, "{last:?}");
    broker.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kafka_windowed_counts_manifest_writes_each_window_once() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("kafka-windowed-counts")).unwrap();
    broker.create_topic("events", 2).unwrap();
    broker.create_topic("window-counts", 2).unwrap();
    // Keys a and b in windows [0,1000) and [1000,2000), in both partitions; then an event at
    // 10 s in each partition moves event time past both windows.
    let mut events = Vec::new();
    for (i, (key, ts)) in [
        ("a", 10),
        ("b", 20),
        ("a", 990),
        ("a", 1500),
        ("b", 1999),
        ("b", 1000),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(
            ProducerRecord::value(key)
                .timestamp(ts)
                .partition(i as i32 % 2),
        );
    }
    for p in 0..2 {
        events.push(ProducerRecord::value("late").timestamp(10_000).partition(p));
    }
    broker.produce("events", &events).unwrap();
    let dir = std::env::temp_dir().join(format!("fjord-kafka-windows-{}", std::process::id()));
    let mut job = run_manifest(
        "examples/streamjobs/kafka-windowed-counts.yaml",
        &broker,
        &dir,
    );
    let records = wait_for(&broker, "window-counts", &mut job, |r| r.len() >= 4);
    interrupt(job);
    let mut values: Vec<String> = records.iter().map(KafkaRecord::value_str).collect();
    values.sort();
    assert_eq!(values, vec!["a,0,2", "a,1000,1", "b,0,1", "b,1000,2"]);
    broker.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `examples/streamjobs/sql-configmap.yaml` (a StreamJob with `spec.job.sqlFrom` and its
/// ConfigMap in one file) run as its comment says, the broker address in the script replaced
/// as the docs ask: the script is read from the file's ConfigMap.
#[test]
fn sql_configmap_manifest_runs_the_script_of_its_config_map() {
    let broker = KafkaBroker::start_with(KafkaOptions::new("kafka-sql-configmap")).unwrap();
    broker.create_topic("ticks", 1).unwrap();
    let dir = std::env::temp_dir().join(format!("fjord-sql-configmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let example =
        std::fs::read_to_string(repo().join("examples/streamjobs/sql-configmap.yaml")).unwrap();
    let documented = "'properties.bootstrap.servers' = 'localhost:9092'";
    assert_eq!(example.matches(documented).count(), 1);
    let manifest = dir.join("sql-configmap.yaml");
    std::fs::write(
        &manifest,
        example.replace(
            documented,
            &format!("'properties.bootstrap.servers' = '{}'", broker.bootstrap()),
        ),
    )
    .unwrap();
    let mut job = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .args(["run", "--checkpoint-storage"])
        .arg(format!("file://{}", dir.join("checkpoints").display()))
        .arg(&manifest)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fjord");
    let records = wait_for(&broker, "ticks", &mut job, |r| r.len() >= 10);
    interrupt(job);
    let values: Vec<String> = records.iter().map(KafkaRecord::value_str).collect();
    let want: Vec<String> = (0..values.len()).map(|n| format!("v1,{n}")).collect();
    assert_eq!(values, want);
    broker.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
