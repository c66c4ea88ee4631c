//! The producer against a fake broker that keeps an idempotent producer's sequence the way
//! Kafka does (a producer it has no state for may start at any sequence; then each batch
//! must follow the last, or repeat one of the last five) and refuses the very first Produce
//! request as a partition whose leader is not ready yet.

use super::*;
use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, InitProducerIdResponse, ProduceRequest, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

const TOPIC: &str = "fresh";

/// What the fake broker saw: the batches it wrote (base sequence, count) in order.
#[derive(Default)]
struct Log {
    produce_requests: usize,
    /// Last sequence written, None while the broker has no state for the producer.
    last: Option<i32>,
    written: Vec<(i32, i32)>,
}

fn serve(mut sock: TcpStream, port: u16, log: Arc<Mutex<Log>>) {
    loop {
        let mut len = [0u8; 4];
        if sock.read_exact(&mut len).is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        sock.read_exact(&mut body).unwrap();
        let mut body = Bytes::from(body);
        let header =
            kafka_protocol::protocol::decode_request_header_from_buffer(&mut body).unwrap();
        let version = header.request_api_version;
        let mut out = BytesMut::new();
        out.put_i32(0);
        let mut rh = ResponseHeader::default();
        rh.correlation_id = header.correlation_id;
        match ApiKey::try_from(header.request_api_key).unwrap() {
            ApiKey::ApiVersions => {
                let mut response = ApiVersionsResponse::default();
                for (key, max) in [
                    (ApiKey::Metadata, 12),
                    (ApiKey::InitProducerId, 4),
                    (ApiKey::Produce, 9),
                ] {
                    let mut v =
                        kafka_protocol::messages::api_versions_response::ApiVersion::default();
                    v.api_key = key as i16;
                    v.min_version = 0;
                    v.max_version = max;
                    response.api_keys.push(v);
                }
                respond(&mut out, rh, &response, version);
            }
            ApiKey::Metadata => {
                use kafka_protocol::messages::metadata_response::*;
                let mut response = MetadataResponse::default();
                let mut broker = MetadataResponseBroker::default();
                broker.node_id = 1.into();
                broker.host = StrBytes::from_static_str("127.0.0.1");
                broker.port = i32::from(port);
                response.brokers.push(broker);
                let mut topic = MetadataResponseTopic::default();
                topic.name = Some(TopicName(StrBytes::from_static_str(TOPIC)));
                let mut partition = MetadataResponsePartition::default();
                partition.leader_id = 1.into();
                topic.partitions.push(partition);
                response.topics.push(topic);
                respond(&mut out, rh, &response, version);
            }
            ApiKey::InitProducerId => {
                let mut response = InitProducerIdResponse::default();
                response.producer_id = 7.into();
                response.producer_epoch = 0;
                respond(&mut out, rh, &response, version);
            }
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut body, version).unwrap();
                let records = request.topic_data[0].partition_data[0]
                    .records
                    .clone()
                    .unwrap();
                let base = i32::from_be_bytes(records[53..57].try_into().unwrap());
                let count = i32::from_be_bytes(records[57..61].try_into().unwrap());
                let code = {
                    let mut log = log.lock().unwrap();
                    log.produce_requests += 1;
                    let duplicate = log.written.iter().rev().take(5).any(|w| w.0 == base);
                    if log.produce_requests == 1 {
                        codes::NOT_LEADER_OR_FOLLOWER
                    } else if log.last.is_none_or(|last| base == last + 1) {
                        log.last = Some(base + count - 1);
                        log.written.push((base, count));
                        0
                    } else if duplicate {
                        codes::DUPLICATE_SEQUENCE_NUMBER
                    } else {
                        codes::OUT_OF_ORDER_SEQUENCE_NUMBER
                    }
                };
                use kafka_protocol::messages::produce_response::*;
                let mut response = ProduceResponse::default();
                let mut topic = TopicProduceResponse::default();
                topic.name = TopicName(StrBytes::from_static_str(TOPIC));
                let mut partition = PartitionProduceResponse::default();
                partition.error_code = code;
                topic.partition_responses.push(partition);
                response.responses.push(topic);
                respond(&mut out, rh, &response, version);
            }
            other => panic!("the fake broker does not answer {other:?}"),
        }
        let n = (out.len() - 4) as i32;
        out[..4].copy_from_slice(&n.to_be_bytes());
        sock.write_all(&out).unwrap();
    }
}

fn respond<R: Encodable + HeaderVersion>(
    out: &mut BytesMut,
    header: ResponseHeader,
    response: &R,
    version: i16,
) {
    header.encode(out, R::header_version(version)).unwrap();
    response.encode(out, version).unwrap();
}

/// The first batch is refused and sent again before any later batch of the partition goes
/// out: the broker writes every batch once, in sequence order, and the flush succeeds.
#[test]
fn a_refused_first_batch_is_not_overtaken_by_pipelined_ones() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Log::default()));
    let server_log = Arc::clone(&log);
    std::thread::spawn(move || {
        for sock in listener.incoming().take(4) {
            let log = Arc::clone(&server_log);
            std::thread::spawn(move || serve(sock.unwrap(), port, log));
        }
    });
    let config = ClientConfig {
        properties: [
            ("bootstrap.servers", format!("127.0.0.1:{port}")),
            ("batch.size", "64".to_string()),
            ("linger.ms", "0".to_string()),
            ("retry.backoff.ms", "1".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    let mut producer = Producer::new(&config, ProducerMode::Idempotent).unwrap();
    let tp = TopicPartition {
        topic: TOPIC.to_string(),
        partition: 0,
    };
    for i in 0..200 {
        let record = ProducerRecord {
            value: Some(Bytes::from(format!("record-{i:03}"))),
            ..ProducerRecord::default()
        };
        producer.send(&tp, record).unwrap();
    }
    producer.flush().unwrap();
    assert_eq!(producer.metrics().records_sent, 200);
    let log = log.lock().unwrap();
    let mut next = 0;
    for &(base, count) in &log.written {
        assert_eq!(
            base, next,
            "batches written out of sequence: {:?}",
            log.written
        );
        next = base + count;
    }
    assert_eq!(next, 200, "records written: {:?}", log.written);
    assert!(
        log.written.len() > 10,
        "pipelined batches: {:?}",
        log.written
    );
}
