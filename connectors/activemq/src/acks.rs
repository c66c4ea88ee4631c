//! What the ActiveMQ source acknowledges: the bookkeeping is the engine's
//! [`AcknowledgingState`] (Flink's `MessageAcknowledgingSourceBase`), with every message's
//! STOMP ack id (`client-individual`), duplicates included: they are acknowledged with the next
//! completed checkpoint.

use fjord::sources::acknowledging::AcknowledgingState;

/// The ActiveMQ source's state: ack ids per checkpoint.
pub(crate) type AckState = AcknowledgingState<Vec<String>>;
