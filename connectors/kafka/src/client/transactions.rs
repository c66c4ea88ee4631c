//! The transaction RPCs (protocol "transaction version 1": partitions are added explicitly with
//! AddPartitionsToTxn, the epoch stays for the producer's lifetime, so a transaction prepared by
//! one process can be committed by another with the stored producer id and epoch).

use super::cluster::{Cluster, CoordinatorKind, Node};
use super::{PreparedTransaction, Result, TopicPartition};
use crate::error::{KafkaError, codes};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest, InitProducerIdRequest,
    ProducerId, TopicName, TransactionalId, add_partitions_to_txn_request::AddPartitionsToTxnTopic,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// v5+ is for KIP-939's two-phase commit; not needed.
const INIT_PRODUCER_ID_VERSIONS: RangeInclusive<i16> = 0..=4;
/// v4+ is the broker-side batched form.
const ADD_PARTITIONS_VERSIONS: RangeInclusive<i16> = 0..=3;
/// v5+ switches the transaction to KIP-890's version 2 (epoch bump per transaction), which
/// would make a prepared transaction uncommittable from another process.
const END_TXN_VERSIONS: RangeInclusive<i16> = 0..=4;
const DESCRIBE_TRANSACTIONS_VERSIONS: RangeInclusive<i16> = 0..=0;

fn tid(id: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(id.to_string()))
}

/// Obtains a producer id and epoch: for an idempotent producer (`transactional_id` `None`)
/// from any broker, else from the transaction coordinator, which fences older producers of the
/// id and aborts its open transaction. Retried until `deadline` while the coordinator is
/// busy completing an earlier transaction.
pub(crate) fn init_producer_id(
    cluster: &mut Cluster,
    transactional_id: Option<&str>,
    timeout_ms: i32,
    deadline: Instant,
) -> Result<(i64, i16)> {
    cluster.retry_until(deadline, &mut |c| {
        let node = match transactional_id {
            None => Node::Any,
            Some(id) => Node::Id(c.coordinator(CoordinatorKind::Transaction, id)?),
        };
        let (response, _) = c.send(node, &INIT_PRODUCER_ID_VERSIONS, Duration::ZERO, |_| {
            let mut request = InitProducerIdRequest::default();
            request.transactional_id = transactional_id.map(tid);
            request.transaction_timeout_ms = timeout_ms;
            request.producer_id = ProducerId(-1);
            request.producer_epoch = -1;
            request
        })?;
        if response.error_code != 0 {
            return Err(coordinator_error(
                c,
                "InitProducerId",
                transactional_id.unwrap_or("(idempotent producer)"),
                response.error_code,
            ));
        }
        Ok((response.producer_id.0, response.producer_epoch))
    })
}

/// A coordinator error; forgets the coordinator when it moved.
fn coordinator_error(cluster: &mut Cluster, api: &'static str, id: &str, code: i16) -> KafkaError {
    if matches!(
        code,
        codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE
    ) {
        cluster.invalidate_coordinator(CoordinatorKind::Transaction, id);
    }
    KafkaError::broker(api, format!("transactional id {id}"), code)
}

/// Adds partitions to the open transaction (before the first write to each).
pub(crate) fn add_partitions(
    cluster: &mut Cluster,
    id: &str,
    producer: (i64, i16),
    partitions: &[TopicPartition],
    deadline: Instant,
) -> Result<()> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    cluster.retry_until(deadline, &mut |c| {
        let node = Node::Id(c.coordinator(CoordinatorKind::Transaction, id)?);
        let (response, _) = c.send(node, &ADD_PARTITIONS_VERSIONS, Duration::ZERO, |_| {
            let mut request = AddPartitionsToTxnRequest::default();
            request.v3_and_below_transactional_id = tid(id);
            request.v3_and_below_producer_id = ProducerId(producer.0);
            request.v3_and_below_producer_epoch = producer.1;
            request.v3_and_below_topics = topics
                .iter()
                .map(|(topic, parts)| {
                    let mut t = AddPartitionsToTxnTopic::default();
                    t.name = TopicName(StrBytes::from_string(topic.to_string()));
                    t.partitions = parts.clone();
                    t
                })
                .collect();
            request
        })?;
        if response.error_code != 0 {
            return Err(coordinator_error(
                c,
                "AddPartitionsToTxn",
                id,
                response.error_code,
            ));
        }
        // One failing partition makes the others OPERATION_NOT_ATTEMPTED (55): report the cause.
        let mut first_error = None;
        for topic in &response.results_by_topic_v3_and_below {
            for p in &topic.results_by_partition {
                let code = p.partition_error_code;
                if code != 0
                    && (first_error.is_none()
                        || first_error.as_ref().is_some_and(|(_, c)| *c == 55))
                {
                    first_error = Some((
                        format!("{}-{}", topic.name.as_str(), p.partition_index),
                        code,
                    ));
                }
            }
        }
        match first_error {
            None => Ok(()),
            Some((tp, code)) => {
                if matches!(
                    code,
                    codes::NOT_COORDINATOR | codes::COORDINATOR_NOT_AVAILABLE
                ) {
                    c.invalidate_coordinator(CoordinatorKind::Transaction, id);
                }
                Err(KafkaError::broker(
                    "AddPartitionsToTxn",
                    format!("{tp} in transactional id {id}"),
                    code,
                ))
            }
        }
    })
}

/// Commits or aborts the transaction of `id` at producer id/epoch `producer`.
pub(crate) fn end_txn(
    cluster: &mut Cluster,
    id: &str,
    producer: (i64, i16),
    commit: bool,
    deadline: Instant,
) -> Result<()> {
    cluster.retry_until(deadline, &mut |c| {
        let node = Node::Id(c.coordinator(CoordinatorKind::Transaction, id)?);
        let (response, _) = c.send(node, &END_TXN_VERSIONS, Duration::ZERO, |_| {
            let mut request = EndTxnRequest::default();
            request.transactional_id = tid(id);
            request.producer_id = ProducerId(producer.0);
            request.producer_epoch = producer.1;
            request.committed = commit;
            request
        })?;
        if response.error_code != 0 {
            return Err(coordinator_error(c, "EndTxn", id, response.error_code));
        }
        Ok(())
    })
}

/// The coordinator's view of a transactional id: (state, producer id, epoch).
pub(crate) fn describe(cluster: &mut Cluster, id: &str) -> Result<(String, i64, i16)> {
    cluster.retry(|c| {
        let node = Node::Id(c.coordinator(CoordinatorKind::Transaction, id)?);
        let (response, _) = c.send(
            node,
            &DESCRIBE_TRANSACTIONS_VERSIONS,
            Duration::ZERO,
            |_| {
                let mut request = DescribeTransactionsRequest::default();
                request.transactional_ids = vec![tid(id)];
                request
            },
        )?;
        let state = response
            .transaction_states
            .first()
            .ok_or_else(|| KafkaError::Protocol {
                api: "DescribeTransactions",
                message: format!("no state returned for transactional id {id}"),
            })?;
        if state.error_code != 0 {
            return Err(coordinator_error(
                c,
                "DescribeTransactions",
                id,
                state.error_code,
            ));
        }
        Ok((
            state.transaction_state.as_str().to_string(),
            state.producer_id.0,
            state.producer_epoch,
        ))
    })
}

/// Commits a prepared transaction from any process. Already committed: Ok. A transaction that
/// wrote nothing (the coordinator never saw it begin) is Ok too: there is nothing to commit.
pub(crate) fn commit_prepared(cluster: &mut Cluster, txn: &PreparedTransaction) -> Result<()> {
    let id = &txn.transactional_id;
    let producer = (txn.producer_id, txn.producer_epoch);
    let deadline = Instant::now() + cluster.settings.max_block;
    match end_txn(cluster, id, producer, true, deadline) {
        Err(e) if e.code() == Some(codes::INVALID_TXN_STATE) => {
            let (state, pid, epoch) = describe(cluster, id)?;
            if state == "Empty" && pid == txn.producer_id && epoch == txn.producer_epoch {
                Ok(())
            } else {
                Err(e)
            }
        }
        other => other,
    }
}
