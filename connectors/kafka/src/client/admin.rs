//! Topic administration for tests and examples: CreateTopics, CreatePartitions. Both wait
//! until the metadata shows the result with a leader for every partition, so a produce or a
//! fetch right after them works.

use super::Result;
use super::cluster::{Cluster, Node};
use crate::error::{KafkaError, codes};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, TopicName,
    create_partitions_request::CreatePartitionsTopic, create_topics_request::CreatableTopic,
};
use kafka_protocol::protocol::StrBytes;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

const CREATE_TOPICS_VERSIONS: RangeInclusive<i16> = 2..=7;
const CREATE_PARTITIONS_VERSIONS: RangeInclusive<i16> = 0..=3;

/// Creates `topic`; an existing topic is fine.
pub(crate) fn create_topic(
    cluster: &mut Cluster,
    topic: &str,
    partitions: i32,
    replication: i16,
) -> Result<()> {
    if partitions < 1 || replication < 1 {
        return Err(KafkaError::Usage(format!(
            "topic {topic}: partitions ({partitions}) and replication ({replication}) must be >= 1"
        )));
    }
    let timeout_ms =
        i32::try_from(cluster.settings.request_timeout.as_millis()).unwrap_or(i32::MAX);
    cluster.retry(|c| {
        let (response, _) = c.send(Node::Any, &CREATE_TOPICS_VERSIONS, Duration::ZERO, |_| {
            let mut t = CreatableTopic::default();
            t.name = TopicName(StrBytes::from_string(topic.to_string()));
            t.num_partitions = partitions;
            t.replication_factor = replication;
            let mut request = CreateTopicsRequest::default();
            request.topics = vec![t];
            request.timeout_ms = timeout_ms;
            request
        })?;
        for result in &response.topics {
            match result.error_code {
                0 | codes::TOPIC_ALREADY_EXISTS => {}
                code => {
                    return Err(with_message(
                        KafkaError::broker("CreateTopics", topic, code),
                        &result.error_message,
                    ));
                }
            }
        }
        Ok(())
    })?;
    wait_for_partitions(cluster, "CreateTopics", topic, partitions)
}

/// Raises the partition count of `topic` to `total` (already that many: fine).
pub(crate) fn create_partitions(cluster: &mut Cluster, topic: &str, total: i32) -> Result<()> {
    let timeout_ms =
        i32::try_from(cluster.settings.request_timeout.as_millis()).unwrap_or(i32::MAX);
    let outcome = cluster.retry(|c| {
        let (response, _) = c.send(
            Node::Any,
            &CREATE_PARTITIONS_VERSIONS,
            Duration::ZERO,
            |_| {
                let mut t = CreatePartitionsTopic::default();
                t.name = TopicName(StrBytes::from_string(topic.to_string()));
                t.count = total;
                t.assignments = None;
                let mut request = CreatePartitionsRequest::default();
                request.topics = vec![t];
                request.timeout_ms = timeout_ms;
                request
            },
        )?;
        for result in &response.results {
            if result.error_code != 0 {
                return Err(with_message(
                    KafkaError::broker("CreatePartitions", topic, result.error_code),
                    &result.error_message,
                ));
            }
        }
        Ok(())
    });
    if let Err(e) = outcome {
        // Kafka refuses a "change" to the current count; that is the requested state.
        if e.code() != Some(codes::INVALID_PARTITIONS)
            || current_partitions(cluster, topic)? != total
        {
            return Err(e);
        }
    }
    wait_for_partitions(cluster, "CreatePartitions", topic, total)
}

fn with_message(e: KafkaError, message: &Option<StrBytes>) -> KafkaError {
    match (e, message) {
        (
            KafkaError::Broker {
                api,
                target,
                code,
                code_name,
                hint,
            },
            Some(m),
        ) if !m.is_empty() => KafkaError::Broker {
            api,
            target,
            code,
            code_name,
            hint: format!("; {}{hint}", m.as_str()),
        },
        (e, _) => e,
    }
}

fn current_partitions(cluster: &mut Cluster, topic: &str) -> Result<i32> {
    cluster.invalidate(topic);
    Ok(cluster.topic("Metadata", topic)?.leaders.len() as i32)
}

/// Waits (bounded by the request timeout) until the metadata shows at least `partitions`
/// partitions of `topic`, each with a leader.
fn wait_for_partitions(
    cluster: &mut Cluster,
    api: &'static str,
    topic: &str,
    partitions: i32,
) -> Result<()> {
    let deadline = Instant::now() + cluster.settings.request_timeout;
    let mut pause = Duration::from_millis(20);
    loop {
        cluster.invalidate(topic);
        let ready = match cluster.topic(api, topic) {
            Ok(info) => {
                info.leaders.len() >= partitions as usize
                    && info.leaders.iter().all(Option::is_some)
            }
            Err(e) if e.code() == Some(codes::UNKNOWN_TOPIC_OR_PARTITION) || e.is_retriable() => {
                false
            }
            Err(e) => return Err(e),
        };
        if ready {
            return Ok(());
        }
        if Instant::now() + pause > deadline {
            return Err(KafkaError::broker(api, topic, codes::LEADER_NOT_AVAILABLE));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
