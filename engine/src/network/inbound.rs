//! One connection on the consumer's side: reads the handshake, waits for the consumer's
//! registration, then turns frames into events on the consumer's queue and grants credit for
//! each event the queue accepted.

use super::key::ChannelKey;
use super::protocol::{
    self, CloseWire, Fill, FrameReader, PreambleCheck, VERSION, decode_encoded, decode_event, kind,
};
use super::registry::{Claim, Registration};
use super::server::Shared;
use super::tls::Connection;
use crate::error::{FjordError, Result};
use crate::exchange::channel::{CANCEL_POLL, Event};
use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, TrySendError};
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a connection that told its producer why it closes keeps reading, so the producer
/// can read the reason before the connection resets.
const LINGER: Duration = Duration::from_secs(2);

/// Serves one accepted connection until it ends; errors are logged.
pub(crate) fn serve(stream: Connection, peer: SocketAddr, shared: Arc<Shared>) {
    let mut connection = Inbound {
        stream,
        peer,
        shared,
        reader: FrameReader::with_preamble(),
        out: Vec::new(),
        linger: false,
    };
    let result = connection.run();
    if connection.linger {
        connection.linger();
    }
    match result {
        Ok(()) => {}
        Err(e) if e.is_cancellation() => tracing::debug!(%peer, "data connection cancelled"),
        Err(e) => tracing::info!(%peer, error = %e, "data connection ended"),
    }
}

struct Inbound {
    stream: Connection,
    peer: SocketAddr,
    shared: Arc<Shared>,
    reader: FrameReader,
    /// Frames to write, reused.
    out: Vec<u8>,
    /// True once the producer was told why the connection closes.
    linger: bool,
}

impl Inbound {
    fn run(&mut self) -> Result<()> {
        let io = |e| FjordError::io("setting up a data connection", e);
        self.stream.set_nodelay(true).map_err(io)?;
        self.stream
            .set_read_timeout(Some(CANCEL_POLL))
            .map_err(io)?;
        // Only credits and short control frames go this way; a producer that does not read
        // them for this long is hung, and the connection ends.
        self.stream
            .set_write_timeout(Some(super::HANDSHAKE_TIMEOUT))
            .map_err(io)?;
        let Some(key) = self.handshake()? else {
            return Ok(());
        };
        let claim = self.shared.registry.lock().claim(&key);
        let registration = match claim.and_then(|c| self.registration(&key, c)) {
            Ok(r) => r,
            Err(e) => {
                self.refuse(&e);
                return Err(e);
            }
        };
        // A registered channel's producer: its record frames may be large.
        self.reader.accept_large_frames();
        let fenced = registration.fenced.clone();
        let result = self.serve_channel(&key, registration);
        self.shared.registry.lock().finished(&key, &fenced);
        result
    }

    /// Reads the preamble and the hello: the channel's key, or `None` when the peer closed.
    fn handshake(&mut self) -> Result<Option<ChannelKey>> {
        let deadline = Instant::now() + super::HANDSHAKE_TIMEOUT;
        let shared = &self.shared;
        let received = |n: usize| {
            shared.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
        };
        let Some(preamble) = self.reader.wait_preamble(
            &mut self.stream,
            deadline,
            || shared.check_shutdown(),
            received,
        )?
        else {
            return Ok(None);
        };
        match protocol::check_preamble(&preamble) {
            PreambleCheck::Fjord => {}
            PreambleCheck::NotFjord => {
                return Err(FjordError::Network(format!(
                    "{} is not a Fjord producer (it did not start with the data protocol's magic bytes); closing",
                    self.peer
                )));
            }
            PreambleCheck::OtherVersion(version) => {
                let e = FjordError::Network(format!(
                    "producer {} speaks data protocol version {version}, this TaskManager version {VERSION}; run the same Fjord version on all TaskManagers",
                    self.peer
                ));
                self.refuse(&e);
                return Err(e);
            }
        }
        let Some((k, range)) = self.reader.wait(
            &mut self.stream,
            deadline,
            "the producer's hello",
            || shared.check_shutdown(),
            received,
        )?
        else {
            return Ok(None);
        };
        if k != kind::HELLO {
            return Err(FjordError::Network(format!(
                "producer {} sent frame kind {k} instead of its hello",
                self.peer
            )));
        }
        decode_encoded(self.reader.payload(range), "hello").map(Some)
    }

    /// The consumer's registration, waiting for it when the producer came first.
    fn registration(&mut self, key: &ChannelKey, claim: Claim) -> Result<Registration> {
        let (waiting, ticket) = match claim {
            Claim::Ready(r) => return Ok(r),
            Claim::Wait(rx, ticket) => (rx, ticket),
        };
        tracing::debug!(channel = %key, peer = %self.peer, "producer connected before its consumer registered; holding the connection");
        let deadline = Instant::now() + self.shared.registration_timeout;
        loop {
            match waiting.recv_timeout(CANCEL_POLL) {
                Ok(r) => return Ok(r),
                Err(RecvTimeoutError::Disconnected) => {
                    self.shared.check_shutdown()?;
                    self.shared.registry.lock().check_fence(key)?;
                    return Err(FjordError::Network(format!(
                        "channel {key} was dropped while its producer waited for the consumer"
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.shared.check_shutdown()?;
                    if Instant::now() >= deadline {
                        return self.give_up(key, &waiting, ticket);
                    }
                }
            }
        }
    }

    fn give_up(
        &self,
        key: &ChannelKey,
        waiting: &Receiver<Registration>,
        ticket: u64,
    ) -> Result<Registration> {
        self.shared.registry.lock().give_up(key, ticket);
        // The consumer may have registered just before the slot was removed.
        if let Ok(r) = waiting.try_recv() {
            return Ok(r);
        }
        Err(FjordError::Network(format!(
            "no consumer registered channel {key} at {} within {} s; the consuming subtask is not deployed on this TaskManager (check where the JobManager placed it)",
            self.stream
                .local_addr()
                .map_or_else(|_| "this data port".into(), |a| a.to_string()),
            self.shared.registration_timeout.as_secs_f32()
        )))
    }

    /// Moves events from the socket to the consumer's queue until end of partition.
    fn serve_channel(&mut self, key: &ChannelKey, registration: Registration) -> Result<()> {
        let capacity = u32::try_from(registration.capacity).unwrap_or(u32::MAX);
        self.out.clear();
        protocol::frame_bytes(&mut self.out, kind::ACCEPT, &capacity.to_be_bytes());
        self.write_out()?;
        let mut pending = 0u32;
        loop {
            while let Some((k, range)) = self.reader.next()? {
                let decoded = decode_event(
                    k,
                    self.reader.payload(range),
                    &registration.codec,
                    &self.shared.storage,
                );
                let event = match decoded {
                    Ok(Some(event)) => event,
                    Ok(None) => {
                        return Err(self.close(
                            false,
                            format!("channel {key}: unexpected frame kind {k} from the producer"),
                        ));
                    }
                    Err(e) => {
                        return Err(self.close(
                            false,
                            format!("the consumer's TaskManager cannot decode channel {key}: {e}"),
                        ));
                    }
                };
                let end = matches!(event, Event::EndOfPartition);
                self.deliver(key, &registration, event, &mut pending)?;
                if end {
                    // Dropping the queue's sender: the consumer sees the end, then a disconnect.
                    return Ok(());
                }
                if pending as usize * 2 >= registration.capacity {
                    self.grant(&mut pending)?;
                }
            }
            // Credit owed below half the capacity waits for more events: whatever is not owed
            // is with the producer or on its way here (and owed once it arrives), so nothing
            // stalls, and granting in halves saves a write and a wake-up per event.
            match self.reader.fill(&mut self.stream)? {
                Fill::Bytes(n) => {
                    self.shared
                        .bytes_received
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if let Some(io) = &registration.io {
                        io.add_bytes_in(n as u64);
                    }
                }
                Fill::Timeout => self.check_stop(key, &registration)?,
                Fill::Eof => {
                    // The producer failed: its consumer sees a disconnect without end of
                    // partition, as with a local channel.
                    return Err(FjordError::Network(format!(
                        "the producer of channel {key} at {} closed the connection before the end of its partition",
                        self.peer
                    )));
                }
            }
        }
    }

    /// Puts an event on the consumer's queue, waiting while it is full (after granting the
    /// credit owed, so the producer is not starved meanwhile).
    fn deliver(
        &mut self,
        key: &ChannelKey,
        registration: &Registration,
        event: Event,
        pending: &mut u32,
    ) -> Result<()> {
        let mut event = match registration.queue.try_send(event) {
            Ok(()) => {
                *pending += 1;
                return Ok(());
            }
            Err(TrySendError::Full(event)) => event,
            Err(TrySendError::Disconnected(_)) => return Err(self.consumer_gone(key)),
        };
        if *pending > 0 {
            self.grant(pending)?;
        }
        loop {
            match registration.queue.send_timeout(event, CANCEL_POLL) {
                Ok(()) => {
                    *pending += 1;
                    return Ok(());
                }
                Err(SendTimeoutError::Timeout(e)) => {
                    self.check_stop(key, registration)?;
                    event = e;
                }
                Err(SendTimeoutError::Disconnected(_)) => return Err(self.consumer_gone(key)),
            }
        }
    }

    fn consumer_gone(&mut self, key: &ChannelKey) -> FjordError {
        self.close(
            true,
            format!("the consumer of channel {key} stopped reading (it finished or failed)"),
        )
    }

    /// Ends the connection when the server shuts down, the generation was fenced or the
    /// consumer was cancelled, telling the producer why.
    fn check_stop(&mut self, key: &ChannelKey, registration: &Registration) -> Result<()> {
        if let Err(e) = self.shared.check_shutdown() {
            return Err(self.close(false, format!("channel {key}: {}", reason(&e))));
        }
        if registration.fenced.load(Ordering::Relaxed) {
            let why = match self.shared.registry.lock().check_fence(key) {
                Err(e) => reason(&e),
                Ok(()) => format!("channel {key} was fenced"),
            };
            return Err(self.close(false, why));
        }
        if registration.cancel.is_cancelled() {
            return Err(self.close(true, format!("the consumer of channel {key} was cancelled")));
        }
        Ok(())
    }

    fn grant(&mut self, pending: &mut u32) -> Result<()> {
        self.out.clear();
        protocol::frame_bytes(&mut self.out, kind::CREDIT, &pending.to_be_bytes());
        *pending = 0;
        self.write_out()
    }

    fn write_out(&mut self) -> Result<()> {
        self.stream
            .write_all(&self.out)
            .and_then(|()| self.stream.flush())
            .map_err(|e| FjordError::io(format!("writing to producer {}", self.peer), e))
    }

    /// Tells the producer why the connection ends (best effort); returns the error for this
    /// side: [`FjordError::Cancelled`] when `cancelled`.
    fn close(&mut self, cancelled: bool, reason: String) -> FjordError {
        self.out.clear();
        let wire = CloseWire {
            cancelled,
            reason: reason.clone(),
        };
        if protocol::frame_encoded(&mut self.out, kind::CLOSE, &wire).is_ok()
            && self.write_out().is_ok()
        {
            self.linger = true;
        }
        if cancelled {
            FjordError::Cancelled
        } else {
            FjordError::Network(reason)
        }
    }

    /// Refuses the handshake with the error's message (best effort).
    fn refuse(&mut self, error: &FjordError) {
        self.out.clear();
        protocol::frame_bytes(&mut self.out, kind::REFUSE, reason(error).as_bytes());
        if self.write_out().is_ok() {
            self.linger = true;
        }
    }

    /// After a refusal or close: stops writing and reads (discarding) until the producer
    /// closes or [`LINGER`] passes, so the reason is not lost in a connection reset.
    fn linger(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER;
        let mut sink = [0u8; 8192];
        while Instant::now() < deadline {
            match std::io::Read::read(&mut self.stream, &mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if protocol::is_timeout(&e) => {}
                Err(_) => return,
            }
        }
    }
}

/// The message of an error without the variant's prefix.
pub(crate) fn reason(error: &FjordError) -> String {
    match error {
        FjordError::Network(m) => m.clone(),
        other => other.to_string(),
    }
}
