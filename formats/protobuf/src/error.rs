//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong loading a message type or decoding a message.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// A `.proto` file does not compile (syntax, unknown import, unknown type, ...).
    #[error("cannot compile {file}: {reason}")]
    Compile {
        /// The file asked for.
        file: PathBuf,
        /// The compiler's message (with the line and column).
        reason: String,
    },
    /// A descriptor set does not decode or is inconsistent.
    #[error("not a valid protobuf descriptor set: {0}")]
    DescriptorSet(String),
    /// The message type is not in the file or set.
    #[error("no message type '{name}' in {source_name}; it has: {known}")]
    UnknownMessage {
        /// The full name asked for (`package.Message`).
        name: String,
        /// Where it was looked for.
        source_name: String,
        /// The full names of the message types there.
        known: String,
    },
    /// Bytes that are not a message of the type.
    #[error("not a valid {message} message: {reason}")]
    Decode {
        /// The message type's full name.
        message: String,
        /// Why not.
        reason: String,
    },
}
