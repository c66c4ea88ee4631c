//! Throughput of one channel of `(String, i64)` record batches: over loopback TCP (encoding,
//! socket, decoding, credit) versus an in-process bounded queue (what tasks in one process
//! use). Used by the `fjord-bench-network` binary; not a stable API.

use super::outbound::connect_with;
use super::{BatchCodec, ChannelKey, DataServer, TypedCodec};
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CancelFlag, ChannelSender, Event, channel};
use crate::storage::StorageOptions;
use crate::types::StreamRecord;
use crossbeam_channel::Receiver;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Records received by the consumer.
    pub records: u64,
    /// From the first send to the consumer's end of partition.
    pub elapsed: Duration,
    /// Bytes received by the data port (zero in process).
    pub bytes: u64,
}

impl Throughput {
    /// Records per second.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `records` records in batches of `batch_size` over one loopback TCP channel whose
/// consumer queue holds `capacity` batches, and times it until the consumer saw them all.
///
/// # Errors
/// The data port cannot be bound, or the channel fails.
pub fn loopback(records: u64, batch_size: usize, capacity: usize) -> Result<Throughput> {
    loopback_tls(records, batch_size, capacity, None)
}

/// Like [`loopback`], over mutual TLS with `tls` when given (plain TCP with `None`).
///
/// # Errors
/// The data port cannot be bound, or the channel fails (a refused handshake included).
pub fn loopback_tls(
    records: u64,
    batch_size: usize,
    capacity: usize,
    tls: Option<&crate::tls::InternalTls>,
) -> Result<Throughput> {
    let server = DataServer::bind_tls("127.0.0.1:0", StorageOptions::default(), tls)?;
    let cancel = CancelFlag::default();
    let key = ChannelKey {
        job_id: "bench".into(),
        epoch: 1,
        attempt: 0,
        edge: 0,
        producer: 0,
        consumer: 0,
    };
    let codec = Arc::new(TypedCodec::<(String, i64)>::new());
    let receiver = server.incoming(key.clone(), codec.clone(), capacity, &cancel)?;
    let sender = connect_with(
        &server.local_addr().to_string(),
        key,
        codec,
        &cancel,
        None,
        tls.cloned(),
    )?;
    let mut figure = run(sender, receiver, records, batch_size)?;
    figure.bytes = server.bytes_received();
    Ok(figure)
}

/// Like [`loopback`] through an in-process bounded queue of `capacity` batches, as two tasks
/// of one process use it: the producer encodes each batch of these records (they own
/// strings) and the consumer decodes it.
///
/// # Errors
/// The channel fails (it does not).
pub fn in_process(records: u64, batch_size: usize, capacity: usize) -> Result<Throughput> {
    let codec: Arc<dyn BatchCodec> = Arc::new(TypedCodec::<(String, i64)>::new());
    let (sender, receiver) = channel(capacity, &CancelFlag::default(), Some(codec));
    run(sender, receiver, records, batch_size)
}

/// Like [`in_process`] with the batches passed as objects, as in-process channels did before
/// they encoded records that own heap memory: for comparison.
///
/// # Errors
/// The channel fails (it does not).
pub fn in_process_objects(records: u64, batch_size: usize, capacity: usize) -> Result<Throughput> {
    let (sender, receiver) = channel(capacity, &CancelFlag::default(), None);
    run(sender, receiver, records, batch_size)
}

fn run(
    sender: ChannelSender,
    receiver: Receiver<Event>,
    records: u64,
    batch_size: usize,
) -> Result<Throughput> {
    let batch_size = batch_size.max(1);
    let keys: Vec<String> = (0..1_000).map(|i| format!("key-{i:05}")).collect();
    let start = Instant::now();
    let producer = std::thread::spawn(move || -> Result<()> {
        let mut sent = 0u64;
        while sent < records {
            let n = (records - sent).min(batch_size as u64);
            let batch: Vec<StreamRecord<(String, i64)>> = (sent..sent + n)
                .map(|i| StreamRecord::new((keys[i as usize % keys.len()].clone(), i as i64)))
                .collect();
            sender.send(Event::Records(Box::new(batch)))?;
            sent += n;
        }
        sender.send(Event::EndOfPartition)
    });
    let mut received = 0u64;
    loop {
        match receiver.recv_timeout(Duration::from_secs(60)) {
            Ok(event @ (Event::Records(_) | Event::Encoded(_))) => {
                let batch = event
                    .into_batch()?
                    .downcast::<Vec<StreamRecord<(String, i64)>>>()
                    .map_err(|_| FjordError::Internal("benchmark batch of another type".into()))?;
                received += batch.len() as u64;
                black_box(
                    batch
                        .iter()
                        .map(|r| r.value.0.len() as i64 + r.value.1)
                        .sum::<i64>(),
                );
            }
            Ok(Event::EndOfPartition) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(FjordError::Internal(format!(
                    "benchmark consumer stopped after {received} records: {e}"
                )));
            }
        }
    }
    let elapsed = start.elapsed();
    producer
        .join()
        .map_err(|_| FjordError::Internal("benchmark producer panicked".into()))??;
    Ok(Throughput {
        records: received,
        elapsed,
        bytes: 0,
    })
}
