//! The data plane between TaskManagers: channels whose events travel over TCP.
//!
//! A producer subtask on one TaskManager and a consumer subtask on another are joined by one
//! TCP connection per channel (no head-of-line blocking between channels). The producer side
//! is a `ChannelSender` like a local channel's, returned by `connect`; the consumer side is
//! the receiving end of a local bounded queue, returned by `DataServer::incoming`. The two
//! ends keep the local runtime's semantics: events arrive in order, a full consumer blocks the
//! producer (credit-based backpressure), and a producer that goes away without
//! `EndOfPartition` shows up at the consumer as a disconnected queue (a failure).
//!
//! Modules, one concept each (later ones may use earlier ones, never the reverse):
//!
//! - `key`: [`ChannelKey`], the name and generation of one channel.
//! - `codec`: `BatchCodec` and its typed implementation (`crate::encoding`), from
//!   `crate::exchange`, where the tasks encode and decode with it.
//! - `protocol`: the wire format: preamble, handshake and frames, and the frame reader that
//!   survives read timeouts.
//! - `registry`: which channels a [`DataServer`] expects, holds or serves, and fencing.
//! - `tls`: mutual TLS for data connections (rustls on the connection's own socket, the
//!   handshake done before the protocol starts; [`set_process_tls`]) and the plain-or-TLS
//!   connection that `inbound` and `outbound` read and write.
//! - `inbound`: one connection on the consumer's side: frames in, events and credits out.
//! - `outbound`: one connection on the producer's side (`connect`).
//! - `server`: [`DataServer`], the listening data port of a TaskManager.
//! - [`mod@bench`]: throughput measurements used by `fjord-bench-network`.
//! - [`fuzzing`]: the inbound decoding without a socket, for the fuzz targets in `fuzz/`.
//!
//! ## Flow control
//!
//! Every event (records, watermark, watermark status, barrier, end of partition) costs one
//! credit. The server grants `capacity` credits in its handshake answer and one more each time
//! its bounded local queue (also `capacity` events) accepted an event. So at most `capacity`
//! events are in flight and `capacity` queued; with the producer's hand-off slot and the event
//! its sender thread holds while waiting for credit, a producer's `send` blocks after
//! `2 * capacity + 2` events that the consumer has not taken.

pub mod bench;
pub(crate) use crate::exchange::codec;
pub mod fuzzing;
mod inbound;
mod key;
mod outbound;
mod protocol;
mod registry;
mod server;
#[cfg(test)]
mod tests;
mod tls;

pub(crate) use codec::{BatchCodec, TypedCodec};
pub use key::ChannelKey;
#[cfg(test)]
pub(crate) use outbound::connect;
pub(crate) use outbound::connect_counted;
pub use server::DataServer;
pub use tls::set_process_tls;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a producer keeps trying to reach a consumer's data port before it fails.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a [`DataServer`] holds a producer's connection whose consumer has not registered.
pub(crate) const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long either side waits for the other's half of the handshake (beyond the registration
/// wait, on the producer's side).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

static BYTES_SENT: AtomicU64 = AtomicU64::new(0);

/// Bytes this process has written to data connections so far (all channels, frames and
/// handshakes), for metrics. The receiving side counts per server: [`DataServer::bytes_received`].
pub fn bytes_sent() -> u64 {
    BYTES_SENT.load(Ordering::Relaxed)
}

fn count_sent(bytes: usize) {
    BYTES_SENT.fetch_add(bytes as u64, Ordering::Relaxed);
}
