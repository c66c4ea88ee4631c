//! Consumer-group offsets without group membership (OffsetFetch, OffsetCommit with generation
//! -1), for monitoring tools; Fjord's checkpoints hold the real positions.

use super::cluster::{Cluster, CoordinatorKind, Node};
use super::{Result, TopicPartition};
use crate::error::{KafkaError, codes};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetFetchRequest, TopicName,
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_fetch_request::OffsetFetchRequestTopic,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

/// v8+ batches groups; one group at a time is all this client needs.
const OFFSET_FETCH_VERSIONS: RangeInclusive<i16> = 1..=7;
/// v9+ belongs to KIP-848 consumer groups (member epochs).
const OFFSET_COMMIT_VERSIONS: RangeInclusive<i16> = 2..=8;

fn by_topic(partitions: impl IntoIterator<Item = TopicPartition>) -> BTreeMap<String, Vec<i32>> {
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(tp.topic).or_default().push(tp.partition);
    }
    topics
}

fn group_error(cluster: &mut Cluster, api: &'static str, group: &str, code: i16) -> KafkaError {
    if matches!(
        code,
        codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE
    ) {
        cluster.invalidate_coordinator(CoordinatorKind::Group, group);
    }
    KafkaError::broker(api, format!("consumer group {group}"), code)
}

/// Committed offsets of `group` (`None` where nothing is committed).
pub(crate) fn committed(
    cluster: &mut Cluster,
    group: &str,
    partitions: &[TopicPartition],
) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
    let topics = by_topic(partitions.iter().cloned());
    cluster.retry(|c| {
        let node = Node::Id(c.coordinator(CoordinatorKind::Group, group)?);
        let (response, version) = c.send(node, &OFFSET_FETCH_VERSIONS, Duration::ZERO, |v| {
            let mut request = OffsetFetchRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group.to_string()));
            request.require_stable = v >= 7;
            request.topics = Some(
                topics
                    .iter()
                    .map(|(topic, parts)| {
                        let mut t = OffsetFetchRequestTopic::default();
                        t.name = TopicName(StrBytes::from_string(topic.clone()));
                        t.partition_indexes = parts.clone();
                        t
                    })
                    .collect(),
            );
            request
        })?;
        if version >= 2 && response.error_code != 0 {
            return Err(group_error(c, "OffsetFetch", group, response.error_code));
        }
        let mut out: BTreeMap<TopicPartition, Option<i64>> =
            partitions.iter().map(|tp| (tp.clone(), None)).collect();
        for topic in &response.topics {
            for p in &topic.partitions {
                let tp = TopicPartition {
                    topic: topic.name.as_str().to_string(),
                    partition: p.partition_index,
                };
                if p.error_code != 0 {
                    return Err(KafkaError::broker(
                        "OffsetFetch",
                        format!("{tp} of consumer group {group}"),
                        p.error_code,
                    ));
                }
                if let Some(slot) = out.get_mut(&tp) {
                    *slot = (p.committed_offset >= 0).then_some(p.committed_offset);
                }
            }
        }
        Ok(out)
    })
}

/// Commits `offsets` for `group` as a simple (member-less) consumer.
pub(crate) fn commit(
    cluster: &mut Cluster,
    group: &str,
    offsets: &BTreeMap<TopicPartition, i64>,
) -> Result<()> {
    let mut topics: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (tp, offset) in offsets {
        topics
            .entry(&tp.topic)
            .or_default()
            .push((tp.partition, *offset));
    }
    cluster.retry(|c| {
        let node = Node::Id(c.coordinator(CoordinatorKind::Group, group)?);
        let (response, _) = c.send(node, &OFFSET_COMMIT_VERSIONS, Duration::ZERO, |_| {
            let mut request = OffsetCommitRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group.to_string()));
            request.generation_id_or_member_epoch = -1;
            request.member_id = StrBytes::new();
            request.retention_time_ms = -1;
            request.topics = topics
                .iter()
                .map(|(topic, parts)| {
                    let mut t = OffsetCommitRequestTopic::default();
                    t.name = TopicName(StrBytes::from_string(topic.to_string()));
                    t.partitions = parts
                        .iter()
                        .map(|(p, offset)| {
                            let mut cp = OffsetCommitRequestPartition::default();
                            cp.partition_index = *p;
                            cp.committed_offset = *offset;
                            cp.committed_leader_epoch = -1;
                            cp.committed_metadata = Some(StrBytes::new());
                            cp
                        })
                        .collect();
                    t
                })
                .collect();
            request
        })?;
        for topic in &response.topics {
            for p in &topic.partitions {
                if p.error_code != 0 {
                    return Err(group_error(c, "OffsetCommit", group, p.error_code));
                }
            }
        }
        Ok(())
    })
}
