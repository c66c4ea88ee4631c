//! What one record becomes in the table: [`PgAction`]s, made by a [`PgEmitter`].

use crate::value::PgValue;

/// One statement for the sink to run.
#[derive(Debug, Clone, PartialEq)]
pub enum PgAction {
    /// Write a row: one value per sink column, in the sink's column order. With key columns
    /// an upsert (`INSERT ... ON CONFLICT (key) DO UPDATE SET` the other columns); without, a
    /// plain `INSERT` (append).
    Upsert(Vec<PgValue>),
    /// Delete the row whose key columns hold these values, in the key's column order. Needs
    /// key columns. Deleting a row that is not there is not an error (so replays are
    /// harmless).
    Delete(Vec<PgValue>),
}

impl PgAction {
    /// An upsert (or insert) of `values`, in the sink's column order.
    pub fn upsert<V: Into<PgValue>>(values: impl IntoIterator<Item = V>) -> PgAction {
        PgAction::Upsert(values.into_iter().map(Into::into).collect())
    }

    /// A delete by the key `values`, in the key's column order.
    pub fn delete<V: Into<PgValue>>(key: impl IntoIterator<Item = V>) -> PgAction {
        PgAction::Delete(key.into_iter().map(Into::into).collect())
    }
}

/// Turns a record into the actions the sink runs, in order (none skips the record).
///
/// Implemented for closures `Fn(&T) -> Result<PgAction, String>`; an `Err` is a malformed
/// record (see [`OnMalformed`](crate::OnMalformed)). Implement it for a type of your own to emit
/// zero or several actions per record (a changelog's `UPDATE_BEFORE` rows emit none).
pub trait PgEmitter<T>: Send + Sync + 'static {
    /// The actions for `record`, or why it cannot be written.
    fn emit(&self, record: &T) -> Result<Vec<PgAction>, String>;
}

impl<T, F> PgEmitter<T> for F
where
    F: Fn(&T) -> Result<PgAction, String> + Send + Sync + 'static,
{
    fn emit(&self, record: &T) -> Result<Vec<PgAction>, String> {
        self(record).map(|a| vec![a])
    }
}
