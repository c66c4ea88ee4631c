//! How keyed operators get a record's key: borrowed from the record when the user's selector
//! returns a reference ([`key_by_ref`](crate::DataStream::key_by_ref)), made by the selector
//! otherwise ([`key_by`](crate::DataStream::key_by)).

use std::ops::Deref;
use std::sync::Arc;

/// Extracts the key of a record (see the module docs).
pub(crate) type KeySelector<T, K> = Arc<dyn for<'a> Fn(&'a T) -> KeyRef<'a, K> + Send + Sync>;

/// A record's key: borrowed from the record or made for it. Unlike `Cow`, it needs no
/// `Clone` of the key type to exist.
pub(crate) enum KeyRef<'a, K> {
    /// Part of the record.
    Borrowed(&'a K),
    /// Made by the selector.
    Owned(K),
}

impl<K: Clone> KeyRef<'_, K> {
    /// The key as a value of its own (a copy only when it is borrowed).
    #[inline]
    pub(crate) fn into_owned(self) -> K {
        match self {
            KeyRef::Borrowed(k) => k.clone(),
            KeyRef::Owned(k) => k,
        }
    }
}

impl<K> Deref for KeyRef<'_, K> {
    type Target = K;
    #[inline]
    fn deref(&self) -> &K {
        match self {
            KeyRef::Borrowed(k) => k,
            KeyRef::Owned(k) => k,
        }
    }
}
