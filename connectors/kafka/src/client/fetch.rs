//! Fetch: one request per partition leader, records decoded and filtered for the isolation
//! level.

use super::cluster::{Cluster, Node, check_partition};
use super::records::{decode_batches, filter};
use super::{FetchOptions, FetchedPartition, IsolationLevel, Result, TopicPartition};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, TopicName,
    fetch_request::{FetchPartition, FetchTopic},
};
use kafka_protocol::protocol::{Request, StrBytes};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::Duration;

/// v13+ names topics by id only; this client names them.
const VERSIONS: RangeInclusive<i16> = 4..=12;

/// Fetches every partition from its offset (retrying leader moves within the request timeout).
pub(crate) fn fetch(
    cluster: &mut Cluster,
    positions: &BTreeMap<TopicPartition, i64>,
    options: &FetchOptions,
) -> Result<Vec<FetchedPartition>> {
    cluster.retry(|c| fetch_once(c, positions, options))
}

fn fetch_once(
    cluster: &mut Cluster,
    positions: &BTreeMap<TopicPartition, i64>,
    options: &FetchOptions,
) -> Result<Vec<FetchedPartition>> {
    let by_leader = cluster.by_leader("Fetch", positions.iter())?;
    let mut out = Vec::with_capacity(positions.len());
    let mut got_records = false;
    for (leader, tps) in by_leader {
        // Once some leader returned data, the others are not waited for.
        let max_wait = if got_records {
            Duration::ZERO
        } else {
            options.max_wait
        };
        let mut topics: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for (tp, offset) in &tps {
            topics
                .entry(&tp.topic)
                .or_default()
                .push((tp.partition, **offset));
        }
        let (response, _) = cluster.send(Node::Id(leader), &VERSIONS, max_wait, |_| {
            let mut request = FetchRequest::default();
            request.replica_id = BrokerId(-1);
            request.max_wait_ms = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
            request.min_bytes = if got_records { 0 } else { options.min_bytes };
            request.max_bytes = options.max_bytes;
            request.isolation_level = match options.isolation {
                IsolationLevel::ReadUncommitted => 0,
                IsolationLevel::ReadCommitted => 1,
            };
            request.session_id = 0;
            request.session_epoch = -1; // no fetch session: a full fetch every time
            request.topics = topics
                .iter()
                .map(|(topic, parts)| {
                    let mut t = FetchTopic::default();
                    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
                    t.partitions = parts
                        .iter()
                        .map(|(p, offset)| {
                            let mut fp = FetchPartition::default();
                            fp.partition = *p;
                            fp.current_leader_epoch = -1;
                            fp.fetch_offset = *offset;
                            fp.last_fetched_epoch = -1;
                            fp.log_start_offset = -1;
                            fp.partition_max_bytes = options.partition_max_bytes;
                            fp
                        })
                        .collect();
                    t
                })
                .collect();
            request
        })?;
        if response.error_code != 0 {
            return Err(crate::error::KafkaError::broker(
                "Fetch",
                format!("broker {leader}"),
                response.error_code,
            ));
        }
        for topic in response.responses {
            for p in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.topic.as_str().to_string(),
                    partition: p.partition_index,
                };
                check_partition(cluster, FetchRequest::KEY, &tp, p.error_code)?;
                let Some(&fetch_offset) = positions.get(&tp) else {
                    continue;
                };
                let aborted: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                let batches = decode_batches(p.records.unwrap_or_default(), &tp.to_string())?;
                let filtered = filter(batches, fetch_offset, options.isolation, &aborted);
                got_records |= !filtered.records.is_empty();
                out.push(FetchedPartition {
                    partition: tp,
                    records: filtered.records,
                    next_offset: filtered.next_offset,
                    high_watermark: p.high_watermark,
                    last_stable_offset: if p.last_stable_offset < 0 {
                        p.high_watermark
                    } else {
                        p.last_stable_offset
                    },
                    bytes: filtered.bytes,
                });
            }
        }
    }
    Ok(out)
}
