//! Fjord's end-to-end test infrastructure.
//!
//! This crate is test and development tooling; nothing in it ships in the product.
//!
//! - [`cluster`]: [`TestCluster`], which starts a private Kubernetes control plane, MinIO and the
//!   test node agent (or real kubelet nodes, [`ClusterOptions::real_nodes`]) through
//!   `scripts/infra/up.sh`, exposes their settings, and always tears them down again through
//!   `scripts/infra/down.sh` (on drop, also while a test panics).
//! - [`s3`]: [`S3Settings`], the MinIO endpoint, credentials and bucket of a cluster, and an
//!   `object_store` client built from them.
//! - [`kafka`]: [`KafkaBroker`], a real single-node Apache Kafka broker (KRaft) started through
//!   `scripts/infra/kafka.sh`, with Kafka's own tools to create topics, produce, and read topics
//!   back with `read_committed` (the oracle of the exactly-once tests).
//! - [`flink`]: the Flink oracle: the same DataStream cases run on Apache Flink's MiniCluster
//!   through `scripts/infra/flink.sh`, for tests that compare Fjord's output with Flink's.
//! - [`containers`]: the worker and operator images built by `scripts/images/build.sh` from the
//!   test's binaries, and [`containers::Containerd`], a containerd of the test's own
//!   (`scripts/infra/containerd.sh`) that runs them as real containers.
//! - [`infra`]: [`ScriptServer`], one server of a test (Redis, RabbitMQ, ActiveMQ, Cassandra,
//!   OpenSearch, kinesalite, HDFS) started, stopped and used through its `scripts/infra/<name>.sh`.
//! - [`error`]: the crate's one error type.
//! - [`jobs`]: what connector tests share to judge a job's output (bounded waits, scratch
//!   directories, the exactly-once file sink's committed lines, a checkpointed environment).
//!
//! The binaries live beside it: `fjord-node-agent` (stands in for the kubelet and the container
//! runtime, see `docs/test-infrastructure.md`) and `fjord-e2e-echo` (the tiny smoke-test server).
//! `s3` depends on `error` only, `cluster` on `error` and `s3`, `kafka` and `flink` on `error` and
//! `cluster`'s script lookup, `containers` on `error` and `cluster`'s script and binary lookup, `infra` on `error` and `cluster`'s script lookup; the binaries do not depend on the library.

pub mod cluster;
pub mod containers;
pub mod error;
pub mod flink;
pub mod infra;
pub mod jobs;
pub mod kafka;
pub mod s3;

pub use cluster::{ClusterOptions, TestCluster, free_port, poll_until, target_binary};
pub use error::Error;
pub use infra::ScriptServer;
pub use kafka::{KafkaBroker, KafkaOptions, KafkaRecord, ProducerRecord};
pub use s3::S3Settings;
