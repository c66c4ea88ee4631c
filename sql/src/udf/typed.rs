//! Scalar functions from closures over Rust types: [`SqlArg`] says which SQL type a Rust
//! argument type is and how a value becomes it, [`SqlResult`] the same for results, and
//! [`TypedScalar`] builds a [`ScalarFunction`] from a closure of up to six arguments.

use super::{NullInput, ScalarFunction, UdfResult};
use crate::types::{DataType, Value};

/// A Rust type a scalar function's argument can have.
pub trait SqlArg: Sized + 'static {
    /// Its SQL type.
    fn data_type() -> DataType;
    /// The value as this type: `None` gives a NULL result without calling the function
    /// (NULL, or a value of another type, which the planner's casts rule out); `Option<T>`
    /// turns NULL into `Some(None)`, so the function receives it.
    fn from_value(v: &Value) -> Option<Self>;
}

/// A Rust type a scalar function can return.
pub trait SqlResult: 'static {
    /// Its SQL type.
    fn data_type() -> DataType;
    /// The value.
    ///
    /// # Errors
    /// The function's error (a `Result` result).
    fn into_value(self) -> UdfResult<Value>;
}

macro_rules! sql_type {
    ($t:ty, $dt:expr, $variant:ident) => {
        impl SqlArg for $t {
            fn data_type() -> DataType {
                $dt
            }
            fn from_value(v: &Value) -> Option<Self> {
                match v {
                    Value::$variant(x) => Some(x.clone()),
                    _ => None,
                }
            }
        }
        impl SqlResult for $t {
            fn data_type() -> DataType {
                $dt
            }
            fn into_value(self) -> UdfResult<Value> {
                Ok(Value::$variant(self))
            }
        }
    };
}

sql_type!(bool, DataType::Boolean, Boolean);
sql_type!(i8, DataType::TinyInt, TinyInt);
sql_type!(i16, DataType::SmallInt, SmallInt);
sql_type!(i32, DataType::Int, Int);
sql_type!(i64, DataType::BigInt, BigInt);
sql_type!(f32, DataType::Float, Float);
sql_type!(f64, DataType::Double, Double);
sql_type!(String, DataType::String, String);
sql_type!(Vec<u8>, DataType::Bytes, Bytes);

impl<T: SqlArg> SqlArg for Option<T> {
    fn data_type() -> DataType {
        T::data_type()
    }
    fn from_value(v: &Value) -> Option<Self> {
        Some(T::from_value(v))
    }
}

impl<T: SqlResult> SqlResult for Option<T> {
    fn data_type() -> DataType {
        T::data_type()
    }
    fn into_value(self) -> UdfResult<Value> {
        self.map_or(Ok(Value::Null), T::into_value)
    }
}

impl<T: SqlResult, E: std::fmt::Display + 'static> SqlResult for Result<T, E> {
    fn data_type() -> DataType {
        T::data_type()
    }
    fn into_value(self) -> UdfResult<Value> {
        self.map_err(|e| e.to_string())?.into_value()
    }
}

/// A closure that can be a scalar function (`Args` is the tuple of its argument types).
pub trait TypedScalar<Args>: Send + Sync + 'static {
    /// The function, its signature taken from the closure's types.
    fn into_scalar(self) -> ScalarFunction;
}

macro_rules! typed_scalar {
    ($($a:ident),*) => {
        impl<F, R, $($a),*> TypedScalar<($($a,)*)> for F
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
            R: SqlResult,
            $($a: SqlArg,)*
        {
            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_scalar(self) -> ScalarFunction {
                let args = [$($a::data_type()),*];
                // Every argument takes NULL: the closure is called and `from_value` turns a
                // NULL for a non-Option argument into a NULL result.
                ScalarFunction::new(&args, R::data_type(), NullInput::Called, move |v: &[Value]| {
                    let mut it = v.iter();
                    $(
                        let $a = match it.next().and_then($a::from_value) {
                            Some(x) => x,
                            None => return Ok(Value::Null),
                        };
                    )*
                    self($($a),*).into_value()
                })
            }
        }
    };
}

typed_scalar!();
typed_scalar!(A);
typed_scalar!(A, B);
typed_scalar!(A, B, C);
typed_scalar!(A, B, C, D);
typed_scalar!(A, B, C, D, E);
typed_scalar!(A, B, C, D, E, G);
