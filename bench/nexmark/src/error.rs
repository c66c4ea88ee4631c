//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong in the Nexmark generator, a query or the comparison.
#[derive(Debug, thiserror::Error)]
pub enum NexmarkError {
    /// A configuration key has a value the generator cannot use.
    #[error("bad Nexmark configuration: {0}")]
    Config(String),

    /// The job's arguments could not be read (unknown key, not a number, NaN, ...).
    #[error(transparent)]
    Args(#[from] fjord::FjordError),

    /// An event line of an input file is not a Nexmark event (the file source that reads it
    /// names the file and the line).
    #[error("not a Nexmark event ({reason}); files are written by `fjord-nexmark generate`")]
    BadEvent {
        /// What is wrong with it.
        reason: String,
    },

    /// The query name is not one this crate implements.
    #[error("unknown query '{0}'; the queries are {1}")]
    UnknownQuery(String, String),

    /// A changelog row has no kind, or a changelog takes away a row it never added.
    #[error("bad changelog: {0}")]
    BadChangelog(String),

    /// The Kafka sink refused its settings.
    #[error(transparent)]
    Kafka(#[from] fjord_kafka::KafkaError),

    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done ("read", "write", "create").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl From<NexmarkError> for fjord::FjordError {
    fn from(e: NexmarkError) -> Self {
        match e {
            NexmarkError::Args(e) => e,
            other => fjord::FjordError::BadArguments(other.to_string()),
        }
    }
}
