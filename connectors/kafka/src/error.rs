//! The one error enum of this crate.

/// What went wrong talking to Kafka or configuring the connector.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No broker of `bootstrap` could be reached.
    #[error(
        "cannot reach any Kafka broker of {bootstrap}: {message}; check bootstrap.servers and that the brokers run"
    )]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// The last connection error.
        message: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("Kafka {api} failed for {target}: {code_name} ({code}){hint}")]
    Broker {
        /// The API called (Fetch, Produce, EndTxn, ...).
        api: &'static str,
        /// Topic/partition, transactional id or group the request was about.
        target: String,
        /// The Kafka error code.
        code: i16,
        /// Its name (UNKNOWN_TOPIC_OR_PARTITION, ...).
        code_name: String,
        /// What to do about it, starting with "; " (or empty).
        hint: String,
    },
    /// A request or response could not be encoded or decoded.
    #[error("Kafka protocol error in {api}: {message}")]
    Protocol {
        /// The API concerned.
        api: &'static str,
        /// What failed.
        message: String,
    },
    /// SASL authentication with a broker failed: the credentials were refused, the listener
    /// does not enable the mechanism or does not speak SASL, or a SCRAM server could not prove
    /// it knows the credentials. Not retriable: the same credentials fail again.
    #[error("SASL authentication failed at {broker} with {mechanism}: {message}")]
    Authentication {
        /// host:port of the broker.
        broker: String,
        /// The SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
        mechanism: &'static str,
        /// The broker's message (or what this client found wrong) and what to check.
        message: String,
    },
    /// Bad connector configuration.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
    /// The client was used in a way its contract does not allow (sending on a producer whose
    /// transaction was prepared, committing without a transaction, ...).
    #[error("Kafka client misuse: {0}")]
    Usage(String),
    /// I/O on a broker connection.
    #[error("I/O error talking to Kafka broker {broker}: {source}")]
    Io {
        /// host:port of the broker.
        broker: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Kafka error codes this crate reacts to (the protocol's numbers).
pub(crate) mod codes {
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub const PRODUCER_FENCED: i16 = 90;
}

impl KafkaError {
    /// A [`KafkaError::Broker`] for `code`, with the Kafka error name and a hint.
    pub(crate) fn broker(api: &'static str, target: impl Into<String>, code: i16) -> Self {
        KafkaError::Broker {
            api,
            target: target.into(),
            code,
            code_name: code_name(code),
            hint: hint(code).map(|h| format!("; {h}")).unwrap_or_default(),
        }
    }

    /// The Kafka error code, when the broker answered with one.
    pub fn code(&self) -> Option<i16> {
        match self {
            KafkaError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether this error says the producer (its transactional id) was fenced: a newer producer
    /// initialised the same transactional id, or the coordinator aborted the transaction and
    /// bumped the epoch (for instance because `transaction.timeout.ms` passed). A transaction
    /// that met this can no longer be committed: its records are lost to `read_committed`
    /// readers.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self.code(),
            Some(
                codes::PRODUCER_FENCED
                    | codes::INVALID_PRODUCER_EPOCH
                    | codes::INVALID_PRODUCER_ID_MAPPING
            )
        )
    }

    /// Whether retrying the same call later may succeed (a broker restarting, a leader moving,
    /// a coordinator loading, a connection lost).
    pub fn is_retriable(&self) -> bool {
        match self {
            KafkaError::Unreachable { .. } | KafkaError::Io { .. } => true,
            KafkaError::Broker { code, .. } => is_retriable_code(*code),
            KafkaError::Protocol { .. }
            | KafkaError::Authentication { .. }
            | KafkaError::Config(_)
            | KafkaError::Usage(_) => false,
        }
    }
}

/// Kafka's own classification (the `RetriableException` subclasses), plus the transaction
/// coordinator's transient `CONCURRENT_TRANSACTIONS`.
pub(crate) fn is_retriable_code(code: i16) -> bool {
    code == codes::CONCURRENT_TRANSACTIONS
        || kafka_protocol::ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

/// `UNKNOWN_TOPIC_OR_PARTITION` for a protocol code (Kafka's names, as its tools print them).
pub(crate) fn code_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(kafka_protocol::ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE_{c}"),
        Some(e) => screaming_snake(&format!("{e:?}")),
    }
}

fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What a user can do about an error code (the common ones).
fn hint(code: i16) -> Option<&'static str> {
    Some(match code {
        codes::OFFSET_OUT_OF_RANGE => {
            "the offset is before the log start (deleted by retention) or past the end; restart from earliest or latest"
        }
        codes::UNKNOWN_TOPIC_OR_PARTITION => {
            "the topic or partition does not exist: create it (topics are never auto-created by this client) or check its name"
        }
        codes::LEADER_NOT_AVAILABLE | codes::NOT_LEADER_OR_FOLLOWER => {
            "the partition has no reachable leader (a broker is down or a leader election is running); it is retried until request.timeout.ms"
        }
        codes::REQUEST_TIMED_OUT => {
            "the broker did not complete the request in time; check the brokers' health"
        }
        codes::COORDINATOR_LOAD_IN_PROGRESS
        | codes::COORDINATOR_NOT_AVAILABLE
        | codes::NOT_COORDINATOR => {
            "the group or transaction coordinator is moving or loading; retried until request.timeout.ms"
        }
        codes::TOPIC_ALREADY_EXISTS => "the topic exists already",
        codes::INVALID_PARTITIONS => "a topic's partition count can only grow",
        codes::PRODUCER_FENCED
        | codes::INVALID_PRODUCER_EPOCH
        | codes::INVALID_PRODUCER_ID_MAPPING => {
            "the transactional id was re-initialised by a newer producer or its transaction was aborted by the coordinator (transaction.timeout.ms passed); this transaction cannot be committed any more"
        }
        codes::INVALID_TXN_STATE => {
            "the transaction is not in a state that allows this (already aborted, or never begun)"
        }
        codes::CONCURRENT_TRANSACTIONS => {
            "the previous transaction of this transactional id is still being completed"
        }
        codes::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => {
            "the principal may not use this transactional id"
        }
        codes::UNKNOWN_PRODUCER_ID => {
            "the broker forgot this producer (its records expired); restart the producer"
        }
        29 => "the principal is not authorised for this topic (check the ACLs)",
        30 => "the principal is not authorised for this consumer group (check the ACLs)",
        10 => {
            "a record is larger than the broker's message.max.bytes / the topic's max.message.bytes"
        }
        19 | 20 => "fewer in-sync replicas than min.insync.replicas; check the brokers",
        35 => "the broker does not support this request version",
        _ => return None,
    })
}
