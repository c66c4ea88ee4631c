//! The crate's one error type.

/// What went wrong writing or reading Parquet.
#[derive(Debug, thiserror::Error)]
pub enum ParquetFormatError {
    /// The schema cannot be written as Parquet (a decimal precision out of range, no
    /// columns, two columns of one name).
    #[error("invalid Parquet schema: {0}")]
    Schema(String),
    /// A record's field does not fit its column.
    #[error("column '{column}': {message}")]
    Value {
        /// The column's name.
        column: String,
        /// What is wrong with the value and what the column takes.
        message: String,
    },
    /// A record does not map to a row of the schema at all.
    #[error("cannot map a record to a Parquet row: {0}")]
    Record(String),
    /// An option value that is not understood.
    #[error("option '{option}': {message}")]
    Option {
        /// The option's name.
        option: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// The Parquet library failed to encode or decode.
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
}

/// The crate's result type.
pub type Result<T, E = ParquetFormatError> = std::result::Result<T, E>;
