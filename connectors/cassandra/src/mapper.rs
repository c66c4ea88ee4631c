//! How records become rows: a [`CassandraMapper`] is a closure `Fn(&T) -> Result<CqlRow,
//! String>` or an implementation of the trait; [`positional`] maps tuples field by field
//! (Flink's `CassandraTupleSink`/`CassandraRowSink`), and a [`CassandraEntity`] describes a
//! struct's table and columns in code, the derive-free counterpart of Flink's POJO sink with
//! its `@Table`/`@Column` annotations.

use crate::row::{CqlRow, ToCqlRow};

/// Turns a record into the values of the statement's bind markers, in order.
pub trait CassandraMapper<T>: Send + Sync + 'static {
    /// The row, or what is wrong with the record (the sink fails the job or skips it, see
    /// [`OnMalformed`](crate::OnMalformed)).
    fn map(&self, record: &T) -> Result<CqlRow, String>;
}

impl<T, F> CassandraMapper<T> for F
where
    F: Fn(&T) -> Result<CqlRow, String> + Send + Sync + 'static,
{
    fn map(&self, record: &T) -> Result<CqlRow, String> {
        self(record)
    }
}

/// The positional mapping of tuples (and `Vec`s): field `i` binds marker `i`. Use as
/// `.mapper(positional)`.
pub fn positional<T: ToCqlRow>(record: &T) -> Result<CqlRow, String> {
    Ok(record.to_cql_row())
}

/// A struct stored as one row of a table: the Rust counterpart of a Flink POJO annotated with
/// `@Table(keyspace, name)` and `@Column(name)`. The sink made by
/// [`CassandraSink::for_entity`](crate::CassandraSink::for_entity) writes it with
/// `INSERT INTO keyspace.table (columns...) VALUES (?, ...)`.
///
/// ```
/// use fjord_cassandra::{CassandraEntity, CqlRow, ToCqlValue};
/// struct Order { id: i64, customer: String, amount: f64 }
/// impl CassandraEntity for Order {
///     const KEYSPACE: &'static str = "shop";
///     const TABLE: &'static str = "orders";
///     const COLUMNS: &'static [&'static str] = &["id", "customer", "amount"];
///     fn values(&self) -> Result<CqlRow, String> {
///         Ok(vec![self.id.to_cql(), self.customer.to_cql(), self.amount.to_cql()])
///     }
/// }
/// ```
pub trait CassandraEntity: Send + 'static {
    /// The keyspace.
    const KEYSPACE: &'static str;
    /// The table.
    const TABLE: &'static str;
    /// The columns [`values`](Self::values) fills, in its order.
    const COLUMNS: &'static [&'static str];
    /// One value per column of [`COLUMNS`](Self::COLUMNS).
    fn values(&self) -> Result<CqlRow, String>;
}

/// The mapper of a [`CassandraEntity`].
pub(crate) fn entity<T: CassandraEntity>(record: &T) -> Result<CqlRow, String> {
    record.values()
}
