//! A small STOMP 1.2 client on tokio: connects and logs in, negotiates heart-beats, reads
//! frames into a bounded channel of [`Event`]s and writes frames.
//!
//! One task reads the socket: `MESSAGE`, `RECEIPT` and `ERROR` frames become events; when the
//! broker's heart-beats stop (nothing read for twice the agreed interval and 5 s) or the socket
//! closes, a final [`Event::Closed`] says why. Another task sends a heart-beat (an end-of-line)
//! at half the agreed interval (ActiveMQ allows no grace). The event channel is bounded: when
//! the consumer does not take events, the reading task waits, and TCP's flow control holds the
//! broker back.

use crate::address::Address;
use crate::frame::{Decoded, Frame, decode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// Added to twice the agreed heart-beat interval before a silent broker counts as gone (a
/// loaded machine delays heart-beats; a dead peer is still noticed within seconds).
const READ_SLACK: Duration = Duration::from_secs(5);

/// Something the broker sent, or the end of the connection.
#[derive(Debug)]
pub(crate) enum Event {
    /// A `MESSAGE` frame.
    Message(Frame),
    /// A `RECEIPT` frame's `receipt-id`.
    Receipt(String),
    /// An `ERROR` frame (the broker closes the connection after it).
    Error(Frame),
    /// The connection ended: why.
    Closed(String),
}

/// An open STOMP connection.
pub(crate) struct Client {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    pub(crate) events: mpsc::Receiver<Event>,
    tasks: Vec<JoinHandle<()>>,
    /// The `server` header of `CONNECTED` (`ActiveMQ/6.3.1`).
    pub(crate) server: String,
}

/// How a connection is set up.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// Time to connect and log in.
    pub(crate) connect_timeout: Duration,
    /// The heart-beat interval offered both ways (zero: none).
    pub(crate) heartbeat: Duration,
    /// Events buffered before the reading task waits.
    pub(crate) capacity: usize,
}

/// `(send every, expect every)` from our offer and the server's `heart-beat` header (STOMP
/// 1.2: each direction is the larger of the two sides' values, or off if either is 0).
fn negotiate(ours: Duration, theirs: Option<&str>) -> (Option<Duration>, Option<Duration>) {
    let ms = ours.as_millis() as u64;
    let (sx, sy) = theirs
        .and_then(|h| h.split_once(','))
        .map(|(x, y)| {
            (
                x.trim().parse::<u64>().unwrap_or(0),
                y.trim().parse::<u64>().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0));
    let both = |a: u64, b: u64| (a > 0 && b > 0).then(|| Duration::from_millis(a.max(b)));
    (both(ms, sy), both(ms, sx))
}

impl Client {
    /// Connects to `address` and logs in (`CONNECT`, STOMP 1.2).
    ///
    /// # Errors
    /// Why it failed (the socket, a timeout, the broker's `ERROR` frame), for
    /// [`ActiveMqError::Connect`](crate::ActiveMqError::Connect).
    pub(crate) async fn connect(
        address: &Address,
        options: &ClientOptions,
    ) -> Result<Client, String> {
        tokio::time::timeout(options.connect_timeout, Self::connect_now(address, options))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no connection within {:?}",
                    options.connect_timeout
                ))
            })
    }

    async fn connect_now(address: &Address, options: &ClientOptions) -> Result<Client, String> {
        let stream = TcpStream::connect(&address.host_port)
            .await
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let hb = options.heartbeat.as_millis();
        let mut connect = Frame::new("CONNECT")
            .header("accept-version", "1.2")
            .header("host", address.virtual_host.clone())
            .header("heart-beat", format!("{hb},{hb}"));
        if let Some(login) = &address.login {
            connect = connect.header("login", login.clone());
        }
        if let Some(passcode) = &address.passcode {
            connect = connect.header("passcode", passcode.clone());
        }
        let mut out = Vec::new();
        connect.encode(&mut out);
        writer.write_all(&out).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let connected = loop {
            match decode(&mut buf).map_err(|e| e.to_string())? {
                Some(Decoded::HeartBeat) => continue,
                Some(Decoded::Frame(f)) => break f,
                None => {}
            }
            let mut chunk = [0u8; 8192];
            let n = reader.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the broker closed the connection during the STOMP handshake".into());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        match connected.command.as_str() {
            "CONNECTED" => {}
            "ERROR" => {
                return Err(format!(
                    "the broker refused the login: {}",
                    error_text(&connected)
                ));
            }
            other => {
                return Err(format!(
                    "the broker answered CONNECT with {other}, not CONNECTED; is this a STOMP port?"
                ));
            }
        }
        if connected.get("version") != Some("1.2") {
            return Err(format!(
                "the broker speaks STOMP {}, this connector 1.2",
                connected.get("version").unwrap_or("1.0")
            ));
        }
        let (send_every, expect_every) = negotiate(options.heartbeat, connected.get("heart-beat"));
        let writer = Arc::new(Mutex::new(writer));
        let (tx, events) = mpsc::channel(options.capacity.max(1));
        let mut tasks = vec![tokio::spawn(read_loop(reader, buf, tx, expect_every))];
        if let Some(every) = send_every {
            // At half the agreed interval: ActiveMQ drops a client that is silent for the
            // interval itself, without a grace period, so sending exactly on time races it.
            tasks.push(tokio::spawn(heartbeat_loop(writer.clone(), every / 2)));
        }
        Ok(Client {
            writer,
            events,
            tasks,
            server: connected.get("server").unwrap_or("unknown").to_string(),
        })
    }

    /// Writes `frames` in one go.
    ///
    /// # Errors
    /// The socket's error.
    pub(crate) async fn send(&self, frames: &[Frame]) -> std::io::Result<()> {
        let mut out = Vec::new();
        for f in frames {
            f.encode(&mut out);
        }
        self.writer.lock().await.write_all(&out).await
    }

    /// Sends `DISCONNECT` (best effort) and stops the tasks.
    pub(crate) async fn close(&self) {
        // Best effort: sinks waited for their receipts (flush) before, and what a source
        // did not acknowledge is redelivered by the broker however the connection ends.
        let _ = self.send(&[Frame::new("DISCONNECT")]).await;
        let _ = self.writer.lock().await.shutdown().await;
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An `ERROR` frame as text: its `message` header and the first line of its body.
pub(crate) fn error_text(frame: &Frame) -> String {
    let message = frame.get("message").unwrap_or("(no message)").to_string();
    match details(frame) {
        d if d.is_empty() => message,
        d => format!("{message}{d}"),
    }
}

/// ` (first line of the body)` of an `ERROR` frame, or nothing.
pub(crate) fn details(frame: &Frame) -> String {
    let body = String::from_utf8_lossy(&frame.body);
    match body.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(" ({line})"),
        None => String::new(),
    }
}

async fn read_loop(
    mut reader: OwnedReadHalf,
    mut buf: Vec<u8>,
    tx: mpsc::Sender<Event>,
    expect_every: Option<Duration>,
) {
    let reason = loop {
        // Hand every whole frame in the buffer over first.
        match decode(&mut buf) {
            Ok(Some(Decoded::HeartBeat)) => continue,
            Ok(Some(Decoded::Frame(f))) => {
                let event = match f.command.as_str() {
                    "MESSAGE" => Event::Message(f),
                    "RECEIPT" => {
                        Event::Receipt(f.get("receipt-id").unwrap_or_default().to_string())
                    }
                    "ERROR" => Event::Error(f),
                    other => {
                        tracing::debug!("ignoring a STOMP {other} frame from the broker");
                        continue;
                    }
                };
                if tx.send(event).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break e.to_string(),
        }
        let mut chunk = vec![0u8; 64 << 10];
        let read = match expect_every {
            // STOMP 1.2 asks for tolerance: twice the interval, plus slack for a loaded host.
            Some(every) => {
                let limit = every * 2 + READ_SLACK;
                match tokio::time::timeout(limit, reader.read(&mut chunk)).await {
                    Ok(r) => r,
                    Err(_) => break format!("no data or heart-beat from the broker for {limit:?}"),
                }
            }
            None => reader.read(&mut chunk).await,
        };
        match read {
            Ok(0) => break "the broker closed the connection".to_string(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break e.to_string(),
        }
    };
    // Fails only when the client was dropped: nobody is left to tell.
    let _ = tx.send(Event::Closed(reason)).await;
}

async fn heartbeat_loop(writer: Arc<Mutex<OwnedWriteHalf>>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if writer.lock().await.write_all(b"\n").await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heart_beats_take_the_larger_interval_or_none() {
        let s = Duration::from_secs;
        assert_eq!(negotiate(s(10), Some("0,0")), (None, None));
        assert_eq!(
            negotiate(s(10), Some("5000,20000")),
            (Some(s(20)), Some(s(10)))
        );
        assert_eq!(negotiate(Duration::ZERO, Some("5000,5000")), (None, None));
        assert_eq!(negotiate(s(1), None), (None, None));
    }
}
