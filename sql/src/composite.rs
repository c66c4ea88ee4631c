//! The composite types `ROW<...>`, `ARRAY<t>` and `MAP<k, v>`: interned so that
//! [`DataType`] stays a small `Copy` value (a type is built once per script, when it is
//! planned, and identical types share one allocation), and their values' text forms.

use crate::types::{DataType, Value};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Mutex, OnceLock};

/// A field of a `ROW` type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The field's name (case-sensitive, as columns).
    pub name: String,
    /// Its type.
    pub data_type: DataType,
}

/// A value interned for the life of the process: copied as a pointer, compared and hashed by
/// value. The interner keeps one allocation per distinct value, so planning the same script
/// again (as the operator does on every reconciliation) allocates nothing new.
pub struct Interned<T: ?Sized + 'static>(&'static T);

impl<T: ?Sized> Clone for Interned<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: ?Sized> Copy for Interned<T> {}
impl<T: ?Sized + PartialEq> PartialEq for Interned<T> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}
impl<T: ?Sized + Eq> Eq for Interned<T> {}
impl<T: ?Sized + Hash> Hash for Interned<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}
impl<T: ?Sized + fmt::Debug> fmt::Debug for Interned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl<T: ?Sized> Deref for Interned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0
    }
}

/// Interning of one kind of value: the process-wide set it is kept in.
pub trait Intern: Eq + Hash + Serialize + 'static {
    /// The owned form a value is built from (and deserialized as).
    type Owned: Serialize + for<'de> Deserialize<'de>;
    /// The set of interned values of this kind.
    fn pool() -> &'static Mutex<HashSet<&'static Self>>;
    /// Leaks an owned value as `&'static Self`.
    fn leak(owned: Self::Owned) -> &'static Self;
}

macro_rules! pool {
    ($t:ty) => {
        fn pool() -> &'static Mutex<HashSet<&'static Self>> {
            static POOL: OnceLock<Mutex<HashSet<&'static $t>>> = OnceLock::new();
            POOL.get_or_init(Default::default)
        }
    };
}

impl Intern for [Field] {
    type Owned = Vec<Field>;
    pool!([Field]);
    fn leak(owned: Vec<Field>) -> &'static Self {
        Box::leak(owned.into_boxed_slice())
    }
}

impl Intern for DataType {
    type Owned = DataType;
    pool!(DataType);
    fn leak(owned: DataType) -> &'static Self {
        Box::leak(Box::new(owned))
    }
}

impl Intern for (DataType, DataType) {
    type Owned = (DataType, DataType);
    pool!((DataType, DataType));
    fn leak(owned: (DataType, DataType)) -> &'static Self {
        Box::leak(Box::new(owned))
    }
}

impl<T: ?Sized + Intern> Interned<T>
where
    T::Owned: std::borrow::Borrow<T>,
{
    /// The interned copy of `owned` (the existing one when an equal value was interned).
    pub fn new(owned: T::Owned) -> Self {
        use std::borrow::Borrow;
        let mut pool = T::pool().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = pool.get(owned.borrow()) {
            return Interned(existing);
        }
        let leaked = T::leak(owned);
        pool.insert(leaked);
        Interned(leaked)
    }
}

impl<T: ?Sized + Intern> Serialize for Interned<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: ?Sized + Intern> Deserialize<'de> for Interned<T>
where
    T::Owned: std::borrow::Borrow<T>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::Owned::deserialize(d).map(Interned::new)
    }
}

/// The fields of a `ROW` type.
pub type RowFields = Interned<[Field]>;

impl DataType {
    /// `ROW<fields>`.
    pub fn row(fields: Vec<Field>) -> DataType {
        DataType::Row(Interned::new(fields))
    }

    /// `ARRAY<element>`.
    pub fn array(element: DataType) -> DataType {
        DataType::Array(Interned::new(element))
    }

    /// `MAP<key, value>`.
    pub fn map(key: DataType, value: DataType) -> DataType {
        DataType::Map(Interned::new((key, value)))
    }
}

/// Writes a ROW type's fields as `name type, ...` (names quoted with backticks when they are
/// not plain identifiers).
pub(crate) fn fmt_fields(fields: &[Field], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        let plain = field
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            write!(f, "{} {}", field.name, field.data_type)?;
        } else {
            write!(f, "`{}` {}", field.name.replace('`', "``"), field.data_type)?;
        }
    }
    Ok(())
}

/// The text of a composite value as Flink 2.3's `CAST(x AS STRING)` writes it: a ROW as
/// `(a, b)`, an ARRAY as `[a, b]`, a MAP as `{k=v, ...}`; NULL elements as `NULL`.
pub(crate) fn composite_text(v: &Value) -> Option<String> {
    fn elem(v: &Value) -> String {
        v.to_sql_string().unwrap_or_else(|| "NULL".into())
    }
    let list = |vs: &[Value]| vs.iter().map(elem).collect::<Vec<_>>().join(", ");
    Some(match v {
        Value::Row(fields) => format!("({})", list(fields)),
        Value::Array(items) => format!("[{}]", list(items)),
        Value::Map(entries) => {
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}={}", elem(k), elem(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_types_are_interned_once_and_compare_by_value() {
        let a = DataType::row(vec![Field {
            name: "x".into(),
            data_type: DataType::array(DataType::Int),
        }]);
        let b = DataType::row(vec![Field {
            name: "x".into(),
            data_type: DataType::array(DataType::Int),
        }]);
        assert_eq!(a, b);
        match (a, b) {
            (DataType::Row(fa), DataType::Row(fb)) => assert!(std::ptr::eq(fa.0, fb.0)),
            _ => unreachable!(),
        }
        assert_ne!(a, DataType::array(DataType::Int));
        assert_eq!(a.to_string(), "ROW<x ARRAY<INT>>");
        let json = serde_json::to_string(&a).unwrap();
        let back: DataType = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(
            DataType::map(DataType::String, DataType::BigInt).to_string(),
            "MAP<STRING, BIGINT>"
        );
    }

    #[test]
    fn composite_values_print_as_flinks_cast_to_string() {
        let v = Value::Row(vec![
            Value::Int(1),
            Value::Null,
            Value::Array(vec![Value::String("a".into()), Value::Null]),
            Value::Map(vec![(Value::String("k".into()), Value::BigInt(2))]),
        ]);
        assert_eq!(v.to_sql_string().unwrap(), "(1, NULL, [a, NULL], {k=2})");
    }
}
