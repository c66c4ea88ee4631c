//! Moving records and events between the tasks of one process: the bounded channel that
//! carries batches, barriers, watermarks and the end of a partition ([`channel`]), the codec
//! of a stream type's record batches ([`codec`], which the tasks at the ends of a network
//! channel, or of an in-process one whose records own heap memory, encode and decode with),
//! and the I/O metrics every task and channel keeps ([`io_metrics`]).
//!
//! Below both the network, which carries the same events between processes, and the runtime,
//! which wires channels into tasks; the runtime re-exports both modules under their old paths
//! (`fjord::runtime::io_metrics`).

pub(crate) mod channel;
pub(crate) mod codec;
pub mod io_metrics;
