//! Fetch: one request per partition leader (all in flight together), records decoded and
//! filtered for the isolation level.

use super::cluster::{Cluster, check_partition};
use super::records::{decode_batches, filter};
use super::{FetchOptions, FetchedPartition, IsolationLevel, Result, TopicPartition};
use crate::error::KafkaError;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, TopicName,
    fetch_request::{FetchPartition, FetchTopic},
};
use kafka_protocol::protocol::{Request, StrBytes};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;

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
    // One request per leader, all in flight at once: the leaders wait for data together.
    let mut in_flight = Vec::with_capacity(by_leader.len());
    let mut error = None;
    for (leader, tps) in &by_leader {
        let mut topics: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
        for (tp, offset) in tps {
            topics
                .entry(&tp.topic)
                .or_default()
                .push((tp.partition, **offset));
        }
        let sent = cluster.send_request(*leader, &VERSIONS, options.max_wait, |_| {
            request(&topics, options)
        });
        match sent {
            Ok(r) => in_flight.push((*leader, r)),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    // Every response is read, even after an error, so no connection is left out of step.
    let mut out = Vec::with_capacity(positions.len());
    for (leader, r) in in_flight {
        match cluster.receive::<FetchRequest>(&r) {
            Ok(response) if error.is_none() => {
                if let Err(e) = collect(cluster, leader, response, positions, options, &mut out) {
                    error = Some(e);
                }
            }
            Ok(_) => {}
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

fn request(topics: &BTreeMap<&str, Vec<(i32, i64)>>, options: &FetchOptions) -> FetchRequest {
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = i32::try_from(options.max_wait.as_millis()).unwrap_or(i32::MAX);
    request.min_bytes = options.min_bytes;
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
}

/// Decodes and filters one leader's response into `out`.
fn collect(
    cluster: &mut Cluster,
    leader: i32,
    response: FetchResponse,
    positions: &BTreeMap<TopicPartition, i64>,
    options: &FetchOptions,
    out: &mut Vec<FetchedPartition>,
) -> Result<()> {
    if response.error_code != 0 {
        return Err(KafkaError::broker(
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
    Ok(())
}
