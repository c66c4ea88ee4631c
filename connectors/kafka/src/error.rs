//! The one error enum of this crate.

/// What went wrong talking to Kafka or configuring the connector.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No broker of `bootstrap` could be reached.
    #[error("cannot reach any Kafka broker of {bootstrap}: {message}; check bootstrap.servers and that the brokers run")]
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
    /// Bad connector configuration.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
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
