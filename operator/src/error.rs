//! The crate's one error type.

/// What went wrong while reconciling a StreamJob or talking to its JobManager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API call failed while {action}: {source}")]
    Kube {
        /// What the operator was doing.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },

    /// The JobManager did not answer (not yet started, crashed, or network trouble).
    #[error("JobManager at {endpoint} is unreachable: {message}")]
    JobManagerUnreachable {
        /// The JobManager's REST endpoint.
        endpoint: String,
        /// The transport error.
        message: String,
    },

    /// The JobManager answered with an error.
    #[error("JobManager at {endpoint} refused {operation} (HTTP {status}): {message}")]
    JobManagerApi {
        /// The JobManager's REST endpoint.
        endpoint: String,
        /// The request, such as `trigger savepoint`.
        operation: String,
        /// HTTP status code.
        status: u16,
        /// The JobManager's message.
        message: String,
    },

    /// The StreamJob's spec breaks a rule the schema could not check.
    #[error("invalid StreamJob {name}: {message}")]
    InvalidSpec {
        /// namespace/name of the StreamJob.
        name: String,
        /// Every broken rule, naming its field.
        message: String,
    },

    /// A desired object could not be built (a broken pod template, a status the operator cannot
    /// read).
    #[error("cannot build {object} for StreamJob {name}: {message}")]
    Build {
        /// namespace/name of the StreamJob.
        name: String,
        /// The object being built.
        object: String,
        /// What is wrong.
        message: String,
    },

    /// JSON (de)serialization of an object failed.
    #[error("cannot (de)serialize {what}: {source}")]
    Serde {
        /// What was being (de)serialized.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// The StreamJob has no namespace or name (the API server always sets both).
    #[error("StreamJob object has no {0}")]
    MissingMetadata(&'static str),
}

impl Error {
    pub(crate) fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let action = action.into();
        move |source| Self::Kube { action, source }
    }

    /// Whether the Kubernetes API answered 404 Not Found.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Kube { source: kube::Error::Api(s), .. } if s.code == 404)
    }

    /// A short machine-readable reason for metrics and conditions.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::JobManagerUnreachable { .. } => "jobmanager_unreachable",
            Self::JobManagerApi { .. } => "jobmanager_api",
            Self::InvalidSpec { .. } => "invalid_spec",
            Self::Build { .. } => "build",
            Self::Serde { .. } => "serde",
            Self::MissingMetadata(_) => "missing_metadata",
        }
    }
}
