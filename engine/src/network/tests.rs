//! Channels over real loopback sockets: every event kind, both connection orders,
//! backpressure, failure and end-of-partition semantics, fencing and cancellation.

use super::*;
use crate::checkpoint::CheckpointBarrier;
use crate::error::FjordError;
use crate::exchange::channel::{CancelFlag, ChannelSender, Event};
use crate::storage::{SnapshotStore, StorageOptions};
use crate::types::StreamRecord;
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Rec = (String, i64);

/// Bound on every wait; a test that reaches it failed (it never bounds a timing assertion).
const WAIT: Duration = Duration::from_secs(20);

fn key(job: &str, attempt: u32, consumer: u32) -> ChannelKey {
    ChannelKey {
        job_id: job.into(),
        epoch: 3,
        attempt,
        edge: 1,
        producer: 0,
        consumer,
    }
}

fn server() -> DataServer {
    DataServer::bind("127.0.0.1:0", StorageOptions::default()).unwrap()
}

fn codec() -> Arc<dyn BatchCodec> {
    Arc::new(TypedCodec::<Rec>::new())
}

fn open(
    server: &DataServer,
    key: &ChannelKey,
    capacity: usize,
    cancel: &CancelFlag,
) -> ChannelSender {
    connect(
        &server.local_addr().to_string(),
        key.clone(),
        codec(),
        capacity,
        cancel,
    )
    .unwrap()
}

fn batch(from: i64, n: i64) -> Vec<StreamRecord<Rec>> {
    (from..from + n)
        .map(|i| StreamRecord::with_timestamp((format!("k{}", i % 7), i), 1_000 + i))
        .collect()
}

fn records(b: Vec<StreamRecord<Rec>>) -> Event {
    Event::Records(Box::new(b))
}

/// The records of a batch event, or a description of the other event.
fn recv(receiver: &Receiver<Event>) -> Result<Vec<StreamRecord<Rec>>, String> {
    match receiver.recv_timeout(WAIT) {
        Ok(e @ (Event::Records(_) | Event::Encoded(_))) => {
            let b = e
                .into_batch()
                .map_err(|e| format!("undecodable batch: {e}"))?;
            Ok(*b.downcast::<Vec<StreamRecord<Rec>>>().unwrap())
        }
        Ok(Event::Watermark(t)) => Err(format!("watermark {t}")),
        Ok(Event::WatermarkStatus { idle }) => Err(format!("status idle={idle}")),
        Ok(Event::Barrier(b)) => Err(format!(
            "barrier {} {} {} {} {:?} {}",
            b.id,
            b.timestamp,
            b.target.url(),
            b.savepoint,
            b.stop,
            b.full
        )),
        Ok(Event::EndOfPartition) => Err("end".into()),
        Err(RecvTimeoutError::Disconnected) => Err("disconnected".into()),
        Err(RecvTimeoutError::Timeout) => panic!("nothing arrived within {WAIT:?}"),
    }
}

/// Waits (bounded) until `condition` holds.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends until `send` fails (bounded); the error.
fn send_until_error(sender: &ChannelSender) -> FjordError {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "send kept succeeding");
        if let Err(e) = sender.send(Event::Watermark(0)) {
            return e;
        }
    }
}

#[test]
fn every_event_kind_round_trips_in_order() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("round-trip", 0, 0);
    let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
    let sender = open(&server, &k, 8, &cancel);
    let target =
        SnapshotStore::open("memory://network-test/chk-7", &StorageOptions::default()).unwrap();
    for i in 0..5 {
        sender.send(records(batch(i * 100, 100))).unwrap();
    }
    sender.send(Event::Watermark(4_242)).unwrap();
    sender.send(Event::WatermarkStatus { idle: true }).unwrap();
    sender.send(Event::WatermarkStatus { idle: false }).unwrap();
    sender
        .send(Event::Barrier(CheckpointBarrier {
            id: 7,
            timestamp: 99,
            target,
            savepoint: true,
            stop: Some(false),
            full: true,
        }))
        .unwrap();
    sender.send(records(vec![])).unwrap();
    sender.send(Event::EndOfPartition).unwrap();
    drop(sender);

    for i in 0..5 {
        assert_eq!(recv(&receiver), Ok(batch(i * 100, 100)));
    }
    assert_eq!(recv(&receiver), Err("watermark 4242".into()));
    assert_eq!(recv(&receiver), Err("status idle=true".into()));
    assert_eq!(recv(&receiver), Err("status idle=false".into()));
    assert_eq!(
        recv(&receiver),
        Err("barrier 7 99 memory://network-test/chk-7 true Some(false) true".into())
    );
    assert_eq!(recv(&receiver), Ok(vec![]));
    assert_eq!(recv(&receiver), Err("end".into()));
    assert_eq!(recv(&receiver), Err("disconnected".into()));
    assert!(server.bytes_received() > 0);
    assert!(bytes_sent() > 0);
}

#[test]
fn producer_may_connect_before_the_consumer_registers() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("early", 0, 1);
    let sender = open(&server, &k, 4, &cancel);
    wait_until("the connection waits", || server.waiting_connections() == 1);
    let receiver = server.incoming(k.clone(), codec(), 4, &cancel).unwrap();
    for i in 0..3 {
        sender.send(records(batch(i * 10, 10))).unwrap();
    }
    sender.send(Event::EndOfPartition).unwrap();
    for i in 0..3 {
        assert_eq!(recv(&receiver), Ok(batch(i * 10, 10)));
    }
    assert_eq!(recv(&receiver), Err("end".into()));
    assert_eq!(recv(&receiver), Err("disconnected".into()));
}

#[test]
fn channels_of_one_server_are_independent() {
    let server = server();
    let cancel = CancelFlag::default();
    let keys: Vec<_> = (0..3).map(|c| key("many", 0, c)).collect();
    let receivers: Vec<_> = keys
        .iter()
        .map(|k| server.incoming(k.clone(), codec(), 2, &cancel).unwrap())
        .collect();
    let senders: Vec<_> = keys.iter().map(|k| open(&server, k, 2, &cancel)).collect();
    for (c, sender) in senders.iter().enumerate() {
        sender.send(records(batch(c as i64 * 1_000, 3))).unwrap();
        sender.send(Event::EndOfPartition).unwrap();
    }
    for (c, receiver) in receivers.iter().enumerate().rev() {
        assert_eq!(recv(receiver), Ok(batch(c as i64 * 1_000, 3)));
        assert_eq!(recv(receiver), Err("end".into()));
    }
}

#[test]
fn a_full_consumer_blocks_the_producer_after_twice_its_capacity() {
    const CAPACITY: usize = 4;
    const BATCHES: i64 = 200;
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("backpressure", 0, 0);
    let receiver = server
        .incoming(k.clone(), codec(), CAPACITY, &cancel)
        .unwrap();
    let sender = open(&server, &k, CAPACITY, &cancel);
    let (progress, sent) = crossbeam_channel::unbounded();
    let producer = std::thread::spawn(move || {
        for i in 0..BATCHES {
            sender.send(records(batch(i * 3, 3))).unwrap();
            progress.send(i).unwrap();
        }
        sender.send(Event::EndOfPartition).unwrap();
    });
    // The consumer reads nothing: the producer gets exactly 2 * capacity + 2 sends through
    // (consumer queue, credit in flight, the sender thread's event, the hand-off slot).
    let bound = 2 * CAPACITY + 2;
    let mut count = 0;
    while count < bound {
        sent.recv_timeout(WAIT)
            .expect("the producer reaches the bound");
        count += 1;
    }
    wait_until("the consumer's queue is full", || {
        receiver.len() == CAPACITY
    });
    // No more: the producer is blocked (a hard bound, whatever the scheduling).
    assert_eq!(
        sent.recv_timeout(Duration::from_millis(300)),
        Err(RecvTimeoutError::Timeout),
        "the producer sent more than 2 * capacity + 2 events to a consumer that reads nothing"
    );
    // Reading resumes the producer; nothing is lost and the order holds.
    for i in 0..BATCHES {
        assert_eq!(recv(&receiver), Ok(batch(i * 3, 3)));
    }
    assert_eq!(recv(&receiver), Err("end".into()));
    assert_eq!(recv(&receiver), Err("disconnected".into()));
    producer.join().unwrap();
}

#[test]
fn a_producer_dropped_without_end_of_partition_disconnects_after_its_events() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("dropped", 0, 0);
    let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
    let sender = open(&server, &k, 8, &cancel);
    let clone = sender.clone();
    sender.send(records(batch(0, 5))).unwrap();
    clone.send(Event::Watermark(5)).unwrap();
    drop(sender);
    drop(clone);
    assert_eq!(recv(&receiver), Ok(batch(0, 5)));
    assert_eq!(recv(&receiver), Err("watermark 5".into()));
    assert_eq!(recv(&receiver), Err("disconnected".into()));
}

#[test]
fn fencing_refuses_and_disconnects_older_attempts() {
    let server = server();
    let cancel = CancelFlag::default();
    let old = key("fenced", 0, 0);
    let old_receiver = server.incoming(old.clone(), codec(), 8, &cancel).unwrap();
    let old_sender = open(&server, &old, 8, &cancel);
    old_sender.send(records(batch(0, 2))).unwrap();
    assert_eq!(recv(&old_receiver), Ok(batch(0, 2)));
    // A registered channel without connection of the old attempt.
    let idle = key("fenced", 0, 1);
    let idle_receiver = server.incoming(idle.clone(), codec(), 8, &cancel).unwrap();
    // Another job is not affected.
    let other = key("other-job", 0, 0);
    let other_receiver = server.incoming(other.clone(), codec(), 8, &cancel).unwrap();

    server.fence("fenced", 3, 1);

    assert_eq!(recv(&old_receiver), Err("disconnected".into()));
    assert_eq!(recv(&idle_receiver), Err("disconnected".into()));
    let e = send_until_error(&old_sender);
    assert!(
        matches!(&e, FjordError::Network(m) if m.contains("fenced") && m.contains("attempt 0")),
        "{e}"
    );

    // Later connections and registrations of the old attempt are refused, naming the channel.
    let late = open(&server, &key("fenced", 0, 2), 8, &cancel);
    let e = send_until_error(&late);
    let message = e.to_string();
    assert!(
        message.contains("refused channel job 'fenced' epoch 3 attempt 0 edge 1 subtask 0 -> 2")
            && message.contains("fenced generation")
            && message.contains("epoch 3 attempt 1"),
        "{message}"
    );
    assert!(matches!(
        server.incoming(key("fenced", 0, 3), codec(), 8, &cancel),
        Err(FjordError::Network(m)) if m.contains("fenced")
    ));

    // The new attempt works.
    let new = key("fenced", 1, 0);
    let receiver = server.incoming(new.clone(), codec(), 8, &cancel).unwrap();
    let sender = open(&server, &new, 8, &cancel);
    sender.send(records(batch(9, 1))).unwrap();
    assert_eq!(recv(&receiver), Ok(batch(9, 1)));

    let other_sender = open(&server, &other, 8, &cancel);
    other_sender.send(Event::EndOfPartition).unwrap();
    assert_eq!(recv(&other_receiver), Err("end".into()));
}

#[test]
fn a_connection_without_registration_is_refused_after_the_wait() {
    let server = DataServer::bind_with(
        "127.0.0.1:0",
        StorageOptions::default(),
        Duration::from_millis(100),
        None,
    )
    .unwrap();
    let cancel = CancelFlag::default();
    let sender = open(&server, &key("nobody", 0, 0), 8, &cancel);
    let e = send_until_error(&sender);
    assert!(
        matches!(&e, FjordError::Network(m) if m.contains("no consumer registered channel job 'nobody'")),
        "{e}"
    );
}

#[test]
fn connecting_to_a_closed_port_stops_when_cancelled_and_bad_addresses_fail_at_once() {
    // Bind and drop a server to get a free port nobody listens on.
    let address = server().local_addr().to_string();
    let cancel = CancelFlag::default();
    let sender = connect(&address, key("gone", 0, 0), codec(), 8, &cancel).unwrap();
    cancel.cancel();
    assert!(matches!(send_until_error(&sender), FjordError::Cancelled));
    assert!(matches!(
        connect("no-port", key("gone", 0, 0), codec(), 8, &cancel),
        Err(FjordError::Network(m)) if m.contains("not host:port")
    ));
}

#[test]
fn cancelling_the_producer_ends_its_threads_and_disconnects_the_consumer() {
    let server = server();
    let consumer_cancel = CancelFlag::default();
    let producer_cancel = CancelFlag::default();
    let k = key("cancel", 0, 0);
    let receiver = server
        .incoming(k.clone(), codec(), 2, &consumer_cancel)
        .unwrap();
    let sender = open(&server, &k, 2, &producer_cancel);
    sender.send(records(batch(0, 1))).unwrap();
    assert_eq!(recv(&receiver), Ok(batch(0, 1)));
    // Fill the consumer until the producer blocks, then cancel the producer.
    let blocked = std::thread::spawn(move || send_until_error(&sender));
    wait_until("the consumer's queue is full", || receiver.len() == 2);
    producer_cancel.cancel();
    assert!(matches!(blocked.join().unwrap(), FjordError::Cancelled));
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline);
        if let Err(RecvTimeoutError::Disconnected) = receiver.recv_timeout(WAIT) {
            break;
        }
    }
}

#[test]
fn cancelling_the_consumer_disconnects_it_and_stops_the_producer() {
    let server = server();
    let consumer_cancel = CancelFlag::default();
    let k = key("cancel-consumer", 0, 0);
    let receiver = server
        .incoming(k.clone(), codec(), 2, &consumer_cancel)
        .unwrap();
    let sender = open(&server, &k, 2, &CancelFlag::default());
    sender.send(records(batch(0, 1))).unwrap();
    assert_eq!(recv(&receiver), Ok(batch(0, 1)));
    consumer_cancel.cancel();
    // A cancellation on the other side is a cancellation here too, not a root cause.
    assert!(matches!(send_until_error(&sender), FjordError::Cancelled));
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline);
        if let Err(RecvTimeoutError::Disconnected) = receiver.recv_timeout(WAIT) {
            break;
        }
    }
}

#[test]
fn a_consumer_that_stops_reading_cancels_the_producer() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("consumer-gone", 0, 0);
    let receiver = server.incoming(k.clone(), codec(), 2, &cancel).unwrap();
    let sender = open(&server, &k, 2, &cancel);
    drop(receiver);
    assert!(matches!(send_until_error(&sender), FjordError::Cancelled));
}

#[test]
fn dropping_the_server_disconnects_its_consumers() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("shutdown", 0, 0);
    let receiver = server.incoming(k.clone(), codec(), 2, &cancel).unwrap();
    let sender = open(&server, &k, 2, &cancel);
    sender.send(records(batch(0, 1))).unwrap();
    assert_eq!(recv(&receiver), Ok(batch(0, 1)));
    drop(server);
    assert_eq!(recv(&receiver), Err("disconnected".into()));
    assert!(
        matches!(send_until_error(&sender), FjordError::Network(m) if m.contains("shutting down"))
    );
}

#[test]
fn a_foreign_protocol_version_is_refused() {
    use std::io::{Read, Write};
    let server = server();
    let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
    let mut hello = b"FJRD".to_vec();
    hello.extend_from_slice(&99u16.to_be_bytes());
    stream.write_all(&hello).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    assert_eq!(answer[4], protocol::kind::REFUSE);
    let reason = String::from_utf8_lossy(&answer[5..]).to_string();
    assert!(
        reason.contains("version 99") && reason.contains("version 1"),
        "{reason}"
    );
}

#[test]
fn typed_codec_round_trips_and_rejects_other_types() {
    let codec = TypedCodec::<Rec>::new();
    let mut bytes = Vec::new();
    codec.encode(&batch(0, 3), &mut bytes).unwrap();
    let decoded = codec.decode(&bytes).unwrap();
    assert_eq!(
        *decoded.downcast::<Vec<StreamRecord<Rec>>>().unwrap(),
        batch(0, 3)
    );
    assert!(matches!(
        codec.encode(&vec![StreamRecord::new(1u8)], &mut bytes),
        Err(FjordError::Internal(_))
    ));
    assert!(matches!(
        codec.decode(&[1, 2, 3]),
        Err(FjordError::Serialization { .. })
    ));
}

#[test]
fn batches_are_encoded_by_the_producer_and_decoded_by_the_consumer() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("encoded", 0, 0);
    let receiver = server.incoming(k.clone(), codec(), 4, &cancel).unwrap();
    let sender = open(&server, &k, 4, &cancel);
    // A batch of another type fails the producer's send, on the producer's thread, and the
    // channel stays usable.
    let err = sender
        .send(Event::Records(Box::new(vec![StreamRecord::new(1u8)])))
        .unwrap_err();
    assert!(matches!(err, FjordError::Internal(_)), "{err}");
    sender.send(records(batch(0, 5))).unwrap();
    sender.send(Event::EndOfPartition).unwrap();
    // The consumer's queue holds the batch's bytes; the consuming task decodes them.
    let event = receiver.recv_timeout(WAIT).unwrap();
    let Event::Encoded(encoded) = event else {
        panic!("a record batch arrived decoded");
    };
    let mut expected = Vec::new();
    codec().encode(&batch(0, 5), &mut expected).unwrap();
    assert_eq!(encoded.bytes, expected);
    let decoded = Event::Encoded(encoded).into_batch().unwrap();
    assert_eq!(
        *decoded.downcast::<Vec<StreamRecord<Rec>>>().unwrap(),
        batch(0, 5)
    );
    assert_eq!(recv(&receiver), Err("end".into()));
    // Bytes that are no batch fail where they are decoded, naming the record type.
    let bad = crate::exchange::channel::EncodedBatch {
        bytes: vec![1, 2, 3],
        codec: codec(),
    };
    let err = Event::Encoded(bad).into_batch().unwrap_err();
    assert!(matches!(err, FjordError::Serialization { .. }), "{err}");
    assert!(err.to_string().contains("String"), "{err}");
}

#[test]
fn batches_larger_than_the_socket_buffers_cross_whole() {
    let server = server();
    let cancel = CancelFlag::default();
    let k = key("large", 0, 0);
    let receiver = server.incoming(k.clone(), codec(), 1, &cancel).unwrap();
    let sender = open(&server, &k, 1, &cancel);
    let producer = std::thread::spawn(move || {
        for i in 0..3 {
            sender.send(records(batch(i * 200_000, 200_000))).unwrap();
        }
        sender.send(Event::EndOfPartition).unwrap();
    });
    for i in 0..3 {
        assert_eq!(recv(&receiver), Ok(batch(i * 200_000, 200_000)));
    }
    assert_eq!(recv(&receiver), Err("end".into()));
    producer.join().unwrap();
}

#[test]
fn a_cancelled_registration_without_producer_is_released() {
    let server = server();
    let cancelled = CancelFlag::default();
    let receiver = server
        .incoming(key("released", 0, 0), codec(), 2, &cancelled)
        .unwrap();
    cancelled.cancel();
    // The next registration sweeps it.
    let _other = server
        .incoming(key("released", 0, 1), codec(), 2, &CancelFlag::default())
        .unwrap();
    assert_eq!(recv(&receiver), Err("disconnected".into()));
}

/// Mutual TLS on the data port: certificates of one CA in a temporary directory.
mod tls {
    use super::*;
    use crate::network::tls::{self as data_tls, Connection};
    use crate::tls::{InternalTls, testing};
    use std::io::{Read, Write};
    use std::net::Shutdown;

    struct Pki {
        _dir: tempfile::TempDir,
        server: InternalTls,
        producer: InternalTls,
        stranger: InternalTls,
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        testing::ca(dir.path(), "cluster-ca");
        testing::ca(dir.path(), "other-ca");
        let load = |files| InternalTls::load(&files).unwrap();
        Pki {
            server: load(testing::leaf(dir.path(), "cluster-ca", "tm-1")),
            producer: load(testing::leaf(dir.path(), "cluster-ca", "tm-2")),
            stranger: load(testing::leaf(dir.path(), "other-ca", "intruder")),
            _dir: dir,
        }
    }

    fn open_with(
        server: &DataServer,
        key: &ChannelKey,
        cancel: &CancelFlag,
        tls: Option<&InternalTls>,
    ) -> ChannelSender {
        outbound::connect_with(
            &server.local_addr().to_string(),
            key.clone(),
            codec(),
            cancel,
            None,
            tls.cloned(),
        )
        .unwrap()
    }

    #[test]
    fn records_travel_over_mutual_tls() {
        let pki = pki();
        let server =
            DataServer::bind_tls("127.0.0.1:0", StorageOptions::default(), Some(&pki.server))
                .unwrap();
        let cancel = CancelFlag::default();
        let k = key("tls", 0, 0);
        let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&pki.producer));
        // 8 batches and the end: fewer events than the channel buffers (2 * 8 + 2), so the
        // test may send everything before it receives.
        for i in 0..8 {
            sender.send(records(batch(i * 125, 125))).unwrap();
        }
        sender.send(Event::EndOfPartition).unwrap();
        let mut got = Vec::new();
        loop {
            match recv(&receiver) {
                Ok(b) => got.extend(b.into_iter().map(|r| r.value.1)),
                Err(e) => {
                    assert_eq!(e, "end");
                    break;
                }
            }
        }
        assert_eq!(got, (0..1000).collect::<Vec<i64>>());
    }

    #[test]
    fn a_producer_with_a_certificate_of_another_ca_is_refused() {
        let pki = pki();
        let server =
            DataServer::bind_tls("127.0.0.1:0", StorageOptions::default(), Some(&pki.server))
                .unwrap();
        let cancel = CancelFlag::default();
        let k = key("tls-stranger", 0, 0);
        let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&pki.stranger));
        let e = send_until_error(&sender);
        assert!(matches!(e, FjordError::Network(_)), "{e}");
        assert!(
            matches!(
                receiver.recv_timeout(Duration::from_millis(200)),
                Err(RecvTimeoutError::Timeout)
            ),
            "nothing reached the consumer"
        );
    }

    #[test]
    fn a_plain_text_producer_is_refused() {
        let pki = pki();
        let server =
            DataServer::bind_tls("127.0.0.1:0", StorageOptions::default(), Some(&pki.server))
                .unwrap();
        let cancel = CancelFlag::default();
        let k = key("tls-plain", 0, 0);
        let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, None);
        let e = send_until_error(&sender);
        assert!(matches!(e, FjordError::Network(_)), "{e}");
        assert!(receiver.try_recv().is_err(), "nothing reached the consumer");
    }

    #[test]
    fn a_server_of_another_ca_is_not_trusted() {
        let pki = pki();
        let server = DataServer::bind_tls(
            "127.0.0.1:0",
            StorageOptions::default(),
            Some(&pki.stranger),
        )
        .unwrap();
        let cancel = CancelFlag::default();
        let k = key("tls-fake-server", 0, 0);
        let _receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&pki.producer));
        let e = send_until_error(&sender);
        assert!(
            matches!(&e, FjordError::Network(m) if m.contains("TLS handshake failed")),
            "{e}"
        );
    }

    fn tls_server(tls: &InternalTls) -> DataServer {
        DataServer::bind_tls("127.0.0.1:0", StorageOptions::default(), Some(tls)).unwrap()
    }

    /// Files of a certificate of `ca` (made by [`testing::ca`]) whose owner trusts `trusts`.
    fn leaf_trusting(dir: &std::path::Path, ca: &str, name: &str, trusts: &str) -> InternalTls {
        let files = crate::tls::TlsFiles {
            ca: dir.join(format!("{trusts}.crt")),
            ..testing::leaf(dir, ca, name)
        };
        InternalTls::load(&files).unwrap()
    }

    /// The producer's side of a connection written by hand: handshake, hello, the server's
    /// accept.
    fn hand_made_producer(server: &DataServer, tls: &InternalTls, key: &ChannelKey) -> Connection {
        let Ok(conn) = data_tls::connect(&server.local_addr(), WAIT, tls) else {
            panic!("the handshake failed");
        };
        conn.set_read_timeout(Some(WAIT)).unwrap();
        let mut out = Vec::new();
        protocol::hello(&mut out, key).unwrap();
        (&conn).write_all(&out).unwrap();
        (&conn).flush().unwrap();
        let mut reader = protocol::FrameReader::new();
        let deadline = Instant::now() + WAIT;
        let frame = reader
            .wait(&mut &conn, deadline, "the accept", || Ok(()), |_| {})
            .unwrap();
        assert!(matches!(frame, Some((protocol::kind::ACCEPT, _))));
        conn
    }

    /// Runs `f` on a thread and waits (bounded) for its result.
    fn bounded<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = done.send(f());
        });
        result
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
    }

    #[test]
    fn a_client_certificate_the_server_refuses_fails_the_channel_with_its_alert() {
        // The producer trusts the server, but its own certificate is of another CA: the server
        // refuses it. With TLS 1.3 the client's side of the handshake is complete by then, so
        // the refusal arrives as the server's alert on the first read.
        let pki = pki();
        let outsider = leaf_trusting(pki._dir.path(), "other-ca", "outsider", "cluster-ca");
        let server = tls_server(&pki.server);
        let cancel = CancelFlag::default();
        let k = key("tls-refused-client", 0, 0);
        let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&outsider));
        let e = send_until_error(&sender);
        let message = e.to_string();
        assert!(
            matches!(&e, FjordError::Network(_))
                && message.contains("refused this process's certificate")
                && message.contains(&k.to_string()),
            "{message}"
        );
        // Nothing reached the consumer, and the port still serves the cluster's producers.
        let sender = open_with(&server, &k, &cancel, Some(&pki.producer));
        sender.send(records(batch(0, 3))).unwrap();
        sender.send(Event::EndOfPartition).unwrap();
        assert_eq!(recv(&receiver), Ok(batch(0, 3)));
        assert_eq!(recv(&receiver), Err("end".into()));
    }

    #[test]
    fn a_producer_that_closes_mid_frame_disconnects_the_consumer() {
        let pki = pki();
        let server = tls_server(&pki.server);
        let cancel = CancelFlag::default();
        // With `close_notify` (a clean TLS close) and without (the socket just ends).
        for (consumer, clean) in [(0, true), (1, false)] {
            let k = key("tls-mid-frame", 0, consumer);
            let receiver = server.incoming(k.clone(), codec(), 8, &cancel).unwrap();
            let conn = hand_made_producer(&server, &pki.producer, &k);
            let mut frames = Vec::new();
            protocol::encode_event(&records(batch(0, 10)), &*codec(), &mut frames).unwrap();
            let whole = frames.len();
            protocol::encode_event(&records(batch(10, 20_000)), &*codec(), &mut frames).unwrap();
            // The first frame and half of the second, which spans many TLS records.
            let cut = whole + (frames.len() - whole) / 2;
            (&conn).write_all(&frames[..cut]).unwrap();
            (&conn).flush().unwrap();
            if clean {
                conn.shutdown(Shutdown::Write).unwrap();
            } else {
                conn.shutdown(Shutdown::Both).unwrap();
            }
            assert_eq!(recv(&receiver), Ok(batch(0, 10)), "clean: {clean}");
            assert_eq!(
                recv(&receiver),
                Err("disconnected".into()),
                "clean: {clean}"
            );
        }
    }

    #[test]
    fn a_consumer_that_closes_mid_frame_fails_the_producer() {
        let pki = pki();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server_tls = pki.server.clone();
        // A consumer written by hand: accepts with one credit, then sends half a credit frame
        // and closes.
        let consumer = std::thread::spawn(move || {
            let (tcp, peer) = listener.accept().unwrap();
            let conn = data_tls::accept(tcp, peer, &server_tls, || false).expect("handshake");
            conn.set_read_timeout(Some(WAIT)).unwrap();
            let mut reader = protocol::FrameReader::with_preamble();
            let deadline = Instant::now() + WAIT;
            let stop = || -> crate::error::Result<()> { Ok(()) };
            reader
                .wait_preamble(&mut &conn, deadline, stop, |_| {})
                .unwrap()
                .unwrap();
            let hello = reader
                .wait(&mut &conn, deadline, "the hello", stop, |_| {})
                .unwrap();
            assert!(matches!(hello, Some((protocol::kind::HELLO, _))));
            let mut out = Vec::new();
            protocol::frame_bytes(&mut out, protocol::kind::ACCEPT, &1u32.to_be_bytes());
            protocol::frame_bytes(&mut out, protocol::kind::CREDIT, &1u32.to_be_bytes());
            out.truncate(out.len() - 2);
            (&conn).write_all(&out).unwrap();
            (&conn).flush().unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
            // Until the producer goes.
            let _ = (&conn).read_to_end(&mut Vec::new());
        });
        let cancel = CancelFlag::default();
        let sender = outbound::connect_with(
            &address.to_string(),
            key("tls-consumer-mid-frame", 0, 0),
            codec(),
            &cancel,
            None,
            Some(pki.producer.clone()),
        )
        .unwrap();
        let e = send_until_error(&sender);
        assert!(
            matches!(&e, FjordError::Network(m) if m.contains("closed the connection")),
            "{e}"
        );
        bounded("the hand-made consumer", move || consumer.join().unwrap());
    }

    #[test]
    fn large_frames_cross_many_tls_records_whole() {
        // Frames of about 5 MB: hundreds of TLS records each, more than the socket buffers.
        let pki = pki();
        let server = tls_server(&pki.server);
        let cancel = CancelFlag::default();
        let k = key("tls-large", 0, 0);
        let receiver = server.incoming(k.clone(), codec(), 1, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&pki.producer));
        let producer = std::thread::spawn(move || {
            for i in 0..3 {
                sender.send(records(batch(i * 200_000, 200_000))).unwrap();
            }
            sender.send(Event::EndOfPartition).unwrap();
        });
        for i in 0..3 {
            assert_eq!(recv(&receiver), Ok(batch(i * 200_000, 200_000)));
        }
        assert_eq!(recv(&receiver), Err("end".into()));
        assert_eq!(recv(&receiver), Err("disconnected".into()));
        producer.join().unwrap();
    }

    #[test]
    fn credits_flow_back_while_the_producer_writes() {
        // Capacity 2: the consumer grants credit after every event, so credit records come
        // back on the connection all the time the producer's records go out. Batches alternate
        // between one record and 5,000 (several TLS records), so the producer's sender thread
        // is often in a write while its credit thread decrypts.
        const BATCHES: i64 = 300;
        let size = |i: i64| if i % 2 == 0 { 1 } else { 5_000 };
        let pki = pki();
        let server = tls_server(&pki.server);
        let cancel = CancelFlag::default();
        let k = key("tls-credit", 0, 0);
        let receiver = server.incoming(k.clone(), codec(), 2, &cancel).unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&pki.producer));
        let producer = std::thread::spawn(move || {
            for i in 0..BATCHES {
                sender.send(records(batch(i * 10_000, size(i)))).unwrap();
            }
            sender.send(Event::EndOfPartition).unwrap();
        });
        for i in 0..BATCHES {
            assert_eq!(recv(&receiver), Ok(batch(i * 10_000, size(i))), "batch {i}");
        }
        assert_eq!(recv(&receiver), Err("end".into()));
        producer.join().unwrap();
    }

    #[test]
    fn a_full_consumer_blocks_a_tls_producer_after_twice_its_capacity() {
        const CAPACITY: usize = 3;
        let pki = pki();
        let server = tls_server(&pki.server);
        let cancel = CancelFlag::default();
        let k = key("tls-backpressure", 0, 0);
        let receiver = server
            .incoming(k.clone(), codec(), CAPACITY, &cancel)
            .unwrap();
        let sender = open_with(&server, &k, &cancel, Some(&pki.producer));
        let (progress, sent) = crossbeam_channel::unbounded();
        let producer = std::thread::spawn(move || {
            for i in 0..40 {
                sender.send(records(batch(i * 3, 3))).unwrap();
                progress.send(i).unwrap();
            }
            sender.send(Event::EndOfPartition).unwrap();
        });
        for _ in 0..2 * CAPACITY + 2 {
            sent.recv_timeout(WAIT)
                .expect("the producer reaches the bound");
        }
        wait_until("the consumer's queue is full", || {
            receiver.len() == CAPACITY
        });
        assert_eq!(
            sent.recv_timeout(Duration::from_millis(300)),
            Err(RecvTimeoutError::Timeout),
            "the producer sent more than 2 * capacity + 2 events to a consumer that reads nothing"
        );
        for i in 0..40 {
            assert_eq!(recv(&receiver), Ok(batch(i * 3, 3)));
        }
        assert_eq!(recv(&receiver), Err("end".into()));
        producer.join().unwrap();
    }

    #[test]
    fn a_read_waiting_for_the_peer_does_not_hold_up_writes() {
        // Both ends of one TLS connection, each with a thread blocked in reads (no timeout)
        // while another thread writes 4 MiB: every byte arrives, in order, on both sides.
        let pki = pki();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server_tls = pki.server.clone();
        let accepting = std::thread::spawn(move || {
            let (tcp, peer) = listener.accept().unwrap();
            data_tls::accept(tcp, peer, &server_tls, || false).expect("handshake")
        });
        let Ok(client) = data_tls::connect(&address, WAIT, &pki.producer) else {
            panic!("the handshake failed");
        };
        let server = accepting.join().unwrap();
        let data =
            |seed: u8| -> Vec<u8> { (0..4u32 << 20).map(|i| (i % 251) as u8 ^ seed).collect() };
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for (conn, seed) in [(client, 1u8), (server, 2u8)] {
            let reading = conn.try_clone().unwrap();
            readers.push(std::thread::spawn(move || {
                let mut got = Vec::new();
                (&reading).read_to_end(&mut got).unwrap();
                got
            }));
            let out = data(seed);
            writers.push(std::thread::spawn(move || {
                (&conn).write_all(&out).unwrap();
                (&conn).flush().unwrap();
                conn.shutdown(Shutdown::Write).unwrap();
            }));
        }
        let got = bounded("both directions", move || {
            for w in writers {
                w.join().unwrap();
            }
            readers
                .into_iter()
                .map(|r| r.join().unwrap())
                .collect::<Vec<_>>()
        });
        // The client reads what the server wrote and the other way round.
        assert!(got[0] == data(2), "the client read other bytes");
        assert!(got[1] == data(1), "the server read other bytes");
    }

    #[test]
    fn reloaded_certificate_files_apply_to_new_data_connections() {
        // The data port's CA bundle gains another CA while a channel is open: the open channel
        // keeps going, and a producer of the other CA, refused before, is accepted after.
        let pki = pki();
        let dir = pki._dir.path();
        std::fs::copy(dir.join("cluster-ca.crt"), dir.join("bundle.crt")).unwrap();
        let server_tls = InternalTls::load_unfollowed(&crate::tls::TlsFiles {
            cert: dir.join("tm-1.crt"),
            key: dir.join("tm-1.key"),
            ca: dir.join("bundle.crt"),
        })
        .unwrap();
        let outsider = leaf_trusting(dir, "other-ca", "outsider", "cluster-ca");
        let server = tls_server(&server_tls);
        let cancel = CancelFlag::default();

        let open_key = key("tls-reload", 0, 0);
        let open_receiver = server
            .incoming(open_key.clone(), codec(), 8, &cancel)
            .unwrap();
        let open_sender = open_with(&server, &open_key, &cancel, Some(&pki.producer));
        open_sender.send(records(batch(0, 2))).unwrap();
        assert_eq!(recv(&open_receiver), Ok(batch(0, 2)));

        let refused = key("tls-reload", 0, 1);
        let _refused_receiver = server
            .incoming(refused.clone(), codec(), 8, &cancel)
            .unwrap();
        let e = send_until_error(&open_with(&server, &refused, &cancel, Some(&outsider)));
        assert!(
            e.to_string().contains("refused this process's certificate"),
            "{e}"
        );

        let bundle = [
            std::fs::read_to_string(dir.join("cluster-ca.crt")).unwrap(),
            std::fs::read_to_string(dir.join("other-ca.crt")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.join("bundle.crt"), bundle).unwrap();
        assert!(server_tls.check_files_now(), "the new bundle is in use");

        let accepted = key("tls-reload", 0, 2);
        let receiver = server
            .incoming(accepted.clone(), codec(), 8, &cancel)
            .unwrap();
        let sender = open_with(&server, &accepted, &cancel, Some(&outsider));
        sender.send(records(batch(5, 1))).unwrap();
        sender.send(Event::EndOfPartition).unwrap();
        assert_eq!(recv(&receiver), Ok(batch(5, 1)));
        assert_eq!(recv(&receiver), Err("end".into()));

        open_sender.send(records(batch(2, 2))).unwrap();
        open_sender.send(Event::EndOfPartition).unwrap();
        assert_eq!(recv(&open_receiver), Ok(batch(2, 2)));
        assert_eq!(recv(&open_receiver), Err("end".into()));
    }

    #[test]
    fn debug_output_shows_paths_not_keys() {
        let pki = pki();
        let shown = format!("{:?}", pki.server);
        let key = std::fs::read_to_string(&pki.server.files().key).unwrap();
        let body = key.lines().nth(1).unwrap();
        assert!(
            !shown.contains(body) && !shown.contains("PRIVATE"),
            "{shown}"
        );
        assert!(shown.contains("tm-1.key"), "{shown}");
    }
}
