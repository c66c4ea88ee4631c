//! Mutual TLS for data connections, with rustls driven directly on the connection's socket,
//! and [`Connection`], the plain or TLS socket that `inbound` and `outbound` read and write.
//!
//! - Producer side ([`connect`]): connect to the consumer's data port and complete the TLS
//!   handshake (this process's certificate; the server's chain must end at the cluster's CA)
//!   before the protocol code sees the connection. A handshake that fails is a refused
//!   connection, not worth another attempt; one that times out is a failed attempt like a
//!   refused port.
//! - Consumer side ([`accept`]): the data port's connection thread runs the handshake first;
//!   a connection whose client certificate does not chain to the CA is refused before any byte
//!   reaches the protocol code, and logged with the peer's address.
//!
//! Both ends take the current [`InternalTls`] configurations for every handshake, so
//! certificate files reloaded by [`crate::tls::reload`] apply to new connections.
//!
//! ## One session, two threads
//!
//! The protocol code reads and writes one connection from two threads (the producer's sender
//! thread writes frames while its credit thread reads credits), and waits in blocking reads
//! and writes with timeouts. A [`TlsStream`] therefore keeps the socket shared and the rustls
//! session apart from it:
//!
//! - the session is behind a lock held only while encrypting or decrypting, never during
//!   socket I/O, so a read waiting for the peer never holds up a write;
//! - writes hold the *outgoing* lock from before they take encrypted records out of the
//!   session until those records are on the socket, so records leave in the order the session
//!   made them (a reply the reading side must send, such as an alert, goes the same way);
//! - reads hold the *incoming* lock (the ciphertext read from the socket but not yet given to
//!   the session), read the socket without the session's lock and decrypt what they read.
//!
//! Timeouts keep their meaning: a read or write that times out returns the socket's timeout
//! error with nothing lost, so the callers' polling loops work as on plain TCP. A write whose
//! plaintext was taken but whose records did not all reach the socket in time returns its
//! count; the rest leaves before anything else, with the next write or `flush` (which reports
//! the timeout if it is still blocked).
//!
//! A peer that closes the TCP connection without `close_notify` reads as the end of the
//! stream, as on plain TCP. That cannot hide a truncation: the frame protocol ends a channel
//! with its own `END_OF_PARTITION` frame, and an end before it is a failure on both sides.
//!
//! The process-wide setting ([`set_process_tls`]) is what a TaskManager configures once at
//! start; [`super::DataServer::bind`] and the producers of its tasks follow it.

use super::protocol::is_timeout;
use crate::exchange::channel::CANCEL_POLL;
use crate::tls::InternalTls;
use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

static PROCESS_TLS: RwLock<Option<InternalTls>> = RwLock::new(None);

/// Plaintext taken into the session per write: a few TLS records, so one write's records
/// reach the socket before the next write encrypts more.
const WRITE_CHUNK: usize = 64 * 1024;
/// Ciphertext read from the socket at once.
const READ_BUFFER: usize = 64 * 1024;
/// How long sending `close_notify` may wait for room in the socket.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a refused connection is drained after the alert, so the peer reads the alert
/// instead of a connection reset.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Makes this process's data connections (its data port and the channels its tasks open) use
/// mutual TLS with `tls`, or plain TCP with `None` (the default). Set it before binding the
/// data port; connections made earlier keep what they had.
pub fn set_process_tls(tls: Option<InternalTls>) {
    *PROCESS_TLS.write().unwrap_or_else(|e| e.into_inner()) = tls;
}

/// The process-wide setting of [`set_process_tls`].
pub(crate) fn process_tls() -> Option<InternalTls> {
    PROCESS_TLS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// One data connection: plain TCP, or a TLS session on TCP. Reading and writing through
/// shared references lets two threads use one connection (see the module documentation).
pub(crate) enum Connection {
    /// Plain TCP.
    Plain(TcpStream),
    /// Mutual TLS, the handshake completed.
    Tls(TlsStream),
}

impl Connection {
    fn socket(&self) -> &TcpStream {
        match self {
            Connection::Plain(s) => s,
            Connection::Tls(t) => &t.shared.socket,
        }
    }

    /// As [`TcpStream::set_nodelay`].
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.socket().set_nodelay(nodelay)
    }

    /// As [`TcpStream::set_read_timeout`]; a TLS read that times out returns the same error.
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(timeout)
    }

    /// As [`TcpStream::set_write_timeout`]; see the module documentation for TLS writes.
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.socket().set_write_timeout(timeout)
    }

    /// As [`TcpStream::peer_addr`].
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.socket().peer_addr()
    }

    /// As [`TcpStream::local_addr`].
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket().local_addr()
    }

    /// Another handle to the same connection (for a second thread); a TLS connection's
    /// handles share one session.
    pub(crate) fn try_clone(&self) -> io::Result<Connection> {
        Ok(match self {
            Connection::Plain(s) => Connection::Plain(s.try_clone()?),
            Connection::Tls(t) => Connection::Tls(t.clone()),
        })
    }

    /// As [`TcpStream::shutdown`]. Over TLS, shutting down writing first sends `close_notify`
    /// after everything written so far (waiting up to 2 s for room); shutting down both
    /// directions is an abort and sends nothing more.
    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Connection::Plain(s) => s.shutdown(how),
            Connection::Tls(t) => t.shutdown(how),
        }
    }
}

impl Read for &Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(s) => (&*s).read(buf),
            Connection::Tls(t) => t.read_plaintext(buf),
        }
    }
}

impl Write for &Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(s) => (&*s).write(buf),
            Connection::Tls(t) => t.write_plaintext(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(s) => (&*s).flush(),
            Connection::Tls(t) => t.flush_records(),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

/// A TLS session on a TCP socket whose handles ([`Clone`]) may read and write from different
/// threads (see the module documentation).
#[derive(Clone)]
pub(crate) struct TlsStream {
    shared: Arc<TlsShared>,
}

struct TlsShared {
    socket: TcpStream,
    /// Held only while encrypting or decrypting; taken after `incoming` or `outgoing`.
    session: Mutex<rustls::Connection>,
    incoming: Mutex<Incoming>,
    outgoing: Mutex<Outgoing>,
}

/// Ciphertext read from the socket and not yet given to the session.
struct Incoming {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The socket reached its end.
    eof: bool,
    /// The session failed: every later read reports it.
    failed: Option<(io::ErrorKind, String)>,
}

/// Records taken out of the session and not yet written to the socket.
struct Outgoing {
    pending: Vec<u8>,
    sent: usize,
}

impl Outgoing {
    /// Takes every record the session has to send.
    fn pull(&mut self, session: &mut rustls::Connection) -> io::Result<()> {
        while session.wants_write() {
            session.write_tls(&mut self.pending)?;
        }
        Ok(())
    }

    /// Writes the pending records; a timeout leaves the rest pending.
    fn send(&mut self, socket: &TcpStream) -> io::Result<()> {
        let mut socket = socket;
        while self.sent < self.pending.len() {
            let n = socket.write(&self.pending[self.sent..])?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Ok(())
    }
}

impl TlsStream {
    fn new(socket: TcpStream, mut session: rustls::Connection) -> TlsStream {
        // Writes take at most `WRITE_CHUNK` and empty the session each time: no limit needed.
        session.set_buffer_limit(None);
        TlsStream {
            shared: Arc::new(TlsShared {
                socket,
                session: Mutex::new(session),
                incoming: Mutex::new(Incoming {
                    buf: vec![0; READ_BUFFER],
                    start: 0,
                    end: 0,
                    eof: false,
                    failed: None,
                }),
                outgoing: Mutex::new(Outgoing {
                    pending: Vec::new(),
                    sent: 0,
                }),
            }),
        }
    }

    /// Reads plaintext: what the session holds, else what the ciphertext read earlier
    /// decrypts to, else (blocking, with the socket's read timeout) more from the socket.
    fn read_plaintext(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let shared = &*self.shared;
        let mut incoming = shared.incoming.lock();
        loop {
            if let Some((kind, message)) = &incoming.failed {
                return Err(io::Error::new(*kind, message.clone()));
            }
            let (decrypted, reply) = {
                let mut session = shared.session.lock();
                let decrypted = decrypt(&mut session, &mut incoming, buf);
                (decrypted, session.wants_write())
            };
            if reply {
                // An alert or a key update for the peer.
                self.send_reply();
            }
            match decrypted {
                Ok(Some(n)) => return Ok(n),
                Ok(None) => {}
                Err(e) => {
                    incoming.failed = Some((e.kind(), e.to_string()));
                    return Err(e);
                }
            }
            // Everything read was decrypted and handed out: read more, without the session.
            let Incoming { buf: cipher, .. } = &mut *incoming;
            let n = (&shared.socket).read(cipher)?;
            incoming.start = 0;
            incoming.end = n;
            incoming.eof = n == 0;
        }
    }

    /// Sends what the session wants to send on behalf of the reading side, unless a write is
    /// under way (which sends it with its own records, or its next write or flush does).
    fn send_reply(&self) {
        let shared = &*self.shared;
        let Some(mut outgoing) = shared.outgoing.try_lock() else {
            return;
        };
        let pulled = outgoing.pull(&mut shared.session.lock());
        if pulled.is_ok() {
            // Best effort: what a timeout leaves goes with the next write or flush.
            let _ = outgoing.send(&shared.socket);
        }
    }

    /// Encrypts up to [`WRITE_CHUNK`] bytes of `buf` and writes the records (see the module
    /// documentation for timeouts).
    fn write_plaintext(&self, buf: &[u8]) -> io::Result<usize> {
        let shared = &*self.shared;
        let mut outgoing = shared.outgoing.lock();
        // Earlier records first; a timeout here has taken nothing of `buf`.
        outgoing.send(&shared.socket)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let taken = {
            let mut session = shared.session.lock();
            let taken = session.writer().write(&buf[..buf.len().min(WRITE_CHUNK)])?;
            outgoing.pull(&mut session)?;
            taken
        };
        match outgoing.send(&shared.socket) {
            Ok(()) => Ok(taken),
            // `buf[..taken]` is encrypted: it leaves with the next write or flush.
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => Ok(taken),
            Err(e) => Err(e),
        }
    }

    /// Writes every record not yet on the socket.
    fn flush_records(&self) -> io::Result<()> {
        let shared = &*self.shared;
        let mut outgoing = shared.outgoing.lock();
        outgoing.pull(&mut shared.session.lock())?;
        outgoing.send(&shared.socket)
    }

    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let shared = &*self.shared;
        if how == Shutdown::Write {
            let mut outgoing = shared.outgoing.lock();
            {
                let mut session = shared.session.lock();
                session.send_close_notify();
                outgoing.pull(&mut session)?;
            }
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            loop {
                match outgoing.send(&shared.socket) {
                    Ok(()) => break,
                    Err(e)
                        if (is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted)
                            && Instant::now() < deadline => {}
                    Err(e) => {
                        let _ = shared.socket.shutdown(Shutdown::Write);
                        return Err(e);
                    }
                }
            }
        }
        shared.socket.shutdown(how)
    }
}

/// Hands out plaintext into `buf`, decrypting the ciphertext of `incoming` as needed: the
/// number of bytes (0 at the end of the stream), or `None` when more ciphertext must be read.
/// Never touches the socket.
fn decrypt(
    session: &mut rustls::Connection,
    incoming: &mut Incoming,
    buf: &mut [u8],
) -> io::Result<Option<usize>> {
    let mut filled = 0;
    loop {
        match session.reader().read(&mut buf[filled..]) {
            // `close_notify`: the end, after all plaintext.
            Ok(0) => return Ok(Some(filled)),
            Ok(n) => {
                filled += n;
                if filled == buf.len() {
                    return Ok(Some(filled));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The socket ended without `close_notify`: an end like plain TCP's (module docs).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Some(filled)),
            Err(e) => return Err(e),
        }
        if incoming.start == incoming.end {
            if incoming.eof {
                // Tells the session that no more bytes come; its reader ends next round.
                session.read_tls(&mut io::empty())?;
                continue;
            }
            return Ok((filled > 0).then_some(filled));
        }
        let mut cipher = &incoming.buf[incoming.start..incoming.end];
        match session.read_tls(&mut cipher)? {
            // After the peer's `close_notify`: nothing more is read.
            0 => incoming.start = incoming.end,
            n => incoming.start += n,
        }
        session.process_new_packets().map_err(session_error)?;
    }
}

/// A session's failure as the I/O error the protocol code reports.
fn session_error(e: rustls::Error) -> io::Error {
    use rustls::AlertDescription as A;
    let message = match &e {
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::CertificateRequired
            | A::AccessDenied),
        ) => format!(
            "the peer refused this process's certificate (TLS alert {alert:?}); check that \
             both TaskManagers use certificates of the same cluster CA"
        ),
        rustls::Error::AlertReceived(alert) => {
            format!("the peer ended the TLS session with the alert {alert:?}")
        }
        other => format!("TLS: {other}"),
    };
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Why a producer's TLS connection attempt failed.
pub(crate) enum ConnectError {
    /// The port is not up (yet): worth another attempt.
    Retry(String),
    /// The TLS handshake failed: the certificates do not fit, another attempt cannot help.
    Refused(String),
}

/// Why a handshake did not complete.
enum HandshakeError {
    TimedOut,
    Stopped,
    Failed(io::Error),
}

/// Runs the handshake on `socket` until it completes, `deadline` passes, `stop` says so
/// (looked at every [`CANCEL_POLL`]) or it fails; leaves the socket without timeouts.
fn handshake(
    socket: &TcpStream,
    mut session: rustls::Connection,
    deadline: Instant,
    stop: impl Fn() -> bool,
) -> Result<rustls::Connection, HandshakeError> {
    let mut io = socket;
    while session.is_handshaking() || session.wants_write() {
        let now = Instant::now();
        if now >= deadline {
            return Err(HandshakeError::TimedOut);
        }
        let wait = Some((deadline - now).min(CANCEL_POLL));
        socket
            .set_read_timeout(wait)
            .and_then(|()| socket.set_write_timeout(wait))
            .map_err(HandshakeError::Failed)?;
        match session.complete_io(&mut io) {
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop() {
                    return Err(HandshakeError::Stopped);
                }
            }
            Err(e) => return Err(HandshakeError::Failed(e)),
        }
    }
    socket
        .set_read_timeout(None)
        .and_then(|()| socket.set_write_timeout(None))
        .map_err(HandshakeError::Failed)?;
    Ok(session)
}

/// Producer side: a connection to `addr` over mutual TLS, the handshake completed within
/// `timeout` (and the connection within as much again).
///
/// # Errors
/// [`ConnectError::Retry`] when the connection fails or times out, [`ConnectError::Refused`]
/// when the handshake fails (the server's chain does not end at the CA, or the server refused
/// this process's certificate during the handshake). With TLS 1.3 a server that refuses the
/// client's certificate says so after the client's side of the handshake is done: the
/// connection's first read then fails with the server's alert.
pub(crate) fn connect(
    addr: &SocketAddr,
    timeout: Duration,
    tls: &InternalTls,
) -> Result<Connection, ConnectError> {
    let tcp = TcpStream::connect_timeout(addr, timeout)
        .map_err(|e| ConnectError::Retry(format!("{addr}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let session = rustls::ClientConnection::new(tls.client_config(), InternalTls::server_name())
        .map_err(|e| ConnectError::Refused(format!("{addr}: TLS set-up failed: {e}")))?;
    match handshake(&tcp, session.into(), Instant::now() + timeout, || false) {
        Ok(session) => Ok(Connection::Tls(TlsStream::new(tcp, session))),
        Err(HandshakeError::TimedOut | HandshakeError::Stopped) => Err(ConnectError::Retry(
            format!("{addr}: TLS handshake timed out"),
        )),
        Err(HandshakeError::Failed(e)) => Err(ConnectError::Refused(format!(
            "{addr}: TLS handshake failed: {e}; check that both TaskManagers use \
             certificates of the same cluster CA"
        ))),
    }
}

/// Consumer side: the handshake of a connection accepted by the data port, within
/// [`super::HANDSHAKE_TIMEOUT`] or until `stop` (the server shuts down). `None` when it failed:
/// the refusal is logged with the peer's address and the connection closed after the alert.
pub(crate) fn accept(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: &InternalTls,
    stop: impl Fn() -> bool,
) -> Option<Connection> {
    let _ = tcp.set_nodelay(true);
    let session = match rustls::ServerConnection::new(tls.server_config()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "refused a data connection: TLS set-up failed");
            return None;
        }
    };
    let deadline = Instant::now() + super::HANDSHAKE_TIMEOUT;
    match handshake(&tcp, session.into(), deadline, stop) {
        Ok(session) => Some(Connection::Tls(TlsStream::new(tcp, session))),
        Err(HandshakeError::Failed(e)) => {
            tracing::warn!(%peer, error = %e, "refused a data connection: TLS handshake failed (no valid client certificate of this cluster)");
            drain(&tcp);
            None
        }
        Err(HandshakeError::TimedOut) => {
            tracing::warn!(%peer, "refused a data connection: TLS handshake timed out");
            None
        }
        Err(HandshakeError::Stopped) => None,
    }
}

/// After a refusal: stops writing and discards what the peer still sends until it closes or
/// [`REFUSAL_LINGER`] passes, so the alert is read rather than lost in a connection reset.
fn drain(tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let deadline = Instant::now() + REFUSAL_LINGER;
    let mut sink = [0u8; 4096];
    let mut tcp = tcp;
    while Instant::now() < deadline {
        match tcp.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
