//! The one error type of the `fjord` crate.

use std::fmt;

/// An error raised by a user function (map, filter, source, sink, ...).
///
/// User code may return any error type; `?` converts it into this box.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout the engine.
pub type Result<T, E = FjordError> = std::result::Result<T, E>;

/// Where in a running job something happened: the operator and the parallel subtask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLocation {
    /// The operator's name (as given with `.name(..)`, or its default name).
    pub operator: String,
    /// Zero-based index of the parallel subtask.
    pub subtask: usize,
    /// Parallelism of the operator.
    pub parallelism: usize,
}

impl fmt::Display for TaskLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Flink prints subtasks one-based as "(1/4)"; keep that so logs read the same.
        write!(
            f,
            "'{}' ({}/{})",
            self.operator,
            self.subtask + 1,
            self.parallelism
        )
    }
}

/// Everything that can go wrong while building or running a Fjord job.
#[derive(Debug, thiserror::Error)]
pub enum FjordError {
    /// The job graph is not valid (for example forward partitioning between operators of
    /// different parallelism). Raised while building or submitting the job.
    #[error("invalid job graph: {0}")]
    InvalidGraph(String),

    /// A user function returned an error.
    #[error("user function in operator {location} failed: {source}")]
    UserFunction {
        /// Where the function ran.
        location: TaskLocation,
        /// The error the function returned.
        #[source]
        source: BoxError,
    },

    /// A user function panicked.
    #[error("user function in operator {location} panicked: {message}")]
    UserPanic {
        /// Where the function ran.
        location: TaskLocation,
        /// The panic payload, if it was a string.
        message: String,
    },

    /// A source could not read its input (bad encoding, unreadable file, refused connection).
    #[error("source {location} failed at {position}: {message}")]
    Source {
        /// Which source subtask failed.
        location: TaskLocation,
        /// Where in the input: a file and line, or a socket address.
        position: String,
        /// What went wrong and what to do about it.
        message: String,
    },

    /// A sink could not write its output.
    #[error("sink {location} failed writing to {target}: {message}")]
    Sink {
        /// Which sink subtask failed.
        location: TaskLocation,
        /// The file, directory or address the sink writes to.
        target: String,
        /// What went wrong and what to do about it.
        message: String,
    },

    /// An I/O operation of the engine itself failed.
    #[error("{context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Records or state could not be (de)serialized.
    #[error("serialization failed in {context}: {message}")]
    Serialization {
        /// What was being serialized.
        context: String,
        /// The codec's message.
        message: String,
    },

    /// The job was cancelled (by the user, Ctrl-C, or because another task failed).
    #[error("job was cancelled")]
    Cancelled,

    /// A job name was not found in the job registry.
    #[error("no job named '{name}' is registered; available jobs: {available}")]
    UnknownJob {
        /// The requested name.
        name: String,
        /// Comma-separated names that are registered.
        available: String,
    },

    /// Job arguments were missing or malformed.
    #[error("bad job arguments: {0}")]
    BadArguments(String),

    /// A state name was registered twice with different types in one operator.
    #[error(
        "state '{name}' is registered as {registered} and cannot be used as {requested}; use distinct state names"
    )]
    StateTypeMismatch {
        /// The descriptor's name.
        name: String,
        /// The type it was first registered with.
        registered: String,
        /// The type of the later request.
        requested: String,
    },

    /// A function asked for a state that its operator does not declare (a broadcast state
    /// not named in `broadcast_with`).
    #[error(
        "operator '{operator}' has no state '{name}' (it declares: {known}); check the descriptor's name, or declare it in broadcast_with(..)"
    )]
    UnknownState {
        /// The requested state's name.
        name: String,
        /// The operator's name.
        operator: String,
        /// The names the operator declares, comma-separated.
        known: String,
    },

    /// An event-time operator received a record without timestamp.
    #[error(
        "record without timestamp in event-time operator '{operator}': assign timestamps with assign_timestamps_and_watermarks (or use a source that sets them), or use processing-time windows"
    )]
    MissingTimestamp {
        /// The operator's name.
        operator: String,
    },

    /// Keyed state or timers were used outside a keyed operator.
    #[error("{what} can only be used on a keyed stream (after key_by) in operator '{operator}'")]
    NotKeyed {
        /// What was requested ("keyed state", "timers").
        what: String,
        /// The operator's name.
        operator: String,
    },

    /// Checkpoint or savepoint storage failed (missing bucket, refused credentials,
    /// unreachable server, missing file).
    #[error("storage {url}: {operation} failed: {message}")]
    Storage {
        /// The storage URL.
        url: String,
        /// What was being done, with the path.
        operation: String,
        /// What went wrong and what to do about it.
        message: String,
    },

    /// A checkpoint or savepoint could not be taken.
    #[error("checkpoint failed: {0}")]
    CheckpointFailed(String),

    /// A job could not be restored from a checkpoint or savepoint.
    #[error("cannot restore: {0}")]
    Restore(String),

    /// A data channel between TaskManagers failed: the connection was refused (stale
    /// generation, no consumer registered in time), lost, or carried a malformed frame. The
    /// message names the channel (job, epoch, attempt, edge, producer -> consumer) and the peer.
    #[error("data exchange failed: {0}")]
    Network(String),

    /// Transport security could not be set up (certificate, key or CA files). The message
    /// names the file; it never contains key material.
    #[error("TLS: {0}")]
    Tls(String),

    /// Running tasks on TaskManagers failed: a TaskManager was lost (no heartbeat within the
    /// timeout), refused a deployment, or not enough slots were offered in time. The message
    /// names the TaskManager and what to do.
    #[error("cluster: {0}")]
    Cluster(String),

    /// An internal invariant was violated; this is a bug in Fjord.
    #[error("internal error (please report): {0}")]
    Internal(String),

    /// The keyed state backend could not be chosen, created or used (an unknown
    /// `state.backend.type`, a backend that is not linked into the binary, a local disk error).
    #[error("state backend '{backend}': {message}")]
    StateBackend {
        /// The backend's name (`heap`, `rocksdb`, ...).
        backend: String,
        /// What failed and what to do about it.
        message: String,
    },
}

impl FjordError {
    /// Wraps an I/O error with what the engine was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        FjordError::Io {
            context: context.into(),
            source,
        }
    }

    /// The operator and subtask the error happened in, when it names one.
    pub fn location(&self) -> Option<&TaskLocation> {
        match self {
            FjordError::UserFunction { location, .. }
            | FjordError::UserPanic { location, .. }
            | FjordError::Source { location, .. }
            | FjordError::Sink { location, .. } => Some(location),
            _ => None,
        }
    }

    /// True when this error is only a consequence of cancellation (not a root cause).
    pub fn is_cancellation(&self) -> bool {
        matches!(self, FjordError::Cancelled)
    }

    /// True when the error comes from a misconfiguration that no restart fixes: storage
    /// refused the credentials or has no such bucket (also when that storage error reached
    /// the job through a failed checkpoint or task). The job then fails at once instead of
    /// restarting.
    pub fn is_misconfiguration(&self) -> bool {
        let text = self.to_string();
        text.contains(NO_BUCKET_HINT) || text.contains(CREDENTIALS_HINT)
    }
}

/// The hint the storage layer adds to an error when the bucket does not exist (a
/// misconfiguration no retry fixes). Kept here, below `storage`, because
/// [`FjordError::is_misconfiguration`] recognises errors by it.
pub(crate) const NO_BUCKET_HINT: &str =
    "; the bucket does not exist: create it, or fix the bucket in the storage URL";

/// The hint the storage layer adds to an error when the credentials were refused (a
/// misconfiguration no retry fixes); see [`NO_BUCKET_HINT`].
pub(crate) const CREDENTIALS_HINT: &str = "; the credentials were refused: check s3.access-key / s3.secret-key (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)";

/// Turns a panic payload into a readable message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
