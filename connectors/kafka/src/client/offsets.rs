//! ListOffsets: earliest, latest (last stable offset under read_committed) and by timestamp.

use super::cluster::{Cluster, Node, check_partition};
use super::{OffsetSpec, Result, TopicPartition};
use crate::error::KafkaError;
use kafka_protocol::messages::{
    BrokerId, ListOffsetsRequest, TopicName,
    list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
};
use kafka_protocol::protocol::{Request, StrBytes};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

/// v2+ carries the isolation level; v1 would not.
const VERSIONS: RangeInclusive<i16> = 2..=8;
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// Resolves `spec` for every partition (read_committed: `Latest` is the last stable offset).
pub(crate) fn list_offsets(
    cluster: &mut Cluster,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let timestamp = match spec {
        OffsetSpec::Earliest => EARLIEST,
        OffsetSpec::Latest => LATEST,
        OffsetSpec::Timestamp(t) if t < 0 => {
            return Err(KafkaError::Usage(format!(
                "a start timestamp must be >= 0 (ms since the epoch), got {t}"
            )));
        }
        OffsetSpec::Timestamp(t) => t,
    };
    let mut out = cluster.retry(|c| query(c, partitions, timestamp))?;
    // No record at or after the timestamp: the end of the partition.
    let past_end: Vec<TopicPartition> = out
        .iter()
        .filter(|(_, o)| **o < 0)
        .map(|(tp, _)| tp.clone())
        .collect();
    if !past_end.is_empty() {
        let latest = cluster.retry(|c| query(c, &past_end, LATEST))?;
        out.extend(latest);
    }
    Ok(out)
}

fn query(
    cluster: &mut Cluster,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Result<BTreeMap<TopicPartition, i64>> {
    let by_leader = cluster.by_leader("ListOffsets", partitions.iter().map(|tp| (tp, ())))?;
    let mut out = BTreeMap::new();
    for (leader, tps) in by_leader {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (tp, ()) in &tps {
            topics.entry(&tp.topic).or_default().push(tp.partition);
        }
        let (response, _) = cluster.send(Node::Id(leader), &VERSIONS, Duration::ZERO, |_| {
            let mut request = ListOffsetsRequest::default();
            request.replica_id = BrokerId(-1);
            request.isolation_level = 1; // read_committed
            request.topics = topics
                .iter()
                .map(|(topic, parts)| {
                    let mut t = ListOffsetsTopic::default();
                    t.name = TopicName(StrBytes::from_string(topic.to_string()));
                    t.partitions = parts
                        .iter()
                        .map(|p| {
                            let mut lp = ListOffsetsPartition::default();
                            lp.partition_index = *p;
                            lp.current_leader_epoch = -1;
                            lp.timestamp = timestamp;
                            lp
                        })
                        .collect();
                    t
                })
                .collect();
            request
        })?;
        for topic in response.topics {
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.name.as_str().to_string(),
                    partition: p.partition_index,
                };
                check_partition(cluster, ListOffsetsRequest::KEY, &tp, p.error_code)?;
                out.insert(tp, p.offset);
            }
        }
    }
    for tp in partitions {
        if !out.contains_key(tp) {
            return Err(KafkaError::Protocol {
                api: "ListOffsets",
                message: format!("the broker returned no offset for {tp}"),
            });
        }
    }
    Ok(out)
}
