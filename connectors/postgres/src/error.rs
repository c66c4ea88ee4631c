//! The crate's error enum.

/// What went wrong in the PostgreSQL connector. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// The sink's or lookup's configuration is incomplete or wrong (found by `build()`).
    #[error("PostgreSQL connector configuration: {0}")]
    Config(String),
    /// No connection to the server (refused, broken, timed out, the server starting or
    /// shutting down), also after every retry.
    #[error(
        "cannot reach PostgreSQL at {url} after {attempts} attempts: {reason}; check that the server runs and accepts connections there (the 'url' option / .url(..): postgres://user@host:port/database), or allow more retries ('sink.max-retries' / 'lookup.max-retries', .backoff(..))"
    )]
    Unreachable {
        /// The server's URL (without password).
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The server refused the connection for a reason a retry cannot change (credentials,
    /// missing database).
    #[error("PostgreSQL at {url} refused the connection: {message} (SQLSTATE {code}); {hint}")]
    Refused {
        /// The server's URL (without password).
        url: String,
        /// The SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// The table does not exist (or the user may not see it).
    #[error(
        "table {table} does not exist in the database at {url}: create it, or check the table name ('table-name' / .table(..); a name in another schema is schema.table)"
    )]
    MissingTable {
        /// The table as configured.
        table: String,
        /// The server's URL (without password).
        url: String,
    },
    /// A configured column is not in the table.
    #[error(
        "table {table} has no column {column}: check the column names ({what}); the table's columns are: {available}"
    )]
    MissingColumn {
        /// The table.
        table: String,
        /// The missing column.
        column: String,
        /// Which option named it.
        what: &'static str,
        /// The table's columns, comma-separated.
        available: String,
    },
    /// The sink's key columns have no primary key or unique index, which `ON CONFLICT` needs.
    #[error(
        "table {table} has no primary key or unique index on ({key}), which upserts need (INSERT ... ON CONFLICT ({key})): add one (ALTER TABLE {table} ADD PRIMARY KEY ({key})), or configure the table's own key columns"
    )]
    NoUniqueKey {
        /// The table.
        table: String,
        /// The key columns, comma-separated.
        key: String,
    },
    /// A value does not fit its column's type.
    #[error(
        "column {column} of table {table} has type {column_type}, which a {value} value cannot be written to or compared with: {hint}"
    )]
    TypeMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The column's type in PostgreSQL.
        column_type: String,
        /// What the record held (`BIGINT 42`).
        value: String,
        /// What to do.
        hint: String,
    },
    /// A column of a lookup's result has a type the connector cannot return.
    #[error(
        "column {column} of table {table} has type {column_type}, which the connector cannot read: leave it out of the lookup's columns, or read it through a view that casts it (for example to text); readable types: {supported}"
    )]
    UnsupportedType {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// Its type in PostgreSQL.
        column_type: String,
        /// The types the connector reads.
        supported: &'static str,
    },
    /// An action or a lookup key has the wrong number of values.
    #[error("{what} for table {table} has {got} values, but needs {expected} ({columns})")]
    Arity {
        /// Which statement (`an upsert`, `a delete`, `a lookup key`).
        what: &'static str,
        /// The table.
        table: String,
        /// Values given.
        got: usize,
        /// Values needed.
        expected: usize,
        /// The columns, in order.
        columns: String,
    },
    /// The emitter refused a record, or an action does not fit the sink (a delete without key
    /// columns).
    #[error(
        "malformed record for the PostgreSQL sink: {0}; fix the data or the emitter, or skip such records with .on_malformed(OnMalformed::Skip)"
    )]
    Malformed(String),
    /// The server refused a statement for a reason a retry cannot change (a constraint, a
    /// value out of range, a missing privilege).
    #[error(
        "PostgreSQL refused {statement} on table {table}: {message} (SQLSTATE {code}){detail}; fix the data, the emitter or the table"
    )]
    Statement {
        /// The table.
        table: String,
        /// What was run (`the upsert of key (7)`).
        statement: String,
        /// The SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
        /// The server's detail and hint, if any (with a leading "; ").
        detail: String,
    },
}
