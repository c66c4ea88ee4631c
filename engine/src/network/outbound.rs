//! One connection on the producer's side: a [`ChannelSender`] whose events a sender thread
//! encodes and writes to the consumer's data port, as credit allows.
//!
//! Two threads serve a connection. The sender thread connects (retrying while the consumer's
//! TaskManager is not up), performs the handshake, then takes events from the hand-off queue,
//! waits for credit, encodes and writes them, flushing whenever the hand-off queue is empty.
//! The credit thread reads the server's frames: credits, and the reason when the server
//! closes. When the sender thread stops it drops the hand-off queue, so the producer's next
//! `send` fails: with [`FjordError::Network`] naming the channel when the connection was
//! refused or lost, with [`FjordError::Cancelled`] when the job or the consumer was cancelled.

use super::codec::BatchCodec;
use super::inbound::reason;
use super::key::ChannelKey;
use super::protocol::{self, CloseWire, Fill, FrameReader, decode_encoded, kind};
use super::tls::{ConnectError, Connection};
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CANCEL_POLL, CancelFlag, ChannelSender, Event};
use crate::exchange::io_metrics::TaskIo;
use crate::tls::InternalTls;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::io::{BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Events the producer can hand to the sender thread before `send` blocks (the thread holds
/// one more while it waits for credit).
const HANDOFF: usize = 1;
/// The socket's write buffer: frames are batched until the hand-off queue is empty.
const WRITE_BUFFER: usize = 64 * 1024;
/// One connection attempt's limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Producer side: a sender whose events travel to the [`super::DataServer`] at `address` for
/// channel `key`, at most `capacity` events unacknowledged (the server's grant).
///
/// Returns at once; a thread connects (retrying for up to 30 s while the consumer's data port
/// is not up), encodes and writes. `send` blocks while the consumer is `2 * capacity + 2`
/// events behind. Dropping every clone of the sender without `EndOfPartition` closes the
/// connection after the events sent so far, so the consumer sees them and then a disconnect;
/// after `EndOfPartition` the connection is flushed and closed cleanly. Setting `cancel` ends
/// the threads within about [`CANCEL_POLL`].
///
/// # Errors
/// `address` is not `host:port`, or the sender thread cannot be started. Failures to connect
/// or refusals surface later, from `send`, as [`FjordError::Network`] naming the channel.
#[cfg(test)]
pub(crate) fn connect(
    address: &str,
    key: ChannelKey,
    codec: Arc<dyn BatchCodec>,
    capacity: usize,
    cancel: &CancelFlag,
) -> Result<ChannelSender> {
    connect_counted(address, key, codec, capacity, cancel, None)
}

/// [`connect`], adding the bytes of every frame sent to the producing task's `io`.
pub(crate) fn connect_counted(
    address: &str,
    key: ChannelKey,
    codec: Arc<dyn BatchCodec>,
    capacity: usize,
    cancel: &CancelFlag,
    io: Option<TaskIo>,
) -> Result<ChannelSender> {
    let _ = capacity; // The consumer's grant, not the producer, bounds what is in flight.
    connect_with(address, key, codec, cancel, io, super::tls::process_tls())
}

/// [`connect_counted`] over mutual TLS with `tls` (`None`: plain TCP), whatever the
/// process-wide setting.
pub(crate) fn connect_with(
    address: &str,
    key: ChannelKey,
    codec: Arc<dyn BatchCodec>,
    cancel: &CancelFlag,
    io: Option<TaskIo>,
    tls: Option<InternalTls>,
) -> Result<ChannelSender> {
    let has_port = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(FjordError::Network(format!(
            "channel {key}: data address '{address}' is not host:port"
        )));
    }
    let (handoff, events) = crossbeam_channel::bounded(HANDOFF);
    let failure = Arc::new(OnceLock::new());
    let link = Outbound {
        address: address.to_string(),
        key,
        codec: codec.clone(),
        cancel: cancel.clone(),
        failure: failure.clone(),
        events,
        io,
        tls,
    };
    std::thread::Builder::new()
        .name(format!(
            "fjord-data-out-{}-{}-{}",
            link.key.edge, link.key.producer, link.key.consumer
        ))
        .spawn(move || link.run())
        .map_err(|e| FjordError::io("starting a network channel's sender thread", e))?;
    Ok(ChannelSender::from_parts(handoff, cancel, failure, codec))
}

struct Outbound {
    address: String,
    key: ChannelKey,
    codec: Arc<dyn BatchCodec>,
    cancel: CancelFlag,
    /// Why the channel failed, for the producer's `send`.
    failure: Arc<OnceLock<String>>,
    /// The hand-off queue from the producer.
    events: Receiver<Event>,
    /// The producing task's metrics (bytes out), when known.
    io: Option<TaskIo>,
    /// Mutual TLS to the consumer's data port, when the cluster uses it.
    tls: Option<InternalTls>,
}

/// What the credit thread shares with the sender thread.
#[derive(Default)]
struct Credit {
    available: AtomicU64,
    /// Set by the sender thread when it stops early: the credit thread ends too.
    stop: AtomicBool,
    /// Set when the server closed the connection because of a cancellation.
    peer_cancelled: AtomicBool,
}

impl Outbound {
    fn run(self) {
        match self.transfer() {
            Ok(()) => {}
            // A write interrupted by cancellation reports a lost connection: still a cancellation.
            Err(e) if e.is_cancellation() || self.cancel.is_cancelled() => {
                tracing::debug!(channel = %self.key, "network channel cancelled");
            }
            Err(e) => {
                let message = reason(&e);
                tracing::warn!(channel = %self.key, address = %self.address, error = %message, "network channel failed");
                // The first failure is the one reported; a later one is a consequence.
                let _ = self.failure.set(message);
            }
        }
        // Dropping `self.events` now: the producer's next `send` reports the failure.
    }

    fn transfer(&self) -> Result<()> {
        let stream = self.connect()?;
        let io = |e| FjordError::io(format!("setting up channel {}", self.key), e);
        stream.set_nodelay(true).map_err(io)?;
        stream.set_read_timeout(Some(CANCEL_POLL)).map_err(io)?;
        stream.set_write_timeout(Some(CANCEL_POLL)).map_err(io)?;
        let peer = stream.peer_addr().map_err(io)?;
        let mut out = Vec::new();
        protocol::hello(&mut out, &self.key)?;
        (&stream)
            .write_all(&out)
            .and_then(|()| (&stream).flush())
            .map_err(|e| self.lost(peer, &format!("sending the handshake failed: {e}")))?;
        super::count_sent(out.len());
        let mut reader = FrameReader::new();
        let initial = self.accepted(&stream, peer, &mut reader)?;

        let credit = Arc::new(Credit::default());
        credit.available.store(initial, Ordering::SeqCst);
        let (wake, woken) = crossbeam_channel::bounded(1);
        let credit_reader = {
            let stream = stream
                .try_clone()
                .map_err(|e| FjordError::io("cloning a data connection", e))?;
            let credit = credit.clone();
            let cancel = self.cancel.clone();
            let failure = self.failure.clone();
            let key = self.key.clone();
            std::thread::Builder::new()
                .name(format!(
                    "fjord-data-credit-{}-{}-{}",
                    key.edge, key.producer, key.consumer
                ))
                .spawn(move || read_credit(stream, reader, &credit, &wake, &cancel, &failure, &key))
                .map_err(|e| FjordError::io("starting a network channel's credit thread", e))?
        };
        let patient = Patient {
            stream,
            cancel: self.cancel.clone(),
        };
        let result = self.send_events(
            BufWriter::with_capacity(WRITE_BUFFER, patient),
            peer,
            &credit,
            &woken,
        );
        if result.is_err() {
            credit.stop.store(true, Ordering::SeqCst);
            // The credit thread ends within a poll; it may have read why the server closed.
            // What it read is in `failure`/`peer_cancelled`; a panic of it was
            // reported by the panic hook, and the transfer failed already.
            let _ = credit_reader.join();
            if credit.peer_cancelled.load(Ordering::SeqCst) {
                return Err(FjordError::Cancelled);
            }
        }
        // On success the credit thread reads until the server closes its side, so nothing it
        // sent is left unread (which would reset the connection before our last frames).
        result
    }

    /// Connects, retrying until [`super::CONNECT_TIMEOUT`] while the port refuses or the name
    /// does not resolve yet.
    fn connect(&self) -> Result<Connection> {
        let deadline = Instant::now() + super::CONNECT_TIMEOUT;
        let mut backoff = Duration::from_millis(20);
        loop {
            let attempt = self
                .address
                .to_socket_addrs()
                .map_err(|e| ConnectError::Retry(e.to_string()))
                .and_then(|addrs| {
                    let mut last = format!("'{}' resolves to no address", self.address);
                    for addr in addrs {
                        let connected = match &self.tls {
                            None => TcpStream::connect_timeout(&addr, ATTEMPT_TIMEOUT)
                                .map(Connection::Plain)
                                .map_err(|e| ConnectError::Retry(format!("{addr}: {e}"))),
                            Some(tls) => super::tls::connect(&addr, ATTEMPT_TIMEOUT, tls),
                        };
                        match connected {
                            Ok(s) => return Ok(s),
                            Err(ConnectError::Retry(e)) => last = e,
                            Err(refused @ ConnectError::Refused(_)) => return Err(refused),
                        }
                    }
                    Err(ConnectError::Retry(last))
                });
            let last = match attempt {
                Ok(stream) => return Ok(stream),
                Err(ConnectError::Retry(e)) => e,
                Err(ConnectError::Refused(e)) => {
                    return Err(FjordError::Network(format!(
                        "channel {}: the consumer's data port {} refused the connection: {e}",
                        self.key, self.address
                    )));
                }
            };
            if Instant::now() + backoff >= deadline {
                return Err(FjordError::Network(format!(
                    "cannot connect to the consumer's data port {} for channel {} within {} s: {last}; check that the consuming TaskManager runs and its data port is reachable",
                    self.address,
                    self.key,
                    super::CONNECT_TIMEOUT.as_secs()
                )));
            }
            self.pause(backoff)?;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Sleeps, looking at the cancel flag every [`CANCEL_POLL`].
    fn pause(&self, duration: Duration) -> Result<()> {
        let until = Instant::now() + duration;
        loop {
            self.check_cancel()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(CANCEL_POLL));
        }
    }

    fn check_cancel(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(FjordError::Cancelled);
        }
        Ok(())
    }

    /// Waits for the server's answer to the handshake: the initial credit.
    fn accepted(
        &self,
        stream: &Connection,
        peer: SocketAddr,
        reader: &mut FrameReader,
    ) -> Result<u64> {
        let deadline = Instant::now() + super::REGISTRATION_TIMEOUT + super::HANDSHAKE_TIMEOUT;
        let what = format!("{peer} to accept channel {}", self.key);
        let frame = reader
            .wait(
                &mut &*stream,
                deadline,
                &what,
                || self.check_cancel(),
                |_| {},
            )
            .map_err(|e| match e {
                FjordError::Cancelled => e,
                e => self.lost(peer, &reason(&e)),
            })?;
        let Some((k, range)) = frame else {
            return Err(self.lost(
                peer,
                "the server closed the connection during the handshake",
            ));
        };
        let payload = reader.payload(range);
        match k {
            kind::ACCEPT => Ok(u64::from(u32::from_be_bytes(protocol::fixed(
                payload, "accept",
            )?))),
            kind::REFUSE => Err(FjordError::Network(format!(
                "{peer} refused channel {}: {}",
                self.key,
                String::from_utf8_lossy(payload)
            ))),
            other => Err(self.lost(
                peer,
                &format!("unexpected frame kind {other} in the handshake"),
            )),
        }
    }

    fn lost(&self, peer: SocketAddr, what: &str) -> FjordError {
        FjordError::Network(format!(
            "connection to {peer} for channel {} lost: {what}",
            self.key
        ))
    }

    /// Writes events as credit allows until end of partition, or until the producer drops its
    /// sender (then the connection is closed after the events sent so far).
    fn send_events(
        &self,
        mut writer: BufWriter<Patient>,
        peer: SocketAddr,
        credit: &Credit,
        woken: &Receiver<()>,
    ) -> Result<()> {
        let mut frame = Vec::new();
        let write_error = |e: std::io::Error| self.lost(peer, &format!("writing failed: {e}"));
        loop {
            let event = match self.events.recv_timeout(CANCEL_POLL) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    self.check_cancel().inspect_err(|_| abort(&writer))?;
                    if let Err(TryRecvError::Disconnected) = woken.try_recv() {
                        return Err(self.lost(peer, "the server closed the connection"));
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // The producer went away without end of partition: deliver what was
                    // sent, then close, so the consumer sees a disconnect.
                    writer.flush().map_err(write_error)?;
                    let _ = writer.get_ref().stream.shutdown(Shutdown::Write);
                    return Ok(());
                }
            };
            while credit.available.load(Ordering::SeqCst) == 0 {
                writer.flush().map_err(write_error)?;
                match woken.recv_timeout(CANCEL_POLL) {
                    Ok(()) => {}
                    Err(RecvTimeoutError::Timeout) => {
                        self.check_cancel().inspect_err(|_| abort(&writer))?;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(self.lost(peer, "the server closed the connection"));
                    }
                }
            }
            credit.available.fetch_sub(1, Ordering::SeqCst);
            frame.clear();
            let end = protocol::encode_event(&event, &*self.codec, &mut frame)?;
            drop(event);
            writer.write_all(&frame).map_err(write_error)?;
            super::count_sent(frame.len());
            if let Some(io) = &self.io {
                io.add_bytes_out(frame.len() as u64);
            }
            if end {
                writer.flush().map_err(write_error)?;
                let _ = writer.get_ref().stream.shutdown(Shutdown::Write);
                return Ok(());
            }
            if self.events.is_empty() {
                writer.flush().map_err(write_error)?;
            }
        }
    }
}

/// Closes the connection at once (cancellation): the consumer sees a disconnect.
fn abort(writer: &BufWriter<Patient>) {
    let _ = writer.get_ref().stream.shutdown(Shutdown::Both);
}

/// A connection whose writes wait as long as the consumer needs to make room, but give up
/// when the job is cancelled: the socket's write timeout ([`CANCEL_POLL`]) makes a blocked
/// write return to look at the flag; retrying inside `write` and `flush` keeps partial writes
/// exact (a TLS connection's `flush` sends records a timed-out write left behind).
struct Patient {
    stream: Connection,
    cancel: CancelFlag,
}

impl Patient {
    fn patiently<T>(
        &mut self,
        mut op: impl FnMut(&mut Connection) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        loop {
            match op(&mut self.stream) {
                Err(e) if protocol::is_timeout(&e) => {
                    if self.cancel.is_cancelled() {
                        return Err(std::io::Error::other("cancelled while writing"));
                    }
                }
                result => return result,
            }
        }
    }
}

impl Write for Patient {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.patiently(|s| s.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.patiently(|s| s.flush())
    }
}

/// The credit thread: reads the server's frames until it closes, the sender thread stops
/// early, or the job is cancelled. Ending drops `wake`, which tells the sender thread.
fn read_credit(
    mut stream: Connection,
    mut reader: FrameReader,
    credit: &Credit,
    wake: &Sender<()>,
    cancel: &CancelFlag,
    failure: &OnceLock<String>,
    key: &ChannelKey,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "the consumer".to_string(), |a| a.to_string());
    loop {
        loop {
            let frame = match reader.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    let _ = failure.set(format!("channel {key} to {peer}: {}", reason(&e)));
                    return;
                }
            };
            let payload = reader.payload(frame.1);
            match frame.0 {
                kind::CREDIT => {
                    let Ok(granted) = protocol::fixed::<4>(payload, "credit") else {
                        let _ = failure.set(format!("channel {key}: malformed credit from {peer}"));
                        return;
                    };
                    credit
                        .available
                        .fetch_add(u64::from(u32::from_be_bytes(granted)), Ordering::SeqCst);
                    // A full channel already holds a wake-up; a gone one, a finished writer.
                    let _ = wake.try_send(());
                }
                kind::CLOSE => {
                    match decode_encoded::<CloseWire>(payload, "close") {
                        Ok(close) if close.cancelled => {
                            credit.peer_cancelled.store(true, Ordering::SeqCst);
                        }
                        Ok(close) => {
                            let _ = failure
                                .set(format!("{peer} closed the connection: {}", close.reason));
                        }
                        Err(e) => {
                            let _ = failure.set(format!("channel {key}: {}", reason(&e)));
                        }
                    }
                    return;
                }
                other => {
                    let _ = failure.set(format!(
                        "channel {key}: unexpected frame kind {other} from {peer}"
                    ));
                    return;
                }
            }
        }
        match reader.fill(&mut stream) {
            Ok(Fill::Bytes(_)) => {}
            Ok(Fill::Timeout) => {
                if cancel.is_cancelled() || credit.stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            Ok(Fill::Eof) | Err(_) => return,
        }
    }
}
