//! The crate's error type.

use std::path::PathBuf;

use crate::manifest::FieldError;

/// What went wrong while loading a manifest or generating the CRD.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file is not YAML, or a field has the wrong type.
    #[error("{source_name}: not a valid StreamJob manifest: {message}")]
    Parse {
        /// Where the manifest came from (a file name, or `<input>`).
        source_name: String,
        /// The parser's message, which names the field and line.
        message: String,
    },

    /// The manifest holds no StreamJob, or more than one.
    #[error(
        "{source_name}: expected exactly one document with apiVersion fjord.dev/v1alpha1 and kind StreamJob, found {found}"
    )]
    NotOneStreamJob {
        /// Where the manifest came from.
        source_name: String,
        /// How many StreamJob documents there were.
        found: usize,
    },

    /// The manifest parsed but breaks the StreamJob rules; every problem is listed.
    #[error("{source_name}: invalid StreamJob:{}", format_field_errors(errors))]
    Invalid {
        /// Where the manifest came from.
        source_name: String,
        /// Each broken rule, naming its field.
        errors: Vec<FieldError>,
    },

    /// The CRD could not be rendered as YAML.
    #[error("could not render the StreamJob CRD as YAML: {0}")]
    Render(#[source] serde_yaml::Error),

    /// A file could not be read or written.
    #[error("could not access {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn format_field_errors(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("\n  - {e}")).collect()
}
