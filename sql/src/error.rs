//! The crate's error type: every planning error names a line and column of the script and
//! says what to do next.

/// What kind of mistake a planning error reports (tests and tools match on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The script is not valid SQL.
    Syntax,
    /// A column name that no table in scope has.
    UnknownColumn,
    /// A table or view name that was not created.
    UnknownTable,
    /// Operands or columns whose types do not fit.
    TypeMismatch,
    /// Valid Flink SQL that Fjord does not support yet.
    Unsupported,
    /// A `WITH (...)` option or `SET` key/value that is missing or invalid.
    InvalidOption,
    /// A function that is neither built in nor registered in the worker binary that plans
    /// the script (the operator, which does not know an image's functions, lets such a
    /// script through to the workers).
    UnknownFunction,
}

/// An error of planning or running a SQL script.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The script is wrong at a known place.
    #[error("line {line}, column {column}: {message}")]
    Plan {
        /// What kind of mistake.
        kind: ErrorKind,
        /// 1-based line in the script (0 when unknown).
        line: u64,
        /// 1-based column in the script (0 when unknown).
        column: u64,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file the script refers to could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runtime refused the job built from the script.
    #[error(transparent)]
    Engine(#[from] fjord::FjordError),
}

impl SqlError {
    /// A planning error at a place.
    pub fn at(kind: ErrorKind, pos: Pos, message: impl Into<String>) -> Self {
        SqlError::Plan {
            kind,
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }

    /// The kind of a planning error (`None` for I/O and engine errors).
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            SqlError::Plan { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// A place in the script (1-based; 0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
}

impl Pos {
    /// The start of a sqlparser span.
    pub fn of(span: sqlparser::tokenizer::Span) -> Pos {
        Pos {
            line: span.start.line,
            column: span.start.column,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = SqlError> = std::result::Result<T, E>;
